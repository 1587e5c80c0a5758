"""Hostile requests at the rollout endpoints: each gets a one-line 4xx naming the field, never
a 5xx, and nothing it sent breaks a later read or decision (on DuckDB and PostgreSQL alike).

After every request: the rollout's GET endpoints (state, audit, decision, assignment, history,
the Argo verdict, the list the dashboard draws) answer 200, a post of clean rows is decided,
and a scheduler look over every stored rollout succeeds.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._hostile import dumps, examples, hostile_text, mutated, raw_garbage, to_bytes

PLAN: dict[str, Any] = {
    "name": "hostile",
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005},
                {"name": "latency", "kind": "mean", "margin": 0.1, "critical": False}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": "1h"},
               {"name": "wide", "traffic": 0.5, "manual_approval": True},
               {"name": "all", "traffic": 1.0}],
}
T0 = time.time()
ROW = {"stage": "pilot", "arm": "control", "metric": "harm", "region": "us",
       "exposures": 1000, "events": 1, "time": T0}
JSON = {"content-type": "application/json"}


def _row(**changed: Any) -> dict[str, Any]:
    return {**ROW, **changed}


def _rows_body(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"rows": list(rows)}).encode()


READS = ["/api/v1/rollouts/{id}", "/api/v1/rollouts/{id}/audit", "/api/v1/rollouts/{id}/decision",
         "/api/v1/rollouts/{id}/assignment", "/api/v1/rollouts/{id}/history",
         "/api/v1/argo/rollouts/{id}", "/api/v1/rollouts"]


@pytest.fixture
def hostile_client(make_client: Any, auth: dict[str, str]) -> Any:
    """A client (5xx answered, not raised) with the rollout ``ro`` created; no background
    scheduler: the tests run its looks themselves."""
    client = make_client(scheduler=False)
    made = client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "ro",
                                                 "started_at": T0}, headers=auth)
    assert made.status_code == 201, made.text
    return client


def _still_works(client: Any, auth: dict[str, str]) -> None:
    """Every read of ``ro`` answers 200, a clean post is decided, a scheduler look succeeds."""
    for path in READS:
        got = client.get(path.format(id="ro"), headers=auth)
        assert got.status_code == 200, (path, got.text[:300])
    json.dumps(client.get("/api/v1/rollouts", headers=auth).json(), allow_nan=False)
    decided = client.post("/api/v1/rollouts/ro/observations", json={"rows": []}, headers=auth)
    assert decided.status_code == 200, decided.text[:300]
    assert decided.json()["action"] in ("advance", "continue", "hold", "roll_back")
    scheduler = client.app.state.scheduler
    failed = scheduler.failed
    scheduler.tick(time.time() + 10 * 24 * 3600.0)  # every rollout due: each look must work
    assert scheduler.failed == failed, "a scheduler look failed on what a request stored"


def _refused(answer: Any, *words: str) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert "\n" not in error and len(error) < 2_000, error
    for word in words:
        assert word in error, error


# Each case was a 500 (or was taken as data) before the fix that its comment names.
CASES = [
    # An integer past 64 bits reached pandas: OverflowError, a 500 (now refused at the edge).
    ("POST", "/api/v1/rollouts/ro/observations", _rows_body(_row(exposures=10**400)),
     "rows[0].exposures"),
    # `true` was taken for the count 1 (pydantic's lax union, then pandas' to_numeric).
    ("POST", "/api/v1/rollouts/ro/observations", _rows_body(_row(exposures=True)),
     "column 'exposures' is True, expected a number, not true or false"),
    # NUL in text the store keeps or looks up: PostgreSQL refused it (a 500 there).
    ("POST", "/api/v1/rollouts/ro/observations", _rows_body(_row(window="w\x00")),
     "rows[0].window"),
    ("POST", "/api/v1/rollouts", json.dumps({"plan": {**PLAN, "name": "a\x00b"}}).encode(),
     "plan.name"),
    ("POST", "/api/v1/rollouts", json.dumps(
        {"plan_yaml": 'name: "a\\0b"\nmetrics: [{name: harm, margin: 0.01}]\n'
                      "stages: [{name: all, traffic: 1.0}]\n"}).encode(), "plan_yaml"),
    ("POST", "/api/v1/rollouts", json.dumps(
        {"plan": {**PLAN, "segments": {"region": ["us\x00", "eu"]}}}).encode(),
     "plan.segments.region[0]"),
    ("GET", "/api/v1/rollouts/r%00o", b"", "path.rollout"),
    ("GET", "/api/v1/rollouts/r%00o/assignment", b"", "path.rollout"),
    ("GET", "/api/v1/rollouts/r%00o/history", b"", "path.rollout"),
    ("GET", "/api/v1/argo/rollouts/r%00o", b"", "path.rollout"),
    ("POST", "/api/v1/rollouts/r%00o/observations", b'{"rows": []}', "path.rollout"),
    ("POST", "/api/v1/rollouts/r%00o/approve", b'{"stage": "wide"}', "path.rollout"),
    ("POST", "/api/v1/flagger/confirm-rollout",
     json.dumps({"name": "a", "namespace": "b", "metadata": {"rollout_id": "r\x00"}}).encode(),
     "metadata.rollout_id"),
    ("POST", "/api/v1/flagger/confirm-rollout",
     json.dumps({"name": "a\x00", "namespace": "b"}).encode(), "body.name"),
    # Python's json kept the last of two equal keys (900 events, silently) and read NaN and
    # Infinity; 100,000 brackets were a 400 naming nothing (_body.StrictJSONRoute).
    ("POST", "/api/v1/rollouts/ro/observations",
     b'{"rows": [{"stage": "pilot", "arm": "control", "metric": "harm", "region": "us", '
     b'"exposures": 1000, "events": 1, "events": 900}]}', "key 'events' appears twice"),
    ("POST", "/api/v1/rollouts/ro/observations", b'{"rows": [], "rows": []}', "'rows'"),
    ("POST", "/api/v1/rollouts/ro/observations", b'{"rows": [], "now": NaN}', "NaN"),
    ("POST", "/api/v1/rollouts", b'{"plan": {"name": "p", "alpha": Infinity}}', "Infinity"),
    ("POST", "/api/v1/rollouts/ro/observations",
     b'{"rows": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
    ("POST", "/api/v1/rollouts/ro/approve", b'{"stage": "\xe9"}',
     "not UTF-8"),
    ("POST", "/api/v1/argo/rollouts/ro", b'{"stage": "pilot", "stage": "all"}', "'stage'"),
    ("POST", "/api/v1/flagger/rollback",
     b'{"name": "ro", "namespace": "default", "name": "other"}', "'name'"),
    # A key holding a newline made the 422's one line two (the field path quoted it raw).
    ("POST", "/api/v1/flagger/confirm-rollout",
     json.dumps({"name": "ro", "namespace": "x", "metadata": {"\n": None}}).encode(),
     "body.metadata.'\\n'"),
    # Run lookups (the dashboard's run pages, alert filters) hit the same PostgreSQL refusal.
    ("GET", "/api/v1/runs/r%00o", b"", "contains a NUL"),
    ("GET", "/api/v1/alerts?run=a%00", b"", "contains a NUL"),
    # A path id of 30,000 characters was echoed whole in the 404's message.
    ("GET", "/api/v1/rollouts/" + "x" * 30_000, b"", "no such rollout"),
]


@pytest.mark.parametrize(("method", "path", "body", "named"), CASES,
                         ids=[f"{i}-{c[1][:40]}" for i, c in enumerate(CASES)])
def test_hostile_requests_are_refused_naming_the_field(hostile_client, auth, method, path,
                                                       body, named):
    answer = hostile_client.request(method, path, content=body or None,
                                    headers={**auth, **JSON})
    _refused(answer, named)
    _still_works(hostile_client, auth)


def test_refused_posts_store_nothing(hostile_client, auth):
    before = hostile_client.get("/api/v1/rollouts/ro", headers=auth).json()
    for body in (_rows_body(_row(), _row(exposures=10**400)),
                 _rows_body(_row(), _row(events=True))):
        _refused(hostile_client.post("/api/v1/rollouts/ro/observations", content=body,
                                     headers={**auth, **JSON}))
    after = hostile_client.get("/api/v1/rollouts/ro", headers=auth).json()
    assert after["decisions"] == before["decisions"]
    assert hostile_client.get("/api/v1/rollouts/ro/audit", headers=auth).json() == []


# -- hypothesis: any mutation of a valid request, any garbage ----------------------------------

_GOOD = {
    "observations": {"rows": [_row(), _row(arm="treatment"),
                              {"stage": "pilot", "arm": "control", "metric": "latency",
                               "region": "eu", "n": 100, "mean": 0.3, "var": 0.01,
                               "time": T0, "window": "w1"}],
                     "approve": ["wide"], "now": T0 + 60},
    "rollouts": {"plan": PLAN, "started_at": T0},
    "approve": {"stage": "wide", "note": "looked at the dashboards"},
    "argo": {"stage": "pilot", "rollout_id": "ro"},
    "flagger": {"name": "ro", "namespace": "default", "phase": "Progressing",
                "checksum": "abc", "metadata": {"rollout_id": "ro"}},
}
_PATHS = {"observations": "/api/v1/rollouts/{id}/observations", "rollouts": "/api/v1/rollouts",
          "approve": "/api/v1/rollouts/{id}/approve", "argo": "/api/v1/argo/rollouts/{id}",
          "flagger": "/api/v1/flagger/confirm-traffic-increase"}
_CONTENT_TYPES = ["application/json", "text/plain", "", "application/x-www-form-urlencoded",
                  "application/json; charset=latin-1", "multipart/form-data; boundary=x"]


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(_GOOD) + ["get"]))
    rollout = draw(st.one_of(st.just("ro"), hostile_text.map(
        lambda t: urllib.parse.quote(to_bytes(t), safe="") or "ro")))
    headers: dict[str, Any] = {"content-type": draw(st.sampled_from(_CONTENT_TYPES))}
    if kind == "get":
        query = urllib.parse.urlencode({draw(st.sampled_from(["looks", "stage"])):
                                        to_bytes(draw(hostile_text))})
        path = draw(st.sampled_from(READS[:-1])).format(id=rollout)
        return "GET", f"{path}?{query}", b"", headers
    body = draw(st.one_of(mutated(_GOOD[kind]).map(lambda b: to_bytes(dumps(b))), raw_garbage))
    if kind == "flagger" and draw(st.booleans()):
        headers["authorization"] = draw(st.sampled_from(["", "Bearer", "Basic eA==",
                                                         "Bearer " + "x" * 5_000]))
    return "POST", _PATHS[kind].format(id=rollout), body, headers


@settings(max_examples=examples(60), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(request=hostile_requests())
def test_no_hostile_request_makes_a_rollout_endpoint_fail(hostile_client, auth, request):
    method, path, body, headers = request
    headers = {**auth, **headers}
    answer = hostile_client.request(method, path, content=body or None, headers=headers)
    assert answer.status_code < 500, (method, path, body[:300], answer.text[:300])
    if answer.status_code >= 400:
        _refused(answer)
    for read in READS:
        got = hostile_client.get(read.format(id="ro"), headers=auth)
        assert got.status_code == 200, (method, path, body[:300], read, got.text[:300])


def test_every_stored_rollout_is_still_decided_after_the_sweep(hostile_client, auth):
    # A rollout created from each mutated plan the sweep let through must still be looked at.
    for doc in ({**PLAN, "name": "x" * 5_000}, {**PLAN, "name": "\u202e\x1b[31m"},
                {**PLAN, "segments": {"region": ["us", "\ufeff"]}}):
        _ = hostile_client.post("/api/v1/rollouts", json={"plan": doc}, headers=auth)
    _still_works(hostile_client, auth)


# -- webhooks: a receiver httpx cannot send to --------------------------------------------------

def test_a_plan_webhook_that_cannot_be_sent_is_refused_when_the_rollout_is_made(hostile_client,
                                                                               auth):
    # "\x7f" matches the plan's pattern (^https?://\S+$) but httpx refuses to build the request.
    plan = {**PLAN, "webhooks": [{"url": "http://hooks.example/\x7f"}]}
    answer = hostile_client.post("/api/v1/rollouts", json={"plan": plan}, headers=auth)
    _refused(answer, "plan.webhooks[0].url")
    _still_works(hostile_client, auth)


def test_an_unsendable_webhook_does_not_stop_the_delivery_of_the_others():
    from scaleguard.service._webhooks import WebhookDispatcher, WebhookTarget

    # Stored before the check above (a plan file through `rollout decide --store`): the worker
    # thread died on httpx.InvalidURL, and every later notification waited forever.
    dispatcher = WebhookDispatcher([WebhookTarget("http://hooks.example/\x7f"),
                                    WebhookTarget("http://" + "a" * 70_000)], attempts=1,
                                   timeout=0.2)
    try:
        dispatcher.publish("ro", {"action": "hold"})
        dispatcher.publish("ro", {"action": "hold"})
        assert dispatcher.drain(timeout=5.0)
        assert dispatcher.failed == 4 and dispatcher.delivered == 0
    finally:
        dispatcher.close(timeout=1.0)


@pytest.mark.parametrize("url", ["http://hooks.example/\x7f", "http://:80/x",
                                 "http://" + "a" * 70_000, "https://x:99999/"])
def test_serve_refuses_a_webhook_it_could_never_send(url):
    from scaleguard.errors import ConfigError
    from scaleguard.service import ServiceSettings

    with pytest.raises(ConfigError, match="webhooks: expected an http"):
        ServiceSettings(store=":memory:", webhooks=(url,))
