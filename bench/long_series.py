"""A model trained on one long series: its folder's size, and a one-reading observe (issue 21).

A series of ``--readings`` half-hourly readings (3,000,000 by default: 171 years; a daily and
a weekly cycle and noise) is fitted by ``Forecaster()`` with its defaults but ``--epochs``
(2) and ``--seeds`` (1), so that the fit takes minutes, not hours: the folder holds what the
defaults hold (every candidate's choice, the calibration, the state), only trained less.
Measured: the fit's wall time and peak resident memory; the model folder's size, file by
file; then, in a fresh process, ``lstmlab observe`` of one reading (wall time and peak
resident memory, from ``/usr/bin/time`` when present, else ``resource``).

Targets (issue 21): the folder's size does not grow with the length of the series; the
one-reading observe takes under 1 s and under 300 MB.

    python bench/long_series.py                       # 3,000,000 readings
    python bench/long_series.py --readings 300000     # a shorter run

The last line is one JSON object. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from _common import emit_json, machine_info

TARGET_SECONDS = 1.0
TARGET_MB = 300.0


def series(readings: int) -> pd.DataFrame:
    """Half-hourly load with a daily and a weekly cycle and noise."""
    t = np.arange(readings)
    rng = np.random.default_rng(0)
    values = (
        100
        + 10 * np.sin(2 * np.pi * t / 48)
        + 5 * np.sin(2 * np.pi * t / 336)
        + rng.normal(0, 1, readings)
    )
    index = pd.date_range("2000-01-01", periods=readings, freq="30min")
    return pd.DataFrame({"load": values}, index=index)


def observe_once(folder: Path, csv: Path) -> tuple[float, float, str]:
    """``lstmlab observe`` of one reading in a fresh process: (seconds, peak MB, its output)."""
    command = [sys.executable, "-m", "lstmlab", "observe", "--model-dir", str(folder)]
    command += ["--series", "load", "--input", str(csv), "--quiet"]
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if timer is not None:
        started = time.perf_counter()
        done = subprocess.run([timer, "-f", "%M", *command], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_mb = float(done.stderr.strip().splitlines()[-1]) / 1024
    else:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        raise SystemExit(f"observe failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, peak_mb, done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=3_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args(argv)

    from lstmlab import Forecaster

    data = series(args.readings)
    started = time.perf_counter()
    model = Forecaster(epochs=args.epochs, seeds=args.seeds, quiet=True).fit(data)
    fit_seconds = time.perf_counter() - started
    fit_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chosen = f"{model.metrics['model']} ({model.metrics['norm']})"
    print(
        f"fit: {args.readings:,} readings in {fit_seconds:.0f} s, peak {fit_peak_mb:.0f} MB; "
        f"chosen {chosen}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as temp:
        folder = model.save(Path(temp) / "model")
        sizes = {f.name: f.stat().st_size for f in folder.iterdir() if f.is_file()}
        total_mb = sum(sizes.values()) / 1e6
        print(f"folder: {total_mb:.2f} MB", {k: f"{v / 1e6:.3f} MB" for k, v in sizes.items()})
        after = data.index[-1] + pd.Timedelta("30min")
        csv = Path(temp) / "one.csv"
        pd.DataFrame({"time": [after.isoformat()], "load": [101.0]}).to_csv(csv, index=False)
        seconds, peak_mb, output = observe_once(folder, csv)
    verdict = "meets" if seconds < TARGET_SECONDS and peak_mb < TARGET_MB else "misses"
    print(
        f"observe of one reading: {seconds:.2f} s, peak {peak_mb:.0f} MB ({verdict} the "
        f"targets {TARGET_SECONDS:g} s and {TARGET_MB:g} MB); {output}"
    )
    emit_json(
        {
            "benchmark": "long_series",
            "machine": machine_info(),
            "readings": args.readings,
            "epochs": args.epochs,
            "seeds": args.seeds,
            "chosen": chosen,
            "fit_seconds": fit_seconds,
            "fit_peak_mb": fit_peak_mb,
            "folder_mb": total_mb,
            "folder_files": sizes,
            "observe_seconds": seconds,
            "observe_peak_mb": peak_mb,
            "targets": {"observe_seconds": TARGET_SECONDS, "observe_peak_mb": TARGET_MB},
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
