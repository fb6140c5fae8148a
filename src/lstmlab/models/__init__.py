"""Model configs, parameters, forward passes and state (``init_params``, ``apply``, ...)."""

from lstmlab.models.config import (
    LSTMConfig,
    MLPConfig,
    ModelConfig,
    config_from_dict,
    config_from_json,
    config_to_dict,
    config_to_json,
)
from lstmlab.models.core import apply, from_keras_weights, init_params, to_keras_weights
from lstmlab.models.mlp import MLPParams
from lstmlab.models.stacked import StackedParams
from lstmlab.models.state import ModelState, init_state, reset_state, state_batch_size

__all__ = [
    "LSTMConfig",
    "MLPConfig",
    "MLPParams",
    "ModelConfig",
    "ModelState",
    "StackedParams",
    "apply",
    "config_from_dict",
    "config_from_json",
    "config_to_dict",
    "config_to_json",
    "from_keras_weights",
    "init_params",
    "init_state",
    "reset_state",
    "state_batch_size",
    "to_keras_weights",
]
