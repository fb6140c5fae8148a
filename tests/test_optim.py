"""``keras_adam`` against Keras' Adam, a NumPy reference of Keras' formula, and ``optax.adam``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstmlab.train.optim import keras_adam
from tests.parity.keras_helpers import keras, keras_context

STEPS = 8
SHAPES = {"kernel": (3, 4), "bias": (4,), "tiny": (5,)}


def gradient_sequence(seed=0):
    """Gradients per step: mixed scales for ``kernel`` and ``bias``, ~1e-6 for ``tiny``.

    ``tiny`` is where Keras' epsilon placement matters: ``sqrt(v)`` is then of the order of
    ``epsilon * sqrt(1 - b2^t)``.
    """
    rng = np.random.default_rng(seed)
    scales = [1.0, 1e-6, 0.3, 1e-6, 2.0, 1e-3, 1e-6, 0.5]
    sequence = []
    for scale in scales[:STEPS]:
        grads = {
            "kernel": rng.normal(size=SHAPES["kernel"]) * scale,
            "bias": rng.normal(size=SHAPES["bias"]) * scale,
            "tiny": rng.normal(size=SHAPES["tiny"]) * 1e-6,
        }
        sequence.append({k: v.astype(np.float32) for k, v in grads.items()})
    return sequence


def initial_params(seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=shape).astype(np.float32) for k, shape in SHAPES.items()}


def run_ours(optimizer, params, grads_sequence):
    """Apply the optimizer step by step (jitted, as in training); returns params per step."""
    params = {k: jnp.asarray(v) for k, v in params.items()}
    state = optimizer.init(params)
    update = jax.jit(optimizer.update)
    history = []
    for grads in grads_sequence:
        updates, state = update({k: jnp.asarray(v) for k, v in grads.items()}, state, params)
        params = optax.apply_updates(params, updates)
        history.append({k: np.asarray(v) for k, v in params.items()})
    return history


def run_numpy_reference(params, grads_sequence, lr, beta_1, beta_2, epsilon):
    """Keras' Adam formula in float64 NumPy (``keras/src/optimizers/adam.py``)."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    history = []
    for step, grads in enumerate(grads_sequence, start=1):
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        for key, g in grads.items():
            g = g.astype(np.float64)
            m[key] += (g - m[key]) * (1 - beta_1)
            v[key] += (g**2 - v[key]) * (1 - beta_2)
            params[key] = params[key] - alpha * m[key] / (np.sqrt(v[key]) + epsilon)
        history.append({k: p.copy() for k, p in params.items()})
    return history


def run_keras(params, grads_sequence, lr, beta_1, beta_2, epsilon):
    """``keras.optimizers.Adam`` on Keras variables, one ``apply_gradients`` per step."""
    with keras_context():
        variables = {k: keras.Variable(v, name=k) for k, v in params.items()}
        optimizer = keras.optimizers.Adam(
            learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon
        )
        history = []
        for grads in grads_sequence:
            optimizer.apply_gradients([(grads[k], variables[k]) for k in params])
            history.append({k: np.asarray(variables[k].numpy()) for k in params})
    return history


HYPERPARAMETERS = [
    pytest.param((1e-3, 0.9, 0.999, 1e-7), id="keras-defaults"),
    pytest.param((0.05, 0.8, 0.95, 1e-4), id="non-default"),
]


def assert_histories_close(got, expected, *, rtol, atol):
    for step, (got_step, expected_step) in enumerate(zip(got, expected, strict=True), start=1):
        for key in SHAPES:
            np.testing.assert_allclose(
                got_step[key],
                expected_step[key],
                rtol=rtol,
                atol=atol,
                err_msg=f"step {step}, {key}",
            )


@pytest.mark.parametrize("hyper", HYPERPARAMETERS)
def test_keras_adam_matches_keras_optimizer(hyper):
    lr, beta_1, beta_2, epsilon = hyper
    params, grads = initial_params(), gradient_sequence()
    expected = run_keras(params, grads, lr, beta_1, beta_2, epsilon)
    got = run_ours(keras_adam(lr, beta_1, beta_2, epsilon), params, grads)
    # Same float32 operations in the same order: agreement to a few ulps.
    assert_histories_close(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hyper", HYPERPARAMETERS)
def test_keras_adam_matches_numpy_reference_of_keras_formula(hyper):
    lr, beta_1, beta_2, epsilon = hyper
    params, grads = initial_params(), gradient_sequence()
    expected = run_numpy_reference(params, grads, lr, beta_1, beta_2, epsilon)
    got = run_ours(keras_adam(lr, beta_1, beta_2, epsilon), params, grads)
    # float32 against float64: parameters of order 1 agree to a few float32 ulps.
    atol = 3e-7
    assert_histories_close(got, expected, rtol=0, atol=atol)
    # Non-vacuous: every parameter moved by a hundred tolerances or more.
    for key in SHAPES:
        assert np.min(np.abs(got[-1][key] - params[key])) > 100 * atol


def test_optax_adam_differs_where_gradients_are_tiny():
    # Why keras_adam exists: optax.adam adds epsilon to the bias-corrected sqrt(v_hat); Keras
    # adds it to sqrt(v). With gradients ~1e-6 the steps differ by tens of percent; with
    # gradients ~1 epsilon is negligible and the two agree.
    params, grads = initial_params(), gradient_sequence()
    ours = run_ours(keras_adam(), params, grads)
    theirs = run_ours(optax.adam(1e-3, eps=1e-7), params, grads)
    keras_steps = ours[-1]["tiny"] - params["tiny"]
    optax_steps = theirs[-1]["tiny"] - params["tiny"]
    relative = np.abs(optax_steps - keras_steps) / np.abs(keras_steps)
    assert np.min(relative) > 0.2

    large = [{k: np.full(shape, 1.0, np.float32) for k, shape in SHAPES.items()}] * 3
    ours_large = run_ours(keras_adam(), params, large)[-1]["kernel"] - params["kernel"]
    optax_large = run_ours(optax.adam(1e-3, eps=1e-7), params, large)[-1]["kernel"]
    np.testing.assert_allclose(optax_large - params["kernel"], ours_large, rtol=1e-3)


def test_keras_adam_state_counts_steps_and_keeps_moments_per_leaf():
    optimizer = keras_adam()
    params = {k: jnp.asarray(v) for k, v in initial_params().items()}
    state = optimizer.init(params)
    grads = gradient_sequence()
    update = jax.jit(optimizer.update)
    for step_grads in grads[:3]:
        _, state = update({k: jnp.asarray(v) for k, v in step_grads.items()}, state)
    assert int(state.count) == 3
    # First moment after three steps, by hand: m3 = sum (1 - b1) b1^(3-k) g_k.
    expected_mu = sum(0.1 * 0.9 ** (3 - k) * grads[k - 1]["bias"] for k in (1, 2, 3))
    np.testing.assert_allclose(np.asarray(state.mu["bias"]), expected_mu, rtol=1e-5)
