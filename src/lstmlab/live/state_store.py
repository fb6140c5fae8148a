"""The one store of per-series state: SQLite in WAL mode, bound to one model.

Every writer of a series' state goes through a ``SeriesStore``: ``Forecaster.observe`` (in
Python and ``lstmlab observe``), the HTTP service and ``Forecaster.save``. A model folder
holds its store as ``DIR/series.<fingerprint16>.sqlite`` (named in ``config.json``; see
``lstmlab.model_folder``), so a series fed through the command line, then the service, and
back, continues from one state and never forks. A forecaster that is not saved yet keeps its
states in the same class, in memory (``SeriesStore()``).

What a row holds (the store does not interpret the arrays; ``lstmlab.forecaster`` does):

- ``series``: one row per series: its state arrays (safetensors bytes: no pickle), the count
  of readings seen and the last timestamp, in insertion order (``rowid``);
- ``observations``: the readings accepted for a series by sequence number (its position in
  the series) and timestamp, the idempotency record that lets a repeated request be answered
  without being applied twice;
- ``meta``: the fingerprint of the model the store belongs to; a store of another model is
  refused (``StoreError``);
- ``counters``: the number of stored series, kept by triggers in the same transaction as the
  insert or delete that changes it, so ``len(store)`` is one row read at any size (a
  ``COUNT(*)`` over a million series takes a noticeable fraction of a second). It is read on
  a connection of its own, so ``len`` (and ``health``) never wait behind a writer, of this
  process or another.

Every update is one transaction (``BEGIN IMMEDIATE``): a writer reads the series' current row
inside it, so a state written by another process in between is never overwritten by a stale
copy. With ``synchronous=NORMAL`` a committed transaction survives the process being killed
(SIGKILL), since the WAL is written before ``COMMIT`` returns; ``durability="fsync"``
(``synchronous=FULL``) also survives a power cut.

Failures that may pass (the disk is full, an I/O error, another writer holding the lock for
too long) roll the transaction back and raise ``StoreUnavailable`` (``retry_after`` seconds):
nothing of the failed transaction is written, and nothing committed before is touched, since
SQLite only ever appends to the WAL and copies committed frames into the database. The store
reports ``health() == ("degraded", reason)`` until a write (and, with the background
checkpoint thread, a checkpoint) succeeds again; no restart is needed.

Memory does not grow with the number of series: SQLite's page cache is bounded
(``CACHE_KIB``), and ``get`` keeps at most ``cached_states`` decoded states, each served only
while SQLite's ``data_version`` shows that no other connection committed since (this
store's own writes drop their series from the cache at commit).

The background checkpoint thread (a long-running service) survives every error: it records
it, backs off (doubling its pause up to ``CHECKPOINT_MAX_BACKOFF`` seconds) and retries. When
the WAL has grown past ``WAL_TRUNCATE_BYTES`` (after a burst of writes, or a disk-full
episode during which no checkpoint could run) it runs a ``TRUNCATE`` checkpoint, so the WAL
shrinks again; ``journal_size_limit`` also caps what a reset WAL keeps on disk.
"""

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import safetensors.numpy

from lstmlab.checks import check_choice, check_positive_int

__all__ = [
    "CACHE_KIB",
    "CHECKPOINT_INTERVAL",
    "CHECKPOINT_MAX_BACKOFF",
    "DURABILITIES",
    "NO_TIME",
    "WAL_TRUNCATE_BYTES",
    "DamagedStateError",
    "SeriesLimitError",
    "SeriesStore",
    "StatePage",
    "StateStore",
    "StoreError",
    "StoreUnavailable",
    "StoredState",
    "copy_store",
    # the codec and helpers every store implementation shares (postgres_store)
    "check_max_series",
    "decode_log",
    "decode_page",
    "decode_readings",
    "decode_state",
    "encode_state",
    "log_rows",
    "paged",
    "series_limit_error",
]

DURABILITIES = ("process", "fsync")
NO_TIME = int(np.iinfo(np.int64).min)  # "no timestamp yet" where a timestamp array needs a value
STORE_FORMAT = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS series (
        id TEXT NOT NULL UNIQUE, state BLOB NOT NULL, seen INTEGER NOT NULL,
        last_time INTEGER)""",
    """CREATE TABLE IF NOT EXISTS observations (
        series_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER,
        reading BLOB NOT NULL, PRIMARY KEY (series_id, seq)) WITHOUT ROWID""",
    """CREATE UNIQUE INDEX IF NOT EXISTS observations_time
        ON observations (series_id, time) WHERE time IS NOT NULL""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TRIGGER IF NOT EXISTS series_added AFTER INSERT ON series BEGIN
        UPDATE counters SET value = value + 1 WHERE name = 'series'; END""",
    """CREATE TRIGGER IF NOT EXISTS series_removed AFTER DELETE ON series BEGIN
        UPDATE counters SET value = value - 1 WHERE name = 'series'; END""",
)
CACHE_KIB = 8192  # SQLite's page cache per connection, bounded whatever the store's size
CHECKPOINT_INTERVAL = 0.5  # seconds between background checkpoints
CHECKPOINT_MAX_BACKOFF = 8.0  # the longest pause between retries of a failing checkpoint
WAL_TRUNCATE_BYTES = 16 * 1024 * 1024  # a WAL larger than this is checkpointed and truncated
_JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024  # what a reset WAL may keep on disk
_AUTOCHECKPOINT_PAGES = 16384  # the writer's own checkpoint, a backstop to the thread
_BUSY_MS = 30000
# SQLite's primary result codes of failures that may pass (the low byte of extended codes)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_NOMEM, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 7, 10, 13
_SQLITE_CANTOPEN = 14
_TRANSIENT = {_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_NOMEM, _SQLITE_IOERR, _SQLITE_FULL}


class StoreError(ValueError):
    """A state store that cannot be used with this model: what is wrong and the fix."""


class DamagedStateError(RuntimeError):
    """A stored state that cannot be read: the store's fault, not the request's (HTTP 500)."""


class SeriesLimitError(ValueError):
    """A new series was refused: the store already holds its ``max_series`` (HTTP 429)."""


class StoreUnavailable(RuntimeError):
    """A read or write failed for a reason that may pass (disk full, I/O error, lock, network).

    Nothing of the failed transaction was written; the same request can be sent again.

    Attributes:
        retry_after: seconds after which a retry may succeed (HTTP 503's ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = int(retry_after)


def _transient(error: BaseException) -> bool:
    """Whether ``error`` is an SQLite failure that may pass (full disk, I/O, busy)."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.OperationalError) and (
        code is not None and code & 0xFF in _TRANSIENT
    )


def _disk_full(folder: Path) -> bool:
    """Whether the filesystem holding ``folder`` has (almost) no space left for us."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1024 * 1024


def _describe(error: sqlite3.Error, path: Path | None) -> tuple[str, int]:
    """What failed, in words, and how long to wait before a retry."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    where = "memory" if path is None else str(path.parent)
    if code == _SQLITE_FULL:
        return f"the disk holding {where} is full ({error})", 5
    if code == _SQLITE_IOERR:
        name = getattr(error, "sqlite_errorname", "SQLITE_IOERR")
        if path is not None and _disk_full(path.parent):  # ENOSPC reaches SQLite as IOERR_*
            return f"the disk holding {where} is full ({name}: {error})", 5
        return f"a disk I/O error ({name}) on the store in {where} ({error})", 5
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return f"the store {path} was locked by another writer for {_BUSY_MS // 1000} s", 1
    return f"the store {path} failed ({error})", 5


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class StoredState:
    """One series' row: its state arrays, readings seen and last timestamp.

    Attributes:
        arrays: the state as named NumPy arrays (the forecaster defines the names).
        seen: readings observed so far.
        last_time: the last reading's timestamp in nanoseconds since the epoch, or ``None``.
    """

    arrays: Mapping[str, np.ndarray]
    seen: int
    last_time: int | None


def encode_state(state: StoredState) -> bytes:
    """A state's arrays as one safetensors record (the ``state`` column of both stores)."""
    return safetensors.numpy.save(
        {name: np.asarray(array, order="C") for name, array in state.arrays.items()}
    )


def decode_state(series_id: str, blob: bytes, seen: int, last_time: int | None) -> StoredState:
    """Inverse of ``encode_state``; damaged bytes raise ``DamagedStateError``."""
    try:
        arrays = safetensors.numpy.load(bytes(blob))
    except safetensors.SafetensorError as error:  # damaged bytes: name the series and the fix
        raise DamagedStateError(
            f"the stored state of series {series_id!r} is unreadable ({error}): the state "
            "store is damaged; delete the series (its state starts afresh) or restore the "
            "store from a copy"
        ) from None
    for array in arrays.values():
        array.flags.writeable = False  # a decoded state may be shared through the cache
    return StoredState(arrays=arrays, seen=seen, last_time=last_time)


# -- what SeriesStore and PostgresStore (live/postgres_store.py) share -----------------------
LogRow = tuple[int, int | None, np.ndarray]  # (seq, time or None, reading float64)


def check_max_series(max_series: int | None) -> int | None:
    """``max_series`` if it is ``None`` or a positive int (the stores' one check)."""
    if max_series is not None:
        check_positive_int("max_series", max_series, fix="pass an int >= 1, or None")
    return max_series


def series_limit_error(count: int, limit: int) -> SeriesLimitError:
    """The one message of a refused new series, whichever the store (HTTP 429)."""
    return SeriesLimitError(
        f"the store holds {count} series, its limit (max_series) is {limit}; delete series "
        "that are no longer needed, or raise the limit (lstmlab serve --max-series)"
    )


def log_rows(
    series_id: str,
    first_seq: int | None,
    times: Sequence[int] | None,
    readings: np.ndarray,
) -> list[tuple[str, int, int | None, bytes]]:
    """The observation-log rows ``(series_id, seq, time, reading bytes)`` of one ``put``."""
    return [
        (
            series_id,
            int(first_seq) + i,
            None if times is None else int(times[i]),
            np.ascontiguousarray(readings[i], np.float64).tobytes(),
        )
        for i in range(len(readings))
    ]


def decode_log(rows: Sequence[tuple[int, int | None, bytes]]) -> list[LogRow]:
    """Observation-log rows ``(seq, time, reading bytes)`` as ``LogRow``s."""
    return [(seq, time_, np.frombuffer(blob, np.float64)) for seq, time_, blob in rows]


def decode_readings(rows: Sequence[tuple[int, bytes]]) -> dict[int, np.ndarray]:
    """Rows ``(key, reading bytes)`` as key -> reading (float64)."""
    return {key: np.frombuffer(blob, np.float64) for key, blob in rows}


@dataclass(frozen=True, slots=True, eq=False)
class StatePage:
    """Stored states of one layout, stacked: what a page of ``StateStore.pages`` holds.

    Attributes:
        ids: the series, in storage order.
        arrays: every state array with a leading row axis (row ``k``: ``ids[k]``), read-only.
        seen: readings observed, one per row.
        last_time: the last reading's timestamp in nanoseconds, or ``None``, one per row.
    """

    ids: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    seen: tuple[int, ...]
    last_time: tuple[int | None, ...]

    def items(self) -> Iterator[tuple[str, StoredState]]:
        """Each row as ``(series id, StoredState)``; the arrays are views of the page's."""
        for k, series_id in enumerate(self.ids):
            arrays = {name: array[k] for name, array in self.arrays.items()}
            yield (
                series_id,
                StoredState(arrays=arrays, seen=self.seen[k], last_time=self.last_time[k]),
            )


def _page_of_one(state: StoredState, series_id: str) -> StatePage:
    return StatePage(
        ids=(series_id,),
        arrays={name: array[None] for name, array in state.arrays.items()},
        seen=(state.seen,),
        last_time=(state.last_time,),
    )


def decode_page(rows: Sequence[tuple[str, bytes, int, int | None]]) -> list[StatePage]:
    """``decode_state`` of many rows ``(series id, state bytes, seen, last_time)`` at once.

    The states of one model share one layout, so their safetensors headers are the same
    bytes: a run of rows with the first one's header and length is read through one NumPy
    structured view of all their data (the first decoded and checked by safetensors), without
    a parse per row. A row of another layout starts a page of its own; damaged bytes raise
    ``DamagedStateError`` as ``decode_state`` does.

    Args:
        rows: the rows, in order.

    Returns:
        Pages of one layout each that hold the rows in order.
    """
    pages: list[StatePage] = []
    k = 0
    while k < len(rows):
        series_id, blob, seen, last_time = rows[k]
        first = decode_state(series_id, blob, seen, last_time)
        blob = bytes(blob)
        start = 8 + int.from_bytes(blob[:8], "little")
        header = blob[:start]
        end = k + 1
        while end < len(rows) and len(rows[end][1]) == len(blob) and rows[end][1][:start] == header:
            end += 1
        if end == k + 1:
            pages.append(_page_of_one(first, series_id))
            k = end
            continue
        offsets = {
            name: entry["data_offsets"][0]
            for name, entry in json.loads(header[8:]).items()
            if name != "__metadata__"
        }
        layout = np.dtype(
            {
                "names": list(offsets),
                "formats": [
                    (first.arrays[name].dtype.newbyteorder("<"), first.arrays[name].shape)
                    for name in offsets
                ],
                "offsets": list(offsets.values()),
                "itemsize": len(blob) - start,
            }
        )
        run = rows[k:end]
        records = np.frombuffer(b"".join(bytes(row[1])[start:] for row in run), layout)
        pages.append(
            StatePage(
                ids=tuple(row[0] for row in run),
                arrays={name: records[name] for name in offsets},  # read-only views
                seen=tuple(row[2] for row in run),
                last_time=tuple(row[3] for row in run),
            )
        )
        k = end
    return pages


def paged(
    read_page: Callable[[int, int], Sequence[tuple[Any, ...]]], batch_size: int
) -> Iterator[StatePage]:
    """``pages()`` of either store, ``batch_size`` rows at a time (bounded memory).

    ``read_page(after, limit)`` gives at most ``limit`` rows ``(position, id, state, seen,
    last_time)`` whose position is past ``after``, in position order.
    """
    check_positive_int("batch_size", batch_size)
    after = -(2**63)
    while True:
        rows = read_page(after, batch_size)
        yield from decode_page([row[1:] for row in rows])
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


class StateStore(Protocol):
    """What every state store offers: ``SeriesStore`` (SQLite) and ``PostgresStore``.

    The forecaster, the service and the model folder use a store through this interface
    only. Each class documents what differs (locking, failures, the exception of a
    repeated log key).
    """

    @property
    def path(self) -> Path | None:
        """The database file, or ``None`` (in memory, or on a server)."""
        ...

    @property
    def model(self) -> str:
        """The fingerprint of the model the states belong to."""
        ...

    @property
    def max_series(self) -> int | None:
        """The most series the store may hold, or ``None``."""
        ...

    def __len__(self) -> int:
        """The number of stored series (one row read, at any size)."""
        ...

    def __contains__(self, series_id: object) -> bool:
        """Whether ``series_id`` is stored."""
        ...

    def series_ids(self) -> tuple[str, ...]:
        """Every stored series, in the order they were first stored."""
        ...

    def get(self, series_id: str) -> StoredState | None:
        """The latest committed state of a series (or, inside a transaction, its own write).

        Args:
            series_id: the series.

        Returns:
            Its state (read-only arrays), or ``None`` for an unknown id.
        """
        ...

    def items(self, *, batch_size: int = 1000) -> Iterator[tuple[str, StoredState]]:
        """Every ``(series id, state)``, in storage order, read ``batch_size`` rows at a time.

        Memory stays bounded at any number of series. A series written while the iteration
        runs may appear with its newer state; one inserted meanwhile appears at the end.

        Args:
            batch_size: rows read at a time.

        Returns:
            An iterator of ``(series id, state)`` pairs.
        """
        ...

    def pages(self, *, batch_size: int = 1000) -> Iterator[StatePage]:
        """``items()`` as pages of stacked arrays (``StatePage``), for work on many series.

        Args:
            batch_size: rows read at a time (a page holds at most that many).

        Returns:
            An iterator of pages, in storage order.
        """
        ...

    def health(self) -> tuple[str, str | None]:
        """``("ok", None)``, or ``("degraded", reason)`` while writes fail.

        Returns:
            The state and, when degraded, what failed last (in words).
        """
        ...

    def transaction(self, *series_ids: str) -> AbstractContextManager["StateStore"]:
        """Everything inside commits together or not at all; a read inside sees the latest state.

        No other writer (thread or process) commits to these series in between. Nested uses
        join the outer transaction.

        Args:
            *series_ids: the series read and written inside; none: the whole store.

        Returns:
            A context manager that yields the store itself.

        Raises:
            StoreUnavailable: the transaction failed for a reason that may pass; nothing
                was written.
        """
        ...

    def put(
        self,
        series_id: str,
        state: StoredState,
        *,
        first_seq: int | None = None,
        times: Sequence[int] | None = None,
        readings: np.ndarray | None = None,
    ) -> None:
        """Store a series' state, and log the readings that led to it, in one transaction.

        Args:
            series_id: the series.
            state: its new state.
            first_seq: sequence number of the first logged reading (required with
                ``readings``).
            times: the readings' timestamps in nanoseconds, or ``None``.
            readings: ``(readings, columns)`` float64 as received, or ``None`` to log none.

        Raises:
            SeriesLimitError: ``series_id`` is new and the store holds ``max_series``
                series (nothing is written).
            StoreUnavailable: the write failed for a reason that may pass (nothing is
                written).
        """
        ...

    def put_many(self, states: Mapping[str, StoredState]) -> None:
        """Store several series' states in one transaction (no readings are logged)."""
        ...

    def delete(self, series_id: str) -> bool:
        """Remove a series: its state and its observation log (one transaction).

        Args:
            series_id: the series.

        Returns:
            ``True`` if it was stored, ``False`` for an unknown id.

        Raises:
            StoreUnavailable: the write failed for a reason that may pass.
        """
        ...

    def copy_into(self, other: "StateStore") -> None:
        """Write every series and logged reading of this store into ``other`` (``copy_store``).

        Args:
            other: the destination, SQLite or PostgreSQL; its rows for the same series are
                replaced.
        """
        ...

    def replace_log(self, series_id: str, log: Sequence[LogRow]) -> None:
        """Replace a series' observation log by ``log`` (one transaction; ``copy_store``).

        Args:
            series_id: the series.
            log: its ``(seq, time, reading)`` rows, as ``observations`` gives them.
        """
        ...

    def logged(self, series_id: str, column: str, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """Logged readings of a series by ``seq`` or ``time`` (``column``).

        Args:
            series_id: the series.
            column: ``"seq"`` or ``"time"``.
            keys: the sequence numbers or timestamps (nanoseconds) to look up.

        Returns:
            key -> reading (float64) for the keys that are in the log.
        """
        ...

    def logged_seqs(self, series_id: str, times: Sequence[int]) -> dict[int, int]:
        """The sequence numbers of a series' logged readings, by timestamp.

        Args:
            series_id: the series.
            times: the timestamps (nanoseconds) to look up.

        Returns:
            time -> seq for the timestamps that are in the log.
        """
        ...

    def observations(self, series_id: str) -> list[LogRow]:
        """The logged ``(seq, time, reading)`` of a series, in order (for offline replays)."""
        ...

    def close(self) -> None:
        """Release the store's connections (and threads); it cannot be used afterwards."""
        ...

    def __enter__(self) -> "StateStore":
        """The store itself; leaving the ``with`` block closes it."""
        ...

    def __exit__(self, *exc: Any) -> None:
        """Close the store."""
        ...


def copy_store(source: StateStore, destination: StateStore) -> None:
    """Write every series and logged reading of ``source`` into ``destination``.

    Either store may be a ``SeriesStore`` or a ``PostgresStore``. The copy is one
    transaction of ``destination`` (its rows for the same series are replaced: state and
    log), and reads ``source`` inside a transaction of its own, so no write to the source
    mixes into it: every copied state agrees with its copied log.

    Args:
        source: the store read.
        destination: the store written.
    """
    if destination is source:
        return
    with source.transaction(), destination.transaction():
        for series_id, state in source.items():
            destination.replace_log(series_id, source.observations(series_id))
            destination.put(series_id, state)


class SeriesStore:
    """The ``StateStore`` in one SQLite database (WAL mode), or in memory.

    Args:
        path: the database file (created if needed), or ``None`` for a store in memory.
        model: the fingerprint of the model the states belong to
            (``lstmlab.model_folder.model_fingerprint``); a store made for another model is
            refused.
        durability: ``"process"`` (survives a killed process) or ``"fsync"`` (also a power
            cut); see the module docstring.
        background_checkpoint: copy the WAL into the database on a background thread (a
            long-running service), so that no write waits for a checkpoint.
        max_series: the most series the store may hold, or ``None`` for no limit; storing
            a new series beyond it raises ``SeriesLimitError`` (known series are updated).
        cached_states: how many decoded states ``get`` keeps (least recently used first
            out; ``0`` for none). A cached state is served only while SQLite's
            ``data_version`` says no other connection committed since, and a series this
            store writes leaves the cache when the write commits, so a cached state is
            always the latest committed one. Its arrays are read-only.
        existing: ``None`` to create the store's tables where they are missing (a new
            store); else the store must already be one, with every table, and this text says
            why in the refusal (e.g. "the model folder lists 3 trained series"): an emptied
            or truncated file is refused, never silently re-created empty.

    Raises:
        StoreError: the store belongs to another model, is not an lstmlab state store, or
            (with ``existing``) has lost its tables.
        StoreUnavailable: the file cannot be opened for a reason that may pass (disk full).

    Example:
        >>> store = SeriesStore(model="m1")
        >>> store.put("a", StoredState(arrays={"h": np.zeros(2, np.float32)}, seen=3,
        ...                            last_time=None))
        >>> store.get("a").seen, store.series_ids(), len(store)
        (3, ('a',), 1)
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model: str,
        durability: str = "process",
        background_checkpoint: bool = False,
        max_series: int | None = None,
        cached_states: int = 1024,
        existing: str | None = None,
    ) -> None:
        check_choice("durability", durability, DURABILITIES)
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty fingerprint string, got {model!r}")
        self._path = None if path is None else Path(path)
        self._model = model
        self._existing = existing
        self._max_series = check_max_series(max_series)
        if (
            isinstance(cached_states, bool)
            or not isinstance(cached_states, int)
            or cached_states < 0
        ):
            raise ValueError(
                f"cached_states must be an int >= 0, got {cached_states!r}; pass e.g. 1024, or 0 "
                "for no cache"
            )
        self._cache_size = cached_states
        self._cache: OrderedDict[str, StoredState | None] = OrderedDict()
        self._cache_version: int | None = None  # SQLite's data_version the cache is valid for
        self._written: set[str] = set()  # series written by the open transaction
        self._lock = threading.RLock()  # one connection, shared by the service's threads
        self._depth = 0  # nesting of ``transaction``
        self._write_error: str | None = None  # why the last write failed, until one succeeds
        self._checkpoint_error: str | None = None  # why the last checkpoint failed
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None  # reads the series count
        self._reader_lock = threading.Lock()
        self._count = 0  # an in-memory store's committed series count
        try:
            self._db = sqlite3.connect(
                ":memory:" if path is None else str(path),
                isolation_level=None,
                check_same_thread=False,
                timeout=_BUSY_MS / 1000,
            )
        except sqlite3.Error as error:
            raise self._unavailable_or_not_a_store(error, "open") from None
        try:
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}"
                )
                self._db.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
            self._bind(model)
            if path is not None:
                # ``len`` and ``health`` never wait for the write lock: the count is read on
                # a connection of its own, which in WAL mode sees the last commit of any
                # process without waiting for a writer
                self._reader = sqlite3.connect(
                    str(path), isolation_level=None, check_same_thread=False,
                    timeout=_BUSY_MS / 1000,
                )  # fmt: skip
                self._reader.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, StoreUnavailable) as error:
            self._close_connections()
            if isinstance(error, StoreUnavailable):
                raise
            raise self._unavailable_or_not_a_store(error, "open") from None
        except BaseException:
            self._close_connections()  # the store is not usable: leave no connection open
            raise
        if background_checkpoint and path is not None:
            # Checkpoints (copying the WAL into the database, with an fsync) run on their
            # own connection, so that no request waits for one. The writer's own automatic
            # checkpoint stays as a backstop at a size the thread normally never lets the
            # WAL reach (its errors are ignored by SQLite: a commit never fails for it).
            self._db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _unavailable_or_not_a_store(self, error: sqlite3.Error, what: str) -> Exception:
        if _transient(error):
            reason, retry_after = _describe(error, self._path)
            return StoreUnavailable(
                f"could not {what} the state store {self._path}: {reason}; free space or fix "
                "the disk, the request can be retried",
                retry_after=retry_after,
            )
        if getattr(error, "sqlite_errorcode", 0) & 0xFF == _SQLITE_CANTOPEN:
            return StoreError(
                f"cannot {what} the state store {self._path} ({error}); check that its folder "
                "exists and that this user may write to it"
            )
        return StoreError(
            f"{self._path} is not an lstmlab state store ({error}); pass another file or delete it"
        )

    def _bind(self, model: str) -> None:
        if self._existing is not None:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
            missing = [t for t in ("meta", "series", "observations", "counters") if t not in tables]
            if missing:
                # a truncated file opens as an empty database: re-creating it would lose
                # every trained state and the retry log without a word
                raise StoreError(
                    f"state store {self._path} has lost its table(s) {', '.join(missing)} "
                    f"(an emptied or damaged file), but {self._existing}; restore the store "
                    "from a copy, or save the model again (lstmlab fit) to start its series "
                    "afresh"
                )
        with self.transaction():
            # The schema is created under the write lock, so that two processes opening a
            # new store do not race, and the series count is set up once, in the same
            # transaction as the triggers that keep it from then on.
            for statement in _SCHEMA:
                self._db.execute(statement)
            rows = dict(self._db.execute("SELECT key, value FROM meta"))
            if "model" not in rows:
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("model", model), ("format", str(STORE_FORMAT))],
                )
            elif rows["model"] != model:
                raise StoreError(
                    f"state store {self._path} belongs to another model (fingerprint "
                    f"{rows['model'][:16]}..., this model's is {model[:16]}...); pass a new "
                    "file, or delete the old one to start the series again"
                )
            counted = self._db.execute("SELECT 1 FROM counters WHERE name = 'series'").fetchone()
            if counted is None:  # a new store, or one written before the counter existed
                self._db.execute("INSERT INTO counters SELECT 'series', COUNT(*) FROM series")

    # -- health and checkpoints -------------------------------------------------------------
    def health(self) -> tuple[str, str | None]:
        """``StateStore.health``: degraded while writes or background checkpoints fail."""
        reason = self._write_error or self._checkpoint_error
        return ("ok", None) if reason is None else ("degraded", reason)

    def _checkpoint_loop(self) -> None:
        connection: sqlite3.Connection | None = None
        pause = CHECKPOINT_INTERVAL
        try:
            while not self._stop.wait(pause):
                try:
                    if connection is None:
                        connection = sqlite3.connect(
                            str(self._path), isolation_level=None, timeout=2.0
                        )
                        connection.execute("PRAGMA cache_size=-1024")
                        connection.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
                    self._checkpoint_once(connection)
                    if self._write_error is not None:
                        self._probe_write(connection)
                    pause = CHECKPOINT_INTERVAL
                except Exception as error:  # noqa: BLE001 - the thread must outlive any error
                    pause = min(max(pause, CHECKPOINT_INTERVAL) * 2, CHECKPOINT_MAX_BACKOFF)
                    cause = (
                        _describe(error, self._path)[0]
                        if isinstance(error, sqlite3.Error)
                        else repr(error)
                    )
                    self._checkpoint_error = (
                        f"checkpoints of the state store {self._path} fail: {cause}; "
                        f"retrying in {pause:g} s"
                    )
                    if connection is not None:
                        with contextlib.suppress(Exception):
                            connection.close()
                        connection = None  # a fresh connection on the next try
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()

    def _wal_bytes(self) -> int:
        try:
            return os.path.getsize(f"{self._path}-wal")
        except OSError:
            return 0

    def _checkpoint_once(self, connection: sqlite3.Connection) -> None:
        """One checkpoint: PASSIVE, or TRUNCATE when the WAL has grown large."""
        mode = "TRUNCATE" if self._wal_bytes() > WAL_TRUNCATE_BYTES else "PASSIVE"
        try:
            connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError as error:
            if mode == "PASSIVE" or getattr(error, "sqlite_errorcode", 0) & 0xFF not in (
                _SQLITE_BUSY,
                _SQLITE_LOCKED,
            ):
                raise
            # TRUNCATE waits for readers and writers; busy now, PASSIVE does what it can
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self._checkpoint_error = None

    def _probe_write(self, connection: sqlite3.Connection) -> None:
        """After a failed write: one small write, so health recovers without traffic."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT OR REPLACE INTO counters VALUES ('probe', ?)", (time.time_ns(),)
            )
            connection.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            return  # still failing: the write error stays the reason
        self._write_error = None

    # -- views ------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The database file, or ``None`` in memory."""
        return self._path

    @property
    def model(self) -> str:
        """See ``StateStore.model``."""
        return self._model

    @property
    def max_series(self) -> int | None:
        """See ``StateStore.max_series``."""
        return self._max_series

    @contextlib.contextmanager
    def _reading(self, *, lock: bool = True) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; a read failure that may pass is StoreUnavailable."""
        with self._lock if lock else contextlib.nullcontext():
            try:
                yield self._db
            except sqlite3.OperationalError as error:
                if not _transient(error):
                    raise
                reason, retry_after = _describe(error, self._path)
                raise StoreUnavailable(
                    f"reading the state store failed: {reason}; the request can be retried",
                    retry_after=retry_after,
                ) from None

    def __len__(self) -> int:
        if self._reader is None:  # in memory: no other connection writes
            return self._count
        with self._reader_lock, self._reading(lock=False):
            return self._read_count(self._reader)

    @staticmethod
    def _read_count(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM counters WHERE name = 'series'").fetchone()[0])

    def __contains__(self, series_id: object) -> bool:
        with self._reading() as db:
            row = db.execute("SELECT 1 FROM series WHERE id = ?", (series_id,)).fetchone()
        return row is not None

    def series_ids(self) -> tuple[str, ...]:
        """See ``StateStore.series_ids``."""
        with self._reading() as db:
            return tuple(row[0] for row in db.execute("SELECT id FROM series ORDER BY rowid"))

    def get(self, series_id: str) -> StoredState | None:
        """``StateStore.get``, served from the cache of decoded states when it is current.

        A cached state is served only while SQLite's ``data_version`` shows that no other
        connection committed since (``cached_states``).
        """
        with self._reading() as db:
            cached = self._cache_size and series_id not in self._written
            if cached:
                version = db.execute("PRAGMA data_version").fetchone()[0]
                if version != self._cache_version:  # another connection committed
                    self._cache.clear()
                    self._cache_version = version
                if series_id in self._cache:
                    self._cache.move_to_end(series_id)
                    return self._cache[series_id]
            row = db.execute(
                "SELECT state, seen, last_time FROM series WHERE id = ?", (series_id,)
            ).fetchone()
            state = None if row is None else decode_state(series_id, *row)
            if cached and isinstance(series_id, str):
                self._cache[series_id] = state
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return state

    def items(self, *, batch_size: int = 1000) -> Iterator[tuple[str, StoredState]]:
        """``StateStore.items``; each page is read under the connection's lock."""
        return (pair for page in self.pages(batch_size=batch_size) for pair in page.items())

    def pages(self, *, batch_size: int = 1000) -> Iterator[StatePage]:
        """``StateStore.pages``; each page is read under the connection's lock."""

        def read_page(after: int, limit: int) -> list[tuple[Any, ...]]:
            with self._reading() as db:
                return db.execute(
                    "SELECT rowid, id, state, seen, last_time FROM series WHERE rowid > ? "
                    "ORDER BY rowid LIMIT ?",
                    (after, limit),
                ).fetchall()

        return paged(read_page, batch_size)

    # -- writes -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *series_ids: str) -> Iterator["SeriesStore"]:
        """``StateStore.transaction`` as ``BEGIN IMMEDIATE``: SQLite's write lock.

        The lock covers the whole store, so ``series_ids`` are accepted and not needed. A failure
        that may pass (disk full, I/O error) rolls everything back and raises ``StoreUnavailable``.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            changes = self._db.total_changes
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise self._failed(error, "starting a transaction") from None
            self._depth = 1
            try:
                yield self
            except BaseException as error:
                self._depth = 0
                self._forget_written()
                self._rollback()
                if isinstance(error, sqlite3.OperationalError) and _transient(error):
                    raise self._failed(error, "the write") from None
                raise
            self._depth = 0
            self._forget_written()  # before the commit: a cached state is never stale
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as error:
                self._rollback()
                raise self._failed(error, "the commit") from None
            if self._db.total_changes != changes:
                self._write_error = None  # a write went through: the cause has passed
                if self._reader is None:
                    self._count = self._read_count(self._db)

    def _forget_written(self) -> None:
        for series_id in self._written:
            self._cache.pop(series_id, None)
        self._written.clear()

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR)
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _failed(self, error: sqlite3.OperationalError, what: str) -> Exception:
        if not _transient(error):
            return error
        reason, retry_after = _describe(error, self._path)
        self._write_error = f"writes to the state store fail: {reason}"
        return StoreUnavailable(
            f"{what} failed and was rolled back, nothing was stored: {reason}; the request "
            f"can be retried (in about {retry_after} s)",
            retry_after=retry_after,
        )

    def _check_room(self) -> None:
        """Refuse a new series beyond ``max_series`` (call inside the write transaction)."""
        if self._max_series is None:
            return
        count = self._read_count(self._db)
        if count >= self._max_series:
            raise series_limit_error(count, self._max_series)

    def put(
        self,
        series_id: str,
        state: StoredState,
        *,
        first_seq: int | None = None,
        times: Sequence[int] | None = None,
        readings: np.ndarray | None = None,
    ) -> None:
        """See ``StateStore.put``.

        Raises:
            sqlite3.IntegrityError: a logged seq or timestamp is already in the log (nothing is
                written).
        """
        blob = encode_state(state)
        with self.transaction(series_id):
            self._written.add(series_id)
            updated = self._db.execute(
                "UPDATE series SET state = ?, seen = ?, last_time = ? WHERE id = ?",
                (blob, int(state.seen), state.last_time, series_id),
            ).rowcount
            if not updated:  # a new series: its place is at the end, if there is room
                self._check_room()
                self._db.execute(
                    "INSERT INTO series (id, state, seen, last_time) VALUES (?, ?, ?, ?)",
                    (series_id, blob, int(state.seen), state.last_time),
                )
            if readings is not None:
                self._db.executemany(
                    "INSERT INTO observations VALUES (?, ?, ?, ?)",
                    log_rows(series_id, first_seq, times, readings),
                )

    def put_many(self, states: Mapping[str, StoredState]) -> None:
        """See ``StateStore.put_many``."""
        with self.transaction(*states):
            for series_id, state in states.items():
                self.put(series_id, state)

    def delete(self, series_id: str) -> bool:
        """See ``StateStore.delete``."""
        with self.transaction(series_id):
            self._written.add(series_id)
            self._db.execute("DELETE FROM observations WHERE series_id = ?", (series_id,))
            removed = self._db.execute("DELETE FROM series WHERE id = ?", (series_id,)).rowcount
        return removed > 0

    def copy_into(self, other: StateStore) -> None:
        """See ``StateStore.copy_into``."""
        copy_store(self, other)

    def replace_log(self, series_id: str, log: Sequence[LogRow]) -> None:
        """See ``StateStore.replace_log``."""
        with self.transaction(series_id):
            self._db.execute("DELETE FROM observations WHERE series_id = ?", (series_id,))
            self._db.executemany(
                "INSERT INTO observations VALUES (?, ?, ?, ?)",
                [(series_id, seq, time_, reading.tobytes()) for seq, time_, reading in log],
            )

    # -- the observation log ----------------------------------------------------------------
    def logged(self, series_id: str, column: str, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """``StateStore.logged``, 500 keys per query (SQLite's bound-parameter limit)."""
        check_choice("column", column, ("seq", "time"))
        found: dict[int, np.ndarray] = {}
        keys = [int(k) for k in keys]
        with self._reading() as db:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                part = keys[start : start + 500]
                rows = db.execute(
                    f"SELECT {column}, reading FROM observations WHERE series_id = ? AND "
                    f"{column} IN ({','.join('?' * len(part))})",
                    (series_id, *part),
                )
                found.update(decode_readings(rows.fetchall()))
        return found

    def logged_seqs(self, series_id: str, times: Sequence[int]) -> dict[int, int]:
        """``StateStore.logged_seqs``, 500 keys per query (SQLite's parameter limit)."""
        found: dict[int, int] = {}
        times = [int(t) for t in times]
        with self._reading() as db:
            for start in range(0, len(times), 500):  # SQLite's bound-parameter limit
                part = times[start : start + 500]
                found.update(
                    db.execute(
                        "SELECT time, seq FROM observations WHERE series_id = ? AND "
                        f"time IN ({','.join('?' * len(part))})",
                        (series_id, *part),
                    ).fetchall()
                )
        return found

    def observations(self, series_id: str) -> list[LogRow]:
        """See ``StateStore.observations``."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, time, reading FROM observations WHERE series_id = ? ORDER BY seq",
                (series_id,),
            ).fetchall()
        return decode_log(rows)

    def close(self) -> None:
        """Stop the checkpoint thread (if any) and close the connections."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        self._close_connections()

    def _close_connections(self) -> None:
        self._db.close()
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> "SeriesStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
