"""lstmlab.readings: a forecast from every seed's rollout, and readings' timestamps."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lstmlab.core.model import LSTMConfig
from lstmlab.data.calendar import SeriesClock
from lstmlab.data.scaling import Scaler
from lstmlab.readings import Readings, check_timestamp_kind, series_forecasts, timed_readings
from lstmlab.states import fresh_series_state

CONFIG = LSTMConfig(units=(3,), timesteps=4, stateful=False)
SCALER = Scaler(kind="minmax", columns=("value",), offset=(10.0,), scale=(2.0,))


def _state(seen, last_time=None, recent=4, prediction=True):
    fresh = fresh_series_state(CONFIG, 3, SCALER)
    return dataclasses.replace(
        fresh,
        recent=np.zeros((recent, 1), np.float32),
        prediction=np.zeros((3, 1), np.float32) if prediction else None,
        seen=seen,
        last_time=last_time,
    )


def test_a_seed_outside_the_plausible_range_is_left_out_of_the_median():
    # three seeds, two steps, scaled: seed 2 of series "b" leaves the range at step 2
    scaled = np.array(
        [
            [[[0.10], [0.20]], [[0.30], [0.40]]],
            [[[0.20], [0.40]], [[0.50], [0.20]]],
            [[[0.60], [0.30]], [[0.40], [9.00]]],
        ],
        np.float32,
    )  # (seeds, series, steps, columns)
    states = {"a": _state(10), "b": _state(12), "c": _state(2, recent=1, prediction=False)}
    bounds = (np.array([0.0]), np.array([12.0]))  # original units: 10 + 2 * scaled
    clock = SeriesClock()
    forecasts, flagged = series_forecasts(states, scaled, lambda _: bounds, clock, window=4)
    original = 10.0 + 2.0 * scaled.astype(np.float64)
    np.testing.assert_allclose(forecasts["a"].values, np.median(original[:, 0], axis=0))
    np.testing.assert_allclose(forecasts["b"].values, np.median(original[:2, 1], axis=0))
    assert list(flagged) == ["b"] and flagged["b"].flagged.tolist() == [False, False, True]
    assert forecasts["a"].flags.flagged.tolist() == [False, False, False]
    # a window model that has read 1 of its 4 readings needs 3 more, and forecasts nothing
    assert (forecasts["c"].values, forecasts["c"].needed) == (None, 3)
    assert forecasts["a"].timestamps is None  # a series without times has no steps' times


def test_forecast_steps_are_dated_from_each_series_last_reading():
    last = pd.Timestamp("1960-12-01").value
    states = {"a": _state(144, last_time=last), "b": _state(144, last_time=last)}
    scaled = np.zeros((3, 2, 2, 1), np.float32)
    clock = SeriesClock(freq="MS")
    bounds = (np.array([-np.inf]), np.array([np.inf]))
    forecasts, _ = series_forecasts(states, scaled, lambda _: bounds, clock, window=4)
    assert forecasts["a"].timestamps == ("1961-01-01T00:00:00", "1961-02-01T00:00:00")
    assert forecasts["b"].timestamps == forecasts["a"].timestamps


def test_timestamps_are_parsed_one_per_reading_and_steps_stay_integers():
    values = np.array([[1.0], [2.0]])
    readings = timed_readings("s", values, ["1961-01-01", "1961-02-01"], steps=False)
    expected = pd.DatetimeIndex(["1961-01-01", "1961-02-01"]).as_unit("ns").asi8
    np.testing.assert_array_equal(readings.times, expected)
    assert readings.zone is None
    numbered = timed_readings("s", values, [145, 146], steps=True)
    np.testing.assert_array_equal(numbered.times, [145, 146])
    with pytest.raises(ValueError, match="2 timestamps for 1 readings"):
        timed_readings("s", values[:1], ["1961-01-01", "1961-02-01"], steps=False)
    with pytest.raises(ValueError, match="which number steps, but this model's series have"):
        timed_readings("s", values, [145, 146], steps=False)


def test_a_series_keeps_aware_or_naive_timestamps():
    aware = timed_readings("s", np.ones((1, 1)), ["1961-01-01T00:00:00+01:00"], steps=False)
    assert aware.zone is not None
    naive_series = _state(3, last_time=pd.Timestamp("1960-12-31T23:00:00").value)
    with pytest.raises(ValueError, match="has naive timestamps .* got aware ones"):
        check_timestamp_kind("s", naive_series, aware, steps=False)
    check_timestamp_kind(
        "s", naive_series, Readings(values=np.ones((1, 1)), times=None, zone=None), steps=False
    )
