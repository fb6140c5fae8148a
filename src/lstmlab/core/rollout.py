"""The one rollout: warm starts and multi-step forecasts, as compiled pure functions.

Three functions, all over ``lstmlab.core.model.apply``, state in and state out:

* ``read``: read readings ``x (rows, time, features)`` into a state and return the model's
  output after the last reading and the new state. A stateful model carries its state from
  reading to reading; a window model (stateless LSTM, MLP) reads its last ``timesteps``
  readings from a zero state. Time is read in power-of-two pieces and rows are padded to a
  power of two, so reading any number of readings for any number of series compiles only a
  handful of programs (``observe`` with 13 readings runs pieces of 8, 4 and 1).
* ``window_states``: the state before each window when a stateful model reads overlapping
  windows in order, as Keras' stateful layout with one stream reads them (the warm start of
  every forecast origin at once).
* ``rollout``: ``horizon`` steps ahead from a state and the inputs of the next step, either
  recursively (one ``lax.scan`` over the horizon; each forecast is fed back as the newest
  input and the window slides by one) or directly (one ``apply`` of a model with one output
  per step ahead). Known future covariates fill the input columns after the targets. A model
  that normalises its windows (``norm``) maps its outputs back itself, in ``apply``.

What one step reads is the input ``x`` passed to ``rollout``, slid by one row per step: a
window model passes its last ``timesteps`` readings; a stateful model that reads one reading
per step (a stream) passes its last reading, with ``output``, the output ``read`` returned
after it; a stateful model trained on overlapping windows passes its last window and the state
before it (``window_states``).

Every function takes ``seeds=True`` for several trainings at once: then ``params``, ``state``
and ``output`` carry a leading seeds axis (one ``jax.vmap`` inside the compiled program) and
the data (``x``, ``windows``, ``future``) is shared by all seeds.

Example:
    >>> from lstmlab.core.model import LSTMConfig, init_params, init_state
    >>> config = LSTMConfig(units=(4,), stateful=True)
    >>> params = init_params(config, 0)
    >>> readings = jnp.linspace(0.0, 1.0, 13).reshape(1, 13, 1)  # (rows, time, features)
    >>> y, state = read(config, params, init_state(config, 1), readings)
    >>> forecast = rollout(config, params, state, readings[:, -1:], horizon=5, output=y)
    >>> forecast.shape  # (rows, horizon, targets)
    (1, 5, 1)
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lstmlab.checks import check_choice, check_positive_int
from lstmlab.core.model import ModelConfig, ModelState, Params, apply, init_state

__all__ = ["STRATEGIES", "power_of_two_pieces", "read", "rollout", "window_states"]

STRATEGIES = ("recursive", "direct")


def power_of_two_pieces(n: int) -> list[int]:
    """``n`` as descending powers of two: ``13 -> [8, 4, 1]`` (bounds the compiled shapes).

    Args:
        n: a count, ``>= 0``.

    Returns:
        The powers of two that sum to ``n``, largest first (``[]`` for 0).
    """
    return [1 << bit for bit in range(n.bit_length() - 1, -1, -1) if n >> bit & 1]


def _last_step(y: jax.Array) -> jax.Array:
    """``(rows, outputs)``: the output after the last step (``return_sequences`` models)."""
    return y[:, -1, :] if y.ndim == 3 else y


# --------------------------------------------------------------------------- read


@functools.lru_cache(maxsize=128)
def _compiled_read(config: ModelConfig, seeds: bool):
    def read_one(params: Params, state: ModelState, x: jax.Array):
        if not config.stateful:
            state = init_state(config, x.shape[0])
        y, new_state = apply(config, params, state, x)
        return _last_step(y), new_state

    return jax.jit(jax.vmap(read_one, in_axes=(0, 0, None)) if seeds else read_one)


def _pad_rows(tree: Any, rows: int, axis: int) -> Any:
    """Zero rows appended along ``axis`` of every leaf up to ``rows``."""

    def pad(leaf):
        widths = [(0, 0)] * leaf.ndim
        widths[axis] = (0, rows - leaf.shape[axis])
        return jnp.pad(leaf, widths)

    return jax.tree.map(pad, tree)


def _take_rows(tree: Any, rows: int, axis: int) -> Any:
    return jax.tree.map(lambda leaf: jax.lax.slice_in_dim(leaf, 0, rows, axis=axis), tree)


def read(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    x: Any,
    *,
    seeds: bool = False,
) -> tuple[jax.Array, ModelState]:
    """Read readings into a state (a warm start); the output after the last one.

    A stateful model reads every reading of ``x`` in order, from ``state``. A window model
    (``config.stateful`` false: stateless LSTM, MLP) reads the last ``config.timesteps``
    readings from a zero state and returns ``state`` unchanged. Reading ``x`` in pieces
    (``read(a)`` then ``read(b)`` from its state) equals reading it at once, to float32
    rounding.

    Time is read in power-of-two pieces and the rows are padded with zeros to a power of two
    (rows are independent, the padding is dropped), so any number of readings for any number
    of series compiles only ``log2`` many programs.

    Args:
        config: the model (static).
        params: its parameters; ``(seeds, ...)`` leaves with ``seeds=True``.
        state: the state before ``x``: one ``LSTMState`` per layer with ``(rows, units)``
            arrays (``(seeds, rows, units)`` with ``seeds=True``); ``()`` for a window model.
        x: ``(rows, time, features)`` readings in model units, oldest first; a window model
            needs ``time >= config.timesteps``.
        seeds: ``params`` and ``state`` carry a leading seeds axis; ``x`` is shared.

    Returns:
        ``(y, new_state)``: ``y`` is ``(rows, outputs)`` (``(seeds, rows, outputs)``), the
        output after the last reading (for a ``return_sequences`` model, its last step);
        ``new_state`` is the state after it (``state`` itself for a window model).

    Raises:
        ValueError: ``x`` is not 3-D, has no readings, the wrong number of features, or
            fewer readings than a window model's window.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != config.features or x.shape[1] == 0:
        raise ValueError(
            f"read needs readings of shape (rows, time, {config.features}) with time >= 1, "
            f"got shape {x.shape}; pass x[None] for one series"
        )
    rows, steps = x.shape[0], x.shape[1]
    fn = _compiled_read(config, bool(seeds))
    if not config.stateful:
        window = config.timesteps
        if steps < window:
            raise ValueError(
                f"a window model reads {window} readings, got {steps}; pass at least {window}"
            )
        padded = 1 << (rows - 1).bit_length()
        x_window = np.zeros((padded, window, x.shape[2]), np.float32)  # rows padded with zeros
        x_window[:rows] = x[:, steps - window :]
        y, _ = fn(params, (), x_window)
        return _take_rows(y, rows, axis=1 if seeds else 0), state
    padded = 1 << (rows - 1).bit_length()
    row_axis = 1 if seeds else 0
    if padded != rows:
        x = np.concatenate([x, np.zeros((padded - rows, *x.shape[1:]), np.float32)])
        state = _pad_rows(state, padded, row_axis)
    start = 0
    for piece in power_of_two_pieces(steps):
        y, state = fn(params, state, x[:, start : start + piece])  # the state stays on device
        start += piece
    if padded != rows:
        y, state = _take_rows((y, state), rows, row_axis)
    return y, state


# --------------------------------------------------------------------------- window states


@functools.lru_cache(maxsize=128)
def _compiled_window_states(config: ModelConfig, seeds: bool):
    def states_one(params: Params, state: ModelState, windows: jax.Array):
        def read_window(carry: ModelState, window: jax.Array):
            _, new_state = apply(config, params, carry, window)
            return new_state, carry  # emit the state before the window

        _, before = jax.lax.scan(read_window, state, windows)
        return before

    return jax.jit(jax.vmap(states_one, in_axes=(0, 0, None)) if seeds else states_one)


def window_states(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    windows: Any,
    *,
    seeds: bool = False,
) -> ModelState:
    """The state before each window, reading overlapping windows in order (one ``lax.scan``).

    A stateful model trained on Keras' stateful layout with one stream (windows ``k`` and
    ``k + 1`` overlap, the state carries from one to the next) forecasts origin ``k`` from
    the state before window ``k``; this gives all of them at once.

    Args:
        config: a stateful model (static).
        params: its parameters; ``(seeds, ...)`` leaves with ``seeds=True``.
        state: the state before the first window, ``(rows, units)`` arrays per layer
            (``(seeds, rows, units)``).
        windows: ``(count, rows, window, features)`` in reading order.
        seeds: ``params`` and ``state`` carry a leading seeds axis; ``windows`` is shared.

    Returns:
        One ``LSTMState`` per layer with ``(count, rows, units)`` arrays (``(seeds, count,
        rows, units)``): entry ``k`` is the state before window ``k``.

    Raises:
        ValueError: a model without recurrent state, or ``windows`` not 4-D.
    """
    if not config.stateful:
        raise ValueError(
            f"window_states needs a stateful model, got a {config.kind} model with "
            "stateful=False; a window model starts every window from a zero state"
        )
    windows = jnp.asarray(windows, jnp.float32)
    if windows.ndim != 4 or windows.shape[3] != config.features:
        raise ValueError(
            f"windows must have shape (count, rows, window, {config.features}), got {windows.shape}"
        )
    return _compiled_window_states(config, bool(seeds))(params, state, windows)


# --------------------------------------------------------------------------- rollout


@functools.lru_cache(maxsize=128)
def _compiled_rollout(
    config: ModelConfig,
    horizon: int,
    direct: bool,
    seeds: bool,
    has_output: bool,
):
    outputs = config.outputs
    targets = outputs // horizon if direct else outputs

    def slide(x: jax.Array, value: jax.Array, covariates: jax.Array) -> jax.Array:
        row = jnp.concatenate([value, covariates], axis=-1)  # (rows, features)
        return jnp.concatenate([x[:, 1:], row[:, None, :]], axis=1)  # drop the oldest

    def rollout_one(params, state, x, future, output):
        rows = x.shape[0]
        zero = init_state(config, rows)
        start = state if config.stateful else zero
        if direct:
            if not has_output:
                output, _ = apply(config, params, start, x)
            y = _last_step(output).reshape(rows, horizon, targets)  # step-major outputs
            return y  # (rows, horizon, targets)

        def step(carry, covariates):
            window_x, step_state = carry
            y, new_state = apply(config, params, step_state, window_x)
            value = _last_step(y)  # (rows, targets)
            window_x = slide(window_x, value, covariates)
            return (window_x, new_state if config.stateful else zero), value

        future_steps = jnp.swapaxes(future, 0, 1)  # (horizon, rows, covariates): scan order
        if not has_output:
            _, values = jax.lax.scan(step, (x, start), future_steps)  # (horizon, rows, targets)
            return jnp.swapaxes(values, 0, 1)
        first = output  # the step after x, already read
        x = slide(x, first, future_steps[0])
        _, values = jax.lax.scan(step, (x, start), future_steps[1:])  # (horizon-1, rows, t)
        return jnp.concatenate([first[:, None, :], jnp.swapaxes(values, 0, 1)], axis=1)

    if seeds:
        rollout_one = jax.vmap(rollout_one, in_axes=(0, 0, None, None, 0 if has_output else None))
    return jax.jit(rollout_one)


def rollout(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    x: Any,
    *,
    horizon: int,
    strategy: str = "recursive",
    future: Any = None,
    output: Any = None,
    seeds: bool = False,
) -> jax.Array:
    """Forecast ``horizon`` steps ahead, recursively or directly, as one compiled program.

    Recursive (one ``lax.scan`` over the horizon): step ``k`` applies the model to the
    current input ``x_k`` (from the carried state for a stateful model, from zero for a
    window model); the forecast, followed by the known covariates of that step
    (``future[:, k]``), becomes the newest input row and the oldest row drops out:
    ``x_{k+1} = concat(x_k[:, 1:], [forecast_k, future_k])``. The model's outputs are the
    targets, the first ``outputs`` input columns; the remaining columns are covariates.

    Direct (one ``apply``): a model with ``horizon * targets`` outputs, step-major, reads
    ``x`` once.

    Args:
        config: the model (static).
        params: its parameters; ``(seeds, ...)`` leaves with ``seeds=True``.
        state: for a stateful model the state before ``x`` (or after it, with ``output``),
            ``(rows, units)`` arrays per layer (``(seeds, rows, units)``); ignored for a
            window model (pass ``()``).
        x: ``(rows, time, features)`` model inputs the first step reads: a window model's
            last ``timesteps`` readings; a stateful stream's last reading (``time`` 1); the
            last window of a stateful model trained on overlapping windows.
        horizon: steps ahead (static: one program per horizon).
        strategy: ``"recursive"`` or ``"direct"`` (static).
        future: ``(rows, horizon, features - outputs)`` known covariates of each forecast
            step, in model units (recursive only); needed when the model reads more features
            than it forecasts. Step ``k``'s covariates sit beside forecast ``k`` in the
            input row fed back after it (the last step's are not read).
        output: ``(rows, outputs)`` (``(seeds, rows, outputs)``) the model's output after
            reading ``x``, as ``read`` returns it; ``state`` is then the state after ``x``
            and the first step is this output (no model call). ``None``: the first step
            reads ``x`` from ``state``.
        seeds: ``params``, ``state`` and ``output`` carry a leading seeds axis; ``x`` and
            ``future`` are shared.

    Returns:
        ``(rows, horizon, targets)`` forecasts in model units (``(seeds, rows, horizon,
        targets)`` with ``seeds=True``); ``targets`` is ``outputs`` for recursive and
        ``outputs // horizon`` for direct forecasts.

    Raises:
        ValueError: a bad horizon or strategy; shapes that disagree with the model; a model
            that reads covariates without ``future``; a direct model whose outputs are not a
            multiple of ``horizon``.
    """
    check_positive_int("horizon", horizon)
    strategy = check_choice("strategy", strategy, STRATEGIES)
    direct = strategy == "direct"
    features, outputs = config.features, config.outputs
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3 or x.shape[2] != features or x.shape[1] == 0:
        raise ValueError(
            f"rollout needs inputs x of shape (rows, time, {features}) with time >= 1, got "
            f"shape {x.shape}; pass the last readings (or window) of each row"
        )
    rows = x.shape[0]
    if direct:
        if outputs % horizon:
            raise ValueError(
                f"a direct forecast needs horizon * targets outputs, the model has {outputs} "
                f"for horizon {horizon}; train it with outputs={horizon} per target"
            )
        if future is not None:
            raise ValueError(
                "a direct forecast reads no future covariates, got future; pass future=None"
            )
        targets = outputs // horizon
    else:
        targets = outputs
        if targets > features:
            raise ValueError(
                f"a recursive forecast feeds its {outputs} outputs back as inputs, the model "
                f"reads {features} features per step; use strategy='direct'"
            )
    covariates = features - targets
    if direct:
        future = jnp.zeros((rows, horizon, 0), jnp.float32)
    elif future is None:
        if covariates:
            raise ValueError(
                f"the model reads {covariates} covariate(s) beyond its {targets} target(s); "
                f"pass their known future values, future of shape ({rows}, {horizon}, "
                f"{covariates})"
            )
        future = jnp.zeros((rows, horizon, 0), jnp.float32)
    else:
        future = jnp.asarray(future, jnp.float32)
        if future.shape != (rows, horizon, covariates):
            raise ValueError(
                f"future must have shape (rows, horizon, covariates) = ({rows}, {horizon}, "
                f"{covariates}), got {future.shape}"
            )
    if output is not None:
        output = jnp.asarray(output, jnp.float32)
    fn = _compiled_rollout(config, horizon, direct, bool(seeds), output is not None)
    return fn(params, state if config.stateful else (), x, future, output)
