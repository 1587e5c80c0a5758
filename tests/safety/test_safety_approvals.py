"""Manual approval, pure: when a stage waits, what approving records, what decisions then do."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError, InputError, StateConflict
from scaleguard.safety import RolloutState, check_observations, decide, initial_state, parse_plan
from scaleguard.safety._approvals import approve, awaiting_approval, is_approval
from scaleguard.safety._store import audit_record

PLAN = parse_plan({"name": "approvals", "alpha": 0.05,
                   "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005}],
                   "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": 3600},
                              {"name": "wide", "traffic": 0.5, "manual_approval": True},
                              {"name": "all", "traffic": 1.0}]})
START = 1_000_000.0


def _rows(treatment_events: int, exposures: int = 200_000) -> pd.DataFrame:
    frame = pd.DataFrame([{"stage": "pilot", "arm": arm, "metric": "harm",
                           "exposures": exposures, "time": START + 100,
                           "events": exposures // 100 if arm == "control" else
                           treatment_events}
                          for arm in ("control", "treatment")])
    return check_observations(frame, PLAN)


def _look(state: RolloutState, rows: pd.DataFrame, at: float) -> tuple[RolloutState, dict]:
    decision = decide(PLAN, state, rows, at)
    return decision.state, audit_record(PLAN.name, decision)


def test_a_stored_approval_lets_the_next_decision_enter_the_stage_without_being_passed_again():
    state, last = _look(initial_state(PLAN, START), _rows(2_000), START + 4000)
    assert last["action"] == "hold" and awaiting_approval(PLAN, state, last) == "wide"
    approval = approve(PLAN, state, last, "wide", "alice", START + 4100, "pilot reviewed")
    record = approval.as_dict()
    assert is_approval(record) and record["approved_by"] == "alice"
    assert record["state"]["approved"] == ["wide"] and record["state"]["decisions"] == 2
    # The stored state round-trips, and decide() honours it with no approvals passed in.
    stored = RolloutState.from_dict(record["state"])
    assert stored == approval.state
    after, entered = _look(stored, _rows(2_000), START + 4200)
    assert entered["action"] == "advance" and after.stage_index == 1 and after.traffic == 0.5
    assert after.decisions == 3 and after.approved == ("wide",)
    assert awaiting_approval(PLAN, after, entered) is None


def test_refusals_say_why():
    state = initial_state(PLAN, START)
    with pytest.raises(InputError, match="'nowhere' is not a stage of plan 'approvals'"):
        approve(PLAN, state, None, "nowhere", "alice", START)
    with pytest.raises(StateConflict, match="have not all passed"):
        approve(PLAN, state, None, "wide", "alice", START)
    held, last = _look(state, _rows(2_000), START + 4000)
    with pytest.raises(InputError, match="approved_by"):
        approve(PLAN, held, last, "wide", "  ", START)
    with pytest.raises(InputError, match="note: 1001 characters"):
        approve(PLAN, held, last, "wide", "alice", START, "x" * 1001)
    # A decision since the one read (another look, another replica) makes the read stale;
    # an entry that only adds to the count (a deploy tool's confirmation) does not.
    with pytest.raises(StateConflict):
        approve(PLAN, replace(held, min_p={**held.min_p, "harm/overall/guardrail": 0.5}),
                last, "wide", "alice", START)
    counted = replace(held, decisions=held.decisions + 1)
    assert approve(PLAN, counted, last, "wide", "alice", START).state.decisions == \
        held.decisions + 2
    rolled, last = _look(state, _rows(12_000), START + 4000)
    assert rolled.status == "rolled_back"
    with pytest.raises(StateConflict, match="rolled back"):
        approve(PLAN, rolled, last, "wide", "alice", START)


def test_a_corrupt_stored_approval_list_is_refused_by_name():
    data = initial_state(PLAN, START).as_dict()
    with pytest.raises(ConfigError, match="approved"):
        RolloutState.from_dict({**data, "approved": ["ok"] * 1_001})
    with pytest.raises(ConfigError, match="approved"):
        RolloutState.from_dict({**data, "approved": [""]})


@settings(max_examples=30, deadline=None)
@given(events=st.integers(0, 20_000), exposures=st.integers(100, 400_000),
       hours=st.floats(0.1, 3.0))
def test_a_stage_waits_exactly_when_the_only_thing_missing_is_the_approval(events, exposures,
                                                                            hours):
    # Whatever the data: approving the waiting stage makes the same look advance into it, and
    # nothing waits when that same look, approved in advance, would not enter the stage.
    rows, at = _rows(min(events, exposures), exposures), START + hours * 3600
    state, last = _look(initial_state(PLAN, START), rows, at)
    pre_approved = decide(PLAN, initial_state(PLAN, START), rows, at, frozenset({"wide"}))
    waiting = awaiting_approval(PLAN, state, last)
    assert (waiting == "wide") == (pre_approved.state.stage_index == 1)
    if waiting:
        approved = approve(PLAN, state, last, "wide", "alice", at).state
        again = decide(PLAN, approved, rows, at + 1)
        assert again.action == "advance" and again.state.stage_index == 1
    else:
        with pytest.raises(StateConflict):
            approve(PLAN, state, last, "wide", "alice", at)
