"""Training parity with Keras 3: one epoch from the same weights on the same ordered batches.

Keras' ``train_on_batch`` returns the loss of the batch before its update; ``make_train_epoch``
returns the same, so the per-batch losses agree to 1e-3 (relative) and the final weights to
1e-4. The stateless test uses Keras' JAX backend. A stateful LSTM carries no state inside
``train_on_batch`` on that backend (see ``keras_helpers``), so the stateful test trains Keras
with its TensorFlow backend in a subprocess (the backend is fixed when Keras is imported).
"""

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.model import (
    LSTMConfig,
    apply,
    from_keras_weights,
    init_params,
    init_state,
    to_keras_weights,
)
from lstmlab.core.train import TrainConfig, init_train_state, make_train_epoch
from lstmlab.experiments.moving_average import MovingAverageConfig, make_data
from tests.parity.keras_helpers import (
    build_keras_lstm,
    keras,
    keras_context,
    random_weights,
    set_keras_weights,
)

LOSS_RTOL = 1e-3
WEIGHT_ATOL = 1e-4
REPO_ROOT = Path(__file__).resolve().parents[2]


def zero_params(config):
    """Parameters of the right shapes, from tracing init_params (no compilation)."""
    shapes = jax.eval_shape(functools.partial(init_params, config, 0))
    return jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes)


def ours(config, weights):
    """Parameters of ``config`` from a Keras ``get_weights()`` list."""
    return from_keras_weights(config, weights, zero_params(config))


def train_ours(config, weights, x_batches, y_batches):
    """One epoch of ``make_train_epoch``; returns (losses, final weights in Keras order)."""
    train_config = TrainConfig(epochs=1)
    params = ours(config, weights)
    state = init_train_state(config, params, x_batches.shape[1], train_config)
    epoch = jax.jit(make_train_epoch(config, train_config))
    state, losses = epoch(state, jnp.asarray(x_batches), jnp.asarray(y_batches))
    return np.asarray(losses), to_keras_weights(config, state.params)


def sine_batches(num_batches, batch_size, timesteps):
    """Windows of a noisy sine in time order: x ``(nb, B, T, 1)``, next value y ``(nb, B, 1)``."""
    samples = num_batches * batch_size
    rng = np.random.default_rng(0)
    steps = np.arange(samples + timesteps)
    series = np.sin(0.3 * steps) + 0.1 * rng.normal(size=steps.shape)
    x = np.stack([series[i : i + timesteps] for i in range(samples)])  # (samples, T)
    y = series[timesteps : timesteps + samples]  # (samples,)
    x_batches = x.reshape(num_batches, batch_size, timesteps, 1).astype(np.float32)
    return x_batches, y.reshape(num_batches, batch_size, 1).astype(np.float32)


def test_stateless_epoch_matches_keras_train_on_batch():
    num_batches, batch_size, timesteps, units = 50, 4, 3, 8
    x_batches, y_batches = sine_batches(num_batches, batch_size, timesteps)
    config = LSTMConfig(units=(units,), timesteps=timesteps, stateful=False)
    model = build_keras_lstm(
        batch_size=batch_size,
        timesteps=timesteps,
        features=1,
        units=(units,),
        outputs=1,
        stateful=False,
    )
    weights = random_weights(model, seed=21, scale=0.3)
    set_keras_weights(model, weights)
    with keras_context():
        model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        keras_losses = [
            float(model.train_on_batch(x, y)) for x, y in zip(x_batches, y_batches, strict=True)
        ]
        keras_final = model.get_weights()

    losses, final = train_ours(config, weights, x_batches, y_batches)
    np.testing.assert_allclose(losses, keras_losses, rtol=LOSS_RTOL)
    assert len(final) == len(keras_final)
    for index, (got, expected) in enumerate(zip(final, keras_final, strict=True)):
        np.testing.assert_allclose(got, expected, atol=WEIGHT_ATOL, rtol=0, err_msg=f"w{index}")

    # Both report the loss before the batch's update: the first equals the initial weights'.
    start = init_state(config, batch_size)
    first, _ = apply(config, ours(config, weights), start, x_batches[0])
    np.testing.assert_allclose(losses[0], np.mean((first - y_batches[0]) ** 2), rtol=1e-6)
    # The epoch moved the weights far beyond the tolerance (optax.adam, whose epsilon sits
    # elsewhere, ends about 9e-4 away from Keras here and fails the weight check).
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(final, weights, strict=True))
    assert moved > 100 * WEIGHT_ATOL


# -- stateful, against the TensorFlow backend ------------------------------------------------


def run_keras_tensorflow(tmp_path, weights, x_batches, y_batches, units):
    """Run ``keras_helpers.run_training`` with ``KERAS_BACKEND=tensorflow`` in a subprocess."""
    inputs = tmp_path / "inputs.npz"
    outputs = tmp_path / "outputs.npz"
    np.savez(
        inputs,
        units=np.asarray(units),
        stateful=np.asarray(1),
        x_batches=x_batches,
        y_batches=y_batches,
        **{f"weight_{i}": w for i, w in enumerate(weights)},
    )
    env = dict(os.environ)
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    completed = subprocess.run(
        [sys.executable, "-m", "tests.parity.keras_helpers", str(inputs), str(outputs)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    with np.load(outputs) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="tensorflow not installed; run `make parity` (installs the parity extra)",
)
def test_stateful_epoch_matches_keras_tensorflow_train_on_batch(tmp_path):
    # The official example's data: noise in, its 2-point moving average out; a stateful
    # model needs the carried state to see the previous point.
    batch_size, units, num_batches = 2, 6, 40
    data = make_data(MovingAverageConfig(input_len=200, tsteps=2, lahead=1, batch_size=2))
    samples = num_batches * batch_size
    # Keras' order: batch k holds samples k*B .. k*B+B-1, row i continues from row i.
    x_batches = data.x_train[:samples].reshape(num_batches, batch_size, 1, 1)
    y_batches = data.y_train[:samples].reshape(num_batches, batch_size, 1)
    config = LSTMConfig(units=(units,), timesteps=1, stateful=True)
    rng = np.random.default_rng(5)
    weights = [
        (rng.normal(size=w.shape) * 0.3).astype(np.float32)
        for w in to_keras_weights(config, zero_params(config))
    ]

    result = run_keras_tensorflow(tmp_path, weights, x_batches, y_batches, (units,))
    assert str(result["backend"]) == "tensorflow"
    keras_losses = result["losses"]

    # Documents Keras 3.15 on TensorFlow: train_on_batch carries the state across batches
    # (losses differ from a run with reset_states() before every batch; the state is non-zero).
    assert float(result["state_norm"]) > 0.0
    relative = np.abs(keras_losses - result["losses_zero_state"]) / result["losses_zero_state"]
    assert relative[1:].max() > 10 * LOSS_RTOL

    losses, final = train_ours(config, weights, x_batches, y_batches)
    np.testing.assert_allclose(losses, keras_losses, rtol=LOSS_RTOL)
    for index, got in enumerate(final):
        expected = result[f"final_weight_{index}"]
        np.testing.assert_allclose(got, expected, atol=WEIGHT_ATOL, rtol=0, err_msg=f"w{index}")
    # Keras' fit on TensorFlow carries the state too: its epoch loss is the mean of ours.
    np.testing.assert_allclose(result["fit_loss"], np.mean(losses), rtol=LOSS_RTOL)
    # Ours stateless equals Keras stateful reset before every batch.
    stateless = LSTMConfig(units=(units,), timesteps=1, stateful=False)
    zero_losses, _ = train_ours(stateless, weights, x_batches, y_batches)
    np.testing.assert_allclose(zero_losses, result["losses_zero_state"], rtol=LOSS_RTOL)
