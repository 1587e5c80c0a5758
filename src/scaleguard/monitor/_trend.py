"""Slow faults: divergence (a sustained rise), plateau (no progress), throughput drops."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from scaleguard.monitor._detector import (
    Detector,
    as_steps,
    check_positive,
    finite_points,
    restart_action,
    run_starts,
)
from scaleguard.monitor._events import Event

__all__ = ["DivergenceDetector", "PlateauDetector", "ThroughputDropDetector"]

# scaleguard: a rise is "sustained" when the least-squares slope over the last 100 values has a
# t-statistic above 5 (one-sided p ~ 3e-7 for white noise, so a clean curve of a million steps
# raises nothing) and the fitted rise over the window is at least 1% of the level (so a
# statistically clear but harmless wiggle is not a divergence).
DIVERGENCE_WINDOW = 100
DIVERGENCE_T = 5.0
DIVERGENCE_MIN_REL_RISE = 0.01
# scaleguard: a plateau is less than 0.5% relative improvement fitted over the last 1000 values.
PLATEAU_WINDOW = 1000
PLATEAU_MAX_REL_GAIN = 0.005
# scaleguard: throughput below 80% of the median of the last 100 healthy values for 5
# consecutive points is a regression (a single slow step, e.g. a checkpoint save, is not); after
# 100 points at the new level it becomes the baseline.
THROUGHPUT_WINDOW = 100
THROUGHPUT_DROP = 0.2
THROUGHPUT_PATIENCE = 5
THROUGHPUT_MIN_POINTS = 20
_BLOCK = 4096  # values per vectorised block (keeps cumulative sums well conditioned)


def _rolling_fit(xs: np.ndarray, ys: np.ndarray, first: int,
                 window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line over the ``window`` values ending at each index ``>= first``.

    Returns (count, slope, t-statistic of the slope, mean of y) per index ``first..len-1``.
    """
    x = xs - xs[0]
    y = ys - ys[0]
    c = [np.concatenate([[0.0], np.cumsum(v)]) for v in (x, y, x * y, x * x, y * y)]
    idx = np.arange(first, len(xs)) + 1  # cumulative-sum positions after each point
    lo = np.maximum(idx - window, 0)
    n = (idx - lo).astype(np.float64)
    sx, sy, sxy, sxx, syy = (ci[idx] - ci[lo] for ci in c)
    with np.errstate(divide="ignore", invalid="ignore"):
        cxx = sxx - sx * sx / n
        cxy = sxy - sx * sy / n
        cyy = syy - sy * sy / n
        slope = cxy / cxx
        resid = np.maximum(cyy - slope * cxy, 0.0) / (n - 2)
        t = slope / np.sqrt(resid / cxx)
    return n, slope, t, sy / n + ys[0]


class _TrendDetector(Detector):
    """Shared machinery: a least-squares line over a sliding window of (step, value)."""

    _state = ("_steps", "_values", "_inside", "_quiet_until")

    def __init__(self, window: int) -> None:
        check_positive("window", window, integer=True)
        self.window = window
        self._steps: deque[int] = deque(maxlen=window)
        self._values: deque[float] = deque(maxlen=window)
        self._inside = False
        # After an event, the same detector stays quiet for one window of steps: a condition
        # that flickers at its threshold is one finding, not many.
        self._quiet_until = -(2**62)
        self._sums: list[float] | None = None

    def _condition(self, n: Any, slope: Any, t: Any, mean: Any,
                   span: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _event(self, value: float, step: int, slope: float, t: float,
               mean: float) -> Event:  # pragma: no cover - abstract
        raise NotImplementedError

    def _after_load(self) -> None:
        self._sums = None  # rebuilt from the window by the next update

    def _rebuild(self) -> list[float]:
        """Sums over the window, relative to its first point: [x0, y0, Σx, Σy, Σxy, Σxx, Σyy,
        updates since this rebuild]."""
        x0 = float(self._steps[0]) if self._steps else 0.0
        y0 = float(self._values[0]) if self._values else 0.0
        xs = np.asarray(self._steps, dtype=np.float64) - x0
        ys = np.asarray(self._values, dtype=np.float64) - y0
        sums = [x0, y0, float(xs.sum()), float(ys.sum()), float((xs * ys).sum()),
                float((xs * xs).sum()), float((ys * ys).sum()), 0.0]
        self._sums = sums
        return sums

    def update(self, value: float, step: int) -> Event | None:
        """An event when the condition starts to hold over the window ending here (O(1)
        amortised: running sums, re-centred and recomputed once per window)."""
        if not math.isfinite(value):
            return None
        sums = self._sums if self._sums is not None else self._rebuild()
        x0, y0 = sums[0], sums[1]
        if len(self._values) == self.window:
            ox, oy = self._steps[0] - x0, self._values[0] - y0
            sums[2] -= ox
            sums[3] -= oy
            sums[4] -= ox * oy
            sums[5] -= ox * ox
            sums[6] -= oy * oy
        self._steps.append(int(step))
        self._values.append(float(value))
        nx, ny = step - x0, value - y0
        sums[2] += nx
        sums[3] += ny
        sums[4] += nx * ny
        sums[5] += nx * nx
        sums[6] += ny * ny
        sums[7] += 1
        n = len(self._values)
        sx, sy, sxy, sxx, syy = sums[2:7]
        if sums[7] >= self.window:
            self._rebuild()
        # Plain floats: numpy scalars and errstate would cost more than the whole update.
        cxx = sxx - sx * sx / n
        cxy = sxy - sx * sy / n
        cyy = syy - sy * sy / n
        slope = t = math.nan
        if n > 2 and cxx > 0:
            slope = cxy / cxx
            resid = max(cyy - slope * cxy, 0.0) / (n - 2)
            if resid > 0:
                t = slope / math.sqrt(resid / cxx)
            elif slope != 0:
                t = math.copysign(math.inf, slope)
        mean = sy / n + y0
        cond = bool(self._condition(float(n), slope, t, mean, float(step - self._steps[0])))
        starts = cond and not self._inside
        self._inside = cond
        if not starts or step < self._quiet_until:
            return None
        self._quiet_until = int(step) + self.window
        return self._event(float(value), int(step), float(slope), float(t), float(mean))

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised with cumulative sums, block by block; same events as ``update``."""
        array, steps = finite_points(values, steps)
        found: list[Event] = []
        for start in range(0, len(array), _BLOCK):
            block, block_steps = array[start:start + _BLOCK], steps[start:start + _BLOCK]
            k = len(self._values)
            xs = np.concatenate([np.asarray(self._steps, dtype=np.float64), block_steps])
            ys = np.concatenate([np.asarray(self._values, dtype=np.float64), block])
            n, slope, t, mean = _rolling_fit(xs, ys, k, self.window)
            lo = np.maximum(np.arange(k, len(xs)) - self.window + 1, 0)
            span = xs[k:] - xs[lo]
            with np.errstate(invalid="ignore"):
                cond = self._condition(n, slope, t, mean, span)
            begins, inside = run_starts(cond, self._inside)
            for j in begins:
                if block_steps[j] < self._quiet_until:
                    continue
                self._quiet_until = int(block_steps[j]) + self.window
                found.append(self._event(float(block[j]), int(block_steps[j]), float(slope[j]),
                                         float(t[j]), float(mean[j])))
            self._inside = inside
            self._steps.extend(block_steps.tolist())
            self._values.extend(block.tolist())
        self._sums = None
        return found


class DivergenceDetector(_TrendDetector):
    """A sustained rise: the fitted slope over the window is significantly positive and large.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> steps = np.arange(600)
    >>> loss = 3 + 2 / np.sqrt(1 + steps) + 0.01 * rng.standard_normal(600)
    >>> loss[400:] += 0.002 * (steps[400:] - 400)  # starts diverging at step 400
    >>> [e.step for e in DivergenceDetector().scan(loss)]
    [430]
    """

    name = "divergence"
    _params = ("window", "t_crit", "min_rel_rise")

    def __init__(self, window: int = DIVERGENCE_WINDOW, t_crit: float = DIVERGENCE_T,
                 min_rel_rise: float = DIVERGENCE_MIN_REL_RISE) -> None:
        super().__init__(window)
        check_positive("t_crit", t_crit)
        check_positive("min_rel_rise", min_rel_rise)
        self.t_crit, self.min_rel_rise = t_crit, min_rel_rise

    def _condition(self, n: Any, slope: Any, t: Any, mean: Any, span: Any) -> Any:
        return ((n >= self.window) & (t > self.t_crit)
                & (slope * span > self.min_rel_rise * abs(mean)))

    def _event(self, value: float, step: int, slope: float, t: float, mean: float) -> Event:
        return Event(self.name, "divergence", step, value, "critical",
                     f"rising {slope:.3g}/step over the last {self.window} values "
                     f"(t = {t:.3g}, level {mean:.4g})", action=restart_action(step)
                     + "; consider a lower learning rate")


class PlateauDetector(_TrendDetector):
    """No progress: the fitted improvement over the window is below ``max_rel_gain`` of the
    level. Informational (off by default: healthy curves flatten too).

    Examples
    --------
    >>> flat = np.r_[np.linspace(5, 3, 1000), np.full(1500, 3.0)]
    >>> [e.step for e in PlateauDetector().scan(flat)]
    [1948]
    """

    name = "plateau"
    _params = ("window", "max_rel_gain")

    def __init__(self, window: int = PLATEAU_WINDOW,
                 max_rel_gain: float = PLATEAU_MAX_REL_GAIN) -> None:
        super().__init__(window)
        check_positive("max_rel_gain", max_rel_gain)
        self.max_rel_gain = max_rel_gain

    def _condition(self, n: Any, slope: Any, t: Any, mean: Any, span: Any) -> Any:
        gain = -slope * span  # NaN (a degenerate window) compares False: no plateau
        return (n >= self.window) & (gain < self.max_rel_gain * abs(mean))

    def _event(self, value: float, step: int, slope: float, t: float, mean: float) -> Event:
        return Event(self.name, "plateau", step, value, "info",
                     f"less than {self.max_rel_gain:.1%} improvement over the last "
                     f"{self.window} values (level {mean:.4g})",
                     action="check the learning-rate schedule, or stop early")


class ThroughputDropDetector(Detector):
    """Throughput (tokens/s, MFU...) below ``1 - drop`` of its recent median for ``patience``
    consecutive points; one event per regression, at the point that confirms it.

    Examples
    --------
    >>> tps = np.r_[np.full(200, 1000.0), np.full(50, 700.0)]
    >>> [e.step for e in ThroughputDropDetector().scan(tps)]
    [204]
    """

    name = "throughput_drop"
    _params = ("window", "drop", "patience", "min_points")
    _state = ("_window", "_low", "_inside")

    def __init__(self, window: int = THROUGHPUT_WINDOW, drop: float = THROUGHPUT_DROP,
                 patience: int = THROUGHPUT_PATIENCE,
                 min_points: int = THROUGHPUT_MIN_POINTS) -> None:
        check_positive("window", window, integer=True)
        check_positive("drop", drop)
        check_positive("patience", patience, integer=True)
        check_positive("min_points", min_points, integer=True)
        self.window, self.drop, self.patience = window, drop, patience
        self.min_points = min(min_points, window)
        self._window: deque[float] = deque(maxlen=window)
        self._low: list[float] = []  # consecutive values below the band
        self._inside = False
        self._sorted: list[float] | None = None

    def _after_load(self) -> None:
        self._sorted = None  # the window in order, rebuilt when needed

    def _baseline(self) -> float:
        # Median of the window from a sorted copy kept in step with it: O(window) memmove
        # instead of a numpy median per point.
        ordered = self._sorted
        if ordered is None:
            ordered = self._sorted = sorted(self._window)
        n = len(ordered)
        mid = n // 2
        return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])

    def _append(self, value: float) -> None:
        ordered = self._sorted
        if ordered is not None:
            if len(self._window) == self.window:
                del ordered[bisect.bisect_left(ordered, self._window[0])]
            bisect.insort(ordered, value)
        self._window.append(value)

    def update(self, value: float, step: int) -> Event | None:
        """An event when the ``patience``-th consecutive low value arrives."""
        if not math.isfinite(value):
            return None
        if len(self._window) < self.min_points:
            self._append(value)
            return None
        baseline = self._baseline()
        if value >= (1.0 - self.drop) * baseline:
            self._low, self._inside = [], False
            self._append(value)
            return None
        self._low.append(value)
        if len(self._low) >= self.window:  # the new level is the baseline now
            self._window.clear()
            self._window.extend(self._low)
            self._sorted = None
            self._low, self._inside = [], False
            return None
        if len(self._low) >= self.patience and not self._inside:
            self._inside = True
            return Event(self.name, "throughput_drop", int(step), float(value), "warning",
                         f"{value:.6g} is {1 - value / baseline:.0%} below the median "
                         f"{baseline:.6g} of the last {len(self._window)} healthy values, for "
                         f"{len(self._low)} points", action="look for a slow or failing node, "
                         "data-loader stalls, or thermal throttling")
        return None

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised between low points; same events as ``update``.

        A value at or above ``1 - drop`` of the window's *maximum* cannot be low, so medians are
        computed only for the few values below that bound.
        """
        array = np.asarray(values, dtype=np.float64)
        steps = as_steps(array, steps)
        found: list[Event] = []
        i, n = 0, len(array)
        while i < n:
            if self._low or len(self._window) < self.min_points:
                event = self.update(float(array[i]), int(steps[i]))
                found += [event] if event is not None else []
                i += 1
                continue
            block = array[i:i + _BLOCK]
            stop = self._first_low(block)
            if stop:
                self._window.extend(block[:stop].tolist())
                self._sorted = None
            i += stop
            if stop < len(block):
                event = self.update(float(array[i]), int(steps[i]))
                found += [event] if event is not None else []
                i += 1
        return found

    def _first_low(self, block: np.ndarray) -> int:
        """Index of the first non-finite or low value of ``block`` (its length if none),
        assuming every value before it enters the window."""
        k = len(self._window)
        history = np.concatenate([np.asarray(self._window, dtype=np.float64), block])
        padded = np.concatenate([np.full(self.window - k, np.nan), history])
        # Row j: the `window` values before block[j] (NaN where the window is not full).
        views = np.lib.stride_tricks.sliding_window_view(padded[:-1], self.window)[-len(block):]
        with np.errstate(invalid="ignore"):
            bound = (1.0 - self.drop) * np.nanmax(views, axis=1)
            candidates = np.flatnonzero(~np.isfinite(block) | (block < bound))
        for j in candidates.tolist():
            if not math.isfinite(block[j]):
                return j
            if block[j] < (1.0 - self.drop) * float(np.nanmedian(views[j])):
                return j
        return len(block)
