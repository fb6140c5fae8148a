"""The one forecasting object: ``Forecaster`` fits, forecasts, observes, saves and plots.

From a pandas DataFrame to a forecast with timestamps and a plot::

    import pandas as pd
    from lstmlab import Forecaster
    data = pd.read_csv("../shared/data/airline_passengers.csv", index_col=0, parse_dates=True)
    fc = Forecaster(model="stateful").fit(data)
    fc.forecast(12); fc.plot(horizon=12).savefig("forecast.png")

What it does, and where:

- ``fit`` reads a wide DataFrame (a column per series), a long one (series id, time, value:
  NeuralForecast's ``unique_id, ds, y`` or ``series_id, time, value``), a Series or a NumPy
  array; fits one scaler per series on its own values; trains one global model over all
  series with ``seeds`` trainings side by side through the one training driver
  (``lstmlab.core.train.fit``); then reads every series' whole history into its state.
- ``forecast`` rolls every series forward with the one rollout (``lstmlab.core.rollout``),
  one compiled program for all seeds, and returns the median over seeds as a tidy DataFrame
  with real timestamps.
- ``observe`` advances a series' state through new readings, in one transaction of the one
  state store (``lstmlab.live.state_store.StateStore``: SQLite or PostgreSQL) together with
  the readings' idempotency record; ``forecast`` continues from it.
- ``save``/``load`` keep the model in a model folder (``lstmlab.model_folder``) and the
  per-series states in the folder's store, loaded lazily: a loaded forecaster reads a
  series' state from the store on first use (and on every use: a state written by
  ``lstmlab observe`` or the service in between is never shadowed by a stale copy).

What a series' state holds (``SeriesState``):

- stateful models: one ``LSTMState`` per layer with ``(seeds, units)`` arrays, the state
  reached after reading the whole series from a zero state, one overlapping window per
  reading as the model was trained (Keras' stateful layout);
- every model but a stream (``ModelConfig.streams``: a stateful model that returns
  sequences, as older versions trained them): the last ``window`` readings;
- both: the next-step prediction of every seed after the last reading, the last timestamp,
  the count of readings seen, and the series' own scaler.

Exactness: observing a series in pieces of any sizes gives the same predictions as observing
it at once, bit for bit (every reading is one model step, ``lstmlab.core.rollout.read``, or
one window, ``read_windows``).
Few programs are ever compiled, one of each kind per row bucket (the series of one call
padded with zero rows to a power of two): a stateful model's ``observe`` copies the readings
into a buffer of ``read_capacity`` steps that one compiled loop reads for the true count (a
longer request is read in pieces of it), a window model reads its last window; a forecast
writes into a buffer of ``horizon_capacity`` steps from one compiled loop that runs for the
asked horizon (a longer horizon doubles the capacity, and compiles once more). ``warm_up``
sets both capacities and compiles their programs before the first request.

What a reading must be (``check_values``): finite, within float32, and within
``PLAUSIBLE_FACTOR`` training ranges of the series' training values unless the caller says
otherwise. Timestamps may carry a UTC offset or zone: a series keeps aware or naive ones (not
both), forecasts come back in the series' zone, and a reading whose forecast steps would pass
pandas' last timestamp is refused before anything is applied. ``fit`` refuses absurd training
values (``OUTLIER_FACTOR``) unless ``allow_outliers=True``.

Multi-step forecasts feed the predictions back through the model from a copy of the state;
the stored state changes only with real readings.
"""

import dataclasses
import difflib
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from lstmlab.checks import (
    check_at_most,
    check_int_range,
    check_non_negative_int,
    check_positive_int,
    check_positive_number,
    check_series_id,
    printable,
)
from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    MLPConfig,
    ModelConfig,
    Params,
)
from lstmlab.core.rollout import read, read_windows, rollout
from lstmlab.data.calendar import (
    SeriesClock,
    kept_zone,
    parse_steps,
    parse_times,
    parse_timestamps,
    timestamp_at,
)
from lstmlab.data.frames import (
    OUTLIER_FACTOR,
    TrainingData,
    check_outliers,
    parse_training_data,
)
from lstmlab.data.layouts import make_windows
from lstmlab.data.scaling import Scaler, fit_scaler
from lstmlab.data.seasons import Seasons, choose_seasons, choose_window
from lstmlab.defaults import (
    AUTO_KINDS,
    MAX_HORIZON,
    MAX_READINGS,
    MIN_WINDOW,
    MODEL_KINDS,
    PLAUSIBLE_FACTOR,
    ForecasterSettings,
)
from lstmlab.live.state_store import SeriesStore, StateStore, StoredState
from lstmlab.model_folder import SavedModel, load_model, open_store, save_model
from lstmlab.pipeline import (
    AUTO_NORMS,
    CALIBRATION_MIN_STEPS,
    CALIBRATION_ORIGINS,
    FORECAST_PLAUSIBLE_FACTOR,
    LEVEL_FIX,
    NO_CALIBRATION,
    Calibration,
    Candidate,
    ForecasterConfig,
    Plan,
    Recipe,
    bound_columns,
    calibration_origins,
    calibration_steps,
    candidate_plans,
    finite_or_none,
    fit_metrics,
    interval_reach,
    parse_levels,
    refit,
    sequence_outputs,
    train_candidates,
)
from lstmlab.runtime import ensure_compile_cache
from lstmlab.scoring import (
    SeedFlags,
    conformal_halfwidths,
    flag_forecasts,
    lowest,
    plausible_range,
    seed_ensemble,
)
from lstmlab.states import (
    SeriesState,
    decode_states,
    encode_states,
    fresh_series_state,
    state_arrays,
    state_from_arrays,
)

__all__ = [
    "AUTO_KINDS",
    "CALIBRATION_MIN_STEPS",
    "CALIBRATION_ORIGINS",
    "AUTO_NORMS",
    "MAX_HORIZON",
    "MIN_WINDOW",
    "FORECAST_PLAUSIBLE_FACTOR",
    "MODEL_KINDS",
    "OUTLIER_FACTOR",
    "PLAUSIBLE_FACTOR",
    "HORIZON_CAPACITY",
    "READ_CAPACITY",
    "Forecast",
    "Forecaster",
    "ForecasterConfig",
    "Readings",
    "Recipe",
    "SeriesState",
    "decode_states",
    "encode_states",
    "parse_timestamps",
]

# The readings one compiled read holds before ``warm_up`` sets it (``Forecaster.read_capacity``):
# one program per row bucket reads any count up to it, a longer request in pieces of it. The
# buffer is copied in whole on every call, so it is kept moderate (4 KB per series and column).
READ_CAPACITY = 1024
# The forecast steps one compiled rollout holds before ``warm_up`` sets it
# (``Forecaster.horizon_capacity``); a longer horizon doubles it until it fits.
HORIZON_CAPACITY = 64
# The calibration's rollouts run in groups of series of at most this many origins (a power of
# two: the rows of one rollout are padded to one), so that fit's memory stays bounded.
RESIDUAL_ROWS = 8192
# The largest float32: a reading beyond it cannot be computed with, whatever the factor.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Readings:
    """Readings that passed ``Forecaster.check_readings``: checked values, parsed times."""

    values: np.ndarray  # (readings, columns) float64, original units
    # (readings,) int64: nanoseconds since the epoch (UTC), step numbers (a series of steps)
    times: np.ndarray | None
    zone: str | None  # the zone of aware timestamps (the last reading's); None: naive or none

    def tail(self, start: int) -> "Readings":
        """The readings from position ``start`` on (the zone stays the last reading's)."""
        times = None if self.times is None else self.times[start:]
        return Readings(values=self.values[start:], times=times, zone=self.zone)


class ConflictError(ValueError):
    """Readings that contradict what a series already accepted (HTTP 409)."""


def check_repeats(
    series_id: str,
    readings: np.ndarray,
    keys: Sequence[int],
    logged: Mapping[int, np.ndarray],
    column: str,
    describe: Sequence[str],
) -> int:
    """How many leading ``readings`` repeat the log exactly: all of ``keys``, or a conflict.

    The one retry rule of ``Forecaster.observe``, ``lstmlab observe`` and the service: a
    reading sent again with its key (timestamp or sequence number) and identical values is a
    repeat, answered without being applied twice; other values under an accepted key, or an
    old key the log never accepted, are a ``ConflictError``.

    Args:
        series_id: the series, for the message.
        readings: ``(n, columns)`` the request's readings, the keys' first.
        keys: the leading readings' keys (timestamps in ns, or sequence numbers).
        logged: key -> accepted reading, from the store's log (``StateStore.logged``).
        column: ``"timestamp"``, ``"step"`` or ``"seq"``, for the message.
        describe: each key as the message shows it.
    """
    for i, (key, text) in enumerate(zip(keys, describe, strict=True)):
        if key not in logged:
            raise ConflictError(
                f"series {series_id!r}: the reading with {column} {text} is older than the "
                f"series' last accepted reading and was never accepted here; readings must "
                "arrive in time order"
            )
        if not np.array_equal(logged[key], readings[i]):
            raise ConflictError(
                f"series {series_id!r}: the reading with {column} {text} was already "
                f"accepted with values {logged[key].tolist()}, got {readings[i].tolist()}; "
                "a repeated reading must be identical"
            )
    return len(keys)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Forecast:
    """A forecast for one series (the median over seeds).

    Attributes:
        series_id: the series.
        values: ``(horizon, columns)`` float64 in the original units, or ``None`` while a
            window model has seen fewer than ``window`` readings.
        timestamps: ISO timestamps of the forecast steps, when the series has timestamps and
            the recipe a frequency; their step numbers as text (``"145"``) for a series of
            steps; else ``None``.
        seen: readings observed so far.
        needed: readings still needed before a forecast exists (0 when ``values`` is set).
        flags: the sanity check of every seed's forecast (``None`` while there is none):
            flagged seeds are left out of the median; when every seed is flagged,
            ``values`` is NaN.
        repeated: readings of the call that repeated accepted ones (``check_repeats``) and
            were not applied again.
    """

    series_id: str
    values: np.ndarray | None
    timestamps: tuple[str, ...] | None
    seen: int
    needed: int
    flags: SeedFlags | None = None
    repeated: int = 0

    @property
    def warning(self) -> str:
        """What the sanity check found ("" when every seed passed)."""
        return "" if self.flags is None else self.flags.note

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (values as nested lists; ``warning`` only when a seed is flagged).

        A value no seed could give (every seed flagged) is ``None`` (JSON ``null``), never a
        NaN that strict JSON refuses; ``warning`` says why.
        """
        values = None
        if self.values is not None:
            values = np.where(np.isfinite(self.values), self.values, None).tolist()
        out = {
            "series_id": self.series_id,
            "values": values,
            "timestamps": None if self.timestamps is None else list(self.timestamps),
            "seen": self.seen,
            "needed": self.needed,
        }
        if self.warning:
            out["warning"] = self.warning
        return out


# --------------------------------------------------------------------------- compiled helpers


def _bucket(count: int) -> int:
    """``count`` rounded up to a power of two: the compiled shape that serves it."""
    return 1 << (count - 1).bit_length()


def _calibration(
    kept: Candidate,
    rolled: dict[str, np.ndarray],
    ranges: dict[str, tuple[np.ndarray, np.ndarray]],
    values: Mapping[str, np.ndarray],
    pooled: np.ndarray,
) -> Calibration:
    """What ``fit`` keeps of the chosen candidate for the sanity check and the intervals.

    The residuals: a recursive model's rollouts (``rolled``), or a direct model's outputs
    from every origin of the tail, kept from a spread of them.
    """
    residuals = rolled or {
        i: r[calibration_origins(0, len(r) - 1)] for i, r in kept.residuals.items() if r is not None
    }
    return Calibration(
        ranges=ranges,
        default_range=plausible_range(pooled, FORECAST_PLAUSIBLE_FACTOR),
        residuals=residuals,
        pooled=np.concatenate(list(residuals.values())) if residuals else None,
        extremes={i: (v.min(axis=0), v.max(axis=0)) for i, v in values.items()},
        default_extremes=(pooled.min(axis=0), pooled.max(axis=0)),
    )


def _time_column(times: Sequence[Any], grids: Mapping[Any, pd.Index], columns: int) -> Any:
    """The forecast frame's ``time``: each series' steps once per value column.

    ``times`` holds, per series, the key of its timestamp grid (or step numbers) in
    ``grids`` (a tuple) or the positions of its forecast readings. One zone (or none): one
    datetime column, each distinct grid converted once; otherwise objects, as pandas joins
    them. Step numbers: one int64 column.
    """
    stamped = [isinstance(t, tuple) for t in times]
    position = {key: k for k, key in enumerate(grids)}
    if all(stamped) and not isinstance(next(iter(grids.values())), pd.DatetimeIndex):
        steps = np.stack([grid.to_numpy(np.int64) for grid in grids.values()])
        return steps[np.repeat([position[key] for key in times], columns)].reshape(-1)
    zones = {str(t.tz) for t in grids.values()}
    if all(stamped) and len(zones) == 1:
        utc = np.stack([grid.as_unit("ns").asi8 for grid in grids.values()])
        rows = np.repeat([position[key] for key in times], columns)
        utc = utc[rows].reshape(-1).view("M8[ns]")
        zone = next(iter(grids.values())).tz
        if zone is None:
            return pd.DatetimeIndex(utc)
        return pd.DatetimeIndex(utc, tz="UTC").tz_convert(zone)
    pieces = [grids[t] if isinstance(t, tuple) else t for t in times for _ in range(columns)]
    if any(stamped):  # several zones, or positions beside times
        return np.concatenate([np.asarray(p, dtype=object) for p in pieces])
    return np.concatenate(pieces)


def _stack_rnn(states: Sequence[SeriesState]) -> tuple[LSTMState, ...]:
    """Per-series ``(seeds, units)`` states as ``(seeds, series, units)`` per layer."""
    layers = len(states[0].rnn)
    return tuple(
        LSTMState(
            h=np.stack([s.rnn[layer].h for s in states], axis=1),
            c=np.stack([s.rnn[layer].c for s in states], axis=1),
        )
        for layer in range(layers)
    )


def _add_seed_axis(params: Params) -> Params:
    return jax.tree.map(lambda leaf: jax.device_put(np.asarray(leaf)[None]), params)


# --------------------------------------------------------------------------- the edge object


_FREQ_WORDS = {
    "MS": "monthly",
    "ME": "monthly",
    "QS": "quarterly",
    "QE": "quarterly",
    "YS": "yearly",
    "YE": "yearly",
    "W": "weekly",
    "W-SUN": "weekly",
    "D": "daily",
    "h": "hourly",
    "30min": "half-hourly",
    "15min": "every 15 minutes",
}


def _median_over_seeds(array: Any) -> np.ndarray:
    """The median over the leading seeds axis; with one seed, that seed's values.

    No sort for one seed: the service's hot path forecasts with one.
    """
    array = np.asarray(array)
    return array[0] if array.shape[0] == 1 else np.median(array, axis=0)


class Forecaster:
    """One forecasting model over many series: fit, forecast, observe, save, load, plot.

    Args:
        config: the model and its training (``ForecasterConfig``); or give its fields as
            keyword arguments (``Forecaster(model="stateless", window=12)``), not both.
        quiet: no progress bar while fitting.
        **fields: ``ForecasterConfig`` fields.

    Raises:
        ValueError: ``config`` and fields both given, or an invalid field.

    Example:
        >>> import numpy as np
        >>> fc = Forecaster(model="stateful", units=(4,), epochs=2, seeds=2)
        >>> fc = fc.fit(np.sin(np.arange(40) / 3.0))
        >>> frame = fc.forecast(3)
        >>> list(frame.columns), frame["step"].tolist()
        (['series_id', 'time', 'step', 'forecast'], [1, 2, 3])
    """

    def __init__(
        self, *, config: ForecasterConfig | None = None, quiet: bool = True, **fields: Any
    ) -> None:
        if config is not None and fields:
            raise ValueError(
                f"pass either config= or the config's fields, got both (config and "
                f"{sorted(fields)}); use dataclasses.replace(config, ...) to change a field"
            )
        if config is not None and not isinstance(config, ForecasterConfig):
            raise ValueError(
                f"config must be a ForecasterConfig, got {type(config).__name__}; pass "
                "config=ForecasterConfig(...)"
            )
        self._settings = config if config is not None else ForecasterConfig(**fields)
        self._quiet = bool(quiet)
        ensure_compile_cache()  # a notebook kernel reads the programs of the last one back
        self._model: ModelConfig | None = None
        self._params: Params | None = None  # leaves with a leading seeds axis
        self._recipe: Recipe | None = None
        self._scaler: Scaler | None = None  # the scaler of a series first seen after fitting
        self._metrics: dict[str, Any] = {}
        self._calibration = NO_CALIBRATION
        self._flags: dict[str, SeedFlags] = {}
        self._store: StateStore | None = None
        self._clock = SeriesClock()
        self._read_capacity = READ_CAPACITY
        self._horizon_capacity = HORIZON_CAPACITY
        # the readings fitted on (and observed since), for plots: id -> (times ns, values)
        self._history: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}

    # -- construction -----------------------------------------------------------------------
    def _set_model(
        self,
        model: ModelConfig,
        params: Params,
        *,
        recipe: Recipe,
        scaler: Scaler | None,
        metrics: Mapping[str, Any] | None,
        store: StateStore | None,
        calibration: Calibration = NO_CALIBRATION,
    ) -> None:
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
        if self._store is not None and self._store is not store:
            self._store.close()
        self._model = model
        self._params = params
        self._seeds = int(jax.tree.leaves(params)[0].shape[0])  # read per series decoded
        self._recipe = recipe
        self._scaler = scaler
        self._metrics = dict(metrics or {})
        self._calibration = calibration
        self._flags = {}
        self._plausible_bounds: dict[tuple[str | None, float], tuple[np.ndarray, np.ndarray]] = {}
        self._store = store if store is not None else SeriesStore(model=f"unsaved-{uuid.uuid4()}")
        self._clock = SeriesClock(freq=recipe.freq, step=recipe.step)

    @classmethod
    def from_params(
        cls,
        config: ModelConfig,
        params: Params,
        *,
        recipe: Recipe,
        scaler: Scaler | None = None,
        metrics: Mapping[str, Any] | None = None,
        seeds: int | None = None,
    ) -> "Forecaster":
        """A forecaster around a model already trained (or imported), with no series yet.

        Args:
            config: the model; ``outputs`` must equal ``features`` (it forecasts its readings).
            params: its parameters: one training's, or ``seeds`` trainings' stacked along a
                leading axis.
            recipe: how readings become inputs (``columns`` must match ``features``).
            scaler: the scaler every series starts with, or ``None`` for none.
            metrics: training metrics, saved with the model.
            seeds: ``None`` when ``params`` is one training's; else the size of its leading
                seeds axis.

        Returns:
            The forecaster.

        Raises:
            ValueError: the config, recipe and scaler disagree.
        """
        units = config.hidden if isinstance(config, MLPConfig) else config.units
        settings = ForecasterConfig(
            model=recipe.kind,
            window=recipe.window,
            units=units,
            seeds=1 if seeds is None else seeds,
            scaler="minmax" if scaler is None else scaler.kind,
            norm=config.norm,
            validation=0.0,
            horizon=recipe.horizon,
        )
        forecaster = cls(config=settings)
        if seeds is None:
            params = _add_seed_axis(params)
        forecaster._set_model(
            config, params, recipe=recipe, scaler=scaler, metrics=metrics, store=None
        )
        return forecaster

    def _require_model(self) -> None:
        if self._model is None:
            raise ValueError(
                "this Forecaster is not fitted yet; call fit(data) first, or "
                "Forecaster.load(path) for a saved one"
            )

    # -- views ------------------------------------------------------------------------------
    @property
    def config(self) -> ForecasterConfig:
        """The model and training settings."""
        return self._settings

    @property
    def model_config(self) -> ModelConfig:
        """The network's config."""
        self._require_model()
        return self._model

    @property
    def params(self) -> Params:
        """The parameters, leaves with a leading seeds axis."""
        self._require_model()
        return self._params

    @property
    def seeds(self) -> int:
        """Trainings side by side (forecasts are their median)."""
        self._require_model()
        return self._seeds

    @property
    def recipe(self) -> Recipe:
        """The data recipe."""
        self._require_model()
        return self._recipe

    @property
    def scaler(self) -> Scaler | None:
        """The scaler a series first seen after fitting starts with (fitted on all series)."""
        return self._scaler

    @property
    def metrics(self) -> dict[str, Any]:
        """Training metrics (a copy); ``"warnings"`` says what the sanity check flagged."""
        return dict(self._metrics)

    @property
    def flags(self) -> dict[str, SeedFlags]:
        """The series of the last forecast with a flagged seed -> its ``SeedFlags``.

        Every seed's forecast is checked: a non-finite value, or one beyond
        ``FORECAST_PLAUSIBLE_FACTOR`` training ranges outside the series' training data
        (``lstmlab.scoring.plausible_range``), flags the seed, which is left out
        of the median. ``{}`` when every seed passed.
        """
        return dict(self._flags)

    @property
    def store(self) -> StateStore:
        """The state store (in memory until saved; a loaded forecaster's folder store)."""
        self._require_model()
        return self._store

    @property
    def series_ids(self) -> tuple[str, ...]:
        """The series with a state, in the order they were first stored."""
        return () if self._store is None else self._store.series_ids()

    @property
    def windowed(self) -> bool:
        """Whether forecasts read the last ``window`` readings.

        Every model does but a stream (``ModelConfig.streams``: a stateful model that reads
        one reading per step, as older versions trained them).
        """
        self._require_model()
        return not self._model.streams

    def fresh_state(self) -> SeriesState:
        """The state a new series id starts from (zero recurrent state, nothing seen)."""
        self._require_model()
        return fresh_series_state(self._model, self.seeds, self._scaler)

    def series_state(self, series_id: str) -> SeriesState:
        """The state of a series, read from the store now; a fresh one for a new id."""
        known = self.stored_state(series_id)
        return self.fresh_state() if known is None else known

    def stored_state(self, series_id: str) -> SeriesState | None:
        """The state of a series, read from the store now; ``None`` for an unknown id."""
        self._require_model()
        stored = self._store.get(series_id)
        return None if stored is None else self._decode(series_id, stored)

    def _decode(self, series_id: str, stored: StoredState) -> SeriesState:
        return state_from_arrays(
            self._model,
            self._recipe,
            stored.arrays,
            self.seeds,
            self._settings.scaler,
            f"series {series_id!r}",
        )

    def _encode(self, state: SeriesState) -> StoredState:
        arrays = state_arrays(self._model, self._recipe, state, self.seeds)
        return StoredState(arrays=arrays, seen=state.seen, last_time=state.last_time)

    # -- validation -------------------------------------------------------------------------
    def check_values(
        self,
        series_id: str,
        values: Any,
        *,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
    ) -> np.ndarray:
        """Readings as ``(readings, columns)`` float64, or a ``ValueError`` saying what is wrong.

        A reading must be finite and within float32's range (the model computes in float32;
        always), and, unless ``plausible_factor`` is ``None``, within ``plausible_factor``
        training ranges of the series' training values: ``[low - f * width, high + f *
        width]`` with ``low``, ``high`` the series' training extremes and ``width = high -
        low`` (``lstmlab.scoring.plausible_range``). A series first seen after fitting is
        held to the range of all training values; a forecaster from ``from_params`` (no
        training values) to its scaler's span (min to max of a minmax scaler, mean ± one
        standard deviation of a standard one).

        Args:
            series_id: for messages (and whose training range applies).
            values: ``(readings, columns)``, or ``(readings,)`` for one column.
            plausible_factor: training ranges beyond the training values still accepted
                (default ``PLAUSIBLE_FACTOR``); ``None`` accepts any finite value.

        Returns:
            The readings, in the original units.

        Raises:
            ValueError: not numbers, wrong column count, no readings, NaN or infinite values,
                beyond float32, or beyond the plausible range.
        """
        self._require_model()
        columns = self._model.features
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"series {series_id!r}: readings must be numbers, got {values!r:.80}; pass "
                f"numbers of shape (readings, {columns})"
            ) from None
        if array.ndim == 1 and columns == 1:
            array = array[:, None]  # (readings,) -> (readings, 1)
        if array.ndim != 2 or array.shape[1] != columns:
            got = array.shape[1] if array.ndim == 2 else f"shape {array.shape}"
            raise ValueError(
                f"series {series_id!r}: each reading needs {columns} value(s) (columns "
                f"{list(self._recipe.columns)}), got {got}; pass values of shape (readings, "
                f"{columns})"
            )
        if array.shape[0] == 0:
            raise ValueError(f"series {series_id!r}: no readings given; pass at least one")
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"series {series_id!r}: reading {first} holds NaN or infinite values "
                f"({array[first].tolist()}); readings must be finite, fill or drop it before "
                "observing"
            )
        huge = (np.abs(array) > _FLOAT32_MAX).any(axis=1)
        if huge.any():
            first = int(np.argmax(huge))
            raise ValueError(
                f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
                "the float32 range the model computes in, once scaled; check its units (no "
                f"plausible_factor accepts a value beyond {_FLOAT32_MAX:.4g})"
            )
        if plausible_factor is not None:
            self._check_plausible(series_id, array, plausible_factor)
        return array

    def _training_extremes(self, series_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``(min, max)`` a series' readings are checked against (``check_values``)."""
        calibration = self._calibration
        known = calibration.extremes.get(series_id, calibration.default_extremes)
        if known is not None:
            return known
        scaler = self._scaler
        if scaler is None or scaler.kind == "none":
            return None
        offset, scale = np.asarray(scaler.offset), np.abs(np.asarray(scaler.scale))
        if scaler.kind == "minmax":
            return offset, offset + scale
        return offset - scale, offset + scale

    def _check_plausible(self, series_id: str, array: np.ndarray, factor: Any) -> None:
        factor = check_positive_number(
            "plausible_factor",
            factor,
            fix="pass e.g. 10, or None to accept any finite value",
        )
        extremes = self._training_extremes(series_id)
        if extremes is None:
            return
        # The bounds depend only on the training values and the factor: computed once per
        # training series (new series share the default), not on every reading.
        key = (series_id if series_id in self._calibration.extremes else None, factor)
        bounds = self._plausible_bounds.get(key)
        if bounds is None:
            bounds = self._plausible_bounds[key] = plausible_range(np.stack(extremes), factor)
        low, high = bounds  # (columns,) each
        outside = ((array < low) | (array > high)).any(axis=1)
        if outside.any():
            first = int(np.argmax(outside))
            column = int(np.argmax((array[first] < low) | (array[first] > high)))

            def g(value: float) -> str:
                return f"{value:.6g}"

            raise ValueError(
                f"series {series_id!r}: reading {first} ({g(array[first, column])}) is outside "
                f"the plausible range [{g(low[column])}, {g(high[column])}] ({factor:g} training "
                f"ranges around the training values {g(extremes[0][column])} to "
                f"{g(extremes[1][column])}); check its units, or accept it with a larger "
                "plausible_factor (--plausible-factor) or none (plausible_factor=None, "
                "--allow-implausible)"
            )

    def check_readings(
        self, series_id: str, values: Any, timestamps: Any, plausible_factor: Any
    ) -> Readings:
        """Check the readings (``check_values``) and their count, then parse the timestamps.

        Every check that needs no series state, made once per request: ``advance`` and the
        service's ``observe`` both start here.
        """
        array = self.check_values(series_id, values, plausible_factor=plausible_factor)
        if timestamps is None:
            return Readings(values=array, times=None, zone=None)
        if not hasattr(timestamps, "__len__"):
            timestamps = list(timestamps)  # an iterator: counted once, parsed from the list
        if len(timestamps) != len(array):
            raise ValueError(
                f"series {series_id!r}: {len(timestamps)} timestamps for {len(array)} "
                "readings; pass one timestamp per reading"
            )
        if self._recipe.step is not None:  # a series numbered by steps
            steps = parse_steps(lambda k: f"series {series_id!r}: reading {k}'s step", timestamps)
            return Readings(values=array, times=steps, zone=None)
        if len(timestamps) and all(isinstance(t, int | np.integer) for t in timestamps):
            raise ValueError(
                f"series {series_id!r}: the timestamps are integers ({timestamps[0]}, ...), "
                "which number steps, but this model's series have timestamps; pass timestamps "
                "such as '1961-01-01'"
            )
        stamps, zone = parse_times(series_id, timestamps)
        return Readings(values=array, times=stamps, zone=zone)

    def check_timestamp_kind(self, series_id: str, state: SeriesState, readings: Readings) -> None:
        """One series keeps one kind of timestamps: time-zone aware or naive.

        Checked before anything compares the new timestamps with the series' (a naive
        timestamp is no instant: compared as UTC it could pass for a logged reading).
        """
        zone = readings.zone
        if readings.times is None or state.last_time is None or self._recipe.step is not None:
            return
        if (zone is None) == (state.zone is None):
            return
        had, got = ("time-zone aware", "naive") if zone is None else ("naive", "aware")
        first = timestamp_at(int(readings.times[0]), zone).isoformat()
        raise ValueError(
            f"series {series_id!r} has {had} timestamps (up to "
            f"{state.last_timestamp.isoformat()}), got {got} ones ({first}); a series' "
            "timestamps are all aware (with an offset such as '+05:00') or all naive: send them "
            + ("with the offset" if zone is None else "without one")
            + ", or start the series afresh (delete_series, observe --reset, DELETE "
            "/series/{id})"
        )

    def _check_timeline(
        self, series_id: str, state: SeriesState, readings: Readings, horizon: int
    ) -> None:
        """The readings' times against the series': present, in order, on its grid.

        ``readings`` passed ``check_timestamp_kind`` against ``state``.
        """
        self._clock.check_next(
            series_id,
            state.last_time,
            state.zone,
            readings.times,
            readings.zone,
            len(readings.values),
            horizon=horizon,
        )

    def _numbered(self, state: SeriesState, readings: Readings) -> Readings:
        """Readings of a series of steps with their step numbers: given, or the next ones."""
        if self._recipe.step is None or readings.times is not None:
            return readings
        steps = self._clock.next_steps(state.last_time, state.seen, len(readings.values))
        return dataclasses.replace(readings, times=steps)

    def time_text(self, time: int, zone: str | None) -> str:
        """A stored time (``SeriesState.last_time``) as text: ISO, or a step number."""
        return self._clock.text(time, zone)

    def _forecast_times(
        self, series_id: str, last_time: int | None, zone: str | None, horizon: int
    ) -> pd.Index | None:
        """The times of ``horizon`` steps after ``last_time`` (``SeriesClock.after``)."""
        return self._clock.after(series_id, last_time, zone, horizon)

    def _readings(self, series_id: str, new_data: Any, timestamps: Any) -> tuple[Any, Any]:
        """``new_data`` (DataFrame, Series or array) as ``(values, timestamps)``.

        The times are the index's: timestamps, or, for a series of steps, integer labels
        (pandas' default ``RangeIndex`` from 0 labels nothing: such readings go on from the
        series' last step); else a time column.
        """
        if not isinstance(new_data, (pd.Series, pd.DataFrame)):
            return new_data, timestamps
        index = new_data.index
        labelled = isinstance(index, pd.DatetimeIndex) or (
            self._recipe.step is not None
            and pd.api.types.is_integer_dtype(index.dtype)
            and not (index.equals(pd.RangeIndex(len(index))) and index.name is None)
        )
        if labelled and timestamps is None:
            timestamps = index
        if isinstance(new_data, pd.Series):
            return new_data.to_numpy(), timestamps
        frame = new_data
        time_col = self._recipe.time_col
        if not labelled:
            candidates = [c for c in (time_col, "time", "ds") if c is not None and c in frame]
            if not candidates:
                candidates = [
                    c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                ][:1]
            if candidates:
                if timestamps is None:
                    timestamps = frame[candidates[0]].astype(str).tolist()
                frame = frame.drop(columns=candidates[0])
        columns = list(self._recipe.columns)
        names = [str(c) for c in frame.columns]
        frame.columns = names
        if not set(columns) <= set(names):
            if len(columns) == 1:
                chosen = [c for c in (series_id, "value", "y") if c in names]
                columns = chosen[:1] or (names if len(names) == 1 else [])
            if len(columns) != len(self._recipe.columns) or not set(columns) <= set(names):
                raise ValueError(
                    f"series {series_id!r}: cannot tell which column(s) of the DataFrame hold "
                    f"the readings (columns: {names}); the model reads "
                    f"{list(self._recipe.columns)}, name the columns so"
                )
        return frame[columns].to_numpy(), timestamps

    # -- the pure step ----------------------------------------------------------------------
    def advance(
        self,
        series_id: str,
        values: Any,
        timestamps: Sequence[Any] | None = None,
        *,
        state: SeriesState | None = None,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
        horizon: int = 1,
    ) -> SeriesState:
        """The state after reading ``values``, without storing it (validates first).

        Args:
            series_id: the series.
            values: ``(readings, columns)`` or ``(readings,)`` for one column, original units.
            timestamps: one per reading (ISO strings, datetimes), or ``None``.
            state: the state to advance; ``None`` reads the series' stored state.
            plausible_factor: as ``check_values`` (``None``: any finite value).
            horizon: the forecast steps the new state must be able to date (a reading so
                late that they pass pandas' last timestamp is refused).

        Returns:
            The new ``SeriesState``; ``commit`` stores it.

        Raises:
            ValueError: a bad id, wrong column count, NaN, infinite or implausible values,
                timestamps out of order, with gaps, out of range, aware and naive mixed, or
                missing where the series has them. Nothing changes.
        """
        states = None if state is None else {series_id: state}
        result = self._advance_many(
            {series_id: values},
            {series_id: timestamps},
            states,
            plausible_factor=plausible_factor,
            horizon=horizon,
        )
        return result[series_id][0]

    def repeated_by_time(
        self, series_id: str, state: SeriesState, values: np.ndarray, times: np.ndarray
    ) -> int:
        """How many leading readings repeat accepted ones, by their timestamps (the log).

        Readings not newer than the series' last one must be in its observation log with
        identical values (``check_repeats``); ``ConflictError`` otherwise.
        """
        if state.last_time is None:
            return 0
        old = int(np.searchsorted(times, state.last_time, side="right"))  # times ascend
        if not old:
            return 0
        keys = [int(t) for t in times[:old]]
        logged = self._store.logged(series_id, "time", keys)
        describe = [self.time_text(t, state.zone) for t in keys]
        column = "timestamp" if self._recipe.step is None else "step"
        return check_repeats(series_id, values, keys, logged, column, describe)

    def repeated(
        self,
        series_id: str,
        state: SeriesState,
        readings: np.ndarray,
        stamps: np.ndarray | None,
        seq: int | None,
    ) -> int:
        """How many leading readings were already accepted: the one retry rule.

        ``Forecaster.observe``, ``lstmlab observe`` and the service answer a retry with it.
        Readings are keyed by their timestamps (``repeated_by_time``), by ``seq``, the
        sequence number of the first one (``repeated_by_seq``), or both, which must then
        find the same repeated readings; without a key nothing is a repeat.

        Raises:
            ConflictError: a key accepted with other values, an old key never accepted,
                ``seq`` past the series' end, or timestamps and ``seq`` that disagree.
        """
        by_time = by_seq = None
        if stamps is not None:
            by_time = self.repeated_by_time(series_id, state, readings, stamps)
        if by_time is not None and seq is not None and by_time < len(readings):
            # the first new reading continues the series: it has seq ``state.seen``
            if seq + by_time != state.seen:
                raise self._disagree(series_id, state, len(readings), seq, by_time)
        if seq is not None:
            by_seq = self.repeated_by_seq(series_id, state, readings, seq)
        if by_time is not None and by_seq is not None and by_time != by_seq:
            raise self._disagree(series_id, state, len(readings), seq, by_time)
        if by_time and seq is not None:
            # equal values at the claimed seqs are not enough ([1, 1, 1] with seq 0 and the
            # third timestamp): the log must hold the repeated timestamps at those seqs
            keys = [int(t) for t in stamps[:by_time]]
            logged = self._store.logged_seqs(series_id, keys)
            for i, key in enumerate(keys):
                if logged.get(key) != seq + i:
                    raise ConflictError(
                        f"series {series_id!r}: seq {seq} does not agree with the timestamps: "
                        f"the reading at {self.time_text(key, state.zone)} was accepted with "
                        f"seq {logged.get(key)}, not {seq + i}; send the seq of the first "
                        f"reading (here {logged.get(keys[0])}), or timestamps alone"
                    )
        return (by_seq or 0) if by_time is None else by_time

    @staticmethod
    def _disagree(
        series_id: str, state: SeriesState, count: int, seq: int, by_time: int
    ) -> ConflictError:
        return ConflictError(
            f"series {series_id!r}: seq {seq} does not agree with the timestamps: by their "
            f"timestamps {by_time} of the {count} readings are already accepted and the "
            f"series has {state.seen} readings; send the seq of the first reading"
            + (f" (here {state.seen - by_time})" if by_time < count else "")
            + ", or timestamps alone"
        )

    def repeated_by_seq(
        self, series_id: str, state: SeriesState, readings: np.ndarray, seq: int
    ) -> int:
        """How many leading readings repeat accepted ones, by ``seq`` (the log).

        Raises:
            ConflictError: ``seq`` past the series' end, or a seq accepted with other values.
        """
        if seq > state.seen:
            raise ConflictError(
                f"series {series_id!r}: seq {seq} leaves a gap: the series has "
                f"{state.seen} readings, so the next reading has seq {state.seen}; send "
                "the missing readings first"
            )
        keys = list(range(seq, min(seq + len(readings), state.seen)))
        if not keys:
            return 0
        logged = self._store.logged(series_id, "seq", keys)
        return check_repeats(series_id, readings, keys, logged, "seq", [str(k) for k in keys])

    def advance_readings(
        self, series_id: str, state: SeriesState, readings: Readings, *, horizon: int
    ) -> SeriesState:
        """``advance`` for readings already checked: the one entry point that checks nothing twice.

        For a caller that needs the checked readings before the step (the service compares
        them with the observation log first).

        Args:
            series_id: the series (``check_series_id`` accepted it).
            state: the state to advance.
            readings: from ``check_readings``, accepted by ``check_timestamp_kind`` against
                ``state``.
            horizon: as ``advance``.

        Returns:
            The new ``SeriesState``.

        Raises:
            ValueError: what ``advance`` raises for the checks that need the state (order,
                gaps, timestamps missing, forecast steps out of range, beyond float32 once
                scaled). Nothing changes.
        """
        checked = {series_id: self._prepared(series_id, state, readings, horizon)}
        return self._read(checked)[series_id]

    def _advance_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Any] | None,
        states: Mapping[str, SeriesState] | None = None,
        *,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
        horizon: int = 1,
        retries: bool = False,
        new_series: bool = True,
        seqs: Mapping[str, int | None] | None = None,
    ) -> dict[str, tuple[SeriesState, np.ndarray, np.ndarray | None, int]]:
        """Validate and advance several series.

        With ``retries`` (``observe``: states from the store), leading readings that repeat
        accepted ones, by their timestamps or ``seqs`` (``repeated``), are skipped; else
        every reading is applied.
        Without ``new_series`` an id the model does not have is refused (``state_to_advance``).

        Returns:
            id -> (new state, the readings applied, their timestamps in ns, the readings that
            repeated accepted ones and were skipped).
        """
        self._require_model()
        timestamps = timestamps or {}
        checked, unchanged, repeats = {}, {}, {}
        for series_id, values in observations.items():
            check_series_id(series_id)
            state = (
                states[series_id]
                if states is not None
                else self.state_to_advance(series_id, new_series=new_series)
            )
            readings = self.check_readings(
                series_id, values, timestamps.get(series_id), plausible_factor
            )
            self.check_timestamp_kind(series_id, state, readings)
            repeats[series_id] = 0
            if retries:  # the accepted part, answered again
                seq = (seqs or {}).get(series_id)
                repeats[series_id] = self.repeated(
                    series_id, state, readings.values, readings.times, seq
                )
                readings = readings.tail(repeats[series_id])
            if len(readings.values):
                checked[series_id] = self._prepared(series_id, state, readings, horizon)
            else:
                unchanged[series_id] = state
        advanced = self._read(checked) if checked else {}
        out = {}
        for series_id in observations:
            if series_id in unchanged:
                empty = np.zeros((0, len(self._recipe.columns)))
                out[series_id] = (unchanged[series_id], empty, None, repeats[series_id])
            else:
                _, _, stamps, applied = checked[series_id]
                out[series_id] = (advanced[series_id], applied, stamps, repeats[series_id])
        return out

    def _prepared(
        self, series_id: str, state: SeriesState, readings: Readings, horizon: int
    ) -> tuple[SeriesState, np.ndarray, np.ndarray | None, np.ndarray]:
        """Checks against the state, then scaling: ``(state, scaled, times ns, readings)``."""
        readings = self._numbered(state, readings)
        self._check_timeline(series_id, state, readings, horizon)
        array, stamps = readings.values, readings.times
        if stamps is not None and self._recipe.step is None:
            state = dataclasses.replace(state, zone=kept_zone(state.zone, readings.zone, stamps))
        with np.errstate(over="ignore"):
            scaled = (array if state.scaler is None else state.scaler.transform(array)).astype(
                np.float32
            )
        overflow = ~np.isfinite(scaled).all(axis=1)
        if overflow.any():
            first = int(np.argmax(overflow))
            raise ValueError(
                f"series {series_id!r}: reading {first} ({array[first].tolist()}) is beyond "
                "the float32 range the model computes in, once scaled; check its units"
            )
        return state, scaled, stamps, array

    def _read(self, checked: dict) -> dict[str, SeriesState]:
        """The states after the prepared readings (``_prepared``) of every series."""
        if self._model.streams:
            return self._read_stream(checked)
        if self._model.stateful:
            return self._read_stateful_windows(checked)
        return self._read_windowed(checked)

    def _read_stream(self, checked: dict) -> dict[str, SeriesState]:
        out = {}
        by_length: dict[int, list[str]] = {}
        for series_id, (_, scaled, _, _) in checked.items():
            by_length.setdefault(len(scaled), []).append(series_id)
        for length, ids in by_length.items():
            after = _stack_rnn([checked[i][0] for i in ids])  # (seeds, series, units)
            x = np.stack([checked[i][1] for i in ids])  # (series, readings, features)
            # one compiled loop over a buffer of read_capacity readings (rows padded to a
            # power of two): the same program whatever the count
            y, after = read(
                self._model, self._params, after, x, seeds=True, capacity=self._read_capacity
            )  # y: (seeds, series, outputs)
            for row, series_id in enumerate(ids):
                state, _, stamps, _ = checked[series_id]
                out[series_id] = dataclasses.replace(
                    state,
                    rnn=tuple(LSTMState(h=s.h[:, row], c=s.c[:, row]) for s in after),
                    prediction=y[:, row],
                    last_time=state.last_time if stamps is None else int(stamps[-1]),
                    seen=state.seen + length,
                )
        return out

    def _read_stateful_windows(self, checked: dict) -> dict[str, SeriesState]:
        """A stateful model on overlapping windows reads one window per new reading.

        ``rnn`` is the state after the last full window read, ``recent`` that window (or the
        readings so far, while fewer than ``window``); a new reading's window ends at it.
        """
        window = self._recipe.window
        pending = {}
        for series_id, (state, scaled, _, _) in checked.items():
            readings = np.concatenate([state.recent, scaled])
            # the windows not yet read: those ending at the new readings
            pending[series_id] = readings[max(0, len(state.recent) - window + 1) :]
        by_length: dict[int, list[str]] = {}
        for series_id, readings in pending.items():
            if len(readings) >= window:
                by_length.setdefault(len(readings), []).append(series_id)
        read_out = {}
        for ids in by_length.values():
            y, after = read_windows(
                self._model,
                self._params,
                _stack_rnn([checked[i][0] for i in ids]),
                np.stack([pending[i] for i in ids]),  # (series, readings, features)
                seeds=True,
                capacity=self._read_capacity,
            )  # y: (seeds, series, windows, outputs)
            for row, series_id in enumerate(ids):
                rnn = tuple(LSTMState(h=s.h[:, row], c=s.c[:, row]) for s in after)
                read_out[series_id] = (rnn, y[:, row, -1])
        out = {}
        for series_id, (state, scaled, stamps, _) in checked.items():
            rnn, prediction = read_out.get(series_id, (state.rnn, state.prediction))
            out[series_id] = dataclasses.replace(
                state,
                rnn=rnn,
                recent=pending[series_id][-window:],
                prediction=prediction,
                last_time=state.last_time if stamps is None else int(stamps[-1]),
                seen=state.seen + len(scaled),
            )
        return out

    def _read_windowed(self, checked: dict) -> dict[str, SeriesState]:
        window = self._recipe.window
        recents = {
            series_id: np.concatenate([state.recent, scaled])[-window:]
            for series_id, (state, scaled, _, _) in checked.items()
        }
        ready = [series_id for series_id, recent in recents.items() if len(recent) == window]
        predictions = {}
        if ready:
            x = np.stack([recents[i] for i in ready])  # (series, window, features)
            y = np.asarray(read(self._model, self._params, (), x, seeds=True)[0])
            predictions = {series_id: y[:, row] for row, series_id in enumerate(ready)}
        out = {}
        for series_id, (state, scaled, stamps, _) in checked.items():
            out[series_id] = dataclasses.replace(
                state,
                recent=recents[series_id],
                prediction=predictions.get(series_id),
                last_time=state.last_time if stamps is None else int(stamps[-1]),
                seen=state.seen + len(scaled),
            )
        return out

    def commit(
        self,
        series_id: str,
        state: SeriesState,
        *,
        readings: np.ndarray | None = None,
        times: Sequence[int] | None = None,
    ) -> None:
        """Store a state from ``advance``, and log the readings that led to it (one transaction).

        Args:
            series_id: the series.
            state: its new state.
            readings: ``(readings, columns)`` float64, the readings ``state`` read last (their
                sequence numbers end at ``state.seen - 1``), or ``None`` to log none.
            times: their timestamps in nanoseconds, or ``None``.
        """
        check_series_id(series_id)
        first = None if readings is None else state.seen - len(readings)
        self._store.put(
            series_id, self._encode(state), first_seq=first, times=times, readings=readings
        )

    def delete_series(self, series_id: str) -> bool:
        """Forget a series: its state and its observation log (it then starts afresh).

        Args:
            series_id: the series.

        Returns:
            ``True`` when the series was stored, ``False`` for an unknown id.

        Raises:
            ValueError: a bad series id.
        """
        self._require_model()
        check_series_id(series_id)
        self._history.pop(series_id, None)
        self._flags.pop(series_id, None)
        return bool(self._store.delete(series_id))

    @property
    def read_capacity(self) -> int:
        """The readings one compiled read holds (``READ_CAPACITY`` until ``warm_up``)."""
        return self._read_capacity

    @property
    def horizon_capacity(self) -> int:
        """The forecast steps one compiled rollout holds (doubled for a longer horizon)."""
        return self._horizon_capacity

    def warm_up(self, max_readings: int, max_horizon: int, *, max_series: int = 1) -> int:
        """Compile every program a request up to these sizes can need, so that none compiles.

        Sets ``read_capacity`` to ``max_readings`` and ``horizon_capacity`` to
        ``max_horizon``, then runs, on zeros and for each row bucket up to ``max_series``
        (powers of two), the one read (a stateful model's loop over its buffer, or a window
        model's window) and the one rollout (none for a direct model, whose forecast is its
        stored output, nor for ``max_horizon`` 1, the stored prediction). Nothing is stored.
        A request of more readings is read in pieces (no compile); a longer horizon, or more
        series at once, compiles.

        Args:
            max_readings: the most readings one request sends.
            max_horizon: the most steps one request forecasts.
            max_series: the most series one call observes or forecasts together.

        Returns:
            The number of programs run: 2 per row bucket for a recursive forecaster with
            ``max_horizon > 1``, else 1.
        """
        self._require_model()
        max_readings = check_positive_int("max_readings", max_readings)
        check_at_most(
            "max_readings",
            max_readings,
            MAX_READINGS,
            fix="pass fewer (the warm-up compiles reads up to it)",
        )
        max_horizon = check_int_range("max_horizon", max_horizon, 1, MAX_HORIZON)
        max_series = check_positive_int("max_series", max_series)
        self._read_capacity = max_readings
        self._horizon_capacity = max_horizon
        columns = self._model.features
        row_buckets = [1 << bit for bit in range(_bucket(max_series).bit_length())]
        programs = 0
        # observe's own read, on zeros: a window of readings (one reading for a stream)
        zeros = np.zeros((1 if self._model.streams else self._recipe.window, columns), np.float32)
        for rows in row_buckets:
            checked = {f"warm-up {i}": (self.fresh_state(), zeros, None, None) for i in range(rows)}
            ready = list(self._read(checked).values())
            programs += 1
            if self._recipe.horizon > 1 or max_horizon == 1:
                continue
            self._rollout(ready, 2)  # every horizon from 2 to max_horizon: one program
            programs += 1
        return programs

    def warm_start(
        self,
        histories: Mapping[str, Any],
        timestamps: Mapping[str, Any] | None = None,
        *,
        scalers: Mapping[str, Scaler | None] | None = None,
    ) -> None:
        """Read whole histories into fresh states and store them, without logging the readings.

        What ``fit`` does after training: every series is left at the end of its data, where
        ``observe`` continues. A stored state of the same id is replaced.

        Args:
            histories: series id -> readings, oldest first.
            timestamps: series id -> one timestamp per reading; ``None`` for none.
            scalers: series id -> the series' own scaler; missing ids get the default.

        Raises:
            ValueError: as ``advance``; nothing is stored.
        """
        self._require_model()
        scalers = scalers or {}
        fresh = {
            series_id: dataclasses.replace(
                self.fresh_state(), scaler=scalers.get(series_id, self._scaler)
            )
            for series_id in histories
        }
        # the training values are fit's to check (``check_outliers``), not the reading check's
        advanced = self._advance_many(histories, timestamps, fresh, plausible_factor=None)
        self._store.put_many({i: self._encode(s) for i, (s, _, _, _) in advanced.items()})

    # -- observe and forecast ---------------------------------------------------------------
    @property
    def _takes_any_id(self) -> bool:
        """A model built from parameters has no series of its own: every id is new to it."""
        return not (self._metrics or {}).get("series")

    def _unknown_series(self, series_id: str, fix: str) -> ValueError:
        """The refusal of an id this model does not have, naming the nearest known ones."""
        known = self.series_ids
        near = difflib.get_close_matches(series_id, known, n=3, cutoff=0.6)
        near += [i for i in known if i.casefold() == series_id.casefold() and i not in near]
        hint = f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
        shown = ", ".join(map(repr, known[:5])) + (", ..." if len(known) > 5 else "")
        return ValueError(
            f"series {series_id!r} is not one of this model's {len(known)} series"
            f"{hint}; its series: {shown or 'none yet'}. To start a new series from a fresh "
            f"state, {fix}"
        )

    def state_to_advance(
        self, series_id: str, *, new_series: bool, fix: str = "pass new_series=True"
    ) -> SeriesState:
        """The stored state of a series, or a fresh one for an id it may start.

        The one read that both advances a series and tells whether it is known (no second
        query). An id the model does not have is refused, naming the nearest known ones,
        unless ``new_series``: only a model trained on series (``fit``) knows its series;
        one built from parameters (``from_params``, a Keras import) has none and takes every
        id as new.

        Args:
            series_id: the id.
            new_series: allow an id the model does not have (a fresh state).
            fix: how the caller allows a new series (``"pass new_series=True"``, the
                service's ``"start the service with --new-series"``).

        Raises:
            ValueError: the id is unknown and ``new_series`` is false.
        """
        stored = self.stored_state(series_id)
        if stored is not None:
            return stored
        if not (new_series or self._takes_any_id):
            raise self._unknown_series(series_id, fix)
        return self.fresh_state()

    def observe(
        self,
        series_id: str,
        new_data: Any,
        timestamps: Sequence[Any] | None = None,
        *,
        horizon: int = 1,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
        new_series: bool = False,
        seq: int | None = None,
    ) -> Forecast:
        """Advance a series through new readings, store its state, and forecast what follows.

        The series' state is read from the store, advanced, and written back with the
        readings' idempotency record in one transaction (a loaded forecaster writes to its
        folder's store, as ``lstmlab observe`` and the service do).

        Args:
            series_id: the series: one this model has (``series_ids``), or, with
                ``new_series=True``, a new one, which starts from a fresh state (a model
                built from parameters has no series of its own and takes any id:
                ``state_to_advance``).
            new_data: the new readings, oldest first, in the original units: a DataFrame
                (a DatetimeIndex or a time column, and the value column(s)), a Series with a
                DatetimeIndex, or an array ``(readings, columns)`` (``(readings,)`` for one
                column).
            timestamps: one per reading, when ``new_data`` carries none; ``None`` is allowed
                only for series without timestamps.
            horizon: steps to forecast.
            plausible_factor: readings beyond this many training ranges outside the series'
                training values are refused (``check_values``); ``None`` accepts any finite
                value.
            new_series: allow an id this model does not have yet (a typo in an id would
                otherwise start a series of its own, silently).
            seq: the sequence number of the first reading (its position in the series,
                training readings included), as the service takes it: readings sent again
                are then a repeat (``repeated``) even without timestamps.

        Returns:
            The ``Forecast`` after the last reading (``to_dict`` for JSON); ``repeated``
            counts the readings that repeated accepted ones and were not applied again.

        Raises:
            ValueError: an unknown id without ``new_series``; see ``advance``; on error the
                series' state is unchanged.
        """
        return self.observe_many(
            {series_id: new_data},
            {series_id: timestamps},
            horizon=horizon,
            plausible_factor=plausible_factor,
            new_series=new_series,
            seqs={series_id: seq},
        )[series_id]

    def observe_many(
        self,
        observations: Mapping[str, Any],
        timestamps: Mapping[str, Sequence[Any] | None] | None = None,
        *,
        horizon: int = 1,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
        new_series: bool = False,
        seqs: Mapping[str, int | None] | None = None,
    ) -> dict[str, Forecast]:
        """``observe`` for many series at once, batched (all or nothing, one transaction).

        Args:
            observations: series id -> new readings (as ``observe`` takes them).
            timestamps: series id -> timestamps, or ``None``.
            horizon: steps to forecast.
            plausible_factor: as ``observe``.
            new_series: as ``observe``: allow ids this model does not have yet.
            seqs: series id -> the sequence number of its first reading (as ``observe``).

        Returns:
            Series id -> ``Forecast``.
        """
        self._require_model()
        horizon = self._check_horizon(horizon)
        for seq in (seqs or {}).values():
            if seq is not None:
                check_non_negative_int("seq", seq)
        timestamps = dict(timestamps or {})
        values = {}
        for series_id, new_data in observations.items():
            check_series_id(series_id)
            values[series_id], timestamps[series_id] = self._readings(
                series_id, new_data, timestamps.get(series_id)
            )
        with self._store.transaction(*values):  # read, advance and write, the series locked
            advanced = self._advance_many(
                values,
                timestamps,
                plausible_factor=plausible_factor,
                horizon=horizon,
                retries=True,
                new_series=new_series,
                seqs=seqs,
            )
            for series_id, (state, readings, stamps, _) in advanced.items():
                if len(readings):  # a pure repeat changes nothing: nothing to write
                    self.commit(series_id, state, readings=readings, times=stamps)
        for series_id, (_, readings, stamps, _) in advanced.items():
            if series_id in self._history and len(readings):
                old_times, old_values = self._history[series_id]
                joined = (
                    None
                    if old_times is None or stamps is None
                    else np.concatenate([old_times, stamps])
                )
                self._history[series_id] = (joined, np.concatenate([old_values, readings]))
        forecasts = self._forecasts({i: s for i, (s, _, _, _) in advanced.items()}, horizon)
        return {
            series_id: dataclasses.replace(forecast, repeated=advanced[series_id][3])
            for series_id, forecast in forecasts.items()
        }

    def _check_horizon(self, horizon: Any) -> int:
        """A horizon this model can forecast (checked before any state changes)."""
        horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
        direct = self._recipe.horizon
        if direct > 1 and horizon > direct:
            raise ValueError(
                f"this model forecasts up to {direct} steps at once (a direct head, "
                f"horizon={direct}), got horizon {horizon}; pass horizon <= {direct}, or fit "
                f"with horizon={horizon} (or horizon=1 for recursive forecasts of any length)"
            )
        return horizon

    def _plausible(self, series_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The plausible range of a series, ``(columns,)`` each (infinite: none known)."""
        known = self._calibration.ranges.get(series_id, self._calibration.default_range)
        if known is None:
            columns = self._model.features
            return np.full(columns, -np.inf), np.full(columns, np.inf)
        return known

    def _forecasts(self, states: Mapping[str, SeriesState], horizon: int) -> dict[str, Forecast]:
        """Every series' forecast from its state: one rollout for all of them.

        Every seed's forecast is checked against the series' plausible range; the flagged
        seeds are left out of the median (all flagged: NaN, and a ``RuntimeWarning``).
        """
        ready = [i for i, s in states.items() if s.prediction is not None]
        scaled = self._rollout([states[i] for i in ready], horizon) if ready else None
        row_of = {series_id: row for row, series_id in enumerate(ready)}
        sound: np.ndarray = np.zeros(0, bool)
        if ready:
            # every series at once: original units, the flags as flag_forecasts sets them, the
            # median over all seeds where none is flagged (a flagged series, rare, below)
            scalers = [states[i].scaler for i in ready]
            columns = scaled.shape[3]
            # from the scalers' tuples at once, not an array per series
            scale = np.array([(1.0,) * columns if c is None else c.scale for c in scalers])
            offset = np.array(
                [(0.0,) * columns if c is None else c.offset for c in scalers]
            )  # (series, columns)
            original = scaled * scale[None, :, None, :] + offset[None, :, None, :]
            bounds = [self._plausible(i) for i in ready]
            low = np.stack([b[0] for b in bounds])[None, :, None, :]
            high = np.stack([b[1] for b in bounds])[None, :, None, :]
            with np.errstate(invalid="ignore"):
                bad = (~np.isfinite(original) | (original < low) | (original > high)).any(
                    axis=(2, 3)
                )  # (seeds, series)
            sound = ~bad.any(axis=0)
            medians = np.empty(original.shape[1:])  # (series, horizon, columns)
            if sound.any():
                medians[sound] = np.median(original[:, sound], axis=0)
            clean = SeedFlags(
                flagged=np.zeros(original.shape[0], bool),
                non_finite=np.zeros(original.shape[0], np.int64),
                out_of_range=np.zeros(original.shape[0], np.int64),
                reasons=(),
            )
        stamps_after: dict[tuple[int | None, str | None], tuple[str, ...] | None] = {}
        out = {}
        for series_id, state in states.items():
            if state.prediction is None:
                needed = max(self._recipe.window - len(state.recent), 1) if self.windowed else 1
                out[series_id] = Forecast(
                    series_id=series_id,
                    values=None,
                    timestamps=None,
                    seen=state.seen,
                    needed=needed,
                )
                continue
            row = row_of[series_id]
            if sound[row]:
                flags, values = clean, medians[row]
                self._flags.pop(series_id, None)
            else:
                per_seed = original[:, row : row + 1]  # (seeds, 1, horizon, columns)
                with np.errstate(invalid="ignore"):
                    flags = flag_forecasts(per_seed, *bounds[row])
                self._flags[series_id] = flags
                self._metrics.setdefault("warnings", {})[series_id] = flags.note
                if flags.flagged.all():
                    warnings.warn(
                        f"series {series_id!r}: every seed's forecast failed the sanity "
                        f"check, so the forecast is NaN: {flags.note}; fit the model again "
                        "(other seeds, a norm, a direct horizon) or check the data",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                values = seed_ensemble(per_seed, flags.flagged)[0, 0]  # (horizon, columns)
            key = (state.last_time, state.zone)  # series that end together share their steps
            if key not in stamps_after:
                grid = self._forecast_times(series_id, state.last_time, state.zone, horizon)
                stamps_after[key] = (
                    None
                    if grid is None
                    else tuple(
                        str(t) if self._recipe.step is not None else t.isoformat() for t in grid
                    )
                )
            stamps = stamps_after[key]
            out[series_id] = Forecast(
                series_id=series_id,
                values=values,
                timestamps=stamps,
                seen=state.seen,
                needed=0,
                flags=flags,
            )
        return out

    def _rollout(self, states: Sequence[SeriesState], horizon: int) -> np.ndarray:
        """``(seeds, series, horizon, columns)`` scaled forecasts of every seed."""
        states = list(states)
        columns = self._model.features
        output = np.stack([s.prediction for s in states], axis=1)  # (seeds, series, outputs)
        direct = self._recipe.horizon
        if direct > 1:  # the stored output holds the next `direct` steps, step-major
            seeds, series = output.shape[:2]
            return output.reshape(seeds, series, direct, columns)[:, :, :horizon]
        if horizon == 1:  # the next step is the prediction already stored: no device call
            return output[:, :, None, :]  # (seeds, series, 1, columns)
        # Bounded shapes: the series padded to a power of two (zero rows, dropped after),
        # the horizon a traced loop count within a buffer of horizon_capacity steps,
        # doubled when too short (one more program).
        while self._horizon_capacity < horizon:
            self._horizon_capacity *= 2
        series = len(states)
        rows = _bucket(series)
        rnn: Any = ()
        if self._model.stateful:
            rnn = _stack_rnn(states + [states[0]] * (rows - series))
        if self.windowed:
            x = np.zeros((rows, self._recipe.window, columns), np.float32)
            x[:series] = np.stack([s.recent for s in states])  # (series, window, columns)
        else:
            # a stream reads one reading per step; the last one is not needed (the output
            # after it is given), only its shape
            x = np.zeros((rows, 1, columns), np.float32)
        padded = np.zeros((output.shape[0], rows, output.shape[2]), np.float32)
        padded[:, :series] = output
        forecast = rollout(
            self._model,
            self._params,
            rnn,
            x,
            horizon=horizon,
            output=padded,
            seeds=True,
            max_horizon=self._horizon_capacity,
        )
        return forecast[:, :series]  # (seeds, series, horizon, columns)

    @property
    def calibrated_steps(self) -> int:
        """The most steps ahead a forecast can have intervals for.

        A direct model's ``horizon``; a recursive model's rollouts over the validation tail
        (the tail's length, at most ``calibration_steps`` of its seasons); 1 for a recursive
        model saved before those rollouts existed.
        """
        self._require_model()
        if self._calibration.pooled is None:
            return self._recipe.horizon
        return max(self._recipe.horizon, int(self._calibration.pooled.shape[1]))

    def halfwidths(self, series_id: str, level: float, horizon: int) -> np.ndarray:
        """Split-conformal half-widths of a series' forecast, in its original units.

        From the residuals of the seed median on the validation tail of ``fit``, per step
        ahead (``lstmlab.scoring.conformal_halfwidths``), mapped to the series'
        units by its scaler; a series first seen after fitting uses every series' residuals.
        ``inf`` where the validation tail holds too few residuals for ``level``.

        Args:
            series_id: the series.
            level: the nominal coverage: a fraction in (0, 1) or a percent.
            horizon: steps ahead, at most the model's ``horizon``.

        Returns:
            ``(horizon, columns)`` half-widths.

        Raises:
            ValueError: a bad level; the model has no residuals (fitted with
                ``validation=0``, or saved before intervals existed); a horizon beyond the
                steps the residuals cover.
        """
        self._require_model()
        levels = parse_levels(level)
        if len(levels) != 1:
            raise ValueError(f"halfwidths takes one level, got {level!r}; {LEVEL_FIX}")
        level = levels[0]
        residuals = self._calibration.residuals.get(series_id, self._calibration.pooled)
        calibrated = self.calibrated_steps
        if horizon > calibrated:
            raise ValueError(
                f"the intervals are calibrated on the validation tail for up to {calibrated} "
                f"step(s) ahead, got horizon {horizon}; pass horizon <= {calibrated} with a "
                f"level, or fit with a longer validation tail or horizon={horizon} (a "
                "direct model)"
            )
        if residuals is None:
            raise ValueError(
                "this model has no validation residuals to calibrate intervals on (fitted "
                "with validation=0, or saved before intervals existed); fit it with "
                "validation=0.2, or forecast without level="
            )
        half = conformal_halfwidths(residuals[:, :horizon], level)  # (horizon, columns)
        scaler = self.series_state(series_id).scaler
        if scaler is not None:
            half = half * np.abs(np.asarray(scaler.scale))[None, :]
        return half

    def forecast_state(self, series_id: str, state: SeriesState, horizon: int = 1) -> Forecast:
        """Forecast ``horizon`` steps from ``state`` (``state`` is not changed).

        Args:
            series_id: the series (for the result).
            state: its state.
            horizon: steps.

        Returns:
            The ``Forecast``.
        """
        self._require_model()
        horizon = self._check_horizon(horizon)
        return self._forecasts({series_id: state}, horizon)[series_id]

    def series_forecast(self, series_id: str, horizon: int = 1) -> Forecast:
        """Forecast a known series from its stored state (the state does not change).

        Args:
            series_id: the series.
            horizon: steps to forecast, fed back recursively.

        Returns:
            The ``Forecast``.

        Raises:
            KeyError: unknown series id.
        """
        self._require_model()
        horizon = self._check_horizon(horizon)
        stored = self._store.get(series_id)
        if stored is None:
            raise KeyError(
                f"unknown series {series_id!r}; observe readings for it first (known: "
                f"{len(self._store)} series)"
            )
        return self.forecast_state(series_id, self._decode(series_id, stored), horizon)

    def forecast(
        self,
        horizon: int = 1,
        series: str | Sequence[str] | None = None,
        *,
        level: float | Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps of every series (or of ``series``), as a tidy DataFrame.

        Every seed's forecast is checked (``flags``); flagged seeds are left out of the
        median, and ``frame.attrs["warnings"]`` (series id -> sentence) says which and why.

        Args:
            horizon: steps ahead (at most the model's ``horizon`` for a direct model).
            series: one series id, several, or ``None`` for all.
            level: the nominal coverage of a prediction interval: a fraction (``0.9``), a
                percent (``90``) or a list of either (``[80, 95]``); ``None`` for none.
                Split-conformal, from the validation tail's residuals per step ahead
                (``halfwidths``).

        Returns:
            One row per series and step: ``series_id``, ``time`` (the timestamps continuing
            each series at its frequency; the reading's position for series without
            timestamps), ``step`` (1 to ``horizon``) and ``forecast`` (the median over the
            seeds that pass the sanity check; NaN when none does), and with ``level``,
            ``lower`` and ``upper`` (a list of levels: ``lower_80``, ``upper_80``, ... by
            percent). With several value columns, one row per column as
            well, named in a ``target`` column. Series that cannot forecast yet (a window
            model that has seen fewer than ``window`` readings) are left out.

        Raises:
            KeyError: an unknown series id.
            ValueError: a bad horizon or level, a level without validation residuals, or
                the forecaster is not fitted.
        """
        self._require_model()
        horizon = self._check_horizon(horizon)
        bounds = bound_columns(level)
        if bounds and horizon > self.calibrated_steps:
            self.halfwidths("", bounds[0][0], horizon)  # raises, before any work
        states = self._stored_states(series)
        forecasts = self._forecasts(states, horizon)
        columns = self._recipe.columns
        steps = np.arange(1, horizon + 1)
        # One frame built from whole columns (a global model may forecast 50,000 series):
        # the timestamps computed once per distinct last reading, not once per series.
        kept, times, values = [], [], []
        grids: dict[tuple[int | None, str | None], Any] = {}
        for series_id, forecast in forecasts.items():
            if forecast.values is None:
                continue
            kept.append(series_id)
            if forecast.timestamps is not None:  # aware when the series' readings were
                state = states[series_id]
                key = (state.last_time, state.zone)
                if key not in grids:
                    grids[key] = self._forecast_times(
                        series_id, state.last_time, state.zone, horizon
                    )
                times.append(key)
            else:
                times.append(forecast.seen + steps - 1)  # the position of the forecast reading
            values.append(forecast.values)  # (horizon, columns)
        if not kept:
            names = ["series_id", "time", "step"] + (["target"] if len(columns) > 1 else [])
            limits = [name for _, lower, upper in bounds for name in (lower, upper)]
            return pd.DataFrame(columns=[*names, "forecast", *limits])
        per_series = horizon * len(columns)  # rows: series, then column, then step
        # (series, horizon, columns) -> (series, columns, horizon): a column's steps together
        stacked = np.stack(values).transpose(0, 2, 1)
        out = pd.DataFrame(
            {
                "series_id": np.repeat(np.asarray(kept, dtype=object), per_series),
                "time": _time_column(times, grids, len(columns)),
                "step": np.tile(steps, len(kept) * len(columns)),
                "forecast": stacked.reshape(-1),
            }
        )
        if len(columns) > 1:
            out.insert(3, "target", np.tile(np.repeat(np.asarray(columns), horizon), len(kept)))
        for value, lower, upper in bounds:
            half = np.stack([self.halfwidths(i, value, horizon) for i in kept])
            half = half.transpose(0, 2, 1).reshape(-1)  # as the forecasts
            out[lower] = out["forecast"].to_numpy() - half
            out[upper] = out["forecast"].to_numpy() + half
        if len(columns) > 1:
            out = out.sort_values(["series_id", "step", "target"], kind="stable")
            out = out.reset_index(drop=True)
        out.attrs["warnings"] = {
            series_id: forecast.warning
            for series_id, forecast in forecasts.items()
            if forecast.warning
        }
        return out

    def _stored_states(self, series: str | Sequence[str] | None) -> dict[str, SeriesState]:
        """The stored states of ``series`` (one id, several, or ``None`` for every series).

        Every series: the store read in pages, each page decoded at once.

        Raises:
            KeyError: an unknown series id.
        """
        states: dict[str, SeriesState] = {}
        if series is None:
            for page in self._store.pages():  # the codec a model folder's states use
                states.update(
                    decode_states(
                        self._model,
                        self._recipe,
                        page.arrays,
                        {"series": list(page.ids)},
                        seeds=self.seeds,
                        scaler_kind=self._settings.scaler,
                    )
                )
            return states
        for series_id in [series] if isinstance(series, str) else list(series):
            stored = self._store.get(series_id)
            if stored is None:
                raise KeyError(
                    f"unknown series {series_id!r}; the forecaster knows {len(self._store)} "
                    f"series (e.g. {list(self.series_ids[:3])}); fit or observe it first"
                )
            states[series_id] = self._decode(series_id, stored)
        return states

    def cross_validation(
        self,
        data: Any,
        *,
        horizon: int,
        windows: int = 3,
        step: int | None = None,
        refit: bool = True,
        level: float | Sequence[float] | None = None,
        time_col: str | None = None,
        target: str | Sequence[str] | None = None,
        freq: str | None = None,
        id_col: str | None = None,
        time_format: str | None = None,
        allow_outliers: bool = False,
    ) -> pd.DataFrame:
        """Backtest this model: train on each window's past, forecast its next readings.

        The windows are laid out as statsforecast's ``cross_validation(h=horizon,
        n_windows=windows, step_size=step)`` lays them out: in every series the last window
        ends at its last reading, and each window's cutoff (its last training reading) is
        ``step`` readings after the one before. The model is this forecaster's config, seeds
        included; this forecaster itself is left as it was.

        Args:
            data: the data, in any form ``fit`` takes.
            horizon: steps forecast from each cutoff.
            windows: how many cutoffs.
            step: readings between two cutoffs; ``None`` for ``horizon`` (windows that
                do not overlap).
            refit: ``True``: a model trained afresh for every window, on every series up
                to its cutoff. ``False``: one model trained up to the first cutoff; at each
                later one every series observes the readings since the last (its state
                carried, the weights fixed), as a live model runs.
            level: interval levels, as ``forecast`` takes them.
            time_col: as ``fit``.
            target: as ``fit``.
            freq: as ``fit``.
            id_col: as ``fit``.
            time_format: as ``fit``.
            allow_outliers: as ``fit``.

        Returns:
            One row per series, cutoff and step: ``series_id``, ``cutoff`` (the time, or
            position, of the last training reading), ``time``, ``step``, ``actual`` and
            ``forecast`` (with several value columns, ``target`` names the column), plus
            the bounds of each level (as ``forecast`` names them; infinite beyond the
            model's ``calibrated_steps`` and where a step has too few residuals).

        Raises:
            ValueError: a bad horizon, window count, step or level; a series too short for
                the windows; anything ``fit`` refuses.
        """
        horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
        windows = check_positive_int("windows", windows, fix="pass e.g. windows=3")
        step = horizon if step is None else check_positive_int("step", step, fix="pass e.g. 1")
        bounds = bound_columns(level)  # a bad level is refused before any training
        if bounds and not self._settings.validation:
            raise ValueError(
                "intervals are calibrated on the validation tail, and this forecaster has "
                "validation=0; pass validation=0.2, or leave level out"
            )
        parsed = parse_training_data(data, time_col, target, freq, id_col, time_format)
        check_outliers(parsed, bool(allow_outliers))
        span = horizon + (windows - 1) * step  # readings after the first cutoff
        ends = {}
        for series_id, values in parsed.values.items():
            first = len(values) - span
            if first < 1:
                raise ValueError(
                    f"series {series_id!r} has {len(values)} readings; {windows} window(s) of "
                    f"{horizon} step(s), {step} apart, need more than {span}; pass fewer "
                    "windows, a smaller step or horizon, or leave the series out"
                )
            ends[series_id] = [first + k * step for k in range(windows)]
        columns = list(parsed.columns)
        frames = []
        model: Forecaster | None = None
        for k in range(windows):
            if refit or model is None:
                part = dataclasses.replace(
                    parsed,
                    values={i: v[: ends[i][k]] for i, v in parsed.values.items()},
                    times={
                        i: None if t is None else t[: ends[i][k]] for i, t in parsed.times.items()
                    },
                )
                model = Forecaster(config=self._settings, quiet=self._quiet)._fit_data(part)
            else:
                since = {i: slice(ends[i][k - 1], ends[i][k]) for i in parsed.values}
                model.observe_many(
                    {i: v[since[i]] for i, v in parsed.values.items()},
                    {i: None if t is None else t[since[i]] for i, t in parsed.times.items()},
                    plausible_factor=None,  # a backtest refuses no reading of its data
                )
            frame = model.forecast(horizon)
            column = (
                np.zeros(len(frame), int)
                if "target" not in frame
                else frame["target"].map({c: j for j, c in enumerate(columns)}).to_numpy()
            )
            if bounds:
                # bounds per step up to the calibrated steps, infinite beyond (too few
                # residuals), as a step with too few residuals is within them
                reach = min(horizon, model.calibrated_steps)
                half = {
                    (i, value): np.concatenate(
                        [
                            model.halfwidths(i, value, reach),
                            np.full((horizon - reach, len(columns)), np.inf),
                        ]
                    )
                    for i in frame["series_id"].unique()
                    for value, _, _ in bounds
                }
                for value, lower, upper in bounds:
                    width = np.array(
                        [
                            half[(i, value)][step - 1, j]
                            for i, step, j in zip(
                                frame["series_id"], frame["step"], column, strict=True
                            )
                        ]
                    )
                    frame[lower] = frame["forecast"] - width
                    frame[upper] = frame["forecast"] + width
            ids = frame["series_id"].to_numpy()
            end = np.array([ends[i][k] for i in ids])
            rows = end + frame["step"].to_numpy() - 1
            frame.insert(
                1,
                "cutoff",
                [
                    end[r] - 1 if parsed.times[i] is None else parsed.times[i][end[r] - 1]
                    for r, i in enumerate(ids)
                ],
            )
            at = frame.columns.get_loc("forecast")
            frame.insert(
                at,
                "actual",
                [parsed.values[i][row, j] for i, row, j in zip(ids, rows, column, strict=True)],
            )
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        keys = ["series_id", "cutoff", "step"] + (["target"] if "target" in out else [])
        return out.sort_values(keys, kind="stable").reset_index(drop=True)

    def replay(self, values: Any, series_id: str | None = None) -> np.ndarray:
        """One-step predictions after every reading of a whole series, from a fresh state.

        The offline reference for streaming: computed at once (one call over the whole
        series for stateful models, all windows in one batch for window models).

        Args:
            values: ``(time, columns)`` or ``(time,)``, original units.
            series_id: whose scaler to use; ``None`` (or an unknown id) uses the default.

        Returns:
            ``(time, columns)`` float64, the median over seeds: row ``t`` forecasts reading
            ``t + 1``; NaN where a window model has not yet seen ``window`` readings.
        """
        self._require_model()
        array = self.check_values("replay", values, plausible_factor=None)  # a reference
        scaler = self._scaler
        if series_id is not None:
            stored = self._store.get(series_id)
            if stored is not None:
                scaler = self._decode(series_id, stored).scaler
        scaled = (array if scaler is None else scaler.transform(array)).astype(np.float32)
        out = np.full(scaled.shape, np.nan, np.float32)
        columns = scaled.shape[1]  # a direct model's first step: its first columns
        window = self._recipe.window
        if not self._model.stateful:
            if len(scaled) >= window:
                x = make_windows(scaled, length=window, offset=0).x  # (n, window, columns)
                y = np.asarray(read(self._model, self._params, (), x, seeds=True)[0])
                out[window - 1 :] = _median_over_seeds(y[..., :columns])
        elif self.windowed:
            if len(scaled) >= window:
                rnn = _stack_rnn([self.fresh_state()])
                y = read_windows(self._model, self._params, rnn, scaled[None], seeds=True)[0]
                out[window - 1 :] = _median_over_seeds(y[:, 0, :, :columns])
        else:  # a stream
            y = sequence_outputs(self._model, self._params, scaled[None])  # (seeds, 1, T, C)
            out[:] = _median_over_seeds(y[:, 0, :, :columns])
        if scaler is None:
            return out.astype(np.float64)
        return scaler.inverse_transform(out)

    # -- training ---------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        *,
        time_col: str | None = None,
        target: str | Sequence[str] | None = None,
        freq: str | None = None,
        id_col: str | None = None,
        time_format: str | None = None,
        allow_outliers: bool = False,
    ) -> "Forecaster":
        """Train one model over all series, then leave each series at the end of its data.

        The data given is the training data. Each series gets its own scaler, fitted on its
        own values. The window is ``window``, or one that covers the shortest season (given,
        from the frequency, or detected on the shortest series; ``choose_window`` with
        ``MIN_WINDOW`` and at most a third of the shortest series). The last ``validation``
        of each series (at least ``horizon`` steps) is held out of the training batches: the
        driver stops each seed when its validation loss has not improved for ``patience``
        epochs, restores its best weights and halves its learning rate on a plateau.
        Every kind trains on the sliding windows of every series (targets: the next step,
        or the next ``horizon`` steps): window models on all of them shuffled, stateful
        models in Keras' stateful layout (``make_stream_batches``: each series
        ``batch_size`` contiguous streams of windows, the state carried from a window to the
        next, reset every epoch), as ``compare`` trains them. The ``seeds`` trainings run
        side by side in the one training driver.

        With ``norm="auto"`` every candidate of ``AUTO_NORMS`` is trained with the same
        seeds, and the one whose median over the unflagged seeds has the lowest RMSE on
        the validation tail (scaled units, every series and step ahead pooled) is kept; a
        tie keeps the earlier candidate. The validation forecasts of every seed are checked
        (``flag_forecasts`` against each series' ``plausible_range``), and the residuals of
        the kept candidate's median calibrate the prediction intervals (``forecast(level=)``).
        Any series stored before is dropped (a new model starts a new, in-memory store;
        ``save`` writes it into a model folder).

        Args:
            data: a wide DataFrame (a column per series; a DatetimeIndex or ``time_col``), a
                long DataFrame (``unique_id, ds, y`` or ``series_id, time, value`` are
                recognised; else pass ``id_col``, ``time_col`` and ``target``), a Series, or a
                NumPy array (``(time,)`` one series, ``(time, series)`` several; no
                timestamps).
            time_col: the time column (else the index). Its cells, and an index of text or
                periods, are parsed as ``lstmlab fit`` parses a file's time column
                (``lstmlab.data.calendar.parse_time_column``): never taken for row positions.
                Integers (an index such as the default ``RangeIndex``, a column of whole
                numbers or their text, unless pandas reads them as years) are step numbers:
                one stride, no gap; forecasts, ``observe`` and ``cross_validation`` go on
                with them (``recipe.step``). An array's readings have no time: its rows'
                positions, from 0.
            target: the value column(s): of a long frame, or the series to take from a wide
                one (default: every column).
            freq: the readings' frequency (``"MS"``, ``"15min"``); inferred when left out.
            id_col: the series id column of a long DataFrame.
            time_format: the strptime format of text timestamps (``"%d/%m/%Y"``); inferred
                when left out, and required for dates with '/'.
            allow_outliers: train on absurd outliers too. By default a value more than
                ``OUTLIER_FACTOR`` widths beyond the bulk of its series (its values without
                the extreme 1% at each end) is refused (a cell at 1e30, a sentinel code);
                values beyond float32's range are refused either way.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: data of an unknown form, non-numeric value columns, NaN inside a
                series, a constant series, timestamps whose frequency cannot be inferred or
                with gaps, series too short for the window, the horizon and the validation
                tail, a norm for several value columns, or an absurd outlier.
        """
        parsed = parse_training_data(data, time_col, target, freq, id_col, time_format)
        check_outliers(parsed, bool(allow_outliers))
        return self._fit_data(parsed)

    def _fit_data(self, parsed: TrainingData) -> "Forecaster":
        """``fit`` on data already parsed and checked.

        The stages: each series scaled, the seasons and the window, every candidate trained
        and scored on the validation tail (a recursive one by its rollouts), the chosen one
        trained again on every reading, its calibration and metrics, then every series read
        into its state.
        """
        settings = self._settings
        scalers = {}
        for series_id, values in parsed.values.items():
            try:
                scalers[series_id] = fit_scaler(values, settings.scaler, parsed.columns)
            except ValueError as error:
                raise ValueError(f"series {series_id!r}: {error}") from None
        pooled = np.concatenate(list(parsed.values.values()))
        default_scaler = fit_scaler(pooled, settings.scaler, parsed.columns)
        ids = list(parsed.values)
        scaled = [scalers[i].transform(parsed.values[i]).astype(np.float32) for i in ids]
        horizon = settings.horizon
        lengths = [len(s) for s in scaled]
        seasons, window, window_note = self._seasons_and_window(parsed)
        n_val = [
            max(horizon, int(round(settings.validation * n))) if settings.validation else 0
            for n in lengths
        ]
        ranges = {i: plausible_range(parsed.values[i], FORECAST_PLAUSIBLE_FACTOR) for i in ids}
        plans = candidate_plans(settings, ids, scaled, window, n_val)
        early = any(n_val)  # the candidates' trainings watch a validation tail
        started = time.perf_counter()
        trained = self._train_with_progress(plans, ids, scaled, scalers, n_val, ranges)
        seconds = time.perf_counter() - started
        kinds = [kind for kind, _ in trained]
        candidates = [candidate for _, candidate in trained]
        one_kind = len(plans) == 1

        def recipe_of(k: int) -> Recipe:
            return Recipe(
                kind=kinds[k],
                window=window,
                columns=parsed.columns,
                time_col=parsed.time_col,
                freq=parsed.freq,
                horizon=horizon,
                norm=candidates[k].norm,
                seasons=seasons.lengths,
                step=parsed.step,
            )

        rolled: list[dict[str, np.ndarray]] = [{} for _ in candidates]
        scores = [c.score for c in candidates]
        if horizon == 1 and early:
            rolled, scores = self._rollout_scores(
                candidates,
                [recipe_of(k) for k in range(len(candidates))],
                default_scaler,
                dict(zip(ids, scaled, strict=True)),
                dict(zip(ids, n_val, strict=True)),
                scalers,
                ranges,
            )
        chosen = lowest(scores)  # a tie keeps the earlier: AUTO_KINDS, then AUTO_NORMS order
        kept = candidates[chosen]
        names = [f"{kind} ({c.norm})" for kind, c in zip(kinds, candidates, strict=True)]
        metrics = fit_metrics(kept, settings, parsed.values, seconds)
        params, refit_epochs = self._refitted(
            kept, kinds[chosen], names[chosen], ids, scaled, window, early
        )
        calibration = _calibration(kept, rolled[chosen], ranges, parsed.values, pooled)
        residuals = calibration.residuals
        metrics.update(
            window=window,
            window_note=window_note,
            seasons=list(seasons.lengths),
            seasons_note=seasons.line(),
            model=kinds[chosen],
            norm=kept.norm,
            norm_scores={c.norm: finite_or_none(scores[k]) for k, c in enumerate(candidates)}
            if len(candidates) > 1 and one_kind
            else {},
            model_scores={n: finite_or_none(v) for n, v in zip(names, scores, strict=True)}
            if len(candidates) > 1
            else {},
            validation_rmse=finite_or_none(scores[chosen]) if early else None,
            validation_one_step_rmse=finite_or_none(kept.score) if early else None,
            refit_epochs=refit_epochs,
            validation_steps={i: n for i, n in zip(ids, n_val, strict=True)},
            warnings={"validation": kept.flags.note} if kept.flags.note else {},
        )
        self._set_model(
            kept.model,
            params,
            recipe=recipe_of(chosen),
            scaler=default_scaler,
            metrics=metrics,
            store=None,
            calibration=calibration,
        )
        if residuals:
            self._note_interval_reach(residuals)
        self._read_histories(parsed, scalers)
        return self

    def _train_with_progress(
        self,
        plans: Sequence[Plan],
        ids: Sequence[str],
        scaled: Sequence[np.ndarray],
        scalers: Mapping[str, Scaler],
        n_val: Sequence[int],
        ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> list[tuple[str, Candidate]]:
        """``train_candidates`` under one progress bar over every candidate's epochs."""
        from lstmlab.runtime import epoch_progress  # the progress bar (rich) on demand

        settings = self._settings
        trainings = sum(len(plan.norms) for plan in plans)
        with epoch_progress(settings.epochs * trainings, "fit", quiet=self._quiet) as progress:
            return train_candidates(
                settings,
                plans,
                ids,
                scaled,
                scalers,
                n_val,
                ranges,
                on_epoch=None
                if self._quiet
                else lambda _, losses, __: progress.advance(
                    float(np.nanmean(losses)) if np.isfinite(losses).any() else None
                ),
            )

    def _seasons_and_window(self, parsed: TrainingData) -> tuple[Seasons, int, str]:
        """The seasons of the shortest series, and the window: given, or covering them."""
        lengths = {i: len(v) for i, v in parsed.values.items()}
        shortest = min(lengths, key=lengths.__getitem__)
        seasons = choose_seasons(
            parsed.freq, parsed.values[shortest][:, 0], given=self._settings.seasons
        )
        if self._settings.window is not None:
            return seasons, self._settings.window, f"window {self._settings.window} (given)"
        choice = choose_window(
            seasons.lengths,
            minimum=MIN_WINDOW,
            maximum=max(MIN_WINDOW, lengths[shortest] // 3),
        )
        return seasons, choice.window, choice.note

    def _rollout_scores(
        self,
        candidates: Sequence[Candidate],
        recipes: Sequence[Recipe],
        default_scaler: Scaler,
        scaled: Mapping[str, np.ndarray],
        n_val: Mapping[str, int],
        scalers: Mapping[str, Scaler],
        ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> tuple[list[dict[str, np.ndarray]], list[float]]:
        """Each recursive candidate's rollout residuals across the validation tails, and RMSE.

        A recursive model is scored as it forecasts: every step ahead of its rollouts pooled
        (a direct model's outputs are that already); ``inf`` when no rollout is usable, and
        a candidate whose one-step score is not finite is not rolled out.
        """
        steps = calibration_steps(recipes[0].seasons)
        rolled: list[dict[str, np.ndarray]] = [{} for _ in candidates]
        scores = [c.score for c in candidates]
        for k, candidate in enumerate(candidates):
            if not np.isfinite(candidate.score):
                continue
            self._set_model(
                candidate.model,
                candidate.params,
                recipe=recipes[k],
                scaler=default_scaler,
                metrics=None,
                store=None,
            )
            rolled[k] = self._recursive_residuals(scaled, n_val, scalers, ranges, steps)
            errors = np.concatenate([r.reshape(-1) for r in rolled[k].values()])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # every rollout flagged
                score = float(np.sqrt(np.nanmean(np.square(errors))))
            scores[k] = score if np.isfinite(score) else np.inf
        return rolled, scores

    def _refitted(
        self,
        kept: Candidate,
        kind: str,
        name: str,
        ids: Sequence[str],
        scaled: Sequence[np.ndarray],
        window: int,
        early: bool,
    ) -> tuple[Params, int | None]:
        """The chosen candidate's parameters, trained again on every reading when ``refit``.

        Returns:
            ``(params, the refit's epochs or None)``.

        Raises:
            ValueError: every seed ended with non-finite weights.
        """
        settings = self._settings
        params, refit_epochs = kept.params, None
        if settings.refit and early and kept.log.best_epoch is not None:
            # The validation tail is the newest part of each series: once it has chosen the
            # model and the epoch count, the model learns from it too (the rule compare keeps).
            # The intervals keep the residuals measured before, out of sample.
            refit_epochs = kept.log.refit_epochs(kept.flags.flagged)
            params = refit(
                dataclasses.replace(settings, model=kind),
                kept.model,
                refit_epochs,
                ids,
                scaled,
                window,
            )
        finite = np.logical_and.reduce(
            [
                np.isfinite(np.asarray(leaf)).reshape(leaf.shape[0], -1).all(axis=1)
                for leaf in jax.tree.leaves(params)
            ]
        )  # (seeds,)
        if not finite.any():
            # Nothing to forecast with: refuse here, before a folder of NaN weights is saved.
            raise ValueError(
                f"training diverged: every seed of {name} ended with non-finite "
                f"weights (learning_rate={settings.learning_rate:g}); pass a smaller "
                f"learning_rate (the default is {ForecasterSettings().learning_rate:g})"
            )
        return params, refit_epochs

    def _note_interval_reach(self, residuals: Mapping[str, np.ndarray]) -> None:
        """Record how far the intervals reach, and warn when 90% ones stop short."""
        self._metrics["calibrated_steps"] = self.calibrated_steps
        reach = interval_reach(residuals)
        self._metrics["interval_steps"] = reach
        fewest = min(int(np.isfinite(r[:, 0, 0]).sum()) for r in residuals.values())
        if reach["90"] < self.calibrated_steps:
            self._metrics.setdefault("warnings", {})["intervals"] = (
                f"the intervals rest on {fewest} validation origin(s) per series (fewest): "
                f"90% intervals reach {reach['90']} step(s) ahead, 95% reach "
                f"{reach['95']}, of the {self.calibrated_steps} calibrated; beyond, they "
                "are infinite (a longer series or validation= gives more)"
            )

    def _read_histories(self, parsed: TrainingData, scalers: Mapping[str, Scaler]) -> None:
        """Every series read into its state, kept for plots, and its one-step RMSE recorded."""
        stamps = {i: t for i, t in parsed.times.items() if t is not None}
        self.warm_start(parsed.values, stamps, scalers=scalers)
        self._history = {
            i: (
                None
                if t is None
                else (
                    pd.DatetimeIndex(t).as_unit("ns").asi8
                    if isinstance(t, pd.DatetimeIndex)
                    else t.to_numpy(np.int64)  # step numbers
                ),
                parsed.values[i],
            )
            for i, t in parsed.times.items()
        }
        one_step = {}
        for series_id, values in parsed.values.items():
            predicted = self.replay(values, series_id)[:-1]  # row t forecasts reading t + 1
            error = predicted - values[1:]
            valid = np.isfinite(error).all(axis=1)
            one_step[series_id] = finite_or_none(float(np.sqrt(np.mean(np.square(error[valid])))))
        self._metrics["one_step_rmse"] = one_step

    def _recursive_residuals(
        self,
        scaled: Mapping[str, np.ndarray],
        n_val: Mapping[str, int],
        scalers: Mapping[str, Scaler],
        ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
        steps: int,
    ) -> dict[str, np.ndarray]:
        """Residuals of the recursive forecasts from origins across each validation tail.

        From up to ``CALIBRATION_ORIGINS`` origins, evenly spread over each series' validation
        tail (its last ``n_val`` readings), the fitted model reads the series up to the origin
        (a stateful model from a zero state, as ``warm_start`` does) and rolls out as
        ``forecast`` does; the residual of the median of the seeds whose rollout is
        plausible (``flag_forecasts`` against the series' range, as ``forecast`` checks) is
        kept per step ahead, NaN past the series' end. The steps are the longest tail, at
        most ``steps``.

        Returns:
            Series id -> ``(origins, steps, columns)`` residuals in the series' scaled units.
        """
        longest = max((n for n in n_val.values() if n), default=0)
        horizon = max(1, min(longest, steps))
        origins = {
            series_id: calibration_origins(len(series) - n_val[series_id], len(series) - 1)
            for series_id, series in scaled.items()
            if n_val[series_id]
        }
        # Series in groups of about RESIDUAL_ROWS origins: memory stays bounded whatever the
        # number of series (50,000 series of 40 origins are 2,000,000 rollouts).
        out: dict[str, np.ndarray] = {}
        group: list[str] = []
        rows = 0
        for series_id, spread in origins.items():
            if group and rows + len(spread) > RESIDUAL_ROWS:
                out.update(self._residuals_of(group, origins, scaled, scalers, ranges, horizon))
                group, rows = [], 0
            group.append(series_id)
            rows += len(spread)
        if group:
            out.update(self._residuals_of(group, origins, scaled, scalers, ranges, horizon))
        return out

    def _residuals_of(
        self,
        group: Sequence[str],
        origins: Mapping[str, np.ndarray],
        scaled: Mapping[str, np.ndarray],
        scalers: Mapping[str, Scaler],
        ranges: Mapping[str, tuple[np.ndarray, np.ndarray]],
        horizon: int,
    ) -> dict[str, np.ndarray]:
        """``_recursive_residuals`` of some series: one read per origin, one rollout for all."""
        # Each series is read once, origin after origin (a stateful model from a zero state,
        # as warm_start reads it; a window model needs only the window before each origin),
        # and its state at every origin kept: the series of one round are one read.
        states, where = {}, {}
        reached = {
            i: (dataclasses.replace(self.fresh_state(), scaler=scalers[i]), 0) for i in group
        }
        for k in range(max(len(origins[i]) for i in group)):
            checked = {}
            for series_id in group:
                if k >= len(origins[series_id]):
                    continue
                state, read_to = reached[series_id]
                origin = int(origins[series_id][k])
                if not self._model.stateful:
                    read_to = max(read_to, origin - self._recipe.window)
                readings = scaled[series_id][read_to:origin].astype(np.float32)
                checked[series_id] = (state, readings, None, None)
            for series_id, state in self._read(checked).items():
                origin = int(origins[series_id][k])
                reached[series_id] = (state, origin)
                key = f"{series_id}@{origin}"
                states[key], where[key] = state, (series_id, origin)
        keys = list(states)
        rolled = self._rollout([states[k] for k in keys], horizon)  # (seeds, rows, steps, C)
        rows_of: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            rows_of.setdefault(where[key][0], []).append(row)
        out = {}
        for series_id, rows in rows_of.items():  # one series' origins at once
            block = rolled[:, rows]  # (seeds, origins, steps, columns)
            columns = block.shape[-1]
            original = scalers[series_id].inverse_transform(block.reshape(-1, columns))
            low, high = ranges[series_id]
            with np.errstate(invalid="ignore"):
                # a seed's rollout from one origin is flagged as flag_forecasts flags it
                flagged = (
                    (~np.isfinite(original) | (original < low) | (original > high))
                    .reshape(block.shape)
                    .any(axis=(2, 3))
                )  # (seeds, origins)
            block = block.astype(np.float64)
            median = np.empty(block.shape[1:])  # (origins, steps, columns)
            sound = ~flagged.any(axis=0)  # no seed flagged: the median over all, at once
            median[sound] = np.median(block[:, sound], axis=0)
            for j in np.flatnonzero(~sound):
                median[j] = seed_ensemble(block[:, j : j + 1], flagged[:, j])[0, 0]
            series = scaled[series_id].astype(np.float64)
            steps = np.array([where[keys[r]][1] for r in rows])[:, None] + np.arange(horizon)
            seen = steps < len(series)
            actual = np.full((len(rows), horizon, series.shape[1]), np.nan)  # NaN past the end
            actual[seen] = series[steps[seen]]
            out[series_id] = actual - median
        return out

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the model into a folder, atomically, and every series' state into its store.

        The model (config, weights, scaler, recipe, metrics) is written as ``lstmlab
        .model_folder`` describes: old or new, never broken. The states go into the folder's
        state store (``DIR/series.<fingerprint16>.sqlite``) with their observation log;
        series already stored there (by the service, or ``lstmlab observe``) stay. A
        forecaster loaded from ``path`` has written every observation there already.

        Args:
            path: the model folder; created if needed.

        Returns:
            The folder as a ``Path``.
        """
        self._require_model()
        seeds = self.seeds
        params = self._params if seeds > 1 else jax.tree.map(lambda leaf: leaf[0], self._params)
        arrays: dict[str, np.ndarray] = {}  # the calibration's residuals, in safetensors
        saved = SavedModel(
            config=self._model,
            params=params,
            recipe={
                **self._recipe.to_dict(),
                "config": self._settings.to_dict(),
                "calibration": self._calibration.to_dict(arrays),
            },
            scaler=None if self._scaler is None else self._scaler.to_dict(),
            metrics=self._metrics,
            states={},
            states_meta={"series": []},
            store=self._store,
            seeds=seeds if seeds > 1 else None,
            arrays=arrays,
        )
        return save_model(path, saved)

    @classmethod
    def load(
        cls, path: str | Path, *, store: StateStore | None = None, quiet: bool = True
    ) -> "Forecaster":
        """Load a folder written by ``save`` (checksums verified); states load lazily.

        Args:
            path: the model folder.
            store: the state store to use instead of the folder's own (it must belong to
                this model); ``None`` opens the folder's.
            quiet: no progress bar when fitted again.

        Returns:
            The forecaster; ``observe`` writes to its store. ``close`` it when done (or use
            it as a context manager).

        Raises:
            ModelFolderError: the folder cannot be read.
            StoreError: ``store`` belongs to another model.
        """
        from lstmlab.live.state_store import StoreError
        from lstmlab.model_folder import model_fingerprint

        saved = load_model(path, states=False)
        fingerprint = model_fingerprint(path)
        if store is not None and store.model != fingerprint:
            raise StoreError(
                f"state store {store.path} belongs to another model (fingerprint "
                f"{store.model[:16]}..., this model's is {fingerprint[:16]}...); pass its own"
            )
        recipe = Recipe.from_dict(saved.recipe)
        scaler = None if saved.scaler is None else Scaler.from_dict(saved.scaler)
        if "config" in saved.recipe:
            settings = ForecasterConfig.from_dict(saved.recipe["config"])
        else:
            config = saved.config
            settings = ForecasterConfig(
                model=recipe.kind,
                window=recipe.window,
                units=config.hidden if isinstance(config, MLPConfig) else config.units,
                seeds=saved.seeds or 1,
                scaler="minmax" if scaler is None else scaler.kind,
                norm=config.norm,
                validation=0.0,
                horizon=recipe.horizon,
            )
        forecaster = cls(config=settings, quiet=quiet)
        params = saved.params if saved.seeds else _add_seed_axis(saved.params)
        forecaster._set_model(
            saved.config,
            params,
            recipe=recipe,
            scaler=scaler,
            metrics=saved.metrics,
            store=store if store is not None else open_store(path),
            calibration=Calibration.from_dict(saved.recipe.get("calibration"), saved.arrays),
        )
        return forecaster

    def close(self) -> None:
        """Close the state store (a loaded forecaster holds its folder's store open)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Forecaster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plots ------------------------------------------------------------------------------
    def plot(
        self,
        series: str | Sequence[str] | None = None,
        *,
        horizon: int = 12,
        history: int = 120,
        level: float | Sequence[float] | None = None,
    ):
        """A matplotlib Figure of each series' recent history and its forecast.

        Built with ``matplotlib.figure.Figure`` (not ``pyplot``): the global backend of a
        notebook or script is never touched; save it with ``fig.savefig(...)``, or show it
        in a notebook as the cell's value.

        Args:
            series: one id, several, or ``None`` for all (at most the first 6).
            horizon: steps to forecast.
            history: readings of history to show before the forecast (those fitted on and
                observed since, or the observations a loaded forecaster's store logged).
            level: prediction intervals to shade, as ``forecast`` takes them (the wider
                band lighter).

        Returns:
            The ``matplotlib.figure.Figure``, one row of axes per series.
        """
        from matplotlib.figure import Figure

        self._require_model()
        check_positive_int("history", history)
        ids = (
            list(self.series_ids)[:6]
            if series is None
            else ([series] if isinstance(series, str) else list(series))
        )
        frame = self.forecast(horizon, series=ids, level=level)
        bounds = sorted(bound_columns(level), reverse=True)  # the widest band drawn first
        one = len(self._recipe.columns) == 1

        def history_colour(j: int) -> str:  # one series: dark history, a coloured forecast
            return "0.25" if one else f"C{2 * j}"

        def forecast_colour(j: int) -> str:
            return "C0" if one else f"C{2 * j + 1}"

        figure = Figure(figsize=(9, 2.6 * max(len(ids), 1)), layout="constrained")
        axes = figure.subplots(max(len(ids), 1), 1, squeeze=False)[:, 0]
        for ax, series_id in zip(axes, ids, strict=False):
            times, values = self._plot_history(series_id)
            if values is not None and len(values):
                values, times = values[-history:], None if times is None else times[-history:]
                x = (
                    (times if self._recipe.step is not None else pd.DatetimeIndex(times))
                    if times is not None
                    else np.arange(
                        self.series_state(series_id).seen - len(values),
                        self.series_state(series_id).seen,
                    )
                )
                for j, column in enumerate(self._recipe.columns):
                    label = "history" if len(self._recipe.columns) == 1 else f"{column} history"
                    ax.plot(x, values[:, j], color=history_colour(j), label=label)
            rows = frame[frame["series_id"] == series_id]
            for j, column in enumerate(self._recipe.columns):
                part = rows if "target" not in rows else rows[rows["target"] == column]
                label = "forecast" if len(self._recipe.columns) == 1 else f"{column} forecast"
                for rank, (value, lower, upper) in enumerate(bounds):
                    low, high = (part[b].to_numpy(np.float64) for b in (lower, upper))
                    shown = np.isfinite(low) & np.isfinite(high)  # no band where too few residuals
                    ax.fill_between(
                        part["time"],
                        np.where(shown, low, np.nan),
                        np.where(shown, high, np.nan),
                        color=forecast_colour(j),
                        alpha=0.15 + 0.15 * rank,
                        linewidth=0,
                        label=f"{100 * value:g}% interval" if j == 0 else None,
                    )
                ax.plot(part["time"], part["forecast"], color=forecast_colour(j), label=label)
            kind = {"mlp": "MLP"}.get(self._recipe.kind, f"{self._recipe.kind} LSTM")
            chosen = " (model='auto')" if self._settings.model == "auto" else ""
            seeds = "1 seed" if self.seeds == 1 else f"median of {self.seeds} seeds"
            ax.set_title(f"{printable(series_id)}: {kind}{chosen}, {seeds}")
            freq = self._recipe.freq
            stamped = freq is not None and frame["time"].dtype != np.int64
            counted = "step" if self._recipe.step is not None else "reading"
            ax.set_xlabel(f"time ({_FREQ_WORDS.get(freq, freq)})" if stamped else counted)
            columns = self._recipe.columns
            # a placeholder column name ("value", "y") says less than the series' own name
            generic = len(columns) == 1 and columns[0] in ("value", "y", "0")
            ax.set_ylabel(printable(series_id) if generic else ", ".join(map(printable, columns)))
            ax.grid(alpha=0.3)
            # beside the axes, never over the data
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return figure

    def _plot_history(self, series_id: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        if series_id in self._history:
            return self._history[series_id]
        logged = self._store.observations(series_id)
        if not logged:
            return None, None
        times = [t for _, t, _ in logged]
        values = np.stack([reading for _, _, reading in logged])
        return (None if None in times else np.asarray(times, np.int64)), values
