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
  array; chooses and trains one global model over all series (``lstmlab.fitting``); then
  reads every series' whole history into its state.
- ``forecast`` rolls every series forward with the one rollout (``lstmlab.core.rollout``),
  one compiled program for all seeds, and returns the median over seeds as a tidy DataFrame
  with real timestamps.
- ``observe`` advances a series' state through new readings, in one transaction of the one
  state store (``lstmlab.live.stores.StateStore``: SQLite or PostgreSQL) together with
  the readings' idempotency record; ``forecast`` continues from it.
- ``save``/``load`` keep the model in a model folder (``lstmlab.model_folder``) and the
  per-series states in the folder's store, loaded lazily: a loaded forecaster reads a
  series' state from the store on first use (and on every use: a state written by
  ``lstmlab observe`` or the service in between is never shadowed by a stale copy).

A series' state (``lstmlab.states.SeriesState``) is what the model has read of it; the
fitted network's checks, reads and forecasts of a state are ``lstmlab.series_network``'s (the
arithmetic, and how few programs it compiles, ``lstmlab.stepping``'s); how ``fit`` chooses and
trains the model is ``lstmlab.fitting``'s. Observing a series in pieces of any
sizes gives the same predictions as observing it at once, bit for bit.

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
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from lstmlab.backtest import backtest, backtest_windows
from lstmlab.checks import (
    check_at_most,
    check_int_range,
    check_non_negative_int,
    check_positive_int,
    check_series_id,
)
from lstmlab.core.model import ModelConfig, Params
from lstmlab.data.calendar import SeriesClock
from lstmlab.data.frames import TrainingData, check_outliers, parse_training_data
from lstmlab.data.scaling import Scaler
from lstmlab.defaults import MAX_HORIZON, MAX_READINGS, PLAUSIBLE_FACTOR
from lstmlab.fitting import fit_model
from lstmlab.live.folder_store import open_store
from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import StateStore, StoreError
from lstmlab.model_folder import SavedModel, load_model, model_fingerprint, save_model
from lstmlab.pipeline import (
    NO_CALIBRATION,
    Calibration,
    ForecasterConfig,
    Recipe,
    bound_columns,
    check_network,
    finite_or_none,
)
from lstmlab.plotting import (
    History,
    extended,
    forecast_figure,
    history_points,
    logged,
)
from lstmlab.readings import (
    Forecast,
    forecast_frame,
    frame_readings,
    repeated,
    unknown_series,
)
from lstmlab.runtime import ensure_compile_cache
from lstmlab.scoring import SeedFlags
from lstmlab.series_network import SeriesNetwork
from lstmlab.states import SeriesState, StateCodec
from lstmlab.stepping import Prepared, add_seed_axis

__all__ = [
    "HORIZON_CAPACITY",
    "READ_CAPACITY",
    "Forecaster",
    "ForecasterConfig",
    "Recipe",
]

# The readings one compiled read holds before ``warm_up`` sets it (``Forecaster.read_capacity``):
# one program per row bucket reads any count up to it, a longer request in pieces of it. The
# buffer is copied in whole on every call, so it is kept moderate (4 KB per series and column).
READ_CAPACITY = 1024
# The forecast steps one compiled rollout holds before ``warm_up`` sets it
# (``Forecaster.horizon_capacity``); a longer horizon doubles it until it fits.
HORIZON_CAPACITY = 64


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
        self._network: SeriesNetwork | None = None  # the fitted model, immutable
        self._metrics: dict[str, Any] = {}
        self._flags: dict[str, SeedFlags] = {}
        self._store: StateStore | None = None
        self._read_capacity = READ_CAPACITY
        self._horizon_capacity = HORIZON_CAPACITY
        # the readings fitted on (and observed since), for plots: id -> (times ns, values)
        self._history: dict[str, History] = {}

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
        check_network(model, recipe, scaler)
        if self._store is not None and self._store is not store:
            self._store.close()
        seeds = int(jax.tree.leaves(params)[0].shape[0])  # read per series decoded
        self._network = SeriesNetwork(
            model=model,
            params=params,
            recipe=recipe,
            seeds=seeds,
            scaler=scaler,
            calibration=calibration,
            codec=StateCodec(model, recipe, seeds, self._settings.scaler),
            clock=SeriesClock(freq=recipe.freq, step=recipe.step),
        )
        self._metrics = dict(metrics or {})
        self._flags = {}
        self._store = store if store is not None else SeriesStore(model=f"unsaved-{uuid.uuid4()}")

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
        settings = ForecasterConfig.of_network(
            config, recipe, seeds=1 if seeds is None else seeds, scaler=scaler
        )
        forecaster = cls(config=settings)
        if seeds is None:
            params = add_seed_axis(params)
        forecaster._set_model(
            config, params, recipe=recipe, scaler=scaler, metrics=metrics, store=None
        )
        return forecaster

    # -- views ------------------------------------------------------------------------------
    @property
    def config(self) -> ForecasterConfig:
        """The model and training settings."""
        return self._settings

    def _require_model(self) -> SeriesNetwork:
        if self._network is None:
            raise ValueError(
                "this Forecaster is not fitted yet; call fit(data) first, or "
                "Forecaster.load(path) for a saved one"
            )
        return self._network

    @property
    def network(self) -> SeriesNetwork:
        """The fitted network: its checks, reads and forecasts of a series' state."""
        return self._require_model()

    @property
    def model_config(self) -> ModelConfig:
        """The network's config."""
        return self.network.model

    @property
    def params(self) -> Params:
        """The parameters, leaves with a leading seeds axis."""
        return self.network.params

    @property
    def seeds(self) -> int:
        """Trainings side by side (forecasts are their median)."""
        return self.network.seeds

    @property
    def recipe(self) -> Recipe:
        """The data recipe."""
        return self.network.recipe

    @property
    def scaler(self) -> Scaler | None:
        """The scaler a series first seen after fitting starts with (fitted on all series)."""
        return None if self._network is None else self._network.scaler

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

    def fresh_state(self) -> SeriesState:
        """The state a new series id starts from (zero recurrent state, nothing seen)."""
        return self.network.fresh_state()

    def series_state(self, series_id: str) -> SeriesState:
        """The state of a series, read from the store now; a fresh one for a new id."""
        known = self.stored_state(series_id)
        return self.fresh_state() if known is None else known

    def stored_state(self, series_id: str) -> SeriesState | None:
        """The state of a series, read from the store now; ``None`` for an unknown id."""
        codec = self.network.codec
        stored = self._store.get(series_id)
        return None if stored is None else codec.decode(series_id, stored)

    # -- validation -------------------------------------------------------------------------
    def check_values(
        self,
        series_id: str,
        values: Any,
        *,
        plausible_factor: float | None = PLAUSIBLE_FACTOR,
    ) -> np.ndarray:
        """Readings as ``(readings, columns)`` float64, or a ``ValueError`` saying what is wrong.

        Finite, within float32, and within ``plausible_factor`` training ranges of the
        series' training values unless it is ``None`` (``SeriesNetwork.check_values``).
        """
        return self._require_model().check_values(series_id, values, plausible_factor)

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

    def repeated(
        self,
        series_id: str,
        state: SeriesState,
        readings: np.ndarray,
        stamps: np.ndarray | None,
        seq: int | None,
    ) -> int:
        """How many leading readings were already accepted: the one retry rule.

        ``lstmlab.readings.repeated`` against this model's store; ``observe``, ``lstmlab
        observe`` and the service answer a retry with it.

        Raises:
            ConflictError: a key accepted with other values, an old key never accepted,
                ``seq`` past the series' end, or timestamps and ``seq`` that disagree.
        """
        clock = self._require_model().clock
        return repeated(self._store, series_id, state, readings, stamps, seq, clock)

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
        errors: bool = True,
    ) -> dict[str, tuple[SeriesState, np.ndarray, np.ndarray | None, int]]:
        """Validate and advance several series.

        With ``retries`` (``observe``: states from the store), leading readings that repeat
        accepted ones, by their timestamps or ``seqs`` (``repeated``), are skipped; else
        every reading is applied. Without ``new_series`` an id the model does not have is
        refused (``state_to_advance``); without ``errors`` the states keep no new errors.

        Returns:
            id -> (new state, the readings applied, their timestamps in ns, the readings that
            repeated accepted ones and were skipped).
        """
        network = self._require_model()
        timestamps = timestamps or {}
        checked, unchanged, repeats = {}, {}, {}
        for series_id, values in observations.items():
            check_series_id(series_id)
            state = (
                states[series_id]
                if states is not None
                else self.state_to_advance(series_id, new_series=new_series)
            )
            readings = network.check_readings(
                series_id, values, timestamps.get(series_id), plausible_factor
            )
            network.check_timestamp_kind(series_id, state, readings)
            repeats[series_id] = 0
            if retries:  # the accepted part, answered again
                seq = (seqs or {}).get(series_id)
                repeats[series_id] = self.repeated(
                    series_id, state, readings.values, readings.times, seq
                )
                readings = readings.tail(repeats[series_id])
            if len(readings.values):
                checked[series_id] = network.prepare(series_id, state, readings, horizon)
            else:
                unchanged[series_id] = state
        advanced = self._read(checked, errors) if checked else {}
        out = {}
        for series_id in observations:
            if series_id in unchanged:
                empty = np.zeros((0, len(network.recipe.columns)))
                out[series_id] = (unchanged[series_id], empty, None, repeats[series_id])
            else:
                _, _, stamps, applied = checked[series_id]
                out[series_id] = (advanced[series_id], applied, stamps, repeats[series_id])
        return out

    def _read(self, checked: Mapping[str, Prepared], errors: bool) -> dict[str, SeriesState]:
        """The states after the prepared readings of every series."""
        return self._require_model().read(checked, self._read_capacity, errors=errors)

    def commit(
        self, advanced: Mapping[str, tuple[SeriesState, np.ndarray, Sequence[int] | None]]
    ) -> None:
        """Store states from ``advance`` and log the readings that led to them (one write).

        Args:
            advanced: series id -> ``(state, readings, times)``: its new state, the
                ``(readings, columns)`` float64 readings it read last (their sequence numbers
                end at ``state.seen - 1``; empty: none logged), their nanosecond timestamps
                or ``None``.

        Raises:
            SeriesLimitError: a new series beyond the store's ``max_series`` (nothing written).
        """
        encode = self._require_model().codec.encode
        for series_id in advanced:
            check_series_id(series_id)
        self._store.put_many(
            {i: encode(state) for i, (state, _, _) in advanced.items()},
            logs={i: (s.seen - len(r), t, r) for i, (s, r, t) in advanced.items() if len(r)},
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
        ``max_horizon``, then runs each program on zeros (``SeriesNetwork.warm_up``). Nothing
        is stored. A request of more readings is read in pieces (no compile); a longer
        horizon, or more series at once, compiles.

        Args:
            max_readings: the most readings one request sends.
            max_horizon: the most steps one request forecasts.
            max_series: the most series one call observes or forecasts together.

        Returns:
            The number of programs run: 2 per row bucket for a recursive forecaster with
            ``max_horizon > 1``, else 1.
        """
        network = self._require_model()
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
        return network.warm_up(max_readings, max_horizon, max_series)

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
        network = self._require_model()
        scalers = scalers or {}
        fresh = {
            series_id: dataclasses.replace(
                network.fresh_state(), scaler=scalers.get(series_id, network.scaler)
            )
            for series_id in histories
        }
        # the training values are fit's to check (``check_outliers``), not the reading check's;
        # the model was trained on them: their errors are not the ones intervals learn from
        kept = self._advance_many(histories, timestamps, fresh, plausible_factor=None, errors=False)
        encode = network.codec.encode
        self._store.put_many({i: encode(s) for i, (s, _, _, _) in kept.items()})

    # -- observe and forecast ---------------------------------------------------------------
    @property
    def _takes_any_id(self) -> bool:
        """A model built from parameters has no series of its own: every id is new to it."""
        return not (self._metrics or {}).get("series")

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
            raise unknown_series(series_id, self.series_ids, fix)
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
        folder's store, as ``lstmlab observe`` and the service do). The state keeps the error
        of the forecast it held, which the intervals learn from (``SeriesState.errors``).

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
        network = self._require_model()
        horizon = network.check_horizon(horizon)
        for seq in (seqs or {}).values():
            if seq is not None:
                check_non_negative_int("seq", seq)
        timestamps = dict(timestamps or {})
        values = {}
        for series_id, new_data in observations.items():
            check_series_id(series_id)
            values[series_id], timestamps[series_id] = frame_readings(
                series_id, new_data, timestamps.get(series_id), network.recipe
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
            # a pure repeat changes nothing: nothing to write
            self.commit({i: (s, r, t) for i, (s, r, t, _) in advanced.items() if len(r)})
        for series_id, (_, readings, stamps, _) in advanced.items():
            if series_id in self._history and len(readings):
                self._history[series_id] = extended(self._history[series_id], stamps, readings)
        forecasts = self._forecasts({i: s for i, (s, _, _, _) in advanced.items()}, horizon)
        return {
            series_id: dataclasses.replace(forecast, repeated=advanced[series_id][3])
            for series_id, forecast in forecasts.items()
        }

    def _forecasts(self, states: Mapping[str, SeriesState], horizon: int) -> dict[str, Forecast]:
        """Every series' forecast from its state (``SeriesNetwork.forecasts``).

        The flagged seeds are left out of the median (all flagged: NaN, and a
        ``RuntimeWarning``); ``flags`` and ``metrics["warnings"]`` say which and why.
        """
        network = self._require_model()
        out, flagged, self._horizon_capacity = network.forecasts(
            states, horizon, self._horizon_capacity
        )
        for series_id, forecast in out.items():
            if forecast.values is None:
                continue
            if series_id not in flagged:
                self._flags.pop(series_id, None)
                continue
            flags = self._flags[series_id] = flagged[series_id]
            self._metrics.setdefault("warnings", {})[series_id] = flags.note
            if flags.flagged.all():
                warnings.warn(
                    f"series {series_id!r}: every seed's forecast failed the sanity "
                    f"check, so the forecast is NaN: {flags.note}; fit the model again "
                    "(other seeds, a norm, a direct horizon) or check the data",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return out

    @property
    def calibrated_steps(self) -> int:
        """The most steps ahead a forecast can have intervals for (``Calibration.steps``)."""
        return self._require_model().calibrated_steps

    def halfwidths(
        self, series_id: str, level: float, horizon: int, state: SeriesState | None = None
    ) -> np.ndarray:
        """``(horizon, columns)`` split-conformal half-widths of a series' forecast, in its units.

        ``SeriesNetwork.halfwidths`` from ``state`` (``None``: the series' stored state).
        """
        state = self.series_state(series_id) if state is None else state
        return self._require_model().halfwidths(series_id, level, horizon, state)

    def forecast_state(self, series_id: str, state: SeriesState, horizon: int = 1) -> Forecast:
        """Forecast ``horizon`` steps from ``state`` (``state`` is not changed).

        Args:
            series_id: the series (for the result).
            state: its state.
            horizon: steps.

        Returns:
            The ``Forecast``.
        """
        horizon = self._require_model().check_horizon(horizon)
        return self._forecasts({series_id: state}, horizon)[series_id]

    def forecast_states(
        self, states: Mapping[str, SeriesState], horizon: int = 1
    ) -> dict[str, Forecast]:
        """``forecast_state`` of each of ``states`` (series id -> state) at once.

        One step ahead: the states' stored predictions, no device call; further: one rollout.
        """
        horizon = self._require_model().check_horizon(horizon)
        return self._forecasts(states, horizon)

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
        network = self._require_model()
        horizon = network.check_horizon(horizon)
        stored = self._store.get(series_id)
        if stored is None:
            raise KeyError(
                f"unknown series {series_id!r}; observe readings for it first (known: "
                f"{len(self._store)} series)"
            )
        return self.forecast_state(series_id, network.codec.decode(series_id, stored), horizon)

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
                and the one-step errors seen since (``halfwidths``).

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
        network = self._require_model()
        horizon = network.check_horizon(horizon)
        bounds = bound_columns(level)
        if bounds and horizon > network.calibrated_steps:
            self.halfwidths("", bounds[0][0], horizon)  # raises, before any work
        states = network.codec.read(self._store, [series] if isinstance(series, str) else series)
        forecasts = self._forecasts(states, horizon)
        columns = network.recipe.columns
        return forecast_frame(
            forecasts, states, horizon, columns, bounds, network.clock, self.halfwidths
        )

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
        # the layout and the level are refused before the data is read
        horizon, windows, step, bounds = backtest_windows(
            horizon, windows, step, level, validation=self._settings.validation
        )
        parsed = parse_training_data(data, time_col, target, freq, id_col, time_format)
        check_outliers(parsed, bool(allow_outliers))
        return backtest(
            lambda part: Forecaster(config=self._settings, quiet=self._quiet)._fit_data(part),
            parsed,
            horizon=horizon,
            windows=windows,
            step=step,
            refit=refit,
            bounds=bounds,
        )

    def replay(self, values: Any, series_id: str | None = None) -> np.ndarray:
        """One-step predictions after every reading of a whole series, from a fresh state.

        The offline reference for streaming (``SeriesNetwork.replay``), scaled by the scaler
        of ``series_id`` (``None``, or an unknown id: the default): ``(time, columns)``, row
        ``t`` forecasts reading ``t + 1``.
        """
        network = self._require_model()
        known = None if series_id is None else self.stored_state(series_id)
        return network.replay(values, network.scaler if known is None else known.scaler)

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

        The data given is the training data; ``lstmlab.fitting.fit_model`` says how the model
        is chosen and trained: each series scaled on its own values; the window (``window``,
        or one covering the shortest season); every candidate (``model`` and ``norm``; each
        kind and normalisation with ``"auto"``) trained on every series' windows, the last
        ``validation`` of each held out to stop each seed early; the candidate whose
        forecasts of that tail are best kept, trained again on every reading (``refit``), its
        residuals there calibrating the intervals (``forecast(level=)``). Any series stored
        before is dropped (a new model starts a new, in-memory store; ``save`` writes it into
        a model folder).

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
        """``fit`` on checked data: the model (``fitting.fit_model``), then every series' state."""
        fitted = fit_model(
            self._settings,
            parsed,
            quiet=self._quiet,
            read_capacity=self._read_capacity,
            horizon_capacity=self._horizon_capacity,
        )
        self._horizon_capacity = fitted.horizon_capacity
        self._set_model(
            fitted.model,
            fitted.params,
            recipe=fitted.recipe,
            scaler=fitted.scaler,
            metrics=fitted.metrics,
            store=None,
            calibration=fitted.calibration,
        )
        self._read_histories(parsed, fitted.scalers)
        return self

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
        network = self._require_model()
        seeds = network.seeds
        params = network.params if seeds > 1 else jax.tree.map(lambda x: x[0], network.params)
        arrays: dict[str, np.ndarray] = {}  # the calibration's residuals, in safetensors
        saved = SavedModel(
            config=network.model,
            params=params,
            recipe={
                **network.recipe.to_dict(),
                "config": self._settings.to_dict(),
                "calibration": network.calibration.to_dict(arrays),
            },
            scaler=None if network.scaler is None else network.scaler.to_dict(),
            metrics=self._metrics,
            states={},
            states_meta={"series": []},
            store=self._store,
            seeds=seeds if seeds > 1 else None,
            arrays=arrays,
        )
        return save_model(path, saved, opener=SeriesStore)

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
        saved = load_model(path)
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
            settings = ForecasterConfig.of_network(
                saved.config, recipe, seeds=saved.seeds or 1, scaler=scaler
            )
        forecaster = cls(config=settings, quiet=quiet)
        params = saved.params if saved.seeds else add_seed_axis(saved.params)
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
        network = self._require_model()
        check_positive_int("history", history)
        ids = (
            list(self.series_ids)[:6]
            if series is None
            else ([series] if isinstance(series, str) else list(series))
        )
        frame = self.forecast(horizon, series=ids, level=level)
        points = {
            i: history_points(
                self._history.get(i) or logged(self._store.observations(i)),
                seen=self.series_state(i).seen,
                steps=network.steps,
                count=history,
            )
            for i in ids
        }
        return forecast_figure(
            frame,
            points,
            columns=network.recipe.columns,
            bounds=bound_columns(level),
            kind=network.recipe.kind,
            auto=self._settings.model == "auto",
            seeds=network.seeds,
            freq=network.recipe.freq,
            steps=network.steps,
        )
