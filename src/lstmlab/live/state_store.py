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
  refused (``StoreError``).

Every update is one transaction (``BEGIN IMMEDIATE``): a writer reads the series' current row
inside it, so a state written by another process in between is never overwritten by a stale
copy. With ``synchronous=NORMAL`` a committed transaction survives the process being killed
(SIGKILL), since the WAL is written before ``COMMIT`` returns; ``durability="fsync"``
(``synchronous=FULL``) also survives a power cut.
"""

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from lstmlab.checks import check_choice

__all__ = ["DURABILITIES", "NO_TIME", "StoreError", "StoredState", "SeriesStore"]

DURABILITIES = ("process", "fsync")
NO_TIME = int(np.iinfo(np.int64).min)  # "no timestamp yet" where a timestamp array needs a value
STORE_FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id TEXT NOT NULL UNIQUE, state BLOB NOT NULL, seen INTEGER NOT NULL, last_time INTEGER);
CREATE TABLE IF NOT EXISTS observations (
    series_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER,
    reading BLOB NOT NULL, PRIMARY KEY (series_id, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS observations_time
    ON observations (series_id, time) WHERE time IS NOT NULL;
"""


class StoreError(ValueError):
    """A state store that cannot be used with this model: what is wrong and the fix."""


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


def _encode(state: StoredState) -> bytes:
    return safetensors.numpy.save(
        {name: np.asarray(array, order="C") for name, array in state.arrays.items()}
    )


def _decode(blob: bytes, seen: int, last_time: int | None) -> StoredState:
    return StoredState(arrays=safetensors.numpy.load(bytes(blob)), seen=seen, last_time=last_time)


class SeriesStore:
    """Per-series states and the observation log in one SQLite database (WAL mode).

    Args:
        path: the database file (created if needed), or ``None`` for a store in memory.
        model: the fingerprint of the model the states belong to
            (``lstmlab.model_folder.model_fingerprint``); a store made for another model is
            refused.
        durability: ``"process"`` (survives a killed process) or ``"fsync"`` (also a power
            cut); see the module docstring.
        background_checkpoint: copy the WAL into the database on a background thread (a
            long-running service), so that no write waits for a checkpoint.

    Raises:
        StoreError: the store belongs to another model, or is not an lstmlab state store.

    Example:
        >>> store = SeriesStore(model="m1")
        >>> store.put("a", StoredState(arrays={"h": np.zeros(2, np.float32)}, seen=3,
        ...                            last_time=None))
        >>> store.get("a").seen, store.series_ids()
        (3, ('a',))
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model: str,
        durability: str = "process",
        background_checkpoint: bool = False,
    ) -> None:
        check_choice("durability", durability, DURABILITIES)
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty fingerprint string, got {model!r}")
        self._path = None if path is None else Path(path)
        self._model = model
        self._lock = threading.RLock()  # one connection, shared by the service's threads
        self._depth = 0  # nesting of ``transaction``
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            isolation_level=None,
            check_same_thread=False,
        )
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        try:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}"
                )
                self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(_SCHEMA)
            self._bind(model)
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise StoreError(
                f"{path} is not an lstmlab state store ({error}); pass another file or delete it"
            ) from None
        except BaseException:
            self._db.close()  # the store is not usable: do not leave its connection open
            raise
        if background_checkpoint and path is not None:
            # Checkpoints (copying the WAL into the database, with an fsync) run on their
            # own connection, so that no request waits for one.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _bind(self, model: str) -> None:
        with self.transaction():
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

    def _checkpoint_loop(self) -> None:
        connection = sqlite3.connect(str(self._path), isolation_level=None)
        try:
            while not self._stop.wait(0.5):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    # -- views ------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The database file, or ``None`` in memory."""
        return self._path

    @property
    def model(self) -> str:
        """The fingerprint of the model the states belong to."""
        return self._model

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM series").fetchone()[0]

    def __contains__(self, series_id: object) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM series WHERE id = ?", (series_id,)).fetchone()
        return row is not None

    def series_ids(self) -> tuple[str, ...]:
        """Every stored series, in the order they were first stored."""
        with self._lock:
            return tuple(row[0] for row in self._db.execute("SELECT id FROM series ORDER BY rowid"))

    def get(self, series_id: str) -> StoredState | None:
        """The stored state of a series, read now, or ``None`` for an unknown id."""
        with self._lock:
            row = self._db.execute(
                "SELECT state, seen, last_time FROM series WHERE id = ?", (series_id,)
            ).fetchone()
        return None if row is None else _decode(*row)

    def items(self) -> Iterator[tuple[str, StoredState]]:
        """Every ``(series id, state)``, in storage order (read in one snapshot)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, state, seen, last_time FROM series ORDER BY rowid"
            ).fetchall()
        for series_id, *row in rows:
            yield series_id, _decode(*row)

    # -- writes -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator["SeriesStore"]:
        """Hold the write lock: everything inside commits together or not at all.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock first, so a read inside sees the latest
        committed state and no other writer (thread or process) can commit in between.
        Nested uses join the outer transaction.

        Yields:
            The store itself.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

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
            sqlite3.IntegrityError: a logged sequence number or timestamp is already in the
                log (nothing is written).
        """
        with self.transaction():
            if readings is not None:
                rows = [
                    (
                        series_id,
                        int(first_seq) + i,
                        None if times is None else int(times[i]),
                        np.ascontiguousarray(readings[i], np.float64).tobytes(),
                    )
                    for i in range(len(readings))
                ]
                self._db.executemany("INSERT INTO observations VALUES (?, ?, ?, ?)", rows)
            self._db.execute(
                "INSERT INTO series (id, state, seen, last_time) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, seen = excluded.seen, "
                "last_time = excluded.last_time",
                (series_id, _encode(state), int(state.seen), state.last_time),
            )

    def put_many(self, states: Mapping[str, StoredState]) -> None:
        """Store several series' states in one transaction (no readings are logged)."""
        with self.transaction():
            for series_id, state in states.items():
                self.put(series_id, state)

    def copy_into(self, other: "SeriesStore") -> None:
        """Write every series and logged reading of this store into ``other`` (one transaction).

        Args:
            other: the destination; its rows for the same series are replaced.
        """
        if other is self:
            return
        with self._lock:
            log = self._db.execute(
                "SELECT series_id, seq, time, reading FROM observations"
            ).fetchall()
        with other.transaction():
            for series_id, state in self.items():
                other._db.execute("DELETE FROM observations WHERE series_id = ?", (series_id,))
                other.put(series_id, state)
            other._db.executemany("INSERT OR REPLACE INTO observations VALUES (?, ?, ?, ?)", log)

    # -- the observation log ----------------------------------------------------------------
    def logged(self, series_id: str, column: str, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """Logged readings of a series by ``seq`` or ``time`` (``column``).

        Args:
            series_id: the series.
            column: ``"seq"`` or ``"time"``.
            keys: the sequence numbers or timestamps (nanoseconds) to look up.

        Returns:
            key -> reading (float64) for the keys that are in the log.
        """
        check_choice("column", column, ("seq", "time"))
        found: dict[int, np.ndarray] = {}
        keys = [int(k) for k in keys]
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                part = keys[start : start + 500]
                rows = self._db.execute(
                    f"SELECT {column}, reading FROM observations WHERE series_id = ? AND "
                    f"{column} IN ({','.join('?' * len(part))})",
                    (series_id, *part),
                )
                found.update((key, np.frombuffer(blob, np.float64)) for key, blob in rows)
        return found

    def observations(self, series_id: str) -> list[tuple[int, int | None, np.ndarray]]:
        """The logged ``(seq, time, reading)`` of a series, in order (for offline replays)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, time, reading FROM observations WHERE series_id = ? ORDER BY seq",
                (series_id,),
            ).fetchall()
        return [(seq, time, np.frombuffer(blob, np.float64)) for seq, time, blob in rows]

    def close(self) -> None:
        """Stop the checkpoint thread (if any) and close the connection."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        self._db.close()

    def __enter__(self) -> "SeriesStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
