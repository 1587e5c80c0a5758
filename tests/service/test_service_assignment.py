"""``GET /api/v1/rollouts/{id}/assignment``: the salt kept at creation, the status each
decision leaves (live, paused, held, rolled_back, complete), ETag and 304, read auth."""

from __future__ import annotations

import time

from scaleguard.monitor import open_store
from scaleguard.safety import DatabaseRolloutStore, initial_state, parse_plan
from scaleguard.service import create_app

T0 = time.time()
PLAN = {
    "name": "assign-test",
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005},
                {"name": "refusal", "guardrail": 0.2, "margin": 0.01, "critical": False}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "segments": {"region": ["us"]}},
               {"name": "wide", "traffic": 0.5, "manual_approval": True},
               {"name": "all", "traffic": 1.0}],
    "assignment": {"ttl": "2s"},
}


def create(client, auth, rollout_id, plan=PLAN):
    response = client.post("/api/v1/rollouts", json={"plan": plan, "rollout_id": rollout_id,
                                                     "started_at": T0}, headers=auth)
    assert response.status_code == 201, response.text


def assignment(client, auth, rollout_id):
    response = client.get(f"/api/v1/rollouts/{rollout_id}/assignment", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def post(client, auth, rollout_id, cells, now, approve=()):
    rows = [{"stage": stage, "arm": arm, "metric": metric, "region": region, "exposures": n,
             "events": k} for (stage, arm, metric, region), (n, k) in cells.items()]
    response = client.post(f"/api/v1/rollouts/{rollout_id}/observations", headers=auth,
                           json={"rows": rows, "now": now, "approve": list(approve)})
    assert response.status_code == 200, response.text
    return response.json()


def clean(stage, regions=("us",), refusal=(100_000, 5_000)):
    cells = {}
    for region in regions:
        for arm in ("control", "treatment"):
            cells[(stage, arm, "harm", region)] = (100_000, 1000)
            cells[(stage, arm, "refusal", region)] = (100_000, 5000) if arm == "control" \
                else refusal
    return cells


def test_a_new_rollout_gets_a_random_salt_kept_in_its_stored_plan(client, auth):
    create(client, auth, "ro-a")
    create(client, auth, "ro-b")
    first, second = assignment(client, auth, "ro-a"), assignment(client, auth, "ro-b")
    assert len(first["salt"]) == 32 and first["salt"] != second["salt"]
    stored = client.get("/api/v1/rollouts/ro-a", headers=auth).json()["plan_spec"]
    assert stored["assignment"] == {"ttl": 2.0, "salt": first["salt"]}
    assert assignment(client, auth, "ro-a")["salt"] == first["salt"]  # read again: the same
    create(client, auth, "ro-c", {**PLAN, "assignment": {"salt": "my-own-salt-1"}})
    assert assignment(client, auth, "ro-c")["salt"] == "my-own-salt-1"


def test_the_assignment_says_what_the_sdk_needs(client, auth):
    create(client, auth, "ro-1")
    body = assignment(client, auth, "ro-1")
    assert {k: body[k] for k in ("rollout_id", "status", "stage", "stage_index", "traffic",
                                 "ttl_s", "version", "buckets", "treatment_share")} == {
        "rollout_id": "ro-1", "status": "live", "stage": "pilot", "stage_index": 0,
        "traffic": 0.05, "ttl_s": 2.0, "version": 0, "buckets": 10_000, "treatment_share": 0.5}
    assert body["segments"] == {"region": ["us", "eu"]}
    assert body["admitted"] == {"region": ["us"]}
    assert [m["kind"] for m in body["metrics"]] == ["rate", "rate"]


def test_etag_answers_304_until_a_decision_changes_the_state(client, auth):
    create(client, auth, "ro-e")
    url = "/api/v1/rollouts/ro-e/assignment"
    first = client.get(url, headers=auth)
    etag = first.headers["etag"]
    again = client.get(url, headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    post(client, auth, "ro-e", clean("pilot"), T0 + 60)
    changed = client.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["version"] == 1


def test_status_follows_the_decisions(client, auth):
    create(client, auth, "ro-s")
    # all gates pass at pilot; entering 'wide' awaits approval: a hold that waits
    decision = post(client, auth, "ro-s", clean("pilot"), T0 + 60)
    assert decision["action"] == "hold" and "approval" in decision["reasons"][-1]
    body = assignment(client, auth, "ro-s")
    assert (body["status"], body["traffic"]) == ("paused", 0.05)
    decision = post(client, auth, "ro-s", {}, T0 + 180, approve=["wide"])
    assert decision["stage"] == "wide"
    assert assignment(client, auth, "ro-s")["admitted"] == {}
    # the non-critical refusal rate is shown worse at 'wide': held, a person must decide
    decision = post(client, auth, "ro-s", clean("wide", ("us", "eu"), refusal=(100_000, 9000)),
                    T0 + 240)
    assert decision["action"] == "hold" and decision["failing"]
    assert assignment(client, auth, "ro-s")["status"] == "held"


def test_a_harmful_release_reads_rolled_back(client, auth):
    create(client, auth, "ro-r")
    cells = clean("pilot")
    cells[("pilot", "treatment", "harm", "us")] = (100_000, 3000)
    assert post(client, auth, "ro-r", cells, T0 + 60)["action"] == "roll_back"
    body = assignment(client, auth, "ro-r")
    assert (body["status"], body["traffic"]) == ("rolled_back", 0.0)


def test_reads_need_a_token_unless_open_and_unknown_rollouts_are_404(make_client, auth):
    closed = make_client()
    create(closed, auth, "ro-x")
    assert closed.get("/api/v1/rollouts/ro-x/assignment").status_code == 401
    assert closed.get("/api/v1/rollouts/nope/assignment", headers=auth).status_code == 404
    opened = make_client(open_reads=True)
    create(opened, auth, "ro-y")
    assert opened.get("/api/v1/rollouts/ro-y/assignment").status_code == 200


def test_a_rollout_stored_without_a_salt_hashes_with_its_id(settings, auth):
    from fastapi.testclient import TestClient

    store = open_store(":memory:")
    plan = parse_plan(PLAN)
    DatabaseRolloutStore(store, "from-cli").create(plan.name, PLAN, initial_state(plan, T0))
    with TestClient(create_app(settings(), store=store)) as client:
        assert assignment(client, auth, "from-cli")["salt"] == "from-cli"
    store.close()
