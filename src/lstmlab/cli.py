"""Command line: flags -> frozen config -> one library call -> exit code."""

import argparse
import dataclasses
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from lstmlab.experiments import moving_average


def prepare_output_dir(path: Path, *, overwrite: bool) -> Path:
    """Create ``path``; refuse to replace an earlier run unless ``overwrite``.

    Raises:
        FileExistsError: the folder exists and is not empty, and ``overwrite`` is false.
    """
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"output folder {path} already holds an earlier run; pass --overwrite to "
                "replace it or --out to choose another folder"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _add_moving_average(subparsers) -> None:
    defaults = moving_average.MovingAverageConfig()
    parser = subparsers.add_parser(
        "moving-average",
        help="the official Keras lstm_stateful.py example, measured",
        description=moving_average.__doc__,
    )
    parser.add_argument("--input-len", type=int, default=defaults.input_len)
    parser.add_argument("--tsteps", type=int, default=defaults.tsteps)
    parser.add_argument("--lahead", type=int, default=defaults.lahead)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--units", type=int, default=defaults.units)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--layout", choices=("official", "streams"), default=defaults.layout)
    parser.add_argument("--out", type=Path, default=Path("runs/moving-average"))
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=_run_moving_average)


def _run_moving_average(args: argparse.Namespace) -> int:
    config = moving_average.MovingAverageConfig(
        input_len=args.input_len,
        tsteps=args.tsteps,
        lahead=args.lahead,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        units=args.units,
        threshold=args.threshold,
        layout=args.layout,
    )
    out = prepare_output_dir(args.out, overwrite=args.overwrite)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    result = moving_average.run(config, quiet=args.quiet)
    summary = {
        "config": dataclasses.asdict(config),
        "mean_predictor_mse": result.mean_mse,
        "last_value_mse": result.last_value_mse,
        **{
            outcome.name: {
                "test_mse": outcome.test_mse,
                "converged": outcome.converged,
                "seconds": outcome.seconds,
                "updates": outcome.updates,
            }
            for outcome in (result.stateful, result.stateless)
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Output written to {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``lstmlab`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="lstmlab", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_moving_average(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Args:
        argv: arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 2 for bad input (the error is printed).
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileExistsError) as error:
        print(f"lstmlab: error: {error}", file=sys.stderr)
        return 2
