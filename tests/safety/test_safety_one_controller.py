"""One controller: the simulator's always-valid policy decides exactly what `decide` decides on
the same observations, look by look, over random plans and random observation streams
(human oversight capacity included: both hold the same traffic increases).

Every false-rollback and power figure `rollout simulate` publishes rests on this agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.safety import Scenario, decide, initial_state, parse_plan, simulate
from scaleguard.safety._rules import ACTIONS
from scaleguard.safety._simulate import _Chunk, _model, _run_chunk

ALPHA = 0.05


def replay(plan, scenario, seed: int, runs: int, columnar: bool = False):
    """Draw ``runs`` rollouts with the simulator's tracer, then feed each run's observations,
    look by look, to ``decide``; returns (simulator actions, decide actions) per run.

    ``columnar``: pass the observations as arrays by column (decide's fast input) instead of
    a DataFrame."""
    chunk = _Chunk(plan, scenario, runs, np.random.SeedSequence(seed), ("always_valid",),
                   trace=True)
    out = _run_chunk(chunk)
    draws, actions, stages = out["trace:draws"], out["trace:action"], out["trace:stage"]
    model = _model(plan, scenario)
    interval = plan.simulation.look_interval
    approvals = {s.name for s in plan.stages}
    pairs = []
    for run in range(runs):
        columns: dict[str, list] = {c: [] for c in ("stage", "arm", "metric", "exposures",
                                                    "events", "n", "mean", "var", "time",
                                                    *plan.segments)}
        ends = []  # rows seen by each look (observations are cumulative)
        for look in range(actions.shape[0]):
            if actions[look, run] < 0:
                break
            stage = int(stages[look, run])
            for j, metric in enumerate(plan.metrics):
                for c, cell in enumerate(model.cells):
                    if not model.admitted[stage][c]:
                        continue
                    for a, arm in enumerate(("treatment", "control")):
                        n, total, total_sq = draws[look, run, j, c, a]
                        columns["stage"].append(plan.stages[stage].name)
                        columns["arm"].append(arm)
                        columns["metric"].append(metric.name)
                        columns["time"].append((look + 1) * interval)
                        for dim in plan.segments:
                            columns[dim].append(cell[dim])
                        if metric.kind == "mean":
                            mean = total / n
                            var = (total_sq - n * mean * mean) / (n - 1.0)
                            row = (math.nan, math.nan, n, mean, var)
                        else:
                            row = (n, total, math.nan, math.nan, math.nan)
                        for name, value in zip(("exposures", "events", "n", "mean", "var"), row,
                                               strict=True):
                            columns[name].append(value)
            ends.append(len(columns["stage"]))
        frame = pd.DataFrame(columns)
        arrays = {name: np.asarray(values) for name, values in columns.items()}
        state = initial_state(plan, 0.0)
        simulated, decided = [], []
        for look, end in enumerate(ends):
            seen = {name: values[:end] for name, values in arrays.items()} if columnar \
                else frame.iloc[:end]
            decision = decide(plan, state, seen, (look + 1) * interval, approvals)
            simulated.append(ACTIONS[int(actions[look, run])])
            decided.append(decision.action)
            state = decision.state
            if decision.action != simulated[-1]:
                break  # the first disagreement is the one worth reading
        pairs.append((simulated, decided))
    return pairs


@st.composite
def plans(draw):
    """A random plan the simulator can run: metrics of every kind, segments, stages, both
    error-control methods, every correction, strict margins, adaptive ramps, SRM on or off."""
    metrics = []
    for j in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["rate", "mean", "quantile"]))
        spec: dict = {"name": f"m{j}", "kind": kind, "critical": draw(st.booleans())}
        if kind == "rate":
            base = draw(st.sampled_from([0.01, 0.05, 0.2]))  # the rate of bad outcomes
            higher = draw(st.booleans())
            spec.update(baseline=1 - base if higher else base,
                        direction="higher_is_better" if higher else "lower_is_better")
            if draw(st.booleans()):
                spec["guardrail"] = 1 - 2 * base if higher else 2 * base
            spec["margin"] = base * draw(st.sampled_from([0.05, 0.2, 1.0]))
        elif kind == "mean":
            spec.update(baseline=100.0, sd=draw(st.sampled_from([5.0, 30.0])),
                        margin=draw(st.sampled_from([0.2, 1.0, 5.0])))
            if draw(st.booleans()):
                spec["guardrail"] = 101.0
        else:
            spec.update(quantile=0.99, guardrail=2.0, baseline=0.005)
            if draw(st.booleans()):
                spec["margin"] = 0.002
        if "margin" in spec:
            spec["strict"] = draw(st.booleans())
        metrics.append(spec)
    segments = draw(st.sampled_from([{}, {"region": ["us", "eu"]},
                                     {"region": ["us", "eu"], "tier": ["free", "pro"]}]))
    method = draw(st.sampled_from(["msprt", "msprt", "group_sequential"]))
    n_stages = draw(st.integers(1, 3))
    traffic = sorted(draw(st.lists(st.sampled_from([0.05, 0.2, 1.0]), min_size=n_stages,
                                   max_size=n_stages)))
    per_look = draw(st.sampled_from([2000, 20_000]))
    stages = []
    for i, share in enumerate(traffic):
        # Alpha-spending boundaries cost ~0.1 s each: group-sequential stages keep two looks,
        # so that their few fraction histories are computed once and reused across examples.
        looks = 2 if method == "group_sequential" else draw(st.integers(1, 4))
        stage: dict = {"name": f"s{i}", "traffic": share,
                       "min_duration": f"{draw(st.integers(0, looks))}h",
                       "max_duration": f"{looks}h",
                       "min_exposures": draw(st.sampled_from([0, 500, 5000]))}
        if i == 0 and segments and draw(st.booleans()):
            stage["segments"] = {"region": ["us"]}
        if method == "group_sequential":
            # Exactly two looks' exposures (the simulator rounds per cell), so that every
            # plan's fractions are (0.5, 1.0) and their boundaries are computed once.
            cells = math.prod(len(v) for v in segments.values())
            admitted = cells // 2 if "segments" in stage else cells
            per_stage_look = admitted * round(per_look * share / cells)
            stage["max_exposures"] = 2 * per_stage_look
            stage["min_exposures"] = min(stage["min_exposures"], 2 * per_stage_look)
        stages.append(stage)
    if n_stages > 1 and len(metrics) > 1 and draw(st.booleans()):
        metrics[1]["compare_to"] = "previous_stage"
        metrics[1].setdefault("margin", 0.01)
        stages[0]["metrics"] = [metrics[0]["name"]]
    plan = {"name": "random", "alpha": ALPHA, "metrics": metrics, "segments": segments,
            "stages": stages,
            "error_control": {"method": method,
                              "correction": draw(st.sampled_from(["holm", "bonferroni",
                                                                  "none"]))},
            "adaptive": {"enabled": method == "msprt" and draw(st.booleans())},
            "srm": {"enabled": draw(st.booleans())},
            "simulation": {"exposures_per_look": per_look, "look_interval": "1h"}}
    if draw(st.booleans()):
        # Human review capacity: a fixed review share or a flag metric's measured rate, the
        # volume given or estimated; capacities from far below to far above the load.
        rates = [m["name"] for m in metrics if m["kind"] == "rate"]
        oversight: dict = {"reviewers": draw(st.sampled_from([1, 4])),
                           "reviews_per_hour": draw(st.sampled_from([5, 40, 400]))}
        if rates and draw(st.booleans()):
            oversight["metric"] = rates[0]
        else:
            oversight["review_share"] = draw(st.sampled_from([0.01, 0.1]))
        if draw(st.booleans()):
            oversight["exposures_per_hour"] = per_look
        plan["oversight"] = oversight
    return parse_plan(plan)


SCENARIOS = st.sampled_from([Scenario("aa"), Scenario("metric", "m0", factor=1.5),
                             Scenario("metric", "m0", factor=3.0),
                             Scenario("srm", factor=1.2)])


@settings(max_examples=1000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(plans(), SCENARIOS, st.integers(0, 2**32 - 1))
def test_the_simulator_and_decide_agree_look_by_look(plan, scenario, seed):
    for simulated, decided in replay(plan, scenario, seed, runs=1):
        assert decided == simulated


def test_aa_false_rollbacks_of_decide_itself_stay_below_alpha_and_equal_the_simulator():
    # 2,000 seeded A/A runs of 10 looks, every look decided by `decide`; the same draws through
    # the simulator give the same figure. Johari et al. (2017): the mSPRT keeps false alarms
    # <= alpha under continuous monitoring.
    plan = parse_plan({"name": "aa", "alpha": ALPHA,
                       "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.01,
                                    "strict": True}],
                       "stages": [{"name": "all", "traffic": 1.0, "min_duration": "10h",
                                   "max_duration": "10h"}],
                       "simulation": {"exposures_per_look": 4000, "look_interval": "1h"}})
    runs = 2000
    pairs = replay(plan, Scenario("aa"), seed=7, runs=runs, columnar=True)
    by_decide = np.mean(["roll_back" in decided for _, decided in pairs])
    assert all(decided == simulated for simulated, decided in pairs)
    assert by_decide <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert all(len(decided) == 10 or decided[-1] == "roll_back" for _, decided in pairs)
    # simulate() on its own chunking draws other numbers, but the same rules: same rate, within
    # Monte Carlo error.
    rate = simulate(plan, Scenario("aa"), runs=runs, seed=7,
                    policies=("always_valid",)).outcome("always_valid").rollback_rate
    assert abs(rate - by_decide) <= 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs) * math.sqrt(2)
