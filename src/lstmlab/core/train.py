"""When a stateful model's recurrent state is zeroed during training."""

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstmlab.core.model import ModelConfig, ModelState, Params, apply, init_state, reset_state
from lstmlab.data.layouts import TrimReport
from lstmlab.runtime import epoch_progress


@dataclass(frozen=True, kw_only=True, slots=True)
class ResetPolicy:
    """Reset schedule for stateful training.

    Attributes:
        at_epoch_end: zero the state after every epoch (the seed's ``model.reset_states()``).
        every_batches: also zero it before every ``every_batches``-th batch of an epoch
            (counted from the epoch's first batch); ``None`` for no mid-epoch resets.
    """

    at_epoch_end: bool = True
    every_batches: int | None = None

    def __post_init__(self) -> None:
        n = self.every_batches
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
            raise ValueError(
                f"every_batches must be a positive integer or None, got {n!r}; "
                "pass e.g. reset=10 to reset every 10 batches"
            )

    def describe(self) -> str:
        """A short human description, e.g. ``"every 10 batches and at epoch end"``."""
        parts = []
        if self.every_batches is not None:
            parts.append(f"every {self.every_batches} batches")
        if self.at_epoch_end:
            parts.append("at epoch end")
        return " and ".join(parts) if parts else "never"


def parse_reset(value: "str | int | ResetPolicy") -> ResetPolicy:
    """Read a reset policy from ``"epoch"``, ``"never"``, an int N (every N batches) or a policy.

    Args:
        value: the user's choice.

    Returns:
        A ``ResetPolicy``. An int N means every N batches and at epoch end.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(value, ResetPolicy):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return ResetPolicy(at_epoch_end=True, every_batches=value)
    if value == "epoch":
        return ResetPolicy(at_epoch_end=True)
    if value == "never":
        return ResetPolicy(at_epoch_end=False)
    if isinstance(value, str) and value.isdigit():
        return ResetPolicy(at_epoch_end=True, every_batches=int(value))
    raise ValueError(
        f"reset must be 'epoch', 'never' or a positive number of batches, got {value!r}"
    )


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


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig:
    """How to train: Keras' Adam defaults, epochs, shuffling and the reset policy.

    Attributes:
        epochs: passes over the training batches.
        learning_rate: Adam step size.
        beta_1: Adam first-moment decay.
        beta_2: Adam second-moment decay.
        epsilon: Adam epsilon (Keras form, added to ``sqrt(v)``).
        shuffle: shuffle samples across batches every epoch (stateless models only).
        reset: when a stateful model's state is zeroed (``"epoch"``, ``"never"``, an int N
            for every N batches, or a ``ResetPolicy``).
        seed: seed of the shuffling order.
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    shuffle: bool = False
    reset: ResetPolicy = ResetPolicy()
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "reset", parse_reset(self.reset))
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be an integer >= 0, got {self.epochs!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")

    def optimizer(self) -> optax.GradientTransformation:
        """The Keras-form Adam these settings describe."""
        return keras_adam(self.learning_rate, self.beta_1, self.beta_2, self.epsilon)


class TrainState(NamedTuple):
    """Everything an epoch carries: parameters, optimizer state, recurrent state, step, key."""

    params: Params
    opt_state: Any
    rnn_state: ModelState
    step: jax.Array  # int32 scalar: parameter updates done
    key: jax.Array  # PRNG key for shuffling


@dataclass(frozen=True, slots=True)
class History:
    """Per-epoch losses of a ``fit`` (Keras' ``History.history`` as ``.history``).

    Attributes:
        loss: mean training loss of every epoch.
        val_loss: validation loss of every epoch, or ``None`` without validation.
        updates: the training state's ``step`` at the end (parameter updates so far).
        trim: what the training layout used and left out, where the caller laid the
            samples out (``LSTMModel.fit``); else ``None``.
        val_trim: the same for the validation data.
    """

    loss: tuple[float, ...]
    val_loss: tuple[float, ...] | None
    updates: int
    trim: TrimReport | None = None
    val_trim: TrimReport | None = None

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras-style dict: ``{"loss": [...], "val_loss": [...]}``."""
        out = {"loss": list(self.loss)}
        if self.val_loss is not None:
            out["val_loss"] = list(self.val_loss)
        return out


def init_train_state(
    model_config: ModelConfig,
    params: Params,
    batch_size: int,
    train_config: TrainConfig = TrainConfig(),
) -> TrainState:
    """A fresh ``TrainState``: zero recurrent state for ``batch_size`` streams, zero Adam moments.

    Args:
        model_config: the model.
        params: initial parameters.
        batch_size: rows per batch.
        train_config: training settings (optimizer, shuffle seed).

    Returns:
        ``TrainState`` at step 0.
    """
    return TrainState(
        params=params,
        opt_state=train_config.optimizer().init(params),
        rnn_state=init_state(model_config, batch_size),
        step=jnp.zeros([], jnp.int32),
        key=jax.random.key(train_config.seed),
    )


def mse(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error over all elements (Keras' ``mse`` for equal-sized batches)."""
    return jnp.mean(jnp.square(prediction - target))


def _zeros_like_state(state: ModelState) -> ModelState:
    return jax.tree.map(jnp.zeros_like, state)


def _batch_unroll(num_batches: int) -> int:
    """Batches per iteration of the epoch's loop.

    Two batches per iteration cut the per-batch loop overhead by about 12% on the seed's
    800 one-sample batches (bit-identical results, bench/train_speed.py) but cost about 60%
    more compile time, which only long epochs earn back.
    """
    return 2 if num_batches >= 256 else 1


def make_train_epoch(model_config: ModelConfig, train_config: TrainConfig):
    """Build the pure epoch function for these configs (not jitted; vmap it freely).

    Args:
        model_config: the model.
        train_config: training settings.

    Returns:
        ``train_epoch(train_state, x_batches, y_batches) -> (train_state, losses)`` with
        ``x_batches (num_batches, batch, time, features)``, ``y_batches (num_batches, batch,
        outputs)`` and ``losses (num_batches,)``. A stateful model carries its state across
        batches and returns it; a stateless one starts every batch from zero state.
    """
    optimizer = train_config.optimizer()
    stateful = model_config.stateful
    every = train_config.reset.every_batches

    def loss_fn(params, rnn_state, x, y):
        prediction, new_state = apply(model_config, params, rnn_state, x)
        return mse(prediction, y), new_state

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def batch_step(carry, inputs):
        params, opt_state, rnn_state = carry
        x, y, index = inputs
        if stateful and every is not None:
            # Reset before every `every`-th batch of the epoch (the first is handled by fit).
            reset_now = (index > 0) & (index % every == 0)
            rnn_state = jax.tree.map(lambda s: jnp.where(reset_now, 0.0, s), rnn_state)
        start_state = rnn_state if stateful else _zeros_like_state(rnn_state)
        (loss, new_state), grads = grad_fn(params, start_state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        rnn_state = new_state if stateful else rnn_state
        return (params, opt_state, rnn_state), loss

    def train_epoch(train_state: TrainState, x_batches, y_batches):
        key = train_state.key
        if train_config.shuffle:
            key, shuffle_key = jax.random.split(key)
            num_batches, batch = x_batches.shape[:2]
            order = jax.random.permutation(shuffle_key, num_batches * batch)
            x_batches = x_batches.reshape(num_batches * batch, *x_batches.shape[2:])[order]
            y_batches = y_batches.reshape(num_batches * batch, *y_batches.shape[2:])[order]
            x_batches = x_batches.reshape(num_batches, batch, *x_batches.shape[1:])
            y_batches = y_batches.reshape(num_batches, batch, *y_batches.shape[1:])
        num_batches = x_batches.shape[0]
        carry = (train_state.params, train_state.opt_state, train_state.rnn_state)
        indices = jnp.arange(num_batches, dtype=jnp.int32)
        (params, opt_state, rnn_state), losses = jax.lax.scan(
            batch_step, carry, (x_batches, y_batches, indices), unroll=_batch_unroll(num_batches)
        )
        new_state = TrainState(
            params=params,
            opt_state=opt_state,
            rnn_state=rnn_state,
            step=train_state.step + num_batches,
            key=key,
        )
        return new_state, losses

    return train_epoch


def make_evaluate(model_config: ModelConfig):
    """Build the pure evaluation function (per-batch MSE, in order).

    Returns:
        ``evaluate_batches(params, rnn_state, x_batches, y_batches) -> (losses, rnn_state)``; a
        stateful model carries its state through the batches in order.
    """
    predict_batches = make_predict(model_config)

    def evaluate_batches(params, rnn_state, x_batches, y_batches):
        predictions, rnn_state = predict_batches(params, rnn_state, x_batches)
        axes = tuple(range(1, predictions.ndim))
        return jnp.mean(jnp.square(predictions - y_batches), axis=axes), rnn_state

    return evaluate_batches


def make_predict(model_config: ModelConfig):
    """Build the pure prediction function over batches.

    Returns:
        ``predict_batches(params, rnn_state, x_batches) -> (y_batches, rnn_state)``: a scan over
        ``x_batches (num_batches, batch, time, features)``; a stateful model carries its state
        and returns the final one, a stateless model starts each batch from zero state.
    """
    stateful = model_config.stateful

    def predict_batches(params, rnn_state, x_batches):
        def step(state, x):
            start = state if stateful else _zeros_like_state(state)
            y, new_state = apply(model_config, params, start, x)
            return (new_state if stateful else state), y

        return jax.lax.scan(step, rnn_state, x_batches)[::-1]

    return predict_batches


@functools.lru_cache(maxsize=64)
def _compiled_train_epoch(model_config: ModelConfig, train_config: TrainConfig):
    return jax.jit(make_train_epoch(model_config, train_config))


def compiled_train_epoch(model_config: ModelConfig, train_config: TrainConfig):
    """``jax.jit`` of ``make_train_epoch``, cached per (model, training) config.

    ``epochs`` and ``seed`` do not enter the epoch function (the shuffle key travels in
    ``TrainState.key``), so they are left out of the cache key: a second ``fit`` call with
    another seed or epoch count reuses the compiled program.
    """
    return _compiled_train_epoch(model_config, dataclasses.replace(train_config, epochs=1, seed=0))


@functools.lru_cache(maxsize=64)
def compiled_evaluate(model_config: ModelConfig):
    """``jax.jit`` of ``make_evaluate``, cached per model config."""
    return jax.jit(make_evaluate(model_config))


@functools.lru_cache(maxsize=64)
def compiled_predict(model_config: ModelConfig):
    """``jax.jit`` of ``make_predict``, cached per model config."""
    return jax.jit(make_predict(model_config))


def fit(
    model_config: ModelConfig,
    train_state: TrainState,
    x_batches: np.ndarray,
    y_batches: np.ndarray,
    train_config: TrainConfig,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    validation_state: str = "carry",
    quiet: bool = False,
    description: str = "training",
) -> tuple[TrainState, History]:
    """Train for ``train_config.epochs`` epochs, each one compiled program.

    Args:
        model_config: the model.
        train_state: from ``init_train_state``; not to be reused after the call.
        x_batches: ``(num_batches, batch, time, features)``, batches in training order.
        y_batches: ``(num_batches, batch, outputs)``.
        train_config: training settings.
        validation: optional ``(x_batches, y_batches)`` of the same batch size, evaluated
            after every epoch; a stateful model starts it as ``validation_state`` says, and
            the training state is not changed by it.
        validation_state: where a stateful model's validation starts: ``"carry"`` from the
            state reached at the end of the epoch (the validation part continues the training
            series: right when row ``i`` of the validation batches continues row ``i`` of the
            training batches, as in the official layout),
            ``"zeros"`` from zero state (the stream layout: validation stream ``i`` does not
            continue training stream ``i``, so carrying would hand it another stream's state).
        quiet: no progress bar.
        description: label of the progress bar.

    Returns:
        ``(train_state, history)``.

    Raises:
        ValueError: stateful training with ``shuffle=True``, or an unknown
            ``validation_state``.
    """
    if validation_state not in ("carry", "zeros"):
        raise ValueError(
            f"validation_state must be 'carry' or 'zeros', got {validation_state!r}; pass "
            "'carry' when validation row i continues training row i, else 'zeros'"
        )
    if model_config.stateful and train_config.shuffle:
        raise ValueError(
            "stateful training needs shuffle=False, got shuffle=True; pass shuffle=False "
            "(shuffling would break the continuity of each stream across batches)"
        )
    epoch_fn = compiled_train_epoch(model_config, train_config)
    evaluate_fn = compiled_evaluate(model_config)
    x_batches, y_batches = jnp.asarray(x_batches), jnp.asarray(y_batches)
    if validation is not None:
        validation = (jnp.asarray(validation[0]), jnp.asarray(validation[1]))
    losses: list[float] = []
    val_losses: list[float] = []
    with epoch_progress(train_config.epochs, description, quiet=quiet) as progress:
        for _ in range(train_config.epochs):
            train_state, batch_losses = epoch_fn(train_state, x_batches, y_batches)
            losses.append(float(jnp.mean(batch_losses)))
            val_loss = None
            if validation is not None:
                val_start = train_state.rnn_state
                if validation_state == "zeros":
                    val_start = reset_state(val_start)
                val_batch_losses, _ = evaluate_fn(train_state.params, val_start, *validation)
                val_loss = float(jnp.mean(val_batch_losses))
                val_losses.append(val_loss)
            if model_config.stateful and train_config.reset.at_epoch_end:
                train_state = train_state._replace(rnn_state=reset_state(train_state.rnn_state))
            progress.advance(losses[-1], val_loss)
    history = History(
        loss=tuple(losses),
        val_loss=tuple(val_losses) if validation is not None else None,
        updates=int(train_state.step),
    )
    return train_state, history


def with_epochs(train_config: TrainConfig, epochs: int) -> TrainConfig:
    """The same settings with another epoch count."""
    return dataclasses.replace(train_config, epochs=epochs)
