import json
import re

import pandas as pd
import pytest

from scaleguard.errors import ConfigError, InputError, TableError
from scaleguard.safety import (
    FileRolloutStore,
    RolloutState,
    audit_record,
    check_observations,
    decide,
    initial_state,
    parse_plan,
)

HOUR = 3600.0


def make_plan(**extra) -> object:
    data = {
        "name": "test",
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
    data.update(extra)
    return parse_plan(data)


def rows(stage, cells, time=None):
    """cells: {(arm, region): (exposures, events)}"""
    out = []
    for (arm, region), (n, k) in cells.items():
        row = {"stage": stage, "arm": arm, "metric": "harm", "region": region,
               "exposures": n, "events": k}
        if time is not None:
            row["time"] = time
        out.append(row)
    return out


def frame(plan, records):
    return check_observations(pd.DataFrame(records), plan)


CLEAN = {("control", "us"): (200_000, 2000), ("treatment", "us"): (200_000, 2000),
         ("control", "eu"): (200_000, 2000), ("treatment", "eu"): (200_000, 2000)}


def test_clean_data_advance_after_minimum_duration_and_not_before():
    plan = make_plan()
    state = initial_state(plan, now=0.0)
    early = decide(plan, state, frame(plan, rows("pilot", CLEAN)), now=0.5 * HOUR)
    assert early.action == "continue" and "minimum duration" in early.reasons[-1]
    later = decide(plan, early.state, frame(plan, rows("pilot", CLEAN)), now=2 * HOUR)
    # Entering "wide" needs a person's approval: hold, not advance.
    assert later.action == "hold" and "manual approval" in later.reasons[-1]
    approved = decide(plan, later.state, frame(plan, rows("pilot", CLEAN)), now=2 * HOUR,
                      approvals={"wide"})
    assert approved.action == "advance" and approved.stage == "wide"
    assert approved.traffic == 0.5 and approved.state.stage_index == 1
    assert all(g.verdict == "pass" for g in approved.gates)
    assert approved.state.decisions == 3


def test_simpsons_paradox_is_caught_in_the_segment_and_named():
    # Treatment looks better overall (1.125% vs 1.75%) because it got more low-risk US traffic,
    # but in the EU it is worse (3% vs 2%).
    cells = {("control", "us"): (100_000, 1000), ("treatment", "us"): (300_000, 1500),
             ("control", "eu"): (300_000, 6000), ("treatment", "eu"): (100_000, 3000)}
    plan = make_plan()
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", cells)),
                      now=2 * HOUR)
    overall = next(g for g in decision.gates if g.segment == "overall" and g.test ==
                   "comparison")
    assert overall.estimate < 0 and overall.verdict != "fail"
    assert decision.action == "roll_back" and decision.traffic == 0.0
    assert [g.segment for g in decision.failing] == ["region=eu"]
    assert "region=eu" in decision.reasons[0]
    assert decision.state.status == "rolled_back"
    again = decide(plan, decision.state, frame(plan, rows("pilot", CLEAN)), now=3 * HOUR)
    assert again.action == "roll_back" and "already rolled back" in again.reasons[0]


def test_non_critical_failure_holds_instead_of_rolling_back():
    plan = make_plan(metrics=[{"name": "harm", "guardrail": 0.05, "margin": 0.005,
                               "critical": False}])
    cells = dict(CLEAN)
    cells[("treatment", "eu")] = (200_000, 4000)  # 2% against 1%: beyond the 0.5% margin
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", cells)),
                      now=2 * HOUR)
    assert decision.action == "hold" and "non-critical" in decision.reasons[0]


def test_missing_segment_or_arm_never_advances():
    plan = make_plan()
    no_eu = {k: v for k, v in CLEAN.items() if k[1] == "us"}
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", no_eu)),
                      now=2 * HOUR)
    assert decision.action == "hold" and "missing data" in decision.reasons[0]
    assert "region=eu" in decision.reasons[0]
    no_control = {k: v for k, v in CLEAN.items() if k[0] == "treatment"}
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", no_control)),
                      now=2 * HOUR)
    assert decision.action == "hold" and "control" in decision.reasons[0]


def test_late_data_never_advances():
    plan = make_plan()
    records = rows("pilot", CLEAN, time="1970-01-01T00:30:00Z")
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, records), now=5 * HOUR,
                      approvals={"wide"})
    assert decision.action == "hold" and "late data" in decision.reasons[0]
    fresh = decide(plan, initial_state(plan, 0.0), frame(plan, records), now=2 * HOUR,
                   approvals={"wide"})
    assert fresh.action == "advance"


def test_inconclusive_stage_past_max_duration_holds():
    plan = make_plan()
    few = {k: (500, 5) for k in CLEAN}
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", few)),
                      now=30 * HOUR)
    assert decision.action == "hold" and "max_duration" in decision.reasons[-1]


def test_state_and_audit_survive_a_restart(tmp_path):
    plan = make_plan()
    data = frame(plan, rows("pilot", CLEAN))
    store = FileRolloutStore(tmp_path / "rollout")
    assert store.load_state() is None and store.audit() == []
    first = decide(plan, initial_state(plan, 0.0), data, now=0.5 * HOUR)
    store.append_audit(audit_record(plan.name, first, "obs.csv"))
    store.save_state(first.state)
    # A new process: a fresh store object on the same folder picks up where the last left.
    reopened = FileRolloutStore(tmp_path / "rollout")
    state = reopened.load_state()
    assert state == first.state
    second = decide(plan, state, data, now=2 * HOUR, approvals={"wide"})
    reopened.append_audit(audit_record(plan.name, second))
    reopened.save_state(second.state)
    log = reopened.audit()
    assert [r["action"] for r in log] == ["continue", "advance"]
    assert log[0]["observations"] == "obs.csv" and log[1]["gates"][0]["metric"] == "harm"
    assert json.loads((tmp_path / "rollout" / "state.json").read_text())["stage_index"] == 1
    assert not list((tmp_path / "rollout").glob(".state.*"))  # no temporary file left


def test_corrupt_state_is_refused_by_name(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="state.json: unreadable rollout state"):
        FileRolloutStore(tmp_path).load_state()
    (tmp_path / "state.json").write_text(json.dumps({"plan": "x", "colour": 1}))
    with pytest.raises(ConfigError, match="state.json: stage_index: missing required field"):
        FileRolloutStore(tmp_path).load_state()


def test_adaptive_steps_grow_after_clean_stages_and_ramp():
    plan = make_plan(adaptive={"enabled": True, "initial_step": 4, "grow": 2},
                     stages=[{"name": "pilot", "traffic": 0.01},
                             {"name": "wide", "traffic": 0.5}, {"name": "all", "traffic": 1.0}])
    state = initial_state(plan, 0.0)
    first = decide(plan, state, frame(plan, rows("pilot", CLEAN)), now=HOUR)
    # Clean stage: the step grows from 4 to 8, so "wide" starts at 0.08, not 0.5.
    assert first.action == "advance" and first.state.step == 8
    assert first.traffic == pytest.approx(0.08) and first.stage == "wide"
    ramp = decide(plan, first.state, frame(plan, rows("wide", CLEAN)), now=2 * HOUR)
    assert ramp.action == "advance" and ramp.stage == "wide"
    assert ramp.traffic == pytest.approx(0.5)  # min(0.5, 0.08 x 8)


def test_adaptive_step_shrinks_after_a_close_call():
    plan = make_plan(adaptive={"enabled": True, "initial_step": 4, "shrink": 0.5,
                               "close_call": 0.5},
                     stages=[{"name": "pilot", "traffic": 0.01},
                             {"name": "all", "traffic": 1.0}])
    state = RolloutState(plan="test", stage_index=0, traffic=0.01, step=4.0,
                         stage_min_adjusted_p=0.3)
    decision = decide(plan, state, frame(plan, rows("pilot", CLEAN)), now=HOUR)
    assert decision.action == "advance" and decision.state.step == 2.0
    assert decision.traffic == pytest.approx(0.02)


def test_previous_stage_comparison_and_last_stage_completes():
    plan = make_plan(metrics=[{"name": "harm", "margin": 0.005, "compare_to": "previous_stage"}],
                     stages=[{"name": "pilot", "traffic": 0.1, "metrics": []},
                             {"name": "all", "traffic": 1.0}])
    records = rows("pilot", CLEAN) + rows("all", CLEAN)
    state = RolloutState(plan="test", stage_index=1, traffic=1.0)
    decision = decide(plan, state, frame(plan, records), now=HOUR)
    assert decision.action == "advance" and decision.state.status == "complete"
    assert decision.gates[0].comparator_exposures == 400_000


def test_group_sequential_plan_decides_with_spending_boundaries():
    plan = make_plan(error_control={"method": "group_sequential"},
                     stages=[{"name": "pilot", "traffic": 0.1, "max_exposures": 400_000},
                             {"name": "all", "traffic": 1.0, "max_exposures": 1_000_000}])
    bad = dict(CLEAN)
    bad[("treatment", "us")] = (200_000, 4000)
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", bad)), now=HOUR)
    assert decision.action == "roll_back" and decision.state.fractions == (1.0,)
    clean = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", CLEAN)), now=HOUR)
    assert clean.action == "advance"


@pytest.mark.parametrize(("change", "message"), [
    ({"stage": "beta"}, "row 1 (line 1): column 'stage' is 'beta', expected a stage"),
    ({"arm": "canary"}, "column 'arm' is 'canary', expected control or treatment"),
    ({"metric": "toxicity"}, "column 'metric' is 'toxicity'"),
    ({"events": 5, "exposures": 3}, "column 'events' is 5.0, more events than exposures"),
    ({"exposures": -1}, "column 'exposures' is -1, expected a number >= 0"),
    ({"events": "many"}, "column 'events' is 'many', expected a number"),
    ({"time": "yesterday"}, "column 'time' is 'yesterday', expected an ISO 8601 time"),
    ({"units": 11}, "column 'units' is 11, more units than exposures"),
    ({"units": -2}, "column 'units' is -2, expected a number >= 0"),
    ({"units": "all"}, "column 'units' is 'all', expected a count of units"),
    ({"units": float("inf")}, "column 'units' is inf, expected a count of units"),
])
def test_bad_observation_rows_are_refused_by_row(change, message):
    plan = make_plan()
    record = {"stage": "pilot", "arm": "treatment", "metric": "harm", "region": "us",
              "exposures": 10, "events": 1, "time": 0}
    record.update(change)
    with pytest.raises(TableError, match=re.escape(message)):
        check_observations(pd.DataFrame([record]), plan)


@pytest.mark.parametrize(("column", "value"), [("mean", 1e300), ("mean", -1e101),
                                              ("var", 1e250)])
def test_a_mean_or_variance_too_large_to_pool_is_refused(column, value):
    # n x mean^2 of a cell would overflow to inf and leave its gate NaN for good
    plan = make_plan(metrics=[{"name": "score", "kind": "mean", "margin": 1.0}])
    record = {"stage": "pilot", "arm": "treatment", "metric": "score", "region": "us",
              "n": 1e15, "mean": 2.0, "var": 1.0, column: value}
    with pytest.raises(TableError, match=f"column '{column}' is .*at most"):
        check_observations(pd.DataFrame([record]), plan)


def test_missing_count_column_is_refused():
    plan = make_plan()
    with pytest.raises(TableError, match="missing column 'events'"):
        check_observations(pd.DataFrame([{"stage": "pilot", "arm": "control", "metric": "harm",
                                          "exposures": 5}]), plan)


def test_a_rollout_kept_in_a_monitor_store(store_url):
    """DatabaseRolloutStore: the same protocol as the file store, on DuckDB and PostgreSQL."""
    from scaleguard.monitor import open_store
    from scaleguard.safety import DatabaseRolloutStore

    plan = make_plan()
    data = frame(plan, rows("pilot", CLEAN))
    with open_store(store_url) as store:
        rollout = DatabaseRolloutStore(store, "r-1")
        assert rollout.load_state() is None and not rollout.exists()
        state = initial_state(plan, 0.0)
        assert rollout.create(plan.name, plan.model_dump(mode="json"), state)
        assert not rollout.create(plan.name, plan.model_dump(mode="json"), state)
        decision = decide(plan, state, data, now=0.5 * HOUR)
        rollout.record_decision(decision, audit_record(plan.name, decision, "obs.csv"),
                                [{"stage": "pilot", "arm": "control", "metric": "harm",
                                  "exposures": 10, "events": 0, "time": 1.0}])
    with open_store(store_url) as store:
        reopened = DatabaseRolloutStore(store, "r-1")
        assert reopened.load_state() == decision.state
        records = reopened.audit()
        assert [r["action"] for r in records] == ["continue"]
        assert records[0]["gates"][0]["metric"] == "harm"
        assert [w["exposures"] for w in reopened.observations()] == [10]
        reopened.save_state(initial_state(plan, 0.0))
        reopened.append_audit({"action": "note", "time": 2.0})
        assert reopened.load_state() == initial_state(plan, 0.0)
        assert [r["action"] for r in reopened.audit()] == ["continue", "note"]
        with pytest.raises(InputError, match="rollout 'nope': no such rollout"):
            DatabaseRolloutStore(store, "nope").save_state(state)


def test_decisions_are_strict_json_even_with_empty_arms():
    plan = make_plan()
    cells = dict(CLEAN)
    cells[("treatment", "eu")] = (0, 0)  # an arm with no exposures yet: no evidence, no NaN
    decision = decide(plan, initial_state(plan, 0.0), frame(plan, rows("pilot", cells)),
                      now=2 * HOUR)
    text = json.dumps(decision.as_dict(), allow_nan=False)
    assert decision.action in ("continue", "hold") and '"region=eu"' in text


def test_mean_quantile_and_higher_is_better_metrics():
    plan = parse_plan({
        "name": "kinds", "metrics": [
            {"name": "latency", "kind": "mean", "guardrail": 1.5, "margin": 0.05},
            {"name": "p99", "kind": "quantile", "quantile": 0.99, "guardrail": 2.0,
             "margin": 0.002},
            {"name": "helpful", "direction": "higher_is_better", "guardrail": 0.6,
             "margin": 0.01}],
        "stages": [{"name": "pilot", "traffic": 0.1}, {"name": "all", "traffic": 1.0}]})

    def records(latency_t, helpful_t):
        out = []
        for arm, latency, helpful in (("control", 1.0, 0.80), ("treatment", latency_t,
                                                                 helpful_t)):
            out.append({"stage": "pilot", "arm": arm, "metric": "latency", "n": 50_000,
                        "mean": latency, "var": 0.25})
            out.append({"stage": "pilot", "arm": arm, "metric": "p99", "exposures": 50_000,
                        "events": 250})
            out.append({"stage": "pilot", "arm": arm, "metric": "helpful",
                        "exposures": 50_000, "events": int(helpful * 50_000)})
        return check_observations(pd.DataFrame(out), plan)

    good = decide(plan, initial_state(plan, 0.0), records(1.0, 0.80), now=HOUR)
    assert good.action == "advance", good.reasons
    slow = decide(plan, initial_state(plan, 0.0), records(1.1, 0.80), now=HOUR)
    assert slow.action == "roll_back" and {g.metric for g in slow.failing} == {"latency"}
    unhelpful = decide(plan, initial_state(plan, 0.0), records(1.0, 0.75), now=HOUR)
    assert unhelpful.action == "roll_back"
    assert {g.metric for g in unhelpful.failing} == {"helpful"}
    gate = next(g for g in unhelpful.gates if g.metric == "helpful" and g.test == "comparison")
    assert gate.estimate == pytest.approx(0.05)  # harm direction: 5 points less helpful
