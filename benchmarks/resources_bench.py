"""Resources: the cost of measure() around a training step, and of planning layouts.

1. measure() overhead: a numpy "training step" (matmuls, ~0.1 s here) timed bare and inside
   ``measure()``; the ratio is what wrapping each step costs. Both sides compute the same result.
2. planner: ``plan_layouts`` for Llama-3-70B on 2,048 H100s against a reference loop that only
   calls ``estimate_memory`` for the same layouts (the planner adds the step-time model and the
   bookkeeping of rejections); both must agree on how many layouts fit.

Run: .venv/bin/python benchmarks/resources_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import show, timed

from scaleguard.resources import (
    Layout,
    estimate_memory,
    get_device,
    layout_problem,
    measure,
    model_preset,
    plan_layouts,
)


def bench_measure(repeat: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 300))

    def step() -> float:
        x = base
        for _ in range(5):
            x = np.tanh(x @ x.T / 300)
        return float(x.sum())

    def measured_step() -> float:
        with measure("bench"):
            return step()

    print("measure() around a numpy training step")
    bare = timed(step, repeat)
    wrapped = timed(measured_step, repeat)
    a, b = bare.result, wrapped.result
    print(f"  same result: {a == b}")
    ratio = show("inside measure()", wrapped) / show("bare step", bare)
    print(f"  ratio measured/bare: {ratio:.3f}")

    def empty() -> None:
        with measure("empty"):
            pass

    show("measure() of an empty block", timed(empty, repeat * 4))


def bench_planner(repeat: int) -> None:
    model, h100 = model_preset("llama-3-70b"), get_device("h100-sxm")
    devices, batch = 2048, 2048

    def reference() -> int:
        fits = 0
        for tp in (d for d in range(1, devices + 1) if devices % d == 0):
            for pp in (d for d in range(1, devices // tp + 1) if (devices // tp) % d == 0):
                dp = devices // (tp * pp)
                if tp > 8 or layout_problem(model, Layout(tp=tp, pp=pp, dp=dp)):
                    continue
                for zero in (z for z in (0, 1, 2, 3) if dp > 1 or z == 0):
                    for mb in (1, 2, 4, 8):
                        if batch % (dp * mb):
                            continue
                        for mode in ("none", "selective", "full"):
                            memory = estimate_memory(
                                model, Layout(tp, pp, dp, zero, mb, mode), device=h100,
                                in_flight_micro_batches=batch // (dp * mb))
                            fits += bool(memory.fits)
        return fits

    print(f"plan_layouts: llama-3-70b on {devices} x h100-sxm, global batch {batch}")
    ref_times = timed(reference, repeat)
    plan_times = timed(lambda: plan_layouts(model, h100, devices, global_batch=batch), repeat)
    ref_fits, plan = ref_times.result, plan_times.result
    print(f"  same layouts fit: {ref_fits == len(plan.candidates)} ({ref_fits})")
    ratio = show("plan_layouts", plan_times) / show("memory-only reference", ref_times)
    print(f"  ratio planner/reference: {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_measure(args.repeat)
    bench_planner(args.repeat)
