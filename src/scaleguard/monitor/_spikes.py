"""Point faults: NaN/Inf, spikes above a rolling mean + k·σ, and Megatron's 10× rule."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from scaleguard.monitor._detector import (
    Detector,
    as_steps,
    check_positive,
    restart_action,
    run_starts,
)
from scaleguard.monitor._events import Event

__all__ = ["LossRatioDetector", "NonFiniteDetector", "SpikeDetector"]

# OLMo-core's stability monitor flags a loss or grad-norm value more than 6 standard deviations
# above the mean of the previous 128 steps.
SPIKE_WINDOW = 128
SPIKE_SIGMA = 6.0
# scaleguard: judge only once 32 values are in the window (a σ from fewer is too noisy), and
# floor σ at 0.1% of |mean| so that a flat, noiseless series does not alarm on rounding.
SPIKE_MIN_POINTS = 32
SPIKE_MIN_REL_SIGMA = 1e-3
# scaleguard: an excursion lasting 16 steps is a new level, not a spike: the window restarts
# from it (a sustained rise is the divergence detector's business).
SPIKE_REBASE_AFTER = 16
# Megatron-LM (--check-for-spiky-loss, RerunStateMachine.is_unexpectedly_large): the largest
# |value| of the first 100 samples sets the scale; a value >= 10x that is "spiky".
MEGATRON_SPIKY_FACTOR = 10.0
MEGATRON_SAMPLES = 100
_SCAN_BLOCK = 4096  # values vectorised at once between flagged points


class NonFiniteDetector(Detector):
    """NaN or ±inf: one critical event at the first of each run of non-finite values.

    Examples
    --------
    >>> NonFiniteDetector().scan([2.0, 1.9, float("nan"), float("nan"), 1.8])
    [Event(critical nonfinite step 2: value is nan)]
    """

    name = "nonfinite"
    _state = ("_inside",)

    def __init__(self) -> None:
        self._inside = False

    def _event(self, value: float, step: int) -> Event:
        return Event(self.name, "nonfinite", int(step), float(value), "critical",
                     f"value is {value}", action=restart_action(int(step)))

    def update(self, value: float, step: int) -> Event | None:
        """An event when a run of non-finite values starts."""
        bad = not math.isfinite(value)
        starts = bad and not self._inside
        self._inside = bad
        return self._event(value, step) if starts else None

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised: the starts of runs of non-finite values."""
        array = np.asarray(values, dtype=np.float64)
        steps = as_steps(array, steps)
        if array.size == 0:
            return []
        bad = ~np.isfinite(array)
        begins, self._inside = run_starts(bad, self._inside)
        return [self._event(array[i], steps[i]) for i in begins]


class SpikeDetector(Detector):
    """A value more than ``sigma`` standard deviations above the mean of the last ``window``.

    Defaults from OLMo-core's stability monitor (6σ over 128 steps). Flagged values stay out of
    the window, so one spike does not hide the next; an excursion gives one event, and after
    ``rebase_after`` steps above the band the window restarts from the new level. Non-finite
    values are left to :class:`NonFiniteDetector`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> loss = 3.0 + 0.01 * rng.standard_normal(300)
    >>> loss[200] = 3.5
    >>> [e.step for e in SpikeDetector().scan(loss)]
    [200]
    """

    name = "spike"
    _params = ("window", "sigma", "min_points", "rebase_after")
    _state = ("_window", "_ref", "_sum", "_sumsq", "_excursion", "_since_exact")

    def __init__(self, window: int = SPIKE_WINDOW, sigma: float = SPIKE_SIGMA,
                 min_points: int = SPIKE_MIN_POINTS,
                 rebase_after: int = SPIKE_REBASE_AFTER) -> None:
        check_positive("window", window, integer=True)
        check_positive("sigma", sigma)
        check_positive("min_points", min_points, integer=True)
        check_positive("rebase_after", rebase_after, integer=True)
        self.window, self.sigma = window, sigma
        self.min_points, self.rebase_after = min(min_points, window), rebase_after
        self._window: deque[float] = deque(maxlen=window)
        self._ref = 0.0  # running sums are of (x - ref): no cancellation at large |x|
        self._sum = 0.0
        self._sumsq = 0.0
        self._excursion: list[float] = []
        self._since_exact = 0

    # -- window bookkeeping -------------------------------------------------------------------
    def _refresh(self) -> None:
        # Exact sums now and then, so rounding in the running sums cannot drift.
        d = np.asarray(self._window, dtype=np.float64) - self._ref
        self._sum, self._sumsq = float(d.sum()), float((d * d).sum())
        self._since_exact = 0

    def _push(self, value: float) -> None:
        if not self._window:
            self._ref = value
        if len(self._window) == self.window:
            old = self._window[0] - self._ref
            self._sum -= old
            self._sumsq -= old * old
        self._window.append(value)
        d = value - self._ref
        self._sum += d
        self._sumsq += d * d
        self._since_exact += 1
        if self._since_exact >= self.window:
            self._refresh()

    def _threshold(self) -> float:
        n = len(self._window)
        mean = self._sum / n
        var = max(self._sumsq / n - mean * mean, 0.0)
        mean += self._ref
        sd = max(math.sqrt(var), SPIKE_MIN_REL_SIGMA * abs(mean))
        return mean + self.sigma * sd

    def _event(self, value: float, step: int, threshold: float) -> Event:
        n = len(self._window)
        return Event(self.name, "spike", int(step), float(value), "warning",
                     f"{value:.6g} is above the {self.sigma:g}σ band of the last {n} steps "
                     f"(threshold {threshold:.6g})", action=restart_action(int(step)))

    # -- detection ---------------------------------------------------------------------------
    def update(self, value: float, step: int) -> Event | None:
        """An event when a value leaves the band (once per excursion)."""
        if not math.isfinite(value):
            return None
        if len(self._window) < self.min_points:
            self._push(value)
            return None
        threshold = self._threshold()
        if value <= threshold:
            self._excursion = []
            self._push(value)
            return None
        self._excursion.append(value)
        if len(self._excursion) >= self.rebase_after:
            recent, self._excursion = self._excursion, []
            self._window.clear()
            for v in recent:
                self._push(v)
            self._refresh()
            return None
        return self._event(value, step, threshold) if len(self._excursion) == 1 else None

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised between flagged points; the same events and state as ``update``."""
        array = np.asarray(values, dtype=np.float64)
        steps = as_steps(array, steps)
        found: list[Event] = []
        i, n = 0, len(array)
        while i < n:
            if self._excursion or len(self._window) < self.min_points:
                event = self.update(float(array[i]), int(steps[i]))
                if event is not None:
                    found.append(event)
                i += 1
                continue
            block = array[i:i + _SCAN_BLOCK]
            flagged = self._first_flag(block)
            clean = block if flagged is None else block[:flagged]
            if len(clean):  # every value of `clean` is finite and inside the band
                self._window.extend(clean.tolist())
                self._ref = self._window[0]
                self._refresh()
            i += len(clean)
            if flagged is not None:
                event = self.update(float(array[i]), int(steps[i]))
                if event is not None:
                    found.append(event)
                i += 1
        return found

    def _first_flag(self, block: np.ndarray) -> int | None:
        """Index of the first value of ``block`` that is non-finite or above the band, if all
        values before it enter the window."""
        # Only values before the first non-finite one can enter the window: stop there.
        nonfinite = np.flatnonzero(~np.isfinite(block))
        if nonfinite.size:
            block = block[:nonfinite[0] + 1]
        history = np.concatenate([np.asarray(self._window, dtype=np.float64), block[:-1]
                                  if nonfinite.size else block]) - self._ref
        k = len(self._window)
        c1 = np.concatenate([[0.0], np.cumsum(history)])
        c2 = np.concatenate([[0.0], np.cumsum(history * history)])
        idx = np.arange(k, k + len(block))
        lo = np.maximum(idx - self.window, 0)
        count = idx - lo
        mean = (c1[idx] - c1[lo]) / count
        var = np.maximum((c2[idx] - c2[lo]) / count - mean * mean, 0.0)
        mean += self._ref
        sd = np.maximum(np.sqrt(var), SPIKE_MIN_REL_SIGMA * np.abs(mean))
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(block) | (block > mean + self.sigma * sd)
        hits = np.flatnonzero(bad)
        return int(hits[0]) if hits.size else None


class LossRatioDetector(Detector):
    """Megatron-LM's spiky-loss rule: ``|value| >= 10 ×`` the largest of the first 100 values.

    Coarse on purpose (it catches blow-ups, not bumps); one event per run of flagged values.

    Examples
    --------
    >>> LossRatioDetector(samples=3).scan([2.0, 1.5, 1.2, 1.1, 25.0, 1.0])
    [Event(critical spike step 4: |25| >= 10 × 2, the largest of the first 3 values)]
    """

    name = "loss_ratio"
    _params = ("factor", "samples")
    _state = ("_seen", "_max", "_inside")

    def __init__(self, factor: float = MEGATRON_SPIKY_FACTOR,
                 samples: int = MEGATRON_SAMPLES) -> None:
        check_positive("factor", factor)
        check_positive("samples", samples, integer=True)
        self.factor, self.samples = factor, samples
        self._seen = 0
        self._max = 0.0
        self._inside = False

    def _event(self, value: float, step: int) -> Event:
        return Event(self.name, "spike", int(step), float(value), "critical",
                     f"|{value:.6g}| >= {self.factor:g} × {self._max:.6g}, the largest of the "
                     f"first {self.samples} values", action=restart_action(int(step)))

    def update(self, value: float, step: int) -> Event | None:
        """An event when a run of values at ``factor`` × the sampled maximum starts."""
        if not math.isfinite(value):
            return None
        if self._seen < self.samples:
            self._seen += 1
            self._max = max(self._max, abs(value))
            return None
        flagged = abs(value) >= self.factor * self._max
        starts = flagged and not self._inside
        self._inside = flagged
        return self._event(value, step) if starts else None

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised: same events and state as ``update``."""
        array = np.asarray(values, dtype=np.float64)
        steps = as_steps(array, steps)
        finite = np.flatnonzero(np.isfinite(array))
        need = self.samples - self._seen
        sample, rest = finite[:max(need, 0)], finite[max(need, 0):]
        if sample.size:
            self._seen += int(sample.size)
            self._max = max(self._max, float(np.abs(array[sample]).max()))
        if rest.size == 0:
            return []
        flagged = np.abs(array[rest]) >= self.factor * self._max
        begins, self._inside = run_starts(flagged, self._inside)
        return [self._event(array[j], steps[j]) for j in rest[begins]]
