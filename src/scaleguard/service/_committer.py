"""Group commit: many clients' batches stored in few transactions, each acknowledged only once
its transaction has committed.

Every commit of a DuckDB file costs a write-ahead-log flush, whatever its size, so one
transaction per request caps the service at one batch per flush. Here request threads hand
their batches to one writer thread and wait; the writer takes everything waiting (up to
:data:`MAX_GROUP_POINTS`), merges the batches of each run into one, writes it in one
transaction, and only then wakes the requests, which answer 2xx. When a group's transaction
fails, nothing of it is stored and each of its batches is written again in a transaction of its
own: only the batch at fault fails, and an acknowledgement still always means committed.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np

from scaleguard.monitor import Batch

__all__ = ["MAX_GROUP_POINTS", "GroupCommitter", "merge_batches"]

# 200,000 points is one transaction of ~5 MB of Arrow data: large enough to amortise the flush,
# small enough that the requests of a group wait well under a second on a laptop.
MAX_GROUP_POINTS = 200_000


def merge_batches(batches: list[Batch]) -> Batch:
    """One batch holding the points, events and alerts of ``batches`` (all of one run), in order.

    Examples
    --------
    >>> one = Batch("r", np.array([1]), np.zeros(1), ["loss"], np.array([2.0]))
    >>> two = Batch("r", np.array([2, 3]), np.zeros(2), ["loss", "loss"], np.array([1.5, 1.0]))
    >>> merge_batches([one, two]).steps.tolist()
    [1, 2, 3]
    """
    if len(batches) == 1:
        return batches[0]
    return Batch(
        run_id=batches[0].run_id,
        steps=np.concatenate([np.asarray(b.steps, dtype=np.int64) for b in batches]),
        times=np.concatenate([np.asarray(b.times, dtype=np.float64) for b in batches]),
        names=[name for b in batches for name in b.names],
        values=np.concatenate([np.asarray(b.values, dtype=np.float64) for b in batches]),
        events=[e for b in batches for e in b.events],
        alerts=[a for b in batches for a in b.alerts],
    )


class GroupCommitter:
    """One writer thread in front of a store; :meth:`submit` returns when to answer."""

    def __init__(self, store: Any, max_points: int = MAX_GROUP_POINTS) -> None:
        self.store = store
        self.max_points = max_points
        self.transactions = 0  # how many commits the batches took (for tests and /metrics)
        self.batches = 0
        self._queue: queue.Queue[tuple[Batch, Future[None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="scaleguard-group-commit")
        self._thread.start()

    def submit(self, batch: Batch) -> Future[None]:
        """Queue ``batch``; the future completes when it is committed (or fails with the
        store's error)."""
        done: Future[None] = Future()
        if not self._thread.is_alive():
            raise RuntimeError("the group committer is closed")
        self._queue.put((batch, done))
        return done

    def write(self, batch: Batch) -> None:
        """Queue ``batch`` and wait until it is committed."""
        self.submit(batch).result()

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, points, stopping = [first], len(first[0]), False
            while points < self.max_points:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                points += len(item[0])
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[tuple[Batch, Future[None]]]) -> None:
        by_run: dict[str, list[tuple[Batch, Future[None]]]] = {}
        for batch, done in group:
            by_run.setdefault(batch.run_id, []).append((batch, done))
        for items in by_run.values():
            try:
                self.store.write(merge_batches([batch for batch, _ in items]))
            except Exception as exc:  # noqa: BLE001 - handed to the request(s) at fault
                if len(items) == 1:
                    items[0][1].set_exception(exc)
                else:  # one bad batch must not fail the innocent ones committed with it
                    for item in items:
                        self._write_alone(item)
                continue
            self.transactions += 1
            self.batches += len(items)
            for _, done in items:
                done.set_result(None)

    def _write_alone(self, item: tuple[Batch, Future[None]]) -> None:
        batch, done = item
        try:
            self.store.write(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            done.set_exception(exc)
            return
        self.transactions += 1
        self.batches += 1
        done.set_result(None)
