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
