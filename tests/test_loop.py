import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstmlab.experiments.moving_average import MovingAverageConfig, make_data
from lstmlab.models import LSTMConfig, MLPConfig, apply, init_params, init_state, reset_state
from lstmlab.train.loop import (
    TrainConfig,
    fit,
    init_train_state,
    make_predict,
    make_train_epoch,
    mse,
)


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
    _, history = fit(config, state, x, y, train_config, quiet=True)
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.updates == 6 * len(x)


def test_same_seed_gives_bit_identical_losses_and_predictions():
    config = LSTMConfig(units=(8,))
    train_config = TrainConfig(epochs=3)
    x, y = official_batches(batch_size=1, input_len=120)
    runs = []
    for _ in range(2):
        state = init_train_state(config, init_params(config, 7), 1, train_config)
        state, history = fit(config, state, x, y, train_config, validation=(x, y), quiet=True)
        predictions, _ = make_predict(config)(state.params, state.rnn_state, x)
        runs.append((history, np.asarray(predictions)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = init_train_state(config, init_params(config, 8), 1, train_config)
    _, other_history = fit(config, other, x, y, train_config, quiet=True)
    assert other_history.loss != runs[0][0].loss


def test_validation_does_not_change_training():
    config = LSTMConfig(units=(4,))
    train_config = TrainConfig(epochs=2)
    x, y = official_batches(batch_size=1, input_len=60)
    histories = []
    for validation in (None, (x[:10], y[:10])):
        state = init_train_state(config, init_params(config, 1), 1, train_config)
        histories.append(fit(config, state, x, y, train_config, validation=validation, quiet=True))
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
        fit(config, state, x, y, train_config, quiet=True)


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match=re.escape("reset must be 'epoch', 'never' or a positive")):
        TrainConfig(reset="sometimes")
    with pytest.raises(ValueError, match="every_batches must be a positive integer or None, got 0"):
        TrainConfig(reset=0)
    with pytest.raises(ValueError, match="epochs must be an integer >= 0, got -1"):
        TrainConfig(epochs=-1)


def test_seed_and_epoch_count_reuse_the_compiled_epoch():
    from lstmlab.train.loop import compiled_train_epoch

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
        fit(config, state, x, y, TrainConfig(epochs=1), validation=(x, y),
            validation_state="fresh", quiet=True)


def test_fit_resets_at_epoch_end_only_when_the_policy_says():
    config = LSTMConfig(units=(4,))
    x, y = official_batches(batch_size=1, input_len=40)
    second_epoch = {}
    for reset in ("epoch", "never"):
        train_config = TrainConfig(epochs=2, reset=reset)
        start = init_train_state(config, init_params(config, 2), 1, train_config)
        end, history = fit(config, start, x, y, train_config, quiet=True)
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
