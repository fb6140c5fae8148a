"""The catalogue of bad command-line inputs (issue 12): one row per case.

Each row runs ``lstmlab.cli.main`` in this process and asserts the exit code AND a fragment of
the message on stderr, and that no traceback was printed. The input files are small files in
the real formats, written once per module; one tiny model folder (an MLP trained for zero
epochs) serves every command that reads one, copied afresh for each case, and a case that
names the model folder also checks that the refused command changed nothing in it.
"""

import contextlib
import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy

from lstmlab import model_folder
from lstmlab.cli import main
from lstmlab.forecaster import Forecaster
from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import StoreUnavailable
from lstmlab.model_folder import folder_checksum

ROWS = 48
FAST = ["--model", "mlp", "--window", "3", "--epochs", "0", "--seeds", "1", "--quiet"]
FAST += ["--device", "cpu"]


def _frame(rows: int = ROWS) -> pd.DataFrame:
    steps = np.arange(rows + 3)
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=rows + 3, freq="h"),
            "a": np.sin(steps * 0.3) + 2.0,
            "b": np.cos(steps * 0.2) * 3.0 + 5.0,
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The input files, in the real formats, each with one thing wrong (or none)."""
    folder = tmp_path_factory.mktemp("data")
    frame = _frame()
    train = frame.iloc[:ROWS]
    train.to_csv(folder / "train.csv", index=False)
    new = frame.iloc[ROWS:].rename(columns={"a": "value"})[["time", "value"]]
    new.to_csv(folder / "new.csv", index=False)
    train.to_csv(folder / "semi.csv", index=False, sep=";")
    train.to_csv(folder / "nohead.csv", index=False, header=False)
    steps = train.assign(time=np.arange(1, len(train) + 1))  # a step index, not timestamps
    steps.to_csv(folder / "steps.csv", index=False)
    steps.to_csv(folder / "steps_nohead.csv", index=False, header=False)
    steps.assign(time=steps["time"] * 2).drop(index=[5]).to_csv(folder / "steps2.csv", index=False)
    steps.assign(time=steps["time"] * 2 + (steps.index == 7)).to_csv(
        folder / "steps_off.csv", index=False
    )
    stamps = train["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    train.assign(
        time=[s + ("+01:00" if i < 20 else "+02:00") for i, s in enumerate(stamps)]
    ).to_csv(folder / "mixtz.csv", index=False)
    train.assign(time=[s + ("+01:00" if i < 20 else "") for i, s in enumerate(stamps)]).to_csv(
        folder / "awarenaive.csv", index=False
    )
    train.assign(time=train["time"].dt.strftime("%d/%m/%Y %H:%M")).to_csv(
        folder / "slash.csv", index=False
    )
    outlier = train.copy()
    outlier.loc[10, "a"] = 1e30
    outlier.to_csv(folder / "outlier.csv", index=False)
    train.assign(a=1.5).to_csv(folder / "constant.csv", index=False)
    train.iloc[[1, 0, *range(2, ROWS)]].to_csv(folder / "unsorted.csv", index=False)
    train.iloc[[0, *range(ROWS)]].to_csv(folder / "duplicated.csv", index=False)
    holed = train.copy()
    holed.loc[10, "a"] = np.nan
    holed.to_csv(folder / "holed.csv", index=False)
    text = (folder / "train.csv").read_text().splitlines()
    (folder / "ragged.csv").write_text("\n".join([*text[:5], text[5] + ",7,8", *text[6:]]) + "\n")
    (folder / "latin1.csv").write_bytes("time,a,b\n2024-01-01,caf\u00e9,1\n".encode("latin-1"))
    (folder / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 4)
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("time,a,b\n")
    (folder / "twice.csv").write_text("time,a,a\n2024-01-01 00:00:00,1,2\n")
    train.assign(a=np.arange(ROWS, dtype=np.int64) + 2**53 + 1).to_csv(
        folder / "huge.csv", index=False
    )
    (folder / "notanumber.csv").write_text(f"time,value\n{frame['time'].iloc[ROWS]},abc\n")
    later = frame["time"].iloc[ROWS]
    (folder / "implausible.csv").write_text(f"time,value\n{later},1e6\n")
    (folder / "overflow.csv").write_text(f"time,value\n{later},1e39\n")
    (folder / "badformat.csv").write_text(f"time,value\n{later:%Y-%m-%d %H:%M},2.0\n")
    (folder / "garbage.keras").write_bytes(b"not a zip archive at all")
    (folder / "empty_value.csv").write_text(f"time,value\n{later},\n")
    (folder / "nan_value.csv").write_text(f"time,value\n{later},nan\n")
    (folder / "garbage_time.csv").write_text("time,value\nyesterday,1\n")
    (folder / "aware.csv").write_text(f"time,value\n{later}+01:00,2.0\n")
    tabbed = (folder / "train.csv").read_text().replace(",", "\t")
    (folder / "tab.csv").write_text(tabbed)
    return folder


@pytest.fixture(scope="module")
def model(data, tmp_path_factory) -> Path:
    """One tiny model folder (series a, hourly), fitted once for the module."""
    path = tmp_path_factory.mktemp("models") / "m"
    argv = ["fit", str(data / "train.csv"), "--target", "a", *FAST, "--out", str(path)]
    assert main(argv) == 0
    return path


def _set_weights(folder: Path, change) -> None:
    """Rewrite the weights file with ``change(bytes) -> bytes`` and recompute every checksum,
    as a tool that 'repairs' a folder would: only the content check can catch it."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    entry = config["files"]["weights"]
    data = change((folder / entry["name"]).read_bytes())
    digest = model_folder._sha256(data)
    (folder / entry["name"]).unlink()
    entry.update(name=f"weights.{digest[:16]}.safetensors", sha256=digest, bytes=len(data))
    (folder / entry["name"]).write_bytes(data)
    config.pop("checksum")
    config["checksum"] = model_folder._sha256(model_folder._canonical(config))
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _nan_weights(data: bytes) -> bytes:
    arrays = safetensors.numpy.load(data)
    name = sorted(arrays)[0]
    arrays[name] = np.full_like(arrays[name], np.nan)
    return safetensors.numpy.save(arrays)


def _token_file(text: str, mode: int, folder_mode: int | None = None):
    def setup(paths, monkeypatch):
        path = paths["t"] / "token"
        path.write_text(text)
        path.chmod(mode)
        if folder_mode is not None:
            paths["t"].chmod(folder_mode)

    return setup


def _disk_full_on_save(paths, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(model_folder, "atomic_write_bytes", full)


def _disk_full_in_store(paths, monkeypatch):
    """The store's write goes through, then the disk fills: the transaction must roll back."""
    put_many = SeriesStore.put_many  # every write of states goes through it

    def full(self, *args, **kwargs):
        put_many(self, *args, **kwargs)
        raise StoreUnavailable(f"the disk holding {paths['m']} is full (database or disk is full)")

    monkeypatch.setattr(SeriesStore, "put_many", full)


def _chmod_unreadable(paths, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (paths["d"] / "train.csv").chmod(0)


CASES = [
    # ---- fit: the data file
    ("fit DATA is a folder", ["fit", "{t}", "--target", "a"], 2, "is a folder, not a file"),
    ("fit DATA missing", ["fit", "{d}/nope.csv", "--target", "a"], 2, "does not exist; pass"),
    ("fit DATA empty", ["fit", "{d}/empty.csv", "--target", "a"], 2, "empty.csv is empty"),
    ("fit DATA header only", ["fit", "{d}/header_only.csv", "--target", "a"], 2, "no data rows"),
    ("fit DATA binary", ["fit", "{d}/binary.csv", "--target", "a"], 2, "is not a text file"),
    ("fit DATA not UTF-8", ["fit", "{d}/latin1.csv", "--target", "a"], 2, "is not UTF-8 text"),
    (
        "fit DATA ragged row",
        ["fit", "{d}/ragged.csv", "--target", "a"],
        2,
        "line 6 of",
    ),
    ("fit ; separated", ["fit", "{d}/semi.csv", "--target", "a"], 2, "pass --sep ';'"),
    ("fit no header", ["fit", "{d}/nohead.csv", "--target", "a"], 2, "pass --no-header"),
    (
        "fit numbers-only first line",
        ["fit", "{d}/steps_nohead.csv", "--time-col", "1", "--target", "2"],
        2,
        "holds numbers only: it is data, not column names; pass --no-header",
    ),
    (
        "observe --seq negative",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--seq", "-1"],
        2,
        "seq must be an integer >= 0, got -1",
    ),
    (
        "fit step index with a calendar freq",
        ["fit", "{d}/steps.csv", "--target", "a", "--freq", "h"],
        2,
        "holds step numbers, not timestamps: freq='h' is a calendar rule they cannot follow",
    ),
    (
        "fit step index with a time zone",
        ["fit", "{d}/steps.csv", "--target", "a", "--tz", "Europe/Paris"],
        2,
        "time column 'time' holds step numbers (1, 2, 3, ...), which have no time zone",
    ),
    (
        "fit step index off its stride",
        ["fit", "{d}/steps_off.csv", "--target", "a"],
        2,
        "is not on the grid of steps of 2 that starts at step 2; number the rows evenly",
    ),
    (
        "fit step index with a gap, missing=error",
        ["fit", "{d}/steps2.csv", "--target", "a", "--missing", "error"],
        2,
        "column 'a' 1 (first at step 12)",
    ),
    (
        "fit mixed offsets",
        ["fit", "{d}/mixtz.csv", "--target", "a"],
        2,
        "mixes UTC offsets: row 1 ('2024-01-01 00:00:00+01:00') has +01:00, row 21",
    ),
    (
        "fit --tz an unknown zone",
        ["fit", "{d}/mixtz.csv", "--target", "a", "--tz", "Mars/Olympus"],
        2,
        "time zone 'Mars/Olympus' is unknown; pass an IANA zone name such as 'Europe/Paris'",
    ),
    (
        "fit aware and naive",
        ["fit", "{d}/awarenaive.csv", "--target", "a"],
        2,
        "mixes timestamps with a UTC offset (row 1",
    ),
    ("fit / dates", ["fit", "{d}/slash.csv", "--target", "a"], 2, "pass --time-format, e.g."),
    (
        "fit wrong --time-format",
        ["fit", "{d}/slash.csv", "--target", "a", "--time-format", "%Y-%m-%d"],
        2,
        "which is not a timestamp in the format '%Y-%m-%d'",
    ),
    ("fit unsorted", ["fit", "{d}/unsorted.csv", "--target", "a"], 2, "pass --sort to sort"),
    ("fit duplicated time", ["fit", "{d}/duplicated.csv", "--target", "a"], 2, "duplicated"),
    ("fit constant column", ["fit", "{d}/constant.csv", "--target", "a"], 2, "is constant"),
    ("fit unknown target", ["fit", "{d}/train.csv", "--target", "zz"], 2, "not found in"),
    ("fit target twice", ["fit", "{d}/train.csv", "--target", "a", "a"], 2, "more than once"),
    ("fit time col unknown", ["fit", "{d}/train.csv", "--target", "a", "--time-col", "x"], 2, "x"),
    (
        "fit absurd outlier",
        ["fit", "{d}/outlier.csv", "--target", "a"],
        2,
        "is an absurd outlier",
    ),
    (
        "fit --freq 5min on hourly data",
        ["fit", "{d}/train.csv", "--target", "a", "--freq", "5min"],
        2,
        "the file's most common step is 'h', not '5min': pass --freq 'h'",
    ),
    ("fit --freq unknown", ["fit", "{d}/train.csv", "--target", "a", "--freq", "zz"], 2, "zz"),
    (
        "fit --max-filled above 1",
        ["fit", "{d}/train.csv", "--target", "a", "--max-filled", "2"],
        2,
        "--max-filled must be a share from 0 to 1",
    ),
    (
        "fit --missing drop leaves holes",
        ["fit", "{d}/holed.csv", "--target", "a", "--missing", "drop"],
        2,
        "pass --missing interpolate or --missing ffill",
    ),
    (
        "fit --missing error",
        ["fit", "{d}/holed.csv", "--target", "a", "--missing", "error"],
        2,
        "--missing error but",
    ),
    ("fit --sep two chars", ["fit", "{d}/train.csv", "--target", "a", "--sep", ";;"], 2, "one"),
    # ---- fit: the numbers
    (
        "fit --seed too large",
        ["fit", "{d}/train.csv", "--target", "a", "--seed", "1180591620717411303424"],
        2,
        "--seed must be an integer from 0 to 2147483647",
    ),
    ("fit --seed -1", ["fit", "{d}/train.csv", "--target", "a", "--seed", "-1"], 2, "--seed"),
    (
        "fit --batch-size 0",
        ["fit", "{d}/train.csv", "--target", "a", "--batch-size", "0"],
        2,
        "batch_size must be a positive integer, got 0",
    ),
    (
        "fit --batch-size -1",
        ["fit", "{d}/train.csv", "--target", "a", "--batch-size", "-1"],
        2,
        "-1",
    ),
    ("fit --epochs -1", ["fit", "{d}/train.csv", "--target", "a", "--epochs", "-1"], 2, ">= 0"),
    ("fit --window 0", ["fit", "{d}/train.csv", "--target", "a", "--window", "0"], 2, "window"),
    (
        "fit --window longer than the data",
        ["fit", "{d}/train.csv", "--target", "a", "--window", "100000"],
        2,
        "too few for window 100000",
    ),
    ("fit --units 0", ["fit", "{d}/train.csv", "--target", "a", "--units", "0"], 2, "units[0]"),
    ("fit --seeds 0", ["fit", "{d}/train.csv", "--target", "a", "--seeds", "0"], 2, "seeds"),
    (
        "fit --learning-rate nan",
        ["fit", "{d}/train.csv", "--target", "a", "--learning-rate", "nan"],
        2,
        "learning_rate must be > 0, got nan",
    ),
    (
        "fit DATA names a column twice",
        ["fit", "{d}/twice.csv", "--target", "a"],
        2,
        "names column 'a' twice (columns 2 and 3); give every column its own name",
    ),
    (
        "fit DATA with integers beyond 2**53",
        ["fit", "{d}/huge.csv", "--target", "a"],
        2,
        "holds the integer 9007199254740993, beyond 2**53",
    ),
    (
        "fit --learning-rate beyond float32",
        ["fit", "{d}/train.csv", "--target", "a", "--learning-rate", "1e300"],
        2,
        "learning_rate must be at most 3.4e+38 (float32",
    ),
    (
        "fit --learning-rate that diverges",
        ["fit", "{d}/train.csv", "--target", "a", "--learning-rate", "1e30", "--epochs", "3"],
        2,
        "training diverged: every seed of mlp (difference) ended with non-finite weights",
    ),
    ("fit --freq 0D", ["fit", "{d}/train.csv", "--target", "a", "--freq", "0D"], 2, "step of 0"),
    (
        "fit --epochs x",
        ["fit", "{d}/train.csv", "--target", "a", "--epochs", "x"],
        2,
        "invalid int",
    ),
    (
        "fit --epochs absurd",
        ["fit", "{d}/train.csv", "--target", "a", "--epochs", "100000000000000000000"],
        2,
        "argument --epochs: must be at most 1000000, got 100000000000000000000; pass fewer epochs",
    ),
    (
        "fit --batch-size absurd",
        ["fit", "{d}/train.csv", "--target", "a", "--batch-size", "99999999999"],
        2,
        "argument --batch-size: must be at most 2147483647, got 99999999999; pass a smaller "
        "batch size",
    ),
    (
        "fit --units beyond the memory",
        ["fit", "{d}/train.csv", "--target", "a", "--model", "stateful", "--units", "1000000000"],
        2,
        "GiB for the weights and the optimizer state, more than this machine's",
    ),
    (
        "fit --seeds beyond the memory",
        ["fit", "{d}/train.csv", "--target", "a", "--seeds", "1000000000"],
        2,
        "pass fewer --units or --seeds",
    ),
    (
        "fit --seeds beyond the seeds there are",
        ["fit", "{d}/train.csv", "--target", "a", "--seeds", "100000000000"],
        2,
        "a run of 100000000000 seeds (--seed to --seed + 99999999999) cannot stay within 0 to "
        "2147483647; pass at most 2147483648 seeds",
    ),
    (
        "fit --seed whose run of --seeds passes the largest seed",
        ["fit", "{d}/train.csv", "--target", "a", "--seed", "2147483647", "--seeds", "2"],
        2,
        "--seed must be an integer from 0 to 2147483646 (with 2 seeds the last, --seed + 1, must "
        "be at most 2147483647)",
    ),
    (
        "fit --time-format not a format",
        ["fit", "{d}/train.csv", "--target", "a", "--time-format", "%Q"],
        2,
        "--time-format '%Q' is not a strptime format",
    ),
    (
        "fit --max-filled nan",
        ["fit", "{d}/train.csv", "--target", "a", "--max-filled", "nan"],
        2,
        "--max-filled must be a share from 0 to 1",
    ),
    (
        "fit tab separated",
        ["fit", "{d}/tab.csv", "--target", "a"],
        2,
        "seems to be separated by '\\t', not ','",
    ),
    (
        "fit --time-col names a value column",
        ["fit", "{d}/train.csv", "--target", "a", "--time-col", "b"],
        2,
        "pass --time-format",
    ),
    # ---- fit: where it writes
    (
        "fit --out is a file",
        ["fit", "{d}/train.csv", "--target", "a", "--out", "{d}/train.csv"],
        2,
        "is a file, not a folder",
    ),
    (
        "fit --out holds a model",
        ["fit", "{d}/train.csv", "--target", "a", "--out", "{m}"],
        2,
        "already holds a model; pass --overwrite",
    ),
    (
        "fit --out holds other files",
        ["fit", "{d}/train.csv", "--target", "a", "--out", "{d}"],
        2,
        "exists and is not a model folder",
    ),
    (
        "fit --out below a file",
        ["fit", "{d}/train.csv", "--target", "a", "--out", "{d}/train.csv/m"],
        2,
        "train.csv",
    ),
    (
        "fit onto a full disk",
        ["fit", "{d}/train.csv", "--target", "a"],
        2,
        "is full (No space left on device); nothing was saved: free space and run again",
        _disk_full_on_save,
    ),
    (
        "fit unreadable DATA",
        ["fit", "{d}/train.csv", "--target", "a"],
        2,
        "permission denied",
        _chmod_unreadable,
    ),
    # ---- observe
    (
        "observe a store emptied to 0 bytes",
        ["observe", "--model-dir", "{e}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "has lost its table(s) meta, series, observations, counters (an emptied or damaged "
        "file), but the model folder lists 1 trained series",
    ),
    (
        "observe a store without its observation log",
        ["observe", "--model-dir", "{u}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "has lost its table(s) observations",
    ),
    (
        "observe a damaged stored state",
        ["observe", "--model-dir", "{s}", "--series", "a", "--input", "{d}/new.csv"],
        1,
        "the stored state of series 'a' is unreadable",
    ),
    (
        "observe an id the model does not have",
        ["observe", "--model-dir", "{m}", "--series", "A", "--input", "{d}/new.csv"],
        2,
        "series 'A' is not one of this model's 1 series (did you mean 'a'?); its series: 'a'. "
        "To start a new series from a fresh state, pass --new-series",
    ),
    (
        "observe --input is a folder",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{t}"],
        2,
        "--input: ",
    ),
    (
        "observe --input missing",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/nope.csv"],
        2,
        "does not exist",
    ),
    (
        "observe --input empty",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/empty.csv"],
        2,
        "is empty",
    ),
    (
        "observe --input header only",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/header_only.csv"],
        2,
        "holds no readings",
    ),
    (
        "observe --input binary",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/binary.csv"],
        2,
        "is not a text file",
    ),
    (
        "observe ; separated",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/semi.csv"],
        2,
        "pass --sep ';'",
    ),
    (
        "observe no header",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/nohead.csv"],
        2,
        "pass --no-header",
    ),
    (
        "observe text value",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/notanumber.csv"],
        2,
        "hold text that is not a number",
    ),
    (
        "observe wrong --time-format",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/badformat.csv"]
        + ["--time-format", "%d/%m/%Y"],
        2,
        "not a timestamp in the format '%d/%m/%Y'",
    ),
    (
        "observe empty value cell",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/empty_value.csv"],
        2,
        "hold text that is not a number",
    ),
    (
        "observe NaN reading",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/nan_value.csv"],
        2,
        "readings must be finite",
    ),
    (
        "observe unparseable timestamp",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/garbage_time.csv"],
        2,
        "timestamps could not be parsed",
    ),
    (
        "observe aware after naive",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/aware.csv"],
        2,
        "has naive timestamps (up to 2024-01-02T23:00:00), got aware ones",
    ),
    (
        "observe readings out of time order",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/train.csv"]
        + ["--target", "a"],
        2,
        "is older than the series' last accepted reading and was never accepted here; "
        "readings must arrive in time order",
    ),
    (
        "observe implausible reading",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/implausible.csv"],
        2,
        "plausible",
    ),
    (
        "observe reading beyond float32",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/overflow.csv"]
        + ["--allow-implausible"],
        2,
        "1e+39",
    ),
    (
        "observe --plausible-factor 0",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--plausible-factor", "0"],
        2,
        "--plausible-factor must be a number > 0",
    ),
    (
        "observe --plausible-factor with --allow-implausible",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--plausible-factor", "3", "--allow-implausible"],
        2,
        "pass one of them",
    ),
    (
        "observe series id with NUL",
        ["observe", "--model-dir", "{m}", "--series", "a\x00b", "--input", "{d}/new.csv"],
        2,
        "series id must not hold control characters",
    ),
    (
        "observe series id with a newline",
        ["observe", "--model-dir", "{m}", "--series", "a\nb", "--input", "{d}/new.csv"],
        2,
        "series id must not hold control characters",
    ),
    (
        "observe empty series id",
        ["observe", "--model-dir", "{m}", "--series", "", "--input", "{d}/new.csv"],
        2,
        "series id must be a non-empty string of at most 200 characters",
    ),
    (
        "observe series id too long",
        ["observe", "--model-dir", "{m}", "--series", "x" * 201, "--input", "{d}/new.csv"],
        2,
        "at most 200 characters",
    ),
    (
        "observe --horizon 0",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--horizon", "0"],
        2,
        "horizon must be an integer from 1 to",
    ),
    (
        "observe --horizon huge",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--horizon", "10000000000"],
        2,
        "horizon must be an integer from 1 to",
    ),
    (
        "observe unknown --target",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--target", "zz"],
        2,
        "has no column(s) ['zz']",
    ),
    (
        "observe unknown --time-col",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"]
        + ["--time-col", "zz"],
        2,
        "has no time column 'zz'",
    ),
    (
        "observe without --input or --reset",
        ["observe", "--model-dir", "{m}", "--series", "a"],
        2,
        "observe needs --input",
    ),
    (
        "observe --reset of an unknown series",
        ["observe", "--model-dir", "{m}", "--series", "nobody", "--reset"],
        2,
        "nothing to reset",
    ),
    (
        "observe no model folder",
        ["observe", "--model-dir", "{t}/none", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "no model folder at",
    ),
    (
        "observe --model-dir is a file",
        ["observe", "--model-dir", "{d}/train.csv", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "no model folder at",
    ),
    (
        "observe --model-dir not a model folder",
        ["observe", "--model-dir", "{d}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "config.json is missing",
    ),
    (
        "observe garbage weights behind a recomputed checksum",
        ["observe", "--model-dir", "{g}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "is not a readable safetensors file",
    ),
    (
        "observe NaN weights behind a recomputed checksum",
        ["observe", "--model-dir", "{n}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "NaN or infinite value(s)",
    ),
    (
        "observe onto a full disk",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv"],
        2,
        "is full (database or disk is full) (nothing was saved)",
        _disk_full_in_store,
    ),
    (
        "observe --reset onto a full disk",
        ["observe", "--model-dir", "{m}", "--series", "a", "--input", "{d}/new.csv", "--reset"],
        2,
        "is full (database or disk is full) (nothing was saved)",
        _disk_full_in_store,
    ),
    # ---- serve (every case fails before a socket is opened)
    ("serve --port -1", ["serve", "--model-dir", "{m}", "--port", "-1"], 2, "--port must be"),
    ("serve --port 70000", ["serve", "--model-dir", "{m}", "--port", "70000"], 2, "0 to 65535"),
    (
        "serve --max-readings absurd",
        ["serve", "--model-dir", "{m}", "--max-readings", "10000000"],
        2,
        "argument --max-readings: must be at most 1000000, got 10000000; pass fewer",
    ),
    (
        "serve --max-series absurd",
        ["serve", "--model-dir", "{m}", "--max-series", "9223372036854775808"],
        2,
        "argument --max-series: must be at most 2147483647, got 9223372036854775808; pass "
        "fewer, or leave it out for no limit",
    ),
    ("serve no model folder", ["serve", "--model-dir", "{t}/none"], 2, "no model folder at"),
    (
        "serve --max-readings 0",
        ["serve", "--model-dir", "{m}", "--max-readings", "0"],
        2,
        "max_readings must be a positive integer",
    ),
    (
        "serve --max-series 0",
        ["serve", "--model-dir", "{m}", "--max-series", "0"],
        2,
        "--max-series must be a positive integer",
    ),
    (
        "serve --plausible-factor nan",
        ["serve", "--model-dir", "{m}", "--plausible-factor", "nan"],
        2,
        "--plausible-factor must be a number > 0",
    ),
    (
        "serve --store not PostgreSQL",
        ["serve", "--model-dir", "{m}", "--store", "mysql://db/x"],
        2,
        "store must be a postgresql:// URL",
    ),
    (
        "serve --token-file missing",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/nope"],
        2,
        "does not exist; write the token to it",
    ),
    (
        "serve --token-file is a folder",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}"],
        2,
        "is not a file",
    ),
    (
        "serve --token-file empty",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/token"],
        2,
        "is empty; write the token to it",
        _token_file("\n", 0o600),
    ),
    (
        "serve --token-file readable by all",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/token"],
        2,
        "can be read or written by other users (mode 0644); make it private: chmod 600",
        _token_file("s3cret-token\n", 0o644),
    ),
    (
        "serve --token-file of two lines",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/token"],
        2,
        "holds 2 lines",
        _token_file("one\ntwo\n", 0o600),
    ),
    (
        "serve token with a space",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/token"],
        2,
        "token",
        _token_file("two words\n", 0o600),
    ),
    (
        "serve LSTMLAB_TOKEN empty",
        ["serve", "--model-dir", "{m}"],
        2,
        "LSTMLAB_TOKEN is set but empty",
        lambda paths, monkeypatch: monkeypatch.setenv("LSTMLAB_TOKEN", " "),
    ),
    (
        "serve non-loopback host without a token",
        ["serve", "--model-dir", "{m}", "--host", "0.0.0.0"],
        2,
        "--insecure",
    ),
    (
        "serve non-loopback host with a guessable token",
        ["serve", "--model-dir", "{m}", "--host", "0.0.0.0"],
        2,
        "needs a token of at least 128 bits of randomness, and this one (1 characters) holds "
        "at most 0",
        lambda paths, monkeypatch: monkeypatch.setenv("LSTMLAB_TOKEN", "x"),
    ),
    (
        "serve --token-file in a folder others can write",
        ["serve", "--model-dir", "{m}", "--token-file", "{t}/token"],
        2,
        "lies in a folder other users can write (mode 0777)",
        _token_file("N7yq2-Vb0Rk9sLw4pZ8xT1eM6cQ3uHj5\n", 0o600, folder_mode=0o777),
    ),
    # ---- compare
    ("compare DATA is a folder", ["compare", "{t}", "--target", "a"], 2, "is a folder"),
    ("compare DATA missing", ["compare", "{d}/nope.csv", "--target", "a"], 2, "does not exist"),
    ("compare DATA binary", ["compare", "{d}/binary.csv", "--target", "a"], 2, "not a text file"),
    ("compare ; separated", ["compare", "{d}/semi.csv", "--target", "a"], 2, "pass --sep ';'"),
    ("compare CSV without --target", ["compare", "{d}/train.csv"], 2, "pass --target"),
    (
        "compare --seed too large",
        ["compare", "{d}/train.csv", "--target", "a", "--seed", "99999999999999999999"],
        2,
        "--seed must be an integer from 0 to 2147483647",
    ),
    (
        "compare --epochs absurd",
        ["compare", "{d}/train.csv", "--target", "a", "--epochs", "1000001"],
        2,
        "argument --epochs: must be at most 1000000, got 1000001; pass fewer epochs",
    ),
    (
        "compare --folds absurd",
        ["compare", "{d}/train.csv", "--target", "a", "--folds", "99999999999"],
        2,
        "argument --folds: must be at most 2147483647, got 99999999999; pass fewer folds",
    ),
    (
        "compare --freq 5min on hourly data",
        ["compare", "{d}/train.csv", "--target", "a", "--freq", "5min"],
        2,
        "raise --max-filled",
    ),
    (
        "compare --level 1.5",
        ["compare", "{d}/train.csv", "--target", "a", "--level", "1.5"],
        2,
        "--level must be a fraction strictly between 0 and 1",
    ),
    (
        "compare --seasons 0",
        ["compare", "{d}/train.csv", "--target", "a", "--seasons", "0"],
        2,
        "--seasons takes season lengths",
    ),
    (
        "compare --baselines without persistence",
        ["compare", "{d}/train.csv", "--target", "a", "--baselines", "auto_ets"],
        2,
        "leaves out persistence",
    ),
    (
        "compare --split 2",
        ["compare", "{d}/train.csv", "--target", "a", "--split", "2"],
        2,
        "split must be a fraction",
    ),
    ("compare no DATA", ["compare"], 2, "no DATA given"),
    (
        "compare --cache-dir is a file",
        ["compare", "--download", "--cache-dir", "{d}/train.csv"],
        2,
        "Not a directory (ENOTDIR)",
    ),
    (
        "compare --norm unknown",
        ["compare", "{d}/train.csv", "--norm", "revin"],
        2,
        "invalid choice",
    ),
    # ---- moving-average, convergence
    ("moving-average --tsteps 0", ["moving-average", "--tsteps", "0"], 2, "tsteps must be"),
    (
        "moving-average --tsteps huge",
        ["moving-average", "--tsteps", "100000000000000000000000"],
        2,
        "does not fit in --input-len 1000",
    ),
    ("moving-average --input-len 0", ["moving-average", "--input-len", "0"], 2, "--input-len"),
    (
        "moving-average --input-len absurd",
        ["moving-average", "--input-len", "100000000000"],
        2,
        "argument --input-len: must be at most 100000000, got 100000000000; pass a shorter input",
    ),
    (
        "moving-average --epochs absurd",
        ["moving-average", "--epochs", "10000000"],
        2,
        "argument --epochs: must be at most 1000000, got 10000000; pass fewer epochs",
    ),
    (
        "moving-average --units absurd",
        ["moving-average", "--units", "100000000000"],
        2,
        "argument --units: must be at most 2147483647, got 100000000000; pass fewer units",
    ),
    ("moving-average --seed -5", ["moving-average", "--seed", "-5"], 2, "--seed must be"),
    (
        "moving-average --out is a file",
        ["moving-average", "--out", "{d}/train.csv"],
        2,
        "is a file, not a folder",
    ),
    (
        "moving-average --out holds a run",
        ["moving-average", "--out", "{d}"],
        2,
        "already holds an earlier run; pass --overwrite",
    ),
    ("convergence --tsteps one", ["convergence", "--tsteps", "one"], 2, "expected integers"),
    (
        "convergence --tsteps absurd range",
        ["convergence", "--tsteps", "1-100000000000"],
        2,
        "argument --tsteps: the range 1-100000000000 holds 100000000000 values, more than 10000; "
        "pass a shorter range",
    ),
    (
        "convergence --lahead beyond --input-len",
        ["convergence", "--lahead", "1,5000"],
        2,
        "--lahead 5000 does not fit",
    ),
    # ---- Keras
    ("import-keras missing", ["import-keras", "{d}/nope.keras"], 2, "no Keras model file at"),
    ("import-keras a folder", ["import-keras", "{t}"], 2, "no Keras model file at"),
    (
        "import-keras garbage",
        ["import-keras", "{d}/garbage.keras"],
        2,
        "is not a Keras 3 .keras archive",
    ),
    ("export-keras no model", ["export-keras", "--model-dir", "{t}/none"], 2, "no model folder"),
    (
        "export-keras --out exists",
        ["export-keras", "--model-dir", "{m}", "--out", "{d}/train.csv"],
        2,
        "already exists; pass --overwrite",
    ),
    (
        "export-keras --series with NUL",
        ["export-keras", "--model-dir", "{m}", "--series", "a\x00"],
        2,
        "series id must not hold control characters",
    ),
    # ---- argparse
    ("unknown command", ["train"], 2, "invalid choice: 'train'"),
    (
        "abbreviated flag",
        ["fit", "{d}/train.csv", "--targ", "a"],
        2,
        "the following arguments are required: --target",
    ),
]

_OUT_DEFAULTS = {
    "fit": "{o}",
    "compare": "{o}",
    "moving-average": "{o}",
    "convergence": "{o}",
    "import-keras": "{o}",
    "export-keras": "{o}/x.keras",
}


def _argv(template: list[str], paths: dict[str, Path]) -> list[str]:
    argv = [part.format(**{k: str(v) for k, v in paths.items()}) for part in template]
    command = argv[0]
    if command in _OUT_DEFAULTS and "--out" not in argv:
        argv += ["--out", _OUT_DEFAULTS[command].format(o=paths["o"])]
    if command == "fit":
        argv = [*argv[:2], *FAST, *argv[2:]]  # the case's own flags come last and win
    if command == "moving-average":
        argv += ["--epochs", "1", "--quiet", "--device", "cpu"]
    return argv


def run_cli(argv, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``lstmlab ARGV`` (argparse's SystemExit counts as its code)."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


@pytest.fixture
def paths(data, model, tmp_path) -> dict[str, Path]:
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    garbage, nan = tmp_path / "garbage", tmp_path / "nan"
    shutil.copytree(model, garbage)
    _set_weights(garbage, lambda data: b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" + data[16:])
    shutil.copytree(model, nan)
    _set_weights(nan, _nan_weights)
    damaged = tmp_path / "damaged"  # its stored state of series "a": bytes that are no state
    shutil.copytree(model, damaged)
    (store,) = damaged.glob("series.*.sqlite")
    with sqlite3.connect(store) as db:
        db.execute("UPDATE series SET state = ? WHERE id = 'a'", (b"not a state",))
    db.close()
    emptied = tmp_path / "emptied"  # its store truncated to 0 bytes
    shutil.copytree(model, emptied)
    (store,) = emptied.glob("series.*.sqlite")
    store.write_bytes(b"")
    unlogged = tmp_path / "unlogged"  # its store without the observation log's table
    shutil.copytree(model, unlogged)
    (store,) = unlogged.glob("series.*.sqlite")
    with sqlite3.connect(store) as db:
        db.execute("DROP TABLE observations")
    db.close()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {
        "d": data,
        "m": folder,
        "g": garbage,
        "n": nan,
        "s": damaged,
        "e": emptied,
        "u": unlogged,
        "t": scratch,
        "o": tmp_path / "out",
    }


@pytest.mark.parametrize(
    ("template", "code", "fragment", "setup"),
    [
        pytest.param(row[1], row[2], row[3], row[4] if len(row) > 4 else None, id=row[0])
        for row in CASES
    ],
)
def test_bad_input_exits_with_a_clear_message(
    template, code, fragment, setup, paths, monkeypatch, capsys
):
    monkeypatch.delenv("LSTMLAB_TOKEN", raising=False)
    if setup is not None:
        setup(paths, monkeypatch)
    argv = _argv(template, paths)
    before = folder_checksum(paths["m"])
    stored = dict(_seen(paths["m"]))
    got, err = run_cli(argv, capsys)
    assert "Traceback" not in err
    assert got == code, err
    assert err.startswith(("lstmlab: error: ", "usage: ")), err
    assert fragment in err, err
    # a refused command changes nothing in the model folder: its files, its stored series
    assert folder_checksum(paths["m"]) == before
    assert dict(_seen(paths["m"])) == stored
    if argv[0] == "fit":
        assert not (paths["o"] / "config.json").exists()


def _seen(folder: Path):
    with Forecaster.load(folder) as forecaster:
        return [(name, forecaster.series_state(name).seen) for name in forecaster.series_ids]


def test_the_catalogue_is_large_and_names_each_case_once():
    names = [row[0] for row in CASES]
    assert len(names) == len(set(names)) and len(names) >= 100


# --------------------------------------------------------------------------- the fixes work
# Each refusal above names a flag; these show that the flag does what the message promises.


def _fit(data_file: Path, out: Path, *flags: str) -> list[str]:
    return ["fit", str(data_file), *FAST, "--out", str(out), *flags]


def test_no_header_keeps_the_first_row(data, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(_fit(data / "nohead.csv", out, "--no-header", "--target", "2")) == 0
    with Forecaster.load(out) as forecaster:
        assert forecaster.series_ids == ("2",)
        assert forecaster.series_state("2").seen == ROWS  # every line is a reading


def test_sep_and_time_format_read_what_was_refused(data, tmp_path, capsys):
    assert main(_fit(data / "semi.csv", tmp_path / "semi", "--sep", ";", "--target", "a")) == 0
    slash = _fit(data / "slash.csv", tmp_path / "slash", "--target", "a")
    assert main([*slash, "--time-format", "%d/%m/%Y %H:%M"]) == 0
    with (
        Forecaster.load(tmp_path / "semi") as semi,
        Forecaster.load(tmp_path / "slash") as slashed,
    ):
        assert semi.series_state("a").seen == slashed.series_state("a").seen == ROWS
        assert pd.Timestamp(slashed.series_state("a").last_time) == _frame()["time"][ROWS - 1]


def test_max_filled_1_accepts_and_fit_says_how_many_values_it_made_up(data, tmp_path, capsys):
    argv = _fit(data / "train.csv", tmp_path / "m", "--target", "a", "--freq", "5min")
    assert main([*argv, "--max-filled", "1"]) == 0
    gaps = (ROWS - 1) * 11  # eleven absent 5-minute steps between two hourly readings
    assert (
        f"loading made up {gaps} of {ROWS + gaps} values ({gaps / (ROWS + gaps):.1%}; --missing "
        f"interpolate): {gaps} absent timestamp(s) of the '5min' grid, 0 missing cell(s)"
    ) in capsys.readouterr().out


def test_sort_and_allow_outliers_accept_what_was_refused(data, tmp_path, capsys):
    assert main(_fit(data / "unsorted.csv", tmp_path / "s", "--target", "a", "--sort")) == 0
    assert "loading sorted the rows" in capsys.readouterr().out
    argv = _fit(data / "outlier.csv", tmp_path / "o", "--target", "a", "--allow-outliers")
    assert main(argv) == 0


def test_a_byte_order_mark_is_not_part_of_the_first_name(data, tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (data / "train.csv").read_bytes())
    assert main(_fit(bom, tmp_path / "m", "--target", "a", "--time-col", "time")) == 0


# a reading of 1e6 drives the (untrained) model's forecast out of range: flagged, as it should
@pytest.mark.filterwarnings("ignore:series .* every seed's forecast failed:RuntimeWarning")
def test_observe_allow_implausible_and_a_wider_factor_accept_the_reading(paths, capsys):
    argv = ["observe", "--model-dir", str(paths["m"]), "--series", "a"]
    argv += ["--input", str(paths["d"] / "implausible.csv")]
    assert main([*argv, "--plausible-factor", "1e9"]) == 0
    assert main([*argv, "--series", "b", "--new-series", "--allow-implausible"]) == 0
    assert dict(_seen(paths["m"]))["b"] == 1


def test_observe_reset_starts_the_series_afresh(paths, capsys):
    model = str(paths["m"])
    new = str(paths["d"] / "new.csv")
    assert dict(_seen(paths["m"]))["a"] == ROWS
    assert main(["observe", "--model-dir", model, "--series", "a", "--input", new, "--reset"]) == 0
    assert dict(_seen(paths["m"]))["a"] == 3  # the three new readings only
    assert main(["observe", "--model-dir", model, "--series", "a", "--reset"]) == 0
    assert "series a reset" in capsys.readouterr().out
    assert "a" not in dict(_seen(paths["m"]))


def test_serve_passes_its_flags_to_the_service(paths, monkeypatch, capsys):
    from lstmlab.live import http

    calls = []
    monkeypatch.setattr(http, "run", lambda model_dir, **kwargs: calls.append(kwargs))
    token = paths["t"] / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    argv = ["serve", "--model-dir", str(paths["m"]), "--host", "0.0.0.0", "--port", "0"]
    argv += ["--max-series", "7", "--plausible-factor", "2.5", "--token-file", str(token)]
    argv += ["--store", "postgresql://user@db/lstm", "--insecure", "--device", "cpu"]
    monkeypatch.setenv("LSTMLAB_TOKEN", "from-the-environment")  # the file wins
    assert main(argv) == 0
    (call,) = calls
    config = call["config"]
    assert (call["host"], call["port"], call["insecure"]) == ("0.0.0.0", 0, True)
    assert (config.max_series, config.plausible_factor) == (7, 2.5)
    assert (config.token, config.store) == ("s3cret-token", "postgresql://user@db/lstm")
    argv = ["serve", "--model-dir", str(paths["m"]), "--allow-implausible", "--device", "cpu"]
    assert main(argv) == 0
    config = calls[-1]["config"]
    assert (config.token, config.plausible_factor, config.max_series) == (
        "from-the-environment",
        None,
        None,
    )
    assert calls[-1]["insecure"] is False


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KiB tmpfs (needs the right to mount: root in a container; else skipped)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)]
    if os.geteuid() != 0 or subprocess.run(command, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_really_full_disk_fails_in_words_and_recovers(model, data, small_disk, capsys):
    folder = small_disk / "m"
    shutil.copytree(model, folder)
    filler = _fill(small_disk)
    observe = ["observe", "--model-dir", str(folder), "--series", "a"]
    observe += ["--input", str(data / "new.csv"), "--quiet"]
    code, err = run_cli(observe, capsys)
    assert code == 2 and "Traceback" not in err
    assert f"the disk holding {folder} is full" in err and "(nothing was saved)" in err
    fit = _fit(data / "train.csv", small_disk / "m2", "--target", "a")
    code, err = run_cli(fit, capsys)
    assert code == 2 and "Traceback" not in err
    assert "is full (No space left on device); nothing was saved: free space and run again" in err
    filler.unlink()  # space returns: both commands work, nothing acknowledged was lost
    assert dict(_seen(folder))["a"] == ROWS
    assert main(observe) == 0 and dict(_seen(folder))["a"] == ROWS + 3
    assert main(fit) == 0


def test_an_os_error_names_the_path_and_what_the_error_number_means(paths, monkeypatch, capsys):
    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(model_folder, "atomic_write_bytes", read_only)
    argv = _fit(paths["d"] / "train.csv", paths["o"], "--target", "a")
    code, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert f"Read-only file system (EROFS): {paths['o']}" in err
    assert err.rstrip().endswith("pass a path on a writable disk")


def test_an_invisible_character_of_a_series_id_prints_escaped(paths, capsys):
    # A bidirectional override or a zero-width space would reorder or hide the terminal's
    # text; the id is stored as given and printed escaped.
    series = "x\u202ey\u200b"
    argv = ["observe", "--model-dir", str(paths["m"]), "--series", series, "--new-series"]
    assert main([*argv, "--input", str(paths["d"] / "new.csv")]) == 0
    out = capsys.readouterr().out
    assert "series x\\u202ey\\u200b: 3 reading(s) observed" in out
    assert "\u202e" not in out and "\u200b" not in out
    assert series in dict(_seen(paths["m"]))  # the id itself is kept, not its escaped text


def test_observe_sent_again_is_a_repeat_as_over_http(paths, capsys):
    # The one retry rule: a retry after a kill that landed after the commit, or a plain
    # retry, is answered as a repeat, not refused as "out of time order".
    argv = ["observe", "--model-dir", str(paths["m"]), "--series", "a"]
    argv += ["--input", str(paths["d"] / "new.csv"), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    stored = dict(_seen(paths["m"]))
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again == first  # the same forecast from the same state
    assert dict(_seen(paths["m"])) == stored  # nothing applied twice
    assert main(argv[:-1]) == 0
    assert "0 reading(s) observed (3 already accepted: a repeat, not applied again)" in (
        capsys.readouterr().out
    )


def test_observe_of_readings_without_times_is_a_repeat_by_its_seq(data, tmp_path, capsys):
    # a model of a file without a time column: its readings have no key but --seq
    values = pd.read_csv(data / "train.csv")["a"]
    path = tmp_path / "values.csv"
    values.to_frame().to_csv(path, index=False)
    assert main(_fit(path, tmp_path / "m", "--target", "a")) == 0
    capsys.readouterr()
    new = tmp_path / "new.csv"
    new.write_text("a\n2.0\n2.5\n")
    argv = ["observe", "--model-dir", str(tmp_path / "m"), "--series", "a", "--input", str(new)]
    argv += ["--seq", str(ROWS), "--device", "cpu", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again == first and first["seen"] == ROWS + 2  # the same state: nothing applied twice
    assert main(argv[:-1]) == 0
    assert "0 reading(s) observed (2 already accepted: a repeat, not applied again)" in (
        capsys.readouterr().out
    )
    # the API's observe takes the same key, and the same rule answers it
    with Forecaster.load(tmp_path / "m") as model:
        repeat = model.observe("a", [2.0, 2.5], seq=ROWS, horizon=2)
        assert (repeat.repeated, repeat.seen) == (2, ROWS + 2)
        with pytest.raises(ValueError, match=f"seq {ROWS + 3} leaves a gap"):
            model.observe("a", [3.0], seq=ROWS + 3)
        with pytest.raises(ValueError, match=f"the reading with seq {ROWS} was already"):
            model.observe("a", [9.0], seq=ROWS)


def _stored_seen(folder: Path, series: str) -> int | None:
    """The readings the store has committed for a series, read as another process would."""
    (store,) = folder.glob("series.*.sqlite")
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT seen FROM series WHERE id = ?", (series,)).fetchone()
    return None if row is None else int(row[0])


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["before the commit", "after the commit"])
def test_observe_killed_then_sent_again_applies_the_readings_once(paths, tmp_path, kill, capsys):
    # A real SIGKILL of `lstmlab observe`, then the same command again: whether the kill
    # landed before the transaction or after it (the store's count moved, the answer not yet
    # printed), the readings end up applied exactly once, as one observe applies them.
    argv = ["observe", "--model-dir", None, "--series", "a"]
    argv += ["--input", str(paths["d"] / "new.csv"), "--json"]
    reference = tmp_path / "reference"
    shutil.copytree(paths["m"], reference)
    assert main([*argv[:2], str(reference), *argv[3:]]) == 0
    expected = json.loads(capsys.readouterr().out)
    folder = paths["m"]
    before = _stored_seen(folder, "a")
    command = [sys.executable, "-m", "lstmlab", *argv[:2], str(folder), *argv[3:]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    if kill == "after the commit":
        while _stored_seen(folder, "a") == before and process.poll() is None:
            assert time.monotonic() < deadline, "the observe committed nothing in 120 s"
            time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    # the kill landed: the process ran about 0.3 s from its commit to its exit, the poll is 2 ms
    assert process.returncode == -signal.SIGKILL
    moved = _stored_seen(folder, "a") != before
    assert moved == (kill == "after the commit")
    assert main([*argv[:2], str(folder), *argv[3:]]) == 0  # the same command, sent again
    again = json.loads(capsys.readouterr().out)
    assert again == expected  # the same forecast, from the same state
    assert _seen(folder) == _seen(reference)
    with Forecaster.load(folder) as ours, Forecaster.load(reference) as theirs:
        np.testing.assert_array_equal(
            ours.series_state("a").prediction, theirs.series_state("a").prediction
        )


def test_target_given_twice_trains_both_columns(data, tmp_path, capsys):
    # `--target a --target b` is `--target a b`: the second flag used to replace the first
    argv = _fit(data / "train.csv", tmp_path / "m", "--target", "a", "--target", "b")
    assert main(argv) == 0
    with Forecaster.load(tmp_path / "m") as forecaster:
        assert forecaster.series_ids == ("a", "b")


def test_a_step_index_is_read_as_steps_by_fit_and_observe(data, tmp_path, capsys):
    # the file: no header, an integer index (1, 2, ...) in its first column
    out = tmp_path / "steps"
    flags = ("--no-header", "--time-col", "1", "--target", "2")
    assert main(_fit(data / "steps_nohead.csv", out, *flags)) == 0
    assert f"on 1 series of {ROWS} readings (steps)" in capsys.readouterr().out
    # the reference: the same values as an array, which has no time (row positions from 0)
    values = pd.read_csv(data / "steps_nohead.csv", header=None)[1].to_numpy()
    reference = Forecaster(model="mlp", window=3, epochs=0, seeds=1).fit(values)
    want = reference.forecast(3)
    with Forecaster.load(out) as stepped:
        got = stepped.forecast(3)
        assert stepped.recipe.step == 1
    np.testing.assert_array_equal(got["forecast"], want["forecast"])  # the same model
    assert want["time"].tolist() == [ROWS, ROWS + 1, ROWS + 2]
    assert got["time"].tolist() == [ROWS + 1, ROWS + 2, ROWS + 3]  # the file's numbers go on
    # observe reads the next steps from a file of the same form; sent again, a repeat
    new = tmp_path / "new.csv"
    new.write_text(f"{ROWS + 1},2.0\n{ROWS + 2},2.1\n")
    observe = ["observe", "--model-dir", str(out), "--series", "2", "--input", str(new)]
    observe += [*flags, "--quiet", "--device", "cpu"]
    assert main(observe) == 0
    assert main(observe) == 0
    assert "2 already accepted: a repeat, not applied again" in capsys.readouterr().out
    with Forecaster.load(out) as stepped:
        assert stepped.series_state("2").last_time == ROWS + 2
        assert stepped.series_state("2").seen == ROWS + 2
    # a step skipped is a gap, refused before anything changes
    new.write_text(f"{ROWS + 4},2.2\n")
    assert main(observe) == 2
    assert f"reading at step {ROWS + 4}, expected step {ROWS + 3}" in capsys.readouterr().err


def test_a_step_index_with_a_gap_is_filled_as_a_timestamp_gap_is(data, tmp_path, capsys):
    out = tmp_path / "gap"
    assert main(_fit(data / "steps2.csv", out, "--target", "a")) == 0
    assert "1 absent step(s) of the 'steps of 2' grid" in capsys.readouterr().out
    with Forecaster.load(out) as stepped:
        assert stepped.recipe.step == 2
        assert stepped.series_state("a").seen == ROWS  # the absent step 12 filled
        assert stepped.forecast(2)["time"].tolist() == [2 * ROWS + 2, 2 * ROWS + 4]


def test_a_file_without_a_time_column_is_read_as_steps_from_0(data, tmp_path, capsys):
    # its first column is the target: no time column, the rows are steps 0, 1, 2, ...
    values = pd.read_csv(data / "train.csv")["a"]
    path = tmp_path / "values.csv"
    values.to_frame().to_csv(path, index=False)
    assert main(_fit(path, tmp_path / "m", "--target", "a")) == 0
    reference = Forecaster(model="mlp", window=3, epochs=0, seeds=1).fit(values.to_numpy())
    with Forecaster.load(tmp_path / "m") as untimed:
        assert (untimed.recipe.step, untimed.recipe.time_col) == (1, None)
        got, want = untimed.forecast(2), reference.forecast(2)
    np.testing.assert_array_equal(got["forecast"], want["forecast"])
    assert got["time"].tolist() == want["time"].tolist() == [ROWS, ROWS + 1]
