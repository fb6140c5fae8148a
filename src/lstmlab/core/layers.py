"""Keras' default initialisers, written for JAX keys.

The distributions match Keras 3 (``keras/src/initializers``); the random streams do not, so
weights agree with Keras in law, not bit for bit. Parity tests copy weights in instead.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "DenseParams",
    "LSTMParams",
    "LSTMState",
    "dense",
    "glorot_uniform",
    "init_dense",
    "init_lstm",
    "lstm_layer",
    "lstm_step",
    "orthogonal",
    "zero_lstm_state",
]


def glorot_uniform(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    """Glorot (Xavier) uniform: U(-limit, limit) with ``limit = sqrt(6 / (fan_in + fan_out))``.

    Args:
        key: JAX PRNG key.
        shape: ``(fan_in, fan_out)``.
        dtype: floating dtype of the result.

    Returns:
        An array of ``shape``.
    """
    fan_in, fan_out = shape
    limit = jnp.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, minval=-limit, maxval=limit)


def orthogonal(key: jax.Array, shape: tuple[int, int], gain: float = 1.0, dtype=jnp.float32):
    """Orthogonal matrix as Keras 3 draws it: QR of a normal matrix, signs fixed by diag(R).

    Args:
        key: JAX PRNG key.
        shape: ``(rows, cols)``; for a recurrent kernel ``(units, 4 * units)``.
        gain: multiplicative factor.
        dtype: floating dtype of the result.

    Returns:
        An array of ``shape`` whose rows (if rows <= cols) or columns are orthonormal.
    """
    rows, cols = shape
    # Keras factors the tall orientation and transposes back when the matrix is wide.
    flat_shape = (max(rows, cols), min(rows, cols))
    normal = jax.random.normal(key, flat_shape, dtype)
    q, r = jnp.linalg.qr(normal)
    q = q * jnp.sign(jnp.diag(r))[None, :]  # flip each column by the sign of R's diagonal
    if rows < cols:
        q = q.T
    return gain * q


class DenseParams(NamedTuple):
    """Weights of one Dense layer, in Keras' order and layout."""

    kernel: jax.Array  # (in, out)
    bias: jax.Array  # (out,)


def init_dense(key: jax.Array, in_features: int, out_features: int) -> DenseParams:
    """Keras' Dense defaults: glorot-uniform kernel, zero bias.

    Args:
        key: JAX PRNG key.
        in_features: size of the last input axis.
        out_features: number of outputs.

    Returns:
        ``DenseParams`` with kernel ``(in_features, out_features)``.
    """
    return DenseParams(
        kernel=glorot_uniform(key, (in_features, out_features)),
        bias=jnp.zeros((out_features,), jnp.float32),
    )


def dense(params: DenseParams, x: jax.Array) -> jax.Array:
    """Apply ``x @ kernel + bias`` on the last axis.

    Args:
        params: the layer's weights.
        x: ``(..., in)``.

    Returns:
        ``(..., out)``.
    """
    bias = params.bias.reshape((1,) * (x.ndim - 1) + (-1,))  # explicit broadcast over leading axes
    return x @ params.kernel + bias


class LSTMParams(NamedTuple):
    """Weights of one LSTM layer, in Keras' order and layout."""

    kernel: jax.Array  # (in, 4u), gates [i, f, c, o]
    recurrent_kernel: jax.Array  # (u, 4u)
    bias: jax.Array  # (4u,)


class LSTMState(NamedTuple):
    """Recurrent state of one LSTM layer; h first, as Keras returns ``[h, c]``."""

    h: jax.Array  # (batch, u)
    c: jax.Array  # (batch, u)


def init_lstm(key: jax.Array, in_features: int, units: int) -> LSTMParams:
    """Keras' LSTM defaults: glorot-uniform kernel, orthogonal recurrent kernel, unit forget bias.

    Args:
        key: JAX PRNG key.
        in_features: size of the input's last axis.
        units: number of hidden units ``u``.

    Returns:
        ``LSTMParams`` with shapes ``(in, 4u)``, ``(u, 4u)``, ``(4u,)``.
    """
    kernel_key, recurrent_key = jax.random.split(key)
    # Keras unit_forget_bias=True: the forget slice of the bias starts at 1, the rest at 0.
    bias = jnp.zeros((4 * units,), jnp.float32).at[units : 2 * units].set(1.0)
    return LSTMParams(
        kernel=glorot_uniform(kernel_key, (in_features, 4 * units)),
        recurrent_kernel=orthogonal(recurrent_key, (units, 4 * units)),
        bias=bias,
    )


def zero_lstm_state(batch_size: int, units: int, dtype=jnp.float32) -> LSTMState:
    """All-zero state, as Keras starts a sequence.

    Args:
        batch_size: number of rows (streams) the state holds.
        units: hidden units of the layer.
        dtype: floating dtype.

    Returns:
        ``LSTMState`` with ``h`` and ``c`` of shape ``(batch_size, units)``.
    """
    zeros = jnp.zeros((batch_size, units), dtype)
    return LSTMState(h=zeros, c=zeros)


def lstm_step(
    recurrent_kernel: jax.Array, state: LSTMState, projected_x: jax.Array
) -> tuple[LSTMState, jax.Array]:
    """One time step, given the already projected input ``x_t @ kernel + bias``.

    Args:
        recurrent_kernel: ``(u, 4u)``.
        state: ``LSTMState`` with ``(batch, u)`` arrays.
        projected_x: ``(batch, 4u)``.

    Returns:
        ``(new_state, h)`` with ``h`` of shape ``(batch, u)``.
    """
    z = projected_x + state.h @ recurrent_kernel  # (batch, 4u)
    z_input, z_forget, z_cell, z_output = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(z_forget) * state.c + jax.nn.sigmoid(z_input) * jnp.tanh(z_cell)
    h = jax.nn.sigmoid(z_output) * jnp.tanh(c)
    return LSTMState(h=h, c=c), h


def lstm_layer(
    params: LSTMParams, state: LSTMState, x: jax.Array, *, unroll: int = 1
) -> tuple[jax.Array, LSTMState]:
    """Run one LSTM layer over a batch of sequences.

    The input projection for all time steps is one matrix product before the scan; each step
    only adds ``h @ recurrent_kernel``.

    Args:
        params: the layer's weights.
        state: initial ``LSTMState``, ``(batch, u)`` arrays.
        x: ``(batch, time, features)``.
        unroll: steps of the time scan unrolled per loop iteration.

    Returns:
        ``(h_sequence, final_state)`` with ``h_sequence`` of shape ``(batch, time, u)``.
    """
    projected = x @ params.kernel + params.bias[None, None, :]  # (batch, time, 4u)
    projected = jnp.swapaxes(projected, 0, 1)  # (time, batch, 4u): scan runs over time
    time_steps = projected.shape[0]
    if time_steps == 1:
        # One step needs no loop; avoiding the scan saves a While op in the compiled epoch.
        final_state, h = lstm_step(params.recurrent_kernel, state, projected[0])
        return h[:, None, :], final_state
    final_state, h_sequence = jax.lax.scan(
        lambda carry, step_x: lstm_step(params.recurrent_kernel, carry, step_x),
        state,
        projected,
        unroll=unroll,
    )
    return jnp.swapaxes(h_sequence, 0, 1), final_state  # (batch, time, u)
