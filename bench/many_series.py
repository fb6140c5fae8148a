"""One global model over many short series: the fit's memory and a forecast of every series.

``--series`` synthetic daily series of ``--length`` readings (50,000 of 200 by default: a
weekly cycle, a level per series and noise), in NeuralForecast's long form (``unique_id, ds,
y``), fitted by ``Forecaster(model="mlp", epochs=3, seeds=1)`` (issue 20's setting), then
saved. In a fresh process the folder is loaded and ``forecast(7)`` of every series is timed
``--repeats`` times (one frame for all of them). Measured: the fit's wall time, the resident
memory before it (the data frame built) and its peak (``resource``'s high-water mark), and
each forecast's wall time.

Targets (issue 20): the forecast of 50,000 series at most 2 s; the fit's peak memory at
most 1.5 GB.

    python bench/many_series.py                          # 50,000 series
    python bench/many_series.py --series 10000           # a shorter run

The last line is one JSON object. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from _common import emit_json, machine_info

TARGET_FORECAST_SECONDS = 2.0
TARGET_FIT_MB = 1500.0


def frame(series: int, length: int) -> pd.DataFrame:
    """Daily series with a weekly cycle, a level each and noise, in long form."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    levels = rng.uniform(5, 50, series)[:, None]
    values = levels + np.sin(2 * np.pi * t / 7)[None] + rng.normal(0, 0.3, (series, length))
    dates = pd.date_range("2020-01-01", periods=length, freq="D")
    ids = np.repeat(np.array([f"s{i}" for i in range(series)], dtype=object), length)
    return pd.DataFrame({"unique_id": ids, "ds": np.tile(dates, series), "y": values.ravel()})


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child_fit(series: int, length: int, folder: str) -> dict:
    """In this process: build the data, fit, save; the fit's time and memory."""
    from lstmlab import Forecaster

    data = frame(series, length)
    before = _resident_mb()
    started = time.perf_counter()
    forecaster = Forecaster(model="mlp", epochs=3, seeds=1, quiet=True).fit(data)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    forecaster.save(folder)
    return {"fit_seconds": seconds, "resident_before_fit_mb": before, "fit_peak_mb": peak}


def child_forecast(folder: str, repeats: int) -> dict:
    """In this process: load the folder and time ``forecast(7)`` of every series."""
    from lstmlab import Forecaster

    with Forecaster.load(folder) as forecaster:
        seconds, rows = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            out = forecaster.forecast(7)
            seconds.append(time.perf_counter() - started)
            rows = len(out)
    return {"forecast_seconds": seconds, "forecast_rows": rows}


def _run_child(*args: str) -> dict:
    """This script in a fresh process; its last line is the result."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", choices=("fit", "forecast"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "fit":
        print(json.dumps(child_fit(args.series, args.length, args.folder)))
        return 0
    if args.child == "forecast":
        print(json.dumps(child_forecast(args.folder, args.repeats)))
        return 0
    with tempfile.TemporaryDirectory() as work:
        folder = str(Path(work) / "model")
        size = ["--series", str(args.series), "--length", str(args.length)]
        print(f"fitting {args.series:,} series of {args.length} readings ...", flush=True)
        fit = _run_child("--child", "fit", "--folder", folder, *size)
        print(
            f"fit {fit['fit_seconds']:.1f} s, peak {fit['fit_peak_mb']:.0f} MB "
            f"({fit['resident_before_fit_mb']:.0f} MB before it, the data built)",
            flush=True,
        )
        timed = _run_child(
            "--child", "forecast", "--folder", folder, "--repeats", str(args.repeats)
        )
    seconds = timed["forecast_seconds"]
    median = float(np.median(seconds))
    print(
        f"forecast(7) of {args.series:,} series ({timed['forecast_rows']:,} rows): "
        + ", ".join(f"{s:.2f}" for s in seconds)
        + f" s (median {median:.2f} s; target <= {TARGET_FORECAST_SECONDS:g} s); fit peak "
        f"{fit['fit_peak_mb']:.0f} MB (target <= {TARGET_FIT_MB:g} MB)"
    )
    emit_json(
        {
            "benchmark": "many_series",
            "series": args.series,
            "length": args.length,
            **fit,
            **timed,
            "forecast_median_seconds": median,
            "targets": {"forecast_seconds": TARGET_FORECAST_SECONDS, "fit_peak_mb": TARGET_FIT_MB},
            "passed": {
                "forecast": median <= TARGET_FORECAST_SECONDS,
                "fit_memory": fit["fit_peak_mb"] <= TARGET_FIT_MB,
            },
            "machine": machine_info(),
            "load_average": list(os.getloadavg()),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
