"""The model specification and the training pipeline of ``Forecaster.fit``.

What a forecasting model is and how it is trained, apart from the object that serves it
(``lstmlab.forecaster``):

- ``ForecasterConfig`` (the settings a user writes) and ``Recipe`` (the data recipe a saved
  model keeps: kind, window, columns, frequency, horizon, norm, seasons);
- the training layout of a global model over many series (``training_layout``: windows or
  streams, the validation tail, batch growth on long series, laid out by
  ``lstmlab.data.layouts.make_window_training_batches``), how a candidate trains
  (``training_config``) and where its seeds become keys (``initial_states``);
- the candidates (a kind and a normalisation each), their validation forecasts and scores
  (``validation_forecasts``, ``score_candidate``) and the metrics of a fit (``fit_metrics``);
- the calibration of the prediction intervals (``Calibration``, ``calibration_steps``,
  ``interval_reach``, ``parse_levels``, ``bound_columns``).

The batches, the training rule, the seeds' keys, the choice among candidates
(``lstmlab.scoring.lowest``) and the refit's epoch count
(``lstmlab.core.train.TrainLog.refit_epochs``) are compare's too: it calls these functions.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from pandas.tseries.frequencies import to_offset

from lstmlab.checks import (
    check_at_most,
    check_bool,
    check_choice,
    check_fraction,
    check_int_range,
    check_learning_rate,
    check_non_negative_int,
    check_positive_int,
    check_seed,
)
from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    NORMS,
    MLPConfig,
    ModelConfig,
    Params,
    apply,
    build_network,
    init_state,
)
from lstmlab.core.rollout import read, read_windows
from lstmlab.core.train import (
    EarlyStopping,
    Plateau,
    TrainConfig,
    TrainLog,
    TrainState,
    fit,
    init_train_states,
)
from lstmlab.data.layouts import TrainingBatches, make_window_training_batches
from lstmlab.data.scaling import SCALER_KINDS, Scaler
from lstmlab.defaults import (
    AUTO_KINDS,
    FORECASTER_MODELS,
    MAX_EPOCHS,
    MAX_HORIZON,
    MODEL_KINDS,
    ForecasterSettings,
)
from lstmlab.scoring import (
    SeedFlags,
    conformal_halfwidths,
    flag_forecasts,
    plausible_range,
    seed_ensemble,
)

__all__ = [
    "AUTO_NORMS",
    "CALIBRATION_MIN_STEPS",
    "CALIBRATION_ORIGINS",
    "FORECAST_PLAUSIBLE_FACTOR",
    "LEVEL_FIX",
    "NO_CALIBRATION",
    "Calibration",
    "Candidate",
    "ForecasterConfig",
    "Recipe",
    "bound_columns",
    "candidate_plans",
    "check_network",
    "check_lengths",
    "Plan",
    "calibration_origins",
    "calibration_steps",
    "compiled_sequence",
    "finite_or_none",
    "fit_metrics",
    "interval_reach",
    "kind_candidates",
    "norm_candidates",
    "narrowed",
    "parse_levels",
    "refit",
    "score_candidate",
    "sequence_outputs",
    "initial_states",
    "training_config",
    "training_layout",
    "validation_forecasts",
]

# The candidates of norm="auto", in the order that breaks a tie on the validation tail
# (the Forecaster's and compare's: compare imports them from here).
AUTO_NORMS = ("difference", "window", "none")
# A forecast beyond this many training ranges outside the training data is flagged
# (``lstmlab.scoring.plausible_range``; compare's default).
FORECAST_PLAUSIBLE_FACTOR = 3.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecasterConfig(ForecasterSettings):
    """The model a ``Forecaster`` trains, and how: the one set of defaults.

    ``Forecaster(...)``, ``lstmlab fit`` and ``lstmlab compare`` all read their defaults from
    this class's fields (``lstmlab.defaults.ForecasterSettings``, which the command line's
    help reads without loading JAX), so the same words mean the same model everywhere. The
    values are the ones measured best on real series by ``lstmlab compare`` (``bench/`` and
    the README).

    Attributes:
        model: ``"auto"`` (the default: every kind of ``AUTO_KINDS`` is trained, each with
            its normalisations, and the one whose forecasts score best on the validation
            tail is kept; ``metrics["model_scores"]`` has every score), ``"stateful"`` (one
            LSTM layer carrying its state along each series), ``"stacked"`` (two stateful
            LSTM layers), ``"stateless"`` (one LSTM layer reading a window from zero state)
            or ``"mlp"`` (Dense layers on the flattened window).
        window: readings per training sample: the input window of every kind (the stateful
            models read overlapping windows, one per step, carrying their state from one to
            the next, as Keras' stateful example and ``compare`` train them).
            ``None``: a window that covers the shortest season of the data plus one step
            (``lstmlab.data.seasons.choose_window``), at least ``MIN_WINDOW`` and at most a
            third of the shortest series; the seasons are ``seasons`` if given, else the
            usual ones of the frequency, else the one detected in the data.
        units: units per LSTM layer (hidden sizes for the MLP); ``()`` picks the model's
            default (``default_units``).
        epochs: the most training epochs (training stops earlier on the validation tail), at
            most ``MAX_EPOCHS``.
        learning_rate: Adam step size (Keras' Adam otherwise).
        batch_size: samples per batch for the window models; streams per series for the
            stateful ones. ``None`` picks the model's default (``default_batch_size``).
        seeds: models trained side by side from different initial weights (one vectorised
            program); forecasts are the median of the seeds whose forecasts pass the sanity
            check.
        seed: the first seed: ``seed + seeds - 1`` at most ``lstmlab.checks.MAX_SEED``.
        scaler: ``"minmax"`` (onto [0, 1] over the training data) or ``"standard"``, fitted
            per series.
        norm: the input normalisation of each window (``lstmlab.core.model.NORMS``:
            ``"difference"``, ``"window"``, ``"none"``), or ``"auto"``: each candidate of
            ``AUTO_NORMS`` is trained and the one whose seed median has the lowest RMSE on
            the validation tail is kept. Models of several value columns take ``"none"``
            only (``"auto"`` resolves to it).
        validation: the last fraction of each series held out (at least ``horizon`` steps)
            for early stopping, the learning-rate reduction on plateau, the choice of
            ``norm`` and the residuals of the prediction intervals; ``0`` for none (then
            ``norm`` must not be ``"auto"``, every epoch is run and there are no intervals).
        refit: once the validation tail has chosen the model and each seed's best epoch,
            train the chosen model again from the same initial weights on every reading,
            the tail included, for the median best epoch count (``metrics["refit_epochs"]``);
            the intervals keep the residuals measured on the tail before. ``False``: keep
            the weights trained without the tail.
        patience: epochs without improvement on the validation tail before a training
            stops; the learning rate halves after ``patience // 2``.
        horizon: the steps one forecast of the model gives: ``1`` trains a next-step model
            whose forecasts of any length feed their predictions back (recursive); above 1
            a direct multi-output head forecasts up to ``horizon`` steps at once (longer
            forecasts are refused).
        seasons: season lengths in steps (e.g. ``(48, 336)`` for half-hourly load);
            ``None`` to take them from the frequency or the data, ``()`` for none.
    """

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        check_choice("model", self.model, FORECASTER_MODELS)
        if self.window is not None:
            check_positive_int("window", self.window)
        for index, units in enumerate(self.units):
            check_positive_int(f"units[{index}]", units)
        check_non_negative_int("epochs", self.epochs)
        check_at_most("epochs", self.epochs, MAX_EPOCHS, fix="pass fewer epochs")
        check_positive_int("seeds", self.seeds)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_seed("seed", self.seed, count=self.seeds)  # seeds run seed .. seed + seeds - 1
        check_learning_rate(self.learning_rate)
        check_choice("scaler", self.scaler, SCALER_KINDS)
        check_choice("norm", self.norm, ("auto", *NORMS))
        if self.validation != 0:
            check_fraction("validation", self.validation, fix="pass e.g. 0.2, or 0 for none")
        if self.validation == 0 and self.norm == "auto":
            raise ValueError(
                "norm='auto' chooses the normalisation on the validation tail, got "
                "validation=0; pass validation=0.2, or a norm ('none', 'difference' or "
                "'window')"
            )
        check_positive_int("patience", self.patience, fix="pass e.g. 20")
        check_bool("refit", self.refit)
        check_int_range("horizon", self.horizon, 1, MAX_HORIZON)
        if self.seasons is not None:
            seasons = (self.seasons,) if isinstance(self.seasons, int) else tuple(self.seasons)
            for season in seasons:
                check_positive_int("seasons", season, fix="pass season lengths of 2 or more")
            object.__setattr__(self, "seasons", seasons)

    def model_config(
        self, columns: int, *, window: int | None = None, norm: str | None = None
    ) -> ModelConfig:
        """The network this config describes for ``columns`` values per reading.

        Args:
            columns: values per reading (the model reads and forecasts all of them).
            window: the window; ``None`` for ``self.window`` (which must then be set).
            norm: the input normalisation; ``None`` for ``self.norm`` (``"auto"`` reads as
                ``"none"``: resolve it first, as ``Forecaster.fit`` does).

        Returns:
            An ``LSTMConfig`` (stateful models read overlapping windows in Keras' stateful
            layout and forecast after each) or an ``MLPConfig``, with ``horizon * columns``
            outputs (step-major).

        Raises:
            ValueError: no window given or set.
        """
        check_positive_int("columns", columns)
        window = self.window if window is None else window
        if window is None:
            raise ValueError(
                "window=None is resolved from the data's seasons by Forecaster.fit; pass "
                "window= to build the network without data"
            )
        norm = self.norm if norm is None else norm
        norm = "none" if norm == "auto" else norm
        return build_network(
            self.model,
            units=self.resolved_units,
            window=window,
            features=columns,
            outputs=columns * self.horizon,
            norm=norm,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``ForecasterConfig.from_dict`` rebuilds it)."""
        out = dataclasses.asdict(self)
        out["units"] = list(self.units)
        out["seasons"] = None if self.seasons is None else list(self.seasons)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForecasterConfig:
        """Rebuild from ``to_dict`` output, also one written before a field existed.

        A dict without ``norm`` and ``validation`` describes a model trained before them:
        norm ``"none"`` and no validation tail; one without ``refit`` a model not trained
        again on its tail (the other new fields' defaults are what every model was then:
        one step, the window it names).

        Raises:
            ValueError: an unknown field, or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"unknown ForecasterConfig fields {unknown}; known fields: {sorted(names)}"
            )
        values = dict(data)
        if "norm" not in values and "validation" not in values:
            values.update(norm="none", validation=0.0)
        values.setdefault("refit", False)  # a model trained before the refit existed
        return cls(**values)

    @classmethod
    def of_network(
        cls, config: ModelConfig, recipe: Recipe, *, seeds: int, scaler: Scaler | None
    ) -> ForecasterConfig:
        """The settings of a network trained elsewhere, or saved before settings were.

        Its kind, shapes and norm, and no validation tail (``Forecaster.from_params``, a Keras
        import, an old model folder).
        """
        return cls(
            model=recipe.kind,
            window=recipe.window,
            units=config.hidden if isinstance(config, MLPConfig) else config.units,
            seeds=seeds,
            scaler="minmax" if scaler is None else scaler.kind,
            norm=config.norm,
            validation=0.0,
            horizon=recipe.horizon,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Recipe:
    """How readings become model inputs.

    Attributes:
        kind: ``"stateful"``, ``"stacked"`` (stateful, several layers), ``"stateless"`` or
            ``"mlp"`` (window models); informative, the behaviour follows the model config.
        window: steps per training window (window models: the readings one forecast reads;
            stateful models: the chunk length of training).
        columns: the value columns of one reading; the model forecasts all of them.
        time_col: the timestamp column of the training data, or ``None``.
        freq: the pandas frequency of the readings (``"15min"``), or ``None`` for no grid
            check (only the order of timestamps is checked).
        horizon: the steps one output of the model holds (a direct multi-output head
            above 1; 1: one step, fed back for longer forecasts).
        norm: the input normalisation the model applies (informative: the model config
            holds it).
        seasons: the season lengths the window was chosen for (informative).
        step: the stride of series numbered by steps (an integer index or time column):
            their times are step numbers, each reading the last one's plus ``step``;
            ``None`` for timestamps, or no times at all (row positions).
    """

    kind: str = "stateful"
    window: int = 1
    columns: tuple[str, ...] = ("value",)
    time_col: str | None = None
    freq: str | None = None
    horizon: int = 1
    norm: str = "none"
    seasons: tuple[int, ...] = ()
    step: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "seasons", tuple(self.seasons))
        check_choice("model kind", self.kind, MODEL_KINDS, fix="pass e.g. kind='stateful'")
        check_positive_int("window", self.window)
        check_int_range("horizon", self.horizon, 1, MAX_HORIZON)
        check_choice("norm", self.norm, NORMS)
        if not self.columns or not all(isinstance(c, str) and c for c in self.columns):
            raise ValueError(f"columns must be non-empty names, got {self.columns!r}")
        if self.freq is not None:
            to_offset(self.freq)
        if self.step is not None:
            check_positive_int("step", self.step)
            if self.freq is not None:
                raise ValueError(
                    f"a recipe has a frequency ({self.freq!r}) or steps ({self.step}), not both"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "window": self.window,
            "columns": list(self.columns),
            "time_col": self.time_col,
            "freq": self.freq,
            "horizon": self.horizon,
            "norm": self.norm,
            "seasons": list(self.seasons),
        } | ({} if self.step is None else {"step": self.step})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Rebuild from ``to_dict`` output (other keys, such as ``config``, are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def check_network(model: ModelConfig, recipe: Recipe, scaler: Scaler | None) -> None:
    """Refuse a network, recipe and scaler that disagree (what a ``Forecaster`` holds)."""
    if recipe.horizon == 1 and model.outputs != model.features:
        raise ValueError(
            f"a forecaster feeds its predictions back as readings, so outputs must equal "
            f"features, got outputs={model.outputs} and features={model.features}"
        )
    if model.outputs != model.features * recipe.horizon:
        raise ValueError(
            f"a direct model of horizon {recipe.horizon} outputs horizon * features "
            f"values, got outputs={model.outputs} and features={model.features}; pass a "
            "recipe with the model's horizon"
        )
    if len(recipe.columns) != model.features:
        raise ValueError(
            f"recipe names {len(recipe.columns)} columns {list(recipe.columns)}, the model "
            f"reads {model.features} features per step; name one column per feature"
        )
    if scaler is not None and scaler.num_columns != model.features:
        raise ValueError(
            f"the scaler maps {scaler.num_columns} columns, the model reads "
            f"{model.features}; fit the scaler on the model's columns"
        )
    if not model.streams and model.timesteps != recipe.window:
        raise ValueError(
            f"the model reads windows of {model.timesteps} steps, the recipe says "
            f"window={recipe.window}; make them equal"
        )


def sequence_outputs(config: ModelConfig, params: Params, x: np.ndarray) -> np.ndarray:
    """Every seed's outputs after every step of ``x (1, time, features)`` from a zero state."""
    return np.asarray(compiled_sequence(config)(params, x))  # (seeds, 1, time, F)


SEQUENCE_CACHE: dict[ModelConfig, Any] = {}


def compiled_sequence(config: ModelConfig):
    """The program of ``sequence_outputs`` for ``config``: every seed at once, cached."""
    if config not in SEQUENCE_CACHE:

        def outputs(params: Params, x: jax.Array) -> jax.Array:
            y, _ = apply(config, params, init_state(config, x.shape[0]), x)
            return y

        SEQUENCE_CACHE[config] = jax.jit(jax.vmap(outputs, in_axes=(0, None)))
    return SEQUENCE_CACHE[config]


# --------------------------------------------------------------------------- training data


def check_lengths(
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    window: int,
    horizon: int,
    n_val: Sequence[int],
) -> None:
    """Refuse a series too short for one training window before its validation tail."""
    for series_id, series, tail in zip(ids, scaled, n_val, strict=True):
        needed = window + horizon + tail
        if len(series) < needed:
            raise ValueError(
                f"series {series_id!r} has {len(series)} readings, too few for window "
                f"{window}, horizon {horizon} and a validation tail of {tail}: at least "
                f"{needed} are needed; pass a longer series, a smaller window= or horizon=, "
                "or validation=0 (with a norm)"
            )


def training_layout(
    settings: ForecasterConfig,
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    window: int,
    horizon: int,
    n_val: Sequence[int],
) -> TrainingBatches:
    """Training and validation batches of every series, laid out for the model.

    Every target of a training sample lies before the validation tail of its series, every
    target of a validation sample inside it.
    """
    check_lengths(ids, scaled, window, horizon, n_val)
    return make_window_training_batches(
        scaled,
        n_val,
        window=window,
        horizon=horizon,
        stateful=settings.stateful,
        batch_size=settings.resolved_batch_size,
        # a default batch grows on a long series, a given one stays
        grow=settings.batch_size is None,
    )


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Candidate:
    """One trained normalisation: its parameters, log and validation scores."""

    norm: str
    model: ModelConfig
    params: Params
    log: TrainLog
    score: float  # RMSE of the seed median on the validation tail; inf without one
    flags: SeedFlags
    residuals: dict[str, np.ndarray | None]  # (origins, horizon, columns), scaled
    batch_size: int  # rows per training batch
    trim: str  # what its training batches used and left out (``TrimReport``)


def validation_forecasts(
    model: ModelConfig, params: Params, series: np.ndarray, fit_end: int, horizon: int
) -> np.ndarray:
    """Every seed's forecasts from every origin of a series' validation tail.

    Origins ``o = fit_end .. len(series) - horizon`` (the first forecast step): a window
    model reads the ``timesteps`` readings before ``o``; a stateful model reads the series'
    windows from a zero state up to the one before ``o``, as ``Forecaster.warm_start`` does
    (a stream model: its readings up to ``o - 1``).

    Args:
        model: the model (``horizon * columns`` outputs, step-major).
        params: parameters with a leading seeds axis.
        series: ``(time, columns)`` scaled readings.
        fit_end: the first step of the validation tail.
        horizon: the steps of one output.

    Returns:
        ``(seeds, origins, horizon, columns)`` float32, scaled.
    """
    origins = np.arange(fit_end, len(series) - horizon + 1)
    columns = series.shape[1]
    if model.stateful and not model.streams:
        seeds = int(jax.tree.leaves(params)[0].shape[0])
        zero = tuple(  # (seeds, rows, units) per layer, NumPy: no eager program
            LSTMState(h=np.zeros((seeds, 1, u), np.float32), c=np.zeros((seeds, 1, u), np.float32))
            for u in model.units
        )
        # the output after window j (readings j .. j + timesteps - 1) forecasts step j + timesteps
        y = read_windows(model, params, zero, series[None, : origins[-1]], seeds=True)[0]
        out = y[:, 0, origins - model.timesteps]  # (seeds, origins, outputs)
    elif model.stateful:  # a stream
        y = sequence_outputs(model, params, series[None])[:, 0]  # (seeds, time, outputs)
        out = y[:, origins - 1]  # the output after reading step o - 1
    else:
        window = model.timesteps
        x = np.stack([series[o - window : o] for o in origins])  # (origins, window, columns)
        out = np.asarray(read(model, params, (), x, seeds=True)[0])  # (seeds, origins, out)
    return out.reshape(out.shape[0], len(origins), horizon, columns)


def score_candidate(
    norm: str,
    model: ModelConfig,
    params: Params,
    log: TrainLog,
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    scalers: Mapping[str, Scaler],
    n_val: Sequence[int],
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    batches: TrainingBatches,
) -> Candidate:
    """Check every seed's validation forecasts and score the median of the unflagged ones.

    ``batches`` are the ones it trained on: the candidate keeps their batch size and trim
    line (for ``fit_metrics``), not the arrays.
    """
    seeds = int(jax.tree.leaves(params)[0].shape[0])
    horizon = model.outputs // model.features
    forecasts, actuals = {}, {}
    flagged = np.zeros(seeds, bool)
    non_finite = np.zeros(seeds, np.int64)
    out_of_range = np.zeros(seeds, np.int64)
    reasons = []
    for series_id, series, tail in zip(ids, scaled, n_val, strict=True):
        if not tail:
            continue
        fit_end = len(series) - tail
        scaled_forecasts = validation_forecasts(model, params, series, fit_end, horizon)
        origins = scaled_forecasts.shape[1]
        steps = np.arange(fit_end, fit_end + origins)[:, None] + np.arange(horizon)
        actuals[series_id] = series[steps].astype(np.float64)  # (origins, horizon, columns)
        forecasts[series_id] = scaled_forecasts.astype(np.float64)
        flat = scaled_forecasts.reshape(-1, series.shape[1])
        original = scalers[series_id].inverse_transform(flat).reshape(scaled_forecasts.shape)
        with np.errstate(invalid="ignore"):
            flags = flag_forecasts(original, *ranges[series_id])
        flagged |= flags.flagged
        non_finite += flags.non_finite
        out_of_range += flags.out_of_range
        prefix = "" if len(ids) == 1 else f"series {series_id!r}, "
        reasons += [prefix + reason for reason in flags.reasons]
    all_flags = SeedFlags(
        flagged=flagged, non_finite=non_finite, out_of_range=out_of_range, reasons=tuple(reasons)
    )
    residuals: dict[str, np.ndarray | None] = {}
    for series_id in forecasts:
        median = seed_ensemble(forecasts[series_id], flagged)[0]  # (origins, horizon, columns)
        residuals[series_id] = None if flagged.all() else actuals[series_id] - median
    found = [r for r in residuals.values() if r is not None]
    score = float(np.sqrt(np.mean(np.square(np.concatenate(found))))) if found else np.inf
    return Candidate(
        norm=norm,
        model=model,
        params=params,
        log=log,
        score=score if np.isfinite(score) else np.inf,
        flags=all_flags,
        residuals=residuals,
        batch_size=batches.batch_size,
        trim=str(batches.trim),
    )


def fit_metrics(
    candidate: Candidate,
    settings: ForecasterConfig,
    series: Mapping[str, np.ndarray],
    seconds: float,
) -> dict[str, Any]:
    """The candidate's training log as JSON-ready metrics (a stopped seed's epochs left out)."""
    log = candidate.log
    losses = np.asarray(log.loss, np.float64)  # (epochs, seeds), nan after a seed stopped
    last = [
        float(log.loss[np.flatnonzero(np.isfinite(losses[:, s]))[-1], s])
        if np.isfinite(losses[:, s]).any()
        else np.nan
        for s in range(losses.shape[1])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch where every seed diverged
        raw = np.asarray(log.loss)  # every seed ran every epoch: the driver's own mean
        per_epoch = raw.mean(axis=1) if np.isfinite(raw).all() else np.nanmean(losses, axis=1)
        final = float(np.nanmean(last)) if last else np.nan
    return {
        "loss": [finite_or_none(v) for v in per_epoch],
        "final_loss": finite_or_none(final) if len(losses) else None,
        "final_loss_per_seed": [finite_or_none(v) for v in last] if len(losses) else [],
        "val_loss_per_seed": None
        if log.val_loss is None
        else [
            [finite_or_none(v) for v in log.val_loss[: int(log.epochs_run[s]), s]]
            for s in range(log.val_loss.shape[1])
        ],
        "epochs": settings.epochs,
        "epochs_run": [int(v) for v in log.epochs_run],
        "best_epoch": None if log.best_epoch is None else [int(v) for v in log.best_epoch],
        "updates": int(np.asarray(log.updates)[0]),
        "batch_size": candidate.batch_size,
        "train_seconds": seconds,
        "trim": candidate.trim,
        "series": {i: int(len(v)) for i, v in series.items()},
        "config": settings.to_dict(),
    }


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Calibration:
    """What ``fit`` measured for the sanity check and the intervals, saved with the model.

    Attributes:
        ranges: series id -> ``(low, high)``, each ``(columns,)``, the plausible range of the
            series' training data in original units (``plausible_range``).
        default_range: the range of all training data pooled, for a series first seen after
            fitting; ``None`` for none (a model from ``from_params``: only non-finite values
            are flagged).
        residuals: series id -> ``(origins, horizon, columns)`` residuals of the seed median
            on the validation tail, in the series' scaled units.
        pooled: every series' residuals together, for a series first seen after fitting, as
            a folder written before 0.2 holds them; ``None``: concatenated from
            ``residuals`` when such a series first asks (``pooled_residuals``), so a model of
            many series does not hold its residuals twice.
        extremes: series id -> ``(min, max)``, each ``(columns,)``, of the series' training
            values (the reading check, ``Forecaster.check_values``).
        default_extremes: the same over all series pooled (a series first seen after
            fitting); ``None`` for none.
    """

    ranges: dict[str, tuple[np.ndarray, np.ndarray]]
    default_range: tuple[np.ndarray, np.ndarray] | None
    residuals: dict[str, np.ndarray]
    pooled: np.ndarray | None = None
    extremes: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    default_extremes: tuple[np.ndarray, np.ndarray] | None = None
    # (series id, None for every new series, or a scaler's values; factor) -> plausible()
    _bounds: dict[tuple[Any, ...], Any] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )
    _concatenated: list[np.ndarray] = dataclasses.field(
        default_factory=list, init=False, repr=False
    )

    def pooled_residuals(self) -> np.ndarray | None:
        """Every series' residuals together (``pooled``, else concatenated once, on demand)."""
        if self.pooled is not None or not self.residuals:
            return self.pooled
        if not self._concatenated:
            self._concatenated.append(np.concatenate(list(self.residuals.values())))
        return self._concatenated[0]

    def steps(self, horizon: int) -> int:
        """The most steps ahead a forecast can have intervals for.

        A direct model's ``horizon``; a recursive model's rollouts over the validation tail
        (the tail's length, at most ``calibration_steps`` of its seasons); 1 for a recursive
        model saved before those rollouts existed.
        """
        some = self.pooled if self.pooled is not None else next(iter(self.residuals.values()), None)
        return horizon if some is None else max(horizon, int(some.shape[1]))

    def extremes_of(
        self, series_id: str, scaler: Scaler | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``(min, max)`` a series' readings are checked against (``check_values``).

        The series' training extremes; for a series first seen after fitting, every series';
        for a model with none (``from_params``), ``scaler``'s span (min to max of a minmax
        scaler, mean ± one standard deviation of a standard one); else ``None``.
        """
        known = self.extremes.get(series_id, self.default_extremes)
        if known is not None:
            return known
        if scaler is None or scaler.kind == "none":
            return None
        offset, scale = np.asarray(scaler.offset), np.abs(np.asarray(scaler.scale))
        if scaler.kind == "minmax":
            return offset, offset + scale
        return offset - scale, offset + scale

    def plausible(
        self, series_id: str, scaler: Scaler | None, factor: float
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """``(bounds, extremes)`` a series' readings are held to, ``None`` for no bounds.

        ``bounds`` is ``plausible_range`` of ``extremes_of``. It depends only on the training
        values (or, for a model without them, ``scaler``'s values) and the factor, so it is
        computed once for each, not on every reading.
        """
        if series_id in self.extremes or self.default_extremes is not None:
            key: tuple[Any, ...] = (series_id if series_id in self.extremes else None, factor)
        elif scaler is None or scaler.kind == "none":
            return None
        else:  # the key holds the scaler's values: one calibration may serve several models
            offset, scale = np.asarray(scaler.offset), np.asarray(scaler.scale)
            key = (scaler.kind, offset.tobytes(), scale.tobytes(), factor)
        if key not in self._bounds:
            extremes = self.extremes_of(series_id, scaler)
            self._bounds[key] = (plausible_range(np.stack(extremes), factor), extremes)
        return self._bounds[key]

    def halfwidths(
        self,
        series_id: str,
        level: float,
        horizon: int,
        steps: int,
        errors: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(horizon, columns)`` split-conformal half-widths in the series' scaled units.

        From the series' residuals (every series' for one first seen after fitting), per
        step ahead (``conformal_halfwidths``); ``steps`` is how far they are calibrated.

        The one-step errors seen since ``fit`` (``errors``, ``(k, columns)`` scaled, oldest
        first: ``SeriesState.errors``) slide into the one-step residuals: the interval one
        step ahead rests on the latest ``n`` of the residuals followed by the errors, ``n``
        the residuals' count, so that after ``n`` readings it rests on the errors alone.
        Errors after a model's training data grow where the series moves on (measured by
        ``bench/interval_shift.py``); the validation tail alone covers too little then.
        Every further step's half-width is scaled as the first one's changed.

        Raises:
            ValueError: ``horizon`` beyond ``steps``, or no residuals.
        """
        if horizon > steps:
            raise ValueError(
                f"the intervals are calibrated on the validation tail for up to {steps} "
                f"step(s) ahead, got horizon {horizon}; pass horizon <= {steps} with a "
                f"level, or fit with a longer validation tail or horizon={horizon} (a "
                "direct model)"
            )
        residuals = self.residuals.get(series_id)
        if residuals is None:
            residuals = self.pooled_residuals()
        if residuals is None:
            raise ValueError(
                "this model has no validation residuals to calibrate intervals on (fitted "
                "with validation=0, or saved before intervals existed); fit it with "
                "validation=0.2, or forecast without level="
            )
        half = conformal_halfwidths(residuals[:, :horizon], level)
        if errors is None or not len(errors):
            return half
        first = half[0].copy()
        for column in range(half.shape[1]):
            calibration = residuals[:, 0, column]
            calibration = calibration[np.isfinite(calibration)]
            if not len(calibration):  # no residual: an infinite interval, whatever was seen
                continue
            latest = np.concatenate([calibration, errors[:, column]])[-len(calibration) :]
            first[column] = conformal_halfwidths(latest[:, None, None], level)[0, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            change = np.where(np.isfinite(half[0]) & (half[0] > 0), first / half[0], 1.0)
        return np.concatenate([first[None], half[1:] * change[None]])

    def to_dict(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """JSON-ready dict; the residuals go into ``arrays``, which the dict names.

        The residuals are kept beside the weights in safetensors (``SavedModel.arrays``), not
        in JSON: a folder loads fast whatever the series' length. ``pooled`` is their
        concatenation, made again when needed.
        """
        names = {}
        for position, (series_id, residuals) in enumerate(self.residuals.items()):
            names[series_id] = f"calibration.residuals.{position}"
            arrays[names[series_id]] = np.asarray(residuals, np.float64)
        return {
            "plausible_factor": FORECAST_PLAUSIBLE_FACTOR,
            "ranges": {i: [low.tolist(), high.tolist()] for i, (low, high) in self.ranges.items()},
            "default_range": None
            if self.default_range is None
            else [self.default_range[0].tolist(), self.default_range[1].tolist()],
            "residuals": names,
            "extremes": {
                i: [low.tolist(), high.tolist()] for i, (low, high) in self.extremes.items()
            },
            "default_extremes": None
            if self.default_extremes is None
            else [self.default_extremes[0].tolist(), self.default_extremes[1].tolist()],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, arrays: Mapping[str, np.ndarray] | None = None
    ) -> Calibration:
        """Inverse of ``to_dict``; ``None`` (a folder written before calibration) for none.

        A folder written before the residuals moved to safetensors holds them (and
        ``pooled``) as JSON lists, NaN as ``None``: read as they are.
        """
        if not data:
            return cls(ranges={}, default_range=None, residuals={}, pooled=None)

        def array(values: Any) -> np.ndarray:
            return np.array(values, dtype=np.float64)  # None -> nan

        def pair(values: Any) -> tuple[np.ndarray, np.ndarray] | None:
            return None if values is None else (array(values[0]), array(values[1]))

        ranges = {i: pair(bounds) for i, bounds in data["ranges"].items()}
        default = pair(data.get("default_range"))
        if "extremes" in data:
            extremes = {i: pair(bounds) for i, bounds in data["extremes"].items()}
            default_extremes = pair(data.get("default_extremes"))
        else:
            # A folder written before the reading check: its ranges are the training
            # extremes widened by ``factor`` widths each side; fit refuses constant series,
            # so the width is (high - low) / (1 + 2 factor).
            factor = float(data.get("plausible_factor", FORECAST_PLAUSIBLE_FACTOR))
            extremes = {i: narrowed(bounds, factor) for i, bounds in ranges.items()}
            default_extremes = None if default is None else narrowed(default, factor)
        residuals = {
            i: np.asarray(arrays[r], np.float64) if isinstance(r, str) else array(r)
            for i, r in data["residuals"].items()
        }
        # a folder written before 0.2 keeps its pooled residuals; else they are concatenated
        # from the residuals when a series first seen after fitting needs them
        pooled = array(data["pooled"]) if data.get("pooled") is not None else None
        return cls(
            ranges=ranges,
            default_range=default,
            residuals=residuals,
            pooled=pooled,
            extremes=extremes,
            default_extremes=default_extremes,
        )


def narrowed(bounds: tuple[np.ndarray, np.ndarray], factor: float) -> tuple[np.ndarray, ...]:
    """The training ``(min, max)`` behind ``plausible_range``'s ``(low, high)`` (not constant)."""
    low, high = bounds
    width = (high - low) / (1.0 + 2.0 * factor)
    return low + factor * width, high - factor * width


NO_CALIBRATION = Calibration(ranges={}, default_range=None, residuals={}, pooled=None)


def finite_or_none(value: float) -> float | None:
    """A number for JSON (the model folder writes no NaN): ``None`` when not finite."""
    return float(value) if np.isfinite(value) else None


LEVEL_FIX = "pass a fraction, a percent or a list, e.g. 0.9, 90 or [80, 95]"
# Every model's intervals rest on at most this many origins of each series' validation tail,
# evenly spread (``calibration_origins``): enough residuals per step for a 95% interval, and a
# model folder that does not grow with the length of the series. A recursive model rolls
# out from them for up to ``calibration_steps`` steps ahead; a direct one keeps its outputs'.
CALIBRATION_ORIGINS = 64
CALIBRATION_MIN_STEPS = 24


def calibration_origins(first: int, last: int) -> np.ndarray:
    """At most ``CALIBRATION_ORIGINS`` positions from ``first`` to ``last``, evenly spread.

    Both ends included; every position when there are that few.
    """
    count = min(last - first + 1, CALIBRATION_ORIGINS)
    return np.unique(np.linspace(first, last, count).round()).astype(int)


def calibration_steps(seasons: Sequence[int]) -> int:
    """The most steps a recursive model's intervals are calibrated for.

    Two of its longest seasons, at least ``CALIBRATION_MIN_STEPS``; the validation tail may
    allow fewer.
    """
    return max(CALIBRATION_MIN_STEPS, 2 * max(seasons, default=0))


def interval_reach(residuals: Mapping[str, np.ndarray]) -> dict[str, int]:
    """How many steps ahead an 80%, 90% and 95% interval stays finite in every series.

    A split-conformal interval of level ``L`` needs ``n >= L / (1 - L)`` residuals at a step
    (``conformal_halfwidths``): 4 for 80%, 9 for 90%, 19 for 95%.
    """
    counts = np.min(
        [np.isfinite(r).all(axis=2).sum(axis=0) for r in residuals.values()], axis=0
    )  # (steps,): the fewest residuals of any series at each step
    out = {}
    for level in (0.8, 0.9, 0.95):
        need = math.ceil(level / (1.0 - level) - 1e-9)
        short = np.flatnonzero(counts < need)
        out[f"{100 * level:g}"] = int(short[0] if len(short) else len(counts))
    return out


def parse_levels(level: Any) -> tuple[float, ...]:
    """Interval levels as fractions: ``0.9``, ``90`` (a percent) or a list (``[80, 95]``).

    Returns:
        The levels as fractions in (0, 1), in the order given; ``()`` for ``None``.

    Raises:
        ValueError: an empty list, a value that is not a number, neither a fraction in
            (0, 1) nor a percent in (1, 100), or a level given twice.
    """
    if level is None:
        return ()
    items = list(level) if isinstance(level, (list, tuple, np.ndarray)) else [level]
    if not items:
        raise ValueError(f"level is an empty list; {LEVEL_FIX}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(
            item, (int, float, np.integer, np.floating)
        ):
            raise ValueError(f"level must be a number, got {item!r}; {LEVEL_FIX}")
        value = float(item)
        value = value / 100.0 if 1.0 < value < 100.0 else value  # a percent
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"level {item!r} is neither a fraction in (0, 1) nor a percent in (1, 100); "
                f"{LEVEL_FIX}"
            )
        out.append(value)
    if len(set(out)) != len(out):
        raise ValueError(f"level {items!r} names a level twice; {LEVEL_FIX}")
    return tuple(out)


def bound_columns(level: Any) -> list[tuple[float, str, str]]:
    """``(fraction, lower column, upper column)`` of each level.

    One level given alone names ``lower`` and ``upper``; each level of a list names
    ``lower_80`` and ``upper_80`` (its percent).
    """
    levels = parse_levels(level)
    if not isinstance(level, (list, tuple, np.ndarray)):
        return [(value, "lower", "upper") for value in levels]
    return [(v, f"lower_{100 * v:g}", f"upper_{100 * v:g}") for v in levels]


# Plot labels: pandas' frequency aliases in words (others are shown as they are).


# --------------------------------------------------------------------------- the candidates


def kind_candidates(settings: ForecasterConfig) -> tuple[str, ...]:
    """The kinds ``fit`` trains.

    ``model``, or ``AUTO_KINDS``.
    """
    return AUTO_KINDS if settings.model == "auto" else (settings.model,)


def norm_candidates(settings: ForecasterConfig, columns: int, window: int) -> tuple[str, ...]:
    """The normalisations ``fit`` trains for one kind (``settings.model``).

    ``norm``, or ``AUTO_NORMS`` where they apply.
    """
    if settings.norm != "auto":
        if settings.norm != "none" and (columns > 1 or window < 2):
            raise ValueError(
                f"norm={settings.norm!r} normalises one target column over a window of 2 "
                f"or more readings, got {columns} value column(s) and window {window}; "
                "pass norm='none'"
            )
        return (settings.norm,)
    # a norm maps one target column over a window (lstmlab.core.model.NORMS)
    if columns > 1 or window < 2:
        return ("none",)
    return AUTO_NORMS


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Plan:
    """One kind to train: its settings and its normalisations.

    Its batches (``training_layout``) are laid out when it trains and let go after: a global
    model over many series holds one kind's batches at a time, not every kind's.
    """

    settings: ForecasterConfig  # ``model`` is the kind
    norms: tuple[str, ...]
    window: int


def candidate_plans(
    settings: ForecasterConfig,
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    window: int,
    n_val: Sequence[int],
) -> list[Plan]:
    """Every kind ``fit`` tries (``model="auto"``: ``AUTO_KINDS``), each laid out its own way.

    Raises:
        ValueError: a series too short for the window, the horizon and its validation tail
            (before any training).
    """
    check_lengths(ids, scaled, window, settings.horizon, n_val)
    columns = scaled[0].shape[1]
    plans = []
    for kind in kind_candidates(settings):
        kind_settings = dataclasses.replace(settings, model=kind)
        plans.append(
            Plan(
                settings=kind_settings,
                norms=norm_candidates(kind_settings, columns, window),
                window=window,
            )
        )
    return plans


def training_config(
    *, epochs: int, learning_rate: float, shuffle: bool, seed: int, patience: int | None
) -> TrainConfig:
    """How every candidate trains, in ``fit`` and in ``compare``: one rule.

    The state is reset after every epoch (Keras' ``reset_states()`` after each
    ``fit(epochs=1)``). With ``patience`` (a validation tail is watched), training stops after
    that many epochs without improvement, and the learning rate drops after half as many
    (``Plateau``); ``None`` trains every epoch (a refit).
    """
    watched = patience is not None
    return TrainConfig(
        epochs=epochs,
        learning_rate=learning_rate,
        shuffle=shuffle,
        reset="epoch",
        seed=seed,
        early_stopping=EarlyStopping(patience=patience) if watched else None,
        plateau=Plateau(patience=max(1, patience // 2)) if watched else None,
    )


def initial_states(
    model: ModelConfig, train_config: TrainConfig, seeds: Sequence[int], batch_size: int
) -> TrainState:
    """Every seed's initial ``TrainState`` (leading axis: seeds), in ``fit`` and ``compare``.

    Seed ``s`` draws its weights and its shuffling from ``jax.random.key(s)``: the same kind,
    settings and seed give the same model, whichever of the two trains it.
    """
    keys = [jax.random.key(seed) for seed in seeds]
    return init_train_states(model, train_config, list(seeds), batch_size, keys=keys)


def refit(
    settings: ForecasterConfig,
    model: ModelConfig,
    epochs: int,
    ids: Sequence[str],
    scaled: Sequence[np.ndarray],
    window: int,
) -> Params:
    """Train the chosen candidate again from its initial weights on every reading.

    The validation tail is the newest part of each series: once it has chosen the model and
    the epoch count (``TrainLog.refit_epochs``), the model learns from it too, for that many
    epochs, without early stopping.

    Args:
        settings: the chosen kind's settings (``model`` is the kind).
        model: the chosen candidate's network.
        epochs: how many epochs.
        ids: the series, in order.
        scaled: each series' scaled readings.
        window: the window.

    Returns:
        Every seed's parameters (leading axis: seeds).
    """
    seeds = [settings.seed + i for i in range(settings.seeds)]
    whole = training_layout(settings, ids, scaled, window, settings.horizon, [0] * len(ids))
    config = training_config(
        epochs=epochs,
        learning_rate=settings.learning_rate,
        shuffle=not settings.stateful,
        seed=settings.seed,
        patience=None,
    )
    states = initial_states(model, config, seeds, whole.batch_size)
    return fit(model, config, states, whole.x_batches, whole.y_batches)[0].params
