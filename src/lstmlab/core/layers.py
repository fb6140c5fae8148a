"""Keras' default initialisers, written for JAX keys.

The distributions match Keras 3 (``keras/src/initializers``); the random streams do not, so
weights agree with Keras in law, not bit for bit. Parity tests copy weights in instead.
"""

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "MATMUL_DTYPES",
    "DenseParams",
    "LSTMParams",
    "LSTMState",
    "dense",
    "glorot_uniform",
    "init_dense",
    "init_lstm",
    "lstm_layer",
    "lstm_step",
    "matmul_dtype",
    "orthogonal",
    "time_unroll",
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
    return jnp.matmul(x, params.kernel, precision=jax.lax.Precision.HIGHEST) + bias


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


MATMUL_DTYPES = ("float32", "bfloat16")
"""Operand types of the LSTM's matrix products (``TrainConfig.matmul_dtype``).

``"float32"``: Keras' arithmetic. ``"bfloat16"``: the operands of every matrix product of
the layer (input projection, recurrent product, and their gradients) are rounded to
bfloat16 and the products accumulate in float32; the gates, the cell state and the
optimizer stay in float32."""

_MATMUL_DTYPE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "lstmlab_matmul_dtype", default="float32"
)


@contextlib.contextmanager
def matmul_dtype(name: str) -> Iterator[None]:
    """Trace the LSTM layers inside the block with ``name`` operands (see ``MATMUL_DTYPES``).

    Read when a function is traced (like ``jax.default_matmul_precision``): wrap the body of
    the function that is jitted, not the call of an already compiled one.

    Args:
        name: one of ``MATMUL_DTYPES``.

    Raises:
        ValueError: an unknown name.
    """
    if name not in MATMUL_DTYPES:
        raise ValueError(
            f"matmul_dtype must be one of {MATMUL_DTYPES}, got {name!r}; pass 'float32' "
            "(exact Keras arithmetic) or 'bfloat16' (faster products, float32 accumulation)"
        )
    token = _MATMUL_DTYPE.set(name)
    try:
        yield
    finally:
        _MATMUL_DTYPE.reset(token)


def _matmul(a: jax.Array, b: jax.Array, dtype: str) -> jax.Array:
    """``a @ b`` on the last axis of ``a``; bfloat16 operands accumulate in float32.

    float32 means float32 on every device: GPUs would otherwise round the operands to TF32
    (about 1e-3 relative), which breaks Keras parity there.
    """
    if dtype == "float32":
        return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
    return jnp.matmul(
        a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), preferred_element_type=jnp.float32
    )


def lstm_step(
    recurrent_kernel: jax.Array,
    state: LSTMState,
    projected_x: jax.Array,
    dtype: str = "float32",
) -> tuple[LSTMState, jax.Array]:
    """One time step, given the already projected input ``x_t @ kernel + bias``.

    Args:
        recurrent_kernel: ``(u, 4u)``.
        state: ``LSTMState`` with ``(batch, u)`` arrays.
        projected_x: ``(batch, 4u)``.
        dtype: operand type of the recurrent product, one of ``MATMUL_DTYPES``.

    Returns:
        ``(new_state, h)`` with ``h`` of shape ``(batch, u)``.
    """
    z = projected_x + _matmul(state.h, recurrent_kernel, dtype)  # (batch, 4u)
    z_input, z_forget, z_cell, z_output = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(z_forget) * state.c + jax.nn.sigmoid(z_input) * jnp.tanh(z_cell)
    h = jax.nn.sigmoid(z_output) * jnp.tanh(c)
    return LSTMState(h=h, c=c), h


def time_unroll(batch: int, units: int, time_steps: int) -> int:
    """Steps of the time loop unrolled per iteration, chosen by shape.

    Unrolling removes the loop's per-iteration overhead (a few microseconds) but copies the
    step's code, and on XLA's CPU backend the larger body soon costs more than it saves.
    Measured (gradient of one layer, 2-core machine, each row within one run): 1 x 20 units
    x 64 steps: unroll 2 0.33 ms, 1 0.37 ms, 4 0.40 ms, 8 0.54 ms; 32 x 32 x 32: 1 1.8 ms,
    2 2.4 ms, 4 3.5 ms; 256 x 128 x 64: 1 410 ms, 2 414 ms, 4 523 ms; 1024 x 128 x 16: 1
    397 ms, 2 791 ms. So: 2 where a step is tiny (``batch * units <= 1024``), else none.

    Args:
        batch: rows per batch.
        units: hidden units.
        time_steps: steps per sequence.

    Returns:
        The ``unroll`` of ``jax.lax.scan`` (1: no unrolling).
    """
    if time_steps >= 4 and batch * units <= 1024:
        return 2
    return 1


def _forward_scan(kernel, recurrent_kernel, bias, h0, c0, x, unroll, dtype):
    """The layer's forward pass, returning the gate activations for the backward pass."""
    projected = _matmul(x, kernel, dtype) + bias[None, None, :]  # (batch, time, 4u)
    projected = jnp.swapaxes(projected, 0, 1)  # (time, batch, 4u): scan runs over time

    def step(state, step_x):
        z = step_x + _matmul(state.h, recurrent_kernel, dtype)  # (batch, 4u)
        z_input, z_forget, z_cell, z_output = jnp.split(z, 4, axis=-1)
        i, f = jax.nn.sigmoid(z_input), jax.nn.sigmoid(z_forget)
        g, o = jnp.tanh(z_cell), jax.nn.sigmoid(z_output)
        c = f * state.c + i * g
        h = o * jnp.tanh(c)
        return LSTMState(h=h, c=c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    final, (h_seq, c_seq, gates) = jax.lax.scan(
        step, LSTMState(h0, c0), projected, unroll=unroll
    )
    return final, h_seq, c_seq, gates  # (time, batch, u), (time, batch, u), (time, batch, 4u)


@functools.cache
def _lstm_sequence(unroll: int, dtype: str):
    """``(kernel, recurrent_kernel, bias, h0, c0, x) -> (h_seq, h, c)`` with a batched VJP.

    JAX's own derivative of the scan adds ``h_{t-1}^T dz_t`` to the recurrent kernel's
    gradient inside the backward loop, one small product per step. Here the backward loop
    only carries ``dh`` and ``dc`` (the one product per step that must be sequential,
    ``dz_t @ recurrent_kernel^T``) and returns every ``dz_t``; the gradients of the kernel,
    the recurrent kernel and the bias and the input's cotangent are then one matrix product
    (or sum) each over all steps and rows.
    """

    @jax.custom_vjp
    def sequence(kernel, recurrent_kernel, bias, h0, c0, x):
        final, h_seq, _, _ = _forward_scan(
            kernel, recurrent_kernel, bias, h0, c0, x, unroll, dtype
        )
        return jnp.swapaxes(h_seq, 0, 1), final.h, final.c  # (batch, time, u)

    def forward(kernel, recurrent_kernel, bias, h0, c0, x):
        final, h_seq, c_seq, gates = _forward_scan(
            kernel, recurrent_kernel, bias, h0, c0, x, unroll, dtype
        )
        residuals = (kernel, recurrent_kernel, h0, c0, x, h_seq, c_seq, gates)
        return (jnp.swapaxes(h_seq, 0, 1), final.h, final.c), residuals

    def backward(residuals, cotangents):
        kernel, recurrent_kernel, h0, c0, x, h_seq, c_seq, gates = residuals
        d_h_seq, d_h_last, d_c_last = cotangents
        d_h_seq = jnp.swapaxes(d_h_seq, 0, 1)  # (time, batch, u)
        c_prev = jnp.concatenate([c0[None], c_seq[:-1]], axis=0)  # (time, batch, u)
        recurrent_t = recurrent_kernel.T  # (4u, u)

        def step(carry, inputs):
            d_h_next, d_c_next = carry
            d_h_out, gate, c, c_before = inputs
            i, f, g, o = jnp.split(gate, 4, axis=-1)
            d_h = d_h_out + d_h_next
            tanh_c = jnp.tanh(c)
            d_c = d_c_next + d_h * o * (1.0 - tanh_c * tanh_c)
            d_z = jnp.concatenate(
                [
                    d_c * g * i * (1.0 - i),
                    d_c * c_before * f * (1.0 - f),
                    d_c * i * (1.0 - g * g),
                    d_h * tanh_c * o * (1.0 - o),
                ],
                axis=-1,
            )  # (batch, 4u)
            return (_matmul(d_z, recurrent_t, dtype), d_c * f), d_z

        (d_h0, d_c0), d_z = jax.lax.scan(
            step, (d_h_last, d_c_last), (d_h_seq, gates, c_seq, c_prev),
            reverse=True, unroll=unroll,
        )  # d_z: (time, batch, 4u)
        h_prev = jnp.concatenate([h0[None], h_seq[:-1]], axis=0)  # (time, batch, u)
        steps, batch, units = h_prev.shape
        d_z_rows = d_z.reshape(steps * batch, 4 * units)  # (time * batch, 4u)
        d_recurrent = _matmul(h_prev.reshape(steps * batch, units).T, d_z_rows, dtype)
        x_rows = jnp.swapaxes(x, 0, 1).reshape(steps * batch, x.shape[-1])  # (time*batch, in)
        d_kernel = _matmul(x_rows.T, d_z_rows, dtype)  # (in, 4u)
        d_bias = jnp.sum(d_z_rows, axis=0)
        d_x = _matmul(d_z, kernel.T, dtype)  # (time, batch, in)
        return d_kernel, d_recurrent, d_bias, d_h0, d_c0, jnp.swapaxes(d_x, 0, 1)

    sequence.defvjp(forward, backward)
    return sequence


def lstm_layer(
    params: LSTMParams, state: LSTMState, x: jax.Array, *, unroll: int | None = None
) -> tuple[jax.Array, LSTMState]:
    """Run one LSTM layer over a batch of sequences.

    The input projection for all time steps is one matrix product before the scan; each step
    only adds ``h @ recurrent_kernel``. Under ``jax.grad`` the backward pass (``_lstm_sequence``)
    batches the weight gradients over time: one matrix product each after the backward loop.
    Inside ``matmul_dtype("bfloat16")`` (read at trace time) the products take bfloat16
    operands and accumulate in float32.

    Args:
        params: the layer's weights.
        state: initial ``LSTMState``, ``(batch, u)`` arrays.
        x: ``(batch, time, features)``.
        unroll: steps of the time scan unrolled per loop iteration; ``None`` chooses by
            shape (``time_unroll``).

    Returns:
        ``(h_sequence, final_state)`` with ``h_sequence`` of shape ``(batch, time, u)``.
    """
    dtype = _MATMUL_DTYPE.get()
    batch, time_steps = x.shape[0], x.shape[1]
    units = params.recurrent_kernel.shape[0]
    if time_steps == 1:
        # One step needs no loop; avoiding the scan saves a While op in the compiled epoch.
        projected = _matmul(x, params.kernel, dtype) + params.bias[None, None, :]  # (b, 1, 4u)
        final_state, h = lstm_step(params.recurrent_kernel, state, projected[:, 0], dtype)
        return h[:, None, :], final_state
    if unroll is None:
        unroll = time_unroll(batch, units, time_steps)
    sequence = _lstm_sequence(int(unroll), dtype)
    h_sequence, h, c = sequence(
        params.kernel, params.recurrent_kernel, params.bias, state.h, state.c, x
    )
    return h_sequence, LSTMState(h=h, c=c)
