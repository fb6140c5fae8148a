"""The ``compare`` report: plots, ``metrics.csv``, ``summary.json`` and ``report.md``.

Everything is computed from a ``CompareResult``; nothing is trained here.
"""

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from lstmlab.experiments.compare import CompareResult, ModelOutcome  # noqa: E402
from lstmlab.report.markdown import (  # noqa: E402
    format_number,
    image,
    table,
    write_json,
    write_markdown,
)
from lstmlab.report.plots import save_figure  # noqa: E402

METRICS = ("rmse", "mae", "mape")




def _axis(result: CompareResult) -> np.ndarray:
    """The x values of every step of the series: timestamps, or step numbers."""
    if result.index is not None:
        return np.asarray(result.index)
    return np.arange(len(result.targets))


def _tiles(result: CompareResult) -> bool:
    """Whether the forecasts tile the test part (origins at least ``horizon`` apart)."""
    return result.config.horizon == 1 or result.config.origin_stride >= result.config.horizon


def plot_forecasts(result: CompareResult, path: Path, *, series: int = 0) -> Path:
    """The actual series around the test part and each model's forecast (mean over seeds).

    With ``horizon == 1``, or origins ``horizon`` steps apart, every forecast step is drawn
    (the forecasts tile the test part); otherwise the one-step-ahead forecasts are drawn.

    Args:
        result: the comparison.
        path: the PNG to write.
        series: which series to draw (several series: the first by default).

    Returns:
        ``path``.
    """
    x = _axis(result)
    horizon = result.config.horizon
    context = max(result.n_test // 2, 2 * horizon, 12)
    start = max(result.n_train - context, 0)
    fig, ax = plt.subplots(figsize=(9, 4.4))
    ax.plot(x[start:], result.targets[start:, series], color="black", lw=1.6, label="actual")
    ax.axvline(x[result.n_train], color="grey", ls=":", lw=1)
    tiles = _tiles(result)
    if tiles:
        steps = (result.origins[:, None] + np.arange(horizon)).ravel()  # (origins * horizon,)
    else:
        steps = result.origins
    order = np.argsort(steps, kind="stable")
    for i, outcome in enumerate(result.outcomes):
        mean = outcome.mean_forecast()[:, :, series]  # (origins, horizon)
        values = mean.ravel() if tiles else mean[:, 0]
        style = "--" if outcome.is_baseline else "-"
        ax.plot(
            x[steps[order]],
            values[order],
            style,
            color=f"C{i}",
            lw=1.1,
            label=f"{outcome.label} (RMSE {format_number(outcome.mean('rmse'))})",
        )
    what = "forecasts" if tiles else "1-step-ahead forecasts"
    name = result.series_names[series]
    ax.set_title(f"{name}: test part and {what} (mean over {result.config.seeds} seeds)")
    ax.set_xlabel("time" if result.index is not None else "step")
    ax.set_ylabel(name)
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return save_figure(fig, path)


def plot_rmse_bars(result: CompareResult, path: Path) -> Path:
    """Test RMSE per model: mean over seeds with a one-standard-deviation error bar.

    Published anchors of a preset are drawn as black diamonds (a range as a vertical line).

    Args:
        result: the comparison.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    outcomes = result.outcomes
    positions = np.arange(len(outcomes))
    means = [o.mean("rmse") for o in outcomes]
    stds = [o.std("rmse") for o in outcomes]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colors = [f"C{i}" for i in range(len(outcomes))]
    ax.bar(positions, means, yerr=stds, capsize=4, color=colors, alpha=0.85)
    ax.axhline(
        result.outcome("persistence").mean("rmse"), color="grey", ls="--", lw=1, label="persistence"
    )
    labelled = False
    for anchor in result.anchors:
        if anchor.model is None or anchor.model not in [o.name for o in outcomes]:
            continue
        index = [o.name for o in outcomes].index(anchor.model)
        where = index + 0.3  # beside the error bar
        ax.plot([where, where], [anchor.rmse_low, anchor.rmse_high], color="black", lw=2)
        ax.plot(
            [where],
            [(anchor.rmse_low + anchor.rmse_high) / 2],
            "kD",
            ms=5,
            label=None if labelled else "published",
        )
        labelled = True
    ax.set_xticks(positions, [o.name for o in outcomes], rotation=20)
    ax.set_ylabel("test RMSE (original units)")
    ax.set_title(f"Test RMSE, mean ± std over {result.config.seeds} seeds")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_rmse_per_step(result: CompareResult, path: Path) -> Path:
    """Test RMSE per step ahead (mean over seeds), one line per model.

    Args:
        result: the comparison.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    steps = np.arange(1, result.config.horizon + 1)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, outcome in enumerate(result.outcomes):
        per_step = outcome.metrics["rmse_per_step"].mean(axis=0)  # (horizon,)
        ax.plot(
            steps,
            per_step,
            "--o" if outcome.is_baseline else "-o",
            color=f"C{i}",
            ms=3,
            label=outcome.label,
        )
    ax.set_xlabel("step ahead")
    ax.set_ylabel("test RMSE")
    ax.set_title("Test RMSE per step ahead")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_metrics_csv(result: CompareResult, path: Path) -> Path:
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
                    + [repr(float(outcome.metrics[m][row])) for m in METRICS]
                )
                if result.config.horizon > 1:
                    for step in range(result.config.horizon):
                        writer.writerow(
                            [outcome.name, seed, step + 1]
                            + [
                                repr(float(outcome.metrics[f"{m}_per_step"][row, step]))
                                for m in METRICS
                            ]
                        )
    return path


def _seed_labels(result: CompareResult, outcome: ModelOutcome) -> list[str]:
    if outcome.is_baseline:
        return ["-"]
    return [str(result.config.seed + i) for i in range(result.config.seeds)]


def summary(result: CompareResult) -> dict[str, Any]:
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
        for metric in METRICS:
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


def _report_blocks(result: CompareResult, files: dict[str, Path], out: Path) -> list[str]:
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
    out = Path(out)
    files = {
        "forecast_plot": plot_forecasts(result, out / "forecasts.png"),
        "rmse_plot": plot_rmse_bars(result, out / "rmse.png"),
    }
    if result.config.horizon > 1:
        files["rmse_per_step_plot"] = plot_rmse_per_step(result, out / "rmse_per_step.png")
    files["metrics"] = write_metrics_csv(result, out / "metrics.csv")
    files["summary"] = write_json(out / "summary.json", summary(result))
    files["report"] = write_markdown(out / "report.md", _report_blocks(result, files, out))
    return files
