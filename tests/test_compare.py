"""Tests of lstmlab.experiments.compare and its report (lstmlab.report.documents)."""

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from lstmlab.core.model import MLPConfig, from_keras_weights, init_params
from lstmlab.core.train import TrainConfig, fit, init_train_states
from lstmlab.experiments import compare
from lstmlab.experiments.compare import CompareConfig, ModelSpec
from lstmlab.report.documents import write_compare_report


def random_walk(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))


def tiny_models(epochs: int = 2, window: int = 2) -> tuple[ModelSpec, ...]:
    # Keras' Adam learning rate, as these tests were calibrated with.
    common = {"window": window, "epochs": epochs, "learning_rate": 1e-3}
    return (
        ModelSpec(model="mlp", units=(4,), batch_size=4, **common),
        ModelSpec(model="stateless", units=(3,), batch_size=4, **common),
        ModelSpec(model="stateful", units=(3,), batch_size=2, **common),
        ModelSpec(model="stacked", units=(3, 3), batch_size=2, **common),
    )


# ------------------------------------------------------------------------------ split, scaling


def test_scaler_is_fitted_on_the_training_part_only():
    values = random_walk(60)
    config = CompareConfig(models=(), split=0.5)
    data = compare.prepare_data(config, values)
    assert data.n_train == 30
    assert data.target_scaler.offset == (values[:30].min(),)
    assert data.target_scaler.scale == (values[:30].max() - values[:30].min(),)
    # Changing the test part changes nothing that the training part is scaled with.
    leaked = values.copy()
    leaked[30:] *= 10.0
    other = compare.prepare_data(config, leaked)
    assert other.target_scaler == data.target_scaler
    np.testing.assert_array_equal(other.inputs[:30], data.inputs[:30])
    assert not np.array_equal(other.inputs[30:], data.inputs[30:])


def test_features_are_scaled_on_the_training_part_and_follow_the_target():
    values = random_walk(40)
    features = np.stack([np.arange(40.0), np.sin(np.arange(40.0))], axis=1)
    data = compare.prepare_data(CompareConfig(models=(), split=0.5), values, features)
    assert data.inputs.shape == (40, 1, 3)
    np.testing.assert_allclose(data.inputs[:20, 0, 1].min(), 0.0)
    np.testing.assert_allclose(data.inputs[:20, 0, 1].max(), 1.0)
    assert data.inputs[39, 0, 1] == pytest.approx(39 / 19)  # beyond 1: fitted on train only


def test_split_uses_int_of_the_fraction_and_test_size_overrides_it():
    data = compare.prepare_data(CompareConfig(models=()), random_walk(144))
    assert (data.n_train, data.n_test) == (int(144 * 0.67), 144 - int(144 * 0.67))
    data = compare.prepare_data(CompareConfig(models=(), test_size=10), random_walk(144))
    assert (data.n_train, data.n_test) == (134, 10)


def create_dataset(dataset: np.ndarray, look_back: int) -> tuple[np.ndarray, np.ndarray]:
    """The published scripts' function, verbatim in NumPy."""
    x, y = [], []
    for i in range(len(dataset) - look_back - 1):
        x.append(dataset[i : i + look_back])
        y.append(dataset[i + look_back])
    return np.array(x), np.array(y)


def test_classic_windows_match_create_dataset():
    values = random_walk(144)
    config = CompareConfig(models=tiny_models(window=3), classic_windows=True, target="level")
    data = compare.prepare_data(config, values)
    train, test = values[: data.n_train], values[data.n_train :]
    _, test_y = create_dataset(test, 3)
    np.testing.assert_array_equal(data.actual(1)[:, 0, 0], test_y)
    train_x, train_y = create_dataset(train, 3)
    x, y = compare._training_samples(data, config, 3)
    scaled = data.target_scaler.transform(train)[:, 0]
    np.testing.assert_allclose(y[:, 0, 0], create_dataset(scaled, 3)[1], rtol=1e-6)
    np.testing.assert_allclose(x[:, 0, :, 0], create_dataset(scaled, 3)[0], rtol=1e-6)
    assert len(x) == len(train_x)


def test_prepare_data_rejects_a_series_too_short():
    with pytest.raises(ValueError, match=r"the series has 6 steps: 4 to train and 2 to test, too"):
        compare.prepare_data(CompareConfig(models=tiny_models(window=4), split=0.67), np.ones(6))


def test_prepare_data_rejects_a_season_before_the_start():
    with pytest.raises(ValueError, match="season 50 reaches before the start of the series"):
        compare.prepare_data(CompareConfig(models=(), season=50), random_walk(40))


def test_prepare_data_rejects_missing_values():
    values = random_walk(40)
    values[3] = np.nan
    with pytest.raises(ValueError, match="targets hold NaN or infinite values; load them with"):
        compare.prepare_data(CompareConfig(models=()), values)


# ------------------------------------------------------------------------------ baselines


def test_persistence_rmse_equals_a_hand_computation():
    values = random_walk(50, seed=3)
    result = compare.run(CompareConfig(models=()), values, quiet=True)
    n_train = int(50 * 0.67)
    errors = values[n_train:] - values[n_train - 1 : -1]
    persistence = result.outcome("persistence")
    assert persistence.mean("rmse") == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert persistence.mean("mae") == pytest.approx(np.mean(np.abs(errors)))
    assert persistence.mean("mape") == pytest.approx(
        100 * np.mean(np.abs(errors) / np.abs(values[n_train:]))
    )


def test_persistence_per_step_over_a_horizon_by_hand():
    values = random_walk(40, seed=4)
    result = compare.run(CompareConfig(models=(), horizon=3), values, quiet=True)
    n_train = int(40 * 0.67)
    origins = range(n_train, 40 - 3 + 1)
    for step in range(3):
        errors = [values[o + step] - values[o - 1] for o in origins]
        expected = np.sqrt(np.mean(np.square(errors)))
        assert result.outcome("persistence").metrics["rmse_per_step"][0, step] == pytest.approx(
            expected
        )


def test_seasonal_naive_by_hand_beyond_one_season():
    values = random_walk(60, seed=5)
    season, horizon = 4, 6
    result = compare.run(
        CompareConfig(models=(), season=season, horizon=horizon), values, quiet=True
    )
    forecasts = result.outcome("seasonal_naive").forecasts[0, :, :, 0]
    for row, origin in enumerate(result.origins):
        for step in range(horizon):
            back = season if step < season else 2 * season
            assert forecasts[row, step] == values[origin + step - back]


def test_metrics_by_hand_and_mape_skips_zero_actuals():
    forecasts = np.array([1.0, 3.0, 5.0]).reshape(1, 3, 1, 1)
    actual = np.array([2.0, 0.0, 4.0]).reshape(3, 1, 1)
    metrics = compare.forecast_metrics(forecasts, actual)
    assert metrics["rmse"][0] == pytest.approx(np.sqrt((1 + 9 + 1) / 3))
    assert metrics["mae"][0] == pytest.approx(5 / 3)
    assert metrics["mape"][0] == pytest.approx(100 * (0.5 + 0.25) / 2)


def test_report_notes_say_how_many_zero_actuals_mape_leaves_out():
    values = np.tile([0.0, 1.0, 3.0, 2.0], 10)  # test part: 14 steps, 3 or 4 of them zeros
    result = compare.run(CompareConfig(models=(), seeds=1, split=0.6), values, quiet=True)
    zeros = int(np.count_nonzero(result.actual == 0))
    assert zeros > 0
    assert (
        f"MAPE leaves out the {zeros} forecast step(s) whose actual value is 0 (of "
        f"{result.actual.size}); RMSE and MAE include them"
    ) in result.notes
    plain = compare.run(CompareConfig(models=(), seeds=1, split=0.6), values + 1.0, quiet=True)
    assert not any("MAPE leaves out" in note for note in plain.notes)


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
        change=False,
    )
    # origin 3: window (0.2, 0.3) -> 0.4, then 0.5, 0.6, 0.7 from its own predictions
    np.testing.assert_allclose(out[0, 0, :, 0], [0.4, 0.5, 0.6, 0.7], atol=1e-6)


@pytest.mark.slow
def test_recursive_first_step_equals_the_one_step_forecast():
    values = random_walk(80, seed=6)
    base = CompareConfig(models=tiny_models(epochs=3)[:3], seeds=2, target="change")
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
        seeds=1,
        season=5,
        horizon=2,
        strategy=strategy,
        classic_windows=classic,
    )
    base = compare.run(config, values, quiet=True)
    k = 4
    changed = values.copy()
    changed[int(base.origins[k]) :] += 50.0
    other = compare.run(config, changed, quiet=True)
    for outcome in base.outcomes:
        later = other.outcome(outcome.name).forecasts
        np.testing.assert_array_equal(later[:, : k + 1], outcome.forecasts[:, : k + 1])
        assert not np.array_equal(later[:, k + 1 :], outcome.forecasts[:, k + 1 :])


def long_memory_series(n: int = 400, seed: int = 0) -> np.ndarray:
    """s[t] = u[t] + 0.9 s[t-2]: the next value depends on the value before the window (of 1)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, n)
    series = np.zeros(n)
    for t in range(n):
        series[t] = noise[t] + (0.9 * series[t - 2] if t >= 2 else 0.0)
    return series


@pytest.mark.slow
def test_stateful_model_sees_its_stream_in_order_and_beats_the_stateless_one():
    values = long_memory_series()
    models = (
        ModelSpec(
            model="stateless",
            units=(20,),
            window=1,
            epochs=30,
            batch_size=1,
            shuffle=False,
            learning_rate=1e-3,
        ),
        ModelSpec(
            model="stateful", units=(20,), window=1, epochs=30, batch_size=1, learning_rate=1e-3
        ),
    )
    config = CompareConfig(models=models, seeds=2, split=0.75, target="level")
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
    result = compare.run(CompareConfig(models=models, seeds=1), values, quiet=True)
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
    config = CompareConfig(models=tiny_models(epochs=2)[:1], seeds=3)
    first = compare.run(config, values, quiet=True).outcome("mlp")
    again = compare.run(config, values, quiet=True).outcome("mlp")
    np.testing.assert_array_equal(first.forecasts, again.forecasts)
    assert len(np.unique(first.metrics["rmse"])) == 3


# ------------------------------------------------------------------------------ training


def driver_losses(spec, index, model_config, x_batches, y_batches, seeds, reset):
    """The driver with compare's documented seeding: parameters from fold_in(key(seed),
    model index), shuffling from fold_in(key(seed), 1000 + model index)."""
    train_config = TrainConfig(
        epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        shuffle=spec.shuffle,
        reset=reset,
        seed=0,
    )
    keys = [jax.random.key(seed) for seed in range(seeds)]
    params = [init_params(model_config, jax.random.fold_in(k, index)) for k in keys]
    states = init_train_states(
        model_config,
        train_config,
        params,
        x_batches.shape[1],
        keys=[jax.random.fold_in(k, 1000 + index) for k in keys],
    )
    return fit(model_config, train_config, states, x_batches, y_batches)[1].loss


def test_training_gives_the_losses_of_the_driver_called_directly():
    values = random_walk(60, seed=2)
    config = CompareConfig(models=tiny_models(epochs=3), seeds=2, horizon=2)
    data = compare.prepare_data(config, values)
    for index, spec in enumerate(config.models):
        outcome = compare._train_and_forecast(spec, index, data, config)
        model_config = spec.model_config(data.num_features, config.outputs)
        x, y = compare._training_samples(data, config, spec.window)
        x_batches, y_batches, _, _ = compare._batches(spec, x, y)
        args = (spec, index, model_config, x_batches, y_batches, config.seeds)
        losses = driver_losses(*args, reset="epoch")
        assert outcome.losses.shape == (spec.epochs, config.seeds)
        np.testing.assert_array_equal(outcome.losses, losses)
        np.testing.assert_array_equal(outcome.final_loss, losses[-1])
        if spec.stateful:
            # The epoch-end reset reaches the driver: without it the losses differ.
            assert not np.array_equal(driver_losses(*args, reset="never"), losses)


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
    with pytest.raises(ValueError, match="strategy must be 'recursive' or 'direct', got 'x'"):
        CompareConfig(strategy="x")


def test_override_models_replaces_window_and_epochs_of_every_model():
    config = compare.override_models(compare.PRESETS["airline-classic"], window=5, epochs=7)
    assert {(m.window, m.epochs) for m in config.models} == {(5, 7)}
    assert compare.override_models(config) is config


# ------------------------------------------------------------------------------ report


def dated_series(n: int = 72) -> pd.DataFrame:
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    season = 10 * np.sin(2 * np.pi * np.arange(n) / 12)
    return pd.DataFrame({"sales": random_walk(n) + season}, index=index)


# ------------------------------------------------------------------------------ presets


@pytest.mark.slow
def test_airline_preset_end_to_end(data_dir, tmp_path):
    series = compare.load_preset_series("airline-classic", data_dir / "airline_passengers.csv")
    config = dataclasses.replace(
        compare.override_models(compare.PRESETS["airline-classic"], epochs=2), seeds=2
    )
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
    files = write_compare_report(result, tmp_path)
    report = files["report"].read_text()
    for anchor in compare.ANCHORS["airline-classic"]:
        assert f"| {anchor.description} | {anchor.text()} |" in report
    assert "fitted the MinMaxScaler on the whole series" in report


@pytest.mark.slow
def test_household_weekly_preset_end_to_end(data_dir, tmp_path):
    path = data_dir / "household_power_consumption_days.csv"
    series = compare.load_preset_series("household-weekly", path)
    config = dataclasses.replace(
        compare.override_models(compare.PRESETS["household-weekly"], epochs=1), seeds=1
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
    assert result.outcome("stateless").forecasts.shape == (1, 46, 7, 1)
    files = write_compare_report(result, tmp_path)
    report = files["report"].read_text()
    assert "| naive: the same week one year earlier | 465 |" in report
    assert "t+7" in report
