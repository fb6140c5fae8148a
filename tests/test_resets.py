import re

import pytest

from lstmlab.train.resets import ResetPolicy, parse_reset


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("epoch", ResetPolicy(at_epoch_end=True, every_batches=None)),
        ("never", ResetPolicy(at_epoch_end=False, every_batches=None)),
        (10, ResetPolicy(at_epoch_end=True, every_batches=10)),
        ("25", ResetPolicy(at_epoch_end=True, every_batches=25)),
    ],
)
def test_parse_reset(value, expected):
    assert parse_reset(value) == expected


def test_describe_reads_like_the_schedule():
    assert parse_reset(10).describe() == "every 10 batches and at epoch end"
    assert parse_reset("never").describe() == "never"


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match=re.escape("got 'weekly'")):
        parse_reset("weekly")
    message = "every_batches must be a positive integer or None, got -2"
    with pytest.raises(ValueError, match=message):
        ResetPolicy(every_batches=-2)
    with pytest.raises(ValueError, match="got True"):
        parse_reset(True)
