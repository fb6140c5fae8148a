import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

from lstmlab.core.model import LSTMConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.forecaster import Forecaster, Recipe
from lstmlab.live import state_store, stores
from lstmlab.live.folder_store import open_store
from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import SeriesLimitError, StoredState, StoreError, StoreUnavailable
from lstmlab.model_folder import store_path


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
    missing = tmp_path / "no such folder" / "s.sqlite"
    message = (
        f"cannot open the state store {missing} (unable to open database file); check that "
        "its folder exists and that this user may write to it"
    )
    with pytest.raises(StoreError, match=re.escape(message)):
        SeriesStore(missing, model="m")


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


def test_copy_into_is_a_consistent_snapshot_of_its_source(tmp_path):
    # a write to the source during the copy must not mix into it: state and log agree
    path = tmp_path / "s.sqlite"
    with SeriesStore(path, model="m") as source, SeriesStore(path, model="m") as writer:
        source.put("a", _state(1.0, seen=1), first_seq=0, readings=np.ones((1, 1)))
        threads = []
        read_log = source.observations

        def observations_with_a_write_between(series_id):
            # the state of a is read; now another connection writes a's next reading
            thread = threading.Thread(
                target=writer.put,
                args=("a", _state(2.0, seen=2)),
                kwargs={"first_seq": 1, "readings": np.ones((1, 1))},
            )
            thread.start()
            thread.join(timeout=1.0)
            threads.append(thread)
            return read_log(series_id)

        source.observations = observations_with_a_write_between
        with SeriesStore(model="m") as copy:
            source.copy_into(copy)
            for thread in threads:
                thread.join(timeout=30)
            assert copy.get("a").seen == 1 and len(copy.observations("a")) == 1
        del source.observations
        assert source.get("a").seen == 2 and len(source.observations("a")) == 2  # then written


def _value(store, series_id):
    return float(store.get(series_id).arrays["h"][0])


def _wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_len_is_a_counter_kept_across_connections_and_deletes(tmp_path):
    path = tmp_path / "s.sqlite"
    with SeriesStore(path, model="m") as first, SeriesStore(path, model="m") as second:
        for i in range(5):
            first.put(f"s{i}", _state(float(i)))
        first.put("s0", _state(9.0, seen=2))  # an update does not count twice
        assert len(first) == len(second) == 5
        # the counter agrees with an independent count of the rows
        assert second._db.execute("SELECT COUNT(*) FROM series").fetchone()[0] == 5
        first.put("s1", _state(1.0), first_seq=0, readings=np.ones((3, 1)))
        assert second.delete("s1") is True and second.delete("s1") is False
        assert second.delete("never stored") is False
        assert len(first) == len(second) == 4 and "s1" not in first
        assert first.observations("s1") == [] and first.logged("s1", "seq", [0, 1]) == {}
        # a deleted series starts afresh, at the end of the order, with an empty log
        first.put("s1", _state(5.0, seen=1), first_seq=0, readings=np.full((1, 1), 7.0))
        assert first.series_ids() == ("s0", "s2", "s3", "s4", "s1") and len(second) == 5
        assert [seq for seq, _, _ in second.observations("s1")] == [0]
        # a failed transaction leaves the counter as it was
        with pytest.raises(RuntimeError, match="boom"), first.transaction("x", "y"):
            first.put("x", _state(1.0))
            first.delete("s2")
            raise RuntimeError("boom")
        assert len(second) == 5 and "s2" in second and "x" not in second


@pytest.mark.parametrize("where", ["file", "memory"])
def test_len_and_health_answer_at_once_while_a_transaction_is_open(tmp_path, where):
    path = tmp_path / "s.sqlite" if where == "file" else None
    with SeriesStore(path, model="m") as store:
        store.put("a", _state(1.0))
        held, release = threading.Event(), threading.Event()

        def hold():
            with store.transaction():
                store.put("b", _state(2.0))  # not committed while we look
                held.set()
                release.wait(30)

        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert held.wait(30)
            started = time.monotonic()
            assert len(store) == 1 and store.health() == ("ok", None)  # the committed count
            assert time.monotonic() - started < 1.0
        finally:
            release.set()
            thread.join()
        assert len(store) == 2  # the commit is counted at once
        store.delete("a")
        assert len(store) == 1
        if path is None:
            return
        # another process's writer holding SQLite's write lock does not stall us either
        with SeriesStore(path, model="m") as other, other.transaction():
            other.put("c", _state(3.0))
            started = time.monotonic()
            assert len(store) == 1 and store.health() == ("ok", None)
            assert time.monotonic() - started < 1.0
        assert len(store) == 2 and "c" in store


def test_a_store_written_before_the_counter_is_counted_once_at_open(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)  # the schema of the previous release, without counters
    old.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE series (id TEXT NOT NULL UNIQUE, state BLOB NOT NULL,
            seen INTEGER NOT NULL, last_time INTEGER);
        CREATE TABLE observations (series_id TEXT NOT NULL, seq INTEGER NOT NULL,
            time INTEGER, reading BLOB NOT NULL, PRIMARY KEY (series_id, seq)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('model', 'm'), ('format', '1');
        """
    )
    blob = stores.encode_state(_state(1.0))
    old.executemany(
        "INSERT INTO series VALUES (?, ?, 1, NULL)", [(f"o{i}", blob) for i in range(3)]
    )
    old.commit()
    old.close()
    with SeriesStore(path, model="m") as store:
        assert len(store) == 3 and store.series_ids() == ("o0", "o1", "o2")
        store.put("new", _state(2.0))
        assert len(store) == 4
    with SeriesStore(path, model="m") as store:  # counted once: the triggers keep it now
        assert len(store) == 4 and _value(store, "o1") == 1.0


def test_max_series_refuses_a_new_series_and_writes_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    with pytest.raises(ValueError, match="max_series must be a positive integer, got 0"):
        SeriesStore(path, model="m", max_series=0)
    with (
        SeriesStore(path, model="m", max_series=2) as store,
        SeriesStore(path, model="m") as other,
    ):
        store.put("a", _state(1.0))
        other.put("b", _state(2.0))  # another connection's series count against the limit
        store.put("a", _state(3.0, seen=2))  # known series are updated at the limit
        message = (
            "the store holds 2 series, its limit (max_series) is 2; delete series that are no "
            "longer needed, or raise the limit (lstmlab serve --max-series)"
        )
        with pytest.raises(SeriesLimitError, match=re.escape(message)):
            store.put("c", _state(4.0), first_seq=0, readings=np.ones((2, 1)))
        assert isinstance(SeriesLimitError("x"), ValueError)
        # the whole transaction rolls back: the update of a, the log of c
        with pytest.raises(SeriesLimitError), store.transaction("a", "c"):
            store.put("a", _state(8.0, seen=8))
            store.put("c", _state(4.0))
        assert store.series_ids() == ("a", "b") and store.get("a").seen == 2
        assert store.observations("c") == [] and len(store) == 2
        with pytest.raises(SeriesLimitError):
            store.put_many({"a": _state(1.0), "d": _state(1.0)})
        assert store.get("a").seen == 2
        store.delete("b")  # room again
        store.put("c", _state(4.0))
        assert store.series_ids() == ("a", "c")


def test_max_series_holds_under_concurrent_writers(tmp_path):
    path = tmp_path / "s.sqlite"
    stores = [SeriesStore(path, model="m", max_series=30) for _ in range(3)]
    refused = []

    def write(store, k):
        for i in range(25):
            try:
                store.put(f"w{k}-{i}", _state(float(i)))
            except SeriesLimitError:
                refused.append((k, i))

    threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert len(stores[0]) == 30 and len(refused) == 75 - 30
        assert stores[1]._db.execute("SELECT COUNT(*) FROM series").fetchone()[0] == 30
    finally:
        for store in stores:
            store.close()


def test_items_reads_in_batches_in_storage_order(tmp_path):
    with SeriesStore(tmp_path / "s.sqlite", model="m") as store:
        ids = [f"s{i:02d}" for i in range(11)][::-1]
        store.put_many({i: _state(float(n)) for n, i in enumerate(ids)})
        store.delete(ids[4])
        expected = [i for i in ids if i != ids[4]]
        for batch_size in (1, 3, 10, 11, 1000):
            got = list(store.items(batch_size=batch_size))
            assert [i for i, _ in got] == expected
            assert [float(s.arrays["h"][0]) for _, s in got] == [
                float(ids.index(i)) for i in expected
            ]
        for bad in (0, -1, 2.5):  # 0 read empty pages for ever
            with pytest.raises(ValueError, match="batch_size must be a positive integer"):
                next(store.items(batch_size=bad))


def test_cached_states_are_always_the_latest_committed(tmp_path):
    path = tmp_path / "s.sqlite"
    with pytest.raises(ValueError, match="cached_states must be an int >= 0, got -1"):
        SeriesStore(path, model="m", cached_states=-1)
    with (
        SeriesStore(path, model="m", cached_states=2) as first,
        SeriesStore(path, model="m") as second,
    ):
        assert first.get("a") is None
        second.put("a", _state(1.0))  # another connection's commit empties the cache
        cached = first.get("a")
        assert _value(first, "a") == 1.0 and first.get("a") is cached  # served from the cache
        with pytest.raises(ValueError, match="read-only"):
            cached.arrays["h"][0] = 5.0  # shared through the cache: not writable
        owned = _state(2.0, seen=2)  # this store's own write is cached once committed:
        first.put("a", owned)  # the state itself, its arrays its own
        written = first._cache["a"]
        assert written is owned and first.get("a") is written
        read = second.get("a")  # the reference: the record read back from the database
        assert (written.seen, written.last_time) == (read.seen, read.last_time) == (2, None)
        assert written.arrays.keys() == read.arrays.keys()
        for name, array in read.arrays.items():
            assert written.arrays[name].dtype == array.dtype
            np.testing.assert_array_equal(written.arrays[name], array)
            assert not written.arrays[name].flags.writeable
        base = np.full(6, 7.0, np.float32)  # a view of the caller's buffer is read back
        arrays = {"h": base[:3], "seen": np.asarray(1, np.int64)}
        viewed = StoredState(arrays=arrays, seen=1, last_time=None)
        first.put("v", viewed)
        assert first._cache["v"] is not viewed and _value(first, "v") == 7.0
        base[:] = 0.0  # the caller's buffer changes, the cached state does not
        assert _value(first, "v") == 7.0 and base.flags.writeable
        first.delete("v")
        second.put("a", _state(3.0, seen=3))
        with first.transaction("a"):  # a transaction reads what others committed before it
            assert _value(first, "a") == 3.0
            first.put("a", _state(4.0, seen=4))
            assert _value(first, "a") == 4.0  # its own uncommitted write, inside
            assert _value(second, "a") == 3.0
        with pytest.raises(RuntimeError, match="boom"), first.transaction("a"):
            first.put("a", _state(5.0, seen=5))
            assert _value(first, "a") == 5.0
            raise RuntimeError("boom")
        assert _value(first, "a") == 4.0 and _value(second, "a") == 4.0  # rolled back
        # data_version is read once a transaction (none else commits meanwhile), again after
        with first.transaction("a"):
            assert _value(first, "a") == 4.0 and _value(first, "a") == 4.0
        second.put("a", _state(4.5, seen=5))
        assert _value(first, "a") == 4.5
        first.delete("a")
        assert first.get("a") is None and second.get("a") is None
        for i in range(4):
            second.put(f"s{i}", _state(float(i)))
        assert [_value(first, f"s{i}") for i in range(4)] == [0.0, 1.0, 2.0, 3.0]
        assert list(first._cache) == ["s2", "s3"]  # bounded, least recently used out
    with SeriesStore(path, model="m", cached_states=0) as uncached:
        assert uncached.get("s1") is not uncached.get("s1") and not uncached._cache
    # a write refused part-way inside a transaction that commits is not cached
    with SeriesStore(tmp_path / "full.sqlite", model="m", max_series=1) as full:
        full.put("x", _state(1.0))
        assert full.get("x") is not None  # the cache has begun
        with full.transaction("x", "y"):
            full.put("x", _state(2.0, seen=2))
            with pytest.raises(SeriesLimitError):
                full.put("y", _state(3.0), first_seq=0, readings=np.ones((1, 1)))
        assert _value(full, "x") == 2.0 and full.get("y") is None
        assert full.observations("y") == []  # nor its readings


@pytest.mark.parametrize("count", [3, 700])  # 700: past a statement's rows
def test_put_many_writes_as_puts_one_by_one(tmp_path, count):
    rng = np.random.default_rng(count)

    def logs_of(i, first):  # 1 to 3 readings, with or without timestamps
        readings = rng.uniform(0, 10, (1 + i % 3, 2))
        times = None if i % 2 else [1_000 * (first + k) for k in range(len(readings))]
        return first, times, readings

    with (
        SeriesStore(tmp_path / "many.sqlite", model="m") as many,
        SeriesStore(tmp_path / "one.sqlite", model="m") as one,  # the reference
    ):
        for store in (many, one):  # a third of the series known beforehand
            for i in range(0, count, 3):
                store.put(f"s{i}", _state(-1.0), first_seq=0, times=None, readings=np.ones((1, 2)))
        states = {f"s{i}": _state(float(i), seen=5 + i, last_time=i or None) for i in range(count)}
        logs = {f"s{i}": logs_of(i, 1) for i in range(0, count, 2)}
        many.put_many(states, logs=logs)
        for series_id, state in states.items():
            first, times, readings = logs.get(series_id, (None, None, None))
            one.put(series_id, state, first_seq=first, times=times, readings=readings)
        assert many.series_ids() == one.series_ids() and len(many) == len(one) == count
        for series_id in states:
            got, want = many.get(series_id), one.get(series_id)
            assert (got.seen, got.last_time) == (want.seen, want.last_time)
            np.testing.assert_array_equal(got.arrays["h"], want.arrays["h"])
            logged, reference = many.observations(series_id), one.observations(series_id)
            assert [(q, t) for q, t, _ in logged] == [(q, t) for q, t, _ in reference]
            for (_, _, a), (_, _, b) in zip(logged, reference, strict=True):
                np.testing.assert_array_equal(a, b)


def test_put_many_refuses_new_series_past_the_limit_before_writing(tmp_path):
    with SeriesStore(tmp_path / "s.sqlite", model="m", max_series=3) as store:
        store.put_many({"a": _state(1.0), "b": _state(2.0)})
        with pytest.raises(SeriesLimitError, match="the store holds 2 series"):
            store.put_many(  # a known one and two new ones: one place is left
                {"a": _state(5.0, seen=5), "c": _state(3.0), "d": _state(4.0)},
                logs={"a": (1, None, np.ones((1, 1))), "c": (0, None, np.ones((1, 1)))},
            )
        assert store.series_ids() == ("a", "b") and _value(store, "a") == 1.0
        assert store.observations("a") == [] == store.observations("c")
        store.put_many({"a": _state(5.0, seen=5), "c": _state(3.0)})  # room for one
        assert store.series_ids() == ("a", "b", "c") and _value(store, "a") == 5.0


def test_a_full_database_rolls_back_raises_store_unavailable_and_recovers(tmp_path):
    """SQLITE_FULL without a full disk: the connection's page limit (works on every machine)."""
    with SeriesStore(tmp_path / "s.sqlite", model="m") as store:
        assert store.health() == ("ok", None)
        store.put("a", _state(1.0), first_seq=0, readings=np.ones((1, 1)))
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages}")
        big = StoredState(arrays={"h": np.ones(100_000, np.float32)}, seen=5, last_time=None)
        with pytest.raises(StoreUnavailable) as caught:
            store.put("b", big, first_seq=0, readings=np.ones((3, 1)))
        message = str(caught.value)
        assert message.startswith("the write failed and was rolled back, nothing was stored: ")
        assert f"the disk holding {tmp_path} is full" in message
        assert message.endswith("the request can be retried (in about 5 s)")
        assert caught.value.retry_after == 5 and isinstance(caught.value, RuntimeError)
        status, reason = store.health()
        assert status == "degraded" and f"the disk holding {tmp_path} is full" in reason
        assert store.series_ids() == ("a",) and len(store) == 1 and store.observations("b") == []
        assert not store._db.in_transaction
        store._db.execute(f"PRAGMA max_page_count={2**30}")
        store.put("b", big, first_seq=0, readings=np.ones((3, 1)))
        assert store.health() == ("ok", None) and len(store) == 2
        assert store.get("b").seen == 5 and len(store.observations("b")) == 3


def test_the_checkpoint_thread_survives_errors_and_health_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(state_store, "CHECKPOINT_INTERVAL", 0.02)
    monkeypatch.setattr(state_store, "CHECKPOINT_MAX_BACKOFF", 0.1)
    real = SeriesStore._checkpoint_once
    failures = {"left": 3, "calls": 0}

    def flaky(self, connection):
        failures["calls"] += 1
        if failures["left"]:
            failures["left"] -= 1
            if failures["left"] == 1:
                raise sqlite3.OperationalError("disk I/O error")
            raise RuntimeError("checkpoint exploded")
        return real(self, connection)

    monkeypatch.setattr(SeriesStore, "_checkpoint_once", flaky)
    with SeriesStore(tmp_path / "s.sqlite", model="m", background_checkpoint=True) as store:
        assert _wait_for(lambda: store.health()[0] == "degraded", 5)
        reason = store.health()[1]
        assert reason.startswith(f"checkpoints of the state store {tmp_path / 's.sqlite'} fail")
        assert "retrying in" in reason
        assert _wait_for(lambda: store.health() == ("ok", None), 10)
        assert store._checkpointer.is_alive() and failures["calls"] > 3
        store.put("a", _state(1.0))
        calls = failures["calls"]
        assert _wait_for(lambda: failures["calls"] > calls + 2, 5)  # still checkpointing
        assert store._checkpointer.is_alive()


def test_a_large_wal_is_truncated_by_the_checkpoint_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(state_store, "CHECKPOINT_INTERVAL", 0.05)
    monkeypatch.setattr(state_store, "WAL_TRUNCATE_BYTES", 2**40)  # PASSIVE checkpoints only
    path = tmp_path / "s.sqlite"
    wal = tmp_path / "s.sqlite-wal"
    big = {
        f"s{i}": StoredState(arrays={"h": np.full(50_000, i, np.float32)}, seen=1, last_time=None)
        for i in range(40)
    }
    with SeriesStore(path, model="m", background_checkpoint=True) as store:
        store.put_many(big)  # one transaction of 8 MB: the WAL grows to hold it
        time.sleep(0.5)  # passive checkpoints copy it into the database, the file stays
        assert wal.stat().st_size > 6 * 1024 * 1024
        monkeypatch.setattr(state_store, "WAL_TRUNCATE_BYTES", 256 * 1024)
        assert _wait_for(lambda: wal.stat().st_size <= 256 * 1024, 10), wal.stat().st_size
        assert store.health() == ("ok", None)
        assert len(store) == 40 and _value(store, "s39") == 39.0
    with SeriesStore(path, model="m") as store:
        assert len(store) == 40 and _value(store, "s17") == 17.0


@contextlib.contextmanager
def _small_disk(folder, size):
    folder.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as error:
        pytest.skip(f"a small filesystem is needed to fill a disk: mount failed ({error})")
    if done.returncode != 0:
        pytest.skip(
            f"a small filesystem is needed to fill a disk, and mount is not permitted here "
            f"({done.stderr.strip()}); run as root"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(path):
    """Fill the disk holding ``path`` with one file (unbuffered writes until ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return path


@pytest.mark.parametrize("background", [True, False])
def test_a_full_disk_fails_writes_cleanly_and_the_store_recovers_losing_nothing(
    tmp_path, monkeypatch, background
):
    monkeypatch.setattr(state_store, "CHECKPOINT_INTERVAL", 0.05)
    monkeypatch.setattr(state_store, "CHECKPOINT_MAX_BACKOFF", 0.2)
    with _small_disk(tmp_path / "disk", "3m") as disk:
        path = disk / "s.sqlite"
        acknowledged: dict[str, float] = {}
        store = SeriesStore(path, model="m", background_checkpoint=background)
        try:
            for i in range(20):
                store.put(f"s{i}", _state(float(i)), first_seq=0, readings=np.ones((1, 1)))
                acknowledged[f"s{i}"] = float(i)
            filler = _fill(disk / "filler")
            failures = []
            for i in range(20, 400):  # bigger states until the WAL needs space it cannot get
                state = StoredState(
                    arrays={"h": np.full(8000, float(i), np.float32)}, seen=1, last_time=None
                )
                series_id = f"s{i % 30}"  # new series and updates of acknowledged ones
                try:
                    store.put(series_id, state, first_seq=i, readings=np.ones((1, 1)))
                except StoreUnavailable as error:
                    failures.append(error)
                    if len(failures) >= 3:
                        break
                else:
                    acknowledged[series_id] = float(i)
            assert failures, "the disk never filled"
            message = str(failures[-1])
            assert f"the disk holding {disk} is full" in message, message
            assert message.endswith("the request can be retried (in about 5 s)")
            status, reason = store.health()
            assert status == "degraded" and f"the disk holding {disk} is full" in reason
            # reads still work, and answer the acknowledged values
            for series_id, value in acknowledged.items():
                assert _value(store, series_id) == value
            os.unlink(filler)
            if background:  # recovers by itself, without any request
                assert _wait_for(lambda: store.health() == ("ok", None), 20), store.health()
            store.put("after", _state(-1.0))
            acknowledged["after"] = -1.0
            assert store.health() == ("ok", None)
            assert len(store) == len(acknowledged)
        finally:
            store.close()
        with SeriesStore(path, model="m") as reopened:  # nothing acknowledged was lost
            assert {i: _value(reopened, i) for i in reopened.series_ids()} == acknowledged
            assert len(reopened) == len(acknowledged)
            assert reopened._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_opening_a_store_on_a_full_disk_is_store_unavailable(tmp_path):
    with _small_disk(tmp_path / "disk", "1m") as disk:
        filler = _fill(disk / "filler")
        with pytest.raises(StoreUnavailable, match=f"could not open the state store {disk}"):
            SeriesStore(disk / "s.sqlite", model="m")
        os.unlink(filler)
        for leftover in disk.glob("s.sqlite*"):
            leftover.unlink()
        with SeriesStore(disk / "s.sqlite", model="m") as store:
            store.put("a", _state(1.0))
            assert len(store) == 1


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
