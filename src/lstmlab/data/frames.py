"""The training data a user hands to ``fit``: DataFrames, Series and arrays, as series.

``parse_training_data`` reads a wide DataFrame (a column per series, a time index or
``time_col``), a long one (NeuralForecast's ``unique_id, ds, y``, ``series_id, time, value``
or ``id_col=``), a Series or an array into one form (``TrainingData``: series id -> values
and timestamps), with the checks every form shares: text timestamps parsed as the command
line parses a file's (``lstmlab.data.calendar.parse_time_column``), ids of one type, finite
values, one frequency with every series on its grid. An index or time column of integers is
the series' step numbers (``lstmlab.data.calendar.parse_steps``), one stride for all series
and no gaps; an array has no time (its rows are its positions). ``check_outliers`` refuses
absurd training values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.data.calendar import check_grid_frequency, check_step_grid, parse_time_column

__all__ = [
    "LONG_LAYOUTS",
    "OUTLIER_FACTOR",
    "TrainingData",
    "check_outliers",
    "parse_training_data",
]

# ``fit`` refuses a training value more than this many bulk widths beyond the bulk of its
# series (``check_outliers``): a cell at 1e30, a sentinel code such as 999999 beside values
# near 10. Real peaks stay far inside: every series under ``shared/data`` (the development
# benchmark, the household's daily, weekly and minute columns) is within 19 widths, and
# simulated intermittent demand (mostly zeros, negative-binomial spikes) within 212.
OUTLIER_FACTOR = 1000.0
# The largest float32: a value beyond it cannot be computed with, whatever the factor.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class TrainingData:
    """Training data in one form: series id -> values and timestamps (or step numbers)."""

    values: dict[str, np.ndarray]  # (time, columns) float64
    times: dict[str, pd.Index | None]  # a DatetimeIndex, int64 step numbers, or None
    columns: tuple[str, ...]
    time_col: str | None
    freq: str | None
    step: int | None = None  # the stride of series of steps


LONG_LAYOUTS = (("unique_id", "ds", "y"), ("series_id", "time", "value"))


def _targets(target: Any) -> list[str] | None:
    if target is None:
        return None
    return [target] if isinstance(target, str) else [str(t) for t in target]


def _series_values(label: str, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{label}: no column(s) {missing}; the columns are {[str(c) for c in frame.columns]}"
        )
    for column in columns:
        dtype = frame[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype):
            raise ValueError(
                f"{label}: column {column!r} is not numeric (dtype {dtype}); "
                "pass time_col= for a time column, or target= to choose the value columns"
            )
        # values float64 would change: refused, never silently reinterpreted
        if pd.api.types.is_bool_dtype(dtype):
            raise ValueError(
                f"{label}: column {column!r} holds True/False (dtype {dtype}), not measurements; "
                "pass its values as numbers (e.g. data[col].astype(float)) if 0/1 is meant"
            )
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError(
                f"{label}: column {column!r} holds complex numbers (dtype {dtype}); the model "
                "forecasts real values: pass the real part, the modulus, or both as two columns"
            )
        if pd.api.types.is_integer_dtype(dtype):
            exact = frame[column].to_numpy()  # compared as integers: 2**53 + 1 is no float
            large = (exact > 2**53) | (exact < -(2**53))
            if large.any():
                value = exact[int(np.argmax(large))]
                raise ValueError(
                    f"{label}: column {column!r} holds the integer {value}, beyond 2**53: as a "
                    "float64 it would lose its last digits; pass smaller units (e.g. divide "
                    "by 1000) or the values as floats if the rounding is acceptable"
                )
    return frame[list(columns)].to_numpy(np.float64)


def _stamped_index(index: pd.Index, time_format: str | None) -> pd.Index:
    """A wide frame's row index as timestamps or step numbers (never as row positions).

    A DatetimeIndex is kept; a PeriodIndex or an index of text is parsed, an index of
    integers (the default ``RangeIndex`` too) gives the rows' step numbers.

    Raises:
        ValueError: a MultiIndex, or an index that is neither timestamps nor whole numbers.
    """
    if isinstance(index, pd.MultiIndex):
        raise ValueError(
            f"the rows have a MultiIndex ({list(index.names)}); pass data.reset_index() with "
            "id_col= and time_col= for a long frame, or one series per column"
        )
    if isinstance(index, pd.DatetimeIndex):
        return index
    name = "index" if index.name is None else f"index {str(index.name)!r}"
    parsed = parse_time_column(pd.Series(index), label=name, time_format=time_format)
    return parsed.rename(index.name)


def parse_training_data(
    data: Any,
    time_col: str | None,
    target: Any,
    freq: str | None,
    id_col: str | None,
    time_format: str | None = None,
) -> TrainingData:
    """Any accepted input as series id -> values (and timestamps); see ``Forecaster.fit``."""
    targets = _targets(target)
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "0")
    if isinstance(data, pd.DataFrame):
        frame = data
        labels = pd.Index([str(c) for c in frame.columns])
        if labels.has_duplicates:
            # which of two equal names is the series? Refuse rather than take the first.
            twice = sorted(set(labels[labels.duplicated()]))
            raise ValueError(
                f"the DataFrame has several columns named {twice} (names compared as text); "
                "give every column its own name, e.g. data.columns = [...]"
            )
        if id_col is None and time_col is None and targets is None:
            for layout in LONG_LAYOUTS:
                if set(layout) <= set(labels):
                    id_col, time_col, targets = layout[0], layout[1], [layout[2]]
                    break
        if id_col is not None:
            values, times, columns = _long_series(frame, id_col, time_col, targets, time_format)
        else:
            values, times, time_col = _wide_series(frame, time_col, targets, time_format)
            columns = ("value",)
    else:
        values, times = _array_series(data, freq)
        columns = ("value",)
    if not values:
        raise ValueError("no series to train on; pass data with at least one series")
    for series_id, array in values.items():
        bad = ~np.isfinite(array).all(axis=1)
        if len(array) == 0 or bad.any():
            where = (
                "is empty"
                if len(array) == 0
                else f"holds NaN or infinite values at row {int(np.argmax(bad))}"
            )
            raise ValueError(
                f"series {series_id!r} {where}; fill or drop those values before fitting"
            )
    step = check_step_grid(times, freq)
    freq = check_grid_frequency(times, freq)
    return TrainingData(
        values=values, times=times, columns=columns, time_col=time_col, freq=freq, step=step
    )


def _long_series(
    frame: pd.DataFrame,
    id_col: str,
    time_col: str | None,
    targets: list[str] | None,
    time_format: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, pd.DatetimeIndex | None], tuple[str, ...]]:
    """A long frame (a series id, a time and value columns per row) as its series."""
    names = {str(c) for c in frame.columns}
    values: dict[str, np.ndarray] = {}
    times: dict[str, pd.DatetimeIndex | None] = {}
    if id_col not in frame.columns:
        raise ValueError(f"no id column {id_col!r}; the columns are {sorted(names)}")
    if time_col is None:
        raise ValueError(
            f"a long DataFrame (id column {id_col!r}) needs time_col=; pass the name "
            "of its time column"
        )
    if time_col not in frame.columns:
        raise ValueError(f"no time column {time_col!r}; the columns are {sorted(names)}")
    if targets is None:
        others = [str(c) for c in frame.columns if c not in (id_col, time_col)]
        if len(others) != 1:
            raise ValueError(f"cannot tell the value column among {others}; pass target=")
        targets = others
    # the whole column parsed once (as the command line parses a file), then split
    stamps = parse_time_column(
        frame[time_col].reset_index(drop=True),
        label=f"column {str(time_col)!r}",
        time_format=time_format,
    )
    # The rows of each series, in time order, found at once: a group per series would build
    # 50,000 frames for 50,000 series (40 s and 1 GB of temporaries for 10 million rows).
    codes, ids = pd.factorize(frame[id_col], sort=False)  # ids in order of appearance
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        raise ValueError(
            f"id column {id_col!r} has no id at row {row + 1}; fill it or remove the row"
        )
    named: dict[str, Any] = {}
    for series_id in ids:
        other = named.setdefault(str(series_id), series_id)
        if other is not series_id and other != series_id:
            raise ValueError(
                f"id column {id_col!r} holds {other!r} and {series_id!r}, which name "
                f"the same series {str(series_id)!r}; make the ids one type, e.g. "
                f"data[{id_col!r}] = data[{id_col!r}].astype(str)"
            )
    dated = isinstance(stamps, pd.DatetimeIndex)
    instants = stamps.asi8 if dated else np.asarray(stamps, dtype=np.int64)
    order = np.lexsort((instants, codes))  # by series, then time (a stable sort)
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
    try:
        table = _series_values(f"series {str(ids[0])!r}", frame, targets)
    except ValueError:
        # name the first series whose own values are refused, as a series at a time would
        for k, series_id in enumerate(ids):
            rows = order[bounds[k] : bounds[k + 1]]
            _series_values(f"series {str(series_id)!r}", frame.iloc[rows], targets)
        raise
    table = table[order]
    stamps = stamps.take(order).rename(str(time_col)) if dated else instants[order]
    for k, series_id in enumerate(ids):
        begin, end = bounds[k], bounds[k + 1]
        values[str(series_id)] = table[begin:end]
        times[str(series_id)] = stamps[begin:end] if dated else pd.Index(stamps[begin:end])
    return values, times, tuple(targets)


def _wide_series(
    frame: pd.DataFrame,
    time_col: str | None,
    targets: list[str] | None,
    time_format: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, pd.DatetimeIndex | None], str | None]:
    """A wide frame (a column per series, a time index or ``time_col``) as its series.

    Returns:
        ``(values, times, the time column's name)``.
    """
    names = {str(c) for c in frame.columns}
    values: dict[str, np.ndarray] = {}
    times: dict[str, pd.DatetimeIndex | None] = {}
    if time_col is not None:
        if time_col not in frame.columns:
            raise ValueError(f"no time column {time_col!r}; the columns are {sorted(names)}")
        stamps = parse_time_column(
            frame[time_col].reset_index(drop=True),
            label=f"column {str(time_col)!r}",
            time_format=time_format,
        )
        frame = frame.drop(columns=[time_col]).set_axis(stamps.rename(time_col), axis="index")
    index = _stamped_index(frame.index, time_format)
    if time_col is None:
        time_col = None if index.name is None else str(index.name)
    chosen = targets if targets is not None else [str(c) for c in frame.columns]
    frame = frame.rename(columns=str)
    for column in chosen:
        column_values = _series_values(f"series {column!r}", frame, [column])
        # a wide frame's series may start and end at different rows: keep each one's
        # span, from its first to its last reading
        finite = np.flatnonzero(np.isfinite(column_values[:, 0]))
        first, last = (finite[0], finite[-1] + 1) if len(finite) else (0, 0)
        values[column] = column_values[first:last]
        times[column] = index[first:last]
    return values, times, time_col


def _array_series(
    data: Any, freq: str | None
) -> tuple[dict[str, np.ndarray], dict[str, pd.DatetimeIndex | None]]:
    """A ``(time,)`` or ``(time, series)`` array as its series, without timestamps."""
    values: dict[str, np.ndarray] = {}
    times: dict[str, pd.DatetimeIndex | None] = {}
    array = np.asarray(data)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"data must be a DataFrame, a Series or a numeric array, got {type(data).__name__}"
            f" of dtype {array.dtype}; pass one of those"
        )
    if array.ndim not in (1, 2):
        raise ValueError(
            f"an array must be (time,) for one series or (time, series), got shape {array.shape}"
        )
    matrix = array.astype(np.float64).reshape(len(array), -1)  # (time, series)
    for j in range(matrix.shape[1]):
        values[str(j)] = matrix[:, j : j + 1]
        times[str(j)] = None
    if freq is not None:
        raise ValueError(
            f"freq={freq!r} was given for an array, which has no timestamps; pass a "
            "DataFrame or Series with a DatetimeIndex, or leave freq out"
        )
    return values, times


def _position(data: TrainingData, series_id: str, row: int, column: int) -> str:
    """Where a training value sits, for messages: its row (and timestamp, and column)."""
    times = data.times.get(series_id)
    at = f"row {row}" if times is None else f"row {row} ({times[row]})"
    if len(data.columns) > 1:
        at += f", column {data.columns[column]!r}"
    return at


def check_outliers(data: TrainingData, allow: bool) -> None:
    """Refuse absurd training values (beyond float32 always; outliers unless ``allow``).

    The rule, per series and column: the bulk is the values without the ``ceil(1%)`` lowest
    and highest (at least one each end); its width is the larger of the bulk's range and
    the median of the nonzero distances to the median (so that a series of mostly zeros
    with spikes is judged by its spikes). A value more than ``OUTLIER_FACTOR`` widths below
    or above the bulk is refused. Series of fewer than four values, or whose values are all
    equal but one (no width to judge by), are not judged.
    """
    for series_id, values in data.values.items():  # (time, columns)
        where = functools.partial(_position, data, series_id)
        huge = np.abs(values) > _FLOAT32_MAX
        if huge.any():
            row, column = np.argwhere(huge)[0]
            raise ValueError(
                f"series {series_id!r}: value {values[row, column]:.6g} at "
                f"{where(int(row), int(column))} is beyond the float32 range the model "
                f"computes in ({_FLOAT32_MAX:.4g}); fix or drop it (or rescale the series)"
            )
        if allow:
            continue
        for column in range(values.shape[1]):
            column_values = values[:, column]
            ordered = np.sort(column_values)
            n = len(ordered)
            k = max(1, math.ceil(0.01 * n))
            if n < 2 * k + 2:
                continue
            bulk_low, bulk_high = ordered[k], ordered[n - k - 1]
            distances = np.abs(column_values - np.median(column_values))
            distances = distances[distances > 0]
            width = max(bulk_high - bulk_low, np.median(distances) if len(distances) else 0.0)
            if width == 0:
                continue
            low, high = bulk_low - OUTLIER_FACTOR * width, bulk_high + OUTLIER_FACTOR * width
            outside = (column_values < low) | (column_values > high)
            if outside.any():
                row = int(np.argmax(outside))
                raise ValueError(
                    f"series {series_id!r}: value {column_values[row]:.6g} at "
                    f"{where(row, column)} is an absurd outlier, beyond [{low:.6g}, "
                    f"{high:.6g}] ({OUTLIER_FACTOR:g} widths around the bulk of the series, "
                    f"{bulk_low:.6g} to {bulk_high:.6g}); fix or drop it, or pass "
                    "allow_outliers=True (lstmlab fit --allow-outliers) to train on it"
                )
