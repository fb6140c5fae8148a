"""A series' state between calls, and its codec: ``SeriesState`` as named arrays and back.

What the Forecaster, the service and the Keras exchange carry per series (``SeriesState``: the
recurrent state or the last window, the next prediction, the last timestamp and zone, the
count of readings, the series' scaler), how one state becomes a row of named arrays for the
state store (``state_arrays``, ``state_from_arrays``; the store turns a row into bytes,
``lstmlab.live.stores.encode_state``), and how the states of many series stack into the
arrays of a model folder or a Keras model (``encode_states``, ``decode_states``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import ModelConfig
from lstmlab.data.calendar import timestamp_at
from lstmlab.data.scaling import Scaler
from lstmlab.live.stores import NO_TIME, StateStore, StoredState

if TYPE_CHECKING:
    from lstmlab.pipeline import Recipe

__all__ = [
    "ERRORS_KEPT",
    "ZONE_BYTES",
    "SeriesState",
    "StateCodec",
    "decode_states",
    "encode_states",
    "fresh_series_state",
    "observed_errors",
    "state_arrays",
    "state_from_arrays",
    "zone_bytes",
    "zone_name",
]

# A time zone name (or UTC offset) is stored as this many UTF-8 bytes, zero padded.
ZONE_BYTES = 64
# A state keeps this many of its latest one-step errors: as many as the most calibration
# residuals a series has (``lstmlab.pipeline.CALIBRATION_ORIGINS``, checked by a test).
ERRORS_KEPT = 64
NO_ERRORS = np.zeros((0, 0), np.float32)  # no error seen yet (any column count)
NO_ERRORS.flags.writeable = False


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SeriesState:
    """What a series carries between calls (NumPy arrays, read-only by convention).

    Attributes:
        rnn: one ``LSTMState`` per layer with ``(seeds, units)`` float32 arrays; ``()`` for
            window models.
        recent: ``(k, columns)`` float32, the last ``k <= window`` scaled readings (the
            window the model read last; ``(0, columns)`` for a model that reads a stream).
        prediction: ``(seeds, outputs)`` float32, every seed's scaled output after the last
            reading (the next step; the next ``horizon`` steps, step-major, of a direct
            model), or ``None`` before the model can forecast.
        last_time: the last reading's timestamp in nanoseconds since the epoch, or ``None``.
        seen: readings observed so far.
        scaler: the series' own scaler (fitted on its training values; a new series gets the
            forecaster's default), or ``None`` for none.
        zone: the time zone of the series' timestamps, when they are aware: the zone name
            (``"Europe/Berlin"``) or the UTC offset (``"+05:00"``) of the last reading;
            ``None`` for naive timestamps (or none).
        errors: ``(k, columns)`` float32, the scaled errors (reading minus the seed median
            of the one-step forecast it met: the ``prediction`` held, or within one read the
            output after the reading before) of the last ``k <= ERRORS_KEPT`` readings,
            oldest first: what the intervals learn from after ``fit``
            (``lstmlab.pipeline.Calibration.halfwidths``).
    """

    rnn: tuple[LSTMState, ...]
    recent: np.ndarray
    prediction: np.ndarray | None
    last_time: int | None
    seen: int
    scaler: Scaler | None = None
    zone: str | None = None
    errors: np.ndarray = field(default_factory=lambda: NO_ERRORS)

    @property
    def last_timestamp(self) -> pd.Timestamp | None:
        """The last reading's timestamp, aware (in ``zone``) when the readings were aware."""
        return None if self.last_time is None else timestamp_at(self.last_time, self.zone)


# --------------------------------------------------------------------------- state encoding


def state_arrays(
    config: ModelConfig, recipe: Recipe, state: SeriesState, seeds: int
) -> dict[str, np.ndarray]:
    """One series' state as named arrays (one row of ``encode_states``)."""
    columns = config.features
    arrays: dict[str, np.ndarray] = {}
    for layer, lstm_state in enumerate(state.rnn):
        for name in ("h", "c"):
            array = getattr(lstm_state, name)  # (seeds, units)
            # a copy the row owns (a store may keep it)
            arrays[f"rnn.{layer}.{name}"] = np.array(array[0] if seeds == 1 else array, np.float32)
    window = 0 if config.streams else recipe.window  # a stream keeps no readings
    recent = np.zeros((window, columns), np.float32)
    k = min(len(state.recent), window)
    if k:
        recent[:k] = state.recent[-k:]
    prediction = np.zeros((seeds, config.outputs), np.float32)
    if state.prediction is not None:
        prediction[:] = state.prediction
    arrays.update(
        recent=recent,
        recent_length=np.asarray(k, np.int64),
        prediction=prediction[0].copy() if seeds == 1 else prediction,
        has_prediction=np.asarray(state.prediction is not None, np.uint8),
        last_time=np.asarray(NO_TIME if state.last_time is None else state.last_time, np.int64),
        seen=np.asarray(state.seen, np.int64),
        zone=zone_bytes(state.zone),
    )
    errors = np.zeros((ERRORS_KEPT, columns), np.float32)
    if len(state.errors):
        errors[: len(state.errors)] = state.errors
    arrays.update(errors=errors, errors_length=np.asarray(len(state.errors), np.int64))
    if state.scaler is not None:
        arrays["scaler.offset"] = np.asarray(state.scaler.offset, np.float64)
        arrays["scaler.scale"] = np.asarray(state.scaler.scale, np.float64)
    return arrays


def state_from_arrays(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    seeds: int,
    scaler_kind: str,
    label: str,
) -> SeriesState:
    """Inverse of ``state_arrays``."""
    stacked = {name: np.asarray(array)[None] for name, array in arrays.items()}
    return _states_from_rows(config, recipe, stacked, seeds, scaler_kind, label)[0]


def _states_from_rows(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    seeds: int,
    scaler_kind: str,
    label: str,
) -> list[SeriesState]:
    """``state_from_arrays`` of every row of stacked arrays (a row per series), at once.

    Each array is converted once for all rows; a state's arrays are views of one copy (never
    of the caller's buffer), read-only by convention.

    Args:
        config: the model.
        recipe: its recipe.
        arrays: ``state_arrays``' names, each with a leading row axis.
        seeds: trainings side by side (one: the arrays have no seeds axis).
        scaler_kind: the kind of the series' scalers.
        label: the states in messages (``"series 'a'"``).

    Returns:
        One state per row.

    Raises:
        ValueError: arrays missing or of the wrong shape for the model.
    """
    layers = len(config.units) if config.stateful else 0
    needed = [f"rnn.{layer}.{n}" for layer in range(layers) for n in ("h", "c")]
    needed += ["recent", "recent_length", "prediction", "has_prediction", "last_time", "seen"]
    missing = [name for name in needed if name not in arrays]
    if missing:
        raise ValueError(f"the stored state of {label} lacks {missing}; save the model again")

    def with_seeds(array: np.ndarray) -> np.ndarray:
        array = np.array(array, np.float32)  # a copy: never a view of a caller's buffer
        return array[:, None] if seeds == 1 else array  # (rows, seeds, ...)

    h = [with_seeds(arrays[f"rnn.{layer}.h"]) for layer in range(layers)]
    c = [with_seeds(arrays[f"rnn.{layer}.c"]) for layer in range(layers)]
    for layer in range(layers):
        if h[layer].shape[1:] != (seeds, config.units[layer]):
            raise ValueError(
                f"the stored state of {label} has shape {h[layer].shape[1:]} in layer {layer}, "
                f"the model needs {(seeds, config.units[layer])}; save the model again"
            )
    recent = np.array(arrays["recent"], np.float32)
    lengths = np.asarray(arrays["recent_length"]).tolist()
    prediction = with_seeds(arrays["prediction"])
    has_prediction = np.asarray(arrays["has_prediction"]).astype(bool).tolist()
    last_times = np.asarray(arrays["last_time"]).tolist()
    seen = np.asarray(arrays["seen"]).tolist()
    rows = len(seen)
    # a state stored before time zones were kept has no "zone": naive
    zones: list[str | None] = [None] * rows
    if "zone" in arrays and np.asarray(arrays["zone"]).any():
        zones = [zone_name(row) for row in np.asarray(arrays["zone"])]
    # a state stored before errors were kept has none
    errors = np.array(arrays["errors"], np.float32) if "errors" in arrays else None
    error_counts = [0] * rows if errors is None else np.asarray(arrays["errors_length"]).tolist()
    scalers: list[Scaler | None] = [None] * rows
    if "scaler.offset" in arrays:
        offsets = np.asarray(arrays["scaler.offset"], np.float64).tolist()
        scales = np.asarray(arrays["scaler.scale"], np.float64).tolist()
        scalers = [
            Scaler(kind=scaler_kind, columns=recipe.columns, offset=offset, scale=scale)
            for offset, scale in zip(offsets, scales, strict=True)
        ]
    return [
        SeriesState(
            rnn=tuple(LSTMState(h=h[layer][k], c=c[layer][k]) for layer in range(layers)),
            recent=recent[k, : lengths[k]],
            prediction=prediction[k] if has_prediction[k] else None,
            last_time=None if last_times[k] == NO_TIME else last_times[k],
            seen=seen[k],
            scaler=scalers[k],
            zone=zones[k],
            errors=errors[k, : error_counts[k]] if error_counts[k] else NO_ERRORS,
        )
        for k in range(rows)
    ]


def encode_states(
    config: ModelConfig,
    recipe: Recipe,
    states: Mapping[str, SeriesState],
    *,
    seeds: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Stack per-series states into arrays (row ``i``: series ``i``) and a JSON description.

    Args:
        config: the model.
        recipe: its recipe.
        states: series id -> state.
        seeds: trainings side by side; with one, the seeds axis is left out.

    Returns:
        ``(arrays, meta)``: ``rnn.{layer}.h``/``.c`` ``(series, units)`` (``(series, seeds,
        units)``), ``recent`` ``(series, window, columns)`` (left-aligned, ``recent_length``
        valid rows), ``prediction`` ``(series, columns)`` with ``has_prediction``,
        ``last_time`` and ``seen`` ``(series,)`` int64, ``errors`` ``(series, ERRORS_KEPT,
        columns)`` (left-aligned, ``errors_length`` valid rows), and ``scaler.offset``/``.scale``
        when the series have scalers; ``meta`` holds the series ids in row order.
    """
    rows = [state_arrays(config, recipe, state, seeds) for state in states.values()]
    if not rows:
        empty = state_arrays(config, recipe, fresh_series_state(config, seeds, None), seeds)
        return {k: np.zeros((0, *v.shape), v.dtype) for k, v in empty.items()}, {"series": []}
    names = rows[0].keys()
    if any(row.keys() != names for row in rows):
        raise ValueError("every series needs a scaler, or none; give all series one")
    return {name: np.stack([row[name] for row in rows]) for name in names}, {"series": list(states)}


def decode_states(
    config: ModelConfig,
    recipe: Recipe,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    *,
    seeds: int = 1,
    scaler_kind: str = "minmax",
) -> dict[str, SeriesState]:
    """Inverse of ``encode_states``.

    Raises:
        ValueError: arrays missing or of the wrong shape for the model.
    """
    ids = list(meta.get("series", []))
    for name, array in arrays.items():
        if array.shape[0] != len(ids):
            raise ValueError(
                f"saved state {name!r} has {array.shape[0]} rows for {len(ids)} series; "
                "save the model again"
            )
    if not ids:
        return {}
    label = f"series {ids[0]!r}" + (f" (and {len(ids) - 1} more)" if len(ids) > 1 else "")
    return dict(
        zip(ids, _states_from_rows(config, recipe, arrays, seeds, scaler_kind, label), strict=True)
    )


def fresh_series_state(config: ModelConfig, seeds: int, scaler: Scaler | None) -> SeriesState:
    """The state a new series starts from: zero recurrent state, nothing read yet."""
    # Zeros as in ``init_state``, made in NumPy: no device round trip per new id.
    units = config.units if config.stateful else ()
    rnn = tuple(
        LSTMState(h=np.zeros((seeds, u), np.float32), c=np.zeros((seeds, u), np.float32))
        for u in units
    )
    return SeriesState(
        rnn=rnn,
        recent=np.zeros((0, config.features), np.float32),
        prediction=None,
        last_time=None,
        seen=0,
        scaler=scaler,
    )


def observed_errors(errors: np.ndarray, held: np.ndarray, readings: np.ndarray) -> np.ndarray:
    """``errors`` and the error of each one-step forecast the readings met, the latest kept.

    Args:
        errors: ``SeriesState.errors`` before the readings, ``(k, columns)``.
        held: ``(seeds, readings, outputs)`` the scaled prediction held when each reading
            came (its first ``columns`` outputs are the next step); NaN for none.
        readings: ``(readings, columns)`` the readings, scaled.

    Returns:
        ``SeriesState.errors`` after the readings: each reading's error (the reading minus
        the seed median of the prediction it met) appended in order, where that median is
        finite; the latest ``ERRORS_KEPT``.
    """
    columns = readings.shape[1]
    # the seed median, by a sort: np.median costs ten times as much for a few seeds
    ordered = np.sort(held[:, :, :columns], axis=0)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    new = (readings - median).astype(np.float32)  # (readings, columns)
    new = new[np.isfinite(new).all(axis=1)]
    if not len(new):
        return errors
    if len(errors):
        new = np.concatenate([errors, new])
    return new[-ERRORS_KEPT:]


# --------------------------------------------------------------------------- time


def zone_bytes(zone: str | None) -> np.ndarray:
    """``(ZONE_BYTES,)`` uint8: the zone's UTF-8 bytes, zero padded (all zeros: naive)."""
    out = np.zeros(ZONE_BYTES, np.uint8)
    if zone is not None:
        raw = zone.encode()
        if not raw or len(raw) > ZONE_BYTES:
            raise ValueError(
                f"time zone {zone!r} cannot be kept (1 to {ZONE_BYTES} bytes); pass "
                "timestamps with a UTC offset such as '+05:00'"
            )
        out[: len(raw)] = np.frombuffer(raw, np.uint8)
    return out


def zone_name(array: np.ndarray) -> str | None:
    """Inverse of ``zone_bytes``."""
    raw = np.asarray(array, np.uint8).tobytes().rstrip(b"\0")
    return raw.decode() if raw else None


@dataclass(frozen=True, slots=True, eq=False)
class StateCodec:
    """One model's series states to and from a ``StateStore``'s rows.

    Attributes:
        model: the network.
        recipe: its recipe (the window a state keeps).
        seeds: trainings side by side.
        scaler_kind: the kind of the series' scalers (``ForecasterConfig.scaler``).
    """

    model: ModelConfig
    recipe: Recipe
    seeds: int
    scaler_kind: str
    # the rows this codec encoded from states that decode gives back, by the row's identity
    # (a store's cache serves the row it was given): decode returns the state, unread
    encoded: OrderedDict[int, tuple[StoredState, SeriesState]] = field(
        default_factory=OrderedDict, repr=False
    )

    ENCODED_KEPT = 1024  # as many as a store's cache holds by default

    def fresh(self, scaler: Scaler | None) -> SeriesState:
        """The state a new series starts from (``fresh_series_state``)."""
        return fresh_series_state(self.model, self.seeds, scaler)

    def encode(self, state: SeriesState) -> StoredState:
        """A state as the store's row."""
        arrays = state_arrays(self.model, self.recipe, state, self.seeds)
        last_time = None if state.last_time is None else int(state.last_time)
        stored = StoredState(arrays=arrays, seen=int(state.seen), last_time=last_time)
        if self.holds(state):
            self.encoded[id(stored)] = (stored, state)
            while len(self.encoded) > self.ENCODED_KEPT:
                self.encoded.popitem(last=False)
        return stored

    def holds(self, state: SeriesState) -> bool:
        """Whether ``decode(encode(state))`` gives ``state`` back.

        Each field must be of the type, dtype, shape and length that decoding makes; the
        values are copied exactly.
        """
        model, seeds = self.model, self.seeds
        columns, layers = model.features, len(model.units) if model.stateful else 0

        def is_array(array: Any, shape: tuple[int, ...]) -> bool:
            return (
                isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == shape
            )

        units = model.units if model.stateful else ()
        window = 0 if model.streams else self.recipe.window
        errors, scaler = state.errors, state.scaler
        return (
            len(state.rnn) == layers
            and all(
                is_array(s.h, (seeds, n)) and is_array(s.c, (seeds, n))
                for s, n in zip(state.rnn, units, strict=True)
            )
            and is_array(state.recent, (len(state.recent), columns))
            and len(state.recent) <= window
            and (state.prediction is None or is_array(state.prediction, (seeds, model.outputs)))
            and type(state.seen) is int
            and (state.last_time is None or type(state.last_time) is int)
            and (state.zone is None or type(state.zone) is str)
            and (
                errors.shape == (0, 0)
                if not len(errors)
                else is_array(errors, (len(errors), columns)) and len(errors) <= ERRORS_KEPT
            )
            and (
                scaler is None
                or (scaler.kind == self.scaler_kind and scaler.columns == self.recipe.columns)
            )
        )

    def decode(self, series_id: str, stored: StoredState) -> SeriesState:
        """Inverse of ``encode``."""
        known = self.encoded.get(id(stored))
        if known is not None and known[0] is stored:
            return known[1]
        return state_from_arrays(
            self.model,
            self.recipe,
            stored.arrays,
            self.seeds,
            self.scaler_kind,
            f"series {series_id!r}",
        )

    def read(self, store: StateStore, series: Sequence[str] | None) -> dict[str, SeriesState]:
        """The stored states of ``series``; ``None``: every series.

        Every series is read in pages, each page decoded at once.

        Raises:
            KeyError: an unknown series id.
        """
        if series is None:
            states: dict[str, SeriesState] = {}
            for page in store.pages():
                meta = {"series": list(page.ids)}
                states.update(
                    decode_states(
                        self.model,
                        self.recipe,
                        page.arrays,
                        meta,
                        seeds=self.seeds,
                        scaler_kind=self.scaler_kind,
                    )
                )
            return states
        states = {}
        for series_id in series:
            stored = store.get(series_id)
            if stored is None:
                raise KeyError(
                    f"unknown series {series_id!r}; the forecaster knows {len(store)} series "
                    f"(e.g. {list(store.series_ids()[:3])}); fit or observe it first"
                )
            states[series_id] = self.decode(series_id, stored)
        return states
