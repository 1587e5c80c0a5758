"""Sample-ratio mismatch: a broken split holds the rollout with its evidence, a correct one
almost never does (the always-valid test keeps false SRM holds <= alpha at every look)."""

import math

import pandas as pd

from scaleguard.safety import (
    Scenario,
    check_observations,
    decide,
    initial_state,
    parse_plan,
    simulate,
)
from scaleguard.safety._srm import srm_p_values

ALPHA = 0.05
HOUR = 3600.0


def plan(**extra):
    return parse_plan({
        "name": "srm", "alpha": ALPHA,
        "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.01, "baseline": 0.01}],
        "segments": {"region": ["us", "eu"]},
        "stages": [{"name": "all", "traffic": 1.0, "min_duration": "10h",
                    "max_duration": "10h"}],
        # 10 looks of 10k exposures per arm: 100k per arm at the end.
        "simulation": {"exposures_per_look": 10_000, "look_interval": "1h"}, **extra})


def test_a_1_1x_imbalance_at_100k_per_arm_holds_in_95_percent_of_runs():
    result = simulate(plan(), Scenario("srm", factor=1.1), runs=1000, seed=3,
                      policies=("always_valid",)).outcome("always_valid")
    assert result.held_by_reason.get("sample ratio mismatch", 0.0) >= 0.95
    assert result.complete_rate <= 0.05


def test_a_correct_split_rarely_holds_on_srm():
    runs = 2000
    result = simulate(plan(), Scenario("aa"), runs=runs, seed=4,
                      policies=("always_valid",)).outcome("always_valid")
    false_holds = result.held_by_reason.get("sample ratio mismatch", 0.0)
    assert false_holds <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert false_holds <= plan().srm.alpha + 2 * math.sqrt(0.001 / runs)


def rows(treatment_us, treatment_eu, control=50_000):
    return check_observations(pd.DataFrame([
        {"stage": "all", "arm": arm, "metric": "harm", "region": region, "exposures": n,
         "events": n // 100}
        for arm, region, n in (("control", "us", control), ("control", "eu", control),
                               ("treatment", "us", treatment_us),
                               ("treatment", "eu", treatment_eu))]), plan())


def test_decide_holds_on_a_mismatch_in_one_segment_and_shows_the_evidence():
    p = plan()
    state = initial_state(p, 0.0)
    clean = decide(p, state, rows(50_000, 50_000), now=11 * HOUR)
    assert clean.action == "advance" and not clean.srm.mismatch
    # 1.3x the planned share in the EU only: every gate's comparison is suspect.
    broken = decide(p, state, rows(50_000, 65_000), now=11 * HOUR)
    assert broken.action == "hold"
    assert "sample ratio mismatch" in broken.reasons[0] and "region=eu" in broken.reasons[0]
    evidence = broken.as_dict()["srm"]
    assert evidence["mismatch"] and "harm/region=eu" in evidence["failing"]
    assert len(evidence["checks"]) == 3  # overall, us, eu


def test_the_srm_check_can_be_turned_off_and_the_share_planned():
    p = plan(srm={"enabled": False})
    assert decide(p, initial_state(p, 0.0), rows(50_000, 65_000), now=11 * HOUR).action == \
        "advance"
    uneven = plan(srm={"treatment_share": 0.6})
    assert decide(uneven, initial_state(uneven, 0.0), rows(75_000, 75_000),
                  now=11 * HOUR).srm.mismatch is False


def test_srm_p_values_are_always_valid_martingale_bounds():
    # Under the planned share the p-value stays high; the same 2% shift becomes overwhelming as
    # exposures grow (the mixture's power grows with n).
    assert float(srm_p_values(5_100, 4_900, 0.5)) > 0.05
    assert float(srm_p_values(510_000, 490_000, 0.5)) < 1e-20


# -- units, not requests: a fixed population of units, each with its own request rate ---------
def unit_windows(seed, units=4000, windows=30, lost=0.0, counted=True):
    """Windows of a rollout that randomises units by a fair coin (planned share 0.5) and counts
    every request as an exposure; heavy users (lognormal request rates, as real traffic is)
    make the exposures a cluster per unit. ``lost``: share of the treatment's units whose
    observations never arrive (a broken split). ``counted``: windows carry ``units``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    treated = rng.random(units) < 0.5
    observed = ~treated | (rng.random(units) >= lost)
    rate = rng.lognormal(-1.0, 1.5, units)  # requests per unit and window
    seen = np.zeros(units, dtype=bool)
    out = []
    for w in range(windows):
        requests = rng.poisson(rate) * observed
        new = (requests > 0) & ~seen
        seen |= requests > 0
        for arm, mine in (("treatment", treated), ("control", ~treated)):
            n = int(requests[mine].sum())
            row = {"stage": "all", "arm": arm, "metric": "harm", "region": "us",
                   "exposures": n, "events": n // 100, "window": f"w{w}"}
            if counted:
                row["units"] = int(new[mine].sum())
            out.append(row)
    return check_observations(pd.DataFrame(out), plan())


def srm_of(rows):
    p = plan()
    return decide(p, initial_state(p, 0.0), rows, now=HOUR).srm


def test_counting_requests_of_randomised_units_flags_a_correct_split():
    # Why the SDK counts units: the same fair split, tested on its requests, is "broken".
    assert all(srm_of(unit_windows(seed, counted=False)).mismatch for seed in range(5))


def test_a_correct_split_of_units_holds_on_srm_no_more_than_alpha():
    results = [srm_of(unit_windows(seed)) for seed in range(20)]
    assert all(c.counted == "units" for r in results for c in r.checks)
    assert not any(r.mismatch for r in results)  # each run false-alarms with chance <= alpha


def test_a_broken_split_of_units_still_holds():
    # 10% of the treatment's units lost (a crash before logging, a bot filter on one arm)
    result = srm_of(unit_windows(7, units=40_000, windows=10, lost=0.1))
    assert result.mismatch and {c.counted for c in result.checks} == {"units"}
    assert "units" in result.reason()


def test_a_split_with_a_window_that_counted_no_units_falls_back_to_exposures():
    rows = unit_windows(1, windows=4)
    rows.loc[0, "units"] = float("nan")  # one window from a client that counts no units
    assert {c.counted for c in srm_of(rows).checks} == {"exposures"}


def test_prometheus_metrics_are_not_checked_their_counters_see_every_request_of_a_version():
    # A 10% stage read from Prometheus: control is all of v1's traffic, 9x the treatment's.
    queries = {"exposures": 'sum(increase(requests_total{version="$arm"}[$window]))',
               "events": 'sum(increase(harmful_total{version="$arm"}[$window]))'}
    p = parse_plan({
        "name": "prom", "alpha": ALPHA,
        "metrics": [{"name": "harm", "guardrail": 0.05, "source": "prometheus",
                     "queries": queries},
                    {"name": "error", "guardrail": 0.05}],
        "stages": [{"name": "all", "traffic": 0.1}],
        "simulation": {"exposures_per_look": 10_000, "look_interval": "1h"}})
    rows = check_observations(pd.DataFrame([
        {"stage": "all", "arm": arm, "metric": metric, "exposures": n, "events": n // 100}
        for metric in ("harm", "error")
        for arm, n in (("control", 90_000 if metric == "harm" else 50_000),
                       ("treatment", 10_000 if metric == "harm" else 50_000))]), p)
    srm = decide(p, initial_state(p, 0.0), rows, now=HOUR).srm
    assert [c.metric for c in srm.checks] == ["error"] and not srm.mismatch
    # the simulator covers the same splits: a broken split shows in the recorded metric only
    broken = simulate(p, Scenario("srm", factor=1.5), runs=200, seed=1,
                      policies=("always_valid",)).outcome("always_valid")
    assert broken.held_by_reason.get("sample ratio mismatch", 0.0) > 0.9
    alone = parse_plan({**p.model_dump(exclude_none=True), "metrics": [p.metrics[0].model_dump(
        exclude_none=True)]})
    unchecked = simulate(alone, Scenario("srm", factor=1.5), runs=200, seed=1,
                         policies=("always_valid",)).outcome("always_valid")
    assert unchecked.held_by_reason.get("sample ratio mismatch", 0.0) == 0.0
