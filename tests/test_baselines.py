"""The statistical baselines, checked against direct statsforecast calls and NumPy references."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from lstmlab.experiments.baselines import (
    BASELINES,
    LABELS,
    STATISTICAL,
    baseline_forecasts,
    season_length_for,
)

statsforecast_models = pytest.importorskip("statsforecast.models")


@pytest.fixture
def airline(data_dir):
    path = data_dir / "airline_passengers.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared data folder lacks the airline series")
    return pd.read_csv(path)["Passengers"].to_numpy(np.float64)  # (144,)


def seasonal_series(steps, season, seed):
    """A positive series with trend, season and noise (asymmetric, so phases cannot swap)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    shape = rng.uniform(-1.0, 1.0, season)
    return 50.0 + 0.2 * t + 5.0 * shape[t % season] + rng.normal(0.0, 1.0, steps)


def direct(model, y, n_train, origins, horizon, level=90):
    """The reference: one statsforecast fit on y[:n_train], forward from each origin."""
    model.fit(y[:n_train])
    rows = [model.forward(y=y[:o], h=horizon, level=[level]) for o in origins]
    mean = np.stack([np.asarray(r["mean"]) for r in rows])  # (origins, horizon)
    lower = np.stack([np.asarray(r[f"lo-{level}"]) for r in rows])
    upper = np.stack([np.asarray(r[f"hi-{level}"]) for r in rows])
    return model, mean, lower, upper


# --------------------------------------------------------------------------- direct calls


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("auto_ets", lambda: statsforecast_models.AutoETS(season_length=12)),
        ("auto_theta", lambda: statsforecast_models.AutoTheta(season_length=12)),
        ("seasonal_naive", lambda: statsforecast_models.SeasonalNaive(season_length=12)),
    ],
)
def test_a_baseline_equals_a_direct_statsforecast_call_on_the_same_split(airline, name, make):
    n_train = 96
    second = seasonal_series(airline.size, 12, seed=3)  # a second series: no mixing of columns
    targets = np.stack([airline, second], axis=1)  # (144, 2)
    origins = np.array([96, 101, 119])
    result = baseline_forecasts(name, targets, n_train, origins, 12, season=12, level=0.9)
    assert result.forecasts.shape == (1, 3, 12, 2)
    assert result.level == 0.9
    assert result.label == LABELS[name]
    assert result.season_length == 12
    for j, y in enumerate((airline, second)):
        model, mean, lower, upper = direct(make(), y, n_train, origins, 12)
        np.testing.assert_allclose(result.forecasts[0, :, :, j], mean, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(result.lower[0, :, :, j], lower, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(result.upper[0, :, :, j], upper, rtol=1e-12, atol=1e-10)
        if name == "auto_ets":
            assert result.params[j] == model.model_["method"]
            assert re.fullmatch(r"ETS\([AM],[NAM]d?,[NAM]\)", result.params[j])


def test_auto_arima_equals_a_direct_statsforecast_call_on_a_short_series():
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 1.0, 90)
    y = np.empty(90)
    y[0] = 0.0
    for t in range(1, 90):  # an AR(1) around 20: a non-trivial order to choose
        y[t] = 0.7 * y[t - 1] + noise[t]
    y += 20.0
    origins = np.array([60, 70, 84])
    result = baseline_forecasts("auto_arima", y, 60, origins, 6, season=None, level=0.8)
    model, mean, lower, upper = direct(
        statsforecast_models.AutoARIMA(season_length=1), y, 60, origins, 6, level=80
    )
    np.testing.assert_allclose(result.forecasts[0, :, :, 0], mean, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(result.lower[0, :, :, 0], lower, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(result.upper[0, :, :, 0], upper, rtol=1e-12, atol=1e-10)
    assert result.params[0].startswith("ARIMA(")
    assert result.season_length == 1
    assert result.level == 0.8
    # forward() from n_train runs no new estimation: it is predict() of the training fit
    predicted = model.predict(h=6, level=[80])
    np.testing.assert_allclose(result.forecasts[0, 0, :, 0], predicted["mean"], rtol=1e-12)
    np.testing.assert_allclose(result.lower[0, 0, :, 0], np.asarray(predicted["lo-80"]), rtol=1e-9)


def test_auto_arima_on_a_long_season_is_statsforecasts_bounded_search_and_says_so():
    # From season 24 on, the search is statsforecast's own bounded one (its default ran for
    # over 25 minutes on seasons 48 and 52); written out here, not read from the module.
    y = seasonal_series(120, 24, seed=5)
    origins = np.array([96, 100])
    result = baseline_forecasts("auto_arima", y, 96, origins, 4, season=24, level=0.9)
    bounded = statsforecast_models.AutoARIMA(
        season_length=24, approximation=True, nmodels=20, max_P=1, max_Q=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its optimiser's convergence notes: recorded above
        _, mean, lower, _ = direct(bounded, y, 96, origins, 4)
    np.testing.assert_allclose(result.forecasts[0, :, :, 0], mean, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(result.lower[0, :, :, 0], lower, rtol=1e-12, atol=1e-10)
    assert "AutoARIMA(season_length=24, approximation=True, nmodels=20" in result.description
    # A season below the bound keeps statsforecast's defaults.
    short = baseline_forecasts("auto_arima", y, 96, origins, 4, season=12, level=None)
    assert "AutoARIMA(season_length=12) fitted" in short.description


@pytest.mark.parametrize("name", ["auto_ets", "auto_theta"])
def test_the_protocol_is_statsforecasts_own_cross_validation_without_refit(airline, name):
    """StatsForecast.cross_validation(refit=False) fits on the first window, then forward()s."""
    from statsforecast import StatsForecast

    horizon, n_train = 12, 96
    origins = np.arange(n_train, airline.size - horizon + 1)  # (37,): every test origin
    model = getattr(statsforecast_models, {"auto_ets": "AutoETS", "auto_theta": "AutoTheta"}[name])
    frame = pd.DataFrame({"unique_id": "airline", "ds": np.arange(airline.size), "y": airline})
    cv = StatsForecast(models=[model(season_length=12)], freq=1, n_jobs=1).cross_validation(
        df=frame, h=horizon, step_size=1, n_windows=origins.size, refit=False, level=[90]
    )
    alias = model.__name__
    # one row per (window, step): the cutoff is the last observed step, origin - 1
    np.testing.assert_array_equal(cv["cutoff"].to_numpy()[::horizon], origins - 1)
    result = baseline_forecasts(name, airline, n_train, origins, horizon, season=12)
    for key, ours in [("", result.forecasts), ("-lo-90", result.lower), ("-hi-90", result.upper)]:
        theirs = cv[alias + key].to_numpy().reshape(origins.size, horizon)
        np.testing.assert_allclose(ours[0, :, :, 0], theirs, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("name", ["auto_ets", "auto_theta"])
def test_the_forecast_from_the_first_origin_is_the_fitted_models_predict(airline, name):
    """forward() from n_train runs no new estimation: it is predict() of the training fit.

    AutoARIMA's case is checked in its direct-call test above (its search takes seconds).
    """
    make = getattr(statsforecast_models, {"auto_ets": "AutoETS", "auto_theta": "AutoTheta"}[name])
    n_train = 84
    result = baseline_forecasts(name, airline, n_train, np.array([n_train]), 12, season=12)
    fitted = make(season_length=12).fit(airline[:n_train])
    predicted = fitted.predict(h=12, level=[90])
    np.testing.assert_allclose(result.forecasts[0, 0, :, 0], predicted["mean"], rtol=1e-12)
    np.testing.assert_allclose(result.lower[0, 0, :, 0], np.asarray(predicted["lo-90"]), rtol=1e-9)
    np.testing.assert_allclose(result.upper[0, 0, :, 0], np.asarray(predicted["hi-90"]), rtol=1e-9)


def test_later_origins_keep_the_training_fit_instead_of_refitting(airline):
    """A refit on the data up to the origin would give other forecasts: the baseline does not."""
    origin = 132
    result = baseline_forecasts("auto_ets", airline, 96, np.array([origin]), 12, season=12)
    refit = statsforecast_models.AutoETS(season_length=12).forecast(y=airline[:origin], h=12)
    assert not np.allclose(result.forecasts[0, 0, :, 0], refit["mean"], rtol=1e-6)
    # ... while the training fit applied to the same data is exactly what it returned
    kept = statsforecast_models.AutoETS(season_length=12).fit(airline[:96])
    np.testing.assert_array_equal(
        result.forecasts[0, 0, :, 0], kept.forward(y=airline[:origin], h=12)["mean"]
    )


# --------------------------------------------------------------------------- NumPy references


def test_seasonal_naive_equals_the_value_one_season_back_in_numpy():
    season, horizon = 5, 12  # horizon beyond two seasons: the phases repeat
    y = seasonal_series(60, season, seed=1)
    targets = np.stack([y, -y[::-1]], axis=1)  # (60, 2)
    origins = np.arange(40, 60 - horizon + 1)
    result = baseline_forecasts("seasonal_naive", targets, 40, origins, horizon, season=season)
    expected = np.empty((origins.size, horizon, 2))
    for row, o in enumerate(origins):
        last_season = targets[o - season : o]  # (season, series): the season before o
        for k in range(horizon):
            expected[row, k] = last_season[k % season]
    np.testing.assert_array_equal(result.forecasts[0], expected)


def test_persistence_repeats_the_last_observed_value():
    targets = np.stack([np.arange(20.0), np.arange(20.0) ** 2], axis=1)  # (20, 2)
    origins = np.array([10, 13, 17])
    result = baseline_forecasts("persistence", targets, 10, origins, 3)
    for row, o in enumerate(origins):
        for k in range(3):
            np.testing.assert_array_equal(result.forecasts[0, row, k], targets[o - 1])
    assert result.lower is None and result.upper is None and result.level is None
    assert result.params == ("", "")


# --------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("name", STATISTICAL)
def test_intervals_contain_the_forecast_and_widen_with_the_level(airline, name):
    y, n_train, season = airline, 96, 12
    if name == "auto_arima":  # its seasonal search on the whole series takes seconds
        y, n_train, season = airline[:72], 48, None
    origins = n_train + np.array([0, 4, 12])
    wide = baseline_forecasts(name, y, n_train, origins, 12, season=season, level=0.95)
    narrow = baseline_forecasts(name, y, n_train, origins, 12, season=season, level=0.8)
    np.testing.assert_array_equal(wide.forecasts, narrow.forecasts)
    assert wide.level == 0.95 and narrow.level == 0.8
    assert np.all(wide.lower <= wide.forecasts) and np.all(wide.forecasts <= wide.upper)
    assert np.all(wide.lower < narrow.lower) and np.all(narrow.upper < wide.upper)
    assert "95% prediction intervals" in wide.description


def test_one_step_intervals_cover_known_noise_near_their_level():
    rng = np.random.default_rng(11)
    y = 10.0 + rng.normal(0.0, 1.0, 600)  # white noise: sigma 1 known
    origins = np.arange(300, 600)
    result = baseline_forecasts("auto_ets", y, 300, origins, 1, level=0.9)
    inside = (result.lower[0, :, 0, 0] <= y[origins]) & (y[origins] <= result.upper[0, :, 0, 0])
    assert 0.85 <= inside.mean() <= 0.95
    width = result.upper - result.lower
    np.testing.assert_allclose(width.mean(), 2 * 1.6449 * 1.0, rtol=0.1)


def test_no_level_means_no_intervals():
    y = seasonal_series(40, 4, seed=2)
    result = baseline_forecasts(
        "seasonal_naive", y, 30, np.array([30, 31]), 2, season=4, level=None
    )
    assert result.lower is None and result.upper is None and result.level is None


# --------------------------------------------------------------------------- seasons, warnings


def test_season_length_for_falls_back_and_says_why():
    assert season_length_for("auto_ets", None, 100) == (1, "")
    assert season_length_for("auto_arima", 12, 96) == (12, "")
    length, note = season_length_for("auto_ets", 48, 2700)
    assert length == 1 and "beyond season 24" in note
    length, note = season_length_for("auto_theta", 52, 100)
    assert length == 1 and "fewer than two seasons" in note
    length, note = season_length_for("auto_theta", 3, 100)
    assert length == 1 and "4 or more" in note
    assert season_length_for("auto_arima", 48, 2700) == (48, "")
    assert season_length_for("seasonal_naive", 52, 100) == (52, "")


def test_a_season_auto_ets_cannot_fit_is_dropped_and_the_description_says_so():
    y = seasonal_series(160, 30, seed=4)
    result = baseline_forecasts("auto_ets", y, 120, np.array([120, 130]), 5, season=30)
    assert result.season_length == 1
    assert "season 30 not used" in result.description
    _, mean, _, _ = direct(statsforecast_models.AutoETS(season_length=1), y, 120, [120, 130], 5)
    np.testing.assert_allclose(result.forecasts[0, :, :, 0], mean, rtol=1e-12)


def test_statsforecast_warnings_are_recorded_not_raised():
    """AutoTheta's seasonal test divides by zero on a constant series; pytest would raise it."""
    y = np.full(60, 3.0)
    result = baseline_forecasts("auto_theta", y, 40, np.array([40, 45]), 3, season=12)
    np.testing.assert_allclose(result.forecasts, 3.0)
    assert "statsforecast warned: series 0: RuntimeWarning" in result.description


# --------------------------------------------------------------------------- errors


def test_nan_before_an_origin_is_refused_and_nan_after_the_last_one_is_not():
    y = seasonal_series(50, 4, seed=5)
    y[20] = np.nan
    with pytest.raises(
        ValueError, match=r"1 NaN .*\(first at step 20, series 0\); fill them first"
    ):
        baseline_forecasts("auto_ets", y, 30, np.array([30, 35]), 2)
    y = seasonal_series(50, 4, seed=5)
    y[-1] = np.nan  # after the last origin: never used
    result = baseline_forecasts("persistence", y, 30, np.array([30, 35]), 2)
    assert np.all(np.isfinite(result.forecasts))


def test_seasonal_naive_without_a_season_names_the_fix():
    with pytest.raises(ValueError, match=r"seasonal_naive needs a season length.*pass --seasons"):
        baseline_forecasts("seasonal_naive", np.arange(30.0), 20, np.array([20]), 2)


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (np.array([19, 22]), r"in the test part \(>= n_train = 20\), got origin 19"),
        (np.array([20, 29]), r"origin 29 with horizon 2 reaches step 30, beyond the series"),
        (np.array([], dtype=np.int64), r"non-empty 1-D array"),
        (np.array([20.0]), r"integer steps"),
    ],
)
def test_origins_outside_the_test_part_are_refused(origins, message):
    with pytest.raises(ValueError, match=message):
        baseline_forecasts("persistence", np.arange(30.0), 20, origins, 2)


def test_an_unknown_name_and_a_failing_fit_are_value_errors():
    with pytest.raises(ValueError, match=r"name must be one of"):
        baseline_forecasts("ets", np.arange(30.0), 20, np.array([20]), 2)
    assert "ets" not in BASELINES
    with pytest.raises(
        ValueError, match=r"season must be a positive integer, got 0; pass e.g. --seasons 12"
    ):
        baseline_forecasts("persistence", np.arange(30.0), 20, np.array([20]), 2, season=0)
    with pytest.raises(ValueError, match=r"level must be a fraction strictly between 0 and 1"):
        baseline_forecasts("auto_ets", np.arange(30.0), 20, np.array([20]), 2, level=90)
    with pytest.raises(ValueError, match=r"AutoETS \(statsforecast\) failed fitting series 0"):
        baseline_forecasts("auto_ets", np.arange(1.0, 11.0), 5, np.array([5]), 2)
