"""Cold start: the seconds a user waits before the first result, in fresh processes.

Two measurements, each in new Python processes so that nothing compiled is left in memory:

* ``lstmlab moving-average`` end to end (interpreter start, imports, data, both models'
  training, the report's figures and files) with a cold compilation cache (a new, empty
  folder) and a warm one (the folder the cold run filled), against the official Keras
  script ``lstm_stateful.py`` (taken from the seed document, two lines in their Keras 3
  spelling: ``KERAS3_EDITS``) with TensorFlow;
* the README's five-line example (``Forecaster().fit`` on the airline series, its forecast
  and plot), imports included, cold and warm (with the shared data folder: ``--data``,
  ``$LSTMLAB_DATA`` or ``../shared/data``);
* the first ``LSTMModel.fit(epochs=10)`` of the seed configuration (LSTM(20), batch size 1,
  800 one-step samples) in a fresh process, timed from building the model to ``fit``'s
  return (imports not included), cold and warm cache, and without any cache.

Each child also counts its XLA programs (compilation requests, and how many the cache
answered); the programs of each budgeted entry point (``tests/program_counts.py``) are
reported beside their budgets. The load average is printed beside the figures: on a shared
machine the cold figures grow with it.

    python bench/cold_start.py                 # one run of each (about a minute when quiet)
    python bench/cold_start.py --repeats 3     # medians of three
    python bench/cold_start.py --keras-backends tensorflow,jax

The last line printed is one JSON object: {"moving_average": {...}, "first_fit": {...},
"keras": {...}, "_meta": {...}}. Nothing is asserted.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    QUIET_ENV,
    REPO_DIR,
    emit_json,
    format_seconds,
    has_module,
    last_json_line,
    machine_info,
    package_version,
)

SCRIPT = Path(__file__).resolve()
SEED_SCRIPT = REPO_DIR.parent / "shared" / "seeds" / "001_e61af0ab00c81fff.txt"
TARGETS = {
    "five_lines_warm_s": 2.5,  # at most, seconds: the README's five-line example, imports in
    "five_lines_cold_s": 5.0,
    "first_fit_warm_s": 1.0,  # at most, seconds
    "first_fit_cold_s": 2.5,  # at most, seconds
    "moving_average_vs_keras_warm": 10.0,  # at least, Keras script wall / lstmlab wall
    "moving_average_vs_keras_cold": 10.0,
}
KERAS_INSTALL = {"tensorflow": "pip install tensorflow-cpu", "jax": "pip install keras jax"}
CHILD_TIMEOUT_S = 900.0


# --------------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------------
def _count_programs() -> dict[str, int]:
    """Count JAX's compilation requests and the persistent cache's answers in this process."""
    from jax import monitoring

    counts = {"programs": 0, "cache_hits": 0}
    names = {
        "/jax/compilation_cache/compile_requests_use_cache": "programs",
        "/jax/compilation_cache/cache_hits": "cache_hits",
    }

    def listener(name: str, **kwargs: Any) -> None:
        if name in names:
            counts[names[name]] += 1

    monitoring.register_event_listener(listener)
    return counts


def child_moving_average(out: str) -> dict[str, Any]:
    """``lstmlab moving-average --quiet`` through the command line's ``main``."""
    counts = _count_programs()
    from lstmlab.cli import main

    started = time.perf_counter()
    code = main(["moving-average", "--quiet", "--out", out, "--overwrite"])
    return {"status": "ok" if code == 0 else "error", "run_s": time.perf_counter() - started,
            **counts}


def child_five_lines(data: str) -> dict[str, Any]:
    """The README's five-line example as written (its plot included), on ``data``'s airline."""
    counts = _count_programs()
    started = time.perf_counter()
    import pandas as pd

    from lstmlab import Forecaster

    path = Path(data) / "airline_passengers.csv"
    frame = pd.read_csv(path, index_col="Date", parse_dates=True)
    forecaster = Forecaster().fit(frame)
    print(forecaster.forecast(12, level=[80, 95]))
    with tempfile.TemporaryDirectory(prefix="lstmlab-five-lines-") as folder:
        forecaster.plot(horizon=12, level=[80, 95]).savefig(Path(folder) / "airline.png")
    return {"status": "ok", "run_s": time.perf_counter() - started,
            "model": f"{forecaster.metrics['model']} ({forecaster.metrics['norm']})", **counts}


def child_first_fit() -> dict[str, Any]:
    """The first ``LSTMModel.fit(epochs=10)`` of the seed configuration in this process."""
    counts = _count_programs()
    import numpy as np

    from lstmlab import LSTMModel
    from lstmlab.experiments.moving_average import MovingAverageConfig, make_data

    data = make_data(MovingAverageConfig())
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    started, cpu_started = time.perf_counter(), time.process_time()
    model = LSTMModel(units=(20,), stateful=True, batch_size=1, seed=1987)
    history = model.fit(x, y, epochs=10, quiet=True)
    first = time.perf_counter() - started
    first_cpu = time.process_time() - cpu_started  # all threads: robust to a busy machine
    started = time.perf_counter()
    model.fit(x, y, epochs=10, quiet=True)  # the same call again: no compilation left
    again = time.perf_counter() - started
    return {
        "status": "ok",
        "first_fit_s": first,
        "first_fit_cpu_s": first_cpu,
        "second_fit_s": again,
        "final_loss": float(history.loss[-1]),
        **counts,
    }


# The script as the seed gives it is Keras 2 code; Keras 3 (alone, or as TensorFlow >= 2.16's
# tf.keras) refuses two of its lines. These are their Keras 3 spellings, nothing else changes:
KERAS3_EDITS = (
    # the fixed batch size of a stateful layer comes from an Input layer
    (
        r"model\.add\(LSTM\(20,\s*input_shape=\(lahead, 1\),\s*batch_size=batch_size,"
        r"\s*stateful=stateful\)\)",
        "model.add(Input(batch_shape=(batch_size, lahead, 1)))\n"
        "    model.add(LSTM(20, stateful=stateful))",
    ),
    (r"from keras\.layers import Dense, LSTM", "from keras.layers import Dense, LSTM, Input"),
    # a Keras 3 model has no reset_states(); its recurrent layers do
    (
        r"model_stateful\.reset_states\(\)",
        "[layer.reset_states() for layer in model_stateful.layers "
        "if hasattr(layer, 'reset_states')]",
    ),
)


def keras_script_source() -> str:
    """The official ``lstm_stateful.py`` from the seed document, in its Keras 3 spelling.

    Returns:
        The script's source: the document's one code block with ``KERAS3_EDITS`` applied.

    Raises:
        ValueError: the document or one of the edited lines is not where it was.
    """
    text = SEED_SCRIPT.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    if not blocks:
        raise ValueError(f"{SEED_SCRIPT} holds no ```python block; restore the seed document")
    source = blocks[0]
    for pattern, replacement in KERAS3_EDITS:
        source, count = re.subn(pattern, lambda _, text=replacement: text, source)
        if count != 1:
            raise ValueError(f"the seed script no longer matches {pattern!r}; update KERAS3_EDITS")
    return source


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------
def shared_data(path: str | None) -> Path | None:
    """``--data``, else ``$LSTMLAB_DATA``, else ``../shared/data``; ``None`` when missing."""
    folder = Path(path or os.environ.get("LSTMLAB_DATA") or REPO_DIR.parent / "shared" / "data")
    return folder if (folder / "airline_passengers.csv").is_file() else None


def _load() -> float:
    return os.getloadavg()[0]


def _timed_child(
    arguments: list[str], env: dict[str, str], python: str = sys.executable
) -> dict[str, Any]:
    """Run ``python arguments...`` fresh; its JSON line plus the end-to-end wall time."""
    load_before = _load()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            [python, *arguments],
            capture_output=True,
            text=True,
            env={**os.environ, **QUIET_ENV, **env},
            timeout=CHILD_TIMEOUT_S,
            check=False,
            cwd=REPO_DIR,
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {CHILD_TIMEOUT_S:.0f} s"}
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    result = last_json_line(completed.stdout) or {}
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-6:]
        return {"status": "error", "error": " | ".join(tail) or f"exit {completed.returncode}"}
    return {
        "status": "ok", **result, "wall_s": wall, "cpu_s": cpu, "load": [load_before, _load()]
    }


def _child(kind: str, cache: str, *extra: str) -> dict[str, Any]:
    return _timed_child(
        [str(SCRIPT), "--child", kind, *extra], {"LSTMLAB_CACHE_DIR": cache}
    )


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get("status") == "ok" and key in run]
    return float(statistics.median(values)) if values else None


def measure_lstmlab(repeats: int, work: Path, data: Path | None) -> dict[str, Any]:
    """Moving-average end to end, the first fit and the README's five lines: cold cache, warm
    cache, no cache (the five lines only with the shared data)."""
    out = str(work / "moving-average")
    results: dict[str, Any] = {"moving_average": {}, "first_fit": {}, "five_lines": {}}
    children = [("moving_average", "moving_average", (out,)), ("first_fit", "first_fit", ())]
    if data is not None:
        children.append(("five_lines", "five_lines", (str(data),)))
    for name, kind, extra in children:
        cold_runs, warm_runs = [], []
        for repeat in range(repeats):
            cache = work / f"cache-{name}-{repeat}"  # a new, empty folder: cold
            cold_runs.append(_child(kind, str(cache), *extra))
            warm_runs.append(_child(kind, str(cache), *extra))
            shutil.rmtree(cache, ignore_errors=True)
        off_runs = [_child(kind, "off", *extra) for _ in range(repeats)]
        for label, runs in (("cold", cold_runs), ("warm", warm_runs), ("off", off_runs)):
            summary = {
                "wall_s": _median(runs, "wall_s"),
                "cpu_s": _median(runs, "cpu_s"),
                "first_fit_s": _median(runs, "first_fit_s"),
                "first_fit_cpu_s": _median(runs, "first_fit_cpu_s"),
                "second_fit_s": _median(runs, "second_fit_s"),
                "run_s": _median(runs, "run_s"),
                "programs": _median(runs, "programs"),
                "cache_hits": _median(runs, "cache_hits"),
                "load": [run.get("load") for run in runs],
                "errors": [run["error"] for run in runs if run.get("status") != "ok"],
            }
            results[name][label] = {k: v for k, v in summary.items() if v not in (None, [])}
    return results


def measure_programs(data: Path | None) -> dict[str, Any]:
    """The programs of each entry point against its budget (tests/program_counts.py)."""
    if data is None:
        return {}
    sys.path.insert(0, str(REPO_DIR / "tests"))
    from program_counts import PROGRAM_BUDGETS

    child = _timed_child([str(REPO_DIR / "tests" / "program_counts.py"), str(data)], {})
    if child.get("status") != "ok":
        return {"error": child.get("error")}
    return {
        name: {"programs": child[name]["programs"], "budget": PROGRAM_BUDGETS[name],
               "names": child[name]["names"]}
        for name in PROGRAM_BUDGETS
    }


def measure_keras(
    backends: list[str], repeats: int, work: Path, python: str = sys.executable
) -> dict[str, Any]:
    """The official script end to end, once per Keras backend, in fresh processes.

    Args:
        backends: Keras backends to run it on.
        repeats: runs per backend (the median is kept).
        work: a scratch folder.
        python: the interpreter with Keras and the backend (another virtual environment
            keeps TensorFlow's pins away from lstmlab's).

    Returns:
        Per backend: status, wall and CPU seconds, versions.
    """
    results: dict[str, Any] = {}
    script = work / "lstm_stateful.py"
    script.write_text(keras_script_source(), encoding="utf-8")
    for backend in backends:
        module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
        if module is None:
            results[backend] = {"status": "error", "error": f"unknown backend {backend!r}"}
            continue
        if not (has_module("keras", python) and has_module(module, python)):
            missing = "keras" if not has_module("keras", python) else module
            results[backend] = {
                "status": "not measured",
                "error": f"{missing} is not installed; install it with "
                f"{KERAS_INSTALL.get(backend, 'pip install ' + module)}",
            }
            continue
        runs = [
            _timed_child(
                [str(script)],
                {"KERAS_BACKEND": backend, "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""},
                python,
            )
            for _ in range(repeats)
        ]
        ok = [run for run in runs if run["status"] == "ok"]
        results[backend] = {
            "status": "ok" if ok else "error",
            "wall_s": _median(runs, "wall_s"),
            "cpu_s": _median(runs, "cpu_s"),
            "load": [run.get("load") for run in runs],
            "python": python,
            **({} if ok else {"error": runs[-1].get("error")}),
        }
    return results


def ratios(lstmlab: dict[str, Any], keras: dict[str, Any]) -> dict[str, Any]:
    """Keras script wall (and CPU) time over lstmlab's, cold and warm cache, per backend."""
    out = {}
    for backend, result in keras.items():
        if result.get("status") != "ok" or not result.get("wall_s"):
            continue
        for label in ("cold", "warm"):
            ours = lstmlab["moving_average"].get(label, {})
            if ours.get("wall_s"):
                out[f"keras_{backend}_over_lstmlab_{label}"] = result["wall_s"] / ours["wall_s"]
            if ours.get("cpu_s") and result.get("cpu_s"):
                out[f"keras_{backend}_cpu_over_lstmlab_{label}"] = result["cpu_s"] / ours["cpu_s"]
    return out


def print_report(results: dict[str, Any]) -> None:
    """Human-readable figures and the targets."""
    meta = results["_meta"]
    print(f"Cold start ({meta['machine']['cpu']}, {meta['machine']['cores']} cores, "
          f"{meta['repeats']} run(s) each, medians)")
    for name in ("moving_average", "first_fit", "five_lines"):
        for label, summary in results[name].items():
            loads = ", ".join(
                f"{load[0]:.2f}/{load[1]:.2f}" for load in summary.get("load", []) if load
            )
            figure = summary.get("first_fit_s") if name == "first_fit" else summary.get("wall_s")
            extra = (
                f"{format_seconds(summary.get('first_fit_cpu_s'))} CPU, "
                f"second fit {format_seconds(summary.get('second_fit_s'))}, "
                if name == "first_fit"
                else f"{format_seconds(summary.get('cpu_s'))} CPU, "
                f"in-process {format_seconds(summary.get('run_s'))}, "
            )
            print(
                f"  {name:15s} {label:5s} {format_seconds(figure):>9s}  ({extra}"
                f"process {format_seconds(summary.get('wall_s'))}, "
                f"{summary.get('programs', 0):.0f} programs, "
                f"{summary.get('cache_hits', 0):.0f} from the cache; load {loads})"
            )
            for error in summary.get("errors", []):
                print(f"    error: {error}")
    for backend, result in results["keras"].items():
        if result.get("status") == "ok":
            loads = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in result["load"] if a is not None)
            print(
                f"  keras script ({backend}) {format_seconds(result['wall_s'])} "
                f"({format_seconds(result['cpu_s'])} CPU; load {loads})"
            )
        else:
            print(f"  keras script ({backend}): {result['status']}: {result.get('error')}")
    for key, value in results["ratios"].items():
        print(f"  {key}: {value:.1f}x")
    for name, count in results["programs"].items():
        if name == "error":
            print(f"  program counts: error: {count}")
        else:
            print(f"  programs of {name}: {count['programs']} (budget {count['budget']})")
    for key, passed in meta["targets"].items():
        verdict = "n/a" if passed is None else ("pass" if passed else "FAIL")
        print(f"  target {key} ({TARGETS.get(key, 'the budgets')}): {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one child) and print the JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keras-backends", default="tensorflow",
                        help="comma-separated Keras backends to run the official script on")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-lstmlab", action="store_true", help="only the Keras script")
    parser.add_argument("--keras-python", default=sys.executable,
                        help="interpreter with Keras and its backend (e.g. a TensorFlow venv)")
    parser.add_argument("--data", default=None, help="the shared data folder (five lines)")
    parser.add_argument("--skip-programs", action="store_true", help="no program counts")
    parser.add_argument("--child", choices=("moving_average", "first_fit", "five_lines"),
                        help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "moving_average":
        emit_json(child_moving_average(*args.child_args))
        return 0
    if args.child == "first_fit":
        emit_json(child_first_fit())
        return 0
    if args.child == "five_lines":
        emit_json(child_five_lines(*args.child_args))
        return 0
    data = shared_data(args.data)
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="lstmlab-cold-start-") as folder:
        work = Path(folder)
        lstmlab = (
            {"moving_average": {}, "first_fit": {}, "five_lines": {}}
            if args.skip_lstmlab
            else measure_lstmlab(args.repeats, work, data)
        )
        programs = {} if args.skip_programs else measure_programs(data)
        backends = [] if args.skip_keras else [b for b in args.keras_backends.split(",") if b]
        keras = measure_keras(backends, args.repeats, work, args.keras_python)
    fit = lstmlab["first_fit"]
    found = ratios(lstmlab, keras)

    def at_most(label: str, key: str) -> bool | None:
        value = fit.get(label, {}).get("first_fit_s")
        return None if value is None else value <= TARGETS[key]

    def five_lines_at_most(label: str) -> bool | None:
        value = lstmlab["five_lines"].get(label, {}).get("wall_s")
        return None if value is None else value <= TARGETS[f"five_lines_{label}_s"]

    def at_least(label: str) -> bool | None:
        value = found.get(f"keras_tensorflow_over_lstmlab_{label}")
        return None if value is None else value >= TARGETS[f"moving_average_vs_keras_{label}"]

    results = {
        **lstmlab,
        "keras": keras,
        "ratios": found,
        "programs": programs,
        "_meta": {
            "machine": machine_info(),
            "jax": package_version("jax"),
            "repeats": args.repeats,
            "load_before": load_before,
            "load_after": _load(),
            "targets": {
                "five_lines_warm_s": five_lines_at_most("warm"),
                "five_lines_cold_s": five_lines_at_most("cold"),
                "programs_within_budgets": None
                if not programs or "error" in programs
                else all(p["programs"] <= p["budget"] for p in programs.values()),
                "first_fit_warm_s": at_most("warm", "first_fit_warm_s"),
                "first_fit_cold_s": at_most("cold", "first_fit_cold_s"),
                "moving_average_vs_keras_warm": at_least("warm"),
                "moving_average_vs_keras_cold": at_least("cold"),
            },
        },
    }
    print_report(results)
    emit_json(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
