"""Real servers of the end-to-end test (and the look-latency benchmark), each in its own process:
Debian's Prometheus, and the two-version model server of ``model_server.py``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scaleguard.service._background import free_port

SCRAPE = "500ms"  # time-compressed: Prometheus's default is 1m


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


class Prometheus:
    """Debian's prometheus on a free loopback port with its data in ``folder``; stop and
    start again on the same port and data, as an operator restarting it would."""

    def __init__(self, folder: Path, target: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "prometheus.yml"
        self.config.write_text(
            f"global:\n  scrape_interval: {SCRAPE}\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: model\n    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={self.config}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url + "/-/ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@contextmanager
def model_server() -> Iterator[str]:
    """The model server of ``model_server.py`` in a child process; yields its URL."""
    child = subprocess.Popen([sys.executable, str(Path(__file__).with_name("model_server.py"))],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        yield f"http://127.0.0.1:{int(child.stdout.readline())}"
    finally:
        child.terminate()
        child.wait(timeout=10)
