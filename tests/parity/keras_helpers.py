"""Shared Keras builders for the parity tests, and the TensorFlow-backend training runner.

Importing this module imports Keras, whose backend is fixed at import: the default suite uses
JAX (``KERAS_BACKEND=jax``, set by ``tests/conftest.py`` and the Makefile). The stateful
training parity test runs this module in a subprocess with ``KERAS_BACKEND=tensorflow``:

    python -m tests.parity.keras_helpers IN.npz OUT.npz

Facts measured with Keras 3.15.1 (they are what the tests in this folder pin down):

- JAX backend: a stateful LSTM carries its state only through direct calls ``model(x)``.
  ``fit``, ``predict``, ``evaluate`` and ``train_on_batch`` run a stateless compiled function;
  the layer's state variables stay zero and every batch starts from zero state.
- TensorFlow backend: direct calls, ``fit``, ``predict``, ``evaluate`` and ``train_on_batch``
  all carry the state across batches (Keras 2 behaviour).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import contextlib  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402


def keras_context() -> contextlib.AbstractContextManager:
    """Allow rank promotion inside Keras' own code (its initializers and ops rely on it).

    ``tests/conftest.py`` makes rank promotion an error for our code; Keras on the JAX
    backend broadcasts e.g. ``(20, 5) * (5,)`` and would fail under it.
    """
    return jax.numpy_rank_promotion("allow")


_ZERO_KERNELS = {"kernel_initializer": "zeros"}


def build_keras_lstm(
    *,
    batch_size: int,
    timesteps: int,
    features: int,
    units: Sequence[int],
    outputs: int,
    stateful: bool,
    return_sequences: bool = False,
) -> keras.Sequential:
    """Keras' ``Sequential([LSTM(u1, return_sequences=True), ..., LSTM(uk), Dense(outputs)])``.

    All LSTM layers but the last return sequences; the last one returns them when
    ``return_sequences`` is set (the head then predicts ``(batch, time, outputs)``). Kernels
    start at zero (the tests overwrite them with random weights; Keras' glorot and orthogonal
    initializers compile once per shape, about a second each); biases keep Keras' defaults.
    """
    layers: list = [keras.Input(batch_shape=(batch_size, timesteps, features))]
    for index, layer_units in enumerate(units):
        last = index == len(units) - 1
        layers.append(
            keras.layers.LSTM(
                layer_units,
                stateful=stateful,
                return_sequences=return_sequences if last else True,
                **_ZERO_KERNELS,
                recurrent_initializer="zeros",
            )
        )
    layers.append(keras.layers.Dense(outputs, **_ZERO_KERNELS))
    with keras_context():
        return keras.Sequential(layers)


def build_keras_mlp(
    *, timesteps: int, features: int, hidden: Sequence[int], outputs: int
) -> keras.Sequential:
    """Keras' ``Sequential([Flatten(), Dense(h, relu)..., Dense(outputs)])``, zero kernels."""
    layers: list = [keras.Input(shape=(timesteps, features)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(size, activation="relu", **_ZERO_KERNELS) for size in hidden]
    layers.append(keras.layers.Dense(outputs, **_ZERO_KERNELS))
    with keras_context():
        return keras.Sequential(layers)


def random_weights(model: keras.Model, seed: int, scale: float = 0.5) -> list[np.ndarray]:
    """Random normal weights in ``model.get_weights()`` shapes, a fresh draw for every array.

    Non-zero biases and asymmetric kernels, so that a gate permutation, a transposed kernel or
    a missing forget bias changes the predictions.
    """
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=w.shape) * scale).astype(np.float32) for w in model.get_weights()]


def lstm_layers(model: keras.Model) -> list:
    """The model's LSTM layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]


def reset_keras_states(model: keras.Model) -> None:
    """Zero every LSTM layer's state (Keras 3 has ``layer.reset_states()``, no model method)."""
    with keras_context():
        for layer in lstm_layers(model):
            layer.reset_states()


def keras_states(model: keras.Model) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(h, c)`` of every stateful LSTM layer, as NumPy."""
    out = []
    for layer in lstm_layers(model):
        h, c = (keras.ops.convert_to_numpy(s) for s in layer.states)
        out.append((np.array(h), np.array(c)))
    return out


def keras_call(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One direct call ``model(x)`` (the only call that carries state on the JAX backend)."""
    with keras_context():
        return np.asarray(keras.ops.convert_to_numpy(model(x)))


def set_keras_weights(model: keras.Model, weights: Sequence[np.ndarray]) -> None:
    """``model.set_weights(weights)``."""
    with keras_context():
        model.set_weights(list(weights))


def _train(model: keras.Model, weights, x_batches, y_batches, *, reset_every_batch: bool):
    """``train_on_batch`` over the batches in order from ``weights`` with a fresh Keras Adam."""
    set_keras_weights(model, weights)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    reset_keras_states(model)
    losses = []
    for x, y in zip(x_batches, y_batches, strict=True):
        if reset_every_batch:
            reset_keras_states(model)
        losses.append(float(model.train_on_batch(x, y)))
    return np.asarray(losses), model.get_weights()


def run_training(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One epoch of ``train_on_batch`` (and one of ``fit``) on the current backend.

    Args:
        inputs: ``units`` (int array), ``x_batches (nb, B, T, F)``, ``y_batches (nb, B, O)``,
            ``stateful`` (0 or 1), and ``weight_0 ... weight_{n-1}`` in ``get_weights()`` order.

    Returns:
        ``losses`` (train_on_batch, state carried as Keras does on this backend),
        ``losses_zero_state`` (the same with ``reset_states()`` before every batch),
        ``state_norm`` (sum of |h| + |c| after the epoch), ``fit_loss`` (the epoch mean ``fit``
        reports) and ``final_weight_i``.
    """
    x_batches, y_batches = inputs["x_batches"], inputs["y_batches"]
    num_batches, batch_size, timesteps, features = x_batches.shape
    count = sum(1 for key in inputs if key.startswith("weight_"))
    weights = [inputs[f"weight_{i}"] for i in range(count)]
    model = build_keras_lstm(
        batch_size=batch_size,
        timesteps=timesteps,
        features=features,
        units=[int(u) for u in inputs["units"]],
        outputs=y_batches.shape[-1],
        stateful=bool(inputs["stateful"]),
    )
    losses, final = _train(model, weights, x_batches, y_batches, reset_every_batch=False)
    state_norm = sum(float(np.abs(h).sum() + np.abs(c).sum()) for h, c in keras_states(model))
    zero_losses, _ = _train(model, weights, x_batches, y_batches, reset_every_batch=True)

    set_keras_weights(model, weights)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    reset_keras_states(model)
    history = model.fit(
        x_batches.reshape(num_batches * batch_size, timesteps, features),
        y_batches.reshape(num_batches * batch_size, -1),
        batch_size=batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    out = {
        "backend": np.asarray(keras.backend.backend()),
        "losses": losses,
        "losses_zero_state": zero_losses,
        "state_norm": np.asarray(state_norm),
        "fit_loss": np.asarray(history.history["loss"][-1]),
    }
    out.update({f"final_weight_{i}": w for i, w in enumerate(final)})
    return out


def main(argv: Sequence[str]) -> int:
    """``python -m tests.parity.keras_helpers IN.npz OUT.npz``: see ``run_training``."""
    in_path, out_path = argv
    with np.load(in_path) as data:
        inputs = {key: data[key] for key in data.files}
    np.savez(out_path, **run_training(inputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
