"""Decision webhooks against a real local HTTP receiver: JSON and Slack formats, retries, a
bounded queue, and a failing receiver that never blocks or changes a decision."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from scaleguard.errors import ConfigError  # noqa: E402
from scaleguard.service import create_app  # noqa: E402
from scaleguard.service._background import free_port  # noqa: E402
from scaleguard.service._webhooks import (  # noqa: E402
    WebhookDispatcher,
    WebhookTarget,
    parse_webhook,
    slack_text,
)

from .conftest import TOKEN, settings_for  # noqa: E402

PLAN = {"name": "hooked", "metrics": [{"name": "harm", "guardrail": 0.05}],
        "stages": [{"name": "pilot", "traffic": 0.05}, {"name": "all", "traffic": 1.0}]}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Receiver:
    """A real HTTP server on loopback recording every POST; ``fail_first`` answers 500 first,
    ``delay`` holds each answer."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.fail_first = fail_first
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                time.sleep(outer.delay)
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(500)
                else:
                    outer.bodies.append((self.path, body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_each_decision_is_posted_as_json_and_as_slack_text(receiver):
    settings = settings_for(webhooks=(receiver.url + "/json", f"slack+{receiver.url}/slack"))
    plan = {**PLAN, "webhooks": [{"url": receiver.url + "/plan", "format": "slack"}]}
    with TestClient(create_app(settings)) as client:
        made = client.post("/api/v1/rollouts", json={"plan": plan, "rollout_id": "ro"},
                           headers=AUTH)
        assert made.status_code == 201, made.text
        decided = client.post("/api/v1/rollouts/ro/observations", json={}, headers=AUTH).json()
        _wait(lambda: len(receiver.bodies) == 3)
    by_path = dict(receiver.bodies)
    assert by_path["/json"]["rollout_id"] == "ro"
    assert by_path["/json"]["action"] == decided["action"] == "hold"
    assert by_path["/json"]["reasons"] == decided["reasons"]
    assert set(by_path["/slack"]) == {"text"} and by_path["/plan"] == by_path["/slack"]
    assert by_path["/slack"]["text"].startswith("*scaleguard* rollout `ro`: *hold* at stage "
                                                "`pilot`")


def test_a_failing_receiver_is_retried_and_never_blocks_a_decision():
    flaky = Receiver(fail_first=2)
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    try:
        dispatcher = WebhookDispatcher([WebhookTarget(flaky.url), WebhookTarget(dead)],
                                       backoff=0.01, attempts=3, timeout=1.0)
        began = time.perf_counter()
        dispatcher.publish("ro", {"action": "advance", "stage": "all", "traffic": 1.0})
        assert time.perf_counter() - began < 0.05  # queued, not delivered, on the caller
        assert dispatcher.drain(10)
        assert (dispatcher.delivered, dispatcher.failed, dispatcher.dropped) == (1, 1, 0)
        assert flaky.bodies == [("/", {"rollout_id": "ro", "action": "advance",
                                       "stage": "all", "traffic": 1.0})]
        dispatcher.close()
    finally:
        flaky.close()


def test_the_queue_is_bounded_and_drops_what_does_not_fit():
    slow = Receiver(delay=0.3)
    try:
        dispatcher = WebhookDispatcher([WebhookTarget(slow.url)], queue_size=2)
        for i in range(10):
            dispatcher.publish("ro", {"action": "hold", "n": i})
        assert dispatcher.dropped >= 7  # one in flight at most, two waiting
        assert dispatcher.drain(10)
        assert dispatcher.delivered + dispatcher.dropped == 10
        dispatcher.close()
    finally:
        slow.close()


def test_an_unreachable_receiver_leaves_service_decisions_as_they_are(receiver):
    dead = f"http://127.0.0.1:{free_port()}/x"
    with TestClient(create_app(settings_for(webhooks=(dead,)))) as client:
        client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "ro"}, headers=AUTH)
        began = time.perf_counter()
        for _ in range(3):
            response = client.post("/api/v1/rollouts/ro/observations", json={}, headers=AUTH)
            assert response.status_code == 200
        assert time.perf_counter() - began < 5
        audit = client.get("/api/v1/rollouts/ro/audit", headers=AUTH).json()
    assert [a["action"] for a in audit] == ["hold"] * 3


@pytest.mark.parametrize(("text", "expected"), [
    ("https://h.example/x", WebhookTarget("https://h.example/x", "json")),
    ("slack+https://h.example/x", WebhookTarget("https://h.example/x", "slack")),
    ("json+http://127.0.0.1:9/x", WebhookTarget("http://127.0.0.1:9/x", "json")),
])
def test_webhook_urls_name_their_format(text, expected):
    assert parse_webhook(text) == expected


@pytest.mark.parametrize("text", ["", "hooks.example", "slack+ftp://x", "https://", "teams+https://x",
                                  "https://a b"])
def test_bad_webhook_urls_are_refused_when_the_service_is_configured(text):
    with pytest.raises(ConfigError, match="^webhooks: expected an http"):
        settings_for(webhooks=(text,))


def test_a_plan_webhook_must_be_an_http_url():
    with TestClient(create_app(settings_for(scheduler=False))) as client:
        response = client.post("/api/v1/rollouts", headers=AUTH, json={
            "plan": {**PLAN, "webhooks": [{"url": "file:///etc/passwd"}]}})
    assert response.status_code == 422 and "webhooks[0].url" in response.text


def test_slack_text_names_the_failing_gates():
    text = slack_text("ro", {"action": "roll_back", "stage": "pilot", "traffic": 0.0,
                             "failing": ["harm/region=eu/comparison"],
                             "reasons": ["harm failed in region=eu"]})
    assert "*roll back*" in text and "harm/region=eu/comparison" in text
    assert text.splitlines()[-1] == "• harm failed in region=eu"
