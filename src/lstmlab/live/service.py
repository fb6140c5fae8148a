"""The live service: each request advances a series once, nothing lost, nothing applied twice.

``LiveService`` is what the HTTP app (``lstmlab.live.http``) calls for each request: it
validates, reads the series' state from the store, recognises repeats, advances, commits and
answers. ``ServeConfig`` holds its limits, storage and access.

Series ids. One rule for every entry point, ``lstmlab.checks.check_series_id`` (non-empty, at
most 200 characters, no control characters), so an id that ``lstmlab observe --series`` and
``Forecaster.observe`` accept is accepted here, and one they refuse is refused (422). The id
is percent-encoded in the path (``urllib.parse.quote(series_id, safe="")``); it may hold
``/`` (the route takes the path up to the endpoint's last segment). A client that
removes dot segments from paths cannot send the ids ``.`` and ``..`` unencoded.

State. The per-series state lives in the model folder's state store
(``lstmlab.live.state_store.SeriesStore``, SQLite in WAL mode, ``DIR/series.<fp16>.sqlite``,
or a PostgreSQL database shared by several workers with ``ServeConfig.store``), the same that
``Forecaster.observe`` and ``lstmlab observe`` read and write, so a series fed through the
command line and the service, in any order, continues from one state. Accepting an
observation is one transaction that locks the series: inside it the series' current state is
read (never an in-memory copy: another worker or a command-line ``observe`` may have written
in between), the readings go into the observation log (primary key: series and sequence
number, a unique index on series and timestamp) and the new state replaces the series' row;
only after the commit does the answer leave. With ``synchronous=NORMAL`` a committed
transaction survives the process being killed (SIGKILL) at any moment; with
``durability="fsync"`` (``synchronous=FULL``) it also survives a power cut, at the price of an
fsync per request.

Group commit. A request's checks that need no state run where it arrives (on the event loop
for HTTP); then it queues for the committing thread (``Committer``), which takes the waiting
requests together (at most ``GROUP_LIMIT``, one per series, in arrival order): one read of
their states, one compiled step for all of them, one commit, then their forecasts (those one
step ahead at once, from the stored predictions), and each answer leaves after the commit. A
request refused on its own (a bad timestamp, a conflict, an unknown series) is refused alone;
if the group's write fails, each of its requests is tried again in a transaction of its own,
so a request is never refused for another's sake. No thread of the pool waits per request.

Idempotency. Every accepted reading has a sequence number (its position in the series,
training data included) and, when sent, a timestamp. A request whose readings are already in
the log (same timestamps, or same sequence numbers) is answered again without being
applied twice; the same key with other values is a 409 conflict. A retried request that
overlaps the accepted readings and continues past them applies only the new part. A request
with both timestamps and ``seq`` must agree with the log on both (409 otherwise).

Time. Timestamps with an offset come back with it (aware in, aware out); one series keeps one
kind (aware or naive), and a request that mixes them is refused. A reading so late that the
request's own forecast (``horizon`` steps of the model's frequency) would pass the last
representable time is refused before anything is applied; a later forecast request that
would pass it is refused alone (422), its series unchanged. A model of series numbered by
steps (``Recipe.step``: trained on an integer index) takes and returns step numbers in the
``timestamps`` fields (``"145"``), or readings without them, which go on from the last step.

Every program a request can need is compiled at start-up (``Forecaster.warm_up``, up to
``max_readings`` readings and ``max_horizon`` steps), so a request with a new number of
readings never compiles.

The numerics stay in the fitted network (``Forecaster.network``: ``check_readings``,
``prepare``, ``read``) and the ``Forecaster`` (``state_to_advance``, ``repeated``, ``commit``,
``forecast_states``); this module groups, validates, stores and answers.
"""

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmlab.checks import (
    check_at_most,
    check_choice,
    check_int_range,
    check_positive_int,
    check_positive_number,
    check_series_id,
)
from lstmlab.core.model import config_to_dict
from lstmlab.defaults import MAX_HORIZON, MAX_READINGS, PLAUSIBLE_FACTOR, ServeSettings
from lstmlab.forecaster import Forecaster
from lstmlab.live.folder_store import POSTGRES_SCHEMES, open_store
from lstmlab.live.state_store import DURABILITIES
from lstmlab.live.stores import StoreUnavailable
from lstmlab.model_folder import FORMAT_VERSION, folder_checksum, model_fingerprint
from lstmlab.readings import ConflictError, Readings
from lstmlab.states import SeriesState

__all__ = [
    "ConflictError",
    "LiveService",
    "NotReadyError",
    "ServeConfig",
    "UnknownSeriesError",
]

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig(ServeSettings):
    """Limits, storage and access of the service.

    The fields and their defaults are ``lstmlab.defaults.ServeSettings``'s (the command
    line's help reads them without loading the service); this class checks them.

    Attributes:
        max_readings: most readings one request may carry, at most ``MAX_READINGS``.
        max_body_bytes: largest request body accepted (413 beyond).
        header_timeout: seconds a request's line and headers may take to arrive, from its
            first byte (or the connection's opening); then 408 and the connection closes.
        body_timeout: seconds a request's body may take to arrive after its headers (a body
            shorter than its Content-Length); then 408 and the connection closes.
        max_horizon: most forecast steps one request may ask for.
        durability: ``"process"`` (SQLite ``synchronous=NORMAL``: survives a killed
            process) or ``"fsync"`` (``synchronous=FULL``: also survives a power cut).
        max_series: most series the store may hold; a reading for a new series beyond it is
            refused (429). ``None``: no limit.
        new_series: accept readings for a series id the model does not have (it starts
            from a fresh state); ``False``: a model trained on series refuses an unknown id
            with 404, naming the nearest known ones (a model built from parameters has no
            series of its own and takes every id).
        plausible_factor: readings outside the training range widened by this many range
            widths on each side are refused (422 naming the limit); ``None`` accepts any
            finite reading.
        store: a ``postgresql://`` URL: the series state lives there, shared by every worker
            started with the same URL; ``None``: the model folder's SQLite file.
        token: the bearer token every request but ``/health`` and the docs must carry
            (``Authorization: Bearer <token>``); ``None``: no authentication (loopback only,
            unless ``run(..., insecure=True)``). Never shown in ``repr``.
    """

    def __post_init__(self) -> None:
        check_choice("durability", self.durability, DURABILITIES)
        for name in ("max_readings", "max_body_bytes", "max_horizon"):
            check_positive_int(name, getattr(self, name))
        for name in ("header_timeout", "body_timeout"):
            check_positive_number(name, getattr(self, name), fix="pass seconds, e.g. 10")
        check_at_most(
            "max_readings",
            self.max_readings,
            MAX_READINGS,
            fix="pass fewer (the warm-up compiles reads up to it)",
        )
        if self.max_horizon > MAX_HORIZON:
            raise ValueError(
                f"max_horizon must be at most {MAX_HORIZON} (the forecaster's limit), got "
                f"{self.max_horizon}; pass a smaller max_horizon"
            )
        if self.max_series is not None:
            check_positive_int("max_series", self.max_series, fix="pass an int >= 1, or None")
        if not isinstance(self.new_series, bool):
            raise ValueError(f"new_series must be True or False, got {self.new_series!r}")
        if self.plausible_factor is not None:
            check_positive_number(
                "plausible_factor",
                self.plausible_factor,
                fix=f"pass e.g. {PLAUSIBLE_FACTOR:g}, or None to accept any finite reading",
            )
        if self.store is not None and (
            not isinstance(self.store, str) or not self.store.startswith(POSTGRES_SCHEMES)
        ):
            shown = self.store.split("@")[-1] if isinstance(self.store, str) else self.store
            raise ValueError(
                f"store must be a postgresql:// URL, got {shown!r}; pass e.g. "
                "'postgresql://user@host/dbname', or None for the model folder's SQLite file"
            )
        if self.token is not None and not (
            isinstance(self.token, str)
            and self.token
            and self.token.isascii()
            and self.token.isprintable()
            and " " not in self.token
        ):
            raise ValueError(
                "token must be a non-empty string of visible ASCII characters without spaces "
                "(it travels in the Authorization header); pass e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )


# --------------------------------------------------------------------------- the service


class UnknownSeriesError(KeyError):
    """A series the store does not hold (HTTP 404); ``args[0]`` is the message."""


class NotReadyError(RuntimeError):
    """The service is still warming up, or its warm-up failed (HTTP 503 + ``Retry-After``).

    Attributes:
        retry_after: seconds after which a retry may succeed.
    """

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


GROUP_LIMIT = 8
"""The most requests one transaction takes (``Committer``); the warm-up compiles reads up to it."""

READY_WAIT_S = 60.0
"""How long a request that needs the model waits for the warm-up before it is answered 503."""

_STARTING = "compiling the programs requests need (warm-up); requests wait for it"
_HIDDEN = (
    "the store cannot write now; the reason is in the service's log (or send the bearer "
    "token to see it here)"
)


@dataclass(slots=True, eq=False)
class Pending:
    """One request's readings on their way through a group commit, and what became of them.

    Attributes:
        series_id: the series.
        readings: its checked readings (``SeriesNetwork.check_readings``).
        seq: the sequence number of the first reading, or ``None``.
        horizon: the steps its answer forecasts (a reading that cannot date them is refused).
        state: the series' state after the request (unchanged for a pure repeat).
        applied: readings stored.
        repeated: leading readings that repeated accepted ones.
        error: why the request was refused; ``None`` when it went through.
        answer: what the request is answered (the forecast after it), once it went through.
        ended: called (on the committing thread) once the request's outcome is known.
    """

    series_id: str
    readings: Readings
    seq: int | None
    horizon: int
    state: SeriesState | None = None
    applied: int = 0
    repeated: int = 0
    error: Exception | None = None
    answer: dict[str, Any] | None = None
    ended: Callable[[], None] = field(default=lambda: None, repr=False)


class Committer:
    """Group commit on one thread: requests queue, and it runs the waiting ones together.

    ``submit`` returns at once; a committing thread takes the oldest waiting requests
    (``_take``), runs them (``run``: one transaction, then their answers) and calls each
    one's ``ended``. While it runs, new requests queue for the next group. The thread is
    started by a request that finds none, and ends once no request came for ``LINGER_S``.
    A group waits for the requests on their way while they keep coming (``_gather``), so
    that more of them share a transaction.

    Args:
        run: carries a group of requests through one transaction and sets each one's outcome.
        limit: the most requests one group takes.
    """

    LINGER_S = 0.05
    # Concurrent clients' next requests arrive within a fraction of a millisecond of each
    # other: a group waits for them, up to its limit (8 clients: 4.4 -> 7.7 requests a group,
    # a fifth less CPU a request: fewer transactions and fewer switches between threads).
    GATHER_S = 0.0003

    def __init__(self, run: Callable[[list[Pending]], None], limit: int) -> None:
        self._run = run
        self._limit = limit
        self._waiting = threading.Condition()
        self._queue: list[Pending] = []
        self._committing = False

    def submit(self, request: Pending) -> None:
        """Queue ``request``; its ``ended`` is called once its outcome is known."""
        with self._waiting:
            self._queue.append(request)
            if self._committing:
                self._waiting.notify()
                return
            self._committing = True
        threading.Thread(target=self._commit_while_asked, name="lstmlab-commit").start()

    def _commit_while_asked(self) -> None:
        while True:
            with self._waiting:
                if not self._queue:
                    self._waiting.wait(self.LINGER_S)
                if not self._queue:
                    self._committing = False
                    return
                self._gather()  # a lone request waits GATHER_S at most
                group = self._take()
            try:
                self._run(group)
            except BaseException as error:  # noqa: BLE001 - no request is left waiting
                # (a request's own failure is its error already: this is none of theirs)
                print(f"lstmlab serve: a group's transaction failed: {error!r}", file=sys.stderr)
                for member in group:
                    if member.error is None and member.answer is None:
                        member.error = StoreUnavailable(
                            "the request's transaction failed unexpectedly and was rolled "
                            "back, nothing was stored; retry it (the service's log has more)",
                            retry_after=1,
                        )
            for member in group:
                with contextlib.suppress(Exception):  # a loop closed since: none to answer
                    member.ended()

    def _gather(self) -> None:
        """Wait while requests keep coming, each within ``GATHER_S``, up to a full group."""
        while len(self._queue) < self._limit:
            waiting = len(self._queue)
            self._waiting.wait(self.GATHER_S)
            if len(self._queue) == waiting:
                return

    def _take(self) -> list[Pending]:
        """The oldest requests, one per series (a later one must read the earlier's state)."""
        group: list[Pending] = []
        taken: set[str] = set()
        for request in self._queue:
            if len(group) == self._limit:
                break
            if request.series_id not in taken:
                group.append(request)
                taken.add(request.series_id)
        for request in group:
            self._queue.remove(request)
        return group


class LiveService:
    """The model and its state store; the endpoints' logic without HTTP.

    Args:
        model_dir: the model folder; the service reads and writes the folder's state store
            (or the PostgreSQL store of ``config.store``), the one ``lstmlab observe`` and
            ``Forecaster.load`` use too, so a series fed through any of them never forks.
        config: limits, storage and access.
        warm_up: compile every program a request can need now (``Forecaster.warm_up``);
            ``False`` leaves it to a later ``warm_up()`` call (``run`` makes it on a thread
            once the port is open): until it ends, ``health`` says ``starting`` and
            ``observe`` and ``forecast`` wait for it.

    Raises:
        StoreError: the folder's store belongs to another model.
        ModelFolderError: the folder cannot be read.
    """

    def __init__(
        self,
        model_dir: str | Path,
        config: ServeConfig = ServeConfig(),
        *,
        warm_up: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.config = config
        self._ready = threading.Event()  # set when the warm-up ended (well or not)
        self._warm_up_error: BaseException | None = None
        self._logged_reason: str | None = None
        self.checksum = folder_checksum(self.model_dir)
        self.fingerprint = model_fingerprint(self.model_dir)
        self.store = open_store(
            self.model_dir,
            durability=config.durability,
            background_checkpoint=True,
            url=config.store,
            max_series=config.max_series,
        )
        self.db_path = getattr(self.store, "path", None)
        self._committer = Committer(self._run_group, GROUP_LIMIT)
        try:
            self.forecaster = Forecaster.load(self.model_dir, store=self.store)
            if warm_up:
                self.warm_up()
        except BaseException:
            self.store.close()
            raise

    def warm_up(self) -> None:
        """Compile every program a request can need, so that no request compiles.

        Up to ``config.max_readings`` readings and ``config.max_horizon`` steps (lower them
        for a shorter warm-up). Requests waiting in ``wait_ready`` go on once it ends.

        Raises:
            Exception: whatever the warm-up raised (requests are then answered 503).
        """
        try:
            forecaster = self.forecaster
            forecaster.warm_up(self.config.max_readings, self.config.max_horizon)
            # a group reads up to GROUP_LIMIT series at once (its forecasts go one by one):
            # the reads of every row bucket, no rollout (a capacity of 1 skips them)
            forecaster.network.warm_up(forecaster.read_capacity, 1, GROUP_LIMIT)
        except BaseException as error:
            self._warm_up_error = error
            raise
        finally:
            self._ready.set()

    @property
    def warm_up_ended(self) -> bool:
        """Whether the warm-up ended, well or not (``wait_ready`` then answers at once)."""
        return self._ready.is_set()

    @property
    def ready(self) -> bool:
        """Whether the warm-up ended well (requests need not wait)."""
        return self._ready.is_set() and self._warm_up_error is None

    def wait_ready(self, timeout: float | None = READY_WAIT_S) -> None:
        """Block until the warm-up ended.

        Args:
            timeout: most seconds to wait; ``None``: no limit.

        Raises:
            NotReadyError: the warm-up is still running after ``timeout`` or it failed.
        """
        if not self._ready.wait(timeout):
            raise NotReadyError(f"the service is starting ({_STARTING}); retry shortly")
        self._check_warm_up()

    def _check_warm_up(self) -> None:
        if self._warm_up_error is not None:
            raise NotReadyError(
                "the service failed to start (its warm-up failed; the reason is in its log); "
                "restart it",
                retry_after=60,
            )

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

    def health(self, detailed: bool = True) -> dict[str, Any]:
        """``{"status": "ok" | "starting" | "degraded", "reason": ..., "series": n}``.

        ``starting`` while the warm-up runs; ``degraded`` while the store refuses writes or
        after a failed warm-up. A new reason is written to stderr once.

        Args:
            detailed: give the reason itself; ``False``: a generic one that names no path or
                address (for callers without the token).
        """
        status, reason = self.store.health()
        try:
            series = len(self.store)
        except StoreUnavailable as error:
            status, reason, series = "degraded", reason or str(error), None
        if status == "ok" and not self._ready.is_set():
            status, reason = "starting", _STARTING
        elif status == "ok" and self._warm_up_error is not None:
            error = self._warm_up_error
            status, reason = "degraded", f"the warm-up failed: {type(error).__name__}: {error}"
        if status == "degraded":
            if reason != self._logged_reason:
                self._logged_reason = reason
                print(f"lstmlab serve: degraded: {reason}", file=sys.stderr, flush=True)
            if not detailed:
                reason = _HIDDEN
        return {"status": status, "reason": reason, "series": series}

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
            ValueError: a bad series id, readings, timestamps or horizon (422); nothing is
                accepted.
            UnknownSeriesError: an id the model does not have, without ``new_series`` (404).
            ConflictError: readings that contradict accepted ones (409).
            SeriesLimitError: a new series beyond ``max_series`` (429).
            StoreUnavailable: the store cannot write now (503); nothing is accepted.
            NotReadyError: the warm-up did not end in time or failed (503).
        """
        check_series_id(series_id)
        self.wait_ready()  # no request compiles: it waits for the warm-up instead
        request = self._request(series_id, values, timestamps, seq, horizon)
        ended = threading.Event()
        request.ended = ended.set
        self._committer.submit(request)
        ended.wait()  # the answer leaves after the commit
        return self._outcome(request)

    async def observe_async(
        self,
        series_id: str,
        values: Any,
        timestamps: list[str] | None,
        seq: int | None,
        horizon: int,
    ) -> dict[str, Any]:
        """``observe`` for the event loop: it awaits the commit, on no thread of its own.

        The checks that need no state run on the loop (no model work, no store); the step,
        the commit and the forecast run on the committing thread.
        """
        check_series_id(series_id)
        if not self._ready.is_set():  # the warm-up: waited for off the loop
            await asyncio.to_thread(self.wait_ready)
        self._check_warm_up()
        request = self._request(series_id, values, timestamps, seq, horizon)
        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        def settle() -> None:  # a request whose client left is not answered
            if not ended.done():
                ended.set_result(None)

        request.ended = lambda: loop.call_soon_threadsafe(settle)
        self._committer.submit(request)
        await ended
        return self._outcome(request)

    def _request(
        self,
        series_id: str,
        values: Any,
        timestamps: list[str] | None,
        seq: int | None,
        horizon: int,
    ) -> Pending:
        """Every check of a request that needs no series state, made once (see ``observe``).

        The id is checked by the caller, before it waits for the warm-up.
        """
        if timestamps is None and seq is None:
            raise ValueError(
                "pass timestamps (one per reading) or seq (the sequence number of the first "
                "reading), so that a repeated request is recognised and not applied twice"
            )
        # Before anything is accepted: a bad horizon found after the commit would answer 422
        # for readings that were applied.
        check_int_range("horizon", horizon, 1, self.config.max_horizon)
        readings = self.forecaster.network.check_readings(
            series_id, values, timestamps, self.config.plausible_factor
        )  # values (n, columns) float64, times (n,) int64 ns UTC or None
        return Pending(series_id=series_id, readings=readings, seq=seq, horizon=horizon)

    @staticmethod
    def _outcome(request: Pending) -> dict[str, Any]:
        if request.error is not None:
            raise request.error
        return request.answer

    def _run_group(self, group: Sequence[Pending]) -> None:
        """The group's transaction (``_observe_group``), then each accepted request's answer.

        The forecasts one step ahead are the group's stored predictions, made at once (no
        device call); a longer one is one request's rollout (the program of one row the
        warm-up compiled).
        """
        self._observe_group(group)
        accepted = [request for request in group if request.error is None]
        next_steps = [request for request in accepted if request.horizon == 1]
        forecasts: dict[str, dict[str, Any]] = {}
        if next_steps:
            try:
                forecasts = self._forecasts({r.series_id: r.state for r in next_steps}, 1)
            except Exception:  # noqa: BLE001 - each request again on its own, below
                forecasts = {}
        for request in accepted:
            forecast = forecasts.get(request.series_id)
            if forecast is None:
                try:  # the forecast after the readings, from the state just stored
                    forecast = self._forecast(request.series_id, request.state, request.horizon)
                except Exception as error:  # noqa: BLE001 - answered as the request's own error
                    request.error = error
                    continue
            request.answer = {"accepted": request.applied, "repeated": request.repeated, **forecast}

    def _observe_group(self, group: Sequence[Pending]) -> None:
        """Every request of ``group`` in one transaction; alone each if the write fails."""
        try:
            self._advance(group)
        except Exception as error:  # nothing of the group was stored
            if len(group) == 1:
                group[0].error, group[0].applied = error, 0
                return
            for request in group:  # each on its own: one's failure is not the others'
                request.state, request.applied, request.repeated = None, 0, 0
                request.error = None
                self._observe_group([request])

    def _advance(self, group: Sequence[Pending]) -> None:
        """Read, check and advance every request's series, then commit them (one transaction).

        A request refused on its own (a ``ValueError``: an unknown series, timestamps of the
        other kind, a conflict with the log, readings that cannot be dated) gets its error and
        the others go on; any other failure (a new series past ``max_series`` among them)
        raises, and the transaction stores nothing.
        """
        forecaster = self.forecaster
        network = forecaster.network
        by_id = {request.series_id: request for request in group}  # one request per series
        with self.store.transaction(*by_id):
            checked, fresh = {}, {}
            for request in group:
                try:
                    fresh[request.series_id] = self._new_part(request)
                    if len(fresh[request.series_id].values):
                        checked[request.series_id] = network.prepare(
                            request.series_id,
                            request.state,
                            fresh[request.series_id],
                            # refused (nothing applied) if this request's forecast could not
                            # be dated; not for the largest horizon another might ask for
                            request.horizon,
                        )
                except (ValueError, UnknownSeriesError) as error:
                    request.error = error
            # one compiled step for the group's series (row buckets up to GROUP_LIMIT), one
            # write; a new series past max_series fails it (SeriesLimitError, nothing written)
            # and the requests go again one by one (_observe_group), where it alone is refused
            advanced = network.read(checked, forecaster.read_capacity) if checked else {}
            forecaster.commit(
                {i: (state, fresh[i].values, fresh[i].times) for i, state in advanced.items()}
            )
            for series_id, state in advanced.items():
                by_id[series_id].state = state
                by_id[series_id].applied = len(fresh[series_id].values)

    def _new_part(self, request: Pending) -> Readings:
        """The request's series state (into ``request.state``) and its readings not yet accepted.

        Raises:
            UnknownSeriesError: an id the model does not have, without ``new_series``.
            ValueError: timestamps of the other kind; ``ConflictError``: readings that
                contradict accepted ones.
        """
        forecaster = self.forecaster
        try:  # read now, inside the transaction; an unknown id is refused here
            request.state = forecaster.state_to_advance(
                request.series_id,
                new_series=self.config.new_series,
                fix="start the service with --new-series",
            )
        except ValueError as error:
            raise UnknownSeriesError(str(error)) from None
        readings = request.readings
        # before the log is searched for repeats: a naive time is no instant to look up
        forecaster.network.check_timestamp_kind(request.series_id, request.state, readings)
        request.repeated = forecaster.repeated(
            request.series_id, request.state, readings.values, readings.times, request.seq
        )
        return readings.tail(request.repeated)

    def forecast(self, series_id: str, horizon: int) -> dict[str, Any]:
        """The forecast of a known series, from its state in the store now.

        Raises:
            ValueError: a bad series id or horizon (422).
            UnknownSeriesError: unknown series (404).
            NotReadyError: the warm-up did not end in time or failed (503).
        """
        check_series_id(series_id)
        check_int_range("horizon", horizon, 1, self.config.max_horizon)
        self.wait_ready()
        state = self.forecaster.stored_state(series_id)  # one store read
        if state is None:
            raise self._unknown(series_id)
        return self._forecast(series_id, state, horizon)

    def delete(self, series_id: str) -> dict[str, Any]:
        """Forget a series (its state and observation log); the next reading starts afresh.

        Raises:
            ValueError: a bad series id (422).
            UnknownSeriesError: unknown series (404).
            StoreUnavailable: the store cannot write now (503).
        """
        check_series_id(series_id)
        with self.store.transaction(series_id):
            deleted = self.forecaster.delete_series(series_id)
        if not deleted:
            raise self._unknown(series_id)
        return {"series_id": series_id, "deleted": True}

    def _unknown(self, series_id: str) -> UnknownSeriesError:
        return UnknownSeriesError(
            f"unknown series {series_id!r}; observe readings for it first (known: "
            f"{len(self.store)} series)"
        )

    def _forecast(self, series_id: str, state: SeriesState, horizon: int) -> dict[str, Any]:
        return self._forecasts({series_id: state}, horizon)[series_id]

    def _forecasts(
        self, states: Mapping[str, SeriesState], horizon: int
    ) -> dict[str, dict[str, Any]]:
        """Each series' forecast answer: the ``Forecast`` and its last reading's time."""
        network = self.forecaster.network
        out = {}
        for series_id, forecast in self.forecaster.forecast_states(states, horizon).items():
            answer = forecast.to_dict()
            last, zone = states[series_id].last_time, states[series_id].zone
            # a series of steps: its last step number
            answer["last_timestamp"] = None if last is None else network.time_text(last, zone)
            out[series_id] = answer
        return out
