"""Data: loaders for real files, sliding windows, stateful streams, official batches, checks."""

from lstmlab.data.checks import (
    as_float_array,
    as_float_samples,
    check_finite,
    check_positive_int,
)
from lstmlab.data.loaders import (
    LoadConfig,
    LoadedSeries,
    LoadReport,
    load_csv,
    load_electricity_diagrams,
    load_frame,
    load_household_days,
    load_household_power,
    load_series,
    series_arrays,
)
from lstmlab.data.official import OfficialBatches, make_official_batches
from lstmlab.data.streams import (
    StreamBatches,
    TrimReport,
    make_series_streams,
    make_stream_batches,
)
from lstmlab.data.windows import Windows, make_windows

__all__ = [
    # checks
    "as_float_array",
    "as_float_samples",
    "check_finite",
    "check_positive_int",
    # loaders
    "LoadConfig",
    "LoadReport",
    "LoadedSeries",
    "load_csv",
    "load_electricity_diagrams",
    "load_frame",
    "load_household_days",
    "load_household_power",
    "load_series",
    "series_arrays",
    # official
    "OfficialBatches",
    "make_official_batches",
    # streams
    "StreamBatches",
    "TrimReport",
    "make_series_streams",
    "make_stream_batches",
    # windows
    "Windows",
    "make_windows",
]
