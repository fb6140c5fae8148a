"""lstmlab.data.calendar: the parse of reading timestamps and the strict rules on their text."""

import numpy as np
import pandas as pd
import pytest

from lstmlab.data import calendar

# ISO strings of one kind take the fast path (no pandas); the rest falls back to pandas
ISO_FAST = [
    ["2024-01-01"],
    ["2024-03-05", "2024-03-06", "2024-02-29"],
    ["2024-01-01T00:15"],
    ["2024-01-01 00:15:30"],
    ["2024-01-01T00:15:30.5", "2024-01-01T00:15:31.123456"],
    ["2024-01-01T00:15:30.123456789", "1969-12-31T23:59:59.999999999"],
    ["1678-01-01T00:00:00", "2261-12-31T23:59:59"],
    ["2024-01-01", "2024-01-01T00:15:00", "2024-01-01 00:30:00.25"],  # forms mixed
    ["2024-01-01T00:15:00Z"],
    ["2024-01-01T00:15Z", "2024-01-01T00:30:00.5Z"],
    ["2024-01-01T00:15:00+05:30"],
    ["2024-01-01T00:15:00-03:45", "2024-01-01T00:30:00.000000001-03:45"],
    ["2024-01-01T00:15:00+00:00"],
    ["2024-01-01T00:15:00-00:00"],
    ["2024-01-01T00:15:00+05:30", "2024-01-01T00:00:00Z"],  # offsets mixed: the last kept
    ["2024-01-01T00:15:00Z", "2024-01-01T05:45:00+05:30"],
    ["2024-03-31T01:45:00+01:00", "2024-03-31T03:00:00+02:00"],  # a daylight-saving change
    ["1678-01-01T00:00:00+23:59", "2261-12-31T23:59:59-23:59"],
    [f"2024-01-01T{hour:02d}:00:00+05:30" for hour in range(16)] * 4,  # 64: _FAST_PARSE_MAX
    ["2262-04-11T23:47:16.854775807"],  # pandas' last nanosecond
]
ISO_SLOW = [
    [],
    ["2024-02-30"],
    ["2024-13-01"],
    ["2024-01-01T24:00:00"],
    ["2024-01-01T00:60:00"],
    ["2024-01-01T00:00:60"],
    ["2024-01-01T00:00:00+24:00"],
    ["1500-01-01"],
    ["2300-01-01T00:00:00+05:00"],
    # in the pattern's years, past pandas' range (the int64 nanoseconds would overflow)
    ["2263-01-01T00:00:00"],
    ["2262-04-11T23:47:16.854775808"],
    ["1677-09-21T00:12:43.145224192"],  # int64's minimum: NaT
    ["1677-09-21T00:12:43.145224191"],
    ["2024-01-01", "2024-01-01T00:15:00+05:00"],  # aware and naive mixed
    ["2024-01-01T00:15:00Z", "2024-01-01T00:30:00"],
    ["not a time"],
    [""],
    [" 2024-01-01"],
    ["2024-01-01T00:15:00.1234567891"],
    ["2024-W01-1"],
    ["20240101T001500"],
    ["2024-01-01t00:15:00"],
    ["2024-01-01T00:15:00+0530"],
    ["2024-01-01T00:15:00z"],
    ["2024-01"],
    [pd.Timestamp("2024-01-01 00:15"), "2024-01-01T00:30:00"],
    [np.str_("2024-01-01T00:15:00")],
    [20240101],
    [None],
    [f"2024-01-01T{hour:02d}:00:00+05:30" for hour in range(13)] * 5,  # 65: pandas is faster
]


def _parsed(items):
    try:
        stamps, zone = calendar.parse_times("s", items)
    except ValueError as error:
        return str(error)
    assert stamps.dtype == np.int64 and stamps.shape == (len(items),)
    return stamps.tolist(), zone


@pytest.mark.parametrize("items", ISO_FAST + ISO_SLOW, ids=lambda items: repr(items)[:80])
def test_the_fast_iso_parse_equals_pandas_parse(items, monkeypatch):
    assert (calendar.parse_iso_times(list(items)) is not None) == (items in ISO_FAST)
    fast = _parsed(items)
    monkeypatch.setattr(calendar, "parse_iso_times", lambda items: None)  # pandas only
    assert fast == _parsed(items)


@pytest.mark.parametrize("items", ISO_FAST, ids=lambda items: repr(items)[:80])
def test_the_fast_iso_parse_equals_pandas_timestamps_one_by_one(items):
    # an independent reference: each string read by pd.Timestamp, the last one's zone kept
    stamps = [pd.Timestamp(item) for item in items]
    expected = [(s.tz_convert("UTC") if s.tz else s).as_unit("ns").value for s in stamps]
    offset = stamps[-1].utcoffset()
    zone = None if offset is None else "UTC" if not offset else stamps[-1].isoformat()[-6:]
    assert _parsed(items) == (expected, zone)


def test_bad_timestamps_keep_pandas_messages():
    assert _parsed(["2024-02-30"]) == (
        "series 's': timestamps could not be parsed (timestamp 0, '2024-02-30': day is out of "
        "range for month: 2024-02-30); pass ISO timestamps such as '2024-01-01T00:15:00' or "
        "'2024-01-01T00:15:00+05:00'"
    )
    assert _parsed(["2024-01-01", "2024-01-01T00:15:00+05:00"]).startswith(
        "series 's': timestamp 1 has a time zone and timestamp 0 has none;"
    )
    assert _parsed(["1500-01-01"]).startswith(
        "series 's': timestamp 0 (1500-01-01 00:00:00) is outside the range of timestamps"
    )


# Text pandas reads as another time than it says (pandas' reading on the right).
MISREAD = [
    ("-1961-01-01", "a sign before its year"),  # pandas: 1961-01-01
    ("+1961-01-01", "a sign before its year"),
    (" -1961-01-01", "a sign before its year"),
    ("\u0661\u0669\u0666\u0661-\u0660\u0661-\u0660\u0661", "U+0661"),  # Arabic-Indic: 1961-01-01
    ("1961-01\x00-01", "U+0000"),  # pandas skips the NUL: 1961-01-01
    ("1961-01-01\x00", "U+0000"),
    ("1961-01-01T00:00\n", "U+000A"),
    ("\uff11\uff19\uff16\uff11-01-01", "U+FF11"),  # full-width digits
]


@pytest.mark.parametrize(("text", "named"), MISREAD, ids=lambda v: ascii(v)[:40])
def test_text_pandas_would_misread_is_refused_with_its_position(text, named):
    items = ["1961-01-01", "1961-02-01", text]
    message = _parsed(items)
    assert isinstance(message, str), f"{text!r} was accepted as {message}"
    assert message.startswith("series 's': timestamp 2 (") and named in message
    with pytest.raises(ValueError, match=r"time 'Date' row 3 \("):
        calendar.check_time_text(items, lambda row: f"time 'Date' row {row + 1}")


def test_pandas_reads_the_refused_texts_as_other_times():
    # why the rules exist: each of these parses, to a time its text does not say
    assert pd.to_datetime(["-1961-01-01"])[0] == pd.Timestamp("1961-01-01")
    assert pd.to_datetime(["1961-01\x00-01"])[0] == pd.Timestamp("1961-01-01")
    arabic = "\u0661\u0669\u0666\u0661-\u0660\u0661-\u0660\u0661"
    assert pd.Timestamp(arabic) == pd.Timestamp("1961-01-01")


@pytest.mark.parametrize(
    "text", ["1961-01-01", "1961-01-01T00:15:00-05:00", "16/12/2006 17:24:00", "Jan 1961", "1961"]
)
def test_ordinary_text_passes_the_rules(text):
    calendar.check_time_text([text], lambda row: f"row {row}")  # no error
    assert not isinstance(_parsed([text]), str)


@pytest.mark.parametrize(
    ("stamp", "freq", "on"),
    [
        ("1961-01-01", "MS", True),
        ("1961-01-01T00:00:00.000000001", "MS", False),
        ("1961-01-15", "MS", False),
        ("1961-01-31", "ME", True),
        ("2024-01-07", "W-SUN", True),
        ("2024-01-08", "W-SUN", False),
        ("2024-01-01T09:30:00", "D", True),  # a daily series may be read at 09:30
        ("2024-01-01T00:15:00", "30min", True),
        ("2024-01-01T00:15:00.5", "30min", False),
        ("2024-01-01T00:00:00.25", "250ms", True),
    ],
)
def test_a_first_timestamp_off_its_frequency_is_refused(stamp, freq, on):
    offset = pd.tseries.frequencies.to_offset(freq)
    stamp = pd.Timestamp(stamp)
    if on:
        calendar.check_on_grid("the first timestamp", stamp, offset, freq)
    else:
        with pytest.raises(ValueError, match=f"which a series of frequency {freq} never has"):
            calendar.check_on_grid("the first timestamp", stamp, offset, freq)


# --------------------------------------------------------------------------- step numbers


def _where(position):
    return f"row {position}"


@pytest.mark.parametrize(
    "items",
    [
        [1, 2, 3],
        np.array([-5, 0, 7], np.int32),
        np.array([2**62, 2**63 - 1], np.uint64),
        ["1", "2", "3"],
        ["-3", "+4", " 0144 "],
        [str(2**63 - 1), str(-(2**63))],
        pd.Index([10, 20]),
        pd.Series(["7", "8"], dtype=object),
    ],
    ids=repr,
)
def test_step_numbers_are_read_exactly_as_python_reads_them(items):
    got = calendar.parse_steps(_where, items)
    assert got.dtype == np.int64
    assert got.tolist() == [int(str(item).strip()) for item in list(items)]


@pytest.mark.parametrize(
    ("items", "bad", "fragment"),
    [
        ([1, 2.5], 1, "is not a step number"),
        ([1.0, 2.0], 0, "is not a step number"),  # whole floats are floats: never rounded
        ([True, False], 0, "is not a step number"),
        (["1", "2024-01-01"], 1, "in ASCII digits"),
        (["1", "١٢"], 1, "in ASCII digits"),  # Arabic-Indic digits, which int() would read
        (["1", ""], 1, "in ASCII digits"),
        ([1, None], 1, "is not a step number"),
        ([str(2**63)], 0, "beyond int64"),
        (np.array([2**63], np.uint64), 0, "beyond int64"),
    ],
    ids=repr,
)
def test_what_is_no_step_number_is_refused_by_its_row(items, bad, fragment):
    with pytest.raises(ValueError, match=f"row {bad} ") as caught:
        calendar.parse_steps(_where, items)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("steps", "given", "stride"),
    [([4], None, 1), ([4], 3, 3), ([1, 2, 3], None, 1), ([-6, -1, 4], None, 5), ([0, 7], 7, 7)],
)
def test_the_stride_is_the_one_difference_of_the_steps(steps, given, stride):
    assert calendar.step_stride("s", np.array(steps), given) == stride


@pytest.mark.parametrize(
    ("steps", "given", "fragment"),
    [
        ([1, 3, 2], None, "step 2 at row 2 follows step 3; a series' steps must increase"),
        ([1, 2, 2], None, "step 2 at row 2 follows step 2"),
        ([1, 2, 4], None, "step 4 at row 2, expected 3 (steps of 1): a gap"),
        ([2, 4, 7], None, "step 7 at row 2, expected 6 (steps of 2)"),
        ([1, 2, 3], 2, "step 2 at row 1, expected 3 (steps of 2)"),
    ],
)
def test_steps_out_of_order_or_off_the_stride_are_refused(steps, given, fragment):
    with pytest.raises(ValueError, match="^s: ") as caught:
        calendar.step_stride("s", np.array(steps), given)
    assert fragment in str(caught.value)
