"""Group commit: concurrent batches share transactions, and an acknowledgement always means
committed (a failed transaction fails every request in it)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
from fastapi.testclient import TestClient

from scaleguard.monitor import Batch, DuckDBStore, RunInfo
from scaleguard.service import create_app
from scaleguard.service._committer import GroupCommitter


class GatedStore(DuckDBStore):
    """A store whose first write waits for a gate, so that others queue up behind it."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_next = False
        self.writes = 0

    def write_many(self, batches: Sequence[Batch]) -> list[bool]:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        return super().write_many(batches)


def points(run: str, start: int, n: int = 10) -> Batch:
    return Batch(run, np.arange(start, start + n), np.zeros(n), ["loss"] * n, np.ones(n))


def test_waiting_batches_are_committed_together_and_in_order():
    store = GatedStore()
    store.open_run(RunInfo("a", "a", "running", 0.0))
    store.open_run(RunInfo("b", "b", "running", 0.0))
    committer = GroupCommitter(store)
    first = committer.submit(points("a", 0))
    assert store.entered.wait(10)
    rest = [committer.submit(points("a" if i % 2 else "b", 10 * (i + 1))) for i in range(9)]
    assert not any(f.done() for f in [first, *rest])  # nobody is acknowledged before commit
    store.gate.set()
    for future in [first, *rest]:
        future.result(timeout=10)
    committer.close()
    assert committer.batches == 10
    assert committer.transactions == 2  # the first alone, then one for the other 9
    steps_a = store.series("a", "loss").steps
    assert len(steps_a) == 10 * 5 and list(steps_a) == sorted(steps_a)
    assert len(store.series("b", "loss").steps) == 10 * 5


def test_a_failed_transaction_fails_every_request_in_it_and_stores_none():
    store = GatedStore()
    store.open_run(RunInfo("a", "a", "running", 0.0))
    committer = GroupCommitter(store)
    first = committer.submit(points("a", 0))
    assert store.entered.wait(10)
    store.fail_next = True  # the first write fails; the queued group then succeeds
    grouped = [committer.submit(points("a", 10 * (i + 1))) for i in range(3)]
    store.gate.set()
    with pytest.raises(OSError, match="disk full"):
        first.result(timeout=10)
    for future in grouped:
        future.result(timeout=10)
    committer.close()
    assert len(store.series("a", "loss").steps) == 30  # the failed batch is not half-stored


def test_close_commits_what_is_queued():
    store = DuckDBStore(":memory:")
    store.open_run(RunInfo("a", "a", "running", 0.0))
    committer = GroupCommitter(store)
    futures = [committer.submit(points("a", 10 * i)) for i in range(20)]
    committer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(store.series("a", "loss").steps) == 200
    with pytest.raises(RuntimeError, match="closed"):
        committer.submit(points("a", 999))


def test_a_request_that_goes_away_neither_cancels_its_batch_nor_stops_the_writer():
    """A request awaits its batch on the event loop; cancelling that wait (a client gone)
    leaves the batch to be committed and the writer serving the next ones."""
    import asyncio

    store = GatedStore()
    store.open_run(RunInfo("a", "a", "running", 0.0))
    committer = GroupCommitter(store)
    first = committer.submit(points("a", 0))
    assert store.entered.wait(10)
    queued = committer.submit(points("a", 10))

    async def gone() -> None:
        waiting = asyncio.ensure_future(asyncio.wrap_future(queued))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    outcome: list[BaseException | None] = []

    def run() -> None:  # an event loop of its own (another test's may be running here)
        try:
            asyncio.run(gone())
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert outcome == [None]
    assert not queued.cancelled()
    store.gate.set()
    assert first.result(timeout=10) and queued.result(timeout=10)
    assert committer.write(points("a", 20)) is True  # the writer is still there
    committer.close()
    assert len(store.series("a", "loss").steps) == 30


def test_concurrent_retries_of_one_key_store_it_once(settings, auth):
    store = GatedStore()
    with TestClient(create_app(settings(), store=store)) as client:
        run = client.post("/api/v1/runs", json={"name": "r"}, headers=auth).json()["run_id"]
        body = {"steps": [1, 2], "names": ["loss"] * 2, "values": [1.0, 2.0]}
        headers = {**auth, "Idempotency-Key": "same-batch"}
        answers: list[int] = []

        def post() -> None:
            answers.append(client.post(f"/api/v1/runs/{run}/batches", json=body,
                                       headers=headers).status_code)

        first = threading.Thread(target=post)
        first.start()
        assert store.entered.wait(10)  # the first attempt is inside its transaction
        retries = [threading.Thread(target=post) for _ in range(3)]
        for thread in retries:
            thread.start()
        store.gate.set()
        for thread in [first, *retries]:
            thread.join(10)
        assert sorted(answers) == [200, 200, 200, 201]
        assert client.get(f"/api/v1/runs/{run}", headers=auth).json()["points"] == 2
