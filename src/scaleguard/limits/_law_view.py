"""A thin adapter over a fitted ``scaleguard.laws`` Chinchilla law: what the assessment asks of it.

The assessment needs the loss at any (N, D), the compute-optimal frontier over many budgets at
once, and the same for every bootstrap resample; this view gives those vectorised, from the public
parameters the fit reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaleguard.laws import efficient_frontier, get_law, isoflop_curve

__all__ = ["LawView"]


@dataclass(frozen=True)
class LawView:
    """A Chinchilla law ``L = E + A/N^alpha + B/D^beta`` and its bootstrap resamples."""

    params: Mapping[str, float]
    resamples: Sequence[Mapping[str, float]] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)  # the fit's as_dict(), for the report

    @property
    def irreducible(self) -> float:
        return float(self.params["E"])

    def loss(self, params: Any, tokens: Any, law: Mapping[str, float] | None = None) -> np.ndarray:
        """Loss at model sizes ``params`` and token counts ``tokens`` (broadcast)."""
        n, d = np.broadcast_arrays(np.asarray(params, float), np.asarray(tokens, float))
        points = np.vstack([n.ravel(), d.ravel()])
        values = get_law("chinchilla").predict(law or self.params, points)
        return np.asarray(values, dtype=float).reshape(n.shape)

    def allocation(self, compute: Any, law: Mapping[str, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compute-optimal (N*, D*, L*) for budgets ``compute`` (FLOP), with C = 6·N·D
        (``scaleguard.laws.efficient_frontier``; Hoffmann et al. 2022, eq. 4)."""
        c = np.asarray(compute, dtype=float)
        frontier = efficient_frontier(dict(law or self.params), c.ravel())
        return (frontier.params.reshape(c.shape), frontier.tokens.reshape(c.shape),
                frontier.loss.reshape(c.shape))

    def isoflop(self, compute: float, params: Any) -> np.ndarray:
        """Loss along the iso-FLOP line of ``compute`` at model sizes ``params``."""
        return np.asarray(isoflop_curve(dict(self.params), compute, params), dtype=float)

    def tokens_exponent(self) -> float:
        """``a`` in ``D* ∝ C^a``: ``alpha / (alpha + beta)``."""
        return float(self.params["alpha"] / (self.params["alpha"] + self.params["beta"]))

    def interval(self, values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed quantiles over the resample axis (0) of ``values``."""
        tail = (1.0 - confidence) / 2.0
        return (np.quantile(values, tail, axis=0), np.quantile(values, 1.0 - tail, axis=0))

    def loss_interval(self, params: Any, tokens: Any, confidence: float
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of the loss at (N, D) over the resamples (NaN without them)."""
        if not self.resamples:
            nan = np.full(np.shape(np.asarray(params, float)), np.nan)
            return nan, nan
        values = np.array([self.loss(params, tokens, r) for r in self.resamples])
        return self.interval(values, confidence)

    def frontier_interval(self, compute: Any, confidence: float, *, knots: int = 24
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Interval of the optimal loss L*(C): each resample's own frontier.

        The resamples' frontiers are evaluated at ``knots`` log-spaced budgets and the band is
        interpolated in log C between them: the frontier is smooth, and each resample costs a
        frontier of its own.
        """
        c = np.asarray(compute, dtype=float)
        if not self.resamples:
            nan = np.full(c.shape, np.nan)
            return nan, nan
        coarse = np.geomspace(c.min(), c.max(), min(knots, c.size))
        values = np.array([self.allocation(coarse, r)[2] for r in self.resamples])
        low, high = self.interval(values, confidence)
        where = np.log10(c)
        return (np.interp(where, np.log10(coarse), low), np.interp(where, np.log10(coarse), high))
