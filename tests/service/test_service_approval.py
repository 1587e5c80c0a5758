"""Manual approval through the API (who and when, in the audit log) and the page's history.

Each test runs over in-memory DuckDB and a fresh PostgreSQL database (``make_client``).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError
from scaleguard.service._auth import read_token_file, token_identity

TOKEN = "test-token-0123456789abcdef"  # conftest's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DIGEST = hashlib.sha256(TOKEN.encode()).digest()
PLAN = {"name": "approval-plan", "alpha": 0.05,
        "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005}],
        "segments": {"region": ["us", "eu"]},
        "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": "1h"},
                   {"name": "wide", "traffic": 0.5, "manual_approval": True},
                   {"name": "all", "traffic": 1.0}]}


def _rows(stage: str, harmful: int = 2_000) -> list[dict[str, Any]]:
    """A window per arm and region: 1% harm in control, ``harmful`` in 200,000 in treatment."""
    return [{"stage": stage, "arm": arm, "metric": "harm", "region": region,
             "exposures": 200_000, "events": 2_000 if arm == "control" else harmful}
            for arm in ("control", "treatment") for region in ("us", "eu")]


def _waiting(client: Any, rollout: str = "ro") -> float:
    """A rollout whose pilot gates all pass past its minimum hour: it waits for 'wide'."""
    now = time.time()
    made = client.post("/api/v1/rollouts", headers=AUTH,
                       json={"plan": PLAN, "rollout_id": rollout, "started_at": now - 7000})
    assert made.status_code == 201, made.text
    held = client.post(f"/api/v1/rollouts/{rollout}/observations", headers=AUTH,
                       json={"rows": _rows("pilot"), "now": now - 3000}).json()
    assert held["action"] == "hold" and "awaits manual approval" in held["reasons"][-1]
    return now


def _stored(client: Any, rollout: str = "ro") -> tuple[Any, Any]:
    return (client.get(f"/api/v1/rollouts/{rollout}", headers=AUTH).json()["state"],
            client.get(f"/api/v1/rollouts/{rollout}/audit", headers=AUTH).json())


def test_an_approval_records_who_and_when_and_the_next_decision_enters_the_stage(make_client):
    client = make_client(token_names={DIGEST: "alice"})
    now = _waiting(client)
    shown = client.get("/api/v1/rollouts/ro", headers=AUTH).json()
    assert shown["awaiting_approval"] == "wide" and shown["approved"] == []
    before = time.time()
    answer = client.post("/api/v1/rollouts/ro/approve", headers=AUTH,
                         json={"stage": "wide", "note": "reviewed the pilot's harm reports"})
    assert answer.status_code == 201, answer.text
    approval = answer.json()
    assert approval["approved_by"] == "alice" and approval["stage"] == "wide"
    assert before <= approval["time"] <= time.time()  # the service's clock, not the client's
    audit = client.get("/api/v1/rollouts/ro/audit", headers=AUTH).json()
    assert [a["action"] for a in audit] == ["hold", "approve"]
    assert audit[-1]["kind"] == "approval" and audit[-1]["approved_by"] == "alice"
    assert audit[-1]["note"] == "reviewed the pilot's harm reports"
    assert "alice approved entering stage 'wide'" in audit[-1]["reasons"][0]
    # The latest *decision* is still the controller's hold; the rollout waits no more.
    assert client.get("/api/v1/rollouts/ro/decision", headers=AUTH).json()["action"] == "hold"
    shown = client.get("/api/v1/rollouts/ro", headers=AUTH).json()
    assert shown["awaiting_approval"] is None and shown["approved"] == ["wide"]
    assert shown["last_action"] == "approve" and shown["traffic"] == 0.05

    decided = client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                          json={"rows": [], "now": now - 2000}).json()
    assert decided["action"] == "advance" and decided["stage"] == "wide"
    assert decided["traffic"] == 0.5 and decided["state"]["decisions"] == 3
    history = client.get("/api/v1/rollouts/ro/history", headers=AUTH).json()
    assert history["approvals"] == [{"seq": 2, "time": approval["time"], "stage": "wide",
                                     "approved_by": "alice",
                                     "note": "reviewed the pilot's harm reports"}]


def test_without_an_approval_the_rollout_keeps_holding(make_client):
    client = make_client()
    now = _waiting(client)
    again = client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                        json={"rows": [], "now": now - 2000}).json()
    assert again["action"] == "hold" and again["traffic"] == 0.05
    assert client.get("/api/v1/rollouts/ro", headers=AUTH).json()["awaiting_approval"] == "wide"


def _refused(client: Any, body: dict[str, Any], status: int, words: str,
             rollout: str = "ro") -> None:
    """The approval is refused with ``status`` naming ``words``, and nothing is stored."""
    before = _stored(client, rollout)
    answer = client.post(f"/api/v1/rollouts/{rollout}/approve", headers=AUTH, json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]
    assert _stored(client, rollout) == before


def test_approving_what_does_not_wait_is_409_and_stores_nothing(make_client):
    client = make_client()
    now = time.time()
    client.post("/api/v1/rollouts", headers=AUTH,
                json={"plan": PLAN, "rollout_id": "ro", "started_at": now - 7000})
    # Before any decision: the pilot's gates have not passed yet.
    _refused(client, {"stage": "wide"}, 409, "have not all passed")
    _refused(client, {"stage": "all"}, 409, "does not ask for its approval")
    _refused(client, {"stage": "pilot"}, 409, "entered it already")
    _refused(client, {"stage": "nowhere"}, 422, "not a stage of plan 'approval-plan'")
    client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                json={"rows": _rows("pilot"), "now": now - 3000})
    assert client.post("/api/v1/rollouts/ro/approve", headers=AUTH,
                       json={"stage": "wide"}).status_code == 201
    _refused(client, {"stage": "wide"}, 409, "approved already")  # twice
    client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                json={"rows": [], "now": now - 2000})
    _refused(client, {"stage": "wide"}, 409, "approved already")  # entered, still twice
    _refused(client, {"stage": "all"}, 409, "does not ask for its approval")


def test_approvals_sent_with_observations_name_who_in_the_decisions_record(make_client):
    client = make_client(token_names={DIGEST: "alice"})
    now = _waiting(client)
    entered = client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                          json={"rows": [], "now": now - 2000, "approve": ["wide"]})
    assert entered.json()["action"] == "advance"
    record = client.get("/api/v1/rollouts/ro/audit", headers=AUTH).json()[-1]
    assert record["approve"] == ["wide"] and record["approved_by"] == "alice"


def test_a_deploy_tool_confirmation_after_the_hold_neither_blocks_nor_draws(make_client):
    from scaleguard.monitor import RolloutChange

    client = make_client()
    _waiting(client)
    store = client.app.state.store

    def confirm(record: Any, _rows: Any) -> Any:  # what a Flagger confirmation writes
        state = {**record.state, "decisions": record.state["decisions"] + 1}
        entry = {"kind": "flagger", "hook": "confirm-traffic-increase", "stage": "pilot",
                 "traffic": 0.05, "time": time.time()}
        return RolloutChange(state, entry, state["decisions"], time.time(), time.time())

    store.update_rollout("ro", confirm)
    assert client.get("/api/v1/rollouts/ro", headers=AUTH).json()["awaiting_approval"] == "wide"
    history = client.get("/api/v1/rollouts/ro/history", headers=AUTH).json()
    assert [p["action"] for p in history["ramp"]] == ["start", "hold"]
    assert history["awaiting_approval"] == "wide"
    approved = client.post("/api/v1/rollouts/ro/approve", headers=AUTH, json={"stage": "wide"})
    assert approved.status_code == 201 and approved.json()["state"]["decisions"] == 3


def test_the_scheduler_s_next_look_honours_a_stored_approval(make_client):
    from scaleguard.service._scheduler import LookScheduler

    client = make_client()
    _waiting(client)
    assert client.post("/api/v1/rollouts/ro/approve", headers=AUTH,
                       json={"stage": "wide"}).status_code == 201
    # The plan's look interval (1 h by default) after the approval: a look is due.
    assert LookScheduler(client.app.state.store).tick(time.time() + 3601) == ["ro"]
    last = client.get("/api/v1/rollouts/ro/decision", headers=AUTH).json()
    assert last["action"] == "advance" and last["stage"] == "wide"


def test_approving_a_finished_rollout_is_409(make_client):
    client = make_client()
    now = time.time()
    client.post("/api/v1/rollouts", headers=AUTH,
                json={"plan": PLAN, "rollout_id": "ro", "started_at": now - 7000})
    # Five times the harm in treatment: a critical guardrail fails, the rollout rolls back.
    rolled = client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                         json={"rows": _rows("pilot", harmful=12_000), "now": now - 3000})
    assert rolled.json()["action"] == "roll_back"
    _refused(client, {"stage": "wide"}, 409, "the rollout is rolled back")


def test_approval_needs_a_write_token_and_a_known_rollout(make_client):
    client = make_client(open_reads=True)
    _waiting(client)
    for headers in ({}, {"Authorization": "Bearer not-a-valid-token-at-all"}):
        before = _stored(client)
        answer = client.post("/api/v1/rollouts/ro/approve", headers=headers,
                             json={"stage": "wide"})
        assert answer.status_code == 401 and _stored(client) == before
    missing = client.post("/api/v1/rollouts/nope/approve", headers=AUTH, json={"stage": "wide"})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    # Unnamed tokens are named by their digest's first hex digits.
    approved = client.post("/api/v1/rollouts/ro/approve", headers=AUTH, json={"stage": "wide"})
    assert approved.json()["approved_by"] == token_identity(TOKEN, {}) == \
        f"token {DIGEST.hex()[:8]}"


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.fixed_dictionaries({"stage": st.text(max_size=30)},
                          optional={"note": st.one_of(st.none(), st.text(max_size=1_200))}),
    st.dictionaries(st.sampled_from(["stage", "note", "by", "time"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=5),
                              st.lists(st.integers(), max_size=2)), max_size=4)))
def test_fuzzed_approval_bodies_are_refused_with_4xx_unless_they_approve_the_waiting_stage(
        client, body):
    if client.get("/api/v1/rollouts/ro", headers=AUTH).status_code == 404:
        _waiting(client)
    before = _stored(client)
    answer = client.post("/api/v1/rollouts/ro/approve", headers=AUTH, json=body)
    valid = set(body) <= {"stage", "note"} and body.get("stage") == "wide" and \
        (body.get("note") is None or isinstance(body["note"], str) and len(body["note"]) <= 1_000)
    waiting = before[0]["approved"] == []
    if valid and waiting:
        assert answer.status_code == 201, answer.text
        assert _stored(client)[1][-1]["kind"] == "approval"
    else:
        assert answer.status_code in (409, 422), answer.text
        assert answer.json()["error"] and "\n" not in answer.json()["error"]
        assert _stored(client) == before


def test_history_gives_the_ramp_each_gates_confidence_sequence_and_the_srm_check(make_client):
    client = make_client(token_names={DIGEST: "alice"})
    now = _waiting(client)
    client.post("/api/v1/rollouts/ro/approve", headers=AUTH, json={"stage": "wide"})
    for when, rows in ((now - 2000, []), (now - 1000, _rows("wide"))):
        client.post("/api/v1/rollouts/ro/observations", headers=AUTH,
                    json={"rows": rows, "now": when})
    history = client.get("/api/v1/rollouts/ro/history", headers=AUTH).json()
    audit = client.get("/api/v1/rollouts/ro/audit", headers=AUTH).json()
    assert history["complete"] and history["looks"] == len(audit) == 4
    assert history["entries"] == audit  # the newest entries (all four here), whole
    # The ramp: the start, then the traffic after each decision (the approval moves none).
    assert [(p["action"], p["stage"], p["traffic"]) for p in history["ramp"]] == [
        ("start", "pilot", 0.05), ("hold", "pilot", 0.05), ("advance", "wide", 0.5),
        ("advance", "all", 1.0)]  # wide has no minimum duration: its gates pass at once
    assert history["ramp"][0]["time"] == audit[0]["state"]["stage_started"] == \
        pytest.approx(now - 7000)  # the rollout's start, before its first look
    # One series a gate; each look's bounds are those of that decision's evidence.
    decisions = [a for a in audit if a.get("kind") != "approval"]
    keys = {f"{g['metric']}/{g['segment']}/{g['test']}" for a in decisions for g in a["gates"]}
    assert {g["key"] for g in history["gates"]} == keys
    comparison = next(g for g in history["gates"] if g["key"] == "harm/region=eu/comparison")
    looked = [(a["state"]["decisions"], g) for a in decisions for g in a["gates"]
              if g["segment"] == "region=eu" and g["test"] == "comparison"]
    assert comparison["seq"] == [seq for seq, _ in looked]
    assert comparison["lower"] == [g["lower"] for _, g in looked]
    assert comparison["upper"] == [g["upper"] for _, g in looked]
    assert comparison["limit"] == [0.005] * len(looked)  # the margin
    assert all(u < 0.005 for u in comparison["upper"])  # a pass: upper bound below the margin
    guardrail = next(g for g in history["gates"] if g["key"] == "harm/overall/guardrail")
    assert guardrail["limit"][0] == 0.0 and guardrail["upper"][0] < 0  # rate below 0.05
    assert [s["seq"] for s in history["srm"]] == [1, 3, 4]
    assert not any(s["mismatch"] for s in history["srm"])
    assert history["srm_latest"] == decisions[-1]["srm"]
    assert [a["approved_by"] for a in history["approvals"]] == ["alice"]
    # Only the newest looks: the ramp has no start point then.
    newest = client.get("/api/v1/rollouts/ro/history?looks=2", headers=AUTH).json()
    assert not newest["complete"] and [p["seq"] for p in newest["ramp"]] == [3, 4]
    assert client.get("/api/v1/rollouts/ro/history?looks=0", headers=AUTH).status_code == 422


def test_a_token_file_names_its_tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# release owners\nalice {TOKEN}\nbob sha256:{'ab' * 32}\n"
                    "an-unnamed-token-0123456789\n", encoding="utf-8")
    tokens = read_token_file(path)
    assert len(tokens.digests) == 3
    assert token_identity(TOKEN, tokens.names) == "alice"
    assert tokens.names[bytes.fromhex("ab" * 32)] == "bob"
    assert token_identity("an-unnamed-token-0123456789", tokens.names).startswith("token ")
    path.write_text(f"alice {TOKEN}\nalice sha256:{'ab' * 32}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: name 'alice' is given to another token"):
        read_token_file(path)
