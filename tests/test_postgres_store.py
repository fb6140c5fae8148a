"""PostgresStore against a real PostgreSQL server (tests/postgres_server.py starts one)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import SeriesLimitError, StoredState, StoreError, StoreUnavailable

psycopg = pytest.importorskip("psycopg")
from lstmlab.live.postgres_store import PostgresStore  # noqa: E402 (needs psycopg)

ROOT = Path(__file__).resolve().parents[1]


def _state(value, seen=1, last_time=None):
    return StoredState(
        arrays={"h": np.full(3, value, np.float32), "seen": np.asarray(seen, np.int64)},
        seen=seen,
        last_time=last_time,
    )


def _count_rows(url):
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM lstmlab_series").fetchone()[0]


def _terminate(url, application_name="lstmlab"):
    """Cut every connection of the store from the server's side (pg_terminate_backend)."""
    with psycopg.connect(url, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()[0]
    assert cut >= 1
    time.sleep(0.2)  # the backends exit


# ---------------------------------------------------------------- the SQLite store's tests


def test_put_get_and_order(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        assert store.get("a") is None and len(store) == 0 and "a" not in store
        store.put("b", _state(1.0))
        store.put("a", _state(2.0, seen=4, last_time=123))
        store.put("b", _state(3.0, seen=2))  # an update keeps b's place
        assert store.series_ids() == ("b", "a") and len(store) == 2 and "a" in store
        got = store.get("a")
        assert (got.seen, got.last_time) == (4, 123)
        np.testing.assert_array_equal(got.arrays["h"], np.full(3, 2.0, np.float32))
        assert got.arrays["h"].dtype == np.float32
        assert got.arrays["seen"].shape == ()  # 0-d arrays stay 0-d
        assert [i for i, _ in store.items()] == ["b", "a"]
        assert [i for i, _ in store.items(batch_size=1)] == ["b", "a"]  # pages join up
        assert store.get("b").seen == 2
        assert store.path is None and store.model == "m"


def test_a_failed_transaction_writes_nothing(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0))
        with pytest.raises(RuntimeError, match="boom"), store.transaction("a", "b"):
            store.put("a", _state(9.0, seen=9))
            store.put("b", _state(9.0))
            raise RuntimeError("boom")
        assert store.series_ids() == ("a",) and store.get("a").seen == 1 and len(store) == 1
        # a logged key that is already in the log fails the whole put: state and log
        readings = np.array([[1.0], [2.0]])
        store.put("a", _state(1.0, seen=3), first_seq=1, times=[10, 20], readings=readings)
        with pytest.raises(psycopg.IntegrityError):  # (series_id, time) is unique
            store.put("a", _state(5.0, seen=4), first_seq=3, times=[20], readings=readings[:1])
        with pytest.raises(psycopg.IntegrityError):  # (series_id, seq) is unique
            store.put("a", _state(5.0, seen=4), first_seq=2, times=[30], readings=readings[:1])
        assert store.get("a").seen == 3
        assert [(seq, t) for seq, t, _ in store.observations("a")] == [(1, 10), (2, 20)]
        assert store.logged("a", "time", [20, 30]).keys() == {20}
        np.testing.assert_array_equal(store.logged("a", "seq", [1])[1], [1.0])
        assert store.logged("a", "seq", []) == {} and store.logged("b", "seq", [1]) == {}
        # readings without timestamps may share the (absent) time: NULLs are not unique keys
        store.put("c", _state(1.0, seen=2), first_seq=0, times=None, readings=readings)
        assert [t for _, t, _ in store.observations("c")] == [None, None]
        with pytest.raises(ValueError, match="column must be one of"):
            store.logged("a", "reading", [1])


def test_a_statement_failure_caught_inside_a_transaction_is_not_committed(postgres_url):
    # PostgreSQL would turn the COMMIT of a failed transaction into a silent ROLLBACK
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0), first_seq=0, readings=np.ones((1, 1)))
        with pytest.raises(StoreError, match="was rolled back"), store.transaction("a"):
            store.put("b", _state(2.0))
            with pytest.raises(psycopg.IntegrityError):
                store.put("a", _state(3.0), first_seq=0, readings=np.ones((1, 1)))
        assert store.series_ids() == ("a",) and len(store) == 1


def test_a_store_of_another_model_is_refused(postgres_url):
    PostgresStore(postgres_url, model="model-one").close()
    with pytest.raises(StoreError, match="belongs to another model"):
        PostgresStore(postgres_url, model="model-two")
    with PostgresStore(postgres_url, model="model-one") as again:  # its own model: fine
        assert len(again) == 0


def test_a_write_through_one_connection_is_read_by_another_at_once(postgres_url):
    with (
        PostgresStore(postgres_url, model="m") as first,
        PostgresStore(postgres_url, model="m") as second,
    ):
        first.put("a", _state(1.0))
        assert second.get("a").seen == 1
        second.put("a", _state(2.0, seen=2))
        assert first.get("a").seen == 2  # no stale copy anywhere
        # the series lock: a second writer of "a" waits for the first one's commit ...
        order = []
        with first.transaction("a"):
            thread = threading.Thread(
                target=lambda: (second.put("a", _state(3.0, seen=3)), order.append("second"))
            )
            thread.start()
            thread.join(timeout=0.5)
            order.append("first")
        thread.join(timeout=10)
        assert order == ["first", "second"] and first.get("a").seen == 3
        # ... a writer of another series does not wait ...
        with first.transaction("a"):
            other = threading.Thread(target=second.put, args=("b", _state(4.0)))
            other.start()
            other.join(timeout=10)
            assert not other.is_alive() and second.get("b") is not None
        # ... and a transaction over the whole store waits for every series' writer
        order = []
        with first.transaction("b"):
            whole = threading.Thread(target=_locked_all, args=(second, order))
            whole.start()
            whole.join(timeout=0.5)
            order.append("first")
        whole.join(timeout=10)
        assert order == ["first", "all"]
        # ... as a series' writer waits for a transaction over the whole store
        order = []
        with first.transaction():
            writer = threading.Thread(
                target=lambda: (second.put("c", _state(5.0)), order.append("c"))
            )
            writer.start()
            writer.join(timeout=0.5)
            order.append("first")
        writer.join(timeout=10)
        assert order == ["first", "c"]


def _locked_all(store, order):
    with store.transaction():
        order.append("all")


def test_nested_transactions_join_and_lock_more_series(postgres_url):
    with (
        PostgresStore(postgres_url, model="m") as store,
        PostgresStore(postgres_url, model="m") as other,
    ):
        with store.transaction("a"):
            store.put("a", _state(1.0))
            with store.transaction("b"):  # joins, and takes b's lock too
                store.put("b", _state(2.0))
                waiting = threading.Thread(target=other.put, args=("b", _state(9.0)))
                waiting.start()
                waiting.join(timeout=0.5)
                assert waiting.is_alive()  # b is locked until the outer commit
            assert other.get("a") is None  # nothing committed by the inner block
        waiting.join(timeout=10)
        assert store.get("a").seen == 1 and store.get("b").arrays["h"][0] == 9.0


def _advisory_locks(url):
    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()[0]


def test_opening_a_store_does_not_wait_for_writers(postgres_url):
    # CREATE INDEX IF NOT EXISTS took a table lock even with the index there: a worker
    # starting up waited for every open write (and could deadlock with one)
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0), first_seq=0, readings=np.ones((1, 1)))
        held, release = threading.Event(), threading.Event()

        def write_and_hold():
            with store.transaction("a"):
                store.put("a", _state(2.0, seen=2), first_seq=1, readings=np.ones((1, 1)))
                held.set()
                release.wait(30)

        thread = threading.Thread(target=write_and_hold)
        thread.start()
        try:
            assert held.wait(30)
            opened = []
            opener = threading.Thread(
                target=lambda: opened.append(PostgresStore(postgres_url, model="m"))
            )
            opener.start()
            opener.join(timeout=3)
            assert opened, "opening the store waited for the open write transaction"
            assert opened[0].get("a").seen == 1
        finally:
            release.set()
            thread.join()
            opener.join()
            for other in opened:
                other.close()


def test_many_series_in_one_transaction_take_the_store_wide_lock(postgres_url):
    # one advisory lock per id would exhaust max_locks_per_transaction at a few thousand
    ids = [f"s{i}" for i in range(1000)]
    with PostgresStore(postgres_url, model="m") as store:
        with store.transaction(*ids[:3]):
            assert _advisory_locks(postgres_url) == 4  # the shared store-wide lock + 3
        with store.transaction(*ids):
            assert _advisory_locks(postgres_url) == 1  # the store-wide lock, exclusive
        store.put_many({i: _state(1.0) for i in ids})
        assert len(store) == 1000 and store.series_ids() == tuple(ids)


def test_delete_removes_the_series_and_its_log(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0, seen=2), first_seq=0, times=[1, 2], readings=np.ones((2, 1)))
        store.put("b", _state(2.0))
        assert store.delete("a") is True and store.delete("a") is False
        assert store.delete("never") is False
        assert store.series_ids() == ("b",) and len(store) == 1 and store.get("a") is None
        assert store.observations("a") == [] and store.logged("a", "time", [1, 2]) == {}
        # the series starts afresh: the same seq and time may be logged again
        store.put("a", _state(3.0, seen=1), first_seq=0, times=[1], readings=np.zeros((1, 1)))
        assert store.series_ids() == ("b", "a") and len(store) == 2


def test_the_counter_matches_the_rows_and_survives_reopening(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        store.put_many({f"s{i}": _state(float(i)) for i in range(30)})
        for i in range(0, 30, 3):
            store.delete(f"s{i}")
        store.put_many({f"s{i}": _state(0.0) for i in range(0, 12)})  # some new, some not
        assert len(store) == _count_rows(postgres_url) == 24  # 30 - 10 + 4
    with PostgresStore(postgres_url, model="m") as again:
        assert len(again) == 24


def test_max_series_refuses_a_new_series_and_nothing_else(postgres_url):
    with PostgresStore(postgres_url, model="m", max_series=2) as store:
        store.put("a", _state(1.0))
        store.put("b", _state(2.0))
        message = (
            "the store holds 2 series, its limit (max_series) is 2; delete series that are no "
            "longer needed, or raise the limit (lstmlab serve --max-series)"
        )
        with pytest.raises(SeriesLimitError) as refused:
            store.put("c", _state(3.0), first_seq=0, readings=np.ones((1, 1)))
        assert str(refused.value) == message
        assert store.series_ids() == ("a", "b") and store.observations("c") == []
        store.put("a", _state(4.0, seen=5))  # a stored series is still updated
        assert store.get("a").seen == 5
        # a refusal inside a larger transaction leaves it usable and changes nothing
        with store.transaction("a", "c"):
            with pytest.raises(SeriesLimitError):  # its readings too (a service's group)
                store.put("c", _state(3.0), first_seq=0, readings=np.ones((1, 1)))
            store.put("a", _state(6.0, seen=6))
        assert store.get("a").seen == 6 and len(store) == 2 == _count_rows(postgres_url)
        assert store.observations("c") == []
        store.delete("b")
        store.put("c", _state(3.0))  # a deleted series frees its place
        assert store.series_ids() == ("a", "c")
    with pytest.raises(ValueError, match="max_series must be a positive integer"):
        PostgresStore(postgres_url, model="m", max_series=0)


def test_max_series_holds_across_connections_racing_for_the_last_places(postgres_url):
    limit, writers, each = 7, 4, 5
    stores = [PostgresStore(postgres_url, model="m", max_series=limit) for _ in range(writers)]
    outcomes = []
    barrier = threading.Barrier(writers)

    def write(k):
        barrier.wait()
        for i in range(each):
            try:
                stores[k].put(f"w{k}-{i}", _state(float(i)))
                outcomes.append("stored")
            except SeriesLimitError:
                outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert outcomes.count("stored") == limit
        assert outcomes.count("refused") == writers * each - limit
        assert len(stores[0]) == _count_rows(postgres_url) == limit
    finally:
        for store in stores:
            store.close()


def test_copy_into_and_from_sqlite(postgres_url, tmp_path):
    memory = SeriesStore(model="m")
    memory.put("a", _state(1.0, seen=2), first_seq=0, times=[5, 6], readings=np.ones((2, 1)))
    memory.put("b", _state(2.0, seen=3), first_seq=0, times=None, readings=np.zeros((3, 2)))
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(9.0, seen=9), first_seq=7, times=[70], readings=np.ones((1, 1)))
        memory.copy_into(store)  # replaces a's row and log
        assert store.series_ids() == ("a", "b") and len(store) == 2
        assert [(s, t) for s, t, _ in store.observations("a")] == [(0, 5), (1, 6)]
        assert store.get("b").seen == 3 and len(store.observations("b")) == 3
        with SeriesStore(tmp_path / "s.sqlite", model="m") as disk:
            store.copy_into(disk)
            assert disk.series_ids() == ("a", "b")
            for series_id in ("a", "b"):
                for got, want in zip(
                    disk.observations(series_id), store.observations(series_id), strict=True
                ):
                    assert got[:2] == want[:2] and np.array_equal(got[2], want[2])
                np.testing.assert_array_equal(
                    disk.get(series_id).arrays["h"], store.get(series_id).arrays["h"]
                )
    memory.close()


def test_copy_into_is_a_consistent_snapshot_of_its_source(postgres_url):
    with (
        PostgresStore(postgres_url, model="m") as source,
        PostgresStore(postgres_url, model="m") as writer,
    ):
        source.put("a", _state(1.0, seen=1), first_seq=0, readings=np.ones((1, 1)))
        threads = []
        read_log = source.observations

        def observations_with_a_write_between(series_id):
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
        assert source.get("a").seen == 2 and len(source.observations("a")) == 2


def test_messages_never_show_the_password(postgres_server):
    url = postgres_server.url("no_such_database").replace("lstmlab@", "lstmlab:s3cret@")
    with pytest.raises(StoreUnavailable) as failed:
        PostgresStore(url, model="m")
    assert "s3cret" not in str(failed.value) and "lstmlab:***@" in str(failed.value)
    assert failed.value.retry_after == 2


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("foo=bar", 'invalid URI query parameter: "foo"'),
        ("sslmode=bogus", 'invalid sslmode value: "bogus"'),
        ("target_session_attrs=zz", 'invalid target_session_attrs value: "zz"'),
    ],
)
def test_a_bad_url_is_a_store_error_naming_the_redacted_url_and_the_fix(
    postgres_server, option, fragment
):
    url = postgres_server.url().replace("lstmlab@", "lstmlab:s3cret@") + "&" + option
    with pytest.raises(StoreError) as failed:  # permanent: not StoreUnavailable (retry)
        PostgresStore(url, model="m")
    message = str(failed.value)
    assert fragment in message and "lstmlab:***@" in message and "s3cret" not in message
    assert "retry" not in message and "fix the URL" in message


def test_a_user_who_may_not_create_the_tables_gets_a_store_error(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "DO $$ BEGIN CREATE ROLE lstmlab_reader LOGIN; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = postgres_url.replace("lstmlab@", "lstmlab_reader@")
    with pytest.raises(StoreError, match="may not create or use the store's tables") as failed:
        PostgresStore(url, model="m")
    assert "GRANT CREATE ON SCHEMA" in str(failed.value) and "lstmlab_reader@" in str(failed.value)


# --------------------------------------------------------------------------- lost connections


def test_a_connection_cut_mid_transaction_gives_store_unavailable_then_recovers(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0))
        with pytest.raises(StoreUnavailable, match="unavailable") as failed:
            with store.transaction("a"):
                assert store.get("a").seen == 1
                _terminate(postgres_url)
                store.put("a", _state(2.0, seen=2))
        assert failed.value.retry_after == 2
        assert store.health() == ("ok", None)  # its probe write goes through at once
        assert store.get("a").seen == 1  # nothing of the cut transaction was stored
        store.put("a", _state(3.0, seen=3))  # reconnected by itself
        assert store.get("a").seen == 3


def _holding(store, *series_ids):
    """Hold ``store.transaction(*series_ids)`` open on a thread; returns (release, thread)."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.transaction(*series_ids):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return release, thread


def test_a_lock_wait_that_times_out_leaves_the_connection_usable(postgres_url):
    # the lock_timeout of the URL fires on the lock statement sent with BEGIN: without a
    # rollback there, the connection stayed in a failed transaction for good
    url = postgres_url + "&options=-c%20lock_timeout%3D300"
    with PostgresStore(postgres_url, model="m") as holder, PostgresStore(url, model="m") as store:
        store.put("a", _state(1.0))
        release, thread = _holding(holder, "a")
        try:
            with pytest.raises(StoreUnavailable, match="lock timeout"):
                store.put("a", _state(2.0, seen=2))
            assert store.get("a").seen == 1 and len(store) == 1  # reads still answer
            assert "a" in store and store.series_ids() == ("a",)
            with pytest.raises(StoreUnavailable, match="lock timeout"):  # and fail again
                store.put("a", _state(2.0, seen=2))
        finally:
            release.set()
            thread.join()
        store.put("a", _state(3.0, seen=3))  # the lock is free: writes go through
        assert store.get("a").seen == 3 and store.health() == ("ok", None)


def test_a_lock_held_too_long_gives_store_unavailable_after_the_lock_timeout(postgres_url):
    with (
        PostgresStore(postgres_url, model="m") as holder,
        PostgresStore(postgres_url, model="m", lock_timeout=0.3) as store,
    ):
        store.put("a", _state(1.0))
        for held in (("a",), ()):  # the series' lock, then the store-wide one
            release, thread = _holding(holder, *held)
            try:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable, match="held by another writer") as failed:
                    store.put("a", _state(2.0, seen=2))
                assert time.monotonic() - started < 5 and failed.value.retry_after == 2
            finally:
                release.set()
                thread.join()
        store.put("b", _state(3.0))  # a lock free at once is not limited
        assert store.get("a").seen == 1 and store.series_ids() == ("a", "b")
    with pytest.raises(ValueError, match="lock_timeout must be"):
        PostgresStore(postgres_url, model="m", lock_timeout=0)


def test_an_idle_connection_cut_by_the_server_is_replaced_without_an_error(postgres_url):
    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0))
        _terminate(postgres_url)
        assert store.get("a").seen == 1  # the read found its connection dead and retried
        _terminate(postgres_url)
        store.put("a", _state(2.0, seen=2))  # so does the start of a transaction
        assert store.get("a").seen == 2


def test_health_is_degraded_while_writes_fail_and_recovers_by_itself(postgres_url):
    name = postgres_url.split("/")[3].split("?")[0]
    admin_url = postgres_url.replace(f"/{name}?", "/postgres?")

    def read_only(on):
        with psycopg.connect(admin_url, autocommit=True) as admin:
            value = "on" if on else "off"
            admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')

    with PostgresStore(postgres_url, model="m") as store:
        store.put("a", _state(1.0))
        read_only(True)  # as after a fail-over to a standby: reads work, writes fail
        try:
            _terminate(postgres_url)
            assert store.get("a").seen == 1 and store.health() == ("ok", None)
            with pytest.raises(StoreUnavailable, match="read-only transaction"):
                store.put("a", _state(2.0, seen=2))
            state, reason = store.health()
            assert state == "degraded" and "read-only transaction" in reason
            assert store.health()[0] == "degraded"  # still: its probe write fails too
        finally:
            read_only(False)
        assert store.health() == ("ok", None)  # no restart: the probe write went through
        store.put("a", _state(3.0, seen=3))
        assert store.get("a").seen == 3


def test_a_stopped_server_gives_store_unavailable_and_a_restart_recovers(postgres_server):
    url = postgres_server.url()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS restarted")
        admin.execute("CREATE DATABASE restarted")
    url = postgres_server.url("restarted")
    store = PostgresStore(url, model="m", connect_timeout=2)
    try:
        store.put("a", _state(1.0))
        postgres_server.stop()
        try:
            with pytest.raises(StoreUnavailable):
                store.put("a", _state(2.0, seen=2))
            with pytest.raises(StoreUnavailable):
                store.get("a")
            state, reason = store.health()
            assert state == "degraded" and "retry in 2 s" in reason
        finally:
            postgres_server.start()
        assert store.health() == ("ok", None)
        assert store.get("a").seen == 1
        store.put("a", _state(3.0, seen=3))
        assert store.get("a").seen == 3
    finally:
        store.close()


# --------------------------------------------------------------------------- concurrency

DECAY = 0.75  # the update x <- DECAY * x + reading depends on the order of the readings


def _update(store, series_id, reading, pause=0.0):
    """A read-modify-write of one series inside its transaction (what the service does)."""
    with store.transaction(series_id):
        stored = store.get(series_id)
        x, seen = (0.0, 0) if stored is None else (float(stored.arrays["x"][0]), stored.seen)
        time.sleep(pause)
        new = StoredState(
            arrays={"x": np.array([DECAY * x + reading])}, seen=seen + 1, last_time=None
        )
        store.put(series_id, new, first_seq=seen, readings=np.array([[reading]]))


def _replay(store, series_id):
    x = 0.0
    for _, _, reading in store.observations(series_id):
        x = DECAY * x + reading[0]
    return x


def hammer(url, worker, count, series_ids, *, wait=None):
    """One worker's updates (run in a thread or in another process); ``wait()`` before."""
    with PostgresStore(url, model="m") as store:
        store.get(series_ids[0])  # connected
        if wait is not None:
            wait()
        for i in range(count):
            for series_id in series_ids:
                _update(store, series_id, float(worker * 1000 + i))


def _hammer_process():
    """``python -c``: say ready, wait for the go on stdin, then hammer (argv as hammer's)."""
    url, worker, count, series_ids = sys.argv[1:5]

    def wait():
        print("ready", flush=True)
        sys.stdin.readline()

    hammer(url, int(worker), int(count), series_ids.split(","), wait=wait)


def _check_no_lost_update(url, workers, count, series_ids):
    with PostgresStore(url, model="m") as store:
        for series_id in series_ids:
            stored = store.get(series_id)
            assert stored.seen == workers * count
            log = store.observations(series_id)
            assert [seq for seq, _, _ in log] == list(range(workers * count))
            sent = sorted(float(w * 1000 + i) for w in range(workers) for i in range(count))
            assert sorted(r[0] for _, _, r in log) == sent
            assert stored.arrays["x"][0] == _replay(store, series_id)  # the serial replay


def test_threads_updating_one_series_lose_no_update(postgres_url):
    workers, count = 6, 15
    store = PostgresStore(postgres_url, model="m")  # one store, one connection per thread
    errors = []

    def work(worker):
        try:
            for i in range(count):
                _update(store, "shared", float(worker * 1000 + i))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    store.close()
    assert errors == []
    _check_no_lost_update(postgres_url, workers, count, ["shared"])


def test_without_the_series_lock_the_same_workload_fails(postgres_url, monkeypatch):
    # the check above can fail: without the locks, two workers read the same state and both
    # log the same seq (the log's unique key refuses the second: a lost update caught)
    monkeypatch.setattr(PostgresStore, "_lock_statements", lambda self, keys: "SELECT 1")
    store = PostgresStore(postgres_url, model="m")
    errors = []

    def work(worker):
        for i in range(10):
            try:
                _update(store, "shared", float(worker * 1000 + i), pause=0.01)
            except psycopg.IntegrityError as error:
                errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    store.close()
    assert errors


def test_two_processes_updating_the_same_series_lose_no_update(postgres_url):
    workers, count, series_ids = 2, 40, ["p", "q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from tests.test_postgres_store import _hammer_process; _hammer_process()"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, postgres_url, str(w), str(count), ",".join(series_ids)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for process in processes:  # both imported and connected ...
            assert process.stdout.readline().strip() == "ready"
        for process in processes:  # ... then both start at once
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            process.communicate(timeout=300)
            assert process.returncode == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    _check_no_lost_update(postgres_url, workers, count, series_ids)
    with PostgresStore(postgres_url, model="m") as store:  # the two really ran side by side
        writers = [int(r[0]) // 1000 for _, _, r in store.observations("p")]
    assert sum(a != b for a, b in zip(writers[:-1], writers[1:], strict=True)) >= 4


# ------------------------------------------------------------------ two services, one store

E2E_FREQ = "15min"


def _served_model(folder):
    from lstmlab.core.model import LSTMConfig, init_params
    from lstmlab.data.scaling import fit_scaler
    from lstmlab.forecaster import Forecaster, Recipe

    config = LSTMConfig(units=(6,), timesteps=4, stateful=True, return_sequences=True)
    model = Forecaster.from_params(
        config,
        init_params(config, 5),
        scaler=fit_scaler(np.linspace(0.0, 10.0, 20), "minmax", ["value"]),
        recipe=Recipe(window=4, columns=("value",), freq=E2E_FREQ),
    )
    model.save(folder)
    return folder


def _serve(folder, url):
    """``lstmlab serve --store URL`` on a free loopback port (launched, not waited for)."""
    from tests.service_process import ServiceProcess, serve_command

    return ServiceProcess(serve_command(folder, "--max-readings", "8", "--store", url))


def _request(base, method, path, body=None):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.mark.slow
def test_two_services_on_one_postgres_store_match_an_offline_replay(postgres_url, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from lstmlab.forecaster import Forecaster
    from lstmlab.model_folder import model_fingerprint

    folder = _served_model(tmp_path / "m")
    servers = [_serve(folder, postgres_url) for _ in range(2)]
    try:
        bases = [server.wait_open() for server in servers]  # both launched, then waited for
        # four clients, two per service, feed ONE series; each sends the next seq it knows
        # of, and on 409 (another client took that seq) asks for the series' count again
        wanted, clients = 12, 4
        acknowledged, statuses, errors = [], [], []

        def client(k):
            base, seen, attempt = bases[k % 2], 0, 0
            try:
                while sum(1 for a in acknowledged if a[0] == k) < wanted and attempt < 300:
                    attempt += 1
                    value = round(k + 0.01 * attempt, 4)  # in the training range, unique
                    status, answer = _request(
                        base,
                        "POST",
                        "/series/shared/observations",
                        {"values": [value], "seq": seen},
                    )
                    statuses.append(status)
                    if status == 200 and answer["accepted"] == 1:
                        acknowledged.append((k, seen, value))
                        seen = answer["seen"]
                    elif status == 409:
                        status, answer = _request(base, "GET", "/series/shared/forecast")
                        seen = answer["seen"] if status == 200 else 0
                    else:
                        raise AssertionError(f"{status}: {answer}")
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert errors == []
        assert len(acknowledged) == wanted * clients
        assert statuses.count(409) > 0  # the clients really raced for the same seqs
        final = [_request(base, "GET", "/series/shared/forecast?horizon=3")[1] for base in bases]
        assert final[0] == final[1]  # both services answer from the one stored state
    finally:
        for server in servers:
            server.kill()
    fingerprint = model_fingerprint(folder)
    with PostgresStore(postgres_url, model=fingerprint) as store:
        log = store.observations("shared")
        stored = store.get("shared")
    # every acknowledged reading is in the log at its seq, and nothing else is
    assert [seq for seq, _, _ in log] == list(range(len(acknowledged)))
    assert sorted((seq, value) for _, seq, value in acknowledged) == [
        (seq, float(reading[0])) for seq, _, reading in log
    ]
    assert stored.seen == len(log)
    # the offline replay of the log, in a fresh forecaster, reaches the stored state
    replay_store = SeriesStore(model=fingerprint)
    offline = Forecaster.load(folder, store=replay_store)
    for _, _, reading in log:
        expected = offline.observe("shared", reading.reshape(1, -1), None, horizon=3)
    replayed = replay_store.get("shared")
    assert replayed.seen == stored.seen and set(replayed.arrays) == set(stored.arrays)
    for name in stored.arrays:
        np.testing.assert_allclose(stored.arrays[name], replayed.arrays[name], rtol=1e-6)
    np.testing.assert_allclose(final[0]["values"], expected.values, rtol=1e-6)
    offline.close()
