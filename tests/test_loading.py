"""Tests of lstmlab.data.loading: small files written in each real format, plus the shared data."""

import dataclasses
import functools
import http.server
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmlab.data.calendar import parse_time_column
from lstmlab.data.loading import (
    ELECTRICITY_FILE,
    DownloadError,
    LoadConfig,
    check_text_file,
    download_electricity_diagrams,
    fill_split,
    load_csv,
    load_electricity_diagrams,
    load_frame,
    load_household_days,
    load_household_power,
    load_series,
    read_readings,
    series_arrays,
    sniff_format,
)

HOUSEHOLD_HEADER = (
    "Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;"
    "Sub_metering_1;Sub_metering_2;Sub_metering_3"
)
# A fully missing minute as the UCI file writes it: '?' everywhere, Sub_metering_3 empty.
HOUSEHOLD_MISSING_ROW = "?;?;?;?;?;?;"


def household_text(
    *,
    start: str = "2006-12-16 17:24:00",
    minutes: int = 30,
    active: dict[int, str] | None = None,
    missing_rows: tuple[int, ...] = (),
    skip_rows: tuple[int, ...] = (),
    pad_dates: bool = True,
) -> str:
    """A household file in the original format; Global_active_power at row i is i + 1."""
    active = active or {}
    lines = [HOUSEHOLD_HEADER]
    for i in range(minutes):
        if i in skip_rows:
            continue
        stamp = pd.Timestamp(start) + pd.Timedelta(minutes=i)
        date = (
            f"{stamp.day:02d}/{stamp.month:02d}/{stamp.year}"
            if pad_dates
            else f"{stamp.day}/{stamp.month}/{stamp.year}"
        )
        if i in missing_rows:
            values = HOUSEHOLD_MISSING_ROW
        else:
            power = active.get(i, f"{i + 1:.3f}")
            values = f"{power};0.418;{234 + i / 100:.3f};18.400;0.000;1.000;{17 + i % 3:.3f}"
        lines.append(f"{date};{stamp:%H:%M:%S};{values}")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# The LD2011_2014 format: quoted timestamps, ';' separator, ',' decimal mark, an empty cell.
ELECTRICITY_TEXT = """\
"";"MT_001";"MT_002";"MT_003"
"2011-01-01 00:15:00";0;"2,5";14,2
"2011-01-01 00:30:00";1,25;3;15
"2011-01-01 00:45:00";2,5;;16,8
"2011-01-01 01:00:00";3,75;5;17
"2011-01-01 01:15:00";5;6,5;18,4
"2011-01-01 01:30:00";6,25;7;19
"""

# A daily CSV with 2024-01-03 absent.
GAP_TEXT = """\
date,load,temp
2024-01-01,1.0,5
2024-01-02,2.0,6
2024-01-04,4.0,8
2024-01-05,5.0,9
"""


@pytest.fixture
def household_file(tmp_path: Path) -> Path:
    return write(
        tmp_path / "household.txt",
        household_text(active={1: "?", 29: "?"}, missing_rows=(5,)),
    )


@pytest.fixture
def electricity_file(tmp_path: Path) -> Path:
    return write(tmp_path / "LD2011_2014.txt", ELECTRICITY_TEXT)


@pytest.fixture
def gap_file(tmp_path: Path) -> Path:
    return write(tmp_path / "gap.csv", GAP_TEXT)


def daily_config(**changes) -> LoadConfig:
    return dataclasses.replace(LoadConfig(time_col="date", targets=("load",)), **changes)


# --------------------------------------------------------------------------- household format


def test_household_reads_the_original_format_and_fills_question_marks(household_file):
    loaded = load_household_power(household_file, columns=("Global_active_power", "Sub_metering_3"))
    frame = loaded.frame
    assert len(frame) == 30
    assert frame.index[0] == pd.Timestamp("2006-12-16 17:24:00")
    assert frame.index[-1] == pd.Timestamp("2006-12-16 17:53:00")
    assert frame.index.name == "datetime"
    assert loaded.freq == "min"
    power = frame["Global_active_power"].to_numpy()
    assert power[0] == 1.0
    assert power[1] == 2.0  # '?' between 1.0 and 3.0
    assert power[5] == 6.0  # the fully missing minute, between 5.0 and 7.0
    assert power[29] == 29.0  # trailing '?': filled from the nearest value
    assert frame["Sub_metering_3"].iloc[5] == 17.5  # empty cell between 18.0 and 17.0
    power_report = loaded.report.column("Global_active_power")
    assert (power_report.missing_read, power_report.interpolated, power_report.edge_filled) == (
        3,
        2,
        1,
    )
    sub_report = loaded.report.column("Sub_metering_3")
    assert (sub_report.missing_read, sub_report.interpolated, sub_report.edge_filled) == (1, 1, 0)
    assert loaded.report.rows_read == 30
    assert loaded.report.gaps_filled == 0
    assert not frame.isna().any().any()


def test_household_bad_cell_names_column_row_timestamp_and_text(tmp_path):
    path = write(tmp_path / "bad.txt", household_text(active={16: "abc"}))
    with pytest.raises(ValueError) as info:
        load_household_power(path)
    assert str(info.value) == (
        "column 'Global_active_power' row 17 (2006-12-16 17:40:00) holds 'abc', which is not "
        "a number; fix the cell or mark it missing with '?'"
    )


def test_household_dates_are_day_first_without_zero_padding(tmp_path):
    path = write(
        tmp_path / "new_year.txt",
        household_text(start="2006-12-31 23:58:00", minutes=4, pad_dates=False),
    )
    loaded = load_household_power(path)
    assert list(loaded.frame.index) == list(
        pd.date_range("2006-12-31 23:58:00", periods=4, freq="min")
    )


def test_household_absent_minute_is_a_counted_gap(tmp_path):
    path = write(tmp_path / "gap.txt", household_text(skip_rows=(3,)))
    loaded = load_household_power(path)
    assert loaded.report.rows_read == 29
    assert loaded.report.gaps_filled == 1
    assert len(loaded.frame) == 30
    assert loaded.frame["Global_active_power"].iloc[3] == 4.0
    column = loaded.report.column("Global_active_power")
    assert (column.missing_read, column.missing, column.interpolated) == (0, 1, 1)


def test_household_sum_keeps_an_all_missing_bin_missing(tmp_path):
    # Rows 16..25 are the bin 17:40-17:49: all '?'. A plain sum would make it 0.
    path = write(tmp_path / "hole.txt", household_text(active={i: "?" for i in range(16, 26)}))
    loaded = load_household_power(path, resample="10min")
    assert list(loaded.frame.index.strftime("%H:%M")) == ["17:20", "17:30", "17:40", "17:50"]
    # 17:20 holds minutes 24..29 (values 1..6), 17:30 values 7..16, 17:50 values 27..30.
    expected = [21.0, 115.0, (115.0 + 114.0) / 2, 114.0]
    assert loaded.frame["Global_active_power"].tolist() == expected
    resampled = loaded.report.resample
    assert (resampled.rows_before, resampled.rows_after, resampled.empty_bins) == (30, 4, 0)
    column = loaded.report.column("Global_active_power")
    assert (column.missing_read, column.missing, column.interpolated) == (10, 1, 1)
    assert loaded.report.notes == (
        "the first bin (2006-12-16 17:20:00) covers 6 of 10 source steps, so a sum there is "
        "lower than a full bin's",
        "the last bin (2006-12-16 17:50:00) covers 4 of 10 source steps, so a sum there is "
        "lower than a full bin's",
    )
    with pytest.raises(ValueError) as info:
        load_household_power(path, resample="10min", missing="error")
    assert str(info.value) == (
        f"missing='error' but {path} has missing values: column 'Global_active_power' 1 "
        "(first at 2006-12-16 17:40:00); fill them, or pass missing='interpolate', 'ffill' "
        "or 'drop'"
    )


def test_household_loader_rejects_another_format(gap_file):
    with pytest.raises(ValueError) as info:
        load_household_power(gap_file)
    assert str(info.value) == (
        f"{gap_file} is not in the household power format: expected a header starting "
        "'Date;Time;Global_active_power', got 'date,load,temp'; use load_csv for other files"
    )


# --------------------------------------------------------------------------- electricity format


def test_electricity_reads_quoted_stamps_and_comma_decimals(electricity_file):
    loaded = load_electricity_diagrams(electricity_file)
    assert loaded.targets == ("MT_001", "MT_002", "MT_003")
    assert loaded.freq == "15min"
    assert loaded.frame.index.name == "time"
    assert loaded.frame.index[0] == pd.Timestamp("2011-01-01 00:15:00")
    assert loaded.frame["MT_001"].tolist() == [0.0, 1.25, 2.5, 3.75, 5.0, 6.25]
    assert loaded.frame["MT_002"].tolist() == [2.5, 3.0, 4.0, 5.0, 6.5, 7.0]  # "2,5"; gap: 4.0
    assert loaded.frame["MT_003"].tolist() == [14.2, 15.0, 16.8, 17.0, 18.4, 19.0]
    assert loaded.report.column("MT_002").interpolated == 1
    assert loaded.values().shape == (6, 3)


def test_electricity_clients_by_number_or_name_are_separate_streams(electricity_file):
    loaded = load_electricity_diagrams(electricity_file, clients=[3, "MT_001"])
    assert loaded.targets == ("MT_003", "MT_001")
    streams = series_arrays(loaded)
    assert [stream.shape for stream in streams] == [(6,), (6,)]
    assert streams[1].tolist() == [0.0, 1.25, 2.5, 3.75, 5.0, 6.25]


def test_electricity_unknown_client_lists_the_available_ones(electricity_file):
    with pytest.raises(ValueError) as info:
        load_electricity_diagrams(electricity_file, clients=["MT_999"])
    assert str(info.value) == (
        f"column(s) ['MT_999'] not found in {electricity_file}; available columns: "
        "['MT_001', 'MT_002', 'MT_003']; pass names from that list"
    )


def test_electricity_hourly_mean(electricity_file):
    loaded = load_electricity_diagrams(electricity_file, clients=[1, 2], resample="h")
    assert loaded.freq == "h"
    assert loaded.frame["MT_001"].tolist() == pytest.approx([1.25, 5.0], abs=1e-12)
    # The empty cell is left out of its bin's mean, and the bin is counted as partial.
    assert loaded.frame["MT_002"].tolist() == pytest.approx([2.75, 18.5 / 3], abs=1e-12)
    assert loaded.report.resample.partial_bins == 1
    assert loaded.report.resample.rows_before == 6


def test_electricity_constant_client_is_an_error(tmp_path):
    rows = [
        f'"2011-01-01 00:{minute:02d}:00";{index},5;0' for index, minute in enumerate((0, 15, 30))
    ]
    path = write(tmp_path / "LD.txt", '"";"MT_001";"MT_002"\n' + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as info:
        load_electricity_diagrams(path, clients=[2])
    assert str(info.value) == (
        f"column 'MT_002' in {path} is constant (every value is 0.0); a scaler would divide "
        "by zero; drop the column or choose another target"
    )
    assert load_electricity_diagrams(path, clients=[1]).frame["MT_001"].tolist() == [
        0.5,
        1.5,
        2.5,
    ]


# --------------------------------------------------------------------------- plain CSV


def test_gap_is_filled_as_missing_and_interpolated(gap_file):
    loaded = load_csv(gap_file, daily_config(features=("temp",)))
    assert list(loaded.frame.index) == list(pd.date_range("2024-01-01", periods=5, freq="D"))
    assert loaded.frame["load"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert loaded.frame["temp"].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert loaded.report.gaps_filled == 1
    assert loaded.values().tolist()[2] == [3.0, 7.0]
    assert loaded.target_values().shape == (5, 1)
    assert loaded.feature_values().shape == (5, 1)
    assert loaded.report.lines() == [
        f"source: {gap_file}",
        "rows: 4 read, 5 kept",
        "time: 2024-01-01 00:00:00 to 2024-01-05 00:00:00, frequency 'D'; source frequency "
        "'D' (inferred)",
        "gaps: 1 absent timestamp filled as missing",
        "missing values (policy 'interpolate'):",
        "  load (target): 0 missing as read, 1 before the policy; 1 interpolated",
        "  temp (feature): 0 missing as read, 1 before the policy; 1 interpolated",
    ]
    assert str(loaded.report) == "\n".join(loaded.report.lines())


def test_ffill_policy(gap_file):
    loaded = load_csv(gap_file, daily_config(missing="ffill"))
    assert loaded.frame["load"].tolist() == [1.0, 2.0, 2.0, 4.0, 5.0]
    assert loaded.report.column("load").forward_filled == 1


def test_drop_policy_reports_the_broken_grid(gap_file):
    loaded = load_csv(gap_file, daily_config(missing="drop"))
    assert loaded.frame["load"].tolist() == [1.0, 2.0, 4.0, 5.0]
    assert loaded.report.rows_dropped == 1
    assert loaded.report.column("load").dropped == 1
    assert loaded.report.notes == (
        "dropping 1 row leaves holes in the 'D' time grid: the index is no longer regular",
    )
    assert "rows dropped: 1" in loaded.report.lines()


def test_error_policy_names_counts_and_first_position(gap_file):
    with pytest.raises(ValueError) as info:
        load_csv(gap_file, daily_config(features=("temp",), missing="error"))
    assert str(info.value) == (
        f"missing='error' but {gap_file} has missing values: column 'load' 1 (first at "
        "2024-01-03 00:00:00), column 'temp' 1 (first at 2024-01-03 00:00:00); fill them, "
        "or pass missing='interpolate', 'ffill' or 'drop'"
    )


def test_keep_policy_leaves_nan_and_counts_it(tmp_path):
    path = write(
        tmp_path / "holes.csv",
        "date,load,temp\n2024-01-01,1.0,5\n2024-01-02,?,6\n2024-01-04,4.0,?\n2024-01-05,,9\n",
    )
    loaded = load_csv(path, daily_config(features=("temp",), missing="keep"))
    load = loaded.frame["load"].to_numpy()
    assert np.isnan(load).tolist() == [False, True, True, False, True]
    assert load[[0, 3]].tolist() == [1.0, 4.0]
    assert np.isnan(loaded.frame["temp"].to_numpy()).tolist() == [False, False, True, True, False]
    assert loaded.report.column("load").left_missing == 3
    assert loaded.report.column("load").interpolated == 0
    assert loaded.report.column("load").edge_filled == 0
    assert loaded.report.lines()[-3:] == [
        "missing values (policy 'keep'):",
        "  load (target): 2 missing as read, 3 before the policy; 3 left missing (NaN)",
        "  temp (feature): 1 missing as read, 2 before the policy; 2 left missing (NaN)",
    ]
    # The same file under "interpolate" fills them all: "keep" changed only the policy.
    filled = load_csv(path, daily_config(features=("temp",)))
    assert not filled.frame.isna().any().any()
    assert filled.report.column("load").left_missing == 0


def test_keep_policy_still_refuses_a_constant_column(tmp_path):
    path = write(tmp_path / "flat.csv", "date,load\n2024-01-01,2.0\n2024-01-02,?\n2024-01-03,2.0\n")
    with pytest.raises(ValueError, match=r"column 'load' in .* is constant"):
        load_csv(path, daily_config(missing="keep"))


def test_fill_split_fills_a_gap_at_the_end_of_training_from_training_values_only():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(40, 2)).cumsum(axis=0) + 10.0
    n_train = 30
    values[[4, 5, 27, 28, 29], 0] = np.nan  # a gap inside and one at the end of training
    values[[0, 12], 1] = np.nan  # a leading gap and an inside one
    values[[30, 33, 34], 0] = np.nan  # test gaps
    filled, report = fill_split(values, n_train)
    # Independent reference: np.interp on the training part by hand (it holds the edges at
    # the nearest known value).
    for column in range(2):
        train = values[:n_train, column]
        known = ~np.isnan(train)
        positions = np.arange(n_train)
        expected = np.interp(positions, positions[known], train[known])
        np.testing.assert_array_equal(filled[:n_train, column], expected)
    assert filled[27:30, 0].tolist() == [values[26, 0]] * 3
    # Changing every test value leaves the filled training part unchanged.
    changed = values.copy()
    changed[n_train:] *= 100.0
    changed[31, 0] = -1e9
    refilled, _ = fill_split(changed, n_train)
    np.testing.assert_array_equal(refilled[:n_train], filled[:n_train])
    # The check can fail: the loader's whole-series interpolation reads the first test value.
    whole = pd.DataFrame(values).interpolate(limit_area="inside").to_numpy()
    assert whole[29, 0] != filled[29, 0]
    assert report.train_missing == (5, 2)
    assert report.train_interpolated == (2, 1)
    assert report.train_edge_filled == (3, 1)
    assert report.train_forward_filled == (0, 0)
    assert report.test_forward_filled == (3, 0)
    assert (report.train_filled, report.test_filled) == (7, 3)


def test_fill_split_test_part_never_uses_a_later_value():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(50, 3))
    n_train = 20
    values[rng.random(values.shape) < 0.3] = np.nan
    values[0] = 1.0  # the training part must hold values
    filled, report = fill_split(values, n_train, policy="ffill")
    # Reference: pandas' forward fill of the series with the training part already filled.
    given_train = pd.DataFrame(values[:n_train]).ffill().bfill().to_numpy()
    expected = pd.DataFrame(np.vstack([given_train, values[n_train:]])).ffill().to_numpy()
    np.testing.assert_array_equal(filled, expected)
    # Each test value depends on the past only: cutting the series after step t changes
    # nothing before it.
    for t in range(n_train + 1, len(values)):
        cut, _ = fill_split(values[:t], n_train, policy="ffill")
        np.testing.assert_array_equal(cut, filled[:t])
    assert report.test_forward_filled == tuple(
        int(np.isnan(values[n_train:, column]).sum()) for column in range(3)
    )
    assert report.policy == "ffill"
    assert report.train_interpolated == (0, 0, 0)
    assert sum(report.train_forward_filled) + sum(report.train_edge_filled) == int(
        np.isnan(values[:n_train]).sum()
    )


def test_fill_split_keeps_the_shape_of_one_column_and_reports():
    filled, report = fill_split(np.array([np.nan, 2.0, np.nan, 4.0, np.nan, np.nan, 7.0]), 4)
    assert filled.tolist() == [2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 7.0]
    assert report.lines() == [
        "missing values filled per part (training part: 4 steps, policy 'interpolate'; test "
        "part: forward fill, as model inputs only, to be left out of the scores):",
        "  column 0: training part 2 filled (1 interpolated, 1 edge-filled); test part 2 "
        "forward-filled",
    ]
    assert str(report) == "\n".join(report.lines())


def test_fill_split_after_a_keep_load_matches_the_loaded_frame(gap_file):
    loaded = load_csv(gap_file, daily_config(missing="keep"))
    filled, report = fill_split(loaded.values(), 3)
    assert filled[:, 0].tolist() == [1.0, 2.0, 2.0, 4.0, 5.0]  # the gap at the end of training
    assert report.train_edge_filled == (1,)


def test_fill_split_errors():
    values = np.array([[np.nan, 1.0], [np.nan, 2.0], [3.0, 3.0]])
    with pytest.raises(ValueError) as info:
        fill_split(values, 2)
    assert str(info.value) == (
        "column 0 has no value in the training part (all 2 missing); drop the column, or split "
        "later (a larger n_train) so that the training part holds values"
    )
    assert fill_split(values, 3)[0][:, 0].tolist() == [3.0, 3.0, 3.0]
    with pytest.raises(ValueError) as info:
        fill_split(values, 4)
    assert str(info.value) == (
        "n_train must be an integer from 1 to 3 (the series length), got 4; pass the length of "
        "the training part"
    )
    with pytest.raises(ValueError, match=r"policy must be one of \('interpolate', 'ffill'\)"):
        fill_split(values, 3, policy="drop")
    with pytest.raises(ValueError, match=r"values holds 1 infinite value\(s\)"):
        fill_split(np.array([1.0, np.inf]), 1)
    with pytest.raises(ValueError, match=r"got shape \(2, 1, 1\)"):
        fill_split(np.zeros((2, 1, 1)), 1)


def test_semicolon_comma_decimal_csv_and_float32(tmp_path):
    path = write(tmp_path / "eu.csv", "when;value\n2024-01-01;1,5\n2024-01-02;?\n2024-01-03;2,5\n")
    config = LoadConfig(time_col="when", targets=("value",), sep=";", decimal=",", dtype="float32")
    loaded = load_csv(path, config)
    assert loaded.frame["value"].dtype == np.float32
    assert loaded.frame["value"].tolist() == [1.5, 2.0, 2.5]


def test_unsorted_timestamps_error_or_sort(tmp_path):
    path = write(
        tmp_path / "unsorted.csv",
        "date,load\n2024-01-01,1\n2024-01-03,3\n2024-01-02,2\n2024-01-04,4\n",
    )
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        f"timestamps in {path} are not sorted: row 3 (2024-01-02 00:00:00) is earlier than "
        "row 2 (2024-01-03 00:00:00); sort the file by time, or pass sort=True to sort on load"
    )
    loaded = load_csv(path, daily_config(sort=True))
    assert loaded.frame["load"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert loaded.report.rows_sorted


def test_duplicated_timestamps_error_or_aggregate(tmp_path):
    path = write(
        tmp_path / "dup.csv", "date,load\n2024-01-01,1\n2024-01-02,2\n2024-01-02,4\n2024-01-03,3\n"
    )
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        f"1 duplicated timestamp in {path}, the first is 2024-01-02 00:00:00 at row 3; "
        "aggregate the duplicates before loading, or pass resample to aggregate them on load"
    )
    loaded = load_csv(path, daily_config(resample="D"))
    assert loaded.frame["load"].tolist() == [1.0, 3.0, 3.0]
    assert loaded.report.duplicates_aggregated == 1
    assert loaded.report.source_freq is None


def test_non_numeric_cell(tmp_path):
    path = write(tmp_path / "text.csv", "date,load\n2024-01-01,1\n2024-01-02,x1\n2024-01-03,3\n")
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        "column 'load' row 2 (2024-01-02 00:00:00) holds 'x1', which is not a number; fix the "
        "cell or mark it missing with '?'"
    )


def test_constant_column(tmp_path):
    path = write(tmp_path / "flat.csv", "date,load\n2024-01-01,5\n2024-01-02,5\n2024-01-03,5\n")
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        f"column 'load' in {path} is constant (every value is 5.0); a scaler would divide by "
        "zero; drop the column or choose another target"
    )


def test_unknown_column_lists_available(gap_file):
    with pytest.raises(ValueError) as info:
        load_csv(gap_file, daily_config(targets=("lod",)))
    assert str(info.value) == (
        f"column(s) ['lod'] not found in {gap_file}; available columns: ['load', 'temp']; "
        "pass names from that list"
    )


def test_series_too_short_after_cleaning(gap_file):
    with pytest.raises(ValueError) as info:
        load_csv(gap_file, daily_config(min_length=10))
    assert str(info.value) == (
        f"{gap_file} has 5 rows after cleaning, fewer than min_length=10; load a longer range, "
        "resample less coarsely or lower min_length"
    )
    with pytest.raises(ValueError) as info:
        load_csv(gap_file, daily_config(missing="drop", min_length=5))
    assert str(info.value).startswith(f"{gap_file} has 4 rows after cleaning")


def test_all_missing_column(tmp_path):
    path = write(tmp_path / "empty.csv", "date,load,temp\n2024-01-01,1,?\n2024-01-02,2,\n")
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config(features=("temp",)))
    assert str(info.value) == (
        f"column 'temp' in {path} has no values (all 2 missing); drop the column or choose another"
    )


def test_irregular_index_needs_freq_or_resample(tmp_path):
    path = write(
        tmp_path / "irregular.csv",
        "date,load\n2024-01-01 00:00,1\n2024-01-01 00:07,2\n2024-01-01 01:00,3\n"
        "2024-01-01 01:30,4\n",
    )
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        f"cannot infer a regular frequency for {path}: the most common step is '7min', but 2 "
        "of 4 timestamps are off that grid, the first at row 3 (2024-01-01 01:00:00); pass "
        "freq (e.g. 'D', '15min', 'MS') or resample to aggregate onto a grid"
    )
    loaded = load_csv(path, daily_config(resample="h"))
    assert loaded.frame["load"].tolist() == [1.5, 3.5]
    assert loaded.report.source_freq is None
    assert loaded.report.resample.rows_before == 4


def test_declared_freq_must_fit_the_timestamps(tmp_path):
    path = write(
        tmp_path / "off.csv",
        "date,load\n2024-01-01 00:00,1\n2024-01-02 12:00,2\n2024-01-03 00:00,3\n",
    )
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config(freq="D"))
    assert str(info.value) == (
        f"timestamp 2024-01-02 12:00:00 at row 2 of {path} is not on the 'D' grid that starts "
        "at 2024-01-01 00:00:00; pass the right freq, or resample to aggregate onto a grid"
    )


def test_slash_dates_need_an_explicit_format(tmp_path):
    path = write(tmp_path / "slash.csv", "date,load\n01/02/2024,1\n02/02/2024,2\n03/02/2024,4\n")
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        "time column 'date' holds dates with '/' such as '01/02/2024', whose day and month "
        "order is ambiguous; pass time_format, e.g. '%d/%m/%Y' or '%m/%d/%Y'"
    )
    loaded = load_csv(path, daily_config(time_format="%d/%m/%Y"))
    assert loaded.frame.index[0] == pd.Timestamp("2024-02-01")


def test_bad_timestamp(tmp_path):
    path = write(tmp_path / "stamp.csv", "date,load\n2024-01-01,1\n2024-01-0x,2\n")
    with pytest.raises(ValueError) as info:
        load_csv(path, daily_config())
    assert str(info.value) == (
        "time column 'date' row 2 holds '2024-01-0x', which is not a timestamp; fix the cell "
        "or pass time_format"
    )


@pytest.mark.parametrize(
    ("cell", "said"),
    [
        ("-2024-01-02", "a sign before its year"),  # pandas drops the sign
        ("\u0662\u0660\u0662\u0664-01-02", "(U+0662)"),  # Arabic-Indic digits
    ],
)
def test_a_time_cell_pandas_would_misread_is_refused(tmp_path, cell, said):
    path = tmp_path / "stamp.csv"
    path.write_text(f"date,load\n2024-01-01,1\n{cell},2\n2024-01-03,3\n", encoding="utf-8")
    # the reference: pandas alone reads the cell as 2024-01-02, a date it does not say
    assert pd.to_datetime([cell])[0] == pd.Timestamp("2024-01-02")
    with pytest.raises(ValueError, match=r"time column 'date' row 2 \(") as info:
        load_csv(path, daily_config())
    assert said in str(info.value)


def test_a_nul_inside_a_time_cell_is_refused():
    # a file with NUL bytes is refused whole; a DataFrame's text cell reaches the parser
    cells = pd.Series(["2024-01-01", "2024-01\x00-02"])
    assert pd.to_datetime([cells[1]])[0] == pd.Timestamp("2024-01-02")  # pandas skips it
    with pytest.raises(ValueError, match=r"time 'Date' row 2 \('2024-01\\x00-02'\) holds"):
        parse_time_column(cells, label="'Date'")


# --------------------------------------------------------------------------- DataFrames


def test_frame_with_datetime_index_fills_edges():
    index = pd.date_range("2024-01-01", periods=5, freq="D")
    frame = pd.DataFrame({"x": [np.nan, 2.0, np.nan, 4.0, np.nan]}, index=index)
    loaded = load_frame(frame, LoadConfig(time_col=None, targets=("x",)))
    assert loaded.frame["x"].tolist() == [2.0, 2.0, 3.0, 4.0, 4.0]
    column = loaded.report.column("x")
    assert (column.missing_read, column.interpolated, column.edge_filled) == (3, 1, 2)
    assert loaded.report.source == "DataFrame"
    filled = load_frame(frame, LoadConfig(time_col=None, targets=("x",), missing="ffill"))
    assert filled.frame["x"].tolist() == [2.0, 2.0, 2.0, 4.0, 4.0]
    column = filled.report.column("x")
    assert (column.forward_filled, column.edge_filled) == (2, 1)


def test_frame_text_columns_parse_like_file_cells():
    frame = pd.DataFrame(
        {"t": ["2024-01-01", "2024-01-02", "2024-01-03"], "v": ["1,5", "?", "2,5"]}
    )
    loaded = load_frame(frame, LoadConfig(time_col="t", targets=("v",), decimal=","))
    assert loaded.frame["v"].tolist() == [1.5, 2.0, 2.5]


def test_file_with_comma_decimal_needs_another_separator(gap_file):
    with pytest.raises(ValueError) as info:
        load_csv(gap_file, daily_config(decimal=","))
    assert str(info.value) == (
        f"decimal and sep are both ',', so {gap_file} cannot be split into columns; a file "
        "with decimal=',' is usually separated by ';': pass sep=';'"
    )


def test_frame_with_monthly_period_index():
    frame = pd.DataFrame(
        {"sales": [266.0, 145.9, 183.1]}, index=pd.period_range("1991-01", periods=3, freq="M")
    )
    loaded = load_frame(frame, LoadConfig(time_col=None, targets=("sales",)))
    assert loaded.freq == "MS"
    assert loaded.frame.index[0] == pd.Timestamp("1991-01-01")


def test_frame_index_must_hold_timestamps_or_steps():
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=[0.5, 1.5, 2.5])
    with pytest.raises(ValueError) as info:
        load_frame(frame, LoadConfig(time_col=None, targets=("v",)))
    assert str(info.value) == (
        "the DataFrame's index holds float64 values, neither timestamps nor step numbers; pass "
        "time_col naming the time column, or set a DatetimeIndex (or an index of whole step "
        "numbers)"
    )


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(min_value=3, max_value=40),
    first=st.integers(min_value=-(10**12), max_value=10**12),
    stride=st.integers(min_value=1, max_value=1000),
    data=st.data(),
)
def test_absent_steps_are_counted_and_restored_as_absent_days_are(length, first, stride, data):
    """Step numbers (a file's integer index) go through the cleaning that timestamps do.

    The stride is the most common difference, as a timestamp grid's step is: fewer than a
    third of the steps are removed, so that it stays the stride (each removal turns at most
    two differences of one stride into one of two).
    """
    inner = list(range(1, length - 1))
    fewer = (length - 2) // 3
    removed = data.draw(st.lists(st.sampled_from(inner), unique=True, max_size=fewer))
    keep = [i for i in range(length) if i not in set(removed)]
    steps = first + stride * np.arange(length)
    values = 2.0 * np.arange(length) + 1.0
    frame = pd.DataFrame({"v": values[keep]}, index=pd.Index(steps[keep], name="t"))
    loaded = load_frame(frame, LoadConfig(time_col=None, targets=("v",)))
    days = pd.DataFrame(
        {"v": values[keep]}, index=pd.date_range("2020-01-01", periods=length)[keep]
    )
    reference = load_frame(days, LoadConfig(time_col=None, targets=("v",), freq="D"))
    assert loaded.step == stride and loaded.freq is None
    assert loaded.frame.index.tolist() == steps.tolist()
    np.testing.assert_array_equal(loaded.frame["v"], reference.frame["v"])
    assert loaded.report.gaps_filled == reference.report.gaps_filled == len(removed)
    assert loaded.report.lines()[2] == (
        f"time: steps {steps[0]} to {steps[-1]}, one reading "
        + ("every step" if stride == 1 else f"every {stride} steps")
        + " (no timestamps)"
    )


def test_a_file_of_whole_numbers_is_steps_unless_pandas_reads_years(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("t,v\n1,1.0\n2,3.0\n4,7.0\n")
    loaded = load_csv(path, LoadConfig(time_col="t", targets=("v",)))
    assert loaded.frame.index.tolist() == [1, 2, 3, 4] and loaded.step == 1
    assert loaded.frame["v"].tolist() == [1.0, 3.0, 5.0, 7.0]  # the absent step interpolated
    path.write_text("t,v\n1949,1.0\n1950,3.0\n1951,7.0\n")  # four digits: pandas' years
    years = load_csv(path, LoadConfig(time_col="t", targets=("v",)))
    assert years.step is None and years.frame.index[0] == pd.Timestamp("1949-01-01")
    path.write_text("t,v\n-1,1.0\n0,3.0\n1,7.0\n")  # a sign: no year has one
    assert load_csv(path, LoadConfig(time_col="t", targets=("v",))).frame.index[0] == -1
    path.write_text("t,v\n1,1.0\n2,3.0\n10,7.0\n")  # most steps absent: a note says so
    sparse = load_csv(path, LoadConfig(time_col="t", targets=("v",), max_filled=1))
    assert sparse.report.notes == (
        "more steps were absent (7) than present (3): check that the stride 1 is right",
    )
    for rule in ({"freq": "D"}, {"resample": "W"}):
        with pytest.raises(ValueError, match="holds step numbers, not timestamps"):
            load_csv(path, LoadConfig(time_col="t", targets=("v",), **rule))


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(min_value=3, max_value=40),
    data=st.data(),
)
def test_absent_days_are_counted_and_restored_by_interpolation(length, data):
    """A linear series with any inner days removed comes back whole, every gap counted."""
    inner = list(range(1, length - 1))
    removed = data.draw(st.lists(st.sampled_from(inner), unique=True, max_size=len(inner) - 1))
    days = pd.date_range("2020-01-01", periods=length, freq="D")
    keep = [i for i in range(length) if i not in set(removed)]
    frame = pd.DataFrame({"v": 2.0 * np.arange(length)[keep] + 1.0}, index=days[keep])
    loaded = load_frame(frame, LoadConfig(time_col=None, targets=("v",), freq="D"))
    assert loaded.report.gaps_filled == len(removed)
    assert loaded.report.column("v").interpolated == len(removed)
    np.testing.assert_allclose(loaded.frame["v"].to_numpy(), 2.0 * np.arange(length) + 1.0)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"missing": "linear"},
            "missing must be one of ('interpolate', 'ffill', 'drop', 'error', 'keep'), got "
            "'linear'; pass e.g. missing='interpolate'",
        ),
        (
            {"aggregation": "median"},
            "aggregation must be one of ('sum', 'mean'), got 'median'; pass e.g. aggregation='sum'",
        ),
        (
            {"freq": "H"},
            "freq='H' is not a frequency this pandas accepts; pass an alias such as 'min', "
            "'15min', 'h', 'D' or 'MS' (pandas 2.2 renamed 'T', 'H', 'S' and 'M' to 'min', "
            "'h', 's' and 'ME')",
        ),
        (
            {"targets": "Sales"},
            "targets must be a tuple of column names, got the string 'Sales'; pass "
            "targets=('Sales',)",
        ),
        (
            {"targets": ()},
            "targets is empty; pass at least one column name, e.g. targets=('Sales',)",
        ),
        (
            {"features": ("load",)},
            "column 'load' is listed more than once in targets and features; list each column once",
        ),
        (
            {"dtype": "float16"},
            "dtype must be one of ('float32', 'float64'), got 'float16'; pass e.g. dtype='float32'",
        ),
        ({"min_length": 0}, "min_length must be a positive integer, got 0; pass 1 or more"),
    ],
)
def test_config_validation(changes, message):
    with pytest.raises(ValueError) as info:
        daily_config(**changes)
    assert str(info.value) == message


def test_config_lists_become_tuples():
    config = LoadConfig(time_col="date", targets=["load"], features=["temp"])
    assert config.targets == ("load",)
    assert config.features == ("temp",)
    assert hash(config) == hash(LoadConfig(time_col="date", targets=("load",), features=("temp",)))


# --------------------------------------------------------------------------- dispatch


def test_load_series_sniffs_the_format(household_file, electricity_file, gap_file):
    assert load_series(household_file).targets == ("Global_active_power",)
    assert load_series(electricity_file, clients=[1]).targets == ("MT_001",)
    assert load_series(gap_file, config=daily_config()).freq == "D"
    with pytest.raises(ValueError) as info:
        load_series(gap_file)
    assert str(info.value) == (
        f"{gap_file} is a plain CSV, which needs a LoadConfig naming its columns; pass "
        "config=LoadConfig(time_col=..., targets=(...,))"
    )
    with pytest.raises(ValueError) as info:
        load_series(gap_file, format="xlsx")
    assert str(info.value) == (
        "format must be one of ('auto', 'csv', 'household', 'household-days', 'electricity'), "
        "got 'xlsx'; pass e.g. format='auto'"
    )


# --------------------------------------------------------------------------- download


@pytest.fixture
def no_proxy(monkeypatch):
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve(tmp_path):
    """Serve a folder over HTTP on 127.0.0.1 (loopback only) and yield its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_failure_names_url_cache_path_and_fix(tmp_path, no_proxy):
    url = "http://127.0.0.1:9/electricity.zip"
    with pytest.raises(DownloadError) as info:
        download_electricity_diagrams(tmp_path / "cache", url=url, timeout=5)
    target = tmp_path / "cache" / ELECTRICITY_FILE
    pattern = (
        re.escape(f"could not download {url} (")
        + r".+"
        + re.escape(
            "); the network may be unavailable; fix: download "
            f"{url} on a machine with network access, unzip it and place {ELECTRICITY_FILE} "
            f"at {target} (it is then reused), or pass the file's path to "
            "load_electricity_diagrams"
        )
    )
    assert re.fullmatch(pattern, str(info.value))
    assert list((tmp_path / "cache").iterdir()) == []  # no partial download left behind


def test_download_reuses_a_cached_file(tmp_path):
    cached = write(tmp_path / ELECTRICITY_FILE, ELECTRICITY_TEXT)
    found = download_electricity_diagrams(tmp_path, url="http://127.0.0.1:9/never")
    assert found == cached
    assert load_electricity_diagrams(found).targets == ("MT_001", "MT_002", "MT_003")


def test_download_unzips_the_archive(tmp_path, serve, no_proxy):
    folder, base = serve
    with zipfile.ZipFile(folder / "archive.zip", "w") as bundle:
        bundle.writestr(ELECTRICITY_FILE, ELECTRICITY_TEXT)
    cache = tmp_path / "cache"
    found = download_electricity_diagrams(cache, url=f"{base}/archive.zip", timeout=5)
    assert found == cache / ELECTRICITY_FILE
    assert found.read_text(encoding="utf-8") == ELECTRICITY_TEXT
    assert sorted(path.name for path in cache.iterdir()) == [ELECTRICITY_FILE]


def test_download_of_a_non_zip_is_an_error(tmp_path, serve, no_proxy):
    folder, base = serve
    write(folder / "archive.zip", "not a zip")
    with pytest.raises(DownloadError) as info:
        download_electricity_diagrams(tmp_path / "cache", url=f"{base}/archive.zip", timeout=5)
    assert str(info.value).startswith(
        f"the file from {base}/archive.zip is not a readable zip archive ("
    )
    assert list((tmp_path / "cache").iterdir()) == []


# --------------------------------------------------------------------------- shared real data


def test_real_household_excerpt(data_dir):
    loaded = load_household_power(data_dir / "household_power_consumption_head2000.txt")
    assert len(loaded.frame) == 2000
    assert loaded.frame.index[0] == pd.Timestamp("2006-12-16 17:24:00")
    assert loaded.frame.index[-1] == pd.Timestamp("2006-12-18 02:43:00")
    assert loaded.frame["Global_active_power"].iloc[0] == 4.216
    assert loaded.report.missing_read == 0
    assert loaded.report.gaps_filled == 0


def test_real_household_hourly_sum_matches_pandas_by_hand(data_dir):
    path = data_dir / "household_power_consumption_head2000.txt"
    raw = pd.read_csv(path, sep=";")
    stamps = pd.to_datetime(raw["Date"] + " " + raw["Time"], format="%d/%m/%Y %H:%M:%S")
    expected = pd.Series(raw["Global_active_power"].to_numpy(), index=stamps).resample("h").sum()
    loaded = load_household_power(path, resample="h", aggregation="sum")
    assert len(loaded.frame) == 34
    np.testing.assert_array_equal(loaded.frame.index, expected.index)
    np.testing.assert_array_equal(loaded.frame["Global_active_power"].to_numpy(), expected)
    assert loaded.report.resample.rows_before == 2000


def test_real_household_days(data_dir):
    loaded = load_household_days(data_dir / "household_power_consumption_days.csv")
    assert len(loaded.frame) == 1442
    assert loaded.freq == "D"
    assert loaded.frame.index[0] == pd.Timestamp("2006-12-16")
    assert loaded.frame.index[-1] == pd.Timestamp("2010-11-26")


@pytest.mark.parametrize(
    ("name", "time_col", "target", "rows", "first"),
    [
        ("airline_passengers.csv", "Date", "Passengers", 144, 112.0),
        ("shampoo_sales.csv", "Time", "Sales", 36, 266.0),
    ],
)
def test_real_monthly_csvs_infer_month_start(data_dir, name, time_col, target, rows, first):
    loaded = load_csv(data_dir / name, LoadConfig(time_col=time_col, targets=(target,)))
    assert loaded.freq == "MS"
    assert loaded.report.freq_inferred
    assert len(loaded.frame) == rows
    assert loaded.frame[target].iloc[0] == first


# --------------------------------------------------------------------------- files that are wrong


HOURLY = "time,load\n" + "".join(
    f"2024-01-01 {hour:02d}:00:00,{value}\n" for hour, value in enumerate([3.0, 1.0, 4.0, 1.5, 5.0])
)


def hourly_config(**changes) -> LoadConfig:
    return dataclasses.replace(LoadConfig(time_col="time", targets=("load",)), **changes)


def test_files_that_are_not_readable_text_are_refused_naming_the_fix(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "nul.csv").write_bytes(b"time,load\n\x00\x01")
    (tmp_path / "latin.csv").write_bytes("time,load\ncaf\u00e9,1\n".encode("latin-1"))
    for name, message in (
        ("missing.csv", "does not exist; pass the path of an existing CSV file"),
        ("folder", "is a folder, not a file; pass the path of a CSV file in it"),
        ("nul.csv", "is not a text file (it holds NUL bytes at byte 10); pass a CSV file"),
        (
            "latin.csv",
            "is not UTF-8 text (byte 0xe9 at position 13); convert it to UTF-8 or pass a CSV file",
        ),
    ):
        with pytest.raises(ValueError) as info:
            check_text_file(tmp_path / name)
        assert str(info.value) == f"{tmp_path / name} {message}"
        with pytest.raises(ValueError, match=re.escape(message)):
            load_csv(tmp_path / name, hourly_config())
    check_text_file(write(tmp_path / "ok.csv", HOURLY))  # the passing path


def test_another_separator_is_named(tmp_path):
    path = write(tmp_path / "semi.csv", HOURLY.replace(",", ";"))
    with pytest.raises(ValueError) as info:
        load_csv(path, hourly_config())
    assert str(info.value) == (
        f"{path} seems to be separated by ';', not ',': its first line 'time;load' is one "
        "column; pass sep=';'"
    )
    loaded = load_csv(path, hourly_config(sep=";"))
    assert loaded.frame["load"].tolist() == [3.0, 1.0, 4.0, 1.5, 5.0]


def test_a_line_with_another_number_of_fields_is_refused(tmp_path):
    # a decimal comma in a ','-separated file: pandas would read 1 and drop the 5
    path = write(tmp_path / "comma.csv", HOURLY.replace("1.5", "1,5"))
    with pytest.raises(ValueError) as info:
        load_csv(path, hourly_config())
    assert str(info.value).startswith(
        f"line 5 of {path} has 3 fields where the header has 2 ('2024-01-01 03:00:00,1,5')"
    )


def test_without_a_header_every_line_is_data_and_columns_are_numbered(tmp_path):
    path = write(tmp_path / "plain.csv", HOURLY.split("\n", 1)[1])
    with pytest.raises(ValueError) as info:
        load_csv(path, hourly_config())
    assert str(info.value) == (
        f"the first line of {path} ('2024-01-01 00:00:00,3.0') holds a timestamp and numbers: "
        "it is data, not column names; pass header=False to read it as data, with the columns "
        "named by position ('1', '2', '3', ...)"
    )
    loaded = load_csv(path, LoadConfig(time_col=None, targets=("2",), header=False))
    assert loaded.frame["2"].tolist() == [3.0, 1.0, 4.0, 1.5, 5.0]  # the first row kept
    assert loaded.frame.index[0] == pd.Timestamp("2024-01-01 00:00")
    # numbers as names beside a name that is not a timestamp are names
    years = write(tmp_path / "years.csv", "time,2019\n2024-01-01,1\n2024-01-02,2\n")
    loaded = load_csv(years, LoadConfig(time_col="time", targets=("2019",)))
    assert loaded.frame["2019"].tolist() == [1.0, 2.0]


def test_utc_offsets_must_agree(tmp_path):
    mixed = HOURLY.replace("00:00:00,3.0", "00:00:00+01:00,3.0").replace(
        "01:00:00,1.0", "01:00:00+01:00,1.0"
    )
    aware = write(tmp_path / "aware.csv", mixed.replace(":00:00,", ":00:00+01:00,"))
    loaded = load_csv(aware, hourly_config())
    assert str(loaded.frame.index.tz) == "UTC+01:00" and len(loaded.frame) == 5
    half = write(tmp_path / "half.csv", mixed)
    with pytest.raises(ValueError) as info:
        load_csv(half, hourly_config())
    assert str(info.value) == (
        "time column 'time' mixes timestamps with a UTC offset (row 1: "
        "'2024-01-01 00:00:00+01:00') and without one (row 3: '2024-01-01 02:00:00'); write "
        "every timestamp with its offset, or none with one"
    )
    shifted = write(
        tmp_path / "shifted.csv", mixed.replace(":00:00,", ":00:00+02:00,")
    )  # rows 1-2 at +01:00, rows 3-5 at +02:00
    with pytest.raises(ValueError) as info:
        load_csv(shifted, hourly_config())
    assert str(info.value).startswith(
        "time column 'time' mixes UTC offsets: row 1 ('2024-01-01 00:00:00+01:00') has +01:00, "
        "row 3 ('2024-01-01 02:00:00+02:00') has +02:00"
    )
    same = write(
        tmp_path / "z.csv",
        HOURLY.replace(":00:00,3", ":00:00Z,3").replace(":00:00,", ":00:00+00:00,"),
    )
    assert str(load_csv(same, hourly_config()).frame.index.tz) == "UTC"  # Z is +00:00


def test_max_filled_refuses_a_grid_that_makes_up_most_values(tmp_path):
    path = write(tmp_path / "hourly.csv", HOURLY)
    with pytest.raises(ValueError) as info:
        load_csv(path, hourly_config(freq="15min", max_filled=0.5))
    # 4 hours of 15-minute steps: 17 grid points, 5 read, 12 made up
    assert str(info.value) == (
        f"12 of 17 values of column 'load' in {path} would be made up by "
        "missing='interpolate' (70.6%, more than max_filled=0.5): 12 timestamps of the '15min' "
        "grid absent from the file; the file's most common step is 'h', not '15min': pass "
        "freq='h' or leave freq out to infer it; fill the file, or raise max_filled (1 accepts "
        "any share)"
    )
    accepted = load_csv(path, hourly_config(freq="15min", max_filled=12 / 17))  # at the limit
    assert accepted.report.values_filled == 12 and accepted.report.gaps_filled == 12
    assert len(load_csv(path, hourly_config(freq="15min")).frame) == 17  # None: no limit
    with pytest.raises(ValueError, match="would be made up by missing='keep'"):
        load_csv(path, hourly_config(freq="15min", missing="keep", max_filled=0.1))
    for bad in (2, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="max_filled must be a share from 0 to 1"):
            hourly_config(max_filled=bad)


def test_sniff_format_tells_the_formats_apart(tmp_path, household_file, electricity_file):
    assert sniff_format(household_file) == "household"
    assert sniff_format(electricity_file) == "electricity"
    assert sniff_format(write(tmp_path / "x.csv", HOURLY)) == "csv"
    with pytest.raises(ValueError, match="is a folder, not a file"):
        sniff_format(tmp_path)


def test_local_times_across_a_daylight_saving_change_are_read_in_their_zone():
    # Paris' offsets change on 2024-03-31; the cells carry them, as a meter export does
    local = pd.date_range("2024-03-29", "2024-04-02", freq="D", tz="Europe/Paris")
    cells = pd.Series([t.isoformat() for t in local])
    with pytest.raises(ValueError, match="mixes UTC offsets.*pass time_zone, e.g. 'Europe/Paris'"):
        parse_time_column(cells, label="'time'")
    parsed = parse_time_column(cells, label="'time'", time_zone="Europe/Paris")
    assert str(parsed.tz) == "Europe/Paris"
    # the reference: pandas' instants, in the zone: local midnight every day
    assert parsed.equals(
        pd.DatetimeIndex(pd.to_datetime(cells, utc=True)).tz_convert("Europe/Paris")
    )
    assert (parsed.hour == 0).all()
    # naive local times are read in the zone; an hour it skips is refused, never shifted
    naive = parse_time_column(
        pd.Series(["2024-03-30 12:00", "2024-03-31 12:00"]), label="'t'", time_zone="Europe/Paris"
    )
    assert [t.utcoffset().seconds // 3600 for t in naive] == [1, 2]
    with pytest.raises(ValueError, match=r"a local time that Europe/Paris does not have once"):
        parse_time_column(
            pd.Series(["2024-03-31 01:30", "2024-03-31 02:30"]),
            label="'t'",
            time_zone="Europe/Paris",
        )
    with pytest.raises(ValueError, match=r"time zone 'Mars/Olympus' is unknown; pass an IANA"):
        parse_time_column(cells, label="'time'", time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"mixes timestamps with a UTC offset \(row 1"):
        parse_time_column(
            pd.Series([cells[0], "2024-03-30 00:00"]), label="'time'", time_zone="Europe/Paris"
        )


# --------------------------------------------------------------------------- new readings


def test_read_readings_finds_the_columns_and_leaves_plain_timestamps_to_observe(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("when;a;b\n02/01/2024 00:00;1,5;7\n03/01/2024 00:00;2.5;8\n")
    table = pd.read_csv(path, sep=";", dtype=str)  # the reference: pandas' own cells
    values, stamps = read_readings(path, series_id="b", columns=("value",), sep=";")
    # one value column: the series' id names it; the first of three columns is the time
    assert values.tolist() == table[["b"]].astype(float).to_numpy().tolist()
    assert stamps == table["when"].tolist()  # text: Forecaster.observe parses it
    values, stamps = read_readings(
        path,
        series_id="s",
        columns=("x", "y"),
        targets=("b", "b"),
        sep=";",
        time_format="%d/%m/%Y %H:%M",
    )
    assert stamps == list(pd.to_datetime(table["when"], format="%d/%m/%Y %H:%M"))
    with pytest.raises(ValueError, match=r"the column\(s\) \['a'\] hold text that is not"):
        read_readings(path, series_id="a", columns=("value",), sep=";")
    with pytest.raises(ValueError, match="cannot tell which column.s. of .* pass target"):
        read_readings(path, series_id="s", columns=("value",), sep=";")
    with pytest.raises(ValueError, match="has no time column 'zz'"):
        read_readings(path, series_id="b", columns=("value",), sep=";", time_col="zz")
    steps = tmp_path / "steps.csv"
    steps.write_text("145,450\n146,460\n")
    values, stamps = read_readings(
        steps, series_id="s", columns=("v",), header=False, time_col="1", time_zone=None
    )
    assert (values.ravel().tolist(), stamps) == ([450.0, 460.0], ["145", "146"])
