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
