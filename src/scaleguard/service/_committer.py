"""Group commit: many clients' batches stored in few transactions, each acknowledged only once
its transaction has committed.

Every commit costs a write-ahead-log flush, whatever its size, so one transaction per request
caps the service at one batch per flush. Here request threads hand their batches to one writer
thread and wait; the writer takes everything waiting (up to :data:`MAX_GROUP_POINTS`), writes
it with :meth:`Store.write_many` in one transaction (each batch keeps its idempotency key), and
only then wakes the requests, which answer 2xx (or "duplicate" for a key stored before). When a
group's transaction fails, nothing of it is stored and each of its batches is written again in
a transaction of its own: only the batch at fault fails, and an acknowledgement still always
means committed.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from scaleguard.monitor import Batch, Store

__all__ = ["MAX_GROUP_POINTS", "GroupCommitter"]

# 200,000 points is one transaction of ~5 MB of Arrow data: large enough to amortise the flush,
# small enough that the requests of a group wait well under a second on a laptop.
MAX_GROUP_POINTS = 200_000


class GroupCommitter:
    """One writer thread in front of a store; :meth:`submit` returns when to answer."""

    def __init__(self, store: Store, max_points: int = MAX_GROUP_POINTS) -> None:
        self.store = store
        self.max_points = max_points
        self.transactions = 0  # how many commits the batches took (for tests and /metrics)
        self.batches = 0
        self._queue: queue.Queue[tuple[Batch, Future[bool]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="scaleguard-group-commit")
        self._thread.start()

    def submit(self, batch: Batch) -> Future[bool]:
        """Queue ``batch``; the future completes when it is committed (True; False when its key
        was stored before) or fails with the store's error."""
        done: Future[bool] = Future()
        # Running from the start: a request that goes away (its asyncio task cancelled, and
        # with it a wrapped future) must not cancel a batch the writer may be committing;
        # set_result on a cancelled future would raise in the writer thread and stop it.
        done.set_running_or_notify_cancel()
        if not self._thread.is_alive():
            raise RuntimeError("the group committer is closed")
        self._queue.put((batch, done))
        return done

    def write(self, batch: Batch) -> bool:
        """Queue ``batch`` and wait until it is committed; False when its key was stored."""
        return self.submit(batch).result()

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

    def _commit(self, group: list[tuple[Batch, Future[bool]]]) -> None:
        try:
            stored = self.store.write_many([batch for batch, _ in group])
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) at fault
            if len(group) == 1:
                group[0][1].set_exception(exc)
            else:  # one bad batch must not fail the innocent ones committed with it
                for item in group:
                    self._write_alone(item)
            return
        self.transactions += 1
        self.batches += len(group)
        for (_, done), fresh in zip(group, stored, strict=True):
            done.set_result(fresh)

    def _write_alone(self, item: tuple[Batch, Future[bool]]) -> None:
        batch, done = item
        try:
            fresh = self.store.write(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            done.set_exception(exc)
            return
        self.transactions += 1
        self.batches += 1
        done.set_result(fresh)
