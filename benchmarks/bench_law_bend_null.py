"""Is the F test of ``saturating`` against ``broken`` calibrated? Its null, simulated per curve.

``form="auto"`` rejects the saturating law in sample when the F test against the broken law
gives p below ``BREAK_P_VALUE``. The F distribution assumes that the general law's extra
parameters are identified under the null; the break's are not (with no bend its place and
width say nothing, Davies 1987), so the statistic, maximised over where the break goes, could
have a heavier null tail. This benchmark simulates that null on each curve's own scales (a
parametric bootstrap): replicates of the fitted saturating law plus normal noise of its
residual spread, each refitted by both laws as one batch (``fit_replicates``; the broken law
from its whole starting grid, screened to the best few starts per replicate, so that each
replicate's break is searched for as the data's was).

Curves: ``bench_law_backtest.py``'s ``long`` and ``long+bend`` groups, the training part of
each (its largest 20% held out, as there). Printed per group: the share of null replicates
whose F p-value falls below 5%, 1% and 0.1% (a calibrated test: 5%, 1%, 0.1%), and how often
the observed statistic's p-value under the simulated null (a count of replicates at least as
large) and under the F distribution fall below 1% and 5%.

    .venv/bin/python benchmarks/bench_law_bend_null.py [--curves 10] [--seed 0] [--replicates 200]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import numpy as np  # noqa: E402
from bench_law_backtest import _split, synthetic_curves  # noqa: E402
from scipy.stats import f as f_dist  # noqa: E402

from scaleguard.laws import LawFit  # noqa: E402
from scaleguard.laws._optimize import Objective, fit_replicates  # noqa: E402

LEVELS = (0.05, 0.01, 0.001)
KEEP = 6  # broken starts per replicate that run on after screening


def _rss(fit: LawFit, theta: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.sum((fit.law_.value(theta, fit.X_) - target) ** 2, axis=1)


def _refit_rss(fit: LawFit, targets: np.ndarray, starts: np.ndarray, keep: int) -> np.ndarray:
    lower, upper = fit.law_.bounds(fit.X_, fit.y_values_)
    objective = Objective(fit.law_, fit.X_, targets, fit.loss, fit.delta)
    theta, _ = fit_replicates(objective, starts, lower, upper, keep=keep)
    return _rss(fit, theta, targets)


def null_of_curve(straight: LawFit, bent: LawFit, replicates: int, seed: int
                  ) -> tuple[float, np.ndarray, int, int]:
    """(observed F, null F statistics [R], numerator and denominator degrees of freedom)."""
    n = straight.n_points_
    extra, dof = bent.law_.n_params - straight.law_.n_params, n - bent.law_.n_params
    log_y = np.log(straight.y_values_)
    mean = straight.law_.value(straight.theta_[None, :], straight.X_)[0]
    rss_s = float(np.sum((log_y - mean) ** 2))
    rss_g = float(_rss(bent, bent.theta_[None, :], log_y[None, :])[0])
    observed = max(0.0, (rss_s - rss_g) / extra / (rss_g / dof))
    noise = np.sqrt(rss_s / (n - straight.law_.n_params))
    targets = mean + noise * np.random.default_rng(seed).standard_normal((replicates, n))
    null_s = _refit_rss(straight, targets, straight.candidates_, len(straight.candidates_))
    grid = np.vstack([bent.law_.starts(bent.X_, bent.y_values_), bent.candidates_])
    null_g = np.minimum(_refit_rss(bent, targets, grid, KEEP), null_s)  # nested: never worse
    return observed, np.maximum(0.0, (null_s - null_g) / extra / (null_g / dof)), extra, dof


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=10, help="curves per group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows: dict[str, dict[str, list[float]]] = {}
    for curve in synthetic_curves(args.curves, args.seed):
        if not curve.group.startswith("long"):
            continue
        train = _split(curve).train
        straight = LawFit(form="saturating", x="x", y="y").fit(train)
        bent = LawFit(form="broken", x="x", y="y").fit(train)
        observed, null, extra, dof = null_of_curve(straight, bent, args.replicates, args.seed)
        group = rows.setdefault(curve.group, {"null_p": [], "p_f": [], "p_sim": []})
        group["null_p"].extend(f_dist.sf(null, extra, dof))
        group["p_f"].append(float(f_dist.sf(observed, extra, dof)))
        group["p_sim"].append((1 + int(np.sum(null >= observed))) / (args.replicates + 1))
    print(f"saturating vs broken, F test on log residuals; null simulated from the saturating "
          f"fit, {args.replicates} replicates per curve (seed {args.seed})")
    print(f"{'group':<11}{'curves':>7}  null replicates with F p below "
          + " / ".join(f"{v:g}" for v in LEVELS)
          + "   observed p < 0.01 (F / simulated)   p < 0.05 (F / simulated)")
    for name, g in rows.items():
        null_p, p_f, p_sim = (np.array(g[k]) for k in ("null_p", "p_f", "p_sim"))
        shares = " / ".join(f"{np.mean(null_p < v):.2%}" for v in LEVELS)
        print(f"{name:<11}{p_f.size:>7}  {shares:<32}"
              f"{int(np.sum(p_f < 0.01)):>4} / {int(np.sum(p_sim < 0.01)):<28}"
              f"{int(np.sum(p_f < 0.05)):>4} / {int(np.sum(p_sim < 0.05))}")
    print(f"{sum(len(g['p_f']) for g in rows.values())} curves in "
          f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
