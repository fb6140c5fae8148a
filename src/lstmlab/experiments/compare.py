"""The seeds' comparison on any series: statistical baselines against an MLP and three LSTMs.

Every model sees the same chronological split (the first ``split`` of the series trains, the
rest tests), and is scored on the same forecast origins of the test part, in the original
units, each forecast made from the actual values before its origin (rolling origins, models
trained once per fold). The models:

* ``persistence``: the last observed value, for every step ahead;
* the statistical baselines of statsforecast (``lstmlab.experiments.baselines``): AutoETS,
  AutoTheta, AutoARIMA and the seasonal naive forecast, fitted once on the training part;
* ``mlp``: a plain multilayer network on a flattened window;
* ``stateless``: an LSTM on windows, state zeroed for every sample (shuffled batches);
* ``stateful``: a one-layer stateful LSTM trained on the stream layout (row ``i`` of batch
  ``k + 1`` continues row ``i`` of batch ``k``), state reset after every epoch;
* ``stacked``: a two-layer stacked stateful LSTM, trained the same way;
* ``<model>_median``: each neural model's median over its seeds (the seeds whose forecasts
  pass the sanity check), a model of its own, with a conformal prediction interval.

How the neural models are made to generalise:

* scaling (one scaler per series) and missing-value filling use the training part only;
* the window covers the season (``lstmlab.data.seasons``: from the frequency, or detected on
  the training part);
* the input normalisation (``norm``: model the window relative to its last value, normalise
  each window, or neither) is picked per model on a validation tail of the training part
  (``norm="auto"``);
* training stops itself: early stopping on that validation tail (the best epoch's weights
  restored) and learning-rate reduction on plateau, ``epochs`` being the maximum;
* forecasts of several steps are direct (one output per step ahead) by default, so they cannot
  feed on their own errors; every forecast is checked, and a seed with a non-finite value or
  one far outside the plausible range is flagged and left out of the median.

Each neural model trains its seeds at once with the one training driver
(``lstmlab.core.train.fit``), on the ``Forecaster``'s batches, training rule and seed keys
(``lstmlab.pipeline``), and forecasts with the one rollout (``lstmlab.core.rollout``).
Each model of each fold is one task of an executor (``lstmlab.runtime``): in this process, or
one Ray task on a cluster, with the same numbers either way. With ``folds > 1`` the test part
is cut into consecutive blocks and every model is refitted on all data before each block
(rolling-origin backtest with refitting).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import pandas as pd

from lstmlab import scoring
from lstmlab.core.model import (
    ModelConfig,
    Params,
    init_state,
)
from lstmlab.core.rollout import rollout, window_states
from lstmlab.core.train import (
    TrainLog,
    fit,
)
from lstmlab.data.calendar import infer_frequency
from lstmlab.data.layouts import TrainingBatches, make_training_batches
from lstmlab.data.loading import LoadConfig, LoadedSeries, fill_split, load_csv, load_household_days
from lstmlab.data.scaling import Scaler, fit_scaler
from lstmlab.data.seasons import Seasons, choose_seasons, choose_window
from lstmlab.defaults import MIN_WINDOW
from lstmlab.experiments.baselines import BaselineForecast, baseline_forecasts
from lstmlab.experiments.settings import (
    ENSEMBLE_SUFFIX,
    PRESET_FILES,
    PRESETS,
    CompareConfig,
    ModelSpec,
)
from lstmlab.pipeline import AUTO_NORMS, initial_states, training_config
from lstmlab.runtime import Executor, LocalExecutor, ensure_compile_cache, epoch_progress

__all__ = [
    "ANCHORS",
    "AUTO_NORMS",
    "PRESETS",
    "PRESET_FILES",
    "Anchor",
    "CompareConfig",
    "CompareResult",
    "Fold",
    "ModelOutcome",
    "ModelSpec",
    "PreparedData",
    "load_preset_series",
    "make_folds",
    "override_models",
    "prepare_data",
    "run",
]

# ModelSpec, CompareConfig and the presets live in lstmlab.experiments.settings, which imports
# no JAX, so that ``lstmlab compare --help`` builds its flags from them; they are re-exported
# here.


def override_models(
    config: CompareConfig,
    *,
    window: int | None = None,
    epochs: int | None = None,
    norm: str | None = None,
) -> CompareConfig:
    """The same config with every model's window, epochs and/or norm replaced.

    Args:
        config: the comparison.
        window: new window of every model, or None to keep theirs.
        epochs: new epoch count of every model, or None to keep theirs.
        norm: new input normalisation of every model, or None to keep theirs.

    Returns:
        A new ``CompareConfig``.
    """
    changes: dict[str, Any] = {}
    for name, value in (("window", window), ("epochs", epochs), ("norm", norm)):
        if value is not None:
            changes[name] = value
    if not changes:
        return config
    models = tuple(dataclasses.replace(spec, **changes) for spec in config.models)
    return dataclasses.replace(config, models=models)


@dataclass(frozen=True, kw_only=True, slots=True)
class Anchor:
    """A published figure to compare against.

    Attributes:
        model: our model it corresponds to (a name of the comparison), or None.
        description: what was published.
        rmse_low: published test RMSE (the lower end of a range).
        rmse_high: the upper end of a range (equal to ``rmse_low`` for one figure).
        single_run: the figure is one training run (one seed), not a mean over seeds.
    """

    model: str | None
    description: str
    rmse_low: float
    rmse_high: float
    single_run: bool = True

    def text(self) -> str:
        """``47.5`` or ``47.4 to 48.6``."""
        if self.rmse_low == self.rmse_high:
            return f"{self.rmse_low:g}"
        return f"{self.rmse_low:g} to {self.rmse_high:g}"


_AIRLINE_ANCHORS = (
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
)

ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "airline-classic": _AIRLINE_ANCHORS,
    "airline": _AIRLINE_ANCHORS,
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

    Missing values are kept (NaN): ``run`` fills them from the training part only.

    Args:
        name: ``"airline-classic"``, ``"airline"`` or ``"household-weekly"``.
        path: the file (``airline_passengers.csv`` or ``household_power_consumption_days.csv``).

    Returns:
        The loaded series.

    Raises:
        ValueError: unknown preset, or as the loader.
    """
    if name in ("airline-classic", "airline"):
        return load_csv(path, LoadConfig(time_col="Date", targets=("Passengers",), missing="keep"))
    if name == "household-weekly":
        return load_household_days(path, columns=("Global_active_power",), missing="keep")
    raise ValueError(f"unknown preset {name!r}; pass one of {sorted(PRESETS)}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, kw_only=True, slots=True)
class Fold:
    """One train/test cut of a rolling-origin backtest.

    Attributes:
        index: 0 for the first fold.
        n_train: steps of its training part (``[0, n_train)``).
        n_fit: steps the neural models train on; ``[n_fit, n_train)`` is the validation tail.
        end: end (exclusive) of its test block ``[n_train, end)``.
        origins: ``(origins,)`` first forecast step of each test forecast.
        val_origins: ``(origins,)`` the same inside the validation tail (each forecast ends
            inside the training part); empty without a validation tail.
    """

    index: int
    n_train: int
    n_fit: int
    end: int
    origins: np.ndarray
    val_origins: np.ndarray

    @property
    def n_test(self) -> int:
        """Steps of the test block."""
        return self.end - self.n_train


def _validation_steps(config: CompareConfig, n_train: int) -> int:
    """The validation tail of a training part of ``n_train`` steps (0 without validation)."""
    if not config.validation:
        return 0
    return max(config.horizon, int(round(config.validation * n_train)))


def _training_steps_needed(config: CompareConfig, window: int) -> int:
    """Steps a model needs before the validation tail: a window, the lags, the outputs."""
    return window + config.lag_span + config.outputs + (1 if config.classic_windows else 0)


def _shortest_training(config: CompareConfig, window: int) -> int:
    """The fewest steps a training part may have: enough before its validation tail."""
    needed = _training_steps_needed(config, window)
    n_train = needed
    while n_train - _validation_steps(config, n_train) < needed:
        n_train += 1  # the tail grows with n_train by less than a step per step: this ends
    return n_train


def make_folds(config: CompareConfig, steps: int, window: int) -> tuple[Fold, ...]:
    """The folds of a series of ``steps`` steps: test blocks, validation tails, origins.

    The test part (``test_size``, else what ``split`` leaves) is cut into ``folds``
    consecutive blocks of nearly equal length; fold ``k`` trains on every step before its
    block. The validation tail is the last ``validation`` of each training part, at least
    ``horizon`` steps.

    Args:
        config: the comparison.
        steps: length of the series.
        window: the longest window of the models (the first origin of classic windows and
            the shortest training part depend on it).

    Returns:
        One ``Fold`` per fold, in time order.

    Raises:
        ValueError: a series too short for the split, the windows, the folds or the horizon.
    """
    n_test = config.test_size if config.test_size is not None else steps - int(steps * config.split)
    first_train = steps - n_test
    classic = config.classic_windows
    shortest = _shortest_training(config, window)
    # A --test-size too large for the series, or a split that leaves nothing, said in words
    # (the per-fold message below would count a negative training part).
    if first_train < shortest and (config.test_size is not None or first_train < 1):
        asked = (
            f"--test-size {n_test}" if config.test_size is not None else f"--split {config.split}"
        )
        fix = (
            f"pass a --test-size of at most {steps - shortest}, or a longer series"
            if steps > shortest
            else "pass a longer series, or a smaller --window or --horizon"
        )
        raise ValueError(
            f"the series has {steps} steps and {asked} leaves {max(first_train, 0)} of them for "
            f"training; the test part must leave at least {shortest} steps for training "
            f"(window {window}, horizon {config.horizon}"
            + (", and the validation tail" if config.validation else "")
            + f"); {fix}"
        )
    blocks = np.array_split(np.arange(first_train, steps), config.folds)
    folds = []
    for index, block in enumerate(blocks):
        n_train = int(block[0]) if len(block) else steps
        end = int(block[-1]) + 1 if len(block) else steps
        n_val = _validation_steps(config, n_train)
        n_fit = n_train - n_val
        first = n_train + (window if classic else 0)
        last = end - config.horizon - (1 if classic else 0)
        needed = _training_steps_needed(config, window)
        if n_fit < needed or first > last:
            raise ValueError(
                f"the series has {steps} steps: fold {index + 1} of {config.folds} trains on "
                f"{n_train} ({n_val} of them the validation tail) and tests on {end - n_train}, "
                f"too few for window {window} and horizon {config.horizon} (training needs at "
                f"least {needed} steps before the validation tail, a test block at least "
                f"{config.horizon + (window + 1 if classic else 0)}); pass a longer series, a "
                "smaller --window or --horizon, fewer --folds, or another --split"
            )
        if config.season is not None and first < config.season:
            raise ValueError(
                f"season {config.season} reaches before the start of the series: the first "
                f"forecast origin is step {first}; pass a shorter --seasons or a larger --split"
            )
        origins = np.arange(first, last + 1, config.origin_stride, dtype=np.int64)
        val_origins = (
            np.arange(n_fit, n_train - config.horizon + 1, dtype=np.int64)
            if n_val
            else np.zeros(0, np.int64)
        )
        folds.append(
            Fold(
                index=index,
                n_train=n_train,
                n_fit=n_fit,
                end=end,
                origins=origins,
                val_origins=val_origins,
            )
        )
    return tuple(folds)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class PreparedData:
    """One fold's data, shared by every model: the filled inputs and the actual values.

    Attributes:
        targets: ``(time, series)`` float64 in original units as observed (NaN where a value
            is missing: such steps are left out of the scores).
        filled: ``(time, series)`` float64, the targets with gaps filled for use as inputs:
            the training part from its own values only, the rest causally
            (``lstmlab.data.loading.fill_split``).
        features: ``(time, features)`` float64 extra inputs, filled the same way.
        fold: the fold (split, validation tail, origins).
        series_names: one name per series.
        feature_names: the extra input columns.
        index: the timestamps of the series, or None.
        config: the comparison (its scaler, ``scale_on``, horizon).
    """

    targets: np.ndarray
    filled: np.ndarray
    features: np.ndarray
    fold: Fold
    series_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    index: pd.Index | None
    config: CompareConfig

    @property
    def num_series(self) -> int:
        """Series (streams) in the data."""
        return int(self.targets.shape[1])

    @property
    def num_features(self) -> int:
        """Inputs per step: the series' own value, its seasonal lags, the extra features."""
        return 1 + len(self.config.lag_seasons) + int(self.features.shape[1])

    @property
    def n_train(self) -> int:
        """Steps of the training part."""
        return self.fold.n_train

    @property
    def origins(self) -> np.ndarray:
        """The test origins."""
        return self.fold.origins

    def scaling(self, kind: str | None = None) -> tuple[np.ndarray, Scaler]:
        """The scaled model inputs and the target scaler (one column per series).

        Args:
            kind: the scaler; ``None`` for the comparison's.

        Returns:
            ``(inputs (time, series, features) float32, target_scaler)``: the scaled value of
            each series first, then its seasonal lags (``CompareConfig.seasonal_lags``: at
            step ``t`` the value of step ``t + 1 - season``, the step after ``t`` one season
            earlier; the first steps repeat the first value), then the scaled extra features
            (shared by all series). The scalers are fitted on the training part
            (``scale_on="train"``) or on the whole series (``"whole"``).
        """
        kind = self.config.scaler if kind is None else kind
        fitted = self.n_train if self.config.scale_on == "train" else len(self.filled)
        steps = len(self.filled)
        target_scaler = fit_scaler(self.filled[:fitted], kind, columns=self.series_names)
        # (time, series) -> (time, series, 1)
        scaled_targets = target_scaler.transform(self.filled)  # (time, series)
        columns = [scaled_targets[:, :, None]]
        for season in self.config.lag_seasons:
            steps_back = np.maximum(np.arange(steps) + 1 - season, 0)  # (time,)
            columns.append(scaled_targets[steps_back][:, :, None])
        if self.features.shape[1]:
            feature_scaler = fit_scaler(self.features[:fitted], kind, columns=self.feature_names)
            scaled = feature_scaler.transform(self.features)  # (time, features)
            # (time, features) -> (time, series, features): every series sees the same ones
            columns.append(
                np.broadcast_to(scaled[:, None, :], (steps, self.num_series, scaled.shape[1]))
            )
        return np.concatenate(columns, axis=2).astype(np.float32), target_scaler

    def actual(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``(origins, horizon, series)`` float64: the observed values forecast (NaN: missing)."""
        steps = origins[:, None] + np.arange(horizon)  # (origins, horizon)
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
    if np.any(np.isinf(array)):
        raise ValueError(f"{name} hold infinite values; remove or mark them missing (NaN) first")
    return array


def prepare_data(
    config: CompareConfig,
    targets: Any,
    features: Any = None,
    *,
    fold: Fold | None = None,
    index: pd.Index | None = None,
    series_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    window: int | None = None,
) -> PreparedData:
    """One fold's data: the gaps filled from the training part only, origins chosen.

    Args:
        config: the comparison.
        targets: ``(time,)`` or ``(time, series)``, NaN where missing; several columns are
            several series of one global model (each one stream of the stateful layout).
        features: optional ``(time, features)`` extra inputs, shared by all series; their
            future values are used as known when forecasting several steps.
        fold: the fold; ``None`` for the first of ``make_folds(config, len(targets), window)``.
        index: timestamps of the rows, for the report.
        series_names: one name per series.
        feature_names: one name per feature.
        window: the longest window (for ``make_folds``); ``None`` for the longest given
            window of the models (1 when none is given).

    Returns:
        ``PreparedData``.

    Raises:
        ValueError: mismatched lengths, a training part without a value, or a series too
            short for the split, the windows, the season or the horizon.
    """
    targets = _as_2d("targets", targets)
    steps, num_series = targets.shape
    features = np.zeros((steps, 0)) if features is None else _as_2d("features", features)
    if features.shape[0] != steps:
        raise ValueError(
            f"features have {features.shape[0]} rows, targets {steps}; pass them aligned row by row"
        )
    if fold is None:
        if window is None:
            window = max((spec.window or 1 for spec in config.models), default=1)
        fold = make_folds(config, steps, window)[0]
    filled, _ = fill_split(targets, fold.n_train, config.missing)
    filled_features = (
        fill_split(features, fold.n_train, config.missing)[0] if features.shape[1] else features
    )
    names = (
        tuple(series_names)
        if series_names is not None
        else tuple(f"series_{j}" for j in range(num_series))
    )
    fnames = (
        tuple(feature_names)
        if feature_names is not None
        else tuple(f"feature_{j}" for j in range(features.shape[1]))
    )
    return PreparedData(
        targets=targets,
        filled=filled,
        features=filled_features,
        fold=fold,
        series_names=names,
        feature_names=fnames if features.shape[1] else (),
        index=index,
        config=config,
    )


def _windows(inputs: np.ndarray, first_targets: np.ndarray, window: int) -> np.ndarray:
    """``(samples, series, window, features)``: the inputs before each first target."""
    steps = first_targets[:, None] + np.arange(-window, 0)  # (samples, window)
    # (samples, window, series, features) -> (samples, series, window, features)
    return np.ascontiguousarray(inputs[steps].transpose(0, 2, 1, 3))


def _samples(
    inputs: np.ndarray, first_targets: np.ndarray, window: int, outputs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows and targets of the given first target steps, in time order.

    Returns:
        ``x (samples, series, window, features)`` and ``y (samples, series, outputs)``.
    """
    x = _windows(inputs, first_targets, window)
    steps = first_targets[:, None] + np.arange(outputs)  # (samples, outputs)
    # (samples, outputs, series) -> (samples, series, outputs)
    y = np.ascontiguousarray(inputs[steps, :, 0].transpose(0, 2, 1))
    return x, y


def _training_targets(fold: Fold, config: CompareConfig, window: int, fit_end: int) -> np.ndarray:
    """First target steps of the training samples: every forecast ends before ``fit_end``."""
    last = fit_end - config.outputs - (1 if config.classic_windows else 0)
    # With seasonal lags, the first window starts where its lag inputs are observed values.
    return np.arange(window + config.lag_span, last + 1, dtype=np.int64)


# --------------------------------------------------------------------------- results


def _metrics(forecasts: np.ndarray, actual: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """``scoring.point_metrics`` with one MASE scale per origin and series.

    Args:
        forecasts: ``(samples, origins, horizon, series)``.
        actual: ``(origins, horizon, series)``, NaN where missing.
        scale: ``(origins, series)``: the MASE scale of the fold each origin belongs to.
    """
    ones = np.ones(actual.shape[-1])
    metrics = scoring.point_metrics(forecasts, actual, ones)
    per_origin = scale[:, None, :]  # (origins, 1, series)
    if not np.all(np.isfinite(per_origin) & (per_origin > 0)):
        # A training part that repeats itself exactly has no MASE (scoring.mase_scale).
        metrics["mase"] = np.full_like(metrics["mae"], np.nan)
        metrics["mase_per_step"] = np.full_like(metrics["mae_per_step"], np.nan)
        return metrics
    scaled = scoring.point_metrics(forecasts / per_origin, actual / per_origin, ones)
    metrics["mase"] = scaled["mae"]
    metrics["mase_per_step"] = scaled["mae_per_step"]
    return metrics


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class ModelOutcome:
    """One model of the comparison: its forecasts and scores.

    Attributes:
        name: short name (``"persistence"``, ``"auto_ets"``, ``"stateful"``,
            ``"stateful_median"``, ...).
        label: human name.
        kind: ``"baseline"``, ``"neural"`` (one sample per seed) or ``"ensemble"`` (a neural
            model's median over its unflagged seeds).
        description: what the model is, one line.
        forecasts: ``(samples, origins, horizon, series)`` in the original units, over the
            origins of every fold (one sample for a baseline or an ensemble).
        metrics: ``scoring.point_metrics`` over all origins (each ``(samples,)``, or
            ``(samples, horizon)`` per step); MASE against the seasonal naive (or naive)
            in-sample error of each fold's training part.
        fold_rmse: ``(samples, folds)`` RMSE of each fold.
        seconds: wall time of training and forecasting, all seeds and folds.
        lower: ``(1, origins, horizon, series)`` lower end of the prediction interval, or None.
        upper: the upper end, or None.
        coverage: the share of the actual test values inside the interval (NaN without one).
        flags: per seed, which forecasts failed the sanity check (a neural model), else None.
        validation_rmse: ``(samples,)`` RMSE on the validation tail of the first fold, original
            units (empty without one).
        validation_origins: the validation forecasts (origins) of the first fold behind
            ``validation_rmse``, the choice of ``norm`` and the intervals.
        norm: the input normalisation each fold used (a neural model or ensemble).
        norm_scores: validation RMSE of each candidate normalisation (first fold), when
            ``norm="auto"`` chose.
        layout: how the training batches were laid out (empty for a baseline).
        final_loss: ``(seeds,)`` training MSE (scaled units) of the last epoch each seed ran.
        losses: ``(epochs, seeds)`` training MSE of every epoch (first fold), as the driver
            logged it (NaN after a seed stopped).
        epochs_run: ``(seeds,)`` epochs each seed trained (first fold).
        best_epoch: ``(seeds,)`` the epoch whose weights were kept (first fold), or None.
        spec: the ``ModelSpec`` (window resolved); None for a baseline.
    """

    name: str
    label: str
    kind: str
    description: str
    forecasts: np.ndarray
    metrics: dict[str, np.ndarray]
    fold_rmse: np.ndarray
    seconds: float
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    coverage: float = float("nan")
    flags: scoring.SeedFlags | None = None
    validation_rmse: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    validation_origins: int = 0
    norm: tuple[str, ...] = ()
    norm_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    layout: str = ""
    final_loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    losses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    epochs_run: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    best_epoch: np.ndarray | None = None
    spec: ModelSpec | None = None

    @property
    def is_baseline(self) -> bool:
        """Whether this is a baseline (no training)."""
        return self.kind == "baseline"

    @property
    def kept(self) -> np.ndarray:
        """``(samples,)`` bool: the samples whose forecasts passed the sanity check."""
        if self.flags is None:
            return np.ones(len(self.forecasts), bool)
        return ~self.flags.flagged

    def scores(self, metric: str = "rmse") -> np.ndarray:
        """``metric`` of the samples that passed the sanity check."""
        return self.metrics[metric][self.kept]

    def mean(self, metric: str) -> float:
        """Mean of ``metric`` over the samples that passed the sanity check (NaN if none)."""
        values = self.scores(metric)
        return float(np.mean(values)) if values.size else float("nan")

    def std(self, metric: str) -> float:
        """Sample standard deviation over the kept samples (0 for one sample)."""
        values = self.scores(metric)
        return float(np.std(values, ddof=1)) if values.size > 1 else 0.0

    def median(self, metric: str) -> float:
        """Median of ``metric`` over the kept samples."""
        values = self.scores(metric)
        return float(np.median(values)) if values.size else float("nan")

    def worst(self, metric: str) -> float:
        """The worst sample's ``metric``, flagged seeds included (``inf`` if non-finite)."""
        values = np.asarray(self.metrics[metric], dtype=np.float64)
        return float(np.max(np.where(np.isfinite(values), values, np.inf)))

    def mean_forecast(self) -> np.ndarray:
        """``(origins, horizon, series)``: the median of the kept samples."""
        return np.median(self.forecasts[self.kept], axis=0)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class CompareResult:
    """Everything a comparison measured.

    Attributes:
        config: the comparison, its models' windows resolved.
        outcomes: baselines first, then each neural model and its seed median.
        actual: ``(origins, horizon, series)`` observed values (NaN where missing).
        origins: ``(origins,)`` step index of each forecast's first step, all folds.
        folds: the folds.
        seasons: the seasons used and where they came from.
        targets: ``(time, series)`` the whole series in original units (NaN where missing).
        index: timestamps of the series, or None.
        series_names: one name per series.
        feature_names: the extra inputs.
        seconds: wall time of the whole comparison.
        best_validated: the name of the neural model whose seed median had the lowest
            validation RMSE (``None`` without a validation tail or neural models).
        verdict: which model is best, and which tie with it within the noise.
        state_test: the stateful LSTM against the stateless one over seeds (Mann-Whitney),
            when both ran.
        notes: remarks for the report (protocol differences, filling, flags, ...).
        load_lines: the loader's report, one line per fact (empty for arrays).
        anchors: the published figures of the preset (empty without a preset).
    """

    config: CompareConfig
    outcomes: tuple[ModelOutcome, ...]
    actual: np.ndarray
    origins: np.ndarray
    folds: tuple[Fold, ...]
    seasons: Seasons
    targets: np.ndarray
    index: pd.Index | None
    series_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    seconds: float
    best_validated: str | None = None
    verdict: scoring.Verdict | None = None
    state_test: scoring.SeedTest | None = None
    notes: tuple[str, ...] = ()
    load_lines: tuple[str, ...] = ()
    anchors: tuple[Anchor, ...] = ()

    @property
    def n_train(self) -> int:
        """Steps of the first fold's training part."""
        return self.folds[0].n_train

    @property
    def n_test(self) -> int:
        """Steps of the test part (all folds)."""
        return self.folds[-1].end - self.folds[0].n_train

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
        """The model with the lowest mean ``metric`` (see ``verdict`` for ties)."""
        scored = [o for o in self.outcomes if np.isfinite(o.mean(metric))]
        return min(scored, key=lambda outcome: outcome.mean(metric))

    def best_statistical(self) -> ModelOutcome | None:
        """The baseline with the lowest mean test RMSE, persistence only when it is alone.

        Picked with hindsight (on the test part): the reports' reference, not a choice a
        user could have made.
        """
        baselines = [o for o in self.outcomes if o.is_baseline and np.isfinite(o.mean("rmse"))]
        statistical = [o for o in baselines if o.name != "persistence"] or baselines
        return min(statistical, key=lambda o: o.mean("rmse")) if statistical else None

    def relative_to_persistence(self, name: str, metric: str = "rmse") -> float:
        """``mean(metric) / persistence's metric - 1``: below 0 beats persistence."""
        return self.outcome(name).mean(metric) / self.outcome("persistence").mean(metric) - 1.0

    @property
    def origin_times(self) -> pd.Index | None:
        """Timestamps of the forecast origins, or None without an index."""
        return None if self.index is None else self.index[self.origins]


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
    read_from: int | None = None,
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
        read_from: the first target step whose window a stateful model reads from zero state;
            ``None`` for ``window`` (the start of the series: a warm start).

    Returns:
        ``(seeds, origins, horizon, series)`` float64.
    """
    num_series, features = inputs.shape[1], inputs.shape[2]
    num_origins = len(origins)
    rows = num_origins * num_series
    seeds = int(jax.tree.leaves(params)[0].shape[0])
    first = window if read_from is None else read_from
    # Every window from the first one read up to the last origin, in order.
    first_targets = np.arange(first, int(origins[-1]) + 1, dtype=np.int64)
    windows_all = _windows(inputs, first_targets, window)  # (windows, series, window, features)
    positions = origins - first  # the window of each origin, a row of windows_all
    # (origins, series, window, features) -> (origins * series, window, features)
    x = windows_all[positions].reshape(rows, window, features)
    state: Any = ()
    if model_config.stateful:
        # NumPy on the host: eager jnp broadcasts and gathers would compile a program each
        zero = jax.tree.map(
            lambda leaf: np.broadcast_to(leaf, (seeds, *leaf.shape)),
            init_state(model_config, num_series),
        )
        before = window_states(model_config, params, zero, windows_all, seeds=True)
        # (seeds, windows, series, units) -> (seeds, origins * series, units)
        state = jax.tree.map(
            lambda leaf: np.asarray(leaf)[:, positions].reshape(seeds, rows, leaf.shape[-1]),
            before,
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
        future=future,
        seeds=True,
    )  # (seeds, origins * series, horizon, 1)
    forecasts = np.asarray(forecasts, dtype=np.float64).reshape(
        seeds, num_origins, num_series, horizon
    )
    return forecasts.transpose(0, 1, 3, 2)  # (seeds, origins, horizon, series)


def _batches(
    spec: ModelSpec,
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[TrainingBatches, str]:
    """Lay out training (and validation) samples ``(samples, series, ...)`` for ``spec``.

    The ``Forecaster``'s layout (``make_training_batches``), from each series' samples.

    Returns:
        ``(batches, layout description)``.
    """
    num_series = x.shape[1]

    def per_series(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(x[:, j], y[:, j]) for j in range(num_series)]

    batches = make_training_batches(
        per_series(x, y),
        None if validation is None else per_series(*validation),
        stateful=spec.stateful,
        batch_size=spec.batch_size,
        grow=spec.grow_batches,
    )
    trim = batches.trim
    if spec.stateful:
        layout = (
            f"stream layout: {batches.streams} stream(s) per series x {num_series} series = "
            f"batch size {batches.batch_size}, {trim.num_batches} batches per epoch, state "
            f"reset after every epoch; {trim}"
        )
        if batches.batch_size == 1:
            layout += " (with batch size 1 the stream and the official layouts agree)"
        return batches, layout
    layout = (
        f"batches of {trim.batch_size} samples"
        + (", reshuffled every epoch" if spec.shuffle else "")
        + f"; used {trim.used} of {trim.total} samples"
        + (f", the {trim.trimmed} oldest left out" if trim.trimmed else "")
    )
    return batches, layout


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class _Candidate:
    """One trained normalisation of one model in one fold."""

    norm: str
    val_forecasts: np.ndarray  # (seeds, val origins, horizon, series), original units
    forecasts: np.ndarray  # (seeds, origins, horizon, series), original units
    log: TrainLog
    layout: str


def _train_candidate(
    spec: ModelSpec,
    norm: str,
    data: PreparedData,
    quiet: bool,
    *,
    refit_epochs: int | None = None,
) -> _Candidate:
    """Train every seed of one model with one input normalisation, then forecast.

    As ``Forecaster.fit`` trains a candidate (``lstmlab.pipeline``): its batches, its training
    rule, seed ``s`` from ``jax.random.key(s)``, and its validation samples, whose every target
    lies in the validation tail. With ``refit_epochs`` the model is trained again from its
    initial weights on the whole training part, validation tail included, for that many
    epochs (no early stopping), and only the test part is forecast.
    """
    config, fold = data.config, data.fold
    window, outputs = spec.window, config.outputs
    inputs, target_scaler = data.scaling(spec.scaler)
    model_config = spec.model_config(data.num_features, outputs, norm)
    # The validation tail is held out whenever there is one (its forecasts rank the models
    # and calibrate the intervals: they must be out of sample), except in the refit.
    held_out = fold.n_fit < fold.n_train and refit_epochs is None
    early = spec.early_stopping and held_out
    fit_end = fold.n_fit if held_out else fold.n_train
    train_targets = _training_targets(fold, config, window, fit_end)
    x, y = _samples(inputs, train_targets, window, outputs)
    validation = None
    if early:  # the driver watches the validation loss
        # Every target of a validation sample lies in the tail, as in the Forecaster's; one
        # stream per series carries its state into them (after the last training sample).
        val_targets = np.arange(fit_end, fold.n_train - outputs + 1, dtype=np.int64)
        validation = _samples(inputs, val_targets, window, outputs)
    batches, layout = _batches(spec, x, y, validation)
    train_config = training_config(
        epochs=spec.epochs if refit_epochs is None else refit_epochs,
        learning_rate=spec.learning_rate,
        shuffle=bool(spec.shuffle),
        seed=config.seed,
        patience=config.patience if early else None,
    )
    seeds = range(config.seed, config.seed + config.seeds)
    states = initial_states(model_config, train_config, seeds, batches.batch_size)
    title = f"{spec.label} ({norm}{', refit' if refit_epochs else ''}) x{config.seeds}"
    with epoch_progress(train_config.epochs, title, quiet=quiet) as progress:

        def on_epoch(epoch: int, losses: np.ndarray, val_losses: np.ndarray | None) -> None:
            progress.advance(float(np.nanmean(losses)) if np.any(np.isfinite(losses)) else None)

        states, log = fit(
            model_config,
            train_config,
            states,
            batches.x_batches,
            batches.y_batches,
            validation=batches.validation,
            validation_state=batches.validation_state,
            on_epoch=None if quiet else on_epoch,
        )
    if early:
        layout += (
            f"; validation tail: the last {fold.n_train - fold.n_fit} steps of the training "
            f"part, early stopping after {config.patience} epochs without improvement"
        )
    if refit_epochs is not None:
        layout += (
            f"; then trained again on the whole training part for {refit_epochs} epochs (the "
            "median over seeds of the best epoch count)"
        )
    scale = np.asarray(target_scaler.scale)  # (series,)
    offset = np.asarray(target_scaler.offset)

    def forecast(origins: np.ndarray, first_read: int | None) -> np.ndarray:
        if len(origins) == 0:
            return np.zeros((config.seeds, 0, config.horizon, data.num_series))
        scaled = _forecast_scaled(
            model_config,
            states.params,
            inputs,
            origins,
            window=window,
            horizon=config.horizon,
            strategy=config.strategy,
            read_from=first_read,
        )
        return scaled * scale + offset

    # A warm start reads from the first window training saw (its lag inputs observed);
    # without one, a stateful model reads from a reset state at the first origin.
    warm = window + config.lag_span
    cold = warm if config.warm_start else int(fold.origins[0])
    return _Candidate(
        norm=norm,
        val_forecasts=forecast(fold.val_origins[:0] if refit_epochs else fold.val_origins, warm),
        forecasts=forecast(fold.origins, cold),
        log=log,
        layout=layout,
    )


def _ensemble_rmse(forecasts: np.ndarray, actual: np.ndarray, flagged: np.ndarray) -> float:
    """RMSE of the seed median (over the unflagged seeds); ``inf`` when none is usable."""
    if forecasts.shape[1] == 0 or flagged.all():
        return float("inf")
    median = scoring.seed_ensemble(forecasts, flagged)
    value = float(scoring.point_metrics(median, actual, np.ones(actual.shape[-1]))["rmse"][0])
    return value if np.isfinite(value) else float("inf")


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class NeuralRun:
    """What one model made in one fold: the task an executor returns.

    Attributes:
        spec: the model.
        fold: the fold index.
        norm: the input normalisation kept.
        norm_scores: validation RMSE of the seed median of each candidate normalisation.
        forecasts: ``(seeds, origins, horizon, series)`` test forecasts, original units.
        val_forecasts: ``(seeds, val origins, horizon, series)``.
        flags: the sanity check of every seed (test and validation forecasts).
        val_flagged: ``(seeds,)`` the seeds whose validation forecasts failed the check (the
            validation median, norm choice and ranking leave them out).
        log: the driver's log of the kept normalisation.
        layout: how the batches were laid out.
        seconds: wall time, every candidate included.
    """

    spec: ModelSpec
    fold: int
    norm: str
    norm_scores: dict[str, float]
    forecasts: np.ndarray
    val_forecasts: np.ndarray
    flags: scoring.SeedFlags
    val_flagged: np.ndarray
    log: TrainLog
    layout: str
    seconds: float


def _train_and_forecast(
    spec: ModelSpec,
    data: PreparedData,
    quiet: bool = True,
) -> NeuralRun:
    """Train every seed of one model (each candidate normalisation), then forecast.

    The task an executor runs: module-level, with picklable arguments (frozen dataclasses,
    NumPy arrays), so Ray can ship it; the same arguments give the same numbers anywhere.
    """
    ensure_compile_cache()  # a Ray worker is a process of its own
    started = time.perf_counter()
    config, fold = data.config, data.fold
    norms = AUTO_NORMS if spec.norm == "auto" else (spec.norm,)
    low, high = scoring.plausible_range(data.filled[: fold.n_train], config.plausible_factor)
    val_actual = data.actual(fold.val_origins, config.horizon)
    candidates, val_flags, scores = [], [], {}
    for norm in norms:
        candidate = _train_candidate(spec, norm, data, quiet)
        # The choice sees the validation tail only: its flags, its forecasts.
        val_flag = scoring.flag_forecasts(candidate.val_forecasts, low, high).flagged
        candidates.append(candidate)
        val_flags.append(val_flag)
        scores[norm] = _ensemble_rmse(candidate.val_forecasts, val_actual, val_flag)
    chosen = scoring.lowest([scores[norm] for norm in norms])  # ties: AUTO_NORMS' order
    kept, layout = candidates[chosen], candidates[chosen].layout
    forecasts = kept.forecasts
    if config.refit and fold.n_fit < fold.n_train:
        # The validation tail is the most recent part of the training data: once it has
        # chosen the norm and the epoch count, the model learns from it too.
        epochs = kept.log.refit_epochs(val_flags[chosen]) or spec.epochs
        refit = _train_candidate(spec, kept.norm, data, quiet, refit_epochs=epochs)
        forecasts = refit.forecasts
        layout = refit.layout
    # Every forecast of a seed is checked, validation and test: a seed that fails either is
    # left out of the test median (a plausibility check, not a score: no actual value).
    flag = scoring.flag_forecasts(
        np.concatenate([kept.val_forecasts, forecasts], axis=1), low, high
    )
    return NeuralRun(
        spec=spec,
        fold=fold.index,
        norm=kept.norm,
        norm_scores=scores if len(norms) > 1 else {},
        forecasts=forecasts,
        val_forecasts=kept.val_forecasts,
        flags=flag,
        val_flagged=val_flags[chosen],
        log=kept.log,
        layout=layout,
        seconds=time.perf_counter() - started,
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


def _frequency(index: pd.Index | None) -> str | None:
    """The pandas frequency of a DatetimeIndex (given or inferred), else None (steps too)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    return index.freqstr or infer_frequency(index)


def _resolve_models(
    config: CompareConfig, seasons: Seasons, n_fit: int
) -> tuple[tuple[ModelSpec, ...], tuple[str, ...]]:
    """Every model with its window fixed: given, or covering the shortest season."""
    # At most a third of the part the models train on, so that enough windows remain.
    minimum = MIN_WINDOW
    choice = choose_window(seasons.lengths, minimum=minimum, maximum=max(minimum, n_fit // 3))
    resolved = [spec.name for spec in config.models if spec.window is None]
    models = tuple(
        dataclasses.replace(spec, window=choice.window) if spec.window is None else spec
        for spec in config.models
    )
    lines = (f"{choice.note} (models {', '.join(resolved)})",) if resolved else ()
    return models, lines


def _notes(
    config: CompareConfig,
    folds: Sequence[Fold],
    seasons: Seasons,
    actual: np.ndarray,
    targets: np.ndarray,
    feature_names: Sequence[str] = (),
) -> list[str]:
    """The report's notes on the protocol, in the order the report lists them."""
    first = folds[0]
    notes = [
        f"split: {first.n_train} steps to train, {folds[-1].end - first.n_train} to test"
        + (
            f", in {len(folds)} folds refitted on all steps before each block "
            f"(test blocks of {', '.join(str(f.n_test) for f in folds)} steps)"
            if len(folds) > 1
            else ""
        )
        + f"; the {config.scaler} scaler is fitted on the "
        + (
            "training part only"
            if config.scale_on == "train"
            else "WHOLE series (the published leak)"
        )
        + ", the metrics are in the original units",
        f"{sum(len(f.origins) for f in folds)} forecast origins, {config.horizon} step(s) ahead "
        + (
            "(direct: each model has one output per step ahead)"
            if config.strategy == "direct" and config.horizon > 1
            else "(recursive: each prediction is fed back as the next input)"
            if config.horizon > 1
            else "(one step ahead from the real previous values)"
        ),
        f"seasons: {', '.join(map(str, seasons.lengths)) or 'none'} ({seasons.source})",
        "the statistical baselines (statsforecast) are fitted once per fold on the training "
        "part and forecast every origin from the actual values before it, as the neural models",
        *(
            [
                "stateful models forecast from the state reached by reading the series in "
                + (
                    "order from its start up to each origin (warm start: the first test "
                    "forecast continues from the end of the training series)"
                    if config.warm_start
                    else "order from a state reset at the first test origin (the published scripts)"
                )
            ]
            if any(spec.stateful for spec in config.models)
            else []
        ),
        "MASE divides by the in-sample error of the "
        + (
            f"seasonal naive forecast (season {config.season})"
            if config.season
            else "naive forecast"
        )
        + " on each fold's training part",
    ]
    if first.n_fit < first.n_train:
        notes.append(
            f"validation tail: the last {first.n_train - first.n_fit} steps of each training "
            "part; it stops the training (early stopping, best weights restored), picks each "
            "model's input normalisation (norm auto), ranks the neural models "
            f"(best-validated) and calibrates the {config.level:.0%} conformal intervals of "
            "the seed medians"
        )
    if feature_names and config.horizon > 1 and config.strategy == "recursive":
        notes.append(
            "recursive forecasts use the observed future values of the extra features "
            f"{list(feature_names)} (treated as known in advance)"
        )
    if config.lag_seasons:
        notes.append(
            "seasonal lag inputs: beside each input value the neural models read the value "
            f"{' and '.join(map(str, config.lag_seasons))} steps before the step after it (the "
            "longer seasons, which the window does not cover)"
        )
    notes.extend(seasons.notes)
    filled_train = int(np.count_nonzero(np.isnan(targets[: first.n_train])))
    filled_test = int(np.count_nonzero(np.isnan(targets[first.n_train :])))
    if filled_train or filled_test:
        notes.append(
            f"missing values: {filled_train} in the first training part filled ({config.missing}) "
            f"from training values only, {filled_test} in the test part filled forward for use "
            "as inputs only (never as actual values; with folds, each later training part "
            "fills its own gaps from its own values)"
        )
    if config.classic_windows:
        notes.append(
            "classic windows: training windows end one step before the end of the training "
            "part and test origins run from step n_train + window to the next-to-last step, "
            "as create_dataset does"
        )
    missing = int(np.count_nonzero(np.isnan(actual)))
    if missing:
        notes.append(
            f"{missing} forecast step(s) have no actual value (missing in the data): they are "
            "left out of every score"
        )
    zeros = int(np.count_nonzero(actual == 0))
    if zeros:
        # MAPE divides by the actual value: it is taken over the non-zero ones only.
        notes.append(
            f"MAPE leaves out the {zeros} forecast step(s) whose actual value is 0 (of "
            f"{actual.size}); RMSE and MAE include them"
        )
    return notes


def _baseline_outcome(
    name: str, runs: Sequence[BaselineForecast], folds: Sequence[Fold], actual, scale
) -> ModelOutcome:
    forecasts = np.concatenate([r.forecasts for r in runs], axis=1)
    lower = upper = None
    coverage = float("nan")
    if all(r.lower is not None for r in runs):
        lower = np.concatenate([r.lower for r in runs], axis=1)
        upper = np.concatenate([r.upper for r in runs], axis=1)
        coverage = scoring.interval_coverage(lower[0], upper[0], actual)
    return ModelOutcome(
        name=name,
        label=runs[0].label,
        kind="baseline",
        description=runs[0].description
        + (f"; chose {', '.join(p for p in runs[0].params if p)}" if any(runs[0].params) else ""),
        forecasts=forecasts,
        metrics=_metrics(forecasts, actual, scale),
        fold_rmse=_fold_rmse(forecasts, actual, folds),
        seconds=sum(r.seconds for r in runs),
        lower=lower,
        upper=upper,
        coverage=coverage,
    )


def _fold_rmse(forecasts: np.ndarray, actual: np.ndarray, folds: Sequence[Fold]) -> np.ndarray:
    """``(samples, folds)`` RMSE of each fold's origins."""
    out, start = [], 0
    ones = np.ones(actual.shape[-1])
    for fold in folds:
        stop = start + len(fold.origins)
        out.append(
            scoring.point_metrics(forecasts[:, start:stop], actual[start:stop], ones)["rmse"]
        )
        start = stop
    return np.stack(out, axis=1)


def _seed_medians(
    runs: Sequence[NeuralRun], datas: Sequence[PreparedData]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed median of every fold's test forecasts and its split-conformal interval.

    The interval's half-widths come from the validation tail's residuals of the seed median
    (infinite without a tail, or when every seed was flagged there).

    Returns:
        ``(median, lower, upper)``, each ``(1, origins, horizon, series)`` over all folds.
    """
    config = datas[0].config
    medians, lowers, uppers = [], [], []
    for run, data in zip(runs, datas, strict=True):
        median = scoring.seed_ensemble(run.forecasts, run.flags.flagged)
        medians.append(median)
        fold = data.fold
        if len(fold.val_origins) and not run.val_flagged.all():
            val_median = scoring.seed_ensemble(run.val_forecasts, run.val_flagged)
            residuals = data.actual(fold.val_origins, config.horizon) - val_median[0]
            half = scoring.conformal_halfwidths(residuals, config.level)  # (horizon, series)
        else:
            half = np.full((config.horizon, data.num_series), np.inf)
        lowers.append(median - half)
        uppers.append(median + half)
    return (
        np.concatenate(medians, axis=1),
        np.concatenate(lowers, axis=1),
        np.concatenate(uppers, axis=1),
    )


def _neural_outcomes(
    runs: Sequence[NeuralRun],
    datas: Sequence[PreparedData],
    actual: np.ndarray,
    scale: np.ndarray,
) -> tuple[ModelOutcome, ModelOutcome]:
    """The model over its seeds and its seed median, from its run in every fold."""
    config = datas[0].config
    folds = [d.fold for d in datas]
    spec = runs[0].spec
    forecasts = np.concatenate([r.forecasts for r in runs], axis=1)
    flagged = np.any([r.flags.flagged for r in runs], axis=0)
    flags = scoring.SeedFlags(
        flagged=flagged,
        non_finite=np.sum([r.flags.non_finite for r in runs], axis=0),
        out_of_range=np.sum([r.flags.out_of_range for r in runs], axis=0),
        reasons=tuple(
            _reason(reason, r.fold, config.seed, len(runs))
            for r in runs
            for reason in r.flags.reasons
        ),
    )
    ensemble, lower, upper = _seed_medians(runs, datas)
    first = datas[0]
    val_actual = first.actual(first.fold.val_origins, config.horizon)
    ones = np.ones(first.num_series)
    if len(first.fold.val_origins):
        val_rmse = scoring.point_metrics(runs[0].val_forecasts, val_actual, ones)["rmse"]
        val_ensemble = np.array(
            [_ensemble_rmse(runs[0].val_forecasts, val_actual, runs[0].val_flagged)]
        )
    else:
        val_rmse = val_ensemble = np.zeros(0)
    log = runs[0].log
    norms = tuple(r.norm for r in runs)
    seconds = sum(r.seconds for r in runs)
    finite_last = (
        [
            log.loss[np.flatnonzero(np.isfinite(log.loss[:, s]))[-1], s]
            if np.any(np.isfinite(log.loss[:, s]))
            else np.nan
            for s in range(log.loss.shape[1])
        ]
        if len(log.loss)
        else [np.nan] * config.seeds
    )
    neural = ModelOutcome(
        name=spec.name,
        label=spec.label,
        kind="neural",
        description=spec.describe(),
        forecasts=forecasts,
        metrics=_metrics(forecasts, actual, scale),
        fold_rmse=_fold_rmse(forecasts, actual, folds),
        seconds=seconds,
        flags=flags,
        validation_rmse=val_rmse,
        validation_origins=len(first.fold.val_origins),
        norm=norms,
        norm_scores=runs[0].norm_scores,
        layout=runs[0].layout,
        final_loss=np.asarray(finite_last, np.float64),
        losses=log.loss,
        epochs_run=log.epochs_run,
        best_epoch=log.best_epoch,
        spec=spec,
    )
    covered = scoring.interval_coverage(lower[0], upper[0], actual)
    if not np.all(np.isfinite(lower[~np.isnan(lower)])) or not np.all(
        np.isfinite(upper[~np.isnan(upper)])
    ):
        # Too few validation residuals for the level (or no validation tail): no interval,
        # not an infinite one that covers everything.
        lower = upper = None
        covered = float("nan")
    median = ModelOutcome(
        name=spec.name + ENSEMBLE_SUFFIX,
        label=f"{spec.label}, median of {config.seeds} seeds",
        kind="ensemble",
        description=(
            f"the median over the seeds of {spec.name} that pass the sanity check, with a "
            f"{config.level:.0%} split-conformal interval from the validation tail's residuals"
        ),
        forecasts=ensemble,
        metrics=_metrics(ensemble, actual, scale),
        fold_rmse=_fold_rmse(ensemble, actual, folds),
        seconds=0.0,
        lower=lower,
        upper=upper,
        coverage=covered,
        validation_rmse=val_ensemble,
        validation_origins=len(first.fold.val_origins),
        norm=norms,
        spec=spec,
    )
    return neural, median


def _reason(reason: str, fold: int, first_seed: int, folds: int) -> str:
    """A flag reason with the seed as the report numbers it and, in a backtest, the fold."""
    reason = re.sub(r"^seed (\d+)", lambda m: f"seed {first_seed + int(m.group(1))}", reason)
    return f"fold {fold + 1}, {reason}" if folds > 1 else reason


def _verdict_samples(outcome: ModelOutcome, folds: int) -> np.ndarray:
    """The samples a verdict compares: seeds in one fold, folds in a backtest."""
    if folds == 1:
        return outcome.scores("rmse")
    kept = outcome.fold_rmse[outcome.kept]
    return np.nanmean(kept, axis=0) if len(kept) else np.full(folds, np.nan)


def _resolved(
    config: CompareConfig, targets: np.ndarray, index: pd.Index | None
) -> tuple[CompareConfig, Seasons, list[str]]:
    """The config with its seasons and every model's window resolved, and notes on them.

    Seasons and windows come from the first training part only: the test part stays unseen.
    """
    given_windows = [spec.window for spec in config.models if spec.window is not None]
    shortest = MIN_WINDOW if config.models else 1  # the window no model is below
    probe = make_folds(config, len(targets), max(given_windows, default=shortest))[0]
    first_train = fill_split(_as_2d("targets", targets), probe.n_train, config.missing)[0]
    seasons = choose_seasons(
        _frequency(index), first_train[: probe.n_train, 0], given=config.seasons
    )
    config = dataclasses.replace(config, seasons=seasons.lengths)
    models, window_notes = _resolve_models(config, seasons, probe.n_fit)
    return dataclasses.replace(config, models=models), seasons, list(window_notes)


def _baseline_outcomes(
    config: CompareConfig,
    datas: Sequence[PreparedData],
    folds: Sequence[Fold],
    actual: np.ndarray,
    scale: np.ndarray,
    log: Callable[[str], None] | None,
) -> list[ModelOutcome]:
    """Every baseline fitted on each fold's training part and scored on its test part."""
    outcomes = []
    for name in config.baselines:
        if name == "seasonal_naive" and config.season is None:
            continue
        runs = [
            baseline_forecasts(
                name,
                d.filled,
                d.n_train,
                d.origins,
                config.horizon,
                season=config.season,
                level=config.level,
            )
            for d in datas
        ]
        outcome = _baseline_outcome(name, runs, folds, actual, scale)
        outcomes.append(outcome)
        if log is not None:
            log(f"{outcome.label}: test RMSE {outcome.mean('rmse'):.4g} ({outcome.seconds:.1f} s)")
    return outcomes


def _judged(
    outcomes: Sequence[ModelOutcome], folds: int, actual: np.ndarray, horizon: int
) -> tuple[scoring.Verdict, scoring.SeedTest | None]:
    """The verdict over every scored model, and the stateful-against-stateless test."""
    scored = [o for o in outcomes if o.scores("rmse").size]
    verdict = scoring.verdict(
        {o.name: _verdict_samples(o, folds) for o in scored},
        metric="RMSE",
        noise="the seed noise" if folds == 1 else "the spread over folds",
        # a margin is clear only if it holds across the test origins: each model's forecast
        # (a neural model's median over its kept seeds) by its squared error per origin
        origin_losses={o.name: scoring.origin_losses(o.mean_forecast(), actual) for o in scored},
        horizon=horizon,
    )
    names = [o.name for o in outcomes]
    state_test = None
    if "stateful" in names and "stateless" in names:
        state_test = scoring.compare_seeds(
            _verdict_samples(outcomes[names.index("stateful")], folds),
            _verdict_samples(outcomes[names.index("stateless")], folds),
        )
    return verdict, state_test


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
            column a series), a pandas Series, or an array ``(time,)`` / ``(time, series)``;
            NaN marks a missing value (filled from the training part only).
        quiet: no progress bars.
        log: called with one line per model when it finishes (e.g. ``print``).
        executor: where the models train (one task per model and fold, its seeds
            vectorised); ``None`` for a ``LocalExecutor`` (in process). A ``RayExecutor``
            gives the same forecasts and metrics (only the timings differ).

    Returns:
        ``CompareResult``.

    Raises:
        ValueError: as ``make_folds`` and ``prepare_data``, or a series without the preset's
            time span.

    Example:
        >>> config = CompareConfig(models=(), seeds=1, baselines=("persistence",))
        >>> result = run(config, np.arange(30.0), quiet=True)
        >>> round(result.outcome("persistence").mean("rmse"), 3)
        1.0
    """
    started = time.perf_counter()
    ensure_compile_cache()  # programs compiled once per machine, not once per process
    targets, features, index, target_names, feature_names, load_lines = _series_arrays(
        series, config
    )
    steps = len(targets)
    config, seasons, window_notes = _resolved(config, targets, index)
    window = max((spec.window for spec in config.models), default=1)
    folds = make_folds(config, steps, window)
    datas = [
        prepare_data(
            config,
            targets,
            features,
            fold=fold,
            index=index,
            series_names=target_names,
            feature_names=feature_names,
        )
        for fold in folds
    ]
    origins = np.concatenate([fold.origins for fold in folds])
    actual = np.concatenate([d.actual(d.origins, config.horizon) for d in datas], axis=0)
    # MASE: each origin is scaled by its own fold's in-sample error.
    scale = np.concatenate(
        [
            np.broadcast_to(
                scoring.mase_scale(d.filled[: d.n_train], config.season),
                (len(d.origins), d.num_series),
            )
            for d in datas
        ],
        axis=0,
    )
    outcomes = _baseline_outcomes(config, datas, folds, actual, scale, log)
    executor = LocalExecutor() if executor is None else executor

    def finished(index: int, run_: NeuralRun) -> None:
        if log is not None:
            scores = scoring.point_metrics(
                run_.forecasts,
                datas[run_.fold].actual(datas[run_.fold].origins, config.horizon),
                np.ones(datas[0].num_series),
            )["rmse"]
            log(
                f"{run_.spec.label} (fold {run_.fold + 1}, norm {run_.norm}): test RMSE "
                f"{np.nanmean(scores):.4g} over {config.seeds} seeds ({run_.seconds:.1f} s)"
            )

    # Epoch bars only in this process: a Ray worker's stderr does not reach this terminal.
    bars = not quiet and executor.name == "local"
    tasks = [(spec, data, not bars) for data in datas for spec in config.models]
    runs = list(executor.map(_train_and_forecast, tasks, on_result=finished))
    per_model = len(config.models)
    for position in range(per_model):
        model_runs = [runs[k * per_model + position] for k in range(len(folds))]
        outcomes.extend(_neural_outcomes(model_runs, datas, actual, scale))
    ensembles = [o for o in outcomes if o.kind == "ensemble" and o.validation_rmse.size]
    best_validated = (
        min(ensembles, key=lambda o: float(o.validation_rmse[0])).name.removesuffix(ENSEMBLE_SUFFIX)
        if ensembles
        else None
    )
    verdict, state_test = _judged(outcomes, len(folds), actual, config.horizon)
    notes = _notes(config, folds, seasons, actual, targets, datas[0].feature_names)
    notes += list(window_notes)
    for outcome in outcomes:
        if outcome.flags is not None:
            notes.extend(f"{outcome.name}: {reason}" for reason in outcome.flags.reasons)
    if config.preset == "airline-classic":
        notes.append(
            "published protocol: the MLP on unscaled counts, the LSTMs on a scaler fitted on "
            "the whole series (the test part leaks into it), the stateful state reset before "
            "the test part, a fixed number of epochs; preset 'airline' is the corrected run"
        )
    anchors = ANCHORS.get(config.preset, ()) if config.preset else ()
    return CompareResult(
        config=config,
        outcomes=tuple(outcomes),
        actual=actual,
        origins=origins,
        folds=folds,
        seasons=seasons,
        targets=targets,
        index=index,
        series_names=datas[0].series_names,
        feature_names=datas[0].feature_names,
        seconds=time.perf_counter() - started,
        best_validated=best_validated,
        verdict=verdict,
        state_test=state_test,
        notes=tuple(notes),
        load_lines=load_lines,
        anchors=anchors,
    )
