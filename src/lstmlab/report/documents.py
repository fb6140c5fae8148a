"""Every report writer: Markdown, JSON and CSV files, with the figures of ``report.figures``.

Sections: generic pieces (numbers, Markdown tables, image links, strict JSON); then one writer
per experiment, ``write_moving_average_report``, ``write_convergence_report`` and
``write_compare_report``, each taking the experiment's result object and an existing folder
and returning the paths it wrote. Reports render on GitHub: image links are relative to the
report.
"""

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.experiments.compare import CompareResult, ModelOutcome
from lstmlab.experiments.convergence import MODES

__all__ = [
    "COMPARE_METRICS",
    "compare_summary",
    "format_number",
    "image",
    "json_ready",
    "table",
    "write_compare_metrics_csv",
    "write_compare_report",
    "write_convergence_report",
    "write_json",
    "write_markdown",
    "write_moving_average_report",
]


def format_number(value: Any, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, scientific when very small or big.

    Args:
        value: a number (``None`` and NaN give ``"n/a"``; bools ``"yes"``/``"no"``).
        digits: significant digits.

    Returns:
        The text.

    Example:
        >>> format_number(0.000123456), format_number(12.3456), format_number(0)
        ('1.23e-04', '12.3', '0')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "0"
    if not math.isfinite(value) or not 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None
) -> str:
    """A GitHub Markdown table; numbers go through ``format_number``.

    Args:
        headers: column titles.
        rows: one sequence per row, as long as ``headers``.
        align: one of ``l``, ``r``, ``c`` per column; default: left for the first column,
            right for the others.

    Returns:
        The table, lines joined by newlines (no trailing newline).

    Raises:
        ValueError: a row or ``align`` has the wrong length.

    Example:
        >>> print(table(["model", "MSE"], [["a", 0.5]]))
        | model | MSE |
        |:--|--:|
        | a | 0.5 |
    """
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError(
            f"align must give one of l/r/c per column ({len(headers)}), got {align!r}"
        )
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(
                f"row {i} has {len(row)} cells, the table has {len(headers)} columns; pass one "
                "cell per column"
            )
    marks = {"l": ":--", "r": "--:", "c": ":-:"}

    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else format_number(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join(marks[a] for a in align) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def image(alt: str, path: str | Path, relative_to: str | Path | None = None) -> str:
    """A Markdown image link, relative to the report's folder when ``relative_to`` is given.

    Args:
        alt: the alternative text.
        path: the image file.
        relative_to: the report's folder.

    Returns:
        ``![alt](relative/path.png)`` with forward slashes.
    """
    path = Path(path)
    if relative_to is not None:
        path = path.relative_to(relative_to)
    return f"![{alt}]({path.as_posix()})"


def json_ready(value: Any) -> Any:
    """Turn dataclasses, tuples, NumPy scalars and arrays into JSON types.

    Non-finite floats become ``None`` (JSON has no NaN).

    Args:
        value: anything made of dicts, sequences, dataclasses, numbers and strings.

    Returns:
        The same data as plain ``dict``/``list``/``float``/``int``/``str``/``bool``/``None``.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write ``json_ready(data)`` with indentation; returns ``path``."""
    path = Path(path)
    path.write_text(json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n")
    return path


def write_markdown(path: Path, blocks: Sequence[str]) -> Path:
    """Write Markdown blocks separated by blank lines; returns ``path``."""
    path = Path(path)
    path.write_text("\n\n".join(block.strip("\n") for block in blocks if block) + "\n")
    return path


# -- the experiment reports --------------------------------------------------------------------


def write_moving_average_report(result, out: Path) -> dict[str, Path]:
    """Write the ``moving-average`` run: two plots, a loss plot, ``summary.json``, ``report.md``.

    Args:
        result: a ``MovingAverageResult``.
        out: the run folder (exists).

    Returns:
        ``{"input_plot", "residual_plot", "loss_plot", "summary", "report"}`` paths.
    """
    # matplotlib only when a report is written: the command line starts faster
    from lstmlab.report import figures

    out = Path(out)
    config = result.config
    data = result.data
    inputs = figures.plot_input_vs_expected(
        data.data_input[0].to_numpy(), data.expected_output[0].to_numpy(), tsteps=config.tsteps
    )
    residuals = figures.plot_residuals(
        result.y_test[:, 0],
        result.stateful.predictions[:, 0],
        result.stateless.predictions[:, 0],
        tsteps=config.tsteps,
    )
    losses = figures.plot_history(
        {o.name: (o.history.loss, o.history.val_loss) for o in result.outcomes},
        reference=config.threshold * result.baselines.mean,
        reference_label=f"convergence threshold ({config.threshold:g} x mean predictor)",
    )
    paths = {
        "input_plot": figures.save_figure(inputs, out / "input_vs_expected.png"),
        "residual_plot": figures.save_figure(residuals, out / "residuals.png"),
        "loss_plot": figures.save_figure(losses, out / "loss.png"),
    }
    expected = {"stateful": True, "stateless": config.expect_stateless_converges}
    models = {}
    for outcome in result.outcomes:
        models[outcome.name] = {
            "test_mse": outcome.test_mse,
            "test_mse_layout": outcome.test_mse_layout,
            "ratio_to_mean": outcome.ratio,
            "converged": outcome.converged,
            "expected_to_converge": expected[outcome.name],
            "agrees_with_script": outcome.converged == expected[outcome.name],
            "updates": outcome.updates,
            "seconds": outcome.seconds,
            "loss": list(outcome.history.loss),
            "val_loss": list(outcome.history.val_loss or ()),
        }
    summary = {
        "config": config,
        "baselines": result.baselines,
        "threshold_mse": config.threshold * result.baselines.mean,
        **models,
        "layout": {
            "name": config.layout,
            "train": str(result.train_trim),
            "validation": str(result.test_trim),
            "scored": str(result.score_trim),
            "trimmed": {
                "train": result.train_trim.trimmed,
                "validation": result.test_trim.trimmed,
                "scored": result.score_trim.trimmed,
            },
        },
    }
    paths["summary"] = write_json(out / "summary.json", summary)

    rows = [
        [o.name, o.test_mse, o.ratio, o.converged, expected[o.name],
         "yes" if o.converged == expected[o.name] else "**no**", o.updates, o.seconds]
        for o in result.outcomes
    ]
    rows += [
        ["predict the training mean", result.baselines.mean, 1.0, "", "", "", "", ""],
        ["predict the last input x[t]", result.baselines.last_value,
         result.baselines.last_value / result.baselines.mean, "", "", "", "", ""],
        [f"best from the window only (sum of newest {min(config.lahead, config.tsteps)} / "
         f"{config.tsteps})", result.baselines.window_optimum,
         result.baselines.window_optimum / result.baselines.mean, "", "", "", "", ""],
    ]
    claim = (
        "STATELESS LSTM WILL ALSO CONVERGE" if config.expect_stateless_converges
        else "STATELESS LSTM WILL NOT CONVERGE"
    )
    layout_text = (
        f"official (Keras' order: batch k holds samples k*B .. k*B+B-1 with B = "
        f"{config.batch_size}, so the state carried into sample i comes from sample "
        f"i-{config.batch_size})"
        if config.layout == "official"
        else f"streams ({config.batch_size} contiguous streams; row i of batch k+1 continues "
        "row i of batch k). Scored on the test part as one stream from zero state"
    )
    blocks = [
        "# lstm_stateful.py, measured",
        f"Settings: input_len {config.input_len}, tsteps {config.tsteps}, lahead "
        f"{config.lahead}, batch_size {config.batch_size}, epochs {config.epochs}, seed "
        f"{config.seed}, units {config.units}.",
        f"The script prints: **{claim}** (lahead {config.lahead} "
        f"{'>=' if config.expect_stateless_converges else '<'} tsteps {config.tsteps}); it "
        "expects the stateful model to converge in every case.",
        f"A model has converged when its test MSE is at most {config.threshold:g} x the MSE of "
        "predicting the training mean, here "
        f"{format_number(config.threshold * result.baselines.mean)}.",
        "## Test MSE",
        table(
            ["predictor", "test MSE", "/ mean predictor", "converged", "script expects",
             "agrees", "updates", "train s"],
            rows,
        ),
        "## Verdicts",
        "\n".join(
            f"- **{o.name}**: {'converged' if o.converged else 'did not converge'} "
            f"(test MSE {format_number(o.test_mse)} = {o.ratio:.3f} x mean predictor); the "
            f"script expects it {'to converge' if expected[o.name] else 'not to converge'}: "
            f"{'agrees' if o.converged == expected[o.name] else '**disagrees**'}."
            for o in result.outcomes
        ),
        "## Layout and data",
        f"- layout: {layout_text}\n"
        f"- training batches: {result.train_trim}\n"
        f"- validation batches: {result.test_trim}\n"
        f"- scored predictions: {result.score_trim}\n"
        f"- parameter updates: stateful {result.stateful.updates}, stateless "
        f"{result.stateless.updates}",
    ]
    if result.stateful.test_mse_layout is not None:
        blocks.append(
            f"Scored in the training layout instead ({config.batch_size} test streams, each "
            f"starting from zero state), the stateful test MSE would be "
            f"{format_number(result.stateful.test_mse_layout)} (stateless "
            f"{format_number(result.stateless.test_mse_layout)}): every test stream's first "
            "samples are predicted without their past."
        )
    blocks += [
        "## Plots",
        image("Input and expected output", paths["input_plot"], out),
        image("Expected, and expected minus predicted for both models", paths["residual_plot"],
              out),
        image("Loss per epoch", paths["loss_plot"], out),
    ]
    paths["report"] = write_markdown(out / "report.md", blocks)
    return paths


def _reading_notes(config) -> str:
    """The memoryless floor of the grid's cells below the diagonal, from its own numbers."""
    window = (
        "The script's rolling window puts x[t] in column 0 (column i is shifted by i), so the "
        "LSTM reads every window newest first."
    )
    floors = [(t - la) / t for t in config.tsteps for la in config.lahead if la < t]
    if not floors:
        return f"Reading notes: no cell of this grid has lahead < tsteps. {window}"
    floor = min(floors)
    if floor > config.threshold:
        verdict = (
            f"above the threshold of {config.threshold:g}), so a stateless cell below the "
            "diagonal cannot converge"
        )
    else:
        verdict = (
            f"not above the threshold of {config.threshold:g}), so a stateless cell below the "
            "diagonal can converge only where (tsteps - lahead) / tsteps <= "
            f"{config.threshold:g}"
        )
    return (
        "Reading notes: without memory the best possible ratio is (tsteps - lahead) / tsteps "
        f"for lahead < tsteps (at least {format_number(floor)} in this grid, {verdict}. "
        f"{window}"
    )


def write_convergence_report(result, out: Path) -> dict[str, Path]:
    """Write the ``convergence`` grid: heat maps, ``grid.csv``, ``summary.json``, ``report.md``.

    Args:
        result: a ``ConvergenceResult``.
        out: the run folder (exists).

    Returns:
        Paths by name: ``"grid"``, ``"summary"``, ``"report"`` and one
        ``"<mode>_fraction"`` and ``"<mode>_ratio"`` heat map per mode.
    """
    # matplotlib only when a report is written: the command line starts faster
    from lstmlab.report import figures

    out = Path(out)
    config = result.config
    paths: dict[str, Path] = {}
    frame = pd.DataFrame([dataclasses.asdict(row) for row in result.rows])
    paths["grid"] = out / "grid.csv"
    frame.to_csv(paths["grid"], index=False, float_format="%.6g")

    axes = dict(rows=config.tsteps, columns=config.lahead, row_label="tsteps (moving-average "
                "window)", column_label="lahead (input window)")
    blocks = [
        "# Convergence grid: lstm_stateful.py's claim, measured",
        "Claim: *the stateless model converges only when lahead >= tsteps; the stateful model "
        "converges everywhere.*",
        f"Settings: tsteps {list(config.tsteps)}, lahead {list(config.lahead)}, seeds "
        f"{list(config.seed_values)} (data and initialisation), input_len {config.input_len}, "
        f"batch_size {config.batch_size}, epochs {config.epochs}, layout {config.layout}, units "
        f"{config.units}. Converged: test MSE <= {config.threshold:g} x the MSE of predicting "
        f"the training mean. {len(result.rows)} trainings in {result.seconds:.1f} s.",
        "A cell agrees with the claim when every seed did what the claim says; red outlines in "
        "the heat maps mark the cells that do not.",
        _reading_notes(config),
    ]
    summary: dict[str, Any] = {"config": config, "seconds": result.seconds, "modes": {}}
    for mode in MODES:
        cells = result.cells(mode)
        disagree = ~np.asarray([c.agrees for c in cells]).reshape(
            len(config.tsteps), len(config.lahead))
        fraction = figures.plot_heatmap(
            result.matrix(mode, "fraction"),
            title=f"{mode.capitalize()}: fraction of {config.seeds} seeds that converged",
            colorbar_label="fraction converged", fmt="{:.2f}", vmin=0.0, vmax=1.0,
            cmap="RdYlGn", outlined=disagree, **axes,
        )
        ratio = figures.plot_heatmap(
            np.maximum(result.matrix(mode, "median_ratio"), 1e-6),
            title=f"{mode.capitalize()}: median test MSE / mean-predictor MSE",
            colorbar_label="median ratio (log scale)", fmt="{:.1e}", log=True, vmin=1e-6,
            vmax=1.0, cmap="viridis_r", outlined=disagree, **axes,
        )
        paths[f"{mode}_fraction"] = figures.save_figure(fraction, out / f"{mode}_fraction.png")
        paths[f"{mode}_ratio"] = figures.save_figure(ratio, out / f"{mode}_ratio.png")
        agreeing = sum(c.agrees for c in cells)
        summary["modes"][mode] = {
            "cells": len(cells),
            "agreeing_cells": agreeing,
            "cells_detail": cells,
        }
        rows = [
            [c.tsteps, c.lahead, "converges" if c.claimed else "does not converge", c.verdict,
             f"{round(c.fraction * config.seeds)}/{config.seeds}", c.median_ratio,
             "yes" if c.agrees else "**no**"]
            for c in cells
        ]
        blocks += [
            f"## {mode.capitalize()} model: {agreeing} of {len(cells)} cells agree",
            image(f"{mode} fraction converged", paths[f"{mode}_fraction"], out),
            image(f"{mode} median ratio", paths[f"{mode}_ratio"], out),
            table(["tsteps", "lahead", "claim", "measured", "seeds converged",
                   "median MSE / mean MSE", "agrees"], rows, align="rrllrrl"),
        ]
    paths["summary"] = write_json(out / "summary.json", summary)
    paths["report"] = write_markdown(out / "report.md", blocks)
    return paths


# --------------------------------------------------------------------------- compare

COMPARE_METRICS = ("rmse", "mae", "mape")


def write_compare_metrics_csv(result: CompareResult, path: Path) -> Path:
    """One row per model, seed and step (``all`` for the whole horizon).

    Columns: ``model, seed, step, rmse, mae, mape`` (MAPE in percent over the non-zero
    actual values; a baseline has the single seed ``-``).

    Args:
        result: the comparison.
        path: the CSV to write.

    Returns:
        ``path``.
    """
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "seed", "step", "rmse", "mae", "mape"])
        for outcome in result.outcomes:
            seeds = _seed_labels(result, outcome)
            for row, seed in enumerate(seeds):
                writer.writerow(
                    [outcome.name, seed, "all"]
                    + [repr(float(outcome.metrics[m][row])) for m in COMPARE_METRICS]
                )
                if result.config.horizon > 1:
                    for step in range(result.config.horizon):
                        writer.writerow(
                            [outcome.name, seed, step + 1]
                            + [
                                repr(float(outcome.metrics[f"{m}_per_step"][row, step]))
                                for m in COMPARE_METRICS
                            ]
                        )
    return path


def _seed_labels(result: CompareResult, outcome: ModelOutcome) -> list[str]:
    if outcome.is_baseline:
        return ["-"]
    return [str(result.config.seed + i) for i in range(result.config.seeds)]


def compare_summary(result: CompareResult) -> dict[str, Any]:
    """The JSON summary: config, split, per-model means and standard deviations, best model.

    Args:
        result: the comparison.

    Returns:
        A JSON-ready dict.
    """
    persistence = result.outcome("persistence").mean("rmse")
    models = {}
    for outcome in result.outcomes:
        entry: dict[str, Any] = {"label": outcome.label, "description": outcome.description}
        for metric in COMPARE_METRICS:
            entry[f"{metric}_mean"] = outcome.mean(metric)
            entry[f"{metric}_std"] = outcome.std(metric)
            entry[metric] = outcome.metrics[metric]
        entry["rmse_per_step_mean"] = outcome.metrics["rmse_per_step"].mean(axis=0)
        entry["rmse_vs_persistence"] = outcome.mean("rmse") / persistence - 1.0
        entry["seconds"] = outcome.seconds
        if not outcome.is_baseline:
            entry["layout"] = outcome.layout
            entry["final_training_loss"] = outcome.final_loss
        models[outcome.name] = entry
    origin_times = result.origin_times
    return {
        "config": result.config,
        "series": list(result.series_names),
        "features": list(result.feature_names),
        "steps": int(len(result.targets)),
        "n_train": result.n_train,
        "n_test": result.n_test,
        "origins": int(len(result.origins)),
        "first_origin": str(origin_times[0])
        if origin_times is not None
        else int(result.origins[0]),
        "best": result.best().name,
        "models": models,
        "anchors": [
            {
                "model": anchor.model,
                "description": anchor.description,
                "published_rmse": [anchor.rmse_low, anchor.rmse_high],
                "ours_rmse_mean": (
                    result.outcome(anchor.model).mean("rmse")
                    if anchor.model in _names(result)
                    else None
                ),
            }
            for anchor in result.anchors
        ],
        "notes": list(result.notes),
        "seconds": result.seconds,
    }


def _names(result: CompareResult) -> list[str]:
    return [outcome.name for outcome in result.outcomes]


def _percent(value: float) -> str:
    return f"{100 * value:+.1f}%"


def _compare_report_blocks(result: CompareResult, files: dict[str, Path], out: Path) -> list[str]:
    config = result.config
    best = result.best()
    persistence = result.outcome("persistence")
    title = f"# lstmlab compare: {config.preset}" if config.preset else "# lstmlab compare"
    span = ""
    if result.index is not None:
        span = f", {result.index[0]} to {result.index[-1]}"
    names = ", ".join(result.series_names)
    blocks = [
        title,
        f"Series: {names} ({len(result.targets)} steps{span}"
        + (f"; extra inputs: {', '.join(result.feature_names)}" if result.feature_names else "")
        + f"). Training part: the first {result.n_train} steps; test part: the last "
        f"{result.n_test}. {len(result.origins)} forecasts of {config.horizon} step(s) "
        f"ahead; {config.seeds} seed(s) per neural model.",
        f"**Best model: {best.label}** (`{best.name}`), test RMSE "
        f"{format_number(best.mean('rmse'))} ± {format_number(best.std('rmse'))}, "
        f"{_percent(result.relative_to_persistence(best.name))} against persistence "
        f"(RMSE {format_number(persistence.mean('rmse'))}).",
        "## Test metrics (original units; mean ± std over seeds)",
        table(
            ["model", "RMSE", "MAE", "MAPE %", "RMSE vs persistence", "seconds"],
            [
                [
                    f"{o.label} (`{o.name}`)",
                    f"{format_number(o.mean('rmse'))} ± {format_number(o.std('rmse'))}",
                    f"{format_number(o.mean('mae'))} ± {format_number(o.std('mae'))}",
                    f"{format_number(o.mean('mape'))} ± {format_number(o.std('mape'))}",
                    _percent(result.relative_to_persistence(o.name)),
                    o.seconds,
                ]
                for o in result.outcomes
            ],
        ),
    ]
    if result.anchors:
        rows = []
        for anchor in result.anchors:
            if anchor.model is not None and anchor.model not in _names(result):
                rows.append([anchor.description, anchor.text(), f"`{anchor.model}` not run"])
                continue
            ours = (
                f"{format_number(result.outcome(anchor.model).mean('rmse'))} ± "
                f"{format_number(result.outcome(anchor.model).std('rmse'))} (`{anchor.model}`)"
                if anchor.model
                else "best of ours: "
                + ", ".join(
                    f"`{o.name}` {format_number(o.mean('rmse'))}"
                    for o in sorted(
                        (o for o in result.outcomes if not o.is_baseline),
                        key=lambda o: o.mean("rmse"),
                    )[:2]
                )
            )
            rows.append([anchor.description, anchor.text(), ours])
        blocks += [
            "## Beside the published figures (single runs)",
            table(["published model", "published test RMSE", "ours (mean ± std)"], rows),
        ]
    if config.horizon > 1:
        headers = ["model"] + [f"t+{k + 1}" for k in range(config.horizon)]
        blocks += [
            "## Test RMSE per step ahead (mean over seeds)",
            table(
                headers,
                [
                    [o.name, *o.metrics["rmse_per_step"].mean(axis=0).tolist()]
                    for o in result.outcomes
                ],
            ),
        ]
    blocks.append("## Models, layouts and batch sizes")
    lines = []
    for o in result.outcomes:
        line = f"- `{o.name}`: {o.description}"
        if o.layout:
            line += f". Layout: {o.layout}"
        lines.append(line)
    blocks.append("\n".join(lines))
    blocks += ["## Protocol", "\n".join(f"- {note}" for note in result.notes)]
    if result.load_lines:
        blocks += ["## Data loading", "```\n" + "\n".join(result.load_lines) + "\n```"]
    blocks += [
        "## Figures",
        image("forecasts", files["forecast_plot"], relative_to=out),
        image("RMSE per model", files["rmse_plot"], relative_to=out),
    ]
    if "rmse_per_step_plot" in files:
        blocks.append(image("RMSE per step ahead", files["rmse_per_step_plot"], relative_to=out))
    return blocks


def write_compare_report(result: CompareResult, out: Path) -> dict[str, Path]:
    """Write every file of a comparison into ``out``.

    Args:
        result: the comparison.
        out: an existing folder.

    Returns:
        ``{"forecast_plot", "rmse_plot", ["rmse_per_step_plot",] "metrics", "summary",
        "report"}`` -> paths.
    """
    # matplotlib only when a report is written: the command line starts faster
    from lstmlab.report import figures

    out = Path(out)
    save = figures.save_figure
    files = {
        "forecast_plot": save(figures.plot_compare_forecasts(result), out / "forecasts.png"),
        "rmse_plot": save(figures.plot_compare_rmse(result), out / "rmse.png"),
    }
    if result.config.horizon > 1:
        files["rmse_per_step_plot"] = save(
            figures.plot_compare_rmse_per_step(result), out / "rmse_per_step.png"
        )
    files["metrics"] = write_compare_metrics_csv(result, out / "metrics.csv")
    files["summary"] = write_json(out / "summary.json", compare_summary(result))
    files["report"] = write_markdown(
        out / "report.md", _compare_report_blocks(result, files, out)
    )
    return files
