"""Frozen model descriptions. Hashable, so a config can be a static argument of ``jax.jit``.

Input normalisation (``norm``) is a property of the model: ``apply`` normalises the target
column of each input window, runs the raw network (``apply_stacked``/``apply_mlp``, the
Keras-exact forward passes) and maps the outputs back, so training, both rollout strategies,
the Forecaster and the service all see it through ``apply``. See ``NORMS``.
"""

import dataclasses
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstmlab.checks import check_choice, check_positive_int
from lstmlab.core.layers import (
    DenseParams,
    LSTMParams,
    LSTMState,
    dense,
    init_dense,
    init_lstm,
    lstm_layer,
)
from lstmlab.core.norms import NORMS  # JAX-free, for the command line's --norm flags

__all__ = [
    "FORMAT_VERSION",
    "LSTMConfig",
    "MLPConfig",
    "MLPParams",
    "ModelConfig",
    "ModelState",
    "NORMS",
    "NORM_EPS",
    "TRACED_NORM",
    "Params",
    "StackedParams",
    "apply",
    "apply_mlp",
    "apply_stacked",
    "build_network",
    "config_from_dict",
    "config_from_json",
    "config_to_dict",
    "config_to_json",
    "from_keras_weights",
    "init_mlp",
    "init_params",
    "init_stacked",
    "init_state",
    "norm_code",
    "norm_program",
    "reset_state",
    "to_keras_weights",
]

FORMAT_VERSION = 1

NORM_EPS = 1e-5
"""Added to the window's standard deviation (``norm="window"``), in model (scaled) units:
a flat window maps to zeros instead of dividing by zero."""


TRACED_NORM = "traced"
"""The ``norm`` of a compiled training program that serves every normalisation of one shape
(``lstmlab.core.train.program_model``): ``apply`` then takes the model's own norm as a
traced code, ``NORMS.index(norm)``. Not a norm to build a model with."""


def norm_program(config: Any) -> Any:
    """The config of the compiled program that serves every norm of ``config``'s shape.

    ``config`` with ``norm=TRACED_NORM`` where a norm can apply (a window of two steps or
    more, one output per window), else ``config`` itself; ``apply`` then takes
    ``norm_code(config)``. A choice among norms compiles one program, not one per norm.
    """
    if (
        config.norm == TRACED_NORM
        or config.timesteps < 2
        or getattr(config, "return_sequences", False)
    ):
        return config
    return dataclasses.replace(config, norm=TRACED_NORM)


def norm_code(config: Any) -> np.int32:
    """``config.norm`` as the traced code a ``norm_program`` takes (``NORMS.index``)."""
    return np.int32(NORMS.index(config.norm))


def _check_norm(config: Any) -> None:
    """Validate ``config.norm`` against the window length and the output layout."""
    if config.norm != TRACED_NORM:  # a traced program must take every norm: checked as one
        check_choice("norm", config.norm, NORMS, fix="pass norm='none', 'difference' or 'window'")
    if config.norm == "none":
        return
    if config.timesteps < 2:
        raise ValueError(
            f"norm={config.norm!r} normalises each input window by its own values, and a "
            f"window of timesteps={config.timesteps} reading maps to zeros; pass timesteps >= 2 "
            "or norm='none'"
        )
    if getattr(config, "return_sequences", False):
        raise ValueError(
            f"norm={config.norm!r} with return_sequences=True would let the output at each step "
            "see later values of its window (the window's last value, mean and spread): a "
            "target leak in training; pass return_sequences=False or norm='none'"
        )


def _as_int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        units = tuple(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a tuple of positive integers, got {value!r}; pass e.g. (20,)"
        ) from None
    return tuple(check_positive_int(f"{name}[{i}]", u) for i, u in enumerate(units))


@dataclass(frozen=True, kw_only=True, slots=True)
class LSTMConfig:
    """A stack of LSTM layers with a Dense head, as Keras' ``Sequential([LSTM, ..., Dense])``.

    Attributes:
        units: hidden units per LSTM layer; all but the last return sequences.
        timesteps: time steps per sample the model is trained on (Keras' ``input_shape[0]``).
        features: inputs per time step.
        outputs: Dense head outputs.
        stateful: carry the recurrent state across batches (Keras ``stateful=True``).
        return_sequences: the last LSTM layer returns every step and the head predicts
            ``(batch, time, outputs)``; otherwise only the last step, ``(batch, outputs)``.
        norm: input normalisation of each window, one of ``NORMS`` (``"none"``: Keras'
            network as it is). Other values need ``timesteps >= 2`` and
            ``return_sequences=False``, and are applied by ``apply``.
    """

    units: tuple[int, ...] = (20,)
    timesteps: int = 1
    features: int = 1
    outputs: int = 1
    stateful: bool = True
    return_sequences: bool = False
    norm: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _as_int_tuple("units", self.units))
        if not self.units:
            raise ValueError("units must name at least one LSTM layer, got (); pass e.g. (20,)")
        for name in ("timesteps", "features", "outputs"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        _check_norm(self)

    @property
    def kind(self) -> str:
        """``"lstm"``."""
        return "lstm"

    @property
    def streams(self) -> bool:
        """Whether it reads one reading per step (a stateful model returning sequences).

        A stateful model that returns its last step reads overlapping windows instead, one
        per step, each from the state the one before left (Keras' stateful layout).
        """
        return self.stateful and self.return_sequences

    @property
    def num_layers(self) -> int:
        """Number of LSTM layers."""
        return len(self.units)


@dataclass(frozen=True, kw_only=True, slots=True)
class MLPConfig:
    """A plain multilayer network on a flattened window: ``Flatten, Dense(h)..., Dense(out)``.

    Attributes:
        hidden: units of each hidden Dense layer (ReLU).
        timesteps: window length.
        features: inputs per time step.
        outputs: outputs of the final linear layer.
        norm: input normalisation of each window, one of ``NORMS`` (``"none"``: Keras'
            network as it is). Other values need ``timesteps >= 2`` and are applied by
            ``apply``.
    """

    hidden: tuple[int, ...] = (32,)
    timesteps: int = 1
    features: int = 1
    outputs: int = 1
    norm: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _as_int_tuple("hidden", self.hidden))
        for name in ("timesteps", "features", "outputs"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        _check_norm(self)

    @property
    def kind(self) -> str:
        """``"mlp"``."""
        return "mlp"

    @property
    def stateful(self) -> bool:
        """An MLP has no recurrent state."""
        return False

    @property
    def streams(self) -> bool:
        """An MLP reads windows."""
        return False

    @property
    def num_layers(self) -> int:
        """Number of recurrent layers (none)."""
        return 0


ModelConfig = LSTMConfig | MLPConfig
_KINDS: dict[str, type] = {"lstm": LSTMConfig, "mlp": MLPConfig}


def build_network(
    kind: str,
    *,
    units: tuple[int, ...],
    window: int,
    features: int,
    outputs: int,
    norm: str,
    sequences: bool = False,
) -> ModelConfig:
    """The network of a model kind: the one builder of ``Forecaster`` and ``compare``.

    Args:
        kind: ``"mlp"`` (Dense layers on the flattened window), ``"stateless"`` (LSTM layers
            from zero state), ``"stateful"`` or ``"stacked"`` (LSTM layers carrying their
            state across batches).
        units: hidden sizes (the MLP) or units per LSTM layer.
        window: input steps per sample.
        features: inputs per step.
        outputs: outputs of the head.
        norm: the input normalisation (``NORMS``).
        sequences: a stateful network returns an output at every step (trained on streams
            of single readings) instead of after its window's last one.

    Returns:
        An ``MLPConfig`` or an ``LSTMConfig``.
    """
    if kind == "mlp":
        return MLPConfig(
            hidden=units, timesteps=window, features=features, outputs=outputs, norm=norm
        )
    stateful = kind in ("stateful", "stacked")
    return LSTMConfig(
        units=units,
        timesteps=window,
        features=features,
        outputs=outputs,
        stateful=stateful,
        return_sequences=stateful and sequences,
        norm=norm,
    )


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-ready dict with ``kind`` and ``format_version``.

    Args:
        config: a model config.

    Returns:
        A dict that ``config_from_dict`` turns back into an equal config.
    """
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"format_version": FORMAT_VERSION, "kind": config.kind, **fields}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config written by ``config_to_dict``.

    A dict written before a field existed reads that field's default (``norm="none"``).

    Args:
        data: the dict.

    Returns:
        The config.

    Raises:
        ValueError: unknown kind, newer format, or unknown fields.
    """
    data = dict(data)
    version = data.pop("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"model config has format_version {version}, this lstmlab reads up to "
            f"{FORMAT_VERSION}; upgrade lstmlab"
        )
    kind = check_choice(
        "model kind", data.pop("kind", None), sorted(_KINDS), fix="pass a config_to_dict output"
    )
    cls = _KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {kind} config fields {unknown}; known fields: {sorted(known)}")
    return cls(**data)


def config_to_json(config: ModelConfig) -> str:
    """Serialise a config to JSON text (see ``config_to_dict``)."""
    return json.dumps(config_to_dict(config), indent=2, sort_keys=True)


def config_from_json(text: str) -> ModelConfig:
    """Parse JSON text written by ``config_to_json``."""
    return config_from_dict(json.loads(text))


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
    batch_size = check_positive_int("batch_size", batch_size)
    if config.kind != "lstm":
        return ()
    # NumPy zeros: called eagerly (LSTMModel, the Forecaster, every training's set-up),
    # jnp.zeros would compile a program per shape; under an outer jit they are constants.
    return tuple(
        LSTMState(
            h=np.zeros((batch_size, units), np.float32), c=np.zeros((batch_size, units), np.float32)
        )
        for units in config.units
    )


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
    if not indices:
        return state
    return _zero_layers(state, frozenset(indices))


# One compiled call for all layers: an eager reset would dispatch (and at first compile)
# one zeros_like per array, and the seed's script resets after every epoch.
@functools.partial(jax.jit, static_argnums=1)
def _zero_layers(state: ModelState, indices: frozenset[int]) -> ModelState:
    return tuple(
        LSTMState(h=jnp.zeros_like(s.h), c=jnp.zeros_like(s.c)) if i in indices else s
        for i, s in enumerate(state)
    )


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


Params = StackedParams | MLPParams


def _init_shape(config: ModelConfig) -> ModelConfig:
    """``config`` reduced to the fields its initial parameters depend on.

    The compiled initialiser is keyed on this, so that models that differ only in
    ``stateful``, ``timesteps``, ``return_sequences`` or ``norm`` (the stateful and stateless
    models of an experiment) share one program.
    """
    if isinstance(config, LSTMConfig):
        return LSTMConfig(units=config.units, features=config.features, outputs=config.outputs)
    return MLPConfig(
        hidden=config.hidden,
        timesteps=config.timesteps,
        features=config.features,
        outputs=config.outputs,
    )


def _init_eager(config: ModelConfig, key: jax.Array) -> Params:
    if isinstance(config, LSTMConfig):
        return init_stacked(config, key)
    return init_mlp(config, key)


@functools.partial(jax.jit, static_argnums=0)
def _init_from_key(config: ModelConfig, key: jax.Array) -> Params:
    return _init_eager(config, key)


@functools.partial(jax.jit, static_argnums=0)
def _init_from_seed(config: ModelConfig, seed: jax.Array) -> Params:
    return _init_eager(config, jax.random.key(seed))


# Seeds that fit a traced int32 give the key jax.random.key(seed) gives outside jit.
_INT32_SEEDS = range(-(2**31), 2**31)


def init_params(config: ModelConfig, key: jax.Array | int) -> Params:
    """Keras-default initial parameters for ``config``.

    One compiled program per parameter shape (not one per operation, as eager JAX would
    compile the orthogonal initialiser's QR, signs and products): the first model of a
    shape pays one compilation, read back from the persistent compilation cache in later
    processes. The values are those of the eager initialisers (``init_stacked``,
    ``init_mlp``) with the same key, bit for bit.

    Args:
        config: the model.
        key: JAX PRNG key, or an int seed (``jax.random.key(seed)``).

    Returns:
        A parameter pytree (``StackedParams`` or ``MLPParams``).

    Example:
        >>> from lstmlab.core.model import LSTMConfig, init_params
        >>> params = init_params(LSTMConfig(units=(20,)), 0)
        >>> params.lstm[0].kernel.shape, params.head.kernel.shape
        ((1, 80), (20, 1))
    """
    shape = _init_shape(config)
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        if int(key) in _INT32_SEEDS:
            return _init_from_seed(shape, np.int32(key))
        key = jax.random.key(int(key))
    return _init_from_key(shape, key)


def _raw_apply(
    config: ModelConfig, params: Params, state: ModelState, x: jax.Array
) -> tuple[jax.Array, ModelState]:
    if isinstance(config, LSTMConfig):
        return apply_stacked(config, params, state, x)
    return apply_mlp(config, params, state, x)


def apply(
    config: ModelConfig,
    params: Params,
    state: ModelState,
    x: jax.Array,
    norm: jax.Array | None = None,
) -> tuple[jax.Array, ModelState]:
    """Forward pass from ``state``; returns the prediction and the new state.

    With ``config.norm`` other than ``"none"``, the target column ``x[:, :, 0]`` of each
    window is normalised on its own (see ``NORMS``), the raw network (``apply_stacked`` or
    ``apply_mlp``) reads it, and every output is mapped back to the target's units. A
    stateful model carries its state unchanged from window to window.

    Args:
        config: the model (static under ``jit``).
        params: its parameters.
        state: from ``init_state``; ``()`` for an MLP.
        x: ``(batch, time, features)``; with a ``norm``, ``time`` must be
            ``config.timesteps`` (the window the statistics are taken over).
        norm: for ``config.norm == TRACED_NORM`` only, the norm to apply as a traced int32
            code, ``NORMS.index(norm)``: one compiled program then serves every norm, with
            each norm's own arithmetic (a scale of 1 and a shift of 0 change nothing).

    Returns:
        ``(y, new_state)`` with ``y`` of shape ``(batch, outputs)`` (or ``(batch, time,
        outputs)`` for an LSTM with ``return_sequences``).

    Raises:
        ValueError: with a ``norm``, a window of another length than ``config.timesteps``.
    """
    if config.norm == TRACED_NORM:
        if norm is None:
            raise ValueError(
                f"a program model (norm={TRACED_NORM!r}) applies the norm it is given: pass "
                "norm=NORMS.index(the model's norm)"
            )
    elif config.norm == "none":
        return _raw_apply(config, params, state, x)  # the Keras-exact path, untouched
    if x.shape[1] != config.timesteps:
        # Reading a window in pieces would normalise each piece by its own statistics.
        raise ValueError(
            f"a model with norm={config.norm!r} normalises windows of timesteps="
            f"{config.timesteps} readings, got x of shape {x.shape}; pass whole windows, "
            "(batch, timesteps, features)"
        )
    target = x[:, :, 0]  # (batch, time)
    if config.norm == TRACED_NORM:
        # Each norm's shift and scale, picked by the code: the same operations as below
        # (dividing by and multiplying with a scale of 1 are exact).
        code = jnp.asarray(norm, jnp.int32)
        mean = jnp.mean(target, axis=1, keepdims=True)
        spread = jnp.std(target, axis=1, keepdims=True) + NORM_EPS
        shift = jnp.where(
            code == NORMS.index("difference"),
            target[:, -1:],
            jnp.where(code == NORMS.index("window"), mean, jnp.zeros_like(mean)),
        )
        scale = jnp.where(code == NORMS.index("window"), spread, jnp.ones_like(spread))
        x = jnp.concatenate([((target - shift) / scale)[:, :, None], x[:, :, 1:]], axis=2)
        y, new_state = _raw_apply(config, params, state, x)
        return y * scale + shift, new_state
    if config.norm == "difference":
        shift = target[:, -1:]  # (batch, 1): the window's last value
        normed = target - shift
        scale = None
    else:
        shift = jnp.mean(target, axis=1, keepdims=True)  # (batch, 1)
        scale = jnp.std(target, axis=1, keepdims=True) + NORM_EPS  # (batch, 1)
        normed = (target - shift) / scale
    x = jnp.concatenate([normed[:, :, None], x[:, :, 1:]], axis=2)  # (batch, time, features)
    y, new_state = _raw_apply(config, params, state, x)  # (batch, outputs)
    if scale is not None:
        y = y * scale
    return y + shift, new_state


def _dense_list(layer: DenseParams) -> list[np.ndarray]:
    return [np.asarray(layer.kernel), np.asarray(layer.bias)]


def to_keras_weights(config: ModelConfig, params: Params) -> list[np.ndarray]:
    """The weights in the order and shapes of Keras' ``model.get_weights()``.

    For an LSTM stack: ``[kernel, recurrent_kernel, bias]`` per layer, then ``[kernel, bias]``
    of the head; for an MLP: ``[kernel, bias]`` per Dense layer.

    Args:
        config: the model.
        params: its parameters.

    Returns:
        A list of NumPy arrays (copies).
    """
    weights: list[np.ndarray] = []
    if isinstance(config, LSTMConfig):
        for layer in params.lstm:
            weights += [np.array(layer.kernel), np.array(layer.recurrent_kernel)]
            weights.append(np.array(layer.bias))
    else:
        for layer in params.hidden:
            weights += _dense_list(layer)
    return weights + _dense_list(params.head)


def _expected_shapes(config: ModelConfig, params: Params) -> list[tuple[int, ...]]:
    # Shapes only, no device-to-host copy: the parameter pytrees list their leaves in Keras'
    # get_weights() order (per layer kernel, recurrent kernel, bias; then the head).
    return [tuple(w.shape) for w in jax.tree_util.tree_leaves(params)]


def from_keras_weights(config: ModelConfig, weights: list[Any], like: Params) -> Params:
    """Parameters from a list in Keras' ``get_weights()`` order.

    Args:
        config: the model.
        weights: arrays in Keras' order.
        like: parameters of the same model, giving the expected shapes.

    Returns:
        A new parameter pytree (float32).

    Raises:
        ValueError: wrong count, shape, or non-finite values.
    """
    expected = _expected_shapes(config, like)
    if len(weights) != len(expected):
        raise ValueError(
            f"expected {len(expected)} weight arrays in Keras' get_weights() order with shapes "
            f"{expected}, got {len(weights)}"
        )
    arrays = []
    for index, (array, shape) in enumerate(zip(weights, expected, strict=True)):
        array = np.asarray(array, dtype=np.float32)
        if array.shape != shape:
            raise ValueError(
                f"weight {index} has shape {array.shape}, expected {shape}; the order is "
                f"Keras' get_weights() order: {expected}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"weight {index} holds NaN or infinite values; pass finite weights")
        arrays.append(jnp.asarray(array))
    it = iter(arrays)
    if isinstance(config, LSTMConfig):
        layers = tuple(LSTMParams(next(it), next(it), next(it)) for _ in config.units)
        return StackedParams(lstm=layers, head=DenseParams(next(it), next(it)))
    hidden = tuple(DenseParams(next(it), next(it)) for _ in config.hidden)
    return MLPParams(hidden=hidden, head=DenseParams(next(it), next(it)))
