"""Rare-event bounds: what a pilot with few or no failures can certify about a harm rate.

A pilot of ``n`` exposures with ``k`` failures does not show that the rate is ``k/n``; it shows
that the rate is below an upper bound with some confidence. These functions give that bound
(frequentist and Bayesian), the exposures needed to certify a target rate, the incidents to
expect at the next stage, and a forecast of the worst per-query risk at deployment scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special, stats

from scaleguard.errors import FitError, InputError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "JEFFREYS_PRIOR",
    "RateBound",
    "TailForecast",
    "TAIL_POINTS",
    "clopper_pearson_upper",
    "bayesian_upper",
    "rate_bound",
    "trials_to_certify",
    "tail_forecast",
]

DEFAULT_CONFIDENCE = 0.95  # the usual one-sided level for certifying a failure rate
JEFFREYS_PRIOR = (0.5, 0.5)  # Beta(1/2, 1/2): Jeffreys' non-informative prior for a Bernoulli rate
# Top scores used for the Gumbel tail fit; Jones et al. 2025 ("Forecasting rare language model
# behaviors") fit the extreme quantiles of -log(-log p) over the top ~10 of their evaluation set.
TAIL_POINTS = 10


def _check_counts(failures: int, trials: int) -> None:
    if trials < 1 or int(trials) != trials:
        raise InputError(f"--trials: expected a whole number >= 1, got {trials}")
    if failures < 0 or int(failures) != failures:
        raise InputError(f"--failures: expected a whole number >= 0, got {failures}")
    if failures > trials:
        raise InputError(f"--failures: {failures} is more than --trials {trials}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"--confidence: expected a number in (0, 1), got {confidence}")


def clopper_pearson_upper(failures: int, trials: int,
                          confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson (exact binomial) upper bound on a failure rate.

    The bound is the ``confidence`` quantile of Beta(k + 1, n - k) (Clopper & Pearson 1934); with
    no failures it is ``1 - (1 - confidence)^(1/n)``, close to the "rule of three" 3/n at 95%.

    >>> round(clopper_pearson_upper(0, 1000), 5)
    0.00299
    >>> round(clopper_pearson_upper(3, 10_000), 6)
    0.000775
    """
    _check_counts(failures, trials)
    _check_confidence(confidence)
    if failures == trials:
        return 1.0
    return float(stats.beta.ppf(confidence, failures + 1, trials - failures))


def bayesian_upper(failures: int, trials: int, confidence: float = DEFAULT_CONFIDENCE,
                   prior: tuple[float, float] = JEFFREYS_PRIOR) -> float:
    """Upper ``confidence`` quantile of the Beta posterior of the rate (Beta prior ``prior``).

    >>> round(bayesian_upper(0, 1000), 5)
    0.00192
    """
    _check_counts(failures, trials)
    _check_confidence(confidence)
    a, b = prior
    if a <= 0 or b <= 0:
        raise InputError(f"prior: expected two positive Beta parameters, got {prior}")
    return float(stats.beta.ppf(confidence, a + failures, b + trials - failures))


def trials_to_certify(rate: float, confidence: float = DEFAULT_CONFIDENCE,
                      failures: int = 0) -> int:
    """Fewest exposures with at most ``failures`` failures whose Clopper-Pearson bound is <= rate.

    >>> trials_to_certify(1e-3)
    2995
    """
    if not 0.0 < rate < 1.0:
        raise InputError(f"--target: expected a failure rate in (0, 1), got {rate}")
    _check_confidence(confidence)
    if failures < 0 or int(failures) != failures:
        raise InputError(f"--failures: expected a whole number >= 0, got {failures}")
    alpha = 1.0 - confidence
    if failures == 0:  # closed form: (1 - rate)^n <= alpha
        return math.ceil(math.log(alpha) / math.log1p(-rate) - 1e-9)
    # P(X <= k | n, rate) falls as n grows; find the first n where it is <= alpha.
    hi = max(failures + 1, int(10 * (failures + 1) / rate))
    while stats.binom.cdf(failures, hi, rate) > alpha:
        hi *= 2
    lo = failures + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if stats.binom.cdf(failures, mid, rate) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class RateBound:
    """What ``failures`` in ``trials`` exposures certify, and what the next stage should expect.

    ``expected_incidents`` is at the observed rate and ``incidents_upper`` at the Clopper-Pearson
    bound, both for ``next_exposures``; ``p_any_incident_upper`` is the chance of at least one
    incident there if the rate sits at the bound.
    """

    failures: int
    trials: int
    confidence: float
    observed_rate: float
    clopper_pearson_upper: float
    bayesian_upper: float
    next_exposures: float | None
    expected_incidents: float | None
    incidents_upper: float | None
    p_any_incident_upper: float | None
    target_rate: float | None = None
    trials_to_certify: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def __repr__(self) -> str:
        text = (f"RateBound({self.failures}/{self.trials}: rate <= "
                f"{self.clopper_pearson_upper:.3g} at {self.confidence:.0%} (Clopper-Pearson), "
                f"<= {self.bayesian_upper:.3g} (Bayes, Jeffreys)")
        if self.next_exposures is not None:
            text += (f"; next {self.next_exposures:.3g} exposures: {self.expected_incidents:.3g} "
                     f"incidents expected, <= {self.incidents_upper:.3g}")
        return text + ")"


def rate_bound(failures: int, trials: int, confidence: float = DEFAULT_CONFIDENCE,
               next_exposures: float | None = None, target: float | None = None) -> RateBound:
    """Bounds on a rate from ``failures``/``trials`` and the incidents expected at the next stage.

    With ``target``, also the failure-free trials needed to certify that rate.

    >>> b = rate_bound(1, 1000, next_exposures=1e5)
    >>> round(b.clopper_pearson_upper, 5), round(b.incidents_upper)
    (0.00473, 473)
    """
    upper = clopper_pearson_upper(failures, trials, confidence)
    bayes = bayesian_upper(failures, trials, confidence)
    expected = upper_count = p_any = None
    if next_exposures is not None:
        if not next_exposures > 0 or not math.isfinite(next_exposures):
            raise InputError(f"--next: expected a positive number of exposures, "
                             f"got {next_exposures}")
        expected = next_exposures * failures / trials
        upper_count = next_exposures * upper
        p_any = 1.0 if upper >= 1.0 else -math.expm1(next_exposures * math.log1p(-upper))
    needed = trials_to_certify(target, confidence) if target is not None else None
    return RateBound(failures, trials, confidence, failures / trials, upper, bayes,
                     next_exposures, expected, upper_count, p_any, target, needed)


@dataclass(frozen=True)
class TailForecast:
    """Forecast of the worst per-query failure probability among ``queries`` deployment queries.

    Scores are ``s = -log(-log p)``; their upper tail is taken as Gumbel, so the largest of ``m``
    scores grows as ``location + scale * (log(m) + 0.5772)``. ``worst_probability`` is that
    line at ``queries``, mapped back to a probability. With only ``tail_points`` points the
    fitted scale is noisy; read the forecast as an order of magnitude.
    """

    queries: float
    evaluated: int
    tail_points: int
    location: float
    scale: float
    worst_score: float
    worst_probability: float
    observed_worst_probability: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"TailForecast(worst per-query failure probability at {self.queries:.3g} queries "
                f"~ {self.worst_probability:.3g}; worst of the {self.evaluated} evaluated "
                f"{self.observed_worst_probability:.3g}; Gumbel location {self.location:.3g}, "
                f"scale {self.scale:.3g} on the top {self.tail_points})")


def tail_forecast(probabilities: np.ndarray, queries: float,
                  tail_points: int = TAIL_POINTS) -> TailForecast:
    """Forecast the worst-case per-query failure probability at deployment scale.

    Jones et al. 2025 ("Forecasting rare language model behaviors"): transform each query's
    measured failure probability ``p`` to ``s = -log(-log p)``; the ``k``-th largest of ``m``
    scores estimates the quantile reached by the worst of about ``m / k`` queries, and under a
    Gumbel tail that quantile is linear in ``log(m / k)`` (exactly: in ``log m - digamma(k)``).
    A least-squares line through the top ``tail_points`` scores is extrapolated to the expected
    maximum of ``queries`` scores.

    >>> rng = np.random.default_rng(0)
    >>> p = np.exp(-np.exp(-rng.gumbel(-5.0, 0.3, size=2000)))  # scores ~ Gumbel(-5, 0.3)
    >>> f = tail_forecast(p, queries=1e6)
    >>> f.observed_worst_probability < f.worst_probability < 0.5
    True
    """
    p = np.asarray(probabilities, dtype=float).ravel()
    if p.size == 0:
        raise InputError("scores: expected at least one per-query probability, got none")
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        raise InputError(f"scores: value {p[bad[0]]!r} at position {bad[0] + 1} is not a "
                         "probability in [0, 1]")
    if tail_points < 3:
        raise InputError(f"--tail: expected at least 3 tail points, got {tail_points}")
    positive = p[p > 0]
    if positive.size < tail_points:
        raise FitError(f"scores: {positive.size} queries with a failure probability above 0; "
                       f"the tail fit needs at least {tail_points}")
    if not queries >= p.size or not math.isfinite(queries):
        raise InputError(f"--queries: expected a deployment size >= the {p.size} evaluated "
                         f"queries, got {queries}")
    # p = 1 maps to +inf; clip to the largest double below 1 so that the fit stays finite.
    clipped = np.clip(positive, np.finfo(float).tiny, np.nextafter(1.0, 0.0))
    scores = -np.log(-np.log(clipped))
    top = np.sort(scores)[::-1][:tail_points]
    # Under an exponential (Gumbel-domain) tail the k-th largest of m scores has expectation
    # location + scale * (log m - digamma(k)); digamma(1) = -Euler's gamma makes k = 1 the
    # expected maximum. Regressing on this plotting position keeps the fit unbiased.
    log_n = math.log(p.size) - special.digamma(np.arange(1, tail_points + 1))
    if np.ptp(top) == 0:
        raise FitError("scores: the top scores are all equal; no tail to extrapolate")
    fit = optimize.lsq_linear(np.column_stack([np.ones_like(log_n), log_n]), top)
    location, scale = (float(v) for v in fit.x)
    worst_score = location + scale * (math.log(queries) + np.euler_gamma)
    worst = float(np.exp(-np.exp(-worst_score)))
    return TailForecast(float(queries), int(p.size), tail_points, location, scale, worst_score,
                        worst, float(p.max()))
