"""When a stateful model's recurrent state is zeroed during training."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class ResetPolicy:
    """Reset schedule for stateful training.

    Attributes:
        at_epoch_end: zero the state after every epoch (the seed's ``model.reset_states()``).
        every_batches: also zero it before every ``every_batches``-th batch of an epoch
            (counted from the epoch's first batch); ``None`` for no mid-epoch resets.
    """

    at_epoch_end: bool = True
    every_batches: int | None = None

    def __post_init__(self) -> None:
        n = self.every_batches
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
            raise ValueError(
                f"every_batches must be a positive integer or None, got {n!r}; "
                "pass e.g. reset=10 to reset every 10 batches"
            )

    def describe(self) -> str:
        """A short human description, e.g. ``"every 10 batches and at epoch end"``."""
        parts = []
        if self.every_batches is not None:
            parts.append(f"every {self.every_batches} batches")
        if self.at_epoch_end:
            parts.append("at epoch end")
        return " and ".join(parts) if parts else "never"


def parse_reset(value: "str | int | ResetPolicy") -> ResetPolicy:
    """Read a reset policy from ``"epoch"``, ``"never"``, an int N (every N batches) or a policy.

    Args:
        value: the user's choice.

    Returns:
        A ``ResetPolicy``. An int N means every N batches and at epoch end.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(value, ResetPolicy):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return ResetPolicy(at_epoch_end=True, every_batches=value)
    if value == "epoch":
        return ResetPolicy(at_epoch_end=True)
    if value == "never":
        return ResetPolicy(at_epoch_end=False)
    if isinstance(value, str) and value.isdigit():
        return ResetPolicy(at_epoch_end=True, every_batches=int(value))
    raise ValueError(
        f"reset must be 'epoch', 'never' or a positive number of batches, got {value!r}"
    )
