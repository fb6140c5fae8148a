"""Command line: flags -> frozen config -> one library call -> exit code."""

import argparse
import dataclasses
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import jax

from lstmlab.devices import add_device_argument, on_device
from lstmlab.executors import add_executor_arguments, make_executor
from lstmlab.experiments import convergence, moving_average
from lstmlab.report import write_convergence_report, write_json, write_moving_average_report
from lstmlab.report.markdown import json_ready


def prepare_output_dir(path: Path, *, overwrite: bool) -> Path:
    """Create ``path``; refuse to replace an earlier run unless ``overwrite``.

    Raises:
        FileExistsError: ``path`` is a file; or the folder exists and is not empty, and
            ``overwrite`` is false or the folder holds the working directory or is the home
            folder (``--overwrite`` deletes the folder first).
    """
    if path.exists() and not path.is_dir():
        raise FileExistsError(
            f"output folder {path} is a file, not a folder; pass --out with a folder path"
        )
    if path.exists() and any(path.iterdir()):
        resolved, cwd = path.resolve(), Path.cwd().resolve()
        if overwrite and (resolved == Path.home().resolve() or resolved in (cwd, *cwd.parents)):
            raise FileExistsError(
                f"refusing to overwrite {path}: it is the home folder or holds the working "
                "directory, and --overwrite deletes the folder first; pass --out with a folder "
                "of its own, e.g. runs/NAME"
            )
        if not overwrite:
            raise FileExistsError(
                f"output folder {path} already holds an earlier run; pass --overwrite to "
                "replace it or --out to choose another folder"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_with_device(config: object, device: jax.Device) -> dict:
    """The JSON of a run's ``config.json``: the config's fields and ``"device"`` (the platform).

    Example:
        >>> config_with_device({"epochs": 2}, jax.devices("cpu")[0])
        {'epochs': 2, 'device': 'cpu'}
    """
    return {**json_ready(config), "device": device.platform}


def _add_script_arguments(parser: argparse.ArgumentParser, defaults, *, out: str) -> None:
    """Flags shared by the moving-average and convergence commands (the script's settings)."""
    parser.add_argument("--input-len", type=int, default=defaults.input_len)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--units", type=int, default=defaults.units)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--layout", choices=moving_average.LAYOUTS, default=defaults.layout)
    parser.add_argument("--out", type=Path, default=Path(out))
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_argument(parser)


def _config_from_args(config_class, args: argparse.Namespace):
    """The frozen config whose fields are the flags of the same names."""
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


def _add_moving_average(subparsers) -> None:
    defaults = moving_average.MovingAverageConfig()
    parser = subparsers.add_parser(
        "moving-average",
        help="the official Keras lstm_stateful.py example, measured",
        description=moving_average.__doc__,
    )
    parser.add_argument("--tsteps", type=int, default=defaults.tsteps)
    parser.add_argument("--lahead", type=int, default=defaults.lahead)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    _add_script_arguments(parser, defaults, out="runs/moving-average")
    parser.set_defaults(handler=_run_moving_average)


def _run_moving_average(args: argparse.Namespace) -> int:
    config = _config_from_args(moving_average.MovingAverageConfig, args)
    with on_device(args.device) as device:
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        write_json(out / "config.json", config_with_device(config, device))
        result = moving_average.run(config, quiet=args.quiet)
        paths = write_moving_average_report(result, out)
    print(f"Report written to {paths['report'].resolve()}")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` or a range ``"1-6"`` -> a tuple of ints (argparse type)."""
    try:
        if "-" in text and "," not in text:
            low, high = (int(part) for part in text.split("-"))
            return tuple(range(low, high + 1))
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 1,2,3 or a range like 1-6, got {text!r}"
        ) from None


def _add_convergence(subparsers) -> None:
    defaults = convergence.ConvergenceConfig()
    parser = subparsers.add_parser(
        "convergence",
        help="the script's convergence claim over a tsteps x lahead grid, measured",
        description=convergence.__doc__,
    )
    parser.add_argument(
        "--tsteps", type=_int_list, default=defaults.tsteps, help="e.g. 1-6 or 1,2,4"
    )
    parser.add_argument(
        "--lahead", type=_int_list, default=defaults.lahead, help="e.g. 1-6 or 1,2,4"
    )
    parser.add_argument("--seeds", type=int, default=defaults.seeds, help="seeds per cell")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="first seed")
    _add_script_arguments(parser, defaults, out="runs/convergence")
    add_executor_arguments(parser, task="lahead column")
    parser.set_defaults(handler=_run_convergence)


def _run_convergence(args: argparse.Namespace) -> int:
    config = _config_from_args(convergence.ConvergenceConfig, args)
    # Executor and device first: a missing Ray or GPU fails before the run folder exists.
    with (
        make_executor(args.executor, ray_address=args.ray_address) as executor,
        on_device(args.device) as device,
    ):
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        write_json(out / "config.json", config_with_device(config, device))
        result = convergence.run(config, quiet=args.quiet, executor=executor)
    paths = write_convergence_report(result, out)
    for mode in convergence.MODES:
        cells = result.cells(mode)
        print(f"{mode}: {sum(c.agrees for c in cells)} of {len(cells)} cells agree with the claim")
    print(f"{len(result.rows)} trainings in {result.seconds:.1f} s")
    print(f"Report written to {paths['report'].resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``lstmlab`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="lstmlab",
        description="Stateful and stateless LSTM forecasting of time series, measured.",
        epilog="Run 'lstmlab COMMAND --help' for the flags of a command.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_moving_average(subparsers)
    _add_convergence(subparsers)
    # Imported here: these modules use prepare_output_dir from this one.
    from lstmlab.commands_compare import add_compare_command
    from lstmlab.commands_keras import add_keras_commands
    from lstmlab.commands_live import add_live_commands

    add_compare_command(subparsers)
    add_live_commands(subparsers)
    add_keras_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Args:
        argv: arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 2 for bad input or a missing file, 1 when a needed resource is
        unavailable (a download without network, an optional package not installed); the
        error is printed without a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"lstmlab: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"lstmlab: error: {error}", file=sys.stderr)
        return 1
