import shutil
import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

from lstmlab.core.model import LSTMConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.forecaster import Forecaster, Recipe
from lstmlab.live.state_store import SeriesStore, StoredState, StoreError
from lstmlab.model_folder import open_store, store_path


def _state(value, seen=1, last_time=None):
    return StoredState(
        arrays={"h": np.full(3, value, np.float32), "seen": np.asarray(seen, np.int64)},
        seen=seen,
        last_time=last_time,
    )


def test_put_get_and_order(tmp_path):
    with SeriesStore(tmp_path / "s.sqlite", model="m") as store:
        assert store.get("a") is None and len(store) == 0 and "a" not in store
        store.put("b", _state(1.0))
        store.put("a", _state(2.0, seen=4, last_time=123))
        store.put("b", _state(3.0, seen=2))  # an update keeps b's place
        assert store.series_ids() == ("b", "a") and len(store) == 2 and "a" in store
        got = store.get("a")
        assert (got.seen, got.last_time) == (4, 123)
        np.testing.assert_array_equal(got.arrays["h"], np.full(3, 2.0, np.float32))
        assert got.arrays["seen"].shape == ()  # 0-d arrays stay 0-d
        assert [i for i, _ in store.items()] == ["b", "a"]
        assert store.get("b").seen == 2


def test_a_failed_transaction_writes_nothing(tmp_path):
    with SeriesStore(tmp_path / "s.sqlite", model="m") as store:
        store.put("a", _state(1.0))
        with pytest.raises(RuntimeError, match="boom"), store.transaction():
            store.put("a", _state(9.0, seen=9))
            store.put("b", _state(9.0))
            raise RuntimeError("boom")
        assert store.series_ids() == ("a",) and store.get("a").seen == 1
        # a logged key that is already in the log fails the whole put: state and log
        readings = np.array([[1.0], [2.0]])
        store.put("a", _state(1.0, seen=3), first_seq=1, times=[10, 20], readings=readings)
        with pytest.raises(sqlite3.IntegrityError):
            store.put("a", _state(5.0, seen=4), first_seq=2, times=[20], readings=readings[:1])
        assert store.get("a").seen == 3
        assert [(seq, t) for seq, t, _ in store.observations("a")] == [(1, 10), (2, 20)]
        assert store.logged("a", "time", [20, 30]).keys() == {20}
        np.testing.assert_array_equal(store.logged("a", "seq", [1])[1], [1.0])


def test_a_store_of_another_model_is_refused(tmp_path):
    SeriesStore(tmp_path / "s.sqlite", model="model-one").close()
    with pytest.raises(StoreError, match="belongs to another model"):
        SeriesStore(tmp_path / "s.sqlite", model="model-two")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="is not an lstmlab state store"):
        SeriesStore(tmp_path / "junk.sqlite", model="m")


def test_a_write_through_one_connection_is_read_by_another_at_once(tmp_path):
    path = tmp_path / "s.sqlite"
    with SeriesStore(path, model="m") as first, SeriesStore(path, model="m") as second:
        first.put("a", _state(1.0))
        assert second.get("a").seen == 1
        second.put("a", _state(2.0, seen=2))
        assert first.get("a").seen == 2  # no stale copy anywhere
        # the write lock: a second writer waits for the first one's commit
        order = []
        with first.transaction():
            thread = threading.Thread(
                target=lambda: (second.put("a", _state(3.0, seen=3)), order.append("second"))
            )
            thread.start()
            thread.join(timeout=0.3)
            order.append("first")
        thread.join(timeout=10)
        assert order == ["first", "second"] and first.get("a").seen == 3


def test_in_memory_store_copies_into_a_file(tmp_path):
    memory = SeriesStore(model="m")
    memory.put("a", _state(1.0, seen=2), first_seq=0, times=None, readings=np.ones((2, 1)))
    with SeriesStore(tmp_path / "s.sqlite", model="m") as disk:
        memory.copy_into(disk)
        assert disk.get("a").seen == 2 and len(disk.observations("a")) == 2
    assert memory.path is None
    memory.close()


# --------------------------------------------------------------------------- one series, two doors

START = pd.Timestamp("2024-01-01")
FREQ = "15min"
SERIES = "meter-1"
VALUES = np.round(np.random.default_rng(7).uniform(0, 10, size=40), 4)


def _stamp(i):
    return (START + i * pd.Timedelta(FREQ)).isoformat()


def _model(folder):
    config = LSTMConfig(units=(6,), timesteps=4, stateful=True, return_sequences=True)
    model = Forecaster.from_params(
        config,
        init_params(config, 5),
        scaler=fit_scaler(np.linspace(0.0, 10.0, 20), "minmax", ["value"]),
        recipe=Recipe(window=4, columns=("value",), freq=FREQ),
    )
    model.save(folder)
    return folder


def _cli_observe(folder, tmp_path, first, last):
    from lstmlab.cli import main

    csv = tmp_path / f"readings-{first}.csv"
    pd.DataFrame(
        {"time": [_stamp(i) for i in range(first, last)], "value": VALUES[first:last]}
    ).to_csv(csv, index=False)
    assert (
        main(["observe", "--model-dir", str(folder), "--series", SERIES, "--input", str(csv)]) == 0
    )


def _post(server, first, last):
    body = {"values": VALUES[first:last].tolist(), "horizon": 3}
    body["timestamps"] = [_stamp(i) for i in range(first, last)]
    return server.call("POST", f"/series/{SERIES}/observations", body)


@pytest.mark.slow
def test_command_line_and_service_feed_one_series_without_forking(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from tests.test_service import Server

    folder = _model(tmp_path / "m")
    pristine = tmp_path / "pristine"
    shutil.copytree(folder, pristine)  # the model before any reading, for the offline replay
    server = Server(folder)  # the folder's own store, the one `lstmlab observe` writes
    try:
        _cli_observe(folder, tmp_path, 0, 10)
        status, answer = _post(server, 10, 20)
        assert (status, answer["accepted"], answer["seen"]) == (200, 10, 20), answer
        _cli_observe(folder, tmp_path, 20, 30)
        status, answer = _post(server, 30, 35)
        assert (status, answer["accepted"], answer["seen"]) == (200, 5, 35), answer
        _cli_observe(folder, tmp_path, 35, 40)
        # readings 28 and 29 came through the command line, 30 and 31 through HTTP: one log
        status, answer = _post(server, 28, 32)
        assert (status, answer["repeated"], answer["accepted"], answer["seen"]) == (
            200,
            4,
            0,
            40,
        )
        status, served = server.call("GET", f"/series/{SERIES}/forecast?horizon=3")
        assert status == 200 and served["seen"] == 40
    finally:
        server.kill()
    server = Server(folder)  # a restart reads the same store
    try:
        status, restarted = server.call("GET", f"/series/{SERIES}/forecast?horizon=3")
    finally:
        server.kill()
    assert (status, restarted["seen"], restarted["values"]) == (200, 40, served["values"])
    # one offline replay of all readings at once
    with Forecaster.load(pristine) as offline:
        stamps = [_stamp(i) for i in range(40)]
        expected = offline.observe(SERIES, VALUES, stamps, horizon=3)
        replay_state = offline.series_state(SERIES)
    np.testing.assert_allclose(served["values"], expected.values, rtol=1e-6, atol=1e-6)
    assert served["timestamps"] == list(expected.timestamps)
    with Forecaster.load(folder) as live:
        state = live.series_state(SERIES)
        log = live.store.observations(SERIES)
    assert (state.seen, state.last_time) == (40, replay_state.last_time)
    for a, b in zip(state.rnn, replay_state.rnn, strict=True):
        np.testing.assert_allclose(a.h, b.h, atol=1e-6)
        np.testing.assert_allclose(a.c, b.c, atol=1e-6)
    assert [seq for seq, _, _ in log] == list(range(40))
    np.testing.assert_array_equal(np.concatenate([r for _, _, r in log]), VALUES)
    # the check can fail: a series restarted at reading 20 (a fork) ends elsewhere
    with Forecaster.load(pristine) as forked:
        fork = forked.observe("fork", VALUES[20:], stamps[20:], horizon=3)
    assert not np.allclose(fork.values, expected.values, atol=1e-4)
    assert store_path(folder).exists()
    with open_store(folder) as store:
        assert store.series_ids() == (SERIES,)
