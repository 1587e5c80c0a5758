"""The SDK (``RolloutClient``, ``AsyncRolloutClient``) against a hostile service: answers too
large, too slow, too deeply nested or malformed. ``assign`` keeps failing safe to "control",
nothing but the documented InputError for bad arguments is raised, and no answer is read
further than ``MAX_ANSWER_BYTES`` or past the request's timeout in all.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.safety import AsyncRolloutClient, RolloutClient
from scaleguard.safety._assignment import Assignment, MetricInfo
from scaleguard.safety._client import MAX_ANSWER_BYTES

LIVE = Assignment(rollout_id="ro", status="live", stage="all", stage_index=0, traffic=1.0,
                  salt="s", metrics=(MetricInfo("harm", "rate"),)).as_dict()
CHUNK = 64 * 1024


class Counted:
    """A body streamed chunk by chunk, counting what the client pulled (``pause`` s apart)."""

    def __init__(self, chunks: int, chunk: bytes = b" " * CHUNK, pause: float = 0.0,
                 head: bytes = b"") -> None:
        self.chunks, self.chunk, self.pause, self.head = chunks, chunk, pause, head
        self.reads: list[int] = []  # bytes pulled by each read of the body (several threads)

    @property
    def pulled(self) -> int:
        """The most any one read pulled."""
        return max(self.reads, default=0)

    def __iter__(self) -> Iterator[bytes]:
        self.reads.append(0)
        read = len(self.reads) - 1
        for i in range(self.chunks):
            if self.pause:
                time.sleep(self.pause)
            part = self.head if i == 0 and self.head else self.chunk
            self.reads[read] += len(part)
            yield part



class AsyncCounted:
    """:class:`Counted` for the async client (an async-only stream)."""

    def __init__(self, body: Counted) -> None:
        self.body = body

    async def __aiter__(self) -> Any:
        for part in self.body:
            yield part


def _client(handler: Callable[[httpx.Request], httpx.Response], **options: Any
            ) -> RolloutClient:
    return RolloutClient("http://sdk.test", **{"rollout": "ro", "token": "t", "deadline": 30.0,
                                               "timeout": 0.3, **options},
                         transport=httpx.MockTransport(handler))


def _answers(assignment: Any, post: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/assignment"):
            return assignment() if callable(assignment) else httpx.Response(200, json=assignment)
        return post() if callable(post) else httpx.Response(200, json={"action": "continue"})
    return handle


def test_an_endless_answer_is_not_read_past_the_limit():
    # The whole body was read into memory before parsing (8 MiB here; any size from a
    # misrouted URL or a hostile proxy).
    body = Counted(chunks=128)  # 8 MiB of blanks: valid JSON whitespace, never an object
    client = _client(_answers(lambda: httpx.Response(200, content=body)))
    try:
        client.refresh()
        assert body.pulled <= MAX_ANSWER_BYTES + CHUNK
        assert client.assign("u1") == "control" and client.assignment is None
    finally:
        client.close()


def test_a_trickling_answer_is_cut_at_the_timeout_in_all():
    # httpx's timeout is per read: a byte every 20 ms never trips 0.3 s, and 200 of them took
    # 4 s of the background thread (or of close()) before.
    body = Counted(chunks=200, chunk=b" ", pause=0.02)
    client = _client(_answers(lambda: httpx.Response(200, content=body)))
    try:
        client.refresh()
        assert body.pulled < 100
        assert client.assign("u1") == "control"
    finally:
        client.close()


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_deeply_nested_answers_never_raise_from_the_client():
    # json raised RecursionError, which is no ValueError: refresh() raised it to the caller.
    client = _client(_answers(lambda: httpx.Response(200, content=DEEP)))
    try:
        client.refresh()
        assert client.assign("u1") == "control"
        client.record("u1", "harm", 1)  # no state: dropped, not raised
    finally:
        client.close()


def test_the_async_client_starts_and_serves_control_on_any_such_answer():
    async def run(answer: Callable[[], httpx.Response]) -> str:
        async with AsyncRolloutClient("http://sdk.test", rollout="ro", token="t", timeout=0.3,
                                      transport=httpx.MockTransport(_answers(answer))) as sdk:
            return sdk.assign("u1")

    served: list[str] = []

    def in_a_thread() -> None:  # a loop of its own: another test's may be running here
        for answer in (lambda: httpx.Response(200, content=DEEP),
                       lambda: httpx.Response(200, content=AsyncCounted(Counted(chunks=128))),
                       lambda: httpx.Response(200, content=b"\xff\xfe not json")):
            served.append(asyncio.run(run(answer)))

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(timeout=60)
    assert served == ["control"] * 3


def test_a_huge_answer_to_a_post_keeps_the_windows_for_a_retry():
    endless = Counted(chunks=128)
    client = _client(_answers(LIVE, lambda: httpx.Response(500, content=endless)))
    try:
        client.refresh()
        assert client.assign("u1") == "treatment"
        client.record("u1", "harm", 1)
        assert client.flush() is False  # not acknowledged: kept, the same window ids later
        assert endless.pulled <= MAX_ANSWER_BYTES + CHUNK
        assert client.stats["retries"] >= 1 and client.stats["rejected"] == 0
    finally:
        client.close()


# Any JSON, any status, any content-type: assign serves "control" or the one arm a valid
# state gives, record never raises but for its own bad arguments.
ANY_JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=20)
MUTATED = st.builds(lambda key, value: {**LIVE, key: value}, st.sampled_from(sorted(LIVE)),
                    ANY_JSON)


# The non-ASCII ETag was a finding: kept and sent back, it failed every later refresh.
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(ANY_JSON, MUTATED), status=st.sampled_from([200, 304, 404, 500, 302]),
       etag=st.sampled_from([None, '"x"', "é" * 3]))
def test_no_answer_makes_assign_or_record_raise(body, status, etag):
    headers = {"etag": etag.encode("utf-8")} if etag else {}  # raw bytes, as on the wire

    def answer() -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    client = _client(_answers(answer))
    try:
        client.refresh()
        client.refresh()  # with the etag it may have kept
        assert client.assign("u1", region="us") in ("control", "treatment")
        try:
            client.record("u1", "harm", 1, region="us")
        except Exception as exc:  # only the documented refusal of a metric it cannot record
            from scaleguard.errors import InputError

            assert isinstance(exc, InputError), exc
    finally:
        client.close()


@pytest.mark.parametrize("status", [200, 500])
def test_a_dead_service_after_a_good_state_fails_safe_past_the_deadline(status):
    state = {"answer": httpx.Response(200, json=LIVE)}
    client = _client(_answers(lambda: state["answer"]), deadline=0.2)
    try:
        client.refresh()
        assert client.assign("u1") == "treatment"
        state["answer"] = httpx.Response(status, content=DEEP)
        client.refresh()
        time.sleep(0.3)  # past the deadline with no fresh state
        assert client.assign("u1") == "control"
    finally:
        client.close()


def test_an_etag_httpx_cannot_send_back_is_not_kept():
    # Kept and sent back as If-None-Match, a non-ASCII ETag failed every later refresh
    # (UnicodeEncodeError): the client served control for good, the service being fine.
    def answer() -> httpx.Response:
        return httpx.Response(200, json=LIVE, headers={"etag": "\"é\"".encode()})

    client = _client(_answers(answer))
    try:
        client.refresh()
        client.refresh()
        assert client.assign("u1") == "treatment"
    finally:
        client.close()
