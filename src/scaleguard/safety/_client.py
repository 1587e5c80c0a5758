"""The application SDK: assign units to a rollout's arms and record what they saw.

:class:`RolloutClient` (threads) and :class:`AsyncRolloutClient` (asyncio) keep the rollout's
latest :class:`~scaleguard.safety.Assignment` from ``GET /api/v1/rollouts/{id}/assignment``
and refresh it in the background every ``ttl`` seconds, so ``assign()`` is a hash and a few
comparisons on the caller's path (only the very first call may wait, for the first fetch).
``record()`` sums observations in memory (:class:`~scaleguard.safety._recorder.WindowRecorder`)
and a background flush sends them as windows with ids to
``POST /api/v1/rollouts/{id}/observations``; a window that was not acknowledged is sent again,
same id, same numbers, and the service counts it once.

Fail safe: every unit gets ``"control"`` when the rollout is held, rolled back or unknown, and
when no fresh state has been read for ``deadline`` seconds (the service unreachable). Needs only
httpx (the ``client`` extra); it imports neither pandas nor FastAPI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from scaleguard.errors import InputError
from scaleguard.safety._assignment import Arm, Assignment, unit_bucket
from scaleguard.safety._recorder import WindowRecorder, check_value
from scaleguard.safety._units import FirstSeen

__all__ = ["DEFAULT_DEADLINE_S", "DEFAULT_FLUSH_S", "AsyncRolloutClient", "RolloutClient"]

log = logging.getLogger("scaleguard.client")

# Past a minute without a fresh state a client no longer knows whether the rollout was rolled
# back (a rollback answers within one look): it serves control until it hears again.
DEFAULT_DEADLINE_S = 60.0
DEFAULT_FLUSH_S = 5.0  # windows a few seconds long: the service decides on fresh data
DEFAULT_TIMEOUT_S = 2.0  # per request; the caller's path never waits on one after the first
MAX_ROWS_PER_POST = 5_000  # half the service's MAX_OBSERVATION_ROWS per request
MAX_PENDING_POSTS = 1_000  # unsent windows kept while the service is away (oldest dropped)
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# An assignment is a few kilobytes; an answer larger than this is not from a scaleguard
# service (a misrouted URL, a hostile proxy) and is not read further: no unbounded buffer.
MAX_ANSWER_BYTES = 1 << 20


def _parsed(status: int, body: bytes | None) -> Any:
    """The JSON of a 200 answer's ``body``, or None: cut short, not JSON, too deeply nested
    (RecursionError, which is no ValueError) all read as a malformed assignment."""
    if status != 200 or body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class _Reading:
    """Bounds one answer's body: at most MAX_ANSWER_BYTES, within ``timeout`` seconds in all
    (httpx's timeout is per read: a server trickling a byte a second never trips it)."""

    def __init__(self, timeout: float) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.until = time.monotonic() + timeout

    def take(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once the answer is too large or too slow (stop reading)."""
        self.size += len(chunk)
        if self.size > MAX_ANSWER_BYTES or time.monotonic() > self.until:
            self.chunks = []
            return False
        self.chunks.append(chunk)
        return True

    def read(self, response: Any) -> bool:
        """Read an httpx streamed ``response``; whether it ended within the bounds."""
        return all(self.take(chunk) for chunk in response.iter_bytes())

    async def take_all(self, response: Any) -> bool:
        """:meth:`read` for an httpx async streamed ``response``."""
        async for chunk in response.aiter_bytes():
            if not self.take(chunk):
                return False
        return True

    def body(self, complete: bool) -> bytes | None:
        return b"".join(self.chunks) if complete else None

    def text(self) -> str:
        """A complete answer's body as text (a post's answer, for the log)."""
        return b"".join(self.chunks).decode("utf-8", "replace")


class _Core:
    """What both clients share: the cached assignment, the windows and the unsent posts.

    The I/O (httpx, threads or asyncio) lives in the clients; this part is synchronous and
    guarded by one lock, so that ``record()`` from many threads and a flush never interleave.
    """

    def __init__(self, url: str, rollout: str, token: str | None, ttl: float | None,
                 deadline: float, flush_interval: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"url: expected http://HOST:PORT or https://..., got {url!r}")
        if not rollout:
            raise InputError("rollout: expected the rollout's id")
        for name, value in (("deadline", deadline), ("flush_interval", flush_interval),
                            ("ttl", 1.0 if ttl is None else ttl)):
            if not value > 0:
                raise InputError(f"{name}: expected a number of seconds > 0, got {value!r}")
        self.url = url.rstrip("/")
        self.rollout = rollout
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.ttl = ttl
        self.deadline = deadline
        self.flush_interval = flush_interval
        self.assignment: Assignment | None = None
        self.fresh_at = -float("inf")  # monotonic time of the last answer from the service
        self.etag: str | None = None
        self.lock = threading.Lock()
        self.recorder = WindowRecorder(f"{rollout}-{uuid.uuid4().hex[:12]}")
        self.seen = FirstSeen()  # which units this stage has counted (the SRM's units)
        self.pending: deque[list[dict[str, Any]]] = deque()
        self.stats = {"recorded": 0, "outside": 0, "dropped": 0, "posts": 0, "retries": 0,
                      "rejected": 0}
        self.path = f"/api/v1/rollouts/{rollout}"

    # -- the caller's path -----------------------------------------------------------------
    def current(self) -> Assignment | None:
        """The assignment to serve from: None when stale past the deadline (fail safe)."""
        assignment = self.assignment
        if assignment is None or time.monotonic() - self.fresh_at > self.deadline:
            return None
        return assignment

    def assign(self, unit_id: Any, segments: dict[str, Any]) -> Arm:
        assignment = self.current()
        if assignment is None:
            return "control"
        return assignment.arm(unit_bucket(assignment.salt, unit_id), segments)

    def record(self, unit_id: Any, metric: str, value: Any, segments: dict[str, Any]) -> None:
        assignment = self.current()
        if assignment is None:
            with self.lock:
                self.stats["dropped"] += 1  # no trusted state: the unit's arm is not known
            return
        info = assignment.metric(metric)
        if info.source != "observations":
            raise InputError(f"metric: {metric!r} is read from {info.source} by the service; "
                             "recording it too would count it twice")
        number = check_value(info, value)
        arm = assignment.observed_arm(unit_bucket(assignment.salt, unit_id), segments)
        if arm is None:
            with self.lock:
                self.stats["outside"] += 1
            return
        values = tuple(str(segments[d]) for d in assignment.segments)
        key = FirstSeen.key(info.name, unit_id)  # the hash outside the lock: threads overlap
        with self.lock:
            new_unit = self.seen.mark(assignment.stage, key)
            self.recorder.add(assignment.stage, arm, info, number, values, new_unit)
            self.stats["recorded"] += 1

    # -- what the I/O loops call -------------------------------------------------------------
    def refresh_every(self) -> float:
        if self.ttl is not None:
            return self.ttl
        return self.assignment.ttl_s if self.assignment is not None else 1.0

    def fetched(self, status: int, etag: str | None, body: Any) -> None:
        """Take the assignment endpoint's answer (200, 304; 404: no such rollout)."""
        if status == 304 and self.assignment is not None:
            self.fresh_at = time.monotonic()
        elif status == 200:
            self.assignment = Assignment.from_dict(body, f"{self.url}{self.path}/assignment")
            # Sent back as If-None-Match: one httpx cannot encode (not ASCII) failed every
            # later refresh, and the client served control for good.
            self.etag = etag if etag is not None and etag.isascii() and etag.isprintable() \
                else None
            self.fresh_at = time.monotonic()
        elif status in (401, 403, 404):
            # Not this client's rollout (or not allowed to read it): serve control at once.
            log.error("%s%s/assignment: HTTP %d; serving control", self.url, self.path, status)
            self.assignment, self.etag = None, None

    def cut(self) -> None:
        """Close the current windows into posts of at most MAX_ROWS_PER_POST rows."""
        assignment = self.assignment
        dims = tuple(assignment.segments) if assignment is not None else ()
        with self.lock:
            rows = self.recorder.cut(dims, time.time())
            for start in range(0, len(rows), MAX_ROWS_PER_POST):
                self.pending.append(rows[start:start + MAX_ROWS_PER_POST])
            while len(self.pending) > MAX_PENDING_POSTS:
                lost = self.pending.popleft()
                self.stats["dropped"] += len(lost)
                log.error("%s: %d unsent windows dropped (service away too long)", self.url,
                          len(lost))

    def next_post(self) -> list[dict[str, Any]] | None:
        with self.lock:
            return self.pending[0] if self.pending else None

    def posted(self, rows: list[dict[str, Any]], status: int | None, text: str = "") -> bool:
        """Take a post's outcome (None: no answer); whether to send the next one now."""
        with self.lock:
            if status is None or status in _RETRY_STATUS:
                self.stats["retries"] += 1
                return False  # kept, same window ids: sent again at the next flush
            if self.pending and self.pending[0] is rows:
                self.pending.popleft()
            if status >= 400:  # the service refused the rows: resending cannot help
                self.stats["rejected"] += len(rows)
                log.error("%s%s/observations: HTTP %d, %d rows refused: %s", self.url,
                          self.path, status, len(rows), text[:300])
            else:
                self.stats["posts"] += 1
            return True


class _Face:
    """The settings and read-only views both clients share (see :class:`RolloutClient`)."""

    def __init__(self, url: str, *, rollout: str, token: str | None = None,
                 ttl: float | None = None, deadline: float = DEFAULT_DEADLINE_S,
                 flush_interval: float = DEFAULT_FLUSH_S, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: Any = None) -> None:
        self._core = _Core(url, rollout, token, ttl, deadline, flush_interval)
        self._timeout = timeout
        self._open(transport)

    def _open(self, transport: Any) -> None:
        raise NotImplementedError

    @property
    def assignment(self) -> Assignment | None:
        """The state served from (None: control for everyone)."""
        return self._core.current()

    @property
    def stats(self) -> dict[str, int]:
        """Counts: recorded, outside the experiment, dropped, posts, retries, rejected rows."""
        return dict(self._core.stats)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core.url!r}, rollout={self._core.rollout!r})"


class RolloutClient(_Face):
    """Assign units to a rollout and record their outcomes, from any thread.

    Parameters
    ----------
    url:
        The scaleguard service, e.g. ``http://127.0.0.1:8321``.
    rollout:
        The rollout's id (``POST /api/v1/rollouts`` answers it).
    token:
        A bearer token: reads need one unless the service has open reads; ``record`` needs one.
    ttl:
        Seconds a cached state is served before the background refresh (default: the plan's
        ``assignment.ttl``, 5 s).
    deadline:
        Seconds without an answer from the service after which every unit gets ``"control"``.
    flush_interval:
        Seconds between background flushes of the recorded windows.
    timeout:
        Seconds per request.
    transport:
        An ``httpx`` transport (tests pass a proxy that drops answers).

    Examples
    --------
    >>> client = RolloutClient("http://127.0.0.1:9", rollout="none", deadline=0.1, timeout=0.1)
    >>> client.assign("user-1", region="us")   # nothing listens on port 9: fail safe
    'control'
    >>> client.close()
    """

    def _open(self, transport: Any) -> None:
        import httpx

        self._http = httpx.Client(base_url=self._core.url, timeout=self._timeout,
                                  transport=transport, headers=self._core.headers)
        self._first = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._send = threading.Lock()  # one flush at a time: windows leave in order
        self._thread = threading.Thread(target=self._loop,
                                        name=f"scaleguard-{self._core.rollout}",
                                        daemon=True)
        self._thread.start()

    # -- the application's calls -----------------------------------------------------------
    def assign(self, unit_id: Any, **segments: Any) -> Arm:
        """``"treatment"`` or ``"control"`` for ``unit_id`` with its ``segments``.

        Sticky (the same unit keeps its arm while traffic grows) and fail safe. Pass every
        segment dimension of the plan (``region="eu"``): a unit without one is served control.
        """
        if not self._first.is_set():
            self._first.wait(self._timeout)
        return self._core.assign(unit_id, segments)

    def record(self, unit_id: Any, metric: str, value: float, **segments: Any) -> None:
        """Count ``value`` of ``metric`` for ``unit_id`` (0/1 for a rate; a number for a mean
        or a quantile), in the arm ``assign`` gives it; units outside the experiment are not
        counted. Sent by the next flush."""
        if not self._first.is_set():
            self._first.wait(self._timeout)
        self._core.record(unit_id, metric, value, segments)

    def flush(self) -> bool:
        """Send every recorded window now; True when all were acknowledged."""
        self._core.cut()
        with self._send:
            while (rows := self._core.next_post()) is not None:
                if not self._core.posted(rows, *self._post(rows)):
                    return False
                self._wake.set()  # the service decided: read the new state soon
        return True

    def refresh(self) -> None:
        """Read the rollout's state now (the background thread does this every ``ttl``)."""
        import httpx

        headers = {"If-None-Match": self._core.etag} if self._core.etag else {}
        try:
            status, etag, body = self._get(f"{self._core.path}/assignment", headers)
        except httpx.HTTPError as exc:
            log.warning("%s: assignment not refreshed (%s)", self._core.url, exc)
            return
        finally:
            self._first.set()
        try:
            self._core.fetched(status, etag, _parsed(status, body))
        except InputError as exc:
            log.error("%s", exc)

    def _get(self, path: str, headers: dict[str, str]) -> tuple[int, str | None, bytes | None]:
        """Status, ETag and body (None: too large or too slow) of a GET."""
        reading = _Reading(self._timeout)
        with self._http.stream("GET", path, headers=headers) as response:
            complete = reading.read(response)
            return response.status_code, response.headers.get("etag"), reading.body(complete)

    def close(self) -> None:
        """Stop the background thread, flush what was recorded, close the connections."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._timeout * 2 + 1)
        try:
            self.flush()
        finally:
            self._http.close()

    def __enter__(self) -> RolloutClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the background thread ---------------------------------------------------------------
    def _post(self, rows: list[dict[str, Any]]) -> tuple[int | None, str]:
        import httpx

        reading = _Reading(self._timeout)
        try:
            with self._http.stream("POST", f"{self._core.path}/observations",
                                   json={"rows": rows}) as response:
                complete = reading.read(response)
                status = response.status_code
        except httpx.HTTPError as exc:
            log.warning("%s: windows not sent yet (%s)", self._core.url, exc)
            return None, ""
        if not complete:  # the answer never ended in time: as if none came (sent again)
            return None, ""
        return status, reading.text()

    def _loop(self) -> None:
        refresh_at = flush_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._wake.is_set():
                self._wake.clear()
                refresh_at = min(refresh_at, now)
            try:
                if now >= refresh_at:
                    self.refresh()
                    refresh_at = time.monotonic() + self._core.refresh_every()
                if now >= flush_at:
                    self.flush()
                    flush_at = time.monotonic() + self._core.flush_interval
            except Exception:  # the thread must outlive any one bad answer; it tries again
                log.exception("%s: background refresh or flush failed", self._core.url)
                refresh_at = flush_at = time.monotonic() + self._core.refresh_every()
            self._wake.wait(max(0.0, min(refresh_at, flush_at) - time.monotonic()))


class AsyncRolloutClient(_Face):
    """:class:`RolloutClient` for asyncio applications (httpx.AsyncClient, a background task).

    ``assign`` and ``record`` are plain calls (they never wait: no ``await``); ``flush``,
    ``refresh`` and ``aclose`` are coroutines. Use it as ``async with``: entering reads the
    state once, and starts the task that refreshes it and flushes the windows.
    """

    def _open(self, transport: Any) -> None:
        import httpx

        self._http = httpx.AsyncClient(base_url=self._core.url, timeout=self._timeout,
                                       transport=transport, headers=self._core.headers)
        self._task: asyncio.Task[None] | None = None
        self._send = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closing = False

    def assign(self, unit_id: Any, **segments: Any) -> Arm:
        """As :meth:`RolloutClient.assign` (control until the first state is read)."""
        return self._core.assign(unit_id, segments)

    def record(self, unit_id: Any, metric: str, value: float, **segments: Any) -> None:
        """As :meth:`RolloutClient.record`."""
        self._core.record(unit_id, metric, value, segments)

    async def refresh(self) -> None:
        """Read the rollout's state now."""
        import httpx

        headers = {"If-None-Match": self._core.etag} if self._core.etag else {}
        reading = _Reading(self._timeout)
        try:
            async with self._http.stream("GET", f"{self._core.path}/assignment",
                                         headers=headers) as response:
                complete = await reading.take_all(response)
                status, etag = response.status_code, response.headers.get("etag")
            self._core.fetched(status, etag, _parsed(status, reading.body(complete)))
        except (httpx.HTTPError, InputError) as exc:
            log.warning("%s: assignment not refreshed (%s)", self._core.url, exc)

    async def flush(self) -> bool:
        """Send every recorded window now; True when all were acknowledged."""
        import httpx

        self._core.cut()
        async with self._send:
            while (rows := self._core.next_post()) is not None:
                reading = _Reading(self._timeout)
                outcome: tuple[int | None, str] = (None, "")
                try:
                    async with self._http.stream("POST", f"{self._core.path}/observations",
                                                 json={"rows": rows}) as response:
                        complete = await reading.take_all(response)
                        if complete:  # else: as if no answer came; sent again
                            outcome = (response.status_code, reading.text())
                except httpx.HTTPError as exc:
                    log.warning("%s: windows not sent yet (%s)", self._core.url, exc)
                if not self._core.posted(rows, *outcome):
                    return False
                self._wake.set()
        return True

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + self._core.refresh_every()
        flush_at = loop.time() + self._core.flush_interval
        while not self._closing:
            # A flag, not task.cancel(): Python 3.11's wait_for can swallow a cancellation.
            woken = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({woken}, timeout=max(0.0, min(refresh_at, flush_at) - loop.time()))
            woken.cancel()
            if self._closing:
                return
            if self._wake.is_set():
                self._wake.clear()
                refresh_at = loop.time()
            try:
                if loop.time() >= refresh_at:
                    await self.refresh()
                    refresh_at = loop.time() + self._core.refresh_every()
                if loop.time() >= flush_at:
                    await self.flush()
                    flush_at = loop.time() + self._core.flush_interval
            except Exception:  # the task must outlive any one bad answer; it tries again
                log.exception("%s: background refresh or flush failed", self._core.url)
                refresh_at = flush_at = loop.time() + self._core.refresh_every()

    async def start(self) -> None:
        """Read the state once and start the background task (``async with`` does this)."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def aclose(self) -> None:
        """Stop the background task, flush what was recorded, close the connections."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncRolloutClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
