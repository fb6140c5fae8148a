"""Helpers shared by the benchmark scripts: machine facts, child processes, the JSON last line.

Every ``bench/*.py`` script (other than ``run_all.py`` and files starting with ``_``) prints
human-readable figures and ends with ONE line holding a JSON object; ``run_all.py`` reads that
line. Nothing here asserts: benchmarks report figures and pass/fail marks against targets.
"""

import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

# Import-time chatter of TensorFlow/XLA goes to stderr; children inherit these quieter settings.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def cpu_model() -> str:
    """The CPU model name as ``lscpu`` prints it (``platform.processor()`` if lscpu fails)."""
    try:
        output = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.strip().lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, logical core count, Python version and platform, for the JSON record."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_module(module: str, python: str = sys.executable) -> bool:
    """Whether interpreter ``python`` (default: this one) can import ``module`` (not importing it).

    Another interpreter (a virtual environment with TensorFlow, say) is asked in a subprocess.
    """
    if python == sys.executable:
        return is_installed(module)
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    try:
        return subprocess.run([python, "-c", probe], check=False, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution (``"tensorflow-cpu"``, ``"torch"``), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def steady_and_compile(epoch_seconds: Sequence[float]) -> tuple[float, float | None]:
    """Split per-epoch wall times into steady-state seconds per epoch and first-call overhead.

    The first epoch pays tracing and compilation; the median of the others is the steady
    state, and ``first - steady`` the one-off cost. With a single epoch there is no steady
    state to subtract, so the first epoch counts as the per-epoch time and the overhead is None.

    Args:
        epoch_seconds: wall seconds of each epoch in order, at least one.

    Returns:
        ``(seconds_per_epoch, compile_seconds)``.
    """
    if len(epoch_seconds) == 1:
        return float(epoch_seconds[0]), None
    steady = statistics.median(epoch_seconds[1:])
    return float(steady), float(max(epoch_seconds[0] - steady, 0.0))


def last_json_line(text: str) -> dict[str, Any] | None:
    """The JSON object on the last non-empty line of ``text``, or None if there is none."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return None


def run_child(
    arguments: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Run ``python arguments...`` in a fresh process and return its JSON last line.

    Each tool gets its own process so that its import-time settings (Keras' backend, thread
    pools) cannot leak into another's timings.

    Args:
        arguments: script path and its arguments.
        env: variables added to (or replacing) this process' environment.
        timeout: seconds before the child is killed.
        python: the interpreter (default: this one; another virtual environment's ``python``
            runs a tool that is not installed here).

    Returns:
        The child's JSON object; on a crash, timeout or missing JSON line,
        ``{"status": "error", "error": <last stderr lines>}``.
    """
    child_env = {**os.environ, **QUIET_ENV, **(env or {})}
    try:
        completed = subprocess.run(
            [python, *arguments],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"timed out after {timeout:.0f} s"}
    result = last_json_line(completed.stdout)
    if completed.returncode != 0 or result is None:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-6:]
        return {"status": "error", "error": " | ".join(tail) or f"exit {completed.returncode}"}
    return result


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def emit_json(record: Mapping[str, Any]) -> None:
    """Print ``record`` as one JSON line (NaN/inf become null so the line stays valid JSON)."""
    print(json.dumps(_finite_or_none(dict(record)), sort_keys=False), flush=True)


def mark(passed: bool | None) -> str:
    """A pass/fail mark for a target (``"n/a"`` when it could not be measured)."""
    if passed is None:
        return "[yellow]n/a[/yellow]"
    return "[green]✓ pass[/green]" if passed else "[red]✗ fail[/red]"


def format_seconds(value: float | None) -> str:
    """Seconds with a unit that keeps three significant digits (``2.1 ms``, ``1.93 s``)."""
    if value is None:
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1.0:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"
