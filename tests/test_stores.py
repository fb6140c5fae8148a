"""The store interface and its codec, which the SQLite and PostgreSQL stores share."""

import numpy as np
import pytest

from lstmlab.live import stores
from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import StoredState


def test_a_page_of_states_decodes_as_each_state_alone():
    rng = np.random.default_rng(0)

    def state(k, recent=4):  # a model's layout: several dtypes, a scalar, an empty array
        arrays = {
            "rnn.0.h": rng.normal(size=(3, 5)).astype(np.float32),
            "recent": rng.normal(size=(recent, 2)).astype(np.float32),
            "seen": np.asarray(k, np.int64),
            "zone": rng.integers(0, 255, 64).astype(np.uint8),
            "none": np.zeros((0, 2), np.float32),
            "scaler.offset": rng.normal(size=2),
        }
        return StoredState(arrays=arrays, seen=k, last_time=None if k % 2 else 10 * k)

    states = [state(k) for k in range(40)] + [state(40, recent=2)] + [state(41)]
    rows = [(f"s{k}", stores.encode_state(s), s.seen, s.last_time) for k, s in enumerate(states)]
    pages = stores.decode_page(rows)
    # one page per run of one layout: rows 0-39, the shorter window 40, then 41
    assert [len(p.ids) for p in pages] == [40, 1, 1]
    page = [state for p in pages for _, state in p.items()]
    assert [i for p in pages for i, _ in p.items()] == [row[0] for row in rows]
    for got, row in zip(page, rows, strict=True):
        alone = stores.decode_state(*row)  # safetensors' own parse of the row
        assert (got.seen, got.last_time) == (alone.seen, alone.last_time)
        assert got.arrays.keys() == alone.arrays.keys()
        for name, array in alone.arrays.items():
            assert got.arrays[name].dtype == array.dtype and got.arrays[name].shape == array.shape
            np.testing.assert_array_equal(got.arrays[name], array)
            assert not got.arrays[name].flags.writeable
    assert stores.decode_page([]) == []
    # a damaged row is named as decode_state names it, whichever row of the page it is
    for k in (0, 7):
        damaged = list(rows)
        damaged[k] = (rows[k][0], rows[k][1][:-5], rows[k][2], rows[k][3])
        with pytest.raises(stores.DamagedStateError, match=f"series 's{k}' is unreadable"):
            stores.decode_page(damaged)


def test_both_stores_offer_the_state_store_interface_with_its_signatures():
    import inspect

    from lstmlab.live.postgres_store import PostgresStore
    from lstmlab.live.stores import StateStore

    members = [
        name
        for name, value in vars(StateStore).items()
        if (callable(value) or isinstance(value, property))
        and (not name.startswith("_") or name in ("__len__", "__contains__", "__enter__"))
    ]
    assert {"get", "put", "transaction", "logged", "path", "__len__"} <= set(members)

    def parameters(cls, name):
        value = inspect.getattr_static(cls, name)
        if isinstance(value, property):
            return "property"
        return [(p.name, p.kind, p.default) for p in inspect.signature(value).parameters.values()]

    for store in (SeriesStore, PostgresStore):
        for name in members:
            assert parameters(store, name) == parameters(StateStore, name), (store, name)
            if not name.startswith("__"):
                assert inspect.getattr_static(store, name).__doc__, (store, name)


def test_a_state_is_encoded_and_decoded_as_safetensors_does_also_when_its_header_is_reused():
    import safetensors.numpy

    rng = np.random.default_rng(7)

    def state(units, extra):
        arrays = {
            "rnn.0.h": rng.normal(size=(3, units)).astype(np.float32),
            "rnn.0.c": rng.normal(size=(3, units)).astype(np.float32),
            "recent": rng.normal(size=(units, 1)).astype(np.float32),
            "scaler": rng.normal(size=(2, 1)),  # float64
            "zone": np.frombuffer(b"Europe/Paris", np.uint8).copy(),
            "flags": np.array([1, 0, 1], np.int64),
            **({"prediction": rng.normal(size=(3, 1)).astype(np.float32)} if extra else {}),
        }
        return StoredState(arrays=arrays, seen=int(rng.integers(100)), last_time=None)

    # several layouts, each encoded more than once (the later ones reuse its header)
    for units, extra in [(4, True), (4, False), (7, True), (4, True), (7, True), (4, False)]:
        for _ in range(3):
            record = state(units, extra)
            blob = stores.encode_state(record)
            assert blob == safetensors.numpy.save(dict(record.arrays))  # the reference
            decoded = stores.decode_state("s", blob, record.seen, None)
            for name, array in record.arrays.items():
                np.testing.assert_array_equal(decoded.arrays[name], array)
                assert decoded.arrays[name].dtype == array.dtype
                assert not decoded.arrays[name].flags.writeable  # shared through the cache
            # a record cut short is refused, its header known or not
            with pytest.raises(stores.DamagedStateError, match="unreadable"):
                stores.decode_state("s", blob[:-1], record.seen, None)
    # an array of another byte order is written as safetensors writes it too
    odd = StoredState(arrays={"x": np.arange(4, dtype=">f4")}, seen=0, last_time=None)
    assert stores.encode_state(odd) == safetensors.numpy.save({"x": np.arange(4, dtype=">f4")})
