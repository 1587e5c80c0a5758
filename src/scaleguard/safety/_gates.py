"""Gate statistics for one metric: treatment against its comparator, and against a guardrail.

Every quantity is put in the *harm direction*: a positive ``estimate`` means the treatment is
worse (for a ``higher_is_better`` metric the sign is flipped), so one rule serves every metric.
Functions take arrays and broadcast, so the controller calls them with scalars and the
simulator with one value per run.

Two gates per metric, whichever the plan sets:

- **comparison** (``margin``): ``theta = treatment - comparator``, a non-inferiority test (as in
  trial design; Flagger's threshold ranges and Kayenta's marginal scores say the same). Pass when
  the upper confidence bound of ``theta`` is below the margin; fail when an always-valid test
  rejects ``theta <= margin`` (the lower bound is above the margin: shown worse than the margin);
  otherwise continue. ``strict: true`` fails as soon as ``theta <= 0`` is rejected (any shown
  harm), for critical safety metrics.
- **guardrail** (``guardrail``): the treatment's own value. Fail when it is shown above the limit;
  pass when shown below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from scaleguard.safety._plan import MetricSpec
from scaleguard.safety._sequential import (
    beta_binomial_interval,
    beta_binomial_p_value,
    normal_mixture_halfwidth,
    normal_mixture_p_value,
)

__all__ = ["Counts", "GateStatistics", "comparison_gate", "guardrail_gate", "guardrail_interval",
           "mixture_sd",
           "RATE_SMOOTHING"]

# Add half an event and one exposure before estimating a Bernoulli variance, so that a rate of
# 0/n does not claim zero variance (the Agresti-Caffo style adjustment).
RATE_SMOOTHING = 0.5


@dataclass(frozen=True)
class Counts:
    """Sufficient statistics of one arm: exposures ``n``, sum and sum of squares of the values.

    For rates and quantile exceedances the values are 0/1, so ``total = total_sq = events``.
    """

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    binary: bool

    @classmethod
    def rate(cls, events: np.ndarray | float, exposures: np.ndarray | float) -> Counts:
        k = np.asarray(events, dtype=float)
        return cls(np.asarray(exposures, dtype=float), k, k, True)

    @classmethod
    def mean(cls, n: np.ndarray | float, mean: np.ndarray | float,
             var: np.ndarray | float) -> Counts:
        n_ = np.asarray(n, dtype=float)
        m = np.asarray(mean, dtype=float)
        v = np.asarray(var, dtype=float)
        # var is the sample variance (n - 1 denominator).
        return cls(n_, n_ * m, (n_ - 1.0) * v + n_ * m * m, False)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.n + other.n, self.total + other.total,
                      self.total_sq + other.total_sq, self.binary)

    @property
    def value(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, self.total / np.maximum(self.n, 1.0), np.nan)

    def variance(self) -> np.ndarray:
        """Per-exposure variance (smoothed for binary values)."""
        if self.binary:
            p = (self.total + RATE_SMOOTHING) / (self.n + 2 * RATE_SMOOTHING)
            return p * (1.0 - p)
        n = np.maximum(self.n, 2.0)
        mean = self.total / n
        return np.maximum((self.total_sq - n * mean * mean) / (n - 1.0), 0.0)


@dataclass(frozen=True)
class GateStatistics:
    """One gate at one look, in the harm direction (arrays broadcast over runs).

    ``p_value``: always-valid p-value of "no harm" (1 when the estimate points the other way);
    ``z``: the same evidence as a fixed-horizon z-statistic (for alpha spending and baselines);
    ``lower``/``upper``: confidence sequence at ``alpha`` for the estimate; ``limit``: the
    estimate must stay below it to pass (the margin, or 0 for a guardrail: estimate = value -
    guardrail).
    """

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    limit: np.ndarray
    p_value: np.ndarray
    z: np.ndarray
    se: np.ndarray

    @property
    def passed(self) -> np.ndarray:
        return self.upper < self.limit


def _sign(metric: MetricSpec) -> float:
    # Quantile metrics count exposures on the wrong side of the guardrail: lower is always better.
    return -1.0 if metric.direction == "higher_is_better" and metric.kind != "quantile" else 1.0


def mixture_sd(metric: MetricSpec) -> float:
    """The mSPRT mixing sd: the plan's, else the margin, else half the guardrail's distance.

    The mixture is most powerful against effects near its sd (Johari et al. 2022, sec. 4.2), so
    the effect the release owner cares about — the margin — is the natural default.
    """
    if metric.mixture_sd is not None:
        return metric.mixture_sd
    if metric.margin:
        return metric.margin
    if metric.kind == "quantile":
        return 0.5 * _quantile_limit(metric)
    if metric.guardrail:
        return 0.5 * abs(metric.guardrail)
    return 1.0


def _quantile_limit(metric: MetricSpec) -> float:
    """Largest allowed share of exposures on the wrong side of a quantile metric's guardrail."""
    q = float(metric.quantile or 0.5)
    return 1.0 - q if metric.direction == "lower_is_better" else q


def comparison_gate(metric: MetricSpec, treatment: Counts, comparator: Counts,
                    alpha: float) -> GateStatistics:
    """Treatment against its comparator: is it worse, or shown no worse than ``margin``?

    >>> from scaleguard.safety._plan import MetricSpec
    >>> m = MetricSpec(name="harm", margin=0.001)
    >>> g = comparison_gate(m, Counts.rate(80, 10_000), Counts.rate(10, 10_000), 0.05)
    >>> bool(g.p_value < 0.05), bool(g.passed)  # 0.7% worse: beyond the 0.1% margin
    (True, False)
    >>> g = comparison_gate(m, Counts.rate(110, 100_000), Counts.rate(100, 100_000), 0.05)
    >>> bool(g.p_value < 0.05), bool(g.passed)  # within the margin: no evidence of harm
    (False, True)
    """
    sign = _sign(metric)
    estimate = sign * (treatment.value - comparator.value)
    var_t, var_c = treatment.variance(), comparator.variance()
    with np.errstate(divide="ignore", invalid="ignore"):
        var_alt = var_t / treatment.n + var_c / comparator.n
        if treatment.binary:
            # Under "no difference" both arms share one rate: the pooled variance is the null's.
            pooled = Counts.rate(treatment.total + comparator.total,
                                 treatment.n + comparator.n).variance()
            var_null = pooled * (1.0 / treatment.n + 1.0 / comparator.n)
        else:
            var_null = var_alt
    empty = (treatment.n <= 0) | (comparator.n <= 0)
    var_alt = np.where(empty, np.inf, var_alt)
    var_null = np.where(empty, np.inf, var_null)
    estimate = np.where(empty, 0.0, estimate)
    tau = mixture_sd(metric)
    margin = np.full_like(estimate, float(metric.margin or 0.0))
    if metric.strict or not metric.margin:
        p = np.where(estimate > 0, normal_mixture_p_value(estimate, var_null, tau), 1.0)
    else:
        # H0: theta <= margin. The pooled variance holds only at theta = 0, so the null's
        # variance here is the unpooled one.
        p = np.where(estimate > margin,
                     normal_mixture_p_value(estimate, var_alt, tau, null=margin), 1.0)
        var_null = var_alt
    width = normal_mixture_halfwidth(var_alt, tau, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        null = 0.0 if metric.strict else margin
        z = np.where(np.isfinite(var_null) & (var_null > 0),
                     (estimate - null) / np.sqrt(var_null), 0.0)
    return GateStatistics(estimate, estimate - width, estimate + width, margin, p, z,
                          np.sqrt(var_alt))


def guardrail_gate(metric: MetricSpec, treatment: Counts, alpha: float) -> GateStatistics:
    """The treatment's own value against the plan's absolute guardrail.

    Rates use the exact beta-binomial mixture (no normal approximation for rare events); means
    use the normal mixture. ``estimate`` is ``value - guardrail`` in the harm direction.

    >>> from scaleguard.safety._plan import MetricSpec
    >>> m = MetricSpec(name="harm", guardrail=0.01)
    >>> g = guardrail_gate(m, Counts.rate(20, 10_000), 0.05)
    >>> bool(g.passed), bool(g.p_value == 1.0)
    (True, True)
    """
    assert metric.guardrail is not None
    if treatment.binary:
        limit, bad, n = _bad_events(metric, treatment)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(n > 0, bad / np.maximum(n, 1.0), limit)
        evidence = beta_binomial_p_value(bad, n, limit)
        estimate = rate - limit
        shown = evidence <= alpha
        p = np.where(estimate > 0, evidence, 1.0)
        # The sequence bounds are only needed as pass/fail here: report +-inf when not shown.
        upper = np.where(shown & (estimate < 0), estimate, np.inf)
        lower = np.where(shown & (estimate > 0), estimate, -np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(limit * (1.0 - limit) / n)
            z = np.where(n > 0, estimate / se, 0.0)
        return GateStatistics(estimate, lower, upper, np.zeros_like(estimate), p, z, se)
    sign = _sign(metric)
    estimate = sign * (treatment.value - metric.guardrail)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(treatment.n > 1, treatment.variance() / treatment.n, np.inf)
    estimate = np.where(np.isfinite(var), estimate, 0.0)
    tau = mixture_sd(metric)
    p = np.where(estimate > 0, normal_mixture_p_value(estimate, var, tau), 1.0)
    width = normal_mixture_halfwidth(var, tau, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.isfinite(var), estimate / np.sqrt(var), 0.0)
    return GateStatistics(estimate, estimate - width, estimate + width,
                          np.zeros_like(estimate), p, z, np.sqrt(var))


def _bad_events(metric: MetricSpec, treatment: Counts) -> tuple[float, np.ndarray, np.ndarray]:
    """(limit on the share of bad exposures, bad exposures, exposures) of a binary guardrail."""
    assert metric.guardrail is not None
    if metric.kind == "quantile":
        return _quantile_limit(metric), treatment.total, treatment.n
    if metric.direction == "lower_is_better":
        return metric.guardrail, treatment.total, treatment.n
    # e.g. a helpfulness rate that must stay above the guardrail: count the misses.
    return 1.0 - metric.guardrail, treatment.n - treatment.total, treatment.n


def guardrail_interval(metric: MetricSpec, treatment: Counts, alpha: float
                       ) -> tuple[float, float]:
    """Exact confidence-sequence bounds of a scalar binary guardrail gate's estimate."""
    limit, bad, n = _bad_events(metric, treatment)
    lower, upper = beta_binomial_interval(int(round(float(bad))), int(round(float(n))), alpha)
    return lower - limit, upper - limit


def z_p_value(z: np.ndarray) -> np.ndarray:
    """One-sided fixed-horizon p-value of a z-statistic (valid at one planned look only)."""
    return stats.norm.sf(z)
