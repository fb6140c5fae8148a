"""Forecast accuracy: lstmlab's neural forecasts against statistical forecasting, 7 real series.

The development benchmark of ``../shared/data`` (its README): airline passengers (monthly),
shampoo sales (monthly), household power (weekly sums), half-hourly electricity demand, wine
sales (monthly), wool production (quarterly) and lynx trappings (annual). For each series,
one step ahead and one season ahead, ``lstmlab compare``'s protocol runs unchanged: the
67/33 chronological split, rolling origins with actual values, the defaults of every model
(nothing here is tuned to a series), and statsforecast's AutoETS, AutoTheta, AutoARIMA and
seasonal naive on exactly the same split and origins.

Per series it prints lstmlab's best-validated neural model (the one whose seed median had the
lowest RMSE on the validation tail of the training part: chosen without the test part), that
model's seed median and every baseline, with RMSE relative to AutoETS; then the geometric
mean over series of that ratio, the number of series where the seed median beats AutoETS, and
whether any forecast anywhere is non-finite without being flagged.

Targets (issue 11), for each horizon: the seed median of the best-validated model within 5% of
AutoETS in geometric mean (ratio <= 1.05) and better than AutoETS on at least 3 of the 7
series; no non-finite or unflagged implausible forecast in any report.

    python bench/accuracy.py                         # everything (about an hour on 2 cores)
    python bench/accuracy.py --only airline lynx     # some series
    python bench/accuracy.py --horizons one          # one step ahead only
    python bench/accuracy.py --out runs/accuracy     # also write every compare report

The last line is one JSON object; ``--write`` stores the table in
``bench/results/accuracy.{md,json}`` (the README quotes it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import BENCH_DIR, REPO_DIR, emit_json, machine_info, mark, package_version

# Compiled programs persist between runs of the benchmark (and its series share few shapes).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO_DIR / ".cache" / "jax-bench"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

RESULTS = BENCH_DIR / "results"
STATISTICAL = ("auto_ets", "auto_theta", "auto_arima", "seasonal_naive")
TARGET_RATIO = 1.05
TARGET_WINS = 3


@dataclasses.dataclass(frozen=True)
class Series:
    """One development series: file, columns and how it is read."""

    name: str
    file: str
    time_col: str
    target: str
    frequency: str
    resample: str | None = None
    start: str | None = None
    end: str | None = None


SERIES = (
    Series("airline", "airline_passengers.csv", "Date", "Passengers", "monthly"),
    Series("shampoo", "shampoo_sales.csv", "Time", "Sales", "monthly"),
    # Weekly sums of the daily file; the first and last weeks are partial (2 and 6 days) and
    # are left out rather than compared as if they were whole weeks.
    Series(
        "household",
        "household_power_consumption_days.csv",
        "datetime",
        "Global_active_power",
        "weekly",
        resample="W",
        start="2006-12-24",
        end="2010-11-21",
    ),
    Series("electricity", "taylor_electricity_halfhourly.csv", "time", "demand_mw", "half-hourly"),
    Series("wine", "wineind_monthly.csv", "month", "sales", "monthly"),
    Series("wool", "woolyrnq_quarterly.csv", "quarter", "tonnes", "quarterly"),
    Series("lynx", "lynx_annual.csv", "year", "trappings", "annual"),
)


def data_dir(path: str | None) -> Path:
    """The shared data folder: ``--data``, else ``$LSTMLAB_DATA``, else ``../shared/data``."""
    if path:
        return Path(path)
    return Path(os.environ.get("LSTMLAB_DATA") or REPO_DIR.parent / "shared" / "data")


def data_dir_or_skip(path: str | None, benchmark: str) -> Path | None:
    """``data_dir``; ``None`` when it is no folder, the skip printed and its JSON line emitted."""
    folder = data_dir(path)
    if folder.is_dir():
        return folder
    print(f"skipped: no shared data folder at {folder}; pass --data or set LSTMLAB_DATA")
    emit_json({"benchmark": benchmark, "skipped": "no data"})
    return None


def load(series: Series, folder: Path):
    """The series as a ``LoadedSeries``, missing values kept (compare fills them)."""
    from lstmlab.data.loading import LoadConfig, load_csv, load_household_days

    path = folder / series.file
    if series.resample:
        return load_household_days(
            path, columns=(series.target,), resample=series.resample, missing="keep"
        )
    return load_csv(
        path, LoadConfig(time_col=series.time_col, targets=(series.target,), missing="keep")
    )


def compare_one(series: Series, loaded: Any, horizon: int | None, args: argparse.Namespace):
    """``compare.run`` with its defaults on one series; ``horizon=None`` for a season ahead."""
    from lstmlab.experiments import compare

    config = compare.CompareConfig(
        seeds=args.seeds, start=series.start, end=series.end, preset=None
    )
    if args.epochs is not None:
        config = compare.override_models(config, epochs=args.epochs)
    if horizon is None:
        # A season ahead: the season the comparison itself finds (frequency or detection).
        probe = compare.run(
            dataclasses.replace(config, models=(), baselines=("persistence",)),
            loaded,
            quiet=True,
        )
        lengths = probe.seasons.lengths
        if not lengths:
            return None
        horizon = lengths[0]
    config = dataclasses.replace(config, horizon=horizon)
    return compare.run(config, loaded, quiet=args.quiet)


def unflagged_non_finite(result: Any) -> int:
    """Forecast values that are non-finite and not flagged (the target: none)."""
    count = 0
    for outcome in result.outcomes:
        kept = outcome.forecasts[outcome.kept]
        count += int(np.count_nonzero(~np.isfinite(kept)))
    return count


def row(series: Series, result: Any, seconds: float) -> dict[str, Any]:
    """The figures of one comparison."""
    best = result.best_validated
    neural = result.outcome(best)
    median = result.outcome(best + "_median")
    ets = result.outcome("auto_ets").mean("rmse")
    entry: dict[str, Any] = {
        "series": series.name,
        "frequency": series.frequency,
        "horizon": result.config.horizon,
        "season": list(result.seasons.lengths),
        "origins": int(len(result.origins)),
        "best_validated": best,
        "norm": list(median.norm),
        "window": neural.spec.window,
        "neural_rmse_mean": neural.mean("rmse"),
        "neural_rmse_worst": neural.worst("rmse"),
        "median_rmse": median.mean("rmse"),
        "median_mase": median.mean("mase"),
        "median_coverage": median.coverage,
        "flagged_seeds": int(neural.flags.flagged.sum()) if neural.flags is not None else 0,
        "unflagged_non_finite": unflagged_non_finite(result),
        "verdict": result.verdict.sentence if result.verdict else "",
        "state_test": (
            result.state_test.sentence("stateful", "stateless") if result.state_test else ""
        ),
        "seconds": seconds,
    }
    for name in STATISTICAL:
        try:
            entry[f"{name}_rmse"] = result.outcome(name).mean("rmse")
        except KeyError:
            entry[f"{name}_rmse"] = None
    entry["persistence_rmse"] = result.outcome("persistence").mean("rmse")
    entry["ratio_to_ets"] = entry["median_rmse"] / ets
    entry["best_neural_median"] = min(
        (o for o in result.outcomes if o.kind == "ensemble"), key=lambda o: o.mean("rmse")
    ).name
    return entry


def geometric_mean(values: Sequence[float]) -> float:
    """Geometric mean of positive ratios (NaN when there is none)."""
    values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Geometric mean ratio, wins and the targets, per horizon kind."""
    out = {}
    for kind in ("one", "season"):
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        ratio = geometric_mean([r["ratio_to_ets"] for r in chosen])
        wins = sum(1 for r in chosen if r["ratio_to_ets"] < 1.0)
        baselines = {
            name: geometric_mean(
                [
                    r[f"{name}_rmse"] / r["auto_ets_rmse"]
                    for r in chosen
                    if r[f"{name}_rmse"] is not None
                ]
            )
            for name in ("auto_theta", "auto_arima", "seasonal_naive", "persistence")
        }
        best_stat = [
            min(r[f"{name}_rmse"] for name in STATISTICAL if r[f"{name}_rmse"] is not None)
            for r in chosen
        ]
        out[kind] = {
            "wins_over_best_statistical": sum(
                1 for r, best in zip(chosen, best_stat, strict=True) if r["median_rmse"] < best
            ),
            "geomean_ratio_to_best_statistical": geometric_mean(
                [r["median_rmse"] / best for r, best in zip(chosen, best_stat, strict=True)]
            ),
            "series": len(chosen),
            "geomean_ratio_to_ets": ratio,
            "wins_over_ets": wins,
            "baselines_geomean_ratio_to_ets": baselines,
            "ratio_target_met": bool(ratio <= TARGET_RATIO),
            "wins_target_met": bool(wins >= TARGET_WINS),
            "unflagged_non_finite": sum(r["unflagged_non_finite"] for r in chosen),
        }
    return out


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The table the README quotes."""
    lines = []
    for kind, title in (("one", "One step ahead"), ("season", "One season ahead")):
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        lines += [
            f"**{title}** (test RMSE, original units; ratio = seed median / AutoETS)",
            "",
            "| series | h | best-validated | its seed median | ratio | AutoETS | AutoTheta "
            "| AutoARIMA | seasonal naive | persistence | interval coverage |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in chosen:
            lines.append(
                f"| {r['series']} | {r['horizon']} | {r['best_validated']} ({'/'.join(r['norm'])}) "
                f"| {_number(r['median_rmse'])} | {_number(r['ratio_to_ets'])} "
                f"| {_number(r['auto_ets_rmse'])} | {_number(r['auto_theta_rmse'])} "
                f"| {_number(r['auto_arima_rmse'])} | {_number(r['seasonal_naive_rmse'])} "
                f"| {_number(r['persistence_rmse'])} | {_number(r['median_coverage'])} |"
            )
        s = summary[kind]
        verdicts = [r["state_test"] for r in chosen if r["state_test"]]
        ahead = sum("stateful beat stateless significantly" in v for v in verdicts)
        behind = sum("stateless beat stateful significantly" in v for v in verdicts)
        lines += [
            "",
            "Stateful against stateless LSTM (Mann-Whitney over seeds, each report's test): "
            f"stateful significantly better on {ahead}, stateless significantly better on "
            f"{behind}, no significant difference on {len(verdicts) - ahead - behind} of "
            f"{len(verdicts)} series.",
        ]
        lines += [
            "",
            f"Geometric mean of the ratio: {_number(s['geomean_ratio_to_ets'])} (target <= "
            f"{TARGET_RATIO}); the seed median beats AutoETS on {s['wins_over_ets']} of "
            f"{s['series']} series (target >= {TARGET_WINS}); unflagged non-finite forecast "
            f"values: {s['unflagged_non_finite']}. Against the best of the four statistical "
            f"forecasts on each series (chosen with hindsight, on the test part), the seed median "
            f"wins on {s['wins_over_best_statistical']} of {s['series']} (geometric mean ratio "
            f"{_number(s['geomean_ratio_to_best_statistical'])}).",
            "",
        ]
    return "\n".join(lines)


def _skipped_lines(skipped: Sequence[dict[str, str]]) -> str:
    """One line per comparison that could not run, with the reason."""
    if not skipped:
        return ""
    lines = [f"- {s['series']} ({s['kind']} ahead) not compared: {s['reason']}" for s in skipped]
    return "\n" + "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default: $LSTMLAB_DATA)")
    parser.add_argument("--only", nargs="+", default=(), help="series names to run")
    parser.add_argument(
        "--horizons", choices=("one", "season", "both"), default="both", help="horizons to run"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per neural model")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the models')")
    parser.add_argument("--out", type=Path, help="write every compare report under this folder")
    parser.add_argument(
        "--write", action="store_true", help="store bench/results/accuracy.{md,json}"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only write bench/results/accuracy.md again from bench/results/accuracy.json",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and the JSON line."""
    args = parse_args(argv)
    if args.render:
        stored = json.loads((RESULTS / "accuracy.json").read_text())
        table = markdown(stored["rows"], stored["summary"]) + _skipped_lines(stored["skipped"])
        (RESULTS / "accuracy.md").write_text(table)
        print(table)
        emit_json({"status": "rendered", "file": str(RESULTS / "accuracy.md")})
        return 0
    folder = data_dir(args.data)
    if not (folder / "airline_passengers.csv").exists():
        print(f"accuracy: the shared data folder {folder} is missing; set LSTMLAB_DATA")
        emit_json({"status": "skipped", "reason": f"no data at {folder}"})
        return 0
    chosen = [s for s in SERIES if not args.only or s.name in args.only]
    kinds = {"one": ("one",), "season": ("season",), "both": ("one", "season")}[args.horizons]
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for series in chosen:
        loaded = load(series, folder)
        for kind in kinds:
            started = time.perf_counter()
            try:
                result = compare_one(series, loaded, 1 if kind == "one" else None, args)
            except ValueError as error:  # a series too short for this horizon: said, not hidden
                skipped.append({"series": series.name, "kind": kind, "reason": str(error)})
                print(f"{series.name} ({kind}): skipped: {error}", flush=True)
                continue
            if result is None:
                skipped.append({"series": series.name, "kind": kind, "reason": "no season"})
                print(f"{series.name}: no season found, no season-ahead comparison")
                continue
            entry = {"kind": kind, **row(series, result, time.perf_counter() - started)}
            rows.append(entry)
            print(
                f"{series.name} h={entry['horizon']}: {entry['best_validated']} median "
                f"{_number(entry['median_rmse'])} vs AutoETS {_number(entry['auto_ets_rmse'])} "
                f"(ratio {_number(entry['ratio_to_ets'])}); {entry['verdict']} "
                f"[{entry['seconds']:.0f} s]",
                flush=True,
            )
            if args.out:
                from lstmlab.report.documents import write_compare_report

                out = args.out / f"{series.name}-h{entry['horizon']}"
                out.mkdir(parents=True, exist_ok=True)
                write_compare_report(result, out)
    summary = summarise(rows)
    table = markdown(rows, summary) + _skipped_lines(skipped)
    print()
    print(table)
    from rich import print as rich_print  # the marks are rich markup (colour, not tags)

    for kind, s in summary.items():
        rich_print(
            f"{kind}: geometric mean ratio {s['geomean_ratio_to_ets']:.3f} "
            f"{mark(s['ratio_target_met'])}, wins {s['wins_over_ets']} "
            f"{mark(s['wins_target_met'])}, unflagged non-finite {s['unflagged_non_finite']} "
            f"{mark(s['unflagged_non_finite'] == 0)}"
        )
    record = {
        "summary": summary,
        "rows": rows,
        "skipped": skipped,
        "_machine": machine_info(),
        "_versions": {
            "statsforecast": package_version("statsforecast"),
            "jax": package_version("jax"),
        },
        "_settings": {
            "seeds": args.seeds,
            "epochs": args.epochs,
            "series": [s.name for s in chosen],
        },
    }
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "accuracy.md").write_text(table)
        (RESULTS / "accuracy.json").write_text(json.dumps(record, indent=2, default=str))
    emit_json(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
