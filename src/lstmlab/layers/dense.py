"""Dense (fully connected) layer with Keras' layout: ``kernel (in, out)``, ``bias (out,)``."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lstmlab.layers.initializers import glorot_uniform


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
