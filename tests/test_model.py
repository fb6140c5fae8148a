import dataclasses
import re

import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    config_from_dict,
    config_from_json,
    config_to_dict,
    config_to_json,
    init_state,
    reset_state,
)


def test_configs_are_frozen_and_hashable():
    config = LSTMConfig(units=[20, 10])
    assert config.units == (20, 10)
    assert hash(config) == hash(LSTMConfig(units=(20, 10)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.units = (1,)


@pytest.mark.parametrize("config", [LSTMConfig(units=(8, 4), timesteps=3), MLPConfig(hidden=(5,))])
def test_json_round_trip(config):
    assert config_from_json(config_to_json(config)) == config


def test_bad_values_name_the_problem_and_the_fix():
    with pytest.raises(ValueError, match=re.escape("units[1] must be a positive integer, got 0")):
        LSTMConfig(units=(4, 0))
    with pytest.raises(ValueError, match=re.escape("timesteps must be a positive integer, got -1")):
        LSTMConfig(timesteps=-1)
    with pytest.raises(ValueError, match=re.escape("units must name at least one LSTM layer")):
        LSTMConfig(units=())


def test_newer_format_and_unknown_fields_are_refused():
    data = config_to_dict(LSTMConfig())
    with pytest.raises(ValueError, match="format_version 99, this lstmlab reads up to 1"):
        config_from_dict({**data, "format_version": 99})
    with pytest.raises(ValueError, match=re.escape("unknown lstm config fields ['dropout']")):
        config_from_dict({**data, "dropout": 0.1})
    with pytest.raises(ValueError, match="model kind must be one of"):
        config_from_dict({**data, "kind": "gru"})


def filled_state():
    return tuple(
        LSTMState(h=jnp.full((2, units), 1.0 + i), c=jnp.full((2, units), -1.0 - i))
        for i, units in enumerate((3, 5))
    )


def test_init_state_has_one_zero_pair_per_layer():
    state = init_state(LSTMConfig(units=(3, 5)), batch_size=2)
    assert [s.h.shape for s in state] == [(2, 3), (2, 5)]
    assert all(float(jnp.abs(leaf).sum()) == 0 for s in state for leaf in s)
    assert init_state(MLPConfig(), 4) == ()


def test_reset_all_layers_returns_zeros_and_leaves_input_untouched():
    state = filled_state()
    cleared = reset_state(state)
    assert all(float(jnp.abs(leaf).sum()) == 0 for s in cleared for leaf in s)
    assert float(state[0].h[0, 0]) == 1.0


def test_reset_one_layer_keeps_the_other():
    state = filled_state()
    cleared = reset_state(state, layers=1)
    np.testing.assert_array_equal(cleared[0].h, state[0].h)
    assert float(jnp.abs(cleared[1].c).sum()) == 0
    assert float(jnp.abs(reset_state(state, layers=-1)[1].h).sum()) == 0


def test_bad_layer_and_batch_size_are_refused():
    with pytest.raises(ValueError, match=re.escape("layer 2 does not exist: the model has 2")):
        reset_state(filled_state(), layers=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        init_state(LSTMConfig(), 0)


def test_a_layer_of_a_model_without_recurrent_layers_is_refused_plainly():
    assert reset_state(()) == ()
    message = "layer 0 does not exist: the model has no recurrent layers (an MLP); pass layers=None"
    with pytest.raises(ValueError, match=re.escape(message)):
        reset_state((), layers=0)
