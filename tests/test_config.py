import dataclasses
import re

import pytest

from lstmlab.models import (
    LSTMConfig,
    MLPConfig,
    config_from_dict,
    config_from_json,
    config_to_dict,
    config_to_json,
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
