"""HTTP for a live model: FastAPI on uvicorn in front of ``lstmlab.live.service.LiveService``.

Endpoints (OpenAPI schema at ``/openapi.json``, docs at ``/docs``, served offline):

- ``POST /series/{series_id}/observations``: new readings (with timestamps, a sequence
  number, or both); returns the forecast after them.
- ``GET /series/{series_id}/forecast?horizon=H``: the forecast from the stored state.
- ``DELETE /series/{series_id}``: forget a series (its state and observation log); the next
  reading starts it afresh.
- ``GET /health`` (never needs the token): ``{"status": "ok" | "starting" | "degraded",
  "reason", "series"}``, status code 200 when ok, 503 while starting (the warm-up) or
  degraded (the store refuses writes, e.g. a full disk), so that a load balancer sends no
  requests to a worker that cannot take them. With a token set, a caller without it gets a
  generic reason (the reason names the store's folder or server); the log has it.
- ``GET /models/current``: config, recipe, scaler and training metrics.

Every answer has a response model in the schema; an error is ``{"detail": "what is wrong and
the fix"}``: 401 no or a wrong bearer token (``ServeConfig.token``; the answer carries
``WWW-Authenticate: Bearer``), 404 unknown series, 409 readings that contradict accepted ones,
413 body too large, 422 a bad request (including readings outside the plausible range of the
training data, ``ServeConfig.plausible_factor``), 429 the series limit is reached
(``ServeConfig.max_series``), 503 the store cannot write now or the service is still
warming up (with ``Retry-After``; the connection stays open and the store recovers by itself
once the cause goes). An unexpected error is 500 ``internal error (reference R)``: the
details, under the same reference, go to stderr, never to the client.

Model work (reading, forecasting) runs on the server's thread pool, never on the event loop.
``run`` opens the port first and warms up on a thread of its own: meanwhile ``/health`` says
``starting`` and the requests that need the model wait (awaiting on the event loop, holding
no worker thread) for the warm-up. The rest (series ids, state, idempotency, time) is the
service's: ``lstmlab.live.service``.
"""

import asyncio
import contextlib
import gc
import hmac
import ipaddress
import json
import logging
import math
import secrets
import socket
import string
import sys
import threading
import time
import traceback
import types
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from lstmlab.live.service import (
    READY_WAIT_S,
    LiveService,
    NotReadyError,
    ServeConfig,
    UnknownSeriesError,
)
from lstmlab.live.stores import DamagedStateError, SeriesLimitError, StoreUnavailable
from lstmlab.readings import ConflictError
from lstmlab.runtime import ensure_compile_cache

__all__ = [
    "check_exposure",
    "create_app",
    "run",
    "timed_protocol",
    "uvicorn_server",
]

if TYPE_CHECKING:
    import uvicorn


# --------------------------------------------------------------------------- HTTP


def _require_serving_stack() -> None:
    """Fail with the install command when FastAPI, uvicorn or fastapi-offline is missing."""
    import importlib.util

    missing = [
        name
        for name in ("fastapi", "uvicorn", "fastapi_offline")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise RuntimeError(
            f"lstmlab serve needs {' and '.join(missing)}, which is not installed; "
            "run: pip install 'lstmlab[serve]'"
        )


class _Unauthorized(Exception):
    """A request without the right bearer token (HTTP 401)."""

    def __init__(self, message: str, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge


def create_app(model_dir: str | Path, config: ServeConfig = ServeConfig(), *, warm_up: bool = True):
    """The FastAPI application serving ``model_dir``.

    Args:
        model_dir: the model folder (``lstmlab fit --out``).
        config: limits, storage and access.
        warm_up: as ``LiveService``; with ``False`` call ``.state.service.warm_up()`` (from
            any thread): until it ends ``/health`` answers 503 ``starting`` and the requests
            that need the model wait for it without holding the event loop or a worker
            thread.

    Returns:
        An ASGI app: the FastAPI app (``.app``) behind a request-size limit; ``.state.service``
        is the ``LiveService``.
    """
    _require_serving_stack()
    from fastapi_offline import FastAPIOffline
    from starlette.convertors import PathConvertor, register_url_convertor

    class SeriesIdConvertor(PathConvertor):
        # Starlette's ':path' is '.*', which stops at a newline (a 404 instead of the 422
        # that the id rule gives); this one takes any characters, the rule judges them.
        regex = "(?s:.*)"

    register_url_convertor("series_id", SeriesIdConvertor())  # idempotent: same name, same rule

    service = LiveService(model_dir, config, warm_up=warm_up)
    models = _answer_models(config)
    app = FastAPIOffline(
        title="lstmlab live model",
        description=__doc__.split("\n\n")[0],
        version=service.checksum[:12],
    )
    app.router.route_class = _strict_json_route()
    app.state.service = service
    app.state.models = {
        name: model for name, model in vars(models).items() if name.endswith("Answer")
    }
    _add_error_handlers(app)
    _add_routes(app, service, config, models)
    fast = _FastObservations(app, service, models.Observations, config.token)
    return _BodyLimit(fast, config.max_body_bytes)


def _answer_models(config: ServeConfig) -> types.SimpleNamespace:
    """The request and answer models (pydantic) of the routes; the schema's names."""
    from pydantic import BaseModel, ConfigDict, Field

    Reading = float | list[float]

    class Observations(BaseModel):
        """New readings of one series, oldest first."""

        model_config = ConfigDict(strict=True, extra="forbid")
        values: Annotated[list[Reading], Field(min_length=1, max_length=config.max_readings)]
        timestamps: Annotated[list[str], Field(max_length=config.max_readings)] | None = None
        seq: Annotated[int, Field(ge=0)] | None = None
        horizon: Annotated[int, Field(ge=1, le=config.max_horizon)] = 1

    class Answer(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class ErrorAnswer(Answer):
        """An error: what is wrong and the fix."""

        detail: str

    class HealthAnswer(Answer):
        """Whether the store accepts writes (``degraded``: it does not now, ``reason`` why)."""

        status: str = Field(description='"ok", "starting" (warming up) or "degraded"')
        reason: str | None = None
        series: int | None = Field(description="stored series (None when unknown)")

    class ModelAnswer(Answer):
        """The served model."""

        model_dir: str
        format_version: int
        checksum: str
        fingerprint: str
        config: dict[str, Any]
        recipe: dict[str, Any]
        scaler: dict[str, Any] | None
        metrics: dict[str, Any]
        series: int

    class ForecastAnswer(Answer):
        """A forecast: ``values`` is ``(horizon, columns)``, null while readings are missing."""

        series_id: str
        values: list[list[float | None]] | None
        timestamps: list[str] | None
        seen: int
        needed: int
        warning: str | None = None
        last_timestamp: str | None

    class ObservationAnswer(ForecastAnswer):
        """The forecast after the readings, and how many were new or repeats."""

        accepted: int
        repeated: int

    class DeletedAnswer(Answer):
        """A forgotten series."""

        series_id: str
        deleted: bool

    return types.SimpleNamespace(
        Observations=Observations,
        ErrorAnswer=ErrorAnswer,
        HealthAnswer=HealthAnswer,
        ModelAnswer=ModelAnswer,
        ForecastAnswer=ForecastAnswer,
        ObservationAnswer=ObservationAnswer,
        DeletedAnswer=DeletedAnswer,
    )


def _strict_json_route() -> type:
    """The route class: strict JSON bodies, and URL paths that are UTF-8 once decoded."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute

    class StrictJSONRequest(Request):
        """A body is read as UTF-8 JSON whose objects name each key once, or refused (422).

        ``json.loads`` would take UTF-16 or UTF-32 bytes, and the last of two equal keys
        (``{"values": [1e30], "values": [130]}``): input reinterpreted without a word.
        """

        async def json(self) -> Any:
            if not hasattr(self, "_json"):
                body = await self.body()
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise json.JSONDecodeError(
                        f"the body is not UTF-8 (byte {exc.start}); send UTF-8 JSON",
                        body.decode("latin-1"),
                        exc.start,
                    ) from None
                self._json = json.loads(text, object_pairs_hook=_unique_keys(text))
            return self._json

    class StrictJSONRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def strict(request: Request) -> Any:
                raw = request.scope.get("raw_path")
                if raw is not None and (b"%" in raw or not raw.isascii()):  # else plain ASCII
                    try:  # the server decoded bad UTF-8 as U+FFFD: distinct ids would merge
                        urllib.parse.unquote_to_bytes(raw).decode("utf-8")
                    except UnicodeDecodeError as exc:
                        return JSONResponse(
                            {
                                "detail": f"the URL path is not UTF-8 once percent-decoded "
                                f"(byte {exc.start}: {exc.reason}); percent-encode the "
                                "series id's UTF-8 bytes (urllib.parse.quote(id, safe=''))"
                            },
                            status_code=422,
                        )
                return await handler(StrictJSONRequest(request.scope, request.receive))

            return strict

    return StrictJSONRoute


def _add_error_handlers(app: Any) -> None:
    """Every refusal as its status and ``{"detail": ...}``; anything else a logged 500."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item.get("loc", ()))
            reason = (item.get("ctx") or {}).get("error")  # e.g. the JSON decoder's words
            problems.append(f"{where}: {item.get('msg')}" + (f" ({reason})" if reason else ""))
        return error(422, "invalid request: " + "; ".join(problems))

    # Handlers of the exception classes (ExceptionMiddleware) answer and keep the connection;
    # only the catch-all 500 below re-raises, after which uvicorn closes it.
    @app.exception_handler(ValueError)
    async def refused(request: Request, exc: ValueError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return error(409, str(exc))

    @app.exception_handler(UnknownSeriesError)
    async def unknown(request: Request, exc: UnknownSeriesError) -> JSONResponse:
        return error(404, exc.args[0])

    @app.exception_handler(SeriesLimitError)
    async def too_many(request: Request, exc: SeriesLimitError) -> JSONResponse:
        return error(429, str(exc))

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        retry = str(max(1, int(getattr(exc, "retry_after", 1))))
        return error(503, f"{exc}; retry after {retry} s", {"Retry-After": retry})

    @app.exception_handler(DamagedStateError)
    async def damaged(request: Request, exc: DamagedStateError) -> JSONResponse:
        print(f"lstmlab serve: {exc}", file=sys.stderr, flush=True)  # the operator's fix
        return error(500, str(exc))

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        retry = str(exc.retry_after)
        return error(503, f"{exc}; retry after {retry} s", {"Retry-After": retry})

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return error(401, str(exc), {"WWW-Authenticate": exc.challenge})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the details (paths, SQL, addresses) go to the operator's log, never to the client
        reference = secrets.token_hex(6)
        print(
            f"lstmlab serve: internal error {reference} ({request.method} {request.url.path}):",
            file=sys.stderr,
        )
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        return error(
            500,
            f"internal error (reference {reference}); the details are in the service's log",
        )


def _add_routes(
    app: Any, service: LiveService, config: ServeConfig, models: types.SimpleNamespace
) -> None:
    """The routes, their token check and their wait for the warm-up; HEAD beside GET."""
    from fastapi import Depends, Query
    from fastapi import Path as PathParam
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials

    bearer, guarded, needs_model, authenticated = _guards(service, config)

    def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
        codes = (*codes, 401) if config.token is not None else codes
        return {code: {"model": models.ErrorAnswer} for code in codes}

    # ``:series_id``: an id may hold '/' and any character; the one rule (check_series_id) is
    # applied in the service.
    series_path = Annotated[
        str,
        PathParam(description="series id, percent-encoded: 1 to 200 characters, no controls"),
    ]

    # Plain ``def`` endpoints run on the thread pool: model work and store waits never block
    # the event loop. They return JSONResponse (no second validation); the response models
    # document the answers (tests check the answers against them).
    @app.get(
        "/health",
        response_model=models.HealthAnswer,
        responses={503: {"model": models.HealthAnswer, "description": "degraded"}},
    )
    def health(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> JSONResponse:
        """Whether the service takes requests: 200 ``ok``; 503 ``starting`` or ``degraded``.

        Without the token (when one is set) the reason of ``degraded`` is generic (it would
        name the store's folder or server); the service's log has it.
        """
        answer = service.health(detailed=authenticated(credentials))
        return JSONResponse(answer, status_code=200 if answer["status"] == "ok" else 503)

    @app.get(
        "/models/current",
        response_model=models.ModelAnswer,
        dependencies=guarded,
        responses=errors(503),
    )
    def current_model() -> JSONResponse:
        """Config, recipe, scaler and training metrics of the served model."""
        return JSONResponse(service.model_info())

    @app.post(
        "/series/{series_id:series_id}/observations",
        response_model=models.ObservationAnswer,
        dependencies=needs_model,
        responses=errors(404, 409, 413, 422, 429, 503),
    )
    async def post_observations(series_id: series_path, body: models.Observations) -> JSONResponse:
        """Accept new readings of a series and return the forecast after them."""
        # awaited on the loop: the step runs on the service's committing thread, not a
        # thread of the pool per request (LiveService.observe_async)
        result = await service.observe_async(
            series_id, body.values, body.timestamps, body.seq, body.horizon
        )
        return JSONResponse({"series_id": series_id, **result})

    @app.get(
        "/series/{series_id:series_id}/forecast",
        response_model=models.ForecastAnswer,
        dependencies=needs_model,
        responses=errors(404, 422, 503),
    )
    def get_forecast(
        series_id: series_path,
        horizon: Annotated[int, Query(ge=1, le=config.max_horizon)] = 1,
    ) -> JSONResponse:
        """The forecast of a known series from its stored state."""
        return JSONResponse(service.forecast(series_id, horizon))

    @app.delete(
        "/series/{series_id:series_id}",
        response_model=models.DeletedAnswer,
        dependencies=guarded,
        responses=errors(404, 422, 503),
    )
    def delete_series(series_id: series_path) -> JSONResponse:
        """Forget a series (state and observation log): its next reading starts it afresh."""
        return JSONResponse(service.delete(series_id))

    _add_head_routes(app)


def _guards(service: LiveService, config: ServeConfig) -> tuple[Any, list, list, Any]:
    """The routes' dependencies: the token check, and the wait for the warm-up.

    Returns:
        ``(bearer, guarded, needs_model, authenticated)``: the bearer scheme, the
        dependencies of a route that needs the token, of one that also needs the model, and
        whether a request's credentials carry the token.
    """
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="the token the service was started with")
    expected = None if config.token is None else config.token.encode()

    async def authorize(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None:
            raise _Unauthorized(
                "missing bearer token: send the header 'Authorization: Bearer <token>' with "
                "the token the service was started with",
                "Bearer",
            )
        # the header arrives latin-1 decoded: compare its bytes in constant time
        if not hmac.compare_digest(credentials.credentials.encode("latin-1"), expected):
            raise _Unauthorized(
                "wrong bearer token; send the token the service was started with",
                'Bearer error="invalid_token"',
            )

    guarded = [] if expected is None else [Depends(authorize)]

    async def ready() -> None:
        # on the event loop, awaiting (a worker thread blocked here would be one less for
        # /health): the model's requests start once the warm-up has ended
        if not service.warm_up_ended:
            deadline = time.monotonic() + READY_WAIT_S
            while not service.warm_up_ended and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        service.wait_ready(timeout=0)

    needs_model = [*guarded, Depends(ready)]

    def authenticated(credentials: HTTPAuthorizationCredentials | None) -> bool:
        return expected is None or (
            credentials is not None
            and hmac.compare_digest(credentials.credentials.encode("latin-1"), expected)
        )

    return bearer, guarded, needs_model, authenticated


def _add_head_routes(app: Any) -> None:
    """HEAD beside every GET route."""
    from fastapi.routing import APIRoute

    # HEAD answers wherever GET does (monitors and proxies probe with it): the same endpoint,
    # status and headers, no body; left out of the schema, which would repeat GET's operation.
    for route in [r for r in app.routes if isinstance(r, APIRoute) and "GET" in r.methods]:
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=["HEAD"],
            dependencies=route.dependencies,
            include_in_schema=False,
        )


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


class _FastObservations:
    """ASGI layer: the plainest observation requests answered without the framework's layers.

    ``POST /series/{id}/observations`` is the hot route (a reading a request), and FastAPI's
    layers (routing, dependencies, middleware) cost more CPU than its work. This layer takes
    only the requests it is sure of: a plain ASCII path without percent-escapes or a query,
    a ``Content-Type: application/json`` body, the exact ``Bearer`` header when a token is
    set, the model ready. Their body is parsed by the route's rules (UTF-8, each key once) and
    validated by the route's own model; the service observes them, and its refusals are
    answered by the app's own exception handlers. Every other request, and any body that does
    not parse or validate, goes to the app unchanged (its body replayed), which answers it: one
    set of rules, two ways in (``tests/test_service.py`` checks that both answer alike).
    """

    PREFIX, SUFFIX = b"/series/", b"/observations"
    # starlette.responses.JSONResponse.render's settings, one encoder for every answer
    ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def __init__(self, app, service: LiveService, observations: type, token: str | None) -> None:
        self.app = app
        self.state = app.state
        self.service = service
        self.observations = observations
        self.authorization = None if token is None else b"Bearer " + token.encode()

    def _takes(self, scope) -> bool:
        raw = scope.get("raw_path") or b""
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("query_string")
            and raw.startswith(self.PREFIX)
            and raw.endswith(self.SUFFIX)
            and len(raw) > len(self.PREFIX) + len(self.SUFFIX)
            and raw.isascii()
            and b"%" not in raw
            and self.service.ready
        ):
            return False
        headers = dict(scope["headers"])
        if headers.get(b"content-type") != b"application/json":
            return False
        if self.authorization is None:
            return True
        return hmac.compare_digest(headers.get(b"authorization", b""), self.authorization)

    def _parse(self, body: bytes) -> Any:
        """The route's body model, or ``None`` where the app should answer (and explain)."""
        try:
            text = body.decode("utf-8")
            return self.observations.model_validate(
                json.loads(text, object_pairs_hook=_unique_keys(text))
            )
        except Exception:  # noqa: BLE001 - the app answers it, with its own words
            return None

    async def __call__(self, scope, receive, send) -> None:
        if not self._takes(scope):
            await self.app(scope, receive, send)
            return
        messages, more = [], True
        while more:
            message = await receive()
            messages.append(message)
            more = message["type"] == "http.request" and message.get("more_body", False)
        body = None
        if messages[-1]["type"] == "http.request":
            body = self._parse(b"".join(m.get("body", b"") for m in messages))
        if body is None:

            async def replay():
                return messages.pop(0) if messages else await receive()

            await self.app(scope, replay, send)
            return
        series_id = scope["raw_path"][len(self.PREFIX) : -len(self.SUFFIX)].decode("ascii")
        try:
            answer = await self.service.observe_async(
                series_id, body.values, body.timestamps, body.seq, body.horizon
            )
            # the bytes and headers of Starlette's JSONResponse, without building one
            content = self.ENCODER.encode({"series_id": series_id, **answer}).encode("utf-8")
        except Exception as error:  # noqa: BLE001 - answered as the app answers it
            from starlette.requests import Request

            handlers = self.app.exception_handlers
            handled = next((c for c in type(error).__mro__ if c in handlers), Exception)
            response = await handlers[handled](Request(scope), error)
            await response(scope, receive, send)
            if handled is Exception:
                raise  # as Starlette's ServerErrorMiddleware: the server logs it, and closes
            return
        headers = [
            (b"content-length", b"%d" % len(content)),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses
    )


MIN_TOKEN_BITS = 128
"""The randomness a token must be able to hold to guard a non-loopback address."""


def token_bits(token: str) -> float:
    """At most how many bits of randomness ``token`` holds.

    Its length times ``log2`` of the alphabet of the character classes it draws from
    (lowercase, uppercase, digits, punctuation); 0 for a token of fewer than 8 distinct
    characters. An upper bound: a word or a pattern holds less.

    Example:
        >>> round(token_bits("x")), round(token_bits("0123456789abcdef" * 2))
        (0, 165)
    """
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation)
    alphabet = sum(len(c) for c in classes if any(ch in c for ch in token))
    if len(set(token)) < 8 or alphabet < 2:
        return 0.0
    return len(token) * math.log2(alphabet)


def _unique_keys(document: str) -> Any:
    """``json.loads``' ``object_pairs_hook`` that refuses an object naming a key twice."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise json.JSONDecodeError(
                    f"the key {key!r} appears twice in one object; send each key once",
                    document,
                    0,
                )
            out[key] = value
        return out

    return build


def check_exposure(host: str, config: ServeConfig, insecure: bool = False) -> None:
    """Refuse to serve a non-loopback address without a strong token (unless ``insecure``).

    Args:
        host: the interface to bind.
        config: the service's config (its ``token``).
        insecure: serve without a token anyway (a warning is printed to stderr).

    Raises:
        ValueError: ``host`` is not a loopback address, and there is no token and not
            ``insecure``, or the token holds fewer than ``MIN_TOKEN_BITS`` of randomness.
    """
    if _is_loopback(host):
        return
    if config.token is not None:
        bits = token_bits(config.token)
        if bits < MIN_TOKEN_BITS:
            raise ValueError(
                f"binding {host} (not a loopback address) needs a token of at least "
                f"{MIN_TOKEN_BITS} bits of randomness, and this one ({len(config.token)} "
                f"characters) holds at most {bits:.0f}: anyone could guess it; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return
    if not insecure:
        raise ValueError(
            f"binding {host} (not a loopback address) without a token would let anyone who "
            "can reach it read and write every series; pass a token (--token-file FILE or the "
            "environment variable LSTMLAB_TOKEN), bind 127.0.0.1, or pass --insecure to serve "
            "without authentication anyway"
        )
    print(
        f"warning: serving {host} without a token (--insecure): anyone who can reach it can "
        "read and write every series; pass --token-file FILE or set LSTMLAB_TOKEN",
        file=sys.stderr,
        flush=True,
    )


_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class _CurrentStderr(logging.StreamHandler):
    """Writes each record to ``sys.stderr`` as it is at that moment.

    Never to a stream kept from set-up time: a caller (a test's capture, a notebook) may have
    replaced and closed that one since, and a write to it would raise on the server's thread.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always reads sys.stderr


class _UvicornLogging:
    """uvicorn's loggers as lstmlab sets them while at least one server runs in the process.

    Entered by every ``uvicorn_server`` block; the first entry saves the loggers and adds the
    one handler, the last exit restores them, so servers may stop in any order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: list[tuple[logging.Logger, int, bool, bool, list[logging.Handler]]] = []
        self._handler: logging.Handler | None = None

    def enter(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            loggers = [logging.getLogger(name) for name in _UVICORN_LOGGERS]
            self._saved = [(g, g.level, g.propagate, g.disabled, list(g.handlers)) for g in loggers]
            self._handler = _CurrentStderr()
            self._handler.setFormatter(
                logging.Formatter("lstmlab serve: %(levelname)s: %(message)s")
            )
            top = loggers[0]
            top.addHandler(self._handler)
            top.setLevel(logging.WARNING)
            top.propagate = False  # the process's own root handlers are not the operator's log

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for each, level, propagate, disabled, handlers in self._saved:
                each.setLevel(level)
                each.propagate = propagate
                each.disabled = disabled
                each.handlers[:] = handlers
            self._saved = []
            if self._handler is not None:
                self._handler.close()
                self._handler = None


_uvicorn_logging = _UvicornLogging()


def timed_protocol(header_timeout: float, body_timeout: float) -> type:
    """The httptools protocol of uvicorn with read timeouts (``uvicorn.Config(http=...)``).

    uvicorn closes an idle keep-alive connection, but waits without end for a request whose
    headers or body stop arriving: a few thousand half-sent requests hold as many
    connections open. Here a request's line and headers must arrive within
    ``header_timeout`` seconds of its first byte (or of the connection's opening), and its
    body within ``body_timeout`` seconds of its headers; else the answer is 408 and the
    connection closes.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    body = json.dumps({"detail": "the request did not arrive in time; send it again"})
    answer = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}"
    ).encode()

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(header_timeout)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # idle now: uvicorn's keep-alive timeout takes over

    return TimedHttpToolsProtocol


@contextlib.contextmanager
def uvicorn_server(app: Any, **options: Any) -> Iterator["uvicorn.Server"]:
    """A uvicorn server for ``app``, with a logging set-up of its own that lasts the block.

    uvicorn's default set-up (``logging.config.dictConfig``) replaces every handler of the
    process and binds new ones to the ``sys.stderr`` of that moment, and it stays after the
    server stops. Here uvicorn's loggers write warnings and errors to the current
    ``sys.stderr`` (``lstmlab serve: LEVEL: message``) and nothing else; when the last such
    block of the process ends they are restored as they were. ``options`` go to
    ``uvicorn.Config``.
    """
    import uvicorn

    _uvicorn_logging.enter()
    try:
        yield uvicorn.Server(
            uvicorn.Config(app, log_config=None, log_level=None, access_log=False, **options)
        )
    finally:
        _uvicorn_logging.exit()


def run(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig = ServeConfig(),
    insecure: bool = False,
) -> None:
    """Serve ``model_dir`` until interrupted (uvicorn, one worker).

    The order keeps start-up short and its failures early: the exposure check; the socket
    bound and listening (a busy port fails at once, before anything is loaded); the store
    opened and the model loaded (a failure closes both); then ``serving on http://HOST:PORT``
    is printed (flushed) and requests are accepted while ``Forecaster.warm_up`` compiles
    every request shape on a thread of its own (the programs are kept on disk for the next
    start, ``lstmlab.runtime.ensure_compile_cache``). During the warm-up ``/health`` answers
    503 ``starting`` and the requests that need the model wait for it; a failed warm-up
    stops the server and is raised. ``port=0`` picks a free port. Several workers
    (processes, on one machine or several) share series state through one PostgreSQL store
    (``config.store``). A smaller ``config.max_horizon`` or ``config.max_readings``
    shortens the warm-up.

    Args:
        model_dir: the model folder.
        host: interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        config: limits, storage and access.
        insecure: allow a non-loopback ``host`` without ``config.token`` (with a warning).

    Raises:
        ValueError: a non-loopback ``host`` without a token and without ``insecure`` (raised
            before anything else), or the port cannot be bound (in use, not an address of
            this machine).
    """
    _require_serving_stack()
    check_exposure(host, config, insecure)
    import jax

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)  # connections queue from now on, before uvicorn's loop starts
        except OSError as error:
            raise ValueError(
                f"cannot listen on {host} port {port}: {error.strerror or error}; pass another "
                "--port (0 picks a free one), or stop the process that holds it"
            ) from None
        ensure_compile_cache()  # the warm-up's programs are read back at the next start
        app = create_app(model_dir, config, warm_up=False)  # closes the store if it fails
    except BaseException:
        sock.close()
        raise
    service = app.state.service
    failed: list[BaseException] = []
    # jax.default_device is per thread and is part of every program's cache key: the warm-up,
    # the committing thread and the pool's threads must all see the caller's device, or each
    # compiles its own programs (and runs them on the default backend) under load.
    device = jax.config.jax_default_device
    process_device = jax.config.values["jax_default_device"]
    jax.config.update("jax_default_device", device)

    def warm_up() -> None:
        try:
            service.warm_up()
        except BaseException as error:  # noqa: BLE001 - raised by run once the server stops
            failed.append(error)
            print(
                f"lstmlab serve: the warm-up failed ({type(error).__name__}: {error}); stopping",
                file=sys.stderr,
                flush=True,
            )
            server.should_exit = True
            return
        gc.freeze()  # the model and the app live as long as the process: out of GC scans

    warming = threading.Thread(target=warm_up, name="lstmlab-warm-up", daemon=True)
    try:
        http = timed_protocol(config.header_timeout, config.body_timeout)
        with uvicorn_server(app, timeout_keep_alive=30, http=http) as server:
            print(f"serving on http://{host}:{sock.getsockname()[1]}", flush=True)
            warming.start()
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully and re-raised the Ctrl-C it caught
    finally:
        service.store.close()
        sock.close()
        jax.config.update("jax_default_device", process_device)
    if failed or service.warm_up_ended:
        warming.join()  # it has stopped or is about to; a Ctrl-C mid-warm-up leaves it to die
    if failed:
        raise failed[0]
