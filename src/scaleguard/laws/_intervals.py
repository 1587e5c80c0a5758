"""Prediction intervals for a new run, calibrated on the rolling-origin backtest.

A bootstrap over rows measures how well the data pin the *parameters* down; a new run also
carries run-to-run noise, and an extrapolated law carries the error of its form, which grows
with distance. Both show in the backtest: each held-out residual ``r = log(actual/predicted)``
lies some decades ``d`` beyond the data it was fitted on. The error model is

    sd(d) = sqrt(noise^2 + (growth * d)^2)        (log scale)

with ``noise`` the run-to-run scatter (the fit's robust residual spread, or the seed-to-seed
spread when seeds are given) and ``growth`` fitted to the backtest residuals by maximum
likelihood. Its coverage is checked out of sample — each origin's residuals against the model
fitted on the other origins — and the interval is calibrated on those same out-of-sample
residuals, conformal style (split conformal prediction; Angelopoulos & Bates 2021, "A gentle
introduction to conformal prediction", section 1): each residual divided by the sd the model
gave it is a score, and the sd is widened by the score's ``level`` quantile over the normal
quantile whenever that ratio exceeds one. Scaling by ``sd(d)`` keeps the width growing with
distance while the quantile sets its level; when the nominal interval covered too few held-
out runs, a warning says by how much it was widened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from scaleguard.errors import InputError

__all__ = ["COVERAGE_TOLERANCE", "ErrorModel", "conformal_quantile", "fit_error_model",
           "interval_ends", "robust_sd"]

# The target: empirical coverage within 10 points of nominal; further off, widen/warn.
COVERAGE_TOLERANCE: Final = 0.10
_MAX_GROWTH: Final = 5.0  # log-error sd per decade: beyond e^5 per decade nothing is predicted
_MAD_TO_SD: Final = 1.4826  # MAD of a normal sample times this estimates its sd
_SD_FLOOR: Final = 1e-18  # a noise-free model must not divide a residual by zero
# Logs just inside the smallest and largest normal floats (2.2e-308, 1.8e308): an interval
# wider than that says "anything" and is stated within them, finite (JSON has no infinity).
_LOG_RANGE: Final = (-708.0, 709.0)


def interval_ends(log_center: np.ndarray | float, half: np.ndarray | float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``exp(log_center -+ half)``, kept within the positive floats.

    >>> [float(f"{v:.3g}") for v in interval_ends(0.0, 1e4)]   # e^-1e4, e^1e4 overflow
    [3.31e-308, 8.22e+307]
    """
    center, width = np.asarray(log_center, float), np.asarray(half, float)
    return (np.exp(np.clip(center - width, *_LOG_RANGE)),
            np.exp(np.clip(center + width, *_LOG_RANGE)))


def robust_sd(residuals: np.ndarray, n_params: int = 0) -> float:
    """Spread of fit residuals (MAD-based), inflated for the parameters fitted to them."""
    r = np.asarray(residuals, float)
    n = r.size
    if n == 0:
        return 0.0
    sd = _MAD_TO_SD * float(np.median(np.abs(r - np.median(r))))
    return sd * math.sqrt(n / (n - n_params)) if n > n_params else sd


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) level)``-th smallest of ``n`` scores
    (the largest when there are too few for that rank), so that a new exchangeable score falls
    at or below it with probability at least ``level``.

    >>> conformal_quantile(np.arange(1.0, 11.0), 0.8)   # rank ceil(11 * 0.8) = 9
    9.0
    """
    ordered = np.sort(np.asarray(scores, float))
    rank = min(ordered.size, math.ceil((ordered.size + 1) * level - 1e-9))
    return float(ordered[rank - 1])


def _nll(growth: float, noise: float, r: np.ndarray, d: np.ndarray) -> float:
    var = np.maximum(noise**2 + (growth * d) ** 2, 1e-18)
    return float(np.sum(np.log(var) + r**2 / var))


def _fit_growth(noise: float, r: np.ndarray, d: np.ndarray) -> float:
    if r.size == 0 or not np.any(d > 0):
        return 0.0
    best = minimize_scalar(_nll, bounds=(0.0, _MAX_GROWTH), args=(noise, r, d),
                           method="bounded", options={"xatol": 1e-6})
    return float(best.x)


@dataclass(frozen=True)
class ErrorModel:
    """Log-scale error sd of a prediction ``d`` decades beyond the data, and its calibration.

    ``coverage`` is the share of backtest residuals inside the nominal ``level`` interval when
    each origin is predicted from a model fitted on the others (None with fewer than two
    origins); ``widen`` the conformal factor applied so that ``level`` of those out-of-sample
    residuals lie inside (1 when they already did).
    """

    noise: float
    growth: float
    level: float
    n_residuals: int
    coverage: float | None
    widen: float = 1.0
    noise_source: str = "fit residuals"

    def sd(self, decades: np.ndarray | float) -> np.ndarray:
        d = np.maximum(np.asarray(decades, float), 0.0)
        return self.widen * np.sqrt(self.noise**2 + (self.growth * d) ** 2)

    def bounds(self, estimate: np.ndarray | float, decades: np.ndarray | float,
               spread: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper ends of the ``level`` interval around a positive ``estimate``;
        ``spread`` is a further log-scale sd added in quadrature (disagreement between laws)."""
        z = float(norm.ppf(0.5 + self.level / 2.0))
        half = z * np.sqrt(self.sd(decades) ** 2 + np.asarray(spread, float) ** 2)
        return interval_ends(np.log(np.asarray(estimate, float)), half)

    @property
    def warning(self) -> str | None:
        if self.coverage is None:
            return (f"the {self.level:.0%} prediction interval could not be checked out of "
                    "sample (fewer than two rolling origins); treat it as a rough guide")
        if self.coverage < self.level - COVERAGE_TOLERANCE:
            return (f"the {self.level:.0%} prediction interval covered only "
                    f"{self.coverage:.0%} of held-out runs in the backtest; widened "
                    f"{self.widen:.2f}x to cover {self.level:.0%}")
        if self.coverage > self.level + COVERAGE_TOLERANCE:
            return (f"the {self.level:.0%} prediction interval covered {self.coverage:.0%} "
                    "of held-out runs in the backtest: it is conservative")
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"noise_log_sd": self.noise, "noise_source": self.noise_source,
                "growth_log_sd_per_decade": self.growth, "level": self.level,
                "n_residuals": self.n_residuals, "backtest_coverage": self.coverage,
                "widen": self.widen}

    def __repr__(self) -> str:
        cov = "unchecked" if self.coverage is None else f"coverage {self.coverage:.0%}"
        return (f"ErrorModel(sd = sqrt({self.noise:.3g}^2 + ({self.growth:.3g} d)^2) x "
                f"{self.widen:.3g}; {self.level:.0%} interval, {cov})")


def fit_error_model(noise: float, residuals: np.ndarray, distances: np.ndarray,
                    origin_of: np.ndarray, *, level: float = 0.9,
                    noise_source: str = "fit residuals") -> ErrorModel:
    """The error model of one law from its backtest residuals at known distances.

    >>> rng = np.random.default_rng(0)
    >>> d = np.tile([0.1, 0.3, 0.6], 200); origin = np.repeat(np.arange(4), 150)
    >>> r = rng.normal(0, np.sqrt(0.01**2 + (0.05 * d) ** 2))
    >>> m = fit_error_model(0.01, r, d, origin, level=0.9)
    >>> round(m.growth, 2), abs(m.coverage - 0.9) < 0.05, m.widen
    (0.05, True, 1.0)
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level: expected a number between 0 and 1, got {level}")
    r, d = np.asarray(residuals, float), np.maximum(np.asarray(distances, float), 0.0)
    origin_of = np.asarray(origin_of, int)
    z = float(norm.ppf(0.5 + level / 2.0))
    growth = _fit_growth(noise, r, d)
    origins = np.unique(origin_of)
    coverage = None
    widen = 1.0
    if origins.size >= 2:
        score = np.zeros(r.size)
        for k in origins:
            mine = origin_of == k
            g = _fit_growth(noise, r[~mine], d[~mine])
            score[mine] = np.abs(r[mine]) / np.maximum(np.sqrt(noise**2 + (g * d[mine]) ** 2),
                                                       _SD_FLOOR)
        coverage = float(np.mean(score <= z))
        widen = max(1.0, conformal_quantile(score, level) / z)
    return ErrorModel(noise=float(noise), growth=growth, level=float(level),
                      n_residuals=int(r.size), coverage=coverage, widen=widen,
                      noise_source=noise_source)
