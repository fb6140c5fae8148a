"""Tests of lstmlab.experiments.compare (its report: tests/test_documents.py)."""

import dataclasses
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lstmlab import scoring
from lstmlab.core.model import MLPConfig, from_keras_weights, init_params
from lstmlab.core.train import EarlyStopping, Plateau, TrainConfig, fit, init_train_states
from lstmlab.data.layouts import MAX_BATCHES_PER_EPOCH, make_sample_batches, make_stream_batches
from lstmlab.experiments import compare
from lstmlab.experiments.compare import CompareConfig, ModelSpec
from lstmlab.report.documents import write_compare_report


def random_walk(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))


def tiny_models(
    epochs: int = 2, window: int = 2, norm: str = "difference"
) -> tuple[ModelSpec, ...]:
    # Keras' Adam learning rate, as these tests were calibrated with.
    common = {"window": window, "epochs": epochs, "learning_rate": 1e-3, "norm": norm}
    return (
        ModelSpec(model="mlp", units=(4,), batch_size=4, **common),
        ModelSpec(model="stateless", units=(3,), batch_size=4, **common),
        ModelSpec(model="stateful", units=(3,), batch_size=2, **common),
        ModelSpec(model="stacked", units=(3, 3), batch_size=2, **common),
    )


def tiny_mlp(**changes) -> ModelSpec:
    spec = ModelSpec(model="mlp", units=(4,), window=3, epochs=3, batch_size=8, norm="none")
    return dataclasses.replace(spec, **changes)


def airline_values(data_dir) -> np.ndarray:
    return pd.read_csv(data_dir / "airline_passengers.csv")["Passengers"].to_numpy(np.float64)


# ------------------------------------------------------------------------------ split, scaling


def test_scaler_is_fitted_on_the_training_part_only():
    values = random_walk(60)
    config = CompareConfig(models=(), split=0.5)
    data = compare.prepare_data(config, values)
    assert data.n_train == 30
    inputs, scaler = data.scaling()
    assert scaler.offset == (values[:30].min(),)
    assert scaler.scale == (values[:30].max() - values[:30].min(),)
    # Changing the test part changes nothing that the training part is scaled with.
    leaked = values.copy()
    leaked[30:] *= 10.0
    other_inputs, other_scaler = compare.prepare_data(config, leaked).scaling()
    assert other_scaler == scaler
    np.testing.assert_array_equal(other_inputs[:30], inputs[:30])
    assert not np.array_equal(other_inputs[30:], inputs[30:])


def test_scale_on_whole_is_the_published_leak():
    values = random_walk(60)
    config = CompareConfig(models=(), split=0.5, scale_on="whole")
    _, scaler = compare.prepare_data(config, values).scaling()
    assert scaler.offset == (values.min(),)
    assert scaler.scale == (values.max() - values.min(),)


def test_features_are_scaled_on_the_training_part_and_follow_the_target():
    values = random_walk(40)
    features = np.stack([np.arange(40.0), np.sin(np.arange(40.0))], axis=1)
    inputs, _ = compare.prepare_data(
        CompareConfig(models=(), split=0.5), values, features
    ).scaling()
    assert inputs.shape == (40, 1, 3)
    np.testing.assert_allclose(inputs[:20, 0, 1].min(), 0.0)
    np.testing.assert_allclose(inputs[:20, 0, 1].max(), 1.0)
    assert inputs[39, 0, 1] == pytest.approx(39 / 19)  # beyond 1: fitted on train only


def test_split_uses_int_of_the_fraction_and_test_size_overrides_it():
    data = compare.prepare_data(CompareConfig(models=()), random_walk(144))
    assert (data.n_train, data.fold.n_test) == (int(144 * 0.67), 144 - int(144 * 0.67))
    data = compare.prepare_data(CompareConfig(models=(), test_size=10), random_walk(144))
    assert (data.n_train, data.fold.n_test) == (134, 10)


def create_dataset(dataset: np.ndarray, look_back: int) -> tuple[np.ndarray, np.ndarray]:
    """The published scripts' function, verbatim in NumPy."""
    x, y = [], []
    for i in range(len(dataset) - look_back - 1):
        x.append(dataset[i : i + look_back])
        y.append(dataset[i + look_back])
    return np.array(x), np.array(y)


def test_classic_windows_match_create_dataset():
    values = random_walk(144)
    config = CompareConfig(
        models=tiny_models(window=3, norm="none"), classic_windows=True, validation=0.0
    )
    data = compare.prepare_data(config, values)
    train, test = values[: data.n_train], values[data.n_train :]
    _, test_y = create_dataset(test, 3)
    np.testing.assert_array_equal(data.actual(data.origins, 1)[:, 0, 0], test_y)
    train_x, train_y = create_dataset(train, 3)
    inputs, scaler = data.scaling()
    targets = compare._training_targets(data.fold, config, 3, data.n_train)
    x, y = compare._samples(inputs, targets, 3, config.outputs)
    scaled = scaler.transform(train[:, None])[:, 0]
    np.testing.assert_allclose(y[:, 0, 0], create_dataset(scaled, 3)[1], rtol=1e-6)
    np.testing.assert_allclose(x[:, 0, :, 0], create_dataset(scaled, 3)[0], rtol=1e-6)
    assert len(x) == len(train_x)


def test_a_test_size_beyond_the_series_is_said_in_words():
    config = CompareConfig(models=tiny_models(window=4, norm="none"), test_size=100_000)
    message = (
        "the series has 64 steps and --test-size 100000 leaves 0 of them for training; the test "
        "part must leave at least {m} steps for training (window 4, horizon 1, and the "
        "validation tail); pass a --test-size of at most {top}, or a longer series"
    )
    # the fewest training steps, found independently: the smallest part whose fit part (before
    # the validation tail, at least a horizon or a fifth of the part) holds window + lags + 1
    needed = 4 + config.lag_span + config.outputs + (1 if config.classic_windows else 0)
    fewest = next(
        n for n in range(1, 64) if n - max(config.horizon, round(config.validation * n)) >= needed
    )
    with pytest.raises(ValueError) as raised:
        compare.make_folds(config, 64, 4)
    assert str(raised.value) == message.format(m=fewest, top=64 - fewest)
    # the bound is exact: the largest test part it names is accepted, one more is refused
    compare.make_folds(dataclasses.replace(config, test_size=64 - fewest), 64, 4)
    with pytest.raises(ValueError, match=f"leaves {fewest - 1} of them for training"):
        compare.make_folds(dataclasses.replace(config, test_size=64 - fewest + 1), 64, 4)


def test_prepare_data_rejects_a_series_too_short():
    with pytest.raises(
        ValueError,
        match=r"the series has 6 steps: fold 1 of 1 trains on 4 \(0 of them the validation "
        r"tail\) and tests on 2, too few for window 4 .*pass a longer series",
    ):
        compare.prepare_data(
            CompareConfig(models=tiny_models(window=4, norm="none"), validation=0.0), np.ones(6)
        )


def test_prepare_data_rejects_a_season_before_the_start():
    with pytest.raises(ValueError, match="season 50 reaches before the start of the series"):
        compare.prepare_data(CompareConfig(models=(), seasons=(50,)), random_walk(40))


def test_prepare_data_rejects_infinite_values_and_a_training_part_without_values():
    values = random_walk(40)
    values[3] = np.inf
    with pytest.raises(ValueError, match=r"targets hold infinite values; remove or mark them"):
        compare.prepare_data(CompareConfig(models=()), values)
    empty = random_walk(40)
    empty[:26] = np.nan
    with pytest.raises(ValueError, match="no value in the training part|training part"):
        compare.prepare_data(CompareConfig(models=()), empty)


# ------------------------------------------------------------------------------ baselines


def test_persistence_rmse_equals_a_hand_computation():
    values = random_walk(50, seed=3)
    config = CompareConfig(models=(), baselines=("persistence",), seasons=())
    result = compare.run(config, values, quiet=True)
    n_train = int(50 * 0.67)
    errors = values[n_train:] - values[n_train - 1 : -1]
    persistence = result.outcome("persistence")
    assert persistence.mean("rmse") == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert persistence.mean("mae") == pytest.approx(np.mean(np.abs(errors)))
    assert persistence.mean("mape") == pytest.approx(
        100 * np.mean(np.abs(errors) / np.abs(values[n_train:]))
    )
    # MASE: the mean absolute error over the naive in-sample error of the training part
    scale = np.mean(np.abs(np.diff(values[:n_train])))
    assert persistence.mean("mase") == pytest.approx(np.mean(np.abs(errors)) / scale)


def test_persistence_per_step_over_a_horizon_by_hand():
    values = random_walk(40, seed=4)
    config = CompareConfig(models=(), baselines=("persistence",), seasons=(), horizon=3)
    result = compare.run(config, values, quiet=True)
    n_train = int(40 * 0.67)
    origins = range(n_train, 40 - 3 + 1)
    assert result.origins.tolist() == list(origins)
    for step in range(3):
        errors = [values[o + step] - values[o - 1] for o in origins]
        expected = np.sqrt(np.mean(np.square(errors)))
        assert result.outcome("persistence").metrics["rmse_per_step"][0, step] == pytest.approx(
            expected
        )


def test_seasonal_naive_by_hand_beyond_one_season():
    values = random_walk(60, seed=5)
    season, horizon = 4, 6
    config = CompareConfig(
        models=(), baselines=("persistence", "seasonal_naive"), seasons=(season,), horizon=horizon
    )
    result = compare.run(config, values, quiet=True)
    forecasts = result.outcome("seasonal_naive").forecasts[0, :, :, 0]
    for row, origin in enumerate(result.origins):
        for step in range(horizon):
            back = season if step < season else 2 * season
            assert forecasts[row, step] == values[origin + step - back]


def test_metrics_by_hand_and_mape_skips_zero_actuals():
    forecasts = np.array([1.0, 3.0, 5.0]).reshape(1, 3, 1, 1)
    actual = np.array([2.0, 0.0, 4.0]).reshape(3, 1, 1)
    scale = np.array([[2.0], [2.0], [0.5]])  # (origins, series): each origin its fold's scale
    metrics = compare._metrics(forecasts, actual, scale)
    assert metrics["rmse"][0] == pytest.approx(np.sqrt((1 + 9 + 1) / 3))
    assert metrics["mae"][0] == pytest.approx(5 / 3)
    assert metrics["mape"][0] == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert metrics["mase"][0] == pytest.approx((1 / 2 + 3 / 2 + 1 / 0.5) / 3)


def test_report_notes_say_how_many_zero_actuals_mape_leaves_out():
    values = np.tile([0.0, 1.0, 3.0, 2.0], 10)  # test part: 14 steps, 3 or 4 of them zeros
    config = CompareConfig(models=(), seeds=1, split=0.6, baselines=("persistence",))
    result = compare.run(config, values, quiet=True)
    zeros = int(np.count_nonzero(result.actual == 0))
    assert zeros > 0
    assert (
        f"MAPE leaves out the {zeros} forecast step(s) whose actual value is 0 (of "
        f"{result.actual.size}); RMSE and MAE include them"
    ) in result.notes
    # The training part repeats its detected season exactly: MASE is undefined (NaN), and the
    # comparison still runs (it divided by the zero scale before).
    assert result.seasons.lengths == (4,)
    assert np.isnan(result.outcome("persistence").mean("mase"))
    plain = compare.run(config, values + 1.0, quiet=True)
    assert not any("MAPE leaves out" in note for note in plain.notes)


def test_a_statsforecast_baseline_in_compare_equals_a_direct_statsforecast_call(data_dir):
    from statsforecast.models import AutoETS

    y = airline_values(data_dir)
    horizon = 3
    config = CompareConfig(
        models=(), baselines=("persistence", "auto_ets", "seasonal_naive"), horizon=horizon
    )
    index = pd.date_range("1949-01-01", periods=len(y), freq="MS")
    result = compare.run(config, pd.Series(y, index=index, name="Passengers"), quiet=True)
    assert result.seasons.lengths == (12,)  # from the monthly frequency
    n_train = int(len(y) * 0.67)
    assert result.n_train == n_train
    assert result.origins.tolist() == list(range(n_train, len(y) - horizon + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoETS(season_length=12).fit(y[:n_train])
        direct = [model.forward(y=y[:o], h=horizon, level=[90]) for o in result.origins]
    ets = result.outcome("auto_ets")
    np.testing.assert_allclose(ets.forecasts[0, :, :, 0], [d["mean"] for d in direct], rtol=1e-9)
    np.testing.assert_allclose(ets.lower[0, :, :, 0], [d["lo-90"] for d in direct], rtol=1e-9)
    np.testing.assert_allclose(ets.upper[0, :, :, 0], [d["hi-90"] for d in direct], rtol=1e-9)
    actual = np.stack([y[o : o + horizon] for o in result.origins])
    errors = ets.forecasts[0, :, :, 0] - actual
    assert ets.mean("rmse") == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-12)
    inside = (actual >= ets.lower[0, :, :, 0]) & (actual <= ets.upper[0, :, :, 0])
    assert ets.coverage == pytest.approx(np.mean(inside))
    # The seasonal naive forecast: the value one season before each step.
    naive = np.stack([y[o - 12 : o - 12 + horizon] for o in result.origins])
    np.testing.assert_array_equal(result.outcome("seasonal_naive").forecasts[0, :, :, 0], naive)


# ------------------------------------------------------------------------------ missing values


def test_imputation_uses_no_test_value_and_missing_actuals_are_not_scored():
    values = random_walk(60, seed=8)
    n_train = 30
    values[n_train - 2 : n_train] = np.nan  # a gap at the end of the training part
    values[40] = np.nan  # a missing actual value in the test part
    config = CompareConfig(
        models=(tiny_mlp(),), seeds=2, split=0.5, baselines=("persistence",), seasons=()
    )
    scaled_up = values.copy()
    scaled_up[n_train:] *= 1000.0  # NaN stays NaN
    data = compare.prepare_data(config, values)
    other = compare.prepare_data(config, scaled_up)
    assert data.n_train == n_train
    np.testing.assert_array_equal(data.filled[:n_train], other.filled[:n_train])
    # the gap holds the last training value, not a value interpolated towards the test part
    np.testing.assert_array_equal(data.filled[n_train - 2 : n_train, 0], values[n_train - 3])
    # ...which is what filling the whole series before the split (the old leak) gives not:
    whole = pd.Series(values).interpolate().to_numpy()
    assert not np.allclose(whole[:n_train], data.filled[:n_train, 0])
    assert data.scaling()[1] == other.scaling()[1]

    result = compare.run(config, values, quiet=True)
    changed = compare.run(config, scaled_up, quiet=True)
    # The first origin's forecasts (and the training) see the training part only. (Not the
    # seed median: the later forecasts of the scaled-up run leave the plausible range, so
    # every seed is flagged there, as it should be.)
    assert changed.outcome("mlp").flags.flagged.all()
    for name in ("persistence", "mlp"):
        np.testing.assert_array_equal(
            result.outcome(name).forecasts[:, 0], changed.outcome(name).forecasts[:, 0]
        )
    # The missing actual is left out of the scores: a NumPy reference over the observed points,
    # persistence's inputs filled forward (causally) in the test part.
    previous = pd.Series(values).ffill().to_numpy()
    origins = np.arange(n_train, 60)
    observed = ~np.isnan(values[origins])
    errors = values[origins][observed] - previous[origins - 1][observed]
    persistence = result.outcome("persistence")
    assert persistence.mean("rmse") == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-12)
    assert int(persistence.metrics["n_missing"]) == 1
    forecasts = result.outcome("mlp").forecasts[:, observed, 0, 0]  # (seeds, observed)
    expected = np.sqrt(np.mean((forecasts - values[origins][observed]) ** 2, axis=1))
    np.testing.assert_allclose(result.outcome("mlp").metrics["rmse"], expected, rtol=1e-12)
    assert any("1 forecast step(s) have no actual value" in note for note in result.notes)


# ------------------------------------------------------------------------------ forecasting


def test_recursive_forecast_feeds_predictions_back():
    # An MLP that extrapolates a line: y = 2 * x[-1] - x[-2] (ReLU passes positive inputs).
    config = MLPConfig(hidden=(2,), timesteps=2, features=1, outputs=1)
    weights = [np.eye(2), np.zeros(2), np.array([[-1.0], [2.0]]), np.zeros(1)]
    params = from_keras_weights(config, weights, init_params(config, 0))
    stacked = jax.tree.map(lambda a: a[None], params)  # one seed
    inputs = np.linspace(0.1, 0.5, 5, dtype=np.float32)  # (time,) a line in the scaled units
    out = compare._forecast_scaled(
        config,
        stacked,
        inputs[:, None, None],  # (time, series, features)
        np.array([3]),
        window=2,
        horizon=4,
        strategy="recursive",
    )
    # origin 3: window (0.2, 0.3) -> 0.4, then 0.5, 0.6, 0.7 from its own predictions
    np.testing.assert_allclose(out[0, 0, :, 0], [0.4, 0.5, 0.6, 0.7], atol=1e-6)


@pytest.mark.slow
def test_recursive_first_step_equals_the_one_step_forecast():
    values = random_walk(80, seed=6)
    base = CompareConfig(
        models=tiny_models(epochs=3)[:3],
        seeds=2,
        strategy="recursive",
        validation=0.0,
        baselines=("persistence",),
        seasons=(),
    )
    one = compare.run(base, values, quiet=True)
    three = compare.run(dataclasses.replace(base, horizon=3), values, quiet=True)
    shared = len(three.origins)
    assert np.array_equal(one.origins[:shared], three.origins)
    for name in ("mlp", "stateless", "stateful"):
        np.testing.assert_allclose(
            three.outcome(name).forecasts[:, :, 0, :],
            one.outcome(name).forecasts[:, :shared, 0, :],
            rtol=1e-5,
        )
        # and the later steps differ from repeating the first (the predictions move on)
        assert not np.allclose(
            three.outcome(name).forecasts[:, :, 2], three.outcome(name).forecasts[:, :, 0]
        )


@pytest.mark.parametrize(("strategy", "classic"), [("recursive", False), ("direct", True)])
def test_no_forecast_sees_the_values_from_its_origin_on(strategy, classic):
    # The warm start reads the observed series up to each origin only: changing every value
    # from origin k on leaves the forecasts of origins 0..k (and the training) untouched.
    values = random_walk(70, seed=3)
    config = CompareConfig(
        models=tiny_models(epochs=1)[2:3],  # the stateful model's warm start; baselines
        baselines=("persistence", "seasonal_naive", "auto_ets"),
        seeds=1,
        seasons=(5,),
        horizon=2,
        strategy=strategy,
        classic_windows=classic,
    )
    base = compare.run(config, values, quiet=True)
    k = 4
    changed = values.copy()
    # a shift small enough to keep every forecast plausible (a flagged seed would empty the
    # seed median everywhere, which is the sanity check's business, not a look-ahead)
    changed[int(base.origins[k]) :] += 3.0
    other = compare.run(config, changed, quiet=True)
    assert [o.name for o in base.outcomes] == [o.name for o in other.outcomes]
    for outcome in base.outcomes:
        later = other.outcome(outcome.name)
        np.testing.assert_array_equal(later.forecasts[:, : k + 1], outcome.forecasts[:, : k + 1])
        assert not np.array_equal(later.forecasts[:, k + 1 :], outcome.forecasts[:, k + 1 :])
        if outcome.lower is not None:
            np.testing.assert_array_equal(later.lower[:, : k + 1], outcome.lower[:, : k + 1])
            np.testing.assert_array_equal(later.upper[:, : k + 1], outcome.upper[:, : k + 1])


def long_memory_series(n: int = 400, seed: int = 0) -> np.ndarray:
    """s[t] = u[t] + 0.9 s[t-2]: the next value depends on the value before the window (of 1)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, n)
    series = np.zeros(n)
    for t in range(n):
        series[t] = noise[t] + (0.9 * series[t - 2] if t >= 2 else 0.0)
    return series


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
@pytest.mark.parametrize("kind", ["stateful", "stacked", "stateless", "mlp"])
def test_compare_and_the_forecaster_forecast_one_model_alike(kind, strategy):
    # The same network and weights (3 seeds): compare's rolling-origin forecasts, every origin
    # warm started from the start of the series, equal the Forecaster's after it observes
    # the series up to each origin. The forecast paths of the two are one model's.
    from lstmlab.core.model import build_network
    from lstmlab.forecaster import Forecaster, Recipe

    window, horizon = 4, 3
    outputs = horizon if strategy == "direct" else 1
    units = (5, 3) if kind == "stacked" else (5,)
    config = build_network(
        kind, units=units, window=window, features=1, outputs=outputs, norm="difference"
    )
    params = jax.tree.map(
        lambda *seeds: np.stack(seeds), *[init_params(config, s) for s in range(3)]
    )
    series = np.random.default_rng(0).uniform(0.0, 1.0, (40, 1)).astype(np.float32)
    origins = np.array([window, 11, 17, 30])
    theirs = compare._forecast_scaled(
        config,
        params,
        series[:, None, :],
        origins,
        window=window,
        horizon=horizon,
        strategy=strategy,
    )  # (seeds, origins, horizon, series)
    recipe = Recipe(kind=kind, window=window, columns=("value",), horizon=outputs)
    model = Forecaster.from_params(config, params, recipe=recipe, scaler=None, seeds=3)
    for row, origin in enumerate(origins):
        state = model.advance("s", series[:origin], state=model.fresh_state())
        ours = model.forecast_state("s", state, horizon).values[:, 0]  # the seed median
        np.testing.assert_allclose(
            ours, np.median(theirs[:, row, :, 0], axis=0), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize(
    "kind, strategy, norm",
    [
        ("mlp", "direct", "difference"),
        ("stateless", "recursive", "difference"),
        ("stateful", "direct", "difference"),
        ("stacked", "recursive", "difference"),
        ("mlp", "direct", "auto"),
    ],
)
def test_compare_trains_the_forecasters_model_of_each_kind(kind, strategy, norm):
    # compare's model of a fold and a Forecaster fitted on that fold's training part, with the
    # same settings and seeds, are one model: the same training losses, the same refit, and
    # the same forecasts at every test origin (the Forecaster reading the series up to each).
    # With norm="auto" both keep the same norm: the same validation forecasts, scored in
    # other units (original and scaled), rank the norms alike.
    from lstmlab.forecaster import Forecaster

    values = random_walk(90, seed=5)
    window, horizon, epochs, seeds = 4, 2, 6, 2
    spec = ModelSpec(model=kind, window=window, epochs=epochs, norm=norm)
    config = CompareConfig(
        models=(spec,),
        seeds=seeds,
        horizon=horizon,
        strategy=strategy,
        baselines=("persistence",),
        seasons=(),
    )
    result = compare.run(config, values, quiet=True)
    theirs = result.outcome(kind)
    model = Forecaster(
        model=kind,
        window=window,
        epochs=epochs,
        norm=norm,
        seeds=seeds,
        horizon=horizon if strategy == "direct" else 1,
        quiet=True,
    ).fit(values[: result.n_train])
    assert (model.metrics["norm"],) == theirs.norm
    np.testing.assert_allclose(model.metrics["final_loss_per_seed"], theirs.final_loss, rtol=1e-6)
    assert model.metrics["best_epoch"] == theirs.best_epoch.tolist()  # the validation losses
    assert f"for {model.metrics['refit_epochs']} epochs" in theirs.layout
    (series_id,) = model.series_ids
    origins = result.folds[0].origins
    for row in range(0, len(origins), 7):
        state = model.advance(series_id, values[: origins[row], None], state=model.fresh_state())
        ours = model.forecast_state(series_id, state, horizon).values[:, 0]  # the seed median
        median = np.median(theirs.forecasts[:, row, :, 0], axis=0)
        np.testing.assert_allclose(ours, median, rtol=1e-5)


@pytest.mark.slow
def test_stateful_model_sees_its_stream_in_order_and_beats_the_stateless_one():
    values = long_memory_series()
    common = {
        "units": (20,),
        "window": 1,
        "epochs": 30,
        "batch_size": 1,
        "norm": "none",
        "grow_batches": False,  # one stream, read in order, whatever the length
    }
    models = (
        ModelSpec(model="stateless", shuffle=False, learning_rate=1e-3, **common),
        ModelSpec(model="stateful", learning_rate=1e-3, **common),
    )
    config = CompareConfig(
        models=models,
        seeds=2,
        split=0.75,
        validation=0.0,
        baselines=("persistence",),
        seasons=(),
    )
    result = compare.run(config, values, quiet=True)
    stateless = result.outcome("stateless").mean("rmse")
    stateful = result.outcome("stateful").mean("rmse")
    # A window of 1 hides s[t-2] from the stateless model: it cannot beat the spread of the
    # series; the stateful model keeps it in its state.
    assert stateless > 0.9 * np.std(values[result.n_train :])
    assert stateful < 0.7 * stateless
    assert np.all(result.outcome("stateful").metrics["rmse"] < stateless)
    # The layout says which batch size the stateful model used.
    assert "batch size 1" in result.outcome("stateful").layout


def test_several_series_are_streams_of_one_global_model():
    rng = np.random.default_rng(7)
    values = np.stack([random_walk(60, 1), random_walk(60, 2) * 3, rng.uniform(5, 6, 60)], 1)
    models = (tiny_models(epochs=1)[2],)  # stateful, 2 streams per series
    config = CompareConfig(
        models=models, seeds=1, validation=0.0, baselines=("persistence",), seasons=()
    )
    result = compare.run(config, values, quiet=True)
    outcome = result.outcome("stateful")
    assert "2 stream(s) per series x 3 series = batch size 6" in outcome.layout
    assert outcome.forecasts.shape == (1, len(result.origins), 1, 3)
    # each series is scaled back with its own scaler: forecasts sit in each series' range
    for j in range(3):
        low, high = values[:, j].min(), values[:, j].max()
        span = high - low
        assert np.all(outcome.forecasts[..., j] > low - span)
        assert np.all(outcome.forecasts[..., j] < high + span)


def test_seeds_differ_and_runs_are_reproducible():
    values = random_walk(60)
    config = CompareConfig(
        models=tiny_models(epochs=2)[:1],
        seeds=3,
        validation=0.0,
        baselines=("persistence",),
        seasons=(),
    )
    first = compare.run(config, values, quiet=True).outcome("mlp")
    again = compare.run(config, values, quiet=True).outcome("mlp")
    np.testing.assert_array_equal(first.forecasts, again.forecasts)
    assert len(np.unique(first.metrics["rmse"])) == 3


# ------------------------------------------------------------------------------ training


def driver_run(spec, model_config, batches, seeds, reset, early=None, patience=20):
    """The driver with the documented seeding of compare and the Forecaster: seed s draws its
    parameters and its shuffling from key(s)."""
    x_batches, y_batches, validation = batches
    train_config = TrainConfig(
        epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        shuffle=spec.shuffle,
        reset=reset,
        seed=0,
        early_stopping=EarlyStopping(patience=patience) if early else None,
        plateau=Plateau(patience=max(1, patience // 2)) if early else None,
    )
    keys = [jax.random.key(seed) for seed in range(seeds)]
    params = [init_params(model_config, k) for k in keys]
    states = init_train_states(model_config, train_config, params, x_batches.shape[1], keys=keys)
    return fit(
        model_config,
        train_config,
        states,
        x_batches,
        y_batches,
        validation=validation,
        validation_state="carry" if spec.batch_size == 1 else "zeros",
    )[1]


def test_training_gives_the_losses_of_the_driver_called_directly():
    values = random_walk(60, seed=2)
    config = CompareConfig(
        models=tiny_models(epochs=3, norm="none"),
        seeds=3,
        horizon=2,
        validation=0.0,
        baselines=("persistence",),
        seasons=(),
    )
    result = compare.run(config, values, quiet=True)
    data = compare.prepare_data(result.config, values, fold=result.folds[0])
    for spec in result.config.models:
        outcome = result.outcome(spec.name)
        model_config = spec.model_config(data.num_features, config.outputs)
        inputs, _ = data.scaling(spec.scaler)
        targets = compare._training_targets(data.fold, config, spec.window, data.n_train)
        x, y = compare._samples(inputs, targets, spec.window, config.outputs)
        batches, _ = compare._batches(spec, x, y, None)
        laid = (batches.x_batches, batches.y_batches, None)
        args = (spec, model_config, laid, config.seeds)
        losses = driver_run(*args, reset="epoch").loss
        assert outcome.losses.shape == (spec.epochs, config.seeds)
        np.testing.assert_array_equal(outcome.losses, losses)
        np.testing.assert_array_equal(outcome.final_loss, losses[-1])
        if spec.stateful:
            # The epoch-end reset reaches the driver: without it the losses differ.
            assert not np.array_equal(driver_run(*args, reset="never").loss, losses)


def test_early_stopping_in_compare_is_the_driver_with_the_same_validation_batches():
    values = random_walk(80, seed=9)
    patience = 2
    models = (
        ModelSpec(model="mlp", units=(4,), window=3, epochs=40, batch_size=4, norm="none"),
        ModelSpec(model="stateful", units=(3,), window=3, epochs=40, batch_size=2, norm="none"),
    )
    config = CompareConfig(
        models=models,
        seeds=2,
        validation=0.25,
        patience=patience,
        baselines=("persistence",),
        seasons=(),
    )
    result = compare.run(config, values, quiet=True)
    data = compare.prepare_data(result.config, values, fold=result.folds[0])
    fold = data.fold
    assert (fold.n_train, fold.n_fit) == (53, 53 - 13)
    inputs, _ = data.scaling()
    for spec in result.config.models:
        # The training samples end before the validation tail; validation samples fill it.
        first_targets = np.arange(spec.window, fold.n_fit)
        val_targets = np.arange(fold.n_fit, fold.n_train)
        x, y = compare._samples(inputs, first_targets, spec.window, 1)
        xv, yv = compare._samples(inputs, val_targets, spec.window, 1)
        if spec.stateful:
            train = make_stream_batches(x[:, 0], y[:, 0], batch_size=2, trim="start")
            val = make_stream_batches(xv[:, 0], yv[:, 0], batch_size=2, trim="start")
        else:
            train = make_sample_batches(x[:, 0], y[:, 0], batch_size=4, trim="start")
            val = make_sample_batches(xv[:, 0], yv[:, 0], batch_size=4, trim="start")
        model_config = spec.model_config(data.num_features, 1)
        batches = (train.x_batches, train.y_batches, (val.x_batches, val.y_batches))
        log = driver_run(spec, model_config, batches, 2, "epoch", True, patience)
        outcome = result.outcome(spec.name)
        np.testing.assert_array_equal(outcome.losses, log.loss)
        np.testing.assert_array_equal(outcome.epochs_run, log.epochs_run)
        np.testing.assert_array_equal(outcome.best_epoch, log.best_epoch)
        # it did stop early; then (refit, the default) each seed trained again on the whole
        # training part for the median best epoch count
        assert np.all(outcome.epochs_run < spec.epochs)
        refit_epochs = int(np.median(np.maximum(log.best_epoch, 0) + 1))
        assert f"trained again on the whole training part for {refit_epochs} epochs" in (
            outcome.layout
        )


# ------------------------------------------------------------------------------ sanity, ensemble


def test_an_exploding_seed_is_flagged_and_left_out_of_the_median(monkeypatch):
    original = compare._forecast_scaled

    def exploding(*args, **kwargs):
        out = original(*args, **kwargs).copy()  # (seeds, origins, horizon, series)
        out[1, -1] = 1e21  # seed 1 diverges at its last origin
        out[2, 0, 0, 0] = np.nan  # seed 2 gives one NaN
        return out

    monkeypatch.setattr(compare, "_forecast_scaled", exploding)
    values = random_walk(80, seed=11)
    config = CompareConfig(models=(tiny_mlp(),), seeds=4, baselines=("persistence",), seasons=())
    result = compare.run(config, values, quiet=True)
    mlp = result.outcome("mlp")
    assert mlp.flags.flagged.tolist() == [False, True, True, False]
    assert mlp.kept.tolist() == [True, False, False, True]
    notes = "\n".join(result.notes)
    assert "mlp: seed 1:" in notes and "beyond the plausible range" in notes
    assert "mlp: seed 2:" in notes and "non-finite value" in notes
    median = result.outcome("mlp_median")
    np.testing.assert_array_equal(median.forecasts[0], np.median(mlp.forecasts[[0, 3]], axis=0))
    for key, value in median.metrics.items():
        assert np.all(np.isfinite(value)), key
    assert np.all(np.isfinite(median.lower)) and np.all(np.isfinite(median.upper))
    assert np.isfinite(median.coverage)
    # The model's mean is over the kept seeds; its worst seed shows the divergence.
    assert mlp.mean("rmse") == pytest.approx(np.mean(mlp.metrics["rmse"][[0, 3]]))
    assert mlp.worst("rmse") == np.inf
    assert result.verdict.summaries["mlp"].mean == pytest.approx(mlp.mean("rmse"))


# ------------------------------------------------------------------------------ folds


def test_folds_tile_the_test_part_and_refit_on_all_steps_before_each_block():
    from statsforecast.models import AutoETS

    values = random_walk(90, seed=12)
    config = CompareConfig(
        models=(tiny_mlp(),),
        seeds=2,
        folds=3,
        validation=0.0,
        baselines=("persistence", "auto_ets"),
        seasons=(),
    )
    result = compare.run(config, values, quiet=True)
    folds = result.folds
    assert len(folds) == 3
    first = int(90 * 0.67)
    assert folds[0].n_train == first and folds[-1].end == 90
    # each fold trains on every step before its block; the blocks follow each other
    for before, after in zip(folds[:-1], folds[1:], strict=True):
        assert after.n_train == before.end
    for fold in folds:
        assert fold.origins.tolist() == list(range(fold.n_train, fold.end))
    np.testing.assert_array_equal(result.origins, np.arange(first, 90))
    persistence = result.outcome("persistence")
    ets = result.outcome("auto_ets")
    assert persistence.fold_rmse.shape == (1, 3)
    start = 0
    for k, fold in enumerate(folds):
        origins = fold.origins
        errors = values[origins] - values[origins - 1]
        assert persistence.fold_rmse[0, k] == pytest.approx(np.sqrt(np.mean(errors**2)))
        # refitted: AutoETS fitted on this fold's training part, applied from each origin
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoETS(season_length=1).fit(values[: fold.n_train])
            direct = [model.forward(y=values[:o], h=1)["mean"][0] for o in origins]
        block = slice(start, start + len(origins))
        np.testing.assert_allclose(ets.forecasts[0, block, 0, 0], direct, rtol=1e-9)
        forecasts = result.outcome("mlp").forecasts[:, block, 0, 0]
        expected = np.sqrt(np.mean((forecasts - values[origins]) ** 2, axis=1))
        np.testing.assert_allclose(result.outcome("mlp").fold_rmse[:, k], expected, rtol=1e-12)
        start += len(origins)
        # the scaler of each fold is fitted on that fold's training part
        _, scaler = compare.prepare_data(result.config, values, fold=fold).scaling()
        assert scaler.offset == (values[: fold.n_train].min(),)


# ------------------------------------------------------------------------------ intervals


def test_interval_coverage_on_a_series_with_known_noise_is_near_nominal():
    # A sine of period 12 with Gaussian noise of sd 0.1. The median's 90% split-conformal
    # interval is calibrated on the residuals of the validation tail (n = 80 of them): given
    # the calibration set, its coverage is Beta(73, 8) distributed (mean 0.90, sd 0.03), and
    # the test part's 198 points add a binomial sd of 0.02: about 0.04 in all. The band
    # 0.90 +- 0.08 is two of those; an interval from the wrong noise (too narrow: coverage
    # far below; infinite or too wide: coverage 1) falls outside it.
    rng = np.random.default_rng(0)
    steps = np.arange(600)
    values = np.sin(2 * np.pi * steps / 12) + rng.normal(0.0, 0.1, 600)
    spec = ModelSpec(
        model="mlp",
        units=(16,),
        window=13,
        epochs=30,
        batch_size=16,
        learning_rate=1e-2,
        norm="none",
    )
    config = CompareConfig(
        models=(spec,), seeds=2, baselines=("persistence", "seasonal_naive"), seasons=(12,)
    )
    result = compare.run(config, values, quiet=True)
    median = result.outcome("mlp_median")
    actual = result.actual[:, :, 0]
    inside = (actual >= median.lower[0, :, :, 0]) & (actual <= median.upper[0, :, :, 0])
    assert median.coverage == pytest.approx(np.mean(inside))
    assert 0.82 <= median.coverage <= 0.98
    # and its width reflects the known noise: 1.645 * 0.1 = 0.16 for a perfect model, a little
    # more for a fitted one (RMSE about 0.11 here)
    assert 0.13 < np.mean(median.upper - median.lower) / 2 < 0.25
    naive = result.outcome("seasonal_naive")
    assert 0.82 <= naive.coverage <= 0.98


# ------------------------------------------------------------------------------ verdict


def test_a_seed_noise_tie_needs_forecasts_no_worse_across_origins_and_the_state_test(monkeypatch):
    original = compare._forecast_scaled

    def noisy(*args, **kwargs):
        # Seed 2 of every neural model is offset by 20 training ranges (in scaled units): the
        # seed noise of each model is then far larger than its gap to the best model.
        out = original(*args, **kwargs)
        return out + np.array([0.0, 0.0, 20.0])[:, None, None, None]

    monkeypatch.setattr(compare, "_forecast_scaled", noisy)
    values = random_walk(80, seed=13)
    # the models (and settings) of the driver test above: its compiled programs are reused
    config = CompareConfig(
        models=tiny_models(epochs=2, norm="none")[1:3],
        seeds=3,
        horizon=2,
        validation=0.0,
        baselines=("persistence",),
        seasons=(),
        plausible_factor=100.0,  # the offset seed is noise here, not a divergence
    )
    result = compare.run(config, values, quiet=True)
    stateful = result.outcome("stateful").metrics["rmse"]
    stateless = result.outcome("stateless").metrics["rmse"]
    # the state test: Mann-Whitney over the 3 seeds of each, as scipy computes it
    reference = stats.mannwhitneyu(stateful, stateless, alternative="two-sided")
    assert result.state_test.n_a == result.state_test.n_b == 3
    assert result.state_test.p_value == pytest.approx(reference.pvalue)
    assert result.state_test.statistic == pytest.approx(reference.statistic)
    sentence = result.state_test.sentence("stateful", "stateless")
    assert "stateful" in sentence and "stateless" in sentence and "3 seeds" in sentence
    # the verdict: the rule by hand over every model's samples (a baseline is one sample)
    samples = {o.name: o.scores("rmse") for o in result.outcomes}
    means = {name: np.mean(s) for name, s in samples.items()}
    stds = {name: (np.std(s, ddof=1) if s.size > 1 else 0.0) for name, s in samples.items()}
    best = min(means, key=means.get)
    # ... and a model within the noise whose forecast (its seed median) is significantly worse
    # across the test origins does not tie
    losses = {
        o.name: np.mean((np.median(o.forecasts[o.kept], axis=0) - result.actual) ** 2, axis=(1, 2))
        for o in result.outcomes
    }

    def worse(name):
        test = scoring.diebold_mariano(losses[best], losses[name], horizon=2)
        return test.p_value < 0.05 and test.statistic < 0

    ties = {
        name
        for name in means
        if name != best
        and abs(means[name] - means[best]) <= max(stds[best], stds[name])
        and not worse(name)
    }
    verdict = result.verdict
    assert verdict.best == best
    assert set(verdict.ties) == ties
    # the offset seed puts both LSTMs within the seed noise of the best model, but their seed
    # medians forecast significantly worse across the origins: they do not tie with it
    within = {n for n in means if abs(means[n] - means[best]) <= max(stds[best], stds[n])}
    assert {"stateful", "stateless"} <= within - ties
    assert "so they tie" not in verdict.sentence
    # without the noisy seed the same models do not tie: the rule can fail; whether the gap
    # is a clear margin is the Diebold-Mariano test of the two forecasts across the origins
    monkeypatch.undo()
    plain_result = compare.run(config, values, quiet=True)
    plain = plain_result.verdict
    assert plain.ties == ()
    losses = {
        o.name: np.mean((o.mean_forecast() - plain_result.actual) ** 2, axis=(1, 2))
        for o in plain_result.outcomes
    }
    first, second = plain.ranking[:2]
    test = scoring.diebold_mariano(losses[first], losses[second], horizon=2)
    assert f"across the {len(plain_result.origins)} test origins" in plain.sentence
    if test.p_value < scoring.SIGNIFICANCE:
        assert "by a clear margin" in plain.sentence
    else:
        assert "by a clear margin" not in plain.sentence and "not significant" in plain.sentence


# ------------------------------------------------------------------------------ config


def test_config_errors_name_the_value_and_the_fix():
    with pytest.raises(
        ValueError,
        match=r"split must be a fraction strictly between 0 and 1, "
        r"got 1.5; pass e.g. 0.67",
    ):
        CompareConfig(split=1.5)
    with pytest.raises(ValueError, match="model 'x': stateful training needs shuffle=False"):
        ModelSpec(name="x", model="stateful", units=(4,), shuffle=True)
    with pytest.raises(ValueError, match=r"model names must be unique, got \['mlp', 'mlp'\]"):
        CompareConfig(models=tiny_models()[:1] * 2)
    with pytest.raises(ValueError, match="model name must be a non-empty string other than"):
        ModelSpec(name="persistence", model="mlp", units=(4,))
    with pytest.raises(ValueError, match="model name must be .* not ending in '_median'"):
        ModelSpec(name="mlp_median", model="mlp")
    with pytest.raises(
        ValueError, match=r"strategy must be one of \('recursive', 'direct'\), got 'x'; pass e.g."
    ):
        CompareConfig(strategy="x")
    with pytest.raises(ValueError, match=r"validation is 0 \(models \['mlp'\]\); pass validation"):
        CompareConfig(models=(ModelSpec(model="mlp"),), validation=0.0)
    with pytest.raises(ValueError, match="baselines must include 'persistence'.*; add it"):
        CompareConfig(baselines=("auto_ets",))
    with pytest.raises(ValueError, match="validation must be a fraction in"):
        CompareConfig(validation=0.95)


def test_override_models_replaces_window_epochs_and_norm_of_every_model():
    config = compare.override_models(
        compare.PRESETS["airline-classic"], window=5, epochs=7, norm="window"
    )
    assert {(m.window, m.epochs, m.norm) for m in config.models} == {(5, 7, "window")}
    assert compare.override_models(config) is config


# ------------------------------------------------------------------------------ presets

# The README runs `lstmlab compare --preset airline-classic` and `--preset airline` with the
# preset's seeds and LSTMLAB_MAX_EPOCHS=2 (tests/test_readme.py). These two tests train the
# same models for the same epochs with the same seeds, hence compile the same programs; their
# xdist group runs them in the README test's worker, which reads them from the compile cache.
SEEDS = compare.PRESETS["airline"].seeds


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_airline_classic_preset_end_to_end(data_dir, tmp_path):
    series = compare.load_preset_series("airline-classic", data_dir / "airline_passengers.csv")
    config = dataclasses.replace(
        compare.override_models(compare.PRESETS["airline-classic"], epochs=2),
        baselines=("persistence", "seasonal_naive", "auto_ets"),
    )
    assert config.seeds == SEEDS  # the README's run: the same programs, compiled once
    result = compare.run(config, series, quiet=True)
    values = series.target_values()[:, 0]
    # test windows of create_dataset(look_back=3) on the last 48 months: targets 99..142
    assert result.origins.tolist() == list(range(99, 143))
    errors = values[99:143] - values[98:142]
    assert result.outcome("persistence").mean("rmse") == pytest.approx(np.sqrt(np.mean(errors**2)))
    seasonal = values[99:143] - values[87:131]
    assert result.outcome("seasonal_naive").mean("rmse") == pytest.approx(
        np.sqrt(np.mean(seasonal**2))
    )
    # the published protocol: unscaled MLP, whole-series scaler, fixed epochs
    assert result.outcome("mlp").spec.scaler == "none"
    assert all(o.epochs_run.tolist() == [2] * SEEDS for o in result.outcomes if o.kind == "neural")
    files = write_compare_report(result, tmp_path)
    report = files["report"].read_text()
    for anchor in compare.ANCHORS["airline-classic"]:
        assert f"| {anchor.description} | {anchor.text()} |" in report
    assert "scaler is fitted on the WHOLE series" in report


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_airline_preset_end_to_end(data_dir, tmp_path):
    series = compare.load_preset_series("airline", data_dir / "airline_passengers.csv")
    config = dataclasses.replace(
        compare.override_models(compare.PRESETS["airline"], epochs=2),
        baselines=("persistence", "auto_ets"),
    )
    assert config.seeds == SEEDS  # the README's run: the same programs, compiled once
    result = compare.run(config, series, quiet=True)
    assert result.seasons.lengths == (12,)
    assert all(spec.window >= 13 for spec in result.config.models)  # windows cover the season
    names = [o.name for o in result.outcomes]
    for kind in ("mlp", "stateless", "stateful", "stacked"):
        assert kind in names and kind + "_median" in names
        median = result.outcome(kind + "_median")
        assert median.lower is not None and np.isfinite(median.coverage)
    for outcome in result.outcomes:
        finite = np.isfinite(outcome.forecasts).all(axis=(1, 2, 3))
        assert np.all(finite | ~outcome.kept)  # nothing non-finite goes unflagged
    for kind in ("mlp", "stateless", "stateful", "stacked"):
        # norm "auto": each candidate scored on the validation tail, the lowest kept
        outcome = result.outcome(kind)
        scores = outcome.norm_scores
        assert tuple(scores) == compare.AUTO_NORMS
        assert outcome.norm == (min(scores, key=lambda n: (scores[n], list(scores).index(n))),)
        # the validation forecasts behind the choice: one per origin of the tail
        assert outcome.validation_origins == len(result.folds[0].val_origins) > 0
    assert result.best_validated in ("mlp", "stateless", "stateful", "stacked")
    assert result.verdict is not None and result.state_test is not None
    files = write_compare_report(result, tmp_path)
    report = files["report"].read_text()
    for anchor in compare.ANCHORS["airline"]:
        assert f"| {anchor.description} | {anchor.text()} |" in report


@pytest.mark.slow
def test_household_weekly_preset_end_to_end(data_dir, tmp_path):
    path = data_dir / "household_power_consumption_days.csv"
    series = compare.load_preset_series("household-weekly", path)
    config = dataclasses.replace(
        compare.override_models(compare.PRESETS["household-weekly"], epochs=2),
        seeds=2,
        baselines=("persistence", "seasonal_naive"),
    )
    result = compare.run(config, series, quiet=True)
    daily = pd.read_csv(path, index_col="datetime", parse_dates=True)["Global_active_power"]
    daily = daily.loc["2006-12-17":"2010-11-20"]
    test = daily.iloc[-46 * 7 :]
    assert test.index[0] == pd.Timestamp("2010-01-03")
    assert all(time.day_of_week == 6 for time in result.origin_times)  # every origin a Sunday
    year_before = daily.shift(364).iloc[-46 * 7 :]
    expected = np.sqrt(np.mean((test.to_numpy() - year_before.to_numpy()) ** 2))
    assert result.outcome("seasonal_naive").mean("rmse") == pytest.approx(expected)
    saturday = daily.shift(1).iloc[-46 * 7 :].to_numpy().reshape(46, 7)[:, :1]
    persistence = np.sqrt(np.mean((test.to_numpy().reshape(46, 7) - saturday) ** 2))
    assert result.outcome("persistence").mean("rmse") == pytest.approx(persistence)
    assert result.outcome("stateless").forecasts.shape == (2, 46, 7, 1)
    files = write_compare_report(result, tmp_path)
    report = files["report"].read_text()
    assert "| naive: the same week one year earlier | 465 |" in report
    assert "t+7" in report


def test_longer_seasons_are_lag_inputs_and_training_waits_for_them():
    # Two seasons: the window covers the short one, the long one is an input column holding,
    # at step t, the scaled value of step t + 1 - season (the step after t, a season back).
    steps, short, long = 120, 4, 20
    values = np.sin(np.arange(steps) * 2 * np.pi / short) + np.arange(steps) * 0.01
    config = CompareConfig(
        models=(ModelSpec(model="mlp", units=(4,), window=5, epochs=1, norm="none"),),
        seeds=1,
        seasons=(short, long),
        validation=0.0,
        baselines=("persistence",),
    )
    data = compare.prepare_data(config, values)
    inputs, scaler = data.scaling()
    assert data.num_features == inputs.shape[2] == 2
    scaled = (values - scaler.offset[0]) / scaler.scale[0]
    for t in range(long - 1, steps):  # by hand, where the lag is observed
        assert inputs[t, 0, 1] == np.float32(scaled[t + 1 - long])
    # Every training window sees observed lags only: the first starts at step season - 1.
    first = compare._training_targets(data.fold, config, 5, data.fold.n_train)[0]
    assert first - 5 + 1 - long >= 0 and first - 5 - long < 0
    # Without the option there is no lag column, and a recursive horizon reaching past the
    # lag's last observed value is refused with the fix.
    plain = dataclasses.replace(config, seasonal_lags=False)
    assert compare.prepare_data(plain, values).scaling()[0].shape[2] == 1
    with pytest.raises(ValueError, match="strategy direct"):
        dataclasses.replace(config, strategy="recursive", horizon=long)


def test_a_long_series_grows_default_batches_and_published_ones_stay():
    # 3,000 samples: the default batch (4 samples, 1 stream) would make epochs of thousands
    # of sequential steps; grown, every epoch is at most MAX_BATCHES_PER_EPOCH batches.
    limit = MAX_BATCHES_PER_EPOCH
    x = np.zeros((3000, 1, 5, 1), np.float32)
    y = np.zeros((3000, 1, 1), np.float32)
    for kind in ("mlp", "stateful"):
        spec = ModelSpec(model=kind, units=(2,), window=5)
        x_batches = compare._batches(spec, x, y, None)[0].x_batches
        assert x_batches.shape[0] <= limit < 3000 // spec.batch_size
        assert x_batches.shape[1] == -(-3000 // limit)  # ceil: the smallest batch that fits
        fixed = dataclasses.replace(spec, grow_batches=False)
        assert compare._batches(fixed, x, y, None)[0].batch_size == spec.batch_size
    # A short series keeps the kind's default exactly.
    short = ModelSpec(model="mlp", units=(2,), window=5)
    assert compare._batches(short, x[:100], y[:100], None)[0].batch_size == short.batch_size


def test_without_validation_residuals_there_is_no_interval_rather_than_an_infinite_one():
    # No validation tail: nothing calibrates the seed median's interval. An infinite
    # interval would "cover" every value (100%); the report must show none instead.
    spec = ModelSpec(model="mlp", units=(4,), window=3, epochs=2, norm="none")
    config = CompareConfig(
        models=(spec,), seeds=2, validation=0.0, baselines=("persistence",), seasons=()
    )
    result = compare.run(config, random_walk(80), quiet=True)
    median = result.outcome("mlp_median")
    assert median.lower is None and median.upper is None and np.isnan(median.coverage)
    # With a validation tail the same model gets a finite interval and a measured coverage.
    tailed = compare.run(dataclasses.replace(config, validation=0.3), random_walk(80), quiet=True)
    calibrated = tailed.outcome("mlp_median")
    assert np.all(np.isfinite(calibrated.lower)) and 0.0 <= calibrated.coverage <= 1.0
