"""lstmlab: stateful and stateless LSTM forecasting with a compiled JAX core."""

from lstmlab.core.layers import LSTMParams, LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    reset_state,
)
from lstmlab.core.train import (
    History,
    ResetPolicy,
    TrainConfig,
    TrainState,
    fit,
    init_train_state,
    keras_adam,
)
from lstmlab.keras_models import LSTMModel, MLPModel

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
