"""Training: Keras-form Adam, the reset policy, and the one compiled training driver, ``fit``.

``fit`` trains several equal-shape trainings (seeds, or equal-shape configurations) at once:
up to ``EPOCH_CHUNK`` epochs run in one compiled ``lax.while_loop`` over ``vmap(epoch)``, an
epoch being the batches in one ``lax.scan``, then the validation, the epoch-end reset of the
policy and the epoch's mean loss; nothing returns to Python between epochs. ``fit_single`` is
the same driver for one training without the trainings axis (``LSTMModel.fit``'s per-call
path). Every entry point (``LSTMModel.fit``, ``Forecaster.fit``, the experiments) trains
through them.
"""

import collections
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstmlab.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_learning_rate,
    check_non_negative_int,
    check_positive_int,
    check_positive_number,
)
from lstmlab.core.layers import MATMUL_DTYPES, matmul_dtype
from lstmlab.core.model import (
    LSTMConfig,
    ModelConfig,
    ModelState,
    Params,
    apply,
    init_params,
    init_state,
    norm_code,
    norm_program,
)

__all__ = [
    "EPOCH_CHUNK",
    "EarlyStopping",
    "EpochCallback",
    "History",
    "HOST_SHUFFLE_SAMPLES",
    "MAX_EPOCHS_VARIABLE",
    "KerasAdamState",
    "Plateau",
    "ResetPolicy",
    "StopState",
    "TrainConfig",
    "TrainLog",
    "TrainState",
    "WindowBatches",
    "capped_epochs",
    "compiled_driver_epoch",
    "compiled_evaluate",
    "compiled_predict",
    "compiled_train_epoch",
    "compile_fit",
    "fit",
    "fit_single",
    "initial_opt_state",
    "init_stop_states",
    "init_train_state",
    "init_train_states",
    "keras_adam",
    "make_driver_epoch",
    "make_evaluate",
    "make_predict",
    "make_train_epoch",
    "mse",
    "parse_reset",
    "program_model",
    "select_training",
    "shuffle_order",
    "stack_train_states",
]


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
        # NumPy zeros: an eager init (every training's set-up) compiles no program per shape
        def zeros(leaf: Any) -> np.ndarray:
            return np.zeros(np.shape(leaf), leaf.dtype)

        return KerasAdamState(
            count=np.zeros((), np.int32),
            mu=jax.tree.map(zeros, params),
            nu=jax.tree.map(zeros, params),
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
class EarlyStopping:
    """Stop a training when its validation loss stops improving (Keras' ``EarlyStopping``).

    After every epoch the validation loss ``v`` is an improvement when
    ``v < best - min_delta`` (``best`` starts at infinity, so the first finite loss is one);
    ``wait`` counts the epochs since the last improvement, and the training stops after the
    epoch where ``wait`` reaches ``patience``. With the best epoch ``b`` (0-based), a training
    that never improves again updates in epochs ``0 .. b + patience``: ``b + patience + 1``
    epochs, as Keras counts them.

    Attributes:
        patience: epochs without improvement before the training stops (>= 1).
        min_delta: how much the loss must fall below the best to count as an improvement
            (>= 0).
        restore_best: return the parameters of the best-validation epoch instead of those
            of the last epoch run (Keras' ``restore_best_weights``).
    """

    patience: int = 20
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "patience",
            check_positive_int("patience", self.patience, fix="pass e.g. patience=20"),
        )
        object.__setattr__(
            self, "min_delta", _check_non_negative_number("min_delta", self.min_delta)
        )
        object.__setattr__(self, "restore_best", check_bool("restore_best", self.restore_best))


@dataclass(frozen=True, kw_only=True, slots=True)
class Plateau:
    """Reduce the learning rate when the validation loss plateaus (Keras' ``ReduceLROnPlateau``).

    After every epoch the validation loss is an improvement when it is below the best so
    far; ``wait`` counts the epochs since the last improvement or the last reduction. When it
    reaches ``patience`` the learning rate is multiplied by ``factor`` from the next epoch on,
    never below ``min_scale`` times the initial rate, and ``wait`` starts again from zero.

    Attributes:
        factor: what the learning rate is multiplied by, strictly between 0 and 1.
        patience: epochs without improvement before a reduction (>= 1).
        min_scale: the smallest learning rate, as a fraction of the initial one, in (0, 1].
    """

    factor: float = 0.5
    patience: int = 10
    min_scale: float = 1 / 64

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "factor", check_fraction("factor", self.factor, fix="pass e.g. factor=0.5")
        )
        object.__setattr__(
            self,
            "patience",
            check_positive_int("patience", self.patience, fix="pass e.g. patience=10"),
        )
        min_scale = check_positive_number(
            "min_scale", self.min_scale, fix="pass e.g. min_scale=1/64"
        )
        if min_scale > 1:
            raise ValueError(
                f"min_scale must be at most 1 (a fraction of the initial learning rate), got "
                f"{self.min_scale!r}; pass e.g. min_scale=1/64"
            )
        object.__setattr__(self, "min_scale", min_scale)


def _check_non_negative_number(name: str, value: Any) -> float:
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}; pass e.g. 0.0")
    return float(value)


def _check_optional(name: str, value: Any, kind: type) -> Any:
    if value is not None and not isinstance(value, kind):
        raise ValueError(
            f"{name} must be None or a {kind.__name__}(...), got {value!r}; pass e.g. "
            f"{name}={kind.__name__}()"
        )
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig:
    """How to train: Keras' Adam defaults, epochs, shuffling, the reset policy, stopping.

    Attributes:
        epochs: passes over the training batches; the most a training runs when
            ``early_stopping`` is set.
        learning_rate: Adam step size.
        beta_1: Adam first-moment decay.
        beta_2: Adam second-moment decay.
        epsilon: Adam epsilon (Keras form, added to ``sqrt(v)``).
        shuffle: shuffle samples across batches every epoch (stateless models only).
        reset: when a stateful model's state is zeroed (``"epoch"``, ``"never"``, an int N
            for every N batches, or a ``ResetPolicy``).
        seed: seed of the shuffling order.
        early_stopping: stop each training on its own when its validation loss stops
            improving (``fit`` then needs ``validation``); ``None`` runs every epoch.
        plateau: reduce each training's learning rate when its validation loss plateaus
            (``fit`` then needs ``validation``); ``None`` keeps the rate.
        matmul_dtype: operand type of the LSTM layers' matrix products in training, one of
            ``lstmlab.core.layers.MATMUL_DTYPES``: ``"float32"`` (Keras' arithmetic) or
            ``"bfloat16"`` (bfloat16 operands, float32 accumulation; gates, cell state,
            losses, optimizer and validation stay float32). ``tests/test_train.py`` states
            its measured accuracy loss.
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    shuffle: bool = False
    reset: ResetPolicy = ResetPolicy()
    seed: int = 0
    early_stopping: EarlyStopping | None = None
    plateau: Plateau | None = None
    matmul_dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "reset", parse_reset(self.reset))
        check_choice("matmul_dtype", self.matmul_dtype, MATMUL_DTYPES)
        _check_optional("early_stopping", self.early_stopping, EarlyStopping)
        _check_optional("plateau", self.plateau, Plateau)
        object.__setattr__(self, "epochs", check_non_negative_int("epochs", self.epochs))
        object.__setattr__(
            self, "learning_rate", check_learning_rate(self.learning_rate)
        )

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
        loss: mean training loss of every epoch the training ran (an early-stopped
            training has fewer entries than ``epochs``).
        val_loss: validation loss of every epoch run, or ``None`` without validation.
        updates: the training state's ``step`` at the end (parameter updates so far).
        trim: what the training layout used and left out, where the caller laid the
            samples out (``LSTMModel.fit``); else ``None``.
        val_trim: the same for the validation data.
        best_epoch: the 0-based epoch of the best validation loss under early stopping
            (the epoch whose parameters were restored with ``restore_best``), ``-1`` if no
            epoch improved; ``None`` without early stopping.
    """

    loss: tuple[float, ...]
    val_loss: tuple[float, ...] | None
    updates: int
    trim: Any = None  # lstmlab.data.layouts.TrimReport: core does not import data
    val_trim: Any = None
    best_epoch: int | None = None

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


def _carried(carry: bool | jax.Array, state: ModelState, otherwise: ModelState) -> ModelState:
    """``state`` where the model carries its state, else ``otherwise``.

    ``carry`` is a Python bool (the program is built for one kind of model) or a traced bool
    scalar (one program serves stateful and stateless models of the same shapes; see
    ``program_model``).
    """
    if isinstance(carry, bool):
        return state if carry else otherwise
    return _select_tree(carry, state, otherwise)


def program_model(model_config: ModelConfig) -> ModelConfig:
    """The config a compiled program is built and cached for.

    A stateless LSTM is a stateful one whose state is zero before every batch, so both run
    one program, with the model's ``stateful`` passed in as a traced flag (``carry``): the
    stateful and stateless models of an experiment compile once, not twice. The arithmetic
    is unchanged: from a zero state the products with the recurrent kernel are exact zeros.
    Likewise every input normalisation (``norm``) of a window of two steps or more runs one
    program, with the model's norm passed in as a traced code (``norm_code``): a shift of 0
    and a scale of 1 change no value.
    """
    if isinstance(model_config, LSTMConfig) and not model_config.stateful:
        model_config = dataclasses.replace(model_config, stateful=True)
    return norm_program(model_config)  # every norm of one shape: one program


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=("values", "starts"),
    meta_fields=("offset", "length", "flat"),
)
@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class WindowBatches:
    """Batches of windows that the compiled epoch cuts from the series, one batch at a time.

    Sample ``i`` of batch ``k`` is ``values[starts[k, i] + offset + j]`` for ``j`` in
    ``range(length)``: a window's inputs (``offset=0``, ``(length, columns)``) or its
    targets (``offset`` the window's length and ``flat``: ``length * columns`` values,
    step-major, as ``make_windows``' ``y``). Every windowed layout passes its samples to
    the driver this way or as the windows themselves, with the same numbers; this way the
    data held is the series once, not each window, whose steps overlap ``length`` times
    (a global model over 50,000 series of 200 readings: 40 MB, not 600 MB per copy).

    Attributes:
        values: ``(time, columns)`` float32, every series one after the other (with a leading
            trainings axis under ``fit(data_axis=0)``).
        starts: ``(num_batches, rows)`` int32, each sample's first step in ``values``.
        offset: steps from a sample's start to its first value here.
        length: steps per sample.
        flat: the steps' values as one row (targets) rather than ``(length, columns)``.

    Example:
        >>> values = np.arange(8.0, dtype=np.float32)[:, None]  # one series, 8 steps
        >>> x = WindowBatches(values=values, starts=np.array([[0, 3]]), offset=0, length=2)
        >>> y = WindowBatches(values=values, starts=x.starts, offset=2, length=1, flat=True)
        >>> x.laid_out()[..., 0].tolist(), y.laid_out().tolist(), x.shape
        ([[[0.0, 1.0], [3.0, 4.0]]], [[[2.0], [5.0]]], (1, 2, 2, 1))
    """

    values: Any
    starts: Any
    offset: int
    length: int
    flat: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the windows laid out: ``starts``' shape, then one sample's."""
        columns = self.values.shape[-1]
        sample = (self.length * columns,) if self.flat else (self.length, columns)
        return (*self.starts.shape, *sample)

    def laid_out(self) -> np.ndarray:
        """The windows themselves, ``shape``, made on the host (to look at, or to compare)."""
        steps = np.asarray(self.starts)[..., None] + self.offset + np.arange(self.length)
        windows = np.asarray(self.values)[steps]  # (..., length, columns)
        return windows.reshape(*steps.shape[:-1], -1) if self.flat else windows

    def take(self, starts: jax.Array) -> jax.Array:
        """The samples starting at ``starts (rows,)``: ``(rows, *sample)``."""
        offsets = self.offset + jnp.arange(self.length, dtype=starts.dtype)
        steps = starts[:, None] + offsets[None, :]  # (rows, length)
        windows = self.values[steps]  # (rows, length) indices -> (rows, length, columns)
        return windows.reshape(windows.shape[0], -1) if self.flat else windows


def _scanned(batches: Any) -> Any:
    """What an epoch's scan runs over: the batches, or the starts of their windows."""
    return batches.starts if isinstance(batches, WindowBatches) else batches


def _batch(batches: Any, item: Any) -> Any:
    """One batch from the scan's item: the item itself, or the windows it starts."""
    return batches.take(item) if isinstance(batches, WindowBatches) else item


def _permuted(batches: Any, order: jax.Array) -> Any:
    """The batches' samples in ``order`` (flat over ``(num_batches, rows)``), same layout."""
    if isinstance(batches, WindowBatches):
        starts = batches.starts.reshape(-1)[order].reshape(batches.starts.shape)
        return dataclasses.replace(batches, starts=starts)
    num_batches, rows = batches.shape[:2]
    samples = batches.reshape(num_batches * rows, *batches.shape[2:])[order]
    return samples.reshape(num_batches, rows, *samples.shape[1:])


# From this many samples an epoch's shuffle sorts on the host. XLA's CPU sort, which
# jax.random.permutation runs three times over 9 million samples, took 12 s an epoch here and
# 750 MB of temporaries; NumPy sorts the same keys in 0.3 s a round. A program with a host
# callback is not kept in the persistent compilation cache, so small trainings (most of them,
# and those a notebook repeats) keep the all-XLA program.
HOST_SHUFFLE_SAMPLES = 1 << 18


def shuffle_order(key: jax.Array, samples: int) -> jax.Array:
    """``jax.random.permutation(key, samples)``, to the bit; many samples sort on the host.

    JAX's permutation sorts ``arange(samples)`` stably by fresh random 32-bit keys, a few
    rounds (three above about 2.6 million samples). From ``HOST_SHUFFLE_SAMPLES`` samples on
    the CPU the keys are drawn here the same way and each round's stable sort runs in NumPy
    (one sort of 64-bit words: the key above the position), so the order, hence training, is
    the same.
    """
    if samples < HOST_SHUFFLE_SAMPLES or jax.default_backend() != "cpu":
        return jax.random.permutation(key, samples)  # an accelerator sorts fast itself
    rounds = math.ceil(3 * math.log(samples) / math.log(np.iinfo(np.uint32).max))
    order = jnp.arange(samples, dtype=jnp.int32)
    result = jax.ShapeDtypeStruct((samples,), jnp.int32)
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        sort_keys = jax.random.bits(subkey, (samples,), jnp.uint32)
        order = jax.pure_callback(
            _stably_sorted, result, sort_keys, order, vmap_method="sequential"
        )
    return order


def _stably_sorted(sort_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` in the order of a stable sort of ``sort_keys`` (uint32, one axis)."""
    # In place: four bytes a sample in, eight held, no temporaries beyond the positions.
    words = np.asarray(sort_keys).astype(np.uint64)
    words <<= np.uint64(32)
    words |= np.arange(len(words), dtype=np.uint64)
    words.sort()  # distinct words: any sort is the stable sort of the keys
    words &= np.uint64(0xFFFFFFFF)
    return np.asarray(values)[words.view(np.int64)]


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
        ``train_epoch(train_state, x_batches, y_batches, lr_scale=None, carry=None, norm=None) ->
        (train_state, losses)`` with ``x_batches (num_batches, batch, time, features)``, ``y_batches
        (num_batches, batch, outputs)`` and ``losses (num_batches,)``. A stateful model
        carries its state across batches and returns it; a stateless one starts every batch
        from zero state. ``lr_scale``, a float32 scalar, multiplies every update: Keras-form
        Adam's update is ``-alpha * m / (sqrt(v) + epsilon)`` with ``alpha`` proportional to
        the learning rate and moments that do not depend on it, so this is the step with
        learning rate ``lr_scale * learning_rate`` (up to float rounding), without changing
        the optimizer state's layout; ``None`` (the default) leaves the updates untouched.
        ``carry``, a bool scalar, says whether the model carries its state (``None``: the
        config's ``stateful``; see ``program_model``). ``norm``, an int32 scalar, is the
        model's norm code for a ``program_model`` (``norm="traced"``), else ``None``.
    """
    optimizer = train_config.optimizer()
    every = train_config.reset.every_batches

    def loss_fn(params, rnn_state, x, y, norm):
        # Read when the epoch is traced: the LSTM layers' products in the chosen type.
        with matmul_dtype(train_config.matmul_dtype):
            prediction, new_state = apply(model_config, params, rnn_state, x, norm)
        return mse(prediction, y), new_state

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def batch_step(state, inputs, lr_scale, stateful, norm, x_batches, y_batches):
        params, opt_state, rnn_state = state
        x, y, index = inputs
        x, y = _batch(x_batches, x), _batch(y_batches, y)
        if stateful is not False and every is not None:
            # Reset before every `every`-th batch of the epoch (the first is handled by fit).
            reset_now = (index > 0) & (index % every == 0)
            rnn_state = jax.tree.map(lambda s: jnp.where(reset_now, 0.0, s), rnn_state)
        start_state = _carried(stateful, rnn_state, _zeros_like_state(rnn_state))
        (loss, new_state), grads = grad_fn(params, start_state, x, y, norm)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        if lr_scale is not None:
            updates = jax.tree.map(lambda update: update * lr_scale, updates)
        params = optax.apply_updates(params, updates)
        rnn_state = _carried(stateful, new_state, rnn_state)
        return (params, opt_state, rnn_state), loss

    def train_epoch(
        train_state: TrainState, x_batches, y_batches, lr_scale=None, carry=None, norm=None
    ):
        stateful = model_config.stateful if carry is None else carry
        key = train_state.key
        if train_config.shuffle:
            key, shuffle_key = jax.random.split(key)
            num_batches, batch = x_batches.shape[:2]
            order = shuffle_order(shuffle_key, num_batches * batch)
            x_batches, y_batches = _permuted(x_batches, order), _permuted(y_batches, order)
        num_batches = x_batches.shape[0]
        carry = (train_state.params, train_state.opt_state, train_state.rnn_state)
        indices = jnp.arange(num_batches, dtype=jnp.int32)
        step = functools.partial(
            batch_step, lr_scale=lr_scale, stateful=stateful, norm=norm,
            x_batches=x_batches, y_batches=y_batches,
        )
        (params, opt_state, rnn_state), losses = jax.lax.scan(
            step,
            carry,
            (_scanned(x_batches), _scanned(y_batches), indices),
            unroll=_batch_unroll(num_batches),
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
        ``evaluate_batches(params, rnn_state, x_batches, y_batches, carry=None, norm=None) ->
        (losses, rnn_state)``; a stateful model carries its state through the batches in
        order (``carry`` and ``norm`` as in ``make_predict``).
    """
    predict_batches = make_predict(model_config)

    def evaluate_batches(params, rnn_state, x_batches, y_batches, carry=None, norm=None):
        predictions, rnn_state = predict_batches(params, rnn_state, x_batches, carry, norm)
        if isinstance(y_batches, WindowBatches):
            y_batches = jax.vmap(y_batches.take)(y_batches.starts)
        axes = tuple(range(1, predictions.ndim))
        return jnp.mean(jnp.square(predictions - y_batches), axis=axes), rnn_state

    return evaluate_batches


def make_predict(model_config: ModelConfig):
    """Build the pure prediction function over batches.

    Returns:
        ``predict_batches(params, rnn_state, x_batches, carry=None, norm=None) -> (y_batches,
        rnn_state)``: a scan over ``x_batches (num_batches, batch, time, features)``; a
        stateful model carries its state and returns the final one, a stateless model starts
        each batch from zero state. ``carry``, a bool scalar, says which (``None``: the
        config's ``stateful``; see ``program_model``); ``norm`` as in ``make_train_epoch``.
    """

    def predict_batches(params, rnn_state, x_batches, carry=None, norm=None):
        stateful = model_config.stateful if carry is None else carry

        def step(state, item):
            start = _carried(stateful, state, _zeros_like_state(state))
            y, new_state = apply(model_config, params, start, _batch(x_batches, item), norm)
            return _carried(stateful, new_state, state), y

        return jax.lax.scan(step, rnn_state, _scanned(x_batches))[::-1]

    return predict_batches


@functools.lru_cache(maxsize=64)
def _compiled_train_epoch(model_config: ModelConfig, train_config: TrainConfig):
    return jax.jit(make_train_epoch(model_config, train_config))


def _program_config(train_config: TrainConfig) -> TrainConfig:
    # ``epochs`` and ``seed`` do not enter the epoch function (the shuffle key travels in
    # ``TrainState.key``): leaving them out of the cache key lets another seed or epoch count
    # reuse the compiled program.
    return dataclasses.replace(train_config, epochs=1, seed=0)


def compiled_train_epoch(model_config: ModelConfig, train_config: TrainConfig):
    """``jax.jit`` of ``make_train_epoch`` (one training, no epoch-end reset), cached.

    ``epochs`` and ``seed`` are left out of the cache key: a second call with another seed
    or epoch count reuses the compiled program. The driver, ``fit``, runs
    ``make_train_epoch`` through ``compiled_driver_epoch`` instead; this single-epoch program
    is the reference its tests compare with.
    """
    return _compiled_train_epoch(model_config, _program_config(train_config))


@functools.lru_cache(maxsize=64)
def compiled_evaluate(model_config: ModelConfig):
    """``jax.jit`` of ``make_evaluate``, cached per model config."""
    return jax.jit(make_evaluate(model_config))


# Not shared through program_model: a stateless model's own prediction program differs from
# the shared one in the last bit of some outputs (XLA folds the zero state differently).
@functools.lru_cache(maxsize=64)
def compiled_predict(model_config: ModelConfig):
    """``jax.jit`` of ``make_predict``, cached per model config."""
    return jax.jit(make_predict(model_config))


_VALIDATION_STATES = ("carry", "zeros")


class StopState(NamedTuple):
    """What early stopping and the plateau rule carry per training, beside the ``TrainState``.

    ``fit`` builds it with ``init_stop_states`` and carries it through the epoch program;
    fields a config does not use stay as built.

    Attributes:
        stopped: bool scalar: the training has stopped and makes no further updates.
        epochs_run: int32 scalar: epochs in which the training updated its parameters.
        best_loss: float32 scalar: best validation loss so far (early stopping; ``inf`` at
            the start).
        best_params: the parameters of the best epoch (``None`` unless early stopping
            restores them).
        best_epoch: int32 scalar: the 0-based epoch of ``best_loss``, ``-1`` before one.
        wait: int32 scalar: epochs since the last improvement (early stopping).
        plateau_best: float32 scalar: best validation loss so far (the plateau rule).
        plateau_wait: int32 scalar: epochs since the plateau rule's last improvement or
            reduction.
        lr_scale: float32 scalar: the learning rate as a fraction of the configured one.
    """

    stopped: jax.Array
    epochs_run: jax.Array
    best_loss: jax.Array
    best_params: Params | None
    best_epoch: jax.Array
    wait: jax.Array
    plateau_best: jax.Array
    plateau_wait: jax.Array
    lr_scale: jax.Array


def init_stop_states(train_config: TrainConfig, train_states: TrainState) -> StopState:
    """The stop state at the start of a ``fit``, one per training (leading axis: trainings).

    Args:
        train_config: training settings; ``best_params`` is kept only when
            ``early_stopping.restore_best`` asks for it.
        train_states: stacked states (from ``init_train_states``).

    Returns:
        A ``StopState`` whose every leaf has a leading axis of trainings: nothing stopped,
        no best loss yet (``inf``), learning-rate scale 1.
    """
    return _stop_states(train_config, jnp.shape(train_states.step)[:1], train_states.params, jnp)


def _stop_states(train_config: TrainConfig, shape: tuple[int, ...], params: Params, xp: Any):
    """``init_stop_states``' values of ``shape`` with ``xp``: ``jnp`` traced, ``np`` on the host."""
    early = train_config.early_stopping
    keep_params = early is not None and early.restore_best

    def full(value, dtype):
        return xp.full(shape, value, dtype)

    return StopState(
        stopped=full(False, xp.bool_),
        epochs_run=full(0, xp.int32),
        best_loss=full(xp.inf, xp.float32),
        # A copy: the parameters' buffers may be replaced while the best ones are kept.
        best_params=jax.tree.map(xp.copy, params) if keep_params else None,
        best_epoch=full(-1, xp.int32),
        wait=full(0, xp.int32),
        plateau_best=full(xp.inf, xp.float32),
        plateau_wait=full(0, xp.int32),
        lr_scale=full(1.0, xp.float32),
    )


def _select_tree(condition: jax.Array, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where the scalar ``condition`` holds, else ``on_false``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def make_driver_epoch(
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    validation: bool = False,
    validation_state: str = "carry",
):
    """Build one epoch of the driver for ONE training (not jitted; ``fit`` vmaps it).

    The epoch is ``make_train_epoch`` (one ``lax.scan`` over the batches, with the
    every-N-batches resets), then the validation, then the epoch-end reset of the policy:
    the only place where a stateful model's state is zeroed between epochs.

    With ``early_stopping`` or ``plateau`` set, the epoch also applies their rules to the
    validation loss (see ``EarlyStopping`` and ``Plateau``) and carries a ``StopState``: a
    training that has stopped keeps every leaf of its ``TrainState`` (parameters, optimizer
    and recurrent state, step, key) and reports ``nan`` losses; the plateau's learning-rate
    scale multiplies the updates (see ``make_train_epoch``). Without them the stop state is
    passed through untouched and the program is the plain epoch.

    Args:
        model_config: the model.
        train_config: training settings; its ``reset`` policy is applied here.
        validation: whether the epoch also evaluates validation batches.
        validation_state: where a stateful validation starts: ``"carry"`` (the state the
            epoch ended in) or ``"zeros"``.

    Returns:
        ``epoch(train_state, stop_state, x_batches, y_batches, x_val, y_val, carry=None,
        norm=None) -> (train_state, stop_state, loss, val_loss)`` (``carry`` and ``norm`` as
        in ``make_train_epoch``)
        with ``loss`` the mean of the epoch's batch losses (a scalar) and ``val_loss`` the
        mean validation loss (a scalar; ``nan`` without validation, where ``x_val`` and
        ``y_val`` are ignored). ``stop_state`` is a ``StopState`` (one training's) with early
        stopping or plateau, else ``None``.

    Raises:
        ValueError: early stopping or plateau without validation.
    """
    early = train_config.early_stopping
    plateau = train_config.plateau
    stopping = early is not None or plateau is not None
    if stopping and not validation:
        raise ValueError(_NO_VALIDATION_MESSAGE)
    train_epoch = make_train_epoch(model_config, train_config)
    evaluate_batches = make_evaluate(model_config)
    reset_at_end = train_config.reset.at_epoch_end

    def plain_epoch(
        train_state: TrainState, lr_scale, x_batches, y_batches, x_val, y_val, stateful, norm
    ):
        train_state, losses = train_epoch(
            train_state, x_batches, y_batches, lr_scale, stateful, norm
        )
        val_loss = jnp.asarray(jnp.nan, losses.dtype)
        if validation:
            start = train_state.rnn_state
            if validation_state == "zeros":
                start = _zeros_like_state(start)
            # The validation's own end state is dropped: it does not change the training.
            val_losses, _ = evaluate_batches(
                train_state.params, start, x_val, y_val, stateful, norm
            )
            val_loss = jnp.mean(val_losses)
        if reset_at_end and stateful is not False:
            # Keras' model.reset_states() after every epoch (the seed's fit(epochs=1) loop).
            zeros = _zeros_like_state(train_state.rnn_state)
            train_state = train_state._replace(
                rnn_state=_carried(stateful, zeros, train_state.rnn_state)
            )
        return train_state, jnp.mean(losses), val_loss

    def epoch(
        train_state: TrainState,
        stop_state,
        x_batches,
        y_batches,
        x_val,
        y_val,
        carry=None,
        norm=None,
    ):
        stateful = model_config.stateful if carry is None else carry
        if not stopping:
            train_state, loss, val_loss = plain_epoch(
                train_state, None, x_batches, y_batches, x_val, y_val, stateful, norm
            )
            return train_state, stop_state, loss, val_loss
        lr_scale = None if plateau is None else stop_state.lr_scale
        new_state, loss, val_loss = plain_epoch(
            train_state, lr_scale, x_batches, y_batches, x_val, y_val, stateful, norm
        )
        stopped = stop_state.stopped
        running = jnp.logical_not(stopped)
        # A stopped training makes no further updates: every leaf keeps its value.
        new_state = _select_tree(stopped, train_state, new_state)
        loss = jnp.where(stopped, jnp.nan, loss)
        val_loss = jnp.where(stopped, jnp.nan, val_loss)  # nan never counts as improving
        stop_now = jnp.zeros([], jnp.bool_)
        changes = {"epochs_run": stop_state.epochs_run + running.astype(jnp.int32)}
        if early is not None:
            improved = val_loss < stop_state.best_loss - early.min_delta
            changes["best_loss"] = jnp.where(improved, val_loss, stop_state.best_loss)
            changes["best_epoch"] = jnp.where(
                improved, stop_state.epochs_run, stop_state.best_epoch
            )
            if early.restore_best:
                changes["best_params"] = _select_tree(
                    improved, new_state.params, stop_state.best_params
                )
            wait = jnp.where(improved, 0, stop_state.wait + running.astype(jnp.int32))
            changes["wait"] = wait
            stop_now = running & (wait >= early.patience)
        if plateau is not None:
            improved = val_loss < stop_state.plateau_best
            changes["plateau_best"] = jnp.where(improved, val_loss, stop_state.plateau_best)
            wait = jnp.where(improved, 0, stop_state.plateau_wait + running.astype(jnp.int32))
            reduce = running & (wait >= plateau.patience)
            reduced = jnp.maximum(
                stop_state.lr_scale * plateau.factor, jnp.float32(plateau.min_scale)
            )
            changes["lr_scale"] = jnp.where(reduce, reduced, stop_state.lr_scale)
            changes["plateau_wait"] = jnp.where(reduce, 0, wait)
        changes["stopped"] = stopped | stop_now
        return new_state, stop_state._replace(**changes), loss, val_loss

    return epoch


_NO_VALIDATION_MESSAGE = (
    "early_stopping and plateau watch the validation loss, got validation=None; pass "
    "validation=(x_val_batches, y_val_batches) (e.g. the tail of the training part), or "
    "TrainConfig(early_stopping=None, plateau=None)"
)


@functools.lru_cache(maxsize=64)
def _compiled_driver_epoch(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_axis: int | None,
    validation: bool,
    validation_state: str,
):
    epoch = make_driver_epoch(
        model_config, train_config, validation=validation, validation_state=validation_state
    )
    axes = (0, 0, data_axis, data_axis, data_axis, data_axis)
    return jax.jit(jax.vmap(epoch, in_axes=axes))


def compiled_driver_epoch(
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    data_axis: int | None = None,
    validation: bool = False,
    validation_state: str = "carry",
):
    """``jit(vmap(make_driver_epoch(...)))`` over trainings, cached; what ``fit`` runs.

    Args:
        model_config: the model.
        train_config: training settings (``epochs`` and ``seed`` do not enter the cache key).
        data_axis: ``None`` when all trainings share the batches, ``0`` when the batches
            carry a leading trainings axis.
        validation: whether the program evaluates validation batches.
        validation_state: ``"carry"`` or ``"zeros"``.

    Returns:
        ``epoch(train_states, stop_states, x_batches, y_batches, x_val, y_val) ->
        (train_states, stop_states, losses, val_losses)`` with ``losses`` and ``val_losses``
        of shape ``(trainings,)``; ``stop_states`` from ``init_stop_states`` with early
        stopping or plateau, else ``None``.

    Raises:
        ValueError: early stopping or plateau without validation.
    """
    return _compiled_driver_epoch(
        model_config, _program_config(train_config), data_axis, validation, validation_state
    )


def stack_train_states(states: Sequence[TrainState]) -> TrainState:
    """Stack one ``TrainState`` per training into one with a leading trainings axis.

    Args:
        states: equal-shape states, e.g. from ``init_train_state``.

    Returns:
        A ``TrainState`` whose every leaf has a leading axis of ``len(states)``.

    Raises:
        ValueError: ``states`` is empty.
    """
    states = list(states)
    if not states:
        raise ValueError(
            "states must hold at least one TrainState, got none; pass one per training"
        )
    return _stack(tuple(states))


def select_training(train_states: TrainState, index: int) -> TrainState:
    """The ``TrainState`` of one training from stacked states (the leading axis dropped)."""
    return _select(train_states, index)


# One compiled call each instead of one dispatch per leaf: LSTMModel.fit stacks and selects
# on every call, and the seed's script calls fit once per epoch.
@jax.jit
def _stack(states: tuple[TrainState, ...]) -> TrainState:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


@jax.jit
def _select(train_states: TrainState, index: jax.Array) -> TrainState:
    return jax.tree.map(lambda leaf: leaf[index], train_states)


def init_train_states(
    model_config: ModelConfig,
    train_config: TrainConfig,
    params: Sequence[Params | int],
    batch_size: int,
    *,
    keys: Sequence[jax.Array] | None = None,
) -> TrainState:
    """Fresh stacked ``TrainState``s, one per training (leading axis: trainings).

    Built eagerly, one training at a time: the eager initialisers compile once per shape and
    are reused, where a jitted, vmapped initialiser would compile (slowly: the orthogonal
    init's QR) for every model.

    Args:
        model_config: the model.
        train_config: training settings (optimizer; ``seed`` for the default shuffle key).
        params: one entry per training: a parameter pytree, or an int seed for
            ``init_params(model_config, seed)``.
        batch_size: rows per batch (the recurrent state's size).
        keys: one shuffle key per training; ``None`` gives every training
            ``jax.random.key(train_config.seed)``.

    Returns:
        A ``TrainState`` whose leaves have a leading axis of ``len(params)``, at step 0.

    Raises:
        ValueError: no trainings, a ``batch_size`` that is not a positive int, or a number of
            keys that differs from the number of trainings.
    """
    params = list(params)
    if keys is not None and len(keys) != len(params):
        raise ValueError(
            f"keys must hold one key per training, got {len(keys)} keys for {len(params)} "
            "trainings; pass one key per entry of params, or keys=None"
        )
    states = []
    for index, entry in enumerate(params):
        if isinstance(entry, int | np.integer) and not isinstance(entry, bool):
            entry = init_params(model_config, int(entry))
        state = init_train_state(model_config, entry, batch_size, train_config)
        if keys is not None:
            state = state._replace(key=keys[index])
        states.append(state)
    return stack_train_states(states)


@dataclass(frozen=True, slots=True, eq=False)
class TrainLog:
    """What the driver measured, per epoch and per training.

    Attributes:
        loss: ``(epochs, trainings)`` float32, mean training loss of every epoch; ``nan``
            after a training has stopped, and ``epochs`` is the most any training ran.
        val_loss: ``(epochs, trainings)`` float32 validation losses (``nan`` after a
            training has stopped), or ``None`` without validation.
        updates: ``(trainings,)`` int, each training's ``step`` at the end.
        epochs_run: ``(trainings,)`` int, the epochs in which each training updated its
            parameters (all of them without early stopping).
        best_epoch: ``(trainings,)`` int, each training's 0-based epoch of its best
            validation loss under early stopping (``-1`` if none improved), or ``None``
            without early stopping.
    """

    loss: np.ndarray
    val_loss: np.ndarray | None
    updates: np.ndarray
    epochs_run: np.ndarray
    best_epoch: np.ndarray | None = None

    @property
    def trainings(self) -> int:
        """Number of trainings."""
        return int(self.updates.shape[0])

    def refit_epochs(self, flagged: np.ndarray) -> int | None:
        """Epochs of a refit on the whole data: the median best epoch count of the sound seeds.

        The rule of every refit (``Forecaster.fit``, ``compare``): once the validation tail
        has chosen the model and its epoch count, the model learns from the tail too, for
        the median over seeds of their best epoch count (the flagged seeds left out, unless
        every seed is flagged).

        Args:
            flagged: ``(trainings,)`` bool, the seeds whose validation forecasts failed.

        Returns:
            The epoch count, or ``None`` without early stopping (no best epoch).
        """
        if self.best_epoch is None:
            return None
        flagged = np.asarray(flagged, bool)
        sound = ~flagged if not flagged.all() else np.ones_like(flagged)
        return int(np.median(np.maximum(self.best_epoch[sound], 0) + 1))

    def history(
        self,
        training: int = 0,
        *,
        trim: Any = None,
        val_trim: Any = None,
    ) -> History:
        """The Keras-like ``History`` of one training.

        Args:
            training: which training (index along the trainings axis).
            trim: the training layout's report, if the caller laid the samples out.
            val_trim: the validation layout's report.

        Returns:
            ``History`` with one float per epoch the training ran (Keras' history of an
            early-stopped training ends at its stop).
        """
        run = int(self.epochs_run[training])
        return History(
            loss=tuple(float(v) for v in self.loss[:run, training]),
            val_loss=None
            if self.val_loss is None
            else tuple(float(v) for v in self.val_loss[:run, training]),
            updates=int(self.updates[training]),
            trim=trim,
            val_trim=val_trim,
            best_epoch=None if self.best_epoch is None else int(self.best_epoch[training]),
        )


EpochCallback = Callable[[int, np.ndarray, np.ndarray | None], None]


def _batch_shape(batches: Any) -> tuple[int, ...]:
    shape = getattr(batches, "shape", None)
    return tuple(shape) if shape is not None else np.shape(batches)


def _check_batches(
    name: str, batches: Any, data_axis: int | None, trainings: int, copy: bool = True
) -> Any:
    """Check the shape of ``batches`` and return them as the program will take them.

    No conversion on the host: a JAX array is used as it is (it stays on the device across
    ``fit`` calls), a read-only NumPy array's device copy is cached by identity
    (``_device_copy``), and any other NumPy array is handed to the compiled program, which
    transfers it once. Only what is neither (lists, pandas objects) is converted first.
    ``copy=False`` leaves the device copies alone (to compile, only the shape matters).
    """
    if not isinstance(batches, jax.Array | np.ndarray | WindowBatches):
        batches = np.asarray(batches)
    shape = _batch_shape(batches)
    lead = 1 if data_axis is None else 2
    if len(shape) < lead + 2:
        expected = "(num_batches, batch, ...)" if data_axis is None else (
            "(trainings, num_batches, batch, ...)")
        raise ValueError(
            f"{name} must have shape {expected}, got shape {shape}; lay the samples out "
            "in batches first (lstmlab.data.layouts)"
        )
    if data_axis is not None and shape[0] != trainings:
        raise ValueError(
            f"{name} has {shape[0]} entries on its trainings axis, the states hold "
            f"{trainings} trainings; pass one set of batches per training, or data_axis=None "
            "to share one"
        )
    if not copy:
        return batches
    if isinstance(batches, WindowBatches):
        return jax.tree.map(_device_copy, batches)
    return _device_copy(batches)


# The device copies of the last read-only host inputs, by identity: (array, device copy).
_DEVICE_COPIES: "collections.OrderedDict[int, tuple[np.ndarray, Any]]" = (
    collections.OrderedDict()
)
_DEVICE_COPIES_KEPT = 8


def _device_copy(batches: Any) -> Any:
    """The device copy of a read-only NumPy array passed again, reused by identity.

    Only read-only arrays whose memory cannot change behind the cache (their own data, or a
    read-only base: what ``lstmlab.data.layouts`` returns) are kept, so a cached copy never
    goes stale; the cache holds the array, so its ``id`` is not reused while it is kept.
    The first time an array is seen it is returned as it is (the compiled program's call
    transfers it, which costs less than a separate ``device_put`` when it is not seen
    again); the second time its device copy is made and kept. Anything else is returned
    unchanged.
    """
    if not isinstance(batches, np.ndarray) or batches.flags.writeable:
        return batches
    base = batches.base
    while base is not None:
        if not isinstance(base, np.ndarray) or base.flags.writeable:
            return batches
        base = base.base
    key = id(batches)
    hit = _DEVICE_COPIES.get(key)
    if hit is None or hit[0] is not batches:
        _DEVICE_COPIES[key] = (batches, None)  # seen once
        copy = batches
    else:
        copy = hit[1]
        if copy is None:
            copy = jax.device_put(batches)
            _DEVICE_COPIES[key] = (batches, copy)
        _DEVICE_COPIES.move_to_end(key)
    while len(_DEVICE_COPIES) > _DEVICE_COPIES_KEPT:
        _DEVICE_COPIES.popitem(last=False)
    return copy


MAX_EPOCHS_VARIABLE = "LSTMLAB_MAX_EPOCHS"


def capped_epochs(epochs: int) -> int:
    """``epochs``, capped by the environment variable ``LSTMLAB_MAX_EPOCHS`` when it is set.

    The one switch that shortens every training (the driver reads it), for trial runs and
    for the test that runs the README top to bottom; unset, ``epochs`` is returned as is.

    Raises:
        ValueError: the variable is set to something other than an integer >= 0.
    """
    cap = os.environ.get(MAX_EPOCHS_VARIABLE)
    if cap is None or cap == "":
        return epochs
    if not cap.strip().isdigit():
        raise ValueError(
            f"{MAX_EPOCHS_VARIABLE} must be an integer >= 0, got {cap!r}; set it to e.g. 2 "
            "for a quick trial run, or unset it"
        )
    return min(epochs, int(cap))


# Epochs per compiled call of the driver: the size of the loss buffers of one call. Any
# number of epochs up to it runs in the same program (the count is an argument).
EPOCH_CHUNK = 32
# With on_epoch, the epochs of one call are sized so that a call takes about this long:
# progress is reported after every call, not after every epoch.
_PROGRESS_SECONDS = 0.25


@functools.lru_cache(maxsize=64)
def _compiled_run(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_axis: int | None,
    validation: bool,
    validation_state: str,
    single: bool,
):
    """``jit`` of up to ``EPOCH_CHUNK`` driver epochs in one ``lax.while_loop``.

    ``run(train_states, stop_states, epochs, x, y, x_val, y_val, stateful, norm) -> (train_states,
    stop_states, losses, val_losses, epochs_done)`` runs ``epochs`` (a traced int, at most
    ``EPOCH_CHUNK``) epochs of ``vmap(make_driver_epoch(...))``, ending early once every
    training has stopped (early stopping); ``losses`` and ``val_losses`` are
    ``(EPOCH_CHUNK, trainings)`` buffers, ``nan`` past ``epochs_done``. With ``single`` the
    states are one training's (no leading axis). One training, stacked or not, runs the
    epoch without vmap. ``stateful`` is the model's, as a bool scalar:
    ``model_config`` is a ``program_model``, shared by the stateful and stateless models of
    one shape; ``norm`` is the model's norm code (``NORMS.index``), shared by its norms.
    """
    epoch = make_driver_epoch(
        model_config, train_config, validation=validation, validation_state=validation_state
    )
    epochs_of_many = jax.vmap(
        epoch, in_axes=(0, 0, data_axis, data_axis, data_axis, data_axis, None, None)
    )
    early = train_config.early_stopping is not None

    def run(train_states, stop_states, epochs, x, y, x_val, y_val, stateful, norm):
        trainings = 1 if single else train_states.step.shape[0]
        # One training runs the epoch without vmap (a vmapped axis of 1 makes XLA's CPU
        # programs about twice as slow on small models), stacked or not: fit with one
        # training and fit_single run the same arithmetic.
        squeeze = not single and trainings == 1
        if squeeze:
            train_states, stop_states = jax.tree.map(
                lambda leaf: leaf[0], (train_states, stop_states)
            )
            if data_axis == 0:
                x, y, x_val, y_val = jax.tree.map(lambda a: a[0], (x, y, x_val, y_val))
        one_epoch_fn = epoch if single or squeeze else epochs_of_many
        dtype = jnp.result_type(float)
        empty = jnp.full((EPOCH_CHUNK, trainings), jnp.nan, dtype)

        def go_on(carry):
            index, _, stops, _, _ = carry
            more = index < epochs
            if early:
                more = more & jnp.logical_not(jnp.all(stops.stopped))
            return more

        def one_epoch(carry):
            index, states, stops, losses, val_losses = carry
            states, stops, loss, val_loss = one_epoch_fn(
                states, stops, x, y, x_val, y_val, stateful, norm
            )
            # (trainings,) rows; one training's scalar losses become a row of one.
            losses = losses.at[index].set(jnp.reshape(loss, (trainings,)).astype(dtype))
            val_losses = val_losses.at[index].set(
                jnp.reshape(val_loss, (trainings,)).astype(dtype)
            )
            return index + 1, states, stops, losses, val_losses

        start = (jnp.zeros([], jnp.int32), train_states, stop_states, empty, empty)
        done, train_states, stop_states, losses, val_losses = jax.lax.while_loop(
            go_on, one_epoch, start
        )
        if squeeze:
            train_states, stop_states = jax.tree.map(
                lambda leaf: leaf[None], (train_states, stop_states)
            )
        return train_states, stop_states, losses, val_losses, done

    return jax.jit(run)


def initial_opt_state(train_config: TrainConfig, params: Params) -> KerasAdamState:
    """The optimizer's first state for ``params``, as host arrays, with no compilation.

    ``train_config.optimizer()``'s ``init`` (Keras' Adam: a zero step count and zero
    moments), built with NumPy from the state's shapes: an edge object's first ``fit``
    passes it, so the first and the later calls have the same argument structure and share
    one compiled program.

    Args:
        train_config: the training settings whose optimizer is meant.
        params: the parameters the optimizer will update.

    Returns:
        The optimizer state, equal to ``train_config.optimizer().init(params)``.
    """
    shapes = jax.eval_shape(train_config.optimizer().init, params)
    # Keras' Adam starts from zeros everywhere (tests/test_train.py checks it against init).
    return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)


def _init_stop_states(train_config: TrainConfig, single: bool, train_states: TrainState):
    """``init_stop_states`` for ``jax.eval_shape``; without the trainings axis for ``single``."""
    shape = () if single else jnp.shape(train_states.step)[:1]
    return _stop_states(train_config, shape, train_states.params, jnp)


def _host_stop_states(train_config: TrainConfig, single: bool, train_states: TrainState):
    """``_init_stop_states``' values as NumPy arrays, built on the host: nothing traced.

    A compiled call cost a program per model shape (three in ``Forecaster().fit``) for
    constants and a copy of the parameters.
    """
    shape = () if single else np.shape(train_states.step)[:1]
    return _stop_states(train_config, shape, train_states.params, np)


def fit(
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_states: TrainState,
    x_batches: Any,
    y_batches: Any,
    *,
    data_axis: int | None = None,
    validation: tuple[Any, Any] | None = None,
    validation_state: str = "carry",
    on_epoch: EpochCallback | None = None,
) -> tuple[TrainState, TrainLog]:
    """Train several equal-shape trainings at once for at most ``train_config.epochs`` epochs.

    The one training driver of lstmlab. The epochs run inside one compiled program,
    ``jit`` of a ``lax.while_loop`` over up to ``EPOCH_CHUNK`` epochs of ``vmap(epoch)`` over
    the trainings (seeds, or equal-shape configurations), cached per (model config, training
    settings without ``epochs`` and ``seed``); longer trainings call it once per chunk of
    epochs. An epoch is the batches in one ``lax.scan`` (``make_train_epoch``, with the
    every-N-batches resets), the validation, the epoch-end reset of the policy and the
    epoch's mean loss: nothing returns to Python between the epochs of a chunk.

    With ``train_config.early_stopping`` each training stops on its own (inside the
    program: a stopped training makes no further updates and logs ``nan``); the loop ends
    once every training has stopped. With ``restore_best`` the returned states hold
    each training's best-validation parameters; their optimizer state, recurrent state,
    ``step`` and key are those at the stop (a further ``fit`` continues from the best
    parameters with the optimizer's moments of the last epoch run).
    ``train_config.plateau`` scales each training's learning rate on its own.

    The batches are not copied on the host: JAX arrays are used as they are (pass them to
    keep the data on the device across calls), and read-only NumPy batches (as
    ``lstmlab.data.layouts`` makes them) are transferred once and their device copy reused
    while the same array is passed again.

    Args:
        model_config: the model.
        train_config: training settings; ``epochs`` epochs are run.
        train_states: stacked states, leaves with a leading axis of trainings (from
            ``init_train_states`` or ``stack_train_states``); not to be reused after the call.
        x_batches: ``(num_batches, batch, time, features)`` shared by every training
            (``data_axis=None``), or ``(trainings, num_batches, batch, time, features)``
            (``data_axis=0``), batches in training order; or ``WindowBatches`` that cut
            them from the series inside the program.
        y_batches: ``(num_batches, batch, outputs)``, or with a leading trainings axis (or
            ``WindowBatches``).
        data_axis: ``None``: all trainings train on the same batches; ``0``: each training
            has its own (the leading axis of ``x_batches``, ``y_batches`` and the validation).
        validation: optional ``(x_batches, y_batches)`` of the same batch size, evaluated
            after every epoch; a stateful model starts it as ``validation_state`` says, and
            the training state is not changed by it.
        validation_state: where a stateful model's validation starts: ``"carry"`` from the
            state reached at the end of the epoch (the validation part continues the training
            series: right when row ``i`` of the validation batches continues row ``i`` of the
            training batches, as in the official layout),
            ``"zeros"`` from zero state (the stream layout: validation stream ``i`` does not
            continue training stream ``i``, so carrying would hand it another stream's state).
        on_epoch: called for every epoch as ``on_epoch(epoch_index, losses, val_losses)``
            with NumPy ``(trainings,)`` arrays (``val_losses`` ``None`` without validation),
            e.g. to advance a progress bar (``lstmlab.runtime.epoch_progress``). It is
            called after each compiled call, for the epochs that call ran; the calls are
            sized to take about ``_PROGRESS_SECONDS`` each. Without it the losses stay on the
            device until the end. A stopped training's entries are ``nan``.

    Returns:
        ``(train_states, log)``: the final stacked states and a ``TrainLog`` with losses of
        shape ``(epochs, trainings)`` (``epochs``: the most epochs any training ran).

    Raises:
        ValueError: stateful training with ``shuffle=True``, an unknown ``validation_state``
            or ``data_axis``, batches whose shape does not fit, or early stopping or plateau
            without ``validation``.

    Example:
        >>> import numpy as np
        >>> from lstmlab.core.model import LSTMConfig
        >>> config, train_config = LSTMConfig(units=(4,)), TrainConfig(epochs=2)
        >>> states = init_train_states(config, train_config, [0, 1, 2], batch_size=1)
        >>> x = np.random.default_rng(0).normal(size=(8, 1, 1, 1)).astype(np.float32)
        >>> states, log = fit(config, train_config, states, x, x[:, :, 0])
        >>> log.loss.shape, log.updates.tolist()
        ((2, 3), [16, 16, 16])
    """
    return _fit(
        model_config, train_config, train_states, x_batches, y_batches,
        data_axis=data_axis, validation=validation, validation_state=validation_state,
        on_epoch=on_epoch, trainings=_trainings(train_states),
    )


def _trainings(train_states: TrainState) -> int:
    """The number of trainings stacked in ``train_states`` (refusing unstacked states)."""
    step = train_states.step
    trainings = int(step.shape[0]) if getattr(step, "ndim", 0) else 0
    if trainings == 0:
        raise ValueError(
            "train_states must have a leading trainings axis, got unstacked states; build "
            "them with init_train_states, or stack_train_states([state]) for one training"
        )
    return trainings


def fit_single(
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_state: TrainState,
    x_batches: Any,
    y_batches: Any,
    *,
    validation: tuple[Any, Any] | None = None,
    validation_state: str = "carry",
    on_epoch: EpochCallback | None = None,
) -> tuple[TrainState, TrainLog]:
    """``fit`` for ONE training whose state has no trainings axis: the per-call path.

    The same driver as ``fit`` with one training, whose epoch is not vmapped (no trainings
    axis anywhere: the epoch program is ``compiled_train_epoch``'s, with the validation and
    the reset), so a call costs one dispatch plus the wait for its losses, and the seed's
    ``fit(epochs=1)``-then-reset loop runs at the speed of the bare compiled epoch. What an
    edge object (``LSTMModel.fit``) calls once per ``fit``. The log has a trainings axis of
    one.

    Args:
        model_config: the model.
        train_config: training settings.
        train_state: one training's ``TrainState`` (no leading axis). ``step`` may be a
            Python int, ``key`` an int seed (``jax.random.key(seed)``), ``opt_state``
            ``None`` (the optimizer's initial state, ``initial_opt_state``) and
            ``rnn_state`` ``None`` (zero state).
        x_batches: ``(num_batches, batch, time, features)``.
        y_batches: ``(num_batches, batch, outputs)``.
        validation: as in ``fit``.
        validation_state: as in ``fit``.
        on_epoch: as in ``fit``, with ``(1,)`` arrays.

    Returns:
        ``(train_state, log)``: the final state (no leading axis) and a one-training
        ``TrainLog``.

    Raises:
        ValueError: as ``fit``.
    """
    return _fit(
        model_config, train_config, _complete_single(model_config, train_config, train_state,
                                                     x_batches),
        x_batches, y_batches, data_axis=None, validation=validation,
        validation_state=validation_state, on_epoch=on_epoch, trainings=None,
    )


def _complete_single(model_config, train_config, train_state: TrainState, x_batches):
    """``fit_single``'s state with what the caller may leave out made.

    Made here, not inside the program, so that the first call and the later ones (which
    pass the state they got back) have the same argument structure: one compiled program,
    also across the chunks of epochs of one call. ``params`` may be abstract
    (``compile_fit``).
    """
    key = train_state.key
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        key = jax.random.key(int(key))
    step = train_state.step
    if isinstance(step, int | np.integer):
        step = np.int32(step)
    opt_state = train_state.opt_state
    if opt_state is None:
        opt_state = initial_opt_state(train_config, train_state.params)
    rnn_state = train_state.rnn_state
    if rnn_state is None:
        rnn_state = init_state(model_config, np.shape(x_batches)[1])  # (batches, batch, ...)
    return train_state._replace(key=key, step=step, opt_state=opt_state, rnn_state=rnn_state)


def compile_fit(
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_states: TrainState,
    x_batches: Any,
    y_batches: Any,
    *,
    data_axis: int | None = None,
    validation: tuple[Any, Any] | None = None,
    validation_state: str = "carry",
    single: bool = False,
) -> None:
    """Compile the program ``fit`` (``fit_single`` with ``single``) runs, without running it.

    The arguments are those of the call to come, but the states' leaves may be abstract
    (``jax.ShapeDtypeStruct``, e.g. from ``jax.eval_shape`` of the initialiser): the
    training program can then compile on another thread (``runtime.in_background``) while
    the initial parameters are still being made, which is a compilation of its own. The
    call that follows with concrete arguments of the same shapes compiles nothing.
    Nothing is transferred to the device, and ``LSTMLAB_MAX_EPOCHS`` does not matter (the
    epoch count is an argument of the program).

    Args:
        model_config: as in ``fit``.
        train_config: as in ``fit``.
        train_states: as in ``fit`` (stacked), or as in ``fit_single`` with ``single``.
        x_batches: as in ``fit``.
        y_batches: as in ``fit``.
        data_axis: as in ``fit`` (``None`` with ``single``).
        validation: as in ``fit``.
        validation_state: as in ``fit``.
        single: compile ``fit_single``'s program.

    Raises:
        ValueError: as ``fit`` and ``fit_single``.
    """
    if single:
        train_states = _complete_single(model_config, train_config, train_states, x_batches)
        trainings = None
    else:
        trainings = _trainings(train_states)
    _fit(
        model_config, train_config, train_states, x_batches, y_batches,
        data_axis=data_axis, validation=validation, validation_state=validation_state,
        on_epoch=None, trainings=trainings, compile_only=True,
    )


def _fit(
    model_config, train_config, train_states, x_batches, y_batches, *, data_axis,
    validation, validation_state, on_epoch, trainings, compile_only=False,
) -> tuple[TrainState, TrainLog] | None:
    """``fit``'s body; ``trainings`` is ``None`` for ``fit_single``'s unstacked state.

    With ``compile_only`` it compiles the program and returns ``None`` (``compile_fit``).
    """
    if validation_state not in _VALIDATION_STATES:
        raise ValueError(
            f"validation_state must be 'carry' or 'zeros', got {validation_state!r}; pass "
            "'carry' when validation row i continues training row i, else 'zeros'"
        )
    if data_axis not in (None, 0):
        raise ValueError(
            f"data_axis must be None (batches shared by all trainings) or 0 (a leading "
            f"trainings axis), got {data_axis!r}"
        )
    if model_config.stateful and train_config.shuffle:
        raise ValueError(
            "stateful training needs shuffle=False, got shuffle=True; pass shuffle=False "
            "(shuffling would break the continuity of each stream across batches)"
        )
    early = train_config.early_stopping
    stopping = early is not None or train_config.plateau is not None
    if stopping and validation is None:
        raise ValueError(_NO_VALIDATION_MESSAGE)
    single = trainings is None
    copy = not compile_only  # compiling needs the shapes, not a device copy
    x_batches = _check_batches("x_batches", x_batches, data_axis, trainings, copy)
    y_batches = _check_batches("y_batches", y_batches, data_axis, trainings, copy)
    if validation is None:
        x_val, y_val = x_batches, y_batches  # ignored by the program
    else:
        x_val = _check_batches("validation x_batches", validation[0], data_axis, trainings, copy)
        y_val = _check_batches("validation y_batches", validation[1], data_axis, trainings, copy)
    run = _compiled_run(
        program_model(model_config), _program_config(train_config), data_axis,
        validation is not None, validation_state, single,
    )
    stateful = np.bool_(model_config.stateful)
    norm = norm_code(model_config)
    stop_states = None
    if stopping:
        init_stops = functools.partial(_init_stop_states, _program_config(train_config), single)
        if compile_only:
            stop_states = jax.eval_shape(init_stops, train_states)
        else:
            stop_states = _host_stop_states(_program_config(train_config), single, train_states)
    if compile_only:
        run.lower(
            train_states, stop_states, 1, x_batches, y_batches, x_val, y_val, stateful, norm
        ).compile()
        return None
    total = capped_epochs(train_config.epochs)
    chunks = []  # (losses, val_losses, epochs asked) of every call
    done = 0
    size = 1 if on_epoch is not None else EPOCH_CHUNK
    while done < total:
        asked = min(size, total - done)
        started = time.perf_counter()
        train_states, stop_states, losses, val_losses, ran = run(
            train_states, stop_states, asked, x_batches, y_batches, x_val, y_val, stateful, norm
        )
        chunks.append((losses, val_losses, asked))
        if on_epoch is not None:
            losses_now, val_now, ran_now = np.asarray(losses), np.asarray(val_losses), int(ran)
            for index in range(ran_now):
                on_epoch(
                    done + index, losses_now[index],
                    None if validation is None else val_now[index],
                )
            # The first call includes compiling: the next is sized from the last one's time.
            seconds = (time.perf_counter() - started) / max(ran_now, 1)
            size = max(1, min(EPOCH_CHUNK, int(_PROGRESS_SECONDS / max(seconds, 1e-9))))
        done += asked
        if early is not None and done < total and int(ran) < asked:
            break  # every training has stopped
    if single:
        trainings = 1  # the states keep no trainings axis; the log has one
    if stopping:
        epochs_run = np.asarray(stop_states.epochs_run).astype(np.int64).reshape(trainings)
    else:
        epochs_run = np.full(trainings, done, np.int64)
    epochs = int(epochs_run.max(initial=0))
    best_epoch = None
    if early is not None:
        best_epoch = np.asarray(stop_states.best_epoch).astype(np.int64).reshape(trainings)
        if early.restore_best:
            train_states = train_states._replace(
                params=_restore_best(
                    stop_states.best_params,
                    train_states.params,
                    best_epoch[0] if single else best_epoch,
                )
            )

    def gather(which: int) -> np.ndarray:
        if not epochs:
            return np.zeros((0, trainings), np.float32)
        parts = [np.asarray(chunk[which])[: chunk[2]] for chunk in chunks]
        return np.concatenate(parts)[:epochs].astype(np.float32, copy=False)

    log = TrainLog(
        loss=gather(0),
        val_loss=None if validation is None else gather(1),
        updates=np.asarray(train_states.step).astype(np.int64).reshape(trainings),
        epochs_run=epochs_run,
        best_epoch=best_epoch,
    )
    return train_states, log


def _restore_best(best_params: Params, params: Params, best_epoch: np.ndarray) -> Params:
    """Each training's best parameters, or its last ones where no epoch improved (-1).

    Picked on the host: a jitted pick would compile a program for every model's shapes.
    """
    found = np.asarray(best_epoch) >= 0  # (trainings,), or a scalar for one unstacked training

    def pick(best, last):
        mask = found.reshape(found.shape + (1,) * (last.ndim - found.ndim))  # (trainings, 1, ...)
        return jax.device_put(np.where(mask, np.asarray(best), np.asarray(last)))

    return jax.tree.map(pick, best_params, params)
