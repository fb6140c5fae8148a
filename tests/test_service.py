import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmlab.checks import MAX_SERIES_ID_LENGTH
from lstmlab.cli import main
from lstmlab.core.model import LSTMConfig, MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.defaults import MAX_HORIZON
from lstmlab.forecaster import READ_CAPACITY, Forecaster, Recipe
from lstmlab.live.service import GROUP_LIMIT, ConflictError, LiveService, ServeConfig
from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import StoreError
from lstmlab.model_folder import model_fingerprint, store_path
from lstmlab.series_network import SeriesNetwork
from tests.service_process import ServiceProcess, start_service

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


START = pd.Timestamp("2024-01-01")
FREQ = "15min"


def _stamp(i):
    return (START + i * pd.Timedelta(FREQ)).isoformat()


def _model(folder, kind="stateful"):
    if kind == "stateful":
        config = LSTMConfig(units=(8,), timesteps=4, stateful=True, return_sequences=True)
    else:
        config = MLPConfig(hidden=(5,), timesteps=4)
    scaler = fit_scaler(np.linspace(0.0, 10.0, 20), "minmax", ["value"])
    model = Forecaster.from_params(
        config,
        init_params(config, 3),
        scaler=scaler,
        recipe=Recipe(kind=kind, window=4, columns=("value",), freq=FREQ),
        metrics={"final_loss": 0.125},
    )
    # as fit leaves a training series: its state, without its readings in the log
    model.warm_start({"trained": [1.0, 2.0, 3.0]}, {"trained": [_stamp(0), _stamp(1), _stamp(2)]})
    model.save(folder)
    return folder


READINGS = np.round(np.random.default_rng(0).uniform(0, 10, size=(3, 40)), 4)


class Server:
    def __init__(self, folder):
        self.service = start_service(folder, "--max-readings", "100")  # open and warmed up
        self.process, self.url = self.service.process, self.service.url

    def call(self, method, path, body=None, raw=None, headers=None):
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def kill(self):
        self.service.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = _model(tmp_path_factory.mktemp("served") / "m")
    server = Server(folder)
    yield server
    server.kill()


def _post(server, series, i, count=1):
    """Post readings i .. i+count-1 of a test series (s0: timestamps, s1/s2: seq)."""
    index = int(series[1])
    body = {"values": READINGS[index, i : i + count].tolist()}
    if index == 0:
        body["timestamps"] = [_stamp(j) for j in range(i, i + count)]
    else:
        body["seq"] = i
    return server.call("POST", f"/series/{series}/observations", body)


@pytest.mark.slow
def test_kill_9_loses_no_accepted_observation_and_never_applies_one_twice(tmp_path):
    folder = _model(tmp_path / "m")
    server = Server(folder)
    acknowledged = {"s0": 0, "s1": 0, "s2": 0}
    stop = threading.Event()

    def poster():
        while not stop.is_set():
            for series in acknowledged:
                try:
                    status, _ = _post(server, series, acknowledged[series])
                except (urllib.error.URLError, http.client.HTTPException, OSError):
                    # The server was killed under us (a refused connection, or a response cut
                    # off mid-way: IncompleteRead): the fate of this one is unknown.
                    return
                assert status == 200
                acknowledged[series] += 1
                if acknowledged[series] >= 30:
                    return

    thread = threading.Thread(target=poster)
    thread.start()
    deadline = time.monotonic() + 60
    while min(acknowledged.values()) < 8:
        assert thread.is_alive(), "the poster stopped before 8 observations per series"
        assert time.monotonic() < deadline, "the server accepted too few observations in 60 s"
        time.sleep(0.005)
    server.kill()  # while the poster is sending
    stop.set()
    thread.join()
    server = Server(folder)
    try:
        for series, done in acknowledged.items():
            # resend the last acknowledged reading and everything after: repeats are answered
            # idempotently, the in-flight one is applied at most once
            status, answer = _post(server, series, done - 1, count=3)
            assert status == 200, answer
            assert answer["repeated"] + answer["accepted"] == 3
            assert answer["repeated"] in (1, 2)
            for i in range(done + 2, 40):
                status, answer = _post(server, series, i)
                assert (status, answer["accepted"], answer["seen"]) == (200, 1, i + 1)
        final = {s: server.call("GET", f"/series/{s}/forecast?horizon=2")[1] for s in acknowledged}
    finally:
        server.kill()
    # an empty store of the same model: the replay starts every series afresh
    offline = Forecaster.load(folder, store=SeriesStore(None, model=model_fingerprint(folder)))
    for index, series in enumerate(acknowledged):
        for i in range(40):
            stamps = [_stamp(i)] if index == 0 else None
            expected = offline.observe(series, READINGS[index, i : i + 1], stamps, horizon=2)
        assert final[series]["seen"] == 40
        np.testing.assert_allclose(final[series]["values"], expected.values, rtol=1e-6)
    with sqlite3.connect(store_path(folder)) as connection:
        counts = dict(
            connection.execute("SELECT series_id, COUNT(*) FROM observations GROUP BY series_id")
        )
    connection.close()
    assert counts == {"s0": 40, "s1": 40, "s2": 40}


def test_repeats_are_idempotent_and_conflicts_are_refused(served):
    assert _post(served, "s1", 0, count=2)[0] == 200
    status, again = _post(served, "s1", 0, count=3)  # 2 repeats, 1 new
    assert (status, again["repeated"], again["accepted"], again["seen"]) == (200, 2, 1, 3)
    status, answer = served.call("POST", "/series/s1/observations", {"values": [99.0], "seq": 1})
    assert status == 409
    assert answer["detail"] == (
        "series 's1': the reading with seq 1 was already accepted with values "
        f"[{READINGS[1, 1]}], got [99.0]; a repeated reading must be identical"
    )
    status, answer = served.call("POST", "/series/s1/observations", {"values": [1.0], "seq": 7})
    assert (status, answer["detail"]) == (
        409,
        (
            "series 's1': seq 7 leaves a gap: the series has 3 readings, so the next reading has "
            "seq 3; send the missing readings first"
        ),
    )
    status, answer = served.call(
        "POST", "/series/trained/observations", {"values": [1.0], "timestamps": [_stamp(1)]}
    )
    assert status == 409 and "was never accepted here" in answer["detail"]


BAD_POSTS = [
    ({"values": [1.0]}, 422, "pass timestamps (one per reading) or seq"),
    ({"values": [], "seq": 0}, 422, "body.values: List should have at least 1 item"),
    ({"values": ["1"], "seq": 0}, 422, "body.values.0.float: Input should be a valid number"),
    ({"values": [True], "seq": 0}, 422, "body.values.0.float: Input should be a valid number"),
    (
        {"values": [[1.0, 2.0]], "seq": 0},
        422,
        "series 'bad': each reading needs 1 value(s) (columns ['value']), got 2",
    ),
    ({"values": [1.0] * 101, "seq": 0}, 422, "body.values: List should have at most 100 items"),
    ({"values": [1.0], "seq": -1}, 422, "body.seq: Input should be greater than or equal to 0"),
    ({"values": [1.0], "seq": 0, "horizon": 0}, 422, "body.horizon: Input should be greater"),
    (
        {"values": [1.0], "seq": 0, "colour": "red"},
        422,
        "body.colour: Extra inputs are not permitted",
    ),
    ({"values": [1.0, 2.0], "timestamps": [_stamp(0)]}, 422, "1 timestamps for 2 readings"),
    ({"values": [1.0], "timestamps": ["not a time"]}, 422, "timestamps could not be parsed"),
    (
        {"values": [1.0, 2.0], "timestamps": [_stamp(0), _stamp(2)]},
        422,
        "reading 1 has timestamp 2024-01-01T00:30:00, expected 2024-01-01T00:15:00 (frequency "
        "15min): a gap",
    ),
    (
        {"values": [1.0, 2.0], "timestamps": [_stamp(1), _stamp(0)]},
        422,
        "timestamps are not strictly increasing at reading 1",
    ),
    ([1.0], 422, "body: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_POSTS)
def test_bad_observations_get_4xx_with_the_reason(served, body, status, message):
    got, answer = served.call("POST", "/series/bad/observations", body)
    assert got == status
    assert message in answer["detail"]
    assert served.call("GET", "/series/bad/forecast")[0] == 404  # nothing was stored


@pytest.mark.parametrize(
    ("path", "raw", "status", "message"),
    [
        (
            "/series/bad/observations",
            b'{"values": [NaN], "seq": 0}',
            422,
            "series 'bad': reading 0 holds NaN or infinite values",
        ),
        (
            "/series/bad/observations",
            b'{"values": [1e999], "seq": 0}',
            422,
            "reading 0 holds NaN or infinite values",
        ),
        ("/series/bad/observations", b'{"values": [1.0', 422, "JSON decode error"),
        (
            "/series/bad%00id/observations",
            b'{"values": [1.0], "seq": 0}',
            422,
            "series id must not hold control characters",
        ),
    ],
)
def test_malformed_bodies_get_4xx(served, path, raw, status, message):
    got, answer = served.call("POST", path, raw=raw)
    assert (got, message in answer["detail"]) == (status, True), answer


# The one series-id rule (lstmlab.checks.check_series_id) at the three doors: accepted ids
# include '/', dot segments, spaces, URL metacharacters and non-ASCII; refused ones are
# empty, too long, or hold a control character.
SERIES_IDS = {
    "meter-7": True,
    "a/b": True,
    "a/b/observations": True,
    "Zürich/1 ☃": True,
    "with space": True,
    "50%?#&=+": True,
    "..": True,
    "x" * MAX_SERIES_ID_LENGTH: True,
    "": False,
    "x" * (MAX_SERIES_ID_LENGTH + 1): False,
    "a\x00b": False,
    "tab\there": False,
    "new\nline": False,
    "del\x7f": False,
}


def test_the_same_series_ids_are_accepted_at_every_door(served, tmp_path, capsys):
    stamp = _stamp(0)
    python = Forecaster.load(_model(tmp_path / "python"))
    command_line = _model(tmp_path / "cli")
    readings = tmp_path / "new.csv"
    pd.DataFrame({"time": [stamp], "value": [1.0]}).to_csv(readings, index=False)
    verdicts = {}
    for series_id in SERIES_IDS:
        path = "/series/" + urllib.parse.quote(series_id, safe="")
        status, answer = served.call(
            "POST", path + "/observations", {"values": [1.0], "timestamps": [stamp]}
        )
        assert status in (200, 422), answer
        if status == 200:
            assert answer["series_id"] == series_id
            status, answer = served.call("GET", path + "/forecast?horizon=2")
            assert status == 200 and len(answer["values"]) == 2, answer
        else:
            assert "series id must" in answer["detail"], answer
            assert served.call("GET", path + "/forecast")[0] == 422
        try:
            python.observe(series_id, [1.0], [stamp])
            by_python = True
        except ValueError as error:
            assert "series id must" in str(error)
            by_python = False
        argv = ["observe", "--model-dir", str(command_line), "--series", series_id]
        code = main([*argv, "--input", str(readings), "--device", "cpu"])
        assert code in (0, 2), capsys.readouterr()
        verdicts[series_id] = (status == 200, by_python, code == 0)
    python.close()
    assert verdicts == {series_id: (ok, ok, ok) for series_id, ok in SERIES_IDS.items()}
    accepted = sorted(series_id for series_id, ok in SERIES_IDS.items() if ok)
    assert sorted(set(Forecaster.load(command_line).series_ids) - {"trained"}) == accepted


def _raw_exchange(served, head, body=b""):
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head + body)
        reply = b""
        while b"}" not in reply:
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def test_oversized_body_is_refused_before_it_is_read(served):
    reply = _raw_exchange(
        served,
        b"POST /series/big/observations HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"request body of 5000000 bytes exceeds the limit of 1000000 bytes" in reply


def test_oversized_chunked_body_is_refused(served):
    chunk = b"1.0," * 100_000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    reply = _raw_exchange(
        served,
        b"POST /series/big/observations HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        body,
    )
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"request body of more than 1000000 bytes exceeds the limit" in reply
    # a small chunked body still works
    small = b'{"values": [1.0], "seq": 0}'
    reply = _raw_exchange(
        served,
        b"POST /series/chunky/observations HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small),
    )
    assert reply.startswith(b"HTTP/1.1 200"), reply


def test_forecast_endpoint(served):
    status, answer = served.call("GET", "/series/trained/forecast?horizon=3")
    assert status == 200
    assert answer["seen"] == 3 and len(answer["values"]) == 3
    assert answer["timestamps"][0] == _stamp(3)
    for query, code, message in [
        ("/series/nobody/forecast", 404, "unknown series 'nobody'"),
        ("/series/trained/forecast?horizon=0", 422, "query.horizon: Input should be greater"),
        (
            "/series/trained/forecast?horizon=abc",
            422,
            "query.horizon: Input should be a valid integer",
        ),
        ("/series/trained/forecast?horizon=1001", 422, "query.horizon: Input should be less"),
    ]:
        got, answer = served.call("GET", query)
        assert (got, message in answer["detail"]) == (code, True), answer


def test_health_model_and_schema(served):
    assert served.call("GET", "/health") == (
        200,
        {"status": "ok", "reason": None, "series": served.call("GET", "/health")[1]["series"]},
    )
    status, info = served.call("GET", "/models/current")
    assert status == 200
    assert info["config"]["units"] == [8] and info["metrics"] == {"final_loss": 0.125}
    assert info["recipe"]["freq"] == FREQ and info["scaler"]["kind"] == "minmax"
    status, schema = served.call("GET", "/openapi.json")
    assert status == 200
    assert {
        "/health",
        "/models/current",
        "/series/{series_id}/observations",
        "/series/{series_id}/forecast",
    } <= set(schema["paths"])
    assert served.process.poll() is None  # still alive after every bad request above


def test_window_model_reports_readings_still_needed(tmp_path):
    service = LiveService(_model(tmp_path / "w", kind="mlp"))
    try:
        answer = service.observe("new", [1.0, 2.0], None, 0, 1)
        assert (answer["values"], answer["needed"], answer["seen"]) == (None, 2, 2)
        answer = service.observe("new", [3.0, 4.0], None, 2, 2)
        assert answer["needed"] == 0 and len(answer["values"]) == 2
    finally:
        service.store.close()


def test_a_series_of_steps_is_served_with_its_step_numbers(tmp_path):
    config = LSTMConfig(units=(8,), timesteps=4, stateful=True, return_sequences=True)
    scaler = fit_scaler(np.linspace(0.0, 10.0, 20), "minmax", ["value"])

    def model(step):
        return Forecaster.from_params(
            config,
            init_params(config, 3),
            scaler=scaler,
            recipe=Recipe(window=4, columns=("value",), step=step),
        )

    stepped = model(1)
    stepped.warm_start({"s": [1.0, 2.0, 3.0]}, {"s": [101, 102, 103]})
    stepped.save(tmp_path / "m")
    reference = model(None)  # the same readings without any time: the same forecasts
    reference.warm_start({"s": [1.0, 2.0, 3.0]})
    service = LiveService(tmp_path / "m")
    try:
        answer = service.observe("s", [4.0, 5.0], ["104", "105"], None, 2)
        want = reference.observe("s", [4.0, 5.0], horizon=2, new_series=True)
        assert answer["values"] == want.values.tolist()
        assert (answer["timestamps"], answer["last_timestamp"]) == (["106", "107"], "105")
        again = service.observe("s", [4.0, 5.0], ["104", "105"], None, 2)
        assert (again["accepted"], again["repeated"], again["seen"]) == (0, 2, 5)
        answer = service.observe("s", [6.0], None, 5, 1)  # seq 5: the sixth reading
        assert (answer["timestamps"], answer["last_timestamp"]) == (["107"], "106")
        with pytest.raises(ValueError, match="reading at step 108, expected step 107"):
            service.observe("s", [7.0], ["108"], None, 1)
        with pytest.raises(ValueError, match="is not a step number"):
            service.observe("s", [7.0], ["2024-01-01"], None, 1)
    finally:
        service.store.close()


def test_a_bad_horizon_is_refused_before_the_readings_are_accepted(tmp_path):
    service = LiveService(_model(tmp_path / "m"), config=ServeConfig(max_horizon=5))
    try:
        for horizon in (0, 6):
            with pytest.raises(
                ValueError, match=f"horizon must be an integer from 1 to 5, got {horizon}"
            ):
                service.observe("x", [1.0, 2.0], None, 0, horizon)
        assert "x" not in service.forecaster.series_ids
        assert service.store.observations("x") == []
        assert service.observe("x", [1.0, 2.0], None, 0, 5)["accepted"] == 2
    finally:
        service.store.close()
    with pytest.raises(ValueError, match=f"max_horizon must be at most {MAX_HORIZON}"):
        ServeConfig(max_horizon=MAX_HORIZON + 1)


def test_database_of_another_model_is_refused(tmp_path):
    first = _model(tmp_path / "a")
    service = LiveService(first)
    service.store.close()
    other = tmp_path / "b"
    _model(other, kind="mlp")
    shutil.copyfile(store_path(first), store_path(other))  # a store of model a under b's name
    with pytest.raises(StoreError, match="belongs to another model"):
        LiveService(other)


def test_restart_in_process_keeps_states(tmp_path):
    folder = _model(tmp_path / "m")
    service = LiveService(folder)
    try:
        first = service.observe("x", [1.0, 2.0], None, 0, 1)
        with pytest.raises(ConflictError):
            service.observe("x", [5.0], None, 0, 1)
    finally:
        service.store.close()
    again = LiveService(folder)
    try:
        assert again.forecast("x", 1)["values"] == first["values"]
        assert store_path(folder).exists() and again.db_path == store_path(folder)
    finally:
        again.store.close()


def test_database_survives_a_states_only_resave_of_the_folder(tmp_path):
    folder = _model(tmp_path / "m")
    service = LiveService(folder)
    service.observe("x", [1.0, 2.0], None, 0, 1)
    service.store.close()
    offline = Forecaster.load(folder)  # e.g. `lstmlab observe` on another series
    offline.observe("y", [4.0])
    offline.save(folder)
    again = LiveService(folder)
    try:
        assert again.forecast("x", 1)["seen"] == 2
        assert again.forecast("y", 1)["seen"] == 1
    finally:
        again.store.close()


# --------------------------------------------------------------------------- issue 12: the
# service under abuse. An in-process server (uvicorn on a thread, the app of create_app) so a
# test can reach into the service: make the store fail, slow a request down, count compiles.

TOKEN = "test-token-0123456789-abcdefghij"  # 128 bits and more: it guards 0.0.0.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL = ServeConfig(max_readings=8, max_horizon=4, token=TOKEN)  # a cheap warm-up


def _call(url, method, path, body=None, raw=None, headers=None):
    """(status, JSON answer, headers) of one request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            text = error.read()
            try:
                answer = json.loads(text)
            except ValueError:
                answer = {"detail": text.decode("latin-1")}
            return error.code, answer, dict(error.headers)


class InProcess:
    """``create_app`` served by uvicorn on a thread, on a free port of 127.0.0.1."""

    def __init__(self, folder, config=SMALL):
        from lstmlab.live.http import create_app, timed_protocol, uvicorn_server

        self.app = create_app(folder, config)
        self.service = self.app.state.service
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # the service's own logging set-up, undone by close (the leak guard checks it)
        self.logging = contextlib.ExitStack()
        http = timed_protocol(config.header_timeout, config.body_timeout)  # as serve runs
        self.server = self.logging.enter_context(
            uvicorn_server(self.app, lifespan="off", http=http)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.01)

    def call(self, method, path, body=None, raw=None, headers=AUTH):
        return _call(self.url, method, path, body, raw, headers)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.service.store.close()
        self.logging.close()


@pytest.fixture(scope="module")
def inproc(tmp_path_factory):
    server = InProcess(_model(tmp_path_factory.mktemp("inproc") / "m"))
    yield server
    server.close()


def _exchange(url, requests):
    """Send requests one after another on ONE keep-alive connection; their (status, headers,
    body). A closed connection ends the list early (the caller sees fewer answers)."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        stream = connection.makefile("rb")
        for method, path, body in requests:
            data = b"" if body is None else json.dumps(body).encode()
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            try:
                connection.sendall(head + data)
                status_line = stream.readline()
            except OSError:
                break
            if not status_line:
                break
            headers = {}
            for line in iter(stream.readline, b"\r\n"):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            payload = stream.read(int(headers.get("content-length", 0)))
            answers.append((int(status_line.split()[1]), headers, json.loads(payload)))
    return answers


def _raw_answers(url, requests):
    """Raw HTTP/1.1 requests on one keep-alive connection; each answer's status line, headers
    (but the date) and body bytes."""
    host, port = url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        stream = connection.makefile("rb")
        for request in requests:
            connection.sendall(request)
            status = stream.readline()
            headers = []
            for line in iter(stream.readline, b"\r\n"):
                if not line.lower().startswith(b"date:"):
                    headers.append(line)
            length = next(
                int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length:")
            )
            answers.append((status, headers, stream.read(length)))
    return answers


def test_the_fast_observation_path_answers_every_request_as_the_app_does(tmp_path):
    # The same requests to two services of one model: one with the layer that answers plain
    # observations itself (as serve runs), one whose requests all go through FastAPI's route.
    def post(path, body, *, token=TOKEN, content_type=b"application/json"):
        head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        if content_type is not None:
            head += b"Content-Type: " + content_type + b"\r\n"
        if token is not None:
            head += b"Authorization: Bearer " + token.encode() + b"\r\n"
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def reading(i, value, **extra):
        return json.dumps({"values": [value], "timestamps": [_stamp(i)], **extra}).encode()

    plain = "/series/trained/observations"
    requests = [
        post(plain, reading(3, 4.0)),  # taken by the layer
        post(plain, reading(3, 4.0)),  # a repeat
        post(plain, reading(4, 5.0, horizon=3)),
        post(plain, reading(4, 6.0)),  # 409: contradicts the reading accepted
        post("/series/new/observations", reading(0, 1.0)),  # a new series
        post(plain, json.dumps({"values": [float("nan")], "timestamps": [_stamp(5)]}).encode()),
        post(plain, b'{"values": [7.0], "values": [1e30], "timestamps": ["x"]}'),  # 422
        post(plain, json.dumps({"values": [True], "seq": 5}).encode()),
        post(plain, reading(5, 7.0, horizon=99)),
        post(plain, '{"values": [7.0]}'.encode("utf-16")),
        post(plain, reading(5, 7.0), token=None),  # 401
        post(plain, reading(5, 7.0), token="wrong"),
        post(plain, reading(5, 7.0), content_type=b"text/plain"),
        post(plain, reading(5, 7.0), content_type=None),
        post(plain + "?horizon=2", reading(5, 7.0)),
        post("/series/%FF/observations", reading(0, 1.0)),
        post("/series/a%20b/observations", reading(0, 1.0)),
        post(plain, b""),
        post(plain, reading(6, 8.0)),  # taken by the layer
    ]
    answers, routed = [], []
    for fast in (True, False):
        server = InProcess(_model(tmp_path / str(fast) / "m"))
        try:
            layer = server.app.app  # the layer in front of the FastAPI app

            class Counting:  # FastAPI, counting what reaches it
                def __init__(self, app):
                    self.app, self.paths = app, []

                def __getattr__(self, name):
                    return getattr(self.app, name)

                async def __call__(self, scope, receive, send):
                    self.paths.append(scope["path"])
                    await self.app(scope, receive, send)

            layer.app = Counting(layer.app)
            if not fast:
                server.app.app = layer.app  # no layer: every request goes through FastAPI
            answers.append(_raw_answers(server.url, requests))
            routed.append(len(layer.app.paths))
        finally:
            server.close()
    assert len(answers[0]) == len(answers[1]) == len(requests)
    for with_layer, without in zip(*answers, strict=True):
        assert with_layer == without
    statuses = b"200 200 200 409 200 422 422 422 422 422 401 401 422 422 200 422 200 422 200"
    assert [a[0].split()[1] for a in answers[0]] == statuses.split()
    # the layer answered the 7 plain ones (5 accepted, 2 refused by the service), FastAPI the rest
    assert routed == [len(requests) - 7, len(requests)]


def test_store_unavailable_answers_503_with_retry_after_and_keeps_the_connection(
    inproc, monkeypatch
):
    from lstmlab.live.stores import StoreUnavailable

    store = inproc.service.store

    def full(*args, **kwargs):
        raise StoreUnavailable("writing the state store failed: disk full", retry_after=7)

    monkeypatch.setattr(store, "put_many", full)
    monkeypatch.setattr(store, "health", lambda: ("degraded", "disk full"))
    post = ("POST", "/series/full/observations", {"values": [1.0], "seq": 0})
    answers = _exchange(inproc.url, [post, ("GET", "/health", None), post, post])
    assert len(answers) == 4, "the connection was closed after an error"
    status, headers, body = answers[0]
    assert (status, headers["retry-after"]) == (503, "7")
    assert body["detail"] == ("writing the state store failed: disk full; retry after 7 s")
    status, _, body = answers[1]
    assert status == 503
    assert body == {"status": "degraded", "reason": "disk full", "series": body["series"]}
    assert [a[0] for a in answers[2:]] == [503, 503]
    monkeypatch.undo()  # the store recovers: the same request is accepted, once
    assert inproc.call("POST", *post[1:])[:2][0] == 200
    assert inproc.call("GET", "/health")[:2] == (
        200,
        {"status": "ok", "reason": None, "series": len(store)},
    )
    assert inproc.call("GET", "/series/full/forecast")[1]["seen"] == 1


def test_an_unexpected_error_is_500_and_other_errors_keep_the_connection(
    inproc, monkeypatch, capfd
):
    # the generic path (a bug) answers 500 and closes the connection (uvicorn's choice); every
    # error class the service raises goes through a handler that keeps it
    monkeypatch.setattr(
        inproc.service.forecaster, "stored_state", lambda series_id: 1 / 0, raising=True
    )
    answers = _exchange(
        inproc.url,
        [("GET", "/series/x/forecast", None), ("GET", "/health", None)],
    )
    assert answers[0][0] == 500
    detail = answers[0][2]["detail"]
    assert re.fullmatch(
        r"internal error \(reference ([0-9a-f]{12})\); the details are in the service's log",
        detail,
    ), detail
    reference = detail.split()[3][:-2]
    logged = capfd.readouterr().err  # the details went to the log, under the reference
    assert f"internal error {reference} (GET /series/x/forecast)" in logged
    assert "ZeroDivisionError: division by zero" in logged
    monkeypatch.undo()
    bad = [
        ("POST", "/series/k/observations", {"values": [1.0]}),  # 422
        ("GET", "/series/nobody/forecast", None),  # 404
        ("DELETE", "/series/nobody", None),  # 404
        ("POST", "/series/trained/observations", {"values": [1.0], "seq": 99}),  # 409
        ("GET", "/health", None),
    ]
    assert [a[0] for a in _exchange(inproc.url, bad)] == [422, 404, 404, 409, 200]


def test_series_limit_is_429_and_deleting_makes_room(tmp_path):
    server = InProcess(
        _model(tmp_path / "m"),
        ServeConfig(max_readings=8, max_horizon=4, token=TOKEN, max_series=3),
    )
    try:
        for name in ("a", "b"):  # 'trained' is the first of the 3
            assert (
                server.call("POST", f"/series/{name}/observations", {"values": [1.0], "seq": 0})[0]
                == 200
            )
        status, answer, _ = server.call(
            "POST", "/series/c/observations", {"values": [1.0], "seq": 0}
        )
        assert status == 429
        assert "its limit (max_series) is 3" in answer["detail"]
        assert server.call("GET", "/series/c/forecast")[0] == 404  # nothing stored
        # known series go on
        assert server.call("POST", "/series/a/observations", {"values": [2.0], "seq": 1})[0] == 200
        assert server.call("DELETE", "/series/b")[:2] == (200, {"series_id": "b", "deleted": True})
        assert server.call("POST", "/series/c/observations", {"values": [1.0], "seq": 0})[0] == 200
        assert server.call("GET", "/health")[1]["series"] == 3
    finally:
        server.close()


def test_delete_starts_a_series_afresh(inproc):
    readings = READINGS[2, :5].tolist()
    post = {"values": readings, "seq": 0, "horizon": 3}
    status, first, _ = inproc.call("POST", "/series/gone/observations", post)
    assert status == 200 and first["seen"] == 5
    assert inproc.call("DELETE", "/series/gone")[:2] == (
        200,
        {"series_id": "gone", "deleted": True},
    )
    assert inproc.call("GET", "/series/gone/forecast")[0] == 404
    status, answer, _ = inproc.call("DELETE", "/series/gone")
    assert (status, answer["detail"].startswith("unknown series 'gone'")) == (404, True)
    # afresh: seq 0 again is new (not a repeat), and the forecast equals a never-seen series'
    status, again, _ = inproc.call("POST", "/series/gone/observations", post)
    assert (status, again["accepted"], again["repeated"], again["seen"]) == (200, 5, 0, 5)
    status, other, _ = inproc.call("POST", "/series/gone-twin/observations", post)
    assert again["values"] == other["values"] == first["values"]
    assert inproc.service.store.observations("gone")[0][0] == 0
    assert len(inproc.service.store.observations("gone")) == 5


def test_implausible_readings_are_refused_unless_allowed(tmp_path, inproc):
    from lstmlab.defaults import PLAUSIBLE_FACTOR

    # the scaler of _model saw 0 .. 10 (width 10): the default factor allows this much around
    low, high = -PLAUSIBLE_FACTOR * 10, 10 + PLAUSIBLE_FACTOR * 10
    assert ServeConfig().plausible_factor == PLAUSIBLE_FACTOR
    for value, status in (
        (high, 200),
        (low, 200),
        (high + 0.5, 422),
        (low - 0.5, 422),
        (1e39, 422),
    ):
        got, answer, _ = inproc.call(
            "POST", f"/series/p{value}/observations", {"values": [value], "seq": 0}
        )
        assert got == status, answer
        if status == 422 and value != 1e39:
            assert f"is outside the plausible range [{low:g}, {high:g}]" in answer["detail"]
            assert "plausible_factor" in answer["detail"]
        if status == 422:
            assert inproc.call("GET", f"/series/p{value}/forecast")[0] == 404
    service = LiveService(
        _model(tmp_path / "m"), ServeConfig(max_readings=8, max_horizon=4, plausible_factor=None)
    )
    try:
        assert service.observe("wide", [1e6], None, 0, 1)["accepted"] == 1
        with pytest.raises(ValueError, match="float32"):
            service.observe("wider", [1e39], None, 0, 1)
    finally:
        service.store.close()


def test_offsets_come_back_and_kinds_are_not_mixed(inproc):
    aware = ["2024-03-01T05:00:00+05:00", "2024-03-01T05:15:00+05:00"]
    status, answer, _ = inproc.call(
        "POST", "/series/tz/observations", {"values": [1.0, 2.0], "timestamps": aware, "horizon": 2}
    )
    assert status == 200, answer
    assert answer["last_timestamp"] == "2024-03-01T05:15:00+05:00"
    assert answer["timestamps"] == ["2024-03-01T05:30:00+05:00", "2024-03-01T05:45:00+05:00"]
    status, answer, _ = inproc.call("GET", "/series/tz/forecast?horizon=1")
    assert answer["timestamps"] == ["2024-03-01T05:30:00+05:00"]
    # a naive timestamp after aware ones: refused, never taken as UTC (00:15 UTC would be a
    # "repeat" of nothing, 05:15 naive a wrong repeat)
    for naive in ("2024-03-01T05:15:00", "2024-03-01T05:30:00", "2024-03-01T00:15:00"):
        status, answer, _ = inproc.call(
            "POST", "/series/tz/observations", {"values": [2.0], "timestamps": [naive]}
        )
        assert status == 422, answer
        assert "has time-zone aware timestamps" in answer["detail"]
    # and the other way round
    inproc.call("POST", "/series/naive/observations", {"values": [1.0], "timestamps": [_stamp(0)]})
    status, answer, _ = inproc.call(
        "POST",
        "/series/naive/observations",
        {"values": [1.0], "timestamps": ["2024-01-01T00:15:00+00:00"]},
    )
    assert (status, "has naive timestamps" in answer["detail"]) == (422, True)
    # mixed in one request
    status, answer, _ = inproc.call(
        "POST",
        "/series/mixed/observations",
        {"values": [1.0, 2.0], "timestamps": ["2024-03-01T05:00:00+05:00", "2024-03-01T00:15:00"]},
    )
    assert status == 422
    assert "timestamp 0 has a time zone and timestamp 1 has none" in answer["detail"]
    assert inproc.call("GET", "/series/mixed/forecast")[0] == 404
    assert inproc.call("GET", "/series/tz/forecast")[1]["seen"] == 2  # untouched


def test_an_observation_checks_its_readings_and_parses_its_timestamps_once(inproc, monkeypatch):
    import lstmlab.readings as readings_module

    forecaster = inproc.service.forecaster
    calls = {"values": 0, "parse": 0, "kind": 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    network = type(forecaster.network)  # frozen: its methods are patched on the class
    monkeypatch.setattr(network, "check_values", counted("values", network.check_values))
    monkeypatch.setattr(
        network, "check_timestamp_kind", counted("kind", network.check_timestamp_kind)
    )
    monkeypatch.setattr(
        readings_module, "parse_times", counted("parse", readings_module.parse_times)
    )
    first = inproc.service.observe("once", [1.0, 2.0], [_stamp(0), _stamp(1)], None, 1)
    assert (first["accepted"], calls) == (2, {"values": 1, "parse": 1, "kind": 1})
    # a retry that overlaps the log and continues past it: still one of each
    again = inproc.service.observe("once", [2.0, 3.0], [_stamp(1), _stamp(2)], 1, 1)
    assert (again["accepted"], again["repeated"]) == (1, 1)
    assert calls == {"values": 2, "parse": 2, "kind": 2}
    assert forecaster.series_state("once").seen == 3


def test_a_reading_is_refused_only_when_its_own_forecast_cannot_be_dated(inproc):
    late = "2262-04-11T23:00:00"  # pandas' last timestamp is 23:47:16.85: room for 3 steps
    status, answer, _ = inproc.call(
        "POST", "/series/late/observations", {"values": [1.0], "timestamps": [late], "horizon": 4}
    )
    assert status == 422
    assert answer["detail"] == (
        "series 'late': 4 forecast step(s) of 15min after 2262-04-11T23:00:00 pass the last "
        "timestamp pandas can hold (2262-04-11T23:47:16.854775807); check the readings' "
        "dates, or ask for fewer steps"
    )
    assert inproc.call("GET", "/series/late/forecast")[0] == 404  # nothing applied
    # Asked for one step, the same reading is accepted: the largest horizon some other
    # request might ask for (max_horizon) does not refuse it (an annual series would be
    # refused after the year 1262 with the default of 1,000 steps).
    status, answer, _ = inproc.call(
        "POST", "/series/late/observations", {"values": [1.0], "timestamps": [late]}
    )
    assert (status, answer["accepted"]) == (200, 1), answer
    # A later request for more steps than can be dated is refused alone; the series stays.
    status, answer, _ = inproc.call("GET", "/series/late/forecast?horizon=4")
    assert status == 422
    assert answer["detail"].startswith("series 'late': 4 forecast step(s) of 15min after 2262")
    status, answer, _ = inproc.call("GET", "/series/late/forecast?horizon=3")
    assert status == 200 and answer["timestamps"][-1] == "2262-04-11T23:45:00"


def test_seq_with_timestamps_must_agree_with_the_log(inproc):
    stamps = [_stamp(i) for i in range(4)]
    body = {"values": [1.0, 2.0, 3.0], "timestamps": stamps[:3], "seq": 0}
    assert inproc.call("POST", "/series/both/observations", body)[0] == 200
    # a repeat with the right seq; a continuation with the right seq
    again = {"values": [2.0, 3.0, 4.0], "timestamps": stamps[1:4], "seq": 1}
    status, answer, _ = inproc.call("POST", "/series/both/observations", again)
    assert (status, answer["repeated"], answer["accepted"]) == (200, 2, 1)
    for seq in (0, 2, 4):
        wrong = {"values": [4.0, 5.0], "timestamps": [stamps[3], _stamp(4)], "seq": seq}
        status, answer, _ = inproc.call("POST", "/series/both/observations", wrong)
        assert (status, answer["detail"]) == (
            409,
            f"series 'both': seq {seq} does not agree with the timestamps: by their timestamps "
            "1 of the 2 readings are already accepted and the series has 4 readings; send the "
            "seq of the first reading (here 3), or timestamps alone",
        )
    assert inproc.call("GET", "/series/both/forecast")[1]["seen"] == 4  # nothing applied
    right = {"values": [4.0, 5.0], "timestamps": [stamps[3], _stamp(4)], "seq": 3}
    status, answer, _ = inproc.call("POST", "/series/both/observations", right)
    assert (status, answer["repeated"], answer["accepted"], answer["seen"]) == (200, 1, 1, 5)
    # all repeats, with a seq that puts them elsewhere in the log
    status, answer, _ = inproc.call("POST", "/series/both/observations", {**right, "seq": 2})
    assert (status, answer["detail"]) == (
        409,
        "series 'both': the reading with seq 2 was already accepted with values [3.0], got "
        "[4.0]; a repeated reading must be identical",
    )
    status, answer, _ = inproc.call(
        "POST", "/series/both/observations", {"values": [6.0], "timestamps": [_stamp(5)], "seq": 9}
    )
    assert (status, "seq 9 does not agree" in answer["detail"]) == (409, True)
    assert inproc.call("GET", "/series/both/forecast")[1]["seen"] == 5


def test_bearer_token(inproc):
    path = "/series/trained/forecast"
    status, answer, headers = inproc.call("GET", path, headers={})
    assert (status, headers["www-authenticate"]) == (401, "Bearer")
    assert answer["detail"].startswith("missing bearer token")
    for header in ("Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer é"):
        status, answer, headers = inproc.call("GET", path, headers={"Authorization": header})
        assert status == 401, header
        assert headers["www-authenticate"].startswith("Bearer")
    status, _, _ = inproc.call("GET", path)
    assert status == 200
    # a refused request changes nothing: the token is checked before the body is used
    status, _, _ = inproc.call(
        "POST", "/series/intruder/observations", {"values": [1.0], "seq": 0}, headers={}
    )
    assert status == 401 and inproc.call("GET", "/series/intruder/forecast")[0] == 404
    for open_path in ("/health", "/openapi.json"):  # /docs: see the docs test
        assert _call(inproc.url, "GET", open_path, headers={})[0] == 200


def test_token_and_config_are_checked():
    assert "token" not in repr(ServeConfig(token="secret-value"))
    assert "secret" not in repr(ServeConfig(store="postgresql://u:secret@h/db"))
    for token in ("", "with space", "tab\t", "é"):
        with pytest.raises(ValueError, match="token must be a non-empty string"):
            ServeConfig(token=token)
    with pytest.raises(ValueError, match="store must be a postgresql:// URL, got 'h/db'"):
        ServeConfig(store="mysql://u:secret@h/db")
    with pytest.raises(ValueError, match="max_series must be a positive integer, got 0"):
        ServeConfig(max_series=0)
    with pytest.raises(ValueError, match="plausible_factor must be > 0"):
        ServeConfig(plausible_factor=float("nan"))


def test_a_public_bind_needs_a_token_or_insecure(tmp_path):
    from lstmlab.live.http import check_exposure, run

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_exposure(host, ServeConfig())  # loopback: fine without a token
    check_exposure("0.0.0.0", ServeConfig(token=TOKEN))
    # refused before the model is even read: the folder does not exist
    with pytest.raises(ValueError, match=r"binding 0\.0\.0\.0 \(not a loopback address\) without"):
        run(tmp_path / "missing", host="0.0.0.0", port=0)
    folder = _model(tmp_path / "m")
    code = (
        "from lstmlab.live.http import run; from lstmlab.live.service import ServeConfig; "
        f"run({str(folder)!r}, host='0.0.0.0', port=0, insecure=True, "
        "config=ServeConfig(max_readings=1, max_horizon=1))"
    )
    service = ServiceProcess(
        [sys.executable, "-c", code],
        env={"LSTMLAB_CACHE_DIR": str(tmp_path / "cache")},
        stderr=subprocess.PIPE,
    )
    process = service.process
    try:
        service.wait_open(host="0.0.0.0")
        assert service.wait_ready() == 200
        # the compiled programs are kept for the next start
        assert any((tmp_path / "cache").iterdir())
    finally:
        service.kill()
    warning = process.stderr.read()
    process.stderr.close()
    assert "warning: serving 0.0.0.0 without a token (--insecure)" in warning


def test_docs_work_offline_and_every_answer_has_a_schema(inproc):
    request = urllib.request.Request(inproc.url + "/docs")
    with urllib.request.urlopen(request, timeout=10) as response:
        html = response.read().decode()
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
    assert any(u.endswith(".css") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere"
        with urllib.request.urlopen(inproc.url + url, timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 100, url
    schema = _call(inproc.url, "GET", "/openapi.json")[1]
    components = schema["components"]["schemas"]
    operations = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            operations += 1
            for code, response in operation["responses"].items():
                body = response["content"]["application/json"]["schema"]
                name = body["$ref"].rsplit("/", 1)[1]
                assert components[name]["properties"], (path, method, code)
                if code not in ("200", "503") or path != "/health":
                    assert code == "200" or name in ("ErrorAnswer", "HTTPValidationError"), (
                        path,
                        method,
                        code,
                    )
            if path != "/health":
                assert "401" in operation["responses"], (path, method)
            if path.startswith("/series/"):
                assert {"404", "422", "503"} & set(operation["responses"]), (path, method)
    assert operations == 5
    assert set(schema["paths"]) == {
        "/health",
        "/models/current",
        "/series/{series_id}/observations",
        "/series/{series_id}/forecast",
        "/series/{series_id}",
    }


def test_answers_match_their_response_models(inproc):
    models = inproc.app.state.models
    status, answer, _ = inproc.call(
        "POST", "/series/model/observations", {"values": [1.0, 2.0], "seq": 0, "horizon": 4}
    )
    models["ObservationAnswer"].model_validate(answer)
    models["ForecastAnswer"].model_validate(inproc.call("GET", "/series/model/forecast")[1])
    models["ModelAnswer"].model_validate(inproc.call("GET", "/models/current")[1])
    models["HealthAnswer"].model_validate(inproc.call("GET", "/health")[1])
    models["DeletedAnswer"].model_validate(inproc.call("DELETE", "/series/model")[1])
    models["ErrorAnswer"].model_validate(inproc.call("DELETE", "/series/model")[1])
    # the models can fail: an answer with a field they do not know is refused
    with pytest.raises(ValueError):
        models["ForecastAnswer"].model_validate({**answer, "colour": "red"})


def test_no_request_compiles_and_a_slow_request_does_not_stall_health(inproc, monkeypatch):
    from lstmlab.runtime import counting_programs

    # 1. after the warm-up, no request shape compiles (readings 1..8, horizons 1..4)
    with counting_programs() as compiled:
        seq = 0
        for count in (3, 5, 8, 1, 7, 2, 6, 4):
            body = {"values": [1.0] * count, "seq": seq, "horizon": count % 4 + 1}
            status, _, _ = inproc.call("POST", "/series/shapes/observations", body)
            assert status == 200
            seq += count
        for horizon in (1, 2, 3, 4):
            assert inproc.call("GET", f"/series/shapes/forecast?horizon={horizon}")[0] == 200
    assert compiled.total == 0, str(compiled)
    # 2. a request busy for 3 s in model work (as a compile was) leaves /health answering
    forecast_states = inproc.service.forecaster.forecast_states

    def slow(states, horizon=1):
        if "slow" in states:
            time.sleep(3)
        return forecast_states(states, horizon)

    monkeypatch.setattr(inproc.service.forecaster, "forecast_states", slow)
    results = {}

    def post():
        results["slow"] = inproc.call(
            "POST", "/series/slow/observations", {"values": [1.0] * 6, "seq": 0}
        )

    thread = threading.Thread(target=post)
    started = time.monotonic()
    thread.start()
    time.sleep(0.3)
    latencies = []
    while thread.is_alive() and time.monotonic() - started < 2.5:
        begun = time.monotonic()
        assert _call(inproc.url, "GET", "/health")[0] == 200
        latencies.append(time.monotonic() - begun)
    thread.join()
    assert results["slow"][0] == 200
    assert time.monotonic() - started >= 3
    assert len(latencies) >= 2 and max(latencies) < 1.0, latencies  # blocked: 3 s
    # 3. the same with the request held INSIDE the store transaction (the series' lock; with
    # SQLite the store's write lock): /health reads the count without waiting for it
    commit = inproc.service.forecaster.commit  # the service's write, inside the transaction
    entered = threading.Event()

    def slow_commit(advanced):
        if "slow-tx" in advanced:
            assert inproc.service.store._db.in_transaction  # the write lock is held
            entered.set()
            time.sleep(3)
        return commit(advanced)

    monkeypatch.setattr(inproc.service.forecaster, "commit", slow_commit)

    def post_in_transaction():
        results["slow-tx"] = inproc.call(
            "POST", "/series/slow-tx/observations", {"values": [1.0] * 2, "seq": 0}
        )

    thread = threading.Thread(target=post_in_transaction)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    latencies = []
    while thread.is_alive() and time.monotonic() - started < 2.5:
        begun = time.monotonic()
        status, answer, _ = _call(inproc.url, "GET", "/health")
        assert (status, answer["status"]) == (200, "ok")
        latencies.append(time.monotonic() - begun)
    thread.join()
    assert results["slow-tx"][0] == 200
    assert len(latencies) >= 2 and max(latencies) < 1.0, latencies


def test_start_up_reads_no_series(tmp_path, monkeypatch):
    folder = _model(tmp_path / "m")
    with SeriesStore(store_path(folder), model=model_fingerprint(folder)) as store:
        store.put_many({f"s{i}": store.get("trained") for i in range(200)})

    def refuse(*args, **kwargs):
        raise AssertionError("start-up walked the stored series")

    for name in ("items", "series_ids", "observations"):
        monkeypatch.setattr(SeriesStore, name, refuse)
    service = LiveService(folder, ServeConfig(max_readings=2, max_horizon=2))
    try:
        assert service.model_info()["series"] == 201
        assert service.health() == {"status": "ok", "reason": None, "series": 201}
        assert service.forecast("s7", 1)["seen"] == 3
    finally:
        service.store.close()


# --------------------------------------------------------------------------- start-up


def _start(
    folder, tmp_path, *, warm_up_seconds=0.0, port=0, config="max_readings=2, max_horizon=2"
):
    """``run`` in a subprocess whose warm-up first sleeps ``warm_up_seconds``."""
    code = (
        "import time\n"
        "from lstmlab.forecaster import Forecaster\n"
        "from lstmlab.live.http import run\n"
        "from lstmlab.live.service import ServeConfig\n"
        "warm_up = Forecaster.warm_up\n"
        "def slow(self, *args, **kwargs):\n"
        f"    time.sleep({warm_up_seconds})\n"
        "    return warm_up(self, *args, **kwargs)\n"
        "Forecaster.warm_up = slow\n"
        f"run({str(folder)!r}, port={port}, config=ServeConfig({config}))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu", LSTMLAB_CACHE_DIR=str(tmp_path / "cache")),
    )


def test_the_port_opens_before_the_warm_up_and_requests_wait_for_it(tmp_path):
    folder = _model(tmp_path / "m")
    process = _start(folder, tmp_path, warm_up_seconds=4.0)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), (line, process.stderr.read())
        url = line.split()[-1]
        # the warm-up runs: /health says so (503: no load balancer sends requests yet)
        status, answer, _ = _call(url, "GET", "/health")
        assert (status, answer["status"], answer["series"]) == (503, "starting", 1), answer
        assert "warm-up" in answer["reason"]
        # a request that needs the model waits for the warm-up, while /health answers
        results = {}

        def forecast():
            begun = time.monotonic()
            results["forecast"] = _call(url, "GET", "/series/trained/forecast?horizon=2")
            results["waited"] = time.monotonic() - begun

        thread = threading.Thread(target=forecast)
        thread.start()
        time.sleep(0.2)
        begun = time.monotonic()
        status, answer, _ = _call(url, "GET", "/health")
        assert (status, answer["status"]) == (503, "starting")
        assert time.monotonic() - begun < 1.0
        thread.join(60)
        status, answer, _ = results["forecast"]
        assert (status, answer["seen"], len(answer["values"])) == (200, 3, 2), answer
        assert results["waited"] > 1.0  # it did wait for the warm-up
        assert _call(url, "GET", "/health")[:2] == (
            200,
            {"status": "ok", "reason": None, "series": 1},
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_busy_port_fails_before_anything_is_loaded(tmp_path, monkeypatch):
    from lstmlab.live import http as http_module
    from lstmlab.live import service as service_module

    folder = _model(tmp_path / "m")

    def refuse(*args, **kwargs):
        raise AssertionError("the store was opened before the port was bound")

    monkeypatch.setattr(service_module, "open_store", refuse)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=rf"cannot listen on 127\.0\.0\.1 port {port}: "):
            http_module.run(folder, port=port, config=ServeConfig(max_readings=1, max_horizon=1))


def test_a_failed_start_closes_the_store_and_the_socket(tmp_path, monkeypatch):
    from lstmlab.live import http as http_module
    from lstmlab.live import service as service_module

    folder = _model(tmp_path / "m")
    opened = []

    def open_and_keep(*args, **kwargs):
        opened.append(service_module.open_store.__wrapped__(*args, **kwargs))
        return opened[-1]

    open_and_keep.__wrapped__ = service_module.open_store
    monkeypatch.setattr(service_module, "open_store", open_and_keep)

    def broken(*args, **kwargs):
        raise RuntimeError("unreadable weights")

    monkeypatch.setattr(Forecaster, "load", broken)
    port = _free_port()
    with pytest.raises(RuntimeError, match="unreadable weights"):
        http_module.run(folder, port=port, config=ServeConfig(max_readings=1, max_horizon=1))
    assert len(opened) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        len(opened[0])
    with socket.socket() as again:  # the port was given back
        again.bind(("127.0.0.1", port))


def test_a_failed_warm_up_stops_the_server_and_is_raised(tmp_path, monkeypatch, capfd):
    from lstmlab.live import http as http_module
    from lstmlab.live import service as service_module

    folder = _model(tmp_path / "m")
    opened = []
    real_open = service_module.open_store
    monkeypatch.setattr(
        service_module,
        "open_store",
        lambda *args, **kwargs: opened.append(real_open(*args, **kwargs)) or opened[-1],
    )

    def broken(self, *args, **kwargs):
        time.sleep(0.5)  # the server runs by then
        raise MemoryError("no room for the programs")

    monkeypatch.setattr(Forecaster, "warm_up", broken)
    with pytest.raises(MemoryError, match="no room for the programs"):
        http_module.run(folder, port=0, config=ServeConfig(max_readings=1, max_horizon=1))
    out, err = capfd.readouterr()
    assert out.startswith("serving on http://127.0.0.1:")
    assert "the warm-up failed (MemoryError: no room for the programs); stopping" in err
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        len(opened[0])


def test_the_warm_up_compiles_up_to_the_configured_limits(tmp_path, monkeypatch):
    folder = _model(tmp_path / "m")
    calls = []
    monkeypatch.setattr(Forecaster, "warm_up", lambda self, *args: calls.append(args))
    monkeypatch.setattr(SeriesNetwork, "warm_up", lambda self, *args: calls.append(args))
    service = LiveService(folder, ServeConfig(max_readings=3, max_horizon=2))
    try:
        # a lower --max-horizon: less to compile; then the reads of a whole group (up to
        # GROUP_LIMIT series), without rollouts (a horizon capacity of 1)
        assert calls == [(3, 2), (READ_CAPACITY, 1, GROUP_LIMIT)]
        with pytest.raises(ValueError, match="horizon must be"):
            service.forecast("trained", 3)
        assert len(service.forecast("trained", 2)["values"]) == 2
    finally:
        service.store.close()


def test_health_hides_the_reason_from_callers_without_the_token(inproc, monkeypatch, capfd):
    where = f"writing {inproc.service.store.path} failed: disk full"
    monkeypatch.setattr(inproc.service.store, "health", lambda: ("degraded", where))
    status, answer, _ = inproc.call("GET", "/health", headers={})
    assert (status, answer["status"]) == (503, "degraded")
    assert str(inproc.service.store.path) not in json.dumps(answer)
    assert answer["reason"].startswith("the store cannot write now; the reason is in the")
    assert where in capfd.readouterr().err  # the operator sees it, once
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        assert inproc.call("GET", "/health", headers=headers)[1] == answer
    status, answer, _ = inproc.call("GET", "/health")  # with the token: the reason itself
    assert (status, answer["reason"]) == (503, where)
    assert where not in capfd.readouterr().err  # not logged again


def test_health_without_a_token_configured_gives_the_reason(tmp_path, monkeypatch):
    service = LiveService(_model(tmp_path / "m"), ServeConfig(max_readings=1, max_horizon=1))
    try:
        monkeypatch.setattr(service.store, "health", lambda: ("degraded", "disk full"))
        assert service.health()["reason"] == "disk full"
        assert service.health(detailed=False)["reason"].startswith("the store cannot write")
    finally:
        service.store.close()


def test_seq_with_timestamps_is_checked_when_every_reading_is_a_repeat(inproc):
    path = "/series/ones/observations"
    stamps = [_stamp(i) for i in range(7)]
    body = {"values": [1.0] * 5, "timestamps": stamps[:5], "seq": 0}
    assert inproc.call("POST", path, body)[0] == 200
    # the value at seq 0 is 1.0 too, but the reading at stamps[4] has seq 4
    status, answer, _ = inproc.call(
        "POST", path, {"values": [1.0], "timestamps": [stamps[4]], "seq": 0}
    )
    assert (status, answer["detail"]) == (
        409,
        "series 'ones': seq 0 does not agree with the timestamps: the reading at "
        f"{stamps[4]} was accepted with seq 4, not 0; send the seq of the first reading "
        "(here 4), or timestamps alone",
    )
    # repeats that skip a logged reading, and continue: seq 3 fits the count, not the log
    status, answer, _ = inproc.call(
        "POST",
        path,
        {"values": [1.0, 1.0, 1.0], "timestamps": [stamps[1], stamps[3], stamps[5]], "seq": 3},
    )
    assert (status, answer["detail"]) == (
        409,
        "series 'ones': seq 3 does not agree with the timestamps: the reading at "
        f"{stamps[1]} was accepted with seq 1, not 3; send the seq of the first reading "
        "(here 1), or timestamps alone",
    )
    assert inproc.call("GET", "/series/ones/forecast")[1]["seen"] == 5  # nothing applied
    status, answer, _ = inproc.call(
        "POST", path, {"values": [1.0], "timestamps": [stamps[4]], "seq": 4}
    )
    assert (status, answer["repeated"], answer["accepted"]) == (200, 1, 0)
    status, answer, _ = inproc.call(
        "POST", path, {"values": [1.0, 1.0], "timestamps": stamps[3:5], "seq": 3}
    )
    assert (status, answer["repeated"], answer["accepted"]) == (200, 2, 0)


def test_the_service_imports_nothing_it_never_uses():
    code = (
        "import sys, lstmlab.live.http; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'scipy', 'matplotlib', 'statsforecast', 'sklearn'}), "
        "[m for m in sys.modules if m.startswith('lstmlab.experiments')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] []", out


def test_the_threads_that_serve_requests_compile_nothing_after_the_warm_up(tmp_path):
    # serve runs on a device (--device, cpu here); a thread that did not see it traced and
    # compiled every program again on its first request (JAX's tracing context holds the
    # default device), and would have run it on another device
    from tests.service_process import serve_command

    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        service = ServiceProcess(
            serve_command(_model(tmp_path / "m"), "--max-readings", "4", "--max-horizon", "2"),
            env={"JAX_LOG_COMPILES": "1"},
            stderr=stderr,
        )
        try:
            service.wait_open()
            assert service.wait_ready() == 200
            warm_up = log.read_text()
            assert "Compiling" in warm_up  # the reference: the warm-up's programs are logged
            statuses = [
                _call(service.url, "POST", "/series/trained/observations", body)[0]
                for body in (
                    {"values": [4.0], "timestamps": [_stamp(3)]},  # the committing thread
                    {"values": [5.0, 6.0], "timestamps": [_stamp(4), _stamp(5)], "horizon": 2},
                )
            ]
            statuses.append(_call(service.url, "GET", "/series/trained/forecast?horizon=2")[0])
        finally:
            service.kill()
    assert statuses == [200, 200, 200]
    served = log.read_text()[len(warm_up) :]
    assert "Compiling" not in served, served[:2000]


def test_the_served_process_maps_no_arrow_library(served):
    # pandas imports pyarrow whenever it is installed (it is: statsforecast needs it); the
    # service reads no Arrow data, and pyarrow's ~30 MB would break the 300 MB start-up bound
    import pyarrow  # the reference: where its shared library lives here

    if not Path("/proc/self/maps").exists():
        pytest.skip("reads the process's memory map in /proc (Linux)")
    library = Path(pyarrow.__file__).parent
    assert list(library.glob("libarrow.so*")), "no libarrow beside pyarrow to look for"
    status, _ = served.call("GET", "/health")
    maps = Path(f"/proc/{served.process.pid}/maps").read_text()
    assert status == 200 and "libarrow" not in maps


def test_seq_with_timestamps_is_checked_on_postgresql_too(tmp_path, postgres_url):
    service = LiveService(
        _model(tmp_path / "m"), ServeConfig(store=postgres_url, max_readings=2, max_horizon=1)
    )
    try:
        stamps = [_stamp(i) for i in range(5)]
        service.observe("ones", [1.0] * 5, stamps, 0, 1)
        nanoseconds = [pd.Timestamp(t).value for t in stamps]
        assert service.store.logged_seqs("ones", [nanoseconds[4], nanoseconds[1], 7]) == {
            nanoseconds[4]: 4,
            nanoseconds[1]: 1,
        }
        with pytest.raises(ConflictError, match="was accepted with seq 4, not 0"):
            service.observe("ones", [1.0], stamps[4:], 0, 1)
        assert service.observe("ones", [1.0], stamps[4:], 4, 1)["repeated"] == 1
    finally:
        service.store.close()


def test_uvicorn_logs_to_the_stderr_of_the_moment_and_is_restored_in_any_order(
    tmp_path, monkeypatch
):
    import io
    import logging

    from conftest import _counts

    from lstmlab.live.http import create_app, uvicorn_server

    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

    def snapshot():  # pytest's own capture handlers come and go with each phase: not counted
        return [
            (g.level, g.propagate, g.disabled, [h for h in g.handlers if _counts(h)])
            for g in map(logging.getLogger, names)
        ]

    def logged_now():  # a stream replaced after set-up gets the next line, not the old one
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        logging.getLogger("uvicorn.error").error("the socket went away")
        logging.getLogger("uvicorn.error").info("not for the operator")
        monkeypatch.undo()
        return stream.getvalue()

    before = snapshot()
    app = create_app(_model(tmp_path / "m"), ServeConfig(max_readings=1, max_horizon=1))
    try:
        first = contextlib.ExitStack()
        first.enter_context(uvicorn_server(app, lifespan="off"))
        second = contextlib.ExitStack()
        second.enter_context(uvicorn_server(app, lifespan="off"))
        assert logged_now() == logged_now() == "lstmlab serve: ERROR: the socket went away\n"
        first.close()  # not in the order they were entered: the second server still logs
        assert logged_now() == "lstmlab serve: ERROR: the socket went away\n"
        second.close()
        assert snapshot() == before
    finally:
        app.state.service.store.close()


def test_the_leak_guard_names_a_left_handler_and_a_left_thread():
    import logging

    from conftest import _logging_handlers, leaks

    handlers, threads = _logging_handlers(), set(threading.enumerate())
    assert leaks(handlers, threads) == []
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("lstmlab.left").addHandler(handler)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="left-running", daemon=True)
    thread.start()
    try:
        found = leaks(handlers, threads, grace_s=0.1)
    finally:
        logging.getLogger("lstmlab.left").removeHandler(handler)
        stop.set()
        thread.join()
    assert len(found) == 2, found
    assert found[0].startswith("logger 'lstmlab.left' had 0 handlers, now 1")
    assert found[1].startswith("thread 'left-running'")
    assert leaks(handlers, threads) == []  # and nothing once both are gone


def test_head_answers_where_get_does_with_its_status_and_no_body(inproc):
    # Monitors probe with HEAD: the same status and headers as GET, no body.
    url = inproc.url
    for path in ("/health", "/models/current", "/series/nobody/forecast"):
        get = urllib.request.Request(url + path, headers=AUTH)
        head = urllib.request.Request(url + path, headers=AUTH, method="HEAD")
        answers = []
        for request in (get, head):
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    answers.append((answer.status, answer.headers["content-type"], answer.read()))
            except urllib.error.HTTPError as error:
                with error:  # an error answer holds the connection until it is closed
                    answers.append((error.code, error.headers["content-type"], error.read()))
        (get_status, get_type, get_body), (head_status, head_type, head_body) = answers
        assert (head_status, head_type) == (get_status, get_type) and get_body and not head_body
    assert answers[0][0] == 404  # the unknown series: an answer, not 405
    # A path with no GET has no HEAD either; the schema lists GET once, no HEAD operations.
    head = urllib.request.Request(url + "/series/x/observations", headers=AUTH, method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(head, timeout=30)
    refused.value.close()
    assert refused.value.code == 405
    schema = inproc.call("GET", "/openapi.json")[1]
    assert not [p for p, methods in schema["paths"].items() if "head" in methods]


def test_a_model_trained_on_series_refuses_an_unknown_id_unless_new_series(tmp_path):
    import dataclasses

    config = MLPConfig(hidden=(5,), timesteps=4)
    model = Forecaster.from_params(
        config,
        init_params(config, 3),
        scaler=fit_scaler(np.linspace(0.0, 10.0, 20), "minmax", ["value"]),
        recipe=Recipe(kind="mlp", window=4, columns=("value",), freq=FREQ),
        metrics={"series": {"Meter-1": 4}},  # as fit records the series it was trained on
    )
    model.warm_start({"Meter-1": [1.0, 2.0, 3.0, 4.0]}, {"Meter-1": [_stamp(i) for i in range(4)]})
    folder = model.save(tmp_path / "m")
    body = {"values": [5.0], "timestamps": [_stamp(4)]}
    refusing = InProcess(folder)
    try:
        status, answer, _ = refusing.call("POST", "/series/meter-1/observations", body)
        assert status == 404
        assert answer["detail"] == (
            "series 'meter-1' is not one of this model's 1 series (did you mean 'Meter-1'?); "
            "its series: 'Meter-1'. To start a new series from a fresh state, start the "
            "service with --new-series"
        )
        assert refusing.service.forecaster.series_ids == ("Meter-1",)  # nothing stored
        status, answer, _ = refusing.call("POST", "/series/Meter-1/observations", body)
        assert (status, answer["accepted"]) == (200, 1)
    finally:
        refusing.close()
    accepting = InProcess(folder, dataclasses.replace(SMALL, new_series=True))
    try:
        status, answer, _ = accepting.call("POST", "/series/meter-1/observations", body)
        assert (status, answer["accepted"], answer["seen"]) == (200, 1, 1)
    finally:
        accepting.close()


def _read_all(sock, seconds):
    """Everything the server sends until it closes the connection (or ``seconds`` pass)."""
    sock.settimeout(seconds)
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open>")
    return b"".join(chunks)


def test_requests_whose_headers_or_body_stop_arriving_get_408_and_are_closed(tmp_path):
    import dataclasses

    config = dataclasses.replace(SMALL, header_timeout=0.5, body_timeout=0.5)
    server = InProcess(_model(tmp_path / "m"), config)
    host, port = server.url.removeprefix("http://").split(":")
    try:
        half_sent = [  # headers cut short; a body shorter than its Content-Length
            b"POST /series/s/observations HTTP/1.1\r\nHost: x\r\n",
            b"POST /series/s/observations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b'Content-Type: application/json\r\n\r\n{"values": [1',
        ]
        for request in half_sent:
            with socket.create_connection((host, int(port))) as sock:
                started = time.monotonic()
                sock.sendall(request)
                answer = _read_all(sock, 10.0)
                waited = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
            assert b"the request did not arrive in time" in answer
            assert not answer.endswith(b"<still open>") and 0.4 < waited < 5.0, waited
        # a whole request is answered, and its kept-alive connection outlives the timeouts
        body = json.dumps({"values": [1.0], "timestamps": [_stamp(0)]}).encode()
        request = (
            b"POST /series/s/observations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        with socket.create_connection((host, int(port))) as sock:
            for _ in range(2):
                sock.sendall(request)
                sock.settimeout(10.0)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 "), "no answer"
                time.sleep(1.0)  # twice the timeouts, idle between requests
    finally:
        server.close()


def _queued_behind_a_held_transaction(service, first, others):
    """Post ``first`` and hold its transaction until ``others`` (threads) all wait behind it.

    Returns ``(answers by series id, errors by series id, transactions run)``.
    """
    commit = service.forecaster.commit
    gate, entered = threading.Event(), threading.Event()
    transactions = []
    transaction = service.store.transaction

    @contextlib.contextmanager
    def counted(*series_ids):
        if not service.store._depth:  # an outer transaction, not put's nested one
            transactions.append(sorted(series_ids))
        with transaction(*series_ids) as store:
            yield store

    def held_commit(advanced):
        if first[0] in advanced:
            entered.set()
            assert gate.wait(10)
        return commit(advanced)

    answers, errors = {}, {}

    def post(series_id, values, seq, horizon=2):
        try:
            answers[series_id] = service.observe(series_id, values, None, seq, horizon)
        except Exception as error:  # noqa: BLE001 - the test looks at each request's outcome
            errors[series_id] = error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service.forecaster, "commit", held_commit)
        patch.setattr(service.store, "transaction", counted)
        threads = [threading.Thread(target=post, args=first)]
        threads[0].start()
        assert entered.wait(10)
        threads += [threading.Thread(target=post, args=other) for other in others]
        for thread in threads[1:]:
            thread.start()
        deadline = time.monotonic() + 10
        while len(service._committer._queue) < len(others) and time.monotonic() < deadline:
            time.sleep(0.01)
        gate.set()
        for thread in threads:
            thread.join(10)
    return answers, errors, transactions


@pytest.fixture
def grouping(tmp_path):
    """``(folder, service)``: a service of new series, up to 4 readings and 2 steps a request."""
    folder = _model(tmp_path / "m")
    service = LiveService(folder, ServeConfig(max_readings=4, max_horizon=2, new_series=True))
    yield folder, service
    service.store.close()


def test_a_group_waits_for_the_requests_that_keep_coming(monkeypatch):
    from lstmlab.live.service import Committer, Pending

    groups, ended = [], threading.Semaphore(0)
    committer = Committer(lambda group: groups.append([r.series_id for r in group]), limit=4)
    monkeypatch.setattr(Committer, "GATHER_S", 1.0)  # a window no scheduling delay closes

    def submit(series_id):
        request = Pending(series_id=series_id, readings=None, seq=0, horizon=1)
        request.ended = ended.release
        committer.submit(request)

    # each within the window of the one before: one group; without the wait, "a" alone
    for series_id in ("a", "b", "c"):
        submit(series_id)
        time.sleep(0.05)
    for _ in range(3):
        assert ended.acquire(timeout=10)
    # the window passes with no new request: the group goes; a full group goes at once
    for series_id in ("d", "e", "f", "g", "h"):
        submit(series_id)
    for _ in range(5):
        assert ended.acquire(timeout=10)
    assert groups == [["a", "b", "c"], ["d", "e", "f", "g"], ["h"]]


def test_requests_that_wait_are_committed_together_and_answered_as_if_alone(grouping):
    folder, service = grouping
    service.observe("bad", [1.0], None, 0, 1)  # its seq 0 is taken: a conflict below
    rng = np.random.default_rng(2)
    others = [(f"s{i}", rng.uniform(0, 10, 3).tolist(), 0) for i in range(5)]
    others.append(("bad", [5.0], 0))  # seq 0 again with another value: 409, alone
    from lstmlab.runtime import counting_programs

    with counting_programs() as compiled:  # the warm-up compiled the group's reads too
        answers, errors, transactions = _queued_behind_a_held_transaction(
            service, ("first", [1.0, 2.0, 3.0], 0), others
        )
    assert compiled.total == 0, str(compiled)
    # the first alone, then the six waiting ones in ONE transaction
    assert transactions == [["first"], sorted(["bad", *(f"s{i}" for i in range(5))])]
    assert sorted(answers) == ["first", *(f"s{i}" for i in range(5))]
    assert isinstance(errors.pop("bad"), ConflictError) and not errors
    # the reference: the same readings, one request at a time, through Forecaster.observe
    # on an empty store of the same model
    alone = Forecaster.load(folder, store=SeriesStore(None, model=service.fingerprint))
    for series_id, values, _ in [("first", [1.0, 2.0, 3.0], 0), *others[:5]]:
        want = alone.observe(series_id, values, horizon=2, new_series=True)
        got = answers[series_id]
        assert (got["accepted"], got["seen"]) == (len(values), want.seen)
        np.testing.assert_allclose(got["values"], want.values, rtol=1e-6)
        stored, reference = (
            service.forecaster.series_state(series_id),
            alone.series_state(series_id),
        )
        for a, b in zip(stored.rnn, reference.rnn, strict=True):
            np.testing.assert_allclose(a.h, b.h, atol=1e-6)
    assert service.forecaster.series_state("bad").seen == 1  # nothing of the 409 applied
    alone.close()


def test_a_groups_next_step_forecasts_are_made_at_once_as_each_alone(grouping):
    from lstmlab.runtime import counting_programs

    _, service = grouping
    rng = np.random.default_rng(3)
    # (series, readings, seq, horizon): one step ahead for s0, s2, s4; two for the others
    others = [(f"s{i}", rng.uniform(0, 10, 2).tolist(), 0, 1 + i % 2) for i in range(6)]
    calls = []
    forecast_states = service.forecaster.forecast_states

    def counted(states, horizon=1):
        calls.append((sorted(states), horizon))
        return forecast_states(states, horizon)

    with counting_programs() as compiled, pytest.MonkeyPatch.context() as patch:
        patch.setattr(service.forecaster, "forecast_states", counted)
        answers, errors, transactions = _queued_behind_a_held_transaction(
            service, ("first", [1.0, 2.0], 0, 1), others
        )
    assert compiled.total == 0, str(compiled)
    assert not errors and transactions[1] == sorted(f"s{i}" for i in range(6))
    # the group's one-step forecasts in one call, each longer one alone
    assert (["s0", "s2", "s4"], 1) in calls
    assert sorted(ids for ids, horizon in calls if horizon == 2) == [["s1"], ["s3"], ["s5"]]
    # each answer is the forecast of its stored state made alone, to the bit
    for series_id, _, _, horizon in others:
        alone = service.forecast(series_id, horizon)
        assert answers[series_id]["values"] == alone["values"]
        assert answers[series_id]["timestamps"] == alone["timestamps"]


def test_a_group_whose_write_fails_is_tried_again_request_by_request(grouping, monkeypatch):
    from lstmlab.live.stores import StoreUnavailable

    _, service = grouping
    put_many = service.store.put_many

    def failing_put(states, **kwargs):
        if "broken" in states:
            raise StoreUnavailable("writing failed: disk I/O error", retry_after=1)
        return put_many(states, **kwargs)

    monkeypatch.setattr(service.store, "put_many", failing_put)
    others = [("a", [1.0, 2.0], 0), ("broken", [3.0], 0), ("b", [4.0], 0)]
    answers, errors, transactions = _queued_behind_a_held_transaction(
        service, ("first", [1.0], 0), others
    )
    # the group of three failed as one, then each went alone, once, in the order they
    # queued (which the threads' start order does not fix): only "broken" is refused
    assert transactions[:2] == [["first"], ["a", "b", "broken"]]
    assert sorted(transactions[2:]) == [["a"], ["b"], ["broken"]]
    assert sorted(answers) == ["a", "b", "first"]
    assert list(errors) == ["broken"] and isinstance(errors["broken"], StoreUnavailable)
    assert service.forecaster.stored_state("broken") is None
    assert [service.forecaster.series_state(i).seen for i in "ab"] == [2, 1]
