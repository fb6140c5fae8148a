"""Adam in Keras' form, as an optax gradient transformation.

Keras 3 (``keras/src/optimizers/adam.py``) folds the bias corrections into the step size,
``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)``, and updates ``var -= alpha * m / (sqrt(v) + eps)``.
``optax.adam`` instead divides by ``sqrt(v_hat) + eps``: the epsilon enters at another scale,
which matters when gradients are small (the seed's targets are of order 0.05).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
    """Step count and the first and second moment estimates."""

    count: jax.Array  # int32 scalar: updates done so far
    mu: optax.Updates
    nu: optax.Updates


def keras_adam(
    learning_rate: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> optax.GradientTransformation:
    """Keras' Adam with Keras' defaults.

    Args:
        learning_rate: step size ``lr``.
        beta_1: decay of the first moment.
        beta_2: decay of the second moment.
        epsilon: added to ``sqrt(v)`` (not to the bias-corrected ``sqrt(v_hat)``).

    Returns:
        An ``optax.GradientTransformation``; its updates are added with ``optax.apply_updates``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> optimizer = keras_adam()
        >>> params = {"w": jnp.ones(2)}
        >>> state = optimizer.init(params)
        >>> updates, state = optimizer.update({"w": jnp.ones(2)}, state)
        >>> [round(w, 6) for w in optax.apply_updates(params, updates)["w"].tolist()]
        [0.999, 0.999]
    """

    def init_fn(params: optax.Params) -> KerasAdamState:
        return KerasAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=jax.tree.map(jnp.zeros_like, params),
            nu=jax.tree.map(jnp.zeros_like, params),
        )

    def update_fn(grads, state: KerasAdamState, params=None):
        del params
        count = state.count + 1
        step = count.astype(jnp.float32)
        alpha = (
            learning_rate * jnp.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
        )
        # Keras' in-place forms m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2), same rounding.
        mu = jax.tree.map(lambda m, g: m + (g - m) * (1.0 - beta_1), state.mu, grads)
        nu = jax.tree.map(lambda v, g: v + (jnp.square(g) - v) * (1.0 - beta_2), state.nu, grads)
        updates = jax.tree.map(lambda m, v: -(m * alpha) / (jnp.sqrt(v) + epsilon), mu, nu)
        return updates, KerasAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)
