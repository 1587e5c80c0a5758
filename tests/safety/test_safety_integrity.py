"""Observation integrity: every bad-data case of issue #12 never advances a rollout, and its
reason names the problem (or the input is refused with exit 2 and one line naming the place)."""

import json

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.cli import main
from scaleguard.safety import (
    RolloutState,
    check_observations,
    continuous_start,
    decide,
    initial_state,
    parse_plan,
    screen_observations,
)

NOW = 1_800_000_000.0  # 2027-01-15: a fixed decision time
HOUR = 3600.0
PLAN = {
    "name": "integrity", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.02, "baseline": 0.01}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "min_exposures": 20_000, "min_duration": "1h",
                "max_duration": "1d"},
               {"name": "all", "traffic": 1.0}],
}


def records(exposures=6000, time=NOW - 600, stage="pilot"):
    """One window per arm x region: 12,000 treatment exposures at the defaults."""
    return [{"stage": stage, "arm": arm, "metric": "harm", "region": region,
             "exposures": exposures, "events": exposures // 100, "time": time}
            for arm in ("control", "treatment") for region in ("us", "eu")]


def write(tmp_path, rows, plan=PLAN):
    plan_path, obs = tmp_path / "plan.yaml", tmp_path / "obs.csv"
    plan_path.write_text(yaml.safe_dump(plan))
    pd.DataFrame(rows).to_csv(obs, index=False)
    return str(plan_path), str(obs)


def decide_json(capsys, plan_path, obs, *extra, now=NOW):
    assert main(["rollout", "decide", plan_path, "--observations", obs, "--now", str(now),
                 *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def refused(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_retried_batch_is_counted_once_and_reported(tmp_path, capsys):
    # 12,000 of 20,000 minimum exposures, sent twice: doubling would reach 24,000 and advance.
    plan_path, obs = write(tmp_path, records(time=NOW - 2 * HOUR) + records(time=NOW - 2 * HOUR))
    out = decide_json(capsys, plan_path, obs, now=NOW - HOUR + 600)
    assert out["action"] == "continue"
    assert any("12000 of 20000 minimum exposures" in r for r in out["reasons"])
    assert "4 duplicate windows ignored" in out["notes"][0] and "obs.csv: row 5" in out["notes"][0]


def test_one_row_dated_a_century_ahead_does_not_hide_late_data(tmp_path, capsys):
    rows = records(exposures=20_000, time=NOW - 4 * HOUR)
    rows[0] = {**rows[0], "time": NOW + 100 * 365 * 86400}
    plan_path, obs = write(tmp_path, rows)
    out = decide_json(capsys, plan_path, obs)
    assert out["action"] == "hold"
    assert "obs.csv: row 1" in out["reasons"][0] and "ahead of the decision time" in \
        out["reasons"][0]


def test_one_row_at_time_zero_does_not_make_a_young_stage_look_old(tmp_path, capsys):
    rows = records(exposures=20_000, time=NOW - 1800)  # a 30-minute-old stage, 1 h minimum
    rows.append({**rows[0], "time": 0, "exposures": 1, "events": 0})
    plan_path, obs = write(tmp_path, rows)
    out = decide_json(capsys, plan_path, obs)
    assert out["action"] == "hold"
    assert "obs.csv: row 5" in out["reasons"][0] and "before stage 'pilot' started" in \
        out["reasons"][0]
    clean_path, clean = write(tmp_path, records(exposures=20_000, time=NOW - 1800))
    assert decide_json(capsys, clean_path, clean)["action"] == "continue"  # 30 of 60 minutes


@pytest.mark.parametrize("now", ["nan", "-inf", "inf", "-5"])
def test_a_decision_time_that_is_not_finite_is_refused(tmp_path, capsys, now):
    plan_path, obs = write(tmp_path, records())
    err = refused(capsys, ["rollout", "decide", plan_path, "--observations", obs,
                           f"--now={now}"])
    assert "--now" in err


@pytest.mark.parametrize(("change", "column"), [
    ({"region": "mars"}, "'region' is 'mars', expected a region of the plan"),
    ({"time": -5.0}, "'time' is -5.0, expected a time at or after 1970"),
    ({"exposures": 1e300}, "'exposures' is 1e+300, expected a count of at most 2^53"),
    ({"exposures": float("inf")}, "'exposures' is inf"),
    ({"events": -1}, "'events' is -1"),
])
def test_malformed_rows_are_refused_naming_file_row_and_column(tmp_path, capsys, change, column):
    rows = records()
    rows[2] = {**rows[2], **change}
    plan_path, obs = write(tmp_path, rows)
    err = refused(capsys, ["rollout", "decide", plan_path, "--observations", obs, "--now",
                           str(NOW)])
    assert "obs.csv: row 3 (line 4): column " + column in err


@pytest.mark.parametrize(("field", "value"), [("stage_index", -1), ("stage_index", 2),
                                              ("traffic", 5.0), ("stage_started", "nan"),
                                              ("min_p", {"harm/overall/comparison": -1})])
def test_a_state_file_out_of_range_is_refused_by_field(tmp_path, capsys, field, value):
    plan_path, obs = write(tmp_path, records())
    state = initial_state(parse_plan(PLAN), NOW - HOUR).as_dict()
    state[field] = float(value) if value == "nan" else value
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps(state))
    err = refused(capsys, ["rollout", "decide", plan_path, "--observations", obs, "--now",
                           str(NOW), "--state", str(folder)])
    assert "state.json: " in err and field in err


def test_an_infinite_margin_is_refused_by_validate(tmp_path, capsys):
    plan = {**PLAN, "metrics": [{"name": "harm", "margin": float("inf")}]}
    plan_path, _ = write(tmp_path, records(), plan)
    err = refused(capsys, ["rollout", "validate", plan_path])
    assert "metrics[0].margin" in err or "metrics.0.margin" in err


def test_a_conflicting_repeat_of_a_window_is_untrusted():
    plan = parse_plan(PLAN)
    rows = records()
    rows.append({**rows[0], "events": rows[0]["events"] + 50})
    screened = screen_observations(check_observations(pd.DataFrame(rows), plan), plan, NOW)
    assert len(screened.rows) == 4 and "repeats the window of row 1" in screened.problems[0]
    decision = decide(plan, initial_state(plan, NOW - 2 * HOUR), screened, NOW)
    assert decision.action == "hold" and "conflicting" in decision.reasons[0]


def test_a_window_column_is_the_identity_when_given():
    plan = parse_plan(PLAN)
    rows = [{**r, "window": "w1"} for r in records()] + \
        [{**r, "window": "w2"} for r in records()]
    screened = screen_observations(check_observations(pd.DataFrame(rows), plan), plan, NOW)
    assert len(screened.rows) == 8 and not screened.duplicates  # two windows, same time
    again = screen_observations(check_observations(pd.DataFrame(rows + rows[:2]), plan), plan,
                                NOW)
    assert len(again.rows) == 8 and len(again.duplicates) == 2


def test_continuous_start_ignores_a_stray_early_row():
    assert continuous_start([0.0, NOW - 1800, NOW - 1200], 7200.0) == NOW - 1800
    assert continuous_start([NOW - 3 * HOUR, NOW - 2 * HOUR, NOW - HOUR], 7200.0) == \
        NOW - 3 * HOUR
    assert continuous_start([], 7200.0) is None


_CELL = st.fixed_dictionaries({
    "arm": st.sampled_from(["control", "treatment"]), "region": st.sampled_from(["us", "eu"]),
    "exposures": st.integers(0, 30_000), "events_share": st.floats(0, 0.05),
    "time": st.sampled_from([NOW - 3 * HOUR, NOW - HOUR, NOW - 60, NOW + 60, NOW + 10 * HOUR,
                             NOW - 30 * HOUR]),
    "copies": st.integers(1, 3)})


@settings(max_examples=30, deadline=None)
@given(st.lists(_CELL, min_size=1, max_size=12), st.booleans())
def test_untrusted_or_repeated_rows_never_advance_the_rollout(cells, conflict):
    """Whatever mix of retries, misdated and conflicting rows: when any row is untrusted, the
    decision is never advance; duplicates never count twice."""
    plan = parse_plan(PLAN)
    rows = []
    for cell in cells:
        row = {"stage": "pilot", "metric": "harm", "arm": cell["arm"], "region": cell["region"],
               "exposures": cell["exposures"],
               "events": int(cell["exposures"] * cell["events_share"]), "time": cell["time"]}
        rows += [row] * cell["copies"]
    if conflict:
        rows.append({**rows[0], "exposures": rows[0]["exposures"] + 1})
    state = initial_state(plan, NOW - 2 * HOUR)
    screened = screen_observations(check_observations(pd.DataFrame(rows), plan), plan, NOW,
                                   "pilot", state.stage_started)
    decision = decide(plan, state, screened, NOW)
    unique = {tuple(sorted(r.items())) for r in rows}
    assert len(screened.rows) <= len(unique)
    if screened.problems:
        assert decision.action != "advance"
        assert "untrusted" in " ".join(decision.reasons)
    if conflict:
        assert screened.problems


def test_rollout_state_round_trips_through_the_validated_model():
    state = RolloutState("p", 1, 0.5, stage_started=NOW, min_p={"a": 0.5}, fractions=(0.2,))
    assert RolloutState.from_dict(state.as_dict()) == state
