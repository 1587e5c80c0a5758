"""Human oversight capacity: a rollout never widens past what its reviewers can review."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from scaleguard.errors import ConfigError
from scaleguard.safety import Scenario, decide, initial_state, parse_plan, simulate
from scaleguard.safety._oversight import oversight_wall
from scaleguard.safety._sequential import beta_binomial_interval

HOUR = 3600.0


def plan_with(oversight: dict, stages: list[dict] | None = None):
    return parse_plan({
        "name": "assistant-v3",
        "metrics": [{"name": "harm", "guardrail": 0.05},
                    {"name": "flagged", "guardrail": 0.5, "critical": False}],
        "stages": stages or [{"name": "pilot", "traffic": 0.01},
                             {"name": "broad", "traffic": 0.3},
                             {"name": "everyone", "traffic": 1.0}],
        "oversight": oversight,
        "simulation": {"exposures_per_look": 100_000, "look_interval": "1h"},
    })


def clean_pilot(flagged: int = 100, exposures: int = 10_000) -> pd.DataFrame:
    """One hour of the pilot: no harm, ``flagged`` of ``exposures`` outputs flagged for review."""
    rows = []
    for arm in ("treatment", "control"):
        rows.append({"stage": "pilot", "arm": arm, "metric": "harm", "exposures": exposures,
                     "events": 0, "time": HOUR})
        rows.append({"stage": "pilot", "arm": arm, "metric": "flagged",
                     "exposures": exposures, "events": flagged, "time": HOUR})
    return pd.DataFrame(rows)


def test_a_next_stage_needing_three_times_the_review_capacity_holds_naming_stage_and_reviewers():
    # 1% of exposures are reviewed; 100,000 exposures/h at full traffic; "broad" is 30%:
    # 0.01 x 100,000 x 0.3 = 300 reviews/h against 2 reviewers x 50/h = 100/h: 3x capacity.
    plan = plan_with({"review_share": 0.01, "reviewers": 2, "reviews_per_hour": 50,
                      "exposures_per_hour": 100_000})
    decision = decide(plan, initial_state(plan, 0.0), clean_pilot(), HOUR)
    assert decision.action == "hold"
    assert decision.state.stage_index == 0 and decision.traffic == 0.01
    reason = decision.reasons[-1]
    assert reason.startswith("oversight capacity")
    assert "'broad'" in reason and "needs 6 reviewers" in reason
    assert "300 reviews/h" in reason and "capacity 100 reviews/h of 2 reviewers" in reason
    numbers = decision.as_dict()["oversight"]
    assert numbers["load_per_hour"] == pytest.approx(300.0)
    assert numbers["capacity_per_hour"] == 100.0
    assert numbers["load_per_hour"] / numbers["capacity_per_hour"] == pytest.approx(3.0)
    assert numbers["reviewers_needed"] == 6 and numbers["exceeds"] is True


def test_with_the_reviewers_the_projection_asks_for_the_rollout_advances():
    plan = plan_with({"review_share": 0.01, "reviewers": 6, "reviews_per_hour": 50,
                      "exposures_per_hour": 100_000})
    decision = decide(plan, initial_state(plan, 0.0), clean_pilot(), HOUR)
    assert decision.action == "advance" and decision.stage == "broad"
    assert decision.oversight is not None and decision.oversight["exceeds"] is False


def test_a_measured_flag_rate_is_projected_at_its_always_valid_upper_bound():
    # 100 of 10,000 pilot outputs flagged; the volume is estimated from the pilot itself:
    # 10,000 treatment exposures in one hour at 1% traffic = 1e6 exposures/h at full traffic.
    plan = plan_with({"metric": "flagged", "reviewers": 20, "reviews_per_hour": 200})
    decision = decide(plan, initial_state(plan, 0.0), clean_pilot(), HOUR)
    upper = beta_binomial_interval(100, 10_000, 0.05)[1]
    numbers = decision.as_dict()["oversight"]
    assert numbers["flag_rate"] == pytest.approx(0.01)
    assert numbers["flag_upper"] == pytest.approx(upper) and upper > 0.01
    assert numbers["exposures_per_hour"] == pytest.approx(1e6)
    assert numbers["load_per_hour"] == pytest.approx(upper * 1e6 * 0.3)
    assert numbers["reviewers_needed"] == math.ceil(upper * 1e6 * 0.3 / 200)
    assert decision.action == "hold" and "oversight capacity" in decision.reasons[-1]


def test_no_flag_observations_never_widen():
    # The flag metric is unobserved: its share could be anything, so it is taken as 1 (every
    # output reviewed): 1e6 exposures/h x 0.3 = 300,000 reviews/h over 100,000/h of capacity.
    plan = plan_with({"metric": "flagged", "reviewers": 100, "reviews_per_hour": 1000},
                     stages=[{"name": "pilot", "traffic": 0.01, "metrics": ["harm"]},
                             {"name": "broad", "traffic": 0.3}])
    rows = clean_pilot()
    decision = decide(plan, initial_state(plan, 0.0), rows[rows["metric"] == "harm"], HOUR)
    assert decision.action == "hold" and decision.oversight["flag_upper"] == 1.0


def test_the_simulator_holds_the_same_rollouts_for_oversight_capacity():
    plan = plan_with({"review_share": 0.01, "reviewers": 2, "reviews_per_hour": 50,
                      "exposures_per_hour": 100_000})
    outcome = simulate(plan, Scenario("aa"), runs=200, seed=3,
                       policies=("always_valid",)).outcome("always_valid")
    assert outcome.held_by_reason.get("oversight capacity", 0.0) > 0.9
    # The baselines are other judges: they do not know the reviewers and do not hold for them.
    naive = simulate(plan, Scenario("aa"), runs=200, seed=3,
                     policies=("naive_peeking",)).outcome("naive_peeking")
    assert "oversight capacity" not in naive.held_by_reason


def test_the_oversight_wall_names_the_first_stage_over_capacity_and_the_full_rollout_reviewers():
    plan = plan_with({"review_share": 0.01, "reviewers": 2, "reviews_per_hour": 50,
                      "exposures_per_hour": 100_000})
    wall = oversight_wall(plan, 0.01, 100_000)
    assert wall.first_over == "broad"
    assert wall.load == pytest.approx((10.0, 300.0, 1000.0))
    assert wall.full_rollout_reviewers == 20
    assert wall.as_dict()["stages"][1]["exceeds"] is True


@pytest.mark.parametrize(("oversight", "problem"), [
    ({"reviewers": 2, "reviews_per_hour": 50}, "give exactly one of review_share"),
    ({"review_share": 0.1, "metric": "flagged", "reviewers": 2, "reviews_per_hour": 50},
     "give exactly one of review_share"),
    ({"metric": "nope", "reviewers": 2, "reviews_per_hour": 50}, "unknown metric 'nope'"),
    ({"review_share": 0.1, "reviewers": 2, "reviews_per_hour": 0}, "reviews_per_hour"),
])
def test_a_bad_oversight_block_is_refused_naming_the_field(oversight, problem):
    with pytest.raises(ConfigError, match=problem):
        plan_with(oversight)


def test_a_flag_metric_must_count_events():
    with pytest.raises(ConfigError, match=r"oversight\.metric: metric 'latency' is a mean"):
        parse_plan({"name": "p", "metrics": [{"name": "latency", "kind": "mean", "margin": 1}],
                    "stages": [{"name": "all", "traffic": 1.0}],
                    "oversight": {"metric": "latency", "reviewers": 1, "reviews_per_hour": 1}})
