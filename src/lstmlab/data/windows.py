"""Sliding windows over a series: Keras' ``timeseries_dataset_from_array``, in NumPy.

Every index is computed at once with broadcasting; there is no Python loop over samples.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmlab.data.checks import as_float_array, check_positive_int


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Windows:
    """Windows cut from one series, in chronological order (the arrays are read-only).

    Attributes:
        x: inputs, ``(samples, length, features)`` float32.
        y: targets, ``(samples, horizon * target_columns)`` float32, step-major: the first
            ``target_columns`` entries are the first target step.
        starts: ``(samples,)`` int64, the series index of each sample's first input step.
        target_index: ``(samples,)`` int64, the series index of each sample's first target step.

    """

    x: np.ndarray
    y: np.ndarray
    starts: np.ndarray
    target_index: np.ndarray

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.x.shape[0])


def _as_columns(name: str, array: Any) -> np.ndarray:
    """``(time,)`` or ``(time, columns)`` as float32 ``(time, columns)``."""
    array = as_float_array(name, array, ndim=(1, 2))
    return array[:, None] if array.ndim == 1 else array  # (time,) -> (time, 1)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def make_windows(
    values: Any,
    targets: Any = None,
    *,
    length: int,
    stride: int = 1,
    sampling_rate: int = 1,
    offset: int = 1,
    horizon: int = 1,
) -> Windows:
    """Cut a series into sliding windows and their targets.

    Sample ``i`` starts at ``s_i = i * stride`` and reads ``values[s_i + j * sampling_rate]``
    for ``j`` in ``range(length)``; its last input step is
    ``e_i = s_i + (length - 1) * sampling_rate``, and its targets are
    ``targets[e_i + offset + k]`` for ``k`` in ``range(horizon)``. Only windows whose inputs
    and targets all lie inside the series are made.

    ``offset=1`` predicts the step after the window; ``offset=0`` aligns the target with the
    last input step (a filter, as in the moving-average example).

    The Keras call ``keras.utils.timeseries_dataset_from_array(data,
    targets=data[length:], sequence_length=length)`` (and the older
    ``TimeseriesGenerator(data, data, length=length)``) gives the same samples as
    ``make_windows(data, length=length)``, that is ``offset=1``: Keras pairs the window
    starting at ``p`` with ``targets[p]``, so ``targets=data[(length - 1) * sampling_rate +
    offset:]`` reproduces any ``offset``, with ``sequence_stride=stride`` and the same
    ``sampling_rate``. Keras gives ``(samples, length)`` for a 1-D series where this gives
    ``(samples, length, 1)``.

    Args:
        values: the inputs, ``(time,)`` or ``(time, features)``; 1-D becomes ``(time, 1)``.
        targets: what to predict, ``(time,)`` or ``(time, target_columns)``, aligned with
            ``values`` step for step; ``None`` uses ``values``.
        length: input steps per window.
        stride: steps between the starts of consecutive windows.
        sampling_rate: steps between consecutive inputs inside a window.
        offset: steps from the last input to the first target, ``>= 0``.
        horizon: consecutive target steps per window.

    Returns:
        ``Windows`` with ``x`` ``(samples, length, features)`` and ``y``
        ``(samples, horizon * target_columns)``.

    Raises:
        ValueError: a parameter is not a positive int, ``offset`` is negative, the arrays hold
            NaN or infinite values or have the wrong shape, ``targets`` and ``values`` differ
            in length, or the series is too short for one window.

    Example:
        >>> w = make_windows(np.arange(6.0), length=3)
        >>> w.x[:, :, 0].tolist(), w.y[:, 0].tolist()
        ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [3.0, 4.0, 5.0])

    """
    for name, value in (
        ("length", length),
        ("stride", stride),
        ("sampling_rate", sampling_rate),
        ("horizon", horizon),
    ):
        check_positive_int(name, value)
    if isinstance(offset, bool) or not isinstance(offset, int | np.integer) or offset < 0:
        raise ValueError(
            f"offset must be an integer >= 0, got {offset!r}; pass 1 to predict the next step "
            "or 0 to align the target with the last input"
        )
    values = _as_columns("values", values)
    targets = values if targets is None else _as_columns("targets", targets)
    steps = values.shape[0]
    if targets.shape[0] != steps:
        raise ValueError(
            f"targets must have one row per step of values ({steps}), got {targets.shape[0]}; "
            "align targets with values step for step (the offset shifts them)"
        )
    needed = (length - 1) * sampling_rate + offset + horizon
    if steps < needed:
        raise ValueError(
            f"the series has {steps} steps, too short for one window: one window needs "
            f"(length - 1) * sampling_rate + offset + horizon = {needed} steps "
            f"(length={length}, sampling_rate={sampling_rate}, offset={offset}, "
            f"horizon={horizon}); pass a shorter window or a longer series"
        )
    samples = (steps - needed) // stride + 1
    starts = np.arange(samples, dtype=np.int64) * stride  # (samples,)
    input_index = starts[:, None] + np.arange(length, dtype=np.int64) * sampling_rate
    x = values[input_index]  # (samples, length) indices -> (samples, length, features)
    target_index = starts + (length - 1) * sampling_rate + offset  # (samples,)
    output_index = target_index[:, None] + np.arange(horizon, dtype=np.int64)
    # (samples, horizon, target_columns) -> (samples, horizon * target_columns), step-major
    y = targets[output_index].reshape(samples, horizon * targets.shape[1])
    return Windows(
        x=_read_only(x),
        y=_read_only(y),
        starts=_read_only(starts),
        target_index=_read_only(target_index),
    )
