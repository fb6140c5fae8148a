"""Load test of ``lstmlab serve``: one-reading observations over many series, on loopback.

Starts the real service (``python -m lstmlab serve``) as a child process on
127.0.0.1 with a fresh model folder (a stateful LSTM(20), untrained: the numerics cost the
same) and drives it with concurrent keep-alive HTTP/1.1 clients (asyncio, raw sockets, so
that the client spends little of the 2 cores). Each client owns a share of the series and
posts one reading per request with its sequence number. Bounded by --requests and --seconds.

Afterwards the server is killed with SIGKILL and the database is checked offline: every
acknowledged observation is in the log exactly once, and every series' stored state equals
an offline replay of its logged observations through the model (``Forecaster.observe``).

    python bench/serve_load.py                      # 10 s, 1,000 series, 8 clients
    python bench/serve_load.py --seconds 5 --clients 32

Targets: p99 under 20 ms and over 1,000 requests per second on 2 cores, nothing lost. The last
line is one JSON object. Nothing is asserted.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO_DIR, emit_json, machine_info, mark


def _make_model(folder: Path) -> None:
    from lstmlab.core.model import LSTMConfig, init_params
    from lstmlab.data.scaling import fit_scaler
    from lstmlab.forecaster import Forecaster, Recipe

    config = LSTMConfig(units=(20,), timesteps=8, stateful=True, return_sequences=True)
    scaler = fit_scaler(np.linspace(0.0, 10.0, 50), "minmax", ["value"])
    model = Forecaster.from_params(
        config,
        init_params(config, 0),
        recipe=Recipe(window=8, columns=("value",)),
        scaler=scaler,
    )
    model.save(folder)


def _start_server(folder: Path) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=str(REPO_DIR / "src"), JAX_PLATFORMS="cpu")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lstmlab",
            "serve",
            "--model-dir",
            str(folder),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("serving on"):
        raise RuntimeError(f"the server did not start: {line!r}")
    return process, int(line.rsplit(":", 1)[1])


async def _request(reader, writer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    header = await reader.readuntil(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    length = 0
    for line in header.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def _drive(port: int, args) -> dict:
    series = [f"s{i:04d}" for i in range(args.series)]
    next_seq = dict.fromkeys(series, 0)
    acknowledged: list[tuple[str, int, float]] = []
    latencies: list[float] = []
    errors: list[str] = []
    budget = {"left": args.requests}
    deadline = time.perf_counter() + args.seconds
    rng = random.Random(0)

    async def client(index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        mine = series[index :: args.clients]
        position = 0
        try:
            while budget["left"] > 0 and time.perf_counter() < deadline:
                budget["left"] -= 1
                series_id = mine[position % len(mine)]
                position += 1
                value = round(rng.uniform(0.0, 10.0), 6)
                seq = next_seq[series_id]
                body = json.dumps({"values": [value], "seq": seq}).encode()
                started = time.perf_counter()
                status, payload = await _request(
                    reader, writer, "POST", f"/series/{series_id}/observations", body
                )
                latencies.append(time.perf_counter() - started)
                if status == 200:
                    next_seq[series_id] = seq + 1
                    acknowledged.append((series_id, seq, value))
                else:
                    errors.append(f"{status} {payload[:200]!r}")
        finally:
            writer.close()

    # warm-up: compile the one-reading shape before timing
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(20):
        status, _ = await _request(reader, writer, "GET", "/health")
    writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(args.clients)))
    elapsed = time.perf_counter() - started
    return {
        "acknowledged": acknowledged,
        "latencies": latencies,
        "errors": errors,
        "elapsed": elapsed,
    }


def _check_offline(folder: Path, db: Path, acknowledged) -> dict:
    from lstmlab.forecaster import Forecaster
    from lstmlab.live.state_store import SeriesStore
    from lstmlab.model_folder import model_fingerprint

    connection = sqlite3.connect(str(db))
    logged = {
        (series_id, seq): np.frombuffer(blob, np.float64)[0]
        for series_id, seq, blob in connection.execute(
            "SELECT series_id, seq, reading FROM observations"
        )
    }
    lost = sum(1 for s, q, v in acknowledged if logged.get((s, q)) != v)
    extra = len(logged) - len(acknowledged)
    # an empty store of the same model: the replay starts every series afresh
    replay = Forecaster.load(folder, store=SeriesStore(None, model=model_fingerprint(folder)))
    by_series: dict[str, list[tuple[int, float]]] = {}
    for (series_id, seq), value in logged.items():
        by_series.setdefault(series_id, []).append((seq, value))
    for series_id, readings in by_series.items():
        for _, value in sorted(readings):
            replay.observe(series_id, [value])  # one reading per call, as the server did
    mismatches = 0
    worst = 0.0
    served = Forecaster.load(folder)  # the folder's store, the one the service wrote
    for series_id in served.series_ids:
        stored = served.series_state(series_id)  # the state the service stored
        offline = replay.series_state(series_id)
        for a, b in zip(stored.rnn, offline.rnn, strict=True):
            worst = max(worst, float(np.max(np.abs(a.h - b.h))), float(np.max(np.abs(a.c - b.c))))
        if worst > 1e-6 or stored.seen != offline.seen:
            mismatches += 1
    connection.close()
    served.close()
    replay.close()
    return {
        "lost": lost,
        "extra": extra,
        "state_mismatches": mismatches,
        "max_state_difference": worst,
        "series_checked": len(by_series),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        from lstmlab.model_folder import store_path

        folder = Path(tmp) / "model"
        _make_model(folder)
        db = store_path(folder)
        process, port = _start_server(folder)
        try:
            result = asyncio.run(_drive(port, args))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            process.stdout.close()
        check = _check_offline(folder, db, result["acknowledged"])
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=150)
    print = console.print  # noqa: A001 - the target marks are rich markup
    latencies = np.sort(np.asarray(result["latencies"])) * 1e3
    count = len(latencies)
    rps = count / result["elapsed"] if result["elapsed"] else 0.0
    p50 = float(np.percentile(latencies, 50)) if count else None
    p99 = float(np.percentile(latencies, 99)) if count else None
    print(
        f"{count} requests ({len(result['acknowledged'])} accepted, "
        f"{len(result['errors'])} errors) over {args.series} series from {args.clients} "
        f"clients in {result['elapsed']:.2f} s"
    )
    print(f"throughput {rps:,.0f} requests/s   {mark(rps > 1000)} target > 1,000")
    print(
        f"latency p50 {p50:.2f} ms, p99 {p99:.2f} ms   {mark(p99 is not None and p99 < 20)} "
        "target p99 < 20 ms"
    )
    print(
        f"after SIGKILL: {check['lost']} acknowledged observations lost, {check['extra']} "
        f"extra, {check['state_mismatches']} of {check['series_checked']} series states differ "
        f"from an offline replay (max |difference| {check['max_state_difference']:.2g})"
    )
    for line in result["errors"][:5]:
        print("  error:", line)
    emit_json(
        {
            "requests": count,
            "accepted": len(result["acknowledged"]),
            "errors": len(result["errors"]),
            "seconds": result["elapsed"],
            "requests_per_second": rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "series": args.series,
            "clients": args.clients,
            **check,
            "targets": {"p99_ms": 20, "requests_per_second": 1000},
            "passed": bool(
                rps > 1000
                and p99 is not None
                and p99 < 20
                and check["lost"] == 0
                and check["state_mismatches"] == 0
                and check["extra"] == 0
            ),
            "machine": machine_info(),
        }
    )


if __name__ == "__main__":
    main()
