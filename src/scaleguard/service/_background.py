"""Run an app on a loopback port in a background thread (tests, benchmarks, notebooks)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

__all__ = ["BackgroundServer", "free_port", "serve_process"]

_START_TIMEOUT_S = 30.0  # uvicorn starts in well under a second; a slow CI box gets slack


class BackgroundServer:
    """A uvicorn server for ``app`` on ``127.0.0.1`` and a free port, stopped on exit.

    The socket is bound before the thread starts, so :attr:`url` is known at once and no other
    process can take the port in between.

    Examples
    --------
    >>> from scaleguard.service import ServiceSettings, create_app
    >>> import httpx
    >>> with BackgroundServer(create_app(ServiceSettings(store=":memory:"))) as server:
    ...     httpx.get(server.url + "/healthz").json()["status"]
    'ok'
    """

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]}, daemon=True,
                                        name=f"scaleguard-service-{self.port}")

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start on {self.url}")
            time.sleep(0.01)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=_START_TIMEOUT_S)
        self._socket.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may take it before you do)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve_process(store: str, token_file: str, port: int,
                  timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """``scaleguard serve`` on ``127.0.0.1:port`` in a child process, returned once
    ``/healthz`` answers (the caller stops it). For crash tests and load tests."""
    import httpx

    code = ("import sys; from scaleguard.cli import main; "
            f"sys.exit(main(['serve', '--store', {store!r}, '--port', '{port}', "
            f"'--token-file', {token_file!r}]))")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            error = child.stderr.read().decode(errors="replace") if child.stderr else ""
            raise RuntimeError(f"scaleguard serve exited during start-up: {error.strip()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return child
        except httpx.HTTPError:
            time.sleep(0.1)
    child.kill()
    child.wait()
    raise RuntimeError(f"scaleguard serve did not answer on port {port} within {timeout:g} s")
