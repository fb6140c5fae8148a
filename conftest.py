"""Strict test configuration for tests/ and the doctests in src/.

Rank promotion raises, so a (n,) versus (n, 1) bug cannot hide; pyproject makes warnings errors.
"""

import os
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


# `make test` runs pytest-xdist with --dist loadgroup --no-loadscope-reorder: one work unit per
# group, in the order below. Every test belongs to its module's group unless it names another
# (the README's run and the compare presets that compile the same programs share "readme"), so
# a module's tests, which share compiled programs and module fixtures, compile and set them up
# in one worker only. The heaviest units go first (measured on a cold compile cache, in this
# order), so that two workers finish together; the rest keep the collection order.
HEAVY_FIRST = (
    "readme",
    "tests/test_compare.py",
    "tests/test_cli.py",
    "tests/test_forecaster.py",
    "tests/test_service.py",
    "tests/test_runtime.py",
    "tests/test_train.py",
    "tests/test_keras_models.py",
    "tests/test_architecture.py",
    "tests/test_postgres_store.py",
    "tests/test_state_store.py",
    "tests/test_keras_io.py",
    "tests/test_moving_average.py",
)


def _group(item: pytest.Item) -> str:
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put each test in its group (its module's unless marked) and the heaviest groups first."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {name: index for index, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # stable: the rest in order
