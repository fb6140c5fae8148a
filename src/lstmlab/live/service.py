"""HTTP service for a live model: FastAPI on uvicorn, per-series state in SQLite (WAL).

Endpoints (OpenAPI schema at ``/openapi.json``, docs at ``/docs``):

- ``POST /series/{series_id}/observations``: new readings (with timestamps or a sequence
  number); returns the forecast after them.
- ``GET /series/{series_id}/forecast?horizon=H``: the forecast from the stored state.
- ``GET /health``; ``GET /models/current``: config, recipe, scaler and training metrics.

Durability. The per-series state lives in an SQLite database beside the model folder
(``DIR.series.sqlite`` by default), in WAL mode. Accepting an observation is one
transaction: the readings go into the ``observations`` log (primary key: series and
sequence number, a unique index on series and timestamp) and the new state replaces the
series' row; only after the commit does the in-memory state change and the answer leave.
With ``synchronous=NORMAL`` a committed transaction survives the process being killed
(SIGKILL) at any moment, since the WAL is written before ``COMMIT`` returns; with
``durability="fsync"`` (``synchronous=FULL``) it also survives a power cut, at the price of
an fsync per request.

Idempotency. Every accepted reading has a sequence number (its position in the series,
training data included) and, when sent, a timestamp. A request whose readings are already in
the log (same timestamps, or same sequence numbers) is answered again without being
applied twice; the same key with other values is a 409 conflict. A retried request that
overlaps the accepted readings and continues past them applies only the new part.

The numerics stay in ``lstmlab.forecaster``; this module validates, stores and answers. Run
it with one worker: the states of one database belong to one process.
"""

import gc
import json
import socket
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import safetensors.numpy

from lstmlab.core.model import config_to_dict
from lstmlab.forecaster import (
    MAX_HORIZON,
    Forecaster,
    SeriesState,
    decode_states,
    encode_states,
    parse_timestamps,
)
from lstmlab.model_folder import FORMAT_VERSION, folder_checksum, model_fingerprint

SERIES_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig:
    """Limits and storage of the service.

    Attributes:
        max_readings: most readings one request may carry.
        max_body_bytes: largest request body accepted (413 beyond).
        max_horizon: most forecast steps one request may ask for.
        durability: ``"process"`` (SQLite ``synchronous=NORMAL``: survives a killed
            process) or ``"fsync"`` (``synchronous=FULL``: also survives a power cut).
    """

    max_readings: int = 10_000
    max_body_bytes: int = 1_000_000
    max_horizon: int = 1000
    durability: str = "process"

    def __post_init__(self) -> None:
        if self.durability not in ("process", "fsync"):
            raise ValueError(f"durability must be 'process' or 'fsync', got {self.durability!r}")
        for name in ("max_readings", "max_body_bytes", "max_horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_horizon > MAX_HORIZON:
            raise ValueError(
                f"max_horizon must be at most {MAX_HORIZON} (the forecaster's limit), got "
                f"{self.max_horizon}; pass a smaller max_horizon"
            )


def default_db_path(model_dir: str | Path) -> Path:
    """``DIR.series.sqlite`` beside the model folder ``DIR``."""
    model_dir = Path(model_dir)
    return model_dir.with_name(model_dir.name + ".series.sqlite")


# --------------------------------------------------------------------------- the store


class StoreError(ValueError):
    """The state database cannot be used with this model."""


class SeriesStore:
    """Per-series states and the observation log in one SQLite database (WAL mode).

    Args:
        path: the database file (created if needed).
        forecaster: the loaded model (for encoding states).
        model_checksum: identifies the model (``model_fingerprint``); a database made for
            another model is refused.
        durability: ``"process"`` or ``"fsync"`` (see ``ServeConfig``).

    Raises:
        StoreError: the database belongs to another model.
    """

    def __init__(
        self,
        path: str | Path,
        forecaster: Forecaster,
        model_checksum: str,
        durability: str = "process",
    ) -> None:
        self._forecaster = forecaster
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        synchronous = "FULL" if durability == "fsync" else "NORMAL"
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        # Checkpoints (copying the WAL into the database, with an fsync) run on a background
        # thread's own connection, so that no request waits for one.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._path = str(path)
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS series (
                id TEXT PRIMARY KEY, state BLOB NOT NULL, seen INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS observations (
                series_id TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER,
                reading BLOB NOT NULL, PRIMARY KEY (series_id, seq)) WITHOUT ROWID;
            CREATE UNIQUE INDEX IF NOT EXISTS observations_time
                ON observations (series_id, time) WHERE time IS NOT NULL;
            """
        )
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta VALUES ('model', ?)", (model_checksum,))
                elif row[0] != model_checksum:
                    raise StoreError(
                        f"state database {path} belongs to another model (checksum "
                        f"{row[0][:16]}..., this model's is {model_checksum[:16]}...); pass "
                        "--db with a new file, or delete the old one to start the series again"
                    )
        except BaseException:
            self._db.close()  # the store is not usable: do not leave its connection open
            raise
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._stop.wait(0.5):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def close(self) -> None:
        """Stop the checkpoint thread and close the connection."""
        self._stop.set()
        self._checkpointer.join()
        self._db.close()

    def _encode(self, state: SeriesState) -> bytes:
        forecaster = self._forecaster
        arrays, _ = encode_states(forecaster.config, forecaster.recipe, {"s": state})
        return safetensors.numpy.save(arrays)

    def load_states(self) -> dict[str, SeriesState]:
        """Every stored series' state."""
        forecaster = self._forecaster
        out = {}
        for series_id, blob in self._db.execute("SELECT id, state FROM series"):
            arrays = safetensors.numpy.load(blob)
            state = decode_states(
                forecaster.config, forecaster.recipe, arrays, {"series": [series_id]}
            )
            out[series_id] = state[series_id]
        return out

    def logged(self, series_id: str, column: str, keys: list[int]) -> dict[int, np.ndarray]:
        """Logged readings of a series by ``seq`` or ``time`` (``column``)."""
        if column not in ("seq", "time"):
            raise ValueError(f"column must be 'seq' or 'time', got {column!r}")
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT {column}, reading FROM observations WHERE series_id = ? AND {column} IN "
            f"({marks})",
            (series_id, *keys),
        )
        return {key: np.frombuffer(blob, np.float64) for key, blob in rows}

    def accept(
        self,
        series_id: str,
        first_seq: int,
        times: list[int] | None,
        readings: np.ndarray,
        state: SeriesState,
    ) -> None:
        """Log the readings and store the new state in one transaction.

        Args:
            series_id: the series.
            first_seq: sequence number of the first reading.
            times: their timestamps in nanoseconds, or ``None``.
            readings: ``(readings, columns)`` float64, as received.
            state: the state after them.
        """
        rows = [
            (
                series_id,
                first_seq + i,
                None if times is None else int(times[i]),
                np.ascontiguousarray(readings[i], np.float64).tobytes(),
            )
            for i in range(len(readings))
        ]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO observations VALUES (?, ?, ?, ?)", rows)
            self._db.execute(
                "INSERT INTO series VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "state = excluded.state, seen = excluded.seen",
                (series_id, self._encode(state), state.seen),
            )

    def observations(self, series_id: str) -> list[tuple[int, int | None, np.ndarray]]:
        """The logged ``(seq, time, reading)`` of a series, in order (for offline replays)."""
        rows = self._db.execute(
            "SELECT seq, time, reading FROM observations WHERE series_id = ? ORDER BY seq",
            (series_id,),
        )
        return [(seq, time, np.frombuffer(blob, np.float64)) for seq, time, blob in rows]


# --------------------------------------------------------------------------- the service


class ConflictError(ValueError):
    """A request that contradicts what was already accepted (HTTP 409)."""


class LiveService:
    """The model, its states and the store; the endpoints' logic without HTTP.

    Args:
        model_dir: the model folder.
        db_path: the state database; ``None`` for ``default_db_path(model_dir)``.
        config: limits and durability.
    """

    def __init__(
        self,
        model_dir: str | Path,
        db_path: str | Path | None = None,
        config: ServeConfig = ServeConfig(),
    ) -> None:
        self.model_dir = Path(model_dir)
        self.config = config
        self.forecaster = Forecaster.load(self.model_dir)
        self.checksum = folder_checksum(self.model_dir)
        self.fingerprint = model_fingerprint(self.model_dir)
        self.db_path = Path(db_path) if db_path is not None else default_db_path(self.model_dir)
        self.store = SeriesStore(self.db_path, self.forecaster, self.fingerprint, config.durability)
        for series_id, state in self.store.load_states().items():
            self.forecaster.commit(series_id, state)

    def model_info(self) -> dict[str, Any]:
        """Config, recipe, scaler and metrics of the served model."""
        forecaster = self.forecaster
        return {
            "model_dir": str(self.model_dir),
            "format_version": FORMAT_VERSION,
            "checksum": self.checksum,
            "fingerprint": self.fingerprint,
            "config": config_to_dict(forecaster.config),
            "recipe": forecaster.recipe.to_dict(),
            "scaler": None if forecaster.scaler is None else forecaster.scaler.to_dict(),
            "metrics": forecaster.metrics,
            "series": len(forecaster.series_ids),
        }

    def observe(
        self,
        series_id: str,
        values: Any,
        timestamps: list[str] | None,
        seq: int | None,
        horizon: int,
    ) -> dict[str, Any]:
        """Accept readings (idempotently) and forecast.

        Raises:
            ValueError: bad readings or horizon (422); nothing is accepted.
            ConflictError: readings that contradict accepted ones (409).
        """
        forecaster = self.forecaster
        if timestamps is None and seq is None:
            raise ValueError(
                "pass timestamps (one per reading) or seq (the sequence number of the first "
                "reading), so that a repeated request is recognised and not applied twice"
            )
        # Before anything is accepted: a bad horizon found after the commit would answer 422
        # for readings that were applied.
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, int)
            or not 1 <= horizon <= self.config.max_horizon
        ):
            raise ValueError(
                f"horizon must be an integer from 1 to {self.config.max_horizon}, got "
                f"{horizon!r}; pass a horizon in that range"
            )
        readings = forecaster.check_values(series_id, values)  # (n, columns) float64
        count = len(readings)
        if timestamps is not None and len(timestamps) != count:
            raise ValueError(
                f"series {series_id!r}: {len(timestamps)} timestamps for {count} readings; "
                "pass one timestamp per reading"
            )
        state = forecaster.series_state(series_id)
        repeated = self._repeated(series_id, state, readings, timestamps, seq)
        fresh = readings[repeated:]
        applied = 0
        if len(fresh):
            new_times = None if timestamps is None else timestamps[repeated:]
            new_state = forecaster.advance(series_id, fresh, new_times)
            times = None if new_times is None else parse_timestamps(series_id, new_times)
            self.store.accept(series_id, state.seen, times, fresh, new_state)
            forecaster.commit(series_id, new_state)
            state, applied = new_state, len(fresh)
        forecast = forecaster.forecast_from(series_id, state, horizon)
        return {"accepted": applied, "repeated": repeated, **_forecast_dict(forecast, state)}

    def _repeated(
        self,
        series_id: str,
        state: SeriesState,
        readings: np.ndarray,
        timestamps: list[str] | None,
        seq: int | None,
    ) -> int:
        """How many leading readings were already accepted (checked against the log)."""
        if timestamps is not None:
            stamps = parse_timestamps(series_id, timestamps)
            if state.last_time is None:
                return 0
            # the leading readings not newer than the last accepted one may be a repeat
            old = 0
            while old < len(stamps) and stamps[old] <= state.last_time:
                old += 1
            if not old:
                return 0
            keys = [int(t) for t in stamps[:old]]
            logged = self.store.logged(series_id, "time", keys)
            column = "timestamp"
            describe = [pd.Timestamp(t).isoformat() for t in keys]
        else:
            if seq > state.seen:
                raise ConflictError(
                    f"series {series_id!r}: seq {seq} leaves a gap: the series has "
                    f"{state.seen} readings, so the next reading has seq {state.seen}; send "
                    "the missing readings first"
                )
            keys = list(range(seq, min(seq + len(readings), state.seen)))
            if not keys:
                return 0
            logged = self.store.logged(series_id, "seq", keys)
            column, describe = "seq", [str(k) for k in keys]
        for i, (key, text) in enumerate(zip(keys, describe, strict=True)):
            if key not in logged:
                raise ConflictError(
                    f"series {series_id!r}: the reading with {column} {text} is older than the "
                    f"series' last accepted reading and was never accepted here; readings must "
                    "arrive in time order"
                )
            if not np.array_equal(logged[key], readings[i]):
                raise ConflictError(
                    f"series {series_id!r}: the reading with {column} {text} was already "
                    f"accepted with values {logged[key].tolist()}, got {readings[i].tolist()}; "
                    "a repeated reading must be identical"
                )
        return len(keys)

    def forecast(self, series_id: str, horizon: int) -> dict[str, Any]:
        """The forecast of a known series.

        Raises:
            KeyError: unknown series (404).
        """
        forecast = self.forecaster.forecast(series_id, horizon)
        return _forecast_dict(forecast, self.forecaster.series_state(series_id))


def _forecast_dict(forecast, state: SeriesState) -> dict[str, Any]:
    out = forecast.to_dict()
    out["last_timestamp"] = (
        None if state.last_time is None else pd.Timestamp(state.last_time).isoformat()
    )
    return out


# --------------------------------------------------------------------------- HTTP


def _require_serving_stack() -> None:
    """Fail with the install command when FastAPI or uvicorn is missing."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(
            f"lstmlab serve needs {' and '.join(missing)}, which is not installed; "
            "run: pip install 'lstmlab[serve]'"
        )


def create_app(
    model_dir: str | Path, db_path: str | Path | None = None, config: ServeConfig = ServeConfig()
):
    """The FastAPI application serving ``model_dir``.

    Args:
        model_dir: the model folder (``lstmlab fit --save``).
        db_path: the state database; ``None`` for ``DIR.series.sqlite``.
        config: limits and durability.

    Returns:
        An ASGI app: the FastAPI app (``.app``) behind a request-size limit; ``.state.service``
        is the ``LiveService``.
    """
    _require_serving_stack()
    from fastapi import FastAPI, Query, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field

    service = LiveService(model_dir, db_path, config)
    Reading = float | list[float]

    class Observations(BaseModel):
        """New readings of one series, oldest first."""

        model_config = ConfigDict(strict=True, extra="forbid")
        values: Annotated[list[Reading], Field(min_length=1, max_length=config.max_readings)]
        timestamps: Annotated[list[str], Field(max_length=config.max_readings)] | None = None
        seq: Annotated[int, Field(ge=0)] | None = None
        horizon: Annotated[int, Field(ge=1, le=config.max_horizon)] = 1

    app = FastAPI(
        title="lstmlab live model",
        description=__doc__.split("\n\n")[0],
        version=service.model_info()["checksum"][:12],
    )
    app.state.service = service

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            problems.append(f"{where}: {item.get('msg')}")
        return error(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    series_path = Annotated[
        str, PathParam(pattern=SERIES_ID_PATTERN, description="series id: letters, digits, _.:@-")
    ]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the model is loaded and the database open."""
        return {"status": "ok", "series": len(service.forecaster.series_ids)}

    @app.get("/models/current")
    async def current_model() -> dict[str, Any]:
        """Config, recipe, scaler and training metrics of the served model."""
        return service.model_info()

    @app.post("/series/{series_id}/observations")
    async def post_observations(series_id: series_path, body: Observations) -> JSONResponse:
        """Accept new readings of a series and return the forecast after them."""
        try:
            result = service.observe(
                series_id, body.values, body.timestamps, body.seq, body.horizon
            )
        except ConflictError as exc:
            return error(409, str(exc))
        except ValueError as exc:
            return error(422, str(exc))
        return JSONResponse({"series_id": series_id, **result})

    @app.get("/series/{series_id}/forecast")
    async def get_forecast(
        series_id: series_path,
        horizon: Annotated[int, Query(ge=1, le=config.max_horizon)] = 1,
    ) -> JSONResponse:
        """The forecast of a known series from its stored state."""
        try:
            return JSONResponse(service.forecast(series_id, horizon))
        except KeyError as exc:
            return error(404, exc.args[0])

    return _BodyLimit(app, config.max_body_bytes)


class _BodyLimit:
    """ASGI wrapper answering 413 to a body over the limit (declared or streamed).

    A pure ASGI layer: Starlette's ``BaseHTTPMiddleware`` costs a task per request.
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._reject(send, declared.decode("latin-1"))
                return
            # uvicorn delivers exactly the declared length, so the body stays under the limit
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body up to the limit before the app sees it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send, f"more than {self.limit}")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        buffered = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send, size: str) -> None:
        body = json.dumps(
            {
                "detail": (
                    f"request body of {size} bytes exceeds the limit of {self.limit} bytes; send "
                    "fewer readings per request"
                )
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def run(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    db_path: str | Path | None = None,
    config: ServeConfig = ServeConfig(),
) -> None:
    """Serve ``model_dir`` until interrupted (uvicorn, one worker).

    Binds the socket first so that ``port=0`` picks a free port, then prints
    ``serving on http://HOST:PORT`` (flushed) before accepting requests.

    Args:
        model_dir: the model folder.
        host: interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        db_path: the state database.
        config: limits and durability.
    """
    _require_serving_stack()
    import uvicorn

    app = create_app(model_dir, db_path, config)
    gc.freeze()  # the model and the app live as long as the process: keep them out of GC scans
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from now on, before uvicorn's loop starts
    bound = sock.getsockname()[1]
    print(f"serving on http://{host}:{bound}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully and re-raised the Ctrl-C it caught
    finally:
        app.state.service.store.close()
