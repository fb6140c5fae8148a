"""A stack of LSTM layers with a Dense head.

The Keras equivalent is ``Sequential([LSTM(u1, return_sequences=True), ..., LSTM(uk),
Dense(outputs)])``.
"""

from typing import NamedTuple

import jax

from lstmlab.layers.dense import DenseParams, dense, init_dense
from lstmlab.layers.lstm import LSTMParams, init_lstm, lstm_layer
from lstmlab.models.config import LSTMConfig
from lstmlab.models.state import ModelState


class StackedParams(NamedTuple):
    """Parameters of an LSTM stack: one ``LSTMParams`` per layer, then the Dense head."""

    lstm: tuple[LSTMParams, ...]
    head: DenseParams


def init_stacked(config: LSTMConfig, key: jax.Array) -> StackedParams:
    """Keras-default initial parameters for the stack.

    Args:
        config: the model.
        key: JAX PRNG key.

    Returns:
        ``StackedParams``.
    """
    keys = jax.random.split(key, config.num_layers + 1)
    in_sizes = (config.features, *config.units[:-1])
    layers = tuple(
        init_lstm(layer_key, in_size, units)
        for layer_key, in_size, units in zip(keys[:-1], in_sizes, config.units, strict=True)
    )
    return StackedParams(lstm=layers, head=init_dense(keys[-1], config.units[-1], config.outputs))


def apply_stacked(
    config: LSTMConfig, params: StackedParams, state: ModelState, x: jax.Array
) -> tuple[jax.Array, ModelState]:
    """Forward pass from a given state.

    Args:
        config: the model.
        params: its parameters.
        state: one ``LSTMState`` per layer, ``(batch, units)`` arrays.
        x: ``(batch, time, features)``.

    Returns:
        ``(y, new_state)``: ``y`` is ``(batch, outputs)``, or ``(batch, time, outputs)`` with
        ``return_sequences``.
    """
    hidden = x
    new_state = []
    for layer_params, layer_state in zip(params.lstm, state, strict=True):
        hidden, final = lstm_layer(layer_params, layer_state, hidden)  # (batch, time, u)
        new_state.append(final)
    if not config.return_sequences:
        hidden = hidden[:, -1, :]  # (batch, u): Keras returns the last output
    return dense(params.head, hidden), tuple(new_state)
