"""Keras' default initialisers, written for JAX keys.

The distributions match Keras 3 (``keras/src/initializers``); the random streams do not, so
weights agree with Keras in law, not bit for bit. Parity tests copy weights in instead.
"""

import jax
import jax.numpy as jnp


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
