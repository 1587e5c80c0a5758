"""Minimise a robust fit objective from many starting points at once.

Chinchilla Approach 3 runs L-BFGS from each of 4,500 starting points and keeps the best. Doing
that one start at a time spends nearly all its time in Python overhead around tiny numpy calls.
Here every start advances together: one batched objective-and-gradient evaluation serves all
starts (arrays ``[S, n]``), a batched L-BFGS with box projection screens them (float32 for the
first few steps), the best few go on to convergence, and the best distinct end points are
polished at tight tolerances. ``benchmarks/bench_law_fit.py`` checks the result against scipy's
L-BFGS-B run from every start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from scipy.optimize import minimize

from scaleguard.errors import InputError
from scaleguard.laws._families import Law

__all__ = ["LOSSES", "SCREEN_ITER", "SCREEN_KEEP", "Objective", "GridOutcome", "batched_lbfgs",
           "fit_from_starts", "fit_replicates", "polish"]

LOSSES: Final = ("huber", "squared")
_MEMORY: Final = 10  # L-BFGS history pairs (scipy's default maxcor is 10)
_ARMIJO: Final = 1e-4  # sufficient-decrease constant (Nocedal & Wright, ch. 3)
_MAX_HALVINGS: Final = 30  # backtracking steps before a start is declared stuck
# A start stops when its objective falls by less than this share in one step: scipy's
# L-BFGS-B default (factr = 1e7 times machine epsilon).
_SCREEN_FTOL: Final = 1e7 * np.finfo(float).eps
_SCREEN_GTOL: Final = 1e-8  # projected-gradient max-norm at which a start has converged
# The polish asks for more than scipy's defaults so that the best end point is at least as good
# as a per-start scipy run from the same basin.
_POLISH_OPTIONS: Final = {"ftol": 1e-13, "gtol": 1e-10, "maxiter": 2000, "maxls": 50}
_DISTINCT: Final = 1e-4  # raw-coordinate distance under which two end points are one minimum
# Polishing tolerances: far tighter than scipy's defaults (ftol 2.2e-9, pgtol 1e-5), so that the
# best end point is at least as good as a per-start scipy run from the same basin.
POLISH_FTOL: Final = 1e-13
POLISH_GTOL: Final = 1e-10
POLISH_MAX_ITER: Final = 2000
# Successive screening: after SCREEN_ITER batched steps, the best SCREEN_KEEP share of starts
# (at least SCREEN_MIN_KEEP) go on. On the Chinchilla grid the starts that end at the best
# minimum are among the best dozen after 5 steps (measured: 24 of the best 90 after 5 steps end
# there); the benchmark checks the final objective against scipy run from every start.
SCREEN_ITER: Final = 5
SCREEN_KEEP: Final = 0.02
SCREEN_MIN_KEEP: Final = 64
_MAX_BATCH_CELLS: Final = 4_000_000  # starts x rows per batch: ~32 MB per float64 array


@dataclass(frozen=True)
class Objective:
    """Huber (or squared) loss of a law's fit-space values against the data, summed over rows.

    Called with ``theta`` ``[S, P]`` it returns the objective ``[S]`` and its gradient
    ``[S, P]``. The residual is ``log(prediction) - log(y)`` for laws fitted on log values.
    """

    law: Law
    X: np.ndarray  # [k, n] inputs
    # [n] metric in fit space (its log for log laws), or [S, n]: one data set per start (a
    # parametric bootstrap's simulated replicates fit as one batch, like weighted resamples)
    target: np.ndarray
    loss: str = "huber"
    delta: float = 1e-3
    # Optional row weights: [S, n], one row per start (a bootstrap resample is the data with
    # integer weights, how often each row was drawn, so many resamples fit as one batch), or
    # [n] shared by every start (each run of checkpoints weighing the same).
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"--loss: expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.loss == "huber" and not (np.isfinite(self.delta) and self.delta > 0):
            raise InputError(f"--delta: expected a positive number, got {self.delta!r}")

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return self.law.value(np.atleast_2d(theta), self.X) - self.target

    def __call__(self, theta: np.ndarray, rows: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Objective ``[S]`` and gradient ``[S, P]``; ``rows`` picks the weight rows of a
        subset of starts."""
        fitted, backward = self.law.forward(theta.astype(self.X.dtype, copy=False), self.X)
        r = fitted - (self.target if rows is None or self.target.ndim == 1
                      else self.target[rows])
        if self.loss == "squared":
            rho, slope = 0.5 * r * r, r
        else:
            delta = self.delta
            mag = np.abs(r)
            rho = np.where(mag <= delta, 0.5 * r * r, delta * (mag - 0.5 * delta))
            slope = np.clip(r, -delta, delta)
        if self.weights is not None:
            w = self.weights if rows is None or self.weights.ndim == 1 else self.weights[rows]
            rho, slope = rho * w, slope * w
        return rho.sum(axis=1, dtype=float), backward(slope).astype(float, copy=False)

    def single_precision(self) -> Objective:
        """The same objective in float32: ~2-3x cheaper per start, precise enough to rank
        starts (a residual's rounding, ~1e-7, is far below delta=1e-3), never to report.
        Inputs beyond float32's range (about 3.4e38) stay in float64: cast, they would be
        infinite and every start would look alike."""
        finite32 = np.finfo(np.float32).max
        if not (np.all(np.abs(self.X) < finite32) and np.all(np.abs(self.target) < finite32)):
            return self
        return Objective(self.law, self.X.astype(np.float32),
                         self.target.astype(np.float32), self.loss, self.delta,
                         None if self.weights is None else self.weights.astype(np.float32))

    def scalar(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective of one start, as scipy wants it."""
        value, grad = self(theta[None, :])
        return float(value[0]), grad[0]


@dataclass(frozen=True)
class ScreenResult:
    """End points of the batched L-BFGS run: ``theta`` ``[S, P]``, ``value`` ``[S]``."""

    theta: np.ndarray
    value: np.ndarray
    converged: np.ndarray
    iterations: int
    evaluations: int


def _projected_gradient(x: np.ndarray, g: np.ndarray, lo: np.ndarray,
                        hi: np.ndarray) -> np.ndarray:
    return x - np.clip(x - g, lo, hi)


def batched_lbfgs(fun: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                  x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                  max_iter: int = 500, ftol: float = _SCREEN_FTOL,
                  gtol: float = _SCREEN_GTOL) -> ScreenResult:
    """Run projected L-BFGS from every row of ``x0`` at once; rows stop as they converge.

    ``fun(theta [S', P], rows [S']) -> (value [S'], grad [S', P])`` must treat rows
    independently: it is called on the still-active rows only, ``rows`` giving their indices
    in ``x0``. Bounds are kept by projection and by freezing the
    coordinates that sit on a bound with the gradient pushing outwards.
    """
    x = np.clip(np.array(x0, dtype=float), lower, upper)
    n_starts, n_par = x.shape
    f, g = fun(x, np.arange(n_starts))
    evaluations = n_starts
    s_hist = np.zeros((_MEMORY, n_starts, n_par))
    y_hist = np.zeros((_MEMORY, n_starts, n_par))
    rho = np.zeros((_MEMORY, n_starts))  # 0 marks an empty slot: it drops out of the recursion
    gamma = np.zeros(n_starts)
    converged = np.zeros(n_starts, dtype=bool)
    active = np.flatnonzero(np.isfinite(f))
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007  (reported below)
        if active.size == 0:
            break
        xa, fa, ga = x[active], f[active], g[active]
        free = ~(((xa <= lower) & (ga > 0)) | ((xa >= upper) & (ga < 0)))
        q = np.where(free, ga, 0.0)
        # Two-loop recursion, newest pair first, all active rows at once.
        alphas = np.zeros((_MEMORY, active.size))
        for i in range(_MEMORY - 1, -1, -1):
            alphas[i] = rho[i, active] * np.einsum("sp,sp->s", s_hist[i, active], q)
            q = q - alphas[i][:, None] * y_hist[i, active]
        scale = gamma[active]
        fresh = scale <= 0
        scale = np.where(fresh, 1.0 / np.maximum(np.linalg.norm(ga, axis=1), 1e-12), scale)
        r = q * scale[:, None]
        for i in range(_MEMORY):
            beta = rho[i, active] * np.einsum("sp,sp->s", y_hist[i, active], r)
            r = r + (alphas[i] - beta)[:, None] * s_hist[i, active]
        d = np.where(free, -r, 0.0)
        # Fall back to steepest descent where the quasi-Newton direction is not a descent one.
        bad = np.einsum("sp,sp->s", d, ga) >= 0
        if bad.any():
            d[bad] = -np.where(free[bad], ga[bad], 0.0) * scale[bad, None]
            rho[:, active[bad]] = 0.0
            gamma[active[bad]] = 0.0
        # Backtracking line search on the projected path, only on rows still failing.
        step = np.ones(active.size)
        x_new = np.clip(xa + d, lower, upper)
        f_new, g_new = fun(x_new, active)
        evaluations += active.size
        todo = ~(f_new <= fa + _ARMIJO * np.einsum("sp,sp->s", ga, x_new - xa))
        for _ in range(_MAX_HALVINGS):
            if not todo.any():
                break
            idx = np.flatnonzero(todo)
            step[idx] *= 0.5
            x_try = np.clip(xa[idx] + step[idx, None] * d[idx], lower, upper)
            f_try, g_try = fun(x_try, active[idx])
            evaluations += idx.size
            x_new[idx], f_new[idx], g_new[idx] = x_try, f_try, g_try
            todo[idx] = ~(f_try <= fa[idx] + _ARMIJO * np.einsum("sp,sp->s", ga[idx],
                                                                 x_try - xa[idx]))
        stuck = todo  # no decrease along the direction: as good as this start gets
        moved = ~stuck
        s = x_new - xa
        yv = g_new - ga
        sy = np.einsum("sp,sp->s", s, yv)
        keep = moved & (sy > 1e-12 * np.einsum("sp,sp->s", yv, yv))
        rows = active[keep]
        s_hist[:, rows] = np.roll(s_hist[:, rows], -1, axis=0)
        y_hist[:, rows] = np.roll(y_hist[:, rows], -1, axis=0)
        rho[:, rows] = np.roll(rho[:, rows], -1, axis=0)
        s_hist[-1, rows], y_hist[-1, rows], rho[-1, rows] = s[keep], yv[keep], 1.0 / sy[keep]
        gamma[rows] = sy[keep] / np.einsum("sp,sp->s", yv[keep], yv[keep])
        upd = active[moved]
        x[upd], f[upd], g[upd] = x_new[moved], f_new[moved], g_new[moved]
        small_step = (fa - f_new) <= ftol * np.maximum(
            np.maximum(np.abs(fa), np.abs(f_new)), 1.0)
        pg = np.abs(_projected_gradient(x[active], g[active], lower, upper)).max(axis=1)
        done = stuck | (moved & small_step) | (pg <= gtol) | ~np.isfinite(f[active])
        converged[active[done & ~stuck]] = True
        converged[active[stuck]] = True
        active = active[~done]
    return ScreenResult(theta=x, value=f, converged=converged, iterations=iterations,
                        evaluations=evaluations)


@dataclass(frozen=True)
class GridOutcome:
    """The best minimum found from a set of starts, and the runners-up (raw coordinates)."""

    theta: np.ndarray  # [P] best raw parameters
    value: float  # objective at theta
    converged: bool
    n_starts: int
    candidates: np.ndarray  # [K, P] distinct end points, best first (theta is row 0)
    candidate_values: np.ndarray  # [K]
    screen_iterations: int
    evaluations: int


def _distinct(theta: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Indices of up to ``k`` finite end points, best first, no two within ``_DISTINCT``."""
    order = [i for i in np.argsort(value, kind="stable") if np.isfinite(value[i])]
    chosen: list[int] = []
    for i in order:
        if all(np.max(np.abs(theta[i] - theta[j])) > _DISTINCT for j in chosen):
            chosen.append(int(i))
            if len(chosen) == k:
                break
    return np.array(chosen, dtype=int)


def polish(objective: Objective, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
           options: dict[str, float] | None = None) -> tuple[np.ndarray, float, bool]:
    """scipy L-BFGS-B from one start (tight tolerances by default): (theta, value, converged).

    The per-start way, kept as the reference the benchmarks compare the batched fitter with.
    """
    res = minimize(objective.scalar, x0, jac=True, method="L-BFGS-B",
                   bounds=list(zip(lower, upper, strict=True)),
                   options=_POLISH_OPTIONS if options is None else options)
    # status 1 = iteration/evaluation limit. Status 2 (line search cannot improve) at these
    # tolerances means the kinks of the Huber loss stop progress at a minimum: converged.
    return np.asarray(res.x, dtype=float), float(res.fun), bool(res.status != 1)


def fit_from_starts(objective: Objective, starts: np.ndarray, lower: np.ndarray,
                    upper: np.ndarray, *, n_polish: int = 5, max_iter: int = 200,
                    screen_iter: int = SCREEN_ITER, screen_keep: float = SCREEN_KEEP,
                    batch_size: int | None = None) -> GridOutcome:
    """Batched L-BFGS from every start, then polishing of the ``n_polish`` best distinct minima.

    Successive screening: every start takes ``screen_iter`` batched L-BFGS steps; the best
    ``screen_keep`` share of them (at least ``SCREEN_MIN_KEEP``) run on to convergence.
    ``screen_keep=1`` runs every start to convergence.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    n_starts, n_par = starts.shape
    thetas, values = [], []
    iters = evals = 0
    if batch_size is None:
        # Bound the [S, n] working arrays: all 4,500 starts at once on a 240-run ladder, fewer
        # per batch on a learning curve of thousands of steps.
        batch_size = max(SCREEN_MIN_KEEP, _MAX_BATCH_CELLS // max(objective.X.shape[1], 1))
    for lo in range(0, n_starts, batch_size):
        batch = starts[lo:lo + batch_size]
        keep = max(SCREEN_MIN_KEEP, int(np.ceil(screen_keep * len(batch))))
        if keep < len(batch):
            first = batched_lbfgs(objective.single_precision(), batch, lower, upper,
                                  max_iter=screen_iter)
            order = np.argsort(np.where(np.isfinite(first.value), first.value, np.inf),
                               kind="stable")
            batch = first.theta[order[:keep]]
            iters, evals = first.iterations, evals + first.evaluations
        screen = batched_lbfgs(objective, batch, lower, upper, max_iter=max_iter)
        thetas.append(screen.theta)
        values.append(screen.value)
        iters = max(iters, screen.iterations)
        evals += screen.evaluations
    theta, value = np.concatenate(thetas), np.concatenate(values)
    picked = _distinct(theta, value, max(1, n_polish))
    if picked.size == 0:
        return GridOutcome(theta=np.full(n_par, np.nan), value=float("nan"), converged=False,
                           n_starts=n_starts, candidates=np.empty((0, n_par)),
                           candidate_values=np.empty(0), screen_iterations=iters,
                           evaluations=evals)
    # Polish: the same batched L-BFGS at tight tolerances on the few best distinct end points
    # (scipy's L-BFGS-B does as well here, but its BLAS calls wake OpenBLAS's thread pool on
    # every iteration, which made polishing cost more than the whole grid on a busy machine).
    final = batched_lbfgs(objective, theta[picked], lower, upper, max_iter=POLISH_MAX_ITER,
                          ftol=POLISH_FTOL, gtol=POLISH_GTOL)
    order = np.argsort(np.where(np.isfinite(final.value), final.value, np.inf), kind="stable")
    cands, cvals = final.theta[order], final.value[order]
    return GridOutcome(theta=cands[0], value=float(cvals[0]),
                       converged=bool(final.converged[order[0]]), n_starts=n_starts,
                       candidates=cands, candidate_values=cvals, screen_iterations=iters,
                       evaluations=evals + final.evaluations)


def fit_replicates(objective: Objective, starts: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray, *, keep: int = SCREEN_MIN_KEEP,
                   max_iter: int = POLISH_MAX_ITER) -> tuple[np.ndarray, np.ndarray]:
    """Fit every data set of ``objective`` (its target ``[R, n]``) from every start: raw
    parameters ``[R, P]`` and objective values ``[R]`` of each replicate's best end point.

    A parametric bootstrap's replicates share the law, the inputs and the starts; they differ
    in the target only, so all ``R x S`` fits advance as one batched L-BFGS. When ``keep`` is
    below the number of starts, :data:`SCREEN_ITER` float32 steps rank each replicate's starts
    (as :func:`fit_from_starts` screens one data set's) and its best ``keep`` run on to tight
    tolerances.
    """
    if objective.weights is not None and objective.weights.ndim != 1:
        raise InputError("fit_replicates: row weights must be shared by every replicate ([n])")
    targets = np.atleast_2d(objective.target)
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    r, s = targets.shape[0], starts.shape[0]
    theta0 = np.tile(starts, (r, 1))
    rows = np.repeat(targets, s, axis=0)
    batch = replace(objective, target=rows)
    if keep < s:
        first = batched_lbfgs(batch.single_precision(), theta0, lower, upper,
                              max_iter=SCREEN_ITER)
        ranked = np.argsort(np.where(np.isfinite(first.value), first.value, np.inf).reshape(r, s),
                            axis=1, kind="stable")[:, :keep]
        picked = (ranked + s * np.arange(r)[:, None]).ravel()
        theta0, batch, s = first.theta[picked], replace(batch, target=rows[picked]), keep
    final = batched_lbfgs(batch, theta0, lower, upper, max_iter=max_iter, ftol=POLISH_FTOL,
                          gtol=POLISH_GTOL)
    value = np.where(np.isfinite(final.value), final.value, np.inf).reshape(r, s)
    best = np.argmin(value, axis=1)
    return final.theta.reshape(r, s, -1)[np.arange(r), best], value[np.arange(r), best]
