"""The seed-script experiments' settings, importable without JAX or pandas.

``MovingAverageConfig`` (``lstmlab.experiments.moving_average``) and ``ConvergenceConfig``
(``lstmlab.experiments.convergence``) with their vocabularies (``LAYOUTS``, ``MODES``). The
experiment modules re-export them; they live here, over ``lstmlab.checks`` only, so that the
command line builds its flags from these defaults (and answers ``--help``) without loading
the numerical stack.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from lstmlab.checks import (
    check_non_negative_int,
    check_positive_int,
    check_positive_ints,
    check_positive_number,
    check_seed,
)

__all__ = ["LAYOUTS", "MODES", "ConvergenceConfig", "MovingAverageConfig"]

LAYOUTS = ("official", "streams")


@dataclass(frozen=True, kw_only=True, slots=True)
class MovingAverageConfig:
    """The script's editable parameters (its defaults), plus what it leaves implicit.

    Attributes:
        input_len: length of the generated input.
        tsteps: window of the moving-average target.
        lahead: input window length per sample.
        batch_size: rows per batch.
        epochs: training epochs per model (literal: the stateful model is fitted one epoch at a
            time ``epochs`` times, the stateless one for ``epochs`` epochs).
        seed: NumPy legacy global seed (the script's ``np.random.seed(1986)``); also seeds the
            model initialisation: ``jax.random.key(seed + 1)`` for the stateful model and
            ``jax.random.key(seed)`` for the stateless one (the convention of the edge-based
            ``run`` this module started with; the script itself leaves Keras' init unseeded).
        units: LSTM units.
        threshold: converged when test MSE <= threshold * MSE of predicting the training mean.
        layout: ``"official"`` (the script's batches: batch k holds samples k*B..k*B+B-1) or
            ``"streams"`` (B contiguous streams; row i of batch k+1 continues row i of batch k).
    """

    input_len: int = 1000
    tsteps: int = 2
    lahead: int = 1
    batch_size: int = 1
    epochs: int = 10
    seed: int = 1986
    units: int = 20
    threshold: float = 0.1
    layout: str = "official"

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size", "units"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        object.__setattr__(self, "epochs", check_non_negative_int("epochs", self.epochs))
        object.__setattr__(self, "seed", check_seed("seed", self.seed))
        threshold = check_positive_number(
            "threshold", self.threshold, fix="pass e.g. 0.1 (10% of the mean predictor's MSE)"
        )
        object.__setattr__(self, "threshold", threshold)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be 'official' or 'streams', got {self.layout!r}")
        to_train = int(self.input_len * 0.8)
        to_train -= to_train % self.batch_size
        to_test = self.input_len - to_train - self.input_len % self.batch_size
        if to_train < self.batch_size or to_test < self.batch_size:
            raise ValueError(
                f"input_len={self.input_len} is too short for batch_size={self.batch_size}: the "
                f"80/20 split gives {to_train} training and {to_test} test samples, and each "
                f"needs at least one batch; pass --input-len >= {5 * self.batch_size} or a "
                "smaller --batch-size"
            )

    @property
    def expect_stateless_converges(self) -> bool:
        """The script's claim for the stateless model."""
        return self.lahead >= self.tsteps


MODES = ("stateful", "stateless")


def _check_values(name: str, values: Sequence[int]) -> tuple[int, ...]:
    values = check_positive_ints(name, values)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat values, got {values!r}; drop the duplicates")
    return values


@dataclass(frozen=True, kw_only=True, slots=True)
class ConvergenceConfig:
    """The grid and the per-cell experiment.

    Attributes:
        tsteps: moving-average windows (grid rows).
        lahead: input window lengths (grid columns).
        seeds: seeds per cell: ``seed, seed + 1, ..., seed + seeds - 1``; each gives other data
            (``np.random.seed``, as the script) and another model initialisation.
        seed: the first seed.
        input_len: length of the generated input.
        batch_size: rows per batch.
        epochs: training epochs per model.
        units: LSTM units.
        threshold: converged when test MSE <= threshold * MSE of predicting the training mean.
        layout: ``"official"`` or ``"streams"`` (see ``MovingAverageConfig``).
    """

    tsteps: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    lahead: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    seeds: int = 3
    seed: int = 1986
    input_len: int = 1000
    batch_size: int = 1
    epochs: int = 10
    units: int = 20
    threshold: float = 0.1
    layout: str = "official"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tsteps", _check_values("tsteps", self.tsteps))
        object.__setattr__(self, "lahead", _check_values("lahead", self.lahead))
        seeds = check_positive_int("seeds", self.seeds, fix="pass e.g. 3")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "seed", check_seed("seed", self.seed, count=seeds))
        self.cell(self.tsteps[0], self.lahead[0], self.seed)  # validates the rest

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The seeds of every cell."""
        return tuple(range(self.seed, self.seed + self.seeds))

    def cell(self, tsteps: int, lahead: int, seed: int) -> MovingAverageConfig:
        """The moving-average settings of one training of the grid."""
        return MovingAverageConfig(
            input_len=self.input_len,
            tsteps=tsteps,
            lahead=lahead,
            batch_size=self.batch_size,
            epochs=self.epochs,
            seed=seed,
            units=self.units,
            threshold=self.threshold,
            layout=self.layout,
        )
