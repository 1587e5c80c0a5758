"""Group-sequential boundaries from an alpha-spending function (Lan & DeMets 1983).

For a fixed number of planned looks, alpha spending is tighter than an always-valid test: the
total false-alarm probability ``alpha`` is spent across looks as a function of the information
fraction ``t`` (exposures so far / planned maximum). The boundaries are found by the recursive
numerical integration of Armitage, McPherson & Rowe (1969) on the Brownian-motion scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

from scaleguard.errors import InputError

__all__ = ["SPENDING_FUNCTIONS", "SpendingName", "alpha_spent", "spending_boundaries"]

SpendingName = Literal["obrien_fleming", "pocock"]
SPENDING_FUNCTIONS: tuple[SpendingName, ...] = ("obrien_fleming", "pocock")
_GRID_POINTS = 2001  # points on the continuation region; boundaries move < 1e-3 beyond this
_LOWER_SD = 8.0  # the grid starts 8 standard deviations below 0; the mass lost there is < 1e-15


def alpha_spent(t: np.ndarray | float, alpha: float, spending: SpendingName) -> np.ndarray:
    """Cumulative one-sided alpha spent by information fraction ``t`` (Lan & DeMets 1983).

    O'Brien-Fleming type: ``2 - 2 Phi(z_{1-alpha/2} / sqrt(t))``; Pocock type:
    ``alpha log(1 + (e - 1) t)``.

    >>> float(alpha_spent(1.0, 0.05, "pocock"))
    0.05
    >>> round(float(alpha_spent(0.5, 0.025, "obrien_fleming")), 5)
    0.00153
    """
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if spending == "obrien_fleming":
        with np.errstate(divide="ignore"):
            return 2.0 - 2.0 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))
    if spending == "pocock":
        return alpha * np.log1p((np.e - 1.0) * t)
    raise InputError(f"spending: expected one of {', '.join(SPENDING_FUNCTIONS)}, "
                     f"got {spending!r}")


def spending_boundaries(fractions: Sequence[float] | np.ndarray, alpha: float,
                        spending: SpendingName = "obrien_fleming") -> np.ndarray:
    """One-sided upper z-boundaries at the looks with information ``fractions`` (increasing).

    Reject at look ``k`` when the z-statistic on all data so far exceeds boundary ``k``; the
    probability of ever rejecting under the null is ``alpha_spent(fractions[-1])``.

    >>> spending_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.025).round(2)  # ldbounds: 4.88 ... 2.03
    array([4.88, 3.36, 2.68, 2.29, 2.03])
    """
    t = np.asarray(fractions, dtype=float)
    if t.size == 0 or np.any(t <= 0) or np.any(t > 1) or np.any(np.diff(t) <= 0):
        raise InputError(f"information fractions: expected increasing values in (0, 1], got "
                         f"{list(np.round(t, 4))}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha: expected a number in (0, 1), got {alpha}")
    spent = alpha_spent(t, alpha, spending)
    increments = np.diff(np.concatenate([[0.0], spent]))
    bounds = np.empty(t.size)
    # Look 1: the first increment is a plain normal tail.
    bounds[0] = stats.norm.isf(increments[0]) if increments[0] > 0 else np.inf
    # Density of S_t = Z_t sqrt(t) on the continuation region, on a grid.
    lo = -_LOWER_SD * np.sqrt(t[-1])
    grid = np.linspace(lo, bounds[0] * np.sqrt(t[0]) if np.isfinite(bounds[0]) else
                       _LOWER_SD * np.sqrt(t[-1]), _GRID_POINTS)
    density = stats.norm.pdf(grid, scale=np.sqrt(t[0]))
    for k in range(1, t.size):
        step_sd = np.sqrt(t[k] - t[k - 1])
        weights = density * np.gradient(grid)  # trapezoid-like weights of the current grid

        def crossing(z: float, grid: np.ndarray = grid, weights: np.ndarray = weights,
                     k: int = k, step_sd: float = step_sd) -> float:
            tail = special.ndtr((grid - z * np.sqrt(t[k])) / step_sd)  # = sf, without overhead
            return float(weights @ tail) - increments[k]

        if increments[k] <= 0:
            bounds[k] = np.inf
        else:
            bounds[k] = optimize.brentq(crossing, -10.0, 40.0, xtol=1e-8)
        upper = bounds[k] * np.sqrt(t[k]) if np.isfinite(bounds[k]) else \
            _LOWER_SD * np.sqrt(t[-1])
        new_grid = np.linspace(lo, upper, _GRID_POINTS)
        diff = (new_grid[:, None] - grid[None, :]) / step_sd
        kernel = np.exp(-0.5 * diff * diff) / (np.sqrt(2 * np.pi) * step_sd)
        density = kernel @ weights
        grid = new_grid
    return bounds
