import importlib.util
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlab.data.layouts import (
    MAX_BATCHES_PER_EPOCH,
    OfficialBatches,
    SampleBatches,
    TrimReport,
    make_official_batches,
    make_sample_batches,
    make_series_streams,
    make_stream_batches,
    make_training_batches,
    make_window_training_batches,
    make_windows,
)

# --- sample level -------------------------------------------------------------------------


def test_sample_streams_by_hand_trim_start():
    b = make_stream_batches(np.arange(7), np.arange(7) * 10, batch_size=2)
    # S = 3; sample 0 trimmed; stream 0 = samples 1-3, stream 1 = samples 4-6
    np.testing.assert_array_equal(b.x_batches, [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(b.y_batches, [[10, 40], [20, 50], [30, 60]])
    np.testing.assert_array_equal(b.stream_start, [1, 4])
    np.testing.assert_array_equal(b.stream_series, [0, 0])
    assert (b.num_batches, b.batch_size, b.num_series, b.chunk) == (3, 2, 1, None)
    assert str(b.trim) == "used 6 of 7 samples in 2 streams x 3 batches; trimmed 1 at the start"


def test_sample_streams_by_hand_trim_end():
    b = make_stream_batches(np.arange(7), np.arange(7), batch_size=2, trim="end")
    np.testing.assert_array_equal(b.x_batches, [[0, 3], [1, 4], [2, 5]])
    assert (b.trim.trimmed_start, b.trim.trimmed_end) == (0, 1)
    assert str(b.trim) == "used 6 of 7 samples in 2 streams x 3 batches; trimmed 1 at the end"


def test_trim_report_line_from_the_brief():
    b = make_stream_batches(np.arange(1000), np.arange(1000), batch_size=32)
    assert (
        str(b.trim) == "used 992 of 1000 samples in 32 streams x 31 batches; trimmed 8 at the start"
    )


def test_sample_streams_keep_the_sample_shape():
    x = np.arange(6 * 3 * 2).reshape(6, 3, 2)  # (samples, time, features) windows
    y = np.arange(6 * 2).reshape(6, 2)
    b = make_stream_batches(x, y, batch_size=3)
    assert b.x_batches.shape == (2, 3, 3, 2)
    np.testing.assert_array_equal(b.x_batches[1, 2], x[5])  # row 2 of batch 1 = sample 2*2+1
    np.testing.assert_array_equal(b.y_batches[0, 1], y[2])
    assert b.x_batches.dtype == np.float32


def test_sample_batches_are_read_only():
    b = make_stream_batches(np.arange(4), np.arange(4), batch_size=2)
    with pytest.raises(ValueError, match="read-only"):
        b.x_batches[0, 0] = 1.0


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 120),
    batch_size=st.integers(1, 16),
    trim=st.sampled_from(["start", "end", "error"]),
)
def test_sample_stream_properties(n, batch_size, trim):
    ids = np.arange(n)
    x = np.stack([ids, ids + 0.5], axis=1)  # (n, 2): column 0 is the sample index
    y = -ids
    if n < batch_size:
        with pytest.raises(ValueError, match="too few for"):
            make_stream_batches(x, y, batch_size=batch_size, trim=trim)
        return
    if trim == "error" and n % batch_size:
        with pytest.raises(ValueError, match="do not split into"):
            make_stream_batches(x, y, batch_size=batch_size, trim=trim)
        return
    b = make_stream_batches(x, y, batch_size=batch_size, trim=trim)
    index = b.x_batches[..., 0]  # (S, batch_size) sample indices
    report = b.trim

    # continuity: row i of batch k + 1 is the sample right after row i of batch k
    np.testing.assert_array_equal(index[1:] - index[:-1], np.ones_like(index[1:]))
    np.testing.assert_array_equal(index[0], b.stream_start)
    # streams are adjacent: stream i + 1 starts right after stream i ends
    np.testing.assert_array_equal(index[0, 1:], index[-1, :-1] + 1)
    # targets travel with their samples
    np.testing.assert_array_equal(b.y_batches, -index)
    np.testing.assert_array_equal(b.x_batches[..., 1], index + 0.5)

    # no overlap, and nothing lost beyond the reported trim
    used = index.ravel().astype(int)
    assert len(np.unique(used)) == used.size == report.used == batch_size * (n // batch_size)
    assert report.used + report.trimmed == report.total == n
    unused = set(range(n)) - set(used.tolist())
    expected_unused = set(range(report.trimmed_start)) | set(range(n - report.trimmed_end, n))
    assert unused == expected_unused
    assert report.trimmed == n % batch_size
    if trim == "start":
        assert report.trimmed_end == 0
    else:
        assert report.trimmed_start == 0
    assert report.per_series == ((report.trimmed_start, report.trimmed_end),)

    # to_samples inverts the layout
    np.testing.assert_array_equal(
        b.to_samples(b.x_batches), x[report.trimmed_start : n - report.trimmed_end]
    )
    np.testing.assert_array_equal(
        b.to_samples(b.y_batches), y[report.trimmed_start : n - report.trimmed_end]
    )


# --- step level ---------------------------------------------------------------------------


def test_series_streams_by_hand_next_step():
    # 9 values -> 8 (input, target) steps; 2 streams x 2 chunks of 2 steps, nothing trimmed
    b = make_series_streams(np.arange(9.0), batch_size=2, chunk=2)
    np.testing.assert_array_equal(b.x_batches[..., 0], [[[0, 1], [4, 5]], [[2, 3], [6, 7]]])
    np.testing.assert_array_equal(b.y_batches[..., 0], [[[1, 2], [5, 6]], [[3, 4], [7, 8]]])
    np.testing.assert_array_equal(b.stream_start, [0, 4])
    assert str(b.trim) == "used 8 of 8 steps in 2 streams x 2 batches of 2 steps; trimmed nothing"


def test_series_streams_by_hand_several_series():
    first = np.arange(20.0)
    second = 100 + np.arange(13.0)
    b = make_series_streams([first, second], batch_size=4, chunk=3)
    # 19 and 12 steps; 2 streams per series; the shorter allows 2 chunks: 12 steps used per series
    np.testing.assert_array_equal(
        b.x_batches[..., 0],
        [
            [[7, 8, 9], [13, 14, 15], [100, 101, 102], [106, 107, 108]],
            [[10, 11, 12], [16, 17, 18], [103, 104, 105], [109, 110, 111]],
        ],
    )
    np.testing.assert_array_equal(b.stream_series, [0, 0, 1, 1])
    np.testing.assert_array_equal(b.stream_start, [7, 13, 0, 6])
    assert b.trim.per_series == ((7, 0), (0, 0))
    assert str(b.trim) == (
        "used 24 of 31 steps in 4 streams x 2 batches of 3 steps from 2 series; "
        "trimmed 7 at the start"
    )
    first_back, second_back = b.to_series(b.y_batches)
    np.testing.assert_array_equal(first_back[:, 0], np.arange(8.0, 20.0))
    np.testing.assert_array_equal(second_back[:, 0], 100 + np.arange(1.0, 13.0))


def test_series_streams_with_explicit_targets():
    values = np.stack([np.arange(10.0), np.arange(10.0) * 2], axis=1)  # (10, 2)
    targets = np.arange(10.0) * -1
    b = make_series_streams(values, targets, batch_size=2, chunk=2, trim="end")
    # 10 steps, 2 streams of 2 chunks = 8 used, 2 trimmed at the end
    np.testing.assert_array_equal(b.x_batches[0, 1], [[4, 8], [5, 10]])
    np.testing.assert_array_equal(b.y_batches[..., 0], -b.x_batches[..., 0])
    assert b.y_batches.shape == (2, 2, 2, 1)
    assert (b.trim.trimmed_start, b.trim.trimmed_end, b.trim.total) == (0, 2, 10)


series_cases = st.fixed_dictionaries(
    {
        "lengths": st.lists(st.integers(1, 70), min_size=1, max_size=3),
        "streams": st.integers(1, 4),
        "chunk": st.integers(1, 5),
        "features": st.integers(1, 2),
        "explicit_targets": st.booleans(),
        "trim": st.sampled_from(["start", "end", "error"]),
        "as_list": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(case=series_cases)
def test_series_stream_properties(case):
    lengths, streams, chunk = case["lengths"], case["streams"], case["chunk"]
    num_series = len(lengths)
    as_list = case["as_list"] or num_series > 1
    batch_size = streams * num_series
    # series j, step t holds j * 1000 + t in column 0; column 1 is a second feature
    values = [
        np.stack([j * 1000 + np.arange(t), np.arange(t) + 0.5], axis=1)[:, : case["features"]]
        for j, t in enumerate(lengths)
    ]
    targets = [-v[:, :1] for v in values] if case["explicit_targets"] else None
    steps = lengths if case["explicit_targets"] else [t - 1 for t in lengths]
    kwargs = dict(batch_size=batch_size, chunk=chunk, trim=case["trim"])
    args = (values, targets) if as_list else (values[0], None if targets is None else targets[0])

    if min(steps) < streams * chunk:
        with pytest.raises(ValueError, match="too short for one chunk per stream"):
            make_series_streams(*args, **kwargs)
        return
    num_batches = min(steps) // (streams * chunk)
    if case["trim"] == "error" and any(s != num_batches * streams * chunk for s in steps):
        with pytest.raises(ValueError, match="more than"):
            make_series_streams(*args, **kwargs)
        return
    b = make_series_streams(*args, **kwargs)
    report = b.trim
    code = b.x_batches[..., 0]  # (num_batches, batch_size, chunk)
    assert code.shape == (num_batches, batch_size, chunk)
    series_of = code // 1000
    step_of = code - series_of * 1000

    # continuity inside a chunk, and from the end of row i of batch k to row i of batch k + 1
    np.testing.assert_array_equal(np.diff(step_of, axis=2), np.ones_like(step_of[..., 1:]))
    np.testing.assert_array_equal(step_of[1:, :, 0], step_of[:-1, :, -1] + 1)
    # each row stays in one series; rows are ordered series by series, streams in time order
    np.testing.assert_array_equal(
        series_of, np.broadcast_to(b.stream_series[None, :, None], code.shape)
    )
    np.testing.assert_array_equal(b.stream_series, np.repeat(np.arange(num_series), streams))
    np.testing.assert_array_equal(step_of[0, :, 0], b.stream_start)
    for j in range(num_series):
        rows = b.stream_start[j * streams : (j + 1) * streams]
        np.testing.assert_array_equal(np.diff(rows), np.full(streams - 1, num_batches * chunk))

    # targets travel with their steps
    expected_y = -code if case["explicit_targets"] else code + 1
    np.testing.assert_array_equal(b.y_batches[..., 0], expected_y)
    if case["features"] == 2:
        np.testing.assert_array_equal(b.x_batches[..., 1], step_of + 0.5)

    # no overlap, nothing lost beyond the reported trim, and no more trimmed than needed
    assert report.total == sum(steps)
    assert report.used + report.trimmed == report.total
    assert report.used == code.size
    assert len(np.unique(code)) == code.size
    assert len(report.per_series) == num_series
    assert sum(s for s, _ in report.per_series) == report.trimmed_start
    assert sum(e for _, e in report.per_series) == report.trimmed_end
    assert min(s - b.num_batches * streams * chunk for s in steps) < streams * chunk
    back_x = b.to_series(b.x_batches)
    back_y = b.to_series(b.y_batches)
    for j, (start, end) in enumerate(report.per_series):
        if case["trim"] == "start":
            assert end == 0
        else:
            assert start == 0
        used_steps = set(step_of[series_of == j].astype(int).tolist())
        unused = set(range(steps[j])) - used_steps
        assert unused == set(range(start)) | set(range(steps[j] - end, steps[j]))
        # to_series inverts the layout
        np.testing.assert_array_equal(back_x[j], values[j][start : steps[j] - end])
        expected_targets = (
            targets[j][start : steps[j] - end]
            if targets is not None
            else values[j][1:][start : steps[j] - end]
        )
        np.testing.assert_array_equal(back_y[j], expected_targets)

    if num_series == 1:
        np.testing.assert_array_equal(b.to_samples(b.x_batches), back_x[0])
    else:
        with pytest.raises(ValueError, match="use to_series"):
            b.to_samples(b.x_batches)


def test_to_series_accepts_predictions_with_other_columns():
    b = make_series_streams(np.arange(13.0), batch_size=3, chunk=2)
    predictions = np.stack([b.y_batches[..., 0], -b.y_batches[..., 0]], axis=-1)  # 2 outputs
    (back,) = b.to_series(predictions)
    np.testing.assert_array_equal(back, np.stack([np.arange(1.0, 13.0), -np.arange(1.0, 13.0)], 1))


def test_to_series_rejects_another_layout():
    b = make_series_streams(np.arange(13.0), batch_size=3, chunk=2)
    expected = (
        "batches must be laid out as (num_batches, batch_size, chunk, ...) = (2, 3, 2, '...'), "
        "got shape (2, 3, 1); pass an array laid out like x_batches, e.g. predictions"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        b.to_series(np.zeros((2, 3, 1)))


def test_to_samples_rejects_several_series():
    b = make_series_streams([np.arange(5.0), np.arange(5.0)], batch_size=2, chunk=2)
    expected = (
        "to_samples needs streams from one series, these come from 2; "
        "use to_series to get one array per series"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        b.to_samples(b.x_batches)


# --- TrimReport ---------------------------------------------------------------------------


def test_trim_report_counts_must_add_up():
    expected = (
        "a TrimReport must account for every sample: used (5) + trimmed_start (1) + "
        "trimmed_end (1) != total (8); fix the counts"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        TrimReport(
            total=8,
            used=5,
            trimmed_start=1,
            trimmed_end=1,
            batch_size=5,
            num_batches=1,
            per_series=((1, 1),),
        )


def test_trim_report_line_with_both_ends():
    report = TrimReport(
        total=20,
        used=12,
        trimmed_start=5,
        trimmed_end=3,
        batch_size=4,
        num_batches=1,
        per_series=((5, 0), (0, 3)),
        unit="steps",
        chunk=3,
    )
    assert report.trimmed == 8
    assert str(report) == (
        "used 12 of 20 steps in 4 streams x 1 batches of 3 steps from 2 series; "
        "trimmed 5 at the start and 3 at the end"
    )


def test_trim_report_rejects_an_unknown_layout():
    with pytest.raises(
        ValueError, match=re.escape("layout must be one of ('stream', 'official'), got 'x'")
    ):
        TrimReport(
            total=1,
            used=1,
            trimmed_start=0,
            trimmed_end=0,
            batch_size=1,
            num_batches=1,
            per_series=((0, 0),),
            layout="x",
        )


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"x": np.arange(4), "y": np.arange(4), "batch_size": 0},
            "batch_size must be a positive integer, got 0; pass an int >= 1",
        ),
        (
            {"x": np.arange(4), "y": np.arange(4), "batch_size": 2, "trim": "middle"},
            "trim must be one of 'start', 'end' or 'error', got 'middle'; pass 'start' to keep "
            "the most recent data",
        ),
        (
            {"x": np.arange(5), "y": np.arange(4), "batch_size": 2},
            "x and y must hold the same number of samples, got 5 and 4; pass one target per sample",
        ),
        (
            {"x": np.arange(3), "y": np.arange(3), "batch_size": 4},
            "x holds 3 samples, too few for 4 streams: one sample per stream needs batch_size = 4 "
            "samples; pass a smaller batch_size or more samples",
        ),
        (
            {"x": np.arange(10), "y": np.arange(10), "batch_size": 4, "trim": "error"},
            "10 samples do not split into 4 equal streams: 2 are left over; pass trim='start' or "
            "trim='end' to drop them, or choose a batch_size that divides 10",
        ),
        (
            {"x": np.arange(4), "y": np.array([0.0, 1.0, np.inf, 3.0]), "batch_size": 2},
            "y holds 1 NaN or infinite value(s) (first at index (2,)); clean or impute them "
            "before training",
        ),
    ],
)
def test_sample_stream_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_stream_batches(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (np.arange(10.0),),
            {"batch_size": 2, "chunk": 0},
            "chunk must be a positive integer, got 0; pass an int >= 1",
        ),
        (
            (np.arange(10.0),),
            {"batch_size": -1, "chunk": 2},
            "batch_size must be a positive integer, got -1; pass an int >= 1",
        ),
        (
            (np.arange(10.0),),
            {"batch_size": 2, "chunk": 2, "trim": None},
            "trim must be one of 'start', 'end' or 'error', got None; pass 'start' to keep the "
            "most recent data",
        ),
        (
            (np.arange(10.0),),
            {"batch_size": 4, "chunk": 3},
            "the series has 9 steps (its values less the first, used only as a target), too "
            "short for one chunk per stream: it needs batch_size * chunk = 4 * 3 = 12 steps; "
            "pass a smaller batch_size or chunk",
        ),
        (
            (np.arange(10.0), np.arange(10.0)),
            {"batch_size": 4, "chunk": 3},
            "the series has 10 steps, too short for one chunk per stream: it needs "
            "batch_size * chunk = 4 * 3 = 12 steps; pass a smaller batch_size or chunk",
        ),
        (
            ([np.arange(30.0), np.arange(8.0)], [np.arange(30.0), np.arange(8.0)]),
            {"batch_size": 6, "chunk": 3},
            "series 1 has 8 steps, too short for one chunk per stream: it needs "
            "streams_per_series * chunk = 3 * 3 = 9 steps; pass a smaller batch_size or chunk",
        ),
        (
            ([np.arange(30.0), np.arange(30.0)],),
            {"batch_size": 3, "chunk": 2},
            "batch_size must be a multiple of the number of series (2), got 3; pass a batch_size "
            "such as 2",
        ),
        (
            ([np.arange(30.0), np.arange(30.0)], np.arange(30.0)),
            {"batch_size": 2, "chunk": 2},
            "targets must match values: values gives a list of 2 series, targets one; pass "
            "targets shaped like values",
        ),
        (
            ([np.arange(30.0), np.arange(30.0)], [np.arange(30.0)]),
            {"batch_size": 2, "chunk": 2},
            "targets must match values: values gives a list of 2 series, targets a list of 1; "
            "pass targets shaped like values",
        ),
        (
            (np.arange(10.0), np.arange(9.0)),
            {"batch_size": 2, "chunk": 2},
            "targets must have one row per step of values (10), got 9; align targets with "
            "values step for step",
        ),
        (
            ([np.arange(10.0), np.arange(10.0)], [np.arange(10.0), np.arange(9.0)]),
            {"batch_size": 2, "chunk": 2},
            "targets[1] must have one row per step of values[1] (10), got 9; align targets "
            "with values step for step",
        ),
        (
            ([np.zeros((10, 2)), np.zeros((10, 3))],),
            {"batch_size": 2, "chunk": 2},
            "values[1] has 3 columns, values[0] has 2; give every series the same columns",
        ),
        (
            ([np.arange(10.0), np.array([0.0, np.nan, 2.0])],),
            {"batch_size": 2, "chunk": 1},
            "values[1] holds 1 NaN or infinite value(s) (first at index (1,)); clean or impute "
            "them before training",
        ),
        (
            ([],),
            {"batch_size": 2, "chunk": 1},
            "values must hold at least one series, got an empty list",
        ),
        (
            ([np.arange(13.0), np.arange(20.0)],),
            {"batch_size": 2, "chunk": 3, "trim": "error"},
            "series 1 has 19 steps, 7 more than 1 stream(s) x 4 chunk(s) of 3 steps use; pass "
            "trim='start' or trim='end' to drop them, or choose batch_size and chunk to fit",
        ),
    ],
)
def test_series_stream_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_series_streams(*args, **kwargs)


def test_trim_error_passes_when_the_steps_fit_exactly():
    # the passing side of the trim="error" check above
    b = make_series_streams(np.arange(13.0), batch_size=2, chunk=3, trim="error")
    assert (b.trim.used, b.trim.trimmed) == (12, 0)


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


def test_batches_hold_consecutive_samples():
    x = np.arange(12).reshape(6, 2)  # sample j is [2j, 2j + 1]
    y = np.arange(6) * 10
    b = make_official_batches(x, y, batch_size=3)
    np.testing.assert_array_equal(b.x_batches, x.reshape(2, 3, 2))
    np.testing.assert_array_equal(b.y_batches, [[0, 10, 20], [30, 40, 50]])
    assert b.x_batches.dtype == np.float32
    assert (b.trim.used, b.trim.trimmed, b.num_batches, b.batch_size) == (6, 0, 2, 3)
    assert str(b.trim) == "used 6 of 6 samples in 2 batches of 3; trimmed nothing"


def test_row_i_of_the_next_batch_is_batch_size_steps_later():
    # the documented difference from the stream layout: the state jumps B steps
    b = make_official_batches(np.arange(20), np.arange(20), batch_size=4)
    np.testing.assert_array_equal(b.x_batches[1:] - b.x_batches[:-1], np.full((4, 4), 4.0))
    # row i follows data[i::B]
    np.testing.assert_array_equal(b.x_batches[:, 1], np.arange(20)[1::4])


def test_agrees_with_the_stream_layout_for_batch_size_one():
    x = np.arange(9.0)
    official = make_official_batches(x, x, batch_size=1)
    stream = make_stream_batches(x, x, batch_size=1)
    np.testing.assert_array_equal(official.x_batches, stream.x_batches)


def test_uneven_samples_raise_with_the_fix():
    expected = (
        "10 samples are not a multiple of batch_size=4 (remainder 2); pass trim='end' to drop "
        "the last 2 samples or trim='start' to drop the first 2, or choose a batch_size that "
        "divides 10"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        make_official_batches(np.arange(10), np.arange(10), batch_size=4)


def test_trim_end_drops_and_reports_the_last_samples():
    b = make_official_batches(np.arange(10), np.arange(10) + 100, batch_size=4, trim="end")
    np.testing.assert_array_equal(b.x_batches, [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(b.y_batches, [[100, 101, 102, 103], [104, 105, 106, 107]])
    report = b.trim
    assert (report.total, report.used, report.trimmed) == (10, 8, 2)
    assert (report.trimmed_start, report.trimmed_end, report.per_series) == (0, 2, ((0, 2),))
    assert str(report) == "used 8 of 10 samples in 2 batches of 4; trimmed 2 at the end"


def test_trim_start_drops_and_reports_the_first_samples():
    b = make_sample_batches(np.arange(10), np.arange(10) + 100, batch_size=4, trim="start")
    np.testing.assert_array_equal(b.x_batches, [[2, 3, 4, 5], [6, 7, 8, 9]])
    np.testing.assert_array_equal(b.y_batches, [[102, 103, 104, 105], [106, 107, 108, 109]])
    report = b.trim
    assert (report.trimmed_start, report.trimmed_end, report.per_series) == (2, 0, ((2, 0),))
    assert str(report) == "used 8 of 10 samples in 2 batches of 4; trimmed 2 at the start"


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 120),
    batch_size=st.integers(1, 16),
    trim=st.sampled_from(["start", "end", "error"]),
)
def test_sample_batch_properties(n, batch_size, trim):
    ids = np.arange(n)
    x = np.stack([ids, ids + 0.5], axis=1)  # (n, 2): column 0 is the sample index
    if n < batch_size:
        with pytest.raises(ValueError, match="too few for one batch"):
            make_sample_batches(x, -ids, batch_size=batch_size, trim=trim)
        return
    if trim == "error" and n % batch_size:
        with pytest.raises(ValueError, match="are not a multiple of batch_size"):
            make_sample_batches(x, -ids, batch_size=batch_size, trim=trim)
        return
    b = make_sample_batches(x, -ids, batch_size=batch_size, trim=trim)
    report = b.trim
    used = b.to_samples(b.x_batches)[:, 0].astype(int)
    # consecutive samples, in order, one contiguous run; targets travel with their samples
    first = n % batch_size if trim == "start" else 0
    np.testing.assert_array_equal(used, np.arange(first, first + report.used))
    np.testing.assert_array_equal(b.to_samples(b.y_batches), -used)
    assert report.used == batch_size * (n // batch_size) == b.num_batches * b.batch_size
    assert (report.trimmed_start, report.trimmed_end) == (
        (n % batch_size, 0) if trim == "start" else (0, n % batch_size)
    )


def test_the_official_name_is_the_sample_batch_cutter():
    assert make_official_batches is make_sample_batches and OfficialBatches is SampleBatches


def test_float32_samples_are_laid_out_without_a_copy():
    # The one host copy of a large input is the transfer to the device: a float32 input is
    # batched as a read-only view of it, a float64 one is converted once.
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    y = np.arange(12, dtype=np.float64)
    b = make_sample_batches(x, y, batch_size=4, trim="start")
    assert np.shares_memory(b.x_batches, x)
    assert not np.shares_memory(b.y_batches, y)
    np.testing.assert_array_equal(b.x_batches.reshape(12, 2), x)
    assert not b.x_batches.flags.writeable and x.flags.writeable
    trimmed = make_sample_batches(x, None, batch_size=5, trim="start")  # drops the first 2
    assert np.shares_memory(trimmed.x_batches, x)
    np.testing.assert_array_equal(trimmed.x_batches.reshape(10, 2), x[2:])


def test_to_samples_inverts_the_layout():
    x = np.random.default_rng(0).normal(size=(12, 3, 2))
    b = make_official_batches(x, x[:, -1], batch_size=4)
    np.testing.assert_array_equal(b.to_samples(b.x_batches), x.astype(np.float32))
    np.testing.assert_array_equal(b.to_samples(b.y_batches), x[:, -1].astype(np.float32))


def test_to_samples_rejects_another_layout():
    b = make_official_batches(np.arange(12), np.arange(12), batch_size=4)
    expected = (
        "batches must be laid out as (num_batches, batch_size, ...) = (3, 4, '...'), got shape "
        "(4, 3); pass an array laid out like x_batches, e.g. predictions"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        b.to_samples(np.zeros((4, 3)))


def test_batches_are_read_only():
    # Read-only views of a float32 input (no copy: test_float32_samples_are_laid_out_without_a_copy)
    x = np.arange(8.0, dtype=np.float32)
    b = make_official_batches(x, x.astype(np.float64), batch_size=4)
    for batches in (b.x_batches, b.y_batches):
        with pytest.raises(ValueError, match="read-only"):
            batches[0, 0] = 1.0
    x[0] = 99.0  # the caller's array stays writeable; the batches show its values
    assert b.x_batches[0, 0] == 99.0 and b.y_batches[0, 0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"x": np.arange(4), "y": np.arange(4), "batch_size": 0},
            "batch_size must be a positive integer, got 0; pass an int >= 1",
        ),
        (
            {"x": np.arange(4), "y": np.arange(3), "batch_size": 2},
            "x and y must hold the same number of samples, got 4 and 3; pass one target per sample",
        ),
        (
            {"x": np.arange(3), "y": np.arange(3), "batch_size": 4},
            "x holds 3 samples, too few for one batch of batch_size=4; "
            "pass a smaller batch_size or more samples",
        ),
        (
            {"x": np.arange(4), "y": np.arange(4), "batch_size": 2, "trim": True},
            "trim must be one of 'start', 'end' or 'error', got True; pass 'start' to keep the "
            "most recent data",
        ),
        (
            {"x": np.array([0.0, np.nan]), "y": np.arange(2), "batch_size": 2},
            "x holds 1 NaN or infinite value(s) (first at index (1,)); "
            "clean or impute them before training",
        ),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_official_batches(**kwargs)


# --- training batches (fit's and compare's one policy) ------------------------------------


def _series(*lengths):
    """Series ``j`` holds samples ``1000 j + t``, its target ten times that."""
    return [
        (1000.0 * j + np.arange(n), 10.0 * (1000 * j + np.arange(n))) for j, n in enumerate(lengths)
    ]


def test_stateful_training_batches_stream_each_series_newest_samples_by_hand():
    # Series of 9 and 7 samples, 2 streams each: every series keeps its newest 7, then the
    # stream cutter drops the oldest 1 (7 = 2 x 3 + 1). Rows are series-major.
    b = make_training_batches(_series(9, 7), stateful=True, batch_size=2, grow=False)
    np.testing.assert_array_equal(
        b.x_batches, [[3, 6, 1001, 1004], [4, 7, 1002, 1005], [5, 8, 1003, 1006]]
    )
    np.testing.assert_array_equal(b.y_batches, 10 * b.x_batches)
    assert (b.batch_size, b.streams, b.validation, b.validation_state) == (4, 2, None, "zeros")
    # every sample is counted: series 0 loses 2 + 1 at the start, series 1 loses 1
    assert b.trim.per_series == ((3, 0), (1, 0))
    assert str(b.trim) == (
        "used 12 of 16 samples in 4 streams x 3 batches from 2 series; trimmed 4 at the start"
    )


def test_one_stream_per_series_carries_its_state_into_the_validation_samples():
    train, validation = _series(8, 8), [(x + 8, y + 80) for x, y in _series(3, 3)]
    one = make_training_batches(train, validation, stateful=True, batch_size=1, grow=False)
    assert one.validation_state == "carry"
    np.testing.assert_array_equal(one.validation[0], [[8, 1008], [9, 1009], [10, 1010]])
    # more streams than validation samples: as many as there are validation samples
    many = make_training_batches(train, validation, stateful=True, batch_size=5, grow=False)
    assert (many.streams, many.validation_state) == (3, "zeros")
    reference = make_stream_batches(train[1][0], train[1][1], batch_size=3)
    np.testing.assert_array_equal(many.x_batches[:, 3:], reference.x_batches)


def test_window_training_batches_pool_the_series_in_order_by_hand():
    train = _series(5, 4)
    b = make_training_batches(train, stateful=False, batch_size=4, grow=False)
    pooled = np.concatenate([x for x, _ in train])  # 9 samples: the oldest one left out
    np.testing.assert_array_equal(b.x_batches, pooled[1:].reshape(2, 4))
    assert (b.batch_size, b.streams, b.validation_state) == (4, None, "zeros")
    assert (b.trim.used, b.trim.trimmed_start) == (8, 1)
    # a validation pool smaller than the batch shrinks both to one size
    validation = _series(2, 1)
    small = make_training_batches(train, validation, stateful=False, batch_size=4, grow=False)
    assert small.batch_size == 3 == small.validation[0].shape[1]


@pytest.mark.parametrize("stateful", [False, True])
def test_a_default_batch_grows_on_a_long_series_and_a_given_one_stays(stateful):
    train = _series(3000)
    grown = make_training_batches(train, stateful=stateful, batch_size=1, grow=True)
    assert grown.x_batches.shape[0] <= MAX_BATCHES_PER_EPOCH
    assert grown.batch_size == -(-3000 // MAX_BATCHES_PER_EPOCH)  # the smallest that fits
    kept = make_training_batches(train, stateful=stateful, batch_size=1, grow=False)
    assert kept.x_batches.shape == (3000, 1)


def _cut(batches):
    """``WindowBatches`` made into the windows they stand for, with NumPy (the reference)."""
    steps = batches.starts[..., None] + batches.offset + np.arange(batches.length)
    windows = np.asarray(batches.values)[steps]  # (..., length, columns)
    return windows.reshape(*batches.starts.shape, -1) if batches.flat else windows


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    window=st.integers(1, 5),
    horizon=st.integers(1, 3),
    columns=st.integers(1, 2),
    tail=st.integers(0, 4),
    stateful=st.booleans(),
    batch_size=st.integers(1, 6),
    grow=st.booleans(),
)
def test_windows_cut_in_the_program_are_the_windows_laid_out(
    lengths, window, horizon, columns, tail, stateful, batch_size, grow
):
    # The Forecaster's batches (windows cut by the driver) against compare's (make_windows'
    # windows laid out by make_training_batches): the same samples, in the same places.
    tail = horizon + tail - 1 if tail else 0  # a tail holds at least one window's targets
    rng = np.random.default_rng(len(lengths) * 100 + window)
    # each series long enough for a training window and its tail (as check_lengths asks)
    lengths = [window + horizon + tail + extra for extra in lengths]
    series = [rng.normal(size=(n, columns)).astype(np.float32) for n in lengths]
    train, validation = [], []
    for one in series:
        fit_end = len(one) - tail
        windows = make_windows(one[:fit_end], length=window, horizon=horizon)
        train.append((windows.x, windows.y))
        if tail:
            windows = make_windows(one[fit_end - window :], length=window, horizon=horizon)
            validation.append((windows.x, windows.y))
    layout = dict(stateful=stateful, batch_size=batch_size, grow=grow)
    expected = make_training_batches(train, validation or None, **layout)
    cut = make_window_training_batches(
        series, [tail] * len(series), window=window, horizon=horizon, **layout
    )
    np.testing.assert_array_equal(_cut(cut.x_batches), expected.x_batches)
    np.testing.assert_array_equal(_cut(cut.y_batches), expected.y_batches)
    assert cut.x_batches.shape == expected.x_batches.shape
    assert (cut.validation is None) == (expected.validation is None)
    if expected.validation is not None:
        for ours, theirs in zip(cut.validation, expected.validation, strict=True):
            np.testing.assert_array_equal(_cut(ours), theirs)
    assert (cut.batch_size, cut.streams, cut.validation_state) == (
        expected.batch_size, expected.streams, expected.validation_state
    )
    assert cut.trim == expected.trim
