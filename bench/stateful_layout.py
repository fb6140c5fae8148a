"""The stateful models of one name: the ``Forecaster``'s against ``compare``'s, on the same windows.

Issue 19 asked for the stateful layout to be picked by measurement and kept. Until 82a6f54
the two trained the stateful kinds (``stateful``: one LSTM layer, ``stacked``: two)
differently: the ``Forecaster`` streamed one reading per step (an output at every step, no
input normalisation), ``compare`` fed overlapping windows statefully (Keras' stateful
example: the state carried from one window to the next, the output of the last step, the
normalisations ``"difference"``, ``"window"`` and ``"none"`` each trained and the best on the
validation tail kept). This benchmark, run at 82a6f54, found the windows better (0.853x the
streams' MASE in geometric mean, 6 of 8 wins; ``bench/results/stateful_layout.md`` as written
then), so the ``Forecaster`` took the windows. Run at 7c62cc3, it measured what was left
between the two models of one name: ``compare``'s own initial weights and validation samples
(1.04x, no clear winner). Since f34dfad ``compare`` trains the ``Forecaster``'s model (a test
checks it); run now, it measures what is left: ``compare``'s seasonal lag inputs for seasons
longer than the window, and the seasons it finds once on the first fold.

Both are otherwise left at their defaults (which are ``ForecasterConfig``'s): 5 seeds and their
median, at most 200 epochs with early stopping on the last 20% of the training part, then a
refit on the whole training part for the median best epoch count; direct forecasts (``h``
outputs).

Protocol, per development series (``accuracy.SERIES``; the half-hourly electricity series only
with ``--only``: too slow on 2 cores): one season ahead, ``h`` = the series' first season
(``forecaster_accuracy.series_frame``), 3 windows that do not overlap, the last ending at the
last reading (statsforecast's ``cross_validation`` layout), a model trained afresh for each:

- the Forecaster: ``Forecaster(model=kind, horizon=h).cross_validation(horizon=h, windows=3)``;
- compare: ``compare.run`` with ``test_size=3h, folds=3, horizon=h, origin_stride=h`` and
  the direct strategy: fold ``k`` trains on every reading before window ``k`` and forecasts
  it from one origin, the seed median (``<kind>_median``) is its forecast. ``seasons`` is left
  to ``compare``, which finds them on the first fold's training part as the Forecaster does on
  the first window's (the Forecaster finds them again for every window: where they differ,
  the output says so).

A check asserts that both forecast the same readings (origins, and actual values to 1e-9).
Scores per series and kind: MASE (the mean absolute error over the in-sample seasonal naive
error of the part before the first window, ``forecaster_accuracy.mase_scale``, the same
scale for both) and RMSE; the ratio compare / Forecaster in MASE (below 1: compare better);
the normalisation compare kept in each window; wall time of each. Reference: the seasonal
naive forecast (the last season repeated, as statsforecast's SeasonalNaive). Then per kind
the geometric mean of the ratio over series and the series each wins, and one verdict. A
series too short for 3 windows of a season with a validation tail of at least ``h``
(shampoo: 36 months, h = 12; household weekly: 205 weeks, h = 52) is skipped by both, and
said. The whole run (4 series, 2 kinds, 5 seeds) takes about 10 to 20 minutes on 2 cores.

    python bench/stateful_layout.py                    # every series but electricity
    python bench/stateful_layout.py --only lynx wool   # some series
    python bench/stateful_layout.py --seeds 3          # fewer seeds (both)
    python bench/stateful_layout.py --write            # bench/results/stateful_layout.*

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from _common import BENCH_DIR, emit_json, machine_info, package_version

# the series, loader, scores and compile cache settings of the accuracy benchmarks
from accuracy import SERIES, data_dir_or_skip, geometric_mean
from forecaster_accuracy import long_frame, mase_scale, scores, series_frame

RESULTS = BENCH_DIR / "results"
KINDS = ("stateful", "stacked")
WINDOWS = 3
DEFAULT_SKIP = ("electricity",)


def forecaster_backtest(values: pd.Series, kind: str, h: int, seeds: int) -> tuple[np.ndarray, ...]:
    """The Forecaster's backtest: ``(cutoff positions (3,), actual (3, h), forecast (3, h))``."""
    from lstmlab import Forecaster

    frame = long_frame(values)
    out = Forecaster(model=kind, horizon=h, seeds=seeds, quiet=True).cross_validation(
        frame,
        horizon=h,
        windows=WINDOWS,
        id_col="unique_id",
        time_col="ds",
        target="y",
        freq=pd.infer_freq(values.index),
    )
    out = out.sort_values(["cutoff", "step"]).reset_index(drop=True)
    cutoffs = [values.index.get_loc(c) + 1 for c in out["cutoff"].unique()]  # first forecast step
    actual = out["actual"].to_numpy(np.float64).reshape(WINDOWS, h)
    forecast = out["forecast"].to_numpy(np.float64).reshape(WINDOWS, h)
    return np.asarray(cutoffs), actual, forecast


def compare_backtest(values: pd.Series, kind: str, h: int, seeds: int) -> tuple[Any, ...]:
    """compare's backtest on the same windows: ``(origins, actual, seed median, result)``."""
    from lstmlab.experiments import compare

    config = compare.CompareConfig(
        models=(compare.ModelSpec(model=kind),),
        baselines=("persistence",),
        seeds=seeds,
        test_size=WINDOWS * h,
        folds=WINDOWS,
        horizon=h,
        origin_stride=h,
        strategy="direct",
        seasons=None,
    )
    result = compare.run(config, values, quiet=True)
    median = result.outcome(kind + compare.ENSEMBLE_SUFFIX).forecasts[0, :, :, 0]  # (3, h)
    return result.origins, result.actual[:, :, 0], median, result


def seasonal_naive(values: np.ndarray, origins: np.ndarray, season: int, h: int) -> np.ndarray:
    """``(windows, h)``: the last season before each origin, repeated."""
    return np.stack([values[o - season + np.arange(h) % season] for o in origins])


def measure(series: Any, folder: Any, kinds: Sequence[str], seeds: int) -> list[dict[str, Any]]:
    """Both models of every kind on one series; ValueError if it is too short."""
    from lstmlab.data.seasons import choose_seasons

    values, season = series_frame(series, folder)
    h, n = season, len(values)
    array = values.to_numpy(np.float64)
    first = n - WINDOWS * h
    if first < 1:
        raise ValueError(f"{n} readings, too few for {WINDOWS} windows of {h}")
    scale = mase_scale(array[:first], season)
    ends = first + h * np.arange(WINDOWS)
    naive = seasonal_naive(array, ends, season, h)
    freq = pd.infer_freq(values.index)
    forecaster_seasons = [list(choose_seasons(freq, array[:e]).lengths) for e in ends]
    cases = []
    for kind in kinds:
        started = time.perf_counter()
        cutoffs, actual, ours = forecaster_backtest(values, kind, h, seeds)
        forecaster_seconds = time.perf_counter() - started
        started = time.perf_counter()
        origins, theirs_actual, theirs, result = compare_backtest(values, kind, h, seeds)
        compare_seconds = time.perf_counter() - started
        # the same three windows: origins and actual values
        assert np.array_equal(cutoffs, ends), (cutoffs, ends)
        assert np.array_equal(origins, ends), (origins, ends)
        assert np.allclose(actual, theirs_actual, rtol=0, atol=1e-9)
        assert np.allclose(actual, array[ends[:, None] + np.arange(h)], rtol=0, atol=1e-9)
        outcome = result.outcome(kind)
        case = {
            "series": series.name,
            "kind": kind,
            "horizon": h,
            "season": season,
            "readings": n,
            "origins": ends.tolist(),
            "forecaster": scores((actual - ours).ravel(), scale),
            "compare": scores((actual - theirs).ravel(), scale),
            "seasonal_naive": scores((actual - naive).ravel(), scale),
            "norm": list(outcome.norm),
            "norm_scores_first_window": {
                norm: score if math.isfinite(score) else None
                for norm, score in outcome.norm_scores.items()
            },
            "window": outcome.spec.window,
            "compare_seasons": list(result.seasons.lengths),
            "forecaster_seasons": forecaster_seasons,
            "flagged_seeds": int(outcome.flags.flagged.sum()) if outcome.flags else 0,
            "forecaster_seconds": forecaster_seconds,
            "compare_seconds": compare_seconds,
        }
        case["ratio"] = case["compare"]["mase"] / case["forecaster"]["mase"]
        case["rmse_ratio"] = case["compare"]["rmse"] / case["forecaster"]["rmse"]
        cases.append(case)
        print(
            f"{series.name} {kind} h={h}: MASE Forecaster {case['forecaster']['mase']:.4g}, "
            f"compare {case['compare']['mase']:.4g} ({'/'.join(case['norm'])}), ratio "
            f"{case['ratio']:.3g}, seasonal naive {case['seasonal_naive']['mase']:.4g} "
            f"[{forecaster_seconds:.0f} s + {compare_seconds:.0f} s]",
            flush=True,
        )
    return cases


def summarise(cases: Sequence[dict[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in [*kinds, "all"]:
        chosen = [c for c in cases if kind in ("all", c["kind"])]
        if not chosen:
            continue
        ratio = geometric_mean([c["ratio"] for c in chosen])
        out[kind] = {
            "cases": len(chosen),
            "geomean_mase_ratio": ratio,
            "geomean_rmse_ratio": geometric_mean([c["rmse_ratio"] for c in chosen]),
            "compare_wins": sum(c["ratio"] < 1 for c in chosen),
            "forecaster_wins": sum(c["ratio"] > 1 for c in chosen),
            "better": _better(ratio, chosen),
        }
    return out


def _better(ratio: float, cases: Sequence[dict[str, Any]]) -> str:
    """Which is better: the one ahead in geometric mean and in the count of series won."""
    compare_wins = sum(c["ratio"] < 1 for c in cases)
    forecaster_wins = sum(c["ratio"] > 1 for c in cases)
    if ratio < 1 and compare_wins > forecaster_wins:
        return "compare"
    if ratio > 1 and forecaster_wins > compare_wins:
        return "the Forecaster"
    return "neither clearly"


def verdict(summary: dict[str, Any], kinds: Sequence[str]) -> str:
    if "all" not in summary:
        return "nothing measured"
    parts = [
        f"{kind} {summary[kind]['geomean_mase_ratio']:.3g} (compare wins "
        f"{summary[kind]['compare_wins']}, the Forecaster {summary[kind]['forecaster_wins']} of "
        f"{summary[kind]['cases']})"
        for kind in kinds
        if kind in summary
    ]
    s = summary["all"]
    return (
        f"Verdict: {s['better']} better; geometric mean MASE ratio compare/Forecaster "
        f"{s['geomean_mase_ratio']:.3g} over {s['cases']} series x kind ("
        + "; ".join(parts)
        + f"); compare wins {s['compare_wins']}, the Forecaster {s['forecaster_wins']}."
    )


def _n(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(
    cases: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    skipped: Sequence[dict[str, str]],
    kinds: Sequence[str],
    seeds: int,
) -> str:
    lines = [
        f"**Stateful models, one season ahead** (3 refitted windows, {seeds} seeds, seed "
        "median): MASE (RMSE); ratio = compare / Forecaster in MASE, below 1: compare better",
        "",
        "| series | kind | h | `Forecaster` | `compare` | ratio | compare's norm kept "
        "(per window) | window | seasonal naive | seconds Forecaster / compare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        cells = [f"{_n(c[k]['mase'])} ({_n(c[k]['rmse'])})" for k in ("forecaster", "compare")]
        lines.append(
            f"| {c['series']} | {c['kind']} | {c['horizon']} | {cells[0]} | {cells[1]} "
            f"| {c['ratio']:.3g} | {'/'.join(c['norm'])} | {c['window']} "
            f"| {_n(c['seasonal_naive']['mase'])} "
            f"| {c['forecaster_seconds']:.0f} / {c['compare_seconds']:.0f} |"
        )
    lines += ["", verdict(summary, kinds)]
    differ = [
        c
        for c in cases
        if any(s != c["compare_seasons"] for s in c["forecaster_seasons"]) and c["kind"] == kinds[0]
    ]
    for c in differ:
        lines.append(
            f"\n{c['series']}: the Forecaster finds seasons {c['forecaster_seasons']} in its three "
            f"windows, compare {c['compare_seasons']} (on the first fold, kept for all three)."
        )
    for s in skipped:
        lines.append(f"\n{s['series']}: not compared: {s['reason']}")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="the shared data folder")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=[series.name for series in SERIES],
        help=f"these series only (default: all but {', '.join(DEFAULT_SKIP)})",
    )
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds of both")
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/stateful_layout.{md,json}"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = data_dir_or_skip(args.data, "stateful_layout")
    if folder is None:
        return 0
    started = time.perf_counter()
    cases: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for series in SERIES:
        wanted = series.name in args.only if args.only else series.name not in DEFAULT_SKIP
        if not wanted:
            continue
        try:
            cases += measure(series, folder, args.kinds, args.seeds)
        except ValueError as error:  # too short for 3 windows of a season: said, not hidden
            print(f"{series.name}: not compared: {error}", flush=True)
            skipped.append({"series": series.name, "reason": str(error)})
    seconds = time.perf_counter() - started
    summary = summarise(cases, args.kinds)
    table = markdown(cases, summary, skipped, args.kinds, args.seeds)
    table += f"\nTotal wall time {seconds:.0f} s ({machine_info()['cores']} cores).\n"
    print(table)
    record = {
        "benchmark": "stateful_layout",
        "machine": machine_info(),
        "lstmlab": package_version("lstmlab"),
        "seeds": args.seeds,
        "windows": WINDOWS,
        "verdict": verdict(summary, args.kinds),
        "summary": summary,
        "cases": cases,
        "skipped": skipped,
        "seconds": seconds,
    }
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "stateful_layout.md").write_text(table)
        (RESULTS / "stateful_layout.json").write_text(json.dumps(record, indent=1, default=str))
    emit_json(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
