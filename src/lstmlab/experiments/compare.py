"""The seeds' comparison, on any series: baselines, a plain multilayer network and three LSTMs.

Every model sees the same chronological split (first ``split`` of the series to train, the
rest to test), the same scaling (fitted on the training part only, so the test part never
leaks into it) and is scored on the same forecast origins of the test part, in the original
units. The models:

* ``persistence``: the last observed value, for every step ahead;
* ``seasonal_naive``: the value one season earlier (only when a season length is given);
* ``mlp``: a plain multilayer network on a flattened window;
* ``stateless``: an LSTM on windows, state zeroed for every sample (shuffled batches);
* ``stateful``: a one-layer stateful LSTM trained on the stream layout (row ``i`` of batch
  ``k + 1`` continues row ``i`` of batch ``k``), state reset after every epoch;
* ``stacked``: a two-layer stacked stateful LSTM, trained the same way.

Each neural model trains several seeds at once with the one training driver
(``lstmlab.core.train.fit``: the parameters of all seeds are stacked and one ``jax.vmap`` of
the compiled epoch trains them together) and forecasts with the one rollout
(``lstmlab.core.rollout``). The default models are ``lstmlab.forecaster.ForecasterConfig``'s.
Each model is one task of an executor (``lstmlab.runtime``): in this process, or one Ray task
per model on a cluster, with the same numbers either way.

Evaluation is one step ahead from each origin with the real previous values (the published
protocol), or ``horizon`` steps ahead: recursively (each prediction is fed back as the next
input; a stateful model carries its state along) or directly (a model with ``horizon``
outputs). A stateful model forecasts from the state it reaches by reading the whole series in
order, from the start up to the origin, with the observed values (a warm start: the state at
the first test origin is the state at the end of the training series).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from lstmlab.checks import (
    check_choice,
    check_non_negative_int,
    check_positive_int,
    check_positive_number,
)
from lstmlab.core.model import LSTMConfig, MLPConfig, ModelConfig, Params, init_params, init_state
from lstmlab.core.rollout import rollout, window_states
from lstmlab.core.train import TrainConfig, TrainLog, TrainState, fit, init_train_states
from lstmlab.data.layouts import make_sample_batches, make_stream_batches
from lstmlab.data.loading import (
    LoadConfig,
    LoadedSeries,
    load_csv,
    load_household_days,
)
from lstmlab.data.scaling import Scaler, fit_scaler
from lstmlab.forecaster import MODEL_KINDS, ForecasterConfig
from lstmlab.runtime import Executor, LocalExecutor, epoch_progress

__all__ = [
    "ANCHORS",
    "BASELINES",
    "PRESETS",
    "Anchor",
    "CompareConfig",
    "CompareResult",
    "ModelOutcome",
    "ModelSpec",
    "PreparedData",
    "forecast_metrics",
    "load_preset_series",
    "override_models",
    "prepare_data",
    "run",
]

BASELINES = ("persistence", "seasonal_naive")
_STRATEGIES = ("recursive", "direct")
_SCALERS = ("minmax", "standard")
_LABELS = {
    "persistence": "persistence (last value)",
    "seasonal_naive": "seasonal naive",
}


_DEFAULTS = ForecasterConfig()
_MODEL_LABELS = {
    "mlp": "plain multilayer network",
    "stateless": "stateless LSTM",
    "stateful": "stateful LSTM",
    "stacked": "stacked stateful LSTM",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """One neural model of the comparison and how it is trained.

    The defaults are ``lstmlab.forecaster.ForecasterConfig``'s, kind by kind, so
    ``ModelSpec(model="stateful")`` is the model ``Forecaster(model="stateful")`` trains.

    Attributes:
        model: the kind, one of ``lstmlab.forecaster.MODEL_KINDS``: ``"stateful"`` (one LSTM
            layer carrying its state along the stream layout, reset every epoch),
            ``"stacked"`` (several stateful LSTM layers), ``"stateless"`` (an LSTM reading
            each window from zero state) or ``"mlp"`` (Dense layers with ReLU on the
            flattened window).
        name: short name used in files and tables; ``""`` for the kind.
        units: units of each LSTM layer (hidden Dense layers for the MLP); ``()`` for the
            kind's default (``ForecasterConfig.default_units``).
        window: input steps per sample.
        epochs: training epochs.
        batch_size: samples per batch for a window model; streams per series for a stateful
            one (the batch then holds ``batch_size * series`` rows); ``None`` for the kind's
            default (``ForecasterConfig.default_batch_size``).
        shuffle: shuffle samples across batches every epoch (window models only; Keras'
            ``fit`` default); ``None``: shuffled for a window model, never for a stateful one.
        learning_rate: Adam step size (Keras' Adam defaults otherwise).
        label: human name for reports; ``""`` for the kind's.
    """

    model: str
    name: str = ""
    units: tuple[int, ...] = ()
    window: int = _DEFAULTS.window
    epochs: int = _DEFAULTS.epochs
    batch_size: int | None = None
    shuffle: bool | None = None
    learning_rate: float = _DEFAULTS.learning_rate
    label: str = ""

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODEL_KINDS)
        defaults = dataclasses.replace(_DEFAULTS, model=self.model)
        if not self.name:
            object.__setattr__(self, "name", self.model)
        if not isinstance(self.name, str) or self.name in BASELINES:
            raise ValueError(
                f"model name must be a non-empty string other than {BASELINES}, got "
                f"{self.name!r}; pass e.g. name='stateful'"
            )
        units = tuple(self.units) or defaults.default_units
        for index, size in enumerate(units):
            check_positive_int(f"units[{index}]", size)
        object.__setattr__(self, "units", units)
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", defaults.default_batch_size)
        check_positive_int("batch_size", self.batch_size)
        if self.shuffle is None:
            object.__setattr__(self, "shuffle", not self.stateful)
        if self.stateful and self.shuffle:
            raise ValueError(
                f"model {self.name!r}: stateful training needs shuffle=False, got shuffle=True; "
                "pass shuffle=False (shuffling would break the streams)"
            )
        check_positive_int("window", self.window)
        check_non_negative_int("epochs", self.epochs)
        check_positive_number("learning_rate", self.learning_rate, fix="pass e.g. 3e-3")
        if not self.label:
            object.__setattr__(self, "label", _MODEL_LABELS[self.model])

    @property
    def stateful(self) -> bool:
        """Whether the model carries its state across batches (``stateful``, ``stacked``)."""
        return self.model in ("stateful", "stacked")

    def model_config(self, features: int, outputs: int) -> ModelConfig:
        """The model for ``features`` inputs per step and ``outputs`` outputs."""
        if self.model == "mlp":
            return MLPConfig(
                hidden=self.units, timesteps=self.window, features=features, outputs=outputs
            )
        return LSTMConfig(
            units=self.units,
            timesteps=self.window,
            features=features,
            outputs=outputs,
            stateful=self.stateful,
        )

    def describe(self) -> str:
        """One line: architecture and training."""
        if self.model == "mlp":
            arch = "Dense(" + ", ".join(f"{u} relu" for u in self.units) + ") + Dense head"
        else:
            arch = " + ".join(f"LSTM({u})" for u in self.units) + " + Dense head"
            arch += ", stateful" if self.stateful else ", stateless"
        batch = (
            f"{self.batch_size} stream(s) per series"
            if self.stateful
            else f"batch {self.batch_size}" + (", shuffled" if self.shuffle else "")
        )
        return (
            f"{arch}; window {self.window}; {self.epochs} epochs; {batch}; "
            f"Adam lr {self.learning_rate:g}"
        )


DEFAULT_WINDOW = _DEFAULTS.window
# ForecasterConfig's model of every kind: the comparison's defaults are the Forecaster's.
# The model order is the report's order and enters the seeding (``_initial_states``).
DEFAULT_MODELS = tuple(
    ModelSpec(model=kind) for kind in ("mlp", "stateless", "stateful", "stacked")
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CompareConfig:
    """What to compare and how.

    Attributes:
        models: the neural models (the baselines are always added).
        seeds: seeds per neural model, trained together as one vectorised program.
        seed: first seed; model ``m`` of seed ``s`` is initialised from ``seed + s``, folded
            with ``m``.
        split: fraction of the series used for training (the first part), ``0 < split < 1``;
            the training part has ``int(len * split)`` steps (the published protocol).
        test_size: steps of the test part, instead of ``split``.
        season: season length in steps; adds the seasonal-naive baseline.
        horizon: steps forecast from each origin.
        strategy: ``"recursive"`` (one-step models, predictions fed back) or ``"direct"``
            (models with ``horizon`` outputs).
        origin_stride: steps between forecast origins in the test part (``horizon`` with
            ``origin_stride == horizon`` tiles the test part, e.g. one forecast per week).
        classic_windows: cut training and test windows each inside its own part and drop the
            last one (``create_dataset`` of the published scripts): training targets end
            one step before the end of the training part, test origins start ``window``
            steps into the test part and end one step early.
        scaler: ``"minmax"`` (onto [0, 1] over the training part) or ``"standard"``.
        target: what the neural models learn: ``"level"`` (the scaled value itself, as the
            published scripts) or ``"change"`` (the scaled value minus the last input value,
            added back when forecasting; a trending series then needs no extrapolation of
            the scaled level beyond the training range).
        start: first timestamp kept (inclusive), for a series with a DatetimeIndex.
        end: last timestamp kept (inclusive).
        preset: the preset name this config came from, for the report.
    """

    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    seeds: int = _DEFAULTS.seeds
    seed: int = _DEFAULTS.seed
    split: float = 0.67
    test_size: int | None = None
    season: int | None = None
    horizon: int = 1
    strategy: Literal["recursive", "direct"] = "recursive"
    origin_stride: int = 1
    classic_windows: bool = False
    scaler: Literal["minmax", "standard"] = _DEFAULTS.scaler  # type: ignore[assignment]
    target: Literal["level", "change"] = "change"
    start: str | None = None
    end: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        for spec in self.models:
            if not isinstance(spec, ModelSpec):
                raise ValueError(f"models must hold ModelSpec objects, got {spec!r}")
        names = [spec.name for spec in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}; rename the duplicates")
        check_positive_int("seeds", self.seeds)
        check_positive_int("horizon", self.horizon)
        check_positive_int("origin_stride", self.origin_stride)
        check_non_negative_int("seed", self.seed)
        if not isinstance(self.split, float | int) or not 0 < self.split < 1:
            raise ValueError(
                f"split must be a fraction strictly between 0 and 1, got {self.split!r}; "
                "pass e.g. 0.67 (the first 67% trains)"
            )
        if self.test_size is not None:
            check_positive_int("test_size", self.test_size)
        if self.season is not None:
            check_positive_int("season", self.season)
        if self.strategy not in _STRATEGIES:
            raise ValueError(
                f"strategy must be 'recursive' or 'direct', got {self.strategy!r}; pass one "
                "of those"
            )
        if self.target not in ("level", "change"):
            raise ValueError(
                f"target must be 'level' or 'change', got {self.target!r}; pass one of those"
            )
        if self.scaler not in _SCALERS:
            raise ValueError(f"scaler must be 'minmax' or 'standard', got {self.scaler!r}")

    @property
    def max_window(self) -> int:
        """The longest window of the models (1 without models)."""
        return max((spec.window for spec in self.models), default=1)

    @property
    def outputs(self) -> int:
        """Outputs of each neural model: ``horizon`` for ``direct``, else 1."""
        return self.horizon if self.strategy == "direct" else 1


def override_models(
    config: CompareConfig,
    *,
    window: int | None = None,
    epochs: int | None = None,
) -> CompareConfig:
    """The same config with every model's window and/or epochs replaced.

    Args:
        config: the comparison.
        window: new window of every model, or None to keep theirs.
        epochs: new epoch count of every model, or None to keep theirs.

    Returns:
        A new ``CompareConfig``.
    """
    changes: dict[str, Any] = {}
    if window is not None:
        changes["window"] = window
    if epochs is not None:
        changes["epochs"] = epochs
    if not changes:
        return config
    models = tuple(dataclasses.replace(spec, **changes) for spec in config.models)
    return dataclasses.replace(config, models=models)


# --------------------------------------------------------------------------- presets

# The published scripts use Keras' Adam default, learning rate 1e-3.
_KERAS_LR = 1e-3

_AIRLINE_MODELS = (
    # "Time series prediction with deep learning in Keras": Dense(8, relu) on look_back 1,
    # 200 epochs, batch 2 (published test RMSE about 48.6).
    ModelSpec(model="mlp", units=(8,), window=1, epochs=200, batch_size=2, learning_rate=_KERAS_LR),
    # LSTM(4), input_shape=(1, look_back=1), 100 epochs, batch 1 (Keras fit shuffles).
    ModelSpec(
        model="stateless", units=(4,), window=1, epochs=100, batch_size=1, learning_rate=_KERAS_LR
    ),
    # LSTM(4, batch_input_shape=(1, 3, 1), stateful=True), 100 x fit(epochs=1) + reset_states.
    ModelSpec(
        model="stateful", units=(4,), window=3, epochs=100, batch_size=1, learning_rate=_KERAS_LR
    ),
    ModelSpec(
        model="stacked", units=(4, 4), window=3, epochs=100, batch_size=1, learning_rate=_KERAS_LR
    ),
)

_HOUSEHOLD_MODELS = (
    ModelSpec(
        model="mlp", units=(100,), window=14, epochs=70, batch_size=16, learning_rate=_KERAS_LR
    ),
    ModelSpec(
        model="stateless", units=(64,), window=14, epochs=70, batch_size=16, learning_rate=_KERAS_LR
    ),
    ModelSpec(
        model="stateful", units=(64,), window=14, epochs=70, batch_size=8, learning_rate=_KERAS_LR
    ),
    ModelSpec(
        model="stacked",
        units=(64, 64),
        window=14,
        epochs=70,
        batch_size=8,
        learning_rate=_KERAS_LR,
    ),
)

PRESETS: dict[str, CompareConfig] = {
    # Brownlee, "Time Series Prediction with LSTM Recurrent Neural Networks in Python with
    # Keras": 67/33 split, MinMax, create_dataset windows, one step ahead on the test windows.
    "airline-classic": CompareConfig(
        models=_AIRLINE_MODELS,
        split=0.67,
        season=12,
        horizon=1,
        classic_windows=True,
        target="level",
        preset="airline-classic",
    ),
    # Brownlee, "How to Develop LSTM Models for Multi-Step Time Series Forecasting of
    # Household Power Consumption": daily sums, whole Sunday-Saturday weeks from 2006-12-17 to
    # 2010-11-20, test = the last 46 weeks, 7 days ahead from each Sunday, direct 7 outputs.
    # The season of 364 days makes the seasonal-naive baseline "the same week one year earlier".
    "household-weekly": CompareConfig(
        models=_HOUSEHOLD_MODELS,
        test_size=46 * 7,
        season=364,
        horizon=7,
        strategy="direct",
        origin_stride=7,
        target="level",
        start="2006-12-17",
        end="2010-11-20",
        preset="household-weekly",
    ),
}

PRESET_FILES = {
    "airline-classic": "airline_passengers.csv",
    "household-weekly": "household_power_consumption_days.csv",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Anchor:
    """A published figure to compare against.

    Attributes:
        model: our model it corresponds to (a name of the comparison), or None.
        description: what was published.
        rmse_low: published test RMSE (the lower end of a range).
        rmse_high: the upper end of a range (equal to ``rmse_low`` for one figure).
    """

    model: str | None
    description: str
    rmse_low: float
    rmse_high: float

    def text(self) -> str:
        """``47.5`` or ``47.4 to 48.6``."""
        if self.rmse_low == self.rmse_high:
            return f"{self.rmse_low:g}"
        return f"{self.rmse_low:g} to {self.rmse_high:g}"


ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "airline-classic": (
        Anchor(
            model="mlp",
            description="plain multilayer network (Dense(8) on window 1: 48.6; "
            "Dense(12)+Dense(8) on window 3: 47.4)",
            rmse_low=47.4,
            rmse_high=48.6,
        ),
        Anchor(
            model="stateless",
            description="stateless LSTM(4), window 1",
            rmse_low=47.5,
            rmse_high=47.5,
        ),
        Anchor(
            model="stateful",
            description="stateful LSTM(4), window 3, batch 1",
            rmse_low=52.2,
            rmse_high=52.2,
        ),
        Anchor(
            model="stacked",
            description="stacked stateful LSTM(4)+LSTM(4), window 3, batch 1",
            rmse_low=56.4,
            rmse_high=56.4,
        ),
    ),
    "household-weekly": (
        Anchor(
            model="seasonal_naive",
            description="naive: the same week one year earlier",
            rmse_low=465.0,
            rmse_high=465.0,
        ),
        Anchor(
            model=None,
            description="LSTMs (vanilla, encoder-decoder, CNN encoder)",
            rmse_low=370.0,
            rmse_high=400.0,
        ),
        Anchor(model=None, description="best ConvLSTM", rmse_low=368.0, rmse_high=368.0),
    ),
}


def load_preset_series(name: str, path: Any) -> LoadedSeries:
    """Load the shared data file of a preset with the columns the preset uses.

    Args:
        name: ``"airline-classic"`` or ``"household-weekly"``.
        path: the file (``airline_passengers.csv`` or ``household_power_consumption_days.csv``).

    Returns:
        The loaded series.

    Raises:
        ValueError: unknown preset, or as the loader.
    """
    if name == "airline-classic":
        return load_csv(path, LoadConfig(time_col="Date", targets=("Passengers",)))
    if name == "household-weekly":
        return load_household_days(path, columns=("Global_active_power",))
    raise ValueError(f"unknown preset {name!r}; pass one of {sorted(PRESETS)}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class PreparedData:
    """The split, the scaled inputs and the forecast origins shared by every model.

    Attributes:
        targets: ``(time, series)`` float64, original units.
        inputs: ``(time, series, features)`` float32 scaled model inputs: the series' own
            scaled value first, then the scaled extra features (shared by all series).
        target_scaler: fitted on ``targets[:n_train]`` only (one column per series).
        feature_scaler: fitted on the features' training part, or None without features.
        n_train: steps of the training part.
        n_test: steps of the test part.
        origins: ``(origins,)`` int64: the first forecast step of each forecast.
        index: the timestamps of the series, or None.
        series_names: one name per series.
        feature_names: the extra input columns.
    """

    targets: np.ndarray
    inputs: np.ndarray
    target_scaler: Scaler
    feature_scaler: Scaler | None
    n_train: int
    n_test: int
    origins: np.ndarray
    index: pd.Index | None
    series_names: tuple[str, ...]
    feature_names: tuple[str, ...]

    @property
    def num_series(self) -> int:
        """Series (streams) in the data."""
        return int(self.targets.shape[1])

    @property
    def num_features(self) -> int:
        """Inputs per step of each model."""
        return int(self.inputs.shape[2])

    def scaled_targets(self) -> np.ndarray:
        """``(time, series)`` float32: the first input column of each series."""
        return self.inputs[:, :, 0]

    def actual(self, horizon: int) -> np.ndarray:
        """``(origins, horizon, series)`` float64: the observed values forecast."""
        steps = self.origins[:, None] + np.arange(horizon)  # (origins, horizon)
        return self.targets[steps]


def _as_2d(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]  # (time,) -> (time, 1)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be (time,) or (time, columns), got shape {array.shape}; pass a 1-D "
            "or 2-D array"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} hold NaN or infinite values; load them with a missing-value policy "
            "(--missing interpolate) first"
        )
    return array


def prepare_data(
    config: CompareConfig,
    targets: Any,
    features: Any = None,
    *,
    index: pd.Index | None = None,
    series_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
) -> PreparedData:
    """Split, scale (on the training part only) and choose the forecast origins.

    Args:
        config: the comparison.
        targets: ``(time,)`` or ``(time, series)``; several columns are several series of one
            global model (each one stream of the stateful layout).
        features: optional ``(time, features)`` extra inputs, shared by all series; their
            future values are used as known when forecasting several steps.
        index: timestamps of the rows, for the report.
        series_names: one name per series.
        feature_names: one name per feature.

    Returns:
        ``PreparedData``.

    Raises:
        ValueError: NaN values, mismatched lengths, or a series too short for the split, the
            windows, the season or the horizon.
    """
    targets = _as_2d("targets", targets)
    steps, num_series = targets.shape
    features = np.zeros((steps, 0)) if features is None else _as_2d("features", features)
    if features.shape[0] != steps:
        raise ValueError(
            f"features have {features.shape[0]} rows, targets {steps}; pass them aligned row by row"
        )
    n_test = config.test_size if config.test_size is not None else steps - int(steps * config.split)
    n_train = steps - n_test
    window = config.max_window
    first = n_train + (window if config.classic_windows else 0)
    last = steps - config.horizon - (1 if config.classic_windows else 0)
    needed_train = window + config.outputs + (1 if config.classic_windows else 0)
    if n_train < needed_train or first > last:
        raise ValueError(
            f"the series has {steps} steps: {n_train} to train and {n_test} to test, too few "
            f"for window {window} and horizon {config.horizon} (training needs at least "
            f"{needed_train} steps, the test part at least "
            f"{config.horizon + (window + 1 if config.classic_windows else 0)}); pass a "
            "longer series, a smaller --window or --horizon, or another --split"
        )
    if config.season is not None and first < config.season:
        raise ValueError(
            f"season {config.season} reaches before the start of the series: the first "
            f"forecast origin is step {first}; pass a shorter --season or a larger --split"
        )
    origins = np.arange(first, last + 1, config.origin_stride, dtype=np.int64)
    names = (
        tuple(series_names)
        if series_names is not None
        else tuple(f"series_{j}" for j in range(num_series))
    )
    target_scaler = fit_scaler(targets[:n_train], config.scaler, columns=names)
    # (time, series) -> (time, series, 1)
    columns = [target_scaler.transform(targets)[:, :, None]]
    feature_scaler = None
    fnames = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"feature_{j}" for j in range(features.shape[1]))
    )
    if features.shape[1]:
        feature_scaler = fit_scaler(features[:n_train], config.scaler, columns=fnames)
        scaled = feature_scaler.transform(features)  # (time, features)
        # (time, features) -> (time, series, features): every series sees the same features
        columns.append(np.broadcast_to(scaled[:, None, :], (steps, num_series, scaled.shape[1])))
    inputs = np.concatenate(columns, axis=2).astype(np.float32)
    return PreparedData(
        targets=targets,
        inputs=inputs,
        target_scaler=target_scaler,
        feature_scaler=feature_scaler,
        n_train=n_train,
        n_test=n_test,
        origins=origins,
        index=index,
        series_names=names,
        feature_names=fnames if features.shape[1] else (),
    )


def _windows(inputs: np.ndarray, first_targets: np.ndarray, window: int) -> np.ndarray:
    """``(samples, series, window, features)``: the inputs before each first target."""
    steps = first_targets[:, None] + np.arange(-window, 0)  # (samples, window)
    # (samples, window, series, features) -> (samples, series, window, features)
    return np.ascontiguousarray(inputs[steps].transpose(0, 2, 1, 3))


def _training_samples(
    data: PreparedData, config: CompareConfig, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training windows and targets, in time order, all inside the training part.

    Returns:
        ``x (samples, series, window, features)`` and ``y (samples, series, outputs)``.
    """
    outputs = config.outputs
    last = data.n_train - outputs - (1 if config.classic_windows else 0)
    first_targets = np.arange(window, last + 1, dtype=np.int64)
    x = _windows(data.inputs, first_targets, window)
    steps = first_targets[:, None] + np.arange(outputs)  # (samples, outputs)
    # (samples, outputs, series) -> (samples, series, outputs)
    y = np.ascontiguousarray(data.scaled_targets()[steps].transpose(0, 2, 1))
    if config.target == "change":
        y = y - x[:, :, -1:, 0]  # minus the last input value: (samples, series, 1)
    return x, y


# --------------------------------------------------------------------------- results


def _mape(errors: np.ndarray, actual: np.ndarray, axis: Any) -> np.ndarray:
    """Mean absolute percentage error over the non-zero actual values (NaN if none)."""
    nonzero = actual != 0
    ratio = np.where(nonzero, np.abs(errors) / np.where(nonzero, np.abs(actual), 1.0), 0.0)
    count = nonzero.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 100.0 * ratio.sum(axis=axis) / np.maximum(count, 1), np.nan)


def forecast_metrics(forecasts: np.ndarray, actual: np.ndarray) -> dict[str, np.ndarray]:
    """RMSE, MAE and MAPE (percent, over non-zero actual values), overall and per step ahead.

    Args:
        forecasts: ``(seeds, origins, horizon, series)``.
        actual: ``(origins, horizon, series)``.

    Returns:
        ``{"rmse", "mae", "mape"}`` each ``(seeds,)`` and ``{"rmse_per_step", "mae_per_step",
        "mape_per_step"}`` each ``(seeds, horizon)``.

    Example:
        >>> m = forecast_metrics(np.array([[[[1.0]], [[3.0]]]]), np.array([[[2.0]], [[2.0]]]))
        >>> float(m["rmse"][0]), float(m["mape"][0])
        (1.0, 50.0)
    """
    errors = forecasts - actual[None]  # (seeds, origins, horizon, series)
    actual_b = np.broadcast_to(actual[None], errors.shape)
    overall = (1, 2, 3)
    per_step = (1, 3)
    return {
        "rmse": np.sqrt(np.mean(errors**2, axis=overall)),
        "mae": np.mean(np.abs(errors), axis=overall),
        "mape": _mape(errors, actual_b, overall),
        "rmse_per_step": np.sqrt(np.mean(errors**2, axis=per_step)),
        "mae_per_step": np.mean(np.abs(errors), axis=per_step),
        "mape_per_step": _mape(errors, actual_b, per_step),
    }


def _std(values: np.ndarray) -> float:
    """Sample standard deviation over seeds (0 for one seed)."""
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class ModelOutcome:
    """One model of the comparison: its forecasts and scores over seeds.

    Attributes:
        name: short name (``"persistence"``, ``"stateful"``, ...).
        label: human name.
        description: architecture and training, one line.
        forecasts: ``(seeds, origins, horizon, series)`` in the original units (one seed for a
            baseline).
        metrics: as ``forecast_metrics``.
        seconds: wall time of training and forecasting, all seeds (compilation included).
        layout: how the training batches were laid out (empty for a baseline).
        final_loss: ``(seeds,)`` training MSE (scaled units) of the last epoch; empty for a
            baseline.
        losses: ``(epochs, seeds)`` training MSE of every epoch, as the training driver
            logged it; empty for a baseline.
        spec: the ``ModelSpec``; None for a baseline.
    """

    name: str
    label: str
    description: str
    forecasts: np.ndarray
    metrics: dict[str, np.ndarray]
    seconds: float
    layout: str = ""
    final_loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    spec: ModelSpec | None = None

    @property
    def is_baseline(self) -> bool:
        """Whether this is a baseline (no training)."""
        return self.spec is None

    def mean(self, metric: str) -> float:
        """Mean over seeds of ``"rmse"``, ``"mae"`` or ``"mape"``."""
        return float(np.mean(self.metrics[metric]))

    def std(self, metric: str) -> float:
        """Sample standard deviation over seeds (0 for one seed)."""
        return _std(self.metrics[metric])

    def mean_forecast(self) -> np.ndarray:
        """``(origins, horizon, series)``: the forecasts averaged over seeds."""
        return self.forecasts.mean(axis=0)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class CompareResult:
    """Everything a comparison measured.

    Attributes:
        config: the comparison.
        outcomes: baselines first, then the neural models, in config order.
        actual: ``(origins, horizon, series)`` observed values.
        origins: ``(origins,)`` step index of each forecast's first step.
        targets: ``(time, series)`` the whole series in original units.
        index: timestamps of the series, or None.
        series_names: one name per series.
        feature_names: the extra inputs.
        n_train: steps of the training part.
        n_test: steps of the test part.
        seconds: wall time of the whole comparison.
        notes: remarks for the report (protocol differences, trimming, ...).
        load_lines: the loader's report, one line per fact (empty for arrays).
        anchors: the published figures of the preset (empty without a preset).
    """

    config: CompareConfig
    outcomes: tuple[ModelOutcome, ...]
    actual: np.ndarray
    origins: np.ndarray
    targets: np.ndarray
    index: pd.Index | None
    series_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    n_train: int
    n_test: int
    seconds: float
    notes: tuple[str, ...] = ()
    load_lines: tuple[str, ...] = ()
    anchors: tuple[Anchor, ...] = ()

    def outcome(self, name: str) -> ModelOutcome:
        """The outcome of the model called ``name``.

        Raises:
            KeyError: no such model.
        """
        for outcome in self.outcomes:
            if outcome.name == name:
                return outcome
        raise KeyError(f"no model {name!r}; models: {[o.name for o in self.outcomes]}")

    def best(self, metric: str = "rmse") -> ModelOutcome:
        """The model with the lowest mean ``metric`` over seeds."""
        return min(self.outcomes, key=lambda outcome: outcome.mean(metric))

    def relative_to_persistence(self, name: str, metric: str = "rmse") -> float:
        """``mean(metric) / persistence's metric - 1``: below 0 beats persistence."""
        return self.outcome(name).mean(metric) / self.outcome("persistence").mean(metric) - 1.0

    @property
    def origin_times(self) -> pd.Index | None:
        """Timestamps of the forecast origins, or None without an index."""
        return None if self.index is None else self.index[self.origins]


# --------------------------------------------------------------------------- baselines


def _persistence(data: PreparedData, horizon: int) -> np.ndarray:
    """``(1, origins, horizon, series)``: the last observed value, repeated."""
    last = data.targets[data.origins - 1]  # (origins, series)
    return np.repeat(last[None, :, None, :], horizon, axis=2)


def _seasonal_naive(data: PreparedData, horizon: int, season: int) -> np.ndarray:
    """``(1, origins, horizon, series)``: the value one season before each forecast step.

    Steps beyond one season ahead take the latest observed value of the same phase (two,
    three, ... seasons back).
    """
    ahead = np.arange(horizon)  # (horizon,)
    back = season * ((ahead // season) + 1)  # the latest observed step of the same phase
    steps = data.origins[:, None] + ahead[None, :] - back[None, :]  # (origins, horizon)
    return data.targets[steps][None]


# --------------------------------------------------------------------------- neural models


def _forecast_scaled(
    model_config: ModelConfig,
    params: Params,
    inputs: np.ndarray,
    origins: np.ndarray,
    *,
    window: int,
    horizon: int,
    strategy: str,
    change: bool,
) -> np.ndarray:
    """Forecasts of every seed from every origin, in model units (``lstmlab.core.rollout``).

    A window model reads the ``window`` inputs before each origin from zero state. A stateful
    model reads the series in order with the observed values, one overlapping window after
    the other from a zero state (``window_states``: the stateful layout with one stream), and
    forecasts each origin from the state before its window (a warm start). All origins and
    series are the rows of one ``rollout``, all seeds one ``vmap``.

    Args:
        model_config: the model.
        params: parameters with a leading seeds axis.
        inputs: ``(time, series, features)`` scaled inputs.
        origins: ``(origins,)`` the first forecast step of each forecast.
        window: input steps per forecast.
        horizon: steps ahead.
        strategy: ``"recursive"`` or ``"direct"``.
        change: the model predicts the change from the last input value.

    Returns:
        ``(seeds, origins, horizon, series)`` float64.
    """
    num_series, features = inputs.shape[1], inputs.shape[2]
    num_origins = len(origins)
    rows = num_origins * num_series
    seeds = int(jax.tree.leaves(params)[0].shape[0])
    # Every window from the first possible one up to the last origin, in order.
    first_targets = np.arange(window, int(origins[-1]) + 1, dtype=np.int64)
    windows_all = _windows(inputs, first_targets, window)  # (windows, series, window, features)
    positions = origins - window  # the window of each origin, a row of windows_all
    # (origins, series, window, features) -> (origins * series, window, features)
    x = windows_all[positions].reshape(rows, window, features)
    state: Any = ()
    if model_config.stateful:
        zero = jax.tree.map(
            lambda leaf: jnp.broadcast_to(leaf, (seeds, *leaf.shape)),
            init_state(model_config, num_series),
        )
        before = window_states(model_config, params, zero, windows_all, seeds=True)
        # (seeds, windows, series, units) -> (seeds, origins * series, units)
        state = jax.tree.map(
            lambda leaf: leaf[:, positions].reshape(seeds, rows, leaf.shape[-1]), before
        )
    future = None
    if strategy == "recursive" and features > 1:
        # The known covariates of step o + k sit beside the forecast of step o + k.
        steps = origins[:, None] + np.arange(horizon)[None, :]  # (origins, horizon)
        steps = np.minimum(steps, len(inputs) - 1)
        future = inputs[steps][..., 1:]  # (origins, horizon, series, covariates)
        # -> (origins * series, horizon, covariates): rows as in x
        future = future.transpose(0, 2, 1, 3).reshape(rows, horizon, features - 1)
    forecasts = rollout(
        model_config,
        params,
        state,
        x,
        horizon=horizon,
        strategy=strategy,
        change=change,
        future=future,
        seeds=True,
    )  # (seeds, origins * series, horizon, 1)
    forecasts = np.asarray(forecasts, dtype=np.float64).reshape(
        seeds, num_origins, num_series, horizon
    )
    return forecasts.transpose(0, 1, 3, 2)  # (seeds, origins, horizon, series)


def _initial_states(
    model_config: ModelConfig,
    train_config: TrainConfig,
    batch_size: int,
    model_index: int,
    seeds: Sequence[int],
) -> TrainState:
    """Stacked initial ``TrainState`` of every seed (leading axis: seeds).

    Seed ``s`` initialises the parameters from ``fold_in(key(s), model_index)`` and shuffles
    with ``fold_in(key(s), 1000 + model_index)``.
    """
    keys = [jax.random.key(seed) for seed in seeds]
    return init_train_states(
        model_config,
        train_config,
        [init_params(model_config, jax.random.fold_in(key, model_index)) for key in keys],
        batch_size,
        keys=[jax.random.fold_in(key, 1000 + model_index) for key in keys],
    )


def _batches(
    spec: ModelSpec, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Lay out training samples ``x (samples, series, ...)`` for ``spec``.

    Returns:
        ``(x_batches, y_batches, layout description, samples trimmed)``.
    """
    samples, num_series = x.shape[:2]
    if spec.stateful:
        per_series = [
            make_stream_batches(x[:, j], y[:, j], batch_size=spec.batch_size, trim="start")
            for j in range(num_series)
        ]
        # Every series gives `batch_size` streams; rows of a batch: series-major.
        x_batches = np.concatenate([b.x_batches for b in per_series], axis=1)
        y_batches = np.concatenate([b.y_batches for b in per_series], axis=1)
        trimmed = sum(b.trim.trimmed for b in per_series)
        batch = x_batches.shape[1]
        layout = (
            f"stream layout: {spec.batch_size} stream(s) per series x {num_series} series = "
            f"batch size {batch}, {x_batches.shape[0]} batches per epoch, state reset after "
            f"every epoch; {per_series[0].trim}" + (" per series" if num_series > 1 else "")
        )
        if batch == 1:
            layout += " (with batch size 1 the stream and the official layouts agree)"
        return x_batches, y_batches, layout, trimmed
    # Window models: all samples of all series pooled, time-major; the oldest left-overs
    # dropped.
    flat_x = x.reshape(samples * num_series, *x.shape[2:])  # (samples * series, window, f)
    flat_y = y.reshape(samples * num_series, *y.shape[2:])  # (samples * series, outputs)
    batches = make_sample_batches(
        flat_x, flat_y, batch_size=min(spec.batch_size, len(flat_x)), trim="start"
    )
    trim = batches.trim
    layout = (
        f"batches of {trim.batch_size} samples"
        + (", reshuffled every epoch" if spec.shuffle else "")
        + f"; used {trim.used} of {trim.total} samples"
        + (f", the {trim.trimmed} oldest left out" if trim.trimmed else "")
    )
    return batches.x_batches, batches.y_batches, layout, trim.trimmed


def _train(
    spec: ModelSpec,
    model_index: int,
    data: PreparedData,
    config: CompareConfig,
    quiet: bool = True,
) -> tuple[TrainState, TrainLog, str]:
    """Train every seed of one model with the training driver (``lstmlab.core.train.fit``).

    Returns:
        ``(train_states, log, layout)``: the seeds' final states (leading axis: seeds), the
        driver's log (losses ``(epochs, seeds)``) and the layout description.
    """
    model_config = spec.model_config(data.num_features, config.outputs)
    x, y = _training_samples(data, config, spec.window)
    x_batches, y_batches, layout, _ = _batches(spec, x, y)
    train_config = TrainConfig(
        epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        shuffle=bool(spec.shuffle),
        reset="epoch",  # Keras' model.reset_states() after each fit(epochs=1)
        seed=config.seed,
    )
    seeds = range(config.seed, config.seed + config.seeds)
    states = _initial_states(model_config, train_config, x_batches.shape[1], model_index, seeds)
    with epoch_progress(spec.epochs, f"{spec.label} x{config.seeds}", quiet=quiet) as progress:

        def on_epoch(epoch: int, losses: np.ndarray, val_losses: np.ndarray | None) -> None:
            progress.advance(float(np.mean(losses)))

        states, log = fit(
            model_config,
            train_config,
            states,
            x_batches,
            y_batches,
            on_epoch=None if quiet else on_epoch,
        )
    return states, log, layout


def _train_and_forecast(
    spec: ModelSpec,
    model_index: int,
    data: PreparedData,
    config: CompareConfig,
    quiet: bool = True,
) -> ModelOutcome:
    """Train every seed of one model as one vectorised program, then forecast the test part.

    The task an executor runs: module-level, with picklable arguments (frozen dataclasses,
    NumPy arrays), so Ray can ship it; the same arguments give the same numbers anywhere.
    """
    started = time.perf_counter()
    states, log, layout = _train(spec, model_index, data, config, quiet)
    scaled = _forecast_scaled(
        spec.model_config(data.num_features, config.outputs),
        states.params,
        data.inputs,
        data.origins,
        window=spec.window,
        horizon=config.horizon,
        strategy=config.strategy,
        change=config.target == "change",
    )  # (seeds, origins, horizon, series)
    scale = np.asarray(data.target_scaler.scale)  # (series,)
    offset = np.asarray(data.target_scaler.offset)
    forecasts = scaled * scale + offset
    seconds = time.perf_counter() - started
    losses = log.loss  # (epochs, seeds) float32, as the driver logged them
    return ModelOutcome(
        name=spec.name,
        label=spec.label,
        description=spec.describe(),
        forecasts=forecasts,
        metrics=forecast_metrics(forecasts, data.actual(config.horizon)),
        seconds=seconds,
        layout=layout,
        final_loss=losses[-1] if len(losses) else np.full(config.seeds, np.nan),
        losses=losses,
        spec=spec,
    )


# --------------------------------------------------------------------------- run


def _series_arrays(
    series: Any, config: CompareConfig
) -> tuple[
    np.ndarray,
    np.ndarray | None,
    pd.Index | None,
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
]:
    """Targets, features, index, names and the loader's report lines of ``series``."""
    load_lines: tuple[str, ...] = ()
    if isinstance(series, LoadedSeries):
        frame = series.frame
        targets, features = series.targets, series.features
        load_lines = tuple(series.report.lines())
    elif isinstance(series, pd.DataFrame):
        frame = series
        targets, features = tuple(str(c) for c in series.columns), ()
    elif isinstance(series, pd.Series):
        frame = series.to_frame(name=str(series.name) if series.name is not None else "value")
        targets, features = tuple(frame.columns), ()
    else:
        array = _as_2d("series", series)
        if config.start is not None or config.end is not None:
            raise ValueError(
                "start and end select timestamps, but the series is an array without any; "
                "pass a DataFrame with a DatetimeIndex or drop start/end"
            )
        names = tuple(f"series_{j}" for j in range(array.shape[1]))
        return array, None, None, names, (), ()
    if config.start is not None or config.end is not None:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise ValueError(
                f"start/end select timestamps, but the index is a {type(frame.index).__name__}; "
                "pass a series with a DatetimeIndex"
            )
        frame = frame.loc[config.start : config.end]
    target_values = frame.loc[:, list(targets)].to_numpy(dtype=np.float64)
    feature_values = frame.loc[:, list(features)].to_numpy(dtype=np.float64) if features else None
    return target_values, feature_values, frame.index, targets, features, load_lines


def _notes(config: CompareConfig, data: PreparedData) -> tuple[str, ...]:
    notes = [
        f"split: {data.n_train} steps to train, {data.n_test} to test; the {config.scaler} "
        "scaler is fitted on the training part only, the metrics are in the original units",
        f"{len(data.origins)} forecast origins, {config.horizon} step(s) ahead "
        + (
            "(direct: each model has one output per step ahead)"
            if config.strategy == "direct"
            else "(recursive: each prediction is fed back as the next input)"
            if config.horizon > 1
            else "(one step ahead from the real previous values)"
        ),
        "stateful models forecast from the state reached by reading the series in order "
        "from its start up to each origin (warm start: the first test forecast continues "
        "from the end of the training series)",
    ]
    if config.classic_windows:
        notes.append(
            "classic windows: training windows end one step before the end of the training "
            "part and test origins run from step n_train + window to the next-to-last step, "
            f"for every model the same (window {config.max_window}), as create_dataset does"
        )
    if config.preset == "airline-classic":
        notes.append(
            "the published scripts fitted the MinMaxScaler on the whole series (a leak of the "
            "test part into the scaling); here it is fitted on the training part, so the test "
            "values go above 1"
        )
        notes.append(
            "the published stateful scripts reset the state before predicting the test part; "
            "here the test forecasts continue from the state at the end of the training series"
        )
    zeros = int(np.count_nonzero(data.actual(config.horizon) == 0))
    if zeros:
        # MAPE divides by the actual value: it is taken over the non-zero ones only.
        notes.append(
            f"MAPE leaves out the {zeros} forecast step(s) whose actual value is 0 (of "
            f"{data.actual(config.horizon).size}); RMSE and MAE include them"
        )
    if data.feature_names and config.horizon > 1 and config.strategy == "recursive":
        notes.append(
            "recursive forecasts use the observed future values of the extra features "
            f"{list(data.feature_names)} (treated as known in advance)"
        )
    return tuple(notes)


def run(
    config: CompareConfig,
    series: Any,
    *,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> CompareResult:
    """Run the comparison on a series.

    Args:
        config: what to compare.
        series: a ``LoadedSeries`` (targets and features from the loader), a DataFrame (every
            column a series), a pandas Series, or an array ``(time,)`` / ``(time, series)``.
        quiet: no progress bars.
        log: called with one line per model when it finishes (e.g. ``print``).
        executor: where the models train (one task per model, its seeds vectorised);
            ``None`` for a ``LocalExecutor`` (in process). A ``RayExecutor`` gives the same
            forecasts and metrics (only the timings differ).

    Returns:
        ``CompareResult``.

    Raises:
        ValueError: as ``prepare_data``, or a series without the preset's time span.

    Example:
        >>> config = CompareConfig(models=(), seeds=1)
        >>> result = run(config, np.arange(30.0), quiet=True)
        >>> round(result.outcome("persistence").mean("rmse"), 3)
        1.0
    """
    started = time.perf_counter()
    targets, features, index, target_names, feature_names, load_lines = _series_arrays(
        series, config
    )
    data = prepare_data(
        config,
        targets,
        features,
        index=index,
        series_names=target_names,
        feature_names=feature_names,
    )
    horizon = config.horizon
    actual = data.actual(horizon)
    outcomes = []
    baselines = [("persistence", _persistence(data, horizon), "the last observed value")]
    if config.season is not None:
        baselines.append(
            (
                "seasonal_naive",
                _seasonal_naive(data, horizon, config.season),
                f"the value {config.season} steps (one season) earlier",
            )
        )
    for name, forecasts, description in baselines:
        outcomes.append(
            ModelOutcome(
                name=name,
                label=_LABELS[name],
                description=description,
                forecasts=forecasts,
                metrics=forecast_metrics(forecasts, actual),
                seconds=0.0,
            )
        )
    executor = LocalExecutor() if executor is None else executor

    def finished(index: int, outcome: ModelOutcome) -> None:
        if log is not None:
            log(
                f"{outcome.label}: test RMSE {outcome.mean('rmse'):.4g} ± "
                f"{outcome.std('rmse'):.2g} over {config.seeds} seeds ({outcome.seconds:.1f} s)"
            )

    # Epoch bars only in this process: a Ray worker's stderr does not reach this terminal.
    bars = not quiet and executor.name == "local"
    tasks = [(spec, index, data, config, not bars) for index, spec in enumerate(config.models)]
    outcomes.extend(executor.map(_train_and_forecast, tasks, on_result=finished))
    anchors = ANCHORS.get(config.preset, ()) if config.preset else ()
    return CompareResult(
        config=config,
        outcomes=tuple(outcomes),
        actual=actual,
        origins=data.origins,
        targets=data.targets,
        index=data.index,
        series_names=data.series_names,
        feature_names=data.feature_names,
        n_train=data.n_train,
        n_test=data.n_test,
        seconds=time.perf_counter() - started,
        notes=_notes(config, data),
        load_lines=load_lines,
        anchors=anchors,
    )
