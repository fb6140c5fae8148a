import re

import numpy as np
import pytest

from lstmlab import checks
from lstmlab.checks import (
    MAX_SEED,
    MAX_SERIES_ID_LENGTH,
    as_float_array,
    as_float_samples,
    check_bool,
    check_choice,
    check_finite,
    check_fraction,
    check_int_range,
    check_non_negative_int,
    check_positive_int,
    check_positive_ints,
    check_positive_number,
    check_seed,
    check_series_id,
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


def test_check_positive_int_takes_the_fix_of_the_caller():
    with pytest.raises(
        ValueError, match=r"^window must be a positive integer, got 0; pass e\.g\. 6$"
    ):
        check_positive_int("window", 0, fix="pass e.g. 6")


@pytest.mark.parametrize("value", [0, 5, np.int32(2)])
def test_check_non_negative_int_accepts_zero_and_up(value):
    out = check_non_negative_int("seed", value)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [-1, True, 1.0, "0", None])
def test_check_non_negative_int_rejects(value):
    expected = f"seed must be an integer >= 0, got {value!r}; pass an int >= 0"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_non_negative_int("seed", value)


def test_check_int_range_bounds_are_inclusive():
    assert check_int_range("horizon", 1, 1, 5) == 1
    assert check_int_range("horizon", 5, 1, 5) == 5
    for bad in (0, 6, True, 2.0):
        expected = f"horizon must be an integer from 1 to 5, got {bad!r}; pass one in that range"
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            check_int_range("horizon", bad, 1, 5)


def test_check_positive_ints_returns_a_tuple_and_takes_one_int():
    assert check_positive_ints("units", [16, np.int64(8)]) == (16, 8)
    assert check_positive_ints("units", 4) == (4,)


@pytest.mark.parametrize(
    ("values", "shown"), [((), "()"), ([1, 0], "(1, 0)"), ((2, True), "(2, True)"), ("12", "'12'")]
)
def test_check_positive_ints_rejects(values, shown):
    expected = (
        f"units must be a non-empty sequence of positive integers, got {shown}; pass e.g. (1, 2, 3)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_positive_ints("units", values)


def test_check_positive_number():
    assert check_positive_number("learning_rate", 3e-3) == 3e-3
    assert check_positive_number("threshold", 1) == 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "0.1", None):
        expected = f"learning_rate must be > 0, got {bad!r}; pass a number > 0"
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            check_positive_number("learning_rate", bad)


def test_check_fraction_is_open_on_both_ends():
    assert check_fraction("split", 0.67) == 0.67
    for bad in (0, 1, 0.0, 1.0, -0.5, 1.5, True, "0.5", float("nan")):
        expected = f"split must be a fraction strictly between 0 and 1, got {bad!r}; pass e.g. 0.67"
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            check_fraction("split", bad)


def test_check_choice_names_the_choices():
    assert check_choice("scaler", "standard", ("minmax", "standard")) == "standard"
    expected = (
        "scaler must be one of ('minmax', 'standard'), got 'robust'; pass e.g. scaler='minmax'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_choice("scaler", "robust", ("minmax", "standard"))
    with pytest.raises(ValueError, match="got None"):
        check_choice("scaler", None, ("minmax",))


def test_check_bool_refuses_truthy_strings():
    assert check_bool("trim", False) is False
    assert check_bool("trim", np.bool_(True)) is True
    expected = "trim must be True or False, got 'end'; pass trim=True or trim=False"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_bool("trim", "end")
    with pytest.raises(ValueError, match="got 1;"):
        check_bool("trim", 1)


@pytest.mark.parametrize("value", ["a", "meter-7", "Zürich/1 ☃", "x" * MAX_SERIES_ID_LENGTH])
def test_check_series_id_accepts(value):
    assert check_series_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * (MAX_SERIES_ID_LENGTH + 1), 7, None, b"a"])
def test_check_series_id_rejects_empty_long_and_non_strings(value):
    with pytest.raises(
        ValueError, match="^series id must be a non-empty string of at most 200 characters, got "
    ):
        check_series_id(value)


@pytest.mark.parametrize(
    ("value", "index"), [("a\x00b", 1), ("tab\there", 3), ("\nx", 0), ("a\x7f", 1)]
)
def test_check_series_id_rejects_control_characters(value, index):
    expected = (
        f"series id must not hold control characters, got {value!r} (with {value[index]!r} at "
        f"index {index}); pass printable characters only"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_series_id(value)


def test_every_public_check_is_exported():
    public = {n for n in vars(checks) if not n.startswith("_") and callable(getattr(checks, n))}
    public -= {"Any", "Iterable"}
    assert public <= set(checks.__all__)


def test_check_seed_takes_0_to_max_seed_and_names_the_range():
    assert check_seed("--seed", 0) == 0 and check_seed("seed", np.int64(MAX_SEED)) == MAX_SEED
    assert MAX_SEED == 2**31 - 1
    for bad in (-1, MAX_SEED + 1, 1180591620717411303424, 1.0, True, "3"):
        with pytest.raises(ValueError) as info:
            check_seed("--seed", bad)
        assert str(info.value).startswith(
            "--seed must be an integer from 0 to 2147483647, got "
        ) and str(info.value).endswith("; pass a smaller seed, e.g. 0")


def test_check_seed_keeps_a_run_of_seeds_within_max_seed():
    # every seed of the run must fit jax.random.key without x64 (2**32 would alias seed 0)
    # and an int32 program argument: the last one, seed + count - 1, is at most MAX_SEED
    assert check_seed("seed", MAX_SEED - 4, count=5) == MAX_SEED - 4
    assert check_seed("seed", 0, count=MAX_SEED + 1) == 0
    with pytest.raises(ValueError) as info:
        check_seed("seed", MAX_SEED - 3, count=5)
    assert str(info.value) == (
        "seed must be an integer from 0 to 2147483643 (with 5 seeds the last, seed + 4, must be "
        "at most 2147483647), got 2147483644; pass a smaller seed, e.g. 0"
    )
    with pytest.raises(ValueError, match=r"^a run of 2147483649 seeds \(seed to seed \+ 2147483"):
        check_seed("seed", 0, count=MAX_SEED + 2)
