import re

import numpy as np
import pytest

from lstmlab.data.official import make_official_batches
from lstmlab.data.streams import make_stream_batches


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
        "10 samples are not a multiple of batch_size=4 (remainder 2); pass trim=True to drop "
        "the last 2 samples, or choose a batch_size that divides 10"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        make_official_batches(np.arange(10), np.arange(10), batch_size=4)


def test_trim_true_drops_and_reports_the_last_samples():
    b = make_official_batches(np.arange(10), np.arange(10) + 100, batch_size=4, trim=True)
    np.testing.assert_array_equal(b.x_batches, [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(b.y_batches, [[100, 101, 102, 103], [104, 105, 106, 107]])
    report = b.trim
    assert (report.total, report.used, report.trimmed) == (10, 8, 2)
    assert (report.trimmed_start, report.trimmed_end, report.per_series) == (0, 2, ((0, 2),))
    assert str(report) == "used 8 of 10 samples in 2 batches of 4; trimmed 2 at the end"


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


def test_batches_are_read_only_copies():
    x = np.arange(8.0, dtype=np.float32)
    b = make_official_batches(x, x, batch_size=4)
    x[0] = 99.0
    assert b.x_batches[0, 0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        b.x_batches[0, 0] = 1.0


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
            {"x": np.arange(4), "y": np.arange(4), "batch_size": 2, "trim": "end"},
            "trim must be True or False, got 'end'; pass trim=True or False",
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
