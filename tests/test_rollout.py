"""Tests of lstmlab.core.rollout against step-by-step references written here.

The references call ``apply`` one time step at a time (an LSTM never sees more than one
reading per call), feed each forecast back by hand and slide the window by hand, so they
share nothing with the compiled scans but the model itself.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    norm_program,
)
from lstmlab.core.rollout import (
    _compiled_read,
    _compiled_read_windows,
    read,
    read_windows,
    rollout,
    window_states,
)

WINDOW = 3
TARGETS = 1
ROWS = 3


def make_config(model: str, features: int, outputs: int, window: int = WINDOW):
    if model == "mlp":
        return MLPConfig(hidden=(6,), timesteps=window, features=features, outputs=outputs)
    units = {"stateful": (5,), "stacked": (4, 3), "stateless": (5,), "stream": (5,)}[model]
    return LSTMConfig(
        units=units,
        timesteps=window,
        features=features,
        outputs=outputs,
        stateful=model != "stateless",
        return_sequences=model == "stream",
    )


@functools.cache
def random_params(config, seed: int = 0):
    """Random weights of the model's shapes, drawn in NumPy: every bias non-zero, nothing
    symmetric (a gate permutation or a transposed kernel would change the outputs)."""
    shapes = jax.eval_shape(lambda: init_params(config, 0))
    rng = np.random.default_rng(100 + seed)
    return jax.tree.map(
        lambda leaf: jnp.asarray(rng.normal(0.0, 0.5, leaf.shape), jnp.float32), shapes
    )


def random_state(config, rows: int, seed: int = 1):
    if not config.stateful:
        return ()
    rng = np.random.default_rng(seed)
    return tuple(
        LSTMState(
            h=jnp.asarray(rng.uniform(-0.5, 0.5, (rows, u)), jnp.float32),
            c=jnp.asarray(rng.uniform(-0.5, 0.5, (rows, u)), jnp.float32),
        )
        for u in config.units
    )


# One compiled model call per shape: the reference still feeds the model step by step.
apply_once = jax.jit(apply, static_argnums=0)


def last(y):
    return np.asarray(y[:, -1, :] if y.ndim == 3 else y)


def read_step_by_step(config, params, state, x):
    """Output after the last step and the state; an LSTM reads one time step per call."""
    x = jnp.asarray(x, jnp.float32)
    if config.kind == "mlp":
        y, _ = apply_once(config, params, (), x)
        return last(y), ()
    s = state if config.stateful else init_state(config, x.shape[0])
    for t in range(x.shape[1]):
        y, s = apply_once(config, params, s, x[:, t : t + 1])
    return last(y), s


def reference_rollout(
    config,
    params,
    state,
    x,
    horizon,
    *,
    future=None,
    output=None,
    slide=True,
    carry=True,
):
    """Recursive forecast by hand; ``slide=False``/``carry=False`` are the planted bugs."""
    x = np.asarray(x, np.float32)
    rows = x.shape[0]
    future = np.zeros((rows, horizon, 0), np.float32) if future is None else np.asarray(future)
    forecasts = []
    s = state
    for k in range(horizon):
        if k == 0 and output is not None:
            y = np.asarray(output)
        else:
            y, new_state = read_step_by_step(config, params, s, x)
            # the planted bug: the state starts again from zero at every step
            s = new_state if carry else init_state(config, rows)
        value = y  # (rows, targets)
        forecasts.append(value)
        row = np.concatenate([value, future[:, k]], axis=1)[:, None, :]  # (rows, 1, features)
        # the planted bug: the new row overwrites the newest reading instead of sliding
        x = (
            np.concatenate([x[:, 1:], row], axis=1)
            if slide
            else np.concatenate([x[:, :-1], row], axis=1)
        )
    return np.stack(forecasts, axis=1)  # (rows, horizon, targets)


def reference_direct(config, params, state, x, horizon):
    y, _ = read_step_by_step(config, params, state, x)
    return y.reshape(x.shape[0], horizon, TARGETS)


def case(model, covariates, outputs=TARGETS, rows=ROWS, window=WINDOW, seed=0):
    features = TARGETS + covariates
    config = make_config(model, features, outputs, window)
    params = random_params(config, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (rows, window, features)).astype(np.float32)
    return config, params, random_state(config, rows), x


MODELS = ("stateful", "stacked", "stateless", "mlp")
HORIZON = 4


# Without and with covariates per model (each case compiles).
@pytest.mark.parametrize("covariates", [0, 2])
@pytest.mark.parametrize("model", MODELS)
def test_recursive_rollout_matches_the_step_by_step_reference(model, covariates):
    config, params, state, x = case(model, covariates)
    future = (
        np.random.default_rng(5).uniform(0, 1, (ROWS, HORIZON, covariates)) if covariates else None
    )
    got = rollout(config, params, state, x, horizon=HORIZON, future=future)
    expected = reference_rollout(config, params, state, x, HORIZON, future=future)
    assert got.shape == (ROWS, HORIZON, TARGETS)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    # The planted bugs are caught: overwriting instead of sliding, resetting the state.
    wrong = reference_rollout(config, params, state, x, HORIZON, future=future, slide=False)
    assert not np.allclose(np.asarray(got), wrong, rtol=1e-4, atol=1e-4)
    if config.stateful:
        reset = reference_rollout(config, params, state, x, HORIZON, future=future, carry=False)
        assert not np.allclose(np.asarray(got), reset, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model", MODELS)
def test_direct_rollout_matches_one_apply(model):
    config, params, state, x = case(model, covariates=1, outputs=HORIZON * TARGETS)
    got = rollout(config, params, state, x, horizon=HORIZON, strategy="direct")
    expected = reference_direct(config, params, state, x, HORIZON)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    if config.stateful:  # the state is read: a zero state gives other forecasts
        zero = reference_direct(config, params, init_state(config, ROWS), x, HORIZON)
        assert not np.allclose(np.asarray(got), zero, rtol=1e-4, atol=1e-4)


def test_stream_rollout_continues_from_read():
    # A stateful model reading one reading per step: read the history, then forecast from
    # the state after it and the output read returned; every step reads one fed-back row.
    config, params, _, _ = case("stream", covariates=2)
    rng = np.random.default_rng(3)
    history = rng.uniform(0, 1, (ROWS, 11, 3)).astype(np.float32)
    future = rng.uniform(0, 1, (ROWS, HORIZON, 2)).astype(np.float32)
    zero = init_state(config, ROWS)
    y, state = read(config, params, zero, history)
    got = rollout(
        config,
        params,
        state,
        history[:, -1:],
        horizon=HORIZON,
        future=future,
        output=y,
    )
    y_ref, state_ref = read_step_by_step(config, params, zero, history)
    expected = reference_rollout(
        config,
        params,
        state_ref,
        history[:, -1:],
        HORIZON,
        future=future,
        output=y_ref,
    )
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    # The same forecast as a rollout that reads the last reading itself from the state before.
    before = read(config, params, zero, history[:, :-1])[1]
    again = rollout(config, params, before, history[:, -1:], horizon=HORIZON, future=future)
    np.testing.assert_allclose(np.asarray(again), np.asarray(got), rtol=1e-5, atol=1e-5)
    reset = reference_rollout(
        config,
        params,
        state_ref,
        history[:, -1:],
        HORIZON,
        future=future,
        output=y_ref,
        carry=False,
    )
    assert not np.allclose(np.asarray(got), reset, rtol=1e-4, atol=1e-4)


def stack_seeds(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def test_seeds_axis_equals_one_call_per_seed():
    config, _, _, x = case("stateful", covariates=1)
    seed_params = [random_params(config, s) for s in range(3)]
    seed_states = [random_state(config, ROWS, seed=s) for s in range(3)]
    outputs = [np.full((ROWS, TARGETS), 0.1 * s, np.float32) for s in range(3)]
    future = np.random.default_rng(1).uniform(0, 1, (ROWS, HORIZON, 1))
    for output in (None, outputs):
        got = rollout(
            config,
            stack_seeds(seed_params),
            stack_seeds(seed_states),
            x,
            horizon=HORIZON,
            future=future,
            output=None if output is None else np.stack(output),
            seeds=True,
        )
        assert got.shape == (3, ROWS, HORIZON, TARGETS)
        for s in range(3):
            one = rollout(
                config,
                seed_params[s],
                seed_states[s],
                x,
                horizon=HORIZON,
                future=future,
                output=None if output is None else output[s],
            )
            np.testing.assert_allclose(np.asarray(got[s]), np.asarray(one), rtol=1e-6, atol=1e-6)


def test_horizon_one_is_one_step():
    config, params, state, x = case("stateful", covariates=0)
    got = rollout(config, params, state, x, horizon=1)
    y, _ = read_step_by_step(config, params, state, x)
    np.testing.assert_allclose(np.asarray(got)[:, 0], y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", ["stacked", "stateless", "mlp"])
def test_one_program_serves_every_horizon_up_to_max_horizon(model):
    from lstmlab.core.rollout import _compiled_rollout

    config, params, state, x = case(model, covariates=1, seed=2)
    future = np.random.default_rng(7).uniform(0, 1, (ROWS, 9, 1)).astype(np.float32)
    # misses count compilations even once the cache is full (it holds 128 programs: a whole
    # suite in one process fills it, and then its size no longer grows)
    before = _compiled_rollout.cache_info().misses
    for horizon in (1, 2, 5, 9):
        got = rollout(
            config, params, state, x, horizon=horizon, future=future[:, :horizon], max_horizon=9
        )
        exact = rollout(config, params, state, x, horizon=horizon, future=future[:, :horizon])
        np.testing.assert_array_equal(got, exact)  # bit-identical to the horizon's own program
        expected = reference_rollout(config, params, state, x, horizon, future=future)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the horizons 1, 2 and 5 of their own, and max_horizon 9 (horizon 9's own): four
    assert _compiled_rollout.cache_info().misses == before + 4
    with pytest.raises(ValueError, match="pass max_horizon >= horizon"):
        rollout(config, params, state, x, horizon=10, future=future, max_horizon=9)


def test_stream_rollout_with_max_horizon_continues_from_the_output():
    config, params, _, _ = case("stream", covariates=2)
    history = np.random.default_rng(8).uniform(0, 1, (ROWS, 6, 3)).astype(np.float32)
    future = np.random.default_rng(9).uniform(0, 1, (ROWS, 7, 2)).astype(np.float32)
    y, state = read(config, params, init_state(config, ROWS), history)
    for horizon in (1, 3, 7):
        got = rollout(
            config,
            params,
            state,
            history[:, -1:],
            horizon=horizon,
            future=future[:, :horizon],
            output=y,
            max_horizon=16,
        )
        expected = reference_rollout(
            config, params, state, history[:, -1:], horizon, future=future, output=y
        )
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- read


@pytest.mark.parametrize("model", ["stateful", "stacked", "stream"])
def test_read_in_pieces_equals_at_once_and_step_by_step(model):
    config, params, _, _ = case(model, covariates=1)
    rows = 3  # padded to 4 inside
    state = random_state(config, rows, seed=4)
    x = np.random.default_rng(2).uniform(0, 1, (rows, 13, 2)).astype(np.float32)  # 8 + 4 + 1
    y, new_state = read(config, params, state, x)
    y_ref, state_ref = read_step_by_step(config, params, state, x)
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(state_ref), strict=True):
        assert got.shape == want.shape == (rows, got.shape[1])
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    # In two uneven pieces: the same output and state.
    _, middle = read(config, params, state, x[:, :5])
    y_two, state_two = read(config, params, middle, x[:, 5:])
    np.testing.assert_allclose(np.asarray(y_two), np.asarray(y), rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(state_two), jax.tree.leaves(new_state), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    # The state matters: from zero the output differs.
    y_zero, _ = read(config, params, init_state(config, rows), x[:, -5:])
    assert not np.allclose(np.asarray(y_zero), np.asarray(y), atol=1e-4)


def test_read_compiles_one_program_per_row_bucket_whatever_the_length():
    config, params, _, _ = case("stateful", covariates=0)  # no other test reads with it
    x = np.random.default_rng(0).uniform(0, 1, (3, 23, 1)).astype(np.float32)
    for rows in (1, 3, 4):  # 3 rows are padded to 4
        for length in (*range(1, 8), 8, 15, 23):  # beyond the capacity: pieces of 7
            read(config, params, init_state(config, rows), x[:rows, :length], capacity=7)
    # one buffer of 7 readings, for 1 and 4 rows
    assert _compiled_read(config, False)._cache_size() == 2
    # without a capacity, the buffer is the length rounded up to a power of two
    for length in range(1, 8):
        read(config, params, init_state(config, 1), x[:1, :length])
    assert _compiled_read(config, False)._cache_size() == 2 + 4  # 1, 2, 4 and 8 readings


@pytest.mark.parametrize("model", ["stacked", "stream"])
def test_read_with_a_capacity_is_bit_identical_to_one_step_per_call(model):
    config, params, _, _ = case(model, covariates=1)
    state = random_state(config, 3, seed=5)
    x = np.random.default_rng(6).uniform(0, 1, (3, 19, 2)).astype(np.float32)
    y_ref, state_ref = read_step_by_step(config, params, state, x)
    for capacity in (1, 5, 19, 64):  # pieces of 1 (19 calls), of 5 (4 calls), 1 call, 1 call
        y, new_state = read(config, params, state, x, capacity=capacity)
        np.testing.assert_array_equal(y, y_ref)
        for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(state_ref), strict=True):
            np.testing.assert_array_equal(got, np.asarray(want))
    # the padding after the true length is never read: one reading less differs
    y_short, _ = read(config, params, state, x[:, :18], capacity=19)
    assert not np.allclose(y_short, y_ref, atol=1e-4)
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        read(config, params, state, x, capacity=0)


@pytest.mark.parametrize("model", ["stacked", "stream"])
def test_read_every_gives_the_output_after_each_reading_step_by_step(model):
    config, params, _, _ = case(model, covariates=1)
    state = random_state(config, 3, seed=7)
    x = np.random.default_rng(8).uniform(0, 1, (3, 11, 2)).astype(np.float32)
    for capacity in (4, 16):  # in pieces of 4 (3 calls), and in one call
        y, new_state = read(config, params, state, x, capacity=capacity, every=True)
        assert y.shape == (3, 11, config.outputs)
        s = state  # the reference: one reading per call, each output kept
        for t in range(11):
            want, s = read_step_by_step(config, params, s, x[:, t : t + 1])
            np.testing.assert_allclose(y[:, t], want, rtol=1e-5, atol=1e-6)
        for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(s), strict=True):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)
    # the last output and the state are the plain read's
    y_last, state_last = read(config, params, state, x, capacity=16)
    np.testing.assert_allclose(y[:, -1], y_last, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="a window model's is the window ending at each"):
        mlp, mlp_params, _, _ = case("mlp", covariates=1)
        read(mlp, mlp_params, (), x, every=True)


@pytest.mark.parametrize("model", ["stateless", "mlp"])
def test_window_model_reads_its_last_window_from_zero(model):
    config, params, _, _ = case(model, covariates=1)
    x = np.random.default_rng(3).uniform(0, 1, (5, 9, 2)).astype(np.float32)
    y, state = read(config, params, (), x)
    expected, _ = read_step_by_step(config, params, (), x[:, -WINDOW:])
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)
    assert state == ()
    with pytest.raises(ValueError, match=f"a window model reads {WINDOW} readings, got 2"):
        read(config, params, (), x[:, :2])


def test_read_with_seeds_equals_one_call_per_seed():
    config, _, _, _ = case("stateful", covariates=1)
    seed_params = [random_params(config, s) for s in range(2)]
    seed_states = [random_state(config, 3, seed=s) for s in range(2)]
    x = np.random.default_rng(0).uniform(0, 1, (3, 5, 2)).astype(np.float32)
    y, state = read(config, stack_seeds(seed_params), stack_seeds(seed_states), x, seeds=True)
    assert y.shape == (2, 3, 1)
    for s in range(2):
        y_one, state_one = read(config, seed_params[s], seed_states[s], x)
        np.testing.assert_allclose(np.asarray(y[s]), np.asarray(y_one), rtol=1e-6, atol=1e-6)
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(state_one), strict=True):
            np.testing.assert_allclose(np.asarray(got[s]), np.asarray(want), rtol=1e-6)


def test_window_states_are_the_states_before_each_overlapping_window():
    config, params, state, _ = case("stacked", covariates=0)
    windows = np.random.default_rng(0).uniform(0, 1, (6, ROWS, WINDOW, 1)).astype(np.float32)
    before = window_states(config, params, state, windows)
    s = state
    for k in range(6):
        for got, want in zip(jax.tree.leaves(before), jax.tree.leaves(s), strict=True):
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want), rtol=1e-5, atol=1e-6)
        _, s = read_step_by_step(config, params, s, windows[k])


@pytest.mark.parametrize("model", ["stateful", "stacked"])
def test_read_windows_reads_each_overlapping_window_from_the_state_the_last_one_left(model):
    config, params, _, _ = case(model, covariates=1)
    state = random_state(config, ROWS, seed=2)
    x = np.random.default_rng(4).uniform(0, 1, (ROWS, 12, 2)).astype(np.float32)
    # the reference: window j is readings j .. j + WINDOW - 1, one step at a time
    s, want = state, []
    for j in range(12 - WINDOW + 1):
        y, s = read_step_by_step(config, params, s, x[:, j : j + WINDOW])
        want.append(y)
    want = np.stack(want, axis=1)  # (rows, windows, outputs)
    for capacity in (None, 4, 10):  # at once, in pieces of 4 windows (3 calls), one call
        y, after = read_windows(config, params, state, x, capacity=capacity)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
        for got, ref in zip(jax.tree.leaves(after), jax.tree.leaves(s), strict=True):
            np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-5, atol=1e-6)
    # compare's path: the state before window j + 1 (window_states) is the state after j
    windows = np.stack([x[:, j : j + WINDOW] for j in range(12 - WINDOW + 1)])
    before = window_states(config, params, state, windows)
    _, after_two = read_windows(config, params, state, x[:, : WINDOW + 1])
    for got, ref in zip(jax.tree.leaves(after_two), jax.tree.leaves(before), strict=True):
        np.testing.assert_allclose(got, np.asarray(ref[2]), rtol=1e-5, atol=1e-6)
    # in pieces, each after the first starting with the last WINDOW - 1 readings before it
    y1, mid = read_windows(config, params, state, x[:, :7])
    y2, end = read_windows(config, params, mid, x[:, 7 - WINDOW + 1 :])
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), want, rtol=1e-5, atol=1e-6)
    for got, ref in zip(jax.tree.leaves(end), jax.tree.leaves(s), strict=True):
        np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-5, atol=1e-6)


def test_read_windows_compiles_one_program_per_row_bucket_with_a_capacity():
    config, params, _, _ = case("stateful", covariates=0, window=2)  # no other test uses it
    x = np.random.default_rng(0).uniform(0, 1, (3, 20, 1)).astype(np.float32)
    for rows in (1, 3, 4):
        for length in (2, 3, 9, 20):
            read_windows(config, params, init_state(config, rows), x[:rows, :length], capacity=8)
    # one program per row bucket (1 row; 3 rows padded to 4), every norm sharing it
    assert _compiled_read_windows(norm_program(config), False)._cache_size() == 2
    stream = make_config("stream", 1, 1)
    with pytest.raises(ValueError, match="read_windows needs a stateful model that returns"):
        read_windows(stream, random_params(stream), (), x)
    with pytest.raises(ValueError, match=r"with time >= 2 \(one window\), got shape \(3, 1, 1\)"):
        read_windows(config, params, init_state(config, 3), x[:, :1])


# --------------------------------------------------------------------------- errors


def test_errors_name_the_value_and_the_fix():
    config, params, state, x = case("stateful", covariates=2)
    with pytest.raises(
        ValueError, match=r"pass their known future values, future of shape \(3, 4, 2\)"
    ):
        rollout(config, params, state, x, horizon=4)
    with pytest.raises(
        ValueError, match=r"future must have shape .* = \(3, 4, 2\), got \(3, 3, 2\)"
    ):
        rollout(config, params, state, x, horizon=4, future=np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="strategy must be one of"):
        rollout(config, params, state, x, horizon=4, strategy="sideways")
    with pytest.raises(ValueError, match="horizon must be a positive integer, got 0"):
        rollout(config, params, state, x, horizon=0)
    with pytest.raises(ValueError, match="a direct forecast needs horizon \\* targets outputs"):
        rollout(config, params, state, x, horizon=4, strategy="direct")
    with pytest.raises(ValueError, match=r"rollout needs inputs x of shape \(rows, time, 3\)"):
        rollout(config, params, state, x[..., :1], horizon=1)
    mlp = make_config("mlp", 1, 1)
    with pytest.raises(ValueError, match="window_states needs a stateful model"):
        window_states(mlp, random_params(mlp), (), np.zeros((2, 1, WINDOW, 1)))


def test_a_window_model_reads_many_rows_in_pieces_as_it_reads_them_at_once(monkeypatch):
    # every window of a long series is read in pieces of READ_ROWS rows: bounded memory,
    # the same outputs as apply on all rows at once (the independent reference)
    from lstmlab.core import rollout as module

    config = MLPConfig(hidden=(5,), timesteps=4, features=1, outputs=1)
    params = init_params(config, 0)
    x = np.random.default_rng(0).normal(size=(37, 4, 1)).astype(np.float32)
    whole = np.asarray(apply(config, params, (), jnp.asarray(x))[0])
    monkeypatch.setattr(module, "READ_ROWS", 8)  # 37 rows: pieces of 8, 8, 8, 8 and 5
    compiled, calls = module._compiled_read, []

    def spied(*key):
        fn = compiled(*key)
        return lambda *args: calls.append(args[2].shape[0]) or fn(*args)

    monkeypatch.setattr(module, "_compiled_read", spied)
    pieced, state = module.read(config, params, (), x)
    assert calls == [8, 8, 8, 8, 8]  # the last piece, 5 rows, padded to its bucket of 8
    assert state == () and pieced.shape == (37, 1)
    np.testing.assert_allclose(pieced, whole, rtol=1e-6, atol=1e-6)
    seeds = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), params)
    both = module.read(config, seeds, (), x, seeds=True)[0]
    assert both.shape == (2, 37, 1)
    np.testing.assert_allclose(both[1], whole, rtol=1e-6, atol=1e-6)
