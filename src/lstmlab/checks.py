"""Small validators shared across the library; each raises ``ValueError`` naming the fix."""

from typing import Any

import numpy as np

# Names for the shapes ``as_float_array`` expects, so its message can say what it wants.
_SHAPE_NAMES = {
    1: "(time,)",
    2: "(time, features)",
    3: "(samples, time, features)",
    4: "(batches, batch, time, features)",
}


def check_positive_int(name: str, value: Any) -> int:
    """Check that ``value`` is a positive ``int`` (``bool`` is refused although it is an int).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is a bool, not an int, or ``<= 0``.

    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; pass an int >= 1")
    return int(value)


def check_finite(name: str, array: Any) -> None:
    """Check that ``array`` holds no NaN and no infinity.

    Args:
        name: the array's name, used in the message.
        array: an array of any shape.

    Raises:
        ValueError: some value is NaN or infinite; the message counts them and gives the index
            of the first one (in C order).

    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.inexact):
        return  # integers and booleans cannot hold NaN or infinity
    bad = ~np.isfinite(array)
    count = int(np.count_nonzero(bad))
    if count:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} holds {count} NaN or infinite value(s) (first at index {first}); "
            "clean or impute them before training"
        )


def _expected_shape(ndims: tuple[int, ...]) -> str:
    names = [_SHAPE_NAMES.get(d, f"{d} dimensions") for d in ndims]
    return " or ".join(names)


def as_float_array(name: str, array: Any, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Convert ``array`` to a finite float32 NumPy array with the expected number of dimensions.

    Args:
        name: the argument's name, used in messages.
        array: anything ``np.asarray`` takes (arrays, nested lists, pandas objects).
        ndim: the number of dimensions expected, or a tuple of the numbers accepted; e.g. 3 for
            ``(samples, time, features)``.

    Returns:
        A float32 array with ``array``'s shape (a copy only where a conversion was needed).

    Raises:
        ValueError: ``array`` is not numeric, has another number of dimensions, holds NaN or
            infinite values, or holds values beyond the float32 range.

    """
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}; pass a numeric array")
    if array.ndim not in ndims:
        raise ValueError(
            f"{name} must have shape {_expected_shape(ndims)}, got shape {array.shape}; "
            f"reshape it to {_expected_shape(ndims)}"
        )
    check_finite(name, array)
    # A float64 beyond float32's range would become inf in the cast; report it, do not warn.
    with np.errstate(over="ignore"):
        converted = array.astype(np.float32, copy=False)
    overflow = ~np.isfinite(converted)
    if np.any(overflow):
        first = tuple(int(i) for i in np.argwhere(overflow)[0])
        raise ValueError(
            f"{name} holds {int(np.count_nonzero(overflow))} value(s) beyond the float32 range "
            f"(first at index {first}); rescale them before training"
        )
    return converted


def as_float_samples(name: str, array: Any) -> np.ndarray:
    """Convert a samples-first array of any rank to a finite float32 array.

    Args:
        name: the argument's name, used in messages.
        array: ``(samples, ...)``, e.g. ``(samples, time, features)`` windows or
            ``(samples, outputs)`` targets.

    Returns:
        A float32 array with ``array``'s shape.

    Raises:
        ValueError: ``array`` is a scalar, not numeric, or holds NaN, infinite or
            out-of-float32-range values.

    """
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError(
            f"{name} must have a samples axis first, got a scalar ({array!r}); pass (samples, ...)"
        )
    return as_float_array(name, array, ndim=array.ndim)
