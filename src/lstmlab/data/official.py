"""The official example's layout: consecutive samples fill each batch, as ``fit(shuffle=False)``.

Kept to reproduce the seed script. For stateful training with ``batch_size > 1`` prefer the
stream layout (``lstmlab.data.streams``), where each row continues the previous batch's row.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmlab.data.checks import as_float_samples, check_positive_int
from lstmlab.data.streams import TrimReport


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class OfficialBatches:
    """Batches in the official example's layout (the arrays are read-only).

    Attributes:
        x_batches: ``(num_batches, batch_size, ...)`` inputs; batch ``k`` holds samples
            ``k * batch_size`` to ``(k + 1) * batch_size - 1``.
        y_batches: ``(num_batches, batch_size, ...)`` targets, laid out like ``x_batches``.
        trim: what was used and what was trimmed (only ever at the end).

    """

    x_batches: np.ndarray
    y_batches: np.ndarray | None
    trim: TrimReport

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        return int(self.x_batches.shape[0])

    @property
    def batch_size(self) -> int:
        """Rows per batch."""
        return int(self.x_batches.shape[1])

    def to_samples(self, batches: Any) -> np.ndarray:
        """Put an array laid out like ``x_batches`` (e.g. predictions) back in sample order.

        Args:
            batches: ``(num_batches, batch_size, ...)``.

        Returns:
            ``(num_batches * batch_size, ...)``, sample ``j`` at row ``j``.

        Raises:
            ValueError: ``batches`` is not laid out like ``x_batches``.

        """
        batches = np.asarray(batches)
        lead = (self.num_batches, self.batch_size)
        if batches.shape[:2] != lead:
            raise ValueError(
                f"batches must be laid out as (num_batches, batch_size, ...) = "
                f"{lead + ('...',)}, got shape {batches.shape}; pass an array laid out like "
                "x_batches, e.g. predictions"
            )
        # (num_batches, batch_size, ...) -> (num_batches * batch_size, ...): batches in order
        return batches.reshape(-1, *batches.shape[2:])


def make_official_batches(
    x: Any, y: Any, *, batch_size: int, trim: bool = False
) -> OfficialBatches:
    """Batch samples in order, as Keras' ``fit(shuffle=False)`` does in the official example.

    Batch ``k`` holds samples ``k * B`` to ``(k + 1) * B - 1`` (``B = batch_size``). With a
    stateful model this differs from the stream layout as soon as ``B > 1``: row ``i`` of
    batch ``k + 1`` is sample ``(k + 1) * B + i``, which comes ``B`` steps after sample
    ``k * B + i``, so the state carried into a sample comes from ``B`` steps back in the
    series, not from the previous step. Row ``i`` thus follows the subseries
    ``data[i::B]``; the seed script's comment says so: "we train batch_size series at a lower
    resolution, each offset by one step, extractable with data_input[i::batch_size]". The
    stream layout (``make_stream_batches``) instead makes row ``i`` of batch ``k + 1`` the
    sample right after row ``i`` of batch ``k``. With ``B = 1`` the two layouts agree.

    Args:
        x: ``(samples, ...)`` inputs in chronological order.
        y: ``(samples, ...)`` targets, one per sample, or ``None`` (prediction only;
            ``y_batches`` is then ``None``).
        batch_size: samples per batch.
        trim: drop the last ``n % batch_size`` samples (counted in the report) instead of
            raising.

    Returns:
        ``OfficialBatches`` with ``x_batches`` ``(n // batch_size, batch_size, ...)``.

    Raises:
        ValueError: ``batch_size`` is not a positive int, ``x`` and ``y`` differ in samples
            or hold NaN or infinite values, there are fewer samples than ``batch_size``, or
            ``n`` is not a multiple of ``batch_size`` and ``trim`` is false.

    Example:
        >>> b = make_official_batches(np.arange(6), np.arange(6), batch_size=2)
        >>> b.x_batches.tolist()
        [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]

    """
    check_positive_int("batch_size", batch_size)
    if not isinstance(trim, bool):
        raise ValueError(f"trim must be True or False, got {trim!r}; pass trim=True or False")
    x = as_float_samples("x", x)
    y = None if y is None else as_float_samples("y", y)
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(
            f"x and y must hold the same number of samples, got {n} and {y.shape[0]}; pass "
            "one target per sample"
        )
    if n < batch_size:
        raise ValueError(
            f"x holds {n} samples, too few for one batch of batch_size={batch_size}; pass a "
            "smaller batch_size or more samples"
        )
    remainder = n % batch_size
    if remainder and not trim:
        raise ValueError(
            f"{n} samples are not a multiple of batch_size={batch_size} (remainder "
            f"{remainder}); pass trim=True to drop the last {remainder} samples, or choose a "
            f"batch_size that divides {n}"
        )
    num_batches = n // batch_size
    used = num_batches * batch_size

    def lay_out(samples: np.ndarray) -> np.ndarray:
        # (used, ...) -> (num_batches, batch_size, ...): consecutive samples share a batch
        batches = samples[:used].reshape(num_batches, batch_size, *samples.shape[1:])
        batches = batches.copy()  # the batches never alias the caller's array
        batches.setflags(write=False)
        return batches

    report = TrimReport(
        total=n,
        used=used,
        trimmed_start=0,
        trimmed_end=remainder,
        batch_size=batch_size,
        num_batches=num_batches,
        per_series=((0, remainder),),
        layout="official",
    )
    y_batches = None if y is None else lay_out(y)
    return OfficialBatches(x_batches=lay_out(x), y_batches=y_batches, trim=report)
