"""Recurrent state: a tuple with one ``LSTMState`` per layer, made and reset by pure functions."""

from collections.abc import Iterable

import jax.numpy as jnp

from lstmlab.layers.lstm import LSTMState, zero_lstm_state
from lstmlab.models.config import ModelConfig

ModelState = tuple[LSTMState, ...]


def init_state(config: ModelConfig, batch_size: int) -> ModelState:
    """Zero state for ``batch_size`` streams.

    Args:
        config: the model.
        batch_size: rows of the state; a stateful model only accepts batches of this size.

    Returns:
        One ``LSTMState`` per LSTM layer, each ``(batch_size, units)``; ``()`` for an MLP.

    Raises:
        ValueError: if ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if config.kind != "lstm":
        return ()
    return tuple(zero_lstm_state(batch_size, units) for units in config.units)


def _layer_indices(state: ModelState, layers: int | Iterable[int] | None) -> set[int]:
    count = len(state)
    chosen = range(count) if layers is None else [layers] if isinstance(layers, int) else layers
    indices = set()
    for index in chosen:
        if not count:
            raise ValueError(
                f"layer {index} does not exist: the model has no recurrent layers (an MLP); "
                "pass layers=None, or nothing"
            )
        if not -count <= index < count:
            raise ValueError(
                f"layer {index} does not exist: the model has {count} recurrent layer(s), "
                f"pass an index in 0..{count - 1}"
            )
        indices.add(index % count)
    return indices


def reset_state(state: ModelState, layers: int | Iterable[int] | None = None) -> ModelState:
    """Zero the state of all layers, or only of the given ones (Keras ``reset_states``).

    Args:
        state: the model state.
        layers: ``None`` for all layers, or a layer index, or several.

    Returns:
        A new state; the input is not modified.

    Raises:
        ValueError: for a layer index the model does not have.
    """
    indices = _layer_indices(state, layers)
    return tuple(
        LSTMState(h=jnp.zeros_like(s.h), c=jnp.zeros_like(s.c)) if i in indices else s
        for i, s in enumerate(state)
    )


def state_batch_size(state: ModelState) -> int | None:
    """Rows of the state, or ``None`` for a model without recurrent state."""
    return int(state[0].h.shape[0]) if state else None
