"""Load time series from files or DataFrames into clean, regularly indexed frames.

A loader turns a file (or a DataFrame) into a validated `pandas.DataFrame` on a regular
`DatetimeIndex`, plus a `LoadReport` of everything done to it. Nothing is dropped silently:
absent timestamps, missing cells, resampling and dropped rows are all counted in the report,
and anything the loader cannot handle on its own (unsorted or duplicated timestamps, a cell
that is not a number, a constant column, an unknown column) raises a `ValueError` that names
what was found, what was expected and the fix.

One cleaning pipeline serves every entry point:

1. parse the timestamps (``lstmlab.data.calendar.parse_time_column``: an explicit format
   where the file format fixes one; day-first dates are never guessed; whole numbers are
   step numbers) and the numbers (declared missing markers such as ``?`` become
   NaN; any other text is an error naming the column, row and text);
2. check the order (unsorted: error, or sort with ``sort=True``; duplicated: error unless
   ``resample`` aggregates them);
3. find the source frequency (declared or inferred) and reindex onto the full regular grid,
   the absent timestamps becoming missing rows (counted as gaps);
4. resample if asked, by sum (``min_count=1``: an all-missing bin stays missing, never 0)
   or by mean;
5. apply the missing-value policy, then check the length and that no column is constant.

A series that will be split into training and test parts should be loaded with
``missing="keep"`` and filled with `fill_split`: the training part from its own values only,
the test part causally (forward fill), so that no test value leaks into the training part.

The file formats of the seed experiments have their own loaders: the UCI household power
file in its original format (`load_household_power`), its per-day summary
(`load_household_days`) and the UCI ElectricityLoadDiagrams20112014 file
(`load_electricity_diagrams`, with `download_electricity_diagrams`).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmlab.checks import check_bool, check_choice, check_positive_int
from lstmlab.data.calendar import cell_text, check_frequency, parse_time_column

__all__ = [
    "ColumnReport",
    "DownloadError",
    "ELECTRICITY_FILE",
    "ELECTRICITY_URL",
    "FILL_POLICIES",
    "FillReport",
    "HOUSEHOLD_COLUMNS",
    "LoadConfig",
    "LoadReport",
    "LoadedSeries",
    "ResampleReport",
    "check_text_file",
    "default_cache_dir",
    "download_electricity_diagrams",
    "fill_split",
    "load_csv",
    "load_electricity_diagrams",
    "load_frame",
    "load_household_days",
    "load_household_power",
    "load_series",
    "read_readings",
    "read_header",
    "series_arrays",
    "sniff_format",
]

MissingPolicy = Literal["interpolate", "ffill", "drop", "error", "keep"]
Aggregation = Literal["sum", "mean"]

_MISSING_POLICIES = ("interpolate", "ffill", "drop", "error", "keep")
FILL_POLICIES = ("interpolate", "ffill")
"""The policies `fill_split` applies to the training part."""
_AGGREGATIONS = ("sum", "mean")
_DTYPES = ("float32", "float64")
_FORMATS = ("auto", "csv", "household", "household-days", "electricity")

HOUSEHOLD_COLUMNS = (
    "Global_active_power",
    "Global_reactive_power",
    "Voltage",
    "Global_intensity",
    "Sub_metering_1",
    "Sub_metering_2",
    "Sub_metering_3",
)
_HOUSEHOLD_TIME_FORMAT = "%d/%m/%Y %H:%M:%S"
_HOUSEHOLD_MARKERS = ("?", "")

ELECTRICITY_URL = (
    "https://archive.ics.uci.edu/static/public/321/electricityloaddiagrams20112014.zip"
)
ELECTRICITY_FILE = "LD2011_2014.txt"
_ELECTRICITY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# --------------------------------------------------------------------------- configuration


def _names(field: str, value: Any) -> tuple[str, ...]:
    """Normalise a sequence of column names to a tuple, rejecting a bare string."""
    if isinstance(value, str):
        raise ValueError(
            f"{field} must be a tuple of column names, got the string {value!r}; "
            f"pass {field}=({value!r},)"
        )
    try:
        names = tuple(value)
    except TypeError:
        raise ValueError(
            f"{field} must be a tuple of column names, got {value!r}; pass {field}=('name', ...)"
        ) from None
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"{field} must hold column names (non-empty strings), got {name!r}; "
                "pass the names as strings"
            )
    return names


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadConfig:
    """What to load from a table and how to clean it.

    Attributes:
        time_col: The time column: timestamps, or step numbers (whole numbers such as 1, 2,
            3). None means the first column for a file (none when the first column is a
            target: the rows are then steps from 0), and the index (timestamps, or an
            integer index of steps) for a DataFrame.
        targets: One or more columns to forecast.
        features: Extra input columns, loaded and cleaned like the targets.
        freq: The expected frequency of the source timestamps ("D", "15min", "MS", ...).
            None infers it; an irregular index that cannot be inferred is an error unless
            `resample` is given.
        resample: The target frequency; the source is aggregated onto it by `aggregation`.
        aggregation: "mean" or "sum" (sum keeps an all-missing bin missing, never 0).
        missing: Missing-value policy. "interpolate": time-based linear inside the series,
            leading and trailing missing values filled from the nearest value (counted as
            edge-filled); "ffill": forward fill, leading missing values filled backward
            from the first value (edge-filled); "drop": drop every row with a missing value
            (the time grid then has holes; the report says so); "error": raise; "keep":
            fill nothing, missing values stay NaN (counted as left missing), so that a
            caller who splits the series fills each part itself with `fill_split`.
        sep: Field separator of a file.
        decimal: Decimal mark of the numbers (',' in European files).
        time_format: strptime format of the timestamps; None lets pandas infer one format
            from the first value (dates written with '/' then need an explicit format).
        time_zone: the zone of local timestamps, e.g. "Europe/Paris": timestamps with UTC
            offsets (which change at a daylight-saving change) are converted to it, naive
            ones are read in it; the series keeps it. None: one offset (or none) per column.
        missing_markers: Cell texts that mean "missing" (besides NaN in a DataFrame).
        sort: Sort unsorted timestamps (and report it) instead of raising.
        min_length: Fewest rows the cleaned series may have.
        dtype: "float64" or "float32" for the values of the returned frame.
        header: Whether the first line of a file names the columns. False reads every line
            as data and names the columns by position: "1" for the first, "2", ...
        max_filled: The largest share (0 to 1) of a column's values that the policies
            "interpolate", "ffill" and "keep" may make up (absent timestamps of the grid,
            missing cells, empty resampling bins), checked per column; None: no limit. A
            wrong `freq` (5-minute steps declared for hourly data) makes up most values.

    """

    time_col: str | None
    targets: tuple[str, ...]
    features: tuple[str, ...] = ()
    freq: str | None = None
    resample: str | None = None
    aggregation: Aggregation = "mean"
    missing: MissingPolicy = "interpolate"
    sep: str = ","
    decimal: str = "."
    time_format: str | None = None
    time_zone: str | None = None
    missing_markers: tuple[str, ...] = ("?", "", "NA", "N/A", "NaN", "nan")
    sort: bool = False
    min_length: int = 2
    dtype: Literal["float32", "float64"] = "float64"
    header: bool = True
    max_filled: float | None = None

    def __post_init__(self) -> None:
        targets = _names("targets", self.targets)
        features = _names("features", self.features)
        markers = _names_or_empty("missing_markers", self.missing_markers)
        # Lists become tuples so that the config stays hashable.
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "missing_markers", markers)
        if not targets:
            raise ValueError(
                "targets is empty; pass at least one column name, e.g. targets=('Sales',)"
            )
        seen: set[str] = set()
        for name in targets + features:
            if name in seen:
                raise ValueError(
                    f"column {name!r} is listed more than once in targets and features; "
                    "list each column once"
                )
            seen.add(name)
        if self.time_col is not None and (not isinstance(self.time_col, str) or not self.time_col):
            raise ValueError(
                f"time_col must be a column name or None, got {self.time_col!r}; "
                "pass the name of the timestamp column"
            )
        if self.time_col in seen:
            raise ValueError(
                f"time_col {self.time_col!r} is also listed in targets or features; "
                "the timestamp column cannot be a value column, remove it from those"
            )
        check_frequency("freq", self.freq)
        check_frequency("resample", self.resample)
        check_choice("aggregation", self.aggregation, _AGGREGATIONS)
        check_choice("missing", self.missing, _MISSING_POLICIES)
        check_choice("dtype", self.dtype, _DTYPES)
        if not isinstance(self.sep, str) or not self.sep:
            raise ValueError(f"sep must be a non-empty string, got {self.sep!r}; pass e.g. ','")
        if not isinstance(self.decimal, str) or len(self.decimal) != 1:
            raise ValueError(
                f"decimal must be one character, got {self.decimal!r}; pass '.' or ','"
            )
        min_length = check_positive_int("min_length", self.min_length, fix="pass 1 or more")
        object.__setattr__(self, "min_length", min_length)
        check_bool("sort", self.sort)
        check_bool("header", self.header)
        if self.max_filled is not None:
            if (
                isinstance(self.max_filled, bool)
                or not isinstance(self.max_filled, int | float | np.integer | np.floating)
                or not 0 <= self.max_filled <= 1
            ):
                raise ValueError(
                    f"max_filled must be a share from 0 to 1 (or None for no limit), got "
                    f"{self.max_filled!r}; pass e.g. max_filled=0.1"
                )
            object.__setattr__(self, "max_filled", float(self.max_filled))

    @property
    def columns(self) -> tuple[str, ...]:
        """The value columns in frame order: targets, then features."""
        return self.targets + self.features


def _names_or_empty(field: str, value: Any) -> tuple[str, ...]:
    """Like `_names`, but the empty string is a valid entry (an empty cell)."""
    if isinstance(value, str):
        raise ValueError(
            f"{field} must be a tuple of strings, got the string {value!r}; "
            f"pass {field}=({value!r},)"
        )
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise ValueError(
                f"{field} must hold strings, got {name!r}; pass the markers as strings"
            )
    return names


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnReport:
    """What cleaning found and did in one column.

    Attributes:
        name: The column.
        role: "target" or "feature".
        missing_read: Missing cells as read (markers such as '?', empty cells, NaN).
        missing: Missing values the policy saw, after gap filling and resampling.
        interpolated: Values filled by time-based linear interpolation.
        forward_filled: Values filled from the previous value (policy "ffill").
        edge_filled: Leading or trailing values filled from the nearest value.
        dropped: Rows dropped because this column was missing (policy "drop").
        left_missing: Values left missing, NaN in the frame (policy "keep").

    """

    name: str
    role: str
    missing_read: int
    missing: int
    interpolated: int = 0
    forward_filled: int = 0
    edge_filled: int = 0
    dropped: int = 0
    left_missing: int = 0

    def line(self) -> str:
        """Return one human-readable line."""
        done = []
        if self.interpolated:
            done.append(f"{self.interpolated} interpolated")
        if self.forward_filled:
            done.append(f"{self.forward_filled} forward-filled")
        if self.edge_filled:
            done.append(f"{self.edge_filled} edge-filled")
        if self.dropped:
            done.append(f"{self.dropped} dropped")
        if self.left_missing:
            done.append(f"{self.left_missing} left missing (NaN)")
        touched = ", ".join(done) if done else "nothing to do"
        return (
            f"{self.name} ({self.role}): {self.missing_read} missing as read, "
            f"{self.missing} before the policy; {touched}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ResampleReport:
    """The resampling done.

    Attributes:
        rule: The target frequency.
        aggregation: "sum" or "mean".
        rows_before: Rows before resampling (after gap filling).
        rows_after: Bins after resampling.
        empty_bins: Bins that no source row fell into (missing, then the policy applies).
        partial_bins: Bins aggregated over fewer readings because some were missing.

    """

    rule: str
    aggregation: str
    rows_before: int
    rows_after: int
    empty_bins: int
    partial_bins: int


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadReport:
    """Everything the loader did, with counts.

    Attributes:
        source: The file path, or "DataFrame".
        rows_read: Data rows read.
        rows_kept: Rows of the returned frame.
        start: First timestamp (or step number) of the returned frame.
        end: Last timestamp (or step number) of the returned frame.
        freq: Frequency of the returned frame; None for a series of steps.
        step: The stride of a series of steps (its time column held step numbers), else
            None.
        source_freq: Frequency of the source timestamps; None when irregular (resampled).
        freq_inferred: Whether `source_freq` was inferred rather than declared.
        rows_sorted: Whether the rows were out of order and sorted (``sort=True``).
        duplicates_aggregated: Duplicated timestamps aggregated by resampling.
        gaps_filled: Absent timestamps of the regular grid added as missing rows.
        resample: The resampling done, or None.
        missing_policy: The missing-value policy applied.
        columns: Per column, the missing values found and what the policy did.
        rows_dropped: Rows dropped by the "drop" policy.
        notes: Warnings for the reader (holes in the grid, partial edge bins, ...).

    """

    source: str
    rows_read: int
    rows_kept: int
    start: pd.Timestamp | int
    end: pd.Timestamp | int
    freq: str | None
    source_freq: str | None
    freq_inferred: bool
    rows_sorted: bool
    duplicates_aggregated: int
    gaps_filled: int
    resample: ResampleReport | None
    missing_policy: str
    columns: tuple[ColumnReport, ...]
    rows_dropped: int
    notes: tuple[str, ...] = ()
    step: int | None = None

    @property
    def grid(self) -> str:
        """The returned frame's grid as messages name it: ``'MS'``, ``'steps'``."""
        return _grid_name(self.freq if self.step is None else self.step)

    @property
    def missing_read(self) -> int:
        """Return the missing cells as read, over all columns."""
        return sum(column.missing_read for column in self.columns)

    @property
    def values_filled(self) -> int:
        """Return the values the policy made up (interpolated, forward- or edge-filled)."""
        return sum(
            column.interpolated + column.forward_filled + column.edge_filled
            for column in self.columns
        )

    def column(self, name: str) -> ColumnReport:
        """Return the report of one column.

        Args:
            name: The column name.

        Returns:
            Its `ColumnReport`.

        Raises:
            KeyError: When the column was not loaded.

        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(
            f"no column {name!r} in this report; loaded columns: "
            f"{[column.name for column in self.columns]}"
        )

    def lines(self) -> list[str]:
        """Return a human summary, one line per fact."""
        how = "inferred" if self.freq_inferred else "declared"
        source_freq = (
            f"source frequency {self.source_freq!r} ({how})"
            if self.source_freq is not None
            else "irregular source timestamps"
        )
        time = f"time: {self.start} to {self.end}, frequency {self.freq!r}; {source_freq}"
        if self.step is not None:
            every = "every step" if self.step == 1 else f"every {self.step} steps"
            time = f"time: steps {self.start} to {self.end}, one reading {every} (no timestamps)"
        out = [
            f"source: {self.source}",
            f"rows: {self.rows_read} read, {self.rows_kept} kept",
            time,
        ]
        if self.rows_sorted:
            out.append("order: rows were out of time order and were sorted (sort=True)")
        if self.duplicates_aggregated:
            out.append(
                f"duplicates: {_count(self.duplicates_aggregated, 'duplicated timestamp')} "
                "aggregated by resampling"
            )
        absent = "absent timestamp" if self.step is None else "absent step"
        out.append(f"gaps: {_count(self.gaps_filled, absent)} filled as missing")
        if self.resample is not None:
            done = self.resample
            out.append(
                f"resampled to {done.rule!r} by {done.aggregation}: {done.rows_before} rows -> "
                f"{done.rows_after} rows ({_count(done.empty_bins, 'empty bin')}, "
                f"{_count(done.partial_bins, 'bin')} with some readings missing)"
            )
        out.append(f"missing values (policy {self.missing_policy!r}):")
        out.extend(f"  {column.line()}" for column in self.columns)
        if self.missing_policy == "drop":
            out.append(f"rows dropped: {self.rows_dropped}")
        out.extend(f"note: {note}" for note in self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadedSeries:
    """A cleaned, regularly indexed series and the report of its cleaning.

    Attributes:
        frame: DataFrame with a DatetimeIndex (or an int64 index of step numbers) and the
            columns targets + features (float64 or float32); no missing values, except NaN
            under the policy "keep".
        targets: The target columns.
        features: The extra input columns.
        freq: The frequency of the index (the grid; the "drop" policy may leave holes);
            None for a series of steps.
        report: What was done, with counts.
        step: The stride of a series of steps (its time column held step numbers such as
            1, 2, 3), else None.

    """

    frame: pd.DataFrame
    targets: tuple[str, ...]
    features: tuple[str, ...]
    freq: str | None
    report: LoadReport
    step: int | None = None

    @property
    def grid(self) -> str:
        """The index's grid as messages name it: ``'MS'``, ``'steps'``, ``'steps of 5'``."""
        return self.report.grid

    @property
    def columns(self) -> tuple[str, ...]:
        """Return targets + features, the column order of `frame`."""
        return self.targets + self.features

    def values(self) -> np.ndarray:
        """Return all columns as an array of shape (time, targets + features)."""
        return self.frame.loc[:, list(self.columns)].to_numpy(copy=True)

    def target_values(self) -> np.ndarray:
        """Return the targets as an array of shape (time, targets)."""
        return self.frame.loc[:, list(self.targets)].to_numpy(copy=True)

    def feature_values(self) -> np.ndarray:
        """Return the features as an array of shape (time, features), (time, 0) if none."""
        return self.frame.loc[:, list(self.features)].to_numpy(copy=True)

    def __len__(self) -> int:
        return len(self.frame)


def series_arrays(loaded: LoadedSeries, columns: Sequence[str] | None = None) -> list[np.ndarray]:
    """One 1-D array per column: the multi-stream layout (each client is one stream).

    Args:
        loaded: A loaded series.
        columns: The columns to return; None means the targets.

    Returns:
        A list of arrays of shape (time,), in the order of `columns`.

    Raises:
        ValueError: When a column was not loaded.

    """
    names = loaded.targets if columns is None else _names("columns", columns)
    unknown = [name for name in names if name not in loaded.frame.columns]
    if unknown:
        raise ValueError(
            f"column(s) {unknown} were not loaded; loaded columns: {list(loaded.columns)}; "
            "pass names from that list"
        )
    return [loaded.frame[name].to_numpy(copy=True) for name in names]


# --------------------------------------------------------------------------- split filling


@dataclass(frozen=True, kw_only=True, slots=True)
class FillReport:
    """What `fill_split` filled in each part, per column.

    Attributes:
        policy: The training part's policy, "interpolate" or "ffill".
        n_train: Length of the training part.
        train_missing: Per column, the missing values of the training part.
        train_interpolated: Per column, training values filled by linear interpolation
            between training values (policy "interpolate").
        train_forward_filled: Per column, training values filled from the previous training
            value (policy "ffill").
        train_edge_filled: Per column, leading or trailing training values filled from the
            nearest training value.
        test_forward_filled: Per column, test values filled from the last known value
            before them (model inputs only; they must stay out of the scores).

    """

    policy: str
    n_train: int
    train_missing: tuple[int, ...]
    train_interpolated: tuple[int, ...]
    train_forward_filled: tuple[int, ...]
    train_edge_filled: tuple[int, ...]
    test_forward_filled: tuple[int, ...]

    @property
    def train_filled(self) -> int:
        """Return the values filled in the training part, over all columns."""
        return sum(self.train_missing)

    @property
    def test_filled(self) -> int:
        """Return the values filled in the test part, over all columns."""
        return sum(self.test_forward_filled)

    def lines(self) -> list[str]:
        """Return a human summary, one line per part and column."""
        out = [
            f"missing values filled per part (training part: {self.n_train} steps, policy "
            f"{self.policy!r}; test part: forward fill, as model inputs only, to be left "
            "out of the scores):"
        ]
        for column, missing in enumerate(self.train_missing):
            done = []
            if self.train_interpolated[column]:
                done.append(f"{self.train_interpolated[column]} interpolated")
            if self.train_forward_filled[column]:
                done.append(f"{self.train_forward_filled[column]} forward-filled")
            if self.train_edge_filled[column]:
                done.append(f"{self.train_edge_filled[column]} edge-filled")
            train = f" ({', '.join(done)})" if done else ""
            out.append(
                f"  column {column}: training part {missing} filled{train}; test part "
                f"{self.test_forward_filled[column]} forward-filled"
            )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _forward_fill(column: np.ndarray) -> np.ndarray:
    """Fill each NaN from the last known value before it; `column[0]` must be known."""
    positions = np.where(np.isnan(column), 0, np.arange(len(column)))
    last_known = np.maximum.accumulate(positions)  # the latest known position so far
    return column[last_known]


def fill_split(
    values: np.ndarray, n_train: int, policy: str = "interpolate"
) -> tuple[np.ndarray, FillReport]:
    """Fill missing values of a split series without letting a test value reach training.

    The training part ``values[:n_train]`` is filled from training values only: linear
    interpolation between the training values around a gap (policy "interpolate", by
    position: the loader's grid is regular) or the previous training value (policy
    "ffill"); a gap at either edge takes the nearest training value, so a gap at the end
    of the training part holds the last training value, never one from the test part.

    The test part ``values[n_train:]`` is filled causally for use as model inputs: each
    missing value takes the last known value before it (the training part included),
    never a later one, exactly what a forecaster would have had at that time.

    The filled test values are inputs, not actual values: the caller must leave them out of
    the scores (compute the mask ``np.isnan(values[n_train:])`` before filling and score
    only where it is False). Load the series with ``missing="keep"`` so that the loader
    leaves the filling to this function.

    Args:
        values: Shape (time, columns) or (time,), float, NaN where missing.
        n_train: Length of the training part, 1 to time.
        policy: How to fill the training part: "interpolate" or "ffill".

    Returns:
        The filled float64 copy, shape of `values`, and the `FillReport` of what was filled.

    Raises:
        ValueError: When `values` is not 1-D or 2-D numbers, holds an infinite value,
            `n_train` is out of range, `policy` is unknown, or a column has no value in the
            training part.

    Example:
        >>> filled, report = fill_split(np.array([1.0, np.nan, np.nan, 10.0, np.nan]), 3)
        >>> filled.tolist(), report.test_filled
        ([1.0, 1.0, 1.0, 10.0, 10.0], 1)

    """
    check_choice("policy", policy, FILL_POLICIES)
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(
            f"values must hold numbers, got dtype {array.dtype}; pass a float array with NaN "
            "where missing"
        )
    if array.ndim not in (1, 2):
        raise ValueError(
            f"values must have shape (time, columns) or (time,), got shape {array.shape}; "
            "reshape it"
        )
    table = array.astype(np.float64, copy=True)
    table = table[:, None] if table.ndim == 1 else table  # (time,) -> (time, 1)
    if np.isinf(table).any():
        raise ValueError(
            f"values holds {int(np.isinf(table).sum())} infinite value(s); only NaN marks a "
            "missing value, replace the infinities with NaN or a number"
        )
    n_time = len(table)
    if (
        isinstance(n_train, bool | np.bool_)
        or not isinstance(n_train, int | np.integer)
        or not 1 <= n_train <= n_time
    ):
        raise ValueError(
            f"n_train must be an integer from 1 to {n_time} (the series length), got "
            f"{n_train!r}; pass the length of the training part"
        )
    n_train = int(n_train)
    counts: dict[str, list[int]] = {
        key: [] for key in ("missing", "interpolated", "forward", "edge", "test")
    }
    for column in range(table.shape[1]):
        train = table[:n_train, column]
        missing = np.isnan(train)
        if missing.all():
            raise ValueError(
                f"column {column} has no value in the training part (all {n_train} missing); "
                "drop the column, or split later (a larger n_train) so that the training "
                "part holds values"
            )
        # Training part: pandas fills from training values only (the slice ends at n_train).
        part = pd.Series(train)
        if policy == "interpolate":
            inside = part.interpolate(method="linear", limit_area="inside")
        else:
            inside = part.ffill()
        done_inside = int((missing & inside.notna().to_numpy()).sum())
        table[:n_train, column] = inside.ffill().bfill().to_numpy()
        counts["missing"].append(int(missing.sum()))
        counts["interpolated"].append(done_inside if policy == "interpolate" else 0)
        counts["forward"].append(done_inside if policy == "ffill" else 0)
        counts["edge"].append(int(missing.sum()) - done_inside)
        # Test part: causal forward fill from the filled training part onward.
        test_missing = int(np.isnan(table[n_train:, column]).sum())
        table[:, column] = _forward_fill(table[:, column])
        counts["test"].append(test_missing)
    filled = table[:, 0] if array.ndim == 1 else table  # (time, 1) -> (time,) when given so
    report = FillReport(
        policy=policy,
        n_train=n_train,
        train_missing=tuple(counts["missing"]),
        train_interpolated=tuple(counts["interpolated"]),
        train_forward_filled=tuple(counts["forward"]),
        train_edge_filled=tuple(counts["edge"]),
        test_forward_filled=tuple(counts["test"]),
    )
    return filled, report


# --------------------------------------------------------------------------- helpers


def _count(number: int, word: str) -> str:
    """Write '1 gap' or '3 gaps'."""
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _describe_columns(columns: Sequence[str]) -> str:
    """Show column names, shortened when long (the electricity file has 370)."""
    names = list(columns)
    if len(names) <= 12:
        return repr(names)
    head = ", ".join(repr(name) for name in names[:5])
    tail = ", ".join(repr(name) for name in names[-2:])
    return f"[{head}, ..., {tail}] ({len(names)} columns)"


def _check_columns(wanted: Sequence[str], available: Sequence[str], source: str) -> None:
    """Raise listing the available columns when a wanted column is absent."""
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(
            f"column(s) {unknown} not found in {source}; available columns: "
            f"{_describe_columns(available)}; pass names from that list"
        )


def _stamp(value: Any) -> str:
    """Format a timestamp (or a step number) as the messages show it."""
    if isinstance(value, int | np.integer):
        return f"step {value}"
    return str(pd.Timestamp(value))


def _missing_hint(markers: tuple[str, ...]) -> str:
    """Tell how the user can mark a cell missing."""
    shown = next((marker for marker in markers if marker), None)
    if shown is not None:
        return f"mark it missing with {shown!r}"
    if "" in markers:
        return "leave it empty to mark it missing"
    return "add a marker to missing_markers"


def _numbers(
    series: pd.Series,
    *,
    name: str,
    time: pd.DatetimeIndex,
    decimal: str,
    markers: tuple[str, ...],
) -> np.ndarray:
    """Convert a column to float64, NaN for missing cells; raise on any other text."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if pd.api.types.is_integer_dtype(series.dtype):
            exact = series.to_numpy()  # compared as integers: 2**53 + 1 is no float
            large = (exact > 2**53) | (exact < -(2**53))
            if large.any():
                position = int(np.flatnonzero(large)[0])
                raise ValueError(
                    f"column {name!r} row {position + 1} ({_stamp(time[position])}) holds the "
                    f"integer {exact[position]}, beyond 2**53: as a float64 it would lose its "
                    "last digits; store smaller units (e.g. divide by 1000)"
                )
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
        text = None
    else:
        text = cell_text(series)
        is_marker = np.isin(text, np.array(markers, dtype=object)) | (series.isna().to_numpy())
        normalised = (
            text
            if decimal == "."
            else np.array([cell.replace(decimal, ".") for cell in text], dtype=object)
        )
        values = np.asarray(pd.to_numeric(normalised, errors="coerce"), dtype=np.float64)
        values[is_marker] = np.nan
        bad = ~is_marker & ~np.isfinite(values)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        shown = text[position] if text is not None else str(values[position])
        raise ValueError(
            f"column {name!r} row {position + 1} ({_stamp(time[position])}) holds {shown!r}, "
            f"which is not a number; fix the cell or {_missing_hint(markers)}"
        )
    return values


def _step_offset(time: pd.DatetimeIndex) -> pd.DateOffset:
    """Return the most common step between timestamps as an offset (smallest on ties)."""
    steps = pd.Series(time[1:] - time[:-1]).value_counts()
    step = steps[steps == steps.max()].index.min()
    if step % pd.Timedelta(days=1) == pd.Timedelta(0):
        # pandas 3 writes a 1-day Timedelta offset as '24h'; a calendar day reads as 'D'.
        return pd.offsets.Day(step.days)
    return to_offset(step)


def _off_grid(time: pd.DatetimeIndex, offset: pd.DateOffset) -> np.ndarray:
    """Return the positions of timestamps off the grid that starts at the first one."""
    grid = pd.date_range(time[0], time[-1], freq=offset, unit=time.unit)
    return np.flatnonzero(~time.isin(grid))


def _source_frequency(
    time: pd.DatetimeIndex,
    rows: np.ndarray,
    config: LoadConfig,
    source: str,
    *,
    irregular_ok: bool,
) -> tuple[pd.DateOffset | None, bool]:
    """Find the source grid: (offset, inferred?), or (None, False) if irregular and allowed."""
    if config.freq is not None:
        offset = to_offset(config.freq)
        off = _off_grid(time, offset)
        if off.size:
            position = int(off[0])
            raise ValueError(
                f"timestamp {_stamp(time[position])} at row {rows[position]} of {source} is "
                f"not on the {config.freq!r} grid that starts at {_stamp(time[0])}; pass the "
                "right freq, or resample to aggregate onto a grid"
            )
        return offset, False
    if len(time) >= 3:
        inferred = pd.DatetimeIndex(time, freq="infer").freq
        if inferred is not None:
            return inferred, True
    if len(time) >= 2:
        # A regular series with absent timestamps: infer the step, then check the grid.
        offset = _step_offset(time)
        off = _off_grid(time, offset)
        if not off.size:
            return offset, True
        if irregular_ok:
            return None, False
        position = int(off[0])
        raise ValueError(
            f"cannot infer a regular frequency for {source}: the most common step is "
            f"{offset.freqstr!r}, but {off.size} of {len(time)} timestamps are off that grid, "
            f"the first at row {rows[position]} ({_stamp(time[position])}); pass freq "
            "(e.g. 'D', '15min', 'MS') or resample to aggregate onto a grid"
        )
    if irregular_ok:
        return None, False
    raise ValueError(
        f"cannot infer a frequency for {source} from {_count(len(time), 'timestamp')}; "
        "pass freq (e.g. 'D', '15min', 'MS')"
    )


def _fixed_span(offset: pd.DateOffset) -> pd.Timedelta | None:
    """Return the length of a fixed offset ('15min', 'h'), None for calendar offsets."""
    try:
        return pd.Timedelta(offset)
    except (TypeError, ValueError):
        return None


def _edge_bin_notes(
    frame: pd.DataFrame, source: pd.DateOffset | None, rule: pd.DateOffset
) -> list[str]:
    """Describe first and last bins that cover fewer source steps than a full bin."""
    source_span, rule_span = (
        (_fixed_span(source), _fixed_span(rule)) if source is not None else (None, None)
    )
    if source_span is None or rule_span is None or rule_span <= source_span:
        return []
    if rule_span % source_span != pd.Timedelta(0):
        return []
    full = int(rule_span // source_span)
    steps = pd.Series(np.ones(len(frame)), index=frame.index).resample(rule).count()
    notes = []
    for which, label, covered in (
        ("first", steps.index[0], steps.iloc[0]),
        ("last", steps.index[-1], steps.iloc[-1]),
    ):
        if covered < full:
            notes.append(
                f"the {which} bin ({_stamp(label)}) covers {covered} of {full} source steps, "
                "so a sum there is lower than a full bin's"
            )
    if len(steps) == 1 and len(notes) == 2:
        notes = notes[:1]
    return notes


def _check_filled_share(
    missing: dict[str, int],
    *,
    rows: int,
    gaps: int,
    missing_read: dict[str, int],
    source_index: pd.Index,
    freq: str,
    config: LoadConfig,
    source: str,
) -> None:
    """Refuse a column whose made-up share of values is above ``config.max_filled``."""
    assert config.max_filled is not None
    for name, count in missing.items():
        share = count / rows
        if share <= config.max_filled:
            continue
        why = [f"{_count(gaps, 'timestamp')} of the {freq!r} grid absent from the file"]
        if missing_read[name]:
            why.append(f"{_count(missing_read[name], 'missing cell')}")
        hint = ""
        stamped = isinstance(source_index, pd.DatetimeIndex)
        if stamped and gaps > len(source_index) and len(source_index) >= 2:
            step = _step_offset(source_index).freqstr
            if step != freq:
                hint = (
                    f"the file's most common step is {step!r}, not {freq!r}: pass freq={step!r} "
                    "or leave freq out to infer it; "
                )
        raise ValueError(
            f"{count} of {rows} values of column {name!r} in {source} would be made up by "
            f"missing={config.missing!r} ({share:.1%}, more than max_filled="
            f"{config.max_filled:g}): {', '.join(why)}; {hint}fill the file, or raise "
            "max_filled (1 accepts any share)"
        )


# --------------------------------------------------------------------------- the pipeline


def _clean(
    *,
    time: pd.DatetimeIndex | pd.Index,
    table: pd.DataFrame,
    config: LoadConfig,
    source: str,
    index_name: str | None,
) -> LoadedSeries:
    """Run the shared cleaning pipeline; `table` holds the raw value columns, row-aligned.

    The stages, in order: numbers out of the cells, time order, duplicates, the source grid
    (absent timestamps become missing rows), resampling, the missing-value policy, and the
    checks of what is left. ``time`` is timestamps, or step numbers (an int64 index): their
    grid is the stride they advance by, and they take no calendar rule (``freq``,
    ``resample``).
    """
    if not isinstance(time, pd.DatetimeIndex):
        _check_step_config(config, source)
    columns = config.columns
    values = {
        name: _numbers(
            table[name],
            name=name,
            time=time,
            decimal=config.decimal,
            markers=config.missing_markers,
        )
        for name in columns
    }
    rows_read = len(time)
    frame = pd.DataFrame(values, index=time.rename(None), columns=list(columns))
    missing_read = {name: int(frame[name].isna().sum()) for name in columns}
    rows = np.arange(1, rows_read + 1)  # 1-based data rows, header excluded
    frame, rows, rows_sorted = _in_time_order(frame, rows, config, source)
    duplicates = _counted_duplicates(frame, rows, config, source)
    notes: list[str] = []
    source_index = frame.index
    grid = _on_source_grid(frame, rows, config, source, duplicates, notes)
    frame, gaps = grid.frame, grid.gaps
    resampled = None
    final_offset = grid.offset
    if config.resample is not None:
        frame, resampled = _resampled(frame, source_index, grid.offset, config, notes)
        final_offset = to_offset(config.resample)
    assert final_offset is not None  # irregular sources are only allowed with resample
    stride = final_offset if isinstance(final_offset, int) else None
    freq = _grid_name(final_offset)
    was_missing = frame.isna()
    missing = {name: int(was_missing[name].sum()) for name in columns}
    for name in columns:
        if missing[name] == len(frame):
            raise ValueError(
                f"column {name!r} in {source} has no values (all {len(frame)} missing); "
                "drop the column or choose another"
            )
    if config.max_filled is not None and config.missing in ("interpolate", "ffill", "keep"):
        _check_filled_share(
            missing,
            rows=len(frame),
            gaps=gaps,
            missing_read=missing_read,
            source_index=source_index,
            freq=freq if grid.offset is None else _grid_name(grid.offset),
            config=config,
            source=source,
        )
    frame, filled = _filled(frame, was_missing, missing, config, source, freq, notes)
    _check_cleaned(frame, config, source)
    frame = frame.astype(config.dtype).rename_axis(index_name)
    report = LoadReport(
        source=source,
        rows_read=rows_read,
        rows_kept=len(frame),
        start=frame.index[0],
        end=frame.index[-1],
        freq=None if stride else freq,
        step=stride,
        source_freq=None if grid.offset is None or stride else grid.offset.freqstr,
        freq_inferred=grid.inferred,
        rows_sorted=rows_sorted,
        duplicates_aggregated=duplicates,
        gaps_filled=gaps,
        resample=resampled,
        missing_policy=config.missing,
        columns=tuple(
            ColumnReport(
                name=name,
                role="target" if name in config.targets else "feature",
                missing_read=missing_read[name],
                missing=missing[name],
                interpolated=filled.interpolated.get(name, 0),
                forward_filled=filled.forward_filled.get(name, 0),
                edge_filled=filled.edge_filled.get(name, 0),
                dropped=filled.dropped.get(name, 0),
                left_missing=filled.left_missing.get(name, 0),
            )
            for name in columns
        ),
        rows_dropped=filled.rows_dropped,
        notes=tuple(notes),
    )
    return LoadedSeries(
        frame=frame,
        targets=config.targets,
        features=config.features,
        freq=None if stride else freq,
        step=stride,
        report=report,
    )


def _check_step_config(config: LoadConfig, source: str) -> None:
    """Step numbers take no calendar rule: neither ``freq`` nor ``resample``."""
    for field, value in (("freq", config.freq), ("resample", config.resample)):
        if value is not None:
            raise ValueError(
                f"the time column of {source} holds step numbers, not timestamps: {field}="
                f"{value!r} is a calendar rule they cannot follow; leave {field} out (the "
                "steps' own stride is their grid), or pass timestamps"
            )


def _grid_name(offset: Any) -> str:
    """A grid as messages name it: a pandas frequency, or ``"steps of 5"``."""
    if isinstance(offset, int):
        return "steps" if offset == 1 else f"steps of {offset}"
    return offset if isinstance(offset, str) else offset.freqstr


def _index_numbers(index: pd.Index) -> np.ndarray:
    """Timestamps as nanoseconds, or step numbers, as int64: what orders the rows."""
    return index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy(np.int64)


def _in_time_order(
    frame: pd.DataFrame, rows: np.ndarray, config: LoadConfig, source: str
) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """The frame in time order: an unsorted file is an error unless ``sort=True``.

    Returns:
        ``(frame, its 1-based file rows, whether it was sorted here)``.
    """
    stamps = _index_numbers(frame.index)
    descents = np.flatnonzero(np.diff(stamps) < 0)
    if not descents.size:
        return frame, rows, False
    position = int(descents[0]) + 1
    if not config.sort:
        raise ValueError(
            f"timestamps in {source} are not sorted: row {position + 1} "
            f"({_stamp(frame.index[position])}) is earlier than row {position} "
            f"({_stamp(frame.index[position - 1])}); sort the file by time, or pass "
            "sort=True to sort on load"
        )
    order = np.argsort(stamps, kind="stable")
    return frame.iloc[order], rows[order], True


def _counted_duplicates(
    frame: pd.DataFrame, rows: np.ndarray, config: LoadConfig, source: str
) -> int:
    """How many timestamps repeat; an error unless ``resample`` aggregates them."""
    duplicated = frame.index.duplicated()
    duplicates = int(duplicated.sum())
    if duplicates and config.resample is None:
        position = int(np.flatnonzero(duplicated)[0])
        stamped = isinstance(frame.index, pd.DatetimeIndex)
        raise ValueError(
            f"{_count(duplicates, 'duplicated timestamp' if stamped else 'repeated step')} "
            f"in {source}, the first is {_stamp(frame.index[position])} at row "
            f"{rows[position]}; aggregate the duplicates before loading"
            + (", or pass resample to aggregate them on load" if stamped else "")
        )
    return duplicates


@dataclass(frozen=True, slots=True, eq=False)
class _SourceGrid:
    frame: pd.DataFrame  # on the source grid, absent timestamps as missing rows
    offset: Any  # the source frequency (a pandas offset; a stride of steps), None when irregular
    inferred: bool  # whether the frequency was inferred (not given)
    gaps: int  # rows added for absent timestamps


def _on_source_grid(
    frame: pd.DataFrame,
    rows: np.ndarray,
    config: LoadConfig,
    source: str,
    duplicates: int,
    notes: list[str],
) -> _SourceGrid:
    """The source grid: absent timestamps become missing rows, counted as gaps."""
    if duplicates:
        return _SourceGrid(frame=frame, offset=None, inferred=False, gaps=0)
    if not isinstance(frame.index, pd.DatetimeIndex):
        return _on_step_grid(frame, rows, source, notes)
    offset, inferred = _source_frequency(
        frame.index, rows, config, source, irregular_ok=config.resample is not None
    )
    if offset is None:
        return _SourceGrid(frame=frame, offset=None, inferred=inferred, gaps=0)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=offset, unit=frame.index.unit)
    what = ("timestamps", f"the frequency {offset.freqstr!r}")
    return _reindexed(frame, grid, offset, inferred, notes, what)


def _reindexed(
    frame: pd.DataFrame,
    grid: pd.Index,
    offset: Any,
    inferred: bool,
    notes: list[str],
    what: tuple[str, str],
) -> _SourceGrid:
    """The frame on ``grid``: absent times become missing rows, counted as gaps.

    ``what``: the times and the grid's rule as a note names them (``("steps", "the stride
    2")``), for a note when more were absent than present.
    """
    gaps = len(grid) - len(frame)
    if gaps > len(frame):
        notes.append(
            f"more {what[0]} were absent ({gaps}) than present ({len(frame)}): check that "
            f"{what[1]} is right"
        )
    return _SourceGrid(frame=frame.reindex(grid), offset=offset, inferred=inferred, gaps=gaps)


def _on_step_grid(
    frame: pd.DataFrame, rows: np.ndarray, source: str, notes: list[str]
) -> _SourceGrid:
    """Step numbers on the grid of their most common stride; absent steps are gaps."""
    steps = frame.index.to_numpy(np.int64)
    stride = 1
    if len(steps) >= 2:
        differences, counts = np.unique(np.diff(steps), return_counts=True)
        stride = int(differences[counts == counts.max()].min())  # the smallest on ties
    off = np.flatnonzero((steps - steps[0]) % stride)
    if off.size:
        position = int(off[0])
        raise ValueError(
            f"step {steps[position]} at row {rows[position]} of {source} is not on the grid of "
            f"steps of {stride} that starts at step {steps[0]}; number the rows evenly (or, "
            "for dates written as numbers such as 19610101, pass their time format)"
        )
    grid = pd.Index(np.arange(steps[0], steps[-1] + 1, stride, dtype=np.int64))
    return _reindexed(frame, grid, stride, True, notes, ("steps", f"the stride {stride}"))


def _resampled(
    frame: pd.DataFrame,
    source_index: pd.DatetimeIndex,
    source_offset: Any,
    config: LoadConfig,
    notes: list[str],
) -> tuple[pd.DataFrame, ResampleReport]:
    """The frame aggregated into ``config.resample`` bins, and what that did."""
    rule = to_offset(config.resample)
    # Readings per bin count the source rows only, not the gap rows added before.
    readings = pd.Series(np.ones(len(source_index)), index=source_index).resample(rule).count()
    before = len(frame)
    resampler = frame.resample(rule)
    # min_count=1: a bin with no reading stays missing instead of summing to 0.
    out = resampler.sum(min_count=1) if config.aggregation == "sum" else resampler.mean()
    readings = readings.reindex(out.index, fill_value=0)
    absent = frame.isna().resample(rule).sum().reindex(out.index, fill_value=0)
    present = frame.notna().resample(rule).sum().reindex(out.index, fill_value=0)
    partial = int(((absent > 0) & (present > 0)).any(axis=1).sum())
    if config.aggregation == "sum":
        notes.extend(_edge_bin_notes(frame, source_offset, rule))
    return out, ResampleReport(
        rule=rule.freqstr,
        aggregation=config.aggregation,
        rows_before=before,
        rows_after=len(out),
        empty_bins=int((readings == 0).sum()),
        partial_bins=partial,
    )


@dataclass(frozen=True, slots=True, eq=False)
class _Filled:
    """What the missing-value policy did, per column (absent: nothing)."""

    interpolated: dict[str, int] = dataclasses.field(default_factory=dict)
    forward_filled: dict[str, int] = dataclasses.field(default_factory=dict)
    edge_filled: dict[str, int] = dataclasses.field(default_factory=dict)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    left_missing: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_dropped: int = 0


def _filled(
    frame: pd.DataFrame,
    was_missing: pd.DataFrame,
    missing: dict[str, int],
    config: LoadConfig,
    source: str,
    freq: str,
    notes: list[str],
) -> tuple[pd.DataFrame, _Filled]:
    """The missing-value policy (``config.missing``) applied, and what it did."""
    columns = config.columns
    if not any(missing.values()):
        return frame, _Filled()
    if config.missing == "error":
        details = ", ".join(
            f"column {name!r} {missing[name]} (first at "
            f"{_stamp(frame.index[was_missing[name].to_numpy()][0])})"
            for name in columns
            if missing[name]
        )
        raise ValueError(
            f"missing='error' but {source} has missing values: {details}; fill them, "
            "or pass missing='interpolate', 'ffill' or 'drop'"
        )
    if config.missing == "interpolate":
        # "time" weighs by the timestamps' distances, "index" by the step numbers'
        method = "time" if isinstance(frame.index, pd.DatetimeIndex) else "index"
        inside = frame.interpolate(method=method, limit_area="inside")
        done = was_missing & inside.notna()
        interpolated = {name: int(done[name].sum()) for name in columns}
        edges = {name: missing[name] - interpolated[name] for name in columns}
        return inside.ffill().bfill(), _Filled(interpolated=interpolated, edge_filled=edges)
    if config.missing == "ffill":
        forward = frame.ffill()
        done = was_missing & forward.notna()
        forward_filled = {name: int(done[name].sum()) for name in columns}
        edges = {name: missing[name] - forward_filled[name] for name in columns}
        return forward.bfill(), _Filled(forward_filled=forward_filled, edge_filled=edges)
    if config.missing == "keep":
        # Nothing is filled here: a caller who splits fills each part (fill_split).
        return frame, _Filled(left_missing=dict(missing))
    keep = ~was_missing.any(axis=1)  # drop
    rows_dropped = int((~keep).sum())
    notes.append(
        f"dropping {_count(rows_dropped, 'row')} leaves holes in the {freq!r} time "
        "grid: the index is no longer regular"
    )
    return frame.loc[keep.to_numpy()], _Filled(dropped=dict(missing), rows_dropped=rows_dropped)


def _check_cleaned(frame: pd.DataFrame, config: LoadConfig, source: str) -> None:
    """Enough rows left, and no constant column (a scaler would divide by zero)."""
    if len(frame) < config.min_length:
        raise ValueError(
            f"{source} has {_count(len(frame), 'row')} after cleaning, fewer than "
            f"min_length={config.min_length}; load a longer range, resample less coarsely "
            "or lower min_length"
        )
    for name in config.columns:
        column = frame[name].to_numpy()
        # nanmax/nanmin: under the policy "keep" the column may still hold NaN.
        if np.nanmax(column) == np.nanmin(column):
            raise ValueError(
                f"column {name!r} in {source} is constant (every value is "
                f"{float(column[0])!r}); a scaler would divide by zero; drop the column "
                "or choose another target"
            )


_TEXT_PROBE = 1 << 16  # bytes read to tell a text file from a binary one
_SEPARATORS = (",", ";", "\t", "|")
# A cell that reads as a date or a time of day (a header cell like this is data, not a name).
_DATE_LIKE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|^\d{1,2}:\d{2}")


def check_text_file(path: Path) -> None:
    """Check that `path` is a readable UTF-8 text file (its first 64 KiB are read).

    Args:
        path: The file.

    Raises:
        ValueError: The file does not exist, is a folder or another non-regular file, cannot
            be read, holds NUL bytes, or is not UTF-8; the message names the fix.

    """
    if not path.exists():
        raise ValueError(f"{path} does not exist; pass the path of an existing CSV file")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file; pass the path of a CSV file in it")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; pass the path of a CSV file")
    try:
        with path.open("rb") as handle:
            head = handle.read(_TEXT_PROBE)
    except PermissionError:
        raise ValueError(
            f"cannot read {path}: permission denied; make it readable (chmod u+r) or pass "
            "another file"
        ) from None
    except OSError as error:
        raise ValueError(
            f"cannot read {path}: {error.strerror or error}; check the file or the disk"
        ) from None
    if b"\x00" in head:
        raise ValueError(
            f"{path} is not a text file (it holds NUL bytes at byte {head.index(0)}); pass a "
            "CSV file"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if len(head) < _TEXT_PROBE or error.start < len(head) - 4:  # not cut by the probe
            raise ValueError(
                f"{path} is not UTF-8 text (byte {head[error.start]:#04x} at position "
                f"{error.start}); convert it to UTF-8 or pass a CSV file"
            ) from None


def _column_names(count: int) -> list[str]:
    """The names of the columns of a file without a header line: '1', '2', ..."""
    return [str(number) for number in range(1, count + 1)]


def _other_separator(first: str, sep: str) -> str | None:
    """The separator that splits a one-column header line into columns, if any."""
    try:
        found = csv.Sniffer().sniff(first, delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        found = None
    if found is not None and found != sep and found in first:
        return found
    return next((other for other in _SEPARATORS if other != sep and other in first), None)


def read_header(path: Path, sep: str, *, header: bool = True) -> list[str]:
    """Return the column names of a file as pandas names them ('1', '2', ... without header).

    Args:
        path: The file.
        sep: Its field separator.
        header: Whether its first line names the columns.

    Returns:
        The column names.

    Raises:
        ValueError: The file is not readable text, is empty, or its header line is one
            column that another separator would split (the message names it).
    """
    check_text_file(path)
    first = _first_line(path)
    try:
        names = pd.read_csv(
            path,
            sep=sep,
            nrows=0 if header else 1,
            header=0 if header else None,
            encoding="utf-8-sig",
        ).columns
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; expected a header line and data rows") from None
    except pd.errors.ParserError as error:
        raise ValueError(f"{path} cannot be read as a CSV file ({error}); fix the file") from None
    if len(names) == 1:
        other = _other_separator(first, sep)
        if other is not None:
            raise ValueError(
                f"{path} seems to be separated by {other!r}, not {sep!r}: its first line "
                f"{first[:60]!r} is one column; pass sep={other!r}"
            )
    if not header:
        return _column_names(len(names))
    _check_header_is_names(path, sep)
    # pandas renames a repeated name ('A', 'A.1'): which of the two is the series is a guess
    raw = next(csv.reader([first.lstrip("\ufeff")], delimiter=sep))
    seen: dict[str, int] = {}
    for position, name in enumerate(cell.strip() for cell in raw):
        if name in seen:
            raise ValueError(
                f"the header of {path} names column {name!r} twice (columns {seen[name] + 1} "
                f"and {position + 1}); give every column its own name"
            )
        seen[name] = position
    return [str(name) for name in names]


def _check_field_counts(path: Path, sep: str, width: int) -> None:
    """Raise at the first line whose number of fields is not the header's ``width``.

    pandas drops the extra fields of a row silently when only some columns are read, so a
    decimal comma in a ','-separated file would shift the values without a word.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        for row in reader:
            if row and len(row) != width:
                raise ValueError(
                    f"line {reader.line_num} of {path} has {len(row)} fields where the header "
                    f"has {width} "
                    f"({sep.join(row)[:60]!r}); fix that line (a decimal comma in a "
                    f"{sep!r}-separated file? then pass sep=';' and decimal=','), or pass the "
                    "file's separator as sep"
                )


def _check_header_is_names(path: Path, sep: str) -> None:
    """Raise when the first line holds a timestamp and numbers: data, not column names."""
    cells = [cell.strip().strip('"') for cell in _first_line(path).split(sep)]
    if len(cells) < 2:
        return
    dates = [cell for cell in cells if _DATE_LIKE.match(cell)]
    numbers = [cell for cell in cells if cell not in dates]

    def is_number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    if numbers and all(is_number(cell) for cell in numbers):
        what = "a timestamp and numbers" if dates else "numbers only"
        raise ValueError(
            f"the first line of {path} ({_first_line(path)[:60]!r}) holds {what}: it is "
            "data, not column names; pass header=False to read it as data, "
            f"with the columns named by position ({', '.join(repr(n) for n in _column_names(3))}"
            ", ...)"
        )


def _read_table(
    path: Path,
    config: LoadConfig,
    *,
    time_cols: Sequence[str],
    header: Sequence[str],
) -> pd.DataFrame:
    """Read the time columns as text and the value columns as numbers where they parse."""
    value_cols = list(config.columns)
    wanted = list(time_cols) + value_cols
    table = _read_csv(
        path,
        config.sep,
        decimal=config.decimal,
        header=0 if config.header else None,
        names=None if config.header else list(header),
        usecols=[name for name in header if name in wanted],
        dtype={name: str for name in time_cols},
        # Markers only on the value columns: an empty timestamp must be an error.
        na_values={name: list(config.missing_markers) for name in value_cols},
        low_memory=False,
    )
    if table.empty:
        raise ValueError(f"{path} has a header but no data rows; expected at least one row")
    return table


def _read_csv(path: Path, sep: str, **options: Any) -> pd.DataFrame:
    """``pd.read_csv`` of a file the loaders read, its parse errors said in words."""
    try:
        # no default NaN words; a byte-order mark is not part of the first name
        return pd.read_csv(path, sep=sep, keep_default_na=False, encoding="utf-8-sig", **options)
    except pd.errors.ParserError as error:
        raise ValueError(
            f"{path} cannot be read as a CSV file separated by {sep!r} ({error}); fix that "
            "line, or pass the file's separator as sep"
        ) from None


def _load_file(
    path: str | os.PathLike[str],
    config: LoadConfig,
    *,
    index_name: str | None = None,
    time_label: str | None = None,
    format_fixed: bool = False,
) -> LoadedSeries:
    """load_csv with the knobs the format loaders need."""
    path = Path(path)
    if config.decimal == config.sep:
        raise ValueError(
            f"decimal and sep are both {config.sep!r}, so {path} cannot be split into "
            "columns; a file with decimal=',' is usually separated by ';': pass sep=';'"
        )
    header = read_header(path, config.sep, header=config.header)
    if config.time_col is None and header[0] in config.columns:
        return _load_untimed(path, config, header)
    time_col = config.time_col if config.time_col is not None else header[0]
    if time_col not in header:
        raise ValueError(
            f"time column {time_col!r} not found in {path}; available columns: "
            f"{_describe_columns(header)}; pass time_col from that list"
        )
    _check_columns(config.columns, [name for name in header if name != time_col], str(path))
    if not format_fixed:  # a plain CSV (the format loaders' files are read as they are)
        _check_field_counts(path, config.sep, len(header))
    table = _read_table(path, config, time_cols=(time_col,), header=header)
    time = parse_time_column(
        table[time_col],
        label=time_label or f"column {time_col!r}",
        time_format=config.time_format,
        format_fixed=format_fixed,
        time_zone=config.time_zone,
    )
    return _clean(
        time=time,
        table=table,
        config=config,
        source=str(path),
        index_name=index_name or time_col,
    )


def _load_untimed(path: Path, config: LoadConfig, header: list[str]) -> LoadedSeries:
    """A file whose first column is a value column, without a time column.

    Its rows are numbered as steps from 0, as an array's readings are.
    """
    _check_columns(config.columns, header, str(path))
    _check_field_counts(path, config.sep, len(header))
    table = _read_table(path, config, time_cols=(), header=header)
    steps = pd.Index(np.arange(len(table), dtype=np.int64))
    # no name: a model fitted on it has no time column, and its readings none either
    return _clean(time=steps, table=table, config=config, source=str(path), index_name=None)


# --------------------------------------------------------------------------- new readings


def _text_table(path: Path, sep: str, header: bool) -> pd.DataFrame:
    """A CSV of readings as text cells, with the loader's checks (separator, header)."""
    names = read_header(path, sep, header=header)
    frame = _read_csv(
        path, sep, header=0 if header else None, names=None if header else names, dtype=str
    )
    if frame.empty:
        raise ValueError(f"{path} holds no readings; pass a CSV with at least one row")
    return frame


def _reading_columns(
    path: Path,
    others: list[str],
    columns: Sequence[str],
    series_id: str,
    targets: Sequence[str] | None,
) -> list[str]:
    """The value columns of a readings file: given, or told by the model's and the id."""
    if targets is None:
        if len(columns) == 1:
            candidates = [c for c in (series_id, columns[0]) if c in others]
            chosen = candidates[:1] or (others if len(others) == 1 else [])
        else:
            chosen = [c for c in columns if c in others]
        if not chosen or len(chosen) != len(columns):
            raise ValueError(
                f"cannot tell which column(s) of {path} hold the readings (columns: "
                f"{others}); the model reads {len(columns)} value(s) per reading, pass target"
            )
        return chosen
    missing = [c for c in targets if c not in others]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; its columns are {others}")
    return list(targets)


def read_readings(
    path: str | os.PathLike[str],
    *,
    series_id: str,
    columns: Sequence[str],
    time_col: str | None = None,
    targets: Sequence[str] | None = None,
    sep: str = ",",
    header: bool = True,
    time_format: str | None = None,
    time_zone: str | None = None,
) -> tuple[np.ndarray, list[Any] | None]:
    """New readings of one series from a CSV file, as ``lstmlab observe`` takes them.

    The time column is ``time_col``, else the first column when the file has more columns
    than the model reads; the value columns are ``targets``, else the model's ``columns``
    (or, for one, the series' id or the only other column). Timestamps stay text for
    ``Forecaster.observe`` to parse with the readings' rules (``lstmlab.data.calendar``);
    with ``time_format`` or ``time_zone`` they are parsed here as a file's time column is
    (``parse_time_column``).

    Args:
        path: the CSV file (``check_text_file`` it first).
        series_id: the series, which may name its value column.
        columns: the value columns the model reads.
        time_col: the time column; ``None`` as above.
        targets: the value columns; ``None`` as above.
        sep: the field separator.
        header: whether the first line names the columns (else ``'1'``, ``'2'``, ...).
        time_format: a strptime format of the timestamps.
        time_zone: the zone of local timestamps.

    Returns:
        ``(values, times)``: ``(readings, columns)`` float64, and one timestamp per reading
        (text, timestamps or step numbers), or ``None`` without a time column.

    Raises:
        ValueError: an unreadable file, no rows, an unknown column, a cell that is not a
            number, or a timestamp ``parse_time_column`` refuses.
    """
    path = Path(path)
    frame = _text_table(path, sep, header)
    if time_col is None and len(frame.columns) > len(columns):
        time_col = str(frame.columns[0])
    if time_col is not None and time_col not in frame.columns:
        raise ValueError(
            f"{path} has no time column {time_col!r} (columns: {list(frame.columns)}); pass "
            "time_col"
        )
    others = [str(c) for c in frame.columns if c != time_col]
    chosen = _reading_columns(path, others, columns, series_id, targets)
    try:
        values = frame[chosen].apply(lambda cells: cells.str.strip()).to_numpy(np.float64)
    except ValueError:
        raise ValueError(
            f"{path}: the column(s) {chosen} hold text that is not a number; fix the file"
        ) from None
    if time_col is None:
        return values, None
    stamps = frame[time_col].astype(str).str.strip().tolist()
    if time_format is None and time_zone is None:
        return values, stamps  # Forecaster.observe parses them (lstmlab.data.calendar)
    # a format or a zone: the one parser of a file's time column, as fit reads it
    parsed = parse_time_column(
        pd.Series(stamps),
        label=f"column {time_col!r} of {path}",
        time_format=time_format,
        time_zone=time_zone,
    )
    return values, list(parsed)  # timestamps (aware in the zone), or step numbers


# --------------------------------------------------------------------------- entry points


def load_csv(path: str | os.PathLike[str], config: LoadConfig) -> LoadedSeries:
    """Load any CSV file through the cleaning pipeline.

    Args:
        path: The file.
        config: Which columns, the separator and decimal mark, and the cleaning policy.
            `config.time_col` None means the first column.

    Returns:
        The cleaned series and its report; the frame's index is named after the time column.

    Raises:
        ValueError: On an unknown column, an unparseable timestamp or number, unsorted or
            duplicated timestamps, an irregular index without `resample`, missing values
            under policy "error", a series shorter than `min_length`, or a constant column.

    """
    return _load_file(path, config)


def load_frame(frame: pd.DataFrame, config: LoadConfig) -> LoadedSeries:
    """Load a DataFrame through the same cleaning pipeline as `load_csv`.

    Args:
        frame: The table; numeric columns are taken as they are (NaN is missing), text
            columns are parsed like file cells (`config.decimal`, `config.missing_markers`).
        config: Which columns and the cleaning policy; `config.time_col` None means the
            index, which must then hold timestamps.

    Returns:
        The cleaned series and its report (source "DataFrame").

    Raises:
        ValueError: As `load_csv`; also when `time_col` is None and the index does not
            hold timestamps.

    Examples:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"day": ["2024-01-01", "2024-01-02", "2024-01-03"],
        ...                       "load": [1.0, None, 3.0]})
        >>> loaded = load_frame(table, LoadConfig(time_col="day", targets=("load",)))
        >>> loaded.target_values()[:, 0].tolist(), loaded.freq
        ([1.0, 2.0, 3.0], 'D')

    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"load_frame needs a pandas DataFrame, got {type(frame).__name__}; "
            "wrap the data in pd.DataFrame(...)"
        )
    source = "DataFrame"
    available = [str(name) for name in frame.columns]
    if config.time_col is None:
        time_values = frame.index.to_series(index=pd.RangeIndex(len(frame)))
        label = "index"
        dtype = time_values.dtype
        if not (
            pd.api.types.is_datetime64_any_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or (pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))
        ):
            raise ValueError(
                f"the DataFrame's index holds {frame.index.dtype} values, neither timestamps "
                "nor step numbers; pass time_col naming the time column, or set a "
                "DatetimeIndex (or an index of whole step numbers)"
            )
        value_available = available
    else:
        if config.time_col not in available:
            raise ValueError(
                f"time column {config.time_col!r} not found in {source}; available columns: "
                f"{_describe_columns(available)}; pass time_col from that list"
            )
        time_values = frame[config.time_col].reset_index(drop=True)
        label = f"column {config.time_col!r}"
        value_available = [name for name in available if name != config.time_col]
    _check_columns(config.columns, value_available, source)
    if len(frame) == 0:
        raise ValueError("the DataFrame has no rows; expected at least one row")
    time = parse_time_column(
        time_values,
        label=label,
        time_format=config.time_format,
        format_fixed=False,
        time_zone=config.time_zone,
    )
    table = frame.loc[:, list(config.columns)].reset_index(drop=True)
    index_name = config.time_col or (str(frame.index.name) if frame.index.name else "time")
    return _clean(time=time, table=table, config=config, source=source, index_name=index_name)


def load_household_power(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] = ("Global_active_power",),
    features: Sequence[str] = (),
    resample: str | None = None,
    aggregation: Aggregation = "sum",
    missing: MissingPolicy = "interpolate",
    sort: bool = False,
    min_length: int = 2,
    dtype: Literal["float32", "float64"] = "float64",
) -> LoadedSeries:
    """Load the UCI "Individual household electric power consumption" file, original format.

    The format: `;`-separated, header ``Date;Time;Global_active_power;...;Sub_metering_3``,
    `Date` as dd/mm/yyyy and `Time` as hh:mm:ss (parsed with that explicit format, never by
    guessing the day order), `?` for a missing value, one row per minute. The frequency is
    declared as one minute, so absent minutes are filled as missing and counted.

    Args:
        path: The file (the full ``household_power_consumption.txt`` or an excerpt).
        columns: The target columns.
        features: Extra input columns.
        resample: Target frequency, e.g. "h" or "D"; None keeps minutes.
        aggregation: "sum" (energy per bin; the default) or "mean".
        missing: Missing-value policy, as in `LoadConfig`.
        sort: Sort unsorted rows instead of raising.
        min_length: Fewest rows after cleaning.
        dtype: "float64" or "float32".

    Returns:
        The cleaned series; the index is named "datetime".

    Raises:
        ValueError: When the file is not in this format, or as `load_csv`.

    """
    path = Path(path)
    _check_header_start(path, "Date;Time;", "household power", "Date;Time;Global_active_power")
    config = LoadConfig(
        time_col="Date",
        targets=tuple(_names("columns", columns)),
        features=tuple(_names("features", features)),
        freq="min",
        resample=resample,
        aggregation=aggregation,
        missing=missing,
        sep=";",
        decimal=".",
        time_format=_HOUSEHOLD_TIME_FORMAT,
        missing_markers=_HOUSEHOLD_MARKERS,
        sort=sort,
        min_length=min_length,
        dtype=dtype,
    )
    header = read_header(path, ";")
    _check_columns(
        config.columns, [name for name in header if name not in ("Date", "Time")], str(path)
    )
    table = _read_table(path, config, time_cols=("Date", "Time"), header=header)
    stamps = pd.Series(cell_text(table["Date"]) + " " + cell_text(table["Time"]))
    time = parse_time_column(
        stamps,
        label="columns 'Date' and 'Time'",
        time_format=_HOUSEHOLD_TIME_FORMAT,
        format_fixed=True,
    )
    return _clean(time=time, table=table, config=config, source=str(path), index_name="datetime")


def load_household_days(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] = ("Global_active_power",),
    features: Sequence[str] = (),
    resample: str | None = None,
    aggregation: Aggregation = "sum",
    missing: MissingPolicy = "interpolate",
    sort: bool = False,
    min_length: int = 2,
    dtype: Literal["float32", "float64"] = "float64",
) -> LoadedSeries:
    """Load the per-day household file (``datetime,Global_active_power,...,sub_metering_4``).

    Args:
        path: The file (dates yyyy-mm-dd, one row per day).
        columns: The target columns.
        features: Extra input columns.
        resample: Target frequency, e.g. "W" or "MS"; None keeps days.
        aggregation: "sum" (the default) or "mean".
        missing: Missing-value policy, as in `LoadConfig`.
        sort: Sort unsorted rows instead of raising.
        min_length: Fewest rows after cleaning.
        dtype: "float64" or "float32".

    Returns:
        The cleaned series; the index is named "datetime".

    Raises:
        ValueError: When the file is not in this format, or as `load_csv`.

    """
    path = Path(path)
    _check_header_start(path, "datetime,", "household per-day", "datetime,Global_active_power,...")
    config = LoadConfig(
        time_col="datetime",
        targets=tuple(_names("columns", columns)),
        features=tuple(_names("features", features)),
        freq="D",
        resample=resample,
        aggregation=aggregation,
        missing=missing,
        time_format="%Y-%m-%d",
        sort=sort,
        min_length=min_length,
        dtype=dtype,
    )
    return _load_file(path, config, format_fixed=True)


def _client_name(client: str | int) -> str:
    """1 -> 'MT_001'; names pass through."""
    if isinstance(client, bool) or not isinstance(client, int | str):
        raise ValueError(
            f"a client is a name like 'MT_001' or a number like 1, got {client!r}; "
            "pass one of those"
        )
    return f"MT_{client:03d}" if isinstance(client, int) else client


def load_electricity_diagrams(
    path: str | os.PathLike[str],
    *,
    clients: Sequence[str | int] | None = None,
    resample: str | None = None,
    aggregation: Aggregation = "mean",
    missing: MissingPolicy = "interpolate",
    sort: bool = False,
    min_length: int = 2,
    dtype: Literal["float32", "float64"] = "float64",
) -> LoadedSeries:
    """Load the UCI "ElectricityLoadDiagrams20112014" file ``LD2011_2014.txt``.

    The format: `;`-separated, a quoted timestamp first column with an empty name (header
    ``"";"MT_001";"MT_002";...``), ``,`` as the decimal mark, one column per client
    (MT_001..MT_370) and one reading per 15 minutes, in kW. Each client is a separate
    series: the chosen clients are the targets (see `series_arrays`). Only the chosen
    columns are read, so loading a few clients of the full file stays light.

    Args:
        path: The file, e.g. from `download_electricity_diagrams`.
        clients: Client names ("MT_001") or numbers (1); None loads all of them.
        resample: Target frequency, e.g. "h" or "D"; None keeps 15 minutes.
        aggregation: "mean" (kW stays kW; the default) or "sum".
        missing: Missing-value policy, as in `LoadConfig`.
        sort: Sort unsorted rows instead of raising.
        min_length: Fewest rows after cleaning.
        dtype: "float64" or "float32".

    Returns:
        The cleaned series, one target column per client; the index is named "time".

    Raises:
        ValueError: When the file is not in this format, a client is unknown, or as
            `load_csv` (a client whose readings are all equal, e.g. all 0 over the range,
            is a constant column).

    """
    path = Path(path)
    first = _first_line(path)
    if not (first.startswith('"";') or first.startswith(";")):
        raise ValueError(
            f"{path} is not in the LD2011_2014 format: expected a header starting "
            f'\'"";"MT_001"\', got {first[:60]!r}; use load_csv for other files'
        )
    header = read_header(path, ";")
    available = header[1:]
    names = (
        available
        if clients is None
        else [_client_name(client) for client in _names_or_ints(clients)]
    )
    _check_columns(names, available, str(path))
    config = LoadConfig(
        time_col=header[0],
        targets=tuple(names),
        freq="15min",
        resample=resample,
        aggregation=aggregation,
        missing=missing,
        sep=";",
        decimal=",",
        time_format=_ELECTRICITY_TIME_FORMAT,
        missing_markers=("", "?"),
        sort=sort,
        min_length=min_length,
        dtype=dtype,
    )
    return _load_file(path, config, index_name="time", time_label="column 1", format_fixed=True)


def _names_or_ints(clients: Any) -> list[Any]:
    """Return the clients as a list, rejecting a bare string."""
    if isinstance(clients, str | int):
        raise ValueError(
            f"clients must be a sequence of clients, got {clients!r}; pass clients=({clients!r},)"
        )
    return list(clients)


def _first_line(path: Path) -> str:
    """Return the header line of a text file (checked to be one; no byte-order mark)."""
    check_text_file(path)
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        return handle.readline().strip()


def sniff_format(path: str | os.PathLike[str]) -> str:
    """Tell a file's format from its header line, as ``load_series(format="auto")`` does.

    Args:
        path: The file.

    Returns:
        "household", "household-days", "electricity" or "csv".

    Raises:
        ValueError: The file does not exist, is a folder, or is not UTF-8 text.

    """
    first = _first_line(Path(path))
    if first.startswith("Date;Time;"):
        return "household"
    if first.startswith("datetime,Global_active_power"):
        return "household-days"
    if first.startswith(('"";"MT_', ';"MT_', ";MT_")):
        return "electricity"
    return "csv"


def _check_header_start(path: Path, start: str, what: str, example: str) -> None:
    """Raise when the header line does not start as the format requires."""
    first = _first_line(path)
    if not first.startswith(start):
        raise ValueError(
            f"{path} is not in the {what} format: expected a header starting {example!r}, "
            f"got {first[:60]!r}; use load_csv for other files"
        )


def load_series(
    path: str | os.PathLike[str],
    *,
    format: Literal["auto", "csv", "household", "household-days", "electricity"] = "auto",
    config: LoadConfig | None = None,
    **options: Any,
) -> LoadedSeries:
    """Load a file, dispatching on its format.

    Args:
        path: The file.
        format: "household" (`load_household_power`), "household-days"
            (`load_household_days`), "electricity" (`load_electricity_diagrams`), "csv"
            (`load_csv`, needs `config`) or "auto": sniff the header line.
        config: The `LoadConfig` of a plain CSV; only for format "csv" (or "auto" finding
            a plain CSV).
        **options: Keyword arguments of the format's loader (not for "csv").

    Returns:
        The cleaned series and its report.

    Raises:
        ValueError: On an unknown format, a plain CSV without `config`, `config` given to
            a format loader, or as the chosen loader.

    """
    check_choice("format", format, _FORMATS)
    path = Path(path)
    if format == "auto":
        format = sniff_format(path)
    if format == "csv":
        if config is None:
            raise ValueError(
                f"{path} is a plain CSV, which needs a LoadConfig naming its columns; pass "
                "config=LoadConfig(time_col=..., targets=(...,))"
            )
        if options:
            raise ValueError(
                f"options {sorted(options)} are for the format loaders, not a plain CSV; "
                "put the settings in config"
            )
        return load_csv(path, config)
    if config is not None:
        raise ValueError(
            f"config is for plain CSV files, but {path} is in the {format!r} format; pass "
            "that loader's options as keywords instead (e.g. resample='h')"
        )
    loader = {
        "household": load_household_power,
        "household-days": load_household_days,
        "electricity": load_electricity_diagrams,
    }[format]
    return loader(path, **options)


# --------------------------------------------------------------------------- download


class DownloadError(RuntimeError):
    """A data set could not be downloaded; the message says where to place it by hand."""


def default_cache_dir() -> Path:
    """Return the default download cache, ``~/.cache/lstmlab``."""
    return Path.home() / ".cache" / "lstmlab"


def download_electricity_diagrams(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    url: str = ELECTRICITY_URL,
    timeout: float = 20.0,
) -> Path:
    """Fetch and unzip ``LD2011_2014.txt`` into a cache folder, or reuse the cached file.

    Args:
        cache_dir: The cache folder; None means ``~/.cache/lstmlab``.
        url: The archive (the public UCI zip by default).
        timeout: Seconds to wait on the connection and each read.

    Returns:
        The path of ``LD2011_2014.txt`` in the cache folder.

    Raises:
        DownloadError: When the network is unavailable, the download fails, or the
            archive does not hold the file; the message names the URL and the path where
            the file can be placed by hand.

    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / ELECTRICITY_FILE
    if target.is_file() and target.stat().st_size > 0:
        return target
    by_hand = (
        f"download {url} on a machine with network access, unzip it and place "
        f"{ELECTRICITY_FILE} at {target} (it is then reused), or pass the file's path to "
        "load_electricity_diagrams"
    )
    archive = folder / "electricityloaddiagrams20112014.zip.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as sink:
            shutil.copyfileobj(response, sink, length=1 << 20)
    except OSError as error:  # URLError, HTTPError, timeouts and disk errors
        archive.unlink(missing_ok=True)
        reason = (
            error.reason
            if isinstance(error, urllib.error.URLError)
            and not isinstance(error, urllib.error.HTTPError)
            else error
        )
        raise DownloadError(
            f"could not download {url} ({reason}); the network may be unavailable; fix: {by_hand}"
        ) from error
    partial = folder / (ELECTRICITY_FILE + ".part")
    try:
        with zipfile.ZipFile(archive) as bundle:
            member = next(
                (
                    name
                    for name in bundle.namelist()
                    if PurePosixPath(name).name == ELECTRICITY_FILE
                ),
                None,
            )
            if member is None:
                raise DownloadError(
                    f"the archive from {url} holds no {ELECTRICITY_FILE} (it holds "
                    f"{bundle.namelist()[:5]}); fix: {by_hand}"
                )
            with bundle.open(member) as packed, partial.open("wb") as sink:
                shutil.copyfileobj(packed, sink, length=1 << 20)
        os.replace(partial, target)  # atomic: a half-written file is never reused
    except (zipfile.BadZipFile, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"the file from {url} is not a readable zip archive ({error}); fix: {by_hand}"
        ) from error
    finally:
        archive.unlink(missing_ok=True)
    return target
