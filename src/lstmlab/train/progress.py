"""A rich progress bar for epochs, with the latest losses; silent when ``quiet``."""

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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


@contextmanager
def epoch_progress(total: int, description: str = "training", *, quiet: bool = False):
    """Context manager yielding an ``EpochProgress`` for ``total`` epochs.

    Args:
        total: number of epochs.
        description: label in front of the bar.
        quiet: show nothing.

    Yields:
        ``EpochProgress``.
    """
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
        task_id = progress.add_task(description, total=total, losses="")
        yield EpochProgress(progress, task_id)
