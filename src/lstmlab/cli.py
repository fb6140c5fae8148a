"""Command line: flags -> frozen config -> one library call -> exit code."""

import argparse
import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from lstmlab.data.loading import (
    LoadConfig,
    LoadedSeries,
    download_electricity_diagrams,
    load_series,
)
from lstmlab.experiments import compare, convergence, moving_average
from lstmlab.forecaster import MODEL_KINDS, FitSpec, Forecaster, train_forecaster
from lstmlab.model_folder import check_save_destination, model_lock
from lstmlab.report.documents import (
    format_number,
    json_ready,
    write_compare_report,
    write_convergence_report,
    write_json,
    write_moving_average_report,
)
from lstmlab.runtime import add_device_argument, add_executor_arguments, make_executor, on_device


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
    from lstmlab.cli import add_compare_command, add_keras_commands, add_live_commands

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


_FORMATS = ("auto", "csv", "household", "household-days", "electricity")


def add_compare_command(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to an argparse ``subparsers`` object.

    Args:
        subparsers: from ``parser.add_subparsers()``.

    Returns:
        The subcommand's parser (its handler is set as ``args.handler``).
    """
    defaults = compare.CompareConfig()
    parser = subparsers.add_parser(
        "compare",
        help="persistence, seasonal naive, MLP, stateless, stateful and stacked LSTMs on a series",
        description=compare.__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "data",
        metavar="DATA",
        type=Path,
        nargs="?",
        help="the data file; may be left out with --preset (the file is then taken from "
        "$LSTMLAB_DATA, default ../shared/data) or with --download",
    )
    parser.add_argument(
        "--format",
        choices=_FORMATS,
        default="auto",
        help="file format (default: sniffed from the header line)",
    )
    parser.add_argument("--time-col", help="timestamp column of a CSV (default: the first)")
    parser.add_argument(
        "--target",
        nargs="+",
        metavar="COLUMN",
        help="column(s) to forecast; several columns are several series of "
        "one global model (electricity: client names such as MT_001)",
    )
    parser.add_argument(
        "--features",
        nargs="+",
        default=(),
        metavar="COLUMN",
        help="extra input columns (CSV and household formats)",
    )
    parser.add_argument("--freq", help="frequency of the source timestamps (default: inferred)")
    parser.add_argument("--resample", help="resample to this frequency, e.g. D, W, h, MS")
    parser.add_argument(
        "--aggregation",
        choices=("sum", "mean"),
        help="how --resample aggregates (default: the format's, mean for CSV)",
    )
    parser.add_argument(
        "--missing",
        choices=("interpolate", "ffill", "drop", "error"),
        default="interpolate",
        help="missing-value policy (default interpolate)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="electricity format: fetch LD2011_2014.txt into --cache-dir when "
        "DATA is not given (fails with a clear message without network)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="download cache (default ~/.cache/lstmlab)"
    )
    parser.add_argument(
        "--preset",
        choices=sorted(compare.PRESETS),
        help="a published protocol: models, windows, epochs, split, horizon",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="train only these neural models (of mlp, stateless, stateful, stacked); the "
        "baselines always run",
    )
    parser.add_argument("--window", type=int, help="input window of every model")
    parser.add_argument("--season", type=int, help="season length in steps (seasonal naive)")
    parser.add_argument("--horizon", type=int, help=f"steps ahead (default {defaults.horizon})")
    parser.add_argument(
        "--strategy",
        choices=("recursive", "direct"),
        help="multi-step forecasts: fed back (recursive) or one output per step",
    )
    parser.add_argument("--stride", type=int, help="steps between forecast origins (default 1)")
    parser.add_argument("--seeds", type=int, help=f"seeds per model (default {defaults.seeds})")
    parser.add_argument("--seed", type=int, help=f"first seed (default {defaults.seed})")
    parser.add_argument("--epochs", type=int, help="epochs of every neural model")
    parser.add_argument(
        "--split", type=float, help=f"training fraction, the first part (default {defaults.split})"
    )
    parser.add_argument("--test-size", type=int, help="test steps, instead of --split")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_arguments(parser, task="model, its seeds trained together")
    add_device_argument(parser)
    parser.set_defaults(handler=run_compare_command)
    return parser


def _data_dir() -> Path:
    return Path(os.environ.get("LSTMLAB_DATA", "../shared/data"))


def _resolve_path(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return args.data
    if args.preset is not None:
        path = _data_dir() / compare.PRESET_FILES[args.preset]
        if not path.is_file():
            raise ValueError(
                f"--preset {args.preset} without DATA looks for {path}, which does not exist; "
                "pass the file as DATA or set LSTMLAB_DATA to the shared data folder"
            )
        return path
    if args.download:
        if args.format not in ("auto", "electricity"):
            raise ValueError(
                f"--download fetches the electricity file, got --format {args.format}; pass "
                "--format electricity or leave --format out"
            )
        return download_electricity_diagrams(args.cache_dir)
    raise ValueError(
        "no DATA given; pass a data file, a --preset, or --download for the UCI "
        "ElectricityLoadDiagrams20112014 file"
    )


def load_command_series(args: argparse.Namespace) -> LoadedSeries:
    """Load the series the flags describe (``--preset`` alone loads the preset's columns).

    Raises:
        ValueError: a CSV without ``--target``, options a format does not take, or as the
            loaders.
    """
    path = _resolve_path(args)
    loader_flags = (args.target, args.time_col, args.freq, args.resample, args.aggregation)
    if args.preset is not None and not any(loader_flags) and not args.features:
        return compare.load_preset_series(args.preset, path)
    if args.download and args.format == "auto":
        args.format = "electricity"
    options: dict = {"missing": args.missing}
    if args.resample is not None:
        options["resample"] = args.resample
    if args.aggregation is not None:
        options["aggregation"] = args.aggregation
    sniffed = args.format
    if sniffed == "auto":
        # The same sniffing as load_series, to know which options the format takes.
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        if first.startswith("Date;Time;"):
            sniffed = "household"
        elif first.startswith("datetime,Global_active_power"):
            sniffed = "household-days"
        elif first.startswith(('"";"MT_', ';"MT_', ";MT_")):
            sniffed = "electricity"
        else:
            sniffed = "csv"
    if sniffed == "csv":
        if not args.target:
            raise ValueError(
                f"{path} is a plain CSV: pass --target with the column(s) to forecast "
                "(and --time-col if the timestamps are not the first column)"
            )
        config = LoadConfig(
            time_col=args.time_col,
            targets=tuple(args.target),
            features=tuple(args.features),
            freq=args.freq,
            **options,
        )
        return load_series(path, format="csv", config=config)
    if args.time_col is not None or args.freq is not None:
        raise ValueError(
            f"--time-col and --freq are for plain CSV files; {path} is in the {sniffed!r} "
            "format, whose timestamps are fixed; leave them out"
        )
    if sniffed == "electricity":
        if args.features:
            raise ValueError(
                "--features is not available for the electricity format (every column is a "
                "client); leave it out"
            )
        if args.target:
            options["clients"] = tuple(args.target)
    else:
        if args.target:
            options["columns"] = tuple(args.target)
        options["features"] = tuple(args.features)
    return load_series(path, format=sniffed, **options)


def compare_config(args: argparse.Namespace) -> compare.CompareConfig:
    """The ``CompareConfig`` the flags describe: a preset (or the defaults) with overrides."""
    config = compare.PRESETS[args.preset] if args.preset else compare.CompareConfig()
    changes = {
        field: value
        for field, value in (
            ("season", args.season),
            ("horizon", args.horizon),
            ("strategy", args.strategy),
            ("origin_stride", args.stride),
            ("seeds", args.seeds),
            ("seed", args.seed),
            ("split", args.split),
        )
        if value is not None
    }
    if args.test_size is not None:
        changes["test_size"] = args.test_size
    elif args.split is not None:
        changes["test_size"] = None
    if args.models:
        names = [spec.name for spec in config.models]
        unknown = [name for name in args.models if name not in names]
        if unknown:
            raise ValueError(
                f"--models {' '.join(unknown)}: no such model; pass names among {names}"
            )
        changes["models"] = tuple(spec for spec in config.models if spec.name in args.models)
    config = dataclasses.replace(config, **changes)
    return compare.override_models(config, window=args.window, epochs=args.epochs)


def run_compare_command(args: argparse.Namespace) -> int:
    """Handler of ``lstmlab compare``: load, compare, write the report; returns the exit code."""
    config = compare_config(args)
    # A failed --download raises DownloadError (a RuntimeError): cli.main prints it, exit 1.
    series = load_command_series(args)
    from lstmlab.cli import prepare_output_dir  # late: cli imports the command modules

    # Executor and device first: a missing Ray or GPU fails before the run folder exists.
    with (
        make_executor(args.executor, ray_address=args.ray_address) as executor,
        on_device(args.device) as device,
    ):
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        write_json(
            out / "config.json",
            {
                "compare": config,
                "load": str(series.report.source),
                "device": device.platform,
            },
        )
        result = compare.run(
            config,
            series,
            quiet=args.quiet,
            log=None if args.quiet else print,
            executor=executor,
        )
    files = write_compare_report(result, out)
    best = result.best()
    print(
        f"best: {best.label}, test RMSE {format_number(best.mean('rmse'))} "
        f"(persistence {format_number(result.outcome('persistence').mean('rmse'))}); "
        f"{len(result.outcomes)} models in {result.seconds:.1f} s"
    )
    print(f"Output written to {out.resolve()} ({', '.join(p.name for p in files.values())})")
    return 0


def add_live_commands(subparsers: Any) -> None:
    """Add ``fit``, ``observe`` and ``serve`` to an ``argparse`` subparsers object.

    Args:
        subparsers: the result of ``parser.add_subparsers()``.
    """
    _add_fit(subparsers)
    _add_observe(subparsers)
    _add_serve(subparsers)


# --------------------------------------------------------------------------- fit


def _add_fit(subparsers: Any) -> None:
    spec = FitSpec()
    parser = subparsers.add_parser(
        "fit",
        help="train a forecaster on a CSV and save a model folder",
        description=(
            "Train on DATA and save a model folder with its config, weights, scaler, data "
            "recipe, metrics and the state at the end of every series. Each --target column "
            "is one series (one stream each), forecast by one shared model."
        ),
    )
    parser.add_argument("data", type=Path, help="CSV file with a time column and the targets")
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        dest="targets",
        help="a column to forecast; repeat for several series",
    )
    parser.add_argument("--time-col", default=None, help="timestamp column (default: first)")
    parser.add_argument("--freq", default=None, help="frequency of the rows, e.g. 15min")
    parser.add_argument(
        "--missing", default="interpolate", choices=("interpolate", "ffill", "drop", "error")
    )
    parser.add_argument("--model", choices=MODEL_KINDS, default=spec.kind)
    parser.add_argument(
        "--window",
        type=int,
        default=spec.window,
        help="input window (stateless, mlp) or training chunk (stateful)",
    )
    parser.add_argument(
        "--units",
        type=int,
        action="append",
        default=None,
        help="units per layer; repeat for a stack",
    )
    parser.add_argument("--epochs", type=int, default=spec.epochs)
    parser.add_argument("--batch-size", type=int, default=spec.batch_size)
    parser.add_argument("--learning-rate", type=float, default=spec.learning_rate)
    parser.add_argument("--scaler", choices=("minmax", "standard", "none"), default=spec.scaler)
    parser.add_argument("--seed", type=int, default=spec.seed)
    parser.add_argument("--save", type=Path, required=True, help="the model folder to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model folder (atomically)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_argument(parser)
    parser.set_defaults(handler=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    """Handler of ``lstmlab fit``."""
    from lstmlab.data.loading import LoadConfig, load_csv

    check_save_destination(args.save, overwrite=args.overwrite)
    spec = FitSpec(
        kind=args.model,
        window=args.window,
        units=tuple(args.units or ()),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        scaler=args.scaler,
        seed=args.seed,
    )
    loaded = load_csv(
        args.data,
        LoadConfig(
            time_col=args.time_col,
            targets=tuple(args.targets),
            freq=args.freq,
            missing=args.missing,
        ),
    )
    if loaded.report.rows_dropped:
        # A live model reads its series on the regular time grid (observe checks it), so the
        # holes --missing drop leaves would fail only after training, as a "gap" in the data.
        raise ValueError(
            f"--missing drop removed {loaded.report.rows_dropped} row(s) of {args.data}, leaving "
            f"holes in the {loaded.freq!r} time grid that a live model cannot read; pass "
            "--missing interpolate or --missing ffill"
        )
    frame = loaded.frame
    series = {name: frame[name].to_numpy(np.float64) for name in loaded.targets}
    times = {name: frame.index for name in loaded.targets}
    with on_device(args.device):
        forecaster = train_forecaster(
            series,
            spec=spec,
            columns=("value",),
            timestamps=times,
            freq=loaded.freq,
            time_col=frame.index.name,
            quiet=args.quiet,
        )
        forecaster.save(args.save)
    metrics = forecaster.metrics
    final_loss = metrics["final_loss"]  # None without training epochs (--epochs 0)
    print(
        f"trained a {spec.kind} model on {len(series)} series of {len(frame)} readings "
        f"({loaded.freq}); final loss "
        + ("none (no epochs)" if final_loss is None else f"{final_loss:.6g}")
    )
    for name, rmse in metrics["one_step_rmse"].items():
        print(f"  {name}: one-step RMSE {rmse:.6g}")
    print(f"Model saved to {args.save.resolve()}")
    return 0


# --------------------------------------------------------------------------- observe


def _add_observe(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "observe",
        help="advance a series of a saved model through new readings and forecast",
        description=(
            "Read new readings of one series from a CSV (a time column and the value "
            "column), advance the series' state, save it with the model and print the "
            "forecast."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, dest="model_dir")
    parser.add_argument("--series", required=True, help="series id (a new id starts fresh)")
    parser.add_argument("--input", type=Path, required=True, help="CSV with the new readings")
    parser.add_argument(
        "--time-col",
        default=None,
        help="timestamp column (default: the model's, else the first column)",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=None,
        dest="columns",
        help="value column(s) (default: the series id, 'value', or the only other column)",
    )
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")
    add_device_argument(parser)
    parser.set_defaults(handler=run_observe)


def _read_readings(
    path: Path,
    forecaster: Forecaster,
    series_id: str,
    time_col: str | None,
    columns: Sequence[str] | None,
) -> tuple[np.ndarray, list[str] | None]:
    if not path.exists():
        raise ValueError(f"input file {path} does not exist; pass the CSV with the new readings")
    frame = pd.read_csv(path)
    if frame.empty:
        raise ValueError(f"{path} holds no readings; pass a CSV with at least one row")
    recipe = forecaster.recipe
    time_col = time_col or recipe.time_col
    if time_col is None and len(frame.columns) > len(recipe.columns):
        time_col = str(frame.columns[0])
    if time_col is not None and time_col not in frame.columns:
        raise ValueError(
            f"{path} has no time column {time_col!r} (columns: {list(frame.columns)}); pass "
            "--time-col"
        )
    others = [str(c) for c in frame.columns if c != time_col]
    if columns is None:
        if len(recipe.columns) == 1:
            candidates = [c for c in (series_id, recipe.columns[0]) if c in others]
            columns = candidates[:1] or (others if len(others) == 1 else None)
        else:
            columns = [c for c in recipe.columns if c in others]
        if not columns or len(columns) != len(recipe.columns):
            raise ValueError(
                f"cannot tell which column(s) of {path} hold the readings (columns: "
                f"{others}); the model reads {len(recipe.columns)} value(s) per reading, pass "
                "--column"
            )
    missing = [c for c in columns if c not in others]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; its columns are {others}")
    try:
        values = frame[list(columns)].to_numpy(np.float64)
    except ValueError:
        raise ValueError(
            f"{path}: the column(s) {list(columns)} hold text that is not a number; fix the file"
        ) from None
    stamps = None if time_col is None else frame[time_col].astype(str).tolist()
    return values, stamps


def run_observe(args: argparse.Namespace) -> int:
    """Handler of ``lstmlab observe``."""
    # The device first: --device gpu without a GPU fails before the model is touched.
    with on_device(args.device), model_lock(args.model_dir, create=False):
        # load, observe, save: one writer
        forecaster = Forecaster.load(args.model_dir)
        values, stamps = _read_readings(
            args.input, forecaster, args.series, args.time_col, args.columns
        )
        forecast = forecaster.observe(args.series, values, stamps, horizon=args.horizon)
        forecaster.save(args.model_dir)
    if args.json:
        print(json.dumps(forecast.to_dict()))
        return 0
    print(f"series {args.series}: {len(values)} reading(s) observed, {forecast.seen} in all")
    if forecast.values is None:
        print(f"no forecast yet: the model needs {forecast.needed} more reading(s)")
        return 0
    labels = forecast.timestamps or tuple(f"+{i + 1}" for i in range(len(forecast.values)))
    for label, row in zip(labels, forecast.values, strict=True):
        print(f"{label}\t" + "\t".join(f"{v:.6g}" for v in row))
    return 0


# --------------------------------------------------------------------------- serve


def _add_serve(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a saved model over HTTP (FastAPI on uvicorn)",
        description=(
            "Serve a model folder: POST /series/{id}/observations, GET "
            "/series/{id}/forecast, GET /health, GET /models/current. Per-series state lives "
            "in an SQLite database beside the model (DIR.series.sqlite)."
        ),
    )
    parser.add_argument("--model", type=Path, required=True, dest="model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one")
    parser.add_argument("--db", type=Path, default=None, help="state database file")
    parser.add_argument("--max-readings", type=int, default=10_000)
    parser.add_argument(
        "--durability",
        choices=("process", "fsync"),
        default="process",
        help="process: survives a killed server; fsync: also a power cut",
    )
    add_device_argument(parser)
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``lstmlab serve``."""
    from lstmlab.live.service import ServeConfig, run

    config = ServeConfig(max_readings=args.max_readings, durability=args.durability)
    # uvicorn runs its event loop, where the model predicts, in this thread: the device holds.
    with on_device(args.device):
        run(args.model_dir, host=args.host, port=args.port, db_path=args.db, config=config)
    return 0


def add_keras_commands(subparsers: Any) -> None:
    """Add ``import-keras`` and ``export-keras`` to an ``argparse`` subparsers object.

    Args:
        subparsers: the result of ``parser.add_subparsers()``.
    """
    parser = subparsers.add_parser(
        "import-keras",
        help="turn a Keras 3 .keras model (LSTM layers, Dense head) into a model folder",
        description=(
            "Read a Keras 3 model made of LSTM layers (stateful or not) and at most one linear "
            "Dense head, or an MLP (Flatten, Dense(relu)..., Dense), and save it as an lstmlab "
            "model folder. A stateful model's carried state becomes the state of the series "
            "'default' (or 'default.0', 'default.1', ... for a batch of several rows). "
            "Needs Keras: pip install 'lstmlab[keras]'."
        ),
    )
    parser.add_argument("model", type=Path, help="the .keras file")
    parser.add_argument("--save", type=Path, required=True, help="the model folder to write")
    parser.add_argument(
        "--timesteps",
        type=int,
        default=None,
        help="time steps for a model whose input has a variable time axis (default 1)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.set_defaults(handler=run_import_keras)

    parser = subparsers.add_parser(
        "export-keras",
        help="turn a model folder into a Keras 3 .keras model",
        description=(
            "Write the network of a model folder as a Keras 3 Sequential model. A stateful "
            "model is exported with one batch row per series (all of the folder's, or those "
            "given with --series) and their carried states; lstmlab.keras_io.load_keras "
            "loads it with the states. The scaler is not part of the Keras model. Needs "
            "Keras: pip install 'lstmlab[keras]'."
        ),
    )
    parser.add_argument("folder", type=Path, help="the model folder")
    parser.add_argument("--out", type=Path, required=True, help="the .keras file to write")
    parser.add_argument(
        "--series",
        action="append",
        default=None,
        help="a series whose state fills the next batch row; repeat (default: all)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch rows of zero state for a stateful folder without series (default 1)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(handler=run_export_keras)


def _describe(saved: Any) -> str:
    config = saved.config
    if config.kind == "mlp":
        shape = f"hidden {list(config.hidden)}"
    else:
        kind = "stateful" if config.stateful else "stateless"
        shape = f"{kind} LSTM, units {list(config.units)}"
    return (
        f"{shape}, {config.timesteps} time step(s) x {config.features} feature(s) -> "
        f"{config.outputs} output(s)"
    )


def run_import_keras(args: argparse.Namespace) -> int:
    """``lstmlab import-keras MODEL.keras --save DIR``."""
    from lstmlab.keras_io import import_keras

    check_save_destination(args.save, overwrite=args.overwrite)
    saved = import_keras(args.model, args.save, timesteps=args.timesteps)
    print(f"imported {args.model} ({_describe(saved)})")
    series = saved.states_meta.get("series", [])
    if series:
        print(f"carried state saved for series {', '.join(series)}")
    print(f"Model saved to {args.save.resolve()}")
    return 0


def run_export_keras(args: argparse.Namespace) -> int:
    """``lstmlab export-keras DIR --out MODEL.keras``."""
    from lstmlab.keras_io import folder_state, save_keras, to_keras
    from lstmlab.model_folder import load_model

    if args.out.exists() and not args.overwrite:
        raise FileExistsError(
            f"{args.out} already exists; pass --overwrite to replace it or --out to choose "
            "another file"
        )
    saved = load_model(args.folder)
    model = to_keras(saved, folder_state(saved, args.series, args.batch_size))
    save_keras(model, args.out)
    print(f"exported {args.folder} ({_describe(saved)}) as Keras model {model.name!r}")
    if saved.scaler is not None:
        print(
            f"note: the folder's {saved.scaler.get('kind', 'data')} scaler is not part of the "
            "Keras model; feed it scaled values"
        )
    print(f"Keras model written to {args.out.resolve()}")
    return 0
