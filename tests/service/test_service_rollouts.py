"""Rollouts through the API: create from a plan, post observations, decisions, audit log,
refused and malformed requests, and a restart that resumes from the stored state."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError
from scaleguard.safety import EXAMPLE_PLAN
from scaleguard.service import create_app

HOUR = 3600.0
T0 = time.time()  # the rollouts start now: the service refuses starts it cannot vouch for
PLAN = {
    "name": "assistant-test",
    "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005, "baseline": 0.01}],
    "segments": {"region": ["us", "eu"]},
    "stages": [
        {"name": "pilot", "traffic": 0.05, "min_exposures": 1000, "min_duration": "1h",
         "max_duration": "1d"},
        {"name": "wide", "traffic": 0.5, "manual_approval": True},
        {"name": "all", "traffic": 1.0},
    ],
}
CLEAN = {("control", "us"): (200_000, 2000), ("treatment", "us"): (200_000, 2000),
         ("control", "eu"): (200_000, 2000), ("treatment", "eu"): (200_000, 2000)}
# Better overall, worse in the EU (Simpson's paradox): the segment gate must roll back.
SIMPSON = {("control", "us"): (100_000, 1000), ("treatment", "us"): (300_000, 1500),
           ("control", "eu"): (300_000, 6000), ("treatment", "eu"): (100_000, 3000)}


def rows(stage: str, cells: dict) -> list[dict]:
    return [{"stage": stage, "arm": arm, "metric": "harm", "region": region,
             "exposures": n, "events": k} for (arm, region), (n, k) in cells.items()]


def create(client, auth, **body) -> dict:
    response = client.post("/api/v1/rollouts", json={"plan": PLAN, "started_at": T0, **body},
                           headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_rollout_advances_through_its_stages(client, auth):
    created = create(client, auth, rollout_id="ro-1")
    assert (created["stage"], created["traffic"], created["status"]) == ("pilot", 0.05, "running")
    url = "/api/v1/rollouts/ro-1"
    early = client.post(url + "/observations", json={"rows": rows("pilot", CLEAN),
                                                      "now": T0 + 0.5 * HOUR}, headers=auth).json()
    assert early["action"] == "continue" and "minimum duration" in early["reasons"][-1]
    held = client.post(url + "/observations", json={"now": T0 + 2 * HOUR}, headers=auth).json()
    assert held["action"] == "hold" and "manual approval" in held["reasons"][-1]
    approved = client.post(url + "/observations", json={"approve": ["wide"], "now": T0 + 2 * HOUR},
                           headers=auth).json()
    assert (approved["action"], approved["stage"], approved["traffic"]) == ("advance", "wide", 0.5)
    assert all(g["verdict"] == "pass" for g in approved["gates"])
    assert {g["segment"] for g in approved["gates"]} == {"overall", "region=us", "region=eu"}
    assert client.get(url + "/decision", headers=auth).json()["action"] == "advance"
    audit = client.get(url + "/audit", headers=auth).json()
    assert [a["action"] for a in audit] == ["continue", "hold", "advance"]
    assert audit[0]["plan"] == "assistant-test" and audit[2]["state"]["decisions"] == 3
    now = client.get(url, headers=auth).json()
    assert (now["stage"], now["traffic"], now["decisions"], now["last_action"]) \
        == ("wide", 0.5, 3, "advance")
    listed = client.get("/api/v1/rollouts", headers=auth).json()
    assert [r["rollout_id"] for r in listed] == ["ro-1"]


def test_a_harm_in_one_segment_rolls_back_and_stays_rolled_back(client, auth):
    create(client, auth, rollout_id="ro-2")
    url = "/api/v1/rollouts/ro-2/observations"
    decision = client.post(url, json={"rows": rows("pilot", SIMPSON), "now": T0 + 2 * HOUR},
                           headers=auth).json()
    assert decision["action"] == "roll_back" and decision["traffic"] == 0.0
    assert decision["failing"] == ["harm/region=eu/comparison"]
    again = client.post(url, json={"rows": rows("pilot", CLEAN), "now": T0 + 3 * HOUR},
                        headers=auth).json()
    assert again["action"] == "roll_back"
    assert client.get("/api/v1/rollouts/ro-2", headers=auth).json()["status"] == "rolled_back"


def test_missing_data_never_advances(client, auth):
    create(client, auth, rollout_id="ro-3")
    only_treatment = [r for r in rows("pilot", CLEAN) if r["arm"] == "treatment"]
    decision = client.post("/api/v1/rollouts/ro-3/observations",
                           json={"rows": only_treatment, "now": T0 + 5 * HOUR}, headers=auth).json()
    assert decision["action"] == "hold" and "missing data" in decision["reasons"][-1]


def test_a_plan_as_yaml_text(client, auth):
    response = client.post("/api/v1/rollouts", json={"plan_yaml": EXAMPLE_PLAN.read_text()},
                           headers=auth)
    assert response.status_code == 201
    body = response.json()
    assert body["plan"] == "assistant-v2" and body["stage"] == "internal"
    assert [s["name"] for s in body["stages"]] == ["internal", "canary", "region-eu", "everyone"]
    spec = client.get(f"/api/v1/rollouts/{body['rollout_id']}", headers=auth).json()
    assert spec["plan_spec"]["stages"][0]["min_exposures"] == 20_000


def test_restart_resumes_rollouts_from_the_stored_state(store_url, settings, auth):
    path = store_url  # a DuckDB file, a PostgreSQL database
    with TestClient(create_app(settings(store=path))) as first:
        create(first, auth, rollout_id="ro-restart")
        url = "/api/v1/rollouts/ro-restart/observations"
        first.post(url, json={"rows": rows("pilot", CLEAN), "now": T0 + 0.5 * HOUR}, headers=auth)
        held = first.post(url, json={"now": T0 + 2 * HOUR}, headers=auth).json()
        assert held["action"] == "hold"
    with TestClient(create_app(settings(store=path))) as second:  # a new process, same file
        resumed = second.get("/api/v1/rollouts/ro-restart", headers=auth).json()
        assert (resumed["stage"], resumed["decisions"], resumed["last_action"]) \
            == ("pilot", 2, "hold")
        # The rows sent before the restart still count: approval alone now advances.
        advanced = second.post(url, json={"approve": ["wide"], "now": T0 + 2 * HOUR},
                               headers=auth).json()
        assert (advanced["action"], advanced["stage"]) == ("advance", "wide")
        assert advanced["state"]["decisions"] == 3
        assert len(second.get("/api/v1/rollouts/ro-restart/audit", headers=auth).json()) == 3


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/rollouts", {"plan": PLAN}),
    ("post", "/api/v1/rollouts/ro-w/observations", {"rows": rows("pilot", CLEAN)}),
])
def test_rollout_writes_need_a_token(client, auth, method, path, body):
    create(client, auth, rollout_id="ro-w")
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401
    assert len(client.get("/api/v1/rollouts", headers=auth).json()) == 1
    assert client.get("/api/v1/rollouts/ro-w/audit", headers=auth).json() == []


@pytest.mark.parametrize("body, status, message", [
    ({"plan": {**PLAN, "alpha": 2}}, 422, "plan: alpha"),
    ({"plan": {**PLAN, "stages": []}}, 422, "plan: stages"),
    ({"plan_yaml": "name: [unclosed"}, 422, "plan_yaml: line 1"),
    ({"plan_yaml": "- a list"}, 422, "plan_yaml: expected a mapping"),
    ({}, 422, "exactly one of plan"),
    ({"plan": PLAN, "plan_yaml": "name: x"}, 422, "exactly one of plan"),
    ({"plan": PLAN, "rollout_id": "bad id"}, 422, "body.rollout_id"),
    ({"plan": "name: x"}, 422, "body.plan"),
])
def test_invalid_plans_are_refused_naming_the_problem(client, auth, body, status, message):
    response = client.post("/api/v1/rollouts", json=body, headers=auth)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/api/v1/rollouts", headers=auth).json() == []


def test_duplicate_rollout_id_is_refused(client, auth):
    create(client, auth, rollout_id="ro-dup")
    response = client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "ro-dup"},
                           headers=auth)
    assert response.status_code == 422 and "exists already" in response.json()["error"]


@pytest.mark.parametrize("body, status, message", [
    ({"rows": [{"stage": "nowhere", "arm": "control", "metric": "harm", "region": "us",
                "exposures": 10, "events": 1}]}, 422, "column 'stage'"),
    ({"rows": [{"stage": "pilot", "arm": "treat", "metric": "harm", "region": "us",
                "exposures": 10, "events": 1}]}, 422, "expected control or treatment"),
    ({"rows": [{"stage": "pilot", "arm": "control", "metric": "harm", "region": "us",
                "exposures": 10, "events": 11}]}, 422, "more events than exposures"),
    ({"rows": [{"stage": "pilot", "arm": "control", "metric": "harm"}]}, 422, "exposures"),
    ({"rows": [{"stage": "pilot", "arm": "control", "metric": "harm",
                "exposures": [1, 2]}]}, 422, "body.rows.0.exposures"),
    ({"approve": ["nowhere"]}, 422, "approve"),
    ({"rows": "pilot"}, 422, "body.rows"),
    ({"now": -5}, 422, "body.now"),
])
def test_bad_observations_are_refused_and_nothing_is_kept(client, auth, body, status, message):
    create(client, auth, rollout_id="ro-bad")
    response = client.post("/api/v1/rollouts/ro-bad/observations", json=body, headers=auth)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/api/v1/rollouts/ro-bad/audit", headers=auth).json() == []
    good = client.post("/api/v1/rollouts/ro-bad/observations",
                       json={"rows": rows("pilot", CLEAN), "now": T0 + 2 * HOUR}, headers=auth)
    assert good.json()["action"] == "hold"  # only the good rows count (wide awaits approval)


def test_unknown_rollout_is_404(client, auth):
    for path in ("", "/decision", "/audit"):
        response = client.get(f"/api/v1/rollouts/none{path}", headers=auth)
        assert response.status_code == 404 and "'none'" in response.json()["error"]
    posted = client.post("/api/v1/rollouts/none/observations", json={}, headers=auth)
    assert posted.status_code == 404


def test_decision_is_null_before_the_first(client, auth):
    create(client, auth, rollout_id="ro-new")
    assert client.get("/api/v1/rollouts/ro-new/decision", headers=auth).json() is None


_VALUE = (st.none() | st.integers(-5, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
          | st.sampled_from(["pilot", "wide", "control", "treatment", "harm", "us", "eu", "x", ""]))
_ROW = st.dictionaries(st.sampled_from(["stage", "arm", "metric", "region", "exposures",
                                        "events", "n", "mean", "var", "time"]), _VALUE,
                       max_size=10)


@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ROW, max_size=4), st.lists(st.sampled_from(["pilot", "wide", "all"]),
                                            max_size=2),
       st.none() | st.floats(0, 1e10))
def test_no_observations_make_the_service_fail(client, auth, rows, approve, now):
    if client.get("/api/v1/rollouts/ro-fuzz", headers=auth).status_code == 404:
        create(client, auth, rollout_id="ro-fuzz")
    response = client.post("/api/v1/rollouts/ro-fuzz/observations",
                           json={"rows": rows, "approve": approve, "now": now}, headers=auth)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        assert response.json()["action"] in ("advance", "continue", "hold", "roll_back")


def test_assess_reads_a_rollout_the_service_decided(tmp_path, store_url, settings, auth):
    """One rollout store: what the service decided is what `assess` sees (on each backend)."""
    import yaml

    from scaleguard.limits._run import rollout_evidence
    from scaleguard.limits._study import MonitoringSpec, RolloutSpec, Study

    path = store_url
    with TestClient(create_app(settings(store=path))) as service:
        create(service, auth, rollout_id="ro-assess")
        decided = service.post("/api/v1/rollouts/ro-assess/observations",
                               json={"rows": rows("pilot", CLEAN), "now": T0 + 0.5 * HOUR},
                               headers=auth).json()
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(PLAN))
    study = Study.model_construct(
        rollout=RolloutSpec(plan=tmp_path / "plan.yaml", rollout_id="ro-assess"),
        monitoring=MonitoringSpec(store=path), base_dir=tmp_path)
    gates, summary = rollout_evidence(study.rollout, study)
    assert summary["stage"] == decided["stage"] == "pilot"
    # The stored windows (400,000 exposures in the pilot) are what the gates weigh.
    overall = {g.name: g for g in gates}["harm/overall/guardrail"]
    assert overall.state == "pass" and "400,000 exposures" in overall.detail
    wrong = Study.model_construct(rollout=RolloutSpec(plan=tmp_path / "plan.yaml",
                                                      rollout_id="nope"),
                                  monitoring=MonitoringSpec(store=path), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="no rollout 'nope'"):
        rollout_evidence(wrong.rollout, wrong)


def test_the_service_decides_on_its_own_clock_by_default(make_client, auth):
    # A client's `now` hours ahead would skip the pilot's minimum duration: refused, and the
    # rollout is untouched; a `now` behind the service clock is accepted (it only shortens the
    # time the stage has run).
    own_clock = make_client(client_clock=False)
    create(own_clock, auth, rollout_id="ro-clock")
    url = "/api/v1/rollouts/ro-clock/observations"
    ahead = own_clock.post(url, json={"rows": rows("pilot", CLEAN), "now": time.time() + 2 * HOUR},
                           headers=auth)
    assert ahead.status_code == 422
    assert ahead.json()["error"].startswith("now: ")
    assert "ahead of the service clock" in ahead.json()["error"]
    assert own_clock.get("/api/v1/rollouts/ro-clock", headers=auth).json()["decisions"] == 0
    behind = own_clock.post(url, json={"rows": rows("pilot", CLEAN), "now": time.time() - 60},
                            headers=auth).json()
    assert behind["action"] == "continue" and behind["stage"] == "pilot"
