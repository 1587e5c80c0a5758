"""Acknowledgements lost for longer than the client's retry budget: stored = logged, exactly.

A loopback TCP proxy sits between the tracking client and the service. While it drops, it
forwards each request (the service stores the batch and answers) and throws the answer away,
closing the connection: the client sees a failure on every attempt, gives up after its retry
budget, and keeps the batch. Later flushes send the same batch again under the same key, and
the service recognises it.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import httpx
import numpy as np
import pytest

import scaleguard.monitor as sgm
from scaleguard.monitor import RemoteSink, ServiceUnavailable
from scaleguard.service import create_app
from scaleguard.service._background import BackgroundServer

TOKEN = "test-token-0123456789abcdef"  # conftest's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class DroppingProxy:
    """Forwards loopback TCP to ``upstream``; while :attr:`dropping`, answers are discarded
    and the client's connection closed once the upstream has answered."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.dropping = False
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        with client, server:
            while chunk := _recv(server):
                if self.dropping:  # the service answered: the batch is stored; lose the answer
                    self.dropped += 1
                    break
                client.sendall(chunk)
            # shutdown, not just close: it wakes the pump blocked in recv() on the same socket
            # and sends the client its FIN now
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        while chunk := _recv(source):
            try:
                sink.sendall(chunk)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_lost_acknowledgements_past_the_retry_budget_store_each_step_once(settings,
                                                                          backend_store):
    app = create_app(settings(store=backend_store))
    with BackgroundServer(app) as server:
        proxy = DroppingProxy((server.host, server.port))
        sink = RemoteSink(proxy.url, TOKEN, retries=3, backoff=0.01, timeout=10)
        run = sgm.start("lossy", sink=sink, flush_every=None, detectors="none")
        failures, step = 0, 0
        for flush in range(12):
            for _ in range(50):
                run.log({"loss": 1.0 / (1 + step)}, step=step)
                step += 1
            proxy.dropping = flush % 3 == 1  # every third flush: every answer lost
            try:
                run.flush()
            except ServiceUnavailable:
                failures += 1
        proxy.dropping = False
        run.finish()
        stored = httpx.get(f"{server.url}/api/v1/runs/{run.run_id}", headers=AUTH).json()
        series = httpx.get(f"{server.url}/api/v1/runs/{run.run_id}/series",
                           params={"metric": "loss", "max_points": 20_000}, headers=AUTH).json()
        sink.close()
        proxy.close()
    assert failures == 4 and proxy.dropped >= 4 * 3  # 4 flushes lost all 3 attempts' answers
    assert stored["points"] == step == 600  # stored = logged, exactly
    assert series["steps"] == list(range(600))  # each step once: none lost, none doubled
    assert np.allclose(series["values"], [1.0 / (1 + s) for s in range(600)])


def test_remote_sink_reports_a_batch_the_service_had(settings):
    with BackgroundServer(create_app(settings())) as server:
        sink = RemoteSink(server.url, TOKEN, backoff=0.01)
        sink.open_run(sgm.RunInfo("r1", "x", "running", 0.0))
        batch = sgm.Batch("r1", np.arange(3), np.zeros(3), ["loss"] * 3, np.ones(3), key="k-1")
        assert sink.write(batch) is True
        assert sink.write(batch) is False  # the same key: recognised, not stored again
        sink.close()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
