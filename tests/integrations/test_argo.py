"""Argo Rollouts' web metric provider calling scaleguard: the requests its documentation shows
(argoproj/argo-rollouts docs/analysis/web.md), answered for pass, fail and inconclusive."""

from __future__ import annotations

# docs/analysis/web.md: "headers: - key: Authorization value: Bearer {{ args.api-token }}";
# the POST form sends the template's `body` with "Content-Type: application/json".
ARGO_POST_BODY = "{\"key\": \"string value\"}"  # web.md's own example body, verbatim


def measure(client, auth, rollout_id, stage=None, method="GET"):
    url = f"/api/v1/argo/rollouts/{rollout_id}" + (f"?stage={stage}" if stage else "")
    if method == "GET":
        response = client.get(url, headers=auth)
    else:
        response = client.post(url, content=ARGO_POST_BODY,
                               headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def test_pass_once_scaleguard_moves_past_the_stage(client, auth, rollout, observe, rows):
    rid = rollout()
    assert measure(client, auth, rid, "pilot")["verdict"] == "continue"  # no decision yet
    decision = observe(rid, rows("pilot"))
    assert decision["action"] == "advance" and decision["stage"] == "broad"
    for method in ("GET", "POST"):
        answer = measure(client, auth, rid, "pilot", method)
        assert answer["verdict"] == "pass" and answer["current_stage"] == "broad"
        assert answer["action"] == "advance" and answer["gates"]  # the evidence travels along
    assert measure(client, auth, rid, "broad")["verdict"] == "continue"
    # Argo ahead of scaleguard (its step at "half"): never a pass, a person looks.
    ahead = measure(client, auth, rid, "half")
    assert ahead["verdict"] == "inconclusive" and "ahead" in ahead["reasons"][0]


def test_fail_when_scaleguard_rolls_back(client, auth, rollout, observe, rows):
    rid = rollout()
    decision = observe(rid, rows("pilot", harm=2_000))  # 20% harmful, guardrail 5%
    assert decision["action"] == "roll_back"
    for stage in (None, "pilot"):
        answer = measure(client, auth, rid, stage)
        assert answer["verdict"] == "fail" and answer["status"] == "rolled_back"
        assert "harmful_output/overall/guardrail" in answer["failing"]
    assert measure(client, auth, rid, method="POST")["verdict"] == "fail"


def test_inconclusive_when_scaleguard_holds(client, auth, rollout, observe, rows):
    rid = rollout()
    decision = observe(rid, rows("pilot", flagged=8_000))  # a non-critical gate fails: hold
    assert decision["action"] == "hold"
    answer = measure(client, auth, rid, "pilot", "POST")
    assert answer["verdict"] == "inconclusive"
    assert any("non-critical flagged_for_review fails" in r for r in answer["reasons"])


def test_the_measurement_needs_the_token_and_a_known_rollout_and_stage(client, auth, rollout):
    rid = rollout()
    assert client.get(f"/api/v1/argo/rollouts/{rid}").status_code == 401
    assert client.get("/api/v1/argo/rollouts/nope", headers=auth).status_code == 404
    wrong = client.get(f"/api/v1/argo/rollouts/{rid}?stage=everyone", headers=auth)
    assert wrong.status_code == 422 and "not a stage" in wrong.json()["error"]
    other = client.post(f"/api/v1/argo/rollouts/{rid}", json={"rollout_id": "other"},
                        headers=auth)
    assert other.status_code == 422
