import dataclasses
import json
import os
import re
from types import SimpleNamespace

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmlab.core.model import LSTMConfig, MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.defaults import PLAUSIBLE_FACTOR
from lstmlab.forecaster import Forecaster, ForecasterConfig, Recipe
from lstmlab.pipeline import CALIBRATION_MIN_STEPS, CALIBRATION_ORIGINS
from lstmlab.states import ERRORS_KEPT

WINDOW = 3


def _forecaster(kind, columns=1, seed=0, units=None):
    # "stateful": two stateful layers reading overlapping windows, as fit makes them;
    # "stream": the same reading one reading per step (a folder saved before 0.2, or Keras)
    if kind in ("stateful", "stream"):
        config = LSTMConfig(
            units=units or (6, 4),
            timesteps=WINDOW,
            features=columns,
            outputs=columns,
            stateful=True,
            return_sequences=kind == "stream",
        )
    elif kind == "stateless":
        config = LSTMConfig(
            units=(5,), timesteps=WINDOW, features=columns, outputs=columns, stateful=False
        )
    else:
        config = MLPConfig(
            hidden=units or (7,), timesteps=WINDOW, features=columns, outputs=columns
        )
    names = tuple(f"c{i}" for i in range(columns))
    rng = np.random.default_rng(seed)
    scaler = fit_scaler(rng.normal(10.0, 4.0, size=(50, columns)), "standard", names)
    recipe = Recipe(
        kind="stacked" if config.stateful else kind, window=WINDOW, columns=names, freq="15min"
    )
    return Forecaster.from_params(config, init_params(config, seed), recipe=recipe, scaler=scaler)


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
    kind=st.sampled_from(["stateful", "stream", "stateless", "mlp"]),
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
        if kind != "stream" and end < WINDOW:  # a window is read once it is full
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
    # every reading after the first forecast met one: the replay's forecast of it
    want = values[1:] - reference[:-1]
    want = want[np.isfinite(want).all(axis=1)]
    scale = np.asarray(whole.scaler.scale)
    for state in (whole, pieces):
        errors = state.errors.reshape(-1, values.shape[1])  # none: (0, 0)
        np.testing.assert_allclose(errors * scale, want, rtol=1e-5, atol=1e-4)


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


@pytest.mark.parametrize("kind", ["stateful", "stream", "stateless", "mlp"])
def test_save_load_round_trip_is_bit_identical(tmp_path, kind):
    model = _forecaster(kind)
    for series_id, seed in (("a", 1), ("b", 2), ("new/ü", 3)):
        model.observe(series_id, _series(5 + seed, seed=seed), _times(0, 5 + seed))
    model.observe("short", _series(1, seed=9), _times(0, 1))
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.series_ids == model.series_ids
    for series_id in model.series_ids:
        a, b = model.series_forecast(series_id, 4), loaded.series_forecast(series_id, 4)
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


@pytest.mark.parametrize("seeds", [1, 3])
def test_stateful_model_serves_more_series_than_its_training_batch(tmp_path, seeds):
    data = {f"s{i}": np.sin(np.arange(40) * 0.3 + i) + i for i in range(2)}
    model = Forecaster(
        model="stateful", window=4, epochs=2, batch_size=1, units=(5,), seeds=seeds, norm="none"
    ).fit(pd.DataFrame(data))
    assert model.metrics["batch_size"] == 2  # one stream per series
    many = {f"m{i}": _series(6, seed=i) for i in range(5)}
    together = model.observe_many(many, new_series=True)
    for series_id, values in many.items():
        alone = model.replay(values)[-1]
        np.testing.assert_allclose(together[series_id].values[0], alone, rtol=1e-6, atol=1e-6)
    # the training series are left at the end of their data (each with its own scaler)
    for series_id, values in data.items():
        np.testing.assert_allclose(
            model.series_forecast(series_id).values[0],
            model.replay(values, series_id)[-1],
            rtol=1e-6,
            atol=1e-6,
        )


def test_fit_records_metrics_and_states():
    times = pd.date_range("2024-03-01", periods=30, freq="h")
    data = pd.Series(np.cos(np.arange(30) * 0.5) * 3 + 7, index=times, name="x")
    model = Forecaster(model="mlp", window=5, epochs=3, seeds=2).fit(data, freq="h")
    metrics = model.metrics
    assert len(metrics["loss"]) == 3 and metrics["series"] == {"x": 30}
    assert np.isfinite(metrics["one_step_rmse"]["x"])
    forecast = model.series_forecast("x", horizon=2)
    assert forecast.timestamps == ("2024-03-02T06:00:00", "2024-03-02T07:00:00")
    assert model.series_state("x").seen == 30


def test_multi_step_forecast_feeds_predictions_back_and_keeps_the_state(tmp_path):
    model = _forecaster("stateful")
    model.observe("s", _series(6), _times(0, 6))
    state = model.series_state("s")
    forecast = model.series_forecast("s", horizon=3)
    _assert_same_state(model.series_state("s"), state)  # forecasting stores nothing
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


def _assert_same_state(after, before):
    assert (after.seen, after.last_time) == (before.seen, before.last_time)
    for a, b in zip(after.rnn, before.rnn, strict=True):
        assert np.array_equal(a.h, b.h) and np.array_equal(a.c, b.c)
    assert np.array_equal(after.recent, before.recent)
    if before.prediction is None:
        assert after.prediction is None
    else:
        assert np.array_equal(after.prediction, before.prediction)


def _state_unchanged(model, series_id, before):
    _assert_same_state(model.series_state(series_id), before)
    assert len(model.store.observations(series_id)) == before.seen  # nothing logged either


@pytest.mark.parametrize(
    ("values", "stamps", "message"),
    [
        (
            [[1.0]],
            ["2024-01-01T00:45:00"],
            # the retry rule: an accepted timestamp with other values is a conflict
            "series 's': the reading with timestamp 2024-01-01T00:45:00 was already accepted "
            "with values ",
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
    expected = model.series_forecast("s").values
    with pytest.raises(ValueError, match=re.escape(message)):
        model.observe("s", values, stamps)
    _state_unchanged(model, "s", before)
    assert np.array_equal(model.series_forecast("s").values, expected)


def test_a_bad_series_in_a_batch_changes_no_series():
    model = _forecaster("stateful")
    with pytest.raises(ValueError, match="series 'b': reading 0 holds NaN"):
        model.observe_many({"a": [1.0, 2.0], "b": [np.inf]})
    assert model.series_ids == ()


def test_forecast_errors():
    model = _forecaster("stateful")
    with pytest.raises(KeyError, match="unknown series 'nope'"):
        model.series_forecast("nope")
    with pytest.raises(KeyError, match="unknown series 'nope'"):
        model.forecast(3, series="nope")
    model.observe("s", [1.0])
    with pytest.raises(ValueError, match="horizon must be an integer from 1 to 10000, got 0"):
        model.series_forecast("s", 0)
    with pytest.raises(ValueError, match="horizon must be an integer from 1 to 10000, got 0"):
        model.forecast(0)
    with pytest.raises(ValueError, match="series id must be a non-empty string"):
        model.observe("", [1.0])


def test_config_recipe_and_scaler_must_agree():
    config = LSTMConfig(units=(3,), features=1, outputs=2)
    with pytest.raises(
        ValueError, match="outputs must equal features, got outputs=2 and features=1"
    ):
        Forecaster.from_params(config, init_params(config, 0), recipe=Recipe())
    config = MLPConfig(hidden=(3,), timesteps=4)
    with pytest.raises(
        ValueError, match="the model reads windows of 4 steps, the recipe says window=1"
    ):
        Forecaster.from_params(config, init_params(config, 0), recipe=Recipe(window=1))


# --------------------------------------------------------------------------- the one object

QUICK = {"units": (4,), "epochs": 2, "seeds": 2, "window": 3}


def _monthly(length=30, level=100.0, seed=0):
    rng = np.random.default_rng(seed)
    values = level + np.cumsum(rng.normal(1.0, 3.0, size=length))
    return pd.Series(values, index=pd.date_range("2020-01-01", periods=length, freq="MS"))


def test_every_data_form_gives_the_same_model_and_forecast():
    a, b = _monthly(seed=1), _monthly(level=5.0, seed=2)
    wide = pd.DataFrame({"a": a, "b": b})
    long_nf = pd.DataFrame(
        {
            "unique_id": ["a"] * 30 + ["b"] * 30,
            "ds": list(a.index) * 2,
            "y": np.concatenate([a.to_numpy(), b.to_numpy()]),
        }
    ).sample(frac=1.0, random_state=0)  # rows in any order
    long_ours = long_nf.rename(columns={"unique_id": "series_id", "ds": "time", "y": "value"})
    custom = long_nf.rename(columns={"unique_id": "meter", "ds": "when", "y": "load"})
    reference = Forecaster(**QUICK).fit(wide).forecast(4)
    for data, kwargs in [
        (long_nf, {}),
        (long_ours, {}),
        (custom, {"id_col": "meter", "time_col": "when", "target": "load"}),
        (wide.reset_index(names="month"), {"time_col": "month"}),
        # text timestamps, as pd.read_csv gives them, are parsed, never taken for positions
        (_as_text(wide.reset_index(names="month"), "month", "%Y-%m"), {"time_col": "month"}),
        (_as_text(long_nf, "ds", "%Y-%m-%d"), {}),
        (_as_text(wide.reset_index(names="month"), "month", "%Y-%m").set_index("month"), {}),
        (wide.to_period("M"), {}),
        (
            _as_text(wide.reset_index(names="month"), "month", "%d/%m/%Y"),
            {"time_col": "month", "time_format": "%d/%m/%Y"},
        ),
    ]:
        frame = Forecaster(**QUICK).fit(data, **kwargs).forecast(4)
        pd.testing.assert_frame_equal(
            frame.sort_values(["series_id", "step"]).reset_index(drop=True),
            reference.sort_values(["series_id", "step"]).reset_index(drop=True),
        )
    # timestamps continue each series' index at its inferred frequency
    assert reference["time"].tolist()[:4] == list(pd.date_range("2022-07-01", periods=4, freq="MS"))
    assert reference["step"].tolist() == [1, 2, 3, 4] * 2
    assert list(reference.columns) == ["series_id", "time", "step", "forecast"]


def _as_text(frame, column, style):
    return frame.assign(**{column: frame[column].dt.strftime(style).astype(object)})


def test_arrays_and_series_fit_without_timestamps():
    values = np.stack([_monthly(seed=1).to_numpy(), _monthly(level=5.0, seed=2).to_numpy()], 1)
    two = Forecaster(**QUICK).fit(values)
    assert two.series_ids == ("0", "1")
    frame = two.forecast(2, series="1")
    assert frame["time"].tolist() == [30, 31]  # positions continue the series
    one = Forecaster(**QUICK).fit(values[:, 1]).forecast(2)
    assert one["series_id"].tolist() == ["0", "0"]
    for same in (values[:, 1:2], pd.Series(values[:, 1])):
        np.testing.assert_array_equal(Forecaster(**QUICK).fit(same).forecast(2), one)
    with pytest.raises(ValueError, match="freq='MS' was given for an array"):
        Forecaster(**QUICK).fit(values, freq="MS")


def test_an_integer_index_numbers_the_steps_and_only_relabels_the_forecast():
    values = _monthly(seed=1).to_numpy()
    positions = Forecaster(**QUICK).fit(values)  # an array: no time, row positions from 0
    want = positions.forecast(3)
    numbered = pd.DataFrame({"v": values}, index=pd.Index(1001 + 5 * np.arange(30), name="t"))
    # the same numbers as a time column of a long frame, and as its text (a CSV's cells)
    long = numbered.reset_index().assign(id="v")
    forms = {
        "index": {"data": numbered},
        "long": {"data": long, "id_col": "id", "time_col": "t", "target": "v"},
        "text": {"data": long.assign(t=long["t"].astype(str)), "id_col": "id", "time_col": "t"},
    }
    for name, form in forms.items():
        model = Forecaster(**QUICK).fit(**form)
        got = model.forecast(3)
        np.testing.assert_array_equal(got["forecast"], want["forecast"], err_msg=name)
        assert got["time"].tolist() == [1151, 1156, 1161], name  # the numbering goes on
        assert model.recipe.step == 5 and model.recipe.time_col == "t"
    assert want["time"].tolist() == [30, 31, 32]
    # observing continues the numbering, with the next step numbers or none
    same = model.observe("v", [values[-1]], timestamps=[1151], horizon=2)
    assert same.timestamps == ("1156", "1161")
    assert model.observe("v", [values[-1]], horizon=1).timestamps == ("1161",)
    with pytest.raises(ValueError, match="reading at step 1171, expected step 1161"):
        model.observe("v", [1.0], timestamps=[1171])
    # a Series' integer labels are its steps; pandas' default RangeIndex labels nothing
    with pytest.raises(ValueError, match="reading at step 1171, expected step 1161"):
        model.observe("v", pd.Series([1.0], index=[1171]))
    labelled = model.observe("v", pd.Series([values[-1]], index=[1161]), horizon=1)
    assert labelled.timestamps == ("1166",)
    assert model.observe("v", pd.Series([values[-1]]), horizon=1).timestamps == ("1171",)
    # one fit, then observed through the windows (step numbers sent with the readings)
    cutoffs = Forecaster(**QUICK).cross_validation(numbered, horizon=2, windows=2, refit=False)
    # statsforecast's layout: the last window ends at the last step, 1146 (reading 29)
    assert cutoffs["cutoff"].unique().tolist() == [1126, 1136]
    assert cutoffs["time"].tolist() == [1131, 1136, 1141, 1146]


@pytest.mark.parametrize(
    ("index", "fragment"),
    [
        (np.delete(np.arange(31), 7), "step 8 at row 7, expected 7 (steps of 1): a gap"),
        (np.arange(30)[::-1], "step 28 at row 1 follows step 29"),
        (np.arange(30) + 0.5, "index holds float64 values (0.5, 1.5, 2.5, ...)"),
    ],
)
def test_an_index_of_steps_with_a_gap_or_no_whole_numbers_is_refused(index, fragment):
    data = pd.DataFrame({"v": _monthly(seed=1).to_numpy()}, index=index)
    with pytest.raises(ValueError) as caught:
        Forecaster(**QUICK).fit(data)
    assert fragment in str(caught.value)


def test_each_series_gets_its_own_scaler():
    a, b = _monthly(seed=1), _monthly(level=5000.0, seed=2)
    model = Forecaster(**QUICK, scaler="standard").fit(pd.DataFrame({"a": a, "b": b}))
    for series_id, series in (("a", a), ("b", b)):
        expected = fit_scaler(series.to_numpy(), "standard", ["value"])
        assert model.series_state(series_id).scaler == expected
    pooled = fit_scaler(np.concatenate([a, b]), "standard", ["value"])
    assert model.scaler == pooled  # what a series first seen later starts with
    assert model.fresh_state().scaler == pooled
    assert model.series_state("a").scaler != model.series_state("b").scaler


@pytest.mark.parametrize("kind", ["stateful", "stream", "stateless"])
def test_after_the_warm_up_no_observe_or_forecast_compiles(kind):
    from lstmlab.runtime import counting_programs

    model = _forecaster(kind)
    model.warm_up(8, 4, max_series=3)  # row buckets of 1, 2 and 4 series
    with counting_programs() as compiled:
        for count in (3, 5, 8, 1, 7, 2, 6, 4):  # every count up to the warmed 8, in pieces
            model.observe("a", _series(count, seed=count), horizon=count % 4 + 1)
        model.observe_many({"b": _series(5, seed=1), "c": _series(2, seed=2)}, horizon=3)
        model.forecast(4)
    assert compiled.total == 0, str(compiled)


def test_forecasts_are_the_median_over_seeds():
    config = LSTMConfig(units=(4,), timesteps=3, stateful=True, return_sequences=True)
    recipe = Recipe(window=3, columns=("value",), freq="h")
    scaler = fit_scaler(np.arange(10.0), "minmax", ["value"])
    singles = [
        Forecaster.from_params(config, init_params(config, seed), recipe=recipe, scaler=scaler)
        for seed in range(3)
    ]
    import jax

    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *[m.params for m in singles])
    stacked = jax.tree.map(lambda leaf: leaf[:, 0], stacked)  # (seeds, ...) from 3 x (1, ...)
    together = Forecaster.from_params(config, stacked, recipe=recipe, scaler=scaler, seeds=3)
    readings, stamps = np.arange(7.0) % 4, pd.date_range("2024-01-01", periods=7, freq="h")
    each = np.stack([m.observe("s", readings, stamps, horizon=5).values for m in singles])
    median = together.observe("s", readings, stamps, horizon=5).values
    np.testing.assert_allclose(median, np.median(each, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(each[0], each[1])  # the seeds differ, so the median means something


def test_several_targets_give_one_row_per_target():
    times = pd.date_range("2024-01-01", periods=24, freq="D")
    long = pd.DataFrame(
        {
            "series_id": "m",
            "time": times,
            "load": np.sin(np.arange(24) / 3) + 2,
            "temp": np.cos(np.arange(24) / 5) * 4,
        }
    )
    model = Forecaster(**QUICK).fit(
        long, target=["load", "temp"], id_col="series_id", time_col="time"
    )
    frame = model.forecast(2)
    assert list(frame.columns) == ["series_id", "time", "step", "target", "forecast"]
    assert frame["target"].tolist() == ["load", "temp", "load", "temp"]
    values = model.series_forecast("m", 2).values  # (horizon, columns)
    np.testing.assert_array_equal(frame["forecast"].to_numpy().reshape(2, 2), values)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (
            pd.Series(
                [1.0, 2.0, 4.0, 3.0],
                index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]),
            ),
            {},
            "cannot infer the frequency of series '0' from its timestamps",
        ),
        (
            pd.Series(
                [1.0, 2.0, 4.0, 3.0],
                index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]),
            ),
            {"freq": "D"},
            "series '0': reading 2 has timestamp 2024-01-05 00:00:00, expected 2024-01-03 "
            "00:00:00 (frequency D): a gap",
        ),
        (
            pd.DataFrame({"when": ["2024-01-01", "2024-01-02", "2024-01-03"], "v": [1.0, 2, 3]}),
            {},
            # the dtype pandas gives text: "str" in pandas 3, "object" in pandas 2
            f"series 'when': column 'when' is not numeric (dtype {pd.Series(['x']).dtype}); "
            "pass time_col=",
        ),
        (
            pd.DataFrame({"v": [1.0, np.nan, 3.0, 4.0]}),
            {},
            "series 'v' holds NaN or infinite values at row 1",
        ),
        (pd.DataFrame({"v": [2.0] * 10}), {}, "series 'v': constant series"),
        (
            pd.DataFrame(
                {
                    "unique_id": [1, 1, "1", "1"],
                    "ds": list(pd.date_range("2024-01", periods=2, freq="MS")) * 2,
                    "y": [1.0, 2.0, 3.0, 4.0],
                }
            ),
            {},
            "id column 'unique_id' holds 1 and '1', which name the same series '1'; make the "
            "ids one type",
        ),
        (
            # a row without an id belongs to no series: refused, never dropped
            pd.DataFrame(
                {
                    "unique_id": ["a", "a", None, "a"],
                    "ds": pd.date_range("2024-01", periods=4, freq="MS"),
                    "y": [1.0, 2.0, 3.0, 4.0],
                }
            ),
            {},
            "id column 'unique_id' has no id at row 3; fill it or remove the row",
        ),
        (
            pd.DataFrame({"d": ["01/02/2024", "01/03/2024", "01/04/2024"], "v": [1.0, 2, 3]}),
            {"time_col": "d"},
            "time column 'd' holds dates with '/' such as '01/02/2024', whose day and month "
            "order is ambiguous; pass time_format",
        ),
        (
            pd.DataFrame({"d": ["2024-01", "2024-02", "soon"], "v": [1.0, 2, 3]}),
            {"time_col": "d"},
            "time column 'd' row 3 holds 'soon', which is not a timestamp",
        ),
        (
            pd.Series([1.0, 2, 3], index=pd.Index(["2024-01", "2024-02", "2024-0x"], name="m")),
            {},
            "time index 'm' row 3 holds '2024-0x', which is not a timestamp",
        ),
        (
            pd.DataFrame(
                {"v": [1.0, 2, 3, 4]},
                index=pd.MultiIndex.from_product([["a", "b"], pd.date_range("2024", periods=2)]),
            ),
            {},
            "the rows have a MultiIndex ([None, None]); pass data.reset_index() with id_col=",
        ),
        (np.array(["a", "b"]), {}, "data must be a DataFrame, a Series or a numeric array"),
    ],
)
def test_fit_refuses_bad_data_with_the_fix(data, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Forecaster(**QUICK).fit(data, **kwargs)


def test_unfitted_and_config_errors():
    with pytest.raises(ValueError, match="this Forecaster is not fitted yet; call fit"):
        Forecaster().forecast(3)
    with pytest.raises(ValueError, match="pass either config= or the config's fields"):
        Forecaster(config=ForecasterConfig(), epochs=3)
    assert Forecaster(config=ForecasterConfig(epochs=7)).config.epochs == 7
    assert Forecaster(epochs=7).config == ForecasterConfig(epochs=7)


def test_observe_takes_frames_and_series_and_continues_the_forecast(tmp_path):
    data = _monthly(seed=3)
    model = Forecaster(**QUICK).fit(data.iloc[:24].rename("sales"))
    rest = data.iloc[24:]
    frame_in = pd.DataFrame({"month": rest.index.astype(str), "sales": rest.to_numpy()})
    via_frame = model.observe("sales", frame_in.iloc[:3], horizon=2)
    via_series = model.observe("sales", rest.iloc[3:], horizon=2)
    assert via_frame.seen == 27 and via_series.seen == 30
    offline = Forecaster(**QUICK).fit(data.iloc[:24].rename("sales"))
    at_once = offline.observe("sales", rest.to_numpy(), rest.index, horizon=2)
    np.testing.assert_allclose(via_series.values, at_once.values, rtol=1e-5)
    frame = model.forecast(2)
    assert frame["time"].tolist() == list(pd.date_range("2022-07-01", periods=2, freq="MS"))
    np.testing.assert_array_equal(frame["forecast"], at_once.values[:, 0])


def test_plot_returns_a_figure_without_touching_the_backend():
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    model = Forecaster(**QUICK).fit(pd.DataFrame({"a": _monthly(seed=1), "b": _monthly(seed=2)}))
    figure = model.plot(horizon=5, history=10)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    lines = {line.get_label(): line for line in figure.axes[1].get_lines()}
    np.testing.assert_allclose(lines["forecast"].get_ydata(), model.forecast(5, "b")["forecast"])
    np.testing.assert_allclose(lines["history"].get_ydata(), _monthly(seed=2).to_numpy()[-10:])
    assert matplotlib.get_backend() == backend
    # What a person reads: the series' name on the y axis (the column is a placeholder), the
    # frequency in words, a forecast in another colour than the history, the legend beside
    # the axes instead of over the data.
    ax = figure.axes[1]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("b", "time (monthly)")
    assert lines["forecast"].get_color() != lines["history"].get_color()
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1


def test_a_loaded_forecasters_plot_shows_the_readings_its_store_logged(tmp_path):
    data = _monthly(seed=1).rename("sales")
    Forecaster(**QUICK).fit(data.iloc[:24]).save(tmp_path / "m")
    with Forecaster.load(tmp_path / "m") as loaded:  # no readings kept: the store's log
        loaded.observe("sales", data.iloc[24:30])
        figure = loaded.plot(horizon=3, history=4)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    np.testing.assert_allclose(lines["history"].get_ydata(), data.to_numpy()[26:30])
    assert list(pd.DatetimeIndex(lines["history"].get_xdata())) == list(data.index[26:30])


def test_load_reads_no_state_until_a_series_is_used(tmp_path, monkeypatch):
    from lstmlab.live.state_store import SeriesStore

    model = _forecaster("stateful")
    model.observe_many({f"s{i}": _series(3, seed=i) for i in range(50)})
    model.save(tmp_path / "m")
    reads = []
    original_get, original_items = SeriesStore.get, SeriesStore.items
    monkeypatch.setattr(
        SeriesStore, "get", lambda self, i: reads.append(i) or original_get(self, i)
    )
    monkeypatch.setattr(
        SeriesStore, "items", lambda self: reads.append("all") or original_items(self)
    )
    with Forecaster.load(tmp_path / "m") as loaded:
        assert reads == []  # start-up does not grow with the number of series
        forecast = loaded.series_forecast("s7", 2)
        assert reads == ["s7"]
    np.testing.assert_array_equal(forecast.values, model.series_forecast("s7", 2).values)


@pytest.mark.xdist_group("readme")  # the README's first block: the same programs (its seeds)
def test_five_line_example_on_the_airline_data(data_dir, tmp_path):
    # the README's five lines as written: the defaults, fully trained
    data = pd.read_csv(data_dir / "airline_passengers.csv", index_col="Date", parse_dates=True)
    fc = Forecaster().fit(data)
    frame = fc.forecast(12)
    fc.plot(horizon=12, level=[80, 95]).savefig(tmp_path / "forecast.png")
    assert frame["time"].tolist() == list(pd.date_range("1961-01-01", periods=12, freq="MS"))
    assert (frame["series_id"] == "Passengers").all() and np.isfinite(frame["forecast"]).all()
    assert (tmp_path / "forecast.png").stat().st_size > 10_000
    # it follows the season: the shape of 1960 (a flat or lagging forecast fails this)
    last_year = data["Passengers"].loc["1960"].to_numpy()
    assert np.corrcoef(frame["forecast"], last_year)[0, 1] >= 0.8
    # the choice among the kinds was made on the validation tail, and is reported
    scores = fc.metrics["model_scores"]
    assert fc.metrics["model"] == fc.recipe.kind and len(scores) == 9  # 3 kinds x 3 norms
    assert min(scores, key=scores.get) == f"{fc.recipe.kind} ({fc.recipe.norm})"


@pytest.mark.parametrize("validation", [0.0, 0.2])
@pytest.mark.parametrize("model", ["stateful", "mlp"])
def test_fit_gives_the_losses_of_the_driver_called_directly(model, validation):
    import jax

    from lstmlab.core.train import EarlyStopping, Plateau, TrainConfig, fit, init_train_states
    from lstmlab.data.layouts import make_sample_batches, make_stream_batches, make_windows

    steps = np.arange(80)
    values = np.stack([np.sin(steps / 5) * 3 + 10, np.cos(steps / 7) + 2], axis=1)  # 2 series
    early = validation > 0
    epochs = 40 if early else 3
    forecaster = Forecaster(
        model=model,
        window=4,
        units=(5,),
        epochs=epochs,
        seeds=2,
        seed=7,
        norm="none",
        validation=validation,
        patience=2,
    )
    forecaster.fit(values)
    # The same training by hand: one scaler per series, the layout, the driver.
    scaled = [
        fit_scaler(values[:, [j]], "minmax", ["v"]).transform(values[:, [j]]).astype(np.float32)
        for j in range(2)
    ]
    fit_end = 64  # 80 - round(0.2 * 80): the validation tail is the last 16 steps
    config = forecaster.model_config
    train_config = TrainConfig(
        epochs=epochs,
        learning_rate=3e-3,
        shuffle=model == "mlp",
        seed=7,
        early_stopping=EarlyStopping(patience=2) if early else None,
        plateau=Plateau(patience=1) if early else None,
    )
    val, state = None, "zeros"
    end = fit_end if early else 80

    def window_streams(parts):  # one stream of windows per series, rows series-major
        laid = [make_stream_batches(w.x, w.y, batch_size=1) for w in parts]
        return SimpleNamespace(
            x_batches=np.concatenate([b.x_batches for b in laid], axis=1),
            y_batches=np.concatenate([b.y_batches for b in laid], axis=1),
        )

    if model == "stateful":
        batch_size = 2  # one stream per series, carried into the validation tail
        layout = window_streams([make_windows(s[:end], length=4) for s in scaled])
        if early:
            val_layout = window_streams([make_windows(s[fit_end - 4 :], length=4) for s in scaled])
            val, state = (val_layout.x_batches, val_layout.y_batches), "carry"
    else:
        windows = [make_windows(s[:end], length=4) for s in scaled]
        x = np.concatenate([w.x for w in windows])
        y = np.concatenate([w.y for w in windows])
        batch_size = 4
        layout = make_sample_batches(x, y, batch_size=batch_size, trim="start")
        if early:
            tails = [make_windows(s[fit_end - 4 :], length=4) for s in scaled]
            val_layout = make_sample_batches(
                np.concatenate([w.x for w in tails]),
                np.concatenate([w.y for w in tails]),
                batch_size=batch_size,
                trim="start",
            )
            val = (val_layout.x_batches, val_layout.y_batches)
    states = init_train_states(
        config, train_config, [7, 8], batch_size, keys=[jax.random.key(7), jax.random.key(8)]
    )
    trained, log = fit(
        config,
        train_config,
        states,
        layout.x_batches,
        layout.y_batches,
        validation=val,
        validation_state=state,
    )
    last = [float(log.loss[log.epochs_run[s] - 1, s]) for s in range(2)]
    assert forecaster.metrics["final_loss_per_seed"] == last
    assert forecaster.metrics["epochs_run"] == log.epochs_run.tolist()
    assert np.isfinite(log.loss[: min(log.epochs_run)]).all()
    expected = trained.params
    if early:
        # then trained again on every reading, the tail included, for the median best epoch
        refit_epochs = int(np.median(np.maximum(log.best_epoch, 0) + 1))
        assert forecaster.metrics["refit_epochs"] == refit_epochs
        if model == "stateful":
            whole = window_streams([make_windows(s, length=4) for s in scaled])
        else:
            windows = [make_windows(s, length=4) for s in scaled]
            whole = make_sample_batches(
                np.concatenate([w.x for w in windows]),
                np.concatenate([w.y for w in windows]),
                batch_size=batch_size,
                trim="start",
            )
        refit_config = TrainConfig(
            epochs=refit_epochs, learning_rate=3e-3, shuffle=model == "mlp", seed=7
        )
        again = init_train_states(
            config, refit_config, [7, 8], batch_size, keys=[jax.random.key(7), jax.random.key(8)]
        )
        expected = fit(config, refit_config, again, whole.x_batches, whole.y_batches)[0].params
        unrefitted = Forecaster(**{**forecaster.config.to_dict(), "refit": False}).fit(values)
        for leaf, reference in zip(
            jax.tree.leaves(unrefitted.params), jax.tree.leaves(trained.params), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(leaf), np.asarray(reference))
    else:
        assert forecaster.metrics["refit_epochs"] is None
    for leaf, reference in zip(
        jax.tree.leaves(forecaster.params), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(leaf), np.asarray(reference))
    if early:
        # it stopped by itself, and kept the best epoch's weights
        assert forecaster.metrics["best_epoch"] == log.best_epoch.tolist()
        if model == "mlp":  # this one stops before the most epochs
            assert (log.epochs_run < epochs).any()
            assert (log.epochs_run == log.best_epoch + 2 + 1).any()
    else:
        assert forecaster.metrics["loss"] == [float(v) for v in log.loss.mean(axis=1)]
        assert forecaster.metrics["best_epoch"] is None
    # and the check can fail: another seed gives other losses
    other = init_train_states(config, train_config, [8, 9], batch_size)
    _, other_log = fit(
        config,
        train_config,
        other,
        layout.x_batches,
        layout.y_batches,
        validation=val,
        validation_state=state,
    )
    assert not np.array_equal(other_log.loss[:2], log.loss[:2])


def _seasonal(length, season, seed=0, noise=0.1):
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    return 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / season) + rng.normal(0, noise, length)


def test_the_default_window_covers_the_season():
    from lstmlab.data.seasons import detect_season

    one = {"model": "mlp", "units": (4,), "epochs": 1, "seeds": 1, "norm": "none"}
    monthly = pd.Series(_seasonal(60, 12), index=pd.date_range("2015-01-01", periods=60, freq="MS"))
    fitted = Forecaster(**one).fit(monthly)
    assert fitted.recipe.window == 13 and fitted.recipe.seasons == (12,)
    # no frequency: the season found in the data, plus one step
    values = _seasonal(70, 7, seed=3)
    season = detect_season(values)
    assert season == 7
    fitted = Forecaster(**one).fit(values)
    # the window follows the detected season: a series with another season gets another one
    assert fitted.recipe.window == fitted.model_config.timesteps == season + 1
    longer = Forecaster(**one).fit(_seasonal(90, 9, seed=3))
    assert longer.recipe.window == detect_season(_seasonal(90, 9, seed=3)) + 1 != season + 1
    # given seasons win; a short series caps the window at a third of its length
    assert Forecaster(**one, seasons=(4,)).fit(values).recipe.window == 6
    assert Forecaster(**one).fit(monthly.iloc[:30]).recipe.window == 10


def test_norm_auto_keeps_the_candidate_with_the_lowest_validation_rmse():
    values = _seasonal(48, 6, seed=5, noise=0.3) + np.linspace(0, 8, 48)  # a trend
    # no refit: the scores are those of the weights trained without the tail
    common = {"model": "mlp", "window": 7, "units": (6,), "epochs": 4, "seeds": 2, "refit": False}
    auto = Forecaster(**common).fit(values)
    fit_end = 48 - round(0.2 * 48)
    scale = values.max() - values.min()  # minmax: the scores are in scaled units
    rmse = {}
    for norm in ("difference", "window", "none"):
        single = Forecaster(**common, norm=norm).fit(values)
        # the criterion: recursive forecasts from every origin of the tail, every step pooled,
        # here through the public path (a new series observes the readings before the origin)
        errors = []
        for origin in range(fit_end, 48):
            single.observe(f"to-{origin}", values[:origin], new_series=True)
            forecast = single.forecast(48 - fit_end, series=f"to-{origin}")["forecast"]
            errors.append(values[origin:] - forecast.to_numpy()[: 48 - origin])
        rmse[norm] = float(np.sqrt(np.mean(np.square(np.concatenate(errors)))))
        assert auto.metrics["norm_scores"][norm] * scale == pytest.approx(rmse[norm], rel=1e-4)
        if norm == min(rmse, key=rmse.get):
            best = single
    assert len(set(rmse.values())) == 3  # the choice is not a tie
    assert auto.metrics["norm"] == min(rmse, key=rmse.get) == auto.recipe.norm
    assert auto.model_config.norm == auto.recipe.norm
    pd.testing.assert_frame_equal(auto.forecast(3), best.forecast(3, series="0"))


def test_an_exploding_seed_is_flagged_and_left_out_of_the_median():
    import jax

    values = _seasonal(40, 6, seed=2)
    model = Forecaster(model="mlp", window=6, units=(4,), epochs=2, seeds=3, norm="none").fit(
        values
    )
    scaler = model.series_state("0").scaler

    def explode(leaf):  # seed 1's weights a million times larger
        return np.asarray(leaf).copy() * np.where(np.arange(3) == 1, 1e6, 1.0).reshape(
            (3,) + (1,) * (np.ndim(leaf) - 1)
        )

    params = jax.tree.map(explode, model.params)
    exploded = Forecaster.from_params(
        model.model_config, params, recipe=model.recipe, scaler=scaler, seeds=3
    )
    exploded._network = dataclasses.replace(  # the fitted ranges
        exploded.network, calibration=model.network.calibration
    )
    exploded.observe("0", values)
    frame = exploded.forecast(4)
    singles = []
    for seed in (0, 2):  # the reference: each sound seed on its own
        single = Forecaster.from_params(
            model.model_config,
            jax.tree.map(lambda leaf, s=seed: np.asarray(leaf)[s], params),
            recipe=model.recipe,
            scaler=scaler,
        )
        singles.append(single.observe("0", values, horizon=4).values[:, 0])
    np.testing.assert_allclose(frame["forecast"], np.median(singles, axis=0), rtol=1e-6)
    assert exploded.flags["0"].flagged.tolist() == [False, True, False]
    assert "1 of 3 seeds flagged" in frame.attrs["warnings"]["0"]
    assert "1 of 3 seeds flagged" in exploded.metrics["warnings"]["0"]
    # the flag matters: the median of all three is far off
    everything = np.median([*singles, np.full(4, 1e9)], axis=0)
    assert not np.allclose(frame["forecast"], everything)
    # every seed exploding: NaN and a warning, never a number
    all_params = jax.tree.map(lambda leaf: np.asarray(leaf) * 1e6, model.params)
    broken = Forecaster.from_params(
        model.model_config, all_params, recipe=model.recipe, scaler=scaler, seeds=3
    )
    broken._network = dataclasses.replace(broken.network, calibration=model.network.calibration)
    with pytest.warns(RuntimeWarning, match="every seed's forecast failed the sanity check"):
        broken.observe("0", values)
        nan_frame = broken.forecast(2)
    assert nan_frame["forecast"].isna().all()
    assert "all 3 seed(s) flagged" in nan_frame.attrs["warnings"]["0"]
    # over HTTP the missing values are JSON nulls beside the warning, never a NaN
    with pytest.warns(RuntimeWarning):
        payload = broken.series_forecast("0", 2).to_dict()
    strict = json.loads(json.dumps(payload, allow_nan=False))
    assert np.array(strict["values"], dtype=object).ravel().tolist() == [None, None]
    assert "all 3 seed(s) flagged" in strict["warning"]


def test_interval_coverage_is_near_nominal_on_known_noise():
    rng = np.random.default_rng(11)
    values = 10 + rng.normal(0, 1.0, 600)  # white noise: the best forecast is the level
    train, test = values[:400], values[400:]
    model = Forecaster(
        model="mlp", window=6, units=(8,), epochs=30, seeds=3, norm="none", validation=0.3
    ).fit(train)
    half = model.halfwidths("0", 0.8, 1)[0, 0]
    # the half-width of a perfect forecast is 1.28 sigma; a fitted one a little wider
    assert 1.0 < half < 1.8
    frame = model.forecast(1, level=0.8)
    np.testing.assert_allclose(frame["upper"] - frame["forecast"], half)
    np.testing.assert_allclose(frame["forecast"] - frame["lower"], half)
    # coverage on the test part, one step ahead from every origin (replay: the same model)
    predicted = model.replay(values, "0")[399:-1, 0]  # forecasts of readings 400 .. 599
    covered = np.mean(np.abs(test - predicted) <= half)
    assert 0.72 <= covered <= 0.88
    # a recursive model is calibrated on its own rollouts: CALIBRATION_MIN_STEPS steps here
    assert model.calibrated_steps == CALIBRATION_MIN_STEPS == len(model.forecast(24, level=0.8))
    with pytest.raises(ValueError, match="calibrated on the validation tail for up to 24 step"):
        model.forecast(25, level=0.8)
    none = Forecaster(
        model="mlp", window=6, units=(4,), epochs=1, seeds=1, norm="none", validation=0
    ).fit(train)
    with pytest.raises(ValueError, match="no validation residuals to calibrate intervals on"):
        none.forecast(1, level=0.8)
    # After fit the noise doubles. The intervals learn from each one-step error observe sees:
    # each is kept in the state (the reading minus the forecast it held, in scaled units),
    # and once as many as the residuals have come, the interval rests on them alone.
    scale = float(model.series_state("0").scaler.scale[0])
    assert len(model.series_state("0").errors) == 0  # fit's warm start: training data
    count = int(np.isfinite(model.network.calibration.residuals["0"][:, 0, 0]).sum())
    assert count <= ERRORS_KEPT == CALIBRATION_ORIGINS  # a state keeps as many as needed
    wide = 10 + rng.normal(0, 2.0, 3 * count)
    first_widths = (lambda f: (f["upper"] - f["forecast"]).to_numpy())(model.forecast(3, level=0.8))
    inside, fixed = [], []
    for k, value in enumerate(wide):
        frame = model.forecast(3, level=0.8)
        lower, forecast, upper = frame[["lower", "forecast", "upper"]].to_numpy()[0]
        inside.append(lower <= value <= upper)
        fixed.append(abs(value - forecast) <= half)
        model.observe("0", [value])
        errors = model.series_state("0").errors[:, 0]
        assert len(errors) == min(k + 1, ERRORS_KEPT)
        np.testing.assert_allclose(errors[-1] * scale, value - forecast, rtol=1e-4, atol=1e-4)
        if k + 1 >= count:  # the latest `count` errors alone: their conformal rank
            latest = np.abs(errors[-count:]) * scale
            want = np.sort(latest)[int(np.ceil((count + 1) * 0.8)) - 1]
            after = model.forecast(3, level=0.8)
            width = (after["upper"] - after["forecast"]).to_numpy()
            np.testing.assert_allclose(width[0], want, rtol=1e-5)
            # further steps widen as the first did
            np.testing.assert_allclose(width / width[0], first_widths / first_widths[0])
    assert np.mean(fixed[count:]) < 0.6 < 0.7 <= np.mean(inside[count:]) <= 0.9


@pytest.mark.parametrize("kind", ["mlp", "stateful"])
def test_direct_forecasts_are_the_models_outputs(tmp_path, kind):
    import jax

    from lstmlab.core.model import apply, init_state

    values = _seasonal(50, 6, seed=4)
    model = Forecaster(
        model=kind, window=6, units=(4,), epochs=2, seeds=3, norm="none", horizon=3
    ).fit(values)
    assert model.model_config.outputs == 3
    scaler = model.series_state("0").scaler
    x = scaler.transform(values[:, None])  # (time, 1)
    # an MLP reads its last window; a stateful model every overlapping window in turn, the
    # state carried from one to the next (as it was trained)
    starts = range(len(x) - 6 + 1) if kind == "stateful" else [len(x) - 6]
    outputs = []
    for seed in range(3):
        params = jax.tree.map(lambda leaf, s=seed: np.asarray(leaf)[s], model.params)
        state = init_state(model.model_config, 1)
        for start in starts:
            window = jax.numpy.asarray(x[None, start : start + 6])
            y, state = apply(model.model_config, params, state, window)
        y = np.asarray(y).reshape(3)  # the output after the last window
        outputs.append(scaler.inverse_transform(y[:, None])[:, 0])
    expected = np.median(outputs, axis=0)
    np.testing.assert_allclose(model.forecast(3)["forecast"], expected, rtol=1e-5)
    np.testing.assert_allclose(model.forecast(2)["forecast"], expected[:2], rtol=1e-5)
    with pytest.raises(ValueError, match="forecasts up to 3 steps at once .* fit with horizon=4"):
        model.forecast(4)
    with pytest.raises(ValueError, match="forecasts up to 3 steps at once"):
        model.observe("0", values[-1:] + 1.0, horizon=4)
    assert model.series_state("0").seen == 50  # the refused observe changed nothing
    model.save(tmp_path / "m")
    with Forecaster.load(tmp_path / "m") as loaded:
        pd.testing.assert_frame_equal(loaded.forecast(3, level=0.9), model.forecast(3, level=0.9))
        assert loaded.recipe == model.recipe and loaded.config == model.config


def test_old_configs_and_recipes_load_as_the_models_they_were():
    old = {
        "model": "stateful",
        "window": 6,
        "units": [],
        "epochs": 200,
        "learning_rate": 3e-3,
        "batch_size": None,
        "seeds": 5,
        "seed": 0,
        "scaler": "minmax",
    }
    config = ForecasterConfig.from_dict(old)
    assert (config.window, config.norm, config.validation, config.horizon) == (6, "none", 0, 1)
    assert ForecasterConfig.from_dict(config.to_dict()) == config
    assert ForecasterConfig.from_dict(ForecasterConfig().to_dict()) == ForecasterConfig()
    recipe = Recipe.from_dict(
        {"kind": "mlp", "window": 4, "columns": ["v"], "freq": None, "time_col": None}
    )
    assert (recipe.horizon, recipe.norm, recipe.seasons) == (1, "none", ())
    with pytest.raises(ValueError, match="unknown ForecasterConfig fields"):
        ForecasterConfig.from_dict({**old, "windows": 3})


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="norm='auto' chooses the normalisation on the"):
        ForecasterConfig(validation=0)
    with pytest.raises(ValueError, match="validation must be a fraction"):
        ForecasterConfig(validation=1.0)


# --------------------------------------------------------------------------- issue 12


def _fitted_mlp(data=None, **fit_kwargs):
    data = _monthly(length=40, seed=5) if data is None else data
    settings = {"model": "mlp", "window": 3, "units": (4,), "epochs": 1, "validation": 0.0}
    return Forecaster(**settings, norm="none").fit(data, **fit_kwargs)


def test_an_unknown_series_id_is_refused_unless_new_series_is_asked(tmp_path):
    data = pd.DataFrame({"Passengers": _monthly(40, level=100.0, seed=5)})
    model = _fitted_mlp(data)
    before = model.series_state("Passengers")
    with pytest.raises(ValueError) as info:
        model.observe("passengers", [101.0], ["2023-05-01"])  # the case of a letter wrong
    assert str(info.value) == (
        "series 'passengers' is not one of this model's 1 series (did you mean "
        "'Passengers'?); its series: 'Passengers'. To start a new series from a fresh "
        "state, pass new_series=True"
    )
    with pytest.raises(ValueError, match="is not one of this model's 1 series"):
        model.observe_many({"Passengers": [101.0], "typo": [1.0]}, {"Passengers": ["2023-05-01"]})
    assert model.series_ids == ("Passengers",)  # nothing stored, the known series untouched
    _assert_same_state(model.series_state("Passengers"), before)
    model.observe("passengers", [101.0], ["2023-05-01"], new_series=True)
    assert model.series_ids == ("Passengers", "passengers")
    # a known series needs no flag, and the flag changes nothing for it
    model.observe("Passengers", [101.0], ["2023-05-01"])
    assert model.series_state("Passengers").seen == before.seen + 1


def test_readings_beyond_the_plausible_range_are_refused_at_the_limit(tmp_path):
    data = pd.DataFrame({"a": _monthly(40, level=100.0, seed=5), "b": _monthly(40, 5.0, 6)})
    model = _fitted_mlp(data)
    low, high = data["a"].min(), data["a"].max()
    width = high - low
    edge = high + PLAUSIBLE_FACTOR * width  # the limit, computed here from the data
    # the service, with its default settings, refuses at the same limit
    from lstmlab.live.service import LiveService

    service = LiveService(model.save(tmp_path / "model"))
    try:
        with pytest.raises(ValueError, match=r"series 'a': reading 0 \(.*\) is outside the plaus"):
            service.observe("a", [edge * (1 + 1e-9)], ["2023-05-01"], None, 1)
    finally:
        service.store.close()
    np.testing.assert_array_equal(
        model.check_values("a", [edge * (1 - 1e-12)])[:, 0], [edge * (1 - 1e-12)]
    )
    with pytest.raises(ValueError, match=r"series 'a': reading 0 \(.*\) is outside the plausible"):
        model.check_values("a", [edge * (1 + 1e-9)])
    with pytest.raises(ValueError, match="plausible range"):
        model.check_values("a", [low - PLAUSIBLE_FACTOR * width - 1e-6 * width])
    assert model.check_values("a", [high + 15 * width], plausible_factor=21.0).shape == (1, 1)
    with pytest.raises(ValueError, match="plausible_factor must be > 0, got 0"):
        model.check_values("a", [1.0], plausible_factor=0)
    # a new series is held to the range of all training values
    pooled_high = max(data.max()) + PLAUSIBLE_FACTOR * (max(data.max()) - min(data.min()))
    model.check_values("new", [pooled_high * (1 - 1e-9)])
    with pytest.raises(ValueError, match="series 'new': reading 0"):
        model.check_values("new", [pooled_high * (1 + 1e-9)])
    # None accepts any finite float32 value; beyond float32 never
    assert model.check_values("a", [1e30], plausible_factor=None)[0, 0] == 1e30
    with pytest.raises(ValueError, match="beyond the float32 range"):
        model.check_values("a", [1e39], plausible_factor=None)
    # observe refuses before anything is stored; observe with None applies it
    before = model.series_state("a")
    with pytest.raises(ValueError, match="--allow-implausible"):
        model.observe("a", [1e39 / 1e10], ["2023-05-01"])
    _assert_same_state(model.series_state("a"), before)
    with pytest.warns(RuntimeWarning, match="every seed's forecast failed the sanity check"):
        assert model.observe("a", [1e6], ["2023-05-01"], plausible_factor=None).seen == 41


def test_the_reading_check_survives_save_and_old_folders(tmp_path):
    model = _fitted_mlp()
    model.save(tmp_path / "m")
    with Forecaster.load(tmp_path / "m") as loaded:
        for series_id in ("0", "other"):
            for got, want in zip(
                loaded.network.calibration.extremes_of(series_id, loaded.scaler),
                model.network.calibration.extremes_of(series_id, model.scaler),
                strict=True,
            ):
                np.testing.assert_array_equal(got, want)
    # a folder written before the check holds only the widened ranges: the extremes return
    arrays = {}
    saved = model.network.calibration.to_dict(arrays)
    del saved["extremes"], saved["default_extremes"]
    old = type(model.network.calibration).from_dict(json.loads(json.dumps(saved)), arrays)
    for got, want in zip(old.extremes["0"], model.network.calibration.extremes["0"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_model_without_training_data_checks_against_its_scaler():
    model = _forecaster("mlp")  # a standard scaler: mean ± one standard deviation
    offset, scale = model.scaler.offset[0], model.scaler.scale[0]
    high = offset + scale + PLAUSIBLE_FACTOR * 2 * scale
    model.check_values("s", [high * (1 - 1e-9)])
    with pytest.raises(ValueError, match="plausible range"):
        model.check_values("s", [high * (1 + 1e-9)])
    # another such model holds readings to its own scaler, whichever was checked first
    other = _forecaster("mlp", seed=1)
    offset, scale = other.scaler.offset[0], other.scaler.scale[0]
    assert not np.isclose(offset + scale + PLAUSIBLE_FACTOR * 2 * scale, high)
    high = offset + scale + PLAUSIBLE_FACTOR * 2 * scale
    other.check_values("s", [high * (1 - 1e-9)])
    with pytest.raises(ValueError, match="plausible range"):
        other.check_values("s", [high * (1 + 1e-9)])


def test_fit_refuses_absurd_outliers_unless_allowed():
    values = _monthly(40, seed=5)
    values.iloc[17] = 1e30
    with pytest.raises(
        ValueError,
        match=re.escape(
            "series '0': value 1e+30 at row 17 (2021-06-01 00:00:00) is an absurd outlier"
        ),
    ):
        _fitted_mlp(values)
    with pytest.raises(ValueError, match="pass allow_outliers=True"):
        _fitted_mlp(values.to_numpy())
    model = _fitted_mlp(values, allow_outliers=True)
    assert model.series_state("0").seen == 40
    values.iloc[17] = 1e39
    with pytest.raises(ValueError, match="value 1e\\+39 at row 17 .* is beyond the float32"):
        _fitted_mlp(values, allow_outliers=True)


def _outlier_verdict(values):
    from lstmlab.data.frames import check_outliers, parse_training_data

    try:
        check_outliers(
            parse_training_data(np.asarray(values, float), None, None, None, None), False
        )
    except ValueError as error:
        return str(error)
    return None


def test_the_outlier_rule_accepts_every_real_and_intermittent_series(data_dir):
    frames = [pd.read_csv(path, index_col=0) for path in sorted(data_dir.glob("*.csv"))]
    minutes = pd.read_csv(data_dir / "household_power_consumption_head2000.txt", sep=";")
    frames.append(minutes.iloc[:, 2:].apply(pd.to_numeric, errors="coerce"))
    days = pd.read_csv(data_dir / "household_power_consumption_days.csv", index_col=0)
    days.index = pd.to_datetime(days.index)
    frames.append(days.resample("W").sum())
    checked = 0
    for frame in frames:
        for column in frame.columns:
            values = frame[column].dropna().to_numpy(float)
            assert _outlier_verdict(values) is None, column
            checked += 1
    assert checked >= 24
    rng = np.random.default_rng(0)
    for share in (0.3, 0.05, 0.01, 0.005):
        for length in (50, 200, 2000):
            for _ in range(30):
                spikes = rng.negative_binomial(1, 0.01, length) * (rng.random(length) < share)
                assert _outlier_verdict(spikes) is None
    # and the rule fires: one cell, two cells, a sentinel code, a spike among spikes
    base = rng.normal(10.0, 2.0, 200)
    assert "absurd outlier" in _outlier_verdict(np.r_[base, 1e30])
    assert "absurd outlier" in _outlier_verdict(np.r_[base[:100], 1e30, base[100:], -1e30])
    assert "absurd outlier" in _outlier_verdict(np.r_[base, 999999.0])
    sparse = np.zeros(300)
    sparse[::10] = rng.integers(1, 20, 30)
    sparse[55] = 1e30
    assert "value 1e+30 at row 55" in _outlier_verdict(sparse)


def test_delete_series_starts_it_afresh():
    model = _forecaster("stateful")
    model.observe("s", _series(6), _times(0, 6))
    model.observe("t", _series(3, seed=2))
    assert model.delete_series("s") is True
    assert model.series_ids == ("t",) and model.store.observations("s") == []
    assert model.delete_series("s") is False
    with pytest.raises(ValueError, match="series id must be a non-empty string"):
        model.delete_series("")
    again = model.observe("s", _series(4, seed=7), _times(100, 4))  # no time order to keep
    assert again.seen == 4
    np.testing.assert_allclose(
        again.values[0], _forecaster("stateful").replay(_series(4, seed=7))[-1], atol=1e-6
    )


def test_aware_timestamps_come_back_aware_and_survive_save(tmp_path):
    model = _forecaster("stream")  # forecasts from the first reading on
    stamps = ["2024-03-01T05:00:00+05:00", "2024-03-01T05:15:00+05:00"]
    forecast = model.observe("s", [1.0, 2.0], stamps, horizon=2)
    assert forecast.to_dict()["timestamps"] == [
        "2024-03-01T05:30:00+05:00",
        "2024-03-01T05:45:00+05:00",
    ]
    last = model.series_state("s").last_timestamp
    assert last == pd.Timestamp("2024-03-01T00:15:00Z") and last.isoformat() == stamps[-1]
    frame = model.forecast(2, series="s")
    assert str(frame["time"].dt.tz) == "UTC+05:00"
    assert frame["time"].iloc[0] == pd.Timestamp("2024-03-01T05:30:00+05:00")
    # an offset change (daylight saving) is accepted; the last offset is kept
    assert model.observe("s", [3.0], ["2024-03-01T01:30:00+01:00"]).timestamps == (
        "2024-03-01T01:45:00+01:00",
    )
    model.save(tmp_path / "m")
    with Forecaster.load(tmp_path / "m") as loaded:
        assert loaded.series_state("s").last_timestamp.isoformat() == "2024-03-01T01:30:00+01:00"
    # naive stays naive; a zone name is kept by name
    assert model.series_state("never").last_timestamp is None
    model.observe("n", [1.0], ["2024-03-01T00:00:00"])
    assert model.series_state("n").last_timestamp.tzinfo is None
    index = pd.date_range("2024-03-30 23:00", periods=3, freq="15min", tz="Europe/Berlin")
    model.observe("berlin", pd.Series([1.0, 2.0, 3.0], index=index))
    assert model.series_state("berlin").zone == "Europe/Berlin"


def test_a_named_zone_follows_daylight_saving():
    config = MLPConfig(hidden=(5,), timesteps=3, features=1, outputs=1)
    scaler = fit_scaler(_series(50), "standard", ("c0",))
    recipe = Recipe(kind="mlp", window=3, columns=("c0",), freq="h")
    model = Forecaster.from_params(config, init_params(config, 0), recipe=recipe, scaler=scaler)
    index = pd.date_range("2024-03-30 22:00", periods=3, freq="h", tz="Europe/Berlin")
    forecast = model.observe("b", pd.Series([9.0, 10.0, 11.0], index=index), horizon=3)
    # 02:00 does not exist on 31 March in Berlin: 01:00+01:00 is followed by 03:00+02:00
    assert forecast.timestamps == (
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T04:00:00+02:00",
    )
    # readings sent with offsets that agree with the zone keep its name; the grid is checked
    # in hours of real time across the change
    model.observe("b", [10.0, 11.0], ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"])
    assert model.series_state("b").zone == "Europe/Berlin"
    frame = model.forecast(2, series="b")
    assert [t.isoformat() for t in frame["time"]] == [
        "2024-03-31T04:00:00+02:00",
        "2024-03-31T05:00:00+02:00",
    ]
    with pytest.raises(ValueError, match=r"expected 2024-03-31T04:00:00\+02:00"):
        model.observe("b", [1.0], ["2024-03-31T05:00:00+02:00"])


@pytest.mark.parametrize("kind", ["mlp", "stateful", "stream"])
def test_each_forecasts_error_is_kept_in_the_state_and_its_folder(tmp_path, kind):
    from lstmlab.states import state_arrays, state_from_arrays

    # The twin observes one reading at a time: each error is the reading minus the forecast
    # forecast(1) gave before it, in original units (none before a forecast exists).
    model, twin = _forecaster(kind, columns=2), _forecaster(kind, columns=2)
    values = _series(WINDOW + 8, columns=2)
    scale = np.asarray(model.series_state("s").scaler.scale)
    want = []
    for k in range(WINDOW + 8):
        if twin.series_state("s").prediction is not None:
            held = twin.forecast(1, series="s").pivot(index="step", columns="target")
            want.append(values[k] - held["forecast"].to_numpy()[0])
        twin.observe("s", values[k : k + 1], _times(k, 1))
    # a stream forecasts after every reading; a window model after a full window
    assert len(want) == (WINDOW + 7 if kind == "stream" else 8)
    np.testing.assert_allclose(twin.series_state("s").errors * scale, want, rtol=1e-4, atol=1e-4)
    # observed in pieces of several readings, each reading's error is kept all the same:
    # the forecast it met is the model's output after the reading before
    for start, stop in ((0, WINDOW), (WINDOW, WINDOW + 1), (WINDOW + 1, WINDOW + 5)):
        model.observe("s", values[start:stop], _times(start, stop - start))
    model.observe("s", values[WINDOW + 5 :], _times(WINDOW + 5, 3))
    errors = model.series_state("s").errors
    np.testing.assert_allclose(errors * scale, np.array(want), rtol=1e-4, atol=1e-4)
    # saved and loaded with the state; a state stored before errors were kept has none
    loaded = Forecaster.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.series_state("s").errors, errors)
    arrays = state_arrays(model.model_config, model.recipe, model.series_state("s"), 1)
    del arrays["errors"], arrays["errors_length"]
    old = state_from_arrays(model.model_config, model.recipe, arrays, 1, "standard", "s")
    assert len(old.errors) == 0 and old.seen == model.series_state("s").seen


@pytest.mark.parametrize("kind", ["mlp", "stateful", "stream"])
def test_a_committed_state_stands_for_its_row_only_when_decoding_gives_it_back(kind):
    from lstmlab.states import state_arrays, state_from_arrays

    model = _forecaster(kind, columns=2)
    values = _series(WINDOW + 80, columns=2)  # more errors than a state keeps
    times = [
        t.isoformat()
        for t in pd.date_range("2024-03-30", periods=len(values), freq="15min", tz="Europe/Paris")
    ]
    for start in range(0, len(values), 7):
        model.observe("s", values[start : start + 7], times[start : start + 7])
    codec = model.network.codec
    state = model.series_state("s")  # the store's cache serves the row committed last
    assert codec.holds(state) and codec.decode("s", model.store.get("s")) is state

    def fields(s):
        return {
            "rnn": [(a.h, a.c) for a in s.rnn],
            "recent": s.recent,
            "prediction": s.prediction,
            "errors": s.errors,
            "numbers": (s.last_time, s.seen, s.zone),
            "scaler": (s.scaler.kind, s.scaler.columns, s.scaler.offset, s.scaler.scale),
        }

    def read_back(s):  # the row decoded, as a fresh process reads it
        arrays = state_arrays(model.model_config, model.recipe, s, 1)
        return state_from_arrays(model.model_config, model.recipe, arrays, 1, "standard", "s")

    def same(a, b):
        if isinstance(a, np.ndarray):
            return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        if isinstance(a, list | tuple):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return type(a) is type(b) and a == b

    want, got = fields(read_back(state)), fields(state)
    assert len(state.errors) == 64 and state.zone == "+01:00"  # an aware zone is kept
    assert all(same(got[name], want[name]) for name in want), [
        name for name in want if not same(got[name], want[name])
    ]
    # states that decode to something else are not held: their rows are decoded
    others = [
        dataclasses.replace(state, recent=state.recent.astype(np.float64)),
        dataclasses.replace(state, seen=np.int64(state.seen)),
        dataclasses.replace(state, errors=np.zeros((0, 2), np.float32)),
        dataclasses.replace(state, recent=np.zeros((WINDOW + 1, 2), np.float32)),  # too long
    ]
    for other in others:
        assert not codec.holds(other)
        assert not all(same(fields(other)[k], fields(read_back(other))[k]) for k in want)
        stored = codec.encode(other)
        assert codec.decode("s", stored) is not other


def test_a_state_stored_before_zones_loads_naive():
    from lstmlab.states import state_arrays, state_from_arrays

    model = _forecaster("mlp")
    model.observe("s", [1.0, 2.0], _times(0, 2))
    arrays = state_arrays(model.model_config, model.recipe, model.series_state("s"), 1)
    assert (
        state_from_arrays(model.model_config, model.recipe, arrays, 1, "standard", "s").zone is None
    )
    del arrays["zone"]
    old = state_from_arrays(model.model_config, model.recipe, arrays, 1, "standard", "s")
    assert old.zone is None and old.last_time == model.series_state("s").last_time


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        (
            ["2024-03-01T05:00:00+05:00"],
            ["2024-03-01T05:15:00"],
            "series 's' has time-zone aware timestamps (up to 2024-03-01T05:00:00+05:00), got "
            "naive ones",
        ),
        (
            ["2024-03-01T05:00:00"],
            ["2024-03-01T05:15:00+00:00"],
            "series 's' has naive timestamps (up to 2024-03-01T05:00:00), got aware ones",
        ),
        (
            ["2024-03-01T05:00:00"],
            ["2024-03-01T05:15:00", "2024-03-01T05:30:00+00:00"],
            "series 's': timestamp 1 has a time zone and timestamp 0 has none",
        ),
        (
            ["2262-04-11T23:15:00"],
            ["2262-04-11T23:30:00", "2262-04-11T23:45:00"],
            "series 's': 1 forecast step(s) of 15min after 2262-04-11T23:45:00 pass the last "
            "timestamp pandas can hold",
        ),
    ],
)
def test_mixed_or_unbounded_timestamps_are_refused_before_anything_is_applied(first, then, message):
    model = _forecaster("mlp")
    model.observe("s", [1.0], first)
    before = model.series_state("s")
    with pytest.raises(ValueError, match=re.escape(message)):
        model.observe("s", [2.0] * len(then), then)
    _state_unchanged(model, "s", before)


def test_a_reading_whose_forecast_cannot_be_dated_never_enters():
    model = _forecaster("mlp")
    with pytest.raises(ValueError, match="4 forecast step"):  # 23:15, 23:30, 23:45, 24:00
        model.observe("s", [1.0], ["2262-04-11T23:00:00"], horizon=4)
    assert model.series_ids == ()
    stamps = ["2262-04-11T22:30:00", "2262-04-11T22:45:00", "2262-04-11T23:00:00"]
    model.observe("s", [1.0, 2.0, 3.0], stamps)  # its next step can be dated
    with pytest.raises(ValueError, match="pass the last timestamp pandas can hold"):
        model.series_forecast("s", 4)
    assert model.series_forecast("s", 3).timestamps[-1] == "2262-04-11T23:45:00"


def _programs(model):
    from lstmlab.core.model import norm_program
    from lstmlab.core.rollout import _compiled_read, _compiled_rollout

    config = model.model_config  # a window model reads with the program of all its norms
    return (
        _compiled_read(config if config.stateful else norm_program(config), True)._cache_size(),
        _compiled_rollout.cache_info().misses,  # not currsize: a full cache stops growing
    )


def test_bounded_reads_and_rollouts_equal_the_unbounded_path():
    from lstmlab.core.model import apply
    from lstmlab.core.rollout import read, rollout
    from lstmlab.stepping import stack_rnn

    model = _forecaster("stream", seed=3)  # overlapping windows: tests/test_rollout.py
    model.warm_up(16, 16)  # small buffers: 19 and 49 readings are read in pieces of 16
    config, params = model.model_config, model.params
    scaler = model.scaler
    # the independent reference: every seed's whole sequence in one apply (one scan per layer)
    whole_apply = jax.jit(jax.vmap(lambda p, s, x: apply(config, p, s, x), in_axes=(0, 0, None)))
    for count in (1, 5, 16, 19, 49):
        values = _series(count, seed=count)
        state = model.advance(f"s{count}", values, state=model.fresh_state())
        x = scaler.transform(values).astype(np.float32)[None]
        y_whole, whole = whole_apply(params, stack_rnn([model.fresh_state()]), x)
        np.testing.assert_allclose(state.prediction, np.asarray(y_whole)[:, 0, -1], atol=1e-6)
        for got, want in zip(state.rnn, whole, strict=True):
            np.testing.assert_allclose(got.h, np.asarray(want.h)[:, 0], atol=1e-6)
            np.testing.assert_allclose(got.c, np.asarray(want.c)[:, 0], atol=1e-6)
        # and bit for bit a step-by-step loop, one reading per call
        loop = stack_rnn([model.fresh_state()])
        for t in range(count):
            y_loop, loop = read(config, params, loop, x[:, t : t + 1], seeds=True)
        np.testing.assert_array_equal(state.prediction, y_loop[:, 0])
        for got, want in zip(state.rnn, loop, strict=True):
            np.testing.assert_array_equal(got.h, want.h[:, 0])
            np.testing.assert_array_equal(got.c, want.c[:, 0])
        for horizon in (2, 5, 13):
            scaled, _ = model.network.rollout([state], horizon, model.horizon_capacity)
            exact = rollout(
                config,
                params,
                stack_rnn([state]),
                np.zeros((1, 1, 1), np.float32),
                horizon=horizon,
                output=state.prediction[:, None],
                seeds=True,
            )  # the program of this horizon alone
            np.testing.assert_array_equal(scaled, exact)
    # a wrong reference would be caught: the state after one reading less differs
    shorter = model.advance("x", _series(4, seed=4)[:3], state=model.fresh_state())
    longer = model.advance("x", _series(4, seed=4), state=model.fresh_state())
    assert not np.allclose(shorter.prediction, longer.prediction, atol=1e-4)


@pytest.mark.parametrize("kind", ["stateful", "mlp"])
def test_after_warm_up_no_request_compiles(kind):
    # units of its own: no other test has compiled this model's programs
    model = _forecaster(kind, seed=11, units=(7, 3) if kind == "stateful" else (9,))
    assert model.warm_up(40, 8, max_series=3) == 3 * 2  # rows 1, 2 and 4: a read, a rollout
    assert (model.read_capacity, model.horizon_capacity) == (40, 8)
    compiled = _programs(model)
    for count, horizon in ((1, 1), (3, 8), (17, 7), (40, 3), (23, 2), (101, 8)):
        model.observe(f"s{count}", _series(count, seed=count), horizon=horizon)
        model.forecast(horizon, series=f"s{count}")
    # several series of one length in one call: rows padded to a power of two
    model.observe_many({"a": _series(5), "b": _series(5, seed=2)}, horizon=5)
    model.observe_many({i: _series(7, seed=3) for i in ("a", "b", "c")}, horizon=8)
    assert _programs(model) == compiled
    # and the count can fail: a horizon beyond the warm-up compiles (the capacity doubles)
    model.observe("late", _series(5), horizon=9)
    assert _programs(model) != compiled
    assert model.horizon_capacity == 16


def test_a_forecaster_turns_the_compile_cache_on_at_first_use(tmp_path):
    import subprocess
    import sys

    code = (
        "from lstmlab import runtime; from lstmlab.forecaster import Forecaster; "
        "before = runtime.compile_cache_dir(); Forecaster(); "
        "print(before, runtime.compile_cache_dir())"
    )
    env = dict(os.environ, LSTMLAB_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", str((tmp_path / "cache").resolve())]


def _two_monthly_series():
    """Two monthly series that start and end apart, as a long frame."""
    a, b = _monthly(length=30, seed=1), _monthly(length=26, level=5.0, seed=2)
    b.index = pd.date_range("2020-04-01", periods=26, freq="MS")  # ends a month before a
    return pd.DataFrame(
        {
            "unique_id": ["a"] * len(a) + ["b"] * len(b),
            "ds": list(a.index) + list(b.index),
            "y": np.concatenate([a.to_numpy(), b.to_numpy()]),
        }
    )


@pytest.mark.parametrize(("horizon", "windows", "step"), [(3, 3, 2), (2, 2, None), (1, 4, 1)])
def test_cross_validation_windows_are_statsforecasts(horizon, windows, step):
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    data = _two_monthly_series()
    ours = Forecaster(**QUICK, model="mlp").cross_validation(
        data, horizon=horizon, windows=windows, step=step
    )
    theirs = StatsForecast(models=[Naive()], freq="MS", n_jobs=1).cross_validation(
        df=data, h=horizon, n_windows=windows, step_size=horizon if step is None else step
    )
    theirs = theirs.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    assert ours["series_id"].tolist() == theirs["unique_id"].astype(str).tolist()
    assert ours["cutoff"].tolist() == theirs["cutoff"].tolist()
    assert ours["time"].tolist() == theirs["ds"].tolist()
    np.testing.assert_array_equal(ours["actual"].to_numpy(), theirs["y"].to_numpy())
    assert ours["step"].tolist() == [s for _ in range(2 * windows) for s in range(1, horizon + 1)]


def test_cross_validation_forecasts_are_those_of_models_fitted_by_hand():
    data = _two_monthly_series()
    config = {**QUICK, "model": "mlp"}
    refit = Forecaster(**config).cross_validation(data, horizon=2, windows=2, level=[80, 95])
    carried = Forecaster(**config).cross_validation(data, horizon=2, windows=2, refit=False)
    by_series = {i: g.set_index("ds")["y"] for i, g in data.groupby("unique_id")}
    first = {i: s.iloc[:-4] for i, s in by_series.items()}
    second = {i: s.iloc[:-2] for i, s in by_series.items()}
    once = Forecaster(**config).fit(pd.DataFrame(first))
    hand = [once.forecast(2, level=[80, 95])]
    hand.append(Forecaster(**config).fit(pd.DataFrame(second)).forecast(2, level=[80, 95]))
    expected = pd.concat(hand, ignore_index=True).sort_values(["series_id", "time"])
    got = refit.sort_values(["series_id", "time"])
    for column in ("forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12)
    # without refit: the first model observes the two readings since its cutoff
    once.observe_many(
        {i: s.iloc[-4:-2].to_numpy() for i, s in by_series.items()},
        {i: list(s.index[-4:-2]) for i, s in by_series.items()},
    )
    later = once.forecast(2).sort_values(["series_id", "time"])
    got = carried[carried["cutoff"] == carried.groupby("series_id")["cutoff"].transform("max")]
    np.testing.assert_allclose(
        got.sort_values(["series_id", "time"])["forecast"].to_numpy(),
        later["forecast"].to_numpy(),
        rtol=1e-12,
    )
    assert np.isfinite(refit["forecast"]).all() and (refit["lower_95"] <= refit["lower_80"]).all()
    # a horizon past the calibrated steps: the bounds beyond are infinite, those within are
    # the model's own
    far = Forecaster(**config).cross_validation(data, horizon=8, windows=1, level=80)
    alone = Forecaster(**config).fit(pd.DataFrame({i: s.iloc[:-8] for i, s in by_series.items()}))
    reach = alone.calibrated_steps
    assert reach < 8
    for series_id, part in far.groupby("series_id"):
        half = (part["upper"] - part["forecast"]).to_numpy()
        np.testing.assert_allclose(half[:reach], alone.halfwidths(series_id, 80, reach)[:, 0])
        assert np.isinf(half[reach:]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"horizon": 10, "windows": 3},
            "series 'a' has 30 readings; 3 window(s) of 10 step(s), 10 apart, need more than 30",
        ),
        ({"horizon": 2, "windows": 0}, "windows must be"),
        (
            {"horizon": 2, "level": 1},
            "level 1 is neither a fraction in (0, 1) nor a percent in (1, 100)",
        ),
        ({"horizon": 2, "level": []}, "level is an empty list"),
        ({"horizon": 2, "level": [90, 0.9]}, "names a level twice"),
        ({"horizon": 2, "level": 90, "validation": 0}, "this forecaster has validation=0"),
    ],
)
def test_cross_validation_refuses_before_training(kwargs, message, monkeypatch):
    monkeypatch.setattr(Forecaster, "_fit_data", lambda *a, **k: pytest.fail("it trained"))
    settings = {**QUICK, "norm": "none"} if "validation" in kwargs else QUICK
    if "validation" in kwargs:
        settings = {**settings, "validation": kwargs.pop("validation")}
    with pytest.raises(ValueError, match=re.escape(message)):
        Forecaster(**settings).cross_validation(_two_monthly_series(), **kwargs)


def test_levels_take_fractions_percents_and_lists():
    model = Forecaster(**QUICK, model="mlp").fit(_monthly(length=40, seed=5))
    one = model.forecast(1, level=0.9)
    assert list(one.columns[-2:]) == ["lower", "upper"]
    pd.testing.assert_frame_equal(model.forecast(1, level=90), one)
    several = model.forecast(1, level=[80, 0.95])
    assert list(several.columns[-4:]) == ["lower_80", "upper_80", "lower_95", "upper_95"]
    np.testing.assert_allclose(several["lower_95"], model.forecast(1, level=95)["lower"])
    np.testing.assert_allclose(
        several["upper_80"] - several["forecast"],
        model.halfwidths(several["series_id"][0], 80, 1)[:, 0],
    )


@pytest.mark.parametrize("kind", ["mlp", "stateful"])
def test_recursive_intervals_are_conformal_over_rollouts_from_every_validation_origin(kind):
    from lstmlab.scoring import conformal_halfwidths

    values = _seasonal(100, 6, seed=3, noise=0.3) + np.linspace(0, 3, 100)
    settings = {k: v for k, v in QUICK.items() if k != "window"}
    # refit=False: the reference forecasts come from the weights the residuals were measured on
    model = Forecaster(model=kind, **settings, refit=False).fit(values)
    tail = 20  # validation 0.2 of 100 readings: origins 80 .. 99, up to 20 steps each
    assert model.calibrated_steps == tail
    # the reference: each origin's forecast through the public path, a new series that
    # observes the readings before it (the single series' scaler is the default one)
    residuals = np.full((tail, tail, 1), np.nan)
    for row, origin in enumerate(range(100 - tail, 100)):
        model.observe(f"up-to-{origin}", values[:origin], new_series=True)
        forecast = model.forecast(tail, series=f"up-to-{origin}")["forecast"].to_numpy()
        seen = values[origin : origin + tail]
        residuals[row, : len(seen), 0] = seen - forecast[: len(seen)]
    for level in (0.5, 0.8):
        np.testing.assert_allclose(
            model.halfwidths("0", level, tail), conformal_halfwidths(residuals, level), rtol=1e-4
        )
    assert np.isinf(model.halfwidths("0", 0.95, tail)[-1]).all()  # one residual at step 20
    # step h has 21 - h residuals; a level L needs L / (1 - L): the reach the metrics report
    reach = model.metrics["interval_steps"]
    assert reach == {"80": 17, "90": 12, "95": 2}
    for level, steps in reach.items():
        half = model.halfwidths("0", int(level), tail)[:, 0]
        assert np.isfinite(half[:steps]).all() and np.isinf(half[steps:]).all()
    assert "90% intervals reach 12 step(s) ahead" in model.metrics["warnings"]["intervals"]


def test_a_long_series_grows_the_default_batch_by_compares_rule_and_a_given_one_stays():
    from lstmlab.data.layouts import MAX_BATCHES_PER_EPOCH
    from lstmlab.experiments import compare
    from lstmlab.experiments.settings import ModelSpec
    from lstmlab.pipeline import training_layout

    window, steps = 5, 3000
    series = [np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]]
    samples = steps - window  # one-step windows of the whole series, no validation tail
    grown = training_layout(ForecasterConfig(model="mlp"), ["a"], series, window, 1, [0])
    assert grown.x_batches.shape[0] <= MAX_BATCHES_PER_EPOCH < samples // 4
    # compare lays out the same samples in batches of the same size: one rule for both
    x = np.zeros((samples, 1, window, 1), np.float32)
    y = np.zeros((samples, 1, 1), np.float32)
    ours = compare._batches(ModelSpec(model="mlp", window=window), x, y, None)[0]
    assert grown.batch_size == ours.batch_size == -(-samples // MAX_BATCHES_PER_EPOCH)
    given = training_layout(
        ForecasterConfig(model="mlp", batch_size=4), ["a"], series, window, 1, [0]
    )
    assert given.batch_size == 4 and given.x_batches.shape[0] == samples // 4
    # A stateful model's rows are streams of windows, one window per batch: the same rule
    # grows the streams of the one series, as compare grows them
    from lstmlab.data.layouts import make_windows

    stateful = ForecasterConfig(model="stateful")
    layout = training_layout(stateful, ["a"], series, window, 1, [0])
    windows = make_windows(series[0], length=window)  # compare's samples: (samples, 1, ...)
    theirs = compare._batches(
        ModelSpec(model="stateful", window=window), windows.x[:, None], windows.y[:, None], None
    )[0]
    assert layout.batch_size == theirs.batch_size == -(-samples // MAX_BATCHES_PER_EPOCH) > 1
    assert layout.x_batches.shape[0] <= MAX_BATCHES_PER_EPOCH
    np.testing.assert_array_equal(layout.x_batches.laid_out(), theirs.x_batches)
    np.testing.assert_array_equal(layout.y_batches.laid_out(), theirs.y_batches)


@pytest.mark.parametrize("zones", [("UTC", "UTC"), ("Europe/Paris", "UTC")])
def test_the_forecast_frame_holds_each_series_own_forecast_row_for_row(zones):
    # The frame is built from whole columns; the reference is each series' own Forecast.
    model = _forecaster("mlp", columns=2)
    ends = {"a": 0, "b": 0, "c": 4}  # a and b end at one time, c later
    for (series_id, extra), zone in zip(ends.items(), (*zones, zones[0]), strict=True):
        grid = pd.date_range("2024-03-01", periods=6 + extra, freq="15min", tz=zone)
        model.observe(series_id, _series(6 + extra, 2, seed=extra), [t.isoformat() for t in grid])
    model.observe("short", _series(1, 2))  # no timestamps, too few readings: left out
    frame = model.forecast(3, series=["a", "b", "c", "short"])
    rows = []
    for series_id in ("a", "b", "c"):
        own = model.series_forecast(series_id, 3)
        for step in range(3):
            for j, column in enumerate(("c0", "c1")):
                when = pd.Timestamp(own.timestamps[step])
                rows.append((series_id, when, step + 1, column, own.values[step, j]))
    assert len(frame) == len(rows) == 18
    for got, want in zip(frame.itertuples(index=False), rows, strict=True):
        assert (got.series_id, got.step, got.target) == (want[0], want[2], want[3])
        assert pd.Timestamp(got.time) == want[1]  # the same instant, in the series' zone
        assert str(pd.Timestamp(got.time).tz) == str(want[1].tz)
        # rolled out with the other series (another batch size): float32 rounding apart
        assert got.forecast == pytest.approx(want[4], rel=1e-6)
    one_zone = len(set(zones)) == 1
    assert (frame["time"].dtype != object) == one_zone  # a datetime column where it can be


@pytest.mark.parametrize("kind", ["stateful", "mlp"])
def test_observe_sent_again_is_a_repeat_and_a_longer_retry_applies_only_its_new_part(kind):
    from lstmlab.readings import ConflictError

    model = _forecaster(kind)
    values, stamps = _series(6, seed=3), _times(0, 6)
    first = model.observe("s", values[:4], stamps[:4], horizon=2)
    again = model.observe("s", values[:4], stamps[:4], horizon=2)
    assert (again.repeated, again.seen) == (4, 4)  # nothing applied twice
    np.testing.assert_array_equal(again.values, first.values)
    # a retry that overlaps the accepted readings and goes on: only the new part is applied
    longer = model.observe("s", values[2:], stamps[2:], horizon=2)
    assert (longer.repeated, longer.seen) == (2, 6)
    reference = _forecaster(kind)
    reference.observe("r", values, stamps)
    expected = reference.forecast(2, series="r")["forecast"].to_numpy()
    np.testing.assert_array_equal(longer.values[:, 0], expected)
    # the same timestamp with other values is a conflict, and changes nothing
    with pytest.raises(ConflictError, match="a repeated reading must be identical"):
        model.observe("s", values[5:] + 1.0, stamps[5:])
    assert model.series_state("s").seen == 6


def test_the_model_folder_does_not_grow_with_the_length_of_the_series(tmp_path):
    # A direct model's residuals come from every origin of the validation tail; the folder
    # keeps those of CALIBRATION_ORIGINS of them, evenly spread, so its size is the same
    # for a series four times longer.
    from lstmlab.pipeline import CALIBRATION_ORIGINS

    sizes, kept = [], []
    for length in (600, 2400):
        values = _seasonal(length, 12, seed=2) + 100.0
        settings = {"model": "mlp", "window": 4, "units": (4,), "epochs": 1, "seeds": 1}
        model = Forecaster(**settings, norm="none", horizon=2, quiet=True).fit(values)
        tail = model.metrics["validation_steps"]["0"]  # an array's series is "0"
        assert tail - 1 > CALIBRATION_ORIGINS  # more origins than are kept
        residuals = model.network.calibration.residuals["0"]  # (origins, horizon, columns)
        kept.append(residuals.shape)
        folder = model.save(tmp_path / f"m{length}")
        sizes.append(sum(f.stat().st_size for f in folder.iterdir() if f.is_file()))
    assert kept == [(CALIBRATION_ORIGINS, 2, 1)] * 2
    assert sizes[1] < 1.05 * sizes[0], sizes  # folders of the same size, not four times


def test_a_daily_local_series_observes_across_a_daylight_saving_change():
    # fitted on Paris midnights; the readings after it carry offsets, +01:00 then +02:00
    index = pd.date_range("2024-02-01", "2024-03-29", freq="D", tz="Europe/Paris")
    data = pd.DataFrame({"load": _seasonal(len(index), 7) + 100.0}, index=index)
    model = _fitted_mlp(data)
    assert model.series_state("load").zone == "Europe/Paris"
    after = pd.date_range("2024-03-30", periods=4, freq="D", tz="Europe/Paris")  # crosses 03-31
    stamps = [t.isoformat() for t in after]
    assert {s[-6:] for s in stamps} == {"+01:00", "+02:00"}
    forecast = model.observe("load", [100.0, 101.0, 102.0, 103.0], stamps, horizon=2)
    # the reference: pandas' own next local midnights in the zone
    expected = pd.date_range(after[-1], periods=3, freq="D")[1:]
    assert forecast.timestamps == tuple(t.isoformat() for t in expected)
    assert model.series_state("load").zone == "Europe/Paris"
    # an hour off local midnight is still off the grid
    with pytest.raises(ValueError, match=r"expected 2024-04-03T00:00:00\+02:00 \(frequency D\)"):
        model.observe("load", [104.0], ["2024-04-03T01:00:00+02:00"])


def test_the_residuals_are_kept_in_safetensors_and_old_json_folders_still_load(tmp_path):
    # the calibration's residuals sit beside the weights in safetensors, not in config.json;
    # a folder written before keeps them (and their pooled concatenation) as JSON lists
    values = _seasonal(120, 12, seed=4) + 100.0
    model = Forecaster(model="mlp", window=4, units=(4,), epochs=1, seeds=2, quiet=True).fit(values)
    residuals = model.network.calibration.residuals["0"]
    assert np.isnan(residuals).any() and np.isfinite(residuals).any()  # NaN past the end
    folder = model.save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["recipe"]["calibration"]["residuals"] == {"0": "calibration.residuals.0"}
    assert "pooled" not in config["recipe"]["calibration"]
    assert (folder / config["files"]["arrays"]["name"]).suffix == ".safetensors"
    with Forecaster.load(folder) as loaded:
        calibration = loaded.network.calibration
        np.testing.assert_array_equal(calibration.residuals["0"], residuals)
        np.testing.assert_array_equal(calibration.pooled_residuals(), residuals)  # one series
        for level in (0.8, 0.95):
            np.testing.assert_array_equal(
                loaded.halfwidths("0", level, 3), model.halfwidths("0", level, 3)
            )
    # the older form: lists in JSON (NaN as null), read as they are
    old = dict(config["recipe"]["calibration"])
    old["residuals"] = {"0": np.where(np.isnan(residuals), None, residuals).tolist()}
    old["pooled"] = old["residuals"]["0"]
    read = type(model.network.calibration).from_dict(json.loads(json.dumps(old)))
    np.testing.assert_array_equal(read.residuals["0"], residuals)
    np.testing.assert_array_equal(read.pooled, residuals)
