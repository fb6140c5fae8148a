import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstmlab.core.model import (
    NORMS,
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    reset_state,
)
from lstmlab.core.train import (
    HOST_SHUFFLE_SAMPLES,
    EarlyStopping,
    Plateau,
    ResetPolicy,
    TrainConfig,
    TrainLog,
    TrainState,
    WindowBatches,
    capped_epochs,
    compiled_driver_epoch,
    compiled_train_epoch,
    fit,
    init_train_state,
    init_train_states,
    keras_adam,
    make_predict,
    make_train_epoch,
    mse,
    parse_reset,
    select_training,
    shuffle_order,
    stack_train_states,
)
from lstmlab.experiments.moving_average import MovingAverageConfig, make_data
from tests.parity.keras_helpers import keras, keras_context


def fit_one(config, state, x, y, train_config, **kwargs):
    """The driver with one training: ``(final state, History)``."""
    states, log = fit(config, train_config, stack_train_states([state]), x, y, **kwargs)
    return select_training(states, 0), log.history(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("epoch", ResetPolicy(at_epoch_end=True, every_batches=None)),
        ("never", ResetPolicy(at_epoch_end=False, every_batches=None)),
        (10, ResetPolicy(at_epoch_end=True, every_batches=10)),
        ("25", ResetPolicy(at_epoch_end=True, every_batches=25)),
    ],
)
def test_parse_reset(value, expected):
    assert parse_reset(value) == expected


def test_describe_reads_like_the_schedule():
    assert parse_reset(10).describe() == "every 10 batches and at epoch end"
    assert parse_reset("never").describe() == "never"


def test_bad_policies_are_refused():
    with pytest.raises(ValueError, match=re.escape("got 'weekly'")):
        parse_reset("weekly")
    message = "every_batches must be a positive integer or None, got -2"
    with pytest.raises(ValueError, match=message):
        ResetPolicy(every_batches=-2)
    with pytest.raises(ValueError, match="got True"):
        parse_reset(True)


STEPS = 8
SHAPES = {"kernel": (3, 4), "bias": (4,), "tiny": (5,)}


def gradient_sequence(seed=0):
    """Gradients per step: mixed scales for ``kernel`` and ``bias``, ~1e-6 for ``tiny``.

    ``tiny`` is where Keras' epsilon placement matters: ``sqrt(v)`` is then of the order of
    ``epsilon * sqrt(1 - b2^t)``.
    """
    rng = np.random.default_rng(seed)
    scales = [1.0, 1e-6, 0.3, 1e-6, 2.0, 1e-3, 1e-6, 0.5]
    sequence = []
    for scale in scales[:STEPS]:
        grads = {
            "kernel": rng.normal(size=SHAPES["kernel"]) * scale,
            "bias": rng.normal(size=SHAPES["bias"]) * scale,
            "tiny": rng.normal(size=SHAPES["tiny"]) * 1e-6,
        }
        sequence.append({k: v.astype(np.float32) for k, v in grads.items()})
    return sequence


def initial_params(seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=shape).astype(np.float32) for k, shape in SHAPES.items()}


def run_ours(optimizer, params, grads_sequence):
    """Apply the optimizer step by step (jitted, as in training); returns params per step."""
    params = {k: jnp.asarray(v) for k, v in params.items()}
    state = optimizer.init(params)
    update = jax.jit(optimizer.update)
    history = []
    for grads in grads_sequence:
        updates, state = update({k: jnp.asarray(v) for k, v in grads.items()}, state, params)
        params = optax.apply_updates(params, updates)
        history.append({k: np.asarray(v) for k, v in params.items()})
    return history


def run_numpy_reference(params, grads_sequence, lr, beta_1, beta_2, epsilon):
    """Keras' Adam formula in float64 NumPy (``keras/src/optimizers/adam.py``)."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    history = []
    for step, grads in enumerate(grads_sequence, start=1):
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        for key, g in grads.items():
            g = g.astype(np.float64)
            m[key] += (g - m[key]) * (1 - beta_1)
            v[key] += (g**2 - v[key]) * (1 - beta_2)
            params[key] = params[key] - alpha * m[key] / (np.sqrt(v[key]) + epsilon)
        history.append({k: p.copy() for k, p in params.items()})
    return history


def run_keras(params, grads_sequence, lr, beta_1, beta_2, epsilon):
    """``keras.optimizers.Adam`` on Keras variables, one ``apply_gradients`` per step."""
    with keras_context():
        variables = {k: keras.Variable(v, name=k) for k, v in params.items()}
        optimizer = keras.optimizers.Adam(
            learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon
        )
        history = []
        for grads in grads_sequence:
            optimizer.apply_gradients([(grads[k], variables[k]) for k in params])
            history.append({k: np.asarray(variables[k].numpy()) for k in params})
    return history


HYPERPARAMETERS = [
    pytest.param((1e-3, 0.9, 0.999, 1e-7), id="keras-defaults"),
    pytest.param((0.05, 0.8, 0.95, 1e-4), id="non-default"),
]


def assert_histories_close(got, expected, *, rtol, atol):
    for step, (got_step, expected_step) in enumerate(zip(got, expected, strict=True), start=1):
        for key in SHAPES:
            np.testing.assert_allclose(
                got_step[key],
                expected_step[key],
                rtol=rtol,
                atol=atol,
                err_msg=f"step {step}, {key}",
            )


@pytest.mark.parametrize("hyper", HYPERPARAMETERS)
def test_keras_adam_matches_keras_optimizer(hyper):
    lr, beta_1, beta_2, epsilon = hyper
    params, grads = initial_params(), gradient_sequence()
    expected = run_keras(params, grads, lr, beta_1, beta_2, epsilon)
    got = run_ours(keras_adam(lr, beta_1, beta_2, epsilon), params, grads)
    # Same float32 operations in the same order: agreement to a few ulps.
    assert_histories_close(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hyper", HYPERPARAMETERS)
def test_keras_adam_matches_numpy_reference_of_keras_formula(hyper):
    lr, beta_1, beta_2, epsilon = hyper
    params, grads = initial_params(), gradient_sequence()
    expected = run_numpy_reference(params, grads, lr, beta_1, beta_2, epsilon)
    got = run_ours(keras_adam(lr, beta_1, beta_2, epsilon), params, grads)
    # float32 against float64: parameters of order 1 agree to a few float32 ulps.
    atol = 3e-7
    assert_histories_close(got, expected, rtol=0, atol=atol)
    # Non-vacuous: every parameter moved by a hundred tolerances or more.
    for key in SHAPES:
        assert np.min(np.abs(got[-1][key] - params[key])) > 100 * atol


def test_optax_adam_differs_where_gradients_are_tiny():
    # Why keras_adam exists: optax.adam adds epsilon to the bias-corrected sqrt(v_hat); Keras
    # adds it to sqrt(v). With gradients ~1e-6 the steps differ by tens of percent; with
    # gradients ~1 epsilon is negligible and the two agree.
    params, grads = initial_params(), gradient_sequence()
    ours = run_ours(keras_adam(), params, grads)
    theirs = run_ours(optax.adam(1e-3, eps=1e-7), params, grads)
    keras_steps = ours[-1]["tiny"] - params["tiny"]
    optax_steps = theirs[-1]["tiny"] - params["tiny"]
    relative = np.abs(optax_steps - keras_steps) / np.abs(keras_steps)
    assert np.min(relative) > 0.2

    large = [{k: np.full(shape, 1.0, np.float32) for k, shape in SHAPES.items()}] * 3
    ours_large = run_ours(keras_adam(), params, large)[-1]["kernel"] - params["kernel"]
    optax_large = run_ours(optax.adam(1e-3, eps=1e-7), params, large)[-1]["kernel"]
    np.testing.assert_allclose(optax_large - params["kernel"], ours_large, rtol=1e-3)


def test_keras_adam_state_counts_steps_and_keeps_moments_per_leaf():
    optimizer = keras_adam()
    params = {k: jnp.asarray(v) for k, v in initial_params().items()}
    state = optimizer.init(params)
    grads = gradient_sequence()
    update = jax.jit(optimizer.update)
    for step_grads in grads[:3]:
        _, state = update({k: jnp.asarray(v) for k, v in step_grads.items()}, state)
    assert int(state.count) == 3
    # First moment after three steps, by hand: m3 = sum (1 - b1) b1^(3-k) g_k.
    expected_mu = sum(0.1 * 0.9 ** (3 - k) * grads[k - 1]["bias"] for k in (1, 2, 3))
    np.testing.assert_allclose(np.asarray(state.mu["bias"]), expected_mu, rtol=1e-5)


def official_batches(batch_size=1, input_len=200):
    data = make_data(MovingAverageConfig(input_len=input_len, batch_size=batch_size))
    n = len(data.x_train) // batch_size
    x = data.x_train[: n * batch_size].reshape(n, batch_size, *data.x_train.shape[1:])
    y = data.y_train[: n * batch_size].reshape(n, batch_size, 1)
    return x, y


def manual_epoch(config, train_config, params, x_batches, y_batches, stateful, reset_every=None):
    """The per-batch Python loop the compiled epoch replaces."""
    optimizer = train_config.optimizer()
    opt_state = optimizer.init(params)
    state = init_state(config, x_batches.shape[1])
    losses = []

    def loss_fn(p, s, x, y):
        prediction, new_state = apply(config, p, s, x)
        return mse(prediction, y), new_state

    for index, (x, y) in enumerate(zip(x_batches, y_batches, strict=True)):
        if reset_every and index and index % reset_every == 0:
            state = reset_state(state)
        start = state if stateful else init_state(config, x.shape[0])
        (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, start, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        state = new_state if stateful else state
        losses.append(float(loss))
    return np.array(losses), params, state


@pytest.mark.parametrize("stateful", [True, False])
def test_compiled_epoch_equals_the_per_batch_loop(stateful):
    config = LSTMConfig(units=(6,), stateful=stateful)
    train_config = TrainConfig(epochs=1)
    x, y = official_batches(batch_size=2, input_len=60)
    params = init_params(config, 3)
    state = init_train_state(config, params, 2, train_config)
    new_state, losses = jax.jit(make_train_epoch(config, train_config))(state, x, y)
    ref_losses, ref_params, ref_rnn = manual_epoch(config, train_config, params, x, y, stateful)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(new_state.params.head.kernel, ref_params.head.kernel, atol=1e-6)
    if stateful:
        np.testing.assert_allclose(new_state.rnn_state[0].c, ref_rnn[0].c, atol=1e-6)
    assert int(new_state.step) == len(x)


def test_carrying_state_changes_the_losses():
    # Guards the test above: stateful and stateless must not coincide on the same data.
    x, y = official_batches(batch_size=1, input_len=40)
    losses = {}
    for stateful in (True, False):
        config = LSTMConfig(units=(6,), stateful=stateful)
        state = init_train_state(config, init_params(config, 3), 1, TrainConfig())
        losses[stateful] = make_train_epoch(config, TrainConfig())(state, x, y)[1]
    assert not np.allclose(losses[True], losses[False])


def test_reset_every_n_batches_matches_the_loop_with_resets():
    config = LSTMConfig(units=(5,))
    train_config = TrainConfig(epochs=1, reset=4)
    x, y = official_batches(batch_size=1, input_len=40)
    params = init_params(config, 0)
    _, losses = make_train_epoch(config, train_config)(
        init_train_state(config, params, 1, train_config), x, y
    )
    ref, _, _ = manual_epoch(config, train_config, params, x, y, True, reset_every=4)
    no_reset, _, _ = manual_epoch(config, train_config, params, x, y, True)
    np.testing.assert_allclose(losses, ref, rtol=1e-5, atol=1e-9)
    assert not np.allclose(ref, no_reset)


def test_training_on_the_official_data_lowers_the_loss():
    config = LSTMConfig(units=(20,))
    train_config = TrainConfig(epochs=6)
    x, y = official_batches(batch_size=1, input_len=1000)
    state = init_train_state(config, init_params(config, 0), 1, train_config)
    _, history = fit_one(config, state, x, y, train_config)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.updates == 6 * len(x)


def test_same_seed_gives_bit_identical_losses_and_predictions():
    config = LSTMConfig(units=(8,))
    train_config = TrainConfig(epochs=3)
    x, y = official_batches(batch_size=1, input_len=120)
    runs = []
    for _ in range(2):
        state = init_train_state(config, init_params(config, 7), 1, train_config)
        state, history = fit_one(config, state, x, y, train_config, validation=(x, y))
        predictions, _ = make_predict(config)(state.params, state.rnn_state, x)
        runs.append((history, np.asarray(predictions)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = init_train_state(config, init_params(config, 8), 1, train_config)
    _, other_history = fit_one(config, other, x, y, train_config)
    assert other_history.loss != runs[0][0].loss


def test_validation_does_not_change_training():
    config = LSTMConfig(units=(4,))
    train_config = TrainConfig(epochs=2)
    x, y = official_batches(batch_size=1, input_len=60)
    histories = []
    for validation in (None, (x[:10], y[:10])):
        state = init_train_state(config, init_params(config, 1), 1, train_config)
        histories.append(fit_one(config, state, x, y, train_config, validation=validation))
    assert histories[0][1].loss == histories[1][1].loss
    assert histories[1][1].val_loss is not None and len(histories[1][1].val_loss) == 2


def test_stateless_shuffle_is_seeded_and_changes_the_order():
    config = MLPConfig(hidden=(4,), timesteps=1)
    x, y = official_batches(batch_size=4, input_len=80)
    losses = {}
    for seed, shuffle in [(0, True), (0, True), (1, True), (0, False)]:
        train_config = TrainConfig(epochs=1, shuffle=shuffle, seed=seed)
        state = init_train_state(config, init_params(config, 0), 4, train_config)
        losses.setdefault((seed, shuffle), []).append(
            np.asarray(make_train_epoch(config, train_config)(state, x, y)[1])
        )
    np.testing.assert_array_equal(*losses[(0, True)])
    assert not np.array_equal(losses[(0, True)][0], losses[(1, True)][0])
    assert not np.array_equal(losses[(0, True)][0], losses[(0, False)][0])


def test_vmap_over_seeds_equals_separate_runs():
    config = LSTMConfig(units=(5,))
    train_config = TrainConfig(epochs=1)
    x, y = official_batches(batch_size=1, input_len=50)
    states = [init_train_state(config, init_params(config, s), 1, train_config) for s in range(3)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    epoch = make_train_epoch(config, train_config)
    _, vmapped = jax.jit(jax.vmap(epoch, in_axes=(0, None, None)))(stacked, x, y)
    for seed, state in enumerate(states):
        np.testing.assert_allclose(vmapped[seed], epoch(state, x, y)[1], rtol=1e-5, atol=1e-9)


def test_stateful_training_refuses_shuffle():
    config = LSTMConfig()
    train_config = TrainConfig(epochs=1, shuffle=True)
    x, y = official_batches(batch_size=1, input_len=20)
    state = init_train_state(config, init_params(config, 0), 1, train_config)
    message = "stateful training needs shuffle=False, got shuffle=True; pass shuffle=False"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_one(config, state, x, y, train_config)


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match=re.escape("reset must be 'epoch', 'never' or a positive")):
        TrainConfig(reset="sometimes")
    with pytest.raises(ValueError, match="every_batches must be a positive integer or None, got 0"):
        TrainConfig(reset=0)
    with pytest.raises(ValueError, match="epochs must be an integer >= 0, got -1"):
        TrainConfig(epochs=-1)


def test_seed_and_epoch_count_reuse_the_compiled_epoch():
    config = LSTMConfig(units=(3,))
    first = compiled_train_epoch(config, TrainConfig(epochs=1, seed=0))
    assert compiled_train_epoch(config, TrainConfig(epochs=7, seed=5)) is first
    assert compiled_train_epoch(config, TrainConfig(epochs=1, learning_rate=0.01)) is not first


def test_unknown_validation_state_is_refused():
    config = LSTMConfig(units=(3,))
    x, y = official_batches(batch_size=1, input_len=20)
    state = init_train_state(config, init_params(config, 0), 1, TrainConfig(epochs=1))
    message = "validation_state must be 'carry' or 'zeros', got 'fresh'"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_one(config, state, x, y, TrainConfig(epochs=1), validation=(x, y),
                validation_state="fresh")


def test_fit_resets_at_epoch_end_only_when_the_policy_says():
    config = LSTMConfig(units=(4,))
    x, y = official_batches(batch_size=1, input_len=40)
    second_epoch = {}
    for reset in ("epoch", "never"):
        train_config = TrainConfig(epochs=2, reset=reset)
        start = init_train_state(config, init_params(config, 2), 1, train_config)
        end, history = fit_one(config, start, x, y, train_config)
        epoch = make_train_epoch(config, train_config)
        state, first = epoch(start, x, y)
        if reset == "epoch":
            state = state._replace(rnn_state=reset_state(state.rnn_state))
        state, second = epoch(state, x, y)
        assert history.loss == pytest.approx((float(first.mean()), float(second.mean())),
                                             rel=1e-5)
        expected = reset_state(state.rnn_state) if reset == "epoch" else state.rnn_state
        np.testing.assert_allclose(end.rnn_state[0].h, expected[0].h, atol=1e-6)
        second_epoch[reset] = history.loss[1]
    assert second_epoch["epoch"] != pytest.approx(second_epoch["never"], rel=1e-6)


# --------------------------------------------------------------------------- the driver


def by_hand(config, train_config, state, x, y, validation=None, validation_state="carry"):
    """Reference: the single-epoch program epoch by epoch, validation and resets by hand."""
    epoch = compiled_train_epoch(config, train_config)
    losses, val_losses = [], []
    for _ in range(train_config.epochs):
        state, batch_losses = epoch(state, x, y)
        losses.append(np.mean(np.asarray(batch_losses, np.float64)))
        if validation is not None:
            start = state.rnn_state
            if validation_state == "zeros":
                start = reset_state(start)
            predictions, _ = make_predict(config)(state.params, start, validation[0])
            val_losses.append(np.mean(np.square(np.asarray(predictions) - validation[1])))
        if config.stateful and train_config.reset.at_epoch_end:
            state = state._replace(rnn_state=reset_state(state.rnn_state))
    return state, np.array(losses), np.array(val_losses)


@pytest.mark.parametrize("reset", ["epoch", "never", 3])
@pytest.mark.parametrize("validation_state", ["carry", "zeros"])
def test_in_program_epoch_end_reset_equals_resetting_by_hand(reset, validation_state):
    config = LSTMConfig(units=(5,))
    train_config = TrainConfig(epochs=3, reset=reset)
    x, y = official_batches(batch_size=2, input_len=40)
    validation = (x[:4], y[:4])
    start = init_train_state(config, init_params(config, 4), 2, train_config)
    end, history = fit_one(
        config, start, x, y, train_config, validation=validation,
        validation_state=validation_state,
    )
    ref_state, ref_losses, ref_val = by_hand(
        config, train_config, start, x, y, validation, validation_state
    )
    np.testing.assert_allclose(history.loss, ref_losses, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(history.val_loss, ref_val, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(end.params.head.kernel, ref_state.params.head.kernel, atol=1e-6)
    np.testing.assert_allclose(end.rnn_state[0].c, ref_state.rnn_state[0].c, atol=1e-6)
    if train_config.reset.at_epoch_end:
        assert not np.any(np.asarray(end.rnn_state[0].h))
    else:
        assert np.all(np.asarray(end.rnn_state[0].h) != 0)


def test_driver_over_seeds_equals_one_training_per_seed():
    config = LSTMConfig(units=(4,))
    train_config = TrainConfig(epochs=2)
    x, y = official_batches(batch_size=1, input_len=40)
    seeds = [3, 4, 5]
    states, log = fit(config, train_config, init_train_states(config, train_config, seeds, 1), x, y)
    assert isinstance(log, TrainLog)
    assert log.loss.shape == (2, 3) and log.val_loss is None
    assert log.updates.tolist() == [2 * len(x)] * 3
    for index, seed in enumerate(seeds):
        one = init_train_state(config, init_params(config, seed), 1, train_config)
        end, history = fit_one(config, one, x, y, train_config)
        np.testing.assert_allclose(log.loss[:, index], history.loss, rtol=1e-6)
        np.testing.assert_allclose(
            select_training(states, index).params.head.kernel, end.params.head.kernel, atol=1e-6
        )
    assert not np.allclose(log.loss[:, 0], log.loss[:, 1])


def test_driver_with_per_training_batches_equals_separate_runs():
    config = LSTMConfig(units=(4,), timesteps=1)
    train_config = TrainConfig(epochs=2)
    data = [official_batches(batch_size=1, input_len=n) for n in (40, 40)]
    x = np.stack([data[0][0], data[1][0][::-1]])  # two trainings, different batches
    y = np.stack([data[0][1], data[1][1][::-1]])
    states = init_train_states(config, train_config, [0, 0], 1)
    _, log = fit(config, train_config, states, x, y, data_axis=0, validation=(x[:, :3], y[:, :3]))
    for index in range(2):
        one = init_train_state(config, init_params(config, 0), 1, train_config)
        _, history = fit_one(config, one, x[index], y[index], train_config,
                             validation=(x[index, :3], y[index, :3]))
        np.testing.assert_allclose(log.loss[:, index], history.loss, rtol=1e-6)
        np.testing.assert_allclose(log.val_loss[:, index], history.val_loss, rtol=1e-6)
    assert not np.allclose(log.loss[:, 0], log.loss[:, 1])


def test_on_epoch_sees_every_epoch_and_the_logged_losses():
    config = LSTMConfig(units=(3,))
    train_config = TrainConfig(epochs=3)
    x, y = official_batches(batch_size=1, input_len=20)
    seen = []
    _, log = fit(
        config, train_config, init_train_states(config, train_config, [0, 1], 1), x, y,
        validation=(x, y), on_epoch=lambda i, losses, val: seen.append((i, losses, val)),
    )
    assert [i for i, _, _ in seen] == [0, 1, 2]
    np.testing.assert_array_equal(np.stack([losses for _, losses, _ in seen]), log.loss)
    np.testing.assert_array_equal(np.stack([val for _, _, val in seen]), log.val_loss)


def test_init_train_states_takes_params_seeds_and_keys():
    config = LSTMConfig(units=(3,))
    train_config = TrainConfig(seed=9)
    params = init_params(config, 5)
    keys = [jax.random.key(1), jax.random.key(2)]
    states = init_train_states(config, train_config, [params, 5], 2, keys=keys)
    np.testing.assert_array_equal(states.params.head.kernel[0], states.params.head.kernel[1])
    assert states.rnn_state[0].h.shape == (2, 2, 3)
    assert jax.random.key_data(states.key).tolist() == [
        jax.random.key_data(k).tolist() for k in keys
    ]
    default = init_train_states(config, train_config, [5], 2)
    assert jax.random.key_data(default.key[0]).tolist() == (
        jax.random.key_data(jax.random.key(9)).tolist())
    with pytest.raises(ValueError, match="keys must hold one key per training, got 1 keys"):
        init_train_states(config, train_config, [5, 6], 2, keys=keys[:1])


def test_driver_refuses_unstacked_states_and_mismatched_batches():
    config = LSTMConfig(units=(3,))
    train_config = TrainConfig(epochs=1)
    x, y = official_batches(batch_size=1, input_len=20)
    state = init_train_state(config, init_params(config, 0), 1, train_config)
    with pytest.raises(ValueError, match="train_states must have a leading trainings axis"):
        fit(config, train_config, state, x, y)
    states = init_train_states(config, train_config, [0, 1], 1)
    message = "x_batches has 3 entries on its trainings axis, the states hold 2 trainings"
    with pytest.raises(ValueError, match=message):
        fit(config, train_config, states, np.stack([x] * 3), np.stack([y] * 3), data_axis=0)
    with pytest.raises(ValueError, match="data_axis must be None"):
        fit(config, train_config, states, x, y, data_axis=1)


# ------------------------------------------- each entry point gives the driver's losses


def test_lstm_model_fit_gives_the_losses_of_the_driver_called_directly():
    from lstmlab import LSTMModel
    from lstmlab.data.layouts import make_stream_batches

    data = make_data(MovingAverageConfig(input_len=120))
    x, y = data.x_train[:64], data.y_train[:64]
    x_val, y_val = data.x_test[:16], data.y_test[:16]
    model = LSTMModel(units=(6,), stateful=True, batch_size=4, seed=11, learning_rate=3e-3)
    history = model.fit(x, y, epochs=3, reset=5, layout="streams",
                        validation_data=(x_val, y_val), quiet=True)

    config = model.config
    train_config = TrainConfig(epochs=3, learning_rate=3e-3, reset=5, seed=11)
    states = init_train_states(config, train_config, [init_params(config, 11)], 4)
    train = make_stream_batches(x, y, batch_size=4, trim="error")
    val = make_stream_batches(x_val, y_val, batch_size=4, trim="error")
    end, log = fit(config, train_config, states, train.x_batches, train.y_batches,
                   validation=(val.x_batches, val.y_batches), validation_state="zeros")
    direct = log.history(0)
    assert (history.loss, history.val_loss, history.updates) == (
        direct.loss, direct.val_loss, direct.updates)
    np.testing.assert_array_equal(model.params.head.kernel, end.params.head.kernel[0])
    np.testing.assert_array_equal(model.state[0].h, end.rnn_state[0].h[0])


@pytest.mark.parametrize("layout", ["official", "streams"])
def test_moving_average_gives_the_losses_of_the_driver_called_directly(layout):
    from lstmlab.experiments import moving_average as ma

    config = MovingAverageConfig(input_len=100, epochs=2, batch_size=2, layout=layout)
    result = ma.run(config, quiet=True, log=lambda *args: None)
    data = ma.make_data(config)
    train = ma.make_batches(data.x_train, data.y_train, batch_size=2, layout=layout)
    test = ma.make_batches(data.x_test, data.y_test, batch_size=2, layout=layout)
    for outcome, stateful in ((result.stateful, True), (result.stateless, False)):
        net = ma.model_config(config, stateful=stateful)
        train_config = TrainConfig(epochs=2, reset="epoch", seed=config.seed)
        params = ma.initial_params(config, stateful=stateful)
        states = init_train_states(net, train_config, [params], 2)
        _, log = fit(net, train_config, states, train.x_batches, train.y_batches,
                     validation=(test.x_batches, test.y_batches),
                     validation_state="zeros" if layout == "streams" else "carry")
        direct = log.history(0)
        assert (outcome.history.loss, outcome.history.val_loss) == (
            direct.loss, direct.val_loss)
        assert outcome.updates == direct.updates == 2 * train.num_batches


def test_convergence_gives_the_losses_of_the_driver_called_directly():
    from lstmlab.experiments import convergence
    from lstmlab.experiments import moving_average as ma

    config = convergence.ConvergenceConfig(
        tsteps=(1, 2), lahead=(2,), seeds=2, input_len=60, epochs=2)
    result = convergence.run(config, quiet=True)
    cells = [config.cell(t, 2, s) for t in config.tsteps for s in config.seed_values]
    data = [ma.make_data(c) for c in cells]
    train = [ma.make_batches(d.x_train, d.y_train, batch_size=1, layout="official")
             for d in data]
    x = np.stack([b.x_batches for b in train])  # (trainings, num_batches, 1, lahead, 1)
    y = np.stack([b.y_batches for b in train])
    train_config = TrainConfig(epochs=2, reset="epoch")
    for mode in convergence.MODES:
        stateful = mode == "stateful"
        net = ma.model_config(cells[0], stateful=stateful)
        states = init_train_states(
            net, train_config, [ma.initial_params(c, stateful=stateful) for c in cells], 1)
        _, log = fit(net, train_config, states, x, y, data_axis=0)
        rows = [r for r in result.rows if r.mode == mode]
        assert [(r.tsteps, r.seed) for r in rows] == [(c.tsteps, c.seed) for c in cells]
        assert [r.final_loss for r in rows] == [float(v) for v in log.loss[-1]]
        assert [r.updates for r in rows] == log.updates.tolist()
    assert len({r.final_loss for r in result.rows}) == len(result.rows)


def test_lstmlab_max_epochs_caps_every_training_and_is_checked(monkeypatch):
    config = LSTMConfig(units=(3,), stateful=False)
    train_config = TrainConfig(epochs=5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2, 1, 1)).astype(np.float32)
    y = rng.normal(size=(4, 2, 1)).astype(np.float32)

    def epochs_run():
        states = init_train_states(config, train_config, [0], batch_size=2)
        return fit(config, train_config, states, x, y)[1].loss.shape[0]

    monkeypatch.delenv("LSTMLAB_MAX_EPOCHS", raising=False)
    assert capped_epochs(5) == 5 and epochs_run() == 5
    monkeypatch.setenv("LSTMLAB_MAX_EPOCHS", "2")
    assert capped_epochs(5) == 2 and capped_epochs(1) == 1 and epochs_run() == 2
    monkeypatch.setenv("LSTMLAB_MAX_EPOCHS", "two")
    with pytest.raises(ValueError, match="LSTMLAB_MAX_EPOCHS must be an integer >= 0, got 'two'"):
        epochs_run()


# ------------------------------------------------------- training that stops itself


def stopping_data():
    """Tiny noisy batches (4 training, 2 validation) whose validation loss turns up soon."""
    rng = np.random.default_rng(0)

    def batches(count):
        x = rng.normal(size=(count, 4, 3, 1)).astype(np.float32)  # (batches, batch, time, 1)
        y = x[:, :, -1] * 0.5 + 0.3 * rng.normal(size=(count, 4, 1))
        return x, y.astype(np.float32)

    (x, y), validation = batches(4), batches(2)
    return x, y, validation


def plain_epochs(config, train_config, states, epochs, x, y, validation):
    """Reference: the plain driver (no stopping), one ``fit`` per epoch, states carried.

    Returns:
        The stacked states after every epoch, and the ``(epochs, trainings)`` losses and
        validation losses.
    """
    one_epoch = dataclasses.replace(
        train_config, epochs=1, early_stopping=None, plateau=None
    )
    snapshots, losses, val_losses = [], [], []
    for _ in range(epochs):
        states, log = fit(config, one_epoch, states, x, y, validation=validation)
        snapshots.append(states)
        losses.append(log.loss[0])
        val_losses.append(log.val_loss[0])
    return snapshots, np.array(losses), np.array(val_losses)


def early_stopping_rule(val_losses, patience, min_delta=0.0):
    """Keras' EarlyStopping over one training's validation losses, in float32.

    Returns:
        ``(best_epoch, epochs_run)``, or ``None`` when the training never stops.
    """
    best, best_epoch, wait = np.float32(np.inf), -1, 0
    for epoch, value in enumerate(np.asarray(val_losses, np.float32)):
        if value < best - np.float32(min_delta):
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
        if wait >= patience:
            return best_epoch, epoch + 1
    return None


def leaves_of(states, training):
    return [np.asarray(leaf)[training] for leaf in jax.tree.leaves(states)]


def assert_same_leaves(first, second):
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_restores_the_best_epochs_weights(restore_best):
    config = LSTMConfig(units=(4,), timesteps=3, stateful=False)
    x, y, validation = stopping_data()
    stopping = EarlyStopping(patience=3, restore_best=restore_best)
    train_config = TrainConfig(epochs=40, learning_rate=0.05, early_stopping=stopping)
    start = init_train_states(config, train_config, [0], 4)
    end, log = fit(config, train_config, start, x, y, validation=validation)

    best, run = int(log.best_epoch[0]), int(log.epochs_run[0])
    snapshots, losses, val_losses = plain_epochs(
        config, train_config, init_train_states(config, train_config, [0], 4), run, x, y,
        validation,
    )
    # The stop epoch, recomputed from the plain run's validation losses by Keras' rule.
    assert early_stopping_rule(val_losses[:, 0], patience=3) == (best, run)
    assert run == best + 3 + 1 < 40
    assert log.loss.shape == (run, 1) and log.updates.tolist() == [run * len(x)]
    np.testing.assert_array_equal(log.loss, losses)
    np.testing.assert_array_equal(log.val_loss, val_losses)
    # The best epoch's weights (b + 1 plain epochs), or the last epoch run's without restore.
    expected = snapshots[best] if restore_best else snapshots[run - 1]
    assert_same_leaves(end.params, expected.params)
    other = snapshots[run - 1] if restore_best else snapshots[best]
    assert not np.array_equal(end.params.head.kernel, other.params.head.kernel)
    # Optimizer state and step are those at the stop either way.
    assert_same_leaves(end.opt_state, snapshots[run - 1].opt_state)
    history = log.history(0)
    assert (len(history.loss), history.best_epoch) == (run, best)


def test_trainings_stop_at_different_epochs_each_as_its_own_plain_run():
    # Stateful, never reset: the recurrent state a stopped training keeps is checked too.
    config = LSTMConfig(units=(4,), timesteps=3, stateful=True)
    x, y, validation = stopping_data()
    train_config = TrainConfig(
        epochs=40, learning_rate=0.05, reset="never", early_stopping=EarlyStopping(patience=3)
    )
    seeds = [0, 1, 2, 3]
    end, log = fit(
        config, train_config, init_train_states(config, train_config, seeds, 4), x, y,
        validation=validation,
    )
    runs = log.epochs_run.tolist()
    assert len(set(runs)) >= 2 and max(runs) < 40
    assert log.loss.shape == (max(runs), 4)
    snapshots, losses, val_losses = plain_epochs(
        config, train_config, init_train_states(config, train_config, seeds, 4), max(runs),
        x, y, validation,
    )
    for index in range(len(seeds)):
        best, run = int(log.best_epoch[index]), runs[index]
        assert early_stopping_rule(val_losses[:, index], patience=3) == (best, run)
        np.testing.assert_array_equal(log.loss[:run, index], losses[:run, index])
        np.testing.assert_array_equal(log.val_loss[:run, index], val_losses[:run, index])
        assert np.all(np.isnan(log.loss[run:, index]))
        assert np.all(np.isnan(log.val_loss[run:, index]))
        assert_same_leaves(
            leaves_of(end.params, index), leaves_of(snapshots[best].params, index)
        )
        at_stop = snapshots[run - 1]
        for part in ("opt_state", "rnn_state", "step"):
            assert_same_leaves(
                leaves_of(getattr(end, part), index), leaves_of(getattr(at_stop, part), index)
            )
    # Reading the stop flags every epoch (on_epoch) or every few gives the same log.
    seen = []
    _, watched = fit(
        config, train_config, init_train_states(config, train_config, seeds, 4), x, y,
        validation=validation, on_epoch=lambda epoch, *_: seen.append(epoch),
    )
    assert seen == list(range(max(runs)))
    np.testing.assert_array_equal(watched.loss, log.loss)
    np.testing.assert_array_equal(watched.best_epoch, log.best_epoch)


def plateau_reference(config, train_config, state, epochs, x, y, validation):
    """Plain fit epoch by epoch, one training, switching to ``learning_rate * scale``.

    The optimizer state is carried across the switch; the rule is ``Plateau``'s.
    """
    plateau = train_config.plateau
    scale, best, wait, reductions = 1.0, np.float32(np.inf), 0, 0
    losses, val_losses = [], []
    for _ in range(epochs):
        config_now = dataclasses.replace(
            train_config, epochs=1, plateau=None, learning_rate=train_config.learning_rate * scale
        )
        state, log = fit(config, config_now, state, x, y, validation=validation)
        losses.append(log.loss[0, 0])
        value = log.val_loss[0, 0]
        val_losses.append(value)
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
        if wait >= plateau.patience:
            new_scale = max(scale * plateau.factor, plateau.min_scale)
            reductions += new_scale != scale
            scale, wait = new_scale, 0
    return state, np.array(losses), np.array(val_losses), reductions


def test_plateau_reduces_the_learning_rate_as_the_rule_says():
    config = LSTMConfig(units=(4,), timesteps=3, stateful=False)
    x, y, validation = stopping_data()
    plateau = Plateau(factor=0.5, patience=2, min_scale=0.25)
    train_config = TrainConfig(epochs=16, learning_rate=0.05, plateau=plateau)
    end, log = fit(
        config, train_config, init_train_states(config, train_config, [0, 1], 4), x, y,
        validation=validation,
    )
    assert log.best_epoch is None and log.epochs_run.tolist() == [16, 16]
    total_reductions = 0
    for index, seed in enumerate([0, 1]):
        start = init_train_states(config, train_config, [seed], 4)
        ref_end, losses, val_losses, reductions = plateau_reference(
            config, train_config, start, 16, x, y, validation
        )
        total_reductions += reductions
        np.testing.assert_allclose(log.loss[:, index], losses, rtol=1e-5)
        np.testing.assert_allclose(log.val_loss[:, index], val_losses, rtol=1e-5)
        for ours, theirs in zip(
            leaves_of(end.params, index), leaves_of(ref_end.params, 0), strict=True
        ):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    # The rule fired (so a driver that ignored it would differ), and hit min_scale.
    assert total_reductions >= 3
    unreduced = fit(
        config, dataclasses.replace(train_config, plateau=None),
        init_train_states(config, train_config, [0, 1], 4), x, y, validation=validation,
    )[1]
    assert not np.allclose(unreduced.loss, log.loss, rtol=1e-3)


def test_stopping_without_validation_is_refused_with_the_fix():
    config = LSTMConfig(units=(3,), stateful=False)
    x, y, _ = stopping_data()
    for changes in ({"early_stopping": EarlyStopping()}, {"plateau": Plateau()}):
        train_config = TrainConfig(epochs=2, **changes)
        states = init_train_states(config, train_config, [0], 4)
        message = (
            "early_stopping and plateau watch the validation loss, got validation=None; pass "
            "validation=(x_val_batches, y_val_batches)"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            fit(config, train_config, states, x, y)
        with pytest.raises(ValueError, match=re.escape(message)):
            compiled_driver_epoch(config, train_config, validation=False)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: EarlyStopping(patience=0), "patience must be a positive integer, got 0"),
        (lambda: EarlyStopping(patience=2.5), "patience must be a positive integer, got 2.5"),
        (lambda: EarlyStopping(min_delta=-1e-3), "min_delta must be a finite number >= 0"),
        (lambda: EarlyStopping(min_delta=float("nan")), "min_delta must be a finite number"),
        (lambda: EarlyStopping(restore_best="yes"), "restore_best must be True or False"),
        (lambda: Plateau(factor=1.0), "factor must be a fraction strictly between 0 and 1"),
        (lambda: Plateau(factor=0), "factor must be a fraction strictly between 0 and 1"),
        (lambda: Plateau(patience=-1), "patience must be a positive integer, got -1"),
        (lambda: Plateau(min_scale=0), "min_scale must be > 0, got 0"),
        (lambda: Plateau(min_scale=2), "min_scale must be at most 1"),
        (
            lambda: TrainConfig(early_stopping=5),
            "early_stopping must be None or a EarlyStopping(...), got 5",
        ),
        (lambda: TrainConfig(plateau=True), "plateau must be None or a Plateau(...), got True"),
    ],
)
def test_stopping_settings_refuse_bad_values(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_stopping_settings_stay_in_the_programs_cache_key():
    config = LSTMConfig(units=(3,))
    plain = TrainConfig(epochs=3)
    stopping = TrainConfig(epochs=3, early_stopping=EarlyStopping(patience=4))
    # Hashable (a static part of the compiled program's key), equal when the settings are.
    assert hash(stopping) == hash(TrainConfig(epochs=3, early_stopping=EarlyStopping(patience=4)))
    assert stopping != plain and stopping.plateau is None
    first = compiled_driver_epoch(config, stopping, validation=True)
    assert compiled_driver_epoch(
        config, dataclasses.replace(stopping, epochs=30, seed=2), validation=True) is first
    assert compiled_driver_epoch(config, plain, validation=True) is not first


# --------------------------------------------------------------------------- issue 13: host work
def seed_style_by_hand(config, train_config, state, x, y, epochs):
    """Reference: the old driver, one single-epoch program per epoch and an eager reset."""
    epoch = compiled_train_epoch(config, train_config)
    losses = []
    for _ in range(epochs):
        state, batch_losses = epoch(state, x, y)
        losses.append(np.mean(np.asarray(batch_losses, np.float64)))
        state = state._replace(rnn_state=reset_state(state.rnn_state))  # eager, on the host
    return state, np.array(losses)


def test_all_epochs_in_one_program_equal_the_eager_reset_loop():
    # Tolerance: rtol 1e-6 on the losses, atol 1e-6 on the weights. The in-program loop and
    # the single-epoch program are different XLA programs, so float32 sums may be fused in
    # another order; everything else is the same arithmetic.
    config = LSTMConfig(units=(5,))
    train_config = TrainConfig(epochs=4)
    x, y = official_batches(batch_size=1, input_len=40)
    start = init_train_state(config, init_params(config, 6), 1, train_config)
    end, history = fit_one(config, start, x, y, train_config)
    ref_state, ref_losses = seed_style_by_hand(config, train_config, start, x, y, 4)
    np.testing.assert_allclose(history.loss, ref_losses, rtol=1e-6, atol=1e-9)
    for ours, theirs in zip(jax.tree.leaves(end.params), jax.tree.leaves(ref_state.params),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert not np.any(np.asarray(end.rnn_state[0].h))  # reset in the program
    # The reference can fail: without the reset the second epoch's loss differs.
    no_reset = TrainConfig(epochs=4, reset="never")
    _, unreset = fit_one(config, start, x, y, no_reset)
    assert unreset.loss[1] != pytest.approx(history.loss[1], rel=1e-6)


def test_seed_style_calls_equal_one_call_of_all_epochs_to_the_bit():
    """fit(epochs=1) + reset, repeated (the seed's driver) equals fit(epochs=N), bit for bit."""
    from lstmlab.core.train import fit_single

    config = LSTMConfig(units=(4,))
    train_config = TrainConfig(epochs=5)
    x, y = official_batches(batch_size=2, input_len=40)
    params = init_params(config, 8)
    whole, whole_log = fit_single(
        config, train_config, TrainState(params, None, None, 0, 0), x, y
    )
    state = TrainState(params, None, None, 0, 0)
    losses = []
    for _ in range(5):
        state, log = fit_single(config, dataclasses.replace(train_config, epochs=1), state, x, y)
        state = state._replace(rnn_state=reset_state(state.rnn_state))
        losses.append(log.loss[0, 0])
    np.testing.assert_array_equal(whole_log.loss[:, 0], losses)
    assert_same_leaves(whole.params, state.params)
    assert_same_leaves(whole.opt_state, state.opt_state)
    assert int(whole.step) == int(state.step) == 5 * len(x)


def test_fit_single_equals_fit_with_one_stacked_training():
    from lstmlab.core.train import fit_single

    config = LSTMConfig(units=(4,), timesteps=3, stateful=True)
    x, y, validation = stopping_data()
    train_config = TrainConfig(
        epochs=40, learning_rate=0.05, reset="never", seed=3,
        early_stopping=EarlyStopping(patience=3),
    )
    params = init_params(config, 2)
    stacked, log = fit(
        config, train_config, init_train_states(config, train_config, [params], 4), x, y,
        validation=validation,
    )
    # step as an int, key as an int seed, optimizer and recurrent state left to the program.
    single, single_log = fit_single(
        config, train_config, TrainState(params, None, None, 0, 3), x, y, validation=validation
    )
    # One training runs the epoch without vmap either way: the same arithmetic, bit for bit.
    assert single_log.epochs_run.tolist() == log.epochs_run.tolist() and log.epochs_run[0] < 40
    assert single_log.best_epoch.tolist() == log.best_epoch.tolist()
    np.testing.assert_array_equal(single_log.loss, log.loss)
    np.testing.assert_array_equal(single_log.val_loss, log.val_loss)
    stacked_one = select_training(stacked, 0)
    for part in ("params", "opt_state", "rnn_state", "step"):
        assert_same_leaves(getattr(single, part), getattr(stacked_one, part))
    np.testing.assert_array_equal(
        jax.random.key_data(single.key), jax.random.key_data(stacked_one.key)
    )


def test_more_epochs_than_one_program_call_holds_are_chunked_exactly():
    from lstmlab.core.train import EPOCH_CHUNK

    config = LSTMConfig(units=(3,))
    epochs = EPOCH_CHUNK + 3
    train_config = TrainConfig(epochs=epochs, learning_rate=0.01)
    x, y = official_batches(batch_size=1, input_len=12)
    states = init_train_states(config, train_config, [0, 1], 1)
    seen = []
    end, log = fit(config, train_config, states, x, y,
                   on_epoch=lambda epoch, losses, _: seen.append((epoch, losses)))
    assert log.loss.shape == (epochs, 2) and log.updates.tolist() == [epochs * len(x)] * 2
    assert [epoch for epoch, _ in seen] == list(range(epochs))
    np.testing.assert_array_equal(np.stack([losses for _, losses in seen]), log.loss)
    # The same program, one epoch per call: the same losses to the bit.
    one = dataclasses.replace(train_config, epochs=1)
    states = init_train_states(config, train_config, [0, 1], 1)
    losses = []
    for _ in range(epochs):
        states, step_log = fit(config, one, states, x, y)
        losses.append(step_log.loss[0])
    np.testing.assert_array_equal(log.loss, np.stack(losses))
    assert_same_leaves(end.params, states.params)


def test_read_only_batches_are_transferred_once_and_jax_arrays_taken_as_they_are():
    from lstmlab.core import train as train_module

    config = LSTMConfig(units=(3,))
    train_config = TrainConfig(epochs=2)
    x, y = official_batches(batch_size=1, input_len=30)
    x_read_only, y_read_only = x.copy(), y.copy()
    x_read_only.flags.writeable = y_read_only.flags.writeable = False
    results = []
    for x_in, y_in in [(x, y), (x_read_only, y_read_only), (x_read_only, y_read_only),
                       (jnp.asarray(x), jnp.asarray(y))]:
        states = init_train_states(config, train_config, [0], 1)
        results.append(fit(config, train_config, states, x_in, y_in)[1].loss)
    for loss in results[1:]:
        np.testing.assert_array_equal(loss, results[0])
    kept = train_module._DEVICE_COPIES.get(id(x_read_only))
    assert kept is not None and kept[0] is x_read_only and isinstance(kept[1], jax.Array)
    np.testing.assert_array_equal(kept[1], x)
    # A writeable array may change between calls: never cached.
    assert id(x) not in train_module._DEVICE_COPIES
    view = x_read_only[1:]  # read-only view of a read-only base: cacheable, base checked
    assert train_module._device_copy(view) is view


def test_bfloat16_products_train_close_to_float32():
    # Stated accuracy loss: with bfloat16 operands (float32 accumulation) the epoch losses
    # of this 20-unit, 8-step model stay within 5% of float32 training's, and the final
    # weights within 2e-2 (absolute); the paths differ (the option is not ignored).
    config = LSTMConfig(units=(20,), timesteps=8, stateful=False)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)  # (batches, batch, time, 1)
    y = (x[:, :, -3:, 0].mean(axis=2, keepdims=True) * 0.8).astype(np.float32)
    logs, ends = {}, {}
    for dtype in ("float32", "bfloat16"):
        train_config = TrainConfig(epochs=5, learning_rate=3e-3, matmul_dtype=dtype)
        states = init_train_states(config, train_config, [0], 8)
        ends[dtype], logs[dtype] = fit(config, train_config, states, x, y)
    np.testing.assert_allclose(logs["bfloat16"].loss, logs["float32"].loss, rtol=5e-2)
    assert not np.array_equal(logs["bfloat16"].loss, logs["float32"].loss)
    for ours, theirs in zip(jax.tree.leaves(ends["bfloat16"].params),
                            jax.tree.leaves(ends["float32"].params), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-2)
    with pytest.raises(ValueError, match=re.escape(
            "matmul_dtype must be one of ('float32', 'bfloat16'), got 'float16'")):
        TrainConfig(matmul_dtype="float16")



class compiles_of:  # noqa: N801 (a context manager read as a phrase)
    """Count the programs compiled (or read from the persistent cache) for ``jit(name)``."""

    def __init__(self, name):
        self.name, self.count = f"jit({name})", 0

    def _listen(self, event, seconds, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration" and (
            kwargs.get("fun_name") == self.name
        ):
            self.count += 1

    def __enter__(self):
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        from jax import monitoring

        monitoring.unregister_event_duration_listener(self._listen)


def test_stateful_and_stateless_models_share_one_training_program():
    # Shapes no other test uses, so that this test compiles the program itself.
    stateless = LSTMConfig(units=(7,), timesteps=3, stateful=False)
    stateful = dataclasses.replace(stateless, stateful=True)
    train_config = TrainConfig(epochs=3, reset="epoch")
    x, y, validation = stopping_data()
    results = {}
    with compiles_of("run") as compiled:
        for config in (stateless, stateful):
            states = init_train_states(config, train_config, [0, 1], 4)
            results[config.stateful] = fit(
                config, train_config, states, x, y, validation=validation,
                validation_state="zeros",
            )
    assert compiled.count == 1  # one program served both models
    # Each model keeps its own arithmetic: the reference is the stateless model's own
    # single-epoch program (``stateful`` static there), stepped by hand. Another XLA program,
    # so float32 sums may be fused in another order: rtol 1e-6.
    epoch = compiled_driver_epoch(stateless, train_config, validation=True,
                                  validation_state="zeros")
    states = init_train_states(stateless, train_config, [0, 1], 4)
    losses, val_losses = [], []
    for _ in range(3):
        states, _, loss, val_loss = epoch(states, None, x, y, *validation)
        losses.append(loss)
        val_losses.append(val_loss)
    shared_states, shared_log = results[False]
    np.testing.assert_allclose(shared_log.loss, np.stack(losses), rtol=1e-6)
    np.testing.assert_allclose(shared_log.val_loss, np.stack(val_losses), rtol=1e-6)
    for ours, theirs in zip(jax.tree.leaves(shared_states.params), jax.tree.leaves(states.params),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # ... and the flag is read: the stateful model, from the same start, learns otherwise.
    assert not np.allclose(results[True][1].loss, shared_log.loss, rtol=1e-4)


def test_the_first_fit_of_an_edge_model_and_the_later_ones_run_one_program():
    from lstmlab import LSTMModel
    from lstmlab.core.train import initial_opt_state

    x, y = official_batches(batch_size=1, input_len=24)
    x, y = x[:, 0], y[:, 0]  # (samples, time, 1), (samples, 1)
    model = LSTMModel(units=(9,), stateful=True, batch_size=1, seed=4)  # shapes of its own
    with compiles_of("run") as compiled:
        model.fit(x, y, epochs=2, quiet=True)  # Adam's first state made on the host
        model.fit(x, y, epochs=3, quiet=True)  # the state the first fit returned
    assert compiled.count == 1
    # The host-made first state is the optimizer's own.
    params = init_params(model.config, 0)
    expected = TrainConfig().optimizer().init(params)
    made = initial_opt_state(TrainConfig(), params)
    assert jax.tree.structure(made) == jax.tree.structure(expected)
    for ours, theirs in zip(jax.tree.leaves(made), jax.tree.leaves(expected), strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("single", [False, True])
def test_compile_fit_from_shapes_leaves_nothing_to_compile_for_the_fit(single):
    from lstmlab.core.train import compile_fit, fit_single

    config = LSTMConfig(units=(11,), timesteps=3, stateful=False)  # shapes of its own
    train_config = TrainConfig(epochs=3, early_stopping=EarlyStopping(patience=2),
                               learning_rate=0.02 if single else 0.03)
    x, y, validation = stopping_data()
    params = init_params(config, 5)
    shapes = jax.eval_shape(lambda: init_params(config, 5))
    if single:
        state = TrainState(params, None, None, 0, 1)
        abstract = state._replace(params=shapes)
    else:
        state = init_train_states(config, train_config, [params], 4)
        abstract = jax.eval_shape(lambda: state)
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree.leaves(shapes))
    with compiles_of("run") as ahead:
        compile_fit(config, train_config, abstract, x, y, validation=validation, single=single)
    with compiles_of("run") as during:
        driver = fit_single if single else fit
        _, log = driver(config, train_config, state, x, y, validation=validation)
    assert (ahead.count, during.count) == (1, 0)
    assert np.all(np.isfinite(log.loss)) and log.loss.shape[0] >= 1


def test_every_norm_of_one_shape_trains_in_one_program():
    # Shapes no other test uses, so that this test compiles the program itself.
    base = MLPConfig(hidden=(5, 3), timesteps=3, outputs=1)
    train_config = TrainConfig(epochs=2)
    x, y, _ = stopping_data()
    results = {}
    with compiles_of("run") as compiled:
        for norm in NORMS:
            config = dataclasses.replace(base, norm=norm)
            states = init_train_states(config, train_config, [0, 1], 4)
            results[norm] = fit(config, train_config, states, x, y)[1].loss
    assert compiled.count == 1  # one program served the three norms
    # each norm kept its own arithmetic: the losses differ
    assert len({np.asarray(loss).tobytes() for loss in results.values()}) == 3


def test_refit_epochs_is_the_median_best_epoch_count_of_the_sound_seeds():
    from lstmlab.core.train import TrainLog

    def log(best):
        n = 5
        zeros = np.zeros((3, n), np.float32)
        return TrainLog(
            loss=zeros,
            val_loss=zeros,
            updates=np.zeros(n, np.int64),
            epochs_run=np.full(n, 3),
            best_epoch=None if best is None else np.asarray(best),
        )

    best = [4, 0, 9, 2, -1]  # 0-based; -1: never improved
    counts = np.maximum(np.asarray(best), 0) + 1  # epochs to reach each seed's best
    none = np.zeros(5, bool)
    assert log(best).refit_epochs(none) == int(np.median(counts)) == 3
    flagged = np.array([False, False, True, False, False])  # the 10-epoch seed left out
    assert log(best).refit_epochs(flagged) == int(np.median(counts[~flagged])) == 2
    assert log(best).refit_epochs(np.ones(5, bool)) == 3  # all flagged: all count
    assert log(None).refit_epochs(none) is None  # no early stopping, no best epoch


@pytest.mark.parametrize("stateful", [False, True])
def test_windows_cut_in_the_program_train_as_the_windows_laid_out(stateful):
    # The driver given WindowBatches (the series once, each batch cut when it trains) against
    # the same windows laid out on the host: shuffled or streamed, with a validation, the
    # same losses and weights to the bit.
    rng = np.random.default_rng(3)
    values = rng.normal(size=(60, 1)).astype(np.float32)
    window, horizon = 4, 2
    starts = np.arange(48, dtype=np.int32).reshape(12, 4)  # 12 batches of 4 samples
    if stateful:
        starts = starts.T.reshape(12, 4)  # 4 streams of 12 consecutive samples
    val_starts = np.arange(50, 54, dtype=np.int32).reshape(1, 4)

    def cut(starts, offset, length, flat):
        windows = values[starts[..., None] + offset + np.arange(length)]
        return windows.reshape(*starts.shape, -1) if flat else windows

    def both(starts):
        return (
            WindowBatches(values=values, starts=starts, offset=0, length=window),
            WindowBatches(values=values, starts=starts, offset=window, length=horizon, flat=True),
        )

    config = LSTMConfig(units=(3,), outputs=horizon, stateful=stateful)
    train_config = TrainConfig(epochs=3, shuffle=not stateful)
    states = init_train_states(config, train_config, [0, 1], batch_size=4)
    laid = fit(
        config, train_config, states,
        cut(starts, 0, window, False), cut(starts, window, horizon, True),
        validation=(cut(val_starts, 0, window, False), cut(val_starts, window, horizon, True)),
        validation_state="zeros",
    )
    windowed = fit(
        config, train_config, init_train_states(config, train_config, [0, 1], batch_size=4),
        *both(starts), validation=both(val_starts), validation_state="zeros",
    )
    np.testing.assert_array_equal(windowed[1].loss, laid[1].loss)
    np.testing.assert_array_equal(windowed[1].val_loss, laid[1].val_loss)
    for ours, theirs in zip(
        jax.tree.leaves(windowed[0].params), jax.tree.leaves(laid[0].params), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
    # the losses depend on the cut: windows one step later train otherwise
    later = fit(
        config, train_config, init_train_states(config, train_config, [0, 1], batch_size=4),
        *both(starts + 1), validation=both(val_starts), validation_state="zeros",
    )
    assert not np.array_equal(later[1].loss, laid[1].loss)


def test_a_shuffle_of_many_samples_sorted_on_the_host_is_jaxs_permutation_to_the_bit():
    # Past HOST_SHUFFLE_SAMPLES the epoch's shuffle sorts in NumPy: it must be the order JAX's
    # own permutation gives (two sorting rounds at this size), inside jit and under the
    # driver's vmap over trainings, so that training does not change with the sample count.
    samples = HOST_SHUFFLE_SAMPLES + 1
    keys = jax.random.split(jax.random.key(7), 2)
    ours = jax.jit(jax.vmap(lambda key: shuffle_order(key, samples)))(keys)
    theirs = jax.vmap(lambda key: jax.random.permutation(key, samples))(keys)
    np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(ours[0], ours[1])  # each training its own order
