"""HTTP service for a live model: FastAPI on uvicorn, per-series state in the one store.

Endpoints (OpenAPI schema at ``/openapi.json``, docs at ``/docs``):

- ``POST /series/{series_id}/observations``: new readings (with timestamps or a sequence
  number); returns the forecast after them.
- ``GET /series/{series_id}/forecast?horizon=H``: the forecast from the stored state.
- ``GET /health``; ``GET /models/current``: config, recipe, scaler and training metrics.

Series ids. One rule for every entry point, ``lstmlab.checks.check_series_id`` (non-empty, at
most 200 characters, no control characters), so an id that ``lstmlab observe --series`` and
``Forecaster.observe`` accept is accepted here, and one they refuse is refused (422). The id
is percent-encoded in the path (``urllib.parse.quote(series_id, safe="")``); it may hold
``/`` (the route takes the path up to the endpoint's last segment). A client that
removes dot segments from paths cannot send the ids ``.`` and ``..`` unencoded.

State. The per-series state lives in the model folder's state store
(``lstmlab.live.state_store.SeriesStore``, SQLite in WAL mode, ``DIR/series.<fp16>.sqlite``),
the same that ``Forecaster.observe`` and ``lstmlab observe`` read and write, so a series fed
through the command line and the service, in any order, continues from one state. Accepting
an observation is one transaction: under the store's write lock the series' current state is
read (never an in-memory copy: a command-line ``observe`` may have written in between), the
readings go into the observation log (primary key: series and sequence number, a unique index
on series and timestamp) and the new state replaces the series' row; only after the commit
does the answer leave. With ``synchronous=NORMAL`` a committed transaction survives the
process being killed (SIGKILL) at any moment; with ``durability="fsync"``
(``synchronous=FULL``) it also survives a power cut, at the price of an fsync per request.

Idempotency. Every accepted reading has a sequence number (its position in the series,
training data included) and, when sent, a timestamp. A request whose readings are already in
the log (same timestamps, or same sequence numbers) is answered again without being
applied twice; the same key with other values is a 409 conflict. A retried request that
overlaps the accepted readings and continues past them applies only the new part.

The numerics stay in ``lstmlab.forecaster`` (``advance``, ``commit``, ``forecast_state``);
this module validates, stores and answers.
"""

import gc
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd

from lstmlab.checks import check_choice, check_int_range, check_positive_int, check_series_id
from lstmlab.core.model import config_to_dict
from lstmlab.forecaster import MAX_HORIZON, Forecaster, SeriesState, parse_timestamps
from lstmlab.live.state_store import DURABILITIES
from lstmlab.model_folder import FORMAT_VERSION, folder_checksum, model_fingerprint, open_store

__all__ = [
    "ConflictError",
    "LiveService",
    "ServeConfig",
    "create_app",
    "run",
]

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
        check_choice("durability", self.durability, DURABILITIES)
        for name in ("max_readings", "max_body_bytes", "max_horizon"):
            check_positive_int(name, getattr(self, name))
        if self.max_horizon > MAX_HORIZON:
            raise ValueError(
                f"max_horizon must be at most {MAX_HORIZON} (the forecaster's limit), got "
                f"{self.max_horizon}; pass a smaller max_horizon"
            )


# --------------------------------------------------------------------------- the service


class ConflictError(ValueError):
    """A request that contradicts what was already accepted (HTTP 409)."""


class LiveService:
    """The model and its state store; the endpoints' logic without HTTP.

    Args:
        model_dir: the model folder; the service reads and writes the folder's state store,
            the one ``lstmlab observe`` and ``Forecaster.load`` use too, so a series fed
            through any of them never forks.
        config: limits and durability.

    Raises:
        StoreError: the folder's store belongs to another model.
        ModelFolderError: the folder cannot be read.
    """

    def __init__(
        self,
        model_dir: str | Path,
        config: ServeConfig = ServeConfig(),
    ) -> None:
        self.model_dir = Path(model_dir)
        self.config = config
        self.checksum = folder_checksum(self.model_dir)
        self.fingerprint = model_fingerprint(self.model_dir)
        self.store = open_store(
            self.model_dir, durability=config.durability, background_checkpoint=True
        )
        self.db_path = self.store.path
        try:
            self.forecaster = Forecaster.load(self.model_dir, store=self.store)
        except BaseException:
            self.store.close()
            raise

    def model_info(self) -> dict[str, Any]:
        """Config, recipe, scaler and metrics of the served model."""
        forecaster = self.forecaster
        return {
            "model_dir": str(self.model_dir),
            "format_version": FORMAT_VERSION,
            "checksum": self.checksum,
            "fingerprint": self.fingerprint,
            "config": config_to_dict(forecaster.model_config),
            "recipe": forecaster.recipe.to_dict(),
            "scaler": None if forecaster.scaler is None else forecaster.scaler.to_dict(),
            "metrics": forecaster.metrics,
            "series": len(self.store),
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
            ValueError: a bad series id, readings or horizon (422); nothing is accepted.
            ConflictError: readings that contradict accepted ones (409).
        """
        forecaster = self.forecaster
        check_series_id(series_id)
        if timestamps is None and seq is None:
            raise ValueError(
                "pass timestamps (one per reading) or seq (the sequence number of the first "
                "reading), so that a repeated request is recognised and not applied twice"
            )
        # Before anything is accepted: a bad horizon found after the commit would answer 422
        # for readings that were applied.
        check_int_range("horizon", horizon, 1, self.config.max_horizon)
        readings = forecaster.check_values(series_id, values)  # (n, columns) float64
        count = len(readings)
        if timestamps is not None and len(timestamps) != count:
            raise ValueError(
                f"series {series_id!r}: {len(timestamps)} timestamps for {count} readings; "
                "pass one timestamp per reading"
            )
        applied = 0
        with self.store.transaction():  # the write lock: no other writer until the commit
            state = forecaster.series_state(series_id)  # read now, inside the transaction
            repeated = self._repeated(series_id, state, readings, timestamps, seq)
            fresh = readings[repeated:]
            if len(fresh):
                new_times = None if timestamps is None else timestamps[repeated:]
                new_state = forecaster.advance(series_id, fresh, new_times, state=state)
                times = None if new_times is None else parse_timestamps(series_id, new_times)
                forecaster.commit(series_id, new_state, readings=fresh, times=times)
                state, applied = new_state, len(fresh)
        forecast = forecaster.forecast_state(series_id, state, horizon)
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
        """The forecast of a known series, from its state in the store now.

        Raises:
            ValueError: a bad series id or horizon (422).
            KeyError: unknown series (404).
        """
        check_series_id(series_id)
        check_int_range("horizon", horizon, 1, self.config.max_horizon)
        state = self.forecaster.stored_state(series_id)  # one store read
        if state is None:
            raise KeyError(
                f"unknown series {series_id!r}; observe readings for it first (known: "
                f"{len(self.store)} series)"
            )
        return _forecast_dict(self.forecaster.forecast_state(series_id, state, horizon), state)


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


def create_app(model_dir: str | Path, config: ServeConfig = ServeConfig()):
    """The FastAPI application serving ``model_dir``.

    Args:
        model_dir: the model folder (``lstmlab fit --out``).
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
    from starlette.convertors import PathConvertor, register_url_convertor

    class SeriesIdConvertor(PathConvertor):
        # Starlette's ':path' is '.*', which stops at a newline (a 404 instead of the 422
        # that the id rule gives); this one takes any characters, the rule judges them.
        regex = "(?s:.*)"

    register_url_convertor("series_id", SeriesIdConvertor())  # idempotent: same name, same rule

    service = LiveService(model_dir, config)
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

    # ``:series_id``: an id may hold '/' and any character; the one rule (check_series_id) is
    # applied in the service.
    series_path = Annotated[
        str,
        PathParam(description="series id, percent-encoded: 1 to 200 characters, no controls"),
    ]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the model is loaded and the database open."""
        return {"status": "ok", "series": len(service.store)}

    @app.get("/models/current")
    async def current_model() -> dict[str, Any]:
        """Config, recipe, scaler and training metrics of the served model."""
        return service.model_info()

    @app.post("/series/{series_id:series_id}/observations")
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

    @app.get("/series/{series_id:series_id}/forecast")
    async def get_forecast(
        series_id: series_path,
        horizon: Annotated[int, Query(ge=1, le=config.max_horizon)] = 1,
    ) -> JSONResponse:
        """The forecast of a known series from its stored state."""
        try:
            return JSONResponse(service.forecast(series_id, horizon))
        except KeyError as exc:
            return error(404, exc.args[0])
        except ValueError as exc:
            return error(422, str(exc))

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
    config: ServeConfig = ServeConfig(),
) -> None:
    """Serve ``model_dir`` until interrupted (uvicorn, one worker).

    Binds the socket first so that ``port=0`` picks a free port, then prints
    ``serving on http://HOST:PORT`` (flushed) before accepting requests.

    Args:
        model_dir: the model folder.
        host: interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        config: limits and durability.
    """
    _require_serving_stack()
    import uvicorn

    app = create_app(model_dir, config)
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
