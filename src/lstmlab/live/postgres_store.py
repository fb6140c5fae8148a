"""The state store on PostgreSQL: several service workers, on one machine or several, share it.

``PostgresStore`` is a ``StateStore`` with the guarantees of the SQLite ``SeriesStore``
(``lstmlab.live.state_store``): the same rows (the state arrays as safetensors bytes, in
``BYTEA``), the same observation log with the same unique keys ``(series_id, seq)`` and
``(series_id, time)`` (so a repeated reading is recognised and readings stay in order), the
same binding to one model fingerprint (a store of another model is refused with
``StoreError``), and one transaction per observation.

Tables (in the connection's ``search_path``; pass ``?options=-csearch_path%3Dname`` in the
URL to keep several models' stores in one database): ``lstmlab_meta``, ``lstmlab_series``,
``lstmlab_observations`` and ``lstmlab_counters`` (the number of series, changed in the same
transaction as the insert or delete, so ``len(store)`` reads one row and ``max_series`` is
checked under that row's lock: two processes cannot both take the last free place).

Locking: ``transaction(*series_ids)`` takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock``) per series, in the order of their lock keys (a deterministic
64-bit hash of the model and the id), so two workers that read, advance and write the same
series run one after the other, and workers on different series run side by side. Every
such transaction also holds a shared store-wide lock, which ``transaction()`` without ids
takes exclusively: it then excludes every other writer, as SQLite's write lock does. A
transaction naming more than ``MANY_SERIES`` series (``put_many``) takes that exclusive lock
instead of one per series, since each held lock takes a place in the server's lock table
(``max_locks_per_transaction``). Every transaction waits at most ``lock_timeout`` seconds
for its locks, then fails with ``StoreUnavailable``.

Failures that may pass (the connection is lost, the server restarts or runs out of disk, a
deadlock was broken) roll the transaction back and raise ``StoreUnavailable``
(``retry_after`` seconds); the next call reconnects by itself. A commit whose answer was lost
may have been applied: a repeated observation is recognised by the log, so the retry is safe.
Durability is the server's (``synchronous_commit``, on by default: a committed transaction
survives a crash of either side).

A new store starts from a model folder's trained series: ``seed`` (called by
``lstmlab.live.folder_store.open_store``) copies the folder's SQLite store in once, under the
store-wide lock, and records that it did.

Each thread gets its own connection (the service runs model work in a thread pool).
"""

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lstmlab.checks import check_choice, check_positive_number
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

try:
    import psycopg
except ImportError:  # the serve extra brings it; this module still imports without it
    psycopg = None

__all__ = ["CONNECT_TIMEOUT", "LOCK_TIMEOUT", "MANY_SERIES", "RETRY_AFTER", "PostgresStore"]

CONNECT_TIMEOUT = 5  # seconds a (re)connection may take before the call fails
LOCK_TIMEOUT = 30.0  # seconds a transaction waits for a lock (SQLite's busy timeout)
RETRY_AFTER = 2  # seconds a client should wait after StoreUnavailable
MANY_SERIES = 64  # a transaction naming more series takes the store-wide lock instead
_SCHEMA = """
CREATE TABLE IF NOT EXISTS lstmlab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lstmlab_series (
    id TEXT PRIMARY KEY, state BYTEA NOT NULL, seen BIGINT NOT NULL, last_time BIGINT,
    position BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS lstmlab_series_position ON lstmlab_series (position);
CREATE TABLE IF NOT EXISTS lstmlab_observations (
    series_id TEXT NOT NULL, seq BIGINT NOT NULL, time BIGINT, reading BYTEA NOT NULL,
    PRIMARY KEY (series_id, seq));
CREATE UNIQUE INDEX IF NOT EXISTS lstmlab_observations_time
    ON lstmlab_observations (series_id, time) WHERE time IS NOT NULL;
CREATE TABLE IF NOT EXISTS lstmlab_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO lstmlab_counters VALUES ('series', (SELECT count(*) FROM lstmlab_series))
    ON CONFLICT (name) DO NOTHING;
"""
_UPDATE = "UPDATE lstmlab_series SET state = %s, seen = %s, last_time = %s WHERE id = %s"


def _hash_key(*parts: str) -> int:
    """A deterministic signed 64-bit advisory-lock key (the same in every process)."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SCHEMA_KEY = _hash_key("lstmlab", "schema")  # creating the tables, whatever the model
# libpq's words for an option value it refuses ('invalid sslmode value: "x"', 'invalid
# integer value "x" for connection option "port"'), as opposed to a server out of reach
_BAD_OPTION = re.compile(r"(?:^|: )invalid [^\n]*\b(?:value|option)\b")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    url = re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", url)
    return re.sub(r"(password\s*=\s*)[^&\s]+", r"\1***", url)


class _Local(threading.local):
    """One thread's connection and the state of its transaction."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.depth = 0  # nesting of ``transaction``
        self.locked: set[int] = set()  # advisory keys held by the open transaction
        self.exclusive = False  # the open transaction holds the store-wide lock
        self.wrote = False  # the open transaction wrote something


class PostgresStore:
    """The ``StateStore`` in a PostgreSQL database, shared by several workers.

    Args:
        url: a libpq connection string, ``postgresql://user:password@host:port/database``
            (a unix socket: ``postgresql:///database?host=/run/postgresql``).
        model: the fingerprint of the model the states belong to
            (``lstmlab.model_folder.model_fingerprint``); a store made for another model is
            refused.
        max_series: the most series the store may hold; storing a new series beyond it
            raises ``SeriesLimitError``. ``None``: no limit.
        retry_after: the seconds ``StoreUnavailable`` tells a client to wait.
        connect_timeout: seconds a (re)connection may take.
        lock_timeout: seconds a transaction waits for a lock (a series another worker
            holds) before it fails with ``StoreUnavailable``; a ``lock_timeout`` set in the
            URL's ``options`` is kept instead.

    Raises:
        StoreError: the database holds the store of another model; the URL is malformed
            or names an option value libpq refuses; the user may not create the tables.
        StoreUnavailable: the server cannot be reached.
        ImportError: psycopg is not installed (``pip install 'lstmlab[serve]'``).

    Example (needs a server, so not run as a doctest)::

        store = PostgresStore("postgresql://lstmlab@localhost/lstmlab", model=fingerprint)
        with store.transaction("meter-7"):
            state = store.get("meter-7")
            store.put("meter-7", advanced(state), first_seq=..., readings=...)
    """

    def __init__(
        self,
        url: str,
        *,
        model: str,
        max_series: int | None = None,
        retry_after: int = RETRY_AFTER,
        connect_timeout: int = CONNECT_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        if psycopg is None:
            raise ImportError(
                "a PostgreSQL state store needs psycopg 3, which is not installed; "
                "pip install 'lstmlab[serve]' (or 'psycopg[binary]')"
            )
        if not isinstance(url, str) or not url:
            raise ValueError(f"url must be a PostgreSQL connection string, got {url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty fingerprint string, got {model!r}")
        self._url = url
        self._where = _redact(url)
        try:
            psycopg.conninfo.conninfo_to_dict(url)  # libpq's own parser: names every bad part
        except psycopg.ProgrammingError as error:
            raise self._bad_url(error) from None
        self._model = model
        self._max_series = check_max_series(max_series)
        self._retry_after = int(retry_after)
        self._connect_timeout = int(connect_timeout)
        lock_timeout = check_positive_number("lock_timeout", lock_timeout, fix="pass e.g. 30")
        lock_ms = max(int(lock_timeout * 1000), 1)
        # the session's own setting (the URL's options) wins over ours
        self._lock_timeout = (
            f"SELECT set_config('lock_timeout', '{lock_ms}ms', true) "
            "WHERE current_setting('lock_timeout') = '0'"
        )
        self._local = _Local()
        self._lock = threading.Lock()  # guards the set of connections and the failure
        self._connections: set[Any] = set()
        self._failure: str | None = None  # why the last write failed, until one succeeds
        self._closed = False
        self._global_key = _hash_key("lstmlab", "store", model)
        try:
            self._bind()
        except BaseException:
            self.close()
            raise

    # -- connections and failures -----------------------------------------------------------
    def _bad_url(self, error: Exception) -> StoreError:
        reason = _redact(" ".join(str(error).split()))
        return StoreError(
            f"the PostgreSQL URL {self._where} cannot be used ({reason}); fix the URL: "
            "postgresql://user:password@host:port/database?option=value, with libpq's option "
            "names and values (for example sslmode=require)"
        )

    def _connection(self) -> Any:
        """This thread's connection, (re)opened if needed."""
        if self._closed:
            raise ValueError(f"the state store at {self._where} is closed; open a new one")
        connection = self._local.connection
        if connection is not None and not connection.closed:
            return connection
        self._drop()
        try:
            connection = psycopg.connect(
                self._url,
                autocommit=True,  # transactions are explicit: BEGIN ... COMMIT
                connect_timeout=self._connect_timeout,
                application_name="lstmlab",
            )
        except psycopg.OperationalError as error:
            # libpq refuses a bad option value before it connects: no retry would help
            if error.sqlstate is None and _BAD_OPTION.search(str(error)):
                raise self._bad_url(error) from None
            raise
        with self._lock:
            self._connections.add(connection)
        self._local.connection = connection
        return connection

    def _current(self) -> Any:
        """The connection of the open transaction (lost: the transaction cannot go on)."""
        connection = self._local.connection
        if connection is None or connection.closed:
            raise psycopg.OperationalError("the connection was lost during the transaction")
        return connection

    def _drop(self) -> None:
        """Forget this thread's connection (closing it); the next call reconnects."""
        connection, self._local.connection = self._local.connection, None
        if connection is not None:
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.contextmanager
    def _failures(self, *, write: bool = False) -> Iterator[None]:
        """Turn failures that may pass into ``StoreUnavailable``; drop a broken connection.

        Outside a transaction, whatever failed, no transaction stays open on this thread's
        connection (a failed one would refuse every later statement).
        """
        try:
            yield
        except BaseException as error:
            if not self._local.depth:
                self._settle()
            if not isinstance(
                error,
                (
                    psycopg.OperationalError,  # connection lost, server down, disk full, ...
                    psycopg.InterfaceError,  # the connection was closed under us
                    psycopg.errors.ReadOnlySqlTransaction,  # a standby, or made read-only
                ),
            ):
                raise
            connection = self._local.connection
            if (
                connection is None
                or connection.closed
                or connection.broken
                or isinstance(error, psycopg.errors.ReadOnlySqlTransaction)
            ):
                self._drop()  # the next call reconnects (perhaps to a new primary)
            reason = " ".join(str(error).split()) or type(error).__name__
            if isinstance(error, psycopg.errors.LockNotAvailable):
                reason = f"a lock was held by another writer for too long: {reason}"
            message = (
                f"the PostgreSQL state store at {self._where} is unavailable ({reason}); "
                f"the store reconnects by itself: retry in {self._retry_after} s"
            )
            if write:
                with self._lock:
                    self._failure = message
            raise StoreUnavailable(message, retry_after=self._retry_after) from error

    def _settle(self) -> None:
        """Roll back a transaction left open on this thread's connection (outside ours)."""
        connection = self._local.connection
        if connection is None or connection.closed or connection.broken:
            return
        if connection.info.transaction_status in (
            psycopg.pq.TransactionStatus.INERROR,
            psycopg.pq.TransactionStatus.INTRANS,
        ):
            self._rollback(connection)

    def _run(self, query: str, params: Sequence[Any] | None = None) -> Any:
        """Run one statement on this thread's connection.

        Outside a transaction, a connection found broken (the server restarted since its last
        use) is replaced once: nothing was done on it, so the retry is safe.
        """
        for attempt in (0, 1):
            reused = self._local.connection is not None
            connection = self._connection()
            try:
                return connection.execute(query, params)
            except psycopg.OperationalError:
                if attempt or self._local.depth or not reused or not connection.broken:
                    raise
                self._drop()  # nothing was done on it: retry on a new connection
        raise AssertionError("unreachable")

    # -- set-up -----------------------------------------------------------------------------
    def _bind(self) -> None:
        """Create the tables if needed, and bind the store to the model (or refuse)."""
        with (
            self._refused(),
            self._failures(),
            self._begun(f"SELECT pg_advisory_xact_lock({_SCHEMA_KEY})"),
        ):
            connection = self._local.connection
            # CREATE INDEX IF NOT EXISTS locks its table even when the index exists, and
            # deadlocks with a worker writing both tables in the other order: the schema is
            # created in one transaction, so the last table tells that it all exists
            exists = connection.execute("SELECT to_regclass('lstmlab_counters')").fetchone()
            if exists[0] is None:
                connection.execute(_SCHEMA)
            rows = dict(connection.execute("SELECT key, value FROM lstmlab_meta").fetchall())
            if "model" not in rows:
                connection.cursor().executemany(
                    "INSERT INTO lstmlab_meta VALUES (%s, %s)",
                    [("model", self._model), ("format", str(STORE_FORMAT))],
                )
            elif rows["model"] != self._model:
                raise StoreError(
                    f"the PostgreSQL state store at {self._where} belongs to another model "
                    f"(fingerprint {rows['model'][:16]}..., this model's is "
                    f"{self._model[:16]}...); pass another database (or schema), or drop its "
                    "lstmlab_* tables to start the series again"
                )
            elif rows.get("format") != str(STORE_FORMAT):
                raise StoreError(
                    f"the PostgreSQL state store at {self._where} has format "
                    f"{rows.get('format')}, this lstmlab reads format {STORE_FORMAT}; use the "
                    "lstmlab version that wrote it, or another database"
                )

    @contextlib.contextmanager
    def _refused(self) -> Iterator[None]:
        """A user without the rights the store needs: ``StoreError`` with the fix."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as error:
            reason = " ".join(str(error).split())
            user = psycopg.conninfo.conninfo_to_dict(self._url).get("user") or "the user"
            raise StoreError(
                f"the user of the PostgreSQL state store at {self._where} may not create or "
                f"use the store's tables ({reason}); grant it the rights (as the database's "
                f'owner: GRANT CREATE ON SCHEMA public TO "{user}", or create the lstmlab_* '
                "tables once as their owner and grant it SELECT, INSERT, UPDATE, DELETE on "
                "them), or connect as another user"
            ) from None

    @contextlib.contextmanager
    def _begun(self, locks: str) -> Iterator[Any]:
        """``BEGIN`` and take ``locks`` in one round trip; commit or roll back at the end."""
        try:
            self._run(f"BEGIN; {self._lock_timeout}; {locks}")
        except BaseException:
            # a lock wait that timed out or was cancelled leaves the transaction failed,
            # the connection intact: without a rollback every later statement is refused
            self._settle()
            raise
        connection = self._local.connection
        try:
            yield connection
        except BaseException:
            self._rollback(connection)
            raise
        if connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            # PostgreSQL turns COMMIT of a failed transaction into a silent ROLLBACK
            self._rollback(connection)
            raise StoreError(
                "a statement inside the transaction failed and the transaction was rolled "
                "back; nothing of it was written (do not catch store errors inside a "
                "transaction)"
            )
        connection.execute("COMMIT")

    def _rollback(self, connection: Any) -> None:
        if connection.closed or connection.broken:
            self._drop()
            return
        try:
            connection.execute("ROLLBACK")
        except psycopg.Error:
            self._drop()

    # -- views ------------------------------------------------------------------------------
    @property
    def path(self) -> None:
        """``None``: no file holds this store; see ``url``."""
        return None

    @property
    def url(self) -> str:
        """The connection string, without its password."""
        return self._where

    @property
    def model(self) -> str:
        """See ``StateStore.model``."""
        return self._model

    @property
    def max_series(self) -> int | None:
        """See ``StateStore.max_series``."""
        return self._max_series

    def __len__(self) -> int:
        with self._failures():
            row = self._run("SELECT value FROM lstmlab_counters WHERE name = 'series'").fetchone()
        return int(row[0])

    def __contains__(self, series_id: object) -> bool:
        if not isinstance(series_id, str):
            return False
        with self._failures():
            row = self._run("SELECT 1 FROM lstmlab_series WHERE id = %s", (series_id,)).fetchone()
        return row is not None

    def series_ids(self) -> tuple[str, ...]:
        """See ``StateStore.series_ids``."""
        with self._failures():
            rows = self._run("SELECT id FROM lstmlab_series ORDER BY position").fetchall()
        return tuple(row[0] for row in rows)

    def get(self, series_id: str) -> StoredState | None:
        """``StateStore.get``, read from the server on every call (no cache)."""
        with self._failures():
            row = self._run(
                "SELECT state, seen, last_time FROM lstmlab_series WHERE id = %s", (series_id,)
            ).fetchone()
        return None if row is None else decode_state(series_id, *row)

    def items(self, *, batch_size: int = 1000) -> Iterator[tuple[str, StoredState]]:
        """``StateStore.items``, one query per page."""
        return (pair for page in self.pages(batch_size=batch_size) for pair in page.items())

    def pages(self, *, batch_size: int = 1000) -> Iterator[StatePage]:
        """``StateStore.pages``, one query per page."""

        def read_page(after: int, limit: int) -> list[tuple[Any, ...]]:
            with self._failures():
                return self._run(
                    "SELECT position, id, state, seen, last_time FROM lstmlab_series "
                    "WHERE position > %s ORDER BY position LIMIT %s",
                    (after, limit),
                ).fetchall()

        return paged(read_page, batch_size)

    def health(self) -> tuple[str, str | None]:
        """``StateStore.health``: degraded while the server is out of reach.

        After a failed write, a small write is tried too; its success ends the degraded state (as
        does any committed write).
        """
        failure = self._failure
        query = (
            "SELECT 1"
            if failure is None
            else "UPDATE lstmlab_meta SET value = value WHERE key = 'format'"
        )
        try:
            with self._failures(write=failure is not None):
                if self._local.depth:
                    self._current().execute("SELECT 1")
                else:
                    self._run(query)
        except StoreUnavailable as error:
            return "degraded", str(error)
        if failure is not None:
            with self._lock:
                if self._failure == failure:
                    self._failure = None
        return "ok", None

    # -- writes -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *series_ids: str) -> Iterator["PostgresStore"]:
        """``StateStore.transaction`` with an advisory lock per named series.

        Another process's transaction on one of these series waits until this one ends; workers
        on other series run side by side. Nested uses join the outer transaction (taking the locks
        of series it did not name). None named, or more than ``MANY_SERIES`` (each lock takes a
        place in the server's lock table): the store-wide lock. A lost connection or a failed
        commit raises ``StoreUnavailable``.
        """
        local = self._local
        keys = sorted({_hash_key("lstmlab", "series", self._model, i) for i in series_ids})
        if len(keys) > MANY_SERIES and not local.depth:
            keys = []  # one lock per id would exhaust max_locks_per_transaction
        if local.depth:
            new = [] if local.exclusive else [k for k in keys if k not in local.locked]
            if new:
                with self._failures(write=True):
                    self._current().execute(
                        "; ".join(f"SELECT pg_advisory_xact_lock({k})" for k in new)
                    )
                local.locked.update(new)
            local.depth += 1
            try:
                yield self
            finally:
                local.depth -= 1
            return
        with self._failures(write=True), self._begun(self._lock_statements(keys)):
            local.depth, local.locked, local.exclusive = 1, set(keys), not keys
            local.wrote = False
            try:
                yield self
            finally:
                local.depth, local.locked, local.exclusive = 0, set(), False
        if local.wrote and self._failure is not None:
            with self._lock:
                self._failure = None  # a write went through: the cause has passed

    def _lock_statements(self, keys: Sequence[int]) -> str:
        """The SQL that takes a transaction's locks (keys sorted: no two wait on each other)."""
        if not keys:
            return f"SELECT pg_advisory_xact_lock({self._global_key})"
        locks = [f"SELECT pg_advisory_xact_lock_shared({self._global_key})"]
        return "; ".join(locks + [f"SELECT pg_advisory_xact_lock({k})" for k in keys])

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
            psycopg.IntegrityError: a logged seq or timestamp is already in the log (nothing is
                written).
        """
        with self.transaction(series_id), self._failures(write=True):
            connection = self._current()
            self._local.wrote = True
            # the row first: a new series refused for room raises before its readings are
            # logged (inside a caller's larger transaction nothing rolls them back)
            self._write_row(connection, series_id, state)
            if readings is not None:
                connection.cursor().executemany(
                    "INSERT INTO lstmlab_observations (series_id, seq, time, reading) "
                    "VALUES (%s, %s, %s, %s)",
                    log_rows(series_id, first_seq, times, readings),
                )

    def _write_row(self, connection: Any, series_id: str, state: StoredState) -> None:
        row = (encode_state(state), int(state.seen), state.last_time, series_id)
        if connection.execute(_UPDATE, row).rowcount:
            return
        # A new series: take a place in the counter first, under its row lock, so the
        # limit holds across processes and a refused series changes nothing.
        limit = "" if self._max_series is None else f" AND value < {int(self._max_series)}"
        place = connection.execute(
            f"UPDATE lstmlab_counters SET value = value + 1 WHERE name = 'series'{limit} "
            "RETURNING value"
        ).fetchone()
        if place is None:
            count = connection.execute(
                "SELECT value FROM lstmlab_counters WHERE name = 'series'"
            ).fetchone()[0]
            raise series_limit_error(count, self._max_series)
        inserted = connection.execute(
            "INSERT INTO lstmlab_series (id, state, seen, last_time) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING RETURNING 1",
            (series_id, *row[:3]),
        ).fetchone()
        if inserted is None:  # another writer (not holding this series' lock) stored it first
            connection.execute(
                "UPDATE lstmlab_counters SET value = value - 1 WHERE name = 'series'"
            )
            connection.execute(_UPDATE, row)

    def put_many(
        self,
        states: Mapping[str, StoredState],
        *,
        logs: Mapping[str, tuple[int, Sequence[int] | None, np.ndarray]] | None = None,
    ) -> None:
        """See ``StateStore.put_many``."""
        logs = logs or {}
        with self.transaction(*states):
            for series_id, state in states.items():
                first_seq, times, readings = logs.get(series_id, (None, None, None))
                self.put(series_id, state, first_seq=first_seq, times=times, readings=readings)

    def delete(self, series_id: str) -> bool:
        """See ``StateStore.delete``."""
        with self.transaction(series_id), self._failures(write=True):
            connection = self._current()
            self._local.wrote = True
            removed = connection.execute(
                "DELETE FROM lstmlab_series WHERE id = %s", (series_id,)
            ).rowcount
            connection.execute(
                "DELETE FROM lstmlab_observations WHERE series_id = %s", (series_id,)
            )
            if removed:
                connection.execute(
                    "UPDATE lstmlab_counters SET value = value - 1 WHERE name = 'series'"
                )
        return bool(removed)

    def copy_into(self, other: StateStore) -> None:
        """See ``StateStore.copy_into``."""
        copy_store(self, other)

    @property
    def seeded(self) -> bool:
        """Whether ``seed`` has run on this store (by any worker)."""
        with self._failures():
            row = self._run("SELECT 1 FROM lstmlab_meta WHERE key = 'seeded'").fetchone()
        return row is not None

    def seed(self, source: StateStore) -> bool:
        """Copy ``source`` (a model folder's own store: its trained series) in, once.

        Runs under the store-wide lock: of several workers starting together, the first
        copies and the others wait, then find it done. A store that was seeded before, or
        that already holds series, is left as it is (a series deleted since is not brought
        back).

        Args:
            source: the store to copy (``copy_store``), usually the folder's ``SeriesStore``.

        Returns:
            Whether this call copied ``source``.
        """
        with self.transaction(), self._failures(write=True):
            connection = self._current()
            done = connection.execute("SELECT 1 FROM lstmlab_meta WHERE key = 'seeded'")
            if done.fetchone() is not None:
                return False
            copied = len(self) == 0
            if copied:
                copy_store(source, self)
            self._local.wrote = True
            connection.execute("INSERT INTO lstmlab_meta VALUES ('seeded', %s)", (str(len(self)),))
        return copied

    def replace_log(self, series_id: str, log: Sequence[LogRow]) -> None:
        """See ``StateStore.replace_log``."""
        with self.transaction(series_id), self._failures(write=True):
            connection = self._current()
            self._local.wrote = True
            connection.execute(
                "DELETE FROM lstmlab_observations WHERE series_id = %s", (series_id,)
            )
            connection.cursor().executemany(
                "INSERT INTO lstmlab_observations (series_id, seq, time, reading) "
                "VALUES (%s, %s, %s, %s)",
                [(series_id, seq, time_, reading.tobytes()) for seq, time_, reading in log],
            )

    # -- the observation log ----------------------------------------------------------------
    def logged(self, series_id: str, column: str, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """``StateStore.logged``, one query."""
        check_choice("column", column, ("seq", "time"))
        keys = [int(k) for k in keys]
        with self._failures():
            rows = self._run(
                f"SELECT {column}, reading FROM lstmlab_observations "
                f"WHERE series_id = %s AND {column} = ANY(%s::bigint[])",
                (series_id, keys),
            ).fetchall()
        return decode_readings(rows)

    def logged_seqs(self, series_id: str, times: Sequence[int]) -> dict[int, int]:
        """``StateStore.logged_seqs``, one query."""
        times = [int(t) for t in times]
        with self._failures():
            rows = self._run(
                "SELECT time, seq FROM lstmlab_observations "
                "WHERE series_id = %s AND time = ANY(%s::bigint[])",
                (series_id, times),
            ).fetchall()
        return dict(rows)

    def observations(self, series_id: str) -> list[LogRow]:
        """See ``StateStore.observations``."""
        with self._failures():
            rows = self._run(
                "SELECT seq, time, reading FROM lstmlab_observations WHERE series_id = %s "
                "ORDER BY seq",
                (series_id,),
            ).fetchall()
        return decode_log(rows)

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()
        self._local.connection = None

    def __enter__(self) -> "PostgresStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
