"""Two ``scaleguard serve`` replicas on one PostgreSQL store, as a team would run them.

Eight writers send keyed batches round-robin to both; one replica is SIGKILLed mid-load and
its writers carry on at the other with the same keys. Afterwards every acknowledged batch is
stored, every step exactly once. Rollout decisions posted to both replicas at once are
serialised by the rollout's row lock: each decision number is taken exactly once.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid

import httpx
import pytest

from scaleguard.monitor import PostgresStore
from scaleguard.service._background import free_port, serve_process

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITERS, BATCHES, SIZE = 8, 30, 100
SLOW = 60.0


@pytest.fixture(scope="module")
def shared_db(pg_cluster):
    return pg_cluster.database()


@pytest.fixture(scope="module")
def replicas(shared_db, tmp_path_factory):
    """Two replicas for this module's tests (start-up is the slow part): the decision test
    runs first, then the load test kills one of them."""
    tokens = tmp_path_factory.mktemp("replicas") / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    started = []
    try:
        for _ in range(2):
            port = free_port()
            started.append((serve_process(shared_db, str(tokens), port),
                            f"http://127.0.0.1:{port}"))
        yield started
    finally:
        for process, _ in started:
            process.kill()
            process.wait(timeout=30)


def _writer(urls: list[str], run: str, writer: int, acked: list[str], lock: threading.Lock,
            errors: list[str]) -> None:
    clients = [httpx.Client(base_url=u, headers=AUTH, timeout=SLOW) for u in urls]
    for b in range(BATCHES):
        key = f"w{writer}-b{b}-{uuid.uuid4().hex[:6]}"
        first = steps_from = (writer * BATCHES + b) * SIZE
        body = {"steps": list(range(steps_from, first + SIZE)), "names": ["loss"] * SIZE,
                "values": [1.0] * SIZE}
        for attempt in range(4):  # round-robin; a dead replica's batch goes to the other
            client = clients[(b + attempt) % len(clients)]
            try:
                answer = client.post(f"/api/v1/runs/{run}/batches", json=body,
                                     headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                continue
            if answer.status_code in (200, 201):
                with lock:
                    acked.append(key)
                break
            errors.append(answer.text)
    for client in clients:
        client.close()


PLAN = {"name": "shared-plan",
        "stages": [{"name": "pilot", "traffic": 0.01, "min_duration": "0s"},
                   {"name": "all", "traffic": 1.0}],
        "metrics": [{"name": "harm", "kind": "rate", "direction": "lower_is_better",
                     "guardrail": 0.05, "margin": 0.01}]}


def test_two_replicas_never_decide_the_same_look_twice(replicas):
    urls = [url for _, url in replicas]
    made = httpx.post(f"{urls[0]}/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "shared"},
                      headers=AUTH, timeout=SLOW)
    assert made.status_code == 201, made.text
    answers: list[int] = []

    def look(i: int) -> None:
        with httpx.Client(base_url=urls[i % 2], headers=AUTH, timeout=SLOW) as client:
            for _ in range(5):
                answers.append(client.post("/api/v1/rollouts/shared/observations",
                                           json={"rows": []}).status_code)

    threads = [threading.Thread(target=look, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers == [200] * 30
    audit = httpx.get(f"{urls[1]}/api/v1/rollouts/shared/audit", headers=AUTH,
                      timeout=SLOW).json()
    state = httpx.get(f"{urls[0]}/api/v1/rollouts/shared", headers=AUTH, timeout=SLOW).json()
    assert state["decisions"] == 30 == len(audit)  # no decision lost to a race


def test_two_replicas_eight_writers_one_killed_nothing_acknowledged_lost(replicas, shared_db):
    (doomed, doomed_url), (_, survivor_url) = replicas
    run = httpx.post(f"{doomed_url}/api/v1/runs", json={"name": "shared"}, headers=AUTH,
                     timeout=SLOW).json()["run_id"]
    acked: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    writers = [threading.Thread(target=_writer,
                                args=([doomed_url, survivor_url], run, w, acked, lock, errors))
               for w in range(WRITERS)]
    for thread in writers:
        thread.start()
    while len(acked) < WRITERS * BATCHES // 4 and any(t.is_alive() for t in writers):
        threading.Event().wait(0.01)
    doomed.send_signal(signal.SIGKILL)  # mid-load, with requests in flight
    for thread in writers:
        thread.join(timeout=300)
    assert errors == []
    assert len(acked) == WRITERS * BATCHES  # the survivor took every batch the dead one lost
    listed = httpx.get(f"{survivor_url}/api/v1/runs/{run}", headers=AUTH, timeout=SLOW).json()
    assert listed["points"] == WRITERS * BATCHES * SIZE  # acknowledged = stored
    with PostgresStore(shared_db, read_only=True) as store:
        assert all(store.batch_receipt(run, key) for key in acked)
        steps = store.series(run, "loss").steps.tolist()
    assert steps == list(range(WRITERS * BATCHES * SIZE))  # each step exactly once
