"""Where and how computation runs: devices, executors and progress, one section each.

- Devices: ``--device cpu|gpu|auto`` resolved to a ``jax.Device``. ``auto`` (the default)
  picks the first GPU JAX can see and falls back to the CPU, so the same command trains on a
  GPU machine with JAX's CUDA build and on a laptop without any code change. ``gpu`` without
  a visible GPU is an error that says how to get one, never a silent CPU run. ``on_device``
  places the computation: arrays created and programs compiled inside it live on that device
  (``jax.default_device``).
- Executors: ``--executor local|ray``; a sweep maps its independent tasks over one
  (``LocalExecutor`` in this process, ``RayExecutor`` one Ray task each).
- Progress: ``epoch_progress``, a bar of epochs with the losses (nothing with ``quiet``).
- Compilation cache: ``ensure_compile_cache`` turns on JAX's persistent compilation cache
  on first use, so that a program compiled once on this machine is read back by the next
  process instead of compiled again (see ``configure_compile_cache``).

The command-line flags for these (``--device``, ``--executor``) are defined in ``lstmlab.cli``.
JAX is imported by the functions that use it, so that the command line reads ``DEVICES`` and
``EXECUTORS`` (its ``--help``) without loading JAX.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lstmlab.checks import check_choice

if TYPE_CHECKING:
    import jax

__all__ = [
    "CACHE_DIR_VARIABLE",
    "CUDA_INSTALL",
    "DEVICES",
    "EXECUTORS",
    "RAY_INSTALL",
    "CompileCacheWarning",
    "EpochProgress",
    "Executor",
    "LocalExecutor",
    "ProgramCount",
    "RayExecutor",
    "compile_cache_dir",
    "configure_compile_cache",
    "counting_programs",
    "default_compile_cache_dir",
    "ensure_compile_cache",
    "epoch_progress",
    "import_in_background",
    "in_background",
    "make_executor",
    "on_device",
    "resolve_device",
    "start_local_ray",
]

# --------------------------------------------------------------------------- devices

DEVICES = ("cpu", "gpu", "auto")
CUDA_INSTALL = 'pip install -U "jax[cuda12]"'


def _devices(platform: str) -> list[jax.Device]:
    """JAX's devices of one platform, or ``[]`` when its backend is not available."""
    import jax

    try:
        return list(jax.devices(platform))
    except RuntimeError:  # JAX raises when no backend of that platform was initialised
        return []


def resolve_device(name: str = "auto") -> jax.Device:
    """The device a ``--device`` value names.

    Args:
        name: ``"cpu"``, ``"gpu"`` (the first GPU) or ``"auto"`` (the first GPU if JAX sees
            one, else the first CPU).

    Returns:
        The ``jax.Device``.

    Raises:
        ValueError: an unknown name, or ``"gpu"`` when JAX sees no GPU.

    Example:
        >>> resolve_device("cpu").platform
        'cpu'
    """
    import jax

    check_choice("device", name, DEVICES, fix="pass e.g. --device auto")
    if name in ("gpu", "auto"):
        gpus = _devices("gpu")
        if gpus:
            return gpus[0]
        if name == "gpu":
            raise ValueError(
                f"--device gpu was requested but no GPU is visible to JAX (its backend is "
                f"{jax.default_backend()!r}); install JAX's CUDA build with {CUDA_INSTALL} on a "
                "machine with an NVIDIA GPU and driver, or pass --device cpu or --device auto"
            )
    return _devices("cpu")[0]


@contextlib.contextmanager
def on_device(name: str = "auto") -> Iterator[jax.Device]:
    """Run the body with ``resolve_device(name)`` as JAX's default device.

    Every command runs its work inside ``on_device``, so it is also where the persistent
    compilation cache is turned on (``ensure_compile_cache``) before any program compiles.

    Args:
        name: as ``resolve_device``.

    Yields:
        The device.

    Raises:
        ValueError: as ``resolve_device`` (before the body runs).

    Example:
        >>> import jax.numpy as jnp
        >>> with on_device("cpu") as device:
        ...     x = jnp.ones(3)
        >>> x.devices() == {device}
        True
    """
    import jax

    ensure_compile_cache()  # every command runs its programs inside on_device
    device = resolve_device(name)
    with jax.default_device(device):
        yield device


# --------------------------------------------------------------------------- compilation cache

CACHE_DIR_VARIABLE = "LSTMLAB_CACHE_DIR"
"""Environment variable: the compilation cache's folder, or ``off`` (also ``0``, ``false``,
``no``, ``none``) for no cache. Unset: ``$XDG_CACHE_HOME/lstmlab/jax``, or
``~/.cache/lstmlab/jax`` without ``XDG_CACHE_HOME``."""

_OFF_VALUES = ("off", "0", "false", "no", "none")

# Every program is written, however small or quick to compile: a cold run of a command
# compiles dozens of programs of 20 ms to 1 s each (JAX's default skips those under 1 s),
# and reading one back costs about a millisecond.
_MIN_COMPILE_TIME_S = 0.0
# The folder is bounded (least recently used entries go first); the bound also makes JAX
# lock the folder while it reads and writes, so that processes sharing it (tests running in
# parallel, Ray workers) never read a half-written entry.
_MAX_CACHE_BYTES = 2 * 1024**3


class CompileCacheWarning(RuntimeWarning):
    """The compilation cache could not be used; the run goes on without it."""


class _CacheSetting:
    """This process' choice: configured yet, and the folder in use (``None``: no cache)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configured = False
        self.path: Path | None = None
        self.warned = False


_SETTING = _CacheSetting()


def default_compile_cache_dir() -> Path | None:
    """The cache folder the environment asks for.

    ``$LSTMLAB_CACHE_DIR`` when set (``off`` and its synonyms: ``None``), else
    ``$XDG_CACHE_HOME/lstmlab/jax``, else ``~/.cache/lstmlab/jax``.

    Returns:
        The folder, or ``None`` when the cache is turned off.
    """
    value = os.environ.get(CACHE_DIR_VARIABLE)
    if value is not None and value.strip():
        if value.strip().lower() in _OFF_VALUES:
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "lstmlab" / "jax"


def _unusable_reason(path: Path) -> str | None:
    """Why ``path`` cannot hold the cache (created if missing), or ``None`` when it can."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".lstmlab-probe-"):
            pass
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return None


def _warn_once(message: str) -> None:
    if not _SETTING.warned:
        _SETTING.warned = True
        warnings.warn(message, CompileCacheWarning, stacklevel=3)


def configure_compile_cache(path: str | os.PathLike[str] | None) -> Path | None:
    """Use ``path`` as JAX's persistent compilation cache for this process, or none.

    Compiled programs are written to the folder and read back by later processes on this
    machine, so that only the first run of a command pays for compilation. Every program is
    cached, however quick to compile. Results do not depend on it: a program read back is
    the one the compiler would produce. The command line's ``--no-compile-cache`` calls
    ``configure_compile_cache(None)``; after any call, ``ensure_compile_cache`` leaves the
    choice as it is.

    A folder that cannot be created or written to does not stop the run: a
    ``CompileCacheWarning`` says why (once per process) and the cache stays off.

    Args:
        path: the cache folder (created if missing), or ``None`` for no cache.

    Returns:
        The folder in use, or ``None`` (turned off, or unusable).
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    folder = None if path is None else Path(path).expanduser().resolve()
    with _SETTING.lock:
        if folder is not None:
            reason = _unusable_reason(folder)
            if reason is not None:
                _warn_once(
                    f"the compilation cache folder {folder} cannot be used ({reason}); running "
                    f"without it, so programs compile again in every process. Set "
                    f"{CACHE_DIR_VARIABLE} to a writable folder, or to 'off' to silence this"
                )
                folder = None
        if folder is not None:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_TIME_S)
            if importlib.util.find_spec("filelock") is not None:  # JAX needs it to bound the size
                jax.config.update("jax_compilation_cache_max_size", _MAX_CACHE_BYTES)
        jax.config.update("jax_compilation_cache_dir", None if folder is None else str(folder))
        # JAX opens its cache once, at the first compilation: start it afresh on this folder.
        compilation_cache.reset_cache()
        _SETTING.configured = True
        _SETTING.path = folder
    return folder


def ensure_compile_cache() -> Path | None:
    """Turn on the persistent compilation cache at ``default_compile_cache_dir()``, once.

    Called by the entry points before they build programs (``on_device``, which every
    command runs in; ``LSTMModel``; the experiments). The first call configures the cache;
    later calls, and calls after ``configure_compile_cache``, change nothing. A JAX cache
    folder set by the user (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is kept, unless
    ``$LSTMLAB_CACHE_DIR`` is set.

    Returns:
        The folder in use, or ``None`` when the cache is off.
    """
    if _SETTING.configured:
        return _SETTING.path
    import jax

    own = jax.config.jax_compilation_cache_dir
    if own and not os.environ.get(CACHE_DIR_VARIABLE, "").strip():
        with _SETTING.lock:
            _SETTING.configured = True
            _SETTING.path = Path(own)
        return _SETTING.path
    return configure_compile_cache(default_compile_cache_dir())


def compile_cache_dir() -> Path | None:
    """The cache folder this process uses (``None``: off, or not configured yet)."""
    return _SETTING.path


# JAX reports this event once per program it compiles or reads from the persistent cache,
# whether the cache is on or off; a program already in this process' memory reports nothing.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class ProgramCount:
    """The XLA programs compiled (or read from the persistent cache) inside ``counting_programs``.

    Attributes:
        names: how many programs of each jitted function (``"jit(run)"``, ...), in order of
            first appearance.
    """

    def __init__(self) -> None:
        self.names: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Every program counted."""
        return sum(self.names.values())

    def __str__(self) -> str:
        """e.g. ``12 programs: 3 jit(run), 2 jit(read_window), ...``, the most first."""
        most = sorted(self.names.items(), key=lambda item: -item[1])
        return f"{self.total} programs: " + ", ".join(f"{n} {name}" for name, n in most)


@contextmanager
def counting_programs() -> Iterator[ProgramCount]:
    """Count the programs JAX compiles inside the block, by JAX's own compile events.

    A program this process already holds is not compiled again and not counted: count in a
    fresh process (or after ``jax.clear_caches()``) to count every program an entry point
    needs. Cached on disk or not, a program is counted alike.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> def affine(x):
        ...     return x * 3 + 1
        >>> with counting_programs() as count:
        ...     _ = jax.jit(affine)(jnp.arange(5))  # the eager arange is a program too
        ...     _ = jax.jit(affine)(jnp.arange(5))  # held in memory: not compiled again
        >>> count.total, count.names["jit(affine)"]
        (2, 1)
    """
    from jax import monitoring

    count = ProgramCount()

    def listen(event: str, seconds: float, **kwargs: Any) -> None:
        if event == _COMPILE_EVENT:
            name = str(kwargs.get("fun_name", "?"))
            count.names[name] = count.names.get(name, 0) + 1

    monitoring.register_event_duration_secs_listener(listen)
    try:
        yield count
    finally:
        monitoring.unregister_event_duration_listener(listen)


# --------------------------------------------------------------------------- executors

Task = TypeVar("Task")
Result = TypeVar("Result")
OnResult = Callable[[int, Any], None]

EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install 'lstmlab[ray]'"


class Executor(Protocol):
    """Maps a function over tasks; results come back in task order."""

    name: str

    def map(
        self,
        fn: Callable[..., Result],
        tasks: Sequence[tuple],
        *,
        on_result: OnResult | None = None,
    ) -> list[Result]:
        """``[fn(*task) for task in tasks]``, wherever the executor runs them."""
        ...

    def close(self) -> None:
        """Release what the executor started."""
        ...


class LocalExecutor:
    """Run the tasks one after the other in this process.

    Example:
        >>> with LocalExecutor() as executor:
        ...     executor.map(pow, [(2, 3), (3, 2)])
        [8, 9]
    """

    name = "local"

    def map(
        self,
        fn: Callable[..., Result],
        tasks: Sequence[tuple],
        *,
        on_result: OnResult | None = None,
    ) -> list[Result]:
        """Apply ``fn`` to every task, in order.

        Args:
            fn: the task function.
            tasks: the argument tuples, one per task.
            on_result: called as ``on_result(index, result)`` after each task (progress).

        Returns:
            ``[fn(*task) for task in tasks]``.
        """
        results = []
        for index, task in enumerate(tasks):
            results.append(fn(*task))
            if on_result is not None:
                on_result(index, results[-1])
        return results

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _import_ray() -> Any:
    """The ``ray`` module, or a ``ValueError`` that says how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ValueError(
            f"--executor ray needs Ray, which is not installed; install it with {RAY_INSTALL} "
            "or pass --executor local"
        ) from None


@contextlib.contextmanager
def _quiet_jax_fork_warning() -> Iterator[None]:
    """Silence JAX's "os.fork() was called" warning while Ray starts its processes.

    Ray starts GCS, raylet and its workers with ``subprocess`` and a ``preexec_fn``, which
    forks; the child runs Ray's hook and then ``exec``s Ray's binaries without touching
    JAX, so the deadlock JAX warns about (a forked child using JAX's threads) cannot happen.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
        )
        yield


def start_local_ray(num_cpus: int | None = None) -> Any:
    """Start a local Ray runtime on the loopback interface, without the dashboard.

    Args:
        num_cpus: CPUs Ray may use (``None``: all of this machine's).

    Returns:
        The ``ray`` module, initialised; ``ray.shutdown()`` stops the runtime.

    Raises:
        ValueError: Ray is not installed (the message says how to install it).
    """
    ray = _import_ray()
    with _quiet_jax_fork_warning():
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",  # loopback only: the runtime is this machine's
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


class RayExecutor:
    """Run each task as a Ray task; gather the results in task order.

    Connects to the cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ...) or, when
    ``address`` is ``None``, starts a local Ray runtime on 127.0.0.1 (no dashboard) and shuts
    it down in ``close``. When Ray is already initialised in this process (a test's runtime,
    a notebook's), that runtime is used and left running. The cluster's workers must be able
    to import the same lstmlab version.

    Args:
        address: the Ray cluster, or ``None`` for a local runtime.
        num_cpus: CPUs of a local runtime (``None``: all of this machine's).
        task_cpus: CPUs Ray reserves for each task.

    Raises:
        ValueError: Ray is not installed (the message says how to install it).
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, num_cpus: int | None = None, task_cpus: float = 1
    ) -> None:
        self._ray = _import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self.task_cpus = task_cpus
        self._started = False

    def _ensure_started(self) -> None:
        if self._ray.is_initialized():
            return
        if self.address is None:
            start_local_ray(num_cpus=self.num_cpus)
        else:
            with _quiet_jax_fork_warning():
                self._ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        self._started = True

    def map(
        self,
        fn: Callable[..., Result],
        tasks: Sequence[tuple],
        *,
        on_result: OnResult | None = None,
    ) -> list[Result]:
        """Submit every task, then gather them in task order.

        Args:
            fn: a module-level task function (Ray ships it by reference).
            tasks: the argument tuples, one per task; each must be picklable.
            on_result: called as ``on_result(index, result)`` as each task finishes (in
                completion order).

        Returns:
            ``[fn(*task) for task in tasks]``, computed by Ray's workers.
        """
        ray = self._ray
        self._ensure_started()
        remote = ray.remote(num_cpus=self.task_cpus)(fn)
        refs = [remote.remote(*task) for task in tasks]
        index_of = {ref: index for index, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                index = index_of[ref]
                results[index] = ray.get(ref)
                if on_result is not None:
                    on_result(index, results[index])
        return results

    def close(self) -> None:
        """Shut down the Ray runtime if this executor started it."""
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_executor(
    name: str = "local", *, ray_address: str | None = None, num_cpus: int | None = None
) -> LocalExecutor | RayExecutor:
    """The executor a ``--executor`` flag names.

    Args:
        name: ``"local"`` or ``"ray"``.
        ray_address: the Ray cluster (``--ray-address``); ``None`` starts a local runtime.
        num_cpus: CPUs of a local Ray runtime; ``None`` for all.

    Returns:
        A ``LocalExecutor`` or ``RayExecutor`` (use it as a context manager).

    Raises:
        ValueError: an unknown name; ``ray_address`` given with ``"local"``; ``"ray"``
            without Ray installed.

    Example:
        >>> make_executor("local").name
        'local'
    """
    check_choice("executor", name, EXECUTORS, fix="pass --executor local or --executor ray")
    if name == "local":
        if ray_address is not None:
            raise ValueError(
                f"--ray-address {ray_address} only applies to --executor ray; pass "
                "--executor ray or drop --ray-address"
            )
        return LocalExecutor()
    return RayExecutor(ray_address, num_cpus=num_cpus)


# --------------------------------------------------------------------------- progress


class EpochProgress:
    """Epoch counter with loss readout. Use through ``epoch_progress``."""

    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, loss: float, val_loss: float | None = None) -> None:
        """Mark one epoch done and show its losses."""
        if self._progress is None:
            return
        text = f"loss {loss:.4g}" + ("" if val_loss is None else f"  val_loss {val_loss:.4g}")
        self._progress.update(self._task_id, advance=1, losses=text)


def in_background(function: Callable[..., Result], *args: Any, **kwargs: Any) -> Future[Result]:
    """Start ``function(*args, **kwargs)`` on a daemon thread; its result comes as a Future.

    For work that releases the GIL while the caller goes on: XLA compiling a program (a
    ``jit(...).lower(...).compile()`` fills the same caches a later call would; the thread
    runs under the caller's JAX default device), or importing modules the caller needs
    later. ``result()`` returns the value or raises the
    function's exception, where the caller would have met it.

    Args:
        function: what to run.
        args: its positional arguments.
        kwargs: its keyword arguments.

    Returns:
        A ``concurrent.futures.Future``.
    """
    future: Future[Result] = Future()
    # JAX's default device is a per-thread setting (on_device sets it): the thread takes the
    # caller's, so that what it compiles is what the caller's calls will look up.
    jax = sys.modules.get("jax")
    device = None if jax is None else jax.config.jax_default_device

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            if device is None:
                future.set_result(function(*args, **kwargs))
            else:
                with jax.default_device(device):
                    future.set_result(function(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 (handed to the caller's result())
            future.set_exception(error)

    threading.Thread(target=work, name="lstmlab-background", daemon=True).start()
    return future


def import_in_background(*modules: str) -> Future[None]:
    """Import ``modules`` on a daemon thread, for work that needs them later in the run.

    Python holds the GIL while it imports, so this pays where the main thread meanwhile
    waits on something that releases it: XLA compiling a program, or a program running.
    The report's plotting modules (about 0.5 to 1 s of imports) then load while the models
    compile. A later ``import`` of a module still loading waits for it (Python's import
    lock); one that failed here is skipped, and fails again there, where its error is
    raised.

    Args:
        modules: dotted module names, imported in order.

    Returns:
        The Future of the imports (done when all were tried).
    """

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (the caller's own import raises it)
                continue

    return in_background(load)


@contextmanager
def epoch_progress(total: int, description: str = "training", *, quiet: bool = False):
    """Context manager yielding an ``EpochProgress`` for ``total`` epochs.

    Args:
        total: number of epochs asked for (capped like the driver caps them).
        description: label in front of the bar.
        quiet: show nothing.

    Yields:
        ``EpochProgress``.
    """
    from lstmlab.core.train import capped_epochs

    if quiet:
        yield EpochProgress(None, None)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[losses]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        # the driver runs at most $LSTMLAB_MAX_EPOCHS epochs: count the ones that will run
        task_id = progress.add_task(description, total=capped_epochs(total), losses="")
        yield EpochProgress(progress, task_id)
