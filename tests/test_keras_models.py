import re

import numpy as np
import pytest

from lstmlab import LSTMModel, MLPModel
from lstmlab.experiments.moving_average import MovingAverageConfig, make_data


@pytest.fixture(scope="module")
def seed_data():
    return make_data(MovingAverageConfig(input_len=200))


def test_fit_returns_history_and_keeps_adam_state_across_calls(seed_data):
    model = LSTMModel(units=(8,), stateful=True, batch_size=1, seed=0)
    first = model.fit(seed_data.x_train, seed_data.y_train, epochs=2, quiet=True)
    second = model.fit(
        seed_data.x_train, seed_data.y_train, epochs=1, quiet=True,
        validation_data=(seed_data.x_test, seed_data.y_test),
    )
    assert len(first.loss) == 2 and first.val_loss is None
    assert second.updates == 3 * len(seed_data.x_train)  # the step count continues
    assert set(second.history) == {"loss", "val_loss"}
    assert second.loss[0] < first.loss[0]


def test_stateful_predict_carries_and_keeps_state(seed_data):
    model = LSTMModel(units=(8,), stateful=True, batch_size=1, seed=1)
    x = seed_data.x_test
    at_once = model.predict(x)
    model.reset_states()
    in_pieces = np.concatenate([model.predict(x[:7]), model.predict(x[7:])])
    np.testing.assert_allclose(in_pieces, at_once, atol=1e-6)
    # Without a reset the next call starts from the kept state, so it differs.
    assert not np.allclose(model.predict(x[:7]), at_once[:7])
    model.reset_states()
    np.testing.assert_allclose(model.predict(x[:7]), at_once[:7], atol=1e-6)


def test_reset_one_layer_only(seed_data):
    model = LSTMModel(units=(4, 3), stateful=True, batch_size=1, seed=2)
    model.predict(seed_data.x_test[:5])
    model.reset_states(layer=1)
    assert np.abs(np.asarray(model.state[1].h)).sum() == 0
    assert np.abs(np.asarray(model.state[0].h)).sum() > 0


def test_stateless_predict_ignores_call_history(seed_data):
    model = LSTMModel(units=(8,), stateful=False, seed=3)
    first = model.predict(seed_data.x_test)
    np.testing.assert_array_equal(model.predict(seed_data.x_test), first)


def test_with_batch_size_shares_weights_and_starts_fresh(seed_data):
    model = LSTMModel(units=(6,), stateful=True, batch_size=4, seed=4)
    x, y = seed_data.x_train[:160], seed_data.y_train[:160]
    model.fit(x, y, epochs=1, quiet=True)
    single = model.with_batch_size(1)
    assert single.batch_size == 1 and model.batch_size == 4
    for mine, theirs in zip(model.get_weights(), single.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert single.predict(seed_data.x_test[:3]).shape == (3, 1)
    single.fit(x[:8], y[:8], epochs=1, quiet=True)
    assert not np.array_equal(single.get_weights()[0], model.get_weights()[0])


def test_evaluate_is_the_mse_of_predict(seed_data):
    model = LSTMModel(units=(5,), stateful=True, seed=5)
    predictions = model.predict(seed_data.x_test)
    model.reset_states()
    mse = model.evaluate(seed_data.x_test, seed_data.y_test)
    assert mse == pytest.approx(float(np.mean((predictions - seed_data.y_test) ** 2)), rel=1e-5)


def test_set_weights_round_trip_and_perturbation(seed_data):
    model = LSTMModel(units=(5, 4), stateful=False, seed=6)
    other = LSTMModel(units=(5, 4), stateful=False, seed=7)
    other.set_weights(model.get_weights())
    np.testing.assert_array_equal(other.predict(seed_data.x_test), model.predict(seed_data.x_test))
    weights = model.get_weights()
    # Layer 1's recurrent kernel: with one time step from zero state only a stacked layer's
    # input path reaches it, so perturb the input kernel of layer 1 (index 3).
    weights[3] = weights[3] + 1e-2
    other.set_weights(weights)
    assert not np.allclose(other.predict(seed_data.x_test), model.predict(seed_data.x_test))


def test_set_weights_names_the_expected_layout():
    model = LSTMModel(units=(5,))
    with pytest.raises(ValueError, match=re.escape("weight 1 has shape (4, 20), expected (5, 20)")):
        model.set_weights([np.zeros((1, 20)), np.zeros((4, 20)), np.zeros(20), np.zeros((5, 1)),
                           np.zeros(1)])
    with pytest.raises(ValueError, match="expected 5 weight arrays"):
        model.set_weights([np.zeros((1, 20))])


def test_mlp_fits_and_shuffles(seed_data):
    x = np.concatenate([seed_data.x_train[:-1], seed_data.x_train[1:]], axis=1)  # (n, 2, 1)
    y = seed_data.y_train[1:]
    model = MLPModel(hidden=(16,), timesteps=2, seed=0)
    history = model.fit(x[:150], y[:150], epochs=20, batch_size=10, shuffle=True, quiet=True)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert model.predict(x[:3]).shape == (3, 1)


# -- misuse: each gets a ValueError naming the problem and the fix --------------------------


def test_stateful_fit_with_shuffle_is_refused(seed_data):
    model = LSTMModel(stateful=True)
    message = "stateful training needs shuffle=False, got shuffle=True; pass shuffle=False"
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(seed_data.x_train, seed_data.y_train, shuffle=True, quiet=True)


def test_stateful_batch_of_another_size_points_to_with_batch_size(seed_data):
    model = LSTMModel(stateful=True, batch_size=4)
    message = (
        "this stateful model was built for batch_size=4, got batch_size=1; use "
        "model.with_batch_size(1) to get the same weights at another batch size"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model.predict(seed_data.x_test, batch_size=1)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(seed_data.x_train, seed_data.y_train, batch_size=1, quiet=True)


def test_sample_count_not_multiple_of_batch_size_needs_trim(seed_data):
    model = LSTMModel(stateful=True, batch_size=3)
    x, y = seed_data.x_train[:10], seed_data.y_train[:10]
    with pytest.raises(ValueError, match="pass trim='start' to drop the oldest 1 samples"):
        model.fit(x, y, quiet=True)
    history = model.fit(x, y, trim="end", quiet=True)
    assert history.updates == 3


def test_nan_and_infinite_inputs_are_refused(seed_data):
    x = seed_data.x_train.copy()
    x[4, 0, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("x holds 1 NaN or infinite value(s)")):
        LSTMModel().fit(x, seed_data.y_train, quiet=True)
    y = seed_data.y_train.copy()
    y[0, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape("y holds 1 NaN or infinite value(s)")):
        LSTMModel().fit(seed_data.x_train, y, quiet=True)


def test_zero_or_negative_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        LSTMModel(batch_size=0)
    with pytest.raises(ValueError, match="timesteps must be a positive integer, got 0"):
        LSTMModel(timesteps=0)
    with pytest.raises(ValueError, match=re.escape("units[0] must be a positive integer, got -3")):
        LSTMModel(units=(-3,))


def test_targets_of_the_wrong_shape_are_refused(seed_data):
    n = len(seed_data.y_train)
    message = f"y has shape ({n},), expected ({n}, 1) to match x ({n}, 1, 1) and outputs=1"
    with pytest.raises(ValueError, match=re.escape(message)):
        LSTMModel().fit(seed_data.x_train, seed_data.y_train[:, 0], quiet=True)


def test_wrong_feature_count_is_refused(seed_data):
    with pytest.raises(ValueError, match="x has 1 features per step, the model expects 3"):
        LSTMModel(features=3).predict(seed_data.x_test)


def _evaluate_from(model, state, batches):
    from lstmlab.core.train import compiled_evaluate

    losses, _ = compiled_evaluate(model.config)(model.params, state, batches.x_batches,
                                                batches.y_batches)
    return float(np.mean(losses))


def test_official_validation_starts_from_the_end_of_epoch_state(seed_data):
    from lstmlab.data.layouts import make_official_batches

    model = LSTMModel(units=(6,), stateful=True, batch_size=4, seed=8)
    x, y = seed_data.x_train[:160], seed_data.y_train[:160]
    x_val, y_val = seed_data.x_test[:40], seed_data.y_test[:40]
    history = model.fit(x, y, epochs=1, reset="never", validation_data=(x_val, y_val),
                        quiet=True)
    val = make_official_batches(x_val, y_val, batch_size=4)
    carried = _evaluate_from(model, model.state, val)  # reset="never": the epoch's end state
    assert history.val_loss[0] == pytest.approx(carried, rel=1e-6)
    assert carried != pytest.approx(_evaluate_from(model, model.with_batch_size(4).state, val),
                                    rel=1e-3)


def test_streams_validation_starts_from_zero_state(seed_data):
    # Validation stream i does not continue training stream i; carrying the end-of-epoch
    # state would start it from another part of the series.
    from lstmlab.data.layouts import make_stream_batches

    model = LSTMModel(units=(6,), stateful=True, batch_size=4, seed=8)
    x, y = seed_data.x_train[:160], seed_data.y_train[:160]
    x_val, y_val = seed_data.x_test[:40], seed_data.y_test[:40]
    history = model.fit(x, y, epochs=1, reset="never", layout="streams",
                        validation_data=(x_val, y_val), quiet=True)
    val = make_stream_batches(x_val, y_val, batch_size=4)
    zero = _evaluate_from(model, model.with_batch_size(4).state, val)
    assert history.val_loss[0] == pytest.approx(zero, rel=1e-6)
    assert zero != pytest.approx(_evaluate_from(model, model.state, val), rel=1e-3)


def test_evaluate_takes_trim_as_its_message_says(seed_data):
    model = LSTMModel(units=(5,), stateful=True, batch_size=3, seed=9)
    x, y = seed_data.x_test[:10], seed_data.y_test[:10]
    with pytest.raises(ValueError, match=re.escape("pass trim='end' to drop the last 1 samples")):
        model.evaluate(x, y)
    mse = model.evaluate(x, y, trim="end")
    model.reset_states()
    predictions = model.predict(x[:9])
    assert mse == pytest.approx(float(np.mean((predictions - y[:9]) ** 2)), rel=1e-5)


def test_trim_speaks_the_layouts_vocabulary_not_a_bool(seed_data):
    # trim=True used to mean "the last" with one layout and "the oldest" with the other.
    model = LSTMModel(stateful=True, batch_size=3)
    x, y = seed_data.x_train[:10], seed_data.y_train[:10]
    for trim in (True, False, "middle"):
        message = (
            f"trim must be one of 'start', 'end' or 'error', got {trim!r}; pass 'start' to "
            "keep the most recent data"
        )
        for layout in ("streams", "official"):
            with pytest.raises(ValueError, match=re.escape(message)):
                model.fit(x, y, layout=layout, trim=trim, quiet=True)
        with pytest.raises(ValueError, match=re.escape(message)):
            model.predict(x, trim=trim)
        with pytest.raises(ValueError, match=re.escape(message)):
            LSTMModel(stateful=False).evaluate(x, y, trim=trim)


@pytest.mark.parametrize("layout", ["official", "streams"])
def test_trim_start_and_end_drop_the_named_samples(seed_data, layout):
    x, y = seed_data.x_train[:10], seed_data.y_train[:10]
    for trim, expected in (("start", (1, 0)), ("end", (0, 1))):
        history = LSTMModel(stateful=True, batch_size=3).fit(
            x, y, trim=trim, layout=layout, quiet=True)
        assert (history.trim.trimmed_start, history.trim.trimmed_end) == expected
    model = LSTMModel(stateful=True, batch_size=3, seed=2)
    first = model.predict(x, trim="start")
    model.reset_states()
    np.testing.assert_array_equal(first, model.predict(x[1:]))


def test_a_short_validation_set_is_named_with_the_edge_fix(seed_data):
    model = LSTMModel(stateful=True, batch_size=4)
    x, y = seed_data.x_train[:160], seed_data.y_train[:160]
    message = (
        "validation x holds 10 samples, not a multiple of batch_size=4 (remainder 2); pass "
        "trim='start' to drop the oldest 2 samples or trim='end' to drop the newest 2"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(x, y, layout="streams", validation_data=(x[:10], y[:10]), quiet=True)


@pytest.mark.parametrize("shape", [(2, 0, 1), (0, 1, 1)])
@pytest.mark.parametrize("stateful", [True, False])
def test_empty_inputs_are_refused_with_the_fix(shape, stateful):
    message = f"x has shape {shape}, with no samples or no time steps; pass at least one sample"
    with pytest.raises(ValueError, match=re.escape(message)):
        LSTMModel(stateful=stateful).predict(np.zeros(shape))


def test_history_reports_what_trim_dropped(seed_data):
    x, y = seed_data.x_train[:10], seed_data.y_train[:10]
    x_val, y_val = seed_data.x_test[:8], seed_data.y_test[:8]
    official = LSTMModel(stateful=True, batch_size=3).fit(
        x, y, trim="end", validation_data=(x_val, y_val), quiet=True)
    assert str(official.trim) == "used 9 of 10 samples in 3 batches of 3; trimmed 1 at the end"
    assert (official.val_trim.used, official.val_trim.trimmed_end) == (6, 2)
    streams = LSTMModel(stateful=True, batch_size=3).fit(
        x, y, trim="start", layout="streams", quiet=True)
    assert (streams.trim.trimmed_start, streams.trim.trimmed_end) == (1, 0)
    assert streams.val_trim is None


# --------------------------------------------------------------------------- save / load


def test_saved_lstm_model_predicts_and_trains_on_bit_identically(tmp_path, seed_data):
    x, y = seed_data.x_train[:64], seed_data.y_train[:64]
    model = LSTMModel(units=(6, 4), stateful=True, batch_size=4, seed=5)
    model.fit(x, y, epochs=2, reset="never", quiet=True)
    model.predict(x[:8])  # carries the state on: the save must keep it
    model.save(tmp_path / "model")
    loaded = LSTMModel.load(tmp_path / "model")
    assert type(loaded) is LSTMModel
    assert (loaded.config, loaded.batch_size) == (model.config, model.batch_size)
    for saved, restored in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_array_equal(loaded.predict(x[8:16]), model.predict(x[8:16]))
    # Adam's moments, the update count and the shuffle seed's fit count come back too
    first = model.fit(x, y, epochs=1, quiet=True)
    second = loaded.fit(x, y, epochs=1, quiet=True)
    assert first == second and second.updates == 2 * 16 + 16
    np.testing.assert_array_equal(loaded.predict(x[:8]), model.predict(x[:8]))


def test_a_perturbed_or_reset_model_differs_after_load(tmp_path, seed_data):
    x, y = seed_data.x_train[:32], seed_data.y_train[:32]
    model = LSTMModel(units=(5,), stateful=True, batch_size=4, seed=6)
    model.fit(x, y, epochs=1, reset="never", quiet=True)
    model.save(tmp_path / "model")
    expected = LSTMModel.load(tmp_path / "model").predict(x[:8])
    perturbed = LSTMModel.load(tmp_path / "model")
    weights = perturbed.get_weights()
    weights[1] = weights[1] + np.float32(1e-3) * np.eye(*weights[1].shape, dtype=np.float32)
    perturbed.set_weights(weights)
    assert not np.array_equal(perturbed.predict(x[:8]), expected)
    reset = LSTMModel.load(tmp_path / "model")
    reset.reset_states()  # the carried state was saved: dropping it changes the predictions
    assert not np.array_equal(reset.predict(x[:8]), expected)


def test_saved_mlp_model_comes_back_as_an_mlp(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 3, 1)).astype(np.float32)
    model = MLPModel(hidden=(8,), timesteps=3, batch_size=10, seed=2)
    model.fit(x, x[:, -1], epochs=2, quiet=True)
    model.save(tmp_path / "mlp")
    loaded = MLPModel.load(tmp_path / "mlp")
    assert type(loaded) is MLPModel and loaded.batch_size == 10
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert model.fit(x, x[:, -1], epochs=1, quiet=True) == loaded.fit(
        x, x[:, -1], epochs=1, quiet=True)
    message = "holds an MLPModel, not an LSTMModel; load it with MLPModel.load"
    with pytest.raises(ValueError, match=re.escape(message)):
        LSTMModel.load(tmp_path / "mlp")


def test_loading_a_folder_of_another_kind_names_the_fix(tmp_path):
    from lstmlab.core.model import LSTMConfig, init_params
    from lstmlab.live.state_store import SeriesStore
    from lstmlab.model_folder import SavedModel, save_model

    config = LSTMConfig(units=(3,))
    save_model(tmp_path / "other", SavedModel(config=config, params=init_params(config, 0),
                                              recipe={"kind": "stateful"}),
               opener=SeriesStore)
    message = "holds no LSTMModel or MLPModel (its recipe names None); load a Forecaster's"
    with pytest.raises(ValueError, match=re.escape(message)):
        LSTMModel.load(tmp_path / "other")



def _leaf_bytes(tree):
    import jax

    return [
        np.asarray(
            jax.random.key_data(leaf)
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
            else leaf
        ).tobytes()
        for leaf in jax.tree.leaves(tree)
    ]


@pytest.mark.parametrize("seed", [0, 2**33])
def test_init_bit_for_bit_and_fit_equal_the_core_s_eager_path(seed):
    # Reference: the core driver fed with states built eagerly, op by op (init_stacked,
    # init_train_state, stack_train_states), as before the compiled start of fit.
    import jax

    from lstmlab.core.model import init_stacked
    from lstmlab.core.train import (
        TrainConfig,
        fit,
        init_train_state,
        select_training,
        stack_train_states,
    )
    from lstmlab.data.layouts import make_sample_batches

    model = LSTMModel(units=(5, 3), stateful=True, batch_size=2, seed=seed, learning_rate=0.01)
    params = init_stacked(model.config, jax.random.key(seed))
    assert _leaf_bytes(model.params) == _leaf_bytes(params)
    x = np.random.default_rng(5).uniform(-1, 1, (8, 1, 1)).astype(np.float32)
    batches = make_sample_batches(x, x[:, 0], batch_size=2, trim="error")
    state = None
    for fits in range(2):  # the first fit (fresh Adam, zero state) and a second one
        model.fit(x, x[:, 0], epochs=2, quiet=True)
        train_config = TrainConfig(epochs=2, learning_rate=0.01, reset="epoch", seed=seed + fits)
        start = init_train_state(model.config, params, 2, train_config)
        if state is not None:
            start = start._replace(
                opt_state=state.opt_state, rnn_state=state.rnn_state, step=state.step
            )
        states, _ = fit(
            model.config, train_config, stack_train_states([start]),
            batches.x_batches, batches.y_batches,
        )
        state = select_training(states, 0)
        params = state.params
        # LSTMModel.fit runs the driver through fit_single (state made inside the program),
        # which may round differently in the last place from the stacked driver: a few ulp.
        for got, expected in zip(
            jax.tree.leaves((model.params, model.state)),
            jax.tree.leaves((state.params, state.rnn_state)),
            strict=True,
        ):
            np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5,
                                       atol=1e-7)
        assert model._step == int(state.step) == 8 * (fits + 1)
