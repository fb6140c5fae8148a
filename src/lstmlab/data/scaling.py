"""Per-column scalers as frozen data: fit once on the training data, saved with the model.

A scaler is two tuples of float64 numbers (``offset``, ``scale``) and the column names; it
maps ``x`` to ``(x - offset) / scale``. ``minmax`` maps the training range onto ``[0, 1]``
(Keras examples' ``MinMaxScaler``), ``standard`` to zero mean and unit variance, ``none`` is
the identity (the published MLP article trained on unscaled values). The numbers
are written to JSON with ``repr`` precision, so a saved and reloaded scaler gives
bit-identical outputs.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmlab.checks import check_choice

__all__ = ["SCALER_KINDS", "Scaler", "fit_scaler", "inverse_transform", "transform"]

SCALER_KINDS = ("minmax", "standard", "none")
_KIND_FIX = "pass kind='minmax', 'standard' or 'none'"


@dataclass(frozen=True, kw_only=True, slots=True)
class Scaler:
    """An affine per-column map ``(x - offset) / scale``.

    Attributes:
        kind: ``"minmax"``, ``"standard"`` or ``"none"`` (how it was fitted; informative).
        columns: one name per column.
        offset: per-column offset (min or mean), float64.
        scale: per-column scale (range or standard deviation), nonzero, float64.
    """

    kind: str
    columns: tuple[str, ...]
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(map(str, self.columns)))
        object.__setattr__(self, "offset", tuple(map(float, self.offset)))
        object.__setattr__(self, "scale", tuple(map(float, self.scale)))
        check_choice("scaler kind", self.kind, SCALER_KINDS, fix=_KIND_FIX)
        if not len(self.columns) == len(self.offset) == len(self.scale) > 0:
            raise ValueError(
                f"a scaler needs one offset and one scale per column, got {len(self.columns)} "
                f"columns, {len(self.offset)} offsets and {len(self.scale)} scales"
            )
        for name, scale in zip(self.columns, self.scale, strict=True):
            if not math.isfinite(scale) or scale == 0.0:
                raise ValueError(
                    f"scale of column {name!r} is {scale!r}; a scale must be finite and nonzero"
                )
        if not all(map(math.isfinite, self.offset)):
            raise ValueError(f"scaler offsets must be finite, got {self.offset}")

    @property
    def num_columns(self) -> int:
        """Number of columns the scaler maps."""
        return len(self.columns)

    def transform(self, values: Any) -> np.ndarray:
        """Scale ``values``; see ``transform``."""
        return transform(self, values)

    def inverse_transform(self, values: Any) -> np.ndarray:
        """Undo ``transform``; see ``inverse_transform``."""
        return inverse_transform(self, values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` rebuilds an equal scaler)."""
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "offset": list(self.offset),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scaler":
        """Rebuild a scaler written by ``to_dict``.

        Raises:
            ValueError: fields missing or invalid.
        """
        expected = {"kind", "columns", "offset", "scale"}
        if not isinstance(data, dict) or set(data) != expected:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"a scaler dict needs the keys {sorted(expected)}, got {got}")
        return cls(**data)


def _as_2d(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]  # (time,) -> (time, 1)
    if array.ndim != 2:
        raise ValueError(
            f"values must be (time,) or (time, columns), got shape {array.shape}; pass a 1-D or "
            "2-D array"
        )
    return array


def fit_scaler(values: Any, kind: str = "minmax", columns: Sequence[str] | None = None) -> Scaler:
    """Fit a scaler on training values.

    Args:
        values: ``(time,)`` or ``(time, columns)``; finite.
        kind: ``"minmax"`` (onto ``[0, 1]``), ``"standard"`` (zero mean, unit variance) or
            ``"none"`` (offset 0, scale 1: the values as they are).
        columns: names of the columns; ``None`` names them ``"0"``, ``"1"``, ...

    Returns:
        The fitted ``Scaler``.

    Raises:
        ValueError: unknown kind, no rows, NaN or infinite values, wrong number of names, or
            a constant column (its scale would be zero).

    Example:
        >>> scaler = fit_scaler([1.0, 3.0, 5.0], columns=["x"])
        >>> scaler.transform([1.0, 5.0])[:, 0].tolist()
        [0.0, 1.0]
    """
    check_choice("scaler kind", kind, SCALER_KINDS, fix=_KIND_FIX)
    array = _as_2d(values)
    names = tuple(str(i) for i in range(array.shape[1])) if columns is None else tuple(columns)
    if len(names) != array.shape[1]:
        raise ValueError(
            f"got {len(names)} column names for {array.shape[1]} columns; pass one name per column"
        )
    if array.shape[0] == 0:
        raise ValueError("cannot fit a scaler on 0 rows; pass the training values")
    if not np.all(np.isfinite(array)):
        raise ValueError("values hold NaN or infinite values; clean them before fitting a scaler")
    if kind == "none":
        offset, scale = np.zeros(array.shape[1]), np.ones(array.shape[1])
    elif kind == "minmax":
        offset = array.min(axis=0)
        scale = array.max(axis=0) - offset
    else:
        offset = array.mean(axis=0)
        scale = array.std(axis=0)
    for name, column_scale, column in zip(names, scale, array.T, strict=True):
        if column_scale == 0.0:
            raise ValueError(
                f"constant series: column {name!r} is always {float(column[0])!r}; a scaler would "
                "divide by zero; drop it or choose another target"
            )
    return Scaler(kind=kind, columns=names, offset=tuple(offset), scale=tuple(scale))


def _check_columns(scaler: Scaler, array: np.ndarray) -> None:
    if array.shape[1] != scaler.num_columns:
        raise ValueError(
            f"values have {array.shape[1]} columns, the scaler maps {scaler.num_columns} "
            f"({list(scaler.columns)}); pass values of shape (time, {scaler.num_columns})"
        )


def transform(scaler: Scaler, values: Any) -> np.ndarray:
    """Scale values: ``(x - offset) / scale`` per column, computed in float64.

    Args:
        scaler: the fitted scaler.
        values: ``(time,)`` (one column) or ``(time, columns)``.

    Returns:
        ``(time, columns)`` float32.

    Raises:
        ValueError: wrong number of columns.
    """
    array = _as_2d(values)
    _check_columns(scaler, array)
    offset = np.asarray(scaler.offset)[None, :]  # (1, columns)
    scale = np.asarray(scaler.scale)[None, :]
    with np.errstate(over="ignore"):  # beyond float32: inf, for the caller to report
        return ((array - offset) / scale).astype(np.float32)


def inverse_transform(scaler: Scaler, values: Any) -> np.ndarray:
    """Back to the original units: ``x * scale + offset`` per column, in float64.

    Args:
        scaler: the fitted scaler.
        values: ``(time,)`` (one column) or ``(time, columns)``.

    Returns:
        ``(time, columns)`` float64.

    Raises:
        ValueError: wrong number of columns.
    """
    array = _as_2d(values)
    _check_columns(scaler, array)
    return array * np.asarray(scaler.scale)[None, :] + np.asarray(scaler.offset)[None, :]
