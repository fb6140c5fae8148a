"""lstmlab: stateful and stateless LSTM forecasting with a compiled JAX core.

The forecasting tool is ``Forecaster`` (defaults in ``ForecasterConfig``); ``LSTMModel`` and
``MLPModel`` mirror Keras for readers of the seed scripts; the functional core (``LSTMConfig``,
``init_params``, ``apply``, ``fit``, ...) is underneath both. Importing lstmlab has no side
effects (no backend switched, no file written, nothing printed).

The names are loaded on first use (PEP 562's module ``__getattr__``): ``import lstmlab``, a
light submodule (``lstmlab.live.state_store``) and ``lstmlab --version`` do not import JAX or
pandas; ``lstmlab.Forecaster`` imports what it needs the first time it is read.
"""

import importlib
from typing import TYPE_CHECKING, Any

from lstmlab._version import __version__

if TYPE_CHECKING:  # the names as type checkers and IDEs see them (nothing runs here)
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

# Each exported name and the module that defines it: read on first use (``__getattr__``).
_SOURCES = {
    "LSTMParams": "lstmlab.core.layers",
    "LSTMState": "lstmlab.core.layers",
    "LSTMConfig": "lstmlab.core.model",
    "MLPConfig": "lstmlab.core.model",
    "apply": "lstmlab.core.model",
    "init_params": "lstmlab.core.model",
    "init_state": "lstmlab.core.model",
    "reset_state": "lstmlab.core.model",
    "read": "lstmlab.core.rollout",
    "rollout": "lstmlab.core.rollout",
    "History": "lstmlab.core.train",
    "ResetPolicy": "lstmlab.core.train",
    "TrainConfig": "lstmlab.core.train",
    "TrainLog": "lstmlab.core.train",
    "TrainState": "lstmlab.core.train",
    "fit": "lstmlab.core.train",
    "init_train_state": "lstmlab.core.train",
    "init_train_states": "lstmlab.core.train",
    "keras_adam": "lstmlab.core.train",
    "Forecaster": "lstmlab.forecaster",
    "ForecasterConfig": "lstmlab.forecaster",
    "LSTMModel": "lstmlab.keras_models",
    "MLPModel": "lstmlab.keras_models",
}


def __getattr__(name: str) -> Any:
    """The exported ``name``, imported from its module the first time it is read."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'lstmlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value  # later reads skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
