"""Time of a 1,000-resample bootstrap of the Chinchilla fit on 2 cores, and its CIs.

scaleguard fits each chunk of resamples as one batched L-BFGS (a resample is the data with
integer row weights). The reference refits resamples one at a time with scipy's L-BFGS-B from
the same warm starts and tolerances; it runs on the first ``--reference-resamples`` resamples
and is scaled to 1,000 (said so in the output). The intervals are printed beside the
replication's (Besiroglu et al. 2024: E 1.769-1.871, alpha 0.317-0.373, beta 0.331-0.415).

    .venv/bin/python benchmarks/bench_law_bootstrap.py [--n-boot 1000] [--workers 2]
"""

from __future__ import annotations

import os

# One BLAS thread per process (see bench_law_fit.py): fair to the scipy reference.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from scaleguard.laws import LawFit  # noqa: E402
from scaleguard.laws._optimize import Objective, polish  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_law_fit import load_points  # noqa: E402

REPLICATION_CI = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


def reference_seconds(fit: LawFit, n_boot: int, seed: int, sample: int) -> float:
    """scipy L-BFGS-B per resample (same draws, warm starts, tight tolerances), scaled."""
    law, X, y = fit.law_, fit.X_, np.log(fit.y_values_)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, X.shape[1], size=(n_boot, X.shape[1]))[:sample]
    lower, upper = law.bounds(X, fit.y_values_)
    t0 = time.perf_counter()
    for rows in draws:
        objective = Objective(law, X[:, rows], y[rows], fit.loss, fit.delta)
        for start in fit.candidates_[:2]:
            polish(objective, start, lower, upper)
    return (time.perf_counter() - t0) * n_boot / sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-resamples", type=int, default=50)
    args = parser.parse_args(argv)

    source, X, y = load_points()
    import pandas as pd

    fit = LawFit(form="chinchilla").fit(pd.DataFrame({"params": X[0], "tokens": X[1],
                                                      "loss": y}))
    print(f"data: {source}; fit {fit.result_!r}")
    timings = {}
    results = {}
    for executor in ("serial", "process"):
        t0 = time.perf_counter()
        results[executor] = fit.bootstrap(n_boot=args.n_boot, seed=args.seed,
                                          executor=executor, workers=args.workers)
        timings[executor] = time.perf_counter() - t0
        print(f"bootstrap {args.n_boot} resamples, executor={executor}"
              f"{f' ({args.workers} workers)' if executor == 'process' else ''}: "
              f"{timings[executor]:.1f} s, {results[executor].failures} failed")
    same = np.allclose(results["serial"].samples, results["process"].samples, rtol=1e-9)
    print(f"serial and process results identical: {same}")
    ref = reference_seconds(fit, args.n_boot, args.seed, args.reference_resamples)
    print(f"reference (scipy L-BFGS-B per resample, measured on {args.reference_resamples} "
          f"and scaled to {args.n_boot}): {ref:.1f} s -> ratio vs serial "
          f"{ref / timings['serial']:.1f}x, vs process {ref / timings['process']:.1f}x")
    ci = results["process"].ci
    for name, (lo, hi) in ci.items():
        published = REPLICATION_CI.get(name)
        note = f"  (replication {published[0]}-{published[1]})" if published else ""
        print(f"  {name}: 95% CI {lo:.4g} - {hi:.4g}{note}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
