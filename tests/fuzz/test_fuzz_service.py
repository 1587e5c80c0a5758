"""Fuzz every endpoint of the service with hostile bodies, paths and queries (issue #13).

Asserted for every request: no 5xx (a 4xx says what is wrong). Asserted after them all: every
read endpoint still answers 200 (nothing stored breaks a later read) and every acknowledged
point is stored exactly once.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._hostile import (
    CASES,
    dumps,
    examples,
    hostile_text,
    mutated,
    raw_garbage,
    to_bytes,
)

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from scaleguard.service import ServiceSettings, create_app  # noqa: E402

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLAN = {"name": "p", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.001}],
        "stages": [{"name": "all", "traffic": 1.0, "min_duration": "1h"}]}
BODIES: dict[str, dict[str, Any]] = {
    "runs": {"name": "r", "config": {"lr": 3e-4, "layers": [1, 2]}, "started_at": 1.7e9},
    "batches": {"steps": [1, 2], "names": ["loss", "loss"], "values": [2.0, 1.5],
                "times": [1.7e9, 1.7e9 + 1],
                "events": [{"kind": "note", "time": 1.7e9, "payload": {"a": 1}, "step": 1}],
                "alerts": [{"time": 1.7e9, "severity": "warning", "title": "t", "step": 2,
                            "value": 1.5, "extra": {"b": "c"}}]},
    "finish": {"status": "finished", "finished_at": 1.7e9 + 10},
    "rollouts": {"plan": PLAN, "started_at": 1.7e9},
    "rollouts_yaml": {"plan_yaml": "name: p\nmetrics: [{name: harm, margin: 0.002}]\n"
                                   "stages: [{name: all, traffic: 1.0}]\n"},
    "observations": {"rows": [{"stage": "all", "arm": arm, "metric": "harm",
                               "exposures": 1000, "events": 1, "time": 1.7e9 + 60}
                              for arm in ("control", "treatment")],
                     "approve": [], "now": 1.7e9 + 120},
}
FUZZ = settings(max_examples=examples(40), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _quote(text: str) -> str:
    return urllib.parse.quote(to_bytes(text), safe="")


@st.composite
def requests(draw: st.DrawFn, run: str, rollout: str) -> tuple[str, str, bytes, dict[str, str]]:
    """(method, path, body, headers) of a hostile request to any endpoint."""
    kind = draw(st.sampled_from(sorted(BODIES) + ["get"]))
    target_run = draw(st.one_of(st.just(run), hostile_text.map(_quote)))
    target_rollout = draw(st.one_of(st.just(rollout), hostile_text.map(_quote)))
    headers = {**AUTH, "content-type": "application/json"}
    if kind == "get":
        path = draw(st.sampled_from([
            f"/api/v1/runs/{target_run}", f"/api/v1/runs/{target_run}/metrics",
            f"/api/v1/runs/{target_run}/events?kind={_quote(draw(hostile_text))}",
            f"/api/v1/runs/{target_run}/series?metric={_quote(draw(hostile_text))}"
            f"&max_points={_quote(draw(hostile_text))}&start={_quote(draw(hostile_text))}",
            f"/api/v1/alerts?run={_quote(draw(hostile_text))}"
            f"&severity={_quote(draw(hostile_text))}&limit={_quote(draw(hostile_text))}",
            f"/api/v1/rollouts/{target_rollout}", f"/api/v1/rollouts/{target_rollout}/audit",
            f"/api/v1/rollouts/{target_rollout}/decision", f"/runs/{target_run}",
            f"/rollouts/{target_rollout}", "/metrics", "/healthz"]))
        return "GET", path, b"", headers
    body = draw(st.one_of(mutated(BODIES[kind]).map(lambda b: to_bytes(dumps(b))),
                          raw_garbage)) if draw(st.integers(0, 3)) else to_bytes(
        dumps(BODIES[kind]))
    path = {"runs": "/api/v1/runs", "batches": f"/api/v1/runs/{target_run}/batches",
            "finish": f"/api/v1/runs/{target_run}/finish", "rollouts": "/api/v1/rollouts",
            "rollouts_yaml": "/api/v1/rollouts",
            "observations": f"/api/v1/rollouts/{target_rollout}/observations"}[kind]
    if kind == "batches" and draw(st.booleans()):
        # Raw bytes: a header that is not ASCII reaches the server as it would from any client.
        headers["Idempotency-Key"] = draw(st.sampled_from(["k1", "k2", "é", "x" * 300])
                                          ).encode("utf-8")  # type: ignore[assignment]
    return "POST", path, body, headers


def test_every_endpoint_refuses_hostile_requests_without_a_5xx():
    settings_ = ServiceSettings(db=":memory:",
                                token_hashes=(hashlib.sha256(TOKEN.encode()).digest(),))
    with TestClient(create_app(settings_), raise_server_exceptions=False) as client:
        run = client.post("/api/v1/runs", json={"name": "good"}, headers=AUTH).json()["run_id"]
        sentinel = {"steps": list(range(10)), "names": ["sentinel"] * 10,
                    "values": [float(s) for s in range(10)]}
        assert client.post(f"/api/v1/runs/{run}/batches", json=sentinel,
                           headers=AUTH).status_code == 201
        rollout = client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "ro"},
                              headers=AUTH).json()["rollout_id"]
        acked = {"points": 10}

        @FUZZ
        @given(request=requests(run, rollout))
        def hostile(request: tuple[str, str, bytes, dict[str, str]]) -> None:
            method, path, body, headers = request
            answer = client.request(method, path, content=body or None, headers=headers)
            CASES["service"] += 1
            assert answer.status_code < 500, (method, path, body[:300], answer.text)
            if answer.status_code == 201 and path == f"/api/v1/runs/{run}/batches":
                acked["points"] += answer.json()["points"]

        hostile()
        reads = ["/api/v1/runs", f"/api/v1/runs/{run}", f"/api/v1/runs/{run}/metrics",
                 f"/api/v1/runs/{run}/events", "/api/v1/alerts", "/api/v1/rollouts",
                 f"/api/v1/rollouts/{rollout}", f"/api/v1/rollouts/{rollout}/audit", "/metrics"]
        for path in reads:
            assert client.get(path, headers=AUTH).status_code == 200, path
        for listed in client.get("/api/v1/runs", headers=AUTH).json():
            for metric in client.get(f"/api/v1/runs/{listed['run_id']}/metrics",
                                     headers=AUTH).json():
                series = client.get(f"/api/v1/runs/{listed['run_id']}/series",
                                    params={"metric": metric}, headers=AUTH)
                assert series.status_code == 200, (listed, metric)
        assert client.get(f"/api/v1/runs/{run}", headers=AUTH).json()["points"] == acked["points"]
        kept = client.get(f"/api/v1/runs/{run}/series", params={"metric": "sentinel"},
                          headers=AUTH).json()
        assert kept["values"] == [float(s) for s in range(10)]
        json.dumps(client.get("/api/v1/runs", headers=AUTH).json(), allow_nan=False)
