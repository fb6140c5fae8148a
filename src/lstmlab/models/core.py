"""Dispatch on the model kind, and the Keras ``get_weights`` order."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lstmlab.layers.dense import DenseParams
from lstmlab.layers.lstm import LSTMParams
from lstmlab.models.config import LSTMConfig, ModelConfig
from lstmlab.models.mlp import MLPParams, apply_mlp, init_mlp
from lstmlab.models.stacked import StackedParams, apply_stacked, init_stacked
from lstmlab.models.state import ModelState

Params = StackedParams | MLPParams


def init_params(config: ModelConfig, key: jax.Array | int) -> Params:
    """Keras-default initial parameters for ``config``.

    Args:
        config: the model.
        key: JAX PRNG key, or an int seed.

    Returns:
        A parameter pytree (``StackedParams`` or ``MLPParams``).

    Example:
        >>> from lstmlab.models import LSTMConfig, init_params
        >>> params = init_params(LSTMConfig(units=(20,)), 0)
        >>> params.lstm[0].kernel.shape, params.head.kernel.shape
        ((1, 80), (20, 1))
    """
    if isinstance(key, int):
        key = jax.random.key(key)
    if isinstance(config, LSTMConfig):
        return init_stacked(config, key)
    return init_mlp(config, key)


def apply(
    config: ModelConfig, params: Params, state: ModelState, x: jax.Array
) -> tuple[jax.Array, ModelState]:
    """Forward pass from ``state``; returns the prediction and the new state.

    Args:
        config: the model (static under ``jit``).
        params: its parameters.
        state: from ``init_state``; ``()`` for an MLP.
        x: ``(batch, time, features)``.

    Returns:
        ``(y, new_state)`` with ``y`` of shape ``(batch, outputs)`` (or ``(batch, time,
        outputs)`` for an LSTM with ``return_sequences``).
    """
    if isinstance(config, LSTMConfig):
        return apply_stacked(config, params, state, x)
    return apply_mlp(config, params, state, x)


def _dense_list(layer: DenseParams) -> list[np.ndarray]:
    return [np.asarray(layer.kernel), np.asarray(layer.bias)]


def to_keras_weights(config: ModelConfig, params: Params) -> list[np.ndarray]:
    """The weights in the order and shapes of Keras' ``model.get_weights()``.

    For an LSTM stack: ``[kernel, recurrent_kernel, bias]`` per layer, then ``[kernel, bias]``
    of the head; for an MLP: ``[kernel, bias]`` per Dense layer.

    Args:
        config: the model.
        params: its parameters.

    Returns:
        A list of NumPy arrays (copies).
    """
    weights: list[np.ndarray] = []
    if isinstance(config, LSTMConfig):
        for layer in params.lstm:
            weights += [np.array(layer.kernel), np.array(layer.recurrent_kernel)]
            weights.append(np.array(layer.bias))
    else:
        for layer in params.hidden:
            weights += _dense_list(layer)
    return weights + _dense_list(params.head)


def _expected_shapes(config: ModelConfig, params: Params) -> list[tuple[int, ...]]:
    return [w.shape for w in to_keras_weights(config, params)]


def from_keras_weights(config: ModelConfig, weights: list[Any], like: Params) -> Params:
    """Parameters from a list in Keras' ``get_weights()`` order.

    Args:
        config: the model.
        weights: arrays in Keras' order.
        like: parameters of the same model, giving the expected shapes.

    Returns:
        A new parameter pytree (float32).

    Raises:
        ValueError: wrong count, shape, or non-finite values.
    """
    expected = _expected_shapes(config, like)
    if len(weights) != len(expected):
        raise ValueError(
            f"expected {len(expected)} weight arrays in Keras' get_weights() order with shapes "
            f"{expected}, got {len(weights)}"
        )
    arrays = []
    for index, (array, shape) in enumerate(zip(weights, expected, strict=True)):
        array = np.asarray(array, dtype=np.float32)
        if array.shape != shape:
            raise ValueError(
                f"weight {index} has shape {array.shape}, expected {shape}; the order is "
                f"Keras' get_weights() order: {expected}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"weight {index} holds NaN or infinite values; pass finite weights")
        arrays.append(jnp.asarray(array))
    it = iter(arrays)
    if isinstance(config, LSTMConfig):
        layers = tuple(LSTMParams(next(it), next(it), next(it)) for _ in config.units)
        return StackedParams(lstm=layers, head=DenseParams(next(it), next(it)))
    hidden = tuple(DenseParams(next(it), next(it)) for _ in config.hidden)
    return MLPParams(hidden=hidden, head=DenseParams(next(it), next(it)))
