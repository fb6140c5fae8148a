"""The validators shared across lstmlab; each raises ``ValueError`` naming the fix.

Every check of an argument that more than one module takes lives here, so the same value is
refused with the same words on the command line, in the Python API and over HTTP:

- integers: ``check_positive_int``, ``check_non_negative_int``, ``check_int_range``,
  ``check_positive_ints``, ``check_seed``;
- numbers: ``check_positive_number``, ``check_fraction``;
- names and flags: ``check_choice``, ``check_bool``, ``check_series_id``;
- arrays: ``check_finite``, ``as_float_array``, ``as_float_samples``.

Each check returns the value it accepted (NumPy integers become ``int``), so a frozen
dataclass can store the normalised value in ``__post_init__``.
"""

import math
import unicodedata
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "MAX_SEED",
    "MAX_SERIES_ID_LENGTH",
    "as_float_array",
    "as_float_samples",
    "check_at_most",
    "check_bool",
    "check_choice",
    "check_finite",
    "FLOAT32_MAX",
    "check_fraction",
    "check_learning_rate",
    "printable",
    "check_int_range",
    "check_non_negative_int",
    "check_positive_int",
    "check_positive_ints",
    "check_positive_number",
    "check_seed",
    "check_series_id",
]

MAX_SERIES_ID_LENGTH = 200
"""The longest series id, in characters (the command line, the Python API and HTTP agree)."""

MAX_SEED = 2**31 - 1
"""The largest seed: every seed of a run (``seed`` to ``seed + seeds - 1``) fits every
consumer: the compiled programs' int32 seed arguments (``init_params``, the
moving-average experiment), ``jax.random.key`` (which keeps only the low 32 bits of a larger
seed without x64: ``2**32`` would give seed 0's key) and NumPy's generators (0 to
``2**32 - 1``)."""

# Names for the shapes ``as_float_array`` expects, so its message can say what it wants.
_SHAPE_NAMES = {
    1: "(time,)",
    2: "(time, features)",
    3: "(samples, time, features)",
    4: "(batches, batch, time, features)",
}


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but True is never meant as a count.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_positive_int(name: str, value: Any, *, fix: str = "pass an int >= 1") -> int:
    """Check that ``value`` is a positive ``int`` (``bool`` is refused although it is an int).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        fix: the end of the message, saying what to pass instead.

    Returns:
        ``value`` as an ``int``.

    Raises:
        ValueError: ``value`` is a bool, not an int, or ``<= 0``.

    Example:
        >>> check_positive_int("epochs", 3)
        3
    """
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; {fix}")
    return int(value)


def check_non_negative_int(name: str, value: Any, *, fix: str = "pass an int >= 0") -> int:
    """Check that ``value`` is an ``int`` ``>= 0`` (a seed, an epoch count that may be zero).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        fix: the end of the message, saying what to pass instead.

    Returns:
        ``value`` as an ``int``.

    Raises:
        ValueError: ``value`` is a bool, not an int, or negative.
    """
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}; {fix}")
    return int(value)


def check_at_most(name: str, value: int, limit: int, *, fix: str) -> int:
    """Check that ``value``, an ``int`` already checked as such, is at most ``limit``.

    The upper bound of a count that has no other (epochs, readings per request), with the
    command line's words for its flags.

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        limit: the largest value accepted.
        fix: the end of the message, saying what to pass instead.

    Returns:
        ``value``.

    Raises:
        ValueError: ``value > limit``.

    Example:
        >>> check_at_most("epochs", 200, 1_000_000, fix="pass fewer epochs")
        200
    """
    if value > limit:
        raise ValueError(f"{name} must be at most {limit}, got {value!r}; {fix}")
    return value


def check_int_range(name: str, value: Any, low: int, high: int) -> int:
    """Check that ``value`` is an ``int`` with ``low <= value <= high`` (e.g. a horizon).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        low: the smallest value accepted.
        high: the largest value accepted.

    Returns:
        ``value`` as an ``int``.

    Raises:
        ValueError: ``value`` is a bool, not an int, or outside ``[low, high]``.
    """
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(
            f"{name} must be an integer from {low} to {high}, got {value!r}; pass one in that range"
        )
    return int(value)


def check_seed(name: str, value: Any, *, count: int = 1) -> int:
    """Check that ``value`` is a seed: an ``int`` from 0 to ``MAX_SEED``.

    The one seed rule of the command line and the configurations.

    Args:
        name: the argument's name, used in the message (e.g. ``--seed``).
        value: the value to check.
        count: the seeds a run uses, ``value`` to ``value + count - 1``: all of them must
            be at most ``MAX_SEED``.

    Returns:
        ``value`` as an ``int``.

    Raises:
        ValueError: ``value`` is a bool, not an int, negative, or ``value + count - 1`` is
            above ``MAX_SEED`` (every ``value`` is, for a ``count`` above ``MAX_SEED + 1``).

    Example:
        >>> check_seed("seed", 7)
        7
    """
    if count > MAX_SEED + 1:
        raise ValueError(
            f"a run of {count} seeds ({name} to {name} + {count - 1}) cannot stay within 0 to "
            f"{MAX_SEED}; pass at most {MAX_SEED + 1} seeds"
        )
    high = MAX_SEED - max(int(count), 1) + 1
    if not _is_int(value) or not 0 <= value <= high:
        runs = (
            ""
            if high == MAX_SEED
            else f" (with {count} seeds the last, {name} + {count - 1}, must be at most {MAX_SEED})"
        )
        raise ValueError(
            f"{name} must be an integer from 0 to {high}{runs}, got {value!r:.40}; pass a "
            "smaller seed, e.g. 0"
        )
    return int(value)


def check_positive_ints(name: str, values: Any) -> tuple[int, ...]:
    """Check that ``values`` is a non-empty sequence of positive ints (units, a grid axis).

    A single int is taken as a sequence of one.

    Args:
        name: the argument's name, used in the message.
        values: an int or an iterable of ints.

    Returns:
        The values as a tuple of ``int``.

    Raises:
        ValueError: ``values`` is empty, not iterable, or holds something other than a
            positive int.

    Example:
        >>> check_positive_ints("units", [16, 8])
        (16, 8)
    """
    if _is_int(values):
        values = (values,)
    try:
        items = tuple(values)
    except TypeError:
        items = None
    if isinstance(values, str) or not items or not all(_is_int(v) and v > 0 for v in items):
        shown = items if items is not None and not isinstance(values, str) else values
        raise ValueError(
            f"{name} must be a non-empty sequence of positive integers, got {shown!r}; pass "
            "e.g. (1, 2, 3)"
        )
    return tuple(int(v) for v in items)


def check_positive_number(name: str, value: Any, *, fix: str = "pass a number > 0") -> float:
    """Check that ``value`` is a finite real number ``> 0`` (a learning rate, a threshold).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        fix: the end of the message, saying what to pass instead.

    Returns:
        ``value`` as a ``float``.

    Raises:
        ValueError: ``value`` is a bool, not a real number, not finite, or ``<= 0``.
    """
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be > 0, got {value!r}; {fix}")
    return float(value)


def printable(text: str) -> str:
    r"""``text`` as it may reach a terminal: its invisible characters escaped, the rest as is.

    Control and format characters (a bidirectional override such as U+202E, a zero-width
    space U+200B) would reorder or hide what a terminal shows; they print as ``\u202e``.

    Example:
        >>> printable("sensor-1"), printable("a\u202eb\u200b")
        ('sensor-1', 'a\\u202eb\\u200b')
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_learning_rate(value: Any) -> float:
    """Check a learning rate: a finite number ``> 0`` that float32, the training's type, holds.

    A rate beyond float32 becomes ``inf`` in the optimizer, and every weight NaN.

    Example:
        >>> check_learning_rate(3e-3)
        0.003
        >>> check_learning_rate(1e300)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: learning_rate must be at most 3.4e+38 (float32, ...), got 1e+300; ...
    """
    rate = check_positive_number("learning_rate", value, fix="pass e.g. 3e-3")
    if rate > FLOAT32_MAX:
        raise ValueError(
            f"learning_rate must be at most {FLOAT32_MAX:.2g} (float32, the training's type), "
            f"got {value!r}; pass e.g. 3e-3"
        )
    return rate


def check_fraction(name: str, value: Any, *, fix: str = "pass e.g. 0.67") -> float:
    """Check that ``value`` is a number strictly between 0 and 1 (a split, a quantile).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        fix: the end of the message, saying what to pass instead.

    Returns:
        ``value`` as a ``float``.

    Raises:
        ValueError: ``value`` is a bool, not a real number, or not in ``(0, 1)``.
    """
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not 0 < value < 1
    ):
        raise ValueError(
            f"{name} must be a fraction strictly between 0 and 1, got {value!r}; {fix}"
        )
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[str], *, fix: str | None = None) -> str:
    """Check that ``value`` is one of the names in ``choices``.

    Args:
        name: the argument's name, used in the message.
        value: the value to check.
        choices: the names accepted, in the order the message lists them.
        fix: the end of the message; by default ``pass e.g. NAME='FIRST CHOICE'``.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not one of ``choices``.

    Example:
        >>> check_choice("scaler", "minmax", ("minmax", "standard"))
        'minmax'
    """
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        fix = fix or f"pass e.g. {name}={choices[0]!r}"
        raise ValueError(f"{name} must be one of {choices}, got {value!r}; {fix}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (a truthy string is not a yes).

    Args:
        name: the argument's name, used in the message.
        value: the value to check.

    Returns:
        ``value`` as a ``bool``.

    Raises:
        ValueError: ``value`` is not a bool.
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(
            f"{name} must be True or False, got {value!r}; pass {name}=True or {name}=False"
        )
    return bool(value)


def check_series_id(value: Any, *, name: str = "series id") -> str:
    """Check a series id: a non-empty string of at most 200 characters, no control characters.

    The one rule for ids, whether they come from ``--series``, ``Forecaster.observe`` or an
    HTTP path, so an id accepted by one entry point is accepted by all of them.

    Args:
        value: the id to check.
        name: how the message names it.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not a string, is empty, is longer than
            ``MAX_SERIES_ID_LENGTH`` characters, or holds a control character (such as NUL,
            a tab or a newline).

    Example:
        >>> check_series_id("meter-7")
        'meter-7'
    """
    if not isinstance(value, str) or not value or len(value) > MAX_SERIES_ID_LENGTH:
        raise ValueError(
            f"{name} must be a non-empty string of at most {MAX_SERIES_ID_LENGTH} characters, "
            f"got {value!r:.80}; pass a shorter name such as 'meter-7'"
        )
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValueError(
            f"{name} must not hold control characters, got {value!r:.80} (with {bad!r} at "
            f"index {value.index(bad)}); pass printable characters only"
        )
    return value


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
