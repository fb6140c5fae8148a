import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstmlab.core.model import LSTMConfig, MLPConfig, apply, init_params, init_state
from lstmlab.live.state_store import SeriesStore
from lstmlab.model_folder import (
    CONFIG_FILE,
    FORMAT_VERSION,
    ModelFolderError,
    SavedModel,
    atomic_write_bytes,
    flatten_params,
    load_model,
    model_lock,
    save_model,
)

CONFIG = LSTMConfig(units=(5, 3), timesteps=4, features=2, outputs=2, return_sequences=True)


def _saved(seed=0, config=CONFIG, name="A"):
    rng = np.random.default_rng(seed)
    return SavedModel(
        config=config,
        params=init_params(config, seed),
        recipe={"window": 4, "columns": ["a", "b"], "freq": "15min"},
        scaler={
            "kind": "minmax",
            "columns": ["a", "b"],
            "offset": [0.1, 0.2],
            "scale": [3.0, 1 / 3],
        },
        metrics={"name": name, "loss": [0.5, 0.25]},
        states={
            "rnn.0.h": rng.normal(size=(3, 5)).astype(np.float32),
            "seen": np.array([1, 2, 3], np.int64),
        },
        states_meta={"series": ["x", "y", "ünï code/id"]},
    )


def _data_file(folder, kind):
    return folder / json.loads((folder / CONFIG_FILE).read_text())["files"][kind]["name"]


def test_round_trip_gives_bit_identical_predictions(tmp_path):
    saved = _saved()
    save_model(tmp_path / "m", saved, opener=SeriesStore)
    loaded = load_model(tmp_path / "m", states=SeriesStore)
    assert loaded.config == saved.config
    assert (loaded.recipe, loaded.scaler, loaded.metrics) == (
        saved.recipe,
        saved.scaler,
        saved.metrics,
    )
    assert loaded.states_meta == saved.states_meta
    assert loaded.library_version == "0.1.0"
    for name, array in saved.states.items():
        assert loaded.states[name].dtype == array.dtype
        assert np.array_equal(loaded.states[name], array)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 7, 2)), jnp.float32)
    state = init_state(CONFIG, 2)
    forward = jax.jit(apply, static_argnums=0)
    before, _ = forward(CONFIG, saved.params, state, x)
    after, _ = forward(CONFIG, loaded.params, state, x)
    assert np.array_equal(np.asarray(before), np.asarray(after))
    # the comparison can fail: a perturbed weight changes the predictions
    bumped = loaded.params._replace(
        head=loaded.params.head._replace(bias=loaded.params.head.bias + 1e-3)
    )
    assert not np.array_equal(np.asarray(forward(CONFIG, bumped, state, x)[0]), np.asarray(before))


def test_weights_are_stored_under_flattened_key_paths(tmp_path):
    import safetensors.numpy

    save_model(tmp_path / "m", _saved(), opener=SeriesStore)
    names = set(safetensors.numpy.load_file(_data_file(tmp_path / "m", "weights")))
    assert names == {
        "lstm.0.kernel",
        "lstm.0.recurrent_kernel",
        "lstm.0.bias",
        "lstm.1.kernel",
        "lstm.1.recurrent_kernel",
        "lstm.1.bias",
        "head.kernel",
        "head.bias",
    }


def test_mlp_round_trip(tmp_path):
    config = MLPConfig(hidden=(6, 4), timesteps=3, features=1, outputs=1)
    saved = _saved(config=config)
    save_model(tmp_path / "m", saved, opener=SeriesStore)
    loaded = load_model(tmp_path / "m", states=SeriesStore)
    for a, b in zip(jax.tree.leaves(saved.params), jax.tree.leaves(loaded.params), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_resave_replaces_and_cleans_old_files(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, _saved(0, name="A"), opener=SeriesStore)
    first = _data_file(folder, "weights")
    save_model(folder, _saved(1, name="B"), opener=SeriesStore)
    assert not first.exists()
    assert load_model(folder, states=SeriesStore).metrics["name"] == "B"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 5  # .lock, config.json, weights, metrics, the state store
    assert not [n for n in names if n.startswith(".tmp-")]


def test_newer_format_version_is_refused(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    message = (
        f"model folder {folder} has format version {FORMAT_VERSION + 1} (written by "
        f"lstmlab 0.1.0); this lstmlab 0.1.0 reads up to format version "
        f"{FORMAT_VERSION}; upgrade lstmlab"
    )
    with pytest.raises(ModelFolderError, match=re.escape(message)):
        load_model(folder, states=SeriesStore)


def test_a_version_2_folder_loads_and_a_version_1_one_is_refused(tmp_path):
    # version 3 only added the optional "arrays" file: a version 2 folder reads as it is
    from lstmlab import model_folder

    folder = tmp_path / "m"
    save_model(folder, _saved(0, name="A"), opener=SeriesStore)
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["format_version"] == FORMAT_VERSION == 3 and "arrays" not in config["files"]
    for version, loads in ((2, True), (1, False)):
        config.pop("checksum", None)
        config["format_version"] = version
        config["checksum"] = model_folder._sha256(model_folder._canonical(config))
        (folder / CONFIG_FILE).write_text(json.dumps(config))
        if loads:
            assert load_model(folder, states=SeriesStore).metrics["name"] == "A"
        else:
            with pytest.raises(ModelFolderError, match="this lstmlab reads format versions 2 to 3"):
                load_model(folder, states=SeriesStore)


def test_arrays_beside_the_weights_round_trip_with_nan(tmp_path):
    folder = tmp_path / "m"
    arrays = {"calibration.residuals.0": np.array([[1.5, np.nan], [np.inf, -2.0]])}
    save_model(folder, dataclasses.replace(_saved(0), arrays=arrays), opener=SeriesStore)
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["files"]["arrays"]["name"].startswith("arrays.")
    loaded = load_model(folder, states=SeriesStore).arrays
    np.testing.assert_array_equal(
        loaded["calibration.residuals.0"], arrays["calibration.residuals.0"]
    )


def test_missing_file_is_reported(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    weights = _data_file(folder, "weights")
    weights.unlink()
    with pytest.raises(
        ModelFolderError,
        match=re.escape(
            f"model folder {folder} is incomplete: {weights.name}, listed in config.json, is "
            "missing; restore it or save the model again"
        ),
    ):
        load_model(folder, states=SeriesStore)
    (folder / CONFIG_FILE).unlink()
    with pytest.raises(ModelFolderError, match="config.json is missing"):
        load_model(folder, states=SeriesStore)
    with pytest.raises(ModelFolderError, match="no model folder at"):
        load_model(tmp_path / "nowhere", states=SeriesStore)


@pytest.mark.parametrize("kind", ["weights", "metrics"])
def test_one_flipped_byte_is_detected_by_the_checksum(tmp_path, kind):
    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    target = _data_file(folder, kind)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(
        ModelFolderError, match=re.escape(f"checksum mismatch: {target} has SHA-256")
    ):
        load_model(folder, states=SeriesStore)


def test_edited_config_is_detected(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    text = (folder / CONFIG_FILE).read_text()
    (folder / CONFIG_FILE).write_text(text.replace('"window": 4', '"window": 5'))
    with pytest.raises(ModelFolderError, match="checksum mismatch in .*config.json"):
        load_model(folder, states=SeriesStore)
    (folder / CONFIG_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ModelFolderError, match="is not valid JSON"):
        load_model(folder, states=SeriesStore)


def test_weights_of_another_model_are_refused(tmp_path):
    import lstmlab.model_folder as persist

    folder = tmp_path / "m"
    saved = _saved()
    other = init_params(LSTMConfig(units=(4,), features=2, outputs=2), 0)
    with pytest.raises(ModelFolderError, match="the weights do not match the model config"):
        persist.unflatten_params(saved.config, flatten_params(other))
    save_model(folder, saved, opener=SeriesStore)
    assert load_model(folder, states=SeriesStore).config == CONFIG


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelFolderError, match="holds files that are not part of an lstmlab model"):
        save_model(tmp_path, _saved(), opener=SeriesStore)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_model_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path):
    folder = tmp_path / "m"
    entered = threading.Event()

    def other_thread():
        with model_lock(folder):
            entered.set()

    with model_lock(folder):
        with model_lock(folder):  # nested in the same thread: passes through
            pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        # the other thread must wait for us; under a process-wide re-entrancy it walks in
        entered_while_held = entered.wait(timeout=0.5)
    thread.join(timeout=10)
    assert not entered_while_held
    assert entered.is_set()  # and it gets the lock once we release it


def test_atomic_write_replaces_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


_SAVER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from lstmlab.core.layers import DenseParams
    from lstmlab.core.layers import LSTMParams
    from lstmlab.core.model import LSTMConfig, StackedParams
    from lstmlab.live.state_store import SeriesStore
    from lstmlab.model_folder import SavedModel, save_model

    config = LSTMConfig(units=(16,), features=1, outputs=1)

    def model(seed, name):
        # NumPy leaves only: this process never starts the JAX runtime, so fork() is safe.
        r = np.random.default_rng(seed)
        f = lambda *s: r.normal(size=s).astype(np.float32)
        params = StackedParams(lstm=(LSTMParams(f(1, 64), f(16, 64), f(64)),),
                               head=DenseParams(f(16, 1), f(1)))
        return SavedModel(config=config, params=params, recipe={"name": name},
                          metrics={"name": name, "pad": list(range(seed * 50))},
                          states={"h": f(1, 16), "pad": f(1, seed * 100)},
                          states_meta={"series": [name]})

    folder = sys.argv[1]
    models = [model(1, "A"), model(2, "B")]
    save_model(folder, models[0], opener=SeriesStore)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.startswith("go"):
            pid = os.fork()
            if pid == 0:
                i = os.getpid() % 2  # start with either model
                while True:
                    i += 1
                    save_model(folder, models[i % 2], opener=SeriesStore)
            print(pid, flush=True)
        elif line.startswith("reap"):
            os.waitpid(int(line.split()[1]), 0)
            print("reaped", flush=True)
    """
)


@pytest.mark.slow
def test_kill_during_save_leaves_old_or_new_model(tmp_path):
    folder = tmp_path / "m"
    helper = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert helper.stdout.readline().strip() == "ready"
        expected = {}
        states = {}
        for name, seed in (("A", 1), ("B", 2)):
            rng = np.random.default_rng(seed)
            kernel = rng.normal(size=(1, 64)).astype(np.float32)
            expected[name] = kernel
            for shape in ((16, 64), (64,), (16, 1), (1,)):  # the other parameters
                rng.normal(size=shape)
            states[name] = rng.normal(size=(1, 16)).astype(np.float32)
        # Kill within a few saves' time: a save that replaces the model creates its new
        # state store (an SQLite file), so measure how long one takes on this machine.
        probes = [_saved(0), _saved(1)]
        started = time.perf_counter()
        for seed in range(4):
            save_model(tmp_path / "probe", probes[seed % 2], opener=SeriesStore)
        window = max(0.04, 3 * (time.perf_counter() - started) / 4)
        rand = random.Random(0)
        seen = []
        for _ in range(25):
            helper.stdin.write("go\n")
            helper.stdin.flush()
            pid = int(helper.stdout.readline())
            time.sleep(rand.uniform(0.0, window))
            os.kill(pid, signal.SIGKILL)
            helper.stdin.write(f"reap {pid}\n")
            helper.stdin.flush()
            assert helper.stdout.readline().strip() == "reaped"
            loaded = load_model(
                folder, states=SeriesStore
            )  # never raises: old or new, never broken
            name = loaded.metrics["name"]
            assert loaded.recipe == {"name": name}
            assert loaded.states_meta == {"series": [name]}
            assert np.array_equal(loaded.states["h"], states[name])  # the model's own states
            assert np.array_equal(np.asarray(loaded.params.lstm[0].kernel), expected[name])
            seen.append(name)
        assert set(seen) == {"A", "B"}, seen
    finally:
        helper.kill()
        helper.wait()
        helper.stdin.close()
        helper.stdout.close()
    # the next save removes whatever a killed save left behind
    save_model(folder, load_model(folder), opener=SeriesStore)
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    assert len(list(folder.iterdir())) == 5


def test_fingerprint_follows_the_model_not_its_states(tmp_path):
    import dataclasses

    from lstmlab.model_folder import folder_checksum, model_fingerprint

    folder = tmp_path / "m"
    saved = _saved()
    save_model(folder, saved, opener=SeriesStore)
    checksum, fingerprint = folder_checksum(folder), model_fingerprint(folder)
    save_model(
        folder,
        dataclasses.replace(saved, states_meta={"series": ["x", "y", "z"]}),
        opener=SeriesStore,
    )
    assert folder_checksum(folder) != checksum
    assert model_fingerprint(folder) == fingerprint
    save_model(folder, _saved(seed=1), opener=SeriesStore)
    assert model_fingerprint(folder) != fingerprint


def test_states_live_in_the_store_bound_to_the_model(tmp_path):
    import dataclasses

    from lstmlab.live.folder_store import open_store
    from lstmlab.live.state_store import SeriesStore
    from lstmlab.live.stores import StoreError
    from lstmlab.model_folder import model_fingerprint, store_path

    first, second = tmp_path / "a", tmp_path / "b"
    save_model(first, _saved(0), opener=SeriesStore)
    save_model(second, _saved(1), opener=SeriesStore)
    with open_store(first) as store:
        assert store.series_ids() == ("x", "y", "ünï code/id")
        np.testing.assert_array_equal(
            store.get("y").arrays["rnn.0.h"], _saved(0).states["rnn.0.h"][1]
        )
        assert store.get("y").seen == 2
    # states-only saves of the same model merge into the same store: series stay
    save_model(
        first,
        dataclasses.replace(_saved(0), states={}, states_meta={"series": []}),
        opener=SeriesStore,
    )
    assert load_model(first, states=SeriesStore).states_meta == {
        "series": ["x", "y", "ünï code/id"]
    }
    # a store of another model is refused, even under this model's store name
    store_path(first).unlink()
    store_path(second).rename(store_path(first))
    with pytest.raises(StoreError, match="belongs to another model"):
        open_store(first)
    with pytest.raises(StoreError, match="belongs to another model"):
        load_model(first, states=SeriesStore)
    # and the store class refuses it the same way
    with pytest.raises(StoreError, match="belongs to another model"):
        SeriesStore(store_path(first), model=model_fingerprint(first))


# ------------------------------------------------------- weights behind a recomputed checksum


def _replace_weights(folder, data):
    """Write ``data`` as the weights file and recompute every checksum over it (a forger's
    edit, or a tool that wrote broken content): only the content checks can refuse it."""
    import hashlib

    config = json.loads((folder / CONFIG_FILE).read_text())
    target = folder / config["files"]["weights"]["name"]
    target.write_bytes(data)
    config["files"]["weights"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    del config["checksum"]
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    config["checksum"] = hashlib.sha256(canonical.encode()).hexdigest()
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    return target


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_weights_with_nan_or_inf_are_refused_behind_a_recomputed_checksum(tmp_path, bad):
    import safetensors.numpy

    folder = tmp_path / "m"
    saved = _saved()
    save_model(folder, saved, opener=SeriesStore)
    arrays = flatten_params(saved.params)
    # finite, changed weights behind a recomputed checksum load: the path itself is accepted
    changed = {name: np.asarray(array) * 1.5 for name, array in arrays.items()}
    _replace_weights(folder, safetensors.numpy.save(changed))
    loaded = load_model(folder)
    np.testing.assert_array_equal(
        np.asarray(flatten_params(loaded.params)["lstm.1.kernel"]), changed["lstm.1.kernel"]
    )
    broken = dict(changed)
    broken["lstm.1.kernel"] = broken["lstm.1.kernel"].copy()
    broken["lstm.1.kernel"][0, 2] = bad
    target = _replace_weights(folder, safetensors.numpy.save(broken))
    message = (
        f"weight 'lstm.1.kernel' in {target} holds 1 NaN or infinite value(s); the model "
        "diverged in training or the file is corrupted, fit the model again (e.g. with a lower "
        "learning rate) or restore the file"
    )
    for states in (None, SeriesStore):
        with pytest.raises(ModelFolderError, match=re.escape(message)):
            load_model(folder, states=states)


def test_garbage_weights_behind_a_recomputed_checksum_are_refused(tmp_path):
    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    target = _replace_weights(folder, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" * 3)
    with pytest.raises(
        ModelFolderError,
        match=re.escape(f"{target} is not a readable safetensors file (")
        + ".*"
        + re.escape("); the file is corrupted, restore it or save (or fit) the model again"),
    ):
        load_model(folder, states=SeriesStore)


def test_forecaster_load_refuses_nan_weights(tmp_path):
    import safetensors.numpy

    from lstmlab.forecaster import Forecaster

    folder = tmp_path / "m"
    saved = _saved()
    save_model(folder, saved, opener=SeriesStore)
    arrays = {name: np.asarray(a).copy() for name, a in flatten_params(saved.params).items()}
    arrays["head.bias"][0] = np.nan
    _replace_weights(folder, safetensors.numpy.save(arrays))
    with pytest.raises(ModelFolderError, match="weight 'head.bias' in .* holds 1 NaN"):
        Forecaster.load(folder)


def test_a_save_onto_a_full_disk_fails_cleanly_and_keeps_the_old_model(tmp_path):
    import errno

    from lstmlab.live.stores import StoreUnavailable
    from tests.test_state_store import _fill, _small_disk

    with _small_disk(tmp_path / "disk", "2m") as disk:
        folder = disk / "m"
        save_model(folder, _saved(seed=0, name="old"), opener=SeriesStore)
        before = sorted(p.name for p in folder.iterdir())
        filler = _fill(disk / "filler")
        new = _saved(seed=1, name="new")
        with pytest.raises((OSError, StoreUnavailable)) as caught:
            save_model(folder, new, opener=SeriesStore)
        if isinstance(caught.value, OSError):
            assert caught.value.errno == errno.ENOSPC
        else:
            assert f"the disk holding {folder} is full" in str(caught.value)
        # the old model, whole (its store cannot be opened while the disk is full: SQLite
        # needs room for its shared-memory file, so its states are read once space is back)
        assert load_model(folder).metrics["name"] == "old"
        assert sorted(p.name for p in folder.iterdir()) == before  # no leftovers
        os.unlink(filler)
        old = load_model(folder, states=SeriesStore)
        assert old.metrics["name"] == "old" and old.states_meta["series"] == [
            "x",
            "y",
            "ünï code/id",
        ]
        save_model(folder, new, opener=SeriesStore)
        loaded = load_model(folder, states=SeriesStore)
        assert loaded.metrics["name"] == "new"
        np.testing.assert_array_equal(
            np.asarray(flatten_params(loaded.params)["head.kernel"]),
            np.asarray(flatten_params(new.params)["head.kernel"]),
        )
