import json
import re

import numpy as np
import pytest

from lstmlab.data.scaling import Scaler, fit_scaler, inverse_transform, transform


def test_minmax_maps_training_range_onto_unit_interval():
    values = np.array([[2.0, -1.0], [4.0, 1.0], [3.0, 0.0]])
    scaler = fit_scaler(values, "minmax", columns=["a", "b"])
    scaled = transform(scaler, values)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])


def test_standard_gives_zero_mean_unit_variance():
    values = np.random.default_rng(0).normal(5.0, 3.0, size=(500, 2))
    scaled = fit_scaler(values, "standard").transform(values).astype(np.float64)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-6)


def test_inverse_undoes_transform():
    values = np.random.default_rng(1).uniform(-50, 80, size=(40, 3))
    scaler = fit_scaler(values, "minmax")
    back = inverse_transform(scaler, transform(scaler, values))
    np.testing.assert_allclose(back, values, rtol=1e-5, atol=1e-4)
    assert not np.allclose(transform(scaler, values), values)


def test_json_round_trip_is_exact():
    values = np.random.default_rng(2).uniform(size=(30, 2)) * np.pi
    scaler = fit_scaler(values, "standard", columns=["x", "y"])
    again = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert again == scaler
    assert np.array_equal(again.transform(values), scaler.transform(values))


def test_constant_column_is_refused_with_the_fix():
    message = (
        "constant series: column 'x' is always 3.0; a scaler would divide by zero; "
        "drop it or choose another target"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_scaler([[1.0, 3.0], [2.0, 3.0]], columns=["y", "x"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([[1.0], [np.nan]], "values hold NaN or infinite values"),
        (np.zeros((0, 1)), "cannot fit a scaler on 0 rows"),
        (np.zeros((2, 2, 2)), "values must be (time,) or (time, columns), got shape (2, 2, 2)"),
    ],
)
def test_fit_refuses_bad_values(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_scaler(values)


def test_wrong_column_count_and_kind_are_refused():
    scaler = fit_scaler([[0.0, 1.0], [1.0, 2.0]], columns=["a", "b"])
    with pytest.raises(ValueError, match=re.escape("values have 3 columns, the scaler maps 2")):
        scaler.transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="scaler kind must be one of"):
        fit_scaler([1.0, 2.0], kind="robust")
    with pytest.raises(ValueError, match="got 1 column names for 2 columns"):
        fit_scaler([[0.0, 1.0], [1.0, 2.0]], columns=["a"])
    with pytest.raises(ValueError, match="a scaler dict needs the keys"):
        Scaler.from_dict({"kind": "minmax"})


def test_none_is_the_identity_and_round_trips():
    values = np.array([[3.0, -1.0], [7.5, 2.0], [1.0, 0.5]])
    scaler = fit_scaler(values, "none", columns=["a", "b"])
    np.testing.assert_array_equal(scaler.transform(values), values)
    np.testing.assert_array_equal(scaler.inverse_transform(values), values)
    assert Scaler.from_dict(scaler.to_dict()) == scaler
    # a real scaler does change the values: the test can tell the two apart
    assert not np.array_equal(fit_scaler(values, "minmax").transform(values), values)
