"""Frozen model descriptions. Hashable, so a config can be a static argument of ``jax.jit``."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from lstmlab.data.checks import check_positive_int

FORMAT_VERSION = 1


def _as_int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        units = tuple(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a tuple of positive integers, got {value!r}; pass e.g. (20,)"
        ) from None
    return tuple(check_positive_int(f"{name}[{i}]", u) for i, u in enumerate(units))


@dataclass(frozen=True, kw_only=True, slots=True)
class LSTMConfig:
    """A stack of LSTM layers with a Dense head, as Keras' ``Sequential([LSTM, ..., Dense])``.

    Attributes:
        units: hidden units per LSTM layer; all but the last return sequences.
        timesteps: time steps per sample the model is trained on (Keras' ``input_shape[0]``).
        features: inputs per time step.
        outputs: Dense head outputs.
        stateful: carry the recurrent state across batches (Keras ``stateful=True``).
        return_sequences: the last LSTM layer returns every step and the head predicts
            ``(batch, time, outputs)``; otherwise only the last step, ``(batch, outputs)``.
    """

    units: tuple[int, ...] = (20,)
    timesteps: int = 1
    features: int = 1
    outputs: int = 1
    stateful: bool = True
    return_sequences: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _as_int_tuple("units", self.units))
        if not self.units:
            raise ValueError("units must name at least one LSTM layer, got (); pass e.g. (20,)")
        for name in ("timesteps", "features", "outputs"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))

    @property
    def kind(self) -> str:
        """``"lstm"``."""
        return "lstm"

    @property
    def num_layers(self) -> int:
        """Number of LSTM layers."""
        return len(self.units)


@dataclass(frozen=True, kw_only=True, slots=True)
class MLPConfig:
    """A plain multilayer network on a flattened window: ``Flatten, Dense(h)..., Dense(out)``.

    Attributes:
        hidden: units of each hidden Dense layer (ReLU).
        timesteps: window length.
        features: inputs per time step.
        outputs: outputs of the final linear layer.
    """

    hidden: tuple[int, ...] = (32,)
    timesteps: int = 1
    features: int = 1
    outputs: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _as_int_tuple("hidden", self.hidden))
        for name in ("timesteps", "features", "outputs"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))

    @property
    def kind(self) -> str:
        """``"mlp"``."""
        return "mlp"

    @property
    def stateful(self) -> bool:
        """An MLP has no recurrent state."""
        return False

    @property
    def num_layers(self) -> int:
        """Number of recurrent layers (none)."""
        return 0


ModelConfig = LSTMConfig | MLPConfig
_KINDS: dict[str, type] = {"lstm": LSTMConfig, "mlp": MLPConfig}


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-ready dict with ``kind`` and ``format_version``.

    Args:
        config: a model config.

    Returns:
        A dict that ``config_from_dict`` turns back into an equal config.
    """
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"format_version": FORMAT_VERSION, "kind": config.kind, **fields}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config written by ``config_to_dict``.

    Args:
        data: the dict.

    Returns:
        The config.

    Raises:
        ValueError: unknown kind, newer format, or unknown fields.
    """
    data = dict(data)
    version = data.pop("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"model config has format_version {version}, this lstmlab reads up to "
            f"{FORMAT_VERSION}; upgrade lstmlab"
        )
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"model kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cls = _KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {kind} config fields {unknown}; known fields: {sorted(known)}")
    return cls(**data)


def config_to_json(config: ModelConfig) -> str:
    """Serialise a config to JSON text (see ``config_to_dict``)."""
    return json.dumps(config_to_dict(config), indent=2, sort_keys=True)


def config_from_json(text: str) -> ModelConfig:
    """Parse JSON text written by ``config_to_json``."""
    return config_from_dict(json.loads(text))
