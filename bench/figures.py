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
* ``compare``: the presets ``airline-classic`` (the published protocol: unscaled MLP,
  whole-series scaler for the LSTMs, state reset before the test part, fixed epochs),
  ``airline`` (the corrected run: lstmlab's defaults, the statistical baselines, the seed
  medians with their conformal intervals) and ``household-weekly``, each with its models,
  epochs and seeds: per model the mean ± std over the seeds whose forecasts pass the sanity
  check, the seed range and the flagged seeds, beside the published figures (single runs);
  for the corrected airline run RMSE against AutoETS and against persistence; and the
  report's sentences (verdict, best-validated model, stateful against stateless).

    python bench/figures.py                  # full run: writes bench/results/figures.{json,md}
    python bench/figures.py --only compare   # re-measure the compare tables only
    python bench/figures.py --quick          # few epochs, to try it: writes runs/figures-quick
    python bench/figures.py --out DIR

``--only SECTION`` (repeatable; ``moving_average``, ``convergence``, ``compare``) re-measures
those sections and keeps the others from the ``figures.json`` already in the output folder;
each section records when, on which commit and in how long it was measured.

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

COMPARE_PRESETS = ("airline-classic", "airline", "household-weekly")
PRESET_TITLES = {
    "airline-classic": "airline passengers, published protocol (`--preset airline-classic`)",
    "airline": "airline passengers, corrected (`--preset airline`)",
    "household-weekly": "household, 7 days ahead (`--preset household-weekly`)",
}
SECTIONS = ("moving_average", "convergence", "compare")  # the keys of figures.json, in order
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


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _outcome_record(result: Any, outcome: Any) -> dict[str, Any]:
    """One model of a comparison: its scores over the kept seeds, its flags, its settings."""
    import numpy as np

    rmse = np.asarray(outcome.metrics["rmse"], dtype=np.float64).ravel()
    kept = outcome.scores("rmse")
    flags = outcome.flags
    spec = outcome.spec
    coverage = outcome.coverage if outcome.lower is not None else float("nan")
    return {
        "name": outcome.name,
        "label": outcome.label,
        "kind": outcome.kind,
        "description": outcome.description,
        "rmse_mean": _finite(outcome.mean("rmse")),
        "rmse_std": _finite(outcome.std("rmse")),
        "rmse_median": _finite(outcome.median("rmse")),
        "rmse_min": _finite(float(np.min(kept))) if kept.size else None,
        "rmse_max": _finite(float(np.max(kept))) if kept.size else None,
        "rmse_worst": _finite(outcome.worst("rmse")),
        "rmse_per_seed": [_finite(float(value)) for value in rmse],
        "mae_mean": _finite(outcome.mean("mae")),
        "mase_mean": _finite(outcome.mean("mase")),
        "coverage": _finite(float(coverage)) if math.isfinite(outcome.mean("rmse")) else None,
        "rmse_vs_persistence": _finite(result.relative_to_persistence(outcome.name)),
        "flagged": 0 if flags is None else int(np.count_nonzero(flags.flagged)),
        "flagged_seeds": []
        if flags is None
        else [result.config.seed + int(i) for i in np.flatnonzero(flags.flagged)],
        "flag_reasons": [] if flags is None else list(flags.reasons),
        "window": None if spec is None else spec.window,
        "units": None if spec is None else list(spec.units),
        "epochs": None if spec is None else spec.epochs,
        "early_stopping": None if spec is None else spec.early_stopping,
        "epochs_run_median": float(np.median(outcome.epochs_run))
        if len(outcome.epochs_run)
        else None,
        "norm": list(outcome.norm),
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
    """The presets ``airline-classic``, ``airline`` and ``household-weekly``, as ``run`` gives them.

    Each preset is run with its own models, epochs, seeds and baselines (``--quick``: fewer
    epochs and seeds); its record holds every model's scores over the kept seeds, the seed
    range, the flagged seeds, the published anchors and the report's sentences (verdict,
    best-validated model against the best statistical baseline, stateful against stateless).
    """
    from lstmlab.experiments import compare
    from lstmlab.report.documents import compare_summary

    out: dict[str, Any] = {}
    for name in COMPARE_PRESETS:
        path = data_dir() / compare.PRESET_FILES[name]
        if not path.is_file():
            progress(f"compare {name}: skipped, no data at {path}")
            out[name] = {"status": "skipped", "reason": f"no data at {path}"}
            continue
        series = compare.load_preset_series(name, path)
        result, seconds = _run_compare(compare.PRESETS[name], series, quick)
        summary = compare_summary(result)
        config = result.config
        versus = summary["best_validated_vs_baseline"]
        out[name] = {
            "status": "ok",
            "data": path.name,
            "seeds": config.seeds,
            "seed_values": list(range(config.seed, config.seed + config.seeds)),
            "seasons": list(config.seasons or ()),
            "season_source": result.seasons.source,
            "horizon": config.horizon,
            "strategy": config.strategy,
            "validation": config.validation,
            "level": config.level,
            "folds": len(result.folds),
            "n_train": result.n_train,
            "n_test": result.n_test,
            "origins": len(result.origins),
            "seconds": seconds,
            "outcomes": [_outcome_record(result, outcome) for outcome in result.outcomes],
            "verdict": None if summary["verdict"] is None else summary["verdict"]["sentence"],
            "best_validated": result.best_validated,
            "best_validated_sentence": None if versus is None else versus["sentence"],
            "state_test": None
            if summary["state_test"] is None
            else {
                key: summary["state_test"][key]
                for key in ("p_value", "median_stateful", "median_stateless", "sentence")
            },
            "anchors": [dataclasses.asdict(anchor) for anchor in result.anchors],
            "notes": list(result.notes),
        }
        line = ", ".join(
            f"{o['name']} {_format_mean(o)}"
            for o in out[name]["outcomes"]
            if o["kind"] != "ensemble"
        )
        progress(f"compare {name}: {line} ({seconds:.1f} s)")
        if out[name]["state_test"]:
            progress(f"compare {name}: {out[name]['state_test']['sentence']}")
    return out


def _format_mean(outcome: dict[str, Any]) -> str:
    """``51.6 ± 3.1`` over the kept seeds (one number for a baseline or a seed median)."""
    if outcome["rmse_mean"] is None:
        return "–"
    if outcome["kind"] != "neural":
        return format_rmse(outcome["rmse_mean"])
    return format_rmse(outcome["rmse_mean"], outcome["rmse_std"] or 0.0)


def _seed_range(outcome: dict[str, Any], seeds: int) -> str:
    """``45.1–79.0``, with the flagged seeds (left out of mean, range and median) named."""
    if outcome["kind"] != "neural":
        return ""
    if outcome["rmse_min"] is None:
        return f"every seed flagged ({outcome['flagged']} of {seeds})"
    text = f"{outcome['rmse_min']:.1f}–{outcome['rmse_max']:.1f}"
    if outcome["flagged"]:
        seeds_text = ", ".join(map(str, outcome["flagged_seeds"]))
        text += f" ({outcome['flagged']} of {seeds} flagged, left out: seed {seeds_text})"
    return text


def _relative(value: float | None, reference: float | None) -> str:
    if value is None or reference is None or reference == 0:
        return "–"
    return f"{value / reference - 1.0:+.0%}"


def _label(outcome: dict[str, Any], figures: dict[str, Any], *, settings: bool) -> str:
    """A row label: the model, with its window (and chosen input norm when ``settings``)."""
    if outcome["kind"] == "baseline":
        if outcome["name"] == "seasonal_naive" and figures["seasons"]:
            return f"seasonal naive (statsforecast, season {figures['seasons'][0]})"
        return outcome["label"]
    if outcome["kind"] == "ensemble":
        return f"{outcome['label']} (`{outcome['name']}`)"
    details = [f"window {outcome['window']}"]
    if settings and outcome["norm"]:
        details.append(f"norm {'/'.join(dict.fromkeys(outcome['norm']))}")
    if settings and outcome["early_stopping"] and figures["validation"]:
        details.append(f"{outcome['epochs_run_median']:.0f} of at most {outcome['epochs']} epochs")
    else:
        details.append(f"{outcome['epochs']} epochs")
    return f"{outcome['label']} ({', '.join(details)})"


def _published(outcome: dict[str, Any], anchors: list[dict[str, Any]]) -> str:
    """The published figure beside a model: its own anchor, or its family's (the LSTMs)."""
    for anchor in anchors:
        if anchor["model"] == outcome["name"]:
            return format_anchor(anchor["rmse_low"], anchor["rmse_high"])
    family = [a for a in anchors if a["model"] is None and a["description"].startswith("LSTMs")]
    if family and outcome["kind"] == "neural" and outcome["name"] != "mlp":
        return format_anchor(family[0]["rmse_low"], family[0]["rmse_high"]) + " (LSTMs)"
    return ""


def preset_table(name: str, figures: dict[str, Any]) -> str:
    """The README's table of a published-protocol preset: ours beside the published figures.

    One row per neural model (mean ± std over the kept seeds, the seed range, the flagged
    seeds) and per baseline; the published figures are single training runs.
    """
    outcomes = figures["outcomes"]
    anchors = figures["anchors"]
    seeds = figures["seeds"]
    rows = []
    for outcome in [o for o in outcomes if o["kind"] == "neural"] + [
        o for o in outcomes if o["kind"] == "baseline"
    ]:
        rows.append(
            [
                _label(outcome, figures, settings=False),
                _format_mean(outcome),
                _seed_range(outcome, seeds),
                _published(outcome, anchors),
            ]
        )
    for anchor in anchors:
        if anchor["model"] is None and not anchor["description"].startswith("LSTMs"):
            rows.append(
                [
                    f"published: {anchor['description']}",
                    "",
                    "",
                    format_anchor(anchor["rmse_low"], anchor["rmse_high"]),
                ]
            )
    return markdown_table(
        [
            PRESET_TITLES[name],
            f"ours: test RMSE, mean ± std over {seeds} seeds",
            "ours: seed range (min–max)",
            "published (a single run)",
        ],
        "lrrr",
        rows,
    )


def corrected_table(figures: dict[str, Any]) -> str:
    """The README's table of the corrected airline run: every model against AutoETS and
    persistence, the seed medians with their interval coverage, the published figures."""
    outcomes = figures["outcomes"]
    seeds = figures["seeds"]
    by_name = {o["name"]: o for o in outcomes}
    ets = by_name.get("auto_ets", {}).get("rmse_mean")
    persistence = by_name["persistence"]["rmse_mean"]
    ordered = (
        [o for o in outcomes if o["kind"] == "neural"]
        + [o for o in outcomes if o["kind"] == "ensemble"]
        + [o for o in outcomes if o["kind"] == "baseline"]
    )
    rows = []
    for outcome in ordered:
        coverage = outcome["coverage"]
        rows.append(
            [
                _label(outcome, figures, settings=True),
                _format_mean(outcome),
                _seed_range(outcome, seeds),
                "" if outcome["name"] == "auto_ets" else _relative(outcome["rmse_mean"], ets),
                ""
                if outcome["name"] == "persistence"
                else _relative(outcome["rmse_mean"], persistence),
                "" if coverage is None else f"{coverage:.0%}",
                _published(outcome, figures["anchors"]) if outcome["kind"] == "neural" else "",
            ]
        )
    return markdown_table(
        [
            PRESET_TITLES["airline"],
            f"test RMSE, mean ± std over {seeds} seeds",
            "seed range (min–max)",
            "against AutoETS",
            "against persistence",
            f"{figures['level']:.0%} interval coverage",
            "published (a single run, classic protocol)",
        ],
        "lrrrrrr",
        rows,
    )


def compare_sentences(figures: dict[str, Any]) -> list[str]:
    """The report's sentences of one run: verdict, best-validated model, state test."""
    lines = []
    if figures.get("verdict"):
        lines.append(f"Verdict: {figures['verdict']}")
    if figures.get("best_validated_sentence"):
        lines.append(f"Best-validated: {figures['best_validated_sentence']}")
    if figures.get("state_test"):
        lines.append(f"Stateful against stateless: {figures['state_test']['sentence']}")
    return lines


def compare_section(name: str, figures: dict[str, Any]) -> list[str]:
    """The Markdown of one preset: conditions, table, sentences, flags."""
    seeds = figures["seed_values"]
    config = (
        f"{figures['n_train']} training steps, {figures['origins']} test origins, horizon "
        f"{figures['horizon']} ({figures['strategy']}), seasons "
        f"{', '.join(map(str, figures['seasons'])) or 'none'}, validation tail "
        f"{figures['validation']:g}, seeds {seeds[0]}..{seeds[-1]}; {figures['seconds']:.0f} s."
    )
    table = corrected_table(figures) if name == "airline" else preset_table(name, figures)
    lines = [f"## compare {name}", "", config, "", table, ""]
    lines += [f"- {sentence}" for sentence in compare_sentences(figures)]
    flagged = [
        f"`{o['name']}`: {reason}" for o in figures["outcomes"] for reason in o["flag_reasons"]
    ]
    lines += [f"- Flagged: {text}" for text in flagged]
    return [*lines, ""]


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


def _measured_line(section: dict[str, Any]) -> str:
    """``Measured on 2026-11-26 00:16 UTC (commit 21ec51c) in 459 s.``"""
    measured = section.get("measured") or {}
    seconds = measured.get("seconds")
    quick = " with --quick (NOT the README's figures)" if measured.get("quick") else ""
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    return f"Measured{quick} on {measured.get('date')} (commit {measured.get('git_commit')}){took}."


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
        f"{machine['python']}. Each section says when it was measured (`--only` re-measures "
        "some and keeps the others). The numbers, per seed, are in `figures.json`.",
        "",
    ]
    moving = record.get("moving_average")
    if moving:
        lines += [
            "## moving-average",
            "",
            _measured_line(moving) + f" Seed {moving['seed']}; converged: test MSE at most "
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
            _measured_line(grid)
            + f" tsteps {config['tsteps'][0]}..{config['tsteps'][-1]} x lahead "
            f"{config['lahead'][0]}..{config['lahead'][-1]}, {config['seeds']} seeds from "
            f"{config['seed']}, {config['epochs']} epochs: {grid['trainings']} trainings in "
            f"{grid['seconds']:.1f} s. A cell agrees when every seed does what the claim says.",
            "",
            convergence_table(grid),
            "",
        ]
    compared = record.get("compare") or {}
    if compared:
        lines += [
            "## compare",
            "",
            _measured_line(compared)
            + " Test RMSE in the original units; mean, standard deviation, range and median "
            "over the seeds whose forecasts pass the sanity check (a flagged seed is named and "
            "left out); the published figures are single training runs.",
            "",
        ]
    for name in COMPARE_PRESETS:
        figures = compared.get(name)
        if isinstance(figures, dict) and figures.get("status") == "ok":
            lines += compare_section(name, figures)
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
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"re-measure only this section (repeatable), of {', '.join(SECTIONS)}; the others "
        "are kept from the existing figures.json in --out (default: every section)",
    )
    return parser.parse_args(argv)


def _earlier_record(path: Path, keep: Sequence[str]) -> dict[str, Any]:
    """The sections ``keep`` of an earlier ``figures.json``, each with when it was measured.

    Raises:
        ValueError: the file is missing or lacks a section to keep.
    """
    if not path.is_file():
        raise ValueError(
            f"--only keeps the other sections from {path}, which does not exist; run without "
            "--only first, or pass --out with a folder holding figures.json"
        )
    earlier = json.loads(path.read_text(encoding="utf-8"))
    missing = [section for section in keep if not earlier.get(section)]
    if missing:
        raise ValueError(
            f"{path} has no section {missing}; pass --only {' --only '.join(missing)} as well"
        )
    kept = {}
    for section in keep:
        kept[section] = earlier[section]
        # Files written before sections carried their own conditions: the file's.
        kept[section].setdefault(
            "measured", {**earlier["conditions"], "seconds": earlier.get("seconds")}
        )
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the figures, write figures.json and figures.md, print a JSON line last."""
    args = parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    measure = [section for section in SECTIONS if not args.only or section in args.only]
    kept = _earlier_record(
        out / "figures.json", [section for section in SECTIONS if section not in measure]
    )
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
    measures = {
        "moving_average": measure_moving_average,
        "convergence": measure_convergence,
        "compare": measure_compare,
    }
    for section in SECTIONS:
        if section not in measure:
            record[section] = kept[section]
            progress(f"{section}: kept from {out / 'figures.json'}")
            continue
        section_started = time.perf_counter()
        record[section] = measures[section](args.quick, progress)
        record[section]["measured"] = {
            **conditions(args.quick),
            "seconds": time.perf_counter() - section_started,
        }
    record["measured_sections"] = measure
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
            "measured": measure,
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
                    {
                        o["name"]: None if o["rmse_mean"] is None else round(o["rmse_mean"], 1)
                        for o in figures["outcomes"]
                    }
                    if figures.get("status") == "ok"
                    else figures
                )
                for name, figures in record["compare"].items()
                if isinstance(figures, dict) and name in COMPARE_PRESETS
            },
            "files": [str(out / "figures.json"), str(out / "figures.md")],
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
