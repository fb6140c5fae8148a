"""Strict test configuration for tests/ and the doctests in src/.

Rank promotion raises, so a (n,) versus (n, 1) bug cannot hide; pyproject makes warnings errors.
"""

import logging
import os
import threading
import time
from pathlib import Path

# One JAX compilation cache for the whole run: both xdist workers and every subprocess a test
# starts (the CLI, the service, the README's blocks) compile the same small programs, and
# compiling is most of the suite's time. Programs, hence results, are the same either way.
# It lives in the repository's ignored .pytest_cache, so a fresh clone starts cold.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parent / ".pytest_cache" / "jax")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402  (after the cache settings, which jax reads at import)
import pytest

# The PostgreSQL server fixtures (tests/postgres_server.py), registered once for every test module.
pytest_plugins = ["tests.postgres_server"]

os.environ.setdefault("KERAS_BACKEND", "jax")
jax.config.update("jax_numpy_rank_promotion", "raise")


def shared_data_dir() -> Path | None:
    """The shared data folder: $LSTMLAB_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("LSTMLAB_DATA")
    candidate = Path(env) if env else Path(__file__).resolve().parent.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    """The shared real data sets; skips the test with the reason when they are missing."""
    found = shared_data_dir()
    if found is None:
        pytest.skip(
            "shared data folder not found: set LSTMLAB_DATA or place ../shared/data beside the repo"
        )
    return found


# `make test` runs pytest-xdist with --dist loadgroup: tests marked with one xdist_group run in
# one worker, one after the other; every other test is its own work unit, as with --dist load.
# The README's run and the compare presets that compile the same programs share the group
# "readme", which goes first: it is the longest unit (about 5 minutes on a cold cache), and the
# longest first is the order in which two workers finish together. One work unit per module
# instead was measured no cheaper (test_forecaster, test_keras_models, test_rollout and
# test_moving_average on a cold cache: 395 CPU-seconds against 355) and balanced worse.
FIRST_GROUPS = ("readme",)


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The groups of FIRST_GROUPS first, in that order; the rest keep the collection order."""
    rank = {name: index for index, name in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # a stable sort


# The modules whose tests start servers, threads and stores. Each of their tests, and each of
# their module-wide fixtures, must leave the process's logging handlers and Python threads as
# it found them: one in-process uvicorn whose handlers kept a test's closed capture poisoned
# every later test of its xdist worker ("I/O operation on closed file").
LEAK_GUARDED = frozenset(
    {
        "test_service",
        "test_state_store",
        "test_postgres_store",
        "test_catalogue_http",
        "test_model_folder",
        "test_cli",
    }
)
LEAK_GRACE_S = 5.0  # a thread told to stop may take a moment to end


def _counts(handler: logging.Handler) -> bool:
    """Whether a handler counts as one a test may have left.

    Not a NullHandler (libraries add one when first imported; it writes nothing), nor
    pytest's own capture of the current phase (pytest adds it to every non-propagating logger
    at each phase's start and takes it off at its end).
    """
    return not isinstance(handler, logging.NullHandler) and not type(handler).__module__.startswith(
        "_pytest"
    )


def _logging_handlers() -> dict[str, tuple[int, ...]]:
    """Every logger's handlers that count (``_counts``), by logger name (the root is '')."""
    loggers = {"": logging.getLogger()}
    for name, each in list(logging.root.manager.loggerDict.items()):
        if isinstance(each, logging.Logger):
            loggers[name] = each
    found = {}
    for name, each in loggers.items():
        writing = tuple(id(h) for h in each.handlers if _counts(h))
        if writing:
            found[name] = writing
    return found


def leaks(handlers_before, threads_before, pooled_ok=False, grace_s=LEAK_GRACE_S) -> list[str]:
    """What was left behind since the snapshot: handlers added or removed, threads alive.

    With ``pooled_ok``, AnyIO's worker threads are not counted: they belong to the event loop
    of a server that a module-wide fixture runs, and end with it (the module's check).
    """
    found = []
    handlers_now = _logging_handlers()
    for name in sorted(set(handlers_before) | set(handlers_now)):
        if handlers_before.get(name, ()) != handlers_now.get(name, ()):
            found.append(
                f"logger {name or 'root'!r} had {len(handlers_before.get(name, ()))} handlers, "
                f"now {len(handlers_now.get(name, ()))}: {logging.getLogger(name).handlers}"
            )
    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread in threads_before or thread is threading.current_thread():
            continue
        if pooled_ok and thread.name == "AnyIO worker thread":
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            found.append(f"thread {thread.name!r} ({thread!r}) is still alive")
    return found


def _guard(module_name: str, pooled_ok: bool):
    if module_name.rpartition(".")[2] not in LEAK_GUARDED:
        yield
        return
    handlers, threads = _logging_handlers(), set(threading.enumerate())
    yield
    found = leaks(handlers, threads, pooled_ok)
    if found:
        pytest.fail("left behind (stop it, or restore logging, in the test):\n" + "\n".join(found))


@pytest.fixture(autouse=True)
def no_leaked_handlers_or_threads(request):
    """Fail the test that leaves a logging handler or a thread behind (LEAK_GUARDED)."""
    yield from _guard(request.module.__name__, pooled_ok=True)


@pytest.fixture(autouse=True, scope="module")
def no_leaked_handlers_or_threads_by_module(request):
    """The same for module-wide fixtures (an in-process server shared by a module's tests)."""
    yield from _guard(request.module.__name__, pooled_ok=False)
