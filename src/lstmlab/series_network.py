"""A fitted network on one series' state: checks readings, reads them in, forecasts, intervals.

``SeriesNetwork`` is immutable: the network (its config and parameters with a leading seeds
axis), the data recipe, the scaler a new series starts with, the calibration from ``fit``, the
state codec and the series clock. What changes between calls (the store, the plot history,
the flags, the compiled capacities) is the ``Forecaster``'s, which holds one ``SeriesNetwork``
per fitted model; the service calls the checks here through ``Forecaster.network``.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lstmlab.checks import check_int_range, check_positive_number
from lstmlab.core.model import ModelConfig, Params
from lstmlab.data.calendar import SeriesClock
from lstmlab.data.scaling import Scaler
from lstmlab.defaults import MAX_HORIZON
from lstmlab.pipeline import LEVEL_FIX, Calibration, Recipe, parse_levels
from lstmlab.readings import (
    Forecast,
    Readings,
    check_timestamp_kind,
    check_within,
    checked_values,
    prepared,
    series_forecasts,
    timed_readings,
)
from lstmlab.scoring import SeedFlags
from lstmlab.states import SeriesState, StateCodec
from lstmlab.stepping import Prepared, bucket, read_states, replay_scaled, rollout_states

__all__ = ["SeriesNetwork"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SeriesNetwork:
    """A fitted network and what it does to a series' state (``SeriesState``).

    Attributes:
        model: the network's config.
        params: its parameters, leaves with a leading seeds axis.
        recipe: how readings become inputs.
        seeds: the size of that seeds axis.
        scaler: the scaler a series first seen after fitting starts with.
        calibration: the validation tail's residuals and ranges (``NO_CALIBRATION``: none).
        codec: a series' state to and from a store's rows.
        clock: the series' frequency or step numbering.
    """

    model: ModelConfig
    params: Params
    recipe: Recipe
    seeds: int
    scaler: Scaler | None
    calibration: Calibration
    codec: StateCodec
    clock: SeriesClock

    @property
    def steps(self) -> bool:
        """Whether the series are numbered by steps rather than timestamps (``recipe.step``)."""
        return self.recipe.step is not None

    def fresh_state(self) -> SeriesState:
        """The state a new series starts from: zero recurrent state, nothing seen."""
        return self.codec.fresh(self.scaler)

    # -- checks -----------------------------------------------------------------------------
    def check_values(self, series_id: str, values: Any, plausible_factor: Any) -> np.ndarray:
        """Readings as ``(readings, columns)`` float64, or a ``ValueError`` saying what is wrong.

        A reading must be finite and within float32's range (the model computes in float32;
        always), and, unless ``plausible_factor`` is ``None``, within ``plausible_factor``
        training ranges of the series' training values: ``[low - f * width, high + f *
        width]`` with ``low``, ``high`` the series' training extremes and ``width = high -
        low`` (``lstmlab.scoring.plausible_range``). A series first seen after fitting is
        held to the range of all training values; a network without training values
        (``Forecaster.from_params``) to its scaler's span (min to max of a minmax scaler, mean
        ± one standard deviation of a standard one).

        Args:
            series_id: for messages (and whose training range applies).
            values: ``(readings, columns)``, or ``(readings,)`` for one column.
            plausible_factor: training ranges beyond the training values still accepted;
                ``None`` accepts any finite value.

        Returns:
            The readings, in the original units.

        Raises:
            ValueError: not numbers, wrong column count, no readings, NaN or infinite values,
                beyond float32, or beyond the plausible range.
        """
        array = checked_values(series_id, values, self.recipe.columns)
        if plausible_factor is not None:
            factor = check_positive_number(
                "plausible_factor",
                plausible_factor,
                fix="pass e.g. 10, or None to accept any finite value",
            )
            held = self.calibration.plausible(series_id, self.scaler, factor)
            if held is not None:
                check_within(series_id, array, *held, factor)
        return array

    def check_readings(
        self, series_id: str, values: Any, timestamps: Any, plausible_factor: Any
    ) -> Readings:
        """Check the readings (``check_values``) and their count, then parse the timestamps.

        Every check that needs no series state, made once per request: ``Forecaster.advance``
        and the service's ``observe`` both start here.
        """
        array = self.check_values(series_id, values, plausible_factor)
        return timed_readings(series_id, array, timestamps, steps=self.steps)

    def check_timestamp_kind(self, series_id: str, state: SeriesState, readings: Readings) -> None:
        """One series keeps aware or naive timestamps (``readings.check_timestamp_kind``)."""
        check_timestamp_kind(series_id, state, readings, steps=self.steps)

    def check_horizon(self, horizon: Any) -> int:
        """A horizon this network can forecast (checked before any state changes)."""
        horizon = check_int_range("horizon", horizon, 1, MAX_HORIZON)
        direct = self.recipe.horizon
        if direct > 1 and horizon > direct:
            raise ValueError(
                f"this model forecasts up to {direct} steps at once (a direct head, "
                f"horizon={direct}), got horizon {horizon}; pass horizon <= {direct}, or fit "
                f"with horizon={horizon} (or horizon=1 for recursive forecasts of any length)"
            )
        return horizon

    def time_text(self, time: int, zone: str | None) -> str:
        """A stored time (``SeriesState.last_time``) as text: ISO, or a step number."""
        return self.clock.text(time, zone)

    # -- reading and forecasting ------------------------------------------------------------
    def prepare(
        self, series_id: str, state: SeriesState, readings: Readings, horizon: int
    ) -> Prepared:
        """Readings checked against ``state`` (order, gaps, dating ``horizon`` steps), scaled."""
        return prepared(series_id, state, readings, self.clock, steps=self.steps, horizon=horizon)

    def read(
        self, checked: Mapping[str, Prepared], capacity: int, *, errors: bool = True
    ) -> dict[str, SeriesState]:
        """The states after the prepared readings of every series (``stepping.read_states``).

        With ``errors`` each state keeps the error of every one-step forecast its readings
        met (``observed_errors``): the one it held when the first came, then the model's
        output after each reading for the next; observing readings one by one or at once
        keeps the same errors. ``False`` for a warm start on training data.
        """
        return read_states(
            self.model, self.params, self.recipe.window, checked, capacity, errors=errors
        )

    def rollout(
        self, states: Sequence[SeriesState], horizon: int, capacity: int
    ) -> tuple[np.ndarray, int]:
        """Every seed's scaled forecasts and the rollout's capacity (doubled to fit ``horizon``).

        Returns:
            ``((seeds, series, horizon, columns) forecasts, capacity)``.
        """
        return rollout_states(self.model, self.params, self.recipe, states, horizon, capacity)

    def plausible_range(self, series_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The plausible range of a series' forecasts, ``(columns,)`` each (infinite: none)."""
        known = self.calibration.ranges.get(series_id, self.calibration.default_range)
        if known is None:
            return np.full(self.model.features, -np.inf), np.full(self.model.features, np.inf)
        return known

    def forecasts(
        self, states: Mapping[str, SeriesState], horizon: int, capacity: int
    ) -> tuple[dict[str, Forecast], dict[str, SeedFlags], int]:
        """Every series' forecast from its state: one rollout for all of them.

        Every seed's forecast is checked against the series' plausible range, and the flagged
        seeds are left out of the median (``readings.series_forecasts``).

        Returns:
            ``(forecasts, the flags of the series with a flagged seed, the rollout capacity)``.
        """
        ready = [states[i] for i in states if states[i].prediction is not None]
        scaled = None
        if ready:
            scaled, capacity = self.rollout(ready, horizon, capacity)
        window = None if self.model.streams else self.recipe.window
        out, flagged = series_forecasts(states, scaled, self.plausible_range, self.clock, window)
        return out, flagged, capacity

    def replay(self, values: Any, scaler: Scaler | None) -> np.ndarray:
        """One-step predictions after every reading of a whole series, from a fresh state.

        The offline reference for streaming: computed at once (one call over the whole
        series for stateful models, all windows in one batch for window models).

        Args:
            values: ``(time, columns)`` or ``(time,)``, original units.
            scaler: the series' scaler.

        Returns:
            ``(time, columns)`` float64, the median over seeds: row ``t`` forecasts reading
            ``t + 1``; NaN where a window model has not yet seen ``window`` readings.
        """
        array = self.check_values("replay", values, None)  # a reference: any finite value
        scaled = (array if scaler is None else scaler.transform(array)).astype(np.float32)
        out = replay_scaled(self.model, self.params, self.recipe.window, scaled)
        return out.astype(np.float64) if scaler is None else scaler.inverse_transform(out)

    def warm_up(self, read_capacity: int, horizon_capacity: int, max_series: int) -> int:
        """Run every program a request up to these sizes can need, on zeros; store nothing.

        For each row bucket up to ``max_series`` (powers of two): the one read (a stateful
        model's loop over its buffer of ``read_capacity`` readings, or a window model's
        window) and the one rollout of ``horizon_capacity`` steps (none for a direct model,
        whose forecast is its stored output, nor for a capacity of 1, the stored prediction).

        Returns:
            The number of programs run: 2 per row bucket for a recursive network with
            ``horizon_capacity > 1``, else 1.
        """
        shape = (1 if self.model.streams else self.recipe.window, self.model.features)
        zeros = np.zeros(shape, np.float32)
        programs = 0
        for rows in [1 << bit for bit in range(bucket(max_series).bit_length())]:
            checked = {f"warm-up {i}": (self.fresh_state(), zeros, None, None) for i in range(rows)}
            ready = list(self.read(checked, read_capacity).values())
            programs += 1
            if self.recipe.horizon > 1 or horizon_capacity == 1:
                continue
            self.rollout(ready, 2, horizon_capacity)  # every horizon up to it: one program
            programs += 1
        return programs

    # -- intervals --------------------------------------------------------------------------
    @property
    def calibrated_steps(self) -> int:
        """The most steps ahead a forecast can have intervals for (``Calibration.steps``)."""
        return self.calibration.steps(self.recipe.horizon)

    def halfwidths(
        self, series_id: str, level: Any, horizon: int, state: SeriesState
    ) -> np.ndarray:
        """Split-conformal half-widths of a series' forecast, in its original units.

        From the residuals of the seed median on the validation tail of ``fit``, per step
        ahead (``lstmlab.scoring.conformal_halfwidths``), updated by the one-step errors its
        ``state`` has seen since (``Calibration.halfwidths``), mapped to the series' units by
        its scaler; a series first seen after fitting uses every series' residuals. ``inf``
        where the validation tail holds too few residuals for ``level``.

        Args:
            series_id: the series.
            level: the nominal coverage: a fraction in (0, 1) or a percent.
            horizon: steps ahead, at most ``calibrated_steps``.
            state: the series' state (its scaler and errors).

        Returns:
            ``(horizon, columns)`` half-widths.

        Raises:
            ValueError: a bad level; the model has no residuals (fitted with
                ``validation=0``, or saved before intervals existed); a horizon beyond the
                steps the residuals cover.
        """
        levels = parse_levels(level)
        if len(levels) != 1:
            raise ValueError(f"halfwidths takes one level, got {level!r}; {LEVEL_FIX}")
        half = self.calibration.halfwidths(
            series_id, levels[0], horizon, self.calibrated_steps, state.errors
        )
        if state.scaler is not None:
            half = half * np.abs(np.asarray(state.scaler.scale))[None, :]
        return half
