"""The one rollout: warm starts and multi-step forecasts, as compiled pure functions.

Three functions, all over ``lstmlab.core.model.apply``, state in and state out:

* ``read``: read readings ``x (rows, time, features)`` into a state and return the model's
  output after the last reading and the new state. A stateful model carries its state from
  reading to reading, one model step per reading, in one compiled loop over a buffer of
  ``capacity`` readings that runs for the true count (a traced argument); a window model
  (stateless LSTM, MLP) reads its last ``timesteps`` readings from a zero state. Rows are
  padded to a power of two, so one program per row bucket reads any number of readings
  (more than ``capacity``: in pieces of ``capacity``).
* ``read_windows``: the same for a stateful model trained on overlapping windows (Keras'
  stateful layout): it reads one window per reading, each from the state the previous window
  left, and returns the output after every window and the state after the last (one compiled
  loop over a buffer of ``capacity`` windows, as ``read``).
* ``window_states``: the state before each window when a stateful model reads overlapping
  windows in order, as Keras' stateful layout with one stream reads them (the warm start of
  every forecast origin at once).
* ``rollout``: ``horizon`` steps ahead from a state and the inputs of the next step, either
  recursively (one compiled loop over a traced horizon, writing into a buffer of
  ``max_horizon`` steps: one program for every horizon up to it; each forecast is fed back
  as the newest input and the window slides by one) or directly (one ``apply`` of a model
  with one output per step ahead). Known future covariates fill the input columns after the
  targets. A model that normalises its windows (``norm``) maps its outputs back itself, in
  ``apply``.

What one step reads is the input ``x`` passed to ``rollout``, slid by one row per step: a
window model passes its last ``timesteps`` readings; a stateful model that reads one reading
per step (a stream) passes its last reading, with ``output``, the output ``read`` returned
after it; a stateful model trained on overlapping windows passes its last window, with the
state before it (``window_states``), or the state and the output after it (``read_windows``).

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
from lstmlab.core.model import (
    ModelConfig,
    ModelState,
    Params,
    apply,
    init_state,
    norm_code,
    norm_program,
)

__all__ = ["READ_ROWS", "STRATEGIES", "read", "read_windows", "rollout", "window_states"]

STRATEGIES = ("recursive", "direct")


def _last_step(y: jax.Array) -> jax.Array:
    """``(rows, outputs)``: the output after the last step (``return_sequences`` models)."""
    return y[:, -1, :] if y.ndim == 3 else y


# --------------------------------------------------------------------------- read


@functools.lru_cache(maxsize=128)
def _compiled_read(config: ModelConfig, seeds: bool):
    """The read of one padded buffer: ``(params, state, x, length) -> (y, state)``.

    A window model applies itself once to its window ``x (rows, window, features)`` from a
    zero state (``length`` unused). A stateful model reads ``x (rows, capacity, features)``
    step by step, one reading per loop iteration, for the first ``length`` readings only
    (``length`` is traced: one program serves every count up to ``capacity``); the readings
    after them are padding and never read.
    """

    def read_window(
        params: Params, state: ModelState, x: jax.Array, length: jax.Array, norm: jax.Array
    ):
        del state, length
        y, _ = apply(config, params, init_state(config, x.shape[0]), x, norm)
        return _last_step(y), ()

    def read_stream(
        params: Params, state: ModelState, x: jax.Array, length: jax.Array, norm: jax.Array
    ):
        def step(t, carry: ModelState) -> ModelState:
            x_t = jax.lax.dynamic_slice_in_dim(x, t, 1, axis=1)  # (rows, 1, features)
            return apply(config, params, carry, x_t)[1]  # the unused head is not computed

        # readings 0 .. length - 2 advance the state; the last one also gives the output
        before_last = jax.lax.fori_loop(0, length - 1, step, state)
        x_last = jax.lax.dynamic_slice_in_dim(x, length - 1, 1, axis=1)  # (rows, 1, features)
        y, new_state = apply(config, params, before_last, x_last)
        return _last_step(y), new_state

    read_one = read_stream if config.stateful else read_window
    return jax.jit(jax.vmap(read_one, in_axes=(0, 0, None, None, None)) if seeds else read_one)


@functools.lru_cache(maxsize=128)
def _compiled_read_every(config: ModelConfig, seeds: bool):
    """As ``_compiled_read`` for a stateful model, ``y`` the output after each reading.

    ``y`` is ``(rows, capacity, outputs)``, zero past ``length``: the head runs at every
    step, so it is a program of its own (the plain read computes it for the last only).
    """

    def read_stream_every(
        params: Params, state: ModelState, x: jax.Array, length: jax.Array, norm: jax.Array
    ):
        def step(t, carry):
            state, outputs = carry
            x_t = jax.lax.dynamic_slice_in_dim(x, t, 1, axis=1)  # (rows, 1, features)
            y, state = apply(config, params, state, x_t)
            outputs = jax.lax.dynamic_update_slice_in_dim(
                outputs, _last_step(y)[:, None, :], t, axis=1
            )
            return state, outputs

        outputs = jnp.zeros((x.shape[0], x.shape[1], config.outputs), jnp.float32)
        state, outputs = jax.lax.fori_loop(0, length, step, (state, outputs))
        return outputs, state

    if seeds:
        return jax.jit(jax.vmap(read_stream_every, in_axes=(0, 0, None, None, None)))
    return jax.jit(read_stream_every)


def _pad_rows(tree: Any, rows: int, axis: int) -> Any:
    """Zero rows appended along ``axis`` of every leaf up to ``rows`` (NumPy, on the host)."""

    def pad(leaf):
        leaf = np.asarray(leaf, np.float32)
        widths = [(0, 0)] * leaf.ndim
        widths[axis] = (0, rows - leaf.shape[axis])
        return np.pad(leaf, widths)

    return jax.tree.map(pad, tree)


def _take_rows(tree: Any, rows: int, axis: int) -> Any:
    """The first ``rows`` along ``axis`` of every leaf, as NumPy arrays (no device program)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf).take(np.arange(rows), axis=axis), tree)


READ_ROWS = 16_384
"""The most rows a window model reads in one compiled call; more are read in pieces of it
(one program serves them all) so that reading every window of a series of millions of
readings needs bounded memory."""


def read(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    x: Any,
    *,
    seeds: bool = False,
    capacity: int | None = None,
    every: bool = False,
) -> tuple[np.ndarray, ModelState]:
    """Read readings into a state (a warm start); the output after the last one, or each.

    A stateful model reads every reading of ``x`` in order, from ``state``. A window model
    (``config.stateful`` false: stateless LSTM, MLP) reads the last ``config.timesteps``
    readings from a zero state and returns ``state`` unchanged. Reading ``x`` in pieces
    (``read(a)`` then ``read(b)`` from its state) equals reading it at once.

    Bounded compiling: the rows are padded with zeros to a power of two (rows are
    independent, the padding is dropped). A stateful model's readings are copied into a
    buffer of ``capacity`` steps and read by one compiled loop that runs for the true count
    (a traced argument): one program per row bucket serves every count up to ``capacity``,
    and a longer ``x`` is read in pieces of ``capacity``. Each reading is one step of the
    model (``apply`` on ``(rows, 1, features)``), exactly as a loop of one-reading calls.

    Args:
        config: the model (static).
        params: its parameters; ``(seeds, ...)`` leaves with ``seeds=True``.
        state: the state before ``x``: one ``LSTMState`` per layer with ``(rows, units)``
            arrays (``(seeds, rows, units)`` with ``seeds=True``); ``()`` for a window model.
        x: ``(rows, time, features)`` readings in model units, oldest first; a window model
            needs ``time >= config.timesteps``.
        seeds: ``params`` and ``state`` carry a leading seeds axis; ``x`` is shared.
        capacity: the readings one compiled call holds (stateful models); ``None``: ``time``
            rounded up to a power of two.
        every: a stateful model returns the output after every reading, not only the
            last: its loop computes the head at each step (a program of its own).

    Returns:
        ``(y, new_state)`` as NumPy arrays: ``y`` is ``(rows, outputs)`` (``(seeds, rows,
        outputs)``), the output after the last reading (for a ``return_sequences`` model,
        its last step), or with ``every`` ``(rows, time, outputs)`` (``(seeds, rows, time,
        outputs)``), the output after each; ``new_state`` is the state after the last
        (``state`` itself for a window model).

    Raises:
        ValueError: ``x`` is not 3-D, has no readings, the wrong number of features, or
            fewer readings than a window model's window; a capacity below 1; ``every``
            with a window model.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != config.features or x.shape[1] == 0:
        raise ValueError(
            f"read needs readings of shape (rows, time, {config.features}) with time >= 1, "
            f"got shape {x.shape}; pass x[None] for one series"
        )
    rows, steps = x.shape[0], x.shape[1]
    padded = 1 << (rows - 1).bit_length()
    row_axis = 1 if seeds else 0
    if every and not config.stateful:
        raise ValueError(
            "every=True reads a stateful model's output after each reading; a window model's "
            "is the window ending at each reading: pass those windows as rows"
        )
    if every:
        fn = _compiled_read_every(config, bool(seeds))
    else:  # a window model's norms share one program (norm_program)
        fn = _compiled_read(config if config.stateful else norm_program(config), bool(seeds))
    code = norm_code(config)
    if not config.stateful:
        window = config.timesteps
        if steps < window:
            raise ValueError(
                f"a window model reads {window} readings, got {steps}; pass at least {window}"
            )
        if rows > READ_ROWS:
            # a long series' every window (fit's validation and replay): in pieces, so that
            # memory stays bounded whatever the length; rows are independent
            pieces = [
                read(config, params, state, x[start : start + READ_ROWS], seeds=seeds)[0]
                for start in range(0, rows, READ_ROWS)
            ]
            return np.concatenate(pieces, axis=row_axis), state
        x_window = np.zeros((padded, window, x.shape[2]), np.float32)  # rows padded with zeros
        x_window[:rows] = x[:, steps - window :]
        y = np.asarray(fn(params, (), x_window, np.int32(window), code)[0])
        return (y if padded == rows else _take_rows(y, rows, row_axis)), state
    if capacity is None:
        capacity = 1 << (steps - 1).bit_length()
    capacity = check_positive_int("capacity", capacity)
    # NumPy in, NumPy out: one call signature, whether a state comes from a store or a read
    state = jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), state)
    if padded != rows:
        state = _pad_rows(state, padded, row_axis)
    pieces = []
    for start in range(0, steps, capacity):
        piece = x[:, start : start + capacity]
        buffer = np.zeros((padded, capacity, x.shape[2]), np.float32)  # (rows, capacity, f)
        buffer[:rows, : piece.shape[1]] = piece  # the rest of the buffer is never read
        y, state = fn(params, state, buffer, np.int32(piece.shape[1]), code)
        state = jax.tree.map(np.asarray, state)
        if every:  # the outputs of this piece's readings
            pieces.append(np.asarray(y)[..., : piece.shape[1], :])
    y = np.concatenate(pieces, axis=row_axis + 1) if every else np.asarray(y)
    return (y, state) if padded == rows else _take_rows((y, state), rows, row_axis)


# --------------------------------------------------------------------------- read windows


@functools.lru_cache(maxsize=128)
def _compiled_read_windows(config: ModelConfig, seeds: bool):
    """``(params, state, x, count, norm) -> (y, state)``: windows ``0 .. count - 1`` of ``x``.

    Window ``j`` is ``x[:, j : j + timesteps]``, read from the state window ``j - 1`` left; a
    buffer of ``x.shape[1] - timesteps + 1`` windows serves every traced ``count`` up to it.
    """
    window = config.timesteps

    def read_one(params, state, x, count, norm):
        rows, capacity = x.shape[0], x.shape[1] - window + 1
        outputs = jnp.zeros((rows, capacity, config.outputs), jnp.float32)

        def step(j, carry):
            state, outputs = carry
            x_j = jax.lax.dynamic_slice_in_dim(x, j, window, axis=1)  # (rows, window, f)
            y, state = apply(config, params, state, x_j, norm)
            outputs = jax.lax.dynamic_update_slice_in_dim(
                outputs, _last_step(y)[:, None, :], j, axis=1
            )
            return state, outputs

        state, outputs = jax.lax.fori_loop(0, count, step, (state, outputs))
        return outputs, state

    return jax.jit(jax.vmap(read_one, in_axes=(0, 0, None, None, None)) if seeds else read_one)


def read_windows(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    x: Any,
    *,
    seeds: bool = False,
    capacity: int | None = None,
) -> tuple[np.ndarray, ModelState]:
    """A stateful model trained on overlapping windows reads them in order, as it was trained.

    Keras' stateful layout with one stream: window ``j`` is ``x[:, j : j + timesteps]``,
    read from the state that window ``j - 1`` left (a reading's window starts ``timesteps
    - 1`` readings before it), so ``time - timesteps + 1`` windows are read. Reading ``x`` in
    pieces equals reading it at once when each piece after the first starts with the last
    ``timesteps - 1`` readings of the piece before.

    Bounded compiling, as ``read``: rows padded to a power of two, and the windows read by
    one compiled loop over a buffer of ``capacity`` windows that runs for the true count (a
    traced argument); more windows are read in pieces of ``capacity``.

    Args:
        config: a stateful model that returns its last step only (static).
        params: its parameters; ``(seeds, ...)`` leaves with ``seeds=True``.
        state: the state before the first window, ``(rows, units)`` arrays per layer
            (``(seeds, rows, units)``).
        x: ``(rows, time, features)`` readings in model units, oldest first, ``time >=
            timesteps``.
        seeds: ``params`` and ``state`` carry a leading seeds axis; ``x`` is shared.
        capacity: the windows one compiled call holds; ``None``: the count rounded up to a
            power of two.

    Returns:
        ``(y, new_state)`` as NumPy arrays: ``y`` is ``(rows, windows, outputs)``
        (``(seeds, rows, windows, outputs)``), the output after each window; ``new_state``
        the state after the last.

    Raises:
        ValueError: a model that is not stateful or returns sequences; ``x`` not 3-D, with
            the wrong features or fewer readings than a window; a capacity below 1.
    """
    if not config.stateful or config.return_sequences:
        raise ValueError(
            "read_windows needs a stateful model that returns its last step (trained on "
            f"overlapping windows), got stateful={config.stateful}, return_sequences="
            f"{getattr(config, 'return_sequences', False)}; use read for the others"
        )
    window = config.timesteps
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != config.features or x.shape[1] < window:
        raise ValueError(
            f"read_windows needs readings of shape (rows, time, {config.features}) with time "
            f">= {window} (one window), got shape {x.shape}"
        )
    rows, count = x.shape[0], x.shape[1] - window + 1
    if capacity is None:
        capacity = 1 << (count - 1).bit_length()
    capacity = check_positive_int("capacity", capacity)
    padded = 1 << (rows - 1).bit_length()
    row_axis = 1 if seeds else 0
    fn = _compiled_read_windows(norm_program(config), bool(seeds))
    code = norm_code(config)
    state = jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), state)
    if padded != rows:
        state = _pad_rows(state, padded, row_axis)
    pieces = []
    for start in range(0, count, capacity):
        piece = x[:, start : start + min(capacity, count - start) + window - 1]
        buffer = np.zeros((padded, capacity + window - 1, x.shape[2]), np.float32)
        buffer[:rows, : piece.shape[1]] = piece  # windows past the count are never read
        y, state = fn(params, state, buffer, np.int32(piece.shape[1] - window + 1), code)
        state = jax.tree.map(np.asarray, state)
        pieces.append(np.asarray(y).take(np.arange(piece.shape[1] - window + 1), axis=row_axis + 1))
    y = np.concatenate(pieces, axis=row_axis + 1)
    return (y, state) if padded == rows else _take_rows((y, state), rows, row_axis)


# --------------------------------------------------------------------------- window states


@functools.lru_cache(maxsize=128)
def _compiled_window_states(config: ModelConfig, seeds: bool):
    def states_one(params: Params, state: ModelState, windows: jax.Array, norm: jax.Array):
        def read_window(carry: ModelState, window: jax.Array):
            _, new_state = apply(config, params, carry, window, norm)
            return new_state, carry  # emit the state before the window

        _, before = jax.lax.scan(read_window, state, windows)
        return before

    return jax.jit(jax.vmap(states_one, in_axes=(0, 0, None, None)) if seeds else states_one)


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
    windows = np.asarray(windows, np.float32)  # NumPy: an eager jnp conversion compiles
    if windows.ndim != 4 or windows.shape[3] != config.features:
        raise ValueError(
            f"windows must have shape (count, rows, window, {config.features}), got {windows.shape}"
        )
    program = _compiled_window_states(norm_program(config), bool(seeds))
    return program(params, state, windows, norm_code(config))


# --------------------------------------------------------------------------- rollout


@functools.lru_cache(maxsize=128)
def _compiled_rollout(
    config: ModelConfig,
    capacity: int,
    direct: bool,
    seeds: bool,
    has_output: bool,
):
    """``(params, state, x, future, output, horizon) -> (rows, capacity, targets)``.

    Direct: ``capacity`` is the horizon (one ``apply``). Recursive: one loop that runs for
    the traced ``horizon`` steps and writes each forecast into a buffer of ``capacity``
    steps (the steps after ``horizon`` stay zero), so one program serves every horizon up
    to ``capacity``.
    """
    outputs = config.outputs
    targets = outputs // capacity if direct else outputs

    def slide(x: jax.Array, value: jax.Array, covariates: jax.Array) -> jax.Array:
        row = jnp.concatenate([value, covariates], axis=-1)  # (rows, features)
        return jnp.concatenate([x[:, 1:], row[:, None, :]], axis=1)  # drop the oldest

    def rollout_one(params, state, x, future, output, horizon, norm):
        rows = x.shape[0]
        zero = init_state(config, rows)
        start = state if config.stateful else zero
        if direct:
            if not has_output:
                output, _ = apply(config, params, start, x, norm)
            return _last_step(output).reshape(rows, capacity, targets)  # step-major outputs

        def step(k, carry):
            window_x, step_state, values = carry
            y, new_state = apply(config, params, step_state, window_x, norm)
            value = _last_step(y)  # (rows, targets)
            values = jax.lax.dynamic_update_slice_in_dim(values, value[:, None, :], k, axis=1)
            covariates = jax.lax.dynamic_index_in_dim(future, k, axis=1, keepdims=False)
            window_x = slide(window_x, value, covariates)
            return window_x, new_state if config.stateful else zero, values

        values = jnp.zeros((rows, capacity, targets), jnp.float32)  # (rows, capacity, targets)
        first_step = 0
        if has_output:  # the step after x, already read
            values = values.at[:, 0, :].set(output)
            x = slide(x, output, future[:, 0])
            first_step = 1
        return jax.lax.fori_loop(first_step, horizon, step, (x, start, values))[2]

    if seeds:
        rollout_one = jax.vmap(
            rollout_one, in_axes=(0, 0, None, None, 0 if has_output else None, None, None)
        )
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
    max_horizon: int | None = None,
) -> np.ndarray:
    """Forecast ``horizon`` steps ahead, recursively or directly, as one compiled program.

    Recursive (one compiled loop over the horizon): step ``k`` applies the model to the
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
        horizon: steps ahead. Recursive: a traced loop count, one program for every
            horizon up to ``max_horizon``; direct: static, one program per horizon.
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
        max_horizon: recursive only: the forecast buffer's steps (static), ``>= horizon``;
            ``None``: ``horizon`` itself.

    Returns:
        A NumPy array of ``(rows, horizon, targets)`` forecasts in model units (``(seeds,
        rows, horizon, targets)`` with ``seeds=True``); ``targets`` is ``outputs`` for recursive and
        ``outputs // horizon`` for direct forecasts.

    Raises:
        ValueError: a bad horizon or strategy; shapes that disagree with the model; a model
            that reads covariates without ``future``; a direct model whose outputs are not a
            multiple of ``horizon``; ``max_horizon`` below ``horizon``, or with ``direct``.
    """
    check_positive_int("horizon", horizon)
    strategy = check_choice("strategy", strategy, STRATEGIES)
    direct = strategy == "direct"
    features, outputs = config.features, config.outputs
    x = np.asarray(x, np.float32)
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
    capacity = horizon
    if max_horizon is not None:
        if direct or check_positive_int("max_horizon", max_horizon) < horizon:
            raise ValueError(
                f"max_horizon bounds a recursive forecast's horizon, got max_horizon="
                f"{max_horizon} for horizon {horizon} and strategy {strategy!r}; pass "
                "max_horizon >= horizon with strategy='recursive', or max_horizon=None"
            )
        capacity = max_horizon
    if direct or (future is None and not covariates):
        future_buffer = np.zeros((rows, capacity, 0), np.float32)
    elif future is None:
        raise ValueError(
            f"the model reads {covariates} covariate(s) beyond its {targets} target(s); "
            f"pass their known future values, future of shape ({rows}, {horizon}, "
            f"{covariates})"
        )
    else:  # a recursive forecast (a direct one with future was refused above)
        future = np.asarray(future, np.float32)
        if future.shape != (rows, horizon, covariates):
            raise ValueError(
                f"future must have shape (rows, horizon, covariates) = ({rows}, {horizon}, "
                f"{covariates}), got {future.shape}"
            )
        future_buffer = np.zeros((rows, capacity, covariates), np.float32)
        future_buffer[:, :horizon] = future  # the steps after horizon are never read
    if output is not None:
        output = np.asarray(output, np.float32)
    # every norm of one shape: one program (norm_program), the norm passed in as a code
    fn = _compiled_rollout(norm_program(config), capacity, direct, bool(seeds), output is not None)
    # NumPy in (one call signature whether a state comes from a store or a read), NumPy out
    state = jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), state)
    values = fn(
        params,
        state if config.stateful else (),
        x,
        future_buffer,
        output,
        np.int32(horizon),
        norm_code(config),
    )
    return np.asarray(values)[..., :horizon, :]  # (…, rows, horizon, targets)
