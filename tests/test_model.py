import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.layers import LSTMState
from lstmlab.core.model import (
    NORM_EPS,
    NORMS,
    TRACED_NORM,
    LSTMConfig,
    MLPConfig,
    apply,
    apply_mlp,
    apply_stacked,
    config_from_dict,
    config_from_json,
    config_to_dict,
    config_to_json,
    init_mlp,
    init_params,
    init_stacked,
    init_state,
    norm_code,
    norm_program,
    reset_state,
)
from lstmlab.core.rollout import rollout


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


# --------------------------------------------------------------------------- initialisation


INIT_CASES = [
    LSTMConfig(units=(20,)),
    LSTMConfig(units=(7, 5), features=3, outputs=2, timesteps=4, stateful=False),
    MLPConfig(hidden=(8, 3), timesteps=3, features=2),
]


@pytest.mark.parametrize("config", INIT_CASES)
@pytest.mark.parametrize("seed", [0, 1987, -5, 2**40])
def test_compiled_init_gives_the_eager_initialisers_values_bit_for_bit(config, seed):
    # The reference: the initialisers run op by op, outside any jit.
    init = init_stacked if isinstance(config, LSTMConfig) else init_mlp
    expected = jax.tree.leaves(init(config, jax.random.key(seed)))
    for key in (seed, np.int64(seed), jax.random.key(seed)):
        got = jax.tree.leaves(init_params(config, key))
        assert len(got) == len(expected)
        for leaf, reference in zip(got, expected, strict=True):
            assert leaf.dtype == reference.dtype == jnp.float32
            if jax.default_backend() == "cpu":
                assert np.asarray(leaf).tobytes() == np.asarray(reference).tobytes()
            else:  # a GPU's QR inside and outside jit may round differently
                np.testing.assert_allclose(np.asarray(leaf), np.asarray(reference), atol=1e-5)
    # and another seed gives other weights
    other = jax.tree.leaves(init_params(config, seed + 1))
    assert not np.array_equal(np.asarray(other[0]), np.asarray(expected[0]))


def test_models_of_one_shape_share_one_compiled_init():
    from lstmlab.core import model as core_model

    core_model._init_from_seed.clear_cache()
    base = LSTMConfig(units=(9,), features=2)
    variants = [
        base,
        dataclasses.replace(base, stateful=False),
        dataclasses.replace(base, timesteps=5, norm="window"),
        dataclasses.replace(base, return_sequences=True, timesteps=3),
    ]
    first = init_params(variants[0], 4)
    for variant in variants[1:]:
        for got, reference in zip(
            jax.tree.leaves(init_params(variant, 4)), jax.tree.leaves(first), strict=True
        ):
            assert np.array_equal(got, reference)
    assert core_model._init_from_seed._cache_size() == 1
    init_params(LSTMConfig(units=(9,), features=3), 4)  # another shape: another program
    assert core_model._init_from_seed._cache_size() == 2


def test_init_state_is_zero_for_every_layer_and_refuses_a_bad_batch_size():
    state = init_state(LSTMConfig(units=(6, 3)), 4)
    assert [(s.h.shape, s.c.shape) for s in state] == [((4, 6), (4, 6)), ((4, 3), (4, 3))]
    assert all(s.h.dtype == s.c.dtype == jnp.float32 for s in state)
    assert all(not np.any(np.asarray(part)) for s in state for part in s)
    with pytest.raises(ValueError, match="batch_size"):
        init_state(LSTMConfig(units=(6,)), 0)


# --------------------------------------------------------------------------- input normalisation


def random_params(config, seed=0):
    """Random weights of the model's shapes, drawn in NumPy: nothing symmetric or constant."""
    shapes = jax.eval_shape(lambda: init_params(config, 0))
    rng = np.random.default_rng(200 + seed)
    return jax.tree.map(
        lambda leaf: jnp.asarray(rng.normal(0.0, 0.5, leaf.shape), jnp.float32), shapes
    )


def random_state(config, rows, seed=1):
    if not config.stateful:
        return init_state(config, rows)
    rng = np.random.default_rng(seed)
    return tuple(
        LSTMState(
            h=jnp.asarray(rng.uniform(-0.5, 0.5, (rows, u)), jnp.float32),
            c=jnp.asarray(rng.uniform(-0.5, 0.5, (rows, u)), jnp.float32),
        )
        for u in config.units
    )


WINDOW = 4
ROWS = 3
NORM_MODELS = {
    "stateless": LSTMConfig(units=(5,), timesteps=WINDOW, features=2, outputs=3, stateful=False),
    "stacked": LSTMConfig(units=(4, 3), timesteps=WINDOW, features=2, outputs=1, stateful=True),
    "mlp": MLPConfig(hidden=(6,), timesteps=WINDOW, features=2, outputs=2),
}


def windows(seed=0):
    """``(rows, window, 2)``: a target far from zero with a different level per row, and a
    covariate the normalisation must leave alone."""
    rng = np.random.default_rng(seed)
    target = rng.normal(0.0, 0.7, (ROWS, WINDOW)) + np.array([[3.0], [-2.0], [8.0]])
    covariate = rng.uniform(-1.0, 1.0, (ROWS, WINDOW))
    return np.stack([target, covariate], axis=2).astype(np.float32)


def normalise_by_hand(x, norm, ddof=0):
    """NumPy (float64): the normalised window, and the shift and scale that map outputs back."""
    x = np.asarray(x, np.float64)
    target = x[:, :, 0]
    if norm == "difference":
        shift, scale = target[:, -1:], np.ones((x.shape[0], 1))
    else:
        shift = target.mean(axis=1, keepdims=True)
        scale = target.std(axis=1, ddof=ddof, keepdims=True) + NORM_EPS
    normed = x.copy()
    normed[:, :, 0] = (target - shift) / scale
    return normed.astype(np.float32), shift, scale


def by_hand(config, params, state, x, norm, ddof=0):
    """The raw network (norm='none') on a hand-normalised window, mapped back in NumPy."""
    normed, shift, scale = normalise_by_hand(x, norm, ddof)
    raw = dataclasses.replace(config, norm="none")
    y, new_state = apply(raw, params, state, jnp.asarray(normed))
    return np.asarray(y, np.float64) * scale + shift, new_state


@pytest.mark.parametrize("norm", ["difference", "window"])
@pytest.mark.parametrize("model", sorted(NORM_MODELS))
def test_apply_normalises_the_target_column_of_each_window(model, norm):
    config = dataclasses.replace(NORM_MODELS[model], norm=norm)
    params, state, x = random_params(config), random_state(config, ROWS), windows()
    y, new_state = apply(config, params, state, jnp.asarray(x))
    expected, expected_state = by_hand(config, params, state, x, norm)
    assert y.shape == (ROWS, config.outputs)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6, atol=1e-6)
    # A stateful model carries its state through the normalised window unchanged.
    for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(expected_state), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)
    # The reference can fail: the raw network, or a sample standard deviation, differ.
    plain, _ = apply(dataclasses.replace(config, norm="none"), params, state, jnp.asarray(x))
    assert not np.allclose(np.asarray(plain), expected, atol=1e-2)
    if norm == "window":
        sample_std, _ = by_hand(config, params, state, x, norm, ddof=1)
        assert not np.allclose(np.asarray(y), sample_std, rtol=1e-4, atol=1e-4)


def test_the_none_path_is_the_raw_network_bit_for_bit():
    for config in NORM_MODELS.values():
        params, state, x = random_params(config), random_state(config, ROWS), jnp.asarray(windows())
        raw = apply_stacked if config.kind == "lstm" else apply_mlp
        np.testing.assert_array_equal(
            apply(config, params, state, x)[0], raw(config, params, state, x)[0]
        )


@pytest.mark.parametrize("model", sorted(NORM_MODELS))
def test_the_program_of_every_norm_applies_each_norms_own_arithmetic(model):
    # One compiled program serves every norm (norm_program), the norm passed in as a code:
    # under jit, as training and serving run it, it equals each norm's own model.
    base = NORM_MODELS[model]
    program = norm_program(base)
    assert program.norm == TRACED_NORM and norm_program(program) == program
    params, state, x = random_params(base), random_state(base, ROWS), jnp.asarray(windows())
    traced = jax.jit(lambda p, s, x, code: apply(program, p, s, x, code))
    for norm in NORMS:
        config = dataclasses.replace(base, norm=norm)
        want = jax.jit(lambda p, s, x, c=config: apply(c, p, s, x))(params, state, x)
        got = traced(params, state, x, norm_code(config))
        # none and difference: the same operations, bit for bit; window: a reduction XLA may
        # fuse otherwise (float32 rounding)
        tolerance = 0 if norm != "window" else 1e-6
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tolerance, atol=0)
    # the code matters: another norm's code gives another output
    other = traced(params, state, x, norm_code(dataclasses.replace(base, norm="difference")))
    assert not np.allclose(np.asarray(other[0]), np.asarray(traced(params, state, x, 0)[0]))
    with pytest.raises(ValueError, match="applies the norm it is given"):
        apply(program, params, state, x)
    # A model that reads single steps or returns sequences keeps its own program.
    assert norm_program(dataclasses.replace(base, timesteps=1, norm="none")).norm == "none"


def dyadic_windows():
    """Windows on a 1/64 grid in [0, 2): adding 32 or multiplying by 4 is exact in float32."""
    rng = np.random.default_rng(7)
    target = rng.integers(0, 128, (ROWS, WINDOW)) / 64.0
    covariate = rng.integers(-64, 64, (ROWS, WINDOW)) / 64.0
    return np.stack([target, covariate], axis=2).astype(np.float32)


def transformed(x, shift=0.0, factor=1.0):
    out = x.copy()
    out[:, :, 0] = x[:, :, 0] * factor + shift  # the target column only
    return out


@pytest.mark.parametrize("model", sorted(NORM_MODELS))
def test_normalised_models_follow_the_level_of_the_series_and_the_raw_one_does_not(model):
    base = NORM_MODELS[model]
    x = dyadic_windows()
    shifted = transformed(x, shift=32.0)
    scaled = transformed(x, factor=4.0)

    def predict(norm, inputs):
        config = dataclasses.replace(base, norm=norm)
        params, state = random_params(config), random_state(config, ROWS)
        return np.asarray(apply(config, params, state, jnp.asarray(inputs))[0], np.float64)

    for norm in ("difference", "window"):
        np.testing.assert_allclose(predict(norm, shifted), predict(norm, x) + 32.0, atol=2e-5)
    # NORM_EPS does not scale with the series: equal to about eps / sigma.
    np.testing.assert_allclose(predict("window", scaled), 4.0 * predict("window", x), atol=1e-3)
    # The discriminating case: the raw network is not level- or scale-free.
    assert not np.allclose(predict("none", shifted), predict("none", x) + 32.0, atol=1e-2)
    assert not np.allclose(predict("none", scaled), 4.0 * predict("none", x), atol=1e-2)
    # A shift is not a scale: "difference" does not follow a scaled series.
    assert not np.allclose(predict("difference", scaled), 4.0 * predict("difference", x), atol=1e-2)


def test_a_flat_window_trains_with_finite_gradients():
    # A flat stretch of a series: sigma is 0, NORM_EPS keeps the window finite (zeros).
    config = MLPConfig(hidden=(4,), timesteps=WINDOW, norm="window")
    x = jnp.full((2, WINDOW, 1), 0.25)
    params = random_params(config)

    def loss(p):
        return jnp.sum(apply(config, p, (), x)[0] ** 2)

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    y, _ = apply(config, params, (), x)
    normed = jnp.zeros((2, WINDOW, 1))
    raw, _ = apply(dataclasses.replace(config, norm="none"), params, (), normed)
    np.testing.assert_allclose(np.asarray(y), np.asarray(raw) * NORM_EPS + 0.25, rtol=1e-6)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("model", sorted(NORM_MODELS))
def test_norm_round_trips_and_is_part_of_the_config_identity(model, norm):
    config = dataclasses.replace(NORM_MODELS[model], norm=norm)
    assert config_to_dict(config)["norm"] == norm
    assert config_from_json(config_to_json(config)) == config
    assert config_from_dict(config_to_dict(config)) == config
    if norm != "none":
        assert config != NORM_MODELS[model]
        assert hash(config) != hash(NORM_MODELS[model])


def test_a_config_written_before_norm_reads_as_none():
    for config in (LSTMConfig(units=(3,), timesteps=2), MLPConfig(hidden=(2,), timesteps=2)):
        old = config_to_dict(config)
        del old["norm"]
        assert config_from_dict(old).norm == "none"
        assert config_from_dict(old) == config


def test_bad_norms_are_refused_with_the_fix():
    expected = (
        "norm must be one of ('none', 'difference', 'window'), got 'revin'; pass norm='none', "
        "'difference' or 'window'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        LSTMConfig(timesteps=3, norm="revin")
    with pytest.raises(ValueError, match=re.escape(expected)):
        config_from_dict({**config_to_dict(MLPConfig(timesteps=3)), "norm": "revin"})
    expected = (
        "norm='window' normalises each input window by its own values, and a window of "
        "timesteps=1 reading maps to zeros; pass timesteps >= 2 or norm='none'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        MLPConfig(timesteps=1, norm="window")
    expected = (
        "norm='difference' with return_sequences=True would let the output at each step see "
        "later values of its window (the window's last value, mean and spread): a target leak "
        "in training; pass return_sequences=False or norm='none'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        LSTMConfig(timesteps=3, return_sequences=True, norm="difference")
    config = dataclasses.replace(NORM_MODELS["stacked"], norm="difference")
    expected = (
        f"a model with norm='difference' normalises windows of timesteps={WINDOW} readings, got "
        f"x of shape (3, 1, 2); pass whole windows, (batch, timesteps, features)"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        apply(
            config,
            random_params(config),
            random_state(config, ROWS),
            jnp.asarray(windows())[:, -1:],
        )


@pytest.mark.parametrize("model", sorted(NORM_MODELS))
def test_recursive_rollout_of_a_difference_model_is_the_step_by_step_loop(model):
    base = NORM_MODELS[model]
    config = dataclasses.replace(base, features=1, outputs=1, norm="difference")
    params, state = random_params(config), random_state(config, ROWS)
    x = windows()[:, :, :1]  # (rows, window, 1): the target only, fed back each step
    horizon = 5
    got = np.asarray(rollout(config, params, state, x, horizon=horizon))

    def loop(config, params):
        window, s, values = jnp.asarray(x), state, []
        for _ in range(horizon):
            start = s if config.stateful else init_state(config, ROWS)
            y, s = apply(config, params, start, window)  # (rows, 1)
            values.append(np.asarray(y))
            window = jnp.concatenate([window[:, 1:], y[:, None, :]], axis=1)  # slide by one
        return np.stack(values, axis=1)  # (rows, horizon, 1)

    expected = loop(config, params)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # The levels stay where the series is (rows at 3, -2 and 8), not where the net's bias is.
    raw = loop(dataclasses.replace(config, norm="none"), params)
    assert not np.allclose(got, raw, atol=1e-2)
    if config.kind == "mlp":  # the rollout tests' own reference agrees
        from tests.test_rollout import reference_rollout

        np.testing.assert_allclose(
            got, reference_rollout(config, params, (), x, horizon), atol=1e-5
        )


@pytest.mark.parametrize("sequences", [False, True])
def test_build_network_gives_each_kind_its_layers(sequences):
    from lstmlab.core.model import build_network

    norm = "none" if sequences else "window"  # a window norm with sequences would leak
    common = {"window": 7, "features": 2, "outputs": 3, "norm": norm}
    built = {
        kind: build_network(kind, units=units, sequences=sequences, **common)
        for kind, units in (("mlp", (8,)), ("stateless", (5,)), ("stateful", (5,)))
    }
    built["stacked"] = build_network("stacked", units=(5, 5), sequences=sequences, **common)
    shape = {"timesteps": 7, "features": 2, "outputs": 3, "norm": norm}
    assert built == {
        "mlp": MLPConfig(hidden=(8,), **shape),
        "stateless": LSTMConfig(units=(5,), stateful=False, return_sequences=False, **shape),
        "stateful": LSTMConfig(units=(5,), stateful=True, return_sequences=sequences, **shape),
        "stacked": LSTMConfig(units=(5, 5), stateful=True, return_sequences=sequences, **shape),
    }
