import re

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


# ------------------------------------------------ issue 13: batched VJP, unroll, bfloat16


def autodiff_reference_layer(params, h0, c0, x):
    """The layer as it was: one ``lstm_step`` per step in a scan, differentiated by JAX."""
    from lstmlab.core.layers import lstm_step

    # float32 products at full precision, as the layer's (a GPU would otherwise use TF32)
    product = jnp.matmul(x, params.kernel, precision=jax.lax.Precision.HIGHEST)
    projected = jnp.swapaxes(product + params.bias[None, None, :], 0, 1)
    final, h_seq = jax.lax.scan(
        lambda state, step_x: lstm_step(params.recurrent_kernel, state, step_x),
        LSTMState(h0, c0), projected,
    )
    return jnp.swapaxes(h_seq, 0, 1), final


def weighted_output(layer, weights):
    """A loss that sends cotangents into every output: the sequence and the final h and c."""
    def loss(params, h0, c0, x):
        sequence, final = layer(params, h0, c0, x)
        return (jnp.sum(sequence * weights) + jnp.sum(jnp.square(final.h))
                + jnp.sum(jnp.sin(final.c)))
    return loss


def layer_case(seed=3, batch=4, time=9, features=3, units=5):
    rng = np.random.default_rng(seed)
    params = random_params(rng, features, units)
    h0, c0 = rng.normal(size=(2, batch, units)).astype(np.float32)
    x = rng.normal(size=(batch, time, features)).astype(np.float32)
    weights = rng.normal(size=(batch, time, units)).astype(np.float32)
    return params, h0, c0, x, weights


@pytest.mark.parametrize("unroll", [1, 3, 9, None])
def test_batched_vjp_and_unroll_match_autodiff_of_the_plain_scan(unroll):
    # Tolerance (float32 rounding only: the same maths in another order): forward outputs
    # within 1e-6, gradients within 2e-6 relative to the largest entry of each gradient.
    params, h0, c0, x, weights = layer_case()

    def ours(p, h, c, inputs):
        return lstm_layer(p, LSTMState(h, c), inputs, unroll=unroll)

    sequence, final = ours(params, h0, c0, x)
    ref_sequence, ref_final = autodiff_reference_layer(params, h0, c0, x)
    np.testing.assert_allclose(sequence, ref_sequence, atol=1e-6)
    np.testing.assert_allclose(final.c, ref_final.c, atol=1e-6)
    grads = jax.grad(weighted_output(ours, weights), argnums=(0, 1, 2, 3))(params, h0, c0, x)
    ref_grads = jax.grad(weighted_output(autodiff_reference_layer, weights),
                         argnums=(0, 1, 2, 3))(params, h0, c0, x)
    for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        scale = np.max(np.abs(expected))
        assert scale > 0
        np.testing.assert_allclose(got, expected, atol=2e-6 * scale)


@pytest.mark.parametrize(("batch", "time"), [(1, 2), (3, 2), (1, 5)])
def test_batched_vjp_at_the_edges_of_its_slices(batch, time):
    # The backward pass takes the first step's h from h0 and the others from h_seq[:-1], and
    # rebuilds each new cell state from the saved starting one: two steps (a one-step slice)
    # and one row are where an off-by-one step would show. Same tolerances as above.
    params, h0, c0, x, weights = layer_case(seed=11, batch=batch, time=time)

    def ours(p, h, c, inputs):
        return lstm_layer(p, LSTMState(h, c), inputs)

    grads = jax.grad(weighted_output(ours, weights), argnums=(0, 1, 2, 3))(params, h0, c0, x)
    ref_grads = jax.grad(weighted_output(autodiff_reference_layer, weights),
                         argnums=(0, 1, 2, 3))(params, h0, c0, x)
    for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        np.testing.assert_allclose(got, expected, atol=2e-6 * np.max(np.abs(expected)))


def test_the_gradient_check_can_fail():
    # A transposed recurrent kernel in the reference must be caught by the same comparison.
    params, h0, c0, x, weights = layer_case(units=4, features=4)
    swapped = params._replace(
        recurrent_kernel=params.recurrent_kernel.reshape(4, 4, 4).transpose(0, 2, 1).reshape(
            4, 16)
    )
    grads = jax.grad(weighted_output(
        lambda p, h, c, inputs: lstm_layer(p, LSTMState(h, c), inputs), weights))(
        params, h0, c0, x)
    ref = jax.grad(weighted_output(autodiff_reference_layer, weights))(swapped, h0, c0, x)
    assert not np.allclose(grads.kernel, ref.kernel, atol=1e-3)


def test_bfloat16_products_stay_within_their_stated_tolerance_of_float32():
    # Stated tolerance: with bfloat16 operands and float32 accumulation, outputs within
    # 2e-2 (absolute; h is in (-1, 1)) and every gradient within 3e-2 of its largest entry,
    # on this 9-step layer with weights of scale 0.5. The error is not zero: the mode is on.
    from lstmlab.core.layers import matmul_dtype

    params, h0, c0, x, weights = layer_case(seed=5, batch=8, units=16)

    def ours(p, h, c, inputs):
        return lstm_layer(p, LSTMState(h, c), inputs)

    def in_bfloat16(p, h, c, inputs):
        with matmul_dtype("bfloat16"):
            return lstm_layer(p, LSTMState(h, c), inputs)

    sequence, _ = ours(params, h0, c0, x)
    low, _ = in_bfloat16(params, h0, c0, x)
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, sequence, atol=2e-2)
    assert not np.array_equal(low, sequence)
    grads = jax.grad(weighted_output(ours, weights), argnums=(0, 1, 2, 3))(params, h0, c0, x)
    low_grads = jax.grad(weighted_output(in_bfloat16, weights), argnums=(0, 1, 2, 3))(
        params, h0, c0, x)
    for got, expected in zip(jax.tree.leaves(low_grads), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(got, expected, atol=3e-2 * np.max(np.abs(expected)))
    with pytest.raises(ValueError, match=re.escape(
            "matmul_dtype must be one of ('float32', 'bfloat16'), got 'half'")):
        with matmul_dtype("half"):
            pass


def test_unroll_is_chosen_by_shape():
    from lstmlab.core.layers import time_unroll

    assert time_unroll(1, 20, 1) == time_unroll(1, 20, 2) == 1  # nothing to unroll
    assert time_unroll(1, 20, 64) == 2  # a tiny step: the loop overhead dominates
    assert time_unroll(256, 128, 64) == time_unroll(1024, 128, 16) == 1
