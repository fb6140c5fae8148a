import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmlab.core.model import LSTMConfig, MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.forecaster import FitSpec, Forecaster, Recipe, train_forecaster

WINDOW = 3


def _forecaster(kind, columns=1, seed=0):
    if kind == "stateful":
        config = LSTMConfig(
            units=(6, 4),
            timesteps=WINDOW,
            features=columns,
            outputs=columns,
            stateful=True,
            return_sequences=True,
        )
    elif kind == "stateless":
        config = LSTMConfig(
            units=(5,), timesteps=WINDOW, features=columns, outputs=columns, stateful=False
        )
    else:
        config = MLPConfig(hidden=(7,), timesteps=WINDOW, features=columns, outputs=columns)
    names = tuple(f"c{i}" for i in range(columns))
    rng = np.random.default_rng(seed)
    scaler = fit_scaler(rng.normal(10.0, 4.0, size=(50, columns)), "standard", names)
    recipe = Recipe(
        kind=kind if kind != "stateful" else "stacked", window=WINDOW, columns=names, freq="15min"
    )
    return Forecaster(config, init_params(config, seed), recipe=recipe, scaler=scaler)


def _series(length, columns=1, seed=1):
    return np.random.default_rng(seed).normal(10.0, 4.0, size=(length, columns))


def _times(start, count):
    return [
        t.isoformat()
        for t in pd.date_range("2024-01-01", periods=start + count, freq="15min")[start:]
    ]


def _splits(draw_sizes, total):
    bounds, position = [], 0
    for size in draw_sizes:
        if position >= total:
            break
        position = min(total, position + size)
        bounds.append(position)
    if not bounds or bounds[-1] != total:
        bounds.append(total)
    return bounds


@pytest.mark.slow
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["stateful", "stateless", "mlp"]),
    length=st.sampled_from([2, 17]),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=20),
    save_after=st.integers(0, 20),
)
def test_pieces_of_any_sizes_equal_feeding_at_once(
    tmp_path_factory, kind, length, sizes, save_after
):
    values = _series(length, columns=2)
    stamps = _times(0, length)
    reference = _forecaster(kind, columns=2).replay(values)  # (length, 2)
    model = _forecaster(kind, columns=2)
    start = 0
    for piece, end in enumerate(_splits(sizes, length)):
        if piece == save_after:  # across save/load too
            folder = tmp_path_factory.mktemp("m")
            model.save(folder)
            model = Forecaster.load(folder)
        forecast = model.observe("s", values[start:end], stamps[start:end])
        assert forecast.seen == end
        if kind != "stateful" and end < WINDOW:
            assert forecast.values is None and forecast.needed == WINDOW - end
        else:
            np.testing.assert_allclose(forecast.values[0], reference[end - 1], rtol=1e-6, atol=1e-6)
        start = end
    at_once = _forecaster(kind, columns=2)
    at_once.observe("s", values, stamps)
    whole, pieces = at_once.series_state("s"), model.series_state("s")
    for a, b in zip(whole.rnn, pieces.rnn, strict=True):
        np.testing.assert_allclose(a.h, b.h, atol=1e-6)
        np.testing.assert_allclose(a.c, b.c, atol=1e-6)
    np.testing.assert_array_equal(whole.recent, pieces.recent)
    assert (whole.seen, whole.last_time) == (pieces.seen, pieces.last_time)


def test_replay_reference_can_detect_a_wrong_state():
    values = _series(8)
    model = _forecaster("stateful")
    reference = model.replay(values)
    model.observe("s", values[:4])
    # restarting from a fresh state instead of continuing must not match
    fresh = _forecaster("stateful")
    fresh_forecast = fresh.observe("s", values[4:]).values[0]
    continued = model.observe("s", values[4:]).values[0]
    np.testing.assert_allclose(continued, reference[-1], atol=1e-6)
    assert not np.allclose(fresh_forecast, reference[-1], atol=1e-4)


@pytest.mark.parametrize("kind", ["stateful", "stateless", "mlp"])
def test_save_load_round_trip_is_bit_identical(tmp_path, kind):
    model = _forecaster(kind)
    for series_id, seed in (("a", 1), ("b", 2), ("new/ü", 3)):
        model.observe(series_id, _series(5 + seed, seed=seed), _times(0, 5 + seed))
    model.observe("short", _series(1, seed=9), _times(0, 1))
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.series_ids == model.series_ids
    for series_id in model.series_ids:
        a, b = model.forecast(series_id, 4), loaded.forecast(series_id, 4)
        assert (a.seen, a.needed, a.timestamps) == (b.seen, b.needed, b.timestamps)
        if a.values is None:
            assert b.values is None
        else:
            assert np.array_equal(a.values, b.values)
    more = _series(2, seed=5)
    assert np.array_equal(
        model.observe("a", more, _times(6, 2)).values,
        loaded.observe("a", more, _times(6, 2)).values,
    )


def test_stateful_model_serves_more_series_than_its_training_batch(tmp_path):
    data = {f"s{i}": np.sin(np.arange(40) * 0.3 + i) + i for i in range(2)}
    model = train_forecaster(
        data,
        spec=FitSpec(kind="stateful", window=4, epochs=2, batch_size=2, units=(5,)),
        columns=("v",),
    )
    assert model.metrics["batch_size"] == 2
    many = {f"m{i}": _series(6, seed=i) for i in range(5)}
    together = model.observe_many(many)
    for series_id, values in many.items():
        alone = model.replay(values)[-1]
        np.testing.assert_allclose(together[series_id].values[0], alone, rtol=1e-6, atol=1e-6)
    # the training series are left at the end of their data
    for series_id, values in data.items():
        np.testing.assert_allclose(
            model.forecast(series_id).values[0], model.replay(values)[-1], rtol=1e-6, atol=1e-6
        )


def test_train_forecaster_records_metrics_and_states():
    data = {"x": np.cos(np.arange(30) * 0.5) * 3 + 7}
    times = {"x": pd.date_range("2024-03-01", periods=30, freq="h")}
    model = train_forecaster(
        data,
        spec=FitSpec(kind="mlp", window=5, epochs=3),
        columns=("load",),
        timestamps=times,
        freq="h",
    )
    metrics = model.metrics
    assert len(metrics["loss"]) == 3 and metrics["series"] == {"x": 30}
    assert np.isfinite(metrics["one_step_rmse"]["x"])
    forecast = model.forecast("x", horizon=2)
    assert forecast.timestamps == ("2024-03-02T06:00:00", "2024-03-02T07:00:00")
    assert model.series_state("x").seen == 30


def test_multi_step_forecast_feeds_predictions_back_and_keeps_the_state(tmp_path):
    model = _forecaster("stateful")
    model.observe("s", _series(6), _times(0, 6))
    state = model.series_state("s")
    forecast = model.forecast("s", horizon=3)
    assert model.series_state("s") is state  # forecasting stores nothing
    model.save(tmp_path / "m")
    copy = Forecaster.load(tmp_path / "m")
    first = copy.observe("s", forecast.values[:1], [forecast.timestamps[0]], horizon=2)
    np.testing.assert_allclose(first.values, forecast.values[1:], rtol=1e-5, atol=1e-5)
    assert first.timestamps == forecast.timestamps[1:]


def test_new_series_start_from_a_fresh_state():
    model = _forecaster("stateful")
    model.observe("old", _series(10, seed=3))
    new = model.observe("new", _series(4, seed=4)).values[0]
    np.testing.assert_allclose(
        new, _forecaster("stateful").replay(_series(4, seed=4))[-1], atol=1e-6
    )


def _state_unchanged(model, series_id, before):
    after = model.series_state(series_id)
    assert after is before


@pytest.mark.parametrize(
    ("values", "stamps", "message"),
    [
        (
            [[1.0]],
            ["2024-01-01T00:45:00"],
            "series 's': reading at 2024-01-01T00:45:00 is out of time order: the series already "
            "has readings up to 2024-01-01T00:45:00; send only newer readings",
        ),
        (
            [[1.0]],
            ["2024-01-01T01:15:00"],
            "series 's': reading 0 has timestamp 2024-01-01T01:15:00, expected "
            "2024-01-01T01:00:00 (frequency 15min): a gap or an off-grid reading; send the "
            "missing readings (filled) in order",
        ),
        (
            [[1.0], [2.0]],
            ["2024-01-01T01:15:00", "2024-01-01T01:00:00"],
            "series 's': timestamps are not strictly increasing at reading 1 (2024-01-01T01:15:00 "
            "then 2024-01-01T01:00:00); sort them and drop duplicates",
        ),
        (
            [[1.0], [np.nan]],
            _times(4, 2),
            "series 's': reading 1 holds NaN or infinite values ([nan]); readings must be "
            "finite, fill or drop it before observing",
        ),
        (
            [[1.0, 2.0]],
            _times(4, 1),
            "series 's': each reading needs 1 value(s) (columns ['c0']), got 2; pass values of "
            "shape (readings, 1)",
        ),
        ([], [], "series 's': no readings given; pass at least one"),
        (
            [[1e300]],
            _times(4, 1),
            "series 's': reading 0 ([1e+300]) is beyond the float32 range the model computes "
            "in, once scaled; check its units",
        ),
        (
            [[1.0]],
            None,
            "series 's' has timestamps up to 2024-01-01T00:45:00; pass timestamps with the new "
            "readings",
        ),
        ([[1.0]], ["yesterday-ish"], "series 's': timestamps could not be parsed"),
        ([[1.0], [2.0]], _times(4, 1), "series 's': 1 timestamps for 2 readings"),
        ([["x"]], _times(4, 1), "series 's': readings must be numbers"),
    ],
)
@pytest.mark.parametrize("kind", ["stateful", "mlp"])
def test_bad_readings_get_clear_errors_and_change_nothing(kind, values, stamps, message):
    model = _forecaster(kind)
    model.observe("s", _series(4), _times(0, 4))
    before = model.series_state("s")
    expected = model.forecast("s").values
    with pytest.raises(ValueError, match=re.escape(message)):
        model.observe("s", values, stamps)
    _state_unchanged(model, "s", before)
    assert np.array_equal(model.forecast("s").values, expected)


def test_a_bad_series_in_a_batch_changes_no_series():
    model = _forecaster("stateful")
    with pytest.raises(ValueError, match="series 'b': reading 0 holds NaN"):
        model.observe_many({"a": [1.0, 2.0], "b": [np.inf]})
    assert model.series_ids == ()


def test_forecast_errors():
    model = _forecaster("stateful")
    with pytest.raises(KeyError, match="unknown series 'nope'"):
        model.forecast("nope")
    model.observe("s", [1.0])
    with pytest.raises(ValueError, match="horizon must be an integer from 1 to 10000, got 0"):
        model.forecast("s", 0)
    with pytest.raises(ValueError, match="series id must be a non-empty string"):
        model.observe("", [1.0])


def test_config_recipe_and_scaler_must_agree():
    config = LSTMConfig(units=(3,), features=1, outputs=2)
    with pytest.raises(
        ValueError, match="outputs must equal features, got outputs=2 and features=1"
    ):
        Forecaster(config, init_params(config, 0), recipe=Recipe())
    config = MLPConfig(hidden=(3,), timesteps=4)
    with pytest.raises(
        ValueError, match="a window model reads windows of 4 steps, the recipe says window=1"
    ):
        Forecaster(config, init_params(config, 0), recipe=Recipe(window=1))
