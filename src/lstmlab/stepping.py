"""A fitted network on series states: read new readings into them, roll them forward.

The arithmetic under ``Forecaster.observe``, ``forecast``, ``replay`` and ``fit``'s
validation rollouts, as functions of the network (``ModelConfig`` and its parameters with a
leading seeds axis) and the series' ``SeriesState``s, which go in and come back; a
``SeriesNetwork`` holds the network, and the ``Forecaster`` the store around it.

Few programs are compiled: the series of one call are padded with zero rows to a power of
two (``bucket``); a stateful model reads its readings through a buffer of ``capacity`` steps
that one compiled loop reads for the true count (``lstmlab.core.rollout.read``), a window
model reads its last window; a rollout writes into a buffer of ``capacity`` steps from one
compiled loop that runs for the asked horizon, doubled when too short.

Exact: reading a series in pieces of any sizes gives the same states and predictions as
reading it at once, bit for bit (every reading is one model step, ``lstmlab.core.rollout.read``,
or one window, ``read_windows``).
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import ModelConfig, Params
from lstmlab.core.rollout import read, read_windows, rollout
from lstmlab.data.layouts import make_windows
from lstmlab.pipeline import Recipe, sequence_outputs
from lstmlab.states import SeriesState, fresh_series_state, observed_errors

__all__ = [
    "Prepared",
    "add_seed_axis",
    "bucket",
    "median_over_seeds",
    "read_states",
    "replay_scaled",
    "rollout_states",
    "stack_rnn",
]

# A series' readings ready to read: (its state, the scaled readings (n, columns) float32, their
# times in ns or None, the readings in original units or None).
Prepared = tuple[SeriesState, np.ndarray, np.ndarray | None, np.ndarray | None]


def bucket(count: int) -> int:
    """``count`` rounded up to a power of two: the compiled shape that serves it."""
    return 1 << (count - 1).bit_length()


def stack_rnn(states: Sequence[SeriesState]) -> tuple[LSTMState, ...]:
    """Per-series ``(seeds, units)`` states as ``(seeds, series, units)`` per layer."""
    layers = len(states[0].rnn)
    return tuple(
        LSTMState(
            h=np.stack([s.rnn[layer].h for s in states], axis=1),
            c=np.stack([s.rnn[layer].c for s in states], axis=1),
        )
        for layer in range(layers)
    )


def add_seed_axis(params: Params) -> Params:
    """One training's parameters as a stack of one seed."""
    return jax.tree.map(lambda leaf: jax.device_put(np.asarray(leaf)[None]), params)


def median_over_seeds(array: Any) -> np.ndarray:
    """The median over the leading seeds axis; with one seed, that seed's values.

    No sort for one seed: the service's hot path forecasts with one.
    """
    array = np.asarray(array)
    return array[0] if array.shape[0] == 1 else np.median(array, axis=0)


def read_states(
    model: ModelConfig,
    params: Params,
    window: int,
    prepared: Mapping[str, Prepared],
    capacity: int,
    *,
    errors: bool = False,
) -> dict[str, SeriesState]:
    """Every series' state after its prepared readings (``Forecaster``'s checks passed).

    Args:
        model: the network.
        params: its parameters, leaves with a leading seeds axis.
        window: the recipe's window.
        prepared: series id -> ``Prepared``.
        capacity: the readings one compiled read holds (a longer request in pieces of it).
        errors: keep in each state the error of every one-step forecast a reading met
            (``observed_errors``): the one the state held when the first reading came,
            and the model's output after each reading for the next. ``False`` (a
            warm start on training data, a validation origin) leaves ``errors`` as they
            were and computes no output but the last.

    Returns:
        Series id -> the new ``SeriesState``.
    """
    if model.streams:
        read_one = _read_stream
    else:
        read_one = _read_stateful_windows if model.stateful else _read_windowed
    out = {}
    read_out = read_one(model, params, window, prepared, capacity, errors)
    for series_id, (after, outputs) in read_out.items():
        before, scaled = prepared[series_id][0], prepared[series_id][1]
        if errors:
            # the forecast held when each reading came: the state's, then each output's
            held = np.concatenate([_held(before, outputs), outputs[:, :-1]], axis=1)
            after = dataclasses.replace(after, errors=observed_errors(before.errors, held, scaled))
        out[series_id] = after
    return out


def _held(state: SeriesState, outputs: np.ndarray) -> np.ndarray:
    """``(seeds, 1, outputs)``: the prediction ``state`` holds, NaN for none."""
    if state.prediction is None:
        return np.full((outputs.shape[0], 1, outputs.shape[2]), np.nan, np.float32)
    return np.asarray(state.prediction, np.float32)[:, None, :]


# Each path, called as (model, params, window, prepared, capacity, every): series id -> (the
# new state, (seeds, readings, outputs) the output after each new reading, NaN before a
# window model's first full window; with every=False only the last output is computed and
# the array holds it alone).
_Read = dict[str, tuple[SeriesState, np.ndarray]]


def _read_stream(
    model: ModelConfig,
    params: Params,
    window: int,
    prepared: Mapping[str, Prepared],
    capacity: int,
    every: bool,
) -> _Read:
    del window  # a stream reads one reading per step
    out = {}
    by_length: dict[int, list[str]] = {}
    for series_id, (_, scaled, _, _) in prepared.items():
        by_length.setdefault(len(scaled), []).append(series_id)
    for length, ids in by_length.items():
        after = stack_rnn([prepared[i][0] for i in ids])  # (seeds, series, units)
        x = np.stack([prepared[i][1] for i in ids])  # (series, readings, features)
        # one compiled loop over a buffer of `capacity` readings (rows padded to a power of
        # two): the same program whatever the count
        y, after = read(model, params, after, x, seeds=True, capacity=capacity, every=every)
        if not every:
            y = y[:, :, None]  # (seeds, series, 1, outputs)
        for row, series_id in enumerate(ids):  # y: (seeds, series, readings, outputs)
            state, _, stamps, _ = prepared[series_id]
            new = dataclasses.replace(
                state,
                rnn=tuple(LSTMState(h=s.h[:, row], c=s.c[:, row]) for s in after),
                prediction=y[:, row, -1],
                last_time=state.last_time if stamps is None else int(stamps[-1]),
                seen=state.seen + length,
            )
            out[series_id] = (new, y[:, row])
    return out


def _read_stateful_windows(
    model: ModelConfig,
    params: Params,
    window: int,
    prepared: Mapping[str, Prepared],
    capacity: int,
    every: bool,
) -> _Read:
    """A stateful model on overlapping windows reads one window per new reading.

    ``rnn`` is the state after the last full window read, ``recent`` that window (or the
    readings so far, while fewer than ``window``); a new reading's window ends at it.
    """
    pending = {}
    for series_id, (state, scaled, _, _) in prepared.items():
        readings = np.concatenate([state.recent, scaled])
        # the windows not yet read: those ending at the new readings
        pending[series_id] = readings[max(0, len(state.recent) - window + 1) :]
    by_length: dict[int, list[str]] = {}
    for series_id, readings in pending.items():
        if len(readings) >= window:
            by_length.setdefault(len(readings), []).append(series_id)
    read_out = {}
    for ids in by_length.values():
        y, after = read_windows(
            model,
            params,
            stack_rnn([prepared[i][0] for i in ids]),
            np.stack([pending[i] for i in ids]),  # (series, readings, features)
            seeds=True,
            capacity=capacity,
        )  # y: (seeds, series, windows, outputs), the windows ending at the last readings
        for row, series_id in enumerate(ids):
            rnn = tuple(LSTMState(h=s.h[:, row], c=s.c[:, row]) for s in after)
            read_out[series_id] = (rnn, y[:, row])
    out = {}
    seeds = len(jax.tree.leaves(params)[0])
    for series_id, (state, scaled, stamps, _) in prepared.items():
        # only the last output without `every`: a warm start reads whole histories
        outputs = np.full((seeds, len(scaled) if every else 1, model.outputs), np.nan, np.float32)
        rnn, prediction = state.rnn, state.prediction
        if series_id in read_out:
            rnn, windows = read_out[series_id]
            if every:
                outputs[:, len(scaled) - windows.shape[1] :] = windows
            outputs[:, -1] = prediction = windows[:, -1]
        new = dataclasses.replace(
            state,
            rnn=rnn,
            recent=pending[series_id][-window:],
            prediction=prediction,
            last_time=state.last_time if stamps is None else int(stamps[-1]),
            seen=state.seen + len(scaled),
        )
        out[series_id] = (new, outputs)
    return out


def _read_windowed(
    model: ModelConfig,
    params: Params,
    window: int,
    prepared: Mapping[str, Prepared],
    capacity: int,
    every: bool,
) -> _Read:
    del capacity  # a window model reads its windows at once
    seeds = len(jax.tree.leaves(params)[0])
    readings = {
        series_id: np.concatenate([state.recent, scaled])
        for series_id, (state, scaled, _, _) in prepared.items()
    }
    outputs = {  # only the last output without `every`: a warm start reads whole histories
        series_id: np.full(
            (seeds, len(prepared[series_id][1]) if every else 1, model.outputs), np.nan, np.float32
        )
        for series_id in prepared
    }
    # the last window of each series that has one: one row per series, as a one-reading
    # read computes it (so reading in pieces or at once gives the same predictions)
    ready = [series_id for series_id, r in readings.items() if len(r) >= window]
    if ready:
        x = np.stack([readings[i][-window:] for i in ready])  # (series, window, features)
        y = np.asarray(read(model, params, (), x, seeds=True)[0])  # (seeds, series, outputs)
        for row, series_id in enumerate(ready):
            outputs[series_id][:, -1] = y[:, row]
    if every:  # the windows ending at the earlier new readings
        keys = [
            (series_id, end)
            for series_id, r in readings.items()
            for end in range(max(window, len(r) - len(prepared[series_id][1]) + 1), len(r))
        ]
        # in pieces of the last windows' row bucket: a program already compiled (and warmed
        # up by a service) whatever the number of readings
        rows = bucket(max(len(ready), 1))
        for start in range(0, len(keys), rows):
            piece = keys[start : start + rows]
            x = np.stack([readings[i][end - window : end] for i, end in piece])
            y = np.asarray(read(model, params, (), x, seeds=True)[0])  # (seeds, rows, outputs)
            for row, (series_id, end) in enumerate(piece):
                outputs[series_id][:, end - len(readings[series_id]) - 1] = y[:, row]
    out = {}
    for series_id, (state, scaled, stamps, _) in prepared.items():
        last = outputs[series_id][:, -1]
        new = dataclasses.replace(
            state,
            recent=readings[series_id][-window:],
            prediction=None if len(readings[series_id]) < window else last,
            last_time=state.last_time if stamps is None else int(stamps[-1]),
            seen=state.seen + len(scaled),
        )
        out[series_id] = (new, outputs[series_id])
    return out


def rollout_states(
    model: ModelConfig,
    params: Params,
    recipe: Recipe,
    states: Sequence[SeriesState],
    horizon: int,
    capacity: int,
) -> tuple[np.ndarray, int]:
    """Every seed's scaled forecasts of ``horizon`` steps from each state.

    Args:
        model: the network.
        params: its parameters, leaves with a leading seeds axis.
        recipe: its recipe (the window, and a direct model's horizon).
        states: the states to forecast from (not changed); each has a ``prediction``.
        horizon: the steps (at most a direct model's own).
        capacity: the forecast steps one compiled rollout holds.

    Returns:
        ``(forecasts (seeds, series, horizon, columns), the capacity)``: the capacity is
        doubled until it holds ``horizon`` (one more program each time).
    """
    states = list(states)
    columns = model.features
    output = np.stack([s.prediction for s in states], axis=1)  # (seeds, series, outputs)
    direct = recipe.horizon
    if direct > 1:  # the stored output holds the next `direct` steps, step-major
        seeds, series = output.shape[:2]
        return output.reshape(seeds, series, direct, columns)[:, :, :horizon], capacity
    if horizon == 1:  # the next step is the prediction already stored: no device call
        return output[:, :, None, :], capacity  # (seeds, series, 1, columns)
    # Bounded shapes: the series padded to a power of two (zero rows, dropped after), the
    # horizon a traced loop count within a buffer of `capacity` steps.
    while capacity < horizon:
        capacity *= 2
    series = len(states)
    rows = bucket(series)
    rnn: Any = ()
    if model.stateful:
        rnn = stack_rnn(states + [states[0]] * (rows - series))
    if not model.streams:
        x = np.zeros((rows, recipe.window, columns), np.float32)
        x[:series] = np.stack([s.recent for s in states])  # (series, window, columns)
    else:
        # a stream reads one reading per step; the last one is not needed (the output after
        # it is given), only its shape
        x = np.zeros((rows, 1, columns), np.float32)
    padded = np.zeros((output.shape[0], rows, output.shape[2]), np.float32)
    padded[:, :series] = output
    forecast = rollout(
        model,
        params,
        rnn,
        x,
        horizon=horizon,
        output=padded,
        seeds=True,
        max_horizon=capacity,
    )
    return forecast[:, :series], capacity  # (seeds, series, horizon, columns)


def replay_scaled(
    model: ModelConfig, params: Params, window: int, scaled: np.ndarray
) -> np.ndarray:
    """The one-step predictions after every scaled reading of a series, from a zero state.

    Computed at once: one call over the whole series for stateful models, every window in
    one batch for window models.

    Returns:
        ``(time, columns)`` float32, the median over seeds: row ``t`` forecasts reading
        ``t + 1``; NaN where a window model has not yet seen ``window`` readings.
    """
    out = np.full(scaled.shape, np.nan, np.float32)
    columns = scaled.shape[1]  # a direct model's first step: its first columns
    if not model.stateful:
        if len(scaled) >= window:
            x = make_windows(scaled, length=window, offset=0).x  # (n, window, columns)
            y = np.asarray(read(model, params, (), x, seeds=True)[0])
            out[window - 1 :] = median_over_seeds(y[..., :columns])
    elif not model.streams:
        if len(scaled) >= window:
            seeds = int(jax.tree.leaves(params)[0].shape[0])
            rnn = stack_rnn([fresh_series_state(model, seeds, None)])  # zeros, in NumPy
            y = read_windows(model, params, rnn, scaled[None], seeds=True)[0]
            out[window - 1 :] = median_over_seeds(y[:, 0, :, :columns])
    else:  # a stream
        y = sequence_outputs(model, params, scaled[None])  # (seeds, 1, T, C)
        out[:] = median_over_seeds(y[:, 0, :, :columns])
    return out
