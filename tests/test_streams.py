import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlab.data.streams import TrimReport, make_series_streams, make_stream_batches

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
