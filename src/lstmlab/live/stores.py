"""The state store's interface and what its implementations share: one row, one codec.

``StateStore`` is what the forecaster, the service and the model folder use a store through;
``SeriesStore`` (SQLite, ``lstmlab.live.state_store``) and ``PostgresStore``
(``lstmlab.live.postgres_store``) implement it, each in its own module, both on the helpers
here and neither on the other's. Here: a series' row (``StoredState``), its bytes in both
stores (``encode_state``, safetensors: no pickle), the observation log's rows, pages of many
states decoded at once, a copy from one store into another, and the errors every store
raises.
"""

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import safetensors.numpy

from lstmlab.checks import check_positive_int

__all__ = [
    "NO_TIME",
    "STORE_FORMAT",
    "DamagedStateError",
    "LogRow",
    "SeriesLimitError",
    "StatePage",
    "StateStore",
    "StoreError",
    "StoreUnavailable",
    "StoredState",
    "check_max_series",
    "copy_store",
    "decode_log",
    "decode_page",
    "decode_readings",
    "decode_state",
    "encode_state",
    "log_rows",
    "paged",
    "series_limit_error",
]

NO_TIME = int(np.iinfo(np.int64).min)  # "no timestamp yet" where a timestamp array needs a value
STORE_FORMAT = 1  # the tables' layout, recorded in each store


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


# The safetensors header of each state layout seen (names, dtypes, shapes -> the header's
# bytes and the tensors in data order): every state of one model has the same header, so it is
# written once and a state's record is that header and its arrays' bytes.
_HEADERS: dict[tuple[tuple[str, str, tuple[int, ...]], ...], tuple[bytes, tuple[str, ...]]] = {}
_MOST_HEADERS = 256  # layouts kept; a process serves few models


def encode_state(state: StoredState) -> bytes:
    """A state's arrays as one safetensors record (the ``state`` column of both stores).

    The bytes ``safetensors.numpy.save`` writes: the first state of a layout goes through it,
    the next ones reuse its header (parsing the dtypes again cost a tenth of a request).
    """
    arrays = {name: np.asarray(array, order="C") for name, array in state.arrays.items()}
    key = tuple((name, array.dtype.str, array.shape) for name, array in arrays.items())
    known = _HEADERS.get(key)
    if known is not None:
        header, order = known
        return header + b"".join(arrays[name].tobytes() for name in order)
    blob = safetensors.numpy.save(arrays)
    little = all(array.dtype.byteorder in "<|" or array.dtype.isnative for array in arrays.values())
    if little and sys.byteorder == "little" and len(_HEADERS) < _MOST_HEADERS:
        start = 8 + int.from_bytes(blob[:8], "little")
        entries = {k: v for k, v in json.loads(blob[8:start]).items() if k != "__metadata__"}
        order = tuple(sorted(entries, key=lambda name: entries[name]["data_offsets"][0]))
        _HEADERS[key] = (blob[:start], order)
    return blob


# The arrays of each header decoded (its bytes -> (name, dtype, shape, start, end) per tensor
# and the record's length): a record with a known header is read by views, without a parse.
_LAYOUTS: dict[bytes, tuple[tuple[tuple[str, np.dtype, tuple[int, ...], int, int], ...], int]] = {}


def decode_state(series_id: str, blob: bytes, seen: int, last_time: int | None) -> StoredState:
    """Inverse of ``encode_state``; damaged bytes raise ``DamagedStateError``.

    The first record of a header is read by safetensors, which checks it; the next ones with
    the same header bytes and length are read as views of the record at the same offsets.
    """
    blob = bytes(blob)
    start = 8 + int.from_bytes(blob[:8], "little") if len(blob) >= 8 else 0
    known = _LAYOUTS.get(blob[:start]) if start else None
    if known is not None and len(blob) == known[1]:
        arrays = {
            name: np.frombuffer(
                blob, dtype, (end - begin) // dtype.itemsize, start + begin
            ).reshape(shape)
            for name, dtype, shape, begin, end in known[0]
        }  # views of immutable bytes: read-only
        return StoredState(arrays=arrays, seen=seen, last_time=last_time)
    try:
        arrays = safetensors.numpy.load(blob)
    except safetensors.SafetensorError as error:  # damaged bytes: name the series and the fix
        raise DamagedStateError(
            f"the stored state of series {series_id!r} is unreadable ({error}): the state "
            "store is damaged; delete the series (its state starts afresh) or restore the "
            "store from a copy"
        ) from None
    for array in arrays.values():
        array.flags.writeable = False  # a decoded state may be shared through the cache
    if len(_LAYOUTS) < _MOST_HEADERS and all(a.dtype.isnative for a in arrays.values()):
        entries = json.loads(blob[8:start])
        _LAYOUTS[blob[:start]] = (
            tuple(
                (name, arrays[name].dtype, arrays[name].shape, *entries[name]["data_offsets"])
                for name in arrays
            ),
            len(blob),
        )
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

    def put_many(
        self,
        states: Mapping[str, StoredState],
        *,
        logs: Mapping[str, tuple[int, Sequence[int] | None, np.ndarray]] | None = None,
    ) -> None:
        """Store several series' states, and log readings of some, in one transaction.

        Args:
            states: series id -> its new state.
            logs: series id (of ``states``) -> ``(first_seq, times, readings)`` as ``put``
                takes them; a series left out logs none.

        Raises:
            SeriesLimitError: the new series would take the store past ``max_series``; the
                transaction it ran in must roll back (its own does; the SQLite store refuses
                before writing anything).
            StoreUnavailable: the write failed for a reason that may pass (nothing is written).
        """
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
