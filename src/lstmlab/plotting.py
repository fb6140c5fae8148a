"""The figure of a forecast: ``Forecaster.plot`` draws its frame with ``forecast_figure``.

Built with ``matplotlib.figure.Figure`` (not ``pyplot``): the global backend of a notebook or
script is never touched. One row of axes per series: its recent history in dark grey, the
forecast in colour with its interval bands (the wider one lighter, none where a step has too
few residuals), the legend beside the axes, never over the data.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.checks import printable
from lstmlab.data.calendar import frequency_words
from lstmlab.live.stores import LogRow

__all__ = ["History", "extended", "figure_labels", "forecast_figure", "history_points", "logged"]

# A series' readings kept for plots: (times in ns, or step numbers, or None; (n, columns) values)
History = tuple[np.ndarray | None, np.ndarray]


def extended(kept: History, times: np.ndarray | None, values: np.ndarray) -> History:
    """``kept`` with new readings after it (times dropped unless both have them)."""
    old_times, old_values = kept
    joined = None if old_times is None or times is None else np.concatenate([old_times, times])
    return joined, np.concatenate([old_values, values])


def logged(rows: Sequence[LogRow]) -> History | None:
    """A series' observation log (``StateStore.observations``) as a ``History``."""
    if not rows:
        return None
    times = [t for _, t, _ in rows]
    values = np.stack([reading for _, _, reading in rows])
    return (None if None in times else np.asarray(times, np.int64)), values


def history_points(
    kept: History | None, *, seen: int, steps: bool, count: int
) -> tuple[Any, np.ndarray] | None:
    """The last ``count`` readings of a ``History`` and their x values, ``None`` for none.

    The x values are timestamps, step numbers (``steps``), or, for readings without either,
    their positions in the series, whose ``seen`` readings end with them.
    """
    if kept is None or not len(kept[1]):
        return None
    times, values = kept
    values, times = values[-count:], None if times is None else times[-count:]
    if times is None:
        return np.arange(seen - len(values), seen), values
    return (times if steps else pd.DatetimeIndex(times)), values


def figure_labels(
    frame: pd.DataFrame, *, kind: str, auto: bool, seeds: int, freq: str | None, steps: bool
) -> tuple[str, str]:
    """The model's name in the titles and the x axis' label of ``forecast_figure``."""
    name = {"mlp": "MLP"}.get(kind, f"{kind} LSTM")
    chosen = " (model='auto')" if auto else ""
    median = "1 seed" if seeds == 1 else f"median of {seeds} seeds"
    stamped = freq is not None and frame["time"].dtype != np.int64
    counted = "step" if steps else "reading"
    return f"{name}{chosen}, {median}", f"time ({frequency_words(freq)})" if stamped else counted


def forecast_figure(
    frame: pd.DataFrame,
    histories: Mapping[str, tuple[Any, np.ndarray] | None],
    *,
    columns: Sequence[str],
    bounds: Sequence[tuple[float, str, str]],
    **model: Any,
):
    """Each series' history and forecast, one row of axes per series.

    Args:
        frame: the forecast (``Forecaster.forecast``), with the bounds of ``bounds``.
        histories: series id -> ``(times or positions, (n, columns) readings)``, or ``None``
            for no history; drawn in this order.
        columns: the value columns.
        bounds: the interval columns (``lstmlab.pipeline.bound_columns``).
        **model: what the titles and the x axis name: ``figure_labels``' keywords.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    ids = list(histories)
    model_name, time_label = figure_labels(frame, **model)

    bounds = sorted(bounds, reverse=True)  # the widest band drawn first
    one = len(columns) == 1

    def history_colour(j: int) -> str:  # one series: dark history, a coloured forecast
        return "0.25" if one else f"C{2 * j}"

    def forecast_colour(j: int) -> str:
        return "C0" if one else f"C{2 * j + 1}"

    figure = Figure(figsize=(9, 2.6 * max(len(ids), 1)), layout="constrained")
    axes = figure.subplots(max(len(ids), 1), 1, squeeze=False)[:, 0]
    for ax, series_id in zip(axes, ids, strict=False):
        if histories[series_id] is not None:
            x, values = histories[series_id]
            for j, column in enumerate(columns):
                label = "history" if one else f"{column} history"
                ax.plot(x, values[:, j], color=history_colour(j), label=label)
        rows = frame[frame["series_id"] == series_id]
        for j, column in enumerate(columns):
            part = rows if "target" not in rows else rows[rows["target"] == column]
            label = "forecast" if one else f"{column} forecast"
            for rank, (value, lower, upper) in enumerate(bounds):
                low, high = (part[b].to_numpy(np.float64) for b in (lower, upper))
                shown = np.isfinite(low) & np.isfinite(high)  # no band where too few residuals
                ax.fill_between(
                    part["time"],
                    np.where(shown, low, np.nan),
                    np.where(shown, high, np.nan),
                    color=forecast_colour(j),
                    alpha=0.15 + 0.15 * rank,
                    linewidth=0,
                    label=f"{100 * value:g}% interval" if j == 0 else None,
                )
            ax.plot(part["time"], part["forecast"], color=forecast_colour(j), label=label)
        ax.set_title(f"{printable(series_id)}: {model_name}")
        ax.set_xlabel(time_label)
        # a placeholder column name ("value", "y") says less than the series' own name
        generic = one and columns[0] in ("value", "y", "0")
        ax.set_ylabel(printable(series_id) if generic else ", ".join(map(printable, columns)))
        ax.grid(alpha=0.3)
        # beside the axes, never over the data
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure
