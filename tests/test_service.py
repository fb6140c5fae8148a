import http.client
import json
import os
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

import numpy as np
import pandas as pd
import pytest

from lstmlab.checks import MAX_SERIES_ID_LENGTH
from lstmlab.cli import main
from lstmlab.core.model import LSTMConfig, MLPConfig, init_params
from lstmlab.data.scaling import fit_scaler
from lstmlab.forecaster import MAX_HORIZON, Forecaster, Recipe
from lstmlab.live.service import ConflictError, LiveService, ServeConfig
from lstmlab.live.state_store import SeriesStore, StoreError
from lstmlab.model_folder import model_fingerprint, store_path

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
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lstmlab",
                "serve",
                "--model-dir",
                str(folder),
                "--port",
                "0",
                "--max-readings",
                "100",
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), line
        self.url = line.split()[-1]
        assert self.call("GET", "/health")[0] == 200

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
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()


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
        {"status": "ok", "series": served.call("GET", "/health")[1]["series"]},
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
