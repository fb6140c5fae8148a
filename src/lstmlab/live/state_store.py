"""The state store in SQLite (WAL mode), bound to one model; its interface: ``live.stores``.

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
store's own writes replace their series' entries once they commit).

The background checkpoint thread (a long-running service) survives every error: it records
it, backs off (doubling its pause up to ``CHECKPOINT_MAX_BACKOFF`` seconds) and retries. When
the WAL has grown past ``WAL_TRUNCATE_BYTES`` (after a burst of writes, or a disk-full
episode during which no checkpoint could run) it runs a ``TRUNCATE`` checkpoint, so the WAL
shrinks again; ``journal_size_limit`` also caps what a reset WAL keeps on disk.
"""

import contextlib
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstmlab.checks import check_choice
from lstmlab.live.stores import (
    STORE_FORMAT,
    LogRow,
    StatePage,
    StateStore,
    StoredState,
    StoreError,
    StoreUnavailable,
    check_max_series,
    copy_store,
    decode_log,
    decode_readings,
    decode_state,
    encode_state,
    log_rows,
    paged,
    series_limit_error,
)

__all__ = [
    "CACHE_KIB",
    "CHECKPOINT_INTERVAL",
    "CHECKPOINT_MAX_BACKOFF",
    "DURABILITIES",
    "WAL_TRUNCATE_BYTES",
    "SeriesStore",
]

DURABILITIES = ("process", "fsync")
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


def _reads_back_as_itself(state: StoredState) -> bool:
    """Whether ``state``'s record reads back equal, and its arrays are its own to keep.

    Plain integers, and arrays that are native, contiguous and own their data (an encoder
    made them): ``decode_state`` of the record gives equal arrays and numbers.
    """
    return (
        type(state.seen) is int
        and (state.last_time is None or type(state.last_time) is int)
        and all(
            type(array) is np.ndarray
            and array.flags.c_contiguous
            and array.flags.owndata
            and array.dtype.isnative
            and not array.dtype.hasobject
            for array in state.arrays.values()
        )
    )


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
            store writes is cached as written once the write commits, so a cached state is
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
        # series written by the open transaction: the state written (None: deleted, or a
        # write that failed part-way: left out of the cache)
        self._written: dict[str, StoredState | None] = {}
        self._version_current = False  # data_version checked inside the open transaction
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
            if cached and not self._version_current:
                version = db.execute("PRAGMA data_version").fetchone()[0]
                if version != self._cache_version:  # another connection committed
                    self._cache.clear()
                    self._cache_version = version
                # inside a write transaction no other connection can commit: once is enough
                self._version_current = self._depth > 0
            if cached:
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
            self._depth, self._version_current = 1, False
            try:
                yield self
            except BaseException as error:
                self._depth, self._version_current = 0, False
                self._forget_written()
                self._rollback()
                if isinstance(error, sqlite3.OperationalError) and _transient(error):
                    raise self._failed(error, "the write") from None
                raise
            self._depth, self._version_current = 0, False
            written = dict(self._written)
            self._forget_written()  # before the commit: a cached state is never stale
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as error:
                self._rollback()
                raise self._failed(error, "the commit") from None
            self._cache_written(written)
            if self._db.total_changes != changes:
                self._write_error = None  # a write went through: the cause has passed
                if self._reader is None:
                    self._count = self._read_count(self._db)

    def _forget_written(self) -> None:
        for series_id in self._written:
            self._cache.pop(series_id, None)
        self._written.clear()

    def _cache_written(self, written: dict[str, StoredState | None]) -> None:
        """Cache the committed states as ``get`` would read them back.

        A series read after each of its writes (a live service) is not read back. A state
        of plain integers and arrays (native, contiguous, its own) is cached itself, made
        read-only (a record holds nothing else: it reads back equal), so that a state's
        encoder knows it again (``StateCodec.decode``); any other is read back from its
        record.
        """
        if not self._cache_size or self._cache_version is None:
            return  # no cache yet: it starts with a data_version read by get
        # the cache keeps the latest: of a bulk write (a fit's states), only its last ones
        for series_id, state in list(written.items())[-self._cache_size :]:
            if state is None or not isinstance(series_id, str):
                continue
            if _reads_back_as_itself(state):
                for array in state.arrays.values():
                    array.flags.writeable = False
            else:
                state = decode_state(
                    series_id, encode_state(state), int(state.seen), state.last_time
                )
            self._cache[series_id] = state
            self._cache.move_to_end(series_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

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

    def _check_room(self, new: int) -> None:
        """Refuse ``new`` series beyond ``max_series`` (call inside the write transaction)."""
        if self._max_series is None or not new:
            return
        count = self._read_count(self._db)
        if count + new > self._max_series:
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
        """See ``StateStore.put`` (``put_many`` of one series).

        Raises:
            sqlite3.IntegrityError: a logged seq or timestamp is already in the log (nothing is
                written).
        """
        logs = None if readings is None else {series_id: (first_seq, times, readings)}
        self.put_many({series_id: state}, logs=logs)

    def put_many(
        self,
        states: Mapping[str, StoredState],
        *,
        logs: Mapping[str, tuple[int, Sequence[int] | None, np.ndarray]] | None = None,
    ) -> None:
        """See ``StateStore.put_many``: a statement a kind of row, whatever the number of series.

        Each statement hands the GIL over (to the event loop, in a service) and back: a
        group's rows go in one statement a kind, not one a row.

        Raises:
            sqlite3.IntegrityError: a logged seq or timestamp is already in the log.
        """
        records = {i: (encode_state(s), int(s.seen), s.last_time) for i, s in states.items()}
        with self.transaction(*records):
            for series_id in records:
                self._written[series_id] = None  # its cached state is stale, whatever happens
            known = self._stored_ids(list(records))
            new = [series_id for series_id in records if series_id not in known]
            self._check_room(len(new))  # before anything is written
            self._write_rows(
                "UPDATE series SET state = v.column2, seen = v.column3, last_time = v.column4 "
                "FROM (VALUES {}) AS v WHERE series.id = v.column1",
                [(series_id, *records[series_id]) for series_id in records if series_id in known],
            )
            # a new series' place is at the end
            self._write_rows(
                "INSERT INTO series (id, state, seen, last_time) VALUES {}",
                [(series_id, *records[series_id]) for series_id in new],
            )
            self._write_rows(
                "INSERT INTO observations VALUES {}",
                [
                    row
                    for series_id, log in (logs or {}).items()
                    for row in log_rows(series_id, *log)
                ],
            )
            self._written.update(states)  # all of it written

    # Rows per statement: 4 parameters a row stays under the 999 of SQLite before 3.32.
    ROWS_PER_STATEMENT = 249

    def _stored_ids(self, ids: list[str]) -> set[str]:
        """Those of ``ids`` the store holds."""
        found: set[str] = set()
        for start in range(0, len(ids), 4 * self.ROWS_PER_STATEMENT):
            chunk = ids[start : start + 4 * self.ROWS_PER_STATEMENT]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id FROM series WHERE id IN ({marks})"
            found.update(row[0] for row in self._db.execute(query, chunk))
        return found

    def _write_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``sql`` with ``{}`` standing for the rows' VALUES, in as few statements as hold them."""
        for start in range(0, len(rows), self.ROWS_PER_STATEMENT):
            chunk = rows[start : start + self.ROWS_PER_STATEMENT]
            row = "(" + ",".join("?" * len(chunk[0])) + ")"
            values = [value for row_values in chunk for value in row_values]
            self._db.execute(sql.format(",".join([row] * len(chunk))), values)

    def delete(self, series_id: str) -> bool:
        """See ``StateStore.delete``."""
        with self.transaction(series_id):
            self._written[series_id] = None
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
