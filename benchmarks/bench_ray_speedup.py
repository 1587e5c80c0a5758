"""Ray backend: speed-up over the serial backend on this machine, and the same answers.

Three workloads, each run on the serial backend (the reference), on local processes and on
local Ray (``ray.init(num_cpus=N)`` once, before timing; a warm-up map starts its workers):

1. ``LawFit.bootstrap``: refits of a saturating law on resamples of the synthetic ladder.
2. ``safety.simulate``: rollout simulations in chunks of 500 runs.
3. Two ladder rungs (one CPU thread each): one Ray task per rung against one after the other.

Printed: medians (min-max) of ``--repeat`` runs, the speed-up serial/backend, and whether every
backend's result equals the serial one (bootstrap samples, simulation summary, final losses).

Run: .venv/bin/python benchmarks/bench_ray_speedup.py [--repeat 3] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
from _timing import timed

from scaleguard.compute import ProcessExecutor, RayExecutor, SerialExecutor
from scaleguard.examples import synthetic_ladder
from scaleguard.laws import LawFit
from scaleguard.safety import Scenario, simulate
from scaleguard.safety._plan import parse_plan

PLAN = {"name": "bench", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.01}],
        "stages": [{"name": "pilot", "traffic": 0.1, "min_duration": "12h",
                    "max_duration": "12h"},
                   {"name": "all", "traffic": 1.0, "min_duration": "12h",
                    "max_duration": "12h"}],
        "simulation": {"exposures_per_look": 5000, "look_interval": "1h"}}
LADDER = {"name": "bench-ray", "rungs": [{"layers": 2, "width": 32}, {"layers": 2, "width": 32,
                                                                       "name": "twin"}],
          "model": {"block_size": 64, "head_dim": 16}, "batch_size": 16,
          "tokens_per_param": 8, "threads": 1, "eval_every": 1000, "log_every": 50,
          "corpus": {"max_bytes": 2e6}}


def show(name: str, times: dict[str, list[float]], same: dict[str, bool]) -> None:
    reference = statistics.median(times["serial"])
    print(f"{name}:")
    for backend, values in times.items():
        median = statistics.median(values)
        line = (f"  {backend:8} {median:7.2f}s ({min(values):.2f}-{max(values):.2f})  "
                f"speed-up {reference / median:4.2f}x")
        if backend != "serial":
            line += f"  same result as serial: {same[backend]}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--n-boot", type=int, default=120)
    parser.add_argument("--runs", type=int, default=4000)
    args = parser.parse_args()

    import ray

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"Ray {ray.__version__} local with {args.cpus} CPUs; repeat {args.repeat}")
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    backends = {"serial": SerialExecutor(), "process": ProcessExecutor(workers=args.cpus),
                "ray": RayExecutor()}
    backends["ray"].map(abs, list(range(4 * args.cpus)))  # start Ray's workers

    fit = LawFit(form="saturating", x="flops").fit(synthetic_ladder(seed=3, sizes_per_budget=4))
    boot_times, boot = {}, {}
    for name, executor in backends.items():
        run = timed(lambda e=executor: fit.bootstrap(n_boot=args.n_boot, seed=1, executor=e),
                    args.repeat, warmup=False)
        boot_times[name], boot[name] = run.seconds, run.result
    show(f"bootstrap, {args.n_boot} resamples",
         boot_times, {n: bool(np.array_equal(boot[n].samples, boot["serial"].samples))
                      for n in backends})

    plan, scenario = parse_plan(PLAN), Scenario("metric", "harm", factor=1.5)
    sim_times, sims = {}, {}
    for name, executor in backends.items():
        run = timed(lambda e=executor: simulate(plan, scenario, runs=args.runs, seed=2,
                                                executor=e), args.repeat, warmup=False)
        sim_times[name], sims[name] = run.seconds, run.result
    show(f"rollout simulator, {args.runs} runs", sim_times,
         {n: sims[n].as_dict() == sims["serial"].as_dict() for n in backends})

    from scaleguard.ladder import LadderSpec, run_ladder

    spec = LadderSpec.model_validate(LADDER)
    rung_times, losses = {}, {}
    for name in ("serial", "ray"):
        backend = "local" if name == "serial" else "ray"

        def ladder(b: str = backend) -> list[float]:
            with tempfile.TemporaryDirectory() as out:
                result = run_ladder(spec, out, executor=b, monitor=False)
                return [r["loss"] for r in result.rows]

        ladder()  # warm-up: the corpus read and, on Ray, torch imported in the workers
        run = timed(ladder, args.repeat, warmup=False)
        rung_times[name], losses[name] = run.seconds, run.result
    show("ladder, 2 rungs of 25k parameters (1 thread each)", rung_times,
         {n: losses[n] == losses["serial"] for n in rung_times})
    ray.shutdown()


if __name__ == "__main__":
    main()
