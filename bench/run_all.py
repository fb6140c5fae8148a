"""Run every benchmark in ``bench/`` in turn and summarise their JSON last lines.

Benchmarks are found by glob: every ``bench/*.py`` except this file and helpers (names starting
with ``_``), in name order, each in its own process, its output shown as it runs. Each prints
one JSON object as its last line; the summary tabulates them, and the last line printed here is
one JSON object ``{script name: its JSON object}``. ``make bench`` calls this script.

    python bench/run_all.py                      # all benchmarks
    python bench/run_all.py --only train_speed   # names containing "train_speed"
    python bench/run_all.py --list
"""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, QUIET_ENV, emit_json, last_json_line

# Keys shown in the summary for a tool's figures, in this order, when a benchmark has them.
PREFERRED_KEYS = (
    "status",
    "sec_per_epoch",
    "compile_s",
    "train_s",
    "test_mse",
    "ratio",
    "carries_state",
)


def discover(folder: Path = BENCH_DIR) -> list[Path]:
    """The benchmark scripts in ``folder``: ``*.py`` minus ``_*.py`` and this runner."""
    this = Path(__file__).resolve()
    return sorted(
        path
        for path in folder.glob("*.py")
        if not path.name.startswith("_") and path.resolve() != this
    )


def run_script(script: Path, timeout: float) -> tuple[int, float, dict[str, Any] | None]:
    """Run one benchmark, echoing its output; return exit code, seconds and its JSON line."""
    started = time.perf_counter()
    lines: list[str] = []
    env = {**os.environ, **QUIET_ENV}
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=BENCH_DIR.parent,
    ) as process:
        try:
            for line in process.stdout or ():
                print(line, end="", flush=True)
                lines.append(line)
                if time.perf_counter() - started > timeout:
                    process.kill()
                    print(f"[run_all] {script.name}: killed after {timeout:.0f} s", flush=True)
                    break
        finally:
            returncode = process.wait()
    return returncode, time.perf_counter() - started, last_json_line("".join(lines))


def _format(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(entry, figures)`` rows of one benchmark's JSON: one row per top-level entry."""
    rows = []
    for name, value in record.items():
        if name.startswith("_"):
            continue  # metadata (machine, settings) is in the JSON, not the summary
        if isinstance(value, dict):
            keys = [key for key in PREFERRED_KEYS if key in value] or [
                key for key, item in value.items() if not isinstance(item, dict | list)
            ][:8]
            rows.append((name, ", ".join(f"{key}={_format(value[key])}" for key in keys)))
        elif not isinstance(value, list):
            rows.append((name, _format(value)))
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only scripts whose name contains this text")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per script")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if any failed or printed no JSON last line."""
    args = parse_args(argv)
    scripts = [script for script in discover() if args.only in script.stem]
    if args.list or not scripts:
        print("\n".join(script.name for script in scripts) or "no benchmarks found")
        return 0 if scripts or args.list else 1
    outcomes: dict[str, dict[str, Any]] = {}
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        returncode, seconds, record = run_script(script, args.timeout)
        if returncode != 0 or record is None:
            failed.append(script.name)
            record = {
                "status": "error",
                "returncode": returncode,
                "error": "no JSON last line" if record is None else "non-zero exit",
            }
        outcomes[script.stem] = record
        print(f"[run_all] {script.name}: exit {returncode}, {seconds:.1f} s", flush=True)

    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=150)
    table = Table(title="Benchmarks")
    table.add_column("benchmark")
    table.add_column("entry")
    table.add_column("figures")
    for name, record in outcomes.items():
        for entry, figures in summary_rows(record) or [("", "(empty)")]:
            table.add_row(name, entry, figures)
    console.print(table)
    if failed:
        console.print(f"[red]failed:[/red] {', '.join(failed)}")
    emit_json(outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
