"""lstmlab: stateful and stateless LSTM forecasting with a compiled JAX core.

The forecasting tool is ``Forecaster`` (defaults in ``ForecasterConfig``); ``LSTMModel`` and
``MLPModel`` mirror Keras for readers of the seed scripts; the functional core (``LSTMConfig``,
``init_params``, ``apply``, ``fit``, ...) is underneath both. Importing lstmlab has no side
effects (no backend switched, no file written, nothing printed).
"""

from lstmlab._version import __version__
from lstmlab.core.layers import LSTMParams, LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    reset_state,
)
from lstmlab.core.rollout import read, rollout
from lstmlab.core.train import (
    History,
    ResetPolicy,
    TrainConfig,
    TrainLog,
    TrainState,
    fit,
    init_train_state,
    init_train_states,
    keras_adam,
)
from lstmlab.forecaster import Forecaster, ForecasterConfig
from lstmlab.keras_models import LSTMModel, MLPModel

__all__ = [
    "Forecaster",
    "ForecasterConfig",
    "History",
    "LSTMConfig",
    "LSTMModel",
    "LSTMParams",
    "LSTMState",
    "MLPConfig",
    "MLPModel",
    "ResetPolicy",
    "TrainConfig",
    "TrainLog",
    "TrainState",
    "__version__",
    "apply",
    "fit",
    "init_params",
    "init_state",
    "init_train_state",
    "init_train_states",
    "keras_adam",
    "read",
    "reset_state",
    "rollout",
]
