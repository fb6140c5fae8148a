"""What a live model takes and gives: checked readings, the one retry rule, a forecast.

``checked_values`` and ``check_within`` are the checks of a reading that need no state
(``Forecaster.check_values`` applies them with the series' training range); ``Readings`` holds
readings that passed them with their parsed times; ``repeated`` (with ``check_repeats``) is the
retry rule of ``Forecaster.observe``, ``lstmlab observe`` and the service; ``Forecast`` is one
series' answer.
"""

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.data.calendar import (
    SeriesClock,
    forecast_time_column,
    kept_zone,
    parse_steps,
    parse_times,
    timestamp_at,
)
from lstmlab.live.stores import StateStore
from lstmlab.pipeline import Recipe
from lstmlab.scoring import SeedFlags, flag_forecasts, seed_ensemble
from lstmlab.states import SeriesState
from lstmlab.stepping import Prepared

__all__ = [
    "ConflictError",
    "Forecast",
    "Readings",
    "check_repeats",
    "check_within",
    "check_timestamp_kind",
    "checked_values",
    "forecast_frame",
    "frame_readings",
    "prepared",
    "repeated",
    "series_forecasts",
    "timed_readings",
    "unknown_series",
]

# The largest float32: a reading beyond it cannot be computed with, whatever the factor.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Readings:
    """Readings that passed ``SeriesNetwork.check_readings``: checked values, parsed times."""

    values: np.ndarray  # (readings, columns) float64, original units
    # (readings,) int64: nanoseconds since the epoch (UTC), step numbers (a series of steps)
    times: np.ndarray | None
    zone: str | None  # the zone of aware timestamps (the last reading's); None: naive or none

    def tail(self, start: int) -> "Readings":
        """The readings from position ``start`` on (the zone stays the last reading's)."""
        times = None if self.times is None else self.times[start:]
        return Readings(values=self.values[start:], times=times, zone=self.zone)


class ConflictError(ValueError):
    """Readings that contradict what a series already accepted (HTTP 409)."""


def check_repeats(
    series_id: str,
    readings: np.ndarray,
    keys: Sequence[int],
    logged: Mapping[int, np.ndarray],
    column: str,
    describe: Sequence[str],
) -> int:
    """How many leading ``readings`` repeat the log exactly: all of ``keys``, or a conflict.

    The one retry rule of ``Forecaster.observe``, ``lstmlab observe`` and the service: a
    reading sent again with its key (timestamp or sequence number) and identical values is a
    repeat, answered without being applied twice; other values under an accepted key, or an
    old key the log never accepted, are a ``ConflictError``.

    Args:
        series_id: the series, for the message.
        readings: ``(n, columns)`` the request's readings, the keys' first.
        keys: the leading readings' keys (timestamps in ns, or sequence numbers).
        logged: key -> accepted reading, from the store's log (``StateStore.logged``).
        column: ``"timestamp"``, ``"step"`` or ``"seq"``, for the message.
        describe: each key as the message shows it.
    """
    for i, (key, text) in enumerate(zip(keys, describe, strict=True)):
        if key not in logged:
            raise ConflictError(
                f"series {series_id!r}: the reading with {column} {text} is older than the "
                f"series' last accepted reading and was never accepted here; readings must "
                "arrive in time order"
            )
        if not np.array_equal(logged[key], readings[i]):
            raise ConflictError(
                f"series {series_id!r}: the reading with {column} {text} was already "
                f"accepted with values {logged[key].tolist()}, got {readings[i].tolist()}; "
                "a repeated reading must be identical"
            )
    return len(keys)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Forecast:
    """A forecast for one series (the median over seeds).

    Attributes:
        series_id: the series.
        values: ``(horizon, columns)`` float64 in the original units, or ``None`` while a
            window model has seen fewer than ``window`` readings.
        timestamps: ISO timestamps of the forecast steps, when the series has timestamps and
            the recipe a frequency; their step numbers as text (``"145"``) for a series of
            steps; else ``None``.
        seen: readings observed so far.
        needed: readings still needed before a forecast exists (0 when ``values`` is set).
        flags: the sanity check of every seed's forecast (``None`` while there is none):
            flagged seeds are left out of the median; when every seed is flagged,
            ``values`` is NaN.
        repeated: readings of the call that repeated accepted ones (``check_repeats``) and
            were not applied again.
    """

    series_id: str
    values: np.ndarray | None
    timestamps: tuple[str, ...] | None
    seen: int
    needed: int
    flags: SeedFlags | None = None
    repeated: int = 0

    @property
    def warning(self) -> str:
        """What the sanity check found ("" when every seed passed)."""
        return "" if self.flags is None else self.flags.note

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (values as nested lists; ``warning`` only when a seed is flagged).

        A value no seed could give (every seed flagged) is ``None`` (JSON ``null``), never a
        NaN that strict JSON refuses; ``warning`` says why.
        """
        values = None
        if self.values is not None:
            values = np.where(np.isfinite(self.values), self.values, None).tolist()
        out = {
            "series_id": self.series_id,
            "values": values,
            "timestamps": None if self.timestamps is None else list(self.timestamps),
            "seen": self.seen,
            "needed": self.needed,
        }
        if self.warning:
            out["warning"] = self.warning
        return out


def checked_values(series_id: str, values: Any, names: Sequence[str]) -> np.ndarray:
    """Readings as ``(readings, columns)`` float64, or a ``ValueError`` saying what is wrong.

    A reading is numbers, one per column of ``names``, finite, and within float32's range
    (the model computes in float32).
    """
    columns = len(names)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"series {series_id!r}: readings must be numbers, got {values!r:.80}; pass "
            f"numbers of shape (readings, {columns})"
        ) from None
    if array.ndim == 1 and columns == 1:
        array = array[:, None]  # (readings,) -> (readings, 1)
    if array.ndim != 2 or array.shape[1] != columns:
        got = array.shape[1] if array.ndim == 2 else f"shape {array.shape}"
        raise ValueError(
            f"series {series_id!r}: each reading needs {columns} value(s) (columns "
            f"{list(names)}), got {got}; pass values of shape (readings, "
            f"{columns})"
        )
    if array.shape[0] == 0:
        raise ValueError(f"series {series_id!r}: no readings given; pass at least one")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"series {series_id!r}: reading {first} holds NaN or infinite values "
            f"({array[first].tolist()}); readings must be finite, fill or drop it before "
            "observing"
        )
    huge = (np.abs(array) > _FLOAT32_MAX).any(axis=1)
    if huge.any():
        first = int(np.argmax(huge))
        raise ValueError(
            f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
            "the float32 range the model computes in, once scaled; check its units (no "
            f"plausible_factor accepts a value beyond {_FLOAT32_MAX:.4g})"
        )
    return array


def check_within(
    series_id: str,
    array: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    extremes: tuple[np.ndarray, np.ndarray],
    factor: float,
) -> None:
    """Refuse the first reading outside ``bounds``, the plausible range.

    ``bounds``: ``(low, high)``, ``(columns,)`` each, ``factor`` training ranges around the
    training ``extremes`` (``lstmlab.scoring.plausible_range``).
    """
    low, high = bounds  # (columns,) each
    outside = ((array < low) | (array > high)).any(axis=1)
    if outside.any():
        first = int(np.argmax(outside))
        column = int(np.argmax((array[first] < low) | (array[first] > high)))

        def g(value: float) -> str:
            return f"{value:.6g}"

        raise ValueError(
            f"series {series_id!r}: reading {first} ({g(array[first, column])}) is outside "
            f"the plausible range [{g(low[column])}, {g(high[column])}] ({factor:g} training "
            f"ranges around the training values {g(extremes[0][column])} to "
            f"{g(extremes[1][column])}); check its units, or accept it with a larger "
            "plausible_factor (--plausible-factor) or none (plausible_factor=None, "
            "--allow-implausible)"
        )


def repeated(
    store: StateStore,
    series_id: str,
    state: SeriesState,
    readings: np.ndarray,
    stamps: np.ndarray | None,
    seq: int | None,
    clock: SeriesClock,
) -> int:
    """How many leading readings were already accepted: the one retry rule.

    ``Forecaster.observe``, ``lstmlab observe`` and the service answer a retry with it.
    Readings are keyed by their timestamps (``_repeated_by_time``), by ``seq``, the sequence
    number of the first one (``_repeated_by_seq``), or both, which must then find the same
    repeated readings; without a key nothing is a repeat.

    Args:
        store: the series' store, whose observation log holds the accepted readings.
        series_id: the series.
        state: its state before the readings.
        readings: ``(n, columns)`` the readings.
        stamps: their times in ns (or step numbers), or ``None``.
        seq: the sequence number of the first reading, or ``None``.
        clock: the series' clock (how a time reads in a message).

    Raises:
        ConflictError: a key accepted with other values, an old key never accepted,
            ``seq`` past the series' end, or timestamps and ``seq`` that disagree.
    """
    by_time = by_seq = None
    if stamps is not None:
        by_time = _repeated_by_time(store, series_id, state, readings, stamps, clock)
    if by_time is not None and seq is not None and by_time < len(readings):
        # the first new reading continues the series: it has seq ``state.seen``
        if seq + by_time != state.seen:
            raise _disagree(series_id, state, len(readings), seq, by_time)
    if seq is not None:
        by_seq = _repeated_by_seq(store, series_id, state, readings, seq)
    if by_time is not None and by_seq is not None and by_time != by_seq:
        raise _disagree(series_id, state, len(readings), seq, by_time)
    if by_time and seq is not None:
        # equal values at the claimed seqs are not enough ([1, 1, 1] with seq 0 and the
        # third timestamp): the log must hold the repeated timestamps at those seqs
        keys = [int(t) for t in stamps[:by_time]]
        logged = store.logged_seqs(series_id, keys)
        for i, key in enumerate(keys):
            if logged.get(key) != seq + i:
                raise ConflictError(
                    f"series {series_id!r}: seq {seq} does not agree with the timestamps: "
                    f"the reading at {clock.text(key, state.zone)} was accepted with "
                    f"seq {logged.get(key)}, not {seq + i}; send the seq of the first "
                    f"reading (here {logged.get(keys[0])}), or timestamps alone"
                )
    return (by_seq or 0) if by_time is None else by_time


def _repeated_by_time(
    store: StateStore,
    series_id: str,
    state: SeriesState,
    values: np.ndarray,
    times: np.ndarray,
    clock: SeriesClock,
) -> int:
    """How many leading readings repeat accepted ones, by their timestamps (the log).

    Readings not newer than the series' last one must be in its observation log with
    identical values (``check_repeats``); ``ConflictError`` otherwise.
    """
    if state.last_time is None:
        return 0
    old = int(np.searchsorted(times, state.last_time, side="right"))  # times ascend
    if not old:
        return 0
    keys = [int(t) for t in times[:old]]
    logged = store.logged(series_id, "time", keys)
    describe = [clock.text(t, state.zone) for t in keys]
    column = "timestamp" if clock.step is None else "step"
    return check_repeats(series_id, values, keys, logged, column, describe)


def _disagree(
    series_id: str, state: SeriesState, count: int, seq: int, by_time: int
) -> ConflictError:
    return ConflictError(
        f"series {series_id!r}: seq {seq} does not agree with the timestamps: by their "
        f"timestamps {by_time} of the {count} readings are already accepted and the "
        f"series has {state.seen} readings; send the seq of the first reading"
        + (f" (here {state.seen - by_time})" if by_time < count else "")
        + ", or timestamps alone"
    )


def _repeated_by_seq(
    store: StateStore, series_id: str, state: SeriesState, readings: np.ndarray, seq: int
) -> int:
    """How many leading readings repeat accepted ones, by ``seq`` (the log).

    Raises:
        ConflictError: ``seq`` past the series' end, or a seq accepted with other values.
    """
    if seq > state.seen:
        raise ConflictError(
            f"series {series_id!r}: seq {seq} leaves a gap: the series has "
            f"{state.seen} readings, so the next reading has seq {state.seen}; send "
            "the missing readings first"
        )
    keys = list(range(seq, min(seq + len(readings), state.seen)))
    if not keys:
        return 0
    logged = store.logged(series_id, "seq", keys)
    return check_repeats(series_id, readings, keys, logged, "seq", [str(k) for k in keys])


def frame_readings(
    series_id: str, new_data: Any, timestamps: Any, recipe: Recipe
) -> tuple[Any, Any]:
    """``new_data`` (DataFrame, Series or array) as ``(values, timestamps)``.

    The times are the index's: timestamps, or, for a series of steps, integer labels
    (pandas' default ``RangeIndex`` from 0 labels nothing: such readings go on from the
    series' last step); else a time column.
    """
    if not isinstance(new_data, (pd.Series, pd.DataFrame)):
        return new_data, timestamps
    index = new_data.index
    labelled = isinstance(index, pd.DatetimeIndex) or (
        recipe.step is not None
        and pd.api.types.is_integer_dtype(index.dtype)
        and not (index.equals(pd.RangeIndex(len(index))) and index.name is None)
    )
    if labelled and timestamps is None:
        timestamps = index
    if isinstance(new_data, pd.Series):
        return new_data.to_numpy(), timestamps
    frame = new_data
    time_col = recipe.time_col
    if not labelled:
        candidates = [c for c in (time_col, "time", "ds") if c is not None and c in frame]
        if not candidates:
            candidates = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])][
                :1
            ]
        if candidates:
            if timestamps is None:
                timestamps = frame[candidates[0]].astype(str).tolist()
            frame = frame.drop(columns=candidates[0])
    columns = list(recipe.columns)
    names = [str(c) for c in frame.columns]
    frame.columns = names
    if not set(columns) <= set(names):
        if len(columns) == 1:
            chosen = [c for c in (series_id, "value", "y") if c in names]
            columns = chosen[:1] or (names if len(names) == 1 else [])
        if len(columns) != len(recipe.columns) or not set(columns) <= set(names):
            raise ValueError(
                f"series {series_id!r}: cannot tell which column(s) of the DataFrame hold "
                f"the readings (columns: {names}); the model reads "
                f"{list(recipe.columns)}, name the columns so"
            )
    return frame[columns].to_numpy(), timestamps


def series_forecasts(
    states: Mapping[str, SeriesState],
    scaled: np.ndarray | None,
    plausible: Callable[[str], tuple[np.ndarray, np.ndarray]],
    clock: SeriesClock,
    window: int | None,
) -> tuple[dict[str, Forecast], dict[str, SeedFlags]]:
    """Every series' ``Forecast`` from every seed's rollout, and the series with a flagged seed.

    Every seed's forecast is checked against the series' plausible range; the flagged seeds
    are left out of the median (all flagged: NaN).

    Args:
        states: series id -> its state.
        scaled: ``(seeds, ready, horizon, columns)`` the scaled rollouts of the states with a
            prediction, in order; ``None`` when none has one.
        plausible: series id -> its plausible range, ``(columns,)`` each.
        clock: the series' clock (the forecast steps' times).
        window: the readings a forecast needs (``None``: a stream, one).

    Returns:
        ``(series id -> Forecast, series id -> SeedFlags of the series with a flagged seed)``.
    """
    ready = [i for i, s in states.items() if s.prediction is not None]
    row_of = {series_id: row for row, series_id in enumerate(ready)}
    sound: np.ndarray = np.zeros(0, bool)
    if ready:
        # every series at once: original units, the flags as flag_forecasts sets them, the
        # median over all seeds where none is flagged (a flagged series, rare, below)
        scalers = [states[i].scaler for i in ready]
        columns = scaled.shape[3]
        # from the scalers' tuples at once, not an array per series
        scale = np.array([(1.0,) * columns if c is None else c.scale for c in scalers])
        offset = np.array(
            [(0.0,) * columns if c is None else c.offset for c in scalers]
        )  # (series, columns)
        original = scaled * scale[None, :, None, :] + offset[None, :, None, :]
        bounds = [plausible(i) for i in ready]
        low = np.stack([b[0] for b in bounds])[None, :, None, :]
        high = np.stack([b[1] for b in bounds])[None, :, None, :]
        with np.errstate(invalid="ignore"):
            bad = (~np.isfinite(original) | (original < low) | (original > high)).any(
                axis=(2, 3)
            )  # (seeds, series)
        sound = ~bad.any(axis=0)
        medians = np.empty(original.shape[1:])  # (series, horizon, columns)
        if sound.any():
            medians[sound] = np.median(original[:, sound], axis=0)
        clean = SeedFlags(
            flagged=np.zeros(original.shape[0], bool),
            non_finite=np.zeros(original.shape[0], np.int64),
            out_of_range=np.zeros(original.shape[0], np.int64),
            reasons=(),
        )
        horizon = original.shape[2]
    stamps_after: dict[tuple[int | None, str | None], tuple[str, ...] | None] = {}
    out, flagged = {}, {}
    for series_id, state in states.items():
        if state.prediction is None:
            needed = 1 if window is None else max(window - len(state.recent), 1)
            out[series_id] = Forecast(
                series_id=series_id, values=None, timestamps=None, seen=state.seen, needed=needed
            )
            continue
        row = row_of[series_id]
        if sound[row]:
            flags, values = clean, medians[row]
        else:
            per_seed = original[:, row : row + 1]  # (seeds, 1, horizon, columns)
            with np.errstate(invalid="ignore"):
                flags = flagged[series_id] = flag_forecasts(per_seed, *bounds[row])
            values = seed_ensemble(per_seed, flags.flagged)[0, 0]  # (horizon, columns)
        key = (state.last_time, state.zone)  # series that end together share their steps
        if key not in stamps_after:
            grid = clock.after(series_id, state.last_time, state.zone, horizon)
            stamps_after[key] = (
                None
                if grid is None
                else tuple(str(t) if clock.step is not None else t.isoformat() for t in grid)
            )
        out[series_id] = Forecast(
            series_id=series_id,
            values=values,
            timestamps=stamps_after[key],
            seen=state.seen,
            needed=0,
            flags=flags,
        )
    return out, flagged


def forecast_frame(
    forecasts: Mapping[str, Forecast],
    states: Mapping[str, SeriesState],
    horizon: int,
    columns: Sequence[str],
    bounds: Sequence[tuple[float, str, str]],
    clock: SeriesClock,
    halfwidths: Callable[[str, float, int, SeriesState], np.ndarray],
) -> pd.DataFrame:
    """``Forecaster.forecast``'s tidy frame of the series' forecasts (those with values).

    Args:
        forecasts: series id -> its ``Forecast`` (``series_forecasts``).
        states: series id -> the state it was forecast from.
        horizon: the steps.
        columns: the value columns.
        bounds: the interval columns (``lstmlab.pipeline.bound_columns``).
        clock: the series' clock (the forecast steps' times).
        halfwidths: ``(series id, level, horizon, state)`` -> ``(horizon, columns)``
            half-widths.
    """
    steps = np.arange(1, horizon + 1)
    # One frame built from whole columns (a global model may forecast 50,000 series):
    # the timestamps computed once per distinct last reading, not once per series.
    kept, times, values = [], [], []
    grids: dict[tuple[int | None, str | None], Any] = {}
    for series_id, forecast in forecasts.items():
        if forecast.values is None:
            continue
        kept.append(series_id)
        if forecast.timestamps is not None:  # aware when the series' readings were
            state = states[series_id]
            key = (state.last_time, state.zone)
            if key not in grids:
                grids[key] = clock.after(series_id, state.last_time, state.zone, horizon)
            times.append(key)
        else:
            times.append(forecast.seen + steps - 1)  # the position of the forecast reading
        values.append(forecast.values)  # (horizon, columns)
    if not kept:
        names = ["series_id", "time", "step"] + (["target"] if len(columns) > 1 else [])
        limits = [name for _, lower, upper in bounds for name in (lower, upper)]
        return pd.DataFrame(columns=[*names, "forecast", *limits])
    per_series = horizon * len(columns)  # rows: series, then column, then step
    # (series, horizon, columns) -> (series, columns, horizon): a column's steps together
    stacked = np.stack(values).transpose(0, 2, 1)
    out = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(kept, dtype=object), per_series),
            "time": forecast_time_column(times, grids, len(columns)),
            "step": np.tile(steps, len(kept) * len(columns)),
            "forecast": stacked.reshape(-1),
        }
    )
    if len(columns) > 1:
        out.insert(3, "target", np.tile(np.repeat(np.asarray(columns), horizon), len(kept)))
    for value, lower, upper in bounds:
        half = np.stack([halfwidths(i, value, horizon, states[i]) for i in kept])
        half = half.transpose(0, 2, 1).reshape(-1)  # as the forecasts
        out[lower] = out["forecast"].to_numpy() - half
        out[upper] = out["forecast"].to_numpy() + half
    if len(columns) > 1:
        out = out.sort_values(["series_id", "step", "target"], kind="stable")
        out = out.reset_index(drop=True)
    out.attrs["warnings"] = {
        series_id: forecast.warning for series_id, forecast in forecasts.items() if forecast.warning
    }
    return out


def timed_readings(series_id: str, array: np.ndarray, timestamps: Any, *, steps: bool) -> Readings:
    """Checked readings with their timestamps parsed: one per reading, or none.

    Args:
        series_id: the series, for messages.
        array: the checked readings (``checked_values``).
        timestamps: one per reading, or ``None``.
        steps: the series are numbered by steps (integers), not timestamps.
    """
    if timestamps is None:
        return Readings(values=array, times=None, zone=None)
    if not hasattr(timestamps, "__len__"):
        timestamps = list(timestamps)  # an iterator: counted once, parsed from the list
    if len(timestamps) != len(array):
        raise ValueError(
            f"series {series_id!r}: {len(timestamps)} timestamps for {len(array)} "
            "readings; pass one timestamp per reading"
        )
    if steps:  # a series numbered by steps
        steps = parse_steps(lambda k: f"series {series_id!r}: reading {k}'s step", timestamps)
        return Readings(values=array, times=steps, zone=None)
    if len(timestamps) and all(isinstance(t, int | np.integer) for t in timestamps):
        raise ValueError(
            f"series {series_id!r}: the timestamps are integers ({timestamps[0]}, ...), "
            "which number steps, but this model's series have timestamps; pass timestamps "
            "such as '1961-01-01'"
        )
    stamps, zone = parse_times(series_id, timestamps)
    return Readings(values=array, times=stamps, zone=zone)


def check_timestamp_kind(
    series_id: str, state: SeriesState, readings: Readings, *, steps: bool
) -> None:
    """One series keeps one kind of timestamps: time-zone aware or naive.

    Checked before anything compares the new timestamps with the series' (a naive
    timestamp is no instant: compared as UTC it could pass for a logged reading).
    """
    zone = readings.zone
    if readings.times is None or state.last_time is None or steps:
        return
    if (zone is None) == (state.zone is None):
        return
    had, got = ("time-zone aware", "naive") if zone is None else ("naive", "aware")
    first = timestamp_at(int(readings.times[0]), zone).isoformat()
    raise ValueError(
        f"series {series_id!r} has {had} timestamps (up to "
        f"{state.last_timestamp.isoformat()}), got {got} ones ({first}); a series' "
        "timestamps are all aware (with an offset such as '+05:00') or all naive: send them "
        + ("with the offset" if zone is None else "without one")
        + ", or start the series afresh (delete_series, observe --reset, DELETE "
        "/series/{id})"
    )


def prepared(
    series_id: str,
    state: SeriesState,
    readings: Readings,
    clock: SeriesClock,
    *,
    steps: bool,
    horizon: int,
) -> Prepared:
    """Checks against the state, then scaling: ``(state, scaled, times ns, readings)``.

    Readings of a series of steps (``steps``) without numbers get the next ones. The times
    must be present, in order and on the series' grid, with ``horizon`` forecast steps
    datable after them (``SeriesClock.check_next``); an aware reading sets the series' zone.

    Raises:
        ValueError: what ``check_next`` refuses, or a reading beyond float32 once scaled.
    """
    if steps and readings.times is None:
        numbers = clock.next_steps(state.last_time, state.seen, len(readings.values))
        readings = dataclasses.replace(readings, times=numbers)
    clock.check_next(
        series_id,
        state.last_time,
        state.zone,
        readings.times,
        readings.zone,
        len(readings.values),
        horizon=horizon,
    )
    array, stamps = readings.values, readings.times
    if stamps is not None and not steps:
        state = dataclasses.replace(state, zone=kept_zone(state.zone, readings.zone, stamps))
    with np.errstate(over="ignore"):
        scaled = (array if state.scaler is None else state.scaler.transform(array)).astype(
            np.float32
        )
    overflow = ~np.isfinite(scaled).all(axis=1)
    if overflow.any():
        first = int(np.argmax(overflow))
        raise ValueError(
            f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
            "the float32 range the model computes in, once scaled; check its units"
        )
    return state, scaled, stamps, array


def unknown_series(series_id: str, known: Sequence[str], fix: str) -> ValueError:
    """The refusal of an id a model does not have, naming the nearest of its ``known`` ids."""
    near = difflib.get_close_matches(series_id, known, n=3, cutoff=0.6)
    near += [i for i in known if i.casefold() == series_id.casefold() and i not in near]
    hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
    shown = ", ".join(map(repr, known[:5])) + (", ..." if len(known) > 5 else "")
    return ValueError(
        f"series {series_id!r} is not one of this model's {len(known)} series"
        f"{hint}; its series: {shown or 'none yet'}. To start a new series from a fresh "
        f"state, {fix}"
    )
