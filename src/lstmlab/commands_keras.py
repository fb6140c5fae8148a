"""Command line for Keras model exchange: ``lstmlab import-keras`` and ``lstmlab export-keras``.

``add_keras_commands(subparsers)`` registers both subcommands on ``lstmlab``'s parser; each
handler makes one call into ``lstmlab.keras_exchange`` and returns an exit code
(``ValueError`` messages are printed by ``lstmlab.cli.main``). Keras is imported only when a
command runs, so ``lstmlab --help`` works without it.
"""

import argparse
from pathlib import Path
from typing import Any

from lstmlab.persist import check_save_destination


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
            "given with --series) and their carried states; lstmlab.keras_exchange.load_keras "
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
    from lstmlab.keras_exchange import import_keras

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
    from lstmlab.keras_exchange import folder_state, save_keras, to_keras
    from lstmlab.persist import load_model

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
