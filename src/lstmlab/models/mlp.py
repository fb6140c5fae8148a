"""A plain multilayer network on a flattened window (``Flatten, Dense(relu)..., Dense``)."""

from typing import NamedTuple

import jax

from lstmlab.layers.dense import DenseParams, dense, init_dense
from lstmlab.models.config import MLPConfig
from lstmlab.models.state import ModelState


class MLPParams(NamedTuple):
    """Hidden Dense layers (ReLU), then the linear output layer."""

    hidden: tuple[DenseParams, ...]
    head: DenseParams


def init_mlp(config: MLPConfig, key: jax.Array) -> MLPParams:
    """Keras-default initial parameters.

    Args:
        config: the model.
        key: JAX PRNG key.

    Returns:
        ``MLPParams``.
    """
    keys = jax.random.split(key, len(config.hidden) + 1)
    sizes = (config.timesteps * config.features, *config.hidden)
    hidden = tuple(
        init_dense(k, n_in, n_out)
        for k, n_in, n_out in zip(keys[:-1], sizes[:-1], sizes[1:], strict=True)
    )
    return MLPParams(hidden=hidden, head=init_dense(keys[-1], sizes[-1], config.outputs))


def apply_mlp(
    config: MLPConfig, params: MLPParams, state: ModelState, x: jax.Array
) -> tuple[jax.Array, ModelState]:
    """Forward pass; the state is empty and returned unchanged.

    Args:
        config: the model.
        params: its parameters.
        state: ``()``.
        x: ``(batch, timesteps, features)``.

    Returns:
        ``(y, state)`` with ``y`` of shape ``(batch, outputs)``.
    """
    hidden = x.reshape(x.shape[0], config.timesteps * config.features)  # (batch, time * features)
    for layer in params.hidden:
        hidden = jax.nn.relu(dense(layer, hidden))
    return dense(params.head, hidden), state
