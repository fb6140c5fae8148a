import re

import numpy as np
import pytest

from lstmlab.checks import (
    as_float_array,
    as_float_samples,
    check_finite,
    check_positive_int,
)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_positive_int_returns_the_int(value):
    out = check_positive_int("batch_size", value)
    assert out == int(value)
    assert type(out) is int


@pytest.mark.parametrize("value", [0, -2, True, False, 2.0, "3", None])
def test_check_positive_int_rejects(value):
    expected = f"batch_size must be a positive integer, got {value!r}; pass an int >= 1"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_positive_int("batch_size", value)


def test_check_finite_counts_and_locates_the_first_bad_value():
    x = np.zeros((6, 2, 3))
    x[4, 0, 0] = np.nan
    x[4, 1, 2] = np.inf
    x[5, 0, 1] = -np.inf
    expected = (
        "x holds 3 NaN or infinite value(s) (first at index (4, 0, 0)); "
        "clean or impute them before training"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_finite("x", x)


def test_check_finite_passes_finite_and_integer_arrays():
    # both calls must return without raising; the failing path is proven above
    assert check_finite("x", np.arange(5.0)) is None
    assert check_finite("x", np.arange(5)) is None


def test_as_float_array_converts_to_float32_keeping_values():
    out = as_float_array("values", [[1, 2], [3, 4]], ndim=2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))


def test_as_float_array_accepts_one_of_several_ndims():
    np.testing.assert_array_equal(as_float_array("v", np.arange(3), ndim=(1, 2)), [0.0, 1.0, 2.0])


def test_as_float_array_names_the_expected_shape():
    expected = (
        "x must have shape (samples, time, features), got shape (4, 3); "
        "reshape it to (samples, time, features)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        as_float_array("x", np.zeros((4, 3)), ndim=3)


def test_as_float_array_names_every_accepted_shape():
    with pytest.raises(ValueError, match=re.escape("must have shape (time,) or (time, features)")):
        as_float_array("values", np.zeros((2, 2, 2)), ndim=(1, 2))


def test_as_float_array_rejects_nan():
    with pytest.raises(ValueError, match=re.escape("x holds 1 NaN or infinite value(s) (first at")):
        as_float_array("x", [1.0, np.nan], ndim=1)


def test_as_float_array_rejects_values_beyond_float32():
    expected = (
        "x holds 1 value(s) beyond the float32 range (first at index (1,)); "
        "rescale them before training"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        as_float_array("x", np.array([1.0, 1e300]), ndim=1)


def test_as_float_array_rejects_text():
    with pytest.raises(ValueError, match=re.escape("x must hold numbers, got dtype <U1")):
        as_float_array("x", ["a", "b"], ndim=1)


def test_as_float_samples_keeps_any_rank_and_rejects_scalars():
    out = as_float_samples("y", np.arange(12).reshape(2, 3, 2))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(12).reshape(2, 3, 2))
    with pytest.raises(
        ValueError, match=re.escape("y must have a samples axis first, got a scalar")
    ):
        as_float_samples("y", 3.0)
