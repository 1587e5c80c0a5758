"""The service on a real loopback port: concurrent writers, the tracking API's remote sink,
retries, and a SIGKILLed server keeping every acknowledged batch."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid

import httpx
import pytest

from scaleguard.errors import InputError
from scaleguard.monitor import DuckDBStore, start
from scaleguard.service import create_app
from scaleguard.service._background import BackgroundServer, free_port, serve_process
from scaleguard.service.client import RemoteSink, ServiceUnavailable

TOKEN = "test-token-0123456789abcdef"  # conftest's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW = 60.0  # seconds an answer may take on a loaded CI machine


def _post_batches(url: str, run: str, thread: int, batches: int, size: int,
                  acked: list[str], errors: list[str]) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=SLOW) as client:
        for b in range(batches):
            key = f"t{thread}-b{b}-{uuid.uuid4().hex[:6]}"
            steps = list(range((thread * batches + b) * size, (thread * batches + b + 1) * size))
            try:
                response = client.post(f"/api/v1/runs/{run}/batches",
                                       json={"steps": steps, "names": ["loss"] * size,
                                             "values": [1.0] * size},
                                       headers={"Idempotency-Key": key})
            except httpx.HTTPError as exc:  # the server was killed under us
                errors.append(type(exc).__name__)
                return
            if response.status_code == 201:
                acked.append(key)
            else:
                errors.append(response.text)


def test_concurrent_writers_lose_no_point(tmp_path, settings):
    path = tmp_path / "concurrent.duckdb"
    app = create_app(settings(store=str(path)))
    threads, batches, size = 6, 10, 200
    acked: list[str] = []
    errors: list[str] = []
    with BackgroundServer(app) as server:
        run = httpx.post(server.url + "/api/v1/runs", json={"name": "many"},
                         headers=AUTH, timeout=SLOW).json()["run_id"]
        workers = [threading.Thread(target=_post_batches,
                                    args=(server.url, run, t, batches, size, acked, errors))
                   for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        listed = httpx.get(f"{server.url}/api/v1/runs/{run}", headers=AUTH, timeout=SLOW).json()
    assert errors == []
    assert len(acked) == threads * batches
    assert listed["points"] == threads * batches * size
    with DuckDBStore(path, read_only=True) as store:
        steps = store.series(run, "loss").steps
    assert len(steps) == threads * batches * size
    assert len(set(steps.tolist())) == len(steps)  # each point once: none lost, none doubled


def test_tracking_api_sends_to_the_service(settings):
    app = create_app(settings())
    with BackgroundServer(app) as server:
        with start("remote-run", {"lr": 3e-4}, url=server.url, token=TOKEN,
                   flush_every=0.05) as run:
            for step in range(1_000):
                spike = 40.0 if step == 700 else 0.0
                run.log({"loss": 3.0 / (1 + step) ** 0.3 + spike, "grad_norm": 1.0}, step=step)
            run.alert("checkpoint saved", severity="info", step=999)
        runs = httpx.get(server.url + "/api/v1/runs", headers=AUTH, timeout=SLOW).json()
        alerts = httpx.get(server.url + "/api/v1/alerts", headers=AUTH, timeout=SLOW).json()
    assert [(r["name"], r["status"], r["points"]) for r in runs] \
        == [("remote-run", "finished", 2_000)]
    assert runs[0]["config"] == {"lr": 3e-4}
    titles = {(a["title"], a["step"]) for a in alerts}
    assert ("spike in loss", 700) in titles and ("checkpoint saved", 999) in titles
    assert run.flush_errors == 0


def test_remote_sink_retries_through_outages_and_refuses_bad_requests(settings):
    from scaleguard.monitor import Batch, RunInfo

    app = create_app(settings())
    with BackgroundServer(app) as server:
        real = httpx.HTTPTransport()
        calls = {"n": 0}

        def flaky(request: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            if calls["n"] in (2, 3):  # the first batch meets two outages, then gets through
                return httpx.Response(503, json={"error": "restarting"})
            if calls["n"] == 4:
                raise httpx.ConnectError("connection refused", request=request)
            return real.handle_request(request)

        sink = RemoteSink(server.url, TOKEN, backoff=0.01, transport=httpx.MockTransport(flaky))
        sink.open_run(RunInfo("r1", "flaky", "running", time.time()))
        import numpy as np

        sink.write(Batch("r1", np.arange(3), np.zeros(3), ["loss"] * 3, np.ones(3)))
        assert sink.requests_retried == 3
        stored = httpx.get(server.url + "/api/v1/runs/r1", headers=AUTH, timeout=SLOW).json()
        assert stored["points"] == 3
        bad = RemoteSink(server.url, "wrong-token-0123456789", backoff=0.01)
        with pytest.raises(InputError, match="401"):
            bad.open_run(RunInfo("r2", "nope", "running", time.time()))
        assert bad.requests_retried == 0  # a 4xx is not retried
        sink.close()
        bad.close()
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    gone = RemoteSink(dead, TOKEN, retries=3, backoff=0.01)
    with pytest.raises(ServiceUnavailable, match="3 attempts"):
        gone.open_run(RunInfo("r3", "gone", "running", time.time()))
    with pytest.raises(InputError, match="url"):
        RemoteSink("127.0.0.1:8321", TOKEN)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkilled_server_keeps_every_acknowledged_batch(tmp_path):
    db, tokens = tmp_path / "killed.duckdb", tmp_path / "tokens"
    tokens.write_text(f"# writers\n{TOKEN}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve_process(str(db), str(tokens), port)
    try:
        run = httpx.post(url + "/api/v1/runs", json={"name": "killed"}, headers=AUTH,
                         timeout=SLOW).json()
        acked: list[str] = []
        errors: list[str] = []
        workers = [threading.Thread(target=_post_batches,
                                    args=(url, run["run_id"], t, 10_000, 100, acked, errors))
                   for t in range(4)]
        for worker in workers:
            worker.start()
        while len(acked) < 12:  # kill it mid-stream, with writes in flight
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        for worker in workers:
            worker.join(timeout=30)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert errors, "the writers should have seen the server die"
    with DuckDBStore(db, read_only=True) as store:
        # every acknowledged batch survived the kill
        assert all(store.batch_receipt(run["run_id"], key) for key in acked)
        points = store.runs()[0].points
    assert points is not None and points % 100 == 0  # each stored batch is whole
    assert points // 100 - len(acked) <= 4  # at most the batches in flight were unanswered
