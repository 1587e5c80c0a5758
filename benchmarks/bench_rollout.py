"""Rollout simulator throughput, and exposures-to-detection of the gates against the baselines.

1. **Rollouts per second.** ``simulate`` draws and judges every run of a chunk at once (numpy
   arrays over runs) with the controller's own rules (``scaleguard.safety._rules``, the code
   ``decide`` runs); the figure counts all three policies, and the plan's policy alone. The
   reference is the same code run one rollout at a time (chunks of one run), measured in the
   same process on the same plan; the ratio is the gain from vectorising over runs. Both sides
   must agree on the detection rate within Monte Carlo error.
2. **One table of outcomes**: for A/A (false rollbacks) and a doubled harm rate (detection), the
   plan's always-valid gates beside naive peeking and a Kayenta-style Mann-Whitney judge: rate,
   exposures before rollback, looks before rollback.

Run: ``.venv/bin/python benchmarks/bench_rollout.py [--repeat 5] [--runs 4000]``.
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
from _timing import timed

from scaleguard.safety import Scenario, parse_plan, simulate
from scaleguard.safety._simulate import _Chunk, _run_chunk

PLAN = parse_plan({
    "name": "bench", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.01, "margin": 0.001, "baseline": 0.002}],
    "segments": {"region": ["us", "eu", "apac"]},
    "stages": [{"name": "all", "traffic": 1.0, "min_duration": "10h", "max_duration": "10h"}],
    "simulation": {"exposures_per_look": 10_000, "look_interval": "1h"},
})


def one_at_a_time(runs: int, scenario: Scenario, seed: int) -> float:
    """Reference: the simulator's own code, one rollout per call. Returns the detection rate."""
    children = np.random.SeedSequence(seed).spawn(runs)
    back = [_run_chunk(_Chunk(PLAN, scenario, 1, child))["always_valid:status"][0] == 1
            for child in children]
    return float(np.mean(back))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--reference-runs", type=int, default=200)
    args = parser.parse_args()
    # The margin is 0.001 on a 0.002 baseline: 3x is worse by twice the margin, 2x by the
    # margin once more than allowed (non-inferiority: worse by up to the margin passes).
    harm = Scenario("metric", "harm", factor=3.0)

    print(f"plan: 1 metric x (overall + 3 regions) x 2 gates, 10 looks of 10k exposures; "
          f"3 policies judge every run; runs {args.runs}, repeat {args.repeat}")
    vec = timed(lambda: simulate(PLAN, harm, args.runs, seed=1), args.repeat)
    own = timed(lambda: simulate(PLAN, harm, args.runs, seed=1, policies=("always_valid",)),
                args.repeat)
    ref = timed(lambda: one_at_a_time(args.reference_runs, harm, 2), max(1, args.repeat // 2))
    vec_rate = args.runs / vec.median
    ref_rate = args.reference_runs / ref.median
    # Per CPU second as well: on a shared machine the wall clock also counts other jobs.
    vec_cpu = args.runs / statistics.median(vec.cpu_seconds)
    own_cpu = args.runs / statistics.median(own.cpu_seconds)
    print(f"  vectorised over runs   {vec_rate:>10,.0f} rollouts/s  median {vec.median:.3f} s "
          f"(min {vec.min:.3f}, max {vec.max:.3f}) for {args.runs} runs")
    print(f"  per CPU second: {vec_cpu:,.0f} rollouts (3 policies), {own_cpu:,.0f} (plan's "
          "policy only)")
    print(f"  plan's policy only     {args.runs / own.median:>10,.0f} rollouts/s  median "
          f"{own.median:.3f} s (the controller's rules alone, no baselines)")
    print(f"  one rollout at a time  {ref_rate:>10,.0f} rollouts/s  median {ref.median:.3f} s "
          f"(min {ref.min:.3f}, max {ref.max:.3f}) for {args.reference_runs} runs")
    print(f"  ratio: {vec_rate / ref_rate:.1f}x faster vectorised")

    # A weaker harm (2x) so that the detection rate is not trivially 1 on both sides.
    weak = Scenario("metric", "harm", factor=2.0)
    detected = simulate(PLAN, weak, args.runs, seed=1).outcome("always_valid").rollback_rate
    single = one_at_a_time(args.reference_runs, weak, 2)
    se = math.sqrt(max(detected * (1 - detected), 1e-4) / args.reference_runs)
    agree = abs(detected - single) <= 3 * se + 1e-9
    print(f"  check: 2x harm detection {detected:.3f} (vectorised) vs {single:.3f} "
          "(one at a time): "
          f"{'agree' if agree else 'DISAGREE'} within 3 s.e.")

    print()
    print("| scenario | policy | rollback rate | ± s.e. | exposures before rollback "
          "| looks before rollback |")
    print("|---|---|---|---|---|---|")
    for label, scenario in (("A/A (false rollbacks)", Scenario("aa")),
                            ("3x harm rate (detection)", harm),
                            ("2x harm rate (detection)", weak)):
        result = simulate(PLAN, scenario, args.runs, seed=3)
        for o in result.outcomes:
            exposures = "" if o.mean_exposures_before_rollback is None else \
                f"{o.mean_exposures_before_rollback:,.0f}"
            looks = "" if o.mean_looks_to_rollback is None else f"{o.mean_looks_to_rollback:.2f}"
            print(f"| {label} | {o.policy} | {o.rollback_rate:.4f} | {o.rollback_se:.4f} | "
                  f"{exposures} | {looks} |")


if __name__ == "__main__":
    main()
