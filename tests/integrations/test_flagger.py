"""Flagger's webhooks calling scaleguard: the payload its documentation shows (fluxcd/flagger
docs/gitbook/usage/webhooks.md, "Webhook payload (HTTP POST)"), answered 2xx to go on and
non-2xx to stop, for pass, fail and inconclusive decisions."""

from __future__ import annotations

import json

# webhooks.md, verbatim: Flagger POSTs this with "Content-Type: application/json".
FLAGGER_PAYLOAD = """{
  "name": "podinfo",
  "namespace": "test",
  "phase": "Progressing",
  "checksum": "85d557f47b",
  "metadata": {
    "test":  "all",
    "token":  "16688eb5e9f289f1991c"
  }
}"""
CANARY = "podinfo.test"  # the canary maps to the rollout <name>.<namespace>


def hook(client, name, payload=FLAGGER_PAYLOAD, headers=None):
    return client.post(f"/api/v1/flagger/{name}", content=payload,
                       headers={"Content-Type": "application/json", **(headers or {})})


def test_a_passing_rollout_confirms_one_increase_per_stage_then_the_promotion(
        client, rollout, observe, rows, auth):
    rollout(CANARY)
    assert hook(client, "confirm-rollout").status_code == 200
    assert hook(client, "confirm-promotion").status_code == 409
    first = hook(client, "confirm-traffic-increase")
    assert first.status_code == 200 and first.json()["stage"] == "pilot"
    again = hook(client, "confirm-traffic-increase")  # Flagger's next interval, no advance
    assert again.status_code == 409 and "already follows stage 'pilot'" in again.json()["why"]
    for stage, nxt in (("pilot", "broad"), ("broad", "half")):
        assert observe(CANARY, rows(stage))["stage"] == nxt
        assert hook(client, "confirm-promotion").status_code == 409
        assert hook(client, "confirm-traffic-increase").status_code == 200
        assert hook(client, "confirm-traffic-increase").status_code == 409
    assert observe(CANARY, rows("half"))["state"]["status"] == "complete"
    promotion = hook(client, "confirm-promotion")
    assert promotion.status_code == 200 and promotion.json()["verdict"] == "pass"
    assert hook(client, "rollback").status_code == 409
    # The confirmations are in the audit log; the latest decision is still the decision.
    decision = client.get(f"/api/v1/rollouts/{CANARY}/decision", headers=auth).json()
    assert decision["action"] == "advance" and "kind" not in decision
    audit = client.get(f"/api/v1/rollouts/{CANARY}/audit", headers=auth).json()
    assert [r["stage"] for r in audit if r.get("kind") == "flagger"] == \
        ["pilot", "broad", "half"]


def test_a_rolled_back_rollout_makes_flagger_roll_back_and_stop(client, rollout, observe,
                                                                 rows):
    rollout(CANARY)
    assert observe(CANARY, rows("pilot", harm=2_000))["action"] == "roll_back"
    back = hook(client, "rollback")
    assert back.status_code == 200 and back.json()["verdict"] == "fail"
    assert "harmful_output/overall/guardrail" in back.json()["failing"]
    for name in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion"):
        assert hook(client, name).status_code == 409


def test_a_held_rollout_pauses_flagger(client, rollout, observe, rows):
    rollout(CANARY)
    assert hook(client, "confirm-traffic-increase").status_code == 200  # into the pilot
    assert observe(CANARY, rows("pilot", flagged=8_000))["action"] == "hold"
    for name in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion",
                 "rollback"):
        answer = hook(client, name)
        assert answer.status_code == 409 and answer.json()["verdict"] == "inconclusive"
    assert "non-critical" in hook(client, "confirm-rollout").json()["why"]


def test_metadata_rollout_id_names_the_rollout(client, rollout):
    rollout("assistant-v3")
    payload = json.loads(FLAGGER_PAYLOAD)
    payload["metadata"]["rollout_id"] = "assistant-v3"
    answer = hook(client, "confirm-rollout", json.dumps(payload))
    assert answer.status_code == 200 and answer.json()["rollout_id"] == "assistant-v3"
    # Without it the canary's own name is the rollout: none here, so Flagger waits (404).
    assert hook(client, "confirm-rollout").status_code == 404


def test_the_token_is_required_in_metadata_or_header(client, rollout, auth):
    rollout(CANARY)
    payload = json.loads(FLAGGER_PAYLOAD)
    payload["metadata"]["token"] = "not-the-token-at-all"
    assert hook(client, "confirm-rollout", json.dumps(payload)).status_code == 401
    del payload["metadata"]["token"]
    assert hook(client, "confirm-rollout", json.dumps(payload)).status_code == 401
    assert hook(client, "confirm-rollout", json.dumps(payload), auth).status_code == 200
    assert hook(client, "pre-rollout").status_code == 422  # not a hook scaleguard answers


def test_a_flagger_behind_scaleguard_catches_up_one_step_an_interval(client, rollout, observe,
                                                                     rows):
    rollout(CANARY)
    observe(CANARY, rows("pilot"))
    observe(CANARY, rows("broad"))  # scaleguard at "half" before Flagger asked once
    taken = [hook(client, "confirm-traffic-increase") for _ in range(4)]
    assert [t.status_code for t in taken] == [200, 200, 200, 409]
    assert [t.json()["why"].split(": ")[1] for t in taken[:3]] == \
        ["stage 'pilot''s traffic 0.05", "stage 'broad''s traffic 0.2",
         "stage 'half''s traffic 0.5"]
