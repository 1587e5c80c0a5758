"""Vectorised grid fit vs scipy's L-BFGS-B once per starting point (Chinchilla Approach 3 grid).

Both sides minimise the same objective (Huber delta=1e-3 on log loss, summed, with its analytic
gradient) under the same bounds from the same 4,500 starts on the same 240 points; the
reference keeps the best of 4,500 scipy runs, scaleguard runs all starts as one batch
(successive screening, then scipy polishing of the best few). Prints both best objectives, their
relative difference (must be < 1e-6) and the speed-up (target >= 20x).

    .venv/bin/python benchmarks/bench_law_fit.py [--repeat 3] [--reference-repeat 1]
"""

from __future__ import annotations

import os

# One BLAS thread for both sides: scipy's L-BFGS-B calls BLAS on tiny vectors every iteration,
# and OpenBLAS's idle threads spinning on a shared 2-core machine would slow the reference
# several-fold (measured: 100 ms vs 8 ms CPU per start), inflating the ratio unfairly.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from scaleguard.examples import synthetic_ladder  # noqa: E402
from scaleguard.io import read_ladder  # noqa: E402
from scaleguard.laws import get_law  # noqa: E402
from scaleguard.laws._optimize import Objective, fit_from_starts  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _timing import timed  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_svg_extracted.csv"
MAX_REL_DIFF = 1e-6  # the bar for "the same best objective"
TARGET_SPEEDUP = 20.0


def load_points() -> tuple[str, np.ndarray, np.ndarray]:
    if SHARED.is_file():
        ladder = read_ladder(SHARED, ["params=Model Size", "flops=Training FLOP"])
        ladder = ladder.sort_values("loss").iloc[:-5]  # the replication's 240 points
        source = f"{SHARED.name} (240 points)"
    else:
        ladder = synthetic_ladder(seed=0, sizes_per_budget=48)
        source = "synthetic ladder (240 points; ../shared absent)"
    X = ladder[["params", "tokens"]].to_numpy().T
    return source, X, ladder["loss"].to_numpy()


def reference(objective: Objective, starts: np.ndarray, bounds: list) -> float:
    """The plain way: scipy's L-BFGS-B from each start, keep the best."""
    best = np.inf
    for start in starts:
        res = minimize(objective.scalar, start, jac=True, method="L-BFGS-B", bounds=bounds)
        best = min(best, float(res.fun))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the batched fit")
    parser.add_argument("--reference-repeat", type=int, default=1,
                        help="timed runs of the per-start reference (each takes a minute)")
    args = parser.parse_args(argv)

    source, X, y = load_points()
    law = get_law("chinchilla")
    objective = Objective(law, X, np.log(y))
    lower, upper = law.bounds(X, y)
    starts = law.starts(X, y)
    bounds = list(zip(lower, upper, strict=True))

    def ours() -> float:
        return fit_from_starts(objective, starts, lower, upper).value

    ours()  # warm-up (imports, caches); the reference takes a minute a run, so none for it
    ref = timed(lambda: reference(objective, starts, bounds), args.reference_repeat,
                warmup=False)
    our = timed(ours, args.repeat, warmup=False)
    ref_times, ref_cpu, ref_best = ref.seconds, ref.cpu_seconds, ref.result
    our_times, our_cpu, our_best = our.seconds, our.cpu_seconds, our.result
    rel = abs(our_best - ref_best) / abs(ref_best)
    speedup = statistics.median(ref_times) / statistics.median(our_times)
    cpu_speedup = statistics.median(ref_cpu) / statistics.median(our_cpu)

    print(f"data: {source}; starts: {len(starts)}; python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"reference (scipy L-BFGS-B per start): median {statistics.median(ref_times):.2f} s "
          f"(min {min(ref_times):.2f}, max {max(ref_times):.2f}, n={len(ref_times)}); "
          f"best objective {ref_best:.12g}")
    print(f"scaleguard batched grid fit:          median {statistics.median(our_times):.3f} s "
          f"(min {min(our_times):.3f}, max {max(our_times):.3f}, n={len(our_times)}); "
          f"best objective {our_best:.12g}")
    same = rel < MAX_REL_DIFF
    print(f"relative difference of best objectives: {rel:.2e} "
          f"({'OK' if same else 'FAIL'}: must be < {MAX_REL_DIFF:g}; "
          f"{'ours lower' if our_best < ref_best else 'reference lower or equal'})")
    print(f"CPU seconds: reference {statistics.median(ref_cpu):.2f}, scaleguard "
          f"{statistics.median(our_cpu):.3f} (ratio {cpu_speedup:.1f}x)")
    print(f"speed-up (wall, medians): {speedup:.1f}x (target >= {TARGET_SPEEDUP:g}x: "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
