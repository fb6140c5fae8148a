"""Every report writer: Markdown, JSON and CSV files, with the figures of ``report.figures``.

Sections: generic pieces (numbers, Markdown tables, image links, strict JSON); then one writer
per experiment, ``write_moving_average_report``, ``write_convergence_report`` and
``write_compare_report``, each taking the experiment's result object and an existing folder
and returning the paths it wrote. Reports render on GitHub: image links are relative to the
report.

The result classes are imported for type checking only, so that writing one experiment's
report does not load another's modules (``moving-average`` never imports the comparison's).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmlab import scoring
from lstmlab.experiments.settings import ENSEMBLE_SUFFIX, MODES

if TYPE_CHECKING:
    from lstmlab.experiments.compare import CompareResult, ModelOutcome

__all__ = [
    "COMPARE_METRICS",
    "best_validated_sentence",
    "versus_baseline_sentence",
    "compare_summary",
    "format_number",
    "image",
    "json_ready",
    "summary_lines",
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
        raise ValueError(f"align must give one of l/r/c per column ({len(headers)}), got {align!r}")
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
    out = Path(out)
    config = result.config
    paths = _moving_average_figures(result, out)
    expected = {"stateful": True, "stateless": config.expect_stateless_converges}
    paths["summary"] = write_json(out / "summary.json", _moving_average_summary(result, expected))
    blocks = _moving_average_blocks(result, expected, paths, out)
    paths["report"] = write_markdown(out / "report.md", blocks)
    return paths


def _moving_average_figures(result, out: Path) -> dict[str, Path]:
    """The input, residual and loss plots of a ``moving-average`` run, saved in ``out``."""
    # matplotlib only when a report is written: the command line starts faster
    from lstmlab.report import figures

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
    return paths


def _moving_average_summary(result, expected: dict[str, bool]) -> dict[str, Any]:
    """``summary.json`` of a ``moving-average`` run."""
    config = result.config
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
    return summary


def _moving_average_rows(result, expected: dict[str, bool]) -> list[list[Any]]:
    """The test-MSE table of a ``moving-average`` run: both models, then three predictors."""
    config = result.config
    rows = [
        [
            o.name,
            o.test_mse,
            o.ratio,
            o.converged,
            expected[o.name],
            "yes" if o.converged == expected[o.name] else "**no**",
            o.updates,
            o.seconds,
        ]
        for o in result.outcomes
    ]
    rows += [
        ["predict the training mean", result.baselines.mean, 1.0, "", "", "", "", ""],
        [
            "predict the last input x[t]",
            result.baselines.last_value,
            result.baselines.last_value / result.baselines.mean,
            "",
            "",
            "",
            "",
            "",
        ],
        [
            f"best from the window only (sum of newest {min(config.lahead, config.tsteps)} / "
            f"{config.tsteps})",
            result.baselines.window_optimum,
            result.baselines.window_optimum / result.baselines.mean,
            "",
            "",
            "",
            "",
            "",
        ],
    ]
    return rows


def _moving_average_blocks(
    result, expected: dict[str, bool], paths: dict[str, Path], out: Path
) -> list[str]:
    """``report.md`` of a ``moving-average`` run, block by block."""
    config = result.config
    rows = _moving_average_rows(result, expected)
    claim = (
        "STATELESS LSTM WILL ALSO CONVERGE"
        if config.expect_stateless_converges
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
            [
                "predictor",
                "test MSE",
                "/ mean predictor",
                "converged",
                "script expects",
                "agrees",
                "updates",
                "train s",
            ],
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
        image(
            "Expected, and expected minus predicted for both models", paths["residual_plot"], out
        ),
        image("Loss per epoch", paths["loss_plot"], out),
    ]
    return blocks


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

    axes = dict(
        rows=config.tsteps,
        columns=config.lahead,
        row_label="tsteps (moving-average window)",
        column_label="lahead (input window)",
    )
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
            len(config.tsteps), len(config.lahead)
        )
        fraction = figures.plot_heatmap(
            result.matrix(mode, "fraction"),
            title=f"{mode.capitalize()}: fraction of {config.seeds} seeds that converged",
            colorbar_label="fraction converged",
            fmt="{:.2f}",
            vmin=0.0,
            vmax=1.0,
            cmap="RdYlGn",
            outlined=disagree,
            **axes,
        )
        ratio = figures.plot_heatmap(
            np.maximum(result.matrix(mode, "median_ratio"), 1e-6),
            title=f"{mode.capitalize()}: median test MSE / mean-predictor MSE",
            colorbar_label="median ratio (log scale)",
            fmt="{:.1e}",
            log=True,
            vmin=1e-6,
            vmax=1.0,
            cmap="viridis_r",
            outlined=disagree,
            **axes,
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
            [
                c.tsteps,
                c.lahead,
                "converges" if c.claimed else "does not converge",
                c.verdict,
                f"{round(c.fraction * config.seeds)}/{config.seeds}",
                c.median_ratio,
                "yes" if c.agrees else "**no**",
            ]
            for c in cells
        ]
        blocks += [
            f"## {mode.capitalize()} model: {agreeing} of {len(cells)} cells agree",
            image(f"{mode} fraction converged", paths[f"{mode}_fraction"], out),
            image(f"{mode} median ratio", paths[f"{mode}_ratio"], out),
            table(
                [
                    "tsteps",
                    "lahead",
                    "claim",
                    "measured",
                    "seeds converged",
                    "median MSE / mean MSE",
                    "agrees",
                ],
                rows,
                align="rrllrrl",
            ),
        ]
    paths["summary"] = write_json(out / "summary.json", summary)
    paths["report"] = write_markdown(out / "report.md", blocks)
    return paths


# --------------------------------------------------------------------------- compare

COMPARE_METRICS = ("rmse", "mae", "mase", "mape")
"""The point metrics of every compare model, in the order of ``metrics.csv``."""

_DASH = "—"  # a number that is not there: no interval, no kept seed, a non-finite score


def _number(value: Any) -> str:
    """``format_number`` for a finite number, ``—`` for NaN, inf or None."""
    if value is None or not math.isfinite(float(value)):
        return _DASH
    return format_number(value)


def _percent(value: float) -> str:
    """``+12.3%``, or ``—`` when ``value`` is not finite."""
    return f"{100 * value:+.1f}%" if math.isfinite(value) else _DASH


def _relative(value: float, reference: float) -> float:
    """``value / reference - 1``; NaN when either is not finite or ``reference`` is 0."""
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return float("nan")
    return value / reference - 1.0


def _mean_std(outcome: ModelOutcome, metric: str) -> str:
    """``mean ± std`` over the kept samples (just the mean for one sample; ``—`` for none)."""
    mean = outcome.mean(metric)
    if not math.isfinite(mean):
        return _DASH
    if outcome.kind != "neural" or outcome.scores(metric).size < 2:
        return format_number(mean)
    return f"{format_number(mean)} ± {_number(outcome.std(metric))}"


def _flag_count(outcome: ModelOutcome) -> tuple[int, int]:
    """``(flagged seeds, seeds)`` of a neural model; ``(0, samples)`` otherwise."""
    if outcome.flags is None:
        return 0, len(outcome.forecasts)
    return int(np.count_nonzero(outcome.flags.flagged)), int(outcome.flags.flagged.size)


def _worst(outcome: ModelOutcome, metric: str = "rmse") -> str:
    """The worst seed's score; ``flagged`` (with the worst kept one) when a flagged seed is it."""
    if outcome.kind != "neural":
        return _number(outcome.mean(metric))
    values = np.asarray(outcome.metrics[metric], dtype=np.float64)
    ranked = np.where(np.isfinite(values), values, np.inf)
    worst = int(np.argmax(ranked))
    if outcome.kept[worst]:
        return _number(values[worst])
    kept = outcome.scores(metric)
    kept = kept[np.isfinite(kept)]
    return "flagged" + (f" (worst kept {format_number(kept.max())})" if kept.size else "")


def _interval(result: CompareResult, outcome: ModelOutcome) -> tuple[float, float]:
    """``(coverage, mean width)`` of the model's prediction interval on the test part."""
    if outcome.lower is None or outcome.upper is None or not math.isfinite(outcome.mean("rmse")):
        # no interval, or no forecast to put one around (every seed flagged)
        return float("nan"), float("nan")
    width = scoring.mean_interval_width(outcome.lower[0], outcome.upper[0], result.actual)
    return float(outcome.coverage), width


def _coverage_text(result: CompareResult, outcome: ModelOutcome) -> str:
    coverage, width = _interval(result, outcome)
    if not math.isfinite(coverage):
        return _DASH
    text = f"{coverage:.0%}"
    return text + (f" (width {format_number(width)})" if math.isfinite(width) else "")


def _seed_labels(result: CompareResult, outcome: ModelOutcome) -> list[str]:
    """One label per sample: the seeds of a neural model, ``-`` for a baseline or ensemble."""
    if outcome.kind != "neural":
        return ["-"] * len(outcome.forecasts)
    return [str(result.config.seed + i) for i in range(len(outcome.forecasts))]


def _csv_number(value: Any) -> str:
    return repr(float(value))


def write_compare_metrics_csv(result: CompareResult, path: Path) -> Path:
    """One row per model, sample and step (``all`` for the whole horizon).

    Columns: ``model, kind, seed, step, rmse, mae, mase, mape, coverage, flagged``. A neural
    model has one row per seed (labelled ``config.seed + i``; ``flagged`` says whether the
    seed failed the sanity check and was left out of the means and the seed median); a
    baseline or a seed median has the single seed ``-``. ``coverage`` is the share of the
    actual values inside the prediction interval (empty without one); MAPE is in percent over
    the non-zero actual values. Non-finite scores are written as ``inf``/``nan``.

    Args:
        result: the comparison.
        path: the CSV to write.

    Returns:
        ``path``.
    """
    path = Path(path)
    horizon = result.config.horizon
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "kind", "seed", "step", *COMPARE_METRICS, "coverage", "flagged"])
        for outcome in result.outcomes:
            coverage, per_step = "", [""] * horizon
            if outcome.lower is not None and outcome.upper is not None:
                coverage = _csv_number(outcome.coverage)
                per_step = [
                    _csv_number(value)
                    for value in scoring.interval_coverage_per_step(
                        outcome.lower[0], outcome.upper[0], result.actual
                    )
                ]
            for row, seed in enumerate(_seed_labels(result, outcome)):
                flagged = "" if outcome.kind != "neural" else ("no", "yes")[not outcome.kept[row]]
                head = [outcome.name, outcome.kind, seed]
                writer.writerow(
                    [*head, "all"]
                    + [_csv_number(outcome.metrics[m][row]) for m in COMPARE_METRICS]
                    + [coverage, flagged]
                )
                if horizon > 1:
                    for step in range(horizon):
                        writer.writerow(
                            [*head, step + 1]
                            + [
                                _csv_number(outcome.metrics[f"{m}_per_step"][row, step])
                                for m in COMPARE_METRICS
                            ]
                            + [per_step[step], flagged]
                        )
    return path


def _best_validated(result: CompareResult) -> ModelOutcome | None:
    """The seed median of the best-validated neural model (the model itself if it has none)."""
    if result.best_validated is None:
        return None
    names = _names(result)
    for name in (result.best_validated + "_median", result.best_validated):
        if name in names:
            return result.outcome(name)
    return None


def _short_label(outcome: ModelOutcome) -> str:
    """``AutoETS`` for ``AutoETS (statsforecast)``."""
    return outcome.label.split(" (")[0]


FEW_VALIDATION_FORECASTS = 10


def _few_forecasts(count: int, what: str) -> str:
    """A warning when ``what`` rests on fewer than ``FEW_VALIDATION_FORECASTS`` forecasts."""
    if not 0 < count < FEW_VALIDATION_FORECASTS:
        return ""
    forecasts = "forecast" if count == 1 else "forecasts"
    return f"; {what} rests on {count} validation {forecasts} only, too few to be sure of it"


def best_validated_sentence(result: CompareResult) -> str:
    """How lstmlab's best-validated neural model did against the best statistical baseline.

    Args:
        result: the comparison.

    Returns:
        One sentence, e.g. ``"lstmlab's best-validated model, stateful_median, scored test
        RMSE 47.6 against AutoETS's 25.5 (+86.4%): it loses to the best statistical
        baseline."``; ``""`` without a neural model or a baseline.
    """
    model, baseline = _best_validated(result), result.best_statistical()
    if model is None:
        if any(o.kind == "neural" for o in result.outcomes):
            return (
                "No neural model was validated (no validation tail), so none is lstmlab's "
                "best-validated model."
            )
        return ""
    if baseline is None:
        return ""
    return versus_baseline_sentence(
        model,
        baseline,
        f"lstmlab's best-validated model, {model.name},",
        actual=result.actual,
        horizon=result.config.horizon,
        caveat=_few_forecasts(model.validation_origins, "its choice among the neural models"),
    )


def versus_baseline_sentence(
    model: ModelOutcome,
    baseline: ModelOutcome,
    head: str,
    *,
    actual: np.ndarray,
    horizon: int,
    caveat: str = "",
) -> str:
    """A neural model's test RMSE against the best statistical baseline's, in one sentence.

    The one verdict of a model against the baseline, in the report and on the command line.
    The model beats (or loses to) the baseline only when the gap holds across the test
    origins: a Diebold-Mariano test of the two forecasts' squared errors per origin
    (``scoring.diebold_mariano``, p below ``scoring.SIGNIFICANCE``); otherwise it is ahead of
    (or behind) it, not significantly, as the ranking's verdict would say.

    Args:
        model: the neural model (its seed median).
        baseline: ``CompareResult.best_statistical()``.
        head: how the sentence names the model, e.g. ``"lstmlab's best-validated model,
            mlp_median,"``.
        actual: ``(origins, horizon, series)`` the observed values (``CompareResult.actual``).
        horizon: steps ahead of each forecast (the test's lag window).
        caveat: appended before the full stop (``_few_forecasts``).

    Returns:
        The sentence, ending with a full stop.
    """
    ours, theirs = model.mean("rmse"), baseline.mean("rmse")
    if not math.isfinite(ours):
        return (
            f"{head} has no test RMSE: every seed was flagged (see Flagged forecasts); "
            f"{_short_label(baseline)} scored {format_number(theirs)}."
        )
    relative = _relative(ours, theirs)
    if ours == theirs:
        outcome = "it ties with the best statistical baseline"
    else:
        test = scoring.diebold_mariano(
            scoring.origin_losses(model.mean_forecast(), actual),
            scoring.origin_losses(baseline.mean_forecast(), actual),
            horizon,
        )
        origins = f"the {test.origins} test origins"
        if not math.isfinite(test.p_value):
            clear, across = False, f", too few ({test.origins}) test origins to test the gap"
        else:
            # significant, and the same way as the scores (negative: the model's losses lower)
            clear = test.p_value < scoring.SIGNIFICANCE and (test.statistic < 0) == (ours < theirs)
            across = (
                f", {'significantly' if clear else 'but not significantly'} across {origins} "
                f"(Diebold-Mariano p = {scoring.format_p(test.p_value)})"
            )
        if ours < theirs:
            verb = "it beats" if clear else "it is ahead of"
        else:
            verb = "it loses to" if clear else "it is behind"
        outcome = f"{verb} the best statistical baseline{across}"
    return (
        f"{head} scored test RMSE {format_number(ours)} against {_short_label(baseline)}'s "
        f"{format_number(theirs)} ({_percent(relative)}): {outcome}" + caveat + "."
    )


def _state_sentence(result: CompareResult) -> str:
    """The stateful-against-stateless test in words ("" when one of them did not run)."""
    test = result.state_test
    if test is None:
        return ""
    empty = [name for name, n in (("stateful", test.n_a), ("stateless", test.n_b)) if n == 0]
    if empty:
        return (
            f"no test: {' and '.join(empty)} kept no seed with a finite score (see Flagged "
            "forecasts)"
        )
    sentence = test.sentence("stateful", "stateless")
    if len(result.folds) > 1:
        # The backtest tests the folds' RMSE (each the mean over kept seeds), not the seeds.
        sentence = sentence.replace(" seeds", " folds")
    return sentence


def _metric_entry(outcome: ModelOutcome, metric: str) -> dict[str, Any]:
    return {
        f"{metric}_mean": outcome.mean(metric),
        f"{metric}_std": outcome.std(metric),
        f"{metric}_median": outcome.median(metric),
        f"{metric}_worst": outcome.worst(metric),
        metric: outcome.metrics[metric],
    }


def _kept_mean(outcome: ModelOutcome, key: str) -> np.ndarray:
    """``(horizon,)`` or ``(folds,)``: the mean of ``metrics[key]`` over the kept samples."""
    values = outcome.fold_rmse if key == "fold_rmse" else outcome.metrics[key]
    kept = values[outcome.kept]
    if len(kept) == 0:
        return np.full(values.shape[1], np.nan)
    return kept.mean(axis=0)


def _anchor_samples(result: CompareResult, name: str) -> tuple[np.ndarray, int]:
    """The kept samples' RMSE of ``name`` and how many of its seeds were flagged."""
    outcome = result.outcome(name)
    return outcome.scores("rmse"), _flag_count(outcome)[0]


def summary_lines(result: CompareResult) -> list[str]:
    """The lines ``lstmlab compare`` prints last, before the files it wrote.

    How many models ran and how long; the verdict sentence (the best model, and those that
    tie with it within the seed noise or the spread over folds); the seed median of the
    best-validated neural model against the best statistical baseline (the lowest test RMSE
    of the baselines other than persistence; persistence when it ran alone), or of every
    neural model when no validation tail picks one; and the Mann-Whitney test of the
    stateful LSTM against the stateless one over seeds, when both ran.

    Args:
        result: what ``compare.run`` returned.

    Returns:
        The lines, without line ends.
    """
    lines = [f"compared {len(result.outcomes)} models in {result.seconds:.1f} s"]
    if result.verdict is not None:
        lines.append(result.verdict.sentence)
    base = result.best_statistical()
    neural = [o.name for o in result.outcomes if o.kind == "neural"]
    if base is not None and neural:
        if result.best_validated is not None:
            lines.append(best_validated_sentence(result))  # the report's sentence
        else:
            lines.extend(
                versus_baseline_sentence(
                    result.outcome(name + ENSEMBLE_SUFFIX),
                    base,
                    f"The seed median of {name} (no validation tail picks the best),",
                    actual=result.actual,
                    horizon=result.config.horizon,
                )
                for name in neural
            )
    if result.state_test is not None:
        lines.append(result.state_test.sentence("stateful", "stateless"))
    return lines


def compare_summary(result: CompareResult) -> dict[str, Any]:
    """The JSON summary of a comparison.

    Keys: ``config``, ``series``, ``features``, ``steps``, ``n_train``, ``n_test``,
    ``origins``, ``first_origin``, ``level``; ``best`` (the verdict's best model: the lowest
    mean RMSE over kept samples) and ``verdict`` (``best``, ``ties``, ``ranking``,
    ``sentence``); ``best_validated`` (the neural model name) and ``best_validated_vs_baseline``
    (``model``, ``baseline``, ``rmse``, ``baseline_rmse``, ``relative``, ``sentence``);
    ``state_test`` (``p_value``, ``statistic``, ``median_stateful``, ``median_stateless``,
    ``n_stateful``, ``n_stateless``, ``sentence``, or None); ``seasons`` (``lengths``,
    ``source``, ``notes``); ``folds`` (one dict per fold); ``models`` (per model: ``label``,
    ``kind``, ``description``, ``<metric>_mean``/``_std``/``_median``/``_worst`` and the
    per-sample ``<metric>`` for RMSE, MAE, MASE and MAPE, ``rmse_per_step_mean``,
    ``mase_per_step_mean``, ``fold_rmse_mean``, ``rmse_vs_persistence``, ``coverage``,
    ``interval_width``, ``flags``, ``norm``, ``norm_scores``, ``validation_rmse``,
    ``epochs_run``, ``best_epoch``, ``seconds``, and ``layout``/``final_training_loss`` for a
    neural model); ``anchors``; ``notes``; ``seconds``. Means, medians and standard deviations
    are over the kept (unflagged) samples; ``worst`` includes flagged seeds (null when
    non-finite); JSON has no NaN, so a missing number is null.

    Args:
        result: the comparison.

    Returns:
        A JSON-ready dict (``write_json`` makes it strict JSON).
    """
    persistence = result.outcome("persistence").mean("rmse")
    models = {o.name: _model_summary(result, o, persistence) for o in result.outcomes}
    origin_times = result.origin_times
    verdict = result.verdict
    model, baseline = _best_validated(result), result.best_statistical()
    versus = None
    if model is not None and baseline is not None:
        versus = {
            "model": model.name,
            "baseline": baseline.name,
            "rmse": model.mean("rmse"),
            "baseline_rmse": baseline.mean("rmse"),
            "relative": _relative(model.mean("rmse"), baseline.mean("rmse")),
            "sentence": best_validated_sentence(result),
        }
    test = result.state_test
    anchors = _anchor_summaries(result)
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
        "level": result.config.level,
        "best": verdict.best if verdict is not None else result.best().name,
        "verdict": None
        if verdict is None
        else {
            "best": verdict.best,
            "ties": list(verdict.ties),
            "ranking": list(verdict.ranking),
            "sentence": verdict.sentence,
        },
        "best_validated": result.best_validated,
        "best_validated_vs_baseline": versus,
        "state_test": None
        if test is None
        else {
            "p_value": test.p_value,
            "statistic": test.statistic,
            "median_stateful": test.median_a,
            "median_stateless": test.median_b,
            "n_stateful": test.n_a,
            "n_stateless": test.n_b,
            "sentence": _state_sentence(result),
        },
        "seasons": {
            "lengths": list(result.seasons.lengths),
            "source": result.seasons.source,
            "notes": list(result.seasons.notes),
        },
        "folds": [
            {
                "index": fold.index,
                "n_train": fold.n_train,
                "n_fit": fold.n_fit,
                "end": fold.end,
                "origins": int(len(fold.origins)),
                "validation_origins": int(len(fold.val_origins)),
            }
            for fold in result.folds
        ],
        "models": models,
        "anchors": anchors,
        "notes": list(result.notes),
        "seconds": result.seconds,
    }


def _model_summary(result: CompareResult, outcome: ModelOutcome, persistence: float) -> dict:
    """One model's entry in ``compare_summary``'s ``models``."""
    entry: dict[str, Any] = {
        "label": outcome.label,
        "kind": outcome.kind,
        "description": outcome.description,
    }
    for metric in COMPARE_METRICS:
        entry.update(_metric_entry(outcome, metric))
    entry["rmse_per_step_mean"] = _kept_mean(outcome, "rmse_per_step")
    entry["mase_per_step_mean"] = _kept_mean(outcome, "mase_per_step")
    entry["fold_rmse_mean"] = _kept_mean(outcome, "fold_rmse")
    entry["rmse_vs_persistence"] = _relative(outcome.mean("rmse"), persistence)
    coverage, width = _interval(result, outcome)
    entry["coverage"] = coverage
    entry["interval_width"] = width
    flags = outcome.flags
    entry["flags"] = (
        None
        if flags is None
        else {
            "flagged": int(np.count_nonzero(flags.flagged)),
            "seeds": int(flags.flagged.size),
            "flagged_seeds": np.flatnonzero(flags.flagged),
            "non_finite": flags.non_finite,
            "out_of_range": flags.out_of_range,
            "reasons": list(flags.reasons),
            "note": flags.note,
        }
    )
    entry["norm"] = list(outcome.norm)
    entry["norm_scores"] = dict(outcome.norm_scores)
    entry["validation_rmse"] = outcome.validation_rmse
    entry["epochs_run"] = outcome.epochs_run
    entry["best_epoch"] = outcome.best_epoch
    entry["seconds"] = outcome.seconds
    if outcome.kind == "neural":
        entry["layout"] = outcome.layout
        entry["final_training_loss"] = outcome.final_loss
    return entry


def _anchor_summaries(result: CompareResult) -> list[dict[str, Any]]:
    """The published figures of the preset beside this run's (``compare_summary``'s ``anchors``)."""
    anchors = []
    for anchor in result.anchors:
        entry = {
            "model": anchor.model,
            "description": anchor.description,
            "published_rmse": [anchor.rmse_low, anchor.rmse_high],
            "single_run": anchor.single_run,
            "ours_rmse_mean": None,
            "ours_rmse_min": None,
            "ours_rmse_max": None,
            "ours_samples": 0,
            "ours_flagged": 0,
        }
        if anchor.model in _names(result):
            kept, flagged = _anchor_samples(result, anchor.model)
            entry.update(
                ours_rmse_mean=float(np.mean(kept)) if kept.size else None,
                ours_rmse_min=float(np.min(kept)) if kept.size else None,
                ours_rmse_max=float(np.max(kept)) if kept.size else None,
                ours_samples=int(kept.size),
                ours_flagged=flagged,
            )
        anchors.append(entry)
    return anchors


def _names(result: CompareResult) -> list[str]:
    return [outcome.name for outcome in result.outcomes]


def _metrics_table(result: CompareResult) -> str:
    persistence = result.outcome("persistence").mean("rmse")
    level = f"{result.config.level:.0%}"
    rows = []
    for o in result.outcomes:
        flagged, seeds = _flag_count(o)
        rows.append(
            [
                f"{o.label} (`{o.name}`)",
                o.kind,
                _mean_std(o, "rmse"),
                _number(o.median("rmse")),
                _worst(o),
                _mean_std(o, "mae"),
                _mean_std(o, "mase"),
                _coverage_text(result, o),
                f"{flagged}/{seeds}" if o.kind == "neural" else "-",
                _percent(_relative(o.mean("rmse"), persistence)),
                o.seconds,
            ]
        )
    return table(
        [
            "model",
            "kind",
            "RMSE mean ± std",
            "RMSE median",
            "worst seed",
            "MAE",
            "MASE",
            f"{level} interval coverage",
            "flagged seeds",
            "RMSE vs persistence",
            "seconds",
        ],
        rows,
        align="llrrrrrrrrr",
    )


def _anchor_rows(result: CompareResult) -> list[list[str]]:
    rows = []
    names = _names(result)
    for anchor in result.anchors:
        published = anchor.text()
        runs = "one run" if anchor.single_run else "several runs"
        if anchor.model is not None and anchor.model not in names:
            rows.append(
                [anchor.description, published, runs, f"`{anchor.model}` not run", _DASH, _DASH]
            )
            continue
        if anchor.model is None:
            neural = sorted(
                (
                    o
                    for o in result.outcomes
                    if o.kind != "baseline" and math.isfinite(o.mean("rmse"))
                ),
                key=lambda o: o.mean("rmse"),
            )[:2]
            best = ", ".join(f"`{o.name}` {format_number(o.mean('rmse'))}" for o in neural)
            rows.append(
                [anchor.description, published, runs, "best of ours: " + best, _DASH, _DASH]
            )
            continue
        kept, flagged = _anchor_samples(result, anchor.model)
        if kept.size == 0:
            rows.append(
                [
                    anchor.description,
                    published,
                    runs,
                    f"`{anchor.model}`: every seed flagged",
                    _DASH,
                    _DASH,
                ]
            )
            continue
        low, high = float(np.min(kept)), float(np.max(kept))
        if kept.size > 1:
            spread = f"{format_number(low)}–{format_number(high)} over {kept.size} seeds"
        else:
            spread = format_number(low)
        if flagged:
            spread += f" ({flagged} flagged left out)"
        inside = "yes" if anchor.rmse_low <= high and anchor.rmse_high >= low else "no"
        rows.append(
            [
                anchor.description,
                published,
                runs,
                f"`{anchor.model}`: {spread}",
                format_number(float(np.mean(kept))),
                inside,
            ]
        )
    return rows


def _neural_lines(result: CompareResult) -> list[str]:
    lines = []
    folds = len(result.folds)
    for o in result.outcomes:
        if o.kind == "ensemble":
            continue
        line = f"- `{o.name}`: {o.description}"
        if o.kind == "neural":
            if o.norm:
                if folds > 1:
                    chosen = ", ".join(f"{n} (fold {k + 1})" for k, n in enumerate(o.norm))
                else:
                    chosen = o.norm[0]
                line += f". Input norm: {chosen}"
                if o.norm_scores:
                    scores = ", ".join(
                        f"{name} {_number(score)}" for name, score in o.norm_scores.items()
                    )
                    line += f" (validation RMSE of the candidates, first fold: {scores})"
                    line += _few_forecasts(o.validation_origins, "the choice")
            if len(o.epochs_run):
                line += f". Epochs run: median {format_number(float(np.median(o.epochs_run)))}"
                if o.spec is not None:
                    line += f" of at most {o.spec.epochs}"
                if o.best_epoch is not None and len(o.best_epoch):
                    best = np.asarray(o.best_epoch)
                    improved = best[best >= 0]
                    if improved.size:
                        # best_epoch is 0-based: the report counts epochs from 1
                        line += (
                            "; best epoch (weights kept): median "
                            f"{format_number(float(np.median(improved)) + 1)}"
                        )
                line += " (first fold, over seeds)"
            finite = o.validation_rmse[np.isfinite(o.validation_rmse)]
            if finite.size:
                line += f". Validation RMSE over seeds: median {_number(np.median(finite))}"
                median = f"{o.name}_median"
                if median in _names(result) and result.outcome(median).validation_rmse.size:
                    line += (
                        f"; the seed median's "
                        f"{_number(float(result.outcome(median).validation_rmse[0]))}"
                    )
        if o.layout:
            line += f". Layout: {o.layout}"
        lines.append(line)
    lines += [f"- `{o.name}`: {o.description}" for o in result.outcomes if o.kind == "ensemble"]
    return lines


def _compare_report_blocks(result: CompareResult, files: dict[str, Path], out: Path) -> list[str]:
    """``report.md`` of a comparison: the verdict, the scores, then the protocol and figures."""
    return (
        _compare_headline(result)
        + _compare_score_blocks(result)
        + _compare_protocol_blocks(result, files, out)
    )


def _compare_headline(result: CompareResult) -> list[str]:
    """The title, what was compared, and the verdict."""
    config = result.config
    persistence = result.outcome("persistence")
    title = f"# lstmlab compare: {config.preset}" if config.preset else "# lstmlab compare"
    span = ""
    if result.index is not None:
        span = f", {result.index[0]} to {result.index[-1]}"
    names = ", ".join(result.series_names)
    folds = len(result.folds)
    backtest = (
        f" Rolling-origin backtest: {folds} folds, every model refitted before each."
        if folds > 1
        else ""
    )
    blocks = [
        title,
        f"Series: {names} ({len(result.targets)} steps{span}"
        + (f"; extra inputs: {', '.join(result.feature_names)}" if result.feature_names else "")
        + f"). Training part: the first {result.n_train} steps; test part: the last "
        f"{result.n_test}. {len(result.origins)} forecasts of {config.horizon} step(s) "
        f"ahead; {config.seeds} seed(s) per neural model.{backtest}",
    ]
    verdict = result.verdict
    if verdict is not None:
        ranking = verdict.sentence
    else:
        best = result.best()
        ranking = (
            f"By RMSE, {best.name} has the lowest mean "
            f"({format_number(best.mean('rmse'))}); no test over the noise was run."
        )
    # The headline is the model a user could have picked (on the validation tail), beside
    # the baselines; the ranking on the test part comes after, as hindsight.
    versus = best_validated_sentence(result)
    if versus:
        lines = [f"**Verdict.** {versus}", f"With hindsight, ranked on the test part: {ranking}"]
    else:
        lines = [f"**Verdict.** {ranking}"]
    state = _state_sentence(result)
    if state:
        lines.append(f"Stateful against stateless: {state}.")
    lines.append(f"Persistence scored test RMSE {_number(persistence.mean('rmse'))}.")
    blocks.append("\n\n".join(lines))
    return blocks


def _compare_score_blocks(result: CompareResult) -> list[str]:
    """The test metrics, the flagged forecasts, the published figures, per step and per fold."""
    config = result.config
    folds = len(result.folds)
    blocks: list[str] = []
    blocks += [
        "## Test metrics (original units)",
        "Means, medians and standard deviations are over the seeds that passed the sanity "
        "check (a flagged seed is left out, and counted under flagged seeds); the worst seed "
        "includes flagged ones. A baseline and a seed median (`_median`) are one forecast "
        f"each. Coverage: the share of the actual test values inside the {config.level:.0%} "
        "prediction interval (its mean width in brackets). MASE divides by the in-sample "
        "error of the (seasonal) naive forecast on the training part.",
        _metrics_table(result),
    ]
    flagged = [o for o in result.outcomes if o.flags is not None and o.flags.note]
    blocks.append("## Flagged forecasts")
    if flagged:
        blocks.append(
            "A seed is flagged when its forecasts hold a non-finite value or one beyond "
            f"{config.plausible_factor:g} training ranges from the training values; it is left "
            "out of every mean and of the seed median (seeds count from 0).\n\n"
            + "\n".join(f"- `{o.name}`: {o.flags.note}" for o in flagged)
        )
    else:
        blocks.append(
            "None: every seed's forecasts are finite and within the plausible range "
            f"({config.plausible_factor:g} training ranges around the training values)."
        )
    if result.anchors:
        blocks += [
            "## Beside the published figures",
            "Each published figure is one training run (a single seed); ours is the range "
            "(min–max) and the mean over the seeds that passed the sanity check. A published "
            "figure inside our range is as good as matched.",
            table(
                [
                    "published model",
                    "published test RMSE",
                    "published",
                    "ours: RMSE range over seeds",
                    "ours: mean",
                    "published inside our range",
                ],
                _anchor_rows(result),
            ),
        ]
    if config.horizon > 1:
        headers = ["model"] + [f"t+{k + 1}" for k in range(config.horizon)]
        blocks += [
            "## Test RMSE per step ahead (mean over kept seeds)",
            table(
                headers,
                [
                    [o.name, *[_number(v) for v in _kept_mean(o, "rmse_per_step")]]
                    for o in result.outcomes
                ],
            ),
        ]
    if folds > 1:
        headers = ["model"] + [
            f"fold {f.index + 1} (steps {f.n_train}–{f.end - 1})" for f in result.folds
        ]
        blocks += [
            "## Test RMSE per fold (mean over kept seeds)",
            table(
                headers,
                [
                    [o.name, *[_number(v) for v in _kept_mean(o, "fold_rmse")]]
                    for o in result.outcomes
                ],
            ),
        ]
    return blocks


def _compare_protocol_blocks(result: CompareResult, files: dict[str, Path], out: Path) -> list[str]:
    """The models' settings, the protocol's notes, the data loading and the figures."""
    folds = len(result.folds)
    blocks: list[str] = []
    blocks += ["## Models: input normalisation, epochs, layouts", "\n".join(_neural_lines(result))]
    flag_notes = {
        f"{o.name}: {reason}"
        for o in result.outcomes
        if o.flags is not None
        for reason in o.flags.reasons
    }
    notes = [note for note in result.notes if note not in flag_notes]
    seasons = result.seasons.line()
    if seasons not in notes:
        notes.insert(0, seasons)
    notes += [note for note in result.seasons.notes if note not in notes]
    if folds > 1:
        notes += [
            f"fold {f.index + 1}: trains on steps 0–{f.n_fit - 1}"
            + (f" (validation tail {f.n_fit}–{f.n_train - 1})" if f.n_fit < f.n_train else "")
            + f", tests on {f.n_train}–{f.end - 1} ({len(f.origins)} origins)"
            for f in result.folds
        ]
    blocks += ["## Protocol", "\n".join(f"- {note}" for note in notes)]
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
    files["report"] = write_markdown(out / "report.md", _compare_report_blocks(result, files, out))
    return files
