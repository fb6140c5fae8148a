import importlib.util
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlab.data.windows import make_windows


def reference_windows(values, targets, length, stride, sampling_rate, offset, horizon):
    """The definition, one sample at a time."""
    values = values.reshape(len(values), -1)
    targets = targets.reshape(len(targets), -1)
    xs, ys, starts = [], [], []
    start = 0
    while True:
        last = start + (length - 1) * sampling_rate
        if last + offset + horizon - 1 >= len(values):
            break
        xs.append(values[start : last + 1 : sampling_rate])
        ys.append(targets[last + offset : last + offset + horizon].reshape(-1))
        starts.append(start)
        start += stride
    return np.array(xs), np.array(ys), np.array(starts)


def test_next_step_windows_by_hand():
    w = make_windows(np.arange(6.0), length=3)
    np.testing.assert_array_equal(w.x[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(w.y, [[3], [4], [5]])
    np.testing.assert_array_equal(w.starts, [0, 1, 2])
    np.testing.assert_array_equal(w.target_index, [3, 4, 5])
    assert w.x.dtype == np.float32 and w.y.dtype == np.float32
    assert w.starts.dtype == np.int64 and w.target_index.dtype == np.int64
    assert len(w) == 3


def test_offset_zero_aligns_the_target_with_the_last_input():
    # the moving-average example: the target at t belongs to the window ending at t
    values = np.arange(5.0)
    targets = values * 10
    w = make_windows(values, targets, length=2, offset=0)
    np.testing.assert_array_equal(w.x[:, :, 0], [[0, 1], [1, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(w.y[:, 0], [10, 20, 30, 40])


def test_stride_sampling_rate_and_horizon_by_hand():
    # starts 0, 2, 4; inputs every 2nd step; two targets from 1 step after the last input
    w = make_windows(np.arange(12.0), length=2, stride=2, sampling_rate=2, offset=1, horizon=2)
    np.testing.assert_array_equal(w.x[:, :, 0], [[0, 2], [2, 4], [4, 6], [6, 8]])
    np.testing.assert_array_equal(w.y, [[3, 4], [5, 6], [7, 8], [9, 10]])
    np.testing.assert_array_equal(w.starts, [0, 2, 4, 6])
    np.testing.assert_array_equal(w.target_index, [3, 5, 7, 9])


def test_horizon_flattens_step_major_over_target_columns():
    values = np.stack([np.arange(6.0), 100 + np.arange(6.0)], axis=1)  # (6, 2)
    w = make_windows(values, length=2, horizon=2)
    # first sample: inputs steps 0-1, targets steps 2 and 3, each [a, b]
    np.testing.assert_array_equal(w.x[0], [[0, 100], [1, 101]])
    np.testing.assert_array_equal(w.y[0], [2, 102, 3, 103])
    assert w.y.shape == (3, 4)


def test_separate_target_columns():
    values = np.arange(8.0)
    targets = np.stack([-np.arange(8.0), np.arange(8.0) ** 2], axis=1)
    w = make_windows(values, targets, length=3, offset=2)
    np.testing.assert_array_equal(w.y, [[-4, 16], [-5, 25], [-6, 36], [-7, 49]])


def test_window_arrays_are_read_only():
    w = make_windows(np.arange(6.0), length=2)
    with pytest.raises(ValueError, match="read-only"):
        w.x[0, 0, 0] = 5.0


@settings(max_examples=60, deadline=None)
@given(
    steps=st.integers(1, 60),
    features=st.integers(1, 3),
    length=st.integers(1, 6),
    stride=st.integers(1, 4),
    sampling_rate=st.integers(1, 3),
    offset=st.integers(0, 3),
    horizon=st.integers(1, 3),
)
def test_matches_the_definition(steps, features, length, stride, sampling_rate, offset, horizon):
    values = np.arange(steps * features, dtype=np.float64).reshape(steps, features)
    targets = -values[:, :1] - 0.5
    needed = (length - 1) * sampling_rate + offset + horizon
    kwargs = dict(
        length=length, stride=stride, sampling_rate=sampling_rate, offset=offset, horizon=horizon
    )
    if steps < needed:
        with pytest.raises(ValueError, match="too short for one window"):
            make_windows(values, targets, **kwargs)
        return
    w = make_windows(values, targets, **kwargs)
    x, y, starts = reference_windows(values, targets, **kwargs)
    np.testing.assert_array_equal(w.x, x)
    np.testing.assert_array_equal(w.y, y)
    np.testing.assert_array_equal(w.starts, starts)
    np.testing.assert_array_equal(w.target_index, starts + (length - 1) * sampling_rate + offset)


def _keras_format():
    if importlib.util.find_spec("tensorflow") is not None:
        return "tf"
    if importlib.util.find_spec("grain") is not None:
        return "grain"
    return None


@pytest.mark.skipif(
    _keras_format() is None,
    reason="keras.utils.timeseries_dataset_from_array needs tensorflow or grain installed",
)
@pytest.mark.parametrize(
    ("features", "length", "stride", "sampling_rate", "offset"),
    [(1, 3, 1, 1, 1), (2, 4, 1, 1, 1), (1, 5, 3, 1, 1), (2, 3, 2, 2, 1), (1, 4, 1, 3, 0)],
)
def test_matches_keras_timeseries_dataset_from_array(
    features, length, stride, sampling_rate, offset
):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    data = np.random.default_rng(features + length).normal(size=(40, features)).astype("float32")
    if features == 1:
        data = data[:, 0]  # Keras' 1-D case: x is (samples, length)
    first_target = (length - 1) * sampling_rate + offset
    dataset = keras.utils.timeseries_dataset_from_array(
        data,
        targets=data[first_target:],
        sequence_length=length,
        sequence_stride=stride,
        sampling_rate=sampling_rate,
        batch_size=7,
        format=_keras_format(),
    )
    batches = [(np.asarray(x), np.asarray(y)) for x, y in dataset]
    keras_x = np.concatenate([x for x, _ in batches])
    keras_y = np.concatenate([y for _, y in batches])

    w = make_windows(data, length=length, stride=stride, sampling_rate=sampling_rate, offset=offset)
    assert len(w) == len(keras_x) > 0
    np.testing.assert_array_equal(w.x.reshape(keras_x.shape), keras_x)
    np.testing.assert_array_equal(w.y.reshape(keras_y.shape), keras_y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "length must be a positive integer, got 0; pass an int >= 1"),
        (
            {"length": 2, "stride": -1},
            "stride must be a positive integer, got -1; pass an int >= 1",
        ),
        (
            {"length": 2, "sampling_rate": 1.5},
            "sampling_rate must be a positive integer, got 1.5; pass an int >= 1",
        ),
        (
            {"length": 2, "horizon": True},
            "horizon must be a positive integer, got True; pass an int >= 1",
        ),
        (
            {"length": 2, "offset": -1},
            "offset must be an integer >= 0, got -1; pass 1 to predict the next step or 0 to "
            "align the target with the last input",
        ),
        (
            {"length": 4, "sampling_rate": 2, "offset": 1, "horizon": 2},
            "the series has 8 steps, too short for one window: one window needs "
            "(length - 1) * sampling_rate + offset + horizon = 9 steps (length=4, "
            "sampling_rate=2, offset=1, horizon=2); pass a shorter window or a longer series",
        ),
    ],
)
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_windows(np.arange(8.0), **kwargs)


def test_a_series_of_exactly_the_needed_length_gives_one_window():
    # the boundary of the error above: 9 steps are enough
    w = make_windows(np.arange(9.0), length=4, sampling_rate=2, offset=1, horizon=2)
    np.testing.assert_array_equal(w.x[:, :, 0], [[0, 2, 4, 6]])
    np.testing.assert_array_equal(w.y, [[7, 8]])


def test_targets_of_another_length_raise():
    expected = (
        "targets must have one row per step of values (8), got 7; align targets with values "
        "step for step (the offset shifts them)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        make_windows(np.arange(8.0), np.arange(7.0), length=2)


def test_nan_in_values_or_targets_raises():
    values = np.arange(8.0)
    values[5] = np.nan
    with pytest.raises(
        ValueError, match=re.escape("values holds 1 NaN or infinite value(s) (first at index (5,))")
    ):
        make_windows(values, length=2)
    targets = np.zeros((8, 2))
    targets[3, 1] = np.inf
    with pytest.raises(
        ValueError,
        match=re.escape("targets holds 1 NaN or infinite value(s) (first at index (3, 1))"),
    ):
        make_windows(np.arange(8.0), targets, length=2)


def test_values_of_three_dimensions_raise():
    expected = (
        "values must have shape (time,) or (time, features), got shape (8, 1, 1); "
        "reshape it to (time,) or (time, features)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        make_windows(np.zeros((8, 1, 1)), length=2)
