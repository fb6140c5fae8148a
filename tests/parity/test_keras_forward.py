"""Forward parity with Keras 3: weight layout, stateless and stateful predictions, the edge object.

Keras gets random, asymmetric weights (a fresh normal draw per array, non-zero biases), and the
same list goes into lstmlab through ``from_keras_weights`` or ``LSTMModel.set_weights``. A gate
permutation, a transposed kernel, an extra forget bias or an h/c swap changes the predictions
far beyond the 1e-5 tolerance; ``test_mutations_break_parity`` proves that for each of them.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab import LSTMModel, MLPModel
from lstmlab.core.layers import LSTMParams, LSTMState
from lstmlab.core.model import (
    LSTMConfig,
    MLPConfig,
    apply,
    from_keras_weights,
    init_params,
    init_state,
    reset_state,
    to_keras_weights,
)
from tests.parity.keras_helpers import (
    build_keras_lstm,
    build_keras_mlp,
    keras,
    keras_call,
    keras_context,
    keras_states,
    random_weights,
    reset_keras_states,
    set_keras_weights,
)

ATOL = 1e-5
# Stateful fixture: B rows, T steps, F features, two outputs; features != units so a swapped
# kernel / recurrent kernel cannot even load.
B, T, F, UNITS, OUTPUTS = 3, 4, 2, 5, 2
NUM_BATCHES = 5


def ours(config, weights):
    """Parameters of ``config`` from a Keras ``get_weights()`` list."""
    # Only the shapes of `like` matter; tracing init_params gives them without compiling it.
    shapes = jax.eval_shape(functools.partial(init_params, config, 0))
    like = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes)
    return from_keras_weights(config, weights, like)


# One compiled program per (config, shape) instead of an eager scan (or QR) per call.
apply_compiled = jax.jit(apply, static_argnums=0)
init_compiled = jax.jit(init_params, static_argnums=0)


def run_ours(config, params, x_batches, state=None):
    """Our predictions batch by batch, carrying the state; returns (predictions, final state)."""
    state = init_state(config, x_batches.shape[1]) if state is None else state
    predictions = []
    for x in x_batches:
        y, state = apply_compiled(config, params, state, x)
        predictions.append(np.asarray(y))
        if not config.stateful:
            state = reset_state(state)
    return predictions, state


def run_keras(model, x_batches):
    """Keras' predictions from direct calls, one batch after the other."""
    return [keras_call(model, x) for x in x_batches]


def max_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(7)
    return rng.normal(size=(NUM_BATCHES, B, T, F)).astype(np.float32)


@pytest.fixture(scope="module")
def stateful_pair():
    """A stateful Keras model with random weights, our config, params and the weight list."""
    model = build_keras_lstm(
        batch_size=B, timesteps=T, features=F, units=(UNITS,), outputs=OUTPUTS, stateful=True
    )
    weights = random_weights(model, seed=1)
    set_keras_weights(model, weights)
    config = LSTMConfig(units=(UNITS,), timesteps=T, features=F, outputs=OUTPUTS, stateful=True)
    return model, config, ours(config, weights), weights


@pytest.fixture(scope="module")
def keras_stateful_reference(stateful_pair, batches):
    """Keras' direct-call predictions for the batches, then two batches again after a reset."""
    model = stateful_pair[0]
    reset_keras_states(model)
    carried = run_keras(model, batches)
    carried_states = keras_states(model)
    reset_keras_states(model)
    after_reset = run_keras(model, batches[:2])
    reset_keras_states(model)
    zero_state = []
    for x in batches:
        zero_state.append(keras_call(model, x))
        reset_keras_states(model)
    return {
        "carried": carried,
        "states": carried_states,
        "after_reset": after_reset,
        "zero_state": zero_state,
    }


# -- layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "keras_model"),
    [
        (
            LSTMConfig(units=(5,), features=2, outputs=3),
            lambda: build_keras_lstm(
                batch_size=1, timesteps=1, features=2, units=(5,), outputs=3, stateful=True
            ),
        ),
        (
            LSTMConfig(units=(6, 4), timesteps=3, features=2, outputs=1, stateful=False),
            lambda: build_keras_lstm(
                batch_size=2, timesteps=3, features=2, units=(6, 4), outputs=1, stateful=False
            ),
        ),
        (
            MLPConfig(hidden=(7, 5), timesteps=3, features=2, outputs=2),
            lambda: build_keras_mlp(timesteps=3, features=2, hidden=(7, 5), outputs=2),
        ),
    ],
    ids=["lstm-1-layer", "lstm-2-layers", "mlp"],
)
def test_weight_order_and_shapes_match_keras_get_weights(config, keras_model):
    model = keras_model()
    expected = model.get_weights()
    weights = to_keras_weights(config, init_compiled(config, jax.random.key(0)))
    assert [w.shape for w in weights] == [w.shape for w in expected]
    # The names of Keras' variables give the order: kernel, recurrent_kernel, bias per LSTM
    # layer, then kernel, bias per Dense layer; ours follow the NamedTuple field order.
    keras_names = [v.path.rsplit("/", 1)[-1] for v in model.weights]
    if isinstance(config, LSTMConfig):
        our_names = [*LSTMParams._fields * len(config.units), "kernel", "bias"]
    else:
        our_names = ["kernel", "bias"] * (len(config.hidden) + 1)
    assert keras_names == our_names
    # Biases are deterministic in both libraries: zero, except Keras' unit forget bias.
    keras_biases = [w for w, name in zip(expected, keras_names, strict=True) if name == "bias"]
    our_biases = [w for w, name in zip(weights, our_names, strict=True) if name == "bias"]
    for ours_bias, keras_bias in zip(our_biases, keras_biases, strict=True):
        np.testing.assert_array_equal(ours_bias, keras_bias)
    # Not zeros against zeros: each LSTM bias holds Keras' forget slice of ones.
    ones = sum(bool(np.any(bias == 1.0)) for bias in keras_biases)
    assert ones == (len(config.units) if isinstance(config, LSTMConfig) else 0)


def test_from_keras_weights_round_trips_bit_identically():
    config = LSTMConfig(units=(6, 4), timesteps=3, features=2, outputs=1, stateful=False)
    model = build_keras_lstm(
        batch_size=2, timesteps=3, features=2, units=(6, 4), outputs=1, stateful=False
    )
    weights = random_weights(model, seed=3)
    back = to_keras_weights(config, ours(config, weights))
    assert len(back) == len(weights)
    for ours_array, keras_array in zip(back, weights, strict=True):
        np.testing.assert_array_equal(ours_array, keras_array)


# -- stateless -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "timesteps", "features", "units", "outputs", "return_sequences"),
    [
        (1, 1, 1, 20, 1, False),
        (4, 3, 2, 7, 1, False),
        (5, 8, 3, 4, 2, False),
        (2, 6, 3, 5, 3, True),
    ],
)
def test_stateless_predictions_match_keras(
    batch_size, timesteps, features, units, outputs, return_sequences
):
    model = build_keras_lstm(
        batch_size=batch_size,
        timesteps=timesteps,
        features=features,
        units=(units,),
        outputs=outputs,
        stateful=False,
        return_sequences=return_sequences,
    )
    weights = random_weights(model, seed=units)
    set_keras_weights(model, weights)
    config = LSTMConfig(
        units=(units,),
        timesteps=timesteps,
        features=features,
        outputs=outputs,
        stateful=False,
        return_sequences=return_sequences,
    )
    x = np.random.default_rng(units).normal(size=(batch_size, timesteps, features))
    x = x.astype(np.float32)
    expected = keras_call(model, x)
    y, _ = apply(config, ours(config, weights), init_state(config, batch_size), x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(np.asarray(y), expected, atol=ATOL, rtol=0)


# -- stateful --------------------------------------------------------------------------------


def test_stateful_predictions_match_keras_direct_calls_across_batches(
    stateful_pair, batches, keras_stateful_reference
):
    _, config, params, _ = stateful_pair
    predictions, state = run_ours(config, params, batches)
    for index, (got, expected) in enumerate(
        zip(predictions, keras_stateful_reference["carried"], strict=True)
    ):
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, err_msg=f"batch {index}")
    # The final state itself, h first and c second, as Keras' layer.states holds them.
    ((keras_h, keras_c),) = keras_stateful_reference["states"]
    np.testing.assert_allclose(np.asarray(state[0].h), keras_h, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(state[0].c), keras_c, atol=ATOL, rtol=0)
    # After a reset on both sides, the first batches are predicted from zero state again.
    after_reset, _ = run_ours(config, params, batches[:2], reset_state(state))
    for got, expected in zip(after_reset, keras_stateful_reference["after_reset"], strict=True):
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(after_reset[0], predictions[0], atol=ATOL, rtol=0)


def test_carried_state_changes_keras_predictions(keras_stateful_reference):
    # Without this the stateful test could pass with a model that ignores its state.
    carried = keras_stateful_reference["carried"]
    zero_state = keras_stateful_reference["zero_state"]
    np.testing.assert_allclose(carried[0], zero_state[0], atol=ATOL, rtol=0)
    for index in range(1, NUM_BATCHES):
        difference = float(np.max(np.abs(carried[index] - zero_state[index])))
        assert difference > 1e-2, f"batch {index}: the carried state changed only {difference}"


def test_stacked_stateful_predictions_match_keras(batches):
    units = (6, 3)
    model = build_keras_lstm(
        batch_size=B, timesteps=T, features=F, units=units, outputs=OUTPUTS, stateful=True
    )
    weights = random_weights(model, seed=11)
    set_keras_weights(model, weights)
    config = LSTMConfig(units=units, timesteps=T, features=F, outputs=OUTPUTS, stateful=True)
    params = ours(config, weights)
    predictions, state = run_ours(config, params, batches)
    for index, (got, expected) in enumerate(
        zip(predictions, run_keras(model, batches), strict=True)
    ):
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, err_msg=f"batch {index}")
    for (keras_h, keras_c), layer_state in zip(keras_states(model), state, strict=True):
        np.testing.assert_allclose(np.asarray(layer_state.h), keras_h, atol=ATOL, rtol=0)
        np.testing.assert_allclose(np.asarray(layer_state.c), keras_c, atol=ATOL, rtol=0)
    # Reset only the first layer on both sides: the second keeps its state.
    with keras_context():
        model.layers[0].reset_states()
    got, _ = run_ours(config, params, batches[:2], reset_state(state, 0))
    for got_batch, expected in zip(got, run_keras(model, batches[:2]), strict=True):
        np.testing.assert_allclose(got_batch, expected, atol=ATOL, rtol=0)


def _permute_gates(array, order):
    blocks = np.split(array, 4, axis=-1)  # Keras' [i, f, c, o] along the last axis
    return np.concatenate([blocks[i] for i in order], axis=-1)


def _mutate_weights(mutation, weights):
    kernel, recurrent, bias, *head = (np.array(w) for w in weights)
    units = recurrent.shape[0]
    if mutation.startswith("gates"):
        order = {"gates-swap-i-f": (1, 0, 2, 3), "gates-tf1-i-c-f-o": (0, 2, 1, 3)}[mutation]
        kernel, recurrent, bias = (_permute_gates(w, order) for w in (kernel, recurrent, bias))
    elif mutation == "recurrent-blocks-transposed":
        blocks = np.split(recurrent, 4, axis=-1)  # four (u, u) matrices
        recurrent = np.concatenate([block.T for block in blocks], axis=-1)
    elif mutation == "kernel-reshaped-not-transposed":
        # A (4u, in) matrix, as PyTorch stores it, reshaped instead of transposed.
        kernel = kernel.T.reshape(kernel.shape)
    elif mutation == "extra-forget-bias":
        # TF1's BasicLSTMCell adds forget_bias=1 at run time; Keras folds it into the bias.
        bias[units : 2 * units] += 1.0
    return [kernel, recurrent, bias, *head]


@pytest.mark.parametrize(
    "mutation",
    [
        "gates-swap-i-f",
        "gates-tf1-i-c-f-o",
        "recurrent-blocks-transposed",
        "kernel-reshaped-not-transposed",
        "extra-forget-bias",
        "state-h-c-swapped",
    ],
)
def test_mutations_break_parity(mutation, stateful_pair, batches, keras_stateful_reference):
    # Proves the parity tests are not vacuous: each classic LSTM porting bug moves our
    # predictions far outside the 1e-5 tolerance against the same Keras reference.
    _, config, params, weights = stateful_pair
    expected = keras_stateful_reference["carried"]
    if mutation == "state-h-c-swapped":
        state = init_state(config, B)
        predictions = []
        for x in batches:
            y, (layer_state,) = apply_compiled(config, params, state, x)
            predictions.append(np.asarray(y))
            state = (LSTMState(h=layer_state.c, c=layer_state.h),)
    else:
        predictions, _ = run_ours(config, ours(config, _mutate_weights(mutation, weights)), batches)
    assert max_difference(predictions, expected) > 1e-2


def test_permuted_gate_weights_give_predictions_that_differ_from_keras(batches):
    # The explicit form of the check above, through the public edge object.
    model = build_keras_lstm(
        batch_size=B, timesteps=T, features=F, units=(UNITS,), outputs=OUTPUTS, stateful=False
    )
    weights = random_weights(model, seed=5)
    set_keras_weights(model, weights)
    expected = keras_call(model, batches[0])
    edge = LSTMModel(
        (UNITS,), stateful=False, batch_size=B, timesteps=T, features=F, outputs=OUTPUTS
    )
    edge.set_weights(weights)
    np.testing.assert_allclose(edge.predict(batches[0]), expected, atol=ATOL, rtol=0)
    edge.set_weights(_mutate_weights("gates-swap-i-f", weights))
    assert float(np.max(np.abs(edge.predict(batches[0]) - expected))) > 1e-2


# -- documenting Keras 3 on the JAX backend ------------------------------------------------------


@pytest.fixture
def jax_backend():
    if keras.backend.backend() != "jax":
        pytest.skip(f"documents the JAX backend; Keras runs on {keras.backend.backend()!r}")


def test_keras_jax_predict_carries_no_state(
    jax_backend, stateful_pair, batches, keras_stateful_reference
):
    # Documents Keras 3.15 behaviour, not ours: on the JAX backend model.predict of a
    # stateful LSTM starts every batch from zero state and leaves layer.states at zero; only
    # direct calls model(x) carry state. If this fails, Keras changed: update bench/README.
    model = stateful_pair[0]
    reset_keras_states(model)
    with keras_context():
        predicted = model.predict(batches.reshape(NUM_BATCHES * B, T, F), batch_size=B, verbose=0)
    for h, c in keras_states(model):
        assert not np.any(h) and not np.any(c), "Keras' predict now leaves a non-zero state"
    np.testing.assert_allclose(
        predicted, np.concatenate(keras_stateful_reference["zero_state"]), atol=ATOL, rtol=0
    )
    assert (
        float(np.max(np.abs(predicted - np.concatenate(keras_stateful_reference["carried"]))))
        > 1e-2
    )


def test_keras_jax_fit_evaluate_train_on_batch_carry_no_state(
    jax_backend, stateful_pair, batches, keras_stateful_reference
):
    # Documents Keras 3.15 behaviour, not ours (see the test above). A learning rate of zero
    # keeps the weights, so a loss could only differ from its zero-state value by the state.
    model, _, _, weights = stateful_pair
    targets = np.random.default_rng(2).normal(size=(NUM_BATCHES, B, OUTPUTS)).astype(np.float32)
    x_all = batches.reshape(NUM_BATCHES * B, T, F)
    y_all = targets.reshape(NUM_BATCHES * B, OUTPUTS)

    def losses(predictions):
        return [float(np.mean((p - y) ** 2)) for p, y in zip(predictions, targets, strict=True)]

    zero_state_losses = losses(keras_stateful_reference["zero_state"])
    carried_losses = losses(keras_stateful_reference["carried"])
    assert max(abs(a - b) for a, b in zip(carried_losses, zero_state_losses, strict=True)) > 1e-3

    reset_keras_states(model)
    with keras_context():
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
        train_losses = [
            float(model.train_on_batch(x, y)) for x, y in zip(batches, targets, strict=True)
        ]
        evaluated = model.evaluate(x_all, y_all, batch_size=B, verbose=0)
        fitted = model.fit(x_all, y_all, batch_size=B, epochs=1, shuffle=False, verbose=0)
    states = keras_states(model)
    set_keras_weights(model, weights)  # the shared model stays as the fixture made it
    reset_keras_states(model)
    np.testing.assert_allclose(train_losses, zero_state_losses, rtol=1e-5)
    np.testing.assert_allclose(evaluated, np.mean(zero_state_losses), rtol=1e-5)
    np.testing.assert_allclose(fitted.history["loss"][0], np.mean(zero_state_losses), rtol=1e-5)
    for h, c in states:
        assert not np.any(h) and not np.any(c), "Keras' training now leaves a non-zero state"


# -- the edge objects --------------------------------------------------------------------------


def test_lstm_model_set_weights_predicts_as_keras_direct_calls(
    stateful_pair, batches, keras_stateful_reference
):
    _, _, _, weights = stateful_pair
    edge = LSTMModel(
        (UNITS,), stateful=True, batch_size=B, timesteps=T, features=F, outputs=OUTPUTS
    )
    edge.set_weights(weights)
    for got, expected in zip(edge.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, expected)
    expected = keras_stateful_reference["carried"]
    # Keras' order: batch k holds samples k*B .. k*B+B-1; two predict calls continue the state.
    first = edge.predict(batches[:2].reshape(2 * B, T, F))
    second = edge.predict(batches[2:].reshape((NUM_BATCHES - 2) * B, T, F))
    np.testing.assert_allclose(
        np.concatenate([first, second]), np.concatenate(expected), atol=ATOL, rtol=0
    )
    edge.reset_states()
    np.testing.assert_allclose(
        edge.predict(batches[:2].reshape(2 * B, T, F)),
        np.concatenate(keras_stateful_reference["after_reset"]),
        atol=ATOL,
        rtol=0,
    )


def test_mlp_predictions_match_keras():
    timesteps, features, hidden, outputs = 4, 3, (9, 6), 2
    model = build_keras_mlp(timesteps=timesteps, features=features, hidden=hidden, outputs=outputs)
    weights = random_weights(model, seed=17)
    set_keras_weights(model, weights)
    x = np.random.default_rng(17).normal(size=(8, timesteps, features)).astype(np.float32)
    expected = keras_call(model, x)
    config = MLPConfig(hidden=hidden, timesteps=timesteps, features=features, outputs=outputs)
    y, _ = apply(config, ours(config, weights), (), x)
    np.testing.assert_allclose(np.asarray(y), expected, atol=ATOL, rtol=0)
    edge = MLPModel(hidden, timesteps=timesteps, features=features, outputs=outputs)
    edge.set_weights(weights)
    np.testing.assert_allclose(edge.predict(x), expected, atol=ATOL, rtol=0)
    # The ReLU clips some units here, so a network without it would fail the comparison.
    pre_activation = x.reshape(8, -1) @ weights[0] + weights[1]
    assert np.any(pre_activation < 0) and np.any(pre_activation > 0)
