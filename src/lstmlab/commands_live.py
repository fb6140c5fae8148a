"""Command line for live models: ``lstmlab fit``, ``lstmlab observe``, ``lstmlab serve``.

``add_live_commands(subparsers)`` registers the three subcommands on ``lstmlab``'s parser;
each handler turns flags into a frozen config, makes one library call and returns an exit
code (``ValueError`` messages are printed by ``lstmlab.cli.main``).
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmlab.devices import add_device_argument, on_device
from lstmlab.persist import check_save_destination, model_lock
from lstmlab.streaming import MODEL_KINDS, FitSpec, Forecaster, train_forecaster


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
    from lstmlab.data.loaders import LoadConfig, load_csv

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
    from lstmlab.serve import ServeConfig, run

    config = ServeConfig(max_readings=args.max_readings, durability=args.durability)
    # uvicorn runs its event loop, where the model predicts, in this thread: the device holds.
    with on_device(args.device):
        run(args.model_dir, host=args.host, port=args.port, db_path=args.db, config=config)
    return 0
