"""The script's convergence claim over a grid of ``tsteps`` x ``lahead``, measured.

The claim of ``lstm_stateful.py``: the stateless model converges only when ``lahead >=
tsteps``; the stateful model converges everywhere. Every cell trains both models for several
seeds with the moving-average recipe (``moving_average.make_data``) and the script's training
(stateful: reset after every epoch; stateless: all epochs in one go). All trainings of one
``lahead`` (every ``tsteps`` and every seed: the arrays have equal shapes) train together
through the one training driver, ``lstmlab.core.train.fit``, vmapped over the trainings with
each training's own batches, so the grid compiles ``2 * len(lahead)`` epoch programs.
"""

import functools
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lstmlab.core.model import LSTMConfig, init_state
from lstmlab.core.train import TrainConfig, fit, init_train_states, make_predict
from lstmlab.experiments import moving_average as ma
from lstmlab.experiments.settings import MODES, ConvergenceConfig
from lstmlab.runtime import Executor, LocalExecutor, ensure_compile_cache

__all__ = [
    "MODES",
    "CellSummary",
    "ConvergenceConfig",
    "ConvergenceResult",
    "GridRow",
    "claim",
    "run",
]


def claim(mode: str, tsteps: int, lahead: int) -> bool:
    """The script's claim: stateless converges only when ``lahead >= tsteps``; stateful always."""
    return True if mode == "stateful" else lahead >= tsteps


@dataclass(frozen=True, kw_only=True, slots=True)
class GridRow:
    """One training of the grid.

    Attributes:
        tsteps: moving-average window.
        lahead: input window.
        mode: ``"stateful"`` or ``"stateless"``.
        seed: data and initialisation seed.
        test_mse: the model's test MSE.
        mean_mse: test MSE of predicting the training mean.
        ratio: ``test_mse / mean_mse``.
        converged: ``ratio <= threshold``.
        claimed: what the script claims for this cell and mode.
        updates: parameter updates done.
        final_loss: the mean training loss of the last epoch (``nan`` without epochs).
    """

    tsteps: int
    lahead: int
    mode: str
    seed: int
    test_mse: float
    mean_mse: float
    ratio: float
    converged: bool
    claimed: bool
    updates: int
    final_loss: float = math.nan


@dataclass(frozen=True, kw_only=True, slots=True)
class CellSummary:
    """All seeds of one (tsteps, lahead, mode).

    Attributes:
        tsteps: moving-average window.
        lahead: input window.
        mode: ``"stateful"`` or ``"stateless"``.
        fraction: fraction of seeds that converged.
        median_ratio: median of ``test_mse / mean_mse`` over seeds.
        claimed: the script's claim.
    """

    tsteps: int
    lahead: int
    mode: str
    fraction: float
    median_ratio: float
    claimed: bool

    @property
    def verdict(self) -> str:
        """``"converges"`` (all seeds), ``"does not converge"`` (none) or ``"mixed"``."""
        if self.fraction == 1.0:
            return "converges"
        if self.fraction == 0.0:
            return "does not converge"
        return "mixed"

    @property
    def agrees(self) -> bool:
        """Every seed did what the claim says."""
        return self.fraction == (1.0 if self.claimed else 0.0)


@dataclass(frozen=True, slots=True)
class ConvergenceResult:
    """What ``run`` measured: one row per training, in (lahead, mode, tsteps, seed) order.

    Attributes:
        config: the grid.
        rows: one ``GridRow`` per training.
        seconds: wall time of the whole grid (data, compilation and training).
    """

    config: ConvergenceConfig
    rows: tuple[GridRow, ...]
    seconds: float

    def cells(self, mode: str) -> list[CellSummary]:
        """The per-cell summaries of one mode, row by row (``tsteps``), then ``lahead``."""
        out = []
        for tsteps in self.config.tsteps:
            for lahead in self.config.lahead:
                rows = [
                    r
                    for r in self.rows
                    if r.mode == mode and r.tsteps == tsteps and r.lahead == lahead
                ]
                out.append(
                    CellSummary(
                        tsteps=tsteps,
                        lahead=lahead,
                        mode=mode,
                        fraction=float(np.mean([r.converged for r in rows])),
                        median_ratio=float(np.median([r.ratio for r in rows])),
                        claimed=claim(mode, tsteps, lahead),
                    )
                )
        return out

    def matrix(self, mode: str, field: str) -> np.ndarray:
        """``(len(tsteps), len(lahead))`` of a ``CellSummary`` field, e.g. ``"fraction"``."""
        values = [getattr(c, field) for c in self.cells(mode)]
        return np.asarray(values, dtype=np.float64).reshape(
            len(self.config.tsteps), len(self.config.lahead)
        )


@functools.lru_cache(maxsize=32)
def _compiled_scoring(net: LSTMConfig):
    """``jit(vmap(predict))`` over trainings: each predicts its test batches from zero state."""
    predict_batches = make_predict(net)

    def score(params, x_score):
        return predict_batches(params, init_state(net, x_score.shape[1]), x_score)[0]

    return jax.jit(jax.vmap(score))


def _train_group(config: ConvergenceConfig, lahead: int) -> list[GridRow]:
    """All trainings of one ``lahead`` column: every tsteps, seed and mode.

    The task an executor runs: module-level, with picklable arguments, so Ray can ship it.
    """
    ensure_compile_cache()  # a Ray worker is a process of its own
    jobs = [(t, s) for t in config.tsteps for s in config.seed_values]
    cells = [config.cell(t, lahead, s) for t, s in jobs]
    data = [ma.make_data(c) for c in cells]
    train = [
        ma.make_batches(d.x_train, d.y_train, batch_size=c.batch_size, layout=c.layout)
        for c, d in zip(cells, data, strict=True)
    ]
    score = [ma.scoring_batches(d, c) for c, d in zip(cells, data, strict=True)]
    # (jobs, num_batches, batch, lahead, 1) and (jobs, num_batches, batch, 1)
    x_train = jnp.asarray(np.stack([b.x_batches for b in train]))
    y_train = jnp.asarray(np.stack([b.y_batches for b in train]))
    x_score = jnp.asarray(np.stack([b.x_batches for b in score]))
    y_score = [b.to_samples(b.y_batches).astype(np.float64) for b in score]  # each (n_test, 1)
    mean_mse = [ma.baselines(d, c.tsteps).mean for c, d in zip(cells, data, strict=True)]
    train_config = TrainConfig(epochs=config.epochs, reset="epoch")

    rows = []
    for mode in MODES:
        stateful = mode == "stateful"
        net = ma.model_config(cells[0], stateful=stateful)
        params = [ma.initial_params(c, stateful=stateful) for c in cells]
        states = init_train_states(net, train_config, params, config.batch_size)
        # Every training has its own batches (data_axis=0); the driver resets the stateful
        # model after every epoch, the script's model.reset_states().
        states, log = fit(net, train_config, states, x_train, y_train, data_axis=0)
        predictions = np.asarray(_compiled_scoring(net)(states.params, x_score))
        steps = log.updates
        for j, (cell, batches) in enumerate(zip(cells, score, strict=True)):
            predicted = batches.to_samples(predictions[j])  # (n_test, 1) in sample order
            test_mse = float(np.mean(np.square(y_score[j] - predicted)))
            ratio = test_mse / mean_mse[j]
            rows.append(
                GridRow(
                    tsteps=cell.tsteps,
                    lahead=lahead,
                    mode=mode,
                    seed=cell.seed,
                    test_mse=test_mse,
                    mean_mse=mean_mse[j],
                    ratio=ratio,
                    converged=bool(ratio <= config.threshold),
                    claimed=claim(mode, cell.tsteps, lahead),
                    updates=int(steps[j]),
                    final_loss=float(log.loss[-1, j]) if len(log.loss) else math.nan,
                )
            )
    return rows


@contextmanager
def _cell_progress(total: int, *, quiet: bool):
    """Yield ``advance(cells)``; a rich bar of cells done on stderr unless ``quiet``."""
    if quiet:
        yield lambda cells: None
        return
    progress = Progress(
        TextColumn("convergence grid"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task("cells", total=total)
        yield lambda cells: progress.update(task, advance=cells)


def run(
    config: ConvergenceConfig = ConvergenceConfig(),
    *,
    quiet: bool = False,
    on_group: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> ConvergenceResult:
    """Train every cell of the grid, both modes, every seed; measure convergence.

    Args:
        config: the grid.
        quiet: no progress bar.
        on_group: called with the number of cells finished after each ``lahead`` column
            (both modes), e.g. to drive another progress display.
        executor: where the columns train (one task per ``lahead`` column, all its tsteps
            and seeds vectorised); ``None`` for a ``LocalExecutor`` (in process). A
            ``RayExecutor`` gives the same rows.

    Returns:
        ``ConvergenceResult``.

    Example:
        >>> result = run(ConvergenceConfig(tsteps=(1,), lahead=(1,), seeds=1, input_len=50,
        ...                                epochs=1), quiet=True)
        >>> [row.mode for row in result.rows]
        ['stateful', 'stateless']
    """
    started = time.perf_counter()
    ensure_compile_cache()  # programs compiled once per machine, not once per process
    executor = LocalExecutor() if executor is None else executor
    total = len(config.tsteps) * len(config.lahead)
    with _cell_progress(total, quiet=quiet) as advance:

        def finished(index: int, rows: list[GridRow]) -> None:
            advance(len(config.tsteps))
            if on_group is not None:
                on_group(len(config.tsteps))

        # One task per lahead column, for every executor: the same vmapped programs with the
        # same batch of trainings, so a Ray run gives the local run's numbers bit for bit.
        tasks = [(config, lahead) for lahead in config.lahead]
        groups = executor.map(_train_group, tasks, on_result=finished)
    rows = [row for group in groups for row in group]  # (lahead, mode, tsteps, seed) order
    return ConvergenceResult(config=config, rows=tuple(rows), seconds=time.perf_counter() - started)
