"""SLO error-budget burn-rate alerts over several windows (Google SRE workbook, ch. 5).

The burn rate is the observed error ratio divided by the budget ``1 - SLO``: at 1× the budget
lasts exactly the SLO period. An alert fires when both a long and a short window burn faster
than a factor; the short window makes it stop soon after the errors stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaleguard.errors import InputError
from scaleguard.monitor._detector import Detector, as_steps, run_starts
from scaleguard.monitor._events import Event, Severity

__all__ = ["BURN_RATE_RULES", "BurnRateDetector", "BurnRule", "detection_time"]

HOUR = 3600.0
MINUTE = 60.0
DAY = 24 * HOUR
SLO_PERIOD_S = 30 * DAY  # the workbook's 30-day SLO window
DEFAULT_SLO = 0.999  # the workbook's running example


@dataclass(frozen=True)
class BurnRule:
    """Alert when the burn rate over both windows (seconds) is at least ``factor``."""

    long_s: float
    short_s: float
    factor: float
    severity: Severity
    action: str

    def budget_spent(self) -> float:
        """Fraction of the period's budget spent in ``long_s`` at ``factor`` (2% for 14.4×/1h)."""
        return self.factor * self.long_s / SLO_PERIOD_S


# Google SRE workbook, "Alerting on SLOs", recommended multiwindow multi-burn-rate alerts:
# page at 14.4x over 1h and 5m (2% of the budget), page at 6x over 6h and 30m (5%), ticket at
# 1x over 3d and 6h (10%).
BURN_RATE_RULES: tuple[BurnRule, ...] = (
    BurnRule(1 * HOUR, 5 * MINUTE, 14.4, "critical", "page the on-call: 2% of the monthly "
             "error budget went in an hour; roll back the latest change"),
    BurnRule(6 * HOUR, 30 * MINUTE, 6.0, "critical", "page the on-call: 5% of the monthly "
             "error budget went in six hours"),
    BurnRule(3 * DAY, 6 * HOUR, 1.0, "warning", "open a ticket: the error budget is being "
             "spent as fast as the SLO allows"),
)


def detection_time(error_ratio: float, rule: BurnRule, slo: float = DEFAULT_SLO) -> float:
    """Seconds of errors at ``error_ratio`` before ``rule`` fires, from a clean history.

    The workbook's formula: ``long window × factor × (1 - SLO) / error ratio`` (the long window
    is the slower one to fill).

    Examples
    --------
    >>> round(detection_time(1.0, BURN_RATE_RULES[0]), 2)  # 100% errors: 0.86 minutes
    51.84
    """
    if not 0 < error_ratio <= 1:
        raise InputError(f"error_ratio: expected a fraction in (0, 1], got {error_ratio!r}")
    return rule.long_s * rule.factor * (1 - slo) / error_ratio


class BurnRateDetector(Detector):
    """Multiwindow, multi-burn-rate SLO alerts on an error-ratio stream.

    ``update(value, step)`` takes the error ratio of one sample (0/1 for a single request, or
    a fraction for an interval; samples weigh equally) and ``step`` = its time in seconds.
    One event per rule and episode; at a given time the first firing rule is reported.

    Examples
    --------
    Three days of clean samples every 10 s, then every request fails: the 1h rule pages after
    52 s (:func:`detection_time`), i.e. at the 6th failed sample.

    >>> t = np.arange(0.0, 4 * DAY, 10.0)
    >>> errors = (t >= 3 * DAY).astype(float)
    >>> [(e.step - 3 * DAY, e.severity) for e in BurnRateDetector().scan(errors, t)]
    [(50.0, 'critical'), (120.0, 'critical'), (250.0, 'warning')]
    """

    name = "burn_rate"
    uses_time = True
    _params = ("slo",)
    _state = ("_times", "_values", "_inside")

    def __init__(self, slo: float = DEFAULT_SLO,
                 rules: Sequence[BurnRule] = BURN_RATE_RULES) -> None:
        if not 0 < slo < 1:
            raise InputError(f"slo: expected an objective in (0, 1), e.g. 0.999, got {slo!r}")
        self.slo = slo
        self.rules = tuple(rules)
        self._horizon = max(max(r.long_s, r.short_s) for r in self.rules)
        self._times: list[float] = []
        self._values: list[float] = []
        self._inside = [False] * len(self.rules)
        # Per window: [index of its oldest sample, sum of its values]; None = rebuild.
        self._heads: dict[float, list[float]] | None = None

    def _after_load(self) -> None:
        self._heads = None  # rebuilt by the next update

    def _rebuild(self) -> dict[float, list[float]]:
        """Head index and running sum of each window over the kept samples."""
        times = np.asarray(self._times)
        csum = np.concatenate([[0.0], np.cumsum(self._values)])
        heads: dict[float, list[float]] = {}
        for w in {x for r in self.rules for x in (r.long_s, r.short_s)}:
            head = int(np.searchsorted(times, times[-1] - w, side="right")) if len(times) else 0
            heads[w] = [head, float(csum[-1] - csum[head])]
        self._heads = heads
        return heads

    def _event(self, r: int, value: float, time: float) -> Event:
        rule = self.rules[r]
        return Event(
            self.name, "slo_burn", int(time), float(value), rule.severity,
            f"error budget burning at >= {rule.factor:g}x over {_span(rule.long_s)} and "
            f"{_span(rule.short_s)} (SLO {self.slo:.4%}; {rule.budget_spent():.0%} of a "
            f"30-day budget per {_span(rule.long_s)})", action=rule.action)

    def update(self, value: float, step: float) -> Event | None:
        """An event when a rule starts firing at this sample (O(1) amortised)."""
        if not np.isfinite(value):
            return None
        if self._times and step < self._times[-1]:
            raise InputError("steps: burn-rate samples must come in time order")
        heads = self._heads if self._heads is not None else self._rebuild()
        self._times.append(float(step))
        self._values.append(float(value))
        n = len(self._times)
        burn = {}
        for w, hs in heads.items():
            head, total = int(hs[0]), hs[1] + value
            while self._times[head] <= step - w:
                total -= self._values[head]
                head += 1
            hs[0], hs[1] = head, total
            burn[w] = total / (n - head) / (1.0 - self.slo)
        found = None
        for r, rule in enumerate(self.rules):
            fire = burn[rule.long_s] >= rule.factor and burn[rule.short_s] >= rule.factor
            if fire and not self._inside[r] and found is None:
                found = self._event(r, value, step)
            self._inside[r] = fire
        oldest = min(int(hs[0]) for hs in heads.values())
        if oldest > 4096:  # drop what no window sees any more, now and then
            del self._times[:oldest], self._values[:oldest]
            self._rebuild()
        return found

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[float] | np.ndarray | None = None) -> list[Event]:
        """Vectorised: window sums from cumulative sums and binary search on time."""
        array = np.asarray(values, dtype=np.float64)
        times = (np.asarray(steps, dtype=np.float64) if steps is not None
                 else as_steps(array, None).astype(np.float64))
        if times.shape != array.shape:
            raise InputError(f"steps: expected {len(array)} times for {len(array)} values")
        keep = np.isfinite(array)
        array, times = array[keep], times[keep]
        if array.size == 0:
            return []
        if np.any(np.diff(times) < 0) or (self._times and times[0] < self._times[-1]):
            raise InputError("steps: burn-rate samples must come in time order")
        k = len(self._times)
        all_t = np.concatenate([np.asarray(self._times), times])
        all_v = np.concatenate([np.asarray(self._values), array])
        csum = np.concatenate([[0.0], np.cumsum(all_v)])
        end = np.arange(k, len(all_t)) + 1
        budget = 1.0 - self.slo

        def burn(window: float) -> np.ndarray:
            start = np.searchsorted(all_t, all_t[k:] - window, side="right")
            return (csum[end] - csum[start]) / (end - start) / budget

        firing = []
        for rule in self.rules:
            long_burn, short_burn = burn(rule.long_s), burn(rule.short_s)
            firing.append((long_burn >= rule.factor) & (short_burn >= rule.factor))
        starts = []
        for r, fire in enumerate(firing):
            begins, self._inside[r] = run_starts(fire, self._inside[r])
            mark = np.zeros(len(fire), dtype=bool)
            mark[begins] = True
            starts.append(mark)
        found: list[Event] = []
        any_start = np.any(starts, axis=0)
        for j in np.flatnonzero(any_start):
            r = next(r for r in range(len(self.rules)) if starts[r][j])
            found.append(self._event(r, float(array[j]), float(times[j])))
        # Keep only what the longest window can still see.
        cut = int(np.searchsorted(all_t, all_t[-1] - self._horizon, side="right"))
        self._times, self._values = all_t[cut:].tolist(), all_v[cut:].tolist()
        self._heads = None  # rebuilt by the next update
        return found


def _span(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
