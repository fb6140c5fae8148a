"""Season lengths of a series: from its frequency, or detected from its training part.

A window that sees the season is what lets a windowed model forecast a seasonal series: the
value one season before the step to forecast must be inside the window. This module answers
"how long is the season" in three ways, in this order of trust:

1. given by the caller (``choose_seasons(..., given=(48, 336))``);
2. the usual cycles of the series' frequency (``seasons_for_freq``), the conventions of
   statsforecast's ``season_length``, R's ``ts`` frequencies and GluonTS' ``get_seasonality``:
   24 and 168 for hourly data, 12 for monthly, 4 for quarterly, ...;
3. detected from the autocorrelation of the training part (``detect_season``), for a series
   without a frequency (a plain CSV) or with one that has no usual season (annual lynx
   trappings, whose cycle of about ten years no calendar gives).

``default_window`` then turns the seasons into the input window.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmlab.checks import check_positive_int

__all__ = [
    "Seasons",
    "WindowChoice",
    "choose_seasons",
    "choose_window",
    "default_window",
    "detect_season",
    "seasons_for_freq",
]

_SECOND = 1_000_000_000  # nanoseconds
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY

# pandas 2.2 deprecated these aliases and pandas 3 rejects them; read them the same way in
# both, as their current spelling ("M" was month end, "A" and "Y" year end, "Q" quarter end).
_LEGACY_ALIASES = {
    "H": "h",
    "BH": "bh",
    "CBH": "cbh",
    "T": "min",
    "S": "s",
    "L": "ms",
    "U": "us",
    "N": "ns",
    "M": "ME",
    "BM": "BME",
    "CBM": "CBME",
    "SM": "SME",
    "Q": "QE",
    "BQ": "BQE",
    "A": "YE",
    "Y": "YE",
    "BA": "BYE",
    "BY": "BYE",
    "AS": "YS",
    "BAS": "BYS",
}
_ALIAS = re.compile(r"^(?P<n>\d*)(?P<name>[A-Za-z]+)(?P<anchor>-[A-Za-z]+)?$")

# Calendar offsets (any multiple, any anchor): their usual cycle in steps of one offset.
_CALENDAR_CYCLES: tuple[tuple[tuple[type, ...], int], ...] = (
    ((pd.offsets.BusinessDay, pd.offsets.CustomBusinessDay), 5),  # the working week
    ((pd.offsets.Week,), 52),  # weeks in a year (52.18; 52 by convention)
    ((pd.offsets.SemiMonthBegin, pd.offsets.SemiMonthEnd), 24),
    (
        (
            pd.offsets.MonthBegin,
            pd.offsets.MonthEnd,
            pd.offsets.BusinessMonthBegin,
            pd.offsets.BusinessMonthEnd,
            pd.offsets.CustomBusinessMonthBegin,
            pd.offsets.CustomBusinessMonthEnd,
        ),
        12,
    ),
    (
        (
            pd.offsets.QuarterBegin,
            pd.offsets.QuarterEnd,
            pd.offsets.BQuarterBegin,
            pd.offsets.BQuarterEnd,
        ),
        4,
    ),
)
_ANNUAL = (pd.offsets.YearBegin, pd.offsets.YearEnd, pd.offsets.BYearBegin, pd.offsets.BYearEnd)


def _offset(freq: str) -> pd.DateOffset | None:
    """Parse a frequency alias in its pandas 2 or pandas 3 spelling; None when unknown."""
    try:
        # pandas 2.2 warns about the deprecated spellings; their meaning is unambiguous here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return to_offset(freq)
    except ValueError:
        pass
    match = _ALIAS.match(freq.strip())
    if match is None or match["name"] not in _LEGACY_ALIASES:
        return None
    spelled = f"{match['n']}{_LEGACY_ALIASES[match['name']]}{match['anchor'] or ''}"
    try:
        return to_offset(spelled)
    except ValueError:
        return None


def _steps(cycle: int, span: int) -> int | None:
    """Return the cycle in steps of `span`, or None when it is not a whole number >= 2."""
    if cycle % span:
        return None
    steps = cycle // span
    return steps if steps >= 2 else None


def seasons_for_freq(freq: str | None) -> tuple[int, ...]:
    """Return the usual season lengths of a pandas frequency, shortest first.

    The table follows the conventions practitioners use for ``season_length`` (statsforecast,
    R's ``ts`` frequencies, GluonTS' ``get_seasonality``), keeping at most the two cycles that
    matter at each resolution:

    ==========================  ==============================  ============
    step                        cycles                          example
    ==========================  ==============================  ============
    1 s to under 1 min          minute, hour                    ``s``: (60, 3600)
    1 min to under 15 min       hour, day                       ``min``: (60, 1440)
    15 min to under 1 day       day, week                       ``30min``: (48, 336)
    day                         week                            ``D``: (7,)
    business day                working week                    ``B``: (5,)
    week                        year (52 weeks)                 ``W-SUN``: (52,)
    half month / month          year                            ``MS``: (24,) / (12,)
    quarter                     year                            ``QS-OCT``: (4,)
    year                        none                            ``YS``: ()
    ==========================  ==============================  ============

    Daily data gets the week only. Its yearly cycle is 365.25 steps, not a whole number (a
    season of 365 drifts by a day every four years), it needs more than two years of
    training data before it can be seen twice, and the daily convention of statsforecast's
    examples and R's ``ts(frequency = 7)`` is the week. A caller with years of daily data
    can pass ``given=(7, 365)`` to `choose_seasons`.

    A multiple divides the cycles (``2h``: (12, 84)); a cycle that is not a whole number of
    steps is left out (``7h``: (24,), the week only). Anchors do not change the cycle
    (``W-SUN``, ``QS-OCT``, ``YS-JAN``). Both the pandas 2 and the pandas 3 spellings are read
    (``H`` and ``h``, ``T`` and ``min``, ``M`` and ``ME``, ``A``/``Y`` and ``YE``).

    Args:
        freq: A pandas frequency alias, or None.

    Returns:
        The season lengths in steps, shortest first; ``()`` for None, an unknown alias, an
        annual or sub-second frequency, or one whose cycles are not whole numbers of steps.

    Raises:
        ValueError: When `freq` is neither a string nor None.

    Example:
        >>> seasons_for_freq("30min"), seasons_for_freq("MS"), seasons_for_freq("YS")
        ((48, 336), (12,), ())

    """
    if freq is None:
        return ()
    if not isinstance(freq, str):
        raise ValueError(
            f"freq must be a pandas frequency alias or None, got {freq!r}; pass e.g. 'h' or 'MS'"
        )
    offset = _offset(freq)
    if offset is None or offset.n <= 0:
        return ()
    cycles: tuple[int, ...]
    # Day first: in pandas 3 a Day is a calendar day, no longer a fixed-span Tick.
    if isinstance(offset, pd.offsets.Day):
        span, cycles = offset.n * _DAY, (_WEEK,)
    elif isinstance(offset, pd.offsets.Tick):
        span = int(offset.nanos)
        if span < _SECOND:
            cycles = ()
        elif span < _MINUTE:
            cycles = (_MINUTE, _HOUR)
        elif span < 15 * _MINUTE:
            cycles = (_HOUR, _DAY)
        elif span < _DAY:
            cycles = (_DAY, _WEEK)
        else:
            cycles = (_WEEK,)
    else:
        if isinstance(offset, _ANNUAL):
            return ()
        for kinds, per_cycle in _CALENDAR_CYCLES:
            if isinstance(offset, kinds):
                steps = _steps(per_cycle, offset.n)
                return () if steps is None else (steps,)
        return ()
    found = (_steps(cycle, span) for cycle in cycles)
    return tuple(steps for steps in found if steps is not None)


def _as_series(name: str, values: Any) -> np.ndarray:
    """Return one finite float64 column of shape (time,) from (time,) or (time, 1)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # (time, 1) -> (time,)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must have shape (time,) or (time, 1), got shape {array.shape}; "
            "pass one column (the target)"
        )
    if not np.all(np.isfinite(array)):
        count = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(
            f"{name} holds {count} NaN or infinite value(s); fill the training part first "
            "(lstmlab.data.loading.fill_split)"
        )
    return array


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Return the sample autocorrelation r[0..nlags] (the biased estimator, as statsmodels)."""
    centred = x - x.mean()
    denominator = float(np.dot(centred, centred))
    out = np.ones(nlags + 1)
    for lag in range(1, nlags + 1):
        out[lag] = float(np.dot(centred[:-lag], centred[lag:])) / denominator
    return out


def detect_season(
    train: np.ndarray,
    *,
    max_lag: int | None = None,
    min_strength: float = 0.3,
    z: float = 1.96,
) -> int | None:
    """Find the season length of a series from its training part's autocorrelation.

    The rule, step by step:

    1. Difference the series once (``np.diff``): a trend makes the autocorrelation decay
       slowly from lag 1 and hides the seasonal peaks; the differences keep the cycle.
    2. Compute the sample autocorrelation r of the differences up to ``max_lag`` (default:
       half the training length, so that at least two full cycles lie in the data).
    3. Candidates are the local maxima of r at lags 2 or more (r[m] > r[m-1] and
       r[m] >= r[m+1]).
    4. A candidate is significant when r[m] >= ``min_strength`` and r[m] exceeds ``z``
       times Bartlett's standard error sqrt((1 + 2 (r[1]^2 + ... + r[m-1]^2)) / n), the
       test of Darts' ``check_seasonality`` (z = 1.96: 5% two-sided). The strength floor
       guards against the many lags tested at once: on white noise or a random walk, one
       of dozens of lags passes the 5% test by chance, but with a correlation near
       2 / sqrt(n), well under 0.3 for a series of 50 steps or more.
    5. The season is the significant candidate with the highest r, unless a shorter
       significant candidate d is its fundamental: the highest peak m lies within half a
       step of k * d for k = 2, 3 or 4, and r[d] >= r[m] / 2. A multiple of a season is
       also a cycle of the series (24 for a 12-month season), and a quasi-periodic cycle
       such as the lynx's (about 9.6 years) may peak higher at its second multiple (19)
       than at itself (10).

    Only the values passed are read: pass the training part, never the whole series.

    Args:
        train: The training part, shape (time,) or (time, 1), finite.
        max_lag: The longest season to look for; at most half the training length.
        min_strength: The smallest autocorrelation a season may have, in [0, 1).
        z: The significance multiple of Bartlett's standard error.

    Returns:
        The season length in steps, or None when no significant cycle is found (or the
        series is constant or too short to hold two cycles of length 2).

    Raises:
        ValueError: When `train` has another shape or holds NaN, or an argument is out of
            range.

    Example:
        >>> t = np.arange(120)
        >>> detect_season(np.sin(2 * np.pi * t / 12) + 0.01 * t)
        12

    """
    series = _as_series("train", train)
    if not 0 <= min_strength < 1:
        raise ValueError(f"min_strength must be in [0, 1), got {min_strength!r}; pass e.g. 0.3")
    if not z > 0:
        raise ValueError(f"z must be positive, got {z!r}; pass e.g. 1.96")
    longest = len(series) // 2  # two full cycles inside the training part
    if max_lag is not None:
        longest = min(longest, check_positive_int("max_lag", max_lag))
    differences = np.diff(series)
    n = len(differences)
    # r[m + 1] is needed to see a peak at m; the estimate needs a lag below n.
    nlags = min(longest + 1, n - 1)
    if nlags < 3 or np.ptp(differences) == 0:
        return None
    r = _acf(differences, nlags)
    significant = []
    for lag in range(2, nlags):
        if lag > longest or not (r[lag] > r[lag - 1] and r[lag] >= r[lag + 1]):
            continue
        standard_error = math.sqrt((1 + 2 * float(np.sum(r[1:lag] ** 2))) / n)
        if r[lag] >= min_strength and r[lag] > z * standard_error:
            significant.append(lag)
    if not significant:
        return None
    best = max(significant, key=lambda lag: r[lag])
    for lag in significant:  # ascending: the shortest fundamental wins
        if lag >= best:
            break
        if r[lag] >= r[best] / 2 and any(abs(best / k - lag) <= 0.5 for k in (2, 3, 4)):
            return lag
    return best


@dataclass(frozen=True, kw_only=True, slots=True)
class Seasons:
    """The season lengths chosen for a series, and where they came from.

    Attributes:
        lengths: Season lengths in steps, shortest first; () when the series has none.
        source: "given", "frequency '<alias>'", "detected from the training part" or "none".
        notes: What the reader should know: seasons dropped for a short training part, a
            given season longer than half the training part.

    """

    lengths: tuple[int, ...]
    source: str
    notes: tuple[str, ...] = ()

    def line(self) -> str:
        """Return one human-readable line, e.g. "seasons 12 (frequency 'MS')"."""
        if not self.lengths:
            return f"seasons: none ({self.source})"
        return f"seasons: {', '.join(map(str, self.lengths))} ({self.source})"


def _given(given: Any) -> tuple[int, ...]:
    values = (given,) if isinstance(given, int | np.integer) else tuple(given)
    out = []
    for value in values:
        season = check_positive_int("given", value, fix="pass season lengths of 2 or more")
        if season < 2:
            raise ValueError(
                f"given season lengths must be 2 or more, got {season}; a season of 1 is no "
                "season, pass given=() for none"
            )
        out.append(season)
    return tuple(sorted(set(out)))


def choose_seasons(
    freq: str | None,
    train: np.ndarray,
    *,
    given: tuple[int, ...] | int | None = None,
) -> Seasons:
    """Choose the season lengths of a series from what the caller gave, its frequency or its data.

    The order: seasons the caller gave win (sorted, duplicates dropped; ``given=()`` means
    "no season" and skips detection); else the frequency's usual seasons
    (`seasons_for_freq`) that fit at least twice into the training part, the longer ones
    dropped with a note; else the season `detect_season` finds in the training part; else
    none.

    Args:
        freq: The series' pandas frequency alias, or None (a plain CSV).
        train: The training part, shape (time,) or (time, 1); only its length is read unless
            detection runs.
        given: Season lengths chosen by the caller (e.g. (48, 336) for half-hourly load).

    Returns:
        The `Seasons`, with their source and notes.

    Raises:
        ValueError: When a given season is not an int of 2 or more, or `train` is not one
            finite column.

    Example:
        >>> choose_seasons("MS", np.arange(96.0)).line()
        "seasons: 12 (frequency 'MS')"

    """
    n_train = len(np.asarray(train))
    if given is not None:
        lengths = _given(given)
        notes = tuple(
            f"given season {season} is longer than half the training part ({n_train} steps): "
            "fewer than two cycles to learn it from"
            for season in lengths
            if 2 * season > n_train
        )
        return Seasons(lengths=lengths, source="given", notes=notes)
    notes_list = []
    usual = seasons_for_freq(freq)
    fitting = tuple(season for season in usual if 2 * season <= n_train)
    dropped = [season for season in usual if 2 * season > n_train]
    if dropped:
        notes_list.append(
            f"frequency {freq!r} season(s) {', '.join(map(str, dropped))} dropped: the "
            f"training part ({n_train} steps) holds fewer than two cycles"
        )
    if fitting:
        return Seasons(lengths=fitting, source=f"frequency {freq!r}", notes=tuple(notes_list))
    detected = detect_season(train)
    if detected is not None:
        return Seasons(
            lengths=(detected,),
            source="detected from the training part",
            notes=tuple(notes_list),
        )
    return Seasons(lengths=(), source="none", notes=tuple(notes_list))


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowChoice:
    """The default input window and why.

    Attributes:
        window: The window length in steps.
        wanted: The window the seasons asked for, before the cap.
        note: Why the window is what it is, for the report; mentions the cap when applied.

    """

    window: int
    wanted: int
    note: str

    @property
    def capped(self) -> bool:
        """Whether `maximum` cut the window below what the seasons asked for."""
        return self.window < self.wanted


def choose_window(
    seasons: tuple[int, ...],
    minimum: int = 6,
    maximum: int | None = None,
) -> WindowChoice:
    """Choose the input window so that it sees the shortest season, and say why.

    To forecast step t + 1 from the window ending at t, the models need the value one season
    back of both steps: y[t + 1 - s] (the same phase a season ago) and y[t - s] (so that the
    change over the season, y[t] - y[t - s], can carry the level forward). That is the
    seasonal-differencing forecast of the airline model, y[t + 1] ~ y[t] + y[t + 1 - s] -
    y[t - s], and it needs a window of s + 1 steps; the window s would end at t + 1 - s and
    miss y[t - s]. So the window is max(minimum, shortest season + 1): 13 for monthly data
    (the issue's measurement: window 13 took the MLP on a monthly index from 4.45 to 2.90),
    49 for half-hourly data. Longer seasons (336) are not covered by default: the window
    grows the model's input and needs many more training windows.

    Args:
        seasons: Season lengths, shortest first (``Seasons.lengths``); () for none.
        minimum: The shortest window, used when the series has no season or a short one.
        maximum: The longest window allowed (e.g. a third of the training part, so that
            enough windows remain to train on); None for no cap.

    Returns:
        The `WindowChoice`: the window, the window wanted and a note for the report.

    Raises:
        ValueError: When `minimum` or `maximum` is not a positive int.

    """
    minimum = check_positive_int("minimum", minimum)
    lengths = tuple(check_positive_int("seasons", season) for season in seasons)
    if lengths:
        shortest = min(lengths)
        wanted = max(minimum, shortest + 1)
        why = (
            f"window {wanted}: the season {shortest} plus one step"
            if wanted > minimum
            else f"window {wanted}: the minimum, already longer than the season {shortest} + 1"
        )
    else:
        wanted = minimum
        why = f"window {wanted}: the minimum (no season)"
    if maximum is not None:
        maximum = check_positive_int("maximum", maximum)
        if wanted > maximum:
            return WindowChoice(
                window=maximum,
                wanted=wanted,
                note=f"window {maximum}, capped from {wanted} by maximum={maximum}; the "
                "window does not cover the season, so a longer training part would help",
            )
    return WindowChoice(window=wanted, wanted=wanted, note=why)


def default_window(
    seasons: tuple[int, ...],
    minimum: int = 6,
    maximum: int | None = None,
) -> int:
    """Return the default input window: max(minimum, shortest season + 1), capped by maximum.

    `choose_window` gives the same window with the note for a report (and whether it was
    capped); see it for why the window is one step longer than the season.

    Args:
        seasons: Season lengths, shortest first; () for none.
        minimum: The shortest window.
        maximum: The longest window allowed; None for no cap.

    Returns:
        The window length in steps.

    Raises:
        ValueError: When `minimum` or `maximum` is not a positive int.

    Example:
        >>> default_window((12,)), default_window(()), default_window((48, 336), maximum=30)
        (13, 6, 30)

    """
    return choose_window(seasons, minimum, maximum).window
