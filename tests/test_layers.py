import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.layers import (
    LSTMParams,
    LSTMState,
    glorot_uniform,
    init_lstm,
    lstm_layer,
    orthogonal,
    zero_lstm_state,
)


def test_glorot_uniform_stays_within_keras_limit_and_fills_it():
    weights = np.asarray(glorot_uniform(jax.random.key(0), (30, 80)))
    limit = np.sqrt(6.0 / (30 + 80))
    assert np.abs(weights).max() <= limit
    # A uniform on [-limit, limit] has variance limit^2 / 3.
    assert weights.var() == pytest.approx(limit**2 / 3, rel=0.1)


@pytest.mark.parametrize("shape", [(20, 80), (80, 20), (7, 7)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    q = np.asarray(orthogonal(jax.random.key(1), shape), dtype=np.float64)
    rows, cols = shape
    gram = q @ q.T if rows <= cols else q.T @ q
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_orthogonal_depends_on_the_key():
    a = orthogonal(jax.random.key(1), (4, 16))
    b = orthogonal(jax.random.key(2), (4, 16))
    assert not np.allclose(a, b)


def reference_lstm(kernel, recurrent_kernel, bias, h, c, x):
    """Keras' LSTM written out step by step in NumPy (float64), gates [i, f, c, o]."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    units = h.shape[1]
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i = sigmoid(z[:, :units])
        f = sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = sigmoid(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def random_params(rng, features, units):
    return LSTMParams(
        kernel=rng.normal(0, 0.5, (features, 4 * units)).astype(np.float32),
        recurrent_kernel=rng.normal(0, 0.5, (units, 4 * units)).astype(np.float32),
        bias=rng.normal(0, 0.5, (4 * units,)).astype(np.float32),
    )


def test_matches_step_by_step_reference_from_nonzero_state():
    rng = np.random.default_rng(0)
    params = random_params(rng, 3, 5)
    h0, c0 = rng.normal(size=(2, 4, 5)).astype(np.float32)
    x = rng.normal(size=(4, 7, 3)).astype(np.float32)
    sequence, state = lstm_layer(params, LSTMState(jnp.asarray(h0), jnp.asarray(c0)), x)
    ref_sequence, ref_h, ref_c = reference_lstm(*[np.float64(p) for p in params], h0, c0, x)
    np.testing.assert_allclose(sequence, ref_sequence, atol=1e-5)
    np.testing.assert_allclose(state.h, ref_h, atol=1e-5)
    np.testing.assert_allclose(state.c, ref_c, atol=1e-5)


def test_single_step_path_matches_reference():
    rng = np.random.default_rng(1)
    params = random_params(rng, 2, 6)
    h0, c0 = rng.normal(size=(2, 3, 6)).astype(np.float32)
    x = rng.normal(size=(3, 1, 2)).astype(np.float32)
    sequence, state = lstm_layer(params, LSTMState(h0, c0), x)
    ref_sequence, ref_h, ref_c = reference_lstm(*[np.float64(p) for p in params], h0, c0, x)
    np.testing.assert_allclose(sequence, ref_sequence, atol=1e-5)
    np.testing.assert_allclose(state.c, ref_c, atol=1e-5)


def test_running_in_pieces_with_carried_state_equals_running_at_once():
    rng = np.random.default_rng(2)
    params = random_params(rng, 1, 4)
    x = rng.normal(size=(2, 9, 1)).astype(np.float32)
    whole, whole_state = lstm_layer(params, zero_lstm_state(2, 4), x)
    state = zero_lstm_state(2, 4)
    pieces = []
    for start, stop in [(0, 1), (1, 5), (5, 9)]:
        out, state = lstm_layer(params, state, x[:, start:stop])
        pieces.append(out)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-6)
    np.testing.assert_allclose(state.h, whole_state.h, atol=1e-6)


def test_keras_default_initialisation_layout():
    params = init_lstm(jax.random.key(0), 3, 5)
    assert params.kernel.shape == (3, 20)
    assert params.recurrent_kernel.shape == (5, 20)
    # unit_forget_bias: [0]*u (input), [1]*u (forget), [0]*2u (cell, output).
    expected_bias = np.concatenate([np.zeros(5), np.ones(5), np.zeros(10)])
    np.testing.assert_array_equal(params.bias, expected_bias)
    recurrent = np.asarray(params.recurrent_kernel, np.float64)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(5), atol=1e-5)
