import os
import re
import sys

import numpy as np
import pytest

from lstmlab import cli
from lstmlab.models import LSTMConfig, init_params
from lstmlab.persist import SavedModel, load_model, save_model

os.environ.setdefault("KERAS_BACKEND", "jax")

NO_KERAS = (
    "Keras model exchange needs Keras 3, which is not installed; install it with "
    "pip install 'lstmlab[keras]'"
)


@pytest.fixture
def main():
    """``lstmlab.cli.main``, which registers import-keras and export-keras."""
    return cli.main


@pytest.fixture
def keras():
    return pytest.importorskip(
        "keras", reason="Keras is not installed: pip install 'lstmlab[keras]'"
    )


def _stateful_keras_file(keras, path, seed=0):
    from lstmlab import keras_exchange as kx
    from tests.parity.keras_helpers import (
        build_keras_lstm,
        keras_call,
        random_weights,
        set_keras_weights,
    )

    model = build_keras_lstm(
        batch_size=2, timesteps=3, features=1, units=[4], outputs=1, stateful=True
    )
    set_keras_weights(model, random_weights(model, seed))
    keras_call(model, np.random.default_rng(seed).normal(size=(2, 3, 1)).astype(np.float32))
    kx.save_keras(model, path)
    return model


def test_import_then_export_through_the_command_line(main, keras, tmp_path, capsys):
    from lstmlab import keras_exchange as kx
    from tests.parity.keras_helpers import keras_call, keras_states

    model = _stateful_keras_file(keras, tmp_path / "in.keras")
    folder = tmp_path / "folder"
    assert main(["import-keras", str(tmp_path / "in.keras"), "--save", str(folder)]) == 0
    assert capsys.readouterr().out == (
        f"imported {tmp_path / 'in.keras'} (stateful LSTM, units [4], 3 time step(s) x 1 "
        "feature(s) -> 1 output(s))\n"
        "carried state saved for series default.0, default.1\n"
        f"Model saved to {folder.resolve()}\n"
    )
    saved = load_model(folder)
    np.testing.assert_array_equal(saved.states["rnn.0.h"], keras_states(model)[0][0])

    out = tmp_path / "out.keras"
    args = ["export-keras", str(folder), "--out", str(out), "--series", "default.1"]
    assert main(args) == 0
    assert capsys.readouterr().out == (
        f"exported {folder} (stateful LSTM, units [4], 3 time step(s) x 1 feature(s) -> 1 "
        "output(s)) as Keras model 'lstmlab'\n"
        f"Keras model written to {out.resolve()}\n"
    )
    back = kx.load_keras(out)
    np.testing.assert_array_equal(keras_states(back)[0][0], keras_states(model)[0][0][1:])
    x = np.random.default_rng(3).normal(size=(2, 3, 1)).astype(np.float32)
    expected = keras_call(model, x)[1:]  # row 1 of the original continues as the only row
    np.testing.assert_allclose(keras_call(back, x[1:]), expected, rtol=0, atol=1e-5)


def test_existing_destinations_need_overwrite(main, keras, tmp_path, capsys):
    _stateful_keras_file(keras, tmp_path / "in.keras")
    folder = tmp_path / "folder"
    assert main(["import-keras", str(tmp_path / "in.keras"), "--save", str(folder)]) == 0
    capsys.readouterr()
    assert main(["import-keras", str(tmp_path / "in.keras"), "--save", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"lstmlab: error: model folder {folder} already holds a model; pass --overwrite to "
        "replace it or --save to choose another folder\n"
    )
    args = ["import-keras", str(tmp_path / "in.keras"), "--save", str(folder), "--overwrite"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["export-keras", str(folder), "--out", str(tmp_path / "in.keras")]) == 2
    assert capsys.readouterr().err == (
        f"lstmlab: error: {tmp_path / 'in.keras'} already exists; pass --overwrite to replace "
        "it or --out to choose another file\n"
    )


def test_unsupported_layers_exit_2_naming_them(main, keras, tmp_path, capsys):
    from tests.parity.keras_helpers import keras_context

    with keras_context():
        model = keras.Sequential(
            [
                keras.Input(shape=(3, 1)),
                keras.layers.GRU(2, name="gru", kernel_initializer="zeros"),
                keras.layers.Dense(1, kernel_initializer="zeros"),
            ],
            name="net",
        )
        model.save(tmp_path / "gru.keras")
    code = main(["import-keras", str(tmp_path / "gru.keras"), "--save", str(tmp_path / "f")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "lstmlab: error: cannot import the Keras model 'net': unsupported layer(s) 'gru' (GRU); "
        "supported: InputLayer; LSTM"
    )
    assert not (tmp_path / "f").exists()


def test_export_notes_that_the_scaler_stays_behind(main, keras, tmp_path, capsys):
    config = LSTMConfig(units=(3,), timesteps=2, stateful=False)
    scaler = {"kind": "minmax", "columns": ["value"], "offset": [0.0], "scale": [2.0]}
    recipe = {
        "kind": "stateless",
        "window": 2,
        "columns": ["value"],
        "time_col": None,
        "freq": None,
    }
    save_model(
        tmp_path / "folder",
        SavedModel(config=config, params=init_params(config, 0), recipe=recipe, scaler=scaler),
    )
    out = tmp_path / "m.keras"
    assert main(["export-keras", str(tmp_path / "folder"), "--out", str(out)]) == 0
    assert (
        "note: the folder's minmax scaler is not part of the Keras model; feed it scaled values\n"
        in capsys.readouterr().out
    )
    assert out.is_file()


def test_without_keras_the_commands_say_how_to_install_it(main, monkeypatch, tmp_path, capsys):
    from lstmlab.keras_exchange import keras_module

    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` raise ImportError
    with pytest.raises(ValueError, match=re.escape(NO_KERAS)):
        keras_module()
    (tmp_path / "m.keras").write_bytes(b"")
    code = main(["import-keras", str(tmp_path / "m.keras"), "--save", str(tmp_path / "f")])
    assert code == 2
    assert capsys.readouterr().err == f"lstmlab: error: {NO_KERAS}\n"
