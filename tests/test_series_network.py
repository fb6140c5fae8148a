import dataclasses

import jax
import numpy as np
import pytest

from lstmlab.core.model import MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.forecaster import Forecaster
from lstmlab.pipeline import Calibration, Recipe

WINDOW = 3


def _network(horizon=1, residuals=None):
    """A small MLP network around random weights (nothing trained), with a given calibration."""
    config = MLPConfig(hidden=(5,), timesteps=WINDOW, features=1, outputs=horizon)
    scaler = fit_scaler(np.random.default_rng(0).normal(10.0, 4.0, (50, 1)), "standard", ("c0",))
    recipe = Recipe(kind="mlp", window=WINDOW, columns=("c0",), freq="h", horizon=horizon)
    params = init_params(config, 0)
    forecaster = Forecaster.from_params(config, params, recipe=recipe, scaler=scaler)
    network = forecaster.network
    if residuals is not None:
        calibration = Calibration(
            ranges={}, default_range=None, residuals={"a": residuals}, pooled=residuals
        )
        network = dataclasses.replace(network, calibration=calibration)
    return forecaster, network


def test_the_network_is_immutable_and_a_fit_replaces_it():
    forecaster, network = _network()
    with pytest.raises(dataclasses.FrozenInstanceError):
        network.seeds = 2
    before = [np.array(leaf) for leaf in jax.tree.leaves(network.params)]
    forecaster.fit(np.sin(np.arange(60) / 3.0) * 10.0 + 20.0)
    assert forecaster.network is not network  # a new network; the old one is as it was
    for leaf, kept in zip(jax.tree.leaves(network.params), before, strict=True):
        np.testing.assert_array_equal(leaf, kept)
    trained = jax.tree.leaves(forecaster.network.params)
    assert any(not np.array_equal(a, b) for a, b in zip(trained, before, strict=True))


def test_halfwidths_are_the_conformal_rank_of_the_residuals_in_the_series_units():
    rng = np.random.default_rng(3)
    residuals = rng.normal(0.0, 0.5, size=(39, 1, 1))  # (origins, horizon, columns), scaled
    _, network = _network(residuals=residuals)
    scale = 2.5
    scaler = dataclasses.replace(network.scaler, scale=np.array([scale]))
    state = dataclasses.replace(network.fresh_state(), scaler=scaler)
    half = network.halfwidths("a", 90, 1, state)
    # the reference: the ceil((n + 1) * 0.9)-th smallest |residual| of the 39, times the scale
    k = int(np.ceil((39 + 1) * 0.9))
    want = np.sort(np.abs(residuals[:, 0, 0]))[k - 1] * scale
    assert half.shape == (1, 1)
    np.testing.assert_allclose(half[0, 0], want, rtol=1e-12)
    # a level the residuals cannot back is infinite, not narrow
    assert np.isinf(network.halfwidths("a", 0.99, 1, state)).all()
    with pytest.raises(ValueError, match="halfwidths takes one level"):
        network.halfwidths("a", [80, 95], 1, state)


def test_a_series_first_seen_after_fit_gets_every_series_residuals_together():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.0, 0.2, (11, 2, 1)), rng.normal(0.0, 1.0, (14, 2, 1))
    _, network = _network()
    calibration = Calibration(ranges={}, default_range=None, residuals={"a": a, "b": b})
    network = dataclasses.replace(network, calibration=calibration)
    state = dataclasses.replace(network.fresh_state(), scaler=None)
    # the reference: both series' 25 residuals at each step, their conformal rank by hand
    k = int(np.ceil((25 + 1) * 0.8))
    both = np.abs(np.concatenate([a, b]))
    want = np.sort(both, axis=0)[k - 1]  # (steps, columns)
    np.testing.assert_allclose(network.halfwidths("new", 80, 2, state), want, rtol=1e-12)
    np.testing.assert_allclose(  # a known series keeps its own
        network.halfwidths("a", 80, 2, state),
        np.sort(np.abs(a), axis=0)[int(np.ceil((11 + 1) * 0.8)) - 1],
        rtol=1e-12,
    )
    assert calibration.pooled is None  # concatenated on demand, kept for the next
    assert calibration.pooled_residuals() is calibration.pooled_residuals()


def test_the_one_step_errors_seen_since_fit_slide_into_the_residuals():
    rng = np.random.default_rng(4)
    residuals = rng.normal(0.0, 0.5, size=(19, 3, 1))  # (origins, steps, columns), scaled
    residuals[2, 0, 0] = np.nan  # a missing residual is left out: 18 at the first step
    _, network = _network(residuals=residuals)
    state = network.fresh_state()
    scale = abs(float(state.scaler.scale[0]))
    before = network.halfwidths("a", 80, 3, state)
    errors = rng.normal(0.0, 2.0, size=(25, 1)).astype(np.float32)  # wider than the residuals
    none_seen = dataclasses.replace(state, errors=errors[:0])
    np.testing.assert_array_equal(network.halfwidths("a", 80, 3, none_seen), before)
    finite = residuals[~np.isnan(residuals[:, 0, 0]), 0, 0]
    for seen in (1, 5, 17, 18, 25):
        after = network.halfwidths("a", 80, 3, dataclasses.replace(state, errors=errors[:seen]))
        # the 18 latest of the residuals followed by the errors: the 16th smallest |value|
        # (ceil(19 * 0.8)), in the series' units
        latest = np.concatenate([finite, errors[:seen, 0]])[-18:]
        np.testing.assert_allclose(after[0, 0], np.sort(np.abs(latest))[15] * scale, rtol=1e-6)
        # every further step is scaled as the first
        np.testing.assert_allclose(after[1:], before[1:] * after[0] / before[0], rtol=1e-12)
    assert after[0, 0] > 2 * before[0, 0]  # the errors' spread, not the residuals'
    # too few residuals for the level: infinite, whatever errors were seen
    seen = dataclasses.replace(state, errors=errors)
    assert np.isinf(network.halfwidths("a", 0.99, 3, seen)).all()


def test_a_direct_head_forecasts_at_most_its_horizon():
    _, network = _network(horizon=3)
    assert network.check_horizon(3) == 3
    with pytest.raises(ValueError, match=r"up to 3 steps at once .* pass horizon <= 3"):
        network.check_horizon(4)


def test_a_series_without_a_window_yet_gets_no_forecast_and_runs_no_rollout():
    forecaster, network = _network()
    fresh = network.fresh_state()
    assert fresh.seen == 0 and fresh.prediction is None
    forecasts, flagged, capacity = network.forecasts({"new": fresh}, 4, 8)
    assert forecasts["new"].values is None and flagged == {} and capacity == 8
    # once it has read a window it forecasts, as the forecaster's own observe does
    readings = network.check_readings("s", [9.0, 10.0, 11.0], None, None)
    state = network.read({"s": network.prepare("s", fresh, readings, 4)}, 16)["s"]
    forecasts, _, _ = network.forecasts({"s": state}, 4, 8)
    observed = forecaster.observe("s", [9.0, 10.0, 11.0], horizon=4, new_series=True)
    np.testing.assert_array_equal(forecasts["s"].values, observed.values)
