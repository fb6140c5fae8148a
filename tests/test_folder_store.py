"""A model folder's store, opened: the folder's own SQLite file, or PostgreSQL seeded from it."""

import re
import threading

import numpy as np
import pytest

from lstmlab.live.state_store import SeriesStore
from lstmlab.model_folder import save_model
from tests.test_model_folder import _saved


def test_open_store_passes_max_series_and_refuses_other_urls(tmp_path):
    from lstmlab.live.folder_store import open_store
    from lstmlab.live.stores import SeriesLimitError, StoredState

    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)  # three series
    state = StoredState(arrays={"h": np.zeros(2, np.float32)}, seen=1, last_time=None)
    with open_store(folder, max_series=4) as store:
        assert store.max_series == 4 and len(store) == 3
        store.put("x", state)  # a known series is updated at the limit too
        store.put("new", state)
        with pytest.raises(SeriesLimitError, match="the store holds 4 series, its limit"):
            store.put("one too many", state)
        assert len(store) == 4 and "one too many" not in store
    for url in ("sqlite:///tmp/x.sqlite", "mysql://h/db", "", "postgresql"):
        with pytest.raises(ValueError, match=re.escape(f"store URL {url!r} is not supported")):
            open_store(folder, url=url)


def test_open_store_opens_a_postgres_store_for_a_postgresql_url(tmp_path, monkeypatch):
    import sys
    import types

    from lstmlab.live.folder_store import open_store
    from lstmlab.model_folder import model_fingerprint

    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    opened = []

    class FakePostgresStore:
        def __init__(self, url, *, model, max_series=None):
            opened.append((url, model, max_series))

        seeded = False

        def seed(self, source):  # a new shared store starts from the folder's series
            opened.append(source.series_ids())

    fake = types.ModuleType("lstmlab.live.postgres_store")
    fake.PostgresStore = FakePostgresStore
    monkeypatch.setitem(sys.modules, "lstmlab.live.postgres_store", fake)
    store = open_store(folder, url="postgresql://u@localhost:5432/db", max_series=7)
    assert isinstance(store, FakePostgresStore)
    assert opened == [
        ("postgresql://u@localhost:5432/db", model_fingerprint(folder), 7),
        ("x", "y", "ünï code/id"),
    ]


def test_open_store_without_psycopg_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("psycopg")
    from lstmlab.live import postgres_store
    from lstmlab.live.folder_store import open_store

    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)
    monkeypatch.setattr(postgres_store, "psycopg", None)  # as where it is not installed
    with pytest.raises(ValueError, match=r"needs .*psycopg 3, which is not installed"):
        open_store(folder, url="postgresql://u@localhost:5432/db")


def test_a_new_postgres_store_starts_from_the_folders_trained_series(
    tmp_path, postgres_url, monkeypatch
):
    from lstmlab.live import folder_store
    from lstmlab.live.folder_store import open_store
    from lstmlab.live.stores import StoredState

    folder = tmp_path / "m"
    save_model(folder, _saved(), opener=SeriesStore)  # three trained series, warm-started states
    with open_store(folder) as local:
        state = local.get("y")
        local.put(
            "y",
            StoredState(arrays=state.arrays, seen=state.seen + 1, last_time=7),
            first_seq=state.seen,
            times=[7],
            readings=np.full((1, 2), 0.5),
        )
        ids = local.series_ids()
        want = {i: local.get(i) for i in ids}
        want_log = local.observations("y")
    opened = []  # two workers start together: one copies, the other finds it done
    workers = [
        threading.Thread(target=lambda: opened.append(open_store(folder, url=postgres_url)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(opened) == 2
    for store in opened:
        assert store.series_ids() == ids and len(store) == 3
        for series_id in ids:
            got = store.get(series_id)
            assert (got.seen, got.last_time) == (want[series_id].seen, want[series_id].last_time)
            assert got.arrays.keys() == want[series_id].arrays.keys()
            for name, array in want[series_id].arrays.items():
                np.testing.assert_array_equal(got.arrays[name], array)
        log = store.observations("y")
        assert [row[:2] for row in log] == [(2, 7)] == [row[:2] for row in want_log]
        np.testing.assert_array_equal(log[0][2], want_log[0][2])
    opened[0].delete("x")  # a series deleted on the shared store stays deleted
    for store in opened:
        store.close()

    def no_sqlite(*args, **kwargs):
        raise AssertionError("a seeded store opened the folder's SQLite store again")

    monkeypatch.setattr(folder_store, "SeriesStore", no_sqlite)
    with open_store(folder, url=postgres_url) as again:
        assert again.series_ids() == (ids[1], ids[2]) and again.seeded
