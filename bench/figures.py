"""Every figure the README quotes about the seeds' experiments and the real-series comparison.

Measured through the library's Python API (not the command line) and written to two files:

* ``figures.json``: the numbers (per run, per model, per seed where there are seeds) and the
  conditions (library and JAX versions, date, git commit, machine, seeds, epochs, seconds);
* ``figures.md``: the README's tables, in Markdown, exactly as the README shows them.

What is measured:

* ``moving-average``: the official ``lstm_stateful.py`` (``MovingAverageConfig``, seed 1986)
  in four runs: the defaults (tsteps 2, lahead 1), lahead 2, batch 32 with the official
  layout for 320 epochs, and batch 32 with the streams layout for 320 epochs; test MSE of both
  models and verdicts built from the results;
* ``convergence``: the default grid (``ConvergenceConfig()``: 6 x 6 cells, 3 seeds, both
  models); how many cells agree with the script's claim, and which do not;
* ``compare``: the presets ``airline-classic`` and ``household-weekly`` (their models, epochs
  and seeds) beside the published anchors, and the library's default models
  (``CompareConfig(season=12)``) on the airline series.

    python bench/figures.py           # full run: writes bench/results/figures.{json,md}
    python bench/figures.py --quick   # few epochs, to try it: writes runs/figures-quick
    python bench/figures.py --out DIR

The data sets are read from ``$LSTMLAB_DATA`` or ``../shared/data``; a missing file skips its
table. The full run ignores ``$LSTMLAB_MAX_EPOCHS`` (it removes it from its environment). The
last line printed is one JSON object. Nothing is asserted.
"""

import argparse
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import REPO_DIR, emit_json, machine_info, package_version

DEFAULT_OUT = REPO_DIR / "bench" / "results"
QUICK_OUT = REPO_DIR / "runs" / "figures-quick"

# The four runs of the README's moving-average table: (key, row label, config changes).
MOVING_AVERAGE_RUNS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("defaults", "defaults (tsteps 2, lahead 1)", {}),
    ("lahead-2", "lahead 2", {"lahead": 2}),
    (
        "batch-32-official",
        "batch 32, official layout, 320 epochs",
        {"batch_size": 32, "epochs": 320, "layout": "official"},
    ),
    (
        "batch-32-streams",
        "batch 32, streams layout, 320 epochs",
        {"batch_size": 32, "epochs": 320, "layout": "streams"},
    ),
)
QUICK_EPOCHS = 2  # --quick: epochs of every training (moving-average, convergence, compare)
QUICK_SEEDS = 2  # --quick: seeds per compared model

PRESET_TITLES = {
    "airline-classic": "airline passengers (`--preset airline-classic`)",
    "household-weekly": "household, 7 days ahead (`--preset household-weekly`)",
}
DEFAULTS_SEASON = 12  # the airline series is monthly
MAX_EPOCHS_VARIABLE = "LSTMLAB_MAX_EPOCHS"  # lstmlab.core.train's cap on every training


# --------------------------------------------------------------------------- formatting


def format_mse(value: float) -> str:
    """An MSE with two significant digits and a short exponent: ``2.6e-5``."""
    if not math.isfinite(value):
        return "–"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_rmse(mean: float, std: float | None = None) -> str:
    """A mean RMSE with one decimal, and ``± std`` when given: ``51.6 ± 3.1``."""
    if std is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.1f}"


def format_anchor(low: float, high: float) -> str:
    """A published figure or range: ``47.5``, ``47.4-48.6``."""
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def markdown_table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]):
    """A Markdown table; ``align`` holds ``"l"`` or ``"r"`` per column."""
    rule = ["---" if a == "l" else "--:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- moving average


def _window_optimum_text(tsteps: int, lahead: int) -> str:
    """The predictor behind ``Baselines.window_optimum``: the visible inputs over tsteps."""
    visible = min(lahead, tsteps)
    inputs = "x[t]" if visible == 1 else f"(x[t] + ... + x[t-{visible - 1}])"
    return f"{inputs}/{tsteps}"


def moving_average_verdict(result: Any, batch_one_updates: int | None) -> str:
    """The verdict of one moving-average run, built from its results.

    Args:
        result: a ``MovingAverageResult``.
        batch_one_updates: the stateful model's updates in the batch-1 run, to compare a
            streams run's updates with (None to leave that out).

    Returns:
        E.g. ``"stateful converges, stateless does not, as the script says"``.
    """
    config = result.config
    stateful, stateless = result.stateful.converged, result.stateless.converged
    if stateful and stateless:
        text = "both converge"
    elif stateful:
        text = "stateful converges, stateless does not"
    elif stateless:
        text = "stateless converges, stateful does not"
    else:
        text = "neither converges"
    claimed = stateful and (stateless == config.expect_stateless_converges)
    text += ", as the script says" if claimed else ", against the script's claim"
    notes = []
    if config.batch_size > 1 and config.layout == "official":
        notes.append(f"the state comes from {config.batch_size} steps back")
    if config.layout == "streams":
        updates = result.stateful.updates
        same = " as batch 1" if batch_one_updates == updates else ""
        notes.append(f"{updates:,} updates{', the same' + same if same else ''}")
    if not (stateful and stateless) and result.baselines.window_optimum > 0:
        notes.append(
            f"the floor is predicting {_window_optimum_text(config.tsteps, config.lahead)} "
            f"({format_mse(result.baselines.window_optimum)})"
        )
    return "; ".join([text, *notes])


def _model_record(outcome: Any) -> dict[str, Any]:
    return {
        "test_mse": outcome.test_mse,
        "test_mse_layout": outcome.test_mse_layout,
        "ratio_to_mean": outcome.ratio,
        "converged": outcome.converged,
        "updates": outcome.updates,
        "seconds": outcome.seconds,
        "final_loss": float(outcome.history.loss[-1]) if outcome.history.loss else None,
    }


def measure_moving_average(quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    """The four moving-average runs: their figures, verdicts and table rows."""
    from lstmlab.experiments.moving_average import MovingAverageConfig, run

    runs = []
    batch_one_updates = None
    for key, label, changes in MOVING_AVERAGE_RUNS:
        config = MovingAverageConfig(**changes)
        if quick:
            config = dataclasses.replace(config, epochs=QUICK_EPOCHS)
        started = time.perf_counter()
        result = run(config, quiet=True, log=lambda *args, **kwargs: None)
        seconds = time.perf_counter() - started
        if config.batch_size == 1:
            batch_one_updates = result.stateful.updates
        verdict = moving_average_verdict(result, batch_one_updates)
        progress(
            f"moving-average {key}: stateful {format_mse(result.stateful.test_mse)}, stateless "
            f"{format_mse(result.stateless.test_mse)} ({seconds:.1f} s): {verdict}"
        )
        runs.append(
            {
                "run": key,
                "label": label,
                "config": dataclasses.asdict(config),
                "stateful": _model_record(result.stateful),
                "stateless": _model_record(result.stateless),
                "baselines": dataclasses.asdict(result.baselines),
                "verdict": verdict,
                "seconds": seconds,
            }
        )
    return {"seed": MovingAverageConfig().seed, "runs": runs}


def moving_average_table(figures: dict[str, Any]) -> str:
    """The README's moving-average table."""
    rows = [
        [
            run["label"],
            format_mse(run["stateful"]["test_mse"]),
            format_mse(run["stateless"]["test_mse"]),
            run["verdict"],
        ]
        for run in figures["runs"]
    ]
    return markdown_table(
        ["run", "stateful test MSE", "stateless test MSE", "verdicts"], "lrrl", rows
    )


# --------------------------------------------------------------------------- convergence


def measure_convergence(quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    """The default convergence grid: agreement with the claim per model, disagreeing cells."""
    from lstmlab.experiments.convergence import MODES, ConvergenceConfig, run

    config = ConvergenceConfig()
    if quick:
        config = dataclasses.replace(config, epochs=QUICK_EPOCHS)
    result = run(config, quiet=True)
    modes = {}
    for mode in MODES:
        cells = result.cells(mode)
        disagreeing = [
            {
                "tsteps": cell.tsteps,
                "lahead": cell.lahead,
                "claimed": cell.claimed,
                "seeds_converged": round(cell.fraction * config.seeds),
                "median_ratio": cell.median_ratio,
            }
            for cell in cells
            if not cell.agrees
        ]
        modes[mode] = {
            "cells": len(cells),
            "agreeing": len(cells) - len(disagreeing),
            "disagreeing": disagreeing,
        }
        progress(
            f"convergence {mode}: {len(cells) - len(disagreeing)} of {len(cells)} cells agree "
            "with the claim"
        )
    return {
        "config": dataclasses.asdict(config),
        "trainings": len(result.rows),
        "seconds": result.seconds,
        "modes": modes,
    }


def convergence_table(figures: dict[str, Any]) -> str:
    """The README's convergence table: one row per model."""
    seeds = figures["config"]["seeds"]
    rows = []
    for mode in ("stateless", "stateful"):
        entry = figures["modes"][mode]
        cells = ", ".join(
            f"({cell['tsteps']}, {cell['lahead']}): {cell['seeds_converged']}/{seeds}"
            for cell in entry["disagreeing"]
        )
        claim = "converges only when lahead >= tsteps" if mode == "stateless" else "converges"
        rows.append(
            [
                f"{mode} ({claim})",
                f"{entry['agreeing']} of {entry['cells']}",
                cells or "none",
            ]
        )
    return markdown_table(
        [
            "model (the script's claim)",
            "cells agreeing",
            "cells disagreeing (tsteps, lahead): seeds converged",
        ],
        "lrl",
        rows,
    )


# --------------------------------------------------------------------------- compare


def data_dir() -> Path:
    """``$LSTMLAB_DATA``, or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("LSTMLAB_DATA", REPO_DIR.parent / "shared" / "data"))


def _outcome_record(outcome: Any) -> dict[str, Any]:
    rmse = [float(value) for value in outcome.metrics["rmse"].ravel()]
    return {
        "name": outcome.name,
        "label": outcome.label,
        "description": outcome.description,
        "baseline": outcome.is_baseline,
        "rmse_mean": outcome.mean("rmse"),
        "rmse_std": outcome.std("rmse"),
        "rmse_per_seed": rmse,
        "mae_mean": outcome.mean("mae"),
        "mape_mean": outcome.mean("mape"),
        "window": None if outcome.spec is None else outcome.spec.window,
        "units": None if outcome.spec is None else list(outcome.spec.units),
        "epochs": None if outcome.spec is None else outcome.spec.epochs,
        "seconds": outcome.seconds,
    }


def _run_compare(config: Any, series: Any, quick: bool) -> tuple[Any, float]:
    from lstmlab.experiments import compare

    if quick:
        config = dataclasses.replace(
            compare.override_models(config, epochs=QUICK_EPOCHS), seeds=QUICK_SEEDS
        )
    started = time.perf_counter()
    result = compare.run(config, series, quiet=True)
    return result, time.perf_counter() - started


def measure_compare(quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    """The two presets beside their anchors, and the default models on the airline series."""
    from lstmlab.experiments import compare

    out: dict[str, Any] = {}
    for name in ("airline-classic", "household-weekly"):
        path = data_dir() / compare.PRESET_FILES[name]
        if not path.is_file():
            progress(f"compare {name}: skipped, no data at {path}")
            out[name] = {"status": "skipped", "reason": f"no data at {path}"}
            continue
        series = compare.load_preset_series(name, path)
        result, seconds = _run_compare(compare.PRESETS[name], series, quick)
        out[name] = _compare_record(result, seconds, path)
        out[name]["anchors"] = [dataclasses.asdict(a) for a in compare.ANCHORS[name]]
        progress(f"compare {name}: {_compare_line(result)} ({seconds:.1f} s)")
        if name == "airline-classic":
            config = compare.CompareConfig(season=DEFAULTS_SEASON)
            result, seconds = _run_compare(config, series, quick)
            out["airline-defaults"] = _compare_record(result, seconds, path)
            progress(f"compare airline, default models: {_compare_line(result)} ({seconds:.1f} s)")
    return out


def _compare_record(result: Any, seconds: float, path: Path) -> dict[str, Any]:
    config = result.config
    return {
        "status": "ok",
        "data": path.name,
        "seeds": config.seeds,
        "seed_values": list(range(config.seed, config.seed + config.seeds)),
        "season": config.season,
        "horizon": config.horizon,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "seconds": seconds,
        "outcomes": [_outcome_record(outcome) for outcome in result.outcomes],
    }


def _compare_line(result: Any) -> str:
    return ", ".join(
        f"{o.name} {format_rmse(o.mean('rmse'), None if o.is_baseline else o.std('rmse'))}"
        for o in result.outcomes
    )


def _model_labels(outcomes: list[dict[str, Any]]) -> dict[str, str]:
    """Row labels of the neural models: their label, with the window when windows differ."""
    neural = [o for o in outcomes if not o["baseline"]]
    windows = {o["window"] for o in neural}
    return {
        o["name"]: o["label"] + (f", window {o['window']}" if len(windows) > 1 else "")
        for o in neural
    }


def _baseline_label(outcome: dict[str, Any], season: int | None) -> str:
    if outcome["name"] == "seasonal_naive":
        return f"seasonal naive (season {season})"
    return "persistence (last value)"


def preset_table(name: str, figures: dict[str, Any]) -> str:
    """The README's table of one preset: model | ours | published."""
    outcomes = figures["outcomes"]
    labels = _model_labels(outcomes)
    by_model = {a["model"]: a for a in figures["anchors"] if a["model"] is not None}
    # Published figures for a family of models (the household LSTMs) go beside each LSTM;
    # the others (the best ConvLSTM) get a row of their own.
    shared = [a for a in figures["anchors"] if a["model"] is None]
    family = [a for a in shared if a["description"].startswith("LSTMs")]
    others = [a for a in shared if not a["description"].startswith("LSTMs")]
    seeds = figures["seeds"]
    rows = []
    for outcome in [o for o in outcomes if not o["baseline"]] + [
        o for o in outcomes if o["baseline"]
    ]:
        anchor = by_model.get(outcome["name"])
        published = format_anchor(anchor["rmse_low"], anchor["rmse_high"]) if anchor else ""
        if not anchor and family and not outcome["baseline"] and outcome["name"] != "mlp":
            published = format_anchor(family[0]["rmse_low"], family[0]["rmse_high"]) + " (LSTMs)"
        if outcome["baseline"]:
            label = _baseline_label(outcome, figures["season"])
            ours = format_rmse(outcome["rmse_mean"])
        else:
            label = labels[outcome["name"]]
            ours = format_rmse(outcome["rmse_mean"], outcome["rmse_std"])
        rows.append([label, ours, published])
    for anchor in others:
        rows.append(
            [
                f"published: {anchor['description']}",
                "",
                format_anchor(anchor["rmse_low"], anchor["rmse_high"]),
            ]
        )
    return markdown_table(
        [PRESET_TITLES[name], f"ours (test RMSE, {seeds} seeds)", "published"], "lrr", rows
    )


def defaults_table(figures: dict[str, Any]) -> str:
    """The airline series with the library's default models, against persistence."""
    outcomes = figures["outcomes"]
    labels = _model_labels(outcomes)
    persistence = next(o["rmse_mean"] for o in outcomes if o["name"] == "persistence")
    neural = [o for o in outcomes if not o["baseline"]]
    windows = sorted({o["window"] for o in neural})
    epochs = sorted({o["epochs"] for o in neural})
    title = (
        f"airline passengers, our defaults (window {'/'.join(map(str, windows))}, "
        f"{'/'.join(map(str, epochs))} epochs, season {figures['season']})"
    )
    rows = []
    for outcome in neural + [o for o in outcomes if o["baseline"]]:
        if outcome["baseline"]:
            label = _baseline_label(outcome, figures["season"])
            ours = format_rmse(outcome["rmse_mean"])
        else:
            units = ", ".join(map(str, outcome["units"]))
            label = f"{labels[outcome['name']]} ({units} units)"
            ours = format_rmse(outcome["rmse_mean"], outcome["rmse_std"])
        relative = outcome["rmse_mean"] / persistence - 1.0
        rows.append([label, ours, "" if outcome["name"] == "persistence" else f"{relative:+.0%}"])
    return markdown_table(
        [title, f"ours (test RMSE, {figures['seeds']} seeds)", "against persistence"],
        "lrr",
        rows,
    )


# --------------------------------------------------------------------------- documents


def _git_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


def conditions(quick: bool) -> dict[str, Any]:
    """Library and JAX versions, date, git commit, machine, and whether this is a quick run."""
    from lstmlab import __version__

    return {
        "lstmlab": __version__,
        "jax": package_version("jax"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
        "machine": machine_info(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "quick": quick,
    }


def markdown_document(record: dict[str, Any]) -> str:
    """``figures.md``: the README's tables under one heading each, and the conditions."""
    meta = record["conditions"]
    machine = meta["machine"]
    quick = " --quick (NOT the README's figures)" if meta["quick"] else ""
    lines = [
        "# Figures quoted in the README",
        "",
        f"Written by `bench/figures.py`{quick} on {meta['date']}: lstmlab {meta['lstmlab']} "
        f"(commit {meta['git_commit']}), "
        f"jax {meta['jax']}, {machine['cpu']} ({machine['cores']} cores), Python "
        f"{machine['python']}; the whole run took {record['seconds']:.0f} s. The numbers, "
        "per seed, are in `figures.json`.",
        "",
    ]
    moving = record.get("moving_average")
    if moving:
        lines += [
            "## moving-average",
            "",
            f"Seed {moving['seed']}; converged: test MSE at most "
            f"{moving['runs'][0]['config']['threshold']:.0%} of predicting the training mean.",
            "",
            moving_average_table(moving),
            "",
        ]
    grid = record.get("convergence")
    if grid:
        config = grid["config"]
        lines += [
            "## convergence",
            "",
            f"tsteps {config['tsteps'][0]}..{config['tsteps'][-1]} x lahead "
            f"{config['lahead'][0]}..{config['lahead'][-1]}, {config['seeds']} seeds from "
            f"{config['seed']}, {config['epochs']} epochs: {grid['trainings']} trainings in "
            f"{grid['seconds']:.1f} s. A cell agrees when every seed does what the claim says.",
            "",
            convergence_table(grid),
            "",
        ]
    compared = record.get("compare") or {}
    for name in ("airline-classic", "household-weekly"):
        figures = compared.get(name)
        if figures and figures.get("status") == "ok":
            lines += [f"## compare {name}", "", preset_table(name, figures), ""]
    defaults = compared.get("airline-defaults")
    if defaults and defaults.get("status") == "ok":
        lines += ["## compare airline, default models", "", defaults_table(defaults), ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        help=f"folder for figures.json and figures.md (default: {DEFAULT_OUT}; with --quick "
        f"{QUICK_OUT})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_EPOCHS} epochs per training and {QUICK_SEEDS} seeds per compared model, "
        "to try the script (default: off, the full run)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every figure, write figures.json and figures.md, print a JSON line last."""
    args = parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    started = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True)

    # The full run measures the real trainings: the README test's epoch cap must not apply.
    capped = os.environ.get(MAX_EPOCHS_VARIABLE)
    if capped and not args.quick:
        del os.environ[MAX_EPOCHS_VARIABLE]
        progress(f"{MAX_EPOCHS_VARIABLE}={capped} ignored: the full run trains every epoch")
    record: dict[str, Any] = {"conditions": conditions(args.quick)}
    record["conditions"]["max_epochs_cap"] = os.environ.get(MAX_EPOCHS_VARIABLE) or None
    record["moving_average"] = measure_moving_average(args.quick, progress)
    record["convergence"] = measure_convergence(args.quick, progress)
    record["compare"] = measure_compare(args.quick, progress)
    record["seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    document = markdown_document(record)
    (out / "figures.md").write_text(document, encoding="utf-8")
    print(document)
    print(f"wrote {out / 'figures.json'} and {out / 'figures.md'} in {record['seconds']:.0f} s")
    emit_json(
        {
            "status": "ok",
            "seconds": record["seconds"],
            "quick": args.quick,
            "moving_average": {
                run["run"]: f"{format_mse(run['stateful']['test_mse'])} / "
                f"{format_mse(run['stateless']['test_mse'])}"
                for run in record["moving_average"]["runs"]
            },
            "convergence": {
                mode: f"{entry['agreeing']} of {entry['cells']}"
                for mode, entry in record["convergence"]["modes"].items()
            },
            "compare": {
                name: (
                    {o["name"]: round(o["rmse_mean"], 1) for o in figures["outcomes"]}
                    if figures.get("status") == "ok"
                    else figures
                )
                for name, figures in record["compare"].items()
            },
            "files": [str(out / "figures.json"), str(out / "figures.md")],
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
