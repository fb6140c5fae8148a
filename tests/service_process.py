"""A service in a subprocess, started and waited for: the service tests and bench/serve_load.py.

``lstmlab serve`` (or any command that calls ``lstmlab.live.http.run``) prints ``serving
on http://HOST:PORT`` once its socket listens, then warms up while ``/health`` answers 503
``starting``. ``ServiceProcess`` launches it, ``wait_open`` reads that line and
``wait_ready`` polls ``/health`` until the warm-up has ended. Standard library only, so the
benchmark imports it without the test dependencies (``sys.path`` holding the repository).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["ServiceProcess", "health", "serve_command", "start_service"]


def serve_command(folder: str | Path, *flags: str) -> list[str]:
    """The argv of ``lstmlab serve --model-dir FOLDER --port 0 FLAGS`` in this interpreter."""
    command = [sys.executable, "-m", "lstmlab", "serve", "--model-dir", str(folder)]
    return [*command, "--port", "0", *flags]


def health(url: str, timeout: float = 30) -> tuple[int, dict]:
    """``(status code, JSON answer)`` of ``GET URL/health``."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


class ServiceProcess:
    """A service subprocess (``argv``), with ``JAX_PLATFORMS=cpu`` and ``env`` on top.

    Attributes:
        process: the ``subprocess.Popen`` (stdout a text pipe).
        url: ``http://127.0.0.1:PORT`` once ``wait_open`` has read the port.
        port: the port it listens on.
        opened_seconds: from the launch until the port listened.
        ready_seconds: from the launch until ``/health`` stopped saying ``starting``.
    """

    def __init__(self, argv: list[str], *, env: dict | None = None, stderr=None) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
        )
        self.url = self.port = self.opened_seconds = self.ready_seconds = None

    def wait_open(self, host: str = "127.0.0.1") -> str:
        """Read the ``serving on http://HOST:PORT`` line; the URL to call (on the loopback)."""
        line = self.process.stdout.readline()
        if not line.startswith(f"serving on http://{host}:"):
            self.kill()
            error = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"the service did not start: {line!r} {error}")
        self.opened_seconds = time.perf_counter() - self.started
        self.port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    def wait_ready(self, seconds: float = 120) -> int:
        """Poll ``/health`` while it says ``starting`` (the warm-up); its final status code."""
        deadline = time.monotonic() + seconds
        while True:
            status, answer = health(self.url)
            if status != 503 or answer["status"] != "starting" or time.monotonic() > deadline:
                self.ready_seconds = time.perf_counter() - self.started
                return status
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the process and wait for it (its pipes closed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()


def start_service(folder: str | Path, *flags: str, env: dict | None = None) -> ServiceProcess:
    """``lstmlab serve`` on ``folder`` with ``flags``, open and warmed up (``/health`` 200)."""
    service = ServiceProcess(serve_command(folder, *flags), env=env)
    service.wait_open()
    status = service.wait_ready()
    if status != 200:
        service.kill()
        raise AssertionError(f"the service is not healthy after its warm-up: {status}")
    return service
