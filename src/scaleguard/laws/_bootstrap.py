"""Bootstrap over rows: parameter confidence intervals and prediction intervals.

Each resample is an independent job (a picklable :class:`BootstrapJob` run by the module-level
:func:`run_bootstrap_job`), so any :class:`~scaleguard.compute.Executor` can spread them over
processes or machines. Resamples are drawn from one seeded generator up front, so the result
does not depend on the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from scaleguard.compute import Executor, Progress, get_executor
from scaleguard.errors import FitError, InputError
from scaleguard.laws._data import as_frame, points_matrix
from scaleguard.laws._families import Law
from scaleguard.laws._optimize import Objective, batched_lbfgs

if TYPE_CHECKING:
    from scaleguard.laws._fit import LawFit

__all__ = ["MAX_RESAMPLES", "BootstrapJob", "BootstrapResult", "PredictionInterval",
           "run_bootstrap", "run_bootstrap_job", "prediction_interval"]

# Resamples a bootstrap may ask for: 100,000 is 100x what a 95% interval needs (Efron &
# Tibshirani suggest 1,000-2,000), and bounds the work and the resample matrix up front.
MAX_RESAMPLES: Final = 100_000

# A resample is a small perturbation of the data, so its minimum lies near one of the full fit's
# best distinct minima: each resample restarts from the best _BOOT_STARTS of them. A resample is
# the data with integer row weights, so a whole chunk of resamples runs as one batched L-BFGS.
_BOOT_STARTS: Final = 2
_BOOT_CHUNK: Final = 25  # resamples per job: big batches, yet enough jobs to spread and report
# Tighter than scipy's defaults: at Huber delta=1e-3 the gradient is tiny near the optimum and
# pgtol=1e-5 would stop a warm start before it moves (every resample would echo the full fit).
_BOOT_FTOL: Final = 1e-13
_BOOT_GTOL: Final = 1e-10
_BOOT_MAX_ITER: Final = 2000
_MAX_FAILED_SHARE: Final = 0.5  # more failed resamples than this and the CIs mean nothing


@dataclass(frozen=True)
class BootstrapJob:
    """A chunk of resamples: the law, the data, how often each row was drawn, where to start."""

    law: Law
    X: np.ndarray  # [k, n]
    target: np.ndarray  # [n] in fit space
    counts: np.ndarray  # [b, n] draws of each row in each resample (times its row weight)
    starts: np.ndarray  # [K, P] raw starting points shared by every resample
    lower: np.ndarray
    upper: np.ndarray
    loss: str
    delta: float


def run_bootstrap_job(job: BootstrapJob) -> np.ndarray:
    """Refit every resample of the chunk; raw parameters ``[b, P]`` (NaN where it cannot fit)."""
    law = job.law
    b, k = len(job.counts), min(len(job.starts), _BOOT_STARTS)
    # A resample whose drawn rows all share one scale cannot pin a law down.
    spread = np.ones(b, dtype=bool)
    for i, column in enumerate(law.inputs):
        if column == "unique_tokens":
            continue
        drawn = np.where(job.counts > 0, job.X[i][None, :], np.nan)
        spread &= np.nanmax(drawn, axis=1) > np.nanmin(drawn, axis=1)
    theta0 = np.repeat(job.starts[None, :k], b, axis=0).reshape(b * k, -1)
    weights = np.repeat(job.counts.astype(float), k, axis=0)
    objective = Objective(law, job.X, job.target, job.loss, job.delta, weights=weights)
    result = batched_lbfgs(objective, theta0, job.lower, job.upper, max_iter=_BOOT_MAX_ITER,
                           ftol=_BOOT_FTOL, gtol=_BOOT_GTOL)
    values = np.where(np.isfinite(result.value), result.value, np.inf).reshape(b, k)
    best = np.argmin(values, axis=1)
    theta = result.theta.reshape(b, k, -1)[np.arange(b), best]
    theta[~spread | ~np.isfinite(values.min(axis=1))] = np.nan
    return theta


@dataclass(frozen=True)
class BootstrapResult:
    """Parameter samples from ``n_boot`` resamples and their percentile intervals."""

    n_boot: int
    seed: int
    level: float
    executor: str
    param_names: tuple[str, ...]
    samples: np.ndarray  # [n_ok, P] public parameters of the resamples that fitted
    failures: int

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """Percentile interval of each parameter at ``level``."""
        tail = 100.0 * (1.0 - self.level) / 2.0
        lo, hi = np.percentile(self.samples, [tail, 100.0 - tail], axis=0)
        return {n: (float(a), float(b)) for n, a, b in zip(self.param_names, lo, hi, strict=True)}

    def as_dict(self) -> dict[str, Any]:
        median = np.median(self.samples, axis=0)
        std = np.std(self.samples, axis=0, ddof=1) if len(self.samples) > 1 else \
            np.full(len(self.param_names), np.nan)
        return {
            "n_boot": self.n_boot,
            "seed": self.seed,
            "level": self.level,
            "executor": self.executor,
            "failures": self.failures,
            "ci": {n: {"low": lo, "high": hi, "median": float(m), "std": float(s)}
                   for (n, (lo, hi)), m, s in zip(self.ci.items(), median, std, strict=True)},
        }

    def __repr__(self) -> str:
        cis = ", ".join(f"{n} [{lo:.4g}, {hi:.4g}]" for n, (lo, hi) in self.ci.items())
        return f"BootstrapResult({self.n_boot} resamples, {self.level:.0%}: {cis})"


@dataclass(frozen=True)
class PredictionInterval:
    """Predictions at target points with a bootstrap interval from the parameters' spread.

    The interval covers the *law's* value at each point (parameter uncertainty), not the
    run-to-run noise of a single new run around it.
    """

    inputs: tuple[str, ...]
    points: np.ndarray  # [k, m]
    estimate: np.ndarray  # [m] prediction of the full-data fit
    lower: np.ndarray
    upper: np.ndarray
    level: float

    def as_dict(self) -> dict[str, Any]:
        rows = []
        for j in range(self.points.shape[1]):
            row: dict[str, Any] = {c: float(self.points[i, j]) for i, c in enumerate(self.inputs)}
            row.update(estimate=float(self.estimate[j]), lower=float(self.lower[j]),
                       upper=float(self.upper[j]), level=self.level)
            rows.append(row)
        return {"level": self.level, "points": rows}

    def __repr__(self) -> str:
        parts = [f"{e:.4g} [{lo:.4g}, {hi:.4g}]" for e, lo, hi in
                 zip(self.estimate, self.lower, self.upper, strict=True)]
        return f"PredictionInterval({self.level:.0%}: {'; '.join(parts)})"


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level: expected a number between 0 and 1, got {level}")


def run_bootstrap(fit: LawFit, *, n_boot: int, seed: int, executor: str | Executor | None,
                  level: float, progress: Progress | None = None,
                  workers: int | None = None) -> BootstrapResult:
    """Resample the rows of ``fit``'s data ``n_boot`` times and refit each (LawFit.bootstrap)."""
    if int(n_boot) != n_boot or n_boot < 2:
        raise InputError(f"--bootstrap: expected a whole number of resamples >= 2, got {n_boot}")
    if n_boot > MAX_RESAMPLES:  # the resample matrix alone would be n_boot x rows
        raise InputError(f"--bootstrap: at most {MAX_RESAMPLES:,} resamples, got {n_boot}")
    _check_level(level)
    law = fit.law_
    n = fit.X_.shape[1]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(int(n_boot), n))
    counts = np.zeros((int(n_boot), n), dtype=np.int32)
    np.add.at(counts, (np.arange(int(n_boot))[:, None], draws), 1)
    target = np.log(fit.y_values_) if law.log_target else fit.y_values_
    if fit.row_weights_ is not None:  # runs of checkpoints keep their equal say
        counts = counts * fit.row_weights_[None, :]
    lower, upper = law.bounds(fit.X_, fit.y_values_)
    jobs = [BootstrapJob(law, fit.X_, target, counts[i:i + _BOOT_CHUNK], fit.candidates_,
                         lower, upper, fit.loss, fit.delta)
            for i in range(0, int(n_boot), _BOOT_CHUNK)]
    backend = get_executor(executor, workers=workers)

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(min(done * _BOOT_CHUNK, int(n_boot)), int(n_boot))

    raw = np.concatenate(backend.map(run_bootstrap_job, jobs, progress=report))
    ok = np.all(np.isfinite(raw), axis=1)
    if ok.sum() < max(2, (1.0 - _MAX_FAILED_SHARE) * n_boot):
        raise FitError(f"bootstrap: only {int(ok.sum())} of {n_boot} resamples could be "
                       "fitted; the data are too few or too concentrated for intervals")
    public = np.array([[law.to_public(t)[p] for p in law.param_names] for t in raw[ok]])
    return BootstrapResult(n_boot=int(n_boot), seed=int(seed), level=float(level),
                           executor=backend.name, param_names=law.param_names,
                           samples=public, failures=int((~ok).sum()))


def prediction_interval(fit: LawFit, points: Any, level: float = 0.95) -> PredictionInterval:
    """The fit's prediction at ``points`` and the percentile band over bootstrap samples."""
    _check_level(level)
    boot = fit.bootstrap_
    if boot is None:
        raise FitError("predict_interval needs a bootstrap; call bootstrap() first")
    law = fit.law_
    X = points_matrix(law, as_frame(points, "points"))
    raw = np.array([law.to_raw(dict(zip(boot.param_names, s, strict=True)))
                    for s in boot.samples])
    fitted = law.value(raw, X)  # [B, m] in fit space
    values = np.exp(fitted) if law.log_target else fitted
    tail = 100.0 * (1.0 - level) / 2.0
    lower, upper = np.percentile(values, [tail, 100.0 - tail], axis=0)
    return PredictionInterval(inputs=law.inputs, points=X, estimate=law.predict(fit.params_, X),
                              lower=lower, upper=upper, level=float(level))
