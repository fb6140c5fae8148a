import os
import re
import zipfile

import numpy as np
import pytest

from lstmlab import keras_io as kx  # noqa: E402
from lstmlab.core.model import (  # noqa: E402
    LSTMConfig,
    MLPConfig,
    apply,
    init_params,
    init_state,
    to_keras_weights,
)
from lstmlab.forecaster import Forecaster  # noqa: E402
from lstmlab.live.state_store import SeriesStore  # noqa: E402
from lstmlab.model_folder import SavedModel, load_model, save_model  # noqa: E402
from tests.parity.keras_helpers import (  # noqa: E402
    build_keras_lstm,
    build_keras_mlp,
    keras_call,
    keras_context,
    keras_states,
    random_weights,
    set_keras_weights,
)

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="Keras is not installed: pip install 'lstmlab[keras]'")


TOLERANCE = 1e-5


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _keras_lstm(seed, **kwargs):
    model = build_keras_lstm(**kwargs)
    set_keras_weights(model, random_weights(model, seed))
    return model


ZEROS = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}


# Zero initializers: the tests set random weights; Keras' default initializers compile once
# per shape (about a second each).
def _lstm(units, **options):
    return keras.layers.LSTM(units, **ZEROS, **options)


def _dense(units, activation=None, **options):
    return keras.layers.Dense(units, activation, kernel_initializer="zeros", **options)


def _sequential(*layers):
    with keras_context():
        return keras.Sequential(list(layers))


def _predict(saved, x, state=None):
    start = init_state(saved.config, x.shape[0]) if state is None else tuple(state)
    y, new_state = apply(saved.config, saved.params, start, x)
    return np.asarray(y), new_state


def _import_via_folder(model, tmp_path, name="folder"):
    # verify=False: the tests compare the predictions themselves
    save_model(tmp_path / name, kx.from_keras(model, verify=False), opener=SeriesStore)
    return load_model(tmp_path / name, states=SeriesStore)


def _assert_close(ours, theirs):
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)


# --------------------------------------------------------------------------- round trips


@pytest.mark.slow
def test_stateless_lstm_round_trip_predicts_as_keras(tmp_path):
    model = _keras_lstm(
        1, batch_size=None, timesteps=5, features=2, units=[6], outputs=3, stateful=False
    )
    x = _random((4, 5, 2), seed=2)
    saved = _import_via_folder(model, tmp_path)
    assert saved.config == LSTMConfig(
        units=(6,), timesteps=5, features=2, outputs=3, stateful=False, return_sequences=False
    )
    assert saved.states_meta == {"series": []}
    ours, _ = _predict(saved, x)
    _assert_close(ours, keras_call(model, x))

    kx.export_keras(tmp_path / "folder", tmp_path / "back.keras")
    back = kx.load_keras(tmp_path / "back.keras")
    _assert_close(keras_call(back, x), ours)
    for mine, theirs in zip(back.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the weights travel bit for bit

    # the comparison can fail: a perturbed recurrent kernel changes the predictions
    perturbed = saved.params._replace(
        lstm=(
            saved.params.lstm[0]._replace(
                recurrent_kernel=saved.params.lstm[0].recurrent_kernel * 1.01
            ),
        )
    )
    changed, _ = apply(saved.config, perturbed, init_state(saved.config, 4), x)
    assert np.max(np.abs(np.asarray(changed) - ours)) > 100 * TOLERANCE


@pytest.mark.slow
def test_stateful_stack_carries_the_keras_state_into_the_folder_and_back(tmp_path):
    model = _keras_lstm(
        3, batch_size=2, timesteps=3, features=2, units=[4, 5], outputs=2, stateful=True
    )
    x1, x2, x3 = (_random((2, 3, 2), seed=s) for s in (4, 5, 6))
    keras_call(model, x1)  # Keras now carries a non-zero state
    carried = keras_states(model)
    assert all(np.abs(h).sum() > 0 for h, _ in carried)

    saved = _import_via_folder(model, tmp_path)
    assert saved.states_meta == {"series": ["default.0", "default.1"]}
    state = kx.folder_state(saved)
    for ours, (h, c) in zip(state, carried, strict=True):
        np.testing.assert_array_equal(ours.h, h)
        np.testing.assert_array_equal(ours.c, c)

    # import -> predict continues Keras' state
    ours2, after2 = _predict(saved, x2, state)
    _assert_close(ours2, keras_call(model, x2))

    # export -> load_keras continues the same state too (Keras' own save drops it)
    kx.export_keras(tmp_path / "folder", tmp_path / "model.keras")
    back = kx.load_keras(tmp_path / "model.keras")
    _assert_close(keras_call(back, x2), ours2)
    ours3, _ = _predict(saved, x3, after2)
    _assert_close(keras_call(back, x3), ours3)

    # and file -> folder again gives the stored state and weights bit for bit
    kx.import_keras(tmp_path / "model.keras", tmp_path / "again")
    again = load_model(tmp_path / "again", states=SeriesStore)
    for name, array in saved.states.items():
        np.testing.assert_array_equal(again.states[name], array)
    for ours, theirs in zip(
        to_keras_weights(again.config, again.params),
        to_keras_weights(saved.config, saved.params),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_a_plain_keras_save_loads_with_zero_state_as_keras_does(tmp_path):
    model = _keras_lstm(
        7, batch_size=1, timesteps=2, features=1, units=[3], outputs=1, stateful=True
    )
    keras_call(model, _random((1, 2, 1), seed=8))
    with keras_context():
        model.save(tmp_path / "plain.keras")  # Keras does not write layer.states
    saved = kx.import_keras(tmp_path / "plain.keras", tmp_path / "folder")
    assert saved.states_meta == {"series": ["default"]}
    np.testing.assert_array_equal(saved.states["rnn.0.h"], np.zeros((1, 3), np.float32))
    reloaded = kx.load_keras(tmp_path / "plain.keras")
    x = _random((1, 2, 1), seed=9)
    _assert_close(_predict(saved, x)[0], keras_call(reloaded, x))


def test_imported_stateful_model_observes_on_from_the_keras_state(tmp_path):
    model = _keras_lstm(
        11, batch_size=1, timesteps=4, features=1, units=[5], outputs=1, stateful=True
    )
    keras_call(model, _random((1, 4, 1), seed=12))
    before = keras_states(model)
    saved = kx.from_keras(model)  # verifies on a probe call, then restores Keras' state
    for (h0, c0), (h1, c1) in zip(before, keras_states(model), strict=True):
        np.testing.assert_array_equal(h1, h0)
        np.testing.assert_array_equal(c1, c0)
    save_model(tmp_path / "folder", saved, opener=SeriesStore)
    readings = _random((6,), seed=13)
    # Keras' stateful layout: the model reads overlapping windows of its 4 timesteps, one
    # call per window, carrying its state (a reading's window ends at it): the windows of
    # readings 0-3, 1-4 and 2-5 after the imported state; no forecast before 4 readings
    served = Forecaster.load(tmp_path / "folder")
    assert served.observe("default", readings[:3]).values is None
    for start in range(3):
        expected = keras_call(model, readings[start : start + 4].reshape(1, 4, 1))
    forecast = served.observe("default", readings[3:])
    np.testing.assert_allclose(forecast.values, expected, rtol=0, atol=TOLERANCE)


def test_sequence_heads_dense_and_time_distributed(tmp_path):
    dense = _keras_lstm(
        14,
        batch_size=1,
        timesteps=3,
        features=2,
        units=[4],
        outputs=2,
        stateful=True,
        return_sequences=True,
    )
    x = _random((1, 3, 2), seed=15)
    saved = _import_via_folder(dense, tmp_path, "dense")
    assert saved.config.return_sequences and saved.states_meta == {"series": ["default"]}
    _assert_close(_predict(saved, x, kx.folder_state(saved))[0], keras_call(dense, x))

    distributed = _sequential(
        keras.Input(shape=(3, 2)),
        _lstm(4, return_sequences=True),
        keras.layers.TimeDistributed(_dense(3)),
    )
    set_keras_weights(distributed, random_weights(distributed, 16))
    saved = _import_via_folder(distributed, tmp_path, "distributed")
    assert saved.config.return_sequences and saved.config.outputs == 3
    _assert_close(_predict(saved, x)[0], keras_call(distributed, x))


def test_no_head_dropout_and_no_bias_import_with_the_same_numbers(tmp_path):
    model = _sequential(
        keras.Input(shape=(None, 2)),
        _lstm(4, return_sequences=True, dropout=0.3, use_bias=False),
        keras.layers.Dropout(0.5),
        _lstm(3),
    )
    set_keras_weights(model, random_weights(model, 17))
    saved = _import_via_folder(model, tmp_path)
    assert saved.config == LSTMConfig(
        units=(4, 3), timesteps=1, features=2, outputs=3, stateful=False
    )
    np.testing.assert_array_equal(saved.params.head.kernel, np.eye(3, dtype=np.float32))
    x = _random((2, 5, 2), seed=18)
    _assert_close(_predict(saved, x)[0], keras_call(model, x))
    assert kx.from_keras(model, timesteps=5).config.timesteps == 5

    mlp = _sequential(
        keras.Input(shape=(3, 2)),
        keras.layers.Flatten(),
        _dense(5, activation="relu", use_bias=False),
        keras.layers.Dropout(0.2),
        _dense(2),
    )
    set_keras_weights(mlp, random_weights(mlp, 19))
    saved = _import_via_folder(mlp, tmp_path, "mlp")
    assert saved.config == MLPConfig(hidden=(5,), timesteps=3, features=2, outputs=2)
    x = _random((4, 3, 2), seed=20)
    _assert_close(_predict(saved, x)[0], keras_call(mlp, x))


def test_mlp_round_trip(tmp_path):
    model = build_keras_mlp(timesteps=4, features=2, hidden=[8, 6], outputs=3)
    set_keras_weights(model, random_weights(model, 21))
    saved = _import_via_folder(model, tmp_path)
    assert saved.config == MLPConfig(hidden=(8, 6), timesteps=4, features=2, outputs=3)
    x = _random((5, 4, 2), seed=22)
    ours, _ = _predict(saved, x)
    _assert_close(ours, keras_call(model, x))
    kx.export_keras(tmp_path / "folder", tmp_path / "mlp.keras")
    with zipfile.ZipFile(tmp_path / "mlp.keras") as archive:
        assert kx.STATES_MEMBER not in archive.namelist()  # nothing carried
    _assert_close(keras_call(kx.load_keras(tmp_path / "mlp.keras"), x), ours)


# --------------------------------------------------------------------------- export choices


def _stateful_folder(tmp_path, series):
    config = LSTMConfig(units=(3,), timesteps=2, features=1, outputs=1, stateful=True)
    model = _keras_lstm(
        23,
        batch_size=len(series),
        timesteps=2,
        features=1,
        units=[3],
        outputs=1,
        stateful=True,
    )
    keras_call(model, _random((len(series), 2, 1), seed=24))
    saved = _import_via_folder(model, tmp_path)
    assert saved.config == config
    return saved


def test_export_chooses_series_rows_and_checks_the_batch_size(tmp_path):
    saved = _stateful_folder(tmp_path, ["a", "b", "c"])
    chosen = kx.folder_state(saved, ["default.2", "default.0"])
    np.testing.assert_array_equal(chosen[0].h, saved.states["rnn.0.h"][[2, 0]])
    np.testing.assert_array_equal(chosen[0].c, saved.states["rnn.0.c"][[2, 0]])

    model = kx.export_keras(tmp_path / "folder", tmp_path / "two.keras", series=["default.2"])
    assert model.inputs[0].shape[0] == 1
    np.testing.assert_array_equal(keras_states(model)[0][0], saved.states["rnn.0.h"][[2]])

    expected = (
        "the model folder has no series ['x']; its series are "
        "['default.0', 'default.1', 'default.2']"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        kx.folder_state(saved, ["x"])
    expected = (
        "batch_size=2 disagrees with the 3 series ['default.0', 'default.1', 'default.2'] "
        "whose states fill the batch rows; drop --batch-size or choose that many --series"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        kx.folder_state(saved, batch_size=2)


def test_a_stateful_folder_without_series_exports_zero_state_of_the_batch_size(tmp_path):
    config = LSTMConfig(units=(3,), timesteps=2, features=1, outputs=1)
    saved = SavedModel(
        config=config,
        params=init_params(config, 0),
        recipe={
            "kind": "stateful",
            "window": 2,
            "columns": ["value"],
            "time_col": None,
            "freq": None,
        },
        states={},
        states_meta={},
    )
    state = kx.folder_state(saved, batch_size=4)
    assert [s.h.shape for s in state] == [(4, 3)]
    assert not np.any(state[0].h) and not np.any(state[0].c)
    model = kx.to_keras(saved, state)
    assert model.inputs[0].shape == (4, 2, 1)
    x = _random((4, 2, 1), seed=25)
    _assert_close(keras_call(model, x), _predict(saved, x)[0])


def test_a_model_with_an_input_normalisation_is_not_exported(tmp_path):
    # A Keras Sequential holds the raw network only: exporting it would silently drop the
    # per-window normalisation that apply performs around it.
    config = MLPConfig(hidden=(4,), timesteps=3, norm="difference")
    save_model(
        tmp_path / "folder",
        SavedModel(config=config, params=init_params(config, 0)),
        opener=SeriesStore,
    )
    expected = (
        "the model normalises each input window (norm='difference'), which a Keras Sequential "
        "cannot represent: its exported network would read raw windows; export a model "
        "trained with norm='none'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        kx.export_keras(tmp_path / "folder", tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    plain = SavedModel(config=MLPConfig(hidden=(4,), timesteps=3), params=init_params(config, 0))
    kx.to_keras(plain)  # the same network without the normalisation exports


# --------------------------------------------------------------------------- errors


SUPPORTED = (
    "supported: InputLayer; LSTM (tanh, sigmoid, not go_backwards) layers, all stateful or all "
    "stateless, then at most one Dense head with linear activation (or "
    "TimeDistributed(Dense) on sequences); or an MLP: Flatten, Dense(relu)..., Dense(linear); "
    "Dropout anywhere (identity at inference)"
)


def _raises(model, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        kx.from_keras(model)


def test_unsupported_layers_are_all_named():
    model = _sequential(
        keras.Input(shape=(6, 2)),
        keras.layers.Conv1D(4, 3, name="conv", kernel_initializer="zeros"),
        keras.layers.GRU(4, name="gru", return_sequences=True, **ZEROS),
        _lstm(3, name="lstm"),
        _dense(1, name="out"),
    )
    model.name = "net"
    _raises(
        model,
        "cannot import the Keras model 'net': unsupported layer(s) 'conv' (Conv1D), "
        f"'gru' (GRU); {SUPPORTED}",
    )
    bidirectional = _sequential(
        keras.Input(shape=(6, 2)),
        keras.layers.Bidirectional(_lstm(3), name="both"),
        _dense(1),
    )
    bidirectional.name = "bi"
    _raises(
        bidirectional,
        f"cannot import the Keras model 'bi': unsupported layer(s) 'both' (Bidirectional); "
        f"{SUPPORTED}",
    )


def test_unsupported_options_and_structures_are_named():
    relu_head = _sequential(keras.Input(shape=(2, 1)), _lstm(3), _dense(1, "relu", name="h"))
    _raises(
        relu_head,
        "layer 'h' (Dense) has activation 'relu'; lstmlab's Dense head uses 'linear'; " + SUPPORTED,
    )
    relu_lstm = _sequential(keras.Input(shape=(2, 1)), _lstm(3, activation="relu", name="r"))
    _raises(
        relu_lstm,
        "layer 'r' (LSTM) has activation='relu'; lstmlab's LSTM needs activation='tanh'; "
        + SUPPORTED,
    )
    backwards = _sequential(keras.Input(shape=(2, 1)), _lstm(3, go_backwards=True, name="b"))
    _raises(
        backwards,
        "layer 'b' (LSTM) has go_backwards=True; lstmlab's LSTM needs go_backwards=False; "
        + SUPPORTED,
    )
    two_heads = _sequential(
        keras.Input(shape=(2, 1)),
        _lstm(3),
        _dense(2, name="d1"),
        _dense(1, name="d2"),
    )
    _raises(
        two_heads,
        "layer 'd2' (Dense) follows the LSTM layers; lstmlab models end with at most one Dense "
        "head after them; " + SUPPORTED,
    )
    dense_first = _sequential(keras.Input(shape=(2, 1)), _dense(2, name="pre"), _lstm(3))
    _raises(
        dense_first,
        "layer 'pre' (Dense) comes before an LSTM layer; lstmlab models put all LSTM layers "
        "first; " + SUPPORTED,
    )
    mixed = _sequential(
        keras.Input(batch_shape=(1, 2, 1)),
        _lstm(3, stateful=True, return_sequences=True),
        _lstm(3, name="free"),
    )
    mixed.name = "mixed"
    _raises(
        mixed,
        "the Keras model 'mixed' mixes stateful and stateless LSTM layers (stateless: 'free' "
        "(LSTM)); make all LSTM layers stateful or none",
    )


def test_input_and_file_errors(tmp_path):
    variable = _sequential(keras.Input(shape=(None, 2)), _lstm(3))
    variable.name = "v"
    kx.from_keras(variable, timesteps=4)  # a variable time axis takes any timesteps
    fixed = _sequential(keras.Input(shape=(5, 2)), _lstm(3))
    fixed.name = "f"
    with pytest.raises(
        ValueError,
        match=re.escape(
            "timesteps=4 was given, but the Keras model 'f' reads 5 time steps; drop "
            "--timesteps or pass 5"
        ),
    ):
        kx.from_keras(fixed, timesteps=4)
    with pytest.raises(
        ValueError, match=re.escape(f"no Keras model file at {tmp_path / 'x.keras'}")
    ):
        kx.load_keras(tmp_path / "x.keras")
    (tmp_path / "x.h5").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'x.h5'} is not a Keras 3")):
        kx.load_keras(tmp_path / "x.h5")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"the Keras file must end in .keras (Keras 3's format), got {tmp_path / 'm.h5'}; "
            f"pass e.g. --out {tmp_path / 'm.keras'}"
        ),
    ):
        kx.export_keras(tmp_path / "missing", tmp_path / "m.h5")


def test_a_model_lstmlab_would_misread_fails_the_import_check():
    inputs = keras.Input(shape=(2, 1))
    shared = _dense(3, name="shared")
    with keras_context():
        outputs = shared(shared(_lstm(3)(inputs)))  # one Dense applied twice: not a chain
        model = keras.Model(inputs, outputs, name="twice")
    set_keras_weights(model, random_weights(model, 26))
    with pytest.raises(ValueError) as error:
        kx.from_keras(model)
    message = str(error.value)
    assert message.startswith(
        "the imported model does not reproduce the Keras model 'twice': outputs (2, 3) versus "
        "Keras' (2, 3), largest difference "
    )
    assert message.endswith(
        "; the model's layers are not one plain chain lstmlab can represent; " + SUPPORTED
    )
    kx.from_keras(model, verify=False)  # the structure alone looks like LSTM + Dense
