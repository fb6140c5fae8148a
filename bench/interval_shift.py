"""Why fixed intervals cover too little: the errors met against the validation errors.

A split-conformal interval covers as often as nominal when the errors it meets are like the
residuals that calibrated it: the seed median's errors on the validation tail of ``fit``. This
script measures both, one step ahead as ``forecaster_accuracy.py`` walks a series (its
windows: one model trained up to the first cutoff, then ``observe`` of each reading, through
``Forecaster.cross_validation(refit=False)``), for ``Forecaster()`` with its defaults and for
each kind and normalisation alone:

- the RMSE of the calibration residuals of the fit at the first cutoff (series units);
- the RMSE of the walk's errors, and their ratio to the first;
- the coverage of the walk's 90% intervals, as ``forecast`` gives them (learning from the
  one-step errors ``observe`` sees), and as the validation tail's residuals alone would give
  them (the fixed split-conformal interval they were before).

A ratio above 1 for the chosen model alone would point at the choice among candidates (the
lowest validation error is an optimistic estimate of the chosen one's); a ratio above 1 for
every candidate points at the series: its errors after the training data are larger than on
the validation tail, whatever the model.

    python bench/interval_shift.py                        # airline and household
    python bench/interval_shift.py --only airline wine

The last line is one JSON object. Nothing is asserted but that the separate fit is the walk's
model (its first forecast equals the walk's).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from _common import emit_json, machine_info, package_version

# one list of series, one loader, and the same compile cache settings (set at its import)
from accuracy import SERIES, data_dir_or_skip
from forecaster_accuracy import LEVEL, long_frame, series_frame

KINDS = ("mlp", "stateless", "stateful")
NORMS = ("none", "difference", "window")
DEFAULT_SERIES = ("airline", "household")


def measure(values: pd.Series, season: int, settings: dict[str, Any]) -> dict[str, Any]:
    """One setting's calibration RMSE, walk RMSE, ratio and coverage, one step ahead."""
    from lstmlab import Forecaster
    from lstmlab.scoring import conformal_halfwidths

    name = str(values.name)
    frame = long_frame(values)
    freq = pd.infer_freq(values.index)
    windows = int(min(max(12, 3 * season), len(values) // 3))
    columns = {"id_col": "unique_id", "time_col": "ds", "target": "y", "freq": freq}
    walk = Forecaster(quiet=True, **settings).cross_validation(
        frame, horizon=1, windows=windows, step=1, refit=False, level=LEVEL, **columns
    )
    cutoff = walk["cutoff"].min()
    fitted = Forecaster(quiet=True, **settings).fit(frame[frame["ds"] <= cutoff], **columns)
    first = float(fitted.forecast(1)["forecast"].iloc[0])
    if not np.isclose(first, float(walk["forecast"].iloc[0]), rtol=1e-6, atol=0.0):
        raise AssertionError(
            f"the separate fit is not the walk's model: {first} against "
            f"{float(walk['forecast'].iloc[0])}"
        )
    residuals = fitted.network.calibration.residuals[name][:, 0, 0]  # (origins,) scaled
    scale = abs(float(np.asarray(fitted.series_state(name).scaler.scale)[0]))
    validation = residuals[np.isfinite(residuals)] * scale
    errors = (walk["actual"] - walk["forecast"]).to_numpy()
    inside = (walk["actual"] >= walk["lower"]) & (walk["actual"] <= walk["upper"])
    fixed = conformal_halfwidths(residuals[:, None, None], LEVEL / 100)[0, 0] * scale
    validation_rmse = float(np.sqrt(np.mean(np.square(validation))))
    walk_rmse = float(np.sqrt(np.mean(np.square(errors))))
    return {
        "model": f"{fitted.metrics['model']} ({fitted.metrics['norm']})",
        "validation_residuals": int(len(validation)),
        "validation_rmse": validation_rmse,
        "walk_forecasts": int(len(errors)),
        "walk_rmse": walk_rmse,
        "ratio": walk_rmse / validation_rmse,
        "coverage": float(inside.mean()),
        "fixed_coverage": float(np.mean(np.abs(errors) <= fixed)) if np.isfinite(fixed) else None,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="the shared data folder")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[series.name for series in SERIES],
        default=list(DEFAULT_SERIES),
        help="the series (default: airline and household)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = data_dir_or_skip(args.data, "interval_shift")
    if folder is None:
        return 0
    warnings.filterwarnings("ignore")
    settings = [("Forecaster() (default)", {})] + [
        (f"{kind} ({norm})", {"model": kind, "norm": norm}) for kind in KINDS for norm in NORMS
    ]
    results: dict[str, dict[str, Any]] = {}
    for series in SERIES:
        if series.name not in args.only:
            continue
        values, season = series_frame(series, folder)
        print(f"\n{series.name}, one step ahead (90% intervals):", flush=True)
        print(
            "| setting | kept model | validation RMSE (n) | walk RMSE (n) | ratio | coverage "
            "| coverage, the tail's residuals alone |"
        )
        print("|---|---|--:|--:|--:|--:|--:|")
        rows = {}
        for label, setting in settings:
            started = time.perf_counter()
            row = measure(values, season, setting)
            row["seconds"] = time.perf_counter() - started
            rows[label] = row
            print(
                f"| {label} | {row['model']} | {row['validation_rmse']:.4g} "
                f"({row['validation_residuals']}) | {row['walk_rmse']:.4g} "
                f"({row['walk_forecasts']}) | {row['ratio']:.2f} | {row['coverage']:.0%} | "
                + ("—" if row["fixed_coverage"] is None else f"{row['fixed_coverage']:.0%}")
                + " |",
                flush=True,
            )
        ratios = [row["ratio"] for row in rows.values()]
        print(f"ratio over every setting: {min(ratios):.2f} to {max(ratios):.2f}")
        results[series.name] = rows
    emit_json(
        {
            "benchmark": "interval_shift",
            "level": LEVEL,
            "series": results,
            "lstmlab": package_version("lstmlab"),
            "machine": machine_info(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
