"""The ``lstmlab compare`` subcommand: load a series, run the comparison, write the report.

Registered in ``cli.py`` with ``add_compare_command(subparsers)``.
"""

import argparse
import dataclasses
import os
from pathlib import Path

from lstmlab.data.loaders import (
    LoadConfig,
    LoadedSeries,
    download_electricity_diagrams,
    load_series,
)
from lstmlab.devices import add_device_argument, on_device
from lstmlab.executors import add_executor_arguments, make_executor
from lstmlab.experiments import compare
from lstmlab.report.compare_report import write_compare_report
from lstmlab.report.markdown import format_number, write_json

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
