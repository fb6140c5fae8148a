"""The experiments' settings, importable without JAX or pandas.

``MovingAverageConfig`` (``lstmlab.experiments.moving_average``) and ``ConvergenceConfig``
(``lstmlab.experiments.convergence``) with their vocabularies (``LAYOUTS``, ``MODES``);
``ModelSpec``, ``CompareConfig`` and the published protocols (``PRESETS``, ``PRESET_FILES``)
of ``lstmlab.experiments.compare``, with the baselines' names (``BASELINES``, of
``lstmlab.experiments.baselines``). The experiment modules re-export them; they live here, over
``lstmlab.checks``, ``lstmlab.defaults`` and ``lstmlab.core.norms`` only, so that the command
line builds its flags from these defaults (and answers ``--help``) without loading the
numerical stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lstmlab.checks import (
    check_at_most,
    check_choice,
    check_learning_rate,
    check_non_negative_int,
    check_positive_int,
    check_positive_ints,
    check_positive_number,
    check_seed,
)
from lstmlab.core.norms import NORMS
from lstmlab.defaults import MAX_EPOCHS, MODEL_KINDS, ForecasterSettings

if TYPE_CHECKING:
    from lstmlab.core.model import ModelConfig

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "DEFAULT_MODELS",
    "ENSEMBLE_SUFFIX",
    "LAYOUTS",
    "MODES",
    "NAIVE",
    "PRESETS",
    "PRESET_FILES",
    "STATISTICAL",
    "CompareConfig",
    "ConvergenceConfig",
    "ModelSpec",
    "MovingAverageConfig",
]

LAYOUTS = ("official", "streams")


@dataclass(frozen=True, kw_only=True, slots=True)
class MovingAverageConfig:
    """The script's editable parameters (its defaults), plus what it leaves implicit.

    Attributes:
        input_len: length of the generated input.
        tsteps: window of the moving-average target.
        lahead: input window length per sample.
        batch_size: rows per batch.
        epochs: training epochs per model (literal: the stateful model is fitted one epoch at a
            time ``epochs`` times, the stateless one for ``epochs`` epochs).
        seed: NumPy legacy global seed (the script's ``np.random.seed(1986)``); also seeds the
            model initialisation: ``jax.random.key(seed + 1)`` for the stateful model and
            ``jax.random.key(seed)`` for the stateless one (the convention of the edge-based
            ``run`` this module started with; the script itself leaves Keras' init unseeded).
        units: LSTM units.
        threshold: converged when test MSE <= threshold * MSE of predicting the training mean.
        layout: ``"official"`` (the script's batches: batch k holds samples k*B..k*B+B-1) or
            ``"streams"`` (B contiguous streams; row i of batch k+1 continues row i of batch k).
    """

    input_len: int = 1000
    tsteps: int = 2
    lahead: int = 1
    batch_size: int = 1
    epochs: int = 10
    seed: int = 1986
    units: int = 20
    threshold: float = 0.1
    layout: str = "official"

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size", "units"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        object.__setattr__(self, "epochs", check_non_negative_int("epochs", self.epochs))
        check_at_most("epochs", self.epochs, MAX_EPOCHS, fix="pass fewer epochs")
        object.__setattr__(self, "seed", check_seed("seed", self.seed))
        threshold = check_positive_number(
            "threshold", self.threshold, fix="pass e.g. 0.1 (10% of the mean predictor's MSE)"
        )
        object.__setattr__(self, "threshold", threshold)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be 'official' or 'streams', got {self.layout!r}")
        to_train = int(self.input_len * 0.8)
        to_train -= to_train % self.batch_size
        to_test = self.input_len - to_train - self.input_len % self.batch_size
        if to_train < self.batch_size or to_test < self.batch_size:
            raise ValueError(
                f"input_len={self.input_len} is too short for batch_size={self.batch_size}: the "
                f"80/20 split gives {to_train} training and {to_test} test samples, and each "
                f"needs at least one batch; pass --input-len >= {5 * self.batch_size} or a "
                "smaller --batch-size"
            )

    @property
    def expect_stateless_converges(self) -> bool:
        """The script's claim for the stateless model."""
        return self.lahead >= self.tsteps


MODES = ("stateful", "stateless")


def _check_values(name: str, values: Sequence[int]) -> tuple[int, ...]:
    values = check_positive_ints(name, values)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat values, got {values!r}; drop the duplicates")
    return values


@dataclass(frozen=True, kw_only=True, slots=True)
class ConvergenceConfig:
    """The grid and the per-cell experiment.

    Attributes:
        tsteps: moving-average windows (grid rows).
        lahead: input window lengths (grid columns).
        seeds: seeds per cell: ``seed, seed + 1, ..., seed + seeds - 1``; each gives other data
            (``np.random.seed``, as the script) and another model initialisation.
        seed: the first seed.
        input_len: length of the generated input.
        batch_size: rows per batch.
        epochs: training epochs per model.
        units: LSTM units.
        threshold: converged when test MSE <= threshold * MSE of predicting the training mean.
        layout: ``"official"`` or ``"streams"`` (see ``MovingAverageConfig``).
    """

    tsteps: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    lahead: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    seeds: int = 3
    seed: int = 1986
    input_len: int = 1000
    batch_size: int = 1
    epochs: int = 10
    units: int = 20
    threshold: float = 0.1
    layout: str = "official"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tsteps", _check_values("tsteps", self.tsteps))
        object.__setattr__(self, "lahead", _check_values("lahead", self.lahead))
        seeds = check_positive_int("seeds", self.seeds, fix="pass e.g. 3")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "seed", check_seed("seed", self.seed, count=seeds))
        self.cell(self.tsteps[0], self.lahead[0], self.seed)  # validates the rest

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The seeds of every cell."""
        return tuple(range(self.seed, self.seed + self.seeds))

    def cell(self, tsteps: int, lahead: int, seed: int) -> MovingAverageConfig:
        """The moving-average settings of one training of the grid."""
        return MovingAverageConfig(
            input_len=self.input_len,
            tsteps=tsteps,
            lahead=lahead,
            batch_size=self.batch_size,
            epochs=self.epochs,
            seed=seed,
            units=self.units,
            threshold=self.threshold,
            layout=self.layout,
        )


# --------------------------------------------------------------------------- compare

NAIVE = ("persistence",)
STATISTICAL = ("auto_ets", "auto_theta", "auto_arima", "seasonal_naive")
BASELINES = NAIVE + STATISTICAL
"""The baselines of ``lstmlab.experiments.baselines``, by name."""

# The name of each neural model's seed median: a model of its own in the comparison.
ENSEMBLE_SUFFIX = "_median"

_STRATEGIES = ("recursive", "direct")
_SCALERS = ("minmax", "standard", "none")
_DEFAULTS = ForecasterSettings()  # ForecasterConfig's defaults, without its checks
_MODEL_LABELS = {
    "mlp": "multilayer network",
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
        model: the kind, one of ``lstmlab.defaults.MODEL_KINDS``: ``"stateful"`` (one LSTM
            layer carrying its state along the stream layout, reset every epoch),
            ``"stacked"`` (several stateful LSTM layers), ``"stateless"`` (an LSTM reading
            each window from zero state) or ``"mlp"`` (Dense layers with ReLU on the
            flattened window).
        name: short name used in files and tables; ``""`` for the kind.
        units: units of each LSTM layer (hidden Dense layers for the MLP); ``()`` for the
            kind's default (``ForecasterConfig.default_units``).
        window: input steps per sample; ``None`` for one that covers the season
            (``lstmlab.data.seasons.default_window``, at least ForecasterConfig's window).
        epochs: training epochs; the maximum when the model stops early.
        batch_size: samples per batch for a window model; streams per series for a stateful
            one (the batch then holds ``batch_size * series`` rows); ``None`` for the kind's
            default (``ForecasterConfig.default_batch_size``).
        shuffle: shuffle samples across batches every epoch (window models only; Keras'
            ``fit`` default); ``None``: shuffled for a window model, never for a stateful one.
        learning_rate: Adam step size (Keras' Adam defaults otherwise).
        norm: the input normalisation (``lstmlab.core.model.NORMS``: ``"difference"``,
            ``"window"``, ``"none"``), or ``"auto"`` to train each and keep the one with the
            lowest validation RMSE.
        scaler: the scaler of this model's inputs (``"minmax"``, ``"standard"``, ``"none"``);
            ``None`` for the comparison's.
        early_stopping: stop on the validation tail (and reduce the learning rate on
            plateau) when the comparison has one.
        grow_batches: on a long series, grow ``batch_size`` so that an epoch is at most
            ``MAX_BATCHES_PER_EPOCH`` batches (``lstmlab.data.layouts.grown_batch_size``: more
            samples per batch, or more streams per series); ``False`` keeps it as given (the
            published protocols).
        label: human name for reports; ``""`` for the kind's.
    """

    model: str
    name: str = ""
    units: tuple[int, ...] = ()
    window: int | None = None
    epochs: int = _DEFAULTS.epochs
    batch_size: int | None = None
    shuffle: bool | None = None
    learning_rate: float = _DEFAULTS.learning_rate
    norm: str = "auto"
    scaler: str | None = None
    early_stopping: bool = True
    grow_batches: bool = True
    label: str = ""

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODEL_KINDS)
        defaults = dataclasses.replace(_DEFAULTS, model=self.model)
        if not self.name:
            object.__setattr__(self, "name", self.model)
        if (
            not isinstance(self.name, str)
            or self.name in BASELINES
            or self.name.endswith(ENSEMBLE_SUFFIX)
        ):
            raise ValueError(
                f"model name must be a non-empty string other than {BASELINES} and not ending "
                f"in {ENSEMBLE_SUFFIX!r}, got {self.name!r}; pass e.g. name='stateful'"
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
        if self.window is not None:
            check_positive_int("window", self.window)
        check_non_negative_int("epochs", self.epochs)
        check_at_most("epochs", self.epochs, MAX_EPOCHS, fix="pass fewer epochs")
        check_learning_rate(self.learning_rate)
        check_choice("norm", self.norm, ("auto", *NORMS))
        if self.scaler is not None:
            check_choice("scaler", self.scaler, _SCALERS)
        if not isinstance(self.early_stopping, bool):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        if not self.label:
            object.__setattr__(self, "label", _MODEL_LABELS[self.model])

    @property
    def stateful(self) -> bool:
        """Whether the model carries its state across batches (``stateful``, ``stacked``)."""
        return self.model in ("stateful", "stacked")

    def model_config(self, features: int, outputs: int, norm: str | None = None) -> ModelConfig:
        """The model for ``features`` inputs per step and ``outputs`` outputs.

        Args:
            features: inputs per step.
            outputs: outputs of the head.
            norm: the input normalisation; ``None`` for the spec's (which must not be
                ``"auto"`` then).
        """
        from lstmlab.core.model import build_network  # JAX: only where a model is made

        norm = self.norm if norm is None else norm
        if norm == "auto" or self.window is None:
            raise ValueError(
                f"model {self.name!r}: resolve norm and window first (norm {norm!r}, window "
                f"{self.window!r}); compare.run does it from the data"
            )
        # compare's stateful models read overlapping windows: an output after each window
        return build_network(
            self.model,
            units=self.units,
            window=self.window,
            features=features,
            outputs=outputs,
            norm=norm,
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
        window = "window covering the season" if self.window is None else f"window {self.window}"
        epochs = f"at most {self.epochs} epochs" if self.early_stopping else f"{self.epochs} epochs"
        return (
            f"{arch}; {window}; input norm {self.norm}; {epochs}; {batch}; "
            f"Adam lr {self.learning_rate:g}"
            + ("" if self.scaler is None else f"; scaler {self.scaler}")
        )


# ForecasterConfig's model of every kind: the comparison's defaults are the Forecaster's.
# The model order is the report's order and enters the seeding (``_initial_states``).
DEFAULT_MODELS = tuple(
    ModelSpec(model=kind) for kind in ("mlp", "stateless", "stateful", "stacked")
)
DEFAULT_BASELINES = ("persistence", "seasonal_naive", "auto_ets", "auto_theta", "auto_arima")


@dataclass(frozen=True, kw_only=True, slots=True)
class CompareConfig:
    """What to compare and how.

    Attributes:
        models: the neural models.
        baselines: the baselines (``lstmlab.experiments.baselines.BASELINES``); the seasonal
            naive one runs only with a season.
        seeds: seeds per neural model, trained together as one vectorised program.
        seed: first seed; model ``m`` of seed ``s`` is initialised from ``seed + s``, folded
            with ``m``.
        split: fraction of the series used for training (the first part), ``0 < split < 1``;
            the training part has ``int(len * split)`` steps (the published protocol).
        test_size: steps of the test part, instead of ``split``.
        folds: rolling-origin folds: the test part is cut into ``folds`` consecutive blocks,
            and every model is fitted again on all steps before each block.
        seasons: season lengths in steps, the shortest first; ``None`` to take them from the
            series' frequency or to detect one on the training part
            (``lstmlab.data.seasons.choose_seasons``); ``()`` for none.
        horizon: steps forecast from each origin.
        strategy: ``"direct"`` (models with ``horizon`` outputs, the default: nothing is fed
            back) or ``"recursive"`` (one-step models, predictions fed back).
        origin_stride: steps between forecast origins in the test part (``horizon`` with
            ``origin_stride == horizon`` tiles the test part, e.g. one forecast per week).
        classic_windows: cut training and test windows each inside its own part and drop the
            last one (``create_dataset`` of the published scripts): training targets end
            one step before the end of the training part, test origins start ``window``
            steps into the test part and end one step early.
        scaler: ``"minmax"`` (onto [0, 1]), ``"standard"`` or ``"none"``, one per series.
        scale_on: ``"train"`` (the scaler sees the training part only) or ``"whole"`` (the
            whole series: the published scripts' leak, kept for their protocol only).
        warm_start: a stateful model forecasts the test part from the state reached by
            reading the series from its start (``True``), or from a state reset at the start
            of the test part (``False``: the published scripts).
        validation: fraction of the training part held out at its end for early stopping,
            the choice of the input normalisation and the conformal intervals; ``0`` for none.
        patience: epochs without improvement on the validation tail before a model stops
            (the learning rate is halved after half as many).
        seasonal_lags: every season after the shortest (336 steps, the week, beside the day of
            half-hourly data) becomes an input column of the neural models: at each input
            step, the value one such season before the step after it. The window covers the
            shortest season; this lets the models see the longer ones without windows hundreds
            of steps long.
        refit: after early stopping, train each model again from its initial weights on the
            whole training part (the validation tail is its most recent data) for the median
            best epoch count of its seeds; the validation forecasts (norm choice, ranking,
            intervals) stay those of the model that did not see the tail.
        level: nominal coverage of the prediction intervals.
        plausible_factor: a forecast beyond ``plausible_factor`` training ranges below the
            training minimum or above its maximum is implausible: its seed is flagged.
        missing: how the gaps of a series are filled (``lstmlab.data.loading.fill_split``):
            the training part from its own values only, the test part's inputs causally;
            missing actual values are left out of the scores.
        start: first timestamp kept (inclusive), for a series with a DatetimeIndex.
        end: last timestamp kept (inclusive).
        preset: the preset name this config came from, for the report.
    """

    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    seeds: int = _DEFAULTS.seeds
    seed: int = _DEFAULTS.seed
    split: float = 0.67
    test_size: int | None = None
    folds: int = 1
    seasons: tuple[int, ...] | None = None
    horizon: int = 1
    strategy: Literal["recursive", "direct"] = "direct"
    origin_stride: int = 1
    classic_windows: bool = False
    scaler: Literal["minmax", "standard", "none"] = _DEFAULTS.scaler  # type: ignore[assignment]
    scale_on: Literal["train", "whole"] = "train"
    warm_start: bool = True
    validation: float = 0.2
    patience: int = 20
    refit: bool = True
    seasonal_lags: bool = True
    level: float = 0.9
    plausible_factor: float = 3.0
    missing: Literal["interpolate", "ffill"] = "interpolate"
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
        object.__setattr__(self, "baselines", tuple(self.baselines))
        for name in self.baselines:
            check_choice("baseline", name, BASELINES)
        if "persistence" not in self.baselines:
            raise ValueError(
                f"baselines must include 'persistence' (every verdict is measured against it), "
                f"got {self.baselines}; add it"
            )
        check_positive_int("seeds", self.seeds)
        check_positive_int("horizon", self.horizon)
        check_positive_int("origin_stride", self.origin_stride)
        check_positive_int("folds", self.folds)
        check_positive_int("patience", self.patience)
        check_seed("seed", self.seed, count=self.seeds)
        for name, value in (("split", self.split), ("level", self.level)):
            if not isinstance(value, float | int) or not 0 < value < 1:
                raise ValueError(
                    f"{name} must be a fraction strictly between 0 and 1, got {value!r}; pass "
                    + ("e.g. 0.67 (the first 67% trains)" if name == "split" else "e.g. 0.9")
                )
        if not isinstance(self.validation, float | int) or not 0 <= self.validation < 0.9:
            raise ValueError(
                f"validation must be a fraction in [0, 0.9), got {self.validation!r}; pass e.g. "
                "0.2 (the last 20% of the training part), or 0 for no validation tail"
            )
        check_positive_number("plausible_factor", self.plausible_factor, fix="pass e.g. 3")
        if self.test_size is not None:
            check_positive_int("test_size", self.test_size)
        if self.seasons is not None:
            seasons = tuple(self.seasons)
            for index, length in enumerate(seasons):
                check_positive_int(f"seasons[{index}]", length)
            object.__setattr__(self, "seasons", tuple(sorted(seasons)))
        check_choice("strategy", self.strategy, _STRATEGIES)
        check_choice("scaler", self.scaler, _SCALERS)
        check_choice("scale_on", self.scale_on, ("train", "whole"))
        check_choice("missing", self.missing, ("interpolate", "ffill"))
        if (
            self.strategy == "recursive"
            and self.lag_seasons
            and self.horizon >= min(self.lag_seasons)
        ):
            raise ValueError(
                f"recursive forecasts of {self.horizon} steps would feed back the lag input of "
                f"season {min(self.lag_seasons)} past the last observed value; pass --strategy "
                "direct, a horizon shorter than the season, or seasonal_lags=False"
            )
        if self.validation == 0:
            auto = [spec.name for spec in self.models if spec.norm == "auto"]
            if auto:
                raise ValueError(
                    f"norm='auto' picks the input normalisation on the validation tail, but "
                    f"validation is 0 (models {auto}); pass validation > 0 or a fixed norm"
                )

    @property
    def season(self) -> int | None:
        """The shortest given season, or ``None``."""
        return self.seasons[0] if self.seasons else None

    @property
    def outputs(self) -> int:
        """Outputs of each neural model: ``horizon`` for ``direct``, else 1."""
        return self.horizon if self.strategy == "direct" else 1

    @property
    def lag_seasons(self) -> tuple[int, ...]:
        """The seasons that become lag inputs (``seasonal_lags``): all but the shortest."""
        return tuple(self.seasons[1:]) if self.seasonal_lags and self.seasons else ()

    @property
    def lag_span(self) -> int:
        """Steps of history the lag inputs need before the first input step."""
        return max(self.lag_seasons) - 1 if self.lag_seasons else 0


# --------------------------------------------------------------------------- presets

# The published scripts use Keras' Adam default, learning rate 1e-3.
_KERAS_LR = 1e-3

# The published models train a fixed number of epochs on levels, without a validation tail.
_PUBLISHED = {
    "learning_rate": _KERAS_LR,
    "norm": "none",
    "early_stopping": False,
    "grow_batches": False,
}

_AIRLINE_MODELS = (
    # "Time series prediction with deep learning in Keras": Dense(8, relu) on look_back 1,
    # 200 epochs, batch 2, on the unscaled passenger counts (published test RMSE about 48.6).
    ModelSpec(
        model="mlp", units=(8,), window=1, epochs=200, batch_size=2, scaler="none", **_PUBLISHED
    ),
    # LSTM(4), input_shape=(1, look_back=1), 100 epochs, batch 1 (Keras fit shuffles).
    ModelSpec(model="stateless", units=(4,), window=1, epochs=100, batch_size=1, **_PUBLISHED),
    # LSTM(4, batch_input_shape=(1, 3, 1), stateful=True), 100 x fit(epochs=1) + reset_states.
    ModelSpec(model="stateful", units=(4,), window=3, epochs=100, batch_size=1, **_PUBLISHED),
    ModelSpec(model="stacked", units=(4, 4), window=3, epochs=100, batch_size=1, **_PUBLISHED),
)

_HOUSEHOLD_MODELS = (
    ModelSpec(model="mlp", units=(100,), window=14, epochs=70, batch_size=16, **_PUBLISHED),
    ModelSpec(model="stateless", units=(64,), window=14, epochs=70, batch_size=16, **_PUBLISHED),
    ModelSpec(model="stateful", units=(64,), window=14, epochs=70, batch_size=8, **_PUBLISHED),
    ModelSpec(model="stacked", units=(64, 64), window=14, epochs=70, batch_size=8, **_PUBLISHED),
)

PRESETS: dict[str, CompareConfig] = {
    # Brownlee, "Time Series Prediction with LSTM Recurrent Neural Networks in Python with
    # Keras" and "Time series prediction with deep learning in Keras", as published: 67/33
    # split, create_dataset windows, one step ahead on the test windows; the MLP on unscaled
    # counts, the LSTMs on a MinMaxScaler fitted on the WHOLE series (a leak of the test part),
    # the stateful models' state reset before the test part.
    "airline-classic": CompareConfig(
        models=_AIRLINE_MODELS,
        split=0.67,
        seasons=(12,),
        horizon=1,
        classic_windows=True,
        scale_on="whole",
        warm_start=False,
        validation=0.0,
        preset="airline-classic",
    ),
    # The same series and split, corrected: lstmlab's defaults (scaler on the training part,
    # windows covering the season, the input normalisation and the epochs chosen on a
    # validation tail, warm-started state, the seed median and statistical baselines).
    "airline": CompareConfig(split=0.67, horizon=1, preset="airline"),
    # Brownlee, "How to Develop LSTM Models for Multi-Step Time Series Forecasting of
    # Household Power Consumption": daily sums, whole Sunday-Saturday weeks from 2006-12-17 to
    # 2010-11-20, test = the last 46 weeks, 7 days ahead from each Sunday, direct 7 outputs.
    # The season of 364 days makes the seasonal-naive baseline "the same week one year earlier".
    "household-weekly": CompareConfig(
        models=_HOUSEHOLD_MODELS,
        test_size=46 * 7,
        seasons=(364,),
        horizon=7,
        strategy="direct",
        origin_stride=7,
        validation=0.0,
        # AutoARIMA with a season of 364 days takes hours; AutoETS and AutoTheta stand in.
        baselines=("persistence", "seasonal_naive", "auto_ets", "auto_theta"),
        start="2006-12-17",
        end="2010-11-20",
        preset="household-weekly",
    ),
}

PRESET_FILES = {
    "airline-classic": "airline_passengers.csv",
    "airline": "airline_passengers.csv",
    "household-weekly": "household_power_consumption_days.csv",
}
