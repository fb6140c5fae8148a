"""The model folder: configs in JSON, arrays in safetensors, checksums, atomic saves. No pickle.

Layout of a model folder ``DIR``::

    DIR/config.json                      the commit point (see below)
    DIR/weights.<sha16>.safetensors      parameters under flattened key paths (lstm.0.kernel)
    DIR/metrics.<sha16>.json             training metrics
    DIR/series.<fp16>.sqlite             the per-series state store (SQLite, WAL)
    DIR/.lock                            advisory lock held by a saver (``model_lock``)

``config.json`` holds the format version, the library version, the model config, the data
recipe, the scaler, for every data file its name, size and SHA-256, and the name of the
state store; its own ``checksum`` field is the SHA-256 of the canonical JSON of everything
else, so an edit of ``config.json`` itself is detected too (``folder_checksum`` reads it;
``model_fingerprint`` hashes only the config, recipe, scaler and weights, so it stays the
same when only states are saved again).

The state store is the one place a series' state lives (``lstmlab.live.stores.StateStore``):
``Forecaster.observe``, ``lstmlab observe`` and ``lstmlab serve`` all read and write it, one
transaction per observation. It is mutable, so ``config.json`` names it but does not
checksum it; its name carries the first 16 hex digits of the model fingerprint, and the store
itself records the whole fingerprint, so the states of one model are never read by another.
This module imports no store: ``save_model`` and ``load_model`` are handed the class that
opens one (``StoreOpener``: ``SeriesStore``), and ``lstmlab.live.folder_store.open_store``
opens a folder's store for the live side. Loading rebuilds the parameter skeleton from the
model config and fills its leaves from the weights file by key path (equinox's "why not pickle?").

Why a save is "old or new, never broken"
----------------------------------------
Every file is written the same way: to a temporary file in the same folder, ``flush`` and
``fsync``, ``os.replace`` onto its name (atomic on POSIX), then ``fsync`` of the folder so
the rename itself is durable. The states a save carries are written into the new model's
store (one SQLite transaction) before the commit; a new model gets a new store, so the old
model's store is untouched until the commit. Data files are *content-addressed*: their names
carry the first 16 hex digits of their SHA-256, so a new save never overwrites a file the
current ``config.json`` refers to (identical content keeps its name and is not rewritten).
The single ``os.replace`` of ``config.json`` is the commit: before it, ``config.json`` and
every file it lists are the old model, untouched; after it, they are the new model, whose
files were all fsynced before the rename. Only after the commit are unreferenced data files,
the stores of other models and stale temporary files deleted, and leftovers of a killed save
are deleted by the next save.
A reader that races a saver's cleanup re-reads ``config.json`` and retries.

One process saves a folder at a time: ``save_model`` takes an ``fcntl`` lock on
``DIR/.lock`` (released by the kernel if the process dies); read-modify-write users such as
``lstmlab observe`` hold ``model_lock`` across the whole cycle.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from lstmlab.checks import check_positive_int
from lstmlab.core.model import ModelConfig, Params, config_from_dict, config_to_dict, init_params
from lstmlab.live.stores import NO_TIME, StateStore, StoredState

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "LOCK_FILE",
    "FolderStore",
    "ModelFolderError",
    "SavedModel",
    "atomic_write_bytes",
    "check_save_destination",
    "flatten_params",
    "folder_checksum",
    "fsync_dir",
    "load_model",
    "model_fingerprint",
    "model_lock",
    "folder_store",
    "save_model",
    "StoreOpener",
    "store_path",
    "unflatten_params",
]

# 2: per-series states moved from a states safetensors file into the SQLite state store.
# 3: the calibration's residuals moved from config.json into an "arrays" safetensors file
#    (a version 2 folder, which has none, reads as it is).
FORMAT_VERSION = 3
_OLDEST_READ = 2
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
# (folder, thread) pairs holding the lock: model_lock is re-entrant within one thread only;
# another thread of this process takes its own flock and waits for the holder.
_HELD_LOCKS: set[tuple[Path, int]] = set()
_DATA_FILE = re.compile(r"^(weights|metrics|arrays)\.[0-9a-f]{16}\.(safetensors|json)$")
_STORE_FILE = re.compile(r"^series\.[0-9a-f]{16}\.sqlite(-wal|-shm|-journal)?$")
_TEMP_FILE = re.compile(r"^\.tmp-")
_SIDE_FILES = ("-wal", "-shm", "-journal")
_FILE_KINDS = {"weights": "safetensors", "metrics": "json", "arrays": "safetensors"}
# Every folder has weights and metrics; "arrays" (arrays beside the weights, such as the
# calibration's residuals) only when the model has some.
_REQUIRED_FILES = {"weights", "metrics"}


class ModelFolderError(ValueError):
    """A model folder that cannot be loaded or written: what is wrong and the fix."""


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SavedModel:
    """Everything a model folder holds.

    Attributes:
        config: the model config.
        params: its parameter pytree.
        recipe: JSON-ready data recipe (window, columns, frequency, model kind, ...).
        scaler: JSON-ready scaler (``Scaler.to_dict()``) or ``None``.
        metrics: JSON-ready training metrics.
        states: per-series state arrays stacked by series: row ``i`` of every array is the
            state of series ``states_meta["series"][i]``. ``save_model`` writes each row into
            the folder's state store; ``load_model`` stacks the stored series back.
        states_meta: ``{"series": [ids in row order]}``.
        store: a state store whose series (and observation log) ``save_model`` copies into
            the folder's store, or ``None`` (a ``Forecaster``'s states).
        seeds: ``None`` for one training's parameters; else the number of trainings stacked
            along a leading axis of every parameter (a ``Forecaster`` with several seeds).
        library_version: the lstmlab version that wrote the folder (set by ``save_model``).
        arrays: named arrays kept beside the weights in safetensors (the calibration's
            residuals: NaN allowed), not in JSON, so that a long series' folder loads fast.
    """

    config: ModelConfig
    params: Params
    recipe: dict[str, Any] = field(default_factory=dict)
    scaler: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    states: dict[str, np.ndarray] = field(default_factory=dict)
    states_meta: dict[str, Any] = field(default_factory=dict)
    store: StateStore | None = None
    seeds: int | None = None
    library_version: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- atomic files


def fsync_dir(path: Path) -> None:
    """``fsync`` a folder so that renames and creations inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file, flush, fsync, rename, fsync folder.

    A reader (or a process restarted after a kill) sees either the previous content of
    ``path`` or ``data``, never a mix.

    Args:
        path: the destination file.
        data: its new content.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    temp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def model_lock(path: str | os.PathLike[str], *, create: bool = True) -> Iterator[Path]:
    """Hold the folder's advisory write lock.

    Re-entrant within one thread (a nested ``model_lock`` of the same folder passes
    through); another thread or process waits until the holder releases it.

    Args:
        path: the model folder.
        create: create the folder if needed; otherwise a missing folder is an error.

    Yields:
        The folder as a ``Path``.

    Raises:
        ModelFolderError: ``create`` is false and there is no such folder.
    """
    path = Path(path)
    if not create and not path.is_dir():
        raise ModelFolderError(f"no model folder at {path}; pass the folder `lstmlab fit` saved")
    if path.exists() and not path.is_dir():
        raise ModelFolderError(
            f"{path} is a file, not a folder: a model is saved as a folder; pass a folder's "
            "path (a new one, or one lstmlab saved)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:  # a file on the way
        raise ModelFolderError(
            f"cannot create the model folder {path}: {error.strerror} ({error.filename}); "
            "pass a path whose parent folders are folders"
        ) from None
    key = (path.resolve(), threading.get_ident())
    if key in _HELD_LOCKS:  # a second flock in the same thread would wait for itself
        yield path
        return
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD_LOCKS.add(key)
        yield path
    finally:
        _HELD_LOCKS.discard(key)
        os.close(fd)  # closing releases the flock


# --------------------------------------------------------------------------- arrays


def _key_name(entry: Any) -> str:
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.SequenceKey):
        return str(entry.idx)
    if isinstance(entry, jax.tree_util.DictKey):
        return str(entry.key)
    raise TypeError(f"unsupported pytree key {entry!r}")


def flatten_params(params: Params) -> dict[str, np.ndarray]:
    """Parameters as ``{"lstm.0.kernel": array, ..., "head.bias": array}``.

    Args:
        params: a parameter pytree.

    Returns:
        A dict of NumPy arrays keyed by dotted key paths.
    """
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {".".join(_key_name(k) for k in path): np.asarray(leaf) for path, leaf in leaves}


def unflatten_params(
    config: ModelConfig, arrays: dict[str, np.ndarray], seeds: int | None = None
) -> Params:
    """Rebuild parameters from ``flatten_params`` output, checking names, shapes and dtypes.

    Args:
        config: the model config (gives the skeleton).
        arrays: the flat arrays.
        seeds: ``None``, or the size of a leading trainings axis every array carries.

    Returns:
        The parameter pytree (JAX arrays).

    Raises:
        ModelFolderError: missing or unexpected names, or a wrong shape or dtype.
    """
    skeleton = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    paths, treedef = jax.tree_util.tree_flatten_with_path(skeleton)
    names = [".".join(_key_name(k) for k in path) for path, _ in paths]
    missing = sorted(set(names) - set(arrays))
    unexpected = sorted(set(arrays) - set(names))
    if missing or unexpected:
        raise ModelFolderError(
            f"the weights do not match the model config: missing {missing}, unexpected "
            f"{unexpected}; the weights file belongs to another model, save the model again"
        )
    leaves = []
    for name, (_, like) in zip(names, paths, strict=True):
        array = arrays[name]
        shape = like.shape if seeds is None else (seeds, *like.shape)
        if array.shape != shape or array.dtype != like.dtype:
            raise ModelFolderError(
                f"weight {name!r} has shape {array.shape} and dtype {array.dtype}, the model "
                f"config expects {shape} {like.dtype}; save the model again"
            )
        leaves.append(jnp.asarray(array))
    return jax.tree_util.tree_unflatten(treedef, leaves)


# --------------------------------------------------------------------------- save / load


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _library_version() -> str:
    from lstmlab._version import __version__

    return __version__


def check_save_destination(path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse a ``--out`` model folder that a save would clobber or that is not a model folder.

    Args:
        path: the folder a command is about to save a model to.
        overwrite: the user asked to replace a model already there.

    Raises:
        ValueError: ``path`` is a file, or a folder holding something other than a model.
        FileExistsError: it holds a model and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder; pass a new or empty folder to --out")
    if path.exists() and any(p.name != LOCK_FILE for p in path.iterdir()):
        if not (path / CONFIG_FILE).exists():
            raise ValueError(
                f"{path} exists and is not a model folder; choose a new or empty folder for --out"
            )
        if not overwrite:
            raise FileExistsError(
                f"model folder {path} already holds a model; pass --overwrite to replace it "
                "or --out to choose another folder"
            )


def _is_ours(name: str) -> bool:
    return (
        name in (CONFIG_FILE, LOCK_FILE)
        or bool(_DATA_FILE.match(name))
        or bool(_STORE_FILE.match(name))
        or bool(_TEMP_FILE.match(name))
    )


def _check_folder_is_ours(path: Path) -> None:
    foreign = sorted(entry.name for entry in path.iterdir() if not _is_ours(entry.name))
    if foreign and not (path / CONFIG_FILE).exists():
        raise ModelFolderError(
            f"{path} holds files that are not part of an lstmlab model folder "
            f"({', '.join(foreign[:5])}); choose an empty or new folder"
        )


def _write_data_file(path: Path, kind: str, data: bytes) -> dict[str, Any]:
    digest = _sha256(data)
    name = f"{kind}.{digest[:16]}.{_FILE_KINDS[kind]}"
    target = path / name
    # content-addressed: an identical file already there is kept (never rewritten in place)
    if not (target.exists() and _sha256(target.read_bytes()) == digest):
        atomic_write_bytes(target, data)
    return {"name": name, "sha256": digest, "bytes": len(data)}


def _clean_folder(path: Path, keep: set[str]) -> None:
    for entry in path.iterdir():
        if entry.name in keep or entry.name.removesuffix("-wal").removesuffix("-shm") in keep:
            continue
        if (
            _DATA_FILE.match(entry.name)
            or _STORE_FILE.match(entry.name)
            or _TEMP_FILE.match(entry.name)
        ):
            with contextlib.suppress(OSError):
                entry.unlink()


def _fingerprint(identity: dict[str, Any]) -> str:
    return _sha256(_canonical(identity))


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes the model itself: config, recipe, scaler and the weights' SHA-256."""
    return {
        "model": config.get("model"),
        "recipe": config.get("recipe"),
        "scaler": config.get("scaler"),
        "weights": config.get("files", {}).get("weights", {}).get("sha256"),
    }


def _store_name(fingerprint: str) -> str:
    return f"series.{fingerprint[:16]}.sqlite"


def _stacked_rows(model: SavedModel) -> dict[str, StoredState]:
    """``model.states`` (stacked by series) as one ``StoredState`` per series."""
    ids = list(model.states_meta.get("series", []))
    for name, array in model.states.items():
        if np.shape(array)[:1] != (len(ids),):
            raise ModelFolderError(
                f"state array {name!r} has shape {np.shape(array)}, expected one row per series "
                f"({len(ids)} in states_meta); stack the states by series"
            )
    out = {}
    for row, series_id in enumerate(ids):
        arrays = {name: np.asarray(array)[row] for name, array in model.states.items()}
        seen = int(arrays["seen"]) if "seen" in arrays else 0
        last = int(arrays["last_time"]) if "last_time" in arrays else NO_TIME
        out[series_id] = StoredState(
            arrays=arrays, seen=seen, last_time=None if last == NO_TIME else last
        )
    return out


class StoreOpener(Protocol):
    """How a model folder opens its state store: ``SeriesStore`` is one.

    ``save_model`` and ``load_model`` are handed it (this module imports no store): called
    with the store's file in the folder and the model's fingerprint, it returns the open
    store, which the folder closes.
    """

    def __call__(self, path: Path, *, model: str) -> StateStore:
        """The open store in ``path``, bound to the model fingerprint ``model``."""
        ...


def _write_states(
    path: Path, fingerprint: str, model: SavedModel, open_store: StoreOpener
) -> dict[str, Any]:
    """Write the states a save carries into the model's store; describe what was written."""
    rows = _stacked_rows(model)
    digest = hashlib.sha256()
    target = path / _store_name(fingerprint)
    if not target.exists():  # a new model's store: a failed save leaves nothing behind
        try:
            return _write_store(target, fingerprint, model, rows, digest, open_store)
        except BaseException:
            for leftover in (target, *(target.with_name(target.name + s) for s in _SIDE_FILES)):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise
    return _write_store(target, fingerprint, model, rows, digest, open_store)


def _write_store(
    target: Path,
    fingerprint: str,
    model: SavedModel,
    rows: dict[str, StoredState],
    digest: Any,
    open_store: StoreOpener,
) -> dict[str, Any]:
    path = target.parent
    with open_store(target, model=fingerprint) as store:
        with store.transaction():
            source = model.store
            same = (
                source is not None
                and source.path is not None
                and Path(source.path).resolve() == Path(store.path).resolve()
            )
            if source is not None and not same:
                model.store.copy_into(store)
                for series_id, state in model.store.items():
                    digest.update(series_id.encode() + b"\0" + _state_bytes(state))
            for series_id, state in rows.items():
                store.put(series_id, state)
                digest.update(series_id.encode() + b"\0" + _state_bytes(state))
        count = len(store)
    fsync_dir(path)  # the store file's own entry, if new, is durable before the commit
    return {"series": count, "written": digest.hexdigest()}


def _state_bytes(state: StoredState) -> bytes:
    return (
        safetensors.numpy.save(
            {name: np.asarray(array, order="C") for name, array in state.arrays.items()}
        )
        + repr((state.seen, state.last_time)).encode()
    )


def save_model(path: str | os.PathLike[str], model: SavedModel, *, opener: StoreOpener) -> Path:
    """Save ``model`` into the folder ``path`` atomically (see the module docstring).

    An existing model in ``path`` is replaced; a process killed at any moment leaves either
    the old model or the new one loadable.

    Args:
        path: the model folder; created if needed.
        model: what to save.
        opener: opens the folder's state store (``lstmlab.live.state_store.SeriesStore``),
            into which the states go (``model.store``'s too).

    Returns:
        The folder as a ``Path``.

    Raises:
        ModelFolderError: the folder holds files that are not an lstmlab model's.
    """
    with model_lock(path) as folder:
        fsync_dir(folder.parent)  # a newly created folder's own entry must be durable too
        _check_folder_is_ours(folder)
        weights = safetensors.numpy.save(flatten_params(model.params))
        metrics = json.dumps(model.metrics, indent=2, sort_keys=True, allow_nan=False).encode()
        files = {
            "weights": _write_data_file(folder, "weights", weights),
            "metrics": _write_data_file(folder, "metrics", metrics),
        }
        if model.arrays:
            arrays = safetensors.numpy.save(
                {name: np.ascontiguousarray(array) for name, array in model.arrays.items()}
            )
            files["arrays"] = _write_data_file(folder, "arrays", arrays)
        config = {
            "format_version": FORMAT_VERSION,
            "library_version": _library_version(),
            "model": config_to_dict(model.config),
            "recipe": model.recipe,
            "scaler": model.scaler,
            "files": files,
        }
        if model.seeds is not None:
            config["seeds"] = check_positive_int("seeds", model.seeds)
        fingerprint = _fingerprint(_identity(config))
        config["store"] = _store_name(fingerprint)
        config["states"] = _write_states(folder, fingerprint, model, opener)
        config["checksum"] = _sha256(_canonical(config))
        text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n"
        atomic_write_bytes(folder / CONFIG_FILE, text.encode())  # the commit point
        _clean_folder(folder, keep={entry["name"] for entry in files.values()} | {config["store"]})
    return folder


def _read_config(path: Path) -> dict[str, Any]:
    config_path = path / CONFIG_FILE
    if not path.is_dir():
        raise ModelFolderError(f"no model folder at {path}; pass the folder `lstmlab fit` saved")
    if not config_path.exists():
        raise ModelFolderError(
            f"{path} is not a model folder: {CONFIG_FILE} is missing; pass the folder "
            "`lstmlab fit --out` wrote"
        )
    try:
        config = json.loads(config_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFolderError(
            f"{config_path} is not valid JSON ({error}); the file is corrupted, save the model "
            "again"
        ) from None
    if not isinstance(config, dict):
        raise ModelFolderError(f"{config_path} must hold a JSON object; save the model again")
    version = config.get("format_version")
    if not isinstance(version, int):
        raise ModelFolderError(
            f"{config_path} has no integer format_version (got {version!r}); it was not written "
            "by lstmlab or is corrupted"
        )
    if version < _OLDEST_READ:
        raise ModelFolderError(
            f"model folder {path} has format version {version} (per-series states in a "
            f"safetensors file); this lstmlab reads format versions {_OLDEST_READ} to "
            f"{FORMAT_VERSION} (states in the SQLite store); fit or import the model again "
            "with this lstmlab"
        )
    if version > FORMAT_VERSION:
        raise ModelFolderError(
            f"model folder {path} has format version {version} (written by lstmlab "
            f"{config.get('library_version', '?')}); this lstmlab {_library_version()} reads up "
            f"to format version {FORMAT_VERSION}; upgrade lstmlab"
        )
    recorded = config.pop("checksum", None)
    if recorded != _sha256(_canonical(config)):
        raise ModelFolderError(
            f"checksum mismatch in {config_path}: its content does not match its recorded "
            "checksum; the file was altered or corrupted, restore it or save the model again"
        )
    return config


def _read_data_file(path: Path, entry: dict[str, Any]) -> bytes:
    name = entry["name"]
    if not _DATA_FILE.match(name):
        raise ModelFolderError(f"{CONFIG_FILE} names an unexpected data file {name!r}")
    target = path / name
    if not target.exists():
        raise FileNotFoundError(name)
    data = target.read_bytes()
    if _sha256(data) != entry["sha256"]:
        raise ModelFolderError(
            f"checksum mismatch: {target} has SHA-256 {_sha256(data)[:16]}..., {CONFIG_FILE} "
            f"records {entry['sha256'][:16]}...; the file was altered or corrupted, restore it "
            "or save the model again"
        )
    return data


def _extra_arrays(path: Path, entry: dict[str, Any], data: bytes) -> dict[str, np.ndarray]:
    """The arrays file's arrays (NaN allowed: a residual past a series' end has none)."""
    try:
        return dict(safetensors.numpy.load(data))
    except Exception as error:  # noqa: BLE001 - SafetensorError has no public base class
        raise ModelFolderError(
            f"{path / entry['name']} is not a readable safetensors file ({error}); the file is "
            "corrupted, restore it or save (or fit) the model again"
        ) from None


def _weight_arrays(path: Path, entry: dict[str, Any], data: bytes) -> dict[str, np.ndarray]:
    """The weights file's arrays, refused unless it parses and every weight is finite.

    The checksum only says the file is the one ``config.json`` names; a file written with
    broken content (or a checksum recomputed over one) must still not load silently.
    """
    target = path / entry["name"]
    try:
        arrays = safetensors.numpy.load(data)
    except Exception as error:  # noqa: BLE001 - SafetensorError has no public base class
        raise ModelFolderError(
            f"{target} is not a readable safetensors file ({error}); the file is corrupted, "
            "restore it or save (or fit) the model again"
        ) from None
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
            bad = int(array.size - np.isfinite(array).sum())
            raise ModelFolderError(
                f"weight {name!r} in {target} holds {bad} NaN or infinite value(s); the model "
                "diverged in training or the file is corrupted, fit the model again (e.g. with "
                "a lower learning rate) or restore the file"
            )
    return arrays


def _load_once(path: Path, states: StoreOpener | None) -> SavedModel:
    config = _read_config(path)
    needed = ("files", "model", "recipe", "scaler", "library_version", "store")
    absent = [key for key in needed if key not in config]
    if absent:
        raise ModelFolderError(
            f"{path / CONFIG_FILE} lacks the entries {absent}; it was not written by lstmlab, "
            "save the model again"
        )
    files = config["files"]
    if (
        not isinstance(files, dict)
        or not _REQUIRED_FILES <= set(files)
        or not set(files) <= set(_FILE_KINDS)
    ):
        raise ModelFolderError(
            f"{CONFIG_FILE} must list the files {sorted(_REQUIRED_FILES)} (and 'arrays' when "
            "the model has some)"
        )
    weights = _read_data_file(path, files["weights"])
    metrics = _read_data_file(path, files["metrics"])
    try:
        model_config = config_from_dict(config["model"])
    except ValueError as error:
        raise ModelFolderError(f"the model config in {path / CONFIG_FILE}: {error}") from None
    seeds = config.get("seeds")
    if seeds is not None:
        try:
            check_positive_int("seeds", seeds)
        except ValueError as error:
            raise ModelFolderError(f"{CONFIG_FILE} has an invalid seeds entry: {error}") from None
    params = unflatten_params(model_config, _weight_arrays(path, files["weights"], weights), seeds)
    extra: dict[str, np.ndarray] = {}
    if "arrays" in files:
        extra = _extra_arrays(path, files["arrays"], _read_data_file(path, files["arrays"]))
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    if states is not None:
        arrays, meta = _read_states(path, config, states)
    return SavedModel(
        config=model_config,
        params=params,
        recipe=config["recipe"],
        scaler=config["scaler"],
        metrics=json.loads(metrics),
        states=arrays,
        states_meta=meta,
        seeds=seeds,
        library_version=config["library_version"],
        arrays=extra,
    )


def _checked_store_name(path: Path, config: dict[str, Any]) -> str:
    name = config["store"]
    if not isinstance(name, str) or not _STORE_FILE.match(name) or name.endswith(("wal", "shm")):
        raise ModelFolderError(f"{CONFIG_FILE} names an unexpected state store {name!r}")
    return name


def _read_states(
    path: Path, config: dict[str, Any], open_store: StoreOpener
) -> tuple[dict[str, np.ndarray], dict]:
    """Every stored series, stacked by series in storage order."""
    name = _checked_store_name(path, config)
    if not (path / name).exists():
        raise FileNotFoundError(name)
    with open_store(path / name, model=_fingerprint(_identity(config))) as store:
        rows = list(store.items())
    ids = [series_id for series_id, _ in rows]
    if not rows:
        return {}, {"series": ids}
    names = list(rows[0][1].arrays)
    arrays = {}
    for key in names:
        try:
            arrays[key] = np.stack([state.arrays[key] for _, state in rows])
        except (KeyError, ValueError):
            raise ModelFolderError(
                f"the series in {path / name} do not share one state layout (array {key!r}); "
                "the store was written by another program, save the model again"
            ) from None
    return arrays, {"series": ids}


def load_model(path: str | os.PathLike[str], *, states: StoreOpener | None = None) -> SavedModel:
    """Load a model folder written by ``save_model``, verifying every checksum.

    Args:
        path: the model folder.
        states: opens the folder's state store (``lstmlab.live.state_store.SeriesStore``)
            to read every series' state into ``SavedModel.states`` (stacked by series);
            ``None`` leaves them in the store (``lstmlab.live.folder_store.open_store``),
            for a start-up time that does not grow with the number of series.

    Returns:
        The ``SavedModel``.

    Raises:
        ModelFolderError: no folder or no ``config.json``; a newer format version; a missing,
            altered or corrupted file; weights that do not fit the config.
    """
    path = Path(path)
    for _ in range(5):
        try:
            return _load_once(path, states)
        except FileNotFoundError as missing:
            # A concurrent save may have committed a new config.json and removed the old
            # files between our reads: read config.json again. A file missing for good
            # stays missing and is reported below.
            name = str(missing)
    raise ModelFolderError(
        f"model folder {path} is incomplete: {name}, listed in {CONFIG_FILE}, is missing; "
        "restore it or save the model again"
    )


def folder_checksum(path: str | os.PathLike[str]) -> str:
    """The ``checksum`` recorded in a folder's ``config.json`` (identifies one saved model).

    Args:
        path: the model folder.

    Returns:
        The hex SHA-256.
    """
    return json.loads((Path(path) / CONFIG_FILE).read_bytes())["checksum"]


def model_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of what makes the model itself: config, recipe, scaler and weights.

    Unlike ``folder_checksum`` it does not change when only the per-series states or the
    metrics are saved again, so it identifies the model a state database belongs to.

    Args:
        path: the model folder.

    Returns:
        The hex SHA-256.

    Raises:
        ModelFolderError: the folder cannot be read (see ``load_model``).
    """
    return _fingerprint(_identity(_read_config(Path(path))))


@dataclass(frozen=True, slots=True)
class FolderStore:
    """Where a model folder keeps its state store, and what a store there must hold.

    Attributes:
        path: the store's file (``DIR/series.<fingerprint16>.sqlite``; it exists once the
            model is saved).
        model: the model fingerprint the store is bound to (``model_fingerprint``).
        saved_series: the series the folder's last save wrote into it (0: none); a store
            that lost them is damaged, not new.
    """

    path: Path
    model: str
    saved_series: int


def folder_store(path: str | os.PathLike[str]) -> FolderStore:
    """The state store of a model folder: its file, its model and its series when saved.

    Args:
        path: the model folder.

    Returns:
        The ``FolderStore`` (``lstmlab.live.folder_store.open_store`` opens it).

    Raises:
        ModelFolderError: the folder cannot be read.
    """
    path = Path(path)
    config = _read_config(path)
    return FolderStore(
        path=path / _checked_store_name(path, config),
        model=_fingerprint(_identity(config)),
        saved_series=int((config.get("states") or {}).get("series", 0)),
    )


def store_path(path: str | os.PathLike[str]) -> Path:
    """The state store of a model folder (``DIR/series.<fingerprint16>.sqlite``).

    Args:
        path: the model folder.

    Returns:
        The store's file (it exists once the model is saved).

    Raises:
        ModelFolderError: the folder cannot be read.
    """
    return folder_store(path).path
