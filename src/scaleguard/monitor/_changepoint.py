"""Change points in a metric's mean: Page-Hinkley and the tabular CUSUM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scaleguard.errors import InputError
from scaleguard.monitor._detector import Detector, check_positive, finite_points
from scaleguard.monitor._events import Event

__all__ = ["CusumDetector", "PageHinkleyDetector"]

# Page-Hinkley defaults of river (river.drift.PageHinkley): judge after 30 values, tolerate
# changes of 0.005, alarm at a cumulative deviation of 50, forgetting factor 1 - 1e-4.
PH_MIN_INSTANCES = 30
PH_DELTA = 0.005
PH_THRESHOLD = 50.0
PH_ALPHA = 1 - 0.0001
# Tabular CUSUM (Page 1954; Montgomery, Introduction to Statistical Quality Control, sec. 9.1):
# reference value k = 0.5σ and decision interval h = 5σ detect a 1σ shift in ~10 samples with
# an in-control average run length of 465 (two-sided; Table 9.3).
CUSUM_K = 0.5
CUSUM_H = 5.0
CUSUM_WARMUP = 50  # scaleguard: values used to estimate the in-control mean and σ
_BLOCK = 4096
_MODES = ("up", "down", "both")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise InputError(f"mode: expected one of {', '.join(_MODES)}, got {mode!r}")


class PageHinkleyDetector(Detector):
    """Page-Hinkley test for a change in the mean (river's formulation and defaults).

    ``threshold`` is in the metric's own units: scale it to the metric (the default 50 suits
    values of order 1-10 with shifts of several units). After an alarm the test restarts.

    Examples
    --------
    >>> rng = np.random.default_rng(42)
    >>> x = np.r_[rng.normal(0.0, 0.1, 1000), rng.normal(5.0, 0.1, 100)]
    >>> [e.step for e in PageHinkleyDetector(mode="up").scan(x)]
    [1009]
    """

    name = "page_hinkley"
    _params = ("min_instances", "delta", "threshold", "alpha", "mode")
    _state = ("_n", "_mean", "_up", "_down", "_min_up", "_max_down")

    def __init__(self, min_instances: int = PH_MIN_INSTANCES, delta: float = PH_DELTA,
                 threshold: float = PH_THRESHOLD, alpha: float = PH_ALPHA,
                 mode: str = "both") -> None:
        check_positive("min_instances", min_instances, integer=True)
        check_positive("threshold", threshold)
        if not 0 < alpha <= 1:
            raise InputError(f"alpha: expected a forgetting factor in (0, 1], got {alpha!r}")
        if delta < 0:
            raise InputError(f"delta: expected a number >= 0, got {delta!r}")
        _check_mode(mode)
        self.min_instances, self.delta, self.threshold = min_instances, delta, threshold
        self.alpha, self.mode = alpha, mode
        self._reset_test()

    def _reset_test(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._up = 0.0
        self._down = 0.0
        self._min_up = math.inf
        self._max_down = -math.inf

    def _event(self, value: float, step: int, statistic: float, direction: str) -> Event:
        return Event(self.name, "change", int(step), float(value), "warning",
                     f"mean shifted {direction} (Page-Hinkley statistic {statistic:.4g} > "
                     f"{self.threshold:g})", action="look for what changed at this step")

    def update(self, value: float, step: int) -> Event | None:
        """An event when the Page-Hinkley statistic crosses the threshold."""
        if not math.isfinite(value):
            return None
        self._n += 1
        self._mean += (value - self._mean) / self._n
        dev = value - self._mean
        self._up = self.alpha * self._up + dev - self.delta
        self._down = self.alpha * self._down + dev + self.delta
        self._min_up = min(self._min_up, self._up)
        self._max_down = max(self._max_down, self._down)
        if self._n <= self.min_instances:
            return None
        rise = self.mode != "down" and self._up - self._min_up > self.threshold
        fall = self.mode != "up" and self._max_down - self._down > self.threshold
        if not (rise or fall):
            return None
        statistic = self._up - self._min_up if rise else self._max_down - self._down
        event = self._event(value, step, statistic, "up" if rise else "down")
        self._reset_test()
        return event

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised between alarms with discounted cumulative sums."""
        array, steps = finite_points(values, steps)
        found: list[Event] = []
        i = 0
        while i < len(array):
            x = array[i:i + _BLOCK]
            t = np.arange(1, len(x) + 1, dtype=np.float64)
            n = self._n + t
            mean = (self._mean * self._n + np.cumsum(x)) / n
            dev = x - mean
            # S_t = alpha*S_{t-1} + d_t  ->  S_t = alpha^t (S_0 + sum_i alpha^-i d_i)
            power = self.alpha ** t
            up = power * (self._up + np.cumsum((dev - self.delta) / power))
            down = power * (self._down + np.cumsum((dev + self.delta) / power))
            min_up = np.minimum.accumulate(np.minimum(up, self._min_up))
            max_down = np.maximum.accumulate(np.maximum(down, self._max_down))
            judged = n > self.min_instances
            rise = judged & (up - min_up > self.threshold) if self.mode != "down" \
                else np.zeros(len(x), bool)
            fall = judged & (max_down - down > self.threshold) if self.mode != "up" \
                else np.zeros(len(x), bool)
            hits = np.flatnonzero(rise | fall)
            if hits.size == 0:
                self._n, self._mean = int(n[-1]), float(mean[-1])
                self._up, self._down = float(up[-1]), float(down[-1])
                self._min_up, self._max_down = float(min_up[-1]), float(max_down[-1])
                i += len(x)
                continue
            j = int(hits[0])
            statistic = (up[j] - min_up[j]) if rise[j] else (max_down[j] - down[j])
            found.append(self._event(x[j], int(steps[i + j]), float(statistic),
                                     "up" if rise[j] else "down"))
            self._reset_test()
            i += j + 1
        return found


class CusumDetector(Detector):
    """Tabular CUSUM for a shift of the mean away from a target, in units of σ.

    ``target`` and ``sigma`` are the in-control mean and standard deviation; when None they are
    estimated from the first ``warmup`` values, and again from the ``warmup`` values after each
    alarm (one alarm per shift). With both given, the sums restart at zero after an alarm.

    Examples
    --------
    >>> x = np.r_[np.tile([0.9, 1.1], 100), np.full(20, 1.2)]  # σ = 0.1, then a 2σ shift
    >>> [e.step for e in CusumDetector(mode="up").scan(x)]
    [203]
    """

    name = "cusum"
    _params = ("k", "h", "target", "sigma", "warmup", "mode")
    _state = ("_warm", "_mu", "_sd", "_hi", "_lo")

    def __init__(self, k: float = CUSUM_K, h: float = CUSUM_H, target: float | None = None,
                 sigma: float | None = None, warmup: int = CUSUM_WARMUP,
                 mode: str = "both") -> None:
        check_positive("h", h)
        check_positive("warmup", warmup, integer=True)
        if k < 0:
            raise InputError(f"k: expected a number >= 0, got {k!r}")
        if sigma is not None:
            check_positive("sigma", sigma)
        _check_mode(mode)
        self.k, self.h, self.target, self.sigma = k, h, target, sigma
        self.warmup, self.mode = warmup, mode
        self._warm: list[float] = []
        self._mu = target
        self._sd = sigma
        self._hi = 0.0
        self._lo = 0.0

    def _calibrate(self) -> None:
        data = np.asarray(self._warm)
        self._mu = float(data.mean()) if self.target is None else self.target
        sd = float(data.std(ddof=1)) if self.sigma is None else self.sigma
        # A noiseless warm-up would make any change infinitely significant: floor σ.
        self._sd = max(sd, 1e-12, 1e-6 * abs(self._mu))
        self._warm = []

    def update(self, value: float, step: int) -> Event | None:
        """An event when either cumulative sum passes ``h`` σ."""
        if not math.isfinite(value):
            return None
        if self._mu is None or self._sd is None:
            self._warm.append(value)
            if len(self._warm) >= self.warmup:
                self._calibrate()
            return None
        z = (value - self._mu) / self._sd
        self._hi = max(0.0, self._hi + z - self.k)
        self._lo = max(0.0, self._lo - z - self.k)
        rise = self.mode != "down" and self._hi > self.h
        fall = self.mode != "up" and self._lo > self.h
        if not (rise or fall):
            return None
        event = self._event(value, step, "up" if rise else "down",
                            self._hi if rise else self._lo)
        self._hi = self._lo = 0.0
        if self.target is None or self.sigma is None:
            self._mu, self._sd = self.target, self.sigma  # learn the new level
        return event

    def _event(self, value: float, step: int, direction: str, stat: float) -> Event:
        return Event(self.name, "change", int(step), float(value), "warning",
                     f"mean shifted {direction} from {self._mu:.4g} "
                     f"(CUSUM {stat:.3g}σ > {self.h:g}σ)",
                     action="look for what changed at this step")

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised (Lindley's recursion as a running minimum) between alarms."""
        array, steps = finite_points(values, steps)
        found: list[Event] = []
        i = 0
        while i < len(array):
            if self._mu is None or self._sd is None:
                need = self.warmup - len(self._warm)
                self._warm += array[i:i + need].tolist()
                i += min(need, len(array) - i)
                if len(self._warm) < self.warmup:
                    break
                self._calibrate()
                continue
            z = (array[i:i + _BLOCK] - self._mu) / self._sd
            # S_t = max(0, S_{t-1} + z_t - k) = D_t - min(0, min_{s<=t} D_s), D = S_0 + cumsum
            d_hi = self._hi + np.cumsum(z - self.k)
            hi = d_hi - np.minimum(np.minimum.accumulate(d_hi), 0.0)
            d_lo = self._lo + np.cumsum(-z - self.k)
            lo = d_lo - np.minimum(np.minimum.accumulate(d_lo), 0.0)
            rise = hi > self.h if self.mode != "down" else np.zeros(len(z), bool)
            fall = lo > self.h if self.mode != "up" else np.zeros(len(z), bool)
            hits = np.flatnonzero(rise | fall)
            if hits.size == 0:
                self._hi, self._lo = float(hi[-1]), float(lo[-1])
                i += len(z)
                continue
            j = int(hits[0])
            direction, stat = ("up", hi[j]) if rise[j] else ("down", lo[j])
            found.append(self._event(float(array[i + j]), int(steps[i + j]), direction,
                                     float(stat)))
            self._hi = self._lo = 0.0
            i += j + 1
            if self.target is None or self.sigma is None:
                # The old level is gone: learn the new one before judging again.
                self._mu, self._sd = self.target, self.sigma
        return found
