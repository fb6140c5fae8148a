"""Time: the parsers of timestamps and step numbers, zones, frequencies, a series' clock.

Every timestamp that arrives as text (a live reading over HTTP, ``observe``, a CSV cell,
``fit``'s time column) passes ``check_time_text`` first: ISO-like text of printable ASCII
only, without a sign before the year. pandas itself reads ``"-1961-01-01"`` as 1961,
Arabic-Indic digits as ASCII ones, and skips a NUL byte inside a date: each would put a
reading at a time its sender did not write. ``parse_times`` turns readings' timestamps into
UTC nanoseconds and the zone a series keeps (``zone_of``; ``timestamp_at`` is its inverse).
``check_on_grid`` refuses a series' first timestamp that its frequency could never produce
(a month-start series stamped one nanosecond past midnight). ``parse_time_column`` parses a
whole time column (a CSV's, ``fit``'s ``time_col``, an index) over the same text rules:
one format inferred or given, day-first dates never guessed, offsets checked, local times
read in a zone.

Frequencies live here too: ``check_frequency`` refuses an alias this pandas does not take,
``infer_frequency`` reads one from timestamps, ``check_grid_frequency`` puts every series of
a training set on one grid and ``check_step_grid`` every series of steps on one stride.

``SeriesClock`` is the time rule of a model's series (a frequency, steps of a stride, or
neither): whether new readings continue a series, in order and on its grid, and when its
forecast steps fall; ``kept_zone`` is the zone a series keeps across a daylight-saving change.

A series may count steps instead (an integer index, a time column of whole numbers such as
1, 2, 3, or no time at all): ``parse_steps`` reads its step numbers, exactly, and
``step_stride`` the one stride they advance by, refusing gaps and disorder as a grid check
refuses them for timestamps.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

__all__ = [
    "SeriesClock",
    "cell_text",
    "forecast_time_column",
    "frequency_words",
    "check_frequency",
    "check_grid_frequency",
    "check_in_range",
    "check_on_grid",
    "check_step_grid",
    "check_time_text",
    "infer_frequency",
    "kept_zone",
    "parse_iso_times",
    "parse_steps",
    "parse_time_column",
    "step_stride",
    "parse_times",
    "parse_timestamps",
    "timestamp_at",
    "tz_of",
    "utc_nanoseconds",
    "zone_of",
]

# A timestamp's text: printable ASCII (no control character such as NUL, no digit of another
# script), and no sign before the year (pandas reads "-1961" and "+1961" as 1961).
_TIME_TEXT = re.compile(r"[ -~]*")
_SIGNED_YEAR = re.compile(r"^[ \t]*[-+][ \t]*\d", re.MULTILINE)


def check_time_text(texts: Sequence[str], where: Any) -> None:
    """Refuse timestamp text that pandas would read as another time than it says.

    One pass of the regular expressions over all the texts joined, so a column of millions
    of cells costs little; the first bad one is named.

    Args:
        texts: the cells or fields, as received.
        where: ``where(position)`` names the one at ``position`` in the message (e.g.
            ``"series 's': timestamp 3"``).

    Raises:
        ValueError: a control character (NUL included), a non-ASCII character (a digit of
            another script) or a sign before the year.
    """
    if _TIME_TEXT.fullmatch(" ".join(texts)) is None:
        position = next(i for i, t in enumerate(texts) if _TIME_TEXT.fullmatch(t) is None)
        text = texts[position]
        bad = next(c for c in text if not " " <= c <= "~")
        raise ValueError(
            f"{where(position)} ({text!r:.60}) holds the character {bad!r} "
            f"(U+{ord(bad):04X}); a timestamp is written in ASCII digits and separators, "
            "e.g. '2024-01-01T00:15:00'"
        )
    # no text holds a line break now: one per line, a line start is a text's start
    if _SIGNED_YEAR.search("\n".join(texts)):
        position = next(i for i, t in enumerate(texts) if _SIGNED_YEAR.match(t))
        raise ValueError(
            f"{where(position)} ({texts[position]!r:.60}) has a sign before its year, which "
            "pandas drops (years before 1 AD cannot be stored); write the year without a "
            "sign, e.g. '1961-01-01'"
        )


# A step number written as text: ASCII digits, with an optional sign.
_STEP_TEXT = re.compile(r"[+-]?[0-9]+")


def parse_steps(where: Any, items: Any) -> np.ndarray:
    """Step numbers as int64: integers, or text of whole numbers ("1", "-3", "0144").

    Args:
        where: ``where(position)`` names the item at ``position`` in a message.
        items: a sequence, an array or a pandas Index or Series.

    Returns:
        ``(items,)`` int64, the numbers as written (never rounded).

    Raises:
        ValueError: an item that is not a whole number (a float, a date, a bool), or one
            beyond int64.
    """
    dtype = getattr(items, "dtype", None)  # an array's own type; a list's items are each read
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        array = np.asarray(items)
        if array.dtype.kind == "u" and len(array) and int(array.max()) > np.iinfo(np.int64).max:
            position = int(np.argmax(array > np.iinfo(np.int64).max))
            raise ValueError(f"{where(position)} ({array[position]}) is beyond int64")
        return array.astype(np.int64)
    listed = items.tolist() if hasattr(items, "tolist") else list(items)
    out = np.empty(len(listed), np.int64)
    for position, item in enumerate(listed):
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValueError(
                f"{where(position)} ({item!r:.60}) is not a step number: a series of steps "
                "is numbered by whole numbers (1, 2, 3, ...); pass integers, or timestamps"
            )
        if isinstance(item, str) and _STEP_TEXT.fullmatch(item.strip()) is None:
            raise ValueError(
                f"{where(position)} ({item!r:.60}) is not a step number: a series of steps "
                "is numbered by whole numbers (1, 2, 3, ...) in ASCII digits"
            )
        value = int(item)
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{where(position)} ({item!r:.60}) is beyond int64")
        out[position] = value
    return out


def step_stride(where: str, steps: np.ndarray, stride: int | None = None) -> int:
    """The stride a series' step numbers advance by: every step the last one plus it.

    Args:
        where: the series, for messages (``"series 'a'"``).
        steps: ``(readings,)`` int64 step numbers.
        stride: the stride they must have (another series', or the model's); ``None`` to
            infer it (``1`` for a single reading).

    Returns:
        The stride, at least 1.

    Raises:
        ValueError: steps out of order, repeated, with a gap, or of another stride.
    """
    differences = np.diff(steps)
    if len(differences) and (differences <= 0).any():
        at = int(np.argmax(differences <= 0)) + 1
        raise ValueError(
            f"{where}: step {steps[at]} at row {at} follows step {steps[at - 1]}; a series' "
            "steps must increase: sort the rows by step and drop repeated steps"
        )
    if stride is None:
        stride = int(differences.min()) if len(differences) else 1
    off = differences != stride
    if off.any():
        at = int(np.argmax(off)) + 1
        expected = int(steps[at - 1]) + stride
        raise ValueError(
            f"{where}: step {steps[at]} at row {at}, expected {expected} (steps of {stride}): "
            "a gap or an uneven step; fill the missing steps (or, for dates written as "
            "numbers such as 19610101, pass their time format)"
        )
    return stride


def check_on_grid(where: str, stamp: pd.Timestamp, offset: Any, freq: str) -> None:
    """Refuse a first timestamp that a series of frequency ``offset`` never has.

    A calendar frequency (month start, week ending Sunday, business day, ...) must hold the
    timestamp's date; a fixed one (hours, minutes, days) is not anchored. Neither takes a
    fraction finer than its step: a second's fraction on a monthly or an hourly series.

    Raises:
        ValueError: the timestamp is off the frequency.
    """
    # a fraction finer than the frequency's own step is never on its grid
    step = pd.Timedelta(offset).value if isinstance(offset, pd.offsets.Tick) else 10**9
    granule = next((g for g in (10**9, 10**6, 10**3) if step % g == 0), 1)
    naive = stamp.tz_localize(None) if stamp.tz is not None else stamp
    if naive.value % granule == 0 and (
        isinstance(offset, pd.offsets.Tick) or offset.is_on_offset(stamp)
    ):
        return
    raise ValueError(
        f"{where} is {stamp.isoformat()}, which a series of frequency {freq} never has; "
        "send the timestamp the series' frequency gives (e.g. without a fraction of a second)"
    )


def zone_of(stamp: pd.Timestamp) -> str:
    """An aware timestamp's zone as kept in a state: its name, or its UTC offset ``"+05:00"``.

    A zone known by name (``zoneinfo``, ``pytz``) keeps its name, so that forecasts follow
    its daylight-saving rules; any other zone keeps ``stamp``'s offset.
    """
    tz = stamp.tz
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if tz is datetime.UTC or str(tz) == "UTC":
        return "UTC"
    if isinstance(name, str) and name:
        try:
            pd.Timestamp(0, tz="UTC").tz_convert(name)
        except (ValueError, KeyError, TypeError):
            pass  # not a name pandas resolves: the offset below
        else:
            return name
    offset = stamp.utcoffset()
    sign = "-" if offset < datetime.timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def tz_of(zone: str) -> Any:
    """Inverse of ``zone_of``: what ``tz_convert`` takes."""
    if zone[:1] in "+-" and len(zone) == 6:
        minutes = int(zone[1:3]) * 60 + int(zone[4:6])
        sign = -1 if zone[0] == "-" else 1
        return datetime.timezone(datetime.timedelta(minutes=sign * minutes))
    return zone


def timestamp_at(nanoseconds: int, zone: str | None) -> pd.Timestamp:
    """A stored timestamp (UTC nanoseconds) as a ``pd.Timestamp``, aware in ``zone``."""
    stamp = pd.Timestamp(nanoseconds)
    return stamp if zone is None else stamp.tz_localize("UTC").tz_convert(tz_of(zone))


# The ISO 8601 timestamps a live feed sends: a date, or a date and a time to the minute, the
# second or the nanosecond; naive, "Z" or an offset such as "+05:30". Years 1678 to 2261 hold
# in nanoseconds since 1970 whatever the offset.
_ISO_TIME = re.compile(
    r"(1[6-9]\d\d|2[0-2]\d\d)-\d\d-\d\d"
    r"(?:[T ]\d\d:\d\d(?::\d\d(\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?"
)
_EPOCH = datetime.datetime(1970, 1, 1)
_TIMESTAMP_MIN_NS, _TIMESTAMP_MAX_NS = pd.Timestamp.min.value, pd.Timestamp.max.value
# The most readings the fast path parses: at some 3 us a string, against pandas' 500 us a
# call and 0.4 us a string, it is the slower one from about 200 readings on.
_FAST_PARSE_MAX = 64


def parse_iso_times(items: list[Any]) -> tuple[np.ndarray, str | None] | None:
    """``parse_times``' result for ISO strings of one kind, without pandas; else ``None``.

    The fast path of ``parse_times`` (pandas guesses the format of each call's strings, some
    500 us for one reading): strings that ``_ISO_TIME`` matches and ``fromisoformat`` reads,
    all naive or all with an offset, give the same nanoseconds and zone as pandas. Anything
    else (another type, another form, an invalid date, aware and naive mixed, no items, more
    than ``_FAST_PARSE_MAX`` items, which pandas parses faster) is ``None``: pandas parses it,
    or says what is wrong with it.
    """
    if not items or len(items) > _FAST_PARSE_MAX:
        return None
    nanoseconds = np.empty(len(items), np.int64)  # (readings,)
    offset: datetime.timedelta | None = None
    kinds: set[bool] = set()
    for position, item in enumerate(items):
        if type(item) is not str:
            return None
        match = _ISO_TIME.fullmatch(item)
        if match is None:
            return None
        fraction, zone = match.group(2, 3)
        text = item if fraction is None else item[: match.start(2)] + item[match.end(2) :]
        try:
            stamp = datetime.datetime.fromisoformat(text)  # the fraction aside: microseconds
        except ValueError:
            return None
        kinds.add(zone is None)
        offset = stamp.utcoffset()
        delta = stamp.replace(tzinfo=None) - _EPOCH - (offset or datetime.timedelta(0))
        value = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + (
            0 if fraction is None else int(fraction[1:].ljust(9, "0"))
        )
        if not _TIMESTAMP_MIN_NS <= value <= _TIMESTAMP_MAX_NS:
            return None  # beyond pandas' range (1677-09-21 to 2262-04-11): the slow path says so
        nanoseconds[position] = value
    if len(kinds) > 1:
        return None  # aware and naive mixed: the slow path names them
    if offset is None:
        return nanoseconds, None
    # The last reading's zone, as zone_of keeps pandas' parse: UTC for a zero offset.
    if not offset:
        return nanoseconds, "UTC"
    minutes = int(abs(offset).total_seconds()) // 60
    sign = "-" if offset < datetime.timedelta(0) else "+"
    return nanoseconds, f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_times(series_id: str, timestamps: Sequence[Any]) -> tuple[np.ndarray, str | None]:
    """Timestamps as UTC nanoseconds and their zone (``None``: naive); see ``parse_timestamps``."""
    if isinstance(timestamps, pd.DatetimeIndex):
        index = timestamps
    else:
        items = list(timestamps)
        texts = [item for item in items if isinstance(item, str)]
        if texts:
            positions = [i for i, item in enumerate(items) if isinstance(item, str)]
            check_time_text(texts, lambda k: f"series {series_id!r}: timestamp {positions[k]}")
        fast = parse_iso_times(items)
        if fast is not None:
            return fast
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas' mixed-offset FutureWarning
                parsed = pd.to_datetime(items)
        except (TypeError, ValueError, OverflowError):
            parsed = None  # maybe aware and naive mixed: one at a time says which
        if isinstance(parsed, pd.DatetimeIndex):
            index = parsed
        else:
            stamps = []
            for position, item in enumerate(items):
                try:
                    stamps.append(check_in_range(series_id, position, pd.Timestamp(item)))
                except (TypeError, ValueError, OverflowError) as error:
                    if "outside the range of timestamps" in str(error):
                        raise
                    raise ValueError(
                        f"series {series_id!r}: timestamps could not be parsed (timestamp "
                        f"{position}, {item!r:.60}: {error}); pass ISO timestamps such as "
                        "'2024-01-01T00:15:00' or '2024-01-01T00:15:00+05:00'"
                    ) from None
            aware = [s is not pd.NaT and s.tz is not None for s in stamps]
            if any(aware) and not all(aware):
                _refuse_mixed(series_id, aware.index(True), aware.index(False), "")
            index = pd.DatetimeIndex(
                [s.tz_convert("UTC") if a else s for s, a in zip(stamps, aware, strict=True)]
            )
            if all(aware) and stamps:
                # several offsets (a daylight-saving change): the last reading's is kept
                return utc_nanoseconds(series_id, index), zone_of(stamps[-1])
    zone = None if index.tz is None or not len(index) else zone_of(index[-1])
    return utc_nanoseconds(series_id, index), zone


def check_in_range(series_id: str, position: int, stamp: pd.Timestamp) -> pd.Timestamp:
    """``stamp``, or a ``ValueError`` when nanoseconds since 1970 cannot hold it."""
    low, high = pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")
    naive = stamp if stamp is pd.NaT or stamp.tz is None else stamp.tz_convert(None)
    if naive is not pd.NaT and not low <= naive <= high:
        raise ValueError(
            f"series {series_id!r}: timestamp {position} ({stamp}) is outside the range of "
            f"timestamps ({low.isoformat()} to {high.isoformat()}); check the readings' dates"
        )
    return stamp


def _refuse_mixed(series_id: str, aware: Any, naive: Any, where: str) -> None:
    raise ValueError(
        f"series {series_id!r}: timestamp {aware} has a time zone and timestamp {naive} "
        f"has none{where}; a series' timestamps are all aware (with an offset such as "
        "'+05:00') or all naive: send them all one way"
    )


def utc_nanoseconds(series_id: str, index: pd.DatetimeIndex) -> np.ndarray:
    """``index`` as UTC nanoseconds; a missing or unrepresentable timestamp is refused."""
    if index.hasnans:
        at = int(np.argmax(index.isna()))
        raise ValueError(
            f"series {series_id!r}: timestamp {at} is missing (NaT); pass one timestamp per reading"
        )
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.unit != "ns":  # a coarser unit may hold what nanoseconds cannot
        for position, stamp in enumerate(index):
            check_in_range(series_id, position, stamp)
    return index.as_unit("ns").asi8


def parse_timestamps(series_id: str, timestamps: Sequence[Any]) -> np.ndarray:
    """Timestamps as int64 nanoseconds (time-zone aware ones converted to UTC).

    Aware timestamps may carry different offsets (a daylight-saving change); aware and
    naive ones together are refused. ``SeriesState.zone`` keeps the zone of aware ones.

    Args:
        series_id: for messages.
        timestamps: ISO strings, datetimes or ``pd.Timestamp`` (or a ``DatetimeIndex``).

    Returns:
        ``(readings,)`` int64 nanoseconds since the epoch (UTC).

    Raises:
        ValueError: an unparseable or missing timestamp, or aware and naive ones mixed.
    """
    return parse_times(series_id, timestamps)[0]


# --------------------------------------------------------------------------- frequencies


def check_frequency(field: str, value: str | None) -> None:
    """Raise when `value` is not a frequency alias this pandas accepts (None passes)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(
            f"{field} must be a pandas frequency string, got {value!r}; "
            "pass an alias such as 'min', '15min', 'h', 'D' or 'MS'"
        )
    try:
        # pandas 2.2 only warns about the renamed aliases ('H', 'T', 'M'); pandas 3 rejects
        # them. Treat the warning as the error so both versions answer the same.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            offset = to_offset(value)
    except (ValueError, FutureWarning) as error:
        raise ValueError(
            f"{field}={value!r} is not a frequency this pandas accepts; pass an alias such as "
            "'min', '15min', 'h', 'D' or 'MS' (pandas 2.2 renamed 'T', 'H', 'S' and 'M' "
            "to 'min', 'h', 's' and 'ME')"
        ) from error
    if offset.n <= 0:  # a grid of zero or negative steps never reaches the next reading
        raise ValueError(
            f"{field}={value!r} is a step of {offset.n}: readings move forward in time; pass a "
            "positive step such as 'D', '15min' or '2h'"
        )


def infer_frequency(index: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string (pandas 3 returns an offset when asked, else warns)."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(index)
    except (KeyError, pd.errors.OptionError):  # pandas before the option: a string
        return pd.infer_freq(index)
    return None if offset is None else offset.freqstr


def check_step_grid(times: Mapping[str, pd.Index | None], freq: str | None) -> int | None:
    """The one stride of the series of steps (``None`` without any); none has a gap.

    Raises:
        ValueError: ``freq`` given for step numbers; steps out of order, repeated, with a
            gap, or of strides that differ between series.
    """
    stride = None
    for series_id, index in times.items():
        if index is None or isinstance(index, pd.DatetimeIndex):
            continue
        if freq is not None:
            raise ValueError(
                f"freq={freq!r} was given, but series {series_id!r} is numbered by steps "
                f"({', '.join(str(s) for s in index[:3])}, ...), not timestamps; leave freq "
                "out, or pass timestamps"
            )
        try:
            stride = step_stride(f"series {series_id!r}", index.to_numpy(np.int64), stride)
        except ValueError as error:
            raise ValueError(
                f"{error}; a DataFrame whose rows were filtered can be numbered afresh with "
                "data.reset_index(drop=True)"
            ) from None
    return stride


def check_grid_frequency(times: Mapping[str, pd.Index | None], freq: str | None) -> str | None:
    """The readings' frequency (inferred when not given); every series on its grid."""
    check_frequency("freq", freq)
    stamped = {i: t for i, t in times.items() if isinstance(t, pd.DatetimeIndex)}
    if not stamped:
        return None
    if freq is None:
        inferred = set()
        for series_id, index in stamped.items():
            guess = infer_frequency(index) if len(index) >= 3 else None
            if guess is None:
                raise ValueError(
                    f"cannot infer the frequency of series {series_id!r} from its timestamps "
                    f"({len(index)} from {index[0] if len(index) else '-'}); its timestamps are "
                    "too few, irregular or have gaps: pass freq= (e.g. freq='MS' or '15min') "
                    "after filling the gaps"
                )
            inferred.add(guess)
        if len(inferred) > 1:
            raise ValueError(
                f"the series have different frequencies {sorted(inferred)}; pass freq= to "
                "choose one, or fit them separately"
            )
        freq = inferred.pop()
    offset = to_offset(freq)
    for series_id, index in stamped.items():
        grid = pd.date_range(index[0], periods=len(index), freq=offset)
        if not grid.equals(pd.DatetimeIndex(index)):
            given = pd.DatetimeIndex(index).as_unit("ns").asi8
            at = int(np.argmax(grid.as_unit("ns").asi8 != given))
            raise ValueError(
                f"series {series_id!r}: reading {at} has timestamp {index[at]}, expected "
                f"{grid[at]} (frequency {freq}): a gap or an off-grid reading; fill the gaps "
                "(e.g. frame.asfreq(freq).interpolate()) before fitting"
            )
    return freq


# --------------------------------------------------------------------------- a series' clock


def kept_zone(old: str | None, new: str | None, stamps: np.ndarray) -> str | None:
    """The zone a series keeps: a named zone stays while the new offsets agree with it."""
    if old is None or new is None or old[:1] in "+-" or new[:1] not in "+-":
        return new
    named = timestamp_at(int(stamps[-1]), old).utcoffset()
    return old if named == timestamp_at(int(stamps[-1]), new).utcoffset() else new


@dataclass(frozen=True, slots=True)
class SeriesClock:
    """The time rule of a model's series: a frequency, steps of a stride, or neither.

    ``Forecaster`` asks it whether new readings continue a series (``check_next``), which
    step numbers readings without times get (``next_steps``), when the forecast steps fall
    (``after``) and how a stored time reads (``text``). Times are UTC nanoseconds, or step
    numbers for a series of steps.

    Attributes:
        freq: the readings' pandas frequency; ``None`` checks only the order.
        step: the stride of a series of steps; ``None`` for timestamps (or no times).
    """

    freq: str | None = None
    step: int | None = None
    offset: Any = dataclasses.field(init=False, repr=False, compare=False)  # freq's, once

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", None if self.freq is None else to_offset(self.freq))

    def text(self, time: int, zone: str | None) -> str:
        """A stored time as text: an ISO timestamp (in ``zone``), or a step number."""
        return str(time) if self.step is not None else timestamp_at(time, zone).isoformat()

    def next_steps(self, last: int | None, seen: int, count: int) -> np.ndarray:
        """The step numbers of ``count`` readings after ``last`` (a new series: from 0)."""
        assert self.step is not None
        start = self.step * seen if last is None else last + self.step
        return start + self.step * np.arange(count, dtype=np.int64)

    def after(
        self, series_id: str, last: int | None, zone: str | None, horizon: int
    ) -> pd.Index | None:
        """The times of ``horizon`` steps after ``last`` (aware in ``zone``), or ``None``.

        Raises:
            ValueError: the steps pass the last timestamp pandas can hold.
        """
        if last is not None and self.step is not None:
            return pd.Index(last + self.step * np.arange(1, horizon + 1))
        if last is None or self.offset is None:
            return None
        stamp = timestamp_at(last, zone)
        try:
            grid = pd.date_range(stamp, periods=horizon + 1, freq=self.offset)[1:]
        except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
            grid = None
        if grid is None or len(grid) != horizon or grid.hasnans:
            raise ValueError(
                f"series {series_id!r}: {horizon} forecast step(s) of {self.freq} after "
                f"{stamp.isoformat()} pass the last timestamp pandas can hold "
                f"({pd.Timestamp.max.isoformat()}); check the readings' dates, or ask for "
                "fewer steps"
            )
        return grid

    def check_next(
        self,
        series_id: str,
        last: int | None,
        last_zone: str | None,
        stamps: np.ndarray | None,
        zone: str | None,
        count: int,
        *,
        horizon: int,
    ) -> None:
        """New readings' times continue a series: present, in order, on its grid.

        Args:
            series_id: the series, for messages.
            last: the series' last time (``None``: none yet).
            last_zone: the zone the series keeps.
            stamps: ``(count,)`` the readings' times (``None``: none sent).
            zone: the readings' zone.
            count: how many readings.
            horizon: the forecast steps the readings must leave datable.

        Raises:
            ValueError: times missing where the series has them, out of order, off the grid
                or with a gap, or a forecast after them that cannot be dated.
        """
        if self.step is not None:
            self._check_steps(series_id, last, stamps)
            return
        if stamps is None:
            if last is not None:
                raise ValueError(
                    f"series {series_id!r} has timestamps up to {self.text(last, last_zone)}; "
                    "pass timestamps with the new readings so that their order can be checked"
                )
            return

        def shown(position: int) -> str:
            return timestamp_at(int(stamps[position]), zone).isoformat()

        if last is not None and stamps[0] <= last:
            raise ValueError(
                f"series {series_id!r}: reading at {shown(0)} is out of time order: the "
                f"series already has readings up to {self.text(last, last_zone)}; send only "
                "newer readings"
            )
        steps = np.diff(stamps)
        if (steps <= 0).any():
            at = int(np.argmax(steps <= 0)) + 1
            raise ValueError(
                f"series {series_id!r}: timestamps are not strictly increasing at reading {at} "
                f"({shown(at - 1)} then {shown(at)}); sort them and drop duplicates"
            )
        offset = self.offset
        if offset is None:
            return
        # the grid runs in the series' own zone: a daily grid keeps its local hour across a
        # daylight-saving change
        if last is None:
            first = timestamp_at(int(stamps[0]), zone)
            check_on_grid(
                f"series {series_id!r}: the first timestamp", first, offset, str(self.freq)
            )
            grid = pd.date_range(first, periods=count, freq=offset)
        else:
            start = timestamp_at(last, last_zone)
            if zone is not None:
                # the zone the series keeps: its named zone (Europe/Paris) while the new
                # offsets agree with it, so a daily grid keeps local midnight across a
                # daylight-saving change the readings' offsets (+01:00, +02:00) cross
                start = start.tz_convert(tz_of(kept_zone(last_zone, zone, stamps)))
            grid = pd.date_range(start, periods=count + 1, freq=offset)[1:]
        off = utc_nanoseconds(series_id, grid) != stamps
        if off.any():
            at = int(np.argmax(off))
            raise ValueError(
                f"series {series_id!r}: reading {at} has timestamp {shown(at)}, expected "
                f"{grid[at].isoformat()} (frequency {self.freq}): a gap or an off-grid "
                "reading; send the missing readings (filled) in order"
            )
        # refused before anything is applied: a series whose forecast cannot be dated
        self.after(series_id, int(stamps[-1]), kept_zone(last_zone, zone, stamps), horizon)

    def _check_steps(self, series_id: str, last: int | None, stamps: np.ndarray) -> None:
        """Step numbers continue the series' by its stride."""
        stride = self.step
        step_stride(f"series {series_id!r}", stamps, stride)
        if last is None or stamps[0] == last + stride:
            return
        if stamps[0] <= last:
            raise ValueError(
                f"series {series_id!r}: reading at step {stamps[0]} is out of order: the "
                f"series already has readings up to step {last}; send only newer readings"
            )
        raise ValueError(
            f"series {series_id!r}: reading at step {stamps[0]}, expected step "
            f"{last + stride} (steps of {stride}): a gap; send the missing readings (filled) "
            "in order"
        )


# --------------------------------------------------------------------------- time columns

# A UTC offset ending a timestamp that has a time of day: 'Z', '+05:00', '-0330', '+01'.
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$")


def cell_text(series: pd.Series) -> np.ndarray:
    """A column's cells as stripped strings (missing cells become '')."""
    cells = series.astype(object).to_numpy()
    absent = pd.isna(cells)
    return np.array(
        ["" if gone else str(cell).strip() for cell, gone in zip(cells, absent, strict=True)],
        dtype=object,
    )


def parse_time_column(
    series: pd.Series,
    *,
    label: str,
    time_format: str | None = None,
    format_fixed: bool = False,
    time_zone: str | None = None,
) -> pd.DatetimeIndex | pd.Index:
    """Parse timestamps from text, datetimes or periods; raise naming the first bad cell.

    The one parser of time columns: the command line's readers and ``Forecaster.fit`` (a
    ``time_col``, an index). Dates with '/' are refused without ``time_format`` (their day
    and month order is ambiguous), as are mixed UTC offsets and text pandas cannot infer one
    format for. Whole numbers that pandas reads as no dates (``1, 2, 3``, not the years
    ``1949, 1950``) are step numbers (``lstmlab.data.calendar.parse_steps``): an int64
    ``pd.Index``, in the order of the cells.

    Args:
        series: the column's cells.
        label: how the messages name the column (e.g. ``"'Date'"``).
        time_format: a strptime format, else inferred.
        format_fixed: the format is not the caller's to change (the messages then only ask
            to fix the cell).
        time_zone: local timestamps' zone (``LoadConfig.time_zone``): offsets may change
            (daylight saving) and are converted to it; naive timestamps are read in it (an
            hour that does not exist or occurs twice in it is refused).

    Returns:
        A ``DatetimeIndex``, or an int64 ``Index`` of step numbers.

    Raises:
        ValueError: a missing or unparseable cell, or an ambiguous or mixed column; step
            numbers with a time zone.
    """
    if isinstance(series.dtype, pd.PeriodDtype):
        # A monthly PeriodIndex ('1949-01') stands for the month's start, as "MS" does.
        series = series.dt.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = pd.DatetimeIndex(series)
        absent = np.flatnonzero(parsed.isna())
        if absent.size:
            raise ValueError(
                f"time {label} row {absent[0] + 1} has no timestamp; fill it or remove the row"
            )
        return parsed
    dtype = series.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return _steps(np.asarray(series), label, time_zone)  # integers count steps
    if pd.api.types.is_numeric_dtype(dtype):  # floats, True/False, complex numbers
        raise ValueError(
            f"time {label} holds {dtype} values ({', '.join(map(str, series[:3]))}, ...), "
            "which are neither timestamps nor step numbers; pass timestamps, or whole step "
            "numbers (e.g. .astype(int) after checking they are whole)"
        )
    text = cell_text(series)
    signed = [cell for cell in text if cell[:1] in ("-", "+")]
    if signed and time_format is None and all(_INTEGER.fullmatch(cell) for cell in text):
        return _steps(text, label, time_zone)  # no date has a sign: step numbers
    check_time_text(list(text), lambda row: f"time {label} row {row + 1}")
    if time_format is None:
        first = next((cell for cell in text if cell), None)
        if first is not None and "/" in first:
            # 01/02/2006 is 1 February or 2 January: never guess the day order.
            raise ValueError(
                f"time {label} holds dates with '/' such as {first!r}, whose day and month "
                "order is ambiguous; pass time_format, e.g. '%d/%m/%Y' or '%m/%d/%Y'"
            )
    if time_zone is not None:
        _check_zone(time_zone)
    aware = _check_offsets(text, label, zone=time_zone)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = pd.DatetimeIndex(
                pd.to_datetime(
                    pd.Series(text),
                    format=time_format,
                    errors="coerce",
                    utc=time_zone is not None and aware,  # instants, then in the zone
                )
            )
        except (ValueError, OverflowError) as error:
            if time_format is not None and "directive" in str(error):
                raise ValueError(
                    f"time_format {time_format!r} is not a strptime format ({error}); pass "
                    "time_format such as '%Y-%m-%d %H:%M:%S'"
                ) from None
            # offsets the check above cannot see ('CET', '+05:30:15')
            raise ValueError(
                f"time {label} cannot be parsed as one time zone ({error}); write every "
                "timestamp with the same UTC offset (e.g. convert them to UTC), or none with one"
            ) from None
    if caught and time_format is None:
        if all(_INTEGER.fullmatch(cell) for cell in text):
            return _steps(text, label, time_zone)
        raise ValueError(
            f"time {label} has no single timestamp format pandas can infer (first value "
            f"{text[0]!r}); pass time_format, e.g. '%Y-%m-%d %H:%M:%S'"
        )
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if time_zone is not None:
        parsed = _in_zone(parsed, time_zone, label)
    absent = np.flatnonzero(parsed.isna())
    if absent.size:
        position = int(absent[0])
        clause = f" in the format {time_format!r}" if time_format is not None else ""
        fix = "fix the cell" if format_fixed else "fix the cell or pass time_format"
        raise ValueError(
            f"time {label} row {position + 1} holds {text[position]!r}, which is not a "
            f"timestamp{clause}; {fix}"
        )
    return parsed


def _steps(cells: np.ndarray, label: str, time_zone: str | None) -> pd.Index:
    """A time column of whole numbers (integers, or their text) as its step numbers."""
    if time_zone is not None:
        raise ValueError(
            f"time {label} holds step numbers ({', '.join(map(str, cells[:3]))}, ...), which "
            "have no time zone; leave the time zone out, or pass timestamps"
        )
    return pd.Index(parse_steps(lambda row: f"time {label} row {row + 1}", cells))


# A whole number in ASCII digits: a step number, or a year if pandas reads the column so.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _check_zone(zone: str) -> None:
    """Refuse a zone name pandas does not know, naming a few it does."""
    try:
        pd.Timestamp(0, tz="UTC").tz_convert(zone)
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"time zone {zone!r} is unknown; pass an IANA zone name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'"
        ) from None


def _in_zone(parsed: pd.DatetimeIndex, zone: str, label: str) -> pd.DatetimeIndex:
    """Aware timestamps converted to ``zone``; naive ones read in it (never guessed)."""
    if parsed.tz is not None:
        return parsed.tz_convert(zone)
    try:
        return parsed.tz_localize(zone, ambiguous="raise", nonexistent="raise")
    except Exception as error:  # noqa: BLE001 - pytz' NonExistent/AmbiguousTimeError
        if not isinstance(error, ValueError) and not type(error).__name__.endswith("TimeError"):
            raise
        raise ValueError(
            f"time {label} holds a local time that {zone} does not have once ({error}): an "
            "hour skipped or repeated by a daylight-saving change; write the timestamps with "
            "their UTC offsets (e.g. '2024-10-27 02:30:00+01:00')"
        ) from None


def _offset_key(offset: str | None) -> str | None:
    """'Z', '+00', '+00:00' -> '+0000'; '+05:30' -> '+0530'; None stays None."""
    if offset is None:
        return None
    key = "+0000" if offset == "Z" else offset.replace(":", "")
    key = key + "00" if len(key) == 3 else key
    return "+0000" if key == "-0000" else key


def _check_offsets(text: np.ndarray, label: str, *, zone: str | None = None) -> bool:
    """Whether the timestamps carry UTC offsets; raise when some do and some do not.

    Without a ``zone`` to convert them to, different offsets are refused too.
    """
    offsets = [match.group(1) if (match := _OFFSET.search(cell)) else None for cell in text]
    normal = [_offset_key(offset) for offset in offsets]
    aware = [offset is not None for offset in normal]
    if any(aware) and not all(aware):
        first, other = aware.index(True), aware.index(False)
        raise ValueError(
            f"time {label} mixes timestamps with a UTC offset (row {first + 1}: "
            f"{text[first]!r}) and without one (row {other + 1}: {text[other]!r}); write "
            "every timestamp with its offset, or none with one"
        )
    if zone is not None or len(set(normal)) <= 1:
        return bool(aware) and aware[0]
    first = 0
    other = next(i for i, offset in enumerate(normal) if offset != normal[0])
    raise ValueError(
        f"time {label} mixes UTC offsets: row {first + 1} ({text[first]!r}) has "
        f"{offsets[first]}, row {other + 1} ({text[other]!r}) has {offsets[other]} (a daylight "
        "saving change?); local times: pass time_zone, e.g. 'Europe/Paris' (the series keeps "
        "it), or convert the timestamps to one offset, e.g. UTC"
    )


# How a figure's axis names a frequency.
_FREQUENCY_WORDS = {
    "MS": "monthly",
    "ME": "monthly",
    "QS": "quarterly",
    "QE": "quarterly",
    "YS": "yearly",
    "YE": "yearly",
    "W": "weekly",
    "W-SUN": "weekly",
    "D": "daily",
    "h": "hourly",
    "30min": "half-hourly",
    "15min": "every 15 minutes",
}


def frequency_words(freq: str | None) -> str | None:
    """A frequency in words (``"MS"`` is ``"monthly"``), else the alias itself."""
    return _FREQUENCY_WORDS.get(freq, freq)


def forecast_time_column(times: Sequence[Any], grids: Mapping[Any, pd.Index], columns: int) -> Any:
    """A forecast frame's ``time`` column: each series' steps once per value column.

    ``times`` holds, per series, the key of its timestamp grid (or step numbers) in
    ``grids`` (a tuple) or the positions of its forecast readings. One zone (or none): one
    datetime column, each distinct grid converted once; otherwise objects, as pandas joins
    them. Step numbers: one int64 column.
    """
    stamped = [isinstance(t, tuple) for t in times]
    position = {key: k for k, key in enumerate(grids)}
    if all(stamped) and not isinstance(next(iter(grids.values())), pd.DatetimeIndex):
        steps = np.stack([grid.to_numpy(np.int64) for grid in grids.values()])
        return steps[np.repeat([position[key] for key in times], columns)].reshape(-1)
    zones = {str(t.tz) for t in grids.values()}
    if all(stamped) and len(zones) == 1:
        utc = np.stack([grid.as_unit("ns").asi8 for grid in grids.values()])
        rows = np.repeat([position[key] for key in times], columns)
        utc = utc[rows].reshape(-1).view("M8[ns]")
        zone = next(iter(grids.values())).tz
        if zone is None:
            return pd.DatetimeIndex(utc)
        return pd.DatetimeIndex(utc, tz="UTC").tz_convert(zone)
    pieces = [grids[t] if isinstance(t, tuple) else t for t in times for _ in range(columns)]
    if any(stamped):  # several zones, or positions beside times
        return np.concatenate([np.asarray(p, dtype=object) for p in pieces])
    return np.concatenate(pieces)
