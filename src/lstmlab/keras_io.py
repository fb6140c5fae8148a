"""Keras model exchange: a Keras 3 ``.keras`` file to an lstmlab model folder, and back.

What is imported (anything else is a ``ValueError`` that names the layers and lists this):

- LSTM stacks: ``LSTM`` layers (``activation="tanh"``, ``recurrent_activation="sigmoid"``,
  not ``go_backwards``, not ``return_state``, float32), all stateful or all stateless, then
  at most one linear ``Dense`` head (or ``TimeDistributed(Dense)`` after an LSTM that returns
  sequences) -> ``LSTMConfig``. The last LSTM's ``return_sequences`` becomes the config's.
  A stack without a head gets an identity head (``kernel = I``, ``bias = 0``: the same
  numbers), so its export has one ``Dense`` layer more.
- MLPs: ``Flatten``, ``Dense(activation="relu")``..., a linear ``Dense`` -> ``MLPConfig``.
- ``InputLayer`` is read for the shapes. ``Dropout`` is accepted anywhere and dropped: it is
  the identity at inference, and so are the LSTM's ``dropout``/``recurrent_dropout``.
  ``use_bias=False`` imports as a zero bias (the same numbers).

The carried state: a stateful Keras layer keeps its state in ``layer.states`` variables,
which ``model.save`` does not write. ``export_keras`` therefore adds the state to the
``.keras`` archive as an extra member (``lstmlab_states.npz``, ignored by Keras'
``load_model``); ``load_keras`` loads a ``.keras`` file and puts that state back into the
layers, and ``import_keras`` reads it too (else it takes the state the layers hold). In the
model folder, batch row ``i`` of a stateful model's state is the series ``"default"``
(batch size 1) or ``"default.{i}"`` (the per-series state of ``lstmlab.forecaster``, kept
in the folder's state store, ``lstmlab.live.state_store``), so ``lstmlab observe``, the
service and ``Forecaster.observe`` continue it. Exporting a folder puts each of its series
into one batch row of the stateful Keras model, in the folder's order. A stateful model that
returns its last step reads overlapping windows of ``timesteps`` readings, one per reading
(Keras' stateful layout, as ``Forecaster.fit`` trains it); the Keras state holds no readings,
so an imported series forecasts once ``timesteps`` readings have come, the first window read
from the imported state, and an export carries the state after each series' last window
(feed Keras the window that ends at each new reading).

Keras is an optional extra (``pip install 'lstmlab[keras]'``); it is imported on first use
with ``KERAS_BACKEND=jax`` unless another backend was chosen. The network only is exchanged:
a folder's scaler and data recipe are not part of the Keras model.
"""

import contextlib
import io
import os
import secrets
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    Params,
    apply,
    from_keras_weights,
    init_params,
    init_state,
    to_keras_weights,
)
from lstmlab.live.state_store import SeriesStore
from lstmlab.model_folder import SavedModel, load_model, save_model
from lstmlab.pipeline import Recipe
from lstmlab.states import SeriesState, decode_states, encode_states

__all__ = [
    "DEFAULT_SERIES",
    "KERAS_INSTALL",
    "STATES_MEMBER",
    "SUPPORTED",
    "export_keras",
    "folder_state",
    "from_keras",
    "import_keras",
    "keras_context",
    "keras_module",
    "keras_state",
    "load_keras",
    "save_keras",
    "series_ids",
    "set_keras_state",
    "to_keras",
]

KERAS_INSTALL = "pip install 'lstmlab[keras]'"
STATES_MEMBER = "lstmlab_states.npz"
DEFAULT_SERIES = "default"
SUPPORTED = (
    "InputLayer; LSTM (tanh, sigmoid, not go_backwards) layers, all stateful or all "
    "stateless, then at most one Dense head with linear activation (or TimeDistributed(Dense) "
    "on sequences); or an MLP: Flatten, Dense(relu)..., Dense(linear); Dropout anywhere "
    "(identity at inference)"
)
_VERIFY_TOLERANCE = 1e-4  # a structural mismatch is far larger; float32 rounding far smaller


def keras_module() -> Any:
    """Keras 3 (on the JAX backend unless ``KERAS_BACKEND`` says otherwise).

    Returns:
        The ``keras`` module.

    Raises:
        ValueError: Keras is not installed, or is not Keras 3.
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        raise ValueError(
            f"Keras model exchange needs Keras 3, which is not installed; install it with "
            f"{KERAS_INSTALL}"
        ) from None
    if not keras.version().startswith("3."):
        raise ValueError(
            f"Keras model exchange needs Keras 3, found Keras {keras.version()}; install it with "
            f"{KERAS_INSTALL}"
        )
    return keras


def keras_context() -> contextlib.AbstractContextManager:
    """Allow rank promotion inside Keras' own code (it broadcasts ``(20, 5) * (5,)``)."""
    return jax.numpy_rank_promotion("allow")


def series_ids(batch_size: int) -> list[str]:
    """The series names of a stateful Keras model's batch rows.

    Args:
        batch_size: rows of the Keras state.

    Returns:
        ``["default"]`` for one row, else ``["default.0", "default.1", ...]``.

    Example:
        >>> series_ids(1), series_ids(3)
        (['default'], ['default.0', 'default.1', 'default.2'])
    """
    if batch_size == 1:
        return [DEFAULT_SERIES]
    return [f"{DEFAULT_SERIES}.{row}" for row in range(batch_size)]


# --------------------------------------------------------------------------- Keras -> lstmlab


def _describe(layer: Any) -> str:
    return f"{layer.name!r} ({type(layer).__name__})"


def _activation(layer: Any) -> Any:
    return layer.get_config().get("activation")


def _check_dense(layer: Any, dense: Any, activation: str, role: str) -> None:
    if _activation(dense) != activation:
        raise ValueError(
            f"layer {_describe(layer)} has activation {_activation(dense)!r}; lstmlab's {role} "
            f"uses {activation!r}; supported: {SUPPORTED}"
        )


def _check_lstm(layer: Any) -> None:
    config = layer.get_config()
    expected = {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "go_backwards": False,
        "return_state": False,
    }
    for option, value in expected.items():
        if config.get(option) != value:
            raise ValueError(
                f"layer {_describe(layer)} has {option}={config.get(option)!r}; lstmlab's LSTM "
                f"needs {option}={value!r}; supported: {SUPPORTED}"
            )


def _layer_weights(layer: Any, with_bias: bool) -> list[np.ndarray]:
    """``layer.get_weights()`` with a zero bias added where ``use_bias=False``."""
    weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
    if not with_bias:
        return weights
    has_bias = layer.get_config().get("use_bias", True)
    if not has_bias:
        width = weights[0].shape[-1]  # kernel (in, units) or (in, 4 * units)
        weights.append(np.zeros((width,), np.float32))
    return weights


def _inner(layer: Any, keras: Any) -> Any:
    """The Dense inside ``TimeDistributed(Dense)``, or the layer itself."""
    if type(layer) is keras.layers.TimeDistributed:
        return layer.layer
    return layer


def _classify(model: Any, keras: Any) -> list[Any]:
    """The layers that compute (no InputLayer, no Dropout); unsupported ones all named."""
    allowed = (
        keras.layers.InputLayer,
        keras.layers.LSTM,
        keras.layers.Dense,
        keras.layers.Dropout,
        keras.layers.Flatten,
    )
    unsupported = []
    for layer in model.layers:
        if type(layer) in allowed:
            continue
        wrapped = getattr(layer, "layer", None)
        if type(layer) is keras.layers.TimeDistributed and type(wrapped) is keras.layers.Dense:
            continue
        unsupported.append(layer)
    if unsupported:
        names = ", ".join(_describe(layer) for layer in unsupported)
        raise ValueError(
            f"cannot import the Keras model {model.name!r}: unsupported layer(s) {names}; "
            f"supported: {SUPPORTED}"
        )
    for layer in model.layers:
        if getattr(layer, "compute_dtype", "float32") != "float32":
            raise ValueError(
                f"layer {_describe(layer)} computes in {layer.compute_dtype}; lstmlab computes "
                "in float32; rebuild the model with the float32 dtype policy"
            )
    skipped = (keras.layers.InputLayer, keras.layers.Dropout)  # Dropout: identity at inference
    return [layer for layer in model.layers if type(layer) not in skipped]


def _input_shape(model: Any) -> tuple:
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"the Keras model {model.name!r} is not built, so its input shape is unknown; "
            "build it with keras.Input(shape=(timesteps, features)) as its first layer"
        )
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"the Keras model {model.name!r} has {len(inputs)} inputs and {len(model.outputs)} "
            f"outputs; lstmlab imports models with one input and one output; supported: "
            f"{SUPPORTED}"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 3 or shape[2] is None:
        raise ValueError(
            f"the Keras model {model.name!r} reads inputs of shape {shape}; lstmlab models read "
            "(batch, timesteps, features) with a known features size; build it with "
            "keras.Input(shape=(timesteps, features))"
        )
    return shape


def _timesteps(model: Any, shape: tuple, timesteps: int | None) -> int:
    if shape[1] is None:
        return 1 if timesteps is None else timesteps
    if timesteps is not None and timesteps != shape[1]:
        raise ValueError(
            f"timesteps={timesteps} was given, but the Keras model {model.name!r} reads "
            f"{shape[1]} time steps; drop --timesteps or pass {shape[1]}"
        )
    return int(shape[1])


def _lstm_model(
    model: Any, layers: list[Any], shape: tuple, timesteps: int, keras: Any
) -> tuple[LSTMConfig, list[np.ndarray]]:
    lstms = [layer for layer in layers if type(layer) is keras.layers.LSTM]
    count = len(lstms)
    if layers[:count] != lstms:
        first = next(layer for layer in layers if type(layer) is not keras.layers.LSTM)
        raise ValueError(
            f"layer {_describe(first)} comes before an LSTM layer; lstmlab models put all "
            f"LSTM layers first; supported: {SUPPORTED}"
        )
    rest = layers[count:]
    if len(rest) > 1 or any(type(_inner(layer, keras)) is not keras.layers.Dense for layer in rest):
        extra = rest[1] if len(rest) > 1 else rest[0]
        raise ValueError(
            f"layer {_describe(extra)} follows the LSTM layers; lstmlab models end with at "
            f"most one Dense head after them; supported: {SUPPORTED}"
        )
    for layer in lstms:
        _check_lstm(layer)
    stateful = {bool(layer.stateful) for layer in lstms}
    if len(stateful) > 1:
        names = ", ".join(_describe(layer) for layer in lstms if not layer.stateful)
        raise ValueError(
            f"the Keras model {model.name!r} mixes stateful and stateless LSTM layers "
            f"(stateless: {names}); make all LSTM layers stateful or none"
        )
    return_sequences = bool(lstms[-1].return_sequences)
    weights: list[np.ndarray] = []
    for layer in lstms:
        weights += _layer_weights(layer, with_bias=True)
    units = tuple(int(layer.units) for layer in lstms)
    if rest:
        head = rest[0]
        if type(head) is keras.layers.TimeDistributed and not return_sequences:
            raise ValueError(
                f"layer {_describe(head)} needs sequences, but the last LSTM layer returns only "
                "its last step; set return_sequences=True on it or use a plain Dense head"
            )
        _check_dense(head, _inner(head, keras), "linear", "Dense head")
        head_weights = _layer_weights(_inner(head, keras), with_bias=True)
    else:
        # No head: an identity head gives the same numbers (x @ I + 0 is exact in float32).
        head_weights = [np.eye(units[-1], dtype=np.float32), np.zeros(units[-1], np.float32)]
    config = LSTMConfig(
        units=units,
        timesteps=timesteps,
        features=int(shape[2]),
        outputs=int(head_weights[0].shape[1]),
        stateful=stateful.pop(),
        return_sequences=return_sequences,
    )
    return config, weights + head_weights


def _mlp_model(
    model: Any, layers: list[Any], shape: tuple, timesteps: int, keras: Any
) -> tuple[MLPConfig, list[np.ndarray]]:
    if not layers or type(layers[0]) is not keras.layers.Flatten:
        first = _describe(layers[0]) if layers else "(none)"
        raise ValueError(
            f"the Keras model {model.name!r} has no LSTM layer and does not start with Flatten "
            f"(first layer: {first}); supported: {SUPPORTED}"
        )
    denses = layers[1:]
    others = [layer for layer in denses if type(layer) is not keras.layers.Dense]
    if others or not denses:
        what = _describe(others[0]) if others else "nothing"
        raise ValueError(
            f"after Flatten an MLP has only Dense layers, found {what}; supported: {SUPPORTED}"
        )
    if shape[1] is None:
        raise ValueError(
            f"the Keras MLP {model.name!r} reads a variable number of time steps {shape}; "
            "Flatten needs a fixed one; build it with keras.Input(shape=(timesteps, features))"
        )
    for layer in denses[:-1]:
        _check_dense(layer, layer, "relu", "MLP hidden layer")
    _check_dense(denses[-1], denses[-1], "linear", "MLP output layer")
    weights: list[np.ndarray] = []
    for layer in denses:
        weights += _layer_weights(layer, with_bias=True)
    config = MLPConfig(
        hidden=tuple(int(layer.units) for layer in denses[:-1]),
        timesteps=timesteps,
        features=int(shape[2]),
        outputs=int(denses[-1].units),
    )
    return config, weights


def _lstm_layers(model: Any, keras: Any) -> list[Any]:
    return [layer for layer in model.layers if type(layer) is keras.layers.LSTM]


def keras_state(model: Any) -> list[LSTMState]:
    """The carried ``(h, c)`` of every stateful LSTM layer of a Keras model.

    Args:
        model: a built Keras model.

    Returns:
        One ``LSTMState`` of ``(batch, units)`` float32 NumPy arrays per stateful LSTM layer;
        ``[]`` for a stateless model.
    """
    keras = keras_module()
    out = []
    for layer in _lstm_layers(model, keras):
        if layer.stateful and layer.states is not None:
            h, c = (np.array(keras.ops.convert_to_numpy(s), np.float32) for s in layer.states)
            out.append(LSTMState(h=h, c=c))
    return out


def set_keras_state(model: Any, state: Sequence[LSTMState]) -> None:
    """Put ``(h, c)`` into the stateful LSTM layers of a Keras model (``layer.states``).

    Args:
        model: a built stateful Keras model.
        state: one ``LSTMState`` per LSTM layer, ``(batch, units)`` each.

    Raises:
        ValueError: the count or shapes do not match the model's layers.
    """
    keras = keras_module()
    layers = [layer for layer in _lstm_layers(model, keras) if layer.stateful]
    if len(layers) != len(state):
        raise ValueError(
            f"the Keras model has {len(layers)} stateful LSTM layer(s), got {len(state)} "
            "states; pass one (h, c) per layer"
        )
    with keras_context():
        for layer, layer_state in zip(layers, state, strict=True):
            for variable, value in zip(layer.states, (layer_state.h, layer_state.c), strict=True):
                value = np.asarray(value, np.float32)
                if tuple(variable.shape) != value.shape:
                    raise ValueError(
                        f"layer {_describe(layer)} holds a state of shape "
                        f"{tuple(variable.shape)}, got {value.shape}; pass (batch, units) "
                        "with the model's batch size"
                    )
                variable.assign(value)


def _probe(config: ModelConfig, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = config.timesteps if config.kind == "mlp" else max(config.timesteps, 2)
    return rng.normal(size=(rows, steps, config.features)).astype(np.float32)


def _verify(model: Any, config: ModelConfig, params: Params, state: list[LSTMState]) -> None:
    """Check that lstmlab predicts what Keras predicts on a random input (state untouched)."""
    keras = keras_module()
    rows = state[0].h.shape[0] if state else 2
    x = _probe(config, rows, seed=7)
    start = tuple(state) if state else init_state(config, rows)
    ours, _ = apply(config, params, start, x)
    with keras_context():
        theirs = np.asarray(keras.ops.convert_to_numpy(model(x)))
    if state:
        set_keras_state(model, state)  # the probe call advanced Keras' state: undo it
    ours = np.asarray(ours)
    if ours.shape != theirs.shape or not np.allclose(
        ours, theirs, rtol=_VERIFY_TOLERANCE, atol=_VERIFY_TOLERANCE
    ):
        gap = float(np.max(np.abs(ours - theirs))) if ours.shape == theirs.shape else np.inf
        raise ValueError(
            f"the imported model does not reproduce the Keras model {model.name!r}: outputs "
            f"{ours.shape} versus Keras' {theirs.shape}, largest difference {gap:.3g}; the "
            f"model's layers are not one plain chain lstmlab can represent; supported: "
            f"{SUPPORTED}"
        )


def _zero_params(config: ModelConfig) -> Params:
    """Zero parameters of the right shapes (traced, not initialised: no compile)."""
    shapes = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)


def from_keras(model: Any, *, timesteps: int | None = None, verify: bool = True) -> SavedModel:
    """An lstmlab model (config, parameters, carried state) from a Keras model object.

    Args:
        model: a built Keras 3 ``Sequential`` or functional model (see the module docstring).
        timesteps: time steps for a model whose input has a variable time axis (``None``
            there means 1); must agree with a fixed one.
        verify: check on a random input that lstmlab's predictions match Keras' (the Keras
            state is restored afterwards).

    Returns:
        A ``SavedModel``: stateful models carry each batch row's state as a series
        (``series_ids``); the recipe names the kind and window; no scaler.

    Raises:
        ValueError: unsupported layers (named, with what is supported), unsupported options,
            or a structure lstmlab cannot represent.
    """
    keras = keras_module()
    layers = _classify(model, keras)
    shape = _input_shape(model)
    steps = _timesteps(model, shape, timesteps)
    if any(type(layer) is keras.layers.LSTM for layer in layers):
        config, weights = _lstm_model(model, layers, shape, steps, keras)
    else:
        config, weights = _mlp_model(model, layers, shape, steps, keras)
    params = from_keras_weights(config, weights, like=_zero_params(config))
    state = keras_state(model) if config.stateful else []
    if config.stateful and len(state) != config.num_layers:  # layers without state variables
        zero = init_state(config, int(shape[0]))
        state = [LSTMState(h=np.asarray(s.h), c=np.asarray(s.c)) for s in zero]
    if verify:
        _verify(model, config, params, state)
    if config.kind == "mlp":
        kind = "mlp"
    elif not config.stateful:
        kind = "stateless"
    else:
        kind = "stacked" if config.num_layers > 1 else "stateful"
    columns = (
        ("value",) if config.features == 1 else tuple(f"value_{i}" for i in range(config.features))
    )
    recipe = Recipe(kind=kind, window=config.timesteps, columns=columns)
    rows = state[0].h.shape[0] if state else 0
    series = {
        name: SeriesState(
            rnn=tuple(LSTMState(h=s.h[row : row + 1], c=s.c[row : row + 1]) for s in state),
            recent=np.zeros((0, config.features), np.float32),
            prediction=None,
            last_time=None,
            seen=0,
        )
        for row, name in enumerate(series_ids(rows) if rows else [])
    }
    arrays, meta = encode_states(config, recipe, series)
    return SavedModel(
        config=config,
        params=params,
        recipe=recipe.to_dict(),
        scaler=None,
        metrics={"source": {"format": "keras", "model": model.name, "keras": keras.version()}},
        states=arrays,
        states_meta=meta,
    )


def _read_states_member(path: Path) -> dict[str, np.ndarray] | None:
    with zipfile.ZipFile(path) as archive:
        if STATES_MEMBER not in archive.namelist():
            return None
        data = archive.read(STATES_MEMBER)
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def load_keras(path: str | os.PathLike[str]) -> Any:
    """``keras.saving.load_model`` plus the carried state ``export_keras`` stored.

    Args:
        path: a ``.keras`` file.

    Returns:
        The Keras model; its stateful LSTM layers hold the saved state (Keras' own loader
        leaves them at zero).

    Raises:
        ValueError: no such file, not a ``.keras`` archive, or a stored state that does not
            fit the model.
    """
    keras = keras_module()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no Keras model file at {path}; pass a .keras file")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a Keras 3 .keras archive; save the model with model.save('MODEL.keras')"
        )
    with keras_context():
        model = keras.saving.load_model(path, compile=False)
    stored = _read_states_member(path)
    if stored is not None:
        layers = [layer for layer in _lstm_layers(model, keras) if layer.stateful]
        try:
            state = [
                LSTMState(h=stored[f"{layer.name}.h"], c=stored[f"{layer.name}.c"])
                for layer in layers
            ]
        except KeyError as missing:
            raise ValueError(
                f"{path}: the stored state {STATES_MEMBER} lacks {missing}; the archive was "
                "altered, export the model again"
            ) from None
        set_keras_state(model, state)
    return model


def import_keras(
    path: str | os.PathLike[str],
    save: str | os.PathLike[str],
    *,
    timesteps: int | None = None,
) -> SavedModel:
    """``lstmlab import-keras MODEL.keras --out DIR``: a ``.keras`` file to a model folder.

    Args:
        path: the ``.keras`` file.
        save: the model folder to write (atomically, with ``lstmlab.model_folder.save_model``).
        timesteps: see ``from_keras``.

    Returns:
        The saved model.

    Raises:
        ValueError: see ``load_keras`` and ``from_keras``.
    """
    model = load_keras(path)
    saved = from_keras(model, timesteps=timesteps)
    save_model(save, saved, opener=SeriesStore)
    return saved


# --------------------------------------------------------------------------- lstmlab -> Keras


def folder_state(
    saved: SavedModel, series: Sequence[str] | None = None, batch_size: int | None = None
) -> list[LSTMState]:
    """The batch state of a stateful model: one row per series, in order.

    Args:
        saved: a loaded model folder.
        series: the series whose states fill the batch rows; ``None`` for all of the
            folder's, in its order.
        batch_size: rows of zero state when no series is chosen and the folder has none
            (default 1).

    Returns:
        One ``LSTMState`` of ``(rows, units)`` float32 per LSTM layer; ``[]`` for a model
        without carried state.

    Raises:
        ValueError: an unknown series, or ``batch_size`` that disagrees with the series.
    """
    config = saved.config
    if not config.stateful:
        return []
    states = (
        decode_states(config, Recipe.from_dict(saved.recipe), saved.states, saved.states_meta)
        if saved.states_meta.get("series")
        else {}
    )
    chosen = list(states) if series is None else list(series)
    unknown = [name for name in chosen if name not in states]
    if unknown:
        raise ValueError(f"the model folder has no series {unknown}; its series are {list(states)}")
    if chosen:
        if batch_size is not None and batch_size != len(chosen):
            raise ValueError(
                f"batch_size={batch_size} disagrees with the {len(chosen)} series {chosen} whose "
                "states fill the batch rows; drop --batch-size or choose that many --series"
            )
        return [
            LSTMState(
                h=np.concatenate([states[name].rnn[layer].h for name in chosen]),
                c=np.concatenate([states[name].rnn[layer].c for name in chosen]),
            )
            for layer in range(config.num_layers)
        ]
    zero = init_state(config, batch_size or 1)
    return [LSTMState(h=np.asarray(s.h), c=np.asarray(s.c)) for s in zero]


def to_keras(saved: SavedModel, state: Sequence[LSTMState] = ()) -> Any:
    """The Keras ``Sequential`` of an lstmlab model, with its weights and carried state.

    Args:
        saved: the model (config and parameters).
        state: for a stateful model, one ``LSTMState`` per layer, ``(batch, units)``; the
            Keras model is built for that batch size. Ignored for other models.

    Returns:
        A built Keras model that predicts what ``lstmlab.models.apply`` predicts.

    Raises:
        ValueError: a stateful model without a state; a model with an input normalisation
            (``norm`` other than ``"none"``), which a Keras ``Sequential`` does not hold.
    """
    config = saved.config
    if config.norm != "none":
        raise ValueError(
            f"the model normalises each input window (norm={config.norm!r}), which a Keras "
            "Sequential cannot represent: its exported network would read raw windows; export "
            "a model trained with norm='none'"
        )
    keras = keras_module()
    if isinstance(config, LSTMConfig):
        if config.stateful:
            if not state:
                raise ValueError(
                    "a stateful model needs its batch state to build the Keras model; pass "
                    "folder_state(saved)"
                )
            rows = int(np.asarray(state[0].h).shape[0])
            layers: list[Any] = [keras.Input(batch_shape=(rows, config.timesteps, config.features))]
        else:
            layers = [keras.Input(shape=(config.timesteps, config.features))]
        for index, units in enumerate(config.units):
            last = index == config.num_layers - 1
            layers.append(
                keras.layers.LSTM(
                    units,
                    stateful=config.stateful,
                    return_sequences=config.return_sequences if last else True,
                    name=f"lstm_{index}",
                    # zero initializers: the weights are overwritten below, and Keras'
                    # orthogonal initializer compiles once per shape (seconds)
                    kernel_initializer="zeros",
                    recurrent_initializer="zeros",
                )
            )
        layers.append(keras.layers.Dense(config.outputs, name="head", kernel_initializer="zeros"))
    else:
        layers = [keras.Input(shape=(config.timesteps, config.features)), keras.layers.Flatten()]
        layers += [
            keras.layers.Dense(
                size, activation="relu", name=f"dense_{index}", kernel_initializer="zeros"
            )
            for index, size in enumerate(config.hidden)
        ]
        layers.append(keras.layers.Dense(config.outputs, name="head", kernel_initializer="zeros"))
    with keras_context():
        model = keras.Sequential(layers, name="lstmlab")
        model.set_weights(to_keras_weights(config, saved.params))
    if config.stateful:
        set_keras_state(model, state)
    return model


def _check_suffix(out: Path) -> None:
    if out.suffix != ".keras":
        raise ValueError(
            f"the Keras file must end in .keras (Keras 3's format), got {out}; pass e.g. "
            f"--out {out.with_suffix('.keras')}"
        )


@contextlib.contextmanager
def _temporary_path(out: Path) -> Iterator[Path]:
    temp = out.with_name(f".tmp-{out.stem}-{os.getpid()}-{secrets.token_hex(4)}.keras")
    try:
        yield temp
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def save_keras(model: Any, out: str | os.PathLike[str]) -> Path:
    """``model.save(out)`` plus the carried state (``STATES_MEMBER``), replacing atomically.

    Args:
        model: a built Keras model.
        out: the ``.keras`` file.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ValueError: ``out`` does not end in ``.keras``.
    """
    keras = keras_module()
    out = Path(out)
    _check_suffix(out)
    state = keras_state(model)
    names = [layer.name for layer in _lstm_layers(model, keras) if layer.stateful]
    with _temporary_path(out) as temp:
        with keras_context():
            model.save(temp)
        if state:
            buffer = io.BytesIO()
            arrays = {}
            for name, layer_state in zip(names, state, strict=True):
                arrays[f"{name}.h"], arrays[f"{name}.c"] = layer_state.h, layer_state.c
            np.savez(buffer, **arrays)
            with zipfile.ZipFile(temp, "a") as archive:
                archive.writestr(STATES_MEMBER, buffer.getvalue())
        os.replace(temp, out)
    return out


def export_keras(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    series: Sequence[str] | None = None,
    batch_size: int | None = None,
) -> Any:
    """``lstmlab export-keras DIR --out MODEL.keras``: a model folder to a ``.keras`` file.

    Args:
        folder: the model folder.
        out: the ``.keras`` file to write.
        series: see ``folder_state``.
        batch_size: see ``folder_state``.

    Returns:
        The Keras model that was saved.

    Raises:
        ValueError: see ``folder_state`` and ``save_keras``; an unreadable folder
            (``ModelFolderError``).
    """
    _check_suffix(Path(out))  # before any work
    saved = load_model(folder, states=SeriesStore)
    model = to_keras(saved, folder_state(saved, series, batch_size))
    save_keras(model, out)
    return model
