"""Which detectors watch which metric by default, chosen from the metric's name."""

from __future__ import annotations

import re
from collections.abc import Callable

from scaleguard.monitor._detector import Detector
from scaleguard.monitor._spikes import LossRatioDetector, NonFiniteDetector, SpikeDetector

__all__ = ["METRIC_KINDS", "default_detectors", "metric_kind"]

# Metric kinds by name, first match wins (case-insensitive). Anything else gets the NaN check.
METRIC_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("grad_norm", re.compile(r"grad.*norm|gnorm")),
    ("throughput", re.compile(r"tokens?[_/ ]?(per[_ ])?s(ec(ond)?)?\b|throughput|samples?_per|"
                              r"\btps\b|it/s|mfu")),
    ("loss", re.compile(r"loss|perplexity|\bppl\b")),
)


def metric_kind(metric: str) -> str:
    """``"loss"``, ``"grad_norm"``, ``"throughput"`` or ``"other"`` from the metric's name.

    Examples
    --------
    >>> [metric_kind(m) for m in ("train/loss", "grad_norm", "tokens_per_s", "lr")]
    ['loss', 'grad_norm', 'throughput', 'other']
    """
    lowered = metric.lower()
    for kind, pattern in METRIC_KINDS:
        if pattern.search(lowered):
            return kind
    return "other"


def _suites() -> dict[str, list[Callable[[], Detector]]]:
    # Imported here: the trend and forecast modules import this one's siblings.
    from scaleguard.monitor._trend import DivergenceDetector, ThroughputDropDetector

    return {
        "loss": [NonFiniteDetector, SpikeDetector, LossRatioDetector, DivergenceDetector],
        "grad_norm": [NonFiniteDetector, SpikeDetector],
        "throughput": [NonFiniteDetector, ThroughputDropDetector],
        "other": [NonFiniteDetector],
    }


def default_detectors(metric: str) -> list[Detector]:
    """Fresh detectors for ``metric``: NaN/Inf always; spikes (6σ/128, Megatron 10×) and
    divergence for losses; spikes for gradient norms; drops for throughput.

    Plateau, change-point (Page-Hinkley, CUSUM), burn-rate and forecast detectors are opt-in:
    they need settings only the user knows (an SLO, a law) or would flag healthy curves.
    """
    return [make() for make in _suites()[metric_kind(metric)]]
