"""Report figures as ``matplotlib.figure.Figure`` objects, built with the fig/ax API.

Each ``plot_*`` function takes arrays (or a comparison result) and returns a new ``Figure``
with titles, axis labels and a legend where there is more than one line; ``save_figure``
writes one as PNG. No function touches pyplot's global state or the matplotlib backend, so
importing this module in a notebook changes nothing there, and the figures are never
registered with pyplot (there is nothing to close).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from lstmlab.experiments.compare import CompareResult, ModelOutcome

__all__ = [
    "plot_compare_forecasts",
    "plot_compare_rmse",
    "plot_compare_rmse_per_step",
    "plot_heatmap",
    "plot_history",
    "plot_input_vs_expected",
    "plot_residuals",
    "save_figure",
]

_DPI = 110


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay out ``fig`` and write it as PNG to ``path`` (folders created).

    Args:
        fig: the figure.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    return path


def _legend_beside(ax: Any) -> None:
    """The legend to the right of the axes, off the data (``save_figure`` makes room)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def plot_input_vs_expected(
    inputs: np.ndarray, expected: np.ndarray, *, tsteps: int, points: int = 10
) -> Figure:
    """The script's first plot: the first ``points`` inputs and their moving average.

    Args:
        inputs: ``(n,)`` input values ``x[t]``.
        expected: ``(n,)`` targets, the moving average over ``tsteps`` points.
        tsteps: the moving-average window, for the legend.
        points: how many points to draw.

    Returns:
        The figure.
    """
    inputs = np.asarray(inputs, dtype=np.float64)[:points]
    expected = np.asarray(expected, dtype=np.float64)[:points]
    fig = Figure(figsize=(9.5, 3.5))
    ax = fig.subplots()
    steps = np.arange(len(inputs))
    ax.plot(steps, inputs, "o", label="input x[t]")
    ax.plot(steps, expected, "-", label=f"expected output: mean of the last {tsteps} inputs")
    ax.axhline(0.0, color="0.8", linewidth=0.8)
    ax.set_title(f"Input and expected output (first {len(inputs)} points)")
    ax.set_xlabel("time step t")
    ax.set_ylabel("value")
    _legend_beside(ax)
    return fig


def plot_residuals(
    expected: np.ndarray,
    stateful: np.ndarray,
    stateless: np.ndarray,
    *,
    tsteps: int,
    labels: Sequence[str] = ("stateful", "stateless"),
) -> Figure:
    """The script's three panels: expected; stateful and stateless ``expected - predicted``.

    The script drops the stateful panel's first ``tsteps - 1`` points (its state, reset at the
    start of the test part, has no earlier step to predict them from); here they are drawn
    in grey instead, so that the MSE each panel states is the report's, over every test
    point. The two residual panels share their y axis so their sizes compare at a glance.

    Args:
        expected: ``(n,)`` test targets.
        stateful: ``(n,)`` stateful predictions.
        stateless: ``(n,)`` stateless predictions.
        tsteps: the moving-average window.
        labels: panel names for the two models.

    Returns:
        The figure.
    """
    expected = np.asarray(expected, dtype=np.float64).ravel()
    stateful_error = expected - np.asarray(stateful, dtype=np.float64).ravel()
    stateless_error = expected - np.asarray(stateless, dtype=np.float64).ravel()
    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(3, 1, sharex=True)
    steps = np.arange(len(expected))
    axes[0].plot(steps, expected, color="C0", label="expected")
    axes[0].set_title("Expected output (test part)")
    dropped = min(max(tsteps - 1, 0), len(expected))  # the points the script leaves out
    panels = (
        (axes[1], stateful_error, labels[0], "C1", dropped),
        (axes[2], stateless_error, labels[1], "C2", 0),
    )
    limit = max(np.abs(stateful_error).max(initial=0), np.abs(stateless_error).max(initial=0))
    for ax, error, label, color, first in panels:
        mse = float(np.mean(np.square(error))) if len(error) else float("nan")
        ax.plot(steps[first:], error[first:], color=color, label=f"{label} (test MSE {mse:.2e})")
        if first:
            ax.plot(
                steps[: first + 1],
                error[: first + 1],
                color="0.6",
                label="the first point, which the script omits"
                if first == 1
                else f"the first {first} points, which the script omits",
            )
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(f"{label.capitalize()}: expected - predicted")
        ax.set_ylim(-1.05 * limit or -1, 1.05 * limit or 1)
    for ax in axes:
        ax.set_ylabel("value")
    for ax in axes[1:]:  # the top panel's one line is named by its title
        # beside the panel, off the data (the residuals fill their panels edge to edge)
        _legend_beside(ax)
    axes[-1].set_xlabel("test sample")
    return fig


def plot_history(
    histories: dict[str, tuple[Sequence[float], Sequence[float] | None]],
    *,
    reference: float | None = None,
    reference_label: str = "reference",
) -> Figure:
    """Loss per epoch (log scale), training solid and validation dashed.

    Args:
        histories: ``{name: (loss per epoch, val_loss per epoch or None)}``.
        reference: optional horizontal line, e.g. the convergence threshold.
        reference_label: its legend entry.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(9.5, 3.8))
    ax = fig.subplots()
    for i, (name, (loss, val_loss)) in enumerate(histories.items()):
        epochs = np.arange(1, len(loss) + 1)
        ax.plot(epochs, loss, "-", color=f"C{i}", label=f"{name} loss")
        if val_loss is not None:
            ax.plot(epochs, val_loss, "--", color=f"C{i}", label=f"{name} val_loss")
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle=":", label=reference_label)
    ax.set_yscale("log")
    ax.set_title("Loss per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    _legend_beside(ax)
    return fig


def plot_heatmap(
    values: np.ndarray,
    *,
    rows: Sequence[object],
    columns: Sequence[object],
    title: str,
    row_label: str,
    column_label: str,
    colorbar_label: str,
    fmt: str = "{:.2f}",
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    cmap: str = "viridis",
    outlined: np.ndarray | None = None,
) -> Figure:
    """An annotated heat map of a ``(len(rows), len(columns))`` matrix.

    Args:
        values: ``(len(rows), len(columns))``.
        rows: row tick labels (top to bottom).
        columns: column tick labels (left to right).
        title: figure title.
        row_label: y-axis label.
        column_label: x-axis label.
        colorbar_label: colour bar label.
        fmt: format of the number written in each cell.
        vmin: lower end of the colour scale.
        vmax: upper end of the colour scale.
        log: logarithmic colour scale (positive values).
        cmap: matplotlib colour map name.
        outlined: optional boolean ``(len(rows), len(columns))``: cells to outline in red
            (e.g. where a measurement disagrees with a claim).

    Returns:
        The figure.

    Raises:
        ValueError: ``values`` does not have the shape of ``rows`` x ``columns``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(rows), len(columns)):
        raise ValueError(
            f"values must have shape (len(rows), len(columns)) = ({len(rows)}, {len(columns)}), "
            f"got {values.shape}; pass one value per cell"
        )
    norm = None
    if log:
        positive = values[values > 0]
        low = vmin if vmin is not None else (positive.min() if positive.size else 1e-6)
        high = vmax if vmax is not None else (positive.max() if positive.size else 1.0)
        norm = LogNorm(vmin=low, vmax=max(high, low * 10))
        vmin = vmax = None
        shown = np.clip(values, norm.vmin, None)
    else:
        shown = values
    fig = Figure(figsize=(1.0 * len(columns) + 2.6, 0.8 * len(rows) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, norm=norm, aspect="auto")
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label(colorbar_label)
    ax.set_xticks(np.arange(len(columns)), [str(c) for c in columns])
    ax.set_yticks(np.arange(len(rows)), [str(r) for r in rows])
    ax.set_xlabel(column_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    for i in range(len(rows)):
        for j in range(len(columns)):
            rgba = image.cmap(image.norm(shown[i, j]))
            dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
            ax.text(
                j,
                i,
                fmt.format(values[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
            if outlined is not None and outlined[i, j]:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)
                )
    return fig


# --------------------------------------------------------------------------- compare


def _compare_axis(result: CompareResult) -> np.ndarray:
    """The x values of every step of the series: timestamps, or step numbers."""
    if result.index is not None:
        return np.asarray(result.index)
    return np.arange(len(result.targets))


def _compare_paths(origins: np.ndarray, horizon: int) -> list[np.ndarray]:
    """The origins whose whole forecast paths the plot draws, in runs that join up.

    Each drawn path starts at or after the end of the one before (every origin when they
    tile the test part, as with one step ahead); a path that starts right after the one
    before continues its run, one after a gap starts a new run (a line never joins across a
    gap).

    Returns:
        Runs of positions in ``origins``.
    """
    runs: list[list[int]] = []
    end = None  # the step after the last drawn path
    for k, origin in enumerate(origins):
        if end is not None and origin < end:
            continue
        if end is not None and origin == end:
            runs[-1].append(k)
        else:
            runs.append([k])
        end = int(origin) + horizon
    return [np.asarray(run) for run in runs]


def _rmse_text(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else "no kept seed"


def _forecast_models(result: CompareResult) -> tuple[list[ModelOutcome], ModelOutcome | None]:
    """The models the forecast plot draws, and the one whose interval is the band.

    The seed medians and the best statistical baseline (every model when there is no seed
    median); the band is the best-validated model's seed median.
    """
    ensembles = [o for o in result.outcomes if o.kind == "ensemble"]
    if not ensembles:
        return list(result.outcomes), None
    baseline = result.best_statistical()
    shown = ([baseline] if baseline is not None else []) + ensembles
    band = None
    if result.best_validated is not None:
        name = result.best_validated + "_median"
        band = next((o for o in ensembles if o.name == name and o.lower is not None), None)
    return shown, band


def plot_compare_forecasts(result: CompareResult, *, series: int = 0) -> Figure:
    """The actual series around the test part, the seed medians and the best baseline.

    Each neural model is drawn as its median over the seeds that passed the sanity check
    (``<model>_median``), beside the statistical baseline with the lowest test RMSE (dashed);
    the prediction interval of the best-validated model's seed median is the shaded band. A
    result without seed medians draws every model (the median over its kept seeds). With
    ``horizon`` above 1 every drawn forecast is its whole path, as it was scored: from every
    origin when the origins are ``horizon`` steps apart or more, else from origins a path
    apart (the title says how many); a line never joins two paths across a gap.

    Args:
        result: the comparison.
        series: which series to draw (several series: the first by default).

    Returns:
        The figure.
    """
    x = _compare_axis(result)
    horizon = result.config.horizon
    context = max(result.n_test // 2, 2 * horizon, 12)
    start = max(result.n_train - context, 0)
    fig = Figure(figsize=(9, 4.4))
    ax = fig.subplots()
    ax.plot(x[start:], result.targets[start:, series], color="black", lw=1.6, label="actual")
    ax.axvline(x[result.n_train], color="grey", ls=":", lw=1)
    runs = _compare_paths(result.origins, horizon)
    drawn_paths = sum(len(run) for run in runs)

    def each_run(values: np.ndarray):
        """``(origins, horizon)`` -> (x, values) of every run's paths, step by step."""
        for run in runs:
            steps = (result.origins[run][:, None] + np.arange(horizon)).ravel()
            yield x[steps], values[run].ravel()

    shown, band = _forecast_models(result)
    if band is not None:
        label = f"{band.name}: {result.config.level:.0%} interval (coverage {band.coverage:.0%})"
        runs_x = list(each_run(band.lower[0, :, :, series]))
        runs_upper = [y for _, y in each_run(band.upper[0, :, :, series])]
        for j, ((steps_x, lower), upper) in enumerate(zip(runs_x, runs_upper, strict=True)):
            ax.fill_between(
                steps_x,
                lower,
                upper,
                color=f"C{shown.index(band)}",
                alpha=0.18,
                label=label if j == 0 else None,
            )
    for i, outcome in enumerate(shown):
        if outcome.kept.any():
            values = np.median(outcome.forecasts[outcome.kept], axis=0)[:, :, series]
        else:
            values = np.full(outcome.forecasts.shape[1:3], np.nan)
        label = f"{outcome.label} (RMSE {_rmse_text(outcome.mean('rmse'))})"
        for j, (steps_x, path) in enumerate(each_run(values)):
            ax.plot(
                steps_x,
                path,
                "--" if outcome.is_baseline else "-",
                color=f"C{i}",
                lw=1.1,
                label=label if j == 0 else None,
            )
    if horizon == 1:
        what = "forecasts"
    else:
        origins = len(result.origins)
        of = (
            "" if drawn_paths == origins else f" (every path of {drawn_paths} of {origins} origins)"
        )
        what = f"{horizon}-step forecasts{of}"
    name = result.series_names[series]
    ax.set_title(f"{name}: test part and {what} (seed medians over {result.config.seeds} seeds)")
    stamped = isinstance(result.index, pd.DatetimeIndex)  # else step numbers or positions
    ax.set_xlabel("time" if stamped else "step")
    ax.set_ylabel(name)
    ax.legend(fontsize=7, loc="upper left")
    if stamped:
        fig.autofmt_xdate()
    return fig


def plot_compare_rmse(result: CompareResult) -> Figure:
    """Test RMSE per model: the mean over kept seeds, each kept seed a dot.

    A neural model's bar is its mean over the seeds that passed the sanity check, with a
    one-standard-deviation error bar and one dot per kept seed; flagged seeds are not drawn
    (their count is written above the bar). A baseline and a seed median are one bar each
    (the seed medians hatched). Published anchors of a preset are black diamonds (a range as
    a vertical line).

    Args:
        result: the comparison.

    Returns:
        The figure.
    """
    outcomes = result.outcomes
    positions = np.arange(len(outcomes))
    means = np.array([o.mean("rmse") for o in outcomes])
    stds = np.array([o.std("rmse") if o.kind == "neural" else 0.0 for o in outcomes])
    fig = Figure(figsize=(max(8.0, 0.75 * len(outcomes)), 4.2))
    ax = fig.subplots()
    finite = np.isfinite(means)
    # A seed median shares its neural model's colour.
    colors, by_model = [], {}
    for outcome in outcomes:
        base = outcome.name.removesuffix("_median") if outcome.kind == "ensemble" else None
        if base is not None and base in by_model:
            colors.append(by_model[base])
            continue
        by_model[outcome.name] = f"C{len(by_model) % 10}"
        colors.append(by_model[outcome.name])
    bars = ax.bar(
        positions[finite],
        means[finite],
        color=[c for c, keep in zip(colors, finite, strict=True) if keep],
        alpha=0.85,
    )
    shown = [o for o, keep in zip(outcomes, finite, strict=True) if keep]
    for bar, outcome in zip(bars, shown, strict=True):
        if outcome.kind == "ensemble":
            bar.set_hatch("//")
    spread = finite & (stds > 0)
    if spread.any():
        ax.errorbar(
            positions[spread],
            means[spread],
            yerr=stds[spread],
            fmt="none",
            ecolor="black",
            capsize=4,
        )
    top = float(np.nanmax(means)) if finite.any() else 1.0
    dots = False
    for position, outcome in zip(positions, outcomes, strict=True):
        if outcome.kind != "neural":
            continue
        kept = outcome.scores("rmse")
        kept = kept[np.isfinite(kept)]
        if kept.size:
            jitter = np.linspace(-0.18, 0.18, kept.size) if kept.size > 1 else np.zeros(1)
            ax.plot(
                position + jitter,
                kept,
                "o",
                color="black",
                ms=3,
                label=None if dots else "seeds (kept)",
            )
            dots = True
            top = max(top, float(kept.max()))
        flagged = int(np.count_nonzero(~outcome.kept))
        if flagged:
            height = means[position] if np.isfinite(means[position]) else 0.0
            ax.annotate(
                f"{flagged} flagged" if kept.size else "all flagged",
                (position, height),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color="red",
            )
    persistence = result.outcome("persistence").mean("rmse")
    ax.axhline(persistence, color="grey", ls="--", lw=1, label="persistence")
    labelled = False
    names = [o.name for o in outcomes]
    for anchor in result.anchors:
        if anchor.model is None or anchor.model not in names:
            continue
        where = names.index(anchor.model) + 0.3  # beside the error bar
        ax.plot([where, where], [anchor.rmse_low, anchor.rmse_high], color="black", lw=2)
        ax.plot(
            [where],
            [(anchor.rmse_low + anchor.rmse_high) / 2],
            "kD",
            ms=5,
            label=None if labelled else "published (one run)",
        )
        labelled = True
    ax.set_xticks(positions, names, rotation=30, ha="right")
    ax.set_ylabel("test RMSE (original units)")
    ax.set_title(
        f"Test RMSE: mean ± std over the kept of {result.config.seeds} seeds; "
        "baselines and seed medians one forecast"
    )
    ax.legend(fontsize=7)
    return fig


def plot_compare_rmse_per_step(result: CompareResult) -> Figure:
    """Test RMSE per step ahead (mean over the kept seeds), one line per model.

    A model whose every seed was flagged has no line.

    Args:
        result: the comparison.

    Returns:
        The figure.
    """
    steps = np.arange(1, result.config.horizon + 1)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    for i, outcome in enumerate(result.outcomes):
        kept = outcome.metrics["rmse_per_step"][outcome.kept]  # (kept, horizon)
        if len(kept) == 0:
            continue
        style = "--o" if outcome.is_baseline else (":s" if outcome.kind == "ensemble" else "-o")
        ax.plot(steps, kept.mean(axis=0), style, color=f"C{i}", ms=3, label=outcome.label)
    ax.set_xlabel("step ahead")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no 1.25, 1.75
    ax.set_ylabel("test RMSE")
    ax.set_title("Test RMSE per step ahead (mean over kept seeds)")
    ax.legend(fontsize=7)
    return fig
