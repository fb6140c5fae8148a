"""The product's accuracy: ``Forecaster()`` with its defaults, backtested by its own method.

The seven development series of ``../shared/data`` (``accuracy.SERIES``: airline, shampoo,
household weekly, half-hourly electricity, wine, wool, lynx), each through
``Forecaster().cross_validation``, the public object's own pipeline, with nothing set but the
backtest:

- one season ahead: ``horizon`` = the series' first season, 3 windows a season apart, a model
  trained afresh for each (``refit=True``);
- one step ahead: ``horizon=1`` from every origin of the last three seasons (at least 12, at
  most a third of the series), one model trained up to the first cutoff that then observes
  each reading in turn (``refit=False``), as a live model runs.

statsforecast's AutoETS, AutoTheta, AutoARIMA and SeasonalNaive run through statsforecast's
own ``cross_validation`` with the same ``h``, ``n_windows``, ``step_size`` and ``refit``; a
check asserts that both lay out the same cutoffs and actual values. Scores per series: MASE
(the mean absolute error over the in-sample seasonal naive error of the training part before
the first cutoff) and RMSE, and the coverage of lstmlab's 90% intervals. Then, per horizon:
the geometric mean over series of lstmlab's MASE relative to AutoETS's and to the best
statistical model of each series (picked with hindsight), and the series where lstmlab beats
AutoETS. Last, one global model over the monthly series with enough history (airline and
wine), a season ahead.

Targets (issue 19), for the defaults: geometric mean MASE at most 0.95x AutoETS's and at most
1.05x the best statistical model's, better than AutoETS on at least 5 of 7 series; interval
coverage within 5 points of nominal.

    python bench/forecaster_accuracy.py                      # everything
    python bench/forecaster_accuracy.py --only airline lynx  # some series
    python bench/forecaster_accuracy.py --horizons season    # one season ahead only
    python bench/forecaster_accuracy.py --write              # bench/results/forecaster_accuracy.*

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import BENCH_DIR, emit_json, machine_info, package_version

# one list of series, one loader, and the same compile cache settings (set at its import)
from accuracy import SERIES, data_dir_or_skip, geometric_mean, load

RESULTS = BENCH_DIR / "results"
STATISTICAL = ("AutoETS", "AutoTheta", "AutoARIMA", "SeasonalNaive")
LEVEL = 90
TARGET_TO_ETS = 0.95
TARGET_TO_BEST = 1.05
TARGET_WINS = 5
TARGET_COVERAGE_POINTS = 5.0
GLOBAL_SERIES = ("airline", "wine")


def series_frame(series: Any, folder: Path) -> tuple[pd.Series, int]:
    """The series (gaps interpolated, as ``compare`` fills them) and its first season."""
    from lstmlab.data.seasons import choose_seasons

    loaded = load(series, folder)
    values = loaded.frame[series.target].astype(float)
    if series.start or series.end:
        values = values.loc[series.start : series.end]
    values = values.interpolate(limit_direction="both")
    seasons = choose_seasons(loaded.freq, values.to_numpy())
    season = seasons.lengths[0] if seasons.lengths else 1
    return values.rename(series.name), season


def long_frame(values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": values.name, "ds": values.index, "y": values.to_numpy()})


def statistical(
    data: pd.DataFrame, freq: str, season: int, h: int, windows: int, step: int, refit: bool
) -> pd.DataFrame:
    """statsforecast's own cross_validation of the four statistical models."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

    from lstmlab.experiments.baselines import statistical_options

    # compare's options: AutoARIMA's search is bounded on a long season, so that it finishes
    models = [
        AutoETS(**statistical_options("auto_ets", season)),
        AutoTheta(**statistical_options("auto_theta", season)),
        AutoARIMA(**statistical_options("auto_arima", season)),
        SeasonalNaive(**statistical_options("seasonal_naive", season)),
    ]
    return StatsForecast(models=models, freq=freq, n_jobs=1).cross_validation(
        df=data, h=h, n_windows=windows, step_size=step, refit=refit
    )


def mase_scale(history: np.ndarray, season: int) -> float:
    """Mean absolute error of the seasonal naive forecast in sample (plain naive: season 1)."""
    lag = season if len(history) > season else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def scores(errors: np.ndarray, scale: float) -> dict[str, float]:
    return {
        "mase": float(np.mean(np.abs(errors)) / scale),
        "rmse": float(np.sqrt(np.mean(np.square(errors)))),
    }


def backtest(
    name: str,
    values: pd.DataFrame,
    freq: str,
    season: int,
    kind: str,
    quiet: bool,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """lstmlab and the statistical models on the same windows of one case."""
    from lstmlab import Forecaster

    lengths = values.groupby("unique_id").size()
    if kind == "season":
        h, step, refit = season, season, True
        windows = 3
    else:
        h, step, refit = 1, 1, False
        windows = int(min(max(12, 3 * season), lengths.min() // 3))
    started = time.perf_counter()
    forecaster = Forecaster(quiet=quiet, **settings)
    ours = forecaster.cross_validation(
        values,
        horizon=h,
        windows=windows,
        step=step,
        refit=refit,
        level=LEVEL,
        id_col="unique_id",
        time_col="ds",
        target="y",
        freq=freq,
    )
    neural_seconds = time.perf_counter() - started
    started = time.perf_counter()
    theirs = statistical(values, freq, season, h, windows, step, refit)
    stat_seconds = time.perf_counter() - started
    theirs = theirs.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    ours = ours.sort_values(["series_id", "cutoff", "time"]).reset_index(drop=True)
    # the same windows: cutoffs, times and actual values, row for row
    assert ours["series_id"].tolist() == theirs["unique_id"].astype(str).tolist()
    assert (ours["cutoff"].to_numpy() == theirs["cutoff"].to_numpy()).all()
    assert np.array_equal(ours["actual"].to_numpy(), theirs["y"].to_numpy())
    first_cutoff = ours.groupby("series_id")["cutoff"].min()
    result: dict[str, Any] = {
        "case": name,
        "kind": kind,
        "horizon": h,
        "windows": windows,
        "season": season,
        "forecasts": int(len(ours)),
        "neural_seconds": neural_seconds,
        "statistical_seconds": stat_seconds,
    }
    per_series = []
    for series_id, part in ours.groupby("series_id", sort=False):
        history = values[values["unique_id"] == series_id]
        history = history[history["ds"] <= first_cutoff[series_id]]["y"].to_numpy()
        scale = mase_scale(history, season)
        rows = theirs["unique_id"].astype(str) == series_id
        entry = {"lstmlab": scores(part["actual"].to_numpy() - part["forecast"].to_numpy(), scale)}
        for model in STATISTICAL:
            entry[model] = scores(
                theirs.loc[rows, "y"].to_numpy() - theirs.loc[rows, model].to_numpy(), scale
            )
        inside = (part["actual"] >= part["lower"]) & (part["actual"] <= part["upper"])
        finite = np.isfinite(part["lower"]) & np.isfinite(part["upper"])
        entry["coverage"] = float(inside[finite].mean()) if finite.any() else None
        entry["interval_rows"] = int(finite.sum())
        per_series.append(entry)
    result["per_series"] = per_series
    for metric in ("mase", "rmse"):
        for model in ("lstmlab", *STATISTICAL):
            result[f"{model}_{metric}"] = geometric_mean([e[model][metric] for e in per_series])
    covered = [e["coverage"] for e in per_series if e["coverage"] is not None]
    result["coverage"] = float(np.mean(covered)) if covered else None
    result["chosen"] = (
        forecaster_choice(values, freq, quiet, settings) if kind == "season" else None
    )
    return result


def forecaster_choice(
    values: pd.DataFrame, freq: str, quiet: bool, settings: dict[str, Any]
) -> str:
    """The model ``Forecaster()`` picks on the whole series (what a user would ship)."""
    from lstmlab import Forecaster

    fitted = Forecaster(quiet=quiet, **settings).fit(
        values, id_col="unique_id", time_col="ds", target="y", freq=freq
    )
    return f"{fitted.metrics['model']} ({fitted.metrics['norm']})"


def _finite(values: Any) -> list[float]:
    """The finite numbers among ``values`` (a NaN or ``None`` score: that model gave none)."""
    return [v for v in values if v is not None and math.isfinite(v)]


def summarise(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for kind in ("season", "one"):
        chosen = [c for c in cases if c["kind"] == kind and not c["case"].startswith("global")]
        if not chosen:
            continue
        to_ets = [c["lstmlab_mase"] / c["AutoETS_mase"] for c in chosen]
        best = [min(_finite(c[f"{m}_mase"] for m in STATISTICAL)) for c in chosen]
        to_best = [c["lstmlab_mase"] / b for c, b in zip(chosen, best, strict=True)]
        covered = [c["coverage"] for c in chosen if c["coverage"] is not None]
        ratio_ets, ratio_best = geometric_mean(to_ets), geometric_mean(to_best)
        wins = sum(r < 1.0 for r in to_ets)
        coverage = float(np.mean(covered)) if covered else None
        out[kind] = {
            "series": len(chosen),
            "geomean_mase_ratio_to_ets": ratio_ets,
            "geomean_mase_ratio_to_best_statistical": ratio_best,
            "wins_over_ets": wins,
            "coverage": coverage,
            "to_ets_target_met": bool(ratio_ets <= TARGET_TO_ETS),
            "to_best_target_met": bool(ratio_best <= TARGET_TO_BEST),
            "wins_target_met": bool(wins >= TARGET_WINS),
            "coverage_target_met": None
            if coverage is None
            else bool(abs(100 * coverage - LEVEL) <= TARGET_COVERAGE_POINTS),
        }
    return out


def _n(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(cases: Sequence[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = []
    titles = {"season": "One season ahead (3 refitted windows)", "one": "One step ahead"}
    for kind in ("season", "one"):
        chosen = [c for c in cases if c["kind"] == kind]
        if not chosen:
            continue
        lines += [
            f"**{titles[kind]}**: MASE (RMSE); ratio = lstmlab / AutoETS in MASE",
            "",
            "| series | h | windows | lstmlab `Forecaster()` | ratio | AutoETS | AutoTheta "
            "| AutoARIMA | SeasonalNaive | 90% coverage | chosen model |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in chosen:
            cells = [
                f"{_n(c[f'{m}_mase'])} ({_n(c[f'{m}_rmse'])})" for m in ("lstmlab", *STATISTICAL)
            ]
            ratio = c["lstmlab_mase"] / c["AutoETS_mase"]
            coverage = "—" if c["coverage"] is None else f"{100 * c['coverage']:.0f}%"
            lines.append(
                f"| {c['case']} | {c['horizon']} | {c['windows']} | {cells[0]} | {ratio:.3g} | "
                + " | ".join(cells[1:])
                + f" | {coverage} | {c['chosen'] or '—'} |"
            )
        s = summary.get(kind)
        if s:
            lines += [
                "",
                f"Geometric mean MASE ratio to AutoETS {s['geomean_mase_ratio_to_ets']:.3g} "
                f"(target <= {TARGET_TO_ETS}), to the best statistical model of each series "
                f"{s['geomean_mase_ratio_to_best_statistical']:.3g} (target <= "
                f"{TARGET_TO_BEST}); better than AutoETS on {s['wins_over_ets']} of "
                f"{s['series']} (target >= {TARGET_WINS}); 90% interval coverage "
                + ("—" if s["coverage"] is None else f"{100 * s['coverage']:.0f}%")
                + ".",
            ]
        lines.append("")
    return "\n".join(lines)


def merged(cases: list[dict[str, Any]], logs: Sequence[str]) -> list[dict[str, Any]]:
    """This run's cases, then those of the written results and of ``logs`` it did not redo
    (the product's figures only: a run with other settings is refused)."""
    from _common import last_json_line

    earlier = []
    written = RESULTS / "forecaster_accuracy.json"
    if written.is_file():
        earlier.append(json.loads(written.read_text()))
    for log in logs:
        record = last_json_line(Path(log).read_text())
        if record is None or record.get("benchmark") != "forecaster_accuracy":
            raise SystemExit(
                f"{log} holds no forecaster_accuracy JSON line; pass this script's output"
            )
        earlier.append(record)
    out = list(cases)
    done = {(c["case"], c["kind"]) for c in out}
    for record in earlier:
        if record.get("settings", "defaults") != "defaults":  # runs before --set: defaults
            raise SystemExit("an earlier run measured other settings than the defaults")
        for case in record["cases"]:
            if (case["case"], case["kind"]) not in done:
                out.append(case)
                done.add((case["case"], case["kind"]))
    order = {s.name: k for k, s in enumerate(SERIES)}
    return sorted(out, key=lambda c: (order.get(c["case"], len(order)), c["kind"]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="the shared data folder")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=[series.name for series in SERIES],
        help="these series only (none: run nothing, e.g. to --write what --merge gives)",
    )
    parser.add_argument("--horizons", nargs="+", choices=("season", "one"), default=None)
    parser.add_argument("--no-global", action="store_true", help="skip the global model")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write bench/results/forecaster_accuracy.{md,json}: the cases of this run, and "
        "those of earlier runs already there (or given with --merge) that it did not redo",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="LOG",
        help="with --write: earlier runs' output (their last line, the JSON object) whose cases "
        "join this run's, so a long benchmark may run in parts (e.g. --only electricity)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="an ablation: ForecasterConfig fields other than the defaults (e.g. refit=False); "
        "the tables then measure that, not the product",
    )
    return parser.parse_args(argv)


def settings_of(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set`` as ForecasterConfig keyword arguments (values read as Python literals)."""
    import ast

    out = {}
    for pair in pairs:
        field, _, value = pair.partition("=")
        try:
            out[field] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[field] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = data_dir_or_skip(args.data, "forecaster_accuracy")
    if folder is None:
        return 0
    kinds = args.horizons or ["season", "one"]
    settings = settings_of(args.set)
    cases, loaded = [], {}
    for series in SERIES:
        if args.only is not None and series.name not in args.only:
            continue
        values, season = series_frame(series, folder)
        loaded[series.name] = (values, season)
        freq = pd.infer_freq(values.index)
        for kind in kinds:
            started = time.perf_counter()
            try:
                case = backtest(
                    series.name, long_frame(values), freq, season, kind, args.quiet, settings
                )
            except ValueError as error:
                print(f"{series.name} ({kind}): not compared: {error}", flush=True)
                continue
            print(
                f"{series.name} ({kind}): lstmlab MASE {case['lstmlab_mase']:.4g}, AutoETS "
                f"{case['AutoETS_mase']:.4g} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            cases.append(case)
    if not args.no_global and "season" in kinds and all(n in loaded for n in GLOBAL_SERIES):
        seasons = {loaded[n][1] for n in GLOBAL_SERIES}
        values = pd.concat([long_frame(loaded[n][0]) for n in GLOBAL_SERIES], ignore_index=True)
        freq = pd.infer_freq(loaded[GLOBAL_SERIES[0]][0].index)
        name = "global: " + " + ".join(GLOBAL_SERIES)
        case = backtest(name, values, freq, seasons.pop(), "season", args.quiet, settings)
        cases.append(case)
    if args.write and not settings:
        cases = merged(cases, args.merge)
    summary = summarise(cases)
    table = markdown(cases, summary)
    print(table)
    record = {
        "benchmark": "forecaster_accuracy",
        "machine": machine_info(),
        "lstmlab": package_version("lstmlab"),
        "statsforecast": package_version("statsforecast"),
        "settings": settings or "defaults",
        "summary": summary,
        "cases": cases,
    }
    if args.write and not settings:  # the README quotes the product's figures only
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "forecaster_accuracy.md").write_text(table)
        (RESULTS / "forecaster_accuracy.json").write_text(json.dumps(record, indent=1, default=str))
    emit_json(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
