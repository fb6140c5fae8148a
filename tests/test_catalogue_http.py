"""The catalogue of bad HTTP inputs (issue 12): one row per case, each asserting the status AND
a fragment of the message, and that no answer is a 500 or carries a traceback.

The rows cover the cases the issue lists (series limit, implausible readings, time zones,
timestamp bounds, seq with timestamps, the token, a failing store) and the error cases of
tests/test_service.py, on in-process servers (uvicorn on a thread, ``create_app``):
``main`` (a token, at most 8 readings and 4 steps, a 4 KB body limit), ``full`` (its
``max_series`` already reached) and ``broken`` (a store that cannot write: a full disk).
"""

import urllib.parse
from typing import NamedTuple

import pytest

from lstmlab.live.service import ServeConfig
from lstmlab.live.stores import StoreUnavailable
from tests.test_service import AUTH, TOKEN, InProcess, _model, _stamp

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

AWARE = ["2024-03-01T05:00:00+05:00", "2024-03-01T05:15:00+05:00"]


class Case(NamedTuple):
    method: str
    path: str
    body: object = None
    status: int = 422
    message: str = ""
    raw: bytes | None = None
    headers: dict | None = None  # None: the right token
    server: str = "main"


def _obs(series="bad"):
    return f"/series/{urllib.parse.quote(series, safe='')}/observations"


CASES = {
    # -- the token
    "no token": Case(
        "POST", _obs(), {"values": [1.0], "seq": 0}, 401, "missing bearer token", headers={}
    ),
    "wrong token": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": 0},
        401,
        "wrong bearer token",
        headers={"Authorization": "Bearer nope"},
    ),
    "token, other scheme": Case(
        "GET",
        "/series/trained/forecast",
        None,
        401,
        "missing bearer token",
        headers={"Authorization": f"Basic {TOKEN}"},
    ),
    "token on model info": Case(
        "GET", "/models/current", None, 401, "missing bearer token", headers={}
    ),
    "token on delete": Case(
        "DELETE", "/series/trained", None, 401, "missing bearer token", headers={}
    ),
    # -- the body
    "no timestamps nor seq": Case(
        "POST", _obs(), {"values": [1.0]}, 422, "pass timestamps (one per reading) or seq"
    ),
    "no readings": Case(
        "POST",
        _obs(),
        {"values": [], "seq": 0},
        422,
        "body.values: List should have at least 1 item",
    ),
    "values null": Case(
        "POST", _obs(), {"values": None, "seq": 0}, 422, "body.values: Input should be a valid list"
    ),
    "reading as a string": Case(
        "POST",
        _obs(),
        {"values": ["1"], "seq": 0},
        422,
        "body.values.0.float: Input should be a valid number",
    ),
    "reading as a bool": Case(
        "POST",
        _obs(),
        {"values": [True], "seq": 0},
        422,
        "body.values.0.float: Input should be a valid number",
    ),
    "two values per reading": Case(
        "POST",
        _obs(),
        {"values": [[1.0, 2.0]], "seq": 0},
        422,
        "series 'bad': each reading needs 1 value(s) (columns ['value']), got 2",
    ),
    "too many readings": Case(
        "POST",
        _obs(),
        {"values": [1.0] * 9, "seq": 0},
        422,
        "body.values: List should have at most 8 items",
    ),
    "negative seq": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": -1},
        422,
        "body.seq: Input should be greater than or equal to 0",
    ),
    "seq as a float": Case("POST", _obs(), {"values": [1.0], "seq": 1.5}, 422, "body.seq"),
    "horizon 0": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": 0, "horizon": 0},
        422,
        "body.horizon: Input should be greater than or equal to 1",
    ),
    "horizon past the limit": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": 0, "horizon": 5},
        422,
        "body.horizon: Input should be less than or equal to 4",
    ),
    "horizon as a string": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": 0, "horizon": "2"},
        422,
        "body.horizon: Input should be a valid integer",
    ),
    "unknown field": Case(
        "POST",
        _obs(),
        {"values": [1.0], "seq": 0, "colour": "red"},
        422,
        "body.colour: Extra inputs are not permitted",
    ),
    "body is a list": Case("POST", _obs(), [1.0], 422, "body: Input should be a valid dictionary"),
    "timestamps not a list": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": _stamp(0)},
        422,
        "body.timestamps: Input should be a valid list",
    ),
    "NaN": Case(
        "POST",
        _obs(),
        None,
        422,
        "series 'bad': reading 0 holds NaN or infinite values",
        raw=b'{"values": [NaN], "seq": 0}',
    ),
    "1e999 (infinite)": Case(
        "POST",
        _obs(),
        None,
        422,
        "reading 0 holds NaN or infinite values",
        raw=b'{"values": [1e999], "seq": 0}',
    ),
    "1e39 (beyond float32)": Case(
        "POST", _obs(), {"values": [1e39], "seq": 0}, 422, "beyond the float32 range"
    ),
    "implausible 1e6": Case(
        "POST", _obs(), {"values": [1e6], "seq": 0}, 422, "is outside the plausible range"
    ),
    "implausible -1e4": Case(
        "POST", _obs(), {"values": [-1e4], "seq": 0}, 422, "--allow-implausible"
    ),
    "truncated JSON": Case("POST", _obs(), None, 422, "JSON decode error", raw=b'{"values": [1.0'),
    "series id of invalid UTF-8 (one U+FFFD for all)": Case(
        "POST",
        "/series/%FF/observations",
        {"values": [1.0], "seq": 0},
        422,
        "the URL path is not UTF-8 once percent-decoded (byte 8: invalid start byte)",
    ),
    "series id of a lone surrogate": Case(
        "GET",
        "/series/%ED%A0%80/forecast",
        None,
        422,
        "the URL path is not UTF-8 once percent-decoded",
    ),
    "a key twice (the last would win)": Case(
        "POST",
        _obs(),
        None,
        422,
        "the key 'values' appears twice in one object; send each key once",
        raw=b'{"values": [1e30], "values": [130], "seq": 0}',
    ),
    "a UTF-16 body": Case(
        "POST",
        _obs(),
        None,
        422,
        "the body is not UTF-8 (byte 0); send UTF-8 JSON",
        raw='{"values": [130], "seq": 0}'.encode("utf-16"),
    ),
    "not JSON": Case("POST", _obs(), None, 422, "JSON decode error", raw=b"values=1"),
    "body too large": Case(
        "POST",
        _obs(),
        None,
        413,
        "request body of 5000 bytes exceeds the limit of 4096 bytes",
        raw=b" " * 5000,
    ),
    # -- series ids
    "id with NUL": Case(
        "POST",
        _obs("bad\x00id"),
        {"values": [1.0], "seq": 0},
        422,
        "series id must not hold control characters",
    ),
    "id with newline": Case(
        "POST",
        _obs("new\nline"),
        {"values": [1.0], "seq": 0},
        422,
        "series id must not hold control characters",
    ),
    "id too long": Case(
        "POST", _obs("x" * 201), {"values": [1.0], "seq": 0}, 422, "series id must"
    ),
    "empty id": Case(
        "POST", "/series//observations", {"values": [1.0], "seq": 0}, 422, "series id must"
    ),
    "forecast, id with NUL": Case("GET", "/series/a%00b/forecast", None, 422, "control characters"),
    "delete, id with DEL": Case("DELETE", "/series/a%7Fb", None, 422, "control characters"),
    # -- time
    "timestamp count": Case(
        "POST",
        _obs(),
        {"values": [1.0, 2.0], "timestamps": [_stamp(0)]},
        422,
        "1 timestamps for 2 readings",
    ),
    "unparseable timestamp": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["not a time"]},
        422,
        "timestamps could not be parsed",
    ),
    "signed year": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["-2024-01-01T00:00:00"]},
        422,
        "has a sign before its year",
    ),
    "Arabic-Indic digits": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["\u0662\u0660\u0662\u0664-01-01T00:00:00"]},
        422,
        "holds the character '\u0662' (U+0662)",
    ),
    "NUL in a timestamp": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["2024-01-01T00:00\u0000:00"]},
        422,
        "(U+0000); a timestamp is written in ASCII digits",
    ),
    "first timestamp off the grid": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["2024-01-01T00:00:00.000000001"]},
        422,
        "which a series of frequency 15min never has",
    ),
    "timestamp gap": Case(
        "POST",
        _obs(),
        {"values": [1.0, 2.0], "timestamps": [_stamp(0), _stamp(2)]},
        422,
        "expected 2024-01-01T00:15:00 (frequency 15min): a gap",
    ),
    "timestamps backwards": Case(
        "POST",
        _obs(),
        {"values": [1.0, 2.0], "timestamps": [_stamp(1), _stamp(0)]},
        422,
        "timestamps are not strictly increasing at reading 1",
    ),
    "aware and naive in one request": Case(
        "POST",
        _obs(),
        {"values": [1.0, 2.0], "timestamps": [AWARE[0], "2024-03-01T00:15:00"]},
        422,
        "timestamp 0 has a time zone and timestamp 1 has none",
    ),
    "naive after aware": Case(
        "POST",
        _obs("tz"),
        {"values": [3.0], "timestamps": ["2024-03-01T05:30:00"]},
        422,
        "series 'tz' has time-zone aware timestamps",
    ),
    "naive after aware, same instant as a logged one": Case(
        "POST",
        _obs("tz"),
        {"values": [2.0], "timestamps": ["2024-03-01T00:15:00"]},
        422,
        "has time-zone aware timestamps",
    ),
    "aware after naive": Case(
        "POST",
        _obs("trained"),
        {"values": [3.0], "timestamps": ["2024-01-01T00:45:00+00:00"]},
        422,
        "series 'trained' has naive timestamps",
    ),
    "timestamp without room for the asked forecast": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["2262-04-11T23:00:00"], "horizon": 4},
        422,
        "4 forecast step(s) of 15min after 2262-04-11T23:00:00 pass the last timestamp",
    ),
    "timestamp past pandas' range": Case(
        "POST",
        _obs(),
        {"values": [1.0], "timestamps": ["2263-01-01T00:00:00"]},
        422,
        "series 'bad'",
    ),
    "no timestamps where the series has them": Case(
        "POST",
        _obs("trained"),
        {"values": [1.0], "seq": 3},
        422,
        "series 'trained' has timestamps up to 2024-01-01T00:30:00",
    ),
    # -- conflicts
    "seq disagrees with the log, every reading a repeat": Case(
        "POST",
        _obs("flat"),
        {"values": [1.0], "timestamps": [_stamp(1)], "seq": 0},
        409,
        f"the reading at {_stamp(1)} was accepted with seq 1, not 0",
    ),
    "older reading never accepted": Case(
        "POST",
        _obs("trained"),
        {"values": [1.0], "timestamps": [_stamp(1)]},
        409,
        "was never accepted here",
    ),
    "seq leaves a gap": Case(
        "POST",
        _obs("seqd"),
        {"values": [1.0], "seq": 7},
        409,
        "seq 7 leaves a gap: the series has 2 readings",
    ),
    "repeat with other values": Case(
        "POST",
        _obs("seqd"),
        {"values": [9.0], "seq": 1},
        409,
        "the reading with seq 1 was already accepted with values [2.0], got [9.0]",
    ),
    "seq disagrees with timestamps": Case(
        "POST",
        _obs("tz"),
        {"values": [3.0], "timestamps": ["2024-03-01T05:30:00+05:00"], "seq": 0},
        409,
        "seq 0 does not agree with the timestamps",
    ),
    # -- forecasts and deletes
    "unknown series": Case(
        "GET",
        "/series/nobody/forecast",
        None,
        404,
        "unknown series 'nobody'; observe readings for it first",
    ),
    "forecast horizon 0": Case(
        "GET",
        "/series/trained/forecast?horizon=0",
        None,
        422,
        "query.horizon: Input should be greater than or equal to 1",
    ),
    "forecast horizon abc": Case(
        "GET",
        "/series/trained/forecast?horizon=abc",
        None,
        422,
        "query.horizon: Input should be a valid integer",
    ),
    "forecast horizon past the limit": Case(
        "GET",
        "/series/trained/forecast?horizon=5",
        None,
        422,
        "query.horizon: Input should be less than or equal to 4",
    ),
    "delete unknown series": Case("DELETE", "/series/nobody", None, 404, "unknown series 'nobody'"),
    # -- routes
    "unknown path": Case("GET", "/nothing", None, 404, "Not Found"),
    "wrong method": Case("PUT", _obs(), {"values": [1.0], "seq": 0}, 405, "Method Not Allowed"),
    # -- limits of the store
    "series limit reached": Case(
        "POST",
        _obs("one-too-many"),
        {"values": [1.0], "seq": 0},
        429,
        "its limit (max_series) is 1; delete series that are no longer needed",
        server="full",
    ),
    "store cannot write": Case(
        "POST",
        _obs("w"),
        {"values": [1.0], "seq": 0},
        503,
        "disk full; retry after 3 s",
        server="broken",
    ),
    "store cannot delete": Case(
        "DELETE", "/series/trained", None, 503, "disk full", server="broken"
    ),
    "health while degraded": Case(
        "GET", "/health", None, 503, "degraded", headers={}, server="broken"
    ),
    "health while degraded, without the token: no reason shown": Case(
        "GET",
        "/health",
        None,
        503,
        "'reason': \"the store cannot write now; the reason is in the service's log",
        headers={},
        server="broken",
    ),
    "health while degraded, with the token: the reason": Case(
        "GET",
        "/health",
        None,
        503,
        "'reason': 'writing the state store failed: disk full'",
        server="broken",
    ),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    small = {"max_readings": 8, "max_horizon": 4, "token": TOKEN}
    made = {
        "main": InProcess(
            _model(tmp_path_factory.mktemp("main") / "m"),
            ServeConfig(**small, max_body_bytes=4096),
        ),
        "full": InProcess(
            _model(tmp_path_factory.mktemp("full") / "m"), ServeConfig(**small, max_series=1)
        ),
        "broken": InProcess(_model(tmp_path_factory.mktemp("broken") / "m"), ServeConfig(**small)),
    }
    main = made["main"]
    assert main.call("POST", _obs("tz"), {"values": [1.0, 2.0], "timestamps": AWARE})[0] == 200
    assert main.call("POST", _obs("seqd"), {"values": [1.0, 2.0], "seq": 0})[0] == 200
    flat = {"values": [1.0, 1.0], "timestamps": [_stamp(0), _stamp(1)]}
    assert main.call("POST", _obs("flat"), flat)[0] == 200
    store = made["broken"].service.store

    def full(*args, **kwargs):
        raise StoreUnavailable("writing the state store failed: disk full", retry_after=3)

    store.put = store.put_many = store.delete = full
    store.health = lambda: ("degraded", "writing the state store failed: disk full")
    yield made
    for server in made.values():
        server.close()


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_http_input_gets_a_clear_4xx_or_503(servers, case):
    server = servers[case.server]
    headers = AUTH if case.headers is None else case.headers
    status, answer, reply_headers = server.call(
        case.method, case.path, case.body, raw=case.raw, headers=headers
    )
    text = str(answer)
    assert status != 500 and "Traceback" not in text and "internal error" not in text, answer
    assert status == case.status, answer
    detail = answer.get("detail") if isinstance(answer, dict) else None
    shown = detail if detail is not None else text  # /health answers with its status
    assert case.message in shown, answer
    if status == 401:
        assert reply_headers["www-authenticate"].startswith("Bearer")
    if status == 503 and case.path != "/health":
        assert int(reply_headers["retry-after"]) >= 1


def test_the_catalogue_changed_nothing(servers):
    # every refused request left the store as it was: no series 'bad', 'intruder' on main,
    # 'one-too-many' on full, 'w' on broken (each checked where it was sent)
    main = servers["main"]
    for series in ("bad", "intruder"):
        assert series not in main.service.store
    assert "one-too-many" not in servers["full"].service.store
    broken = servers["broken"].service.store
    assert "w" not in broken and "trained" in broken  # nor was the delete applied
    assert main.call("GET", "/series/flat/forecast")[1]["seen"] == 2
    assert main.call("GET", "/series/tz/forecast")[1]["seen"] == 2
    assert main.call("GET", "/series/seqd/forecast")[1]["seen"] == 2
    assert main.call("GET", "/series/trained/forecast")[1]["seen"] == 3
    assert len(servers["full"].service.store) == 1
    assert len(CASES) >= 60
