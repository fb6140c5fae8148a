"""Figures as PNG files: matplotlib's Agg backend and its fig/ax API; every figure is closed.

Each function takes arrays and a path, draws one figure with titles, axis labels and a
legend where there is more than one line, writes it and returns the path.
"""

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

matplotlib.use("Agg")  # files only; never a window (tests and CI have no display)


_DPI = 110


def save_figure(fig, path: Path) -> Path:
    """Lay out, write ``fig`` as PNG to ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=_DPI)
    finally:
        plt.close(fig)
    return path


def plot_input_vs_expected(
    inputs: np.ndarray, expected: np.ndarray, path: Path, *, tsteps: int, points: int = 10
) -> Path:
    """The script's first plot: the first ``points`` inputs and their moving average.

    Args:
        inputs: ``(n,)`` input values ``x[t]``.
        expected: ``(n,)`` targets, the moving average over ``tsteps`` points.
        path: where to write the PNG.
        tsteps: the moving-average window, for the legend.
        points: how many points to draw.

    Returns:
        ``path``.
    """
    inputs = np.asarray(inputs, dtype=np.float64)[:points]
    expected = np.asarray(expected, dtype=np.float64)[:points]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    steps = np.arange(len(inputs))
    ax.plot(steps, inputs, "o", label="input x[t]")
    ax.plot(steps, expected, "-", label=f"expected output: mean of the last {tsteps} inputs")
    ax.axhline(0.0, color="0.8", linewidth=0.8)
    ax.set_title(f"Input and expected output (first {len(inputs)} points)")
    ax.set_xlabel("time step t")
    ax.set_ylabel("value")
    ax.legend(loc="best")
    return save_figure(fig, path)


def plot_residuals(
    expected: np.ndarray,
    stateful: np.ndarray,
    stateless: np.ndarray,
    path: Path,
    *,
    tsteps: int,
    labels: Sequence[str] = ("stateful", "stateless"),
) -> Path:
    """The script's three panels: expected; stateful and stateless ``expected - predicted``.

    As the script, the stateful panel drops its first ``tsteps - 1`` points (no earlier step
    exists to predict them from). The two residual panels share their y axis so their sizes
    compare at a glance.

    Args:
        expected: ``(n,)`` test targets.
        stateful: ``(n,)`` stateful predictions.
        stateless: ``(n,)`` stateless predictions.
        path: where to write the PNG.
        tsteps: the moving-average window.
        labels: panel names for the two models.

    Returns:
        ``path``.
    """
    expected = np.asarray(expected, dtype=np.float64).ravel()
    stateful_error = (expected - np.asarray(stateful, dtype=np.float64).ravel())[tsteps - 1 :]
    stateless_error = expected - np.asarray(stateless, dtype=np.float64).ravel()
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    steps = np.arange(len(expected))
    axes[0].plot(steps, expected, color="C0", label="expected")
    axes[0].set_title("Expected output (test part)")
    panels = (
        (axes[1], steps[tsteps - 1 :], stateful_error, labels[0], "C1"),
        (axes[2], steps, stateless_error, labels[1], "C2"),
    )
    limit = max(np.abs(stateful_error).max(initial=0), np.abs(stateless_error).max(initial=0))
    for ax, x, error, label, color in panels:
        mse = float(np.mean(np.square(error))) if len(error) else float("nan")
        ax.plot(x, error, color=color, label=f"{label} (MSE of the points shown: {mse:.2e})")
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(f"{label.capitalize()}: expected - predicted")
        ax.set_ylim(-1.05 * limit or -1, 1.05 * limit or 1)
    for ax in axes:
        ax.set_ylabel("value")
        ax.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("test sample")
    return save_figure(fig, path)


def plot_history(
    histories: dict[str, tuple[Sequence[float], Sequence[float] | None]],
    path: Path,
    *,
    reference: float | None = None,
    reference_label: str = "reference",
) -> Path:
    """Loss per epoch (log scale), training solid and validation dashed.

    Args:
        histories: ``{name: (loss per epoch, val_loss per epoch or None)}``.
        path: where to write the PNG.
        reference: optional horizontal line, e.g. the convergence threshold.
        reference_label: its legend entry.

    Returns:
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (name, (loss, val_loss)) in enumerate(histories.items()):
        epochs = np.arange(1, len(loss) + 1)
        ax.plot(epochs, loss, "-", color=f"C{i}", label=f"{name} loss")
        if val_loss is not None:
            ax.plot(epochs, val_loss, "--", color=f"C{i}", label=f"{name} val_loss")
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle=":", label=reference_label)
    ax.set_yscale("log")
    ax.set_title("Loss per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.legend(loc="best", fontsize="small")
    return save_figure(fig, path)


def plot_heatmap(
    values: np.ndarray,
    path: Path,
    *,
    rows: Sequence[object],
    columns: Sequence[object],
    title: str,
    row_label: str,
    column_label: str,
    colorbar_label: str,
    fmt: str = "{:.2f}",
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    cmap: str = "viridis",
    outlined: np.ndarray | None = None,
) -> Path:
    """An annotated heat map of a ``(len(rows), len(columns))`` matrix.

    Args:
        values: ``(len(rows), len(columns))``.
        path: where to write the PNG.
        rows: row tick labels (top to bottom).
        columns: column tick labels (left to right).
        title: figure title.
        row_label: y-axis label.
        column_label: x-axis label.
        colorbar_label: colour bar label.
        fmt: format of the number written in each cell.
        vmin: lower end of the colour scale.
        vmax: upper end of the colour scale.
        log: logarithmic colour scale (positive values).
        cmap: matplotlib colour map name.
        outlined: optional boolean ``(len(rows), len(columns))``: cells to outline in red
            (e.g. where a measurement disagrees with a claim).

    Returns:
        ``path``.

    Raises:
        ValueError: ``values`` does not have the shape of ``rows`` x ``columns``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(rows), len(columns)):
        raise ValueError(
            f"values must have shape (len(rows), len(columns)) = ({len(rows)}, {len(columns)}), "
            f"got {values.shape}; pass one value per cell"
        )
    norm = None
    if log:
        positive = values[values > 0]
        low = vmin if vmin is not None else (positive.min() if positive.size else 1e-6)
        high = vmax if vmax is not None else (positive.max() if positive.size else 1.0)
        norm = matplotlib.colors.LogNorm(vmin=low, vmax=max(high, low * 10))
        vmin = vmax = None
        shown = np.clip(values, norm.vmin, None)
    else:
        shown = values
    fig, ax = plt.subplots(figsize=(1.0 * len(columns) + 2.6, 0.8 * len(rows) + 1.8))
    image = ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, norm=norm, aspect="auto")
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label(colorbar_label)
    ax.set_xticks(np.arange(len(columns)), [str(c) for c in columns])
    ax.set_yticks(np.arange(len(rows)), [str(r) for r in rows])
    ax.set_xlabel(column_label)
    ax.set_ylabel(row_label)
    ax.set_title(title)
    for i in range(len(rows)):
        for j in range(len(columns)):
            rgba = image.cmap(image.norm(shown[i, j]))
            dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
            ax.text(
                j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=8,
                color="white" if dark else "black",
            )
            if outlined is not None and outlined[i, j]:
                ax.add_patch(
                    matplotlib.patches.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2
                    )
                )
    return save_figure(fig, path)
