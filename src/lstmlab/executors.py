"""Where the tasks of a sweep run: in this process, or as Ray tasks on a cluster.

A sweep (``lstmlab convergence``, ``lstmlab compare``) splits its grid into tasks, each a
module-level function applied to picklable arguments (frozen dataclasses, ints, NumPy
arrays); every task is itself vectorised (one ``jax.vmap``-ed program over its seeds). An
``Executor`` maps the function over the tasks and returns the results in task order, so the
sweep gathers them into the same files whichever executor ran them:

- ``LocalExecutor``: a plain loop in this process (the default);
- ``RayExecutor``: one Ray task per sweep task on the cluster at ``address``, or on a local
  Ray runtime it starts on the loopback interface (and shuts down when closed).

The same task computes the same numbers wherever it runs (same program, same seeds), so the
two executors give identical results. Ray is an optional extra: ``pip install 'lstmlab[ray]'``.
"""

import argparse
import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

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

    def __enter__(self) -> "LocalExecutor":
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

    def __enter__(self) -> "RayExecutor":
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
    if name not in EXECUTORS:
        raise ValueError(
            f"executor must be one of {EXECUTORS}, got {name!r}; pass --executor local or "
            "--executor ray"
        )
    if name == "local":
        if ray_address is not None:
            raise ValueError(
                f"--ray-address {ray_address} only applies to --executor ray; pass "
                "--executor ray or drop --ray-address"
            )
        return LocalExecutor()
    return RayExecutor(ray_address, num_cpus=num_cpus)


def add_executor_arguments(parser: argparse.ArgumentParser, *, task: str) -> None:
    """Add ``--executor local|ray`` (default ``local``) and ``--ray-address`` to a parser.

    The handler then builds the executor with
    ``make_executor(args.executor, ray_address=args.ray_address)``.

    Args:
        parser: the sweep command's parser.
        task: what one Ray task trains, for the help text (e.g. ``"lahead column"``).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_executor_arguments(parser, task="model")
        >>> args = parser.parse_args(["--executor", "ray", "--ray-address", "auto"])
        >>> args.executor, args.ray_address, parser.parse_args([]).executor
        ('ray', 'auto', 'local')
    """
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help=f"local: in this process; ray: one Ray task per {task} ({RAY_INSTALL})",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="the Ray cluster for --executor ray (e.g. auto); default: start a local runtime",
    )
