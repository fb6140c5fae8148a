"""The command line: flags -> a frozen config -> one library call -> an exit code.

One vocabulary for every command (``lstmlab COMMAND --help`` shows each flag's default):

- ``--target COL [COL ...]``: the column(s) to forecast (or, for ``observe``, to read);
- ``--out PATH``: what the command writes (a report folder, a model folder, a ``.keras``
  file); ``--overwrite`` replaces an earlier one;
- ``--model-dir DIR``: a model folder the command reads;
- ``--model KIND`` (``fit``) and ``--models KIND [KIND ...]`` (``compare``): model kinds,
  ``stateful``, ``stateless``, ``stacked`` or ``mlp``;
- ``--missing``: ``fit`` fills (``interpolate``, ``ffill``), drops or refuses missing values
  when loading; ``compare`` fills after its split, each training part from its own values
  only (``interpolate``, ``ffill``: ``CompareConfig.missing``), and drops or refuses when
  loading (``drop``, ``error``);
- ``--quiet``: print only the final summary (no progress bars, no per-epoch lines);
- ``--device cpu|gpu|auto`` and, for sweeps, ``--executor local|ray``.

The model defaults of ``fit`` and ``compare`` are ``lstmlab.forecaster.ForecasterConfig``'s;
``moving-average`` and ``convergence`` keep the seed script's protocol (their config classes).
Every command that succeeds says what it wrote; bad input exits with code 2 and a message
that names the problem and the fix (never a traceback): a file that is missing, a folder,
binary or unreadable; a number out of range; a full disk.

Each command imports its modules when it runs, and ``main`` builds the flags of the named
command only: ``lstmlab --help``, ``lstmlab --version`` and ``lstmlab moving-average --help``
load neither JAX nor pandas, and a command loads what it uses (``moving-average`` never loads
SciPy, statsforecast or FastAPI). ``--no-compile-cache`` (before or after the command) runs
without JAX's persistent compilation cache (``lstmlab.runtime.configure_compile_cache``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import importlib.util
import inspect
import json
import os
import re
import shutil
import sqlite3
import stat
import sys
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmlab._version import __version__
from lstmlab.defaults import MAX_EPOCHS, MAX_READINGS  # the configurations' bounds

if TYPE_CHECKING:  # annotations only: each handler imports what it runs
    import jax
    import numpy as np

    from lstmlab.data.loading import LoadedSeries
    from lstmlab.experiments import compare
    from lstmlab.forecaster import Forecaster, ForecasterConfig

__all__ = [
    "build_parser",
    "compare_config",
    "config_with_device",
    "load_command_series",
    "main",
    "prepare_output_dir",
]

_MISSING = ("interpolate", "ffill", "drop", "error")
# compare's fills after the split (CompareConfig.missing); drop and error act when loading
_SPLIT_FILLS = ("interpolate", "ffill")
_FORMATS = ("auto", "csv", "household", "household-days", "electricity")
# The share of a column's values fit and compare may make up when loading (--max-filled)
_MAX_FILLED = 0.1
_TOKEN_ENV = "LSTMLAB_TOKEN"


# --------------------------------------------------------------------------- vocabulary


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that ends every flag's text with its default (``(default: ...)``).

    A flag whose default is ``None`` states its default in words in its own help (e.g. "the
    preset's, else 6"); switches (``--quiet``) and required flags have none to show.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "(default:" in text
            or action.nargs == 0
            or action.required
            or action.default in (None, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


def _command(subparsers: Any, name: str, *, help: str, description: str | None) -> Any:
    # allow_abbrev=False: one spelling per flag (--model must not mean --model-dir)
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )


def _shown(values: Iterable[Any]) -> str:
    return " ".join(str(v) for v in values)


def _add_target(parser: argparse.ArgumentParser, *, help: str, required: bool = False) -> None:
    # extend: `--target A --target B` is both columns, as `--target A B` (store kept only B)
    parser.add_argument(
        "--target",
        nargs="+",
        action="extend",
        metavar="COL",
        required=required,
        default=None,
        help=help,
    )


def _add_out(
    parser: argparse.ArgumentParser, *, what: str, default: str | None = None, exists: str
) -> None:
    """``--out PATH`` (required without a default) and ``--overwrite``."""
    parser.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        required=default is None,
        default=None if default is None else Path(default),
        help=f"{what} to write",
    )
    parser.add_argument("--overwrite", action="store_true", help=f"replace {exists}")


def _add_model_dir(parser: argparse.ArgumentParser, *, what: str) -> None:
    parser.add_argument(
        "--model-dir", type=Path, metavar="DIR", required=True, help=f"the model folder {what}"
    )


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print only the final summary (no progress bars, no per-epoch lines)",
    )


def _add_device(parser: argparse.ArgumentParser) -> None:
    from lstmlab.runtime import DEVICES

    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where to train and predict: cpu, gpu, or auto (the first GPU JAX sees, else cpu)",
    )


def _add_executor(parser: argparse.ArgumentParser, *, task: str) -> None:
    from lstmlab.runtime import EXECUTORS, RAY_INSTALL

    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help=f"local: in this process; ray: one Ray task per {task} ({RAY_INSTALL})",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="the Ray cluster for --executor ray, e.g. auto (default: start a local runtime)",
    )


def _say_wrote(out: Path, paths: Iterable[Path]) -> None:
    """Print ``wrote OUT: a, b, c`` naming every file a command wrote into ``out``."""
    names = sorted({str(Path(p).relative_to(out)) for p in paths})
    print(f"wrote {out}: {', '.join(names)}")


def _silent(*_: Any) -> None:
    """A ``log`` that prints nothing (``--quiet``)."""


def _progress_line(command: str) -> Callable[[str], None]:
    """A ``log`` for ``--quiet`` that still shows a long run moving: one line on stderr."""

    def log(line: str) -> None:
        print(f"lstmlab {command}: {line}", file=sys.stderr, flush=True)

    return log


def _separator(text: str) -> str:
    """A ``--sep`` value: one character; a backslash-t or ``tab`` mean a tab (argparse type)."""
    text = "\t" if text in ("\\t", "tab") else text
    if len(text) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character such as ',' or ';' (or \\t for a tab), got {text!r}"
        )
    return text


def _add_csv_reading(parser: argparse.ArgumentParser, *, max_filled: bool) -> None:
    """``--sep``, ``--no-header``, ``--time-format`` and (``max_filled``) ``--max-filled``."""
    parser.add_argument(
        "--sep",
        type=_separator,
        default=",",
        help="field separator of a CSV: one character, e.g. ';' (\\t for a tab)",
    )
    parser.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the CSV has no header line: every line is data, and the columns are named by "
        "position, 1 (the first), 2, ... (pass --target 2 for the second column)",
    )
    parser.add_argument(
        "--time-format",
        metavar="FORMAT",
        help="strptime format of the timestamps, e.g. '%%d/%%m/%%Y %%H:%%M' (default: inferred "
        "from the first value; dates with '/' need it)",
    )
    parser.add_argument(
        "--tz",
        dest="time_zone",
        metavar="ZONE",
        help="the zone of local timestamps, e.g. Europe/Paris: offsets that change at a "
        "daylight-saving change are converted to it, naive times read in it; the series keeps "
        "it (default: one UTC offset, or none, per file)",
    )
    if max_filled:
        parser.add_argument(
            "--max-filled",
            type=float,
            default=_MAX_FILLED,
            metavar="SHARE",
            help="the largest share (0 to 1) of a column's values that loading may make up: "
            "absent timestamps of the time grid and missing cells, filled by --missing; a "
            "wrong --freq makes up most of them; 1 accepts any share",
        )


# Upper bounds of the integer flags that have no other (the configurations check the lower
# ones, with their own messages): an absurd count is refused at once, in words, instead of
# running for ever or failing in the allocator. --epochs and --max-readings take the
# configurations' own bounds (MAX_EPOCHS, MAX_READINGS), which the Python API checks too.
_MAX_INPUT_LEN = 100_000_000  # the seed script's input is 1000 readings
_MAX_COUNT = 2**31 - 1  # sizes and counts: the compiled programs' int32
_MAX_GRID = 10_000  # values of a --tsteps/--lahead range


def _int_at_most(limit: int, fix: str) -> Callable[[str], int]:
    """An argparse type: an ``int`` of at most ``limit`` (argparse names the flag).

    ``fix`` ends the message. A text that is not an integer keeps argparse's own "invalid int
    value" message.
    """

    def parse(text: str) -> int:
        value = int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}, got {text}; {fix}")
        return value

    parse.__name__ = "int"  # argparse's "invalid int value: 'x'" for a non-integer
    return parse


_EPOCHS = _int_at_most(MAX_EPOCHS, "pass fewer epochs")


def _check_seed_flag(args: argparse.Namespace) -> None:
    """Refuse a ``--seed`` whose run of ``--seeds`` leaves 0..MAX_SEED, before any training."""
    from lstmlab.checks import check_seed

    seeds = getattr(args, "seeds", None)
    count = seeds if isinstance(seeds, int) and seeds >= 1 else 1  # a bad --seeds: its own error
    if getattr(args, "seed", None) is not None:
        check_seed("--seed", args.seed, count=count)


def _check_model_folder(path: Path) -> None:
    """Refuse a ``--model-dir`` that is not a model folder, naming the fix."""
    if not path.is_dir():
        raise ValueError(f"no model folder at {path}; pass the folder `lstmlab fit` saved")
    if not (path / "config.json").is_file():
        raise ValueError(
            f"{path} is not a model folder: config.json is missing; pass the folder "
            "`lstmlab fit --out` wrote"
        )


# --------------------------------------------------------------------------- run folders


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
        >>> import jax
        >>> config_with_device({"epochs": 2}, jax.devices("cpu")[0])
        {'epochs': 2, 'device': 'cpu'}
    """
    from lstmlab.report.documents import json_ready

    return {**json_ready(config), "device": device.platform}


def _config_from_args(config_class: Any, args: argparse.Namespace) -> Any:
    """The frozen config whose fields are the flags of the same names."""
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


# --------------------------------------------------------------------------- moving-average


def _add_script_arguments(parser: argparse.ArgumentParser, defaults: Any, *, out: str) -> None:
    """Flags shared by moving-average and convergence (the seed script's settings)."""
    from lstmlab.experiments.settings import LAYOUTS

    parser.add_argument(
        "--input-len",
        type=_int_at_most(_MAX_INPUT_LEN, "pass a shorter input (the seed script's is 1000)"),
        default=defaults.input_len,
        help="length of the input series",
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="samples per batch"
    )
    parser.add_argument("--epochs", type=_EPOCHS, default=defaults.epochs, help="training epochs")
    parser.add_argument(
        "--units",
        type=_int_at_most(_MAX_COUNT, "pass fewer units"),
        default=defaults.units,
        help="LSTM units",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=defaults.threshold,
        help="converged: test MSE at most this times the MSE of predicting the training mean",
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=defaults.layout,
        help="official: the script's batch order; streams: contiguous streams per batch row",
    )
    _add_out(parser, what="the report folder", default=out, exists="an earlier report there")
    _add_quiet(parser)
    _add_device(parser)


def _add_moving_average(parser: argparse.ArgumentParser) -> None:
    from lstmlab.experiments.settings import MovingAverageConfig

    defaults = MovingAverageConfig()
    parser.description = _module_doc("lstmlab.experiments.moving_average")
    parser.add_argument(
        "--tsteps", type=int, default=defaults.tsteps, help="moving-average window of the target"
    )
    parser.add_argument(
        "--lahead", type=int, default=defaults.lahead, help="input window of the stateless model"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="data and weights seed")
    _add_script_arguments(parser, defaults, out="runs/moving-average")
    parser.set_defaults(handler=_run_moving_average)


def _check_script_sizes(args: argparse.Namespace) -> None:
    """Refuse windows that do not fit in ``--input-len`` (numpy's words would be unclear)."""
    from lstmlab.checks import check_positive_int

    check_positive_int("--input-len", args.input_len, fix="pass e.g. --input-len 1000")
    for flag in ("tsteps", "lahead"):
        values = getattr(args, flag)
        for value in values if isinstance(values, tuple) else (values,):
            if isinstance(value, int) and value >= args.input_len:
                raise ValueError(
                    f"--{flag} {value} does not fit in --input-len {args.input_len}: a window "
                    f"must be shorter than the series; pass a --{flag} below {args.input_len} "
                    "or a longer --input-len"
                )


# What the experiments' reports import, loaded on a thread while the models compile: SciPy's
# LAPACK bindings (JAX's CPU QR, the orthogonal initialiser, loads them when it is first
# lowered) and the plotting modules.
_REPORT_MODULES = (
    "scipy.linalg.cython_blas",
    "scipy.linalg.cython_lapack",
    "lstmlab.report.figures",
    "matplotlib.backends.backend_agg",
)


def _run_moving_average(args: argparse.Namespace) -> int:
    from lstmlab.runtime import import_in_background, on_device

    import_in_background(*_REPORT_MODULES)  # while the models compile
    from lstmlab.experiments import moving_average
    from lstmlab.report.documents import write_json, write_moving_average_report

    _check_seed_flag(args)
    _check_script_sizes(args)
    config = _config_from_args(moving_average.MovingAverageConfig, args)
    with on_device(args.device) as device:
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        written = [write_json(out / "config.json", config_with_device(config, device))]
        result = moving_average.run(config, quiet=args.quiet, log=_silent if args.quiet else print)
        written += write_moving_average_report(result, out).values()
    claim = (
        "STATELESS LSTM WILL ALSO CONVERGE"
        if config.expect_stateless_converges
        else "STATELESS LSTM WILL NOT CONVERGE"
    )
    print(f"the script expects: {claim}")
    from lstmlab.report.documents import format_number

    for outcome in result.outcomes:
        verdict = "converged" if outcome.converged else "not converged"
        print(
            f"{outcome.name}: {verdict}, test MSE {format_number(outcome.test_mse)} = "
            f"{outcome.ratio:.3f} x mean predictor"
        )
    _say_wrote(out, written)
    return 0


# --------------------------------------------------------------------------- convergence


def _int_list(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` or a range ``"1-6"`` -> a tuple of ints (argparse type)."""
    try:
        if "-" in text and "," not in text:
            low, high = (int(part) for part in text.split("-"))
            if high - low >= _MAX_GRID:
                raise argparse.ArgumentTypeError(
                    f"the range {text} holds {high - low + 1} values, more than {_MAX_GRID}; "
                    "pass a shorter range"
                )
            return tuple(range(low, high + 1))
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 1,2,3 or a range like 1-6, got {text!r}"
        ) from None


def _add_convergence(parser: argparse.ArgumentParser) -> None:
    from lstmlab.experiments.settings import ConvergenceConfig

    defaults = ConvergenceConfig()
    parser.description = _module_doc("lstmlab.experiments.convergence")
    parser.add_argument(
        "--tsteps",
        type=_int_list,
        default=defaults.tsteps,
        help="moving-average windows, e.g. 1-6 or 1,2,4",
    )
    parser.add_argument(
        "--lahead", type=_int_list, default=defaults.lahead, help="input windows, e.g. 1-6 or 1,2,4"
    )
    parser.add_argument("--seeds", type=int, default=defaults.seeds, help="seeds per cell")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="the first seed")
    _add_script_arguments(parser, defaults, out="runs/convergence")
    _add_executor(parser, task="lahead column")
    parser.set_defaults(handler=_run_convergence)


def _run_convergence(args: argparse.Namespace) -> int:
    from lstmlab.runtime import import_in_background, make_executor, on_device

    import_in_background(*_REPORT_MODULES)  # while the models compile
    from lstmlab.experiments import convergence
    from lstmlab.report.documents import write_convergence_report, write_json

    _check_seed_flag(args)
    _check_script_sizes(args)
    config = _config_from_args(convergence.ConvergenceConfig, args)
    # Executor and device first: a missing Ray or GPU fails before the run folder exists.
    with (
        make_executor(args.executor, ray_address=args.ray_address) as executor,
        on_device(args.device) as device,
    ):
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        written = [write_json(out / "config.json", config_with_device(config, device))]
        result = convergence.run(config, quiet=args.quiet, executor=executor)
    written += write_convergence_report(result, out).values()
    for mode in convergence.MODES:
        cells = result.cells(mode)
        print(f"{mode}: {sum(c.agrees for c in cells)} of {len(cells)} cells agree with the claim")
    print(f"{len(result.rows)} trainings in {result.seconds:.1f} s")
    _say_wrote(out, written)
    return 0


# --------------------------------------------------------------------------- compare


def _model_default(field: str, value: Any) -> str:
    return f"{field} (default: {value}, ForecasterConfig's; a --preset sets its own)"


def _preset_default(field: str, value: Any) -> str:
    return f"{field} (default: the preset's, else {value})"


def _seasons(text: str) -> int | None:
    """One ``--seasons`` value: a season length in steps, or ``none`` (argparse type)."""
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected season lengths in steps such as 12 (or 'none' for no season), got {text!r}"
        ) from None


def _add_compare(parser: argparse.ArgumentParser) -> None:
    parser.description = (_module_doc("lstmlab.experiments.compare") or "").split("\n\n")[0]
    _add_compare_data(parser)
    _add_compare_models(parser)
    _add_compare_protocol(parser)
    _add_out(
        parser, what="the report folder", default="runs/compare", exists="an earlier report there"
    )
    _add_quiet(parser)
    _add_executor(parser, task="model, its seeds trained together")
    _add_device(parser)
    parser.set_defaults(handler=_run_compare)


def _add_compare_data(parser: argparse.ArgumentParser) -> None:
    """The data flags of compare: the file, how to read it, and the presets."""
    from lstmlab.experiments import settings

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
        help="file format; auto sniffs it from the header line",
    )
    parser.add_argument(
        "--time-col",
        help="time column of a CSV: timestamps, or step numbers 1, 2, 3 (default: the first)",
    )
    _add_csv_reading(parser, max_filled=True)
    _add_target(
        parser,
        help="column(s) to forecast; several columns are several series of one global model "
        "(electricity: client names such as MT_001) (default: the format's, e.g. a preset's "
        "column; a plain CSV needs it)",
    )
    parser.add_argument(
        "--features",
        nargs="+",
        default=(),
        metavar="COL",
        help="extra input columns (CSV and household formats)",
    )
    parser.add_argument(
        "--freq", help="frequency of the source timestamps, e.g. D (default: inferred)"
    )
    parser.add_argument(
        "--resample", help="resample to this frequency, e.g. D, W, h, MS (default: no resampling)"
    )
    parser.add_argument(
        "--aggregation",
        choices=("sum", "mean"),
        help="how --resample aggregates (default: the format's, mean for CSV)",
    )
    parser.add_argument(
        "--missing",
        choices=_MISSING,
        default="interpolate",
        help="missing values: interpolate or ffill fill each training part from its own values "
        "only (the test part forward-filled as inputs, never scored); drop removes the rows "
        "with a missing value when loading; error refuses a series with one",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="electricity format: fetch LD2011_2014.txt into --cache-dir when DATA is not "
        "given (fails with a clear message without network)",
    )
    parser.add_argument("--cache-dir", type=Path, help="download cache (default: ~/.cache/lstmlab)")
    parser.add_argument(
        "--preset",
        choices=sorted(settings.PRESETS),
        help="a published protocol: models, windows, epochs, split, horizon (default: none)",
    )


def _add_compare_models(parser: argparse.ArgumentParser) -> None:
    """The model flags of compare: which models and baselines, and how each trains."""
    # JAX-free homes of compare's settings and vocabularies: --help loads no numerical stack
    from lstmlab.core.norms import NORMS
    from lstmlab.defaults import MODEL_KINDS, ForecasterSettings
    from lstmlab.experiments import settings
    from lstmlab.experiments.settings import BASELINES

    model_defaults = ForecasterSettings()  # the model defaults of fit and compare
    defaults = settings.CompareConfig()
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="KIND",
        help=f"train only these neural models, of {', '.join(MODEL_KINDS)} (default: all of "
        "the preset's, or all four)",
    )
    parser.add_argument(
        "--baselines",
        nargs="+",
        metavar="NAME",
        choices=BASELINES,
        help=f"the baselines, of {', '.join(BASELINES)}; persistence must be among them (every "
        "verdict and MASE is measured against it); seasonal_naive runs only with a season "
        f"(default: the preset's, else {_shown(defaults.baselines)})",
    )
    parser.add_argument(
        "--window",
        type=int,
        help="input window of every model (default: the shortest season plus one step, at least "
        "the Forecaster's shortest window and at most a third of the training part; a --preset "
        "sets its own)",
    )
    parser.add_argument(
        "--epochs",
        type=_EPOCHS,
        help=_model_default(
            "epochs of every model, the most it trains when it stops early", model_defaults.epochs
        ),
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        help=_model_default("Adam step size of every model", model_defaults.learning_rate),
    )
    parser.add_argument(
        "--norm",
        choices=("auto", *NORMS),
        help="input normalisation of every model: difference (relative to the window's last "
        "value), window (each window normalised), none, or auto (each trained, the lowest "
        "validation RMSE kept; needs --validation above 0) "
        f"(default: {settings.ModelSpec(model='mlp').norm}, ModelSpec's; a --preset sets its own)",
    )
    parser.add_argument(
        "--seeds", type=int, help=_model_default("seeds per model", model_defaults.seeds)
    )
    parser.add_argument(
        "--seed", type=int, help=_model_default("the first seed", model_defaults.seed)
    )
    parser.add_argument(
        "--scaler",
        choices=("minmax", "standard", "none"),
        help=_model_default("scaler fitted on the training part", model_defaults.scaler),
    )
    parser.add_argument(
        "--seasons",
        nargs="+",
        type=_seasons,
        metavar="N",
        help="season lengths in steps, e.g. 48 336 for half-hourly load: the default window "
        "covers the shortest, the seasonal naive baseline and MASE use it; 'none' for no "
        "season (default: the preset's, else from the frequency of the timestamps or detected "
        "on the training part)",
    )


def _add_compare_protocol(parser: argparse.ArgumentParser) -> None:
    """The protocol flags of compare: the horizon, the origins, the folds and the split."""
    from lstmlab.experiments import settings

    defaults = settings.CompareConfig()
    parser.add_argument(
        "--horizon", type=int, help=_preset_default("steps ahead", defaults.horizon)
    )
    parser.add_argument(
        "--strategy",
        choices=("recursive", "direct"),
        help=_preset_default(
            "multi-step forecasts: one output per step (direct) or fed back (recursive)",
            defaults.strategy,
        ),
    )
    parser.add_argument(
        "--stride",
        type=_int_at_most(_MAX_COUNT, "pass a smaller stride"),
        help=_preset_default("steps between forecast origins", defaults.origin_stride),
    )
    parser.add_argument(
        "--folds",
        type=_int_at_most(_MAX_COUNT, "pass fewer folds"),
        metavar="K",
        help=_preset_default(
            "rolling-origin backtest: the test part cut into K consecutive blocks, every model "
            "fitted again on all steps before each block",
            defaults.folds,
        ),
    )
    parser.add_argument(
        "--validation",
        type=float,
        metavar="FRACTION",
        help=_preset_default(
            "the tail of each training part held out for early stopping, the choice of --norm "
            "auto, the best-validated neural model and the conformal intervals; 0 for none",
            defaults.validation,
        ),
    )
    parser.add_argument(
        "--patience",
        type=_int_at_most(_MAX_COUNT, "pass a smaller patience (at most --epochs matters)"),
        metavar="N",
        help=_preset_default(
            "epochs without improvement on the validation tail before a model stops (the "
            "learning rate halves after half as many)",
            defaults.patience,
        ),
    )
    parser.add_argument(
        "--level",
        type=float,
        metavar="FRACTION",
        help=_preset_default("nominal coverage of the prediction intervals", defaults.level),
    )
    parser.add_argument(
        "--split",
        type=float,
        help=f"training fraction, the first part (default: the preset's, else {defaults.split})",
    )
    parser.add_argument(
        "--test-size",
        type=_int_at_most(_MAX_COUNT, "pass a smaller test size, or --split"),
        help="test steps, instead of --split (default: the preset's, else from --split)",
    )


def _data_dir() -> Path:
    return Path(os.environ.get("LSTMLAB_DATA", "../shared/data"))


def _resolve_path(args: argparse.Namespace) -> Path:
    from lstmlab.data.loading import download_electricity_diagrams
    from lstmlab.experiments import compare

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


def _load_missing(missing: str) -> str:
    """The loader's missing-value policy for ``compare --missing``.

    ``interpolate`` and ``ffill`` are compare's to apply (``CompareConfig.missing``) once the
    series is split, each training part from its own values only: the loader keeps the
    missing values (NaN). ``drop`` (remove the rows) and ``error`` (refuse) act when loading.
    """
    return "keep" if missing in _SPLIT_FILLS else missing


def load_command_series(args: argparse.Namespace) -> LoadedSeries:
    """Load the series the flags describe (``--preset`` alone loads the preset's columns).

    Missing values are kept (NaN) under ``--missing interpolate`` or ``ffill``: ``compare``
    fills them after the split, from the training part only. ``--missing drop`` drops the
    rows with a missing value and ``--missing error`` refuses them, both when loading.

    Raises:
        ValueError: a CSV without ``--target``, options a format does not take, ``--missing
            drop`` or ``error`` with ``--preset`` alone, or as the loaders.
    """
    from lstmlab.data.loading import LoadConfig, load_series, sniff_format
    from lstmlab.experiments import compare

    path = _resolve_path(args)
    loader_flags = (args.target, args.time_col, args.freq, args.resample, args.aggregation)
    if args.preset is not None and not any(loader_flags) and not args.features:
        if args.missing not in _SPLIT_FILLS:
            raise ValueError(
                f"--preset {args.preset} loads its file with missing values kept, for compare "
                f"to fill from the training part only; --missing {args.missing} is a loader "
                "policy it does not take: pass --missing interpolate or ffill, or the file as "
                "DATA with --target"
            )
        return compare.load_preset_series(args.preset, path)
    if args.download and args.format == "auto":
        args.format = "electricity"
    options: dict = {"missing": _load_missing(args.missing)}
    if args.resample is not None:
        options["resample"] = args.resample
    if args.aggregation is not None:
        options["aggregation"] = args.aggregation
    # The same sniffing as load_series, to know which options the format takes.
    sniffed = sniff_format(path) if args.format == "auto" else args.format
    csv_flags = (
        args.sep != ","
        or not args.header
        or args.time_format is not None
        or args.time_zone is not None
    )
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
            sep=args.sep,
            header=args.header,
            time_format=args.time_format,
            time_zone=args.time_zone,
            max_filled=args.max_filled,
            **options,
        )
        return load_series(path, format="csv", config=config)
    if args.time_col is not None or args.freq is not None or csv_flags:
        raise ValueError(
            f"--time-col and --freq are for plain CSV files (as are --sep, --no-header, "
            f"--time-format and --tz); {path} is in the {sniffed!r} format, whose columns and "
            "timestamps are fixed; leave them out"
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


def _check_compare_flags(args: argparse.Namespace) -> None:
    """Refuse values of compare's protocol flags, naming the flag and the fix."""
    from lstmlab.checks import check_fraction, check_positive_int

    if args.folds is not None:
        check_positive_int(
            "--folds", args.folds, fix="pass e.g. --folds 3, or --folds 1 for one split"
        )
    if args.patience is not None:
        check_positive_int("--patience", args.patience, fix="pass e.g. --patience 20")
    if args.level is not None:
        check_fraction("--level", args.level, fix="pass e.g. --level 0.9 for 90% intervals")
    if args.validation is not None and not 0 <= args.validation < 0.9:
        raise ValueError(
            f"--validation must be a fraction in [0, 0.9), got {args.validation!r}; pass e.g. "
            "--validation 0.2 (the last 20% of each training part), or 0 for none"
        )
    if args.seasons is not None:
        if None in args.seasons and len(args.seasons) > 1:
            raise ValueError(
                f"--seasons none means no season and stands alone, got --seasons "
                f"{_shown('none' if v is None else v for v in args.seasons)}; pass season "
                "lengths or none"
            )
        for value in args.seasons:
            if value is not None and value <= 0:
                raise ValueError(
                    f"--seasons takes season lengths in steps (positive integers), got {value}; "
                    "pass e.g. --seasons 12, or --seasons none for no season"
                )
    if args.baselines is not None and "persistence" not in args.baselines:
        raise ValueError(
            f"--baselines {_shown(args.baselines)} leaves out persistence, which every "
            "comparison includes (the verdicts and MASE are measured against it); pass "
            f"--baselines persistence {_shown(args.baselines)}"
        )


def compare_config(args: argparse.Namespace) -> compare.CompareConfig:
    """The ``CompareConfig`` the flags describe: a preset, else CompareConfig's defaults.

    ``--missing interpolate`` and ``ffill`` become ``CompareConfig.missing`` (filled after
    the split, from the training part only); ``drop`` and ``error`` act when loading
    (``load_command_series``) and leave the config's fill as it is.

    Args:
        args: the parsed ``compare`` flags.

    Returns:
        The config; the flags given override the preset's (or the defaults') values.

    Raises:
        ValueError: a ``--models`` name the comparison does not have, ``--baselines``
            without persistence, ``--folds``, ``--patience``, ``--level``, ``--validation``
            or ``--seasons`` out of range, or a value the config refuses.
    """
    from lstmlab.experiments import compare

    _check_compare_flags(args)
    # CompareConfig's model defaults are ForecasterConfig's (its models, seeds, seed, scaler)
    config = compare.PRESETS[args.preset] if args.preset else compare.CompareConfig()
    changes = {
        field: value
        for field, value in (
            ("horizon", args.horizon),
            ("strategy", args.strategy),
            ("origin_stride", args.stride),
            ("seeds", args.seeds),
            ("seed", args.seed),
            ("split", args.split),
            ("scaler", args.scaler),
            ("folds", args.folds),
            ("validation", args.validation),
            ("patience", args.patience),
            ("level", args.level),
        )
        if value is not None
    }
    if args.seasons is not None:
        changes["seasons"] = () if args.seasons == [None] else tuple(args.seasons)
    if args.baselines is not None:
        changes["baselines"] = tuple(dict.fromkeys(args.baselines))  # in order, once each
    if args.missing in _SPLIT_FILLS:
        changes["missing"] = args.missing
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
    config = compare.override_models(config, window=args.window, epochs=args.epochs, norm=args.norm)
    if args.learning_rate is not None:
        models = tuple(
            dataclasses.replace(spec, learning_rate=args.learning_rate) for spec in config.models
        )
        config = dataclasses.replace(config, models=models)
    return config


def _check_folds(config: compare.CompareConfig, series: LoadedSeries) -> None:
    """Refuse a series too short for the split and ``--folds``, before anything is written.

    ``compare.run`` cuts the same folds (with the windows it resolves from the season); this
    is its first check, made before the run folder exists.
    """
    from lstmlab.experiments import compare

    frame = series.frame
    if config.start is not None or config.end is not None:
        frame = frame.loc[config.start : config.end]
    window = max((spec.window for spec in config.models if spec.window is not None), default=1)
    compare.make_folds(config, len(frame), window)


def _run_compare(args: argparse.Namespace) -> int:
    from lstmlab.runtime import import_in_background, make_executor, on_device

    import_in_background(*_REPORT_MODULES)  # while the models compile
    from lstmlab.experiments import compare
    from lstmlab.report.documents import summary_lines, write_compare_report, write_json

    _check_seed_flag(args)
    config = compare_config(args)
    # A failed --download raises DownloadError (a RuntimeError): main prints it, exit 1.
    series = load_command_series(args)
    _check_folds(config, series)
    # Executor and device first: a missing Ray or GPU fails before the run folder exists.
    with (
        make_executor(args.executor, ray_address=args.ray_address) as executor,
        on_device(args.device) as device,
    ):
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
        settings = {"compare": config, "load": str(series.report.source), "device": device.platform}
        written = [write_json(out / "config.json", settings)]
        # --quiet drops the bars, not the one line per finished model (on stderr): a long
        # comparison must show it is moving
        log = _progress_line("compare") if args.quiet else print
        result = compare.run(config, series, quiet=args.quiet, log=log, executor=executor)
    written += write_compare_report(result, out).values()
    for line in summary_lines(result):
        print(line)
    _say_wrote(out, written)
    return 0


# --------------------------------------------------------------------------- fit


_FIT_DATA_HELP = (
    "CSV file: a time column of timestamps or step numbers 1, 2, 3, or none when the first "
    "column is a --target (the readings are then numbered from 0)"
)


def _add_fit(parser: argparse.ArgumentParser) -> None:
    # ForecasterConfig's fields and defaults, read without loading JAX (fit --help)
    from lstmlab.defaults import FORECASTER_MODELS, MIN_WINDOW, MODEL_KINDS, ForecasterSettings

    _DEFAULTS = ForecasterSettings()  # the model defaults of fit and compare

    kinds = MODEL_KINDS
    units = ", ".join(
        f"{kind} {_shown(dataclasses.replace(_DEFAULTS, model=kind).default_units)}"
        for kind in kinds
    )
    batches = ", ".join(
        f"{kind} {dataclasses.replace(_DEFAULTS, model=kind).default_batch_size}" for kind in kinds
    )
    parser.description = (
        "Train on DATA and save a model folder with its config, weights, scaler, data "
        "recipe, metrics and the state at the end of every series. Each --target column "
        "is one series, forecast by one shared model. The model defaults are "
        "lstmlab.ForecasterConfig's, the same as Forecaster(...) and compare."
    )
    parser.add_argument("data", type=Path, metavar="DATA", help=_FIT_DATA_HELP)
    _add_target(parser, required=True, help="the column(s) to forecast, one series each")
    parser.add_argument(
        "--time-col",
        default=None,
        help="time column: timestamps, or step numbers 1, 2, 3 (default: the first column)",
    )
    parser.add_argument(
        "--freq", default=None, help="frequency of the rows, e.g. 15min (default: inferred)"
    )
    parser.add_argument(
        "--missing", choices=_MISSING, default="interpolate", help="missing-value policy"
    )
    _add_csv_reading(parser, max_filled=True)
    parser.add_argument(
        "--sort", action="store_true", help="sort rows that are out of time order (reported)"
    )
    parser.add_argument(
        "--allow-outliers",
        action="store_true",
        help="train on absurd outliers too (a cell at 1e30, a sentinel code such as 999999), "
        "which fit refuses by default",
    )
    parser.add_argument(
        "--model",
        choices=FORECASTER_MODELS,
        default=_DEFAULTS.model,
        metavar="KIND",
        help=f"the model kind, one of {', '.join(FORECASTER_MODELS)}; auto (the default) "
        "trains several kinds and keeps the one that forecasts the validation tail best",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=_DEFAULTS.window,
        help="readings per training sample: the input window of every kind"
        + (
            f" (default: the shortest season plus one step, at least {MIN_WINDOW})"
            if _DEFAULTS.window is None
            else ""
        ),
    )
    parser.add_argument(
        "--units",
        type=int,
        nargs="+",
        metavar="N",
        default=None,
        help=f"units per layer, several for a stack (default: the kind's: {units})",
    )
    parser.add_argument("--epochs", type=_EPOCHS, default=_DEFAULTS.epochs, help="training epochs")
    parser.add_argument(
        "--learning-rate", type=float, default=_DEFAULTS.learning_rate, help="Adam step size"
    )
    parser.add_argument(
        "--batch-size",
        type=_int_at_most(_MAX_COUNT, "pass a smaller batch size"),
        default=None,
        help="samples per batch (window models) or streams per series (stateful) "
        f"(default: the kind's: {batches})",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=_DEFAULTS.seeds,
        help="models trained side by side from different weights",
    )
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="the first seed")
    parser.add_argument(
        "--scaler",
        choices=("minmax", "standard"),
        default=_DEFAULTS.scaler,
        help="scaler fitted per series",
    )
    _add_out(parser, what="the model folder", exists="an existing model folder (atomically)")
    _add_quiet(parser)
    _add_device(parser)
    parser.set_defaults(handler=_run_fit)


def _forecaster_config(args: argparse.Namespace) -> ForecasterConfig:
    """The ``ForecasterConfig`` the ``fit`` flags describe (validated)."""
    from lstmlab.forecaster import ForecasterConfig

    return ForecasterConfig(
        model=args.model,
        window=args.window,
        units=tuple(args.units or ()),
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seeds=args.seeds,
        seed=args.seed,
        scaler=args.scaler,
    )


def _check_model_size(config: ForecasterConfig, targets: int) -> None:
    """Refuse ``--units`` whose weights and Adam state could never fit in this machine's memory.

    A rough lower bound (float32 weights, their gradients and two Adam moments per seed); a
    model near the bound may still fail, but an absurd one fails here, in words, instead of
    in the allocator (or the kernel's out-of-memory killer).
    """
    from lstmlab.defaults import MIN_WINDOW

    gates = 1 if config.model == "mlp" else 4  # an LSTM layer has four gates
    inputs = (config.window or MIN_WINDOW) * targets if config.model == "mlp" else targets
    weights = 0
    for units in config.units or config.default_units:
        weights += gates * units * (inputs + (0 if config.model == "mlp" else units) + 1)
        inputs = units
    needed = weights * 4 * 4 * config.seeds  # bytes: float32 x (weights, grads, 2 moments)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return  # no way to tell on this system
    if needed > memory:
        raise ValueError(
            f"--units {_shown(config.units or config.default_units)} with --seeds "
            f"{config.seeds} need at least "
            f"{needed / 2**30:.3g} GiB for the weights and the optimizer state, more than this "
            f"machine's {memory / 2**30:.3g} GiB of memory; pass fewer --units or --seeds"
        )


def _run_fit(args: argparse.Namespace) -> int:
    from lstmlab.checks import printable
    from lstmlab.data.loading import LoadConfig, load_csv
    from lstmlab.forecaster import Forecaster
    from lstmlab.model_folder import check_save_destination
    from lstmlab.runtime import on_device

    _check_seed_flag(args)
    config = _forecaster_config(args)
    _check_model_size(config, len(args.target))
    check_save_destination(args.out, overwrite=args.overwrite)
    loaded = load_csv(
        args.data,
        LoadConfig(
            time_col=args.time_col,
            targets=tuple(args.target),
            freq=args.freq,
            missing=args.missing,
            sep=args.sep,
            header=args.header,
            time_format=args.time_format,
            time_zone=args.time_zone,
            max_filled=args.max_filled,
            sort=args.sort,
        ),
    )
    if loaded.report.rows_dropped:
        # A live model reads its series on the regular time grid (observe checks it), so the
        # holes --missing drop leaves would fail only after training, as a "gap" in the data.
        raise ValueError(
            f"--missing drop removed {loaded.report.rows_dropped} row(s) of {args.data}, leaving "
            f"holes in the {loaded.grid!r} time grid that a live model cannot read; pass "
            "--missing interpolate or --missing ffill"
        )
    # a DatetimeIndex (or step numbers) named after the time column; a column per series
    frame = loaded.frame
    report = loaded.report
    if report.values_filled:
        cells = report.rows_kept * len(report.columns)
        print(
            f"loading made up {report.values_filled} of {cells} values "
            f"({report.values_filled / cells:.1%}; --missing {args.missing}): "
            f"{report.gaps_filled} absent {'timestamp' if report.step is None else 'step'}(s) "
            f"of the {report.grid!r} grid, "
            f"{report.missing_read} missing cell(s)"
        )
    if report.rows_sorted:
        print(f"loading sorted the rows of {args.data} into time order (--sort)")
    with on_device(args.device), Forecaster(config=config, quiet=args.quiet) as forecaster:
        forecaster.fit(
            frame,
            target=list(loaded.targets),
            freq=loaded.freq,
            allow_outliers=args.allow_outliers,
        )
        forecaster.save(args.out)
        metrics = forecaster.metrics
    final_loss = metrics["final_loss"]  # None without training epochs
    kind = f"{metrics.get('model', config.model)} ({metrics.get('norm', config.norm)} norm)"
    print(
        f"trained a {kind} model on {len(loaded.targets)} series of {len(frame)} "
        f"readings ({loaded.grid}); final loss "
        + ("none (no epochs)" if final_loss is None else f"{final_loss:.6g}")
    )
    scores = metrics.get("model_scores") or {}
    if len(scores) > 1:  # model="auto" (or norm="auto"): what was tried, and the choice
        shown = ", ".join(
            f"{name} {'—' if score is None else f'{score:.4g}'}" for name, score in scores.items()
        )
        print(f"  chosen on the validation tail, RMSE in scaled units: {shown}")
    for warning in (metrics.get("warnings") or {}).values():
        print(f"  note: {warning}")
    for name, rmse in metrics["one_step_rmse"].items():  # None: no finite one-step forecast
        print(f"  {printable(name)}: one-step RMSE {'—' if rmse is None else f'{rmse:.6g}'}")
    print(f"saved model to {args.out}")
    return 0


# --------------------------------------------------------------------------- observe


def _add_observe(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read new readings of one series from a CSV (a time column and the value "
        "column), advance the series' state, save it with the model and print the "
        "forecast."
    )
    _add_model_dir(parser, what="to read and update")
    parser.add_argument(
        "--series", required=True, help="series id, one the model has (see --new-series)"
    )
    parser.add_argument(
        "--new-series",
        action="store_true",
        help="allow a series id the model does not have yet: it starts from a fresh state "
        "(without this flag an unknown id, such as a typo, is refused)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="CSV",
        help="CSV with the new readings (default: none, only with --reset)",
    )
    parser.add_argument(
        "--time-col",
        default=None,
        help=(
            "time column: timestamps, or the model's step numbers (default: the model's, "
            "else the first column)"
        ),
    )
    _add_target(
        parser,
        help="the value column(s) of the readings (default: the series id, 'value', or the "
        "only other column)",
    )
    _add_csv_reading(parser, max_filled=False)
    parser.add_argument("--horizon", type=int, default=1, help="steps to forecast")
    parser.add_argument(
        "--seq",
        type=int,
        metavar="N",
        help="the sequence number of the first reading (its position in the series, the "
        "training readings included), as the service takes it: the same readings sent "
        "again are then a repeat even without timestamps (default: none)",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="start the series afresh: delete its state and readings first (with --input, "
        "then observe them; both in one transaction)",
    )
    _add_plausible(parser)
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")
    _add_quiet(parser)
    _add_device(parser)
    parser.set_defaults(handler=_run_observe)


def _add_plausible(parser: argparse.ArgumentParser) -> None:
    """``--plausible-factor F`` and ``--allow-implausible`` (observe, serve)."""
    from lstmlab.defaults import PLAUSIBLE_FACTOR

    parser.add_argument(
        "--plausible-factor",
        type=float,
        metavar="F",
        help="refuse a reading more than F training ranges outside the series' training "
        f"values (default: {PLAUSIBLE_FACTOR:g})",
    )
    parser.add_argument(
        "--allow-implausible",
        action="store_true",
        help="accept any finite reading, however far outside the training range",
    )


def _plausible_factor(args: argparse.Namespace) -> float | None:
    """The ``plausible_factor`` the flags ask for (``None``: any finite reading)."""
    import numpy as np

    from lstmlab.defaults import PLAUSIBLE_FACTOR

    if args.allow_implausible:
        if args.plausible_factor is not None:
            raise ValueError(
                "--allow-implausible accepts any reading, --plausible-factor sets a limit; pass "
                "one of them"
            )
        return None
    if args.plausible_factor is None:
        return PLAUSIBLE_FACTOR
    if not np.isfinite(args.plausible_factor) or args.plausible_factor <= 0:
        raise ValueError(
            f"--plausible-factor must be a number > 0, got {args.plausible_factor!r}; pass e.g. "
            f"--plausible-factor {PLAUSIBLE_FACTOR:g}, or --allow-implausible for no limit"
        )
    return float(args.plausible_factor)


def _read_readings(
    path: Path,
    forecaster: Forecaster,
    series_id: str,
    args: argparse.Namespace,
) -> tuple[np.ndarray, list[Any] | None]:
    """``--input``'s readings of one series (``lstmlab.data.loading.read_readings``)."""
    from lstmlab.data.loading import check_text_file, read_readings

    try:
        check_text_file(path)
    except ValueError as error:
        raise ValueError(f"--input: {error}") from None
    recipe = forecaster.recipe
    return read_readings(
        path,
        series_id=series_id,
        columns=recipe.columns,
        time_col=args.time_col or recipe.time_col,
        targets=args.target,
        sep=args.sep,
        header=args.header,
        time_format=args.time_format,
        time_zone=args.time_zone,
    )


def _run_observe(args: argparse.Namespace) -> int:
    from lstmlab.checks import check_series_id, printable
    from lstmlab.forecaster import Forecaster
    from lstmlab.model_folder import model_lock
    from lstmlab.runtime import on_device

    series_id = check_series_id(args.series)
    if args.input is None and not args.reset:
        raise ValueError(
            "observe needs --input with the new readings (or --reset alone to start the "
            "series afresh); pass --input CSV"
        )
    plausible_factor = _plausible_factor(args)
    # The device first: --device gpu without a GPU fails before the model is touched.
    with (
        on_device(args.device),
        model_lock(args.model_dir, create=False),
        Forecaster.load(args.model_dir) as forecaster,
    ):
        if args.input is None:
            if not forecaster.delete_series(series_id):
                raise ValueError(
                    f"no series {series_id!r} is stored in {args.model_dir}; nothing to reset "
                    "(pass a stored series id)"
                )
            print(f"series {printable(series_id)} reset: its state and readings are deleted")
            return 0
        values, stamps = _read_readings(args.input, forecaster, series_id, args)
        # the state is read from the folder's state store and written back in one
        # transaction; --reset deletes the series in the same one
        with forecaster.store.transaction(series_id):
            if args.reset:
                forecaster.delete_series(series_id)
            forecast = forecaster.observe(
                series_id,
                values,
                stamps,
                horizon=args.horizon,
                plausible_factor=plausible_factor,
                new_series=args.reset or args.new_series,  # --reset starts the series afresh
                seq=args.seq,
            )
    if args.json:
        print(json.dumps(forecast.to_dict()))
        return 0
    repeat = (
        f" ({forecast.repeated} already accepted: a repeat, not applied again)"
        if forecast.repeated
        else ""
    )
    print(
        f"series {printable(series_id)}: {len(values) - forecast.repeated} reading(s) "
        f"observed{repeat}, {forecast.seen} in all"
    )
    if args.quiet:
        pass  # the summary above and what was written below, no forecast lines
    elif forecast.values is None:
        print(f"no forecast yet: the model needs {forecast.needed} more reading(s)")
    else:
        labels = forecast.timestamps or tuple(f"+{i + 1}" for i in range(len(forecast.values)))
        for label, row in zip(labels, forecast.values, strict=True):
            print(f"{label}\t" + "\t".join(f"{v:.6g}" for v in row))
    print(f"saved the state of series {printable(series_id)} to {args.model_dir}")
    return 0


# --------------------------------------------------------------------------- serve


@contextlib.contextmanager
def _pandas_without_arrow() -> Iterator[None]:
    """Import what the service runs without pyarrow, which pandas imports whenever it is installed.

    The service reads no Arrow data, and pyarrow would take about 30 MB of its resident
    memory at start-up (measured 313 -> 279 MB). Only where pandas is not imported yet; a
    later ``import pyarrow`` in the same process works again.
    """
    blocked = "pandas" not in sys.modules and "pyarrow" not in sys.modules
    if blocked:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        if blocked and sys.modules.get("pyarrow", False) is None:
            del sys.modules["pyarrow"]


def _add_serve(parser: argparse.ArgumentParser) -> None:
    from lstmlab.defaults import ServeSettings

    defaults = ServeSettings()  # ServeConfig's, read without loading the service (--help)
    parser.description = (
        "Serve a model folder: POST /series/{id}/observations, GET "
        "/series/{id}/forecast, GET /health, GET /models/current. Per-series state is "
        "the model folder's, the same that observe reads and writes."
    )
    _add_model_dir(parser, what="to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--max-readings",
        type=_int_at_most(MAX_READINGS, "pass fewer (the warm-up compiles reads up to it)"),
        default=defaults.max_readings,
        help="most readings one request may carry",
    )
    parser.add_argument(
        "--max-horizon",
        type=int,
        default=defaults.max_horizon,
        metavar="N",
        help="most forecast steps one request may ask for; the start-up warm-up compiles the "
        "forecasts up to it, so a smaller one starts sooner",
    )
    parser.add_argument(
        "--durability",
        choices=("process", "fsync"),
        default=defaults.durability,
        help="process: survives a killed server; fsync: also a power cut",
    )
    parser.add_argument(
        "--max-series",
        type=_int_at_most(_MAX_COUNT, "pass fewer, or leave it out for no limit"),
        metavar="N",
        help="most series the store may hold; a reading for a new series beyond them is "
        "refused with 429 (default: no limit)",
    )
    parser.add_argument(
        "--new-series",
        action="store_true",
        help="accept readings for series ids the model does not have (each starts from a "
        "fresh state); without it a model trained on series answers an unknown id with 404",
    )
    _add_plausible(parser)
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a postgresql:// URL: the series state lives there, shared by every worker "
        "started with it (default: the model folder's SQLite file)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="a file holding the bearer token every request must carry (readable by its "
        f"owner only); the environment variable {_TOKEN_ENV} is the alternative (default: "
        "no token: loopback addresses only)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a token (anyone who reaches the port may "
        "read and write every series)",
    )
    _add_device(parser)
    parser.set_defaults(handler=_run_serve)


def _read_token(path: Path | None) -> str | None:
    """The bearer token: ``--token-file``'s content, else ``$LSTMLAB_TOKEN``, else ``None``.

    Raises:
        ValueError: the file is missing, a folder, unreadable, readable by other users, in a
            folder other users can write, empty or more than one line; or the variable is set
            but empty.
    """
    if path is None:
        token = os.environ.get(_TOKEN_ENV)
        if token is not None and not token.strip():
            raise ValueError(
                f"the environment variable {_TOKEN_ENV} is set but empty; set it to the token, "
                "or unset it to serve without one"
            )
        return None if token is None else token.strip()
    make = (
        f"(python -c 'import secrets; print(secrets.token_urlsafe(32))' > {path}; chmod 600 {path})"
    )
    if not path.exists():
        raise ValueError(f"--token-file {path} does not exist; write the token to it {make}")
    if not path.is_file():
        raise ValueError(f"--token-file {path} is not a file; pass the file holding the token")
    folder_mode = path.resolve().parent.stat().st_mode
    if folder_mode & (stat.S_IWGRP | stat.S_IWOTH):
        # whoever may write the folder may swap the file for a token of their own
        raise ValueError(
            f"--token-file {path} lies in a folder other users can write (mode "
            f"{stat.S_IMODE(folder_mode):04o}), so they could replace it; keep it in a "
            "private folder (e.g. ~/.config/lstmlab, chmod 700)"
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(
            f"--token-file {path} can be read or written by other users (mode "
            f"{stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise ValueError(
            f"cannot read --token-file {path}: permission denied; run as its owner"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(
            f"--token-file {path} is not UTF-8 text; write the token to it {make}"
        ) from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"--token-file {path} is empty; write the token to it {make}")
    if len(lines) > 1:
        raise ValueError(
            f"--token-file {path} holds {len(lines)} lines; it must hold the token alone, "
            "on one line"
        )
    return lines[0]


def _run_serve(args: argparse.Namespace) -> int:
    from lstmlab.checks import check_int_range, check_positive_int
    from lstmlab.defaults import MAX_HORIZON

    with _pandas_without_arrow():
        from lstmlab.live.http import run
        from lstmlab.live.service import ServeConfig
    from lstmlab.runtime import on_device

    # run makes this device every serving thread's (the warm-up, the commits, the forecasts).
    # The device first: --device gpu without a GPU fails before anything else is checked.
    with on_device(args.device):
        check_int_range("--port", args.port, 0, 65535)
        check_int_range("--max-horizon", args.max_horizon, 1, MAX_HORIZON)
        if args.max_series is not None:
            check_positive_int(
                "--max-series",
                args.max_series,
                fix="pass e.g. --max-series 100000, or leave it out",
            )
        _check_model_folder(args.model_dir)
        config = ServeConfig(
            max_readings=args.max_readings,
            max_horizon=args.max_horizon,
            durability=args.durability,
            max_series=args.max_series,
            new_series=args.new_series,
            plausible_factor=_plausible_factor(args),
            store=args.store,
            token=_read_token(args.token_file),
        )
        run(args.model_dir, host=args.host, port=args.port, config=config, insecure=args.insecure)
    return 0


# --------------------------------------------------------------------------- Keras


def _add_import_keras(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read a Keras 3 model made of LSTM layers (stateful or not) and at most one linear "
        "Dense head, or an MLP (Flatten, Dense(relu)..., Dense), and save it as an lstmlab "
        "model folder. A stateful model's carried state becomes the state of the series "
        "'default' (or 'default.0', 'default.1', ... for a batch of several rows). "
        "Needs Keras: pip install 'lstmlab[keras]'."
    )
    parser.add_argument("keras_file", type=Path, metavar="KERAS_FILE", help="the .keras file")
    _add_out(parser, what="the model folder", exists="an existing model folder")
    parser.add_argument(
        "--timesteps",
        type=_int_at_most(_MAX_COUNT, "pass fewer time steps"),
        default=None,
        help="time steps for a model whose input has a variable time axis (default: 1)",
    )
    parser.set_defaults(handler=_run_import_keras)


def _add_export_keras(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write the network of a model folder as a Keras 3 Sequential model. A stateful "
        "model is exported with one batch row per series (all of the folder's, or those "
        "given with --series) and their carried states; lstmlab.keras_io.load_keras "
        "loads it with the states. The scaler is not part of the Keras model. Needs "
        "Keras: pip install 'lstmlab[keras]'."
    )
    _add_model_dir(parser, what="to export")
    _add_out(parser, what="the .keras file", exists="an existing file")
    parser.add_argument(
        "--series",
        nargs="+",
        metavar="ID",
        default=None,
        help="series whose states fill the batch rows, in order (default: all of the folder's)",
    )
    parser.add_argument(
        "--batch-size",
        type=_int_at_most(_MAX_COUNT, "pass fewer batch rows"),
        default=None,
        help="batch rows of zero state for a stateful folder without series (default: 1)",
    )
    parser.set_defaults(handler=_run_export_keras)


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


def _run_import_keras(args: argparse.Namespace) -> int:
    from lstmlab.checks import printable
    from lstmlab.keras_io import import_keras
    from lstmlab.model_folder import check_save_destination

    check_save_destination(args.out, overwrite=args.overwrite)
    saved = import_keras(args.keras_file, args.out, timesteps=args.timesteps)
    print(f"imported {args.keras_file} ({_describe(saved)})")
    series = saved.states_meta.get("series", [])
    if series:
        print(f"carried state saved for series {', '.join(map(printable, series))}")
    print(f"saved model to {args.out}")
    return 0


def _run_export_keras(args: argparse.Namespace) -> int:
    from lstmlab.checks import check_series_id
    from lstmlab.keras_io import folder_state, save_keras, to_keras
    from lstmlab.live.state_store import SeriesStore
    from lstmlab.model_folder import load_model

    if args.out.exists() and not args.overwrite:
        raise FileExistsError(
            f"{args.out} already exists; pass --overwrite to replace it or --out to choose "
            "another file"
        )
    for series_id in args.series or ():
        check_series_id(series_id)  # the one rule for ids, as observe and HTTP apply it
    saved = load_model(args.model_dir, states=SeriesStore)
    model = to_keras(saved, folder_state(saved, args.series, args.batch_size))
    save_keras(model, args.out)
    print(f"exported {args.model_dir} ({_describe(saved)}) as Keras model {model.name!r}")
    if saved.scaler is not None:
        print(
            f"note: the folder's {saved.scaler.get('kind', 'data')} scaler is not part of the "
            "Keras model; feed it scaled values"
        )
    print(f"wrote {args.out}")
    return 0


# --------------------------------------------------------------------------- main


# Each command: its one-line summary (``lstmlab --help``) and the function adding its flags.
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "moving-average": (
        "the official Keras lstm_stateful.py example, measured",
        _add_moving_average,
    ),
    "convergence": (
        "the script's convergence claim over a tsteps x lahead grid, measured",
        _add_convergence,
    ),
    "compare": (
        "statistical baselines against an MLP and stateless, stateful and stacked LSTMs "
        "on a series",
        _add_compare,
    ),
    "fit": (
        "train a forecaster on a CSV and save a model folder",
        _add_fit,
    ),
    "observe": (
        "advance a series of a saved model through new readings and forecast",
        _add_observe,
    ),
    "serve": (
        "serve a saved model over HTTP (FastAPI on uvicorn)",
        _add_serve,
    ),
    "import-keras": (
        "turn a Keras 3 .keras model (LSTM layers, Dense head) into a model folder",
        _add_import_keras,
    ),
    "export-keras": (
        "turn a model folder into a Keras 3 .keras model",
        _add_export_keras,
    ),
}


_BEFORE_DOCSTRING = {
    tokenize.ENCODING,
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
}


def _module_doc(name: str) -> str | None:
    """The docstring of module ``name``, read from its source without importing it.

    A command's description is its experiment module's docstring; reading it this way keeps
    ``lstmlab COMMAND --help`` from importing the module (and JAX with it).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    # The first token, not ast.parse: CPython 3.11 keeps ast.parse's recursion count per
    # interpreter, not per thread, so one running beside the report modules' background
    # import raised "SystemError: AST constructor recursion depth mismatch" (gh-106905).
    with open(spec.origin, "rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type in _BEFORE_DOCSTRING:
                continue
            if token.type != tokenize.STRING:
                return None
            # a string literal of our own package: compiled to its value, no AST built
            text = eval(compile(token.string, spec.origin, "eval"), {"__builtins__": {}})  # noqa: S307
            return inspect.cleandoc(text) if isinstance(text, str) else None
    return None


def _add_compile_cache(parser: argparse.ArgumentParser, *, default: Any = False) -> None:
    """``--no-compile-cache``, on the main parser and (``default`` SUPPRESS) every command's.

    A command's own copy leaves the main parser's value alone unless given, so the flag may
    come before or after the command.
    """
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        default=default,
        help="run without JAX's persistent compilation cache: every program compiles afresh "
        "and nothing is read from or written to the cache folder ($LSTMLAB_CACHE_DIR, default "
        "~/.cache/lstmlab/jax; LSTMLAB_CACHE_DIR=off does the same)",
    )


def _command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, or ``None``: its first word that is not a flag.

    The main parser's flags take no values, so the first other word is the command.
    """
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``lstmlab`` argument parser with all subcommands.

    Every command is listed (``lstmlab --help``), but the flags are added only to the
    commands named: building a command's flags imports the modules its defaults come from.

    Args:
        commands: the commands whose flags to add; ``None`` for all of them.

    Returns:
        The parser; ``parse_args`` leaves the command's handler in ``args.handler``.
    """
    commands = None if commands is None else set(commands)
    parser = argparse.ArgumentParser(
        prog="lstmlab",
        description="Stateful and stateless LSTM forecasting of time series, measured.",
        epilog="Run 'lstmlab COMMAND --help' for the flags of a command and their defaults.",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_compile_cache(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, add_flags) in _COMMANDS.items():
        command = _command(subparsers, name, help=summary, description=None)
        if commands is None or name in commands:
            add_flags(command)
            _add_compile_cache(command, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Args:
        argv: arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 2 for bad input or a missing file, 1 when a needed resource is
        unavailable (a download without network, an optional package not installed); the
        error is printed without a traceback. Flags argparse refuses exit with code 2
        (``SystemExit``), as ``--help`` and ``--version`` exit with 0.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser([_command_named(argv) or ""]).parse_args(argv)
    if args.no_compile_cache:
        from lstmlab.runtime import configure_compile_cache

        configure_compile_cache(None)  # before anything compiles; on_device keeps the choice
    from lstmlab.live.stores import StoreUnavailable

    try:
        return args.handler(args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        if isinstance(error, OSError) and error.errno is not None:  # the system's words
            return _fail(_os_error_message(error, args))
        return _fail(_in_flags(str(error), args.command))
    except StoreUnavailable as error:
        # nothing of the failed transaction was written (the store rolled it back)
        return _fail(f"{error} (nothing was saved)")
    except sqlite3.Error as error:
        return _fail(f"the state store failed ({error}); nothing was saved: check the model folder")
    except RuntimeError as error:
        if "RESOURCE_EXHAUSTED" in str(error):  # XLA could not allocate a buffer
            return _fail(f"out of memory ({str(error)[:200]}); {_SMALLER}")
        print(f"lstmlab: error: {error}", file=sys.stderr)
        return 1
    except MemoryError:
        return _fail(f"out of memory; {_SMALLER}")
    except OSError as error:
        return _fail(_os_error_message(error, args))


_SMALLER = "pass smaller sizes (--units, --seeds, --batch-size, --window) or less data"


def _fail(message: str) -> int:
    print(f"lstmlab: error: {message}", file=sys.stderr)
    return 2


# The loader's keyword names, as the commands that load a CSV spell them (their flags)
_LOADER_WORDS = (
    (re.compile(r"\bpass time_format\b"), "pass --time-format"),
    (re.compile(r"\bpass time_col\b"), "pass --time-col"),
    (re.compile(r"\bpass target\b"), "pass --target"),
    (re.compile(r"\bpass the file's separator as sep\b"), "pass the file's separator with --sep"),
    (re.compile(r"\bleave resample out\b"), "leave --resample out"),
    (re.compile(r"\bpass time_zone\b"), "pass --tz"),
    (re.compile(r"\bpass new_series=True\b"), "pass --new-series"),
    (re.compile(r"\bpass sep=('[^']*')"), r"pass --sep \1"),
    (re.compile(r"\bpass header=False\b"), "pass --no-header"),
    (re.compile(r"\bpass sort=True\b"), "pass --sort"),
    (re.compile(r"\bpass freq=('[^']*')"), r"pass --freq \1"),
    (re.compile(r"\bpass (the right )?freq\b"), r"pass \1--freq"),
    (re.compile(r"\bleave freq out\b"), "leave --freq out"),
    (re.compile(r"\bmax_filled="), "--max-filled "),
    (re.compile(r"\bmax_filled\b"), "--max-filled"),
    (re.compile(r"\btime_format\b"), "--time-format"),
    (re.compile(r"\bmissing='(\w+)'"), r"--missing \1"),
    (re.compile(r"\bpass missing=('\w+'(?:, '\w+')*(?: or '\w+')?)"), r"pass --missing \1"),
)
_LOADING_COMMANDS = ("fit", "compare", "observe")


def _in_flags(message: str, command: str) -> str:
    """A loader message with its keyword names spelled as the command's flags."""
    if command not in _LOADING_COMMANDS:
        return message
    for pattern, flag in _LOADER_WORDS:
        message = pattern.sub(flag, message)
    return message


def _os_error_message(error: OSError, args: argparse.Namespace) -> str:
    """An ``OSError`` in words: the path, what the error number means, and the fix."""
    where = error.filename or getattr(args, "out", None) or getattr(args, "model_dir", None)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = Path(where).parent if where is not None else Path.cwd()
        return (
            f"the disk holding {folder} is full ({error.strerror}); nothing was saved: free "
            "space and run again"
        )
    name = errno.errorcode.get(error.errno or 0, "")
    meaning = error.strerror or str(error)
    fixes = {
        errno.EACCES: "check its permissions",
        errno.EPERM: "check its permissions",
        errno.EROFS: "pass a path on a writable disk",
        errno.EISDIR: "pass a file, not a folder",
        errno.ENOTDIR: "check the path",
        errno.ENOENT: "check the path",
        errno.EIO: "check the disk",
        errno.ENAMETOOLONG: "pass a shorter path",
        errno.EADDRINUSE: "pass another --port, or stop what listens there",
        errno.EADDRNOTAVAIL: "pass an address of this machine as --host",
    }
    fix = fixes.get(error.errno or 0, "check the path and run again")
    shown = f" ({name})" if name else ""
    at = f": {where}" if where is not None else ""
    return f"{meaning}{shown}{at}; {fix}"
