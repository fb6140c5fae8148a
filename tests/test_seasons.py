"""Tests of lstmlab.data.seasons: the frequency table, season detection, the default window."""

import numpy as np
import pandas as pd
import pytest

from lstmlab.data import seasons as seasons_module
from lstmlab.data.seasons import (
    Seasons,
    choose_seasons,
    choose_window,
    default_window,
    detect_season,
    seasons_for_freq,
)

# --------------------------------------------------------------------------- frequency table

# Written by hand from the conventions (statsforecast season_length, R ts frequencies).
FREQUENCY_TABLE = [
    ("30min", (48, 336)),
    ("h", (24, 168)),
    ("H", (24, 168)),  # pandas < 2.2 spelling
    ("2h", (12, 84)),
    ("7h", (24,)),  # 24 / 7 is no whole number of steps: the week only
    ("15min", (96, 672)),
    ("min", (60, 1440)),
    ("T", (60, 1440)),  # pandas < 2.2 spelling
    ("5min", (12, 288)),
    ("s", (60, 3600)),
    ("10s", (6, 360)),
    ("ms", ()),
    ("D", (7,)),
    ("2D", ()),
    ("B", (5,)),
    ("W", (52,)),
    ("W-SUN", (52,)),
    ("W-MON", (52,)),
    ("2W", (26,)),
    ("MS", (12,)),
    ("ME", (12,)),
    ("M", (12,)),  # pandas < 2.2 month end
    ("2MS", (6,)),
    ("QS", (4,)),
    ("QS-OCT", (4,)),
    ("QE", (4,)),
    ("Q", (4,)),
    ("Q-DEC", (4,)),
    ("BQE", (4,)),
    ("YS", ()),
    ("YS-JAN", ()),
    ("YE", ()),
    ("Y", ()),
    ("A", ()),
    ("A-DEC", ()),
    ("AS-JAN", ()),
    ("not-a-frequency", ()),
    (None, ()),
]


@pytest.mark.parametrize(("freq", "expected"), FREQUENCY_TABLE)
def test_seasons_for_freq_table(freq, expected):
    assert seasons_for_freq(freq) == expected


# The aliases pandas 3 rejects; pandas 2.2/2.3 only warn about them.
PANDAS3_REMOVED = {"H", "T", "S", "M", "Q", "A", "Y", "AS"}


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("H", (24, 168)), ("2H", (12, 84)), ("T", (60, 1440)), ("M", (12,)), ("Q-DEC", (4,))]
    + [("A-DEC", ()), ("AS-JAN", ()), ("S", (60, 3600))],
)
def test_seasons_for_freq_reads_legacy_aliases_that_pandas_3_rejects(monkeypatch, freq, expected):
    real = seasons_module.to_offset

    def pandas3_to_offset(alias):
        name = alias.lstrip("0123456789").split("-")[0]
        if name in PANDAS3_REMOVED:
            raise ValueError(f"Invalid frequency: {alias}")
        return real(alias)

    monkeypatch.setattr(seasons_module, "to_offset", pandas3_to_offset)
    assert seasons_for_freq(freq) == expected


def test_seasons_for_freq_matches_the_data_index():
    # The table reads what the loader reports: pandas' own inferred frequency of a real grid.
    index = pd.date_range("2000-06-05", periods=10, freq="30min")
    assert seasons_for_freq(pd.infer_freq(index)) == (48, 336)
    monthly = pd.date_range("1949-01-01", periods=10, freq="MS")
    assert seasons_for_freq(pd.infer_freq(monthly)) == (12,)


def test_seasons_for_freq_rejects_a_non_string():
    with pytest.raises(ValueError) as info:
        seasons_for_freq(12)
    assert str(info.value) == (
        "freq must be a pandas frequency alias or None, got 12; pass e.g. 'h' or 'MS'"
    )


# --------------------------------------------------------------------------- detection


def read_column(data_dir, name):
    return pd.read_csv(data_dir / name).iloc[:, 1].to_numpy(dtype=np.float64)


def test_detects_12_on_the_airline_training_part(data_dir):
    airline = read_column(data_dir, "airline_passengers.csv")
    assert len(airline) == 144
    assert detect_season(airline[:96]) == 12


def test_detects_about_10_years_on_the_lynx_training_part(data_dir):
    lynx = read_column(data_dir, "lynx_annual.csv")
    n_train = int(len(lynx) * 0.67)
    season = detect_season(lynx[:n_train])
    assert season is not None
    assert 9 <= season <= 11
    # The annual frequency has no usual season: choose_seasons falls back to detection.
    chosen = choose_seasons("YS", lynx[:n_train])
    assert chosen == Seasons(lengths=(season,), source="detected from the training part")


@pytest.mark.parametrize("seed", range(5))
def test_detects_7_on_a_noisy_trending_weekly_sine(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(140)
    series = 10 * np.sin(2 * np.pi * t / 7 + 0.3) + rng.normal(0, 3, t.size) + 0.05 * t
    assert detect_season(series) == 7


@pytest.mark.parametrize("seed", range(5))
def test_no_season_in_white_noise_or_a_random_walk(seed):
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=200)
    assert detect_season(noise) is None
    assert detect_season(np.cumsum(noise)) is None


def test_no_season_in_a_constant_or_too_short_series():
    assert detect_season(np.full(50, 3.0)) is None
    assert detect_season(np.arange(5.0)) is None


def test_detection_reads_only_the_training_part(data_dir):
    airline = read_column(data_dir, "airline_passengers.csv")
    n_train = 96
    changed = airline.copy()
    changed[n_train:] = np.random.default_rng(0).normal(size=len(airline) - n_train) * 1e4
    assert detect_season(airline[:n_train]) == detect_season(changed[:n_train]) == 12
    assert choose_seasons(None, changed[:n_train]).lengths == (12,)
    # The check can fail: the test values, when read, change what is found.
    assert detect_season(changed) != 12


def test_max_lag_limits_the_search():
    t = np.arange(200)
    series = np.sin(2 * np.pi * t / 24)
    assert detect_season(series) == 24
    assert detect_season(series, max_lag=20) is None


def test_the_fundamental_wins_over_a_higher_multiple():
    # A cycle of 10 plus a weaker one of 20 makes r[20] > r[10]; the season is still 10.
    t = np.arange(200)
    series = np.sin(2 * np.pi * t / 10) + 0.8 * np.sin(2 * np.pi * t / 20)
    r = seasons_module._acf(np.diff(series), 30)
    assert r[20] > r[10]
    assert detect_season(series) == 10


def test_detect_season_refuses_nan_and_several_columns():
    with pytest.raises(ValueError) as info:
        detect_season(np.array([1.0, np.nan, 3.0, 4.0]))
    assert str(info.value) == (
        "train holds 1 NaN or infinite value(s); fill the training part first "
        "(lstmlab.data.loading.fill_split)"
    )
    with pytest.raises(ValueError, match=r"got shape \(10, 2\); pass one column"):
        detect_season(np.zeros((10, 2)))
    assert detect_season(np.sin(np.arange(120.0) * 2 * np.pi / 12)[:, None]) == 12


# --------------------------------------------------------------------------- choosing


def test_choose_seasons_given_wins():
    chosen = choose_seasons("30min", np.zeros(100), given=(336, 48, 48))
    assert chosen.lengths == (48, 336)
    assert chosen.source == "given"
    assert chosen.notes == (
        "given season 336 is longer than half the training part (100 steps): fewer than "
        "two cycles to learn it from",
    )
    assert choose_seasons("MS", np.zeros(100), given=()).lengths == ()


def test_choose_seasons_drops_frequency_seasons_that_do_not_fit_twice():
    chosen = choose_seasons("30min", np.zeros(400))
    assert chosen == Seasons(
        lengths=(48,),
        source="frequency '30min'",
        notes=(
            "frequency '30min' season(s) 336 dropped: the training part (400 steps) holds "
            "fewer than two cycles",
        ),
    )
    assert chosen.line() == "seasons: 48 (frequency '30min')"
    assert choose_seasons("30min", np.zeros(672)).lengths == (48, 336)


def test_choose_seasons_detects_when_the_frequency_gives_none_that_fit():
    t = np.arange(30)
    series = np.sin(2 * np.pi * t / 5) + 0.1 * t
    # Monthly with 30 steps: 12 fits twice and wins over the data.
    assert choose_seasons("MS", series).lengths == (12,)
    # Weekly with 30 steps: 52 does not fit, the data's 5 is detected.
    chosen = choose_seasons("W-SUN", series)
    assert chosen.lengths == (5,)
    assert chosen.source == "detected from the training part"
    assert chosen.notes == (
        "frequency 'W-SUN' season(s) 52 dropped: the training part (30 steps) holds fewer "
        "than two cycles",
    )
    rng = np.random.default_rng(0)
    none = choose_seasons(None, rng.normal(size=100))
    assert none == Seasons(lengths=(), source="none")
    assert none.line() == "seasons: none (none)"


def test_choose_seasons_refuses_a_season_of_one():
    with pytest.raises(ValueError) as info:
        choose_seasons(None, np.zeros(10), given=(1,))
    assert str(info.value) == (
        "given season lengths must be 2 or more, got 1; a season of 1 is no season, pass "
        "given=() for none"
    )


# --------------------------------------------------------------------------- window


@pytest.mark.parametrize(
    ("seasons", "minimum", "maximum", "expected"),
    [
        ((), 6, None, 6),
        ((12,), 6, None, 13),  # monthly: the season plus one step
        ((4,), 6, None, 6),  # quarterly: the minimum already covers 4 + 1
        ((5,), 6, None, 6),
        ((7,), 6, None, 8),
        ((48, 336), 6, None, 49),  # the shortest season decides
        ((12,), 6, 10, 10),  # capped
        ((12,), 20, None, 20),
        ((), 6, 4, 4),
    ],
)
def test_default_window_by_hand(seasons, minimum, maximum, expected):
    assert default_window(seasons, minimum, maximum) == expected


def test_the_window_sees_one_season_back_of_both_steps():
    # Forecasting t + 1 from the window ending at t needs y[t + 1 - s] and y[t - s].
    s = 12
    window = default_window((s,))
    t = 50
    inside = set(range(t - window + 1, t + 1))
    assert {t + 1 - s, t - s} <= inside
    assert t - s not in set(range(t - s + 1, t + 1))  # a window of s would miss it


def test_choose_window_reports_the_cap():
    capped = choose_window((48, 336), maximum=30)
    assert (capped.window, capped.wanted, capped.capped) == (30, 49, True)
    assert capped.note == (
        "window 30, capped from 49 by maximum=30; the window does not cover the season, so "
        "a longer training part would help"
    )
    free = choose_window((12,))
    assert not free.capped
    assert free.note == "window 13: the season 12 plus one step"
    assert choose_window(()).note == "window 6: the minimum (no season)"


def test_choose_window_validates():
    with pytest.raises(ValueError, match=r"maximum must be a positive integer, got 0"):
        choose_window((12,), maximum=0)
