"""lstmlab: stateful and stateless LSTM forecasting with a compiled JAX core."""

from lstmlab.forecaster import LSTMModel, MLPModel
from lstmlab.layers.lstm import LSTMParams, LSTMState
from lstmlab.models import (
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    reset_state,
)
from lstmlab.train.loop import History, TrainConfig, TrainState, fit, init_train_state
from lstmlab.train.optim import keras_adam
from lstmlab.train.resets import ResetPolicy

__version__ = "0.1.0"

__all__ = [
    "History",
    "LSTMConfig",
    "LSTMModel",
    "LSTMParams",
    "LSTMState",
    "MLPConfig",
    "MLPModel",
    "ResetPolicy",
    "TrainConfig",
    "TrainState",
    "__version__",
    "apply",
    "fit",
    "init_params",
    "init_state",
    "init_train_state",
    "keras_adam",
    "reset_state",
]
