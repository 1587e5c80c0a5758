"""Non-inferiority margins mean what release owners read: worse by up to the margin is fine."""

import math

import pandas as pd
import pytest

from scaleguard.errors import ConfigError
from scaleguard.safety import check_observations, decide, initial_state, parse_plan, plan_schema

HOUR = 3600.0


def latency_plan(**metric):
    return parse_plan({
        "name": "latency", "metrics": [{"name": "latency_ms", "kind": "mean", "margin": 50,
                                        **metric}],
        "stages": [{"name": "pilot", "traffic": 0.1}, {"name": "all", "traffic": 1.0}]})


def latency_rows(plan, treatment_mean=106.46):
    # The reproduction: +6.46 ms with confidence sequence [2.74, 10.18] (sd 50, n 5000).
    frame = pd.DataFrame([
        {"stage": "pilot", "arm": "control", "metric": "latency_ms", "n": 5000, "mean": 100.0,
         "var": 2500.0},
        {"stage": "pilot", "arm": "treatment", "metric": "latency_ms", "n": 5000,
         "mean": treatment_mean, "var": 2500.0}])
    return check_observations(frame, plan)


def test_a_harm_well_inside_the_margin_passes_the_comparison_gate():
    plan = latency_plan()
    decision = decide(plan, initial_state(plan, 0.0), latency_rows(plan), now=HOUR)
    gate = decision.gates[0]
    assert gate.test == "comparison" and gate.verdict == "pass"
    assert gate.lower == pytest.approx(2.74, abs=0.01) and gate.upper == pytest.approx(10.18,
                                                                                       abs=0.01)
    assert decision.action == "advance"
    assert "upper confidence bound" in decision.reasons[-1] and "margin" in decision.reasons[-1]


def test_strict_keeps_any_shown_harm_failing():
    plan = latency_plan(strict=True)
    decision = decide(plan, initial_state(plan, 0.0), latency_rows(plan), now=HOUR)
    assert decision.gates[0].verdict == "fail" and decision.action == "roll_back"
    assert "strict" in decision.reasons[0] and "at all" in decision.reasons[0]


def test_a_harm_beyond_the_margin_fails_and_says_so():
    plan = latency_plan()
    decision = decide(plan, initial_state(plan, 0.0), latency_rows(plan, 180.0), now=HOUR)
    assert decision.gates[0].verdict == "fail" and decision.action == "roll_back"
    assert decision.gates[0].lower > 50
    assert "more than the margin 50" in decision.reasons[0]


def test_a_harm_straddling_the_margin_continues():
    plan = latency_plan()
    decision = decide(plan, initial_state(plan, 0.0), latency_rows(plan, 150.0), now=HOUR)
    gate = decision.gates[0]
    assert gate.lower < 50 < gate.upper and gate.verdict == "continue"
    assert decision.action == "continue"


@pytest.mark.parametrize("margin", [math.inf, "inf", ".inf", 0, -1, math.nan])
def test_infinite_or_non_positive_margins_are_refused(margin):
    with pytest.raises(ConfigError, match=r"metrics\.0\.margin|metrics\[0\]\.margin"):
        latency_plan(margin=margin)


def test_strict_without_a_margin_is_refused():
    with pytest.raises(ConfigError, match=r"metrics\[0\]\.strict"):
        parse_plan({"name": "p", "metrics": [{"name": "h", "guardrail": 0.1, "strict": True}],
                    "stages": [{"name": "s", "traffic": 1.0}]})


def test_the_schema_defines_pass_and_fail():
    margin = plan_schema()["$defs"]["MetricSpec"]["properties"]["margin"]["description"]
    assert "upper confidence bound" in margin and "lower bound is above" in margin
