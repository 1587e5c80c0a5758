"""Forecast deviation: the loss curve leaves the band of a learning-curve law fitted early.

The run's first ``fit_points`` values (after the first ``fit_start``: warm-up steps do not
follow the law) are fitted with :class:`scaleguard.laws.LawFit` (``form="saturating"``,
``L = E + A·x^-alpha`` with ``x = step + 1``) and its bootstrap gives the law's band. From
then on, the mean of the last ``smooth`` values (on the log scale) is compared with the band's
upper edge plus the noise of that mean (``z`` residual σ / √smooth) and a ``rel_tol`` for the
law's own misfit: above it, the run is doing worse than its own early steps predicted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from scaleguard.errors import FitError, InputError
from scaleguard.monitor._detector import Detector, check_positive, finite_points, run_starts
from scaleguard.monitor._events import Event

__all__ = ["ForecastDeviationDetector"]

# scaleguard: skip the first 100 values (learning-rate warm-up bends the curve), fit on the next
# 900; fit on at most 100 of them, evenly spaced, with 20 bootstrap resamples (about a second
# in all; the fit's cost grows fast with points). Alarm when the mean of 20 values is 4 residual
# σ of that mean above the 95% band, plus 1% for the law's misfit far from its data (the
# saturating law fitted on steps 100-1000 of a power-law curve with an offset extrapolates 20x
# within 0.5%).
FORECAST_FIT_START = 100
FORECAST_FIT_POINTS = 1000
FORECAST_MAX_FIT_POINTS = 100
FORECAST_N_BOOT = 20
FORECAST_LEVEL = 0.95
FORECAST_Z = 4.0
FORECAST_SMOOTH = 20
FORECAST_REL_TOL = 0.01


class ForecastDeviationDetector(Detector):
    """The observed curve rises above the prediction band of a law fitted on its early steps.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> steps = np.arange(3000)
    >>> loss = (2 + 8 * (steps + 10) ** -0.3) * (1 + 0.005 * rng.standard_normal(3000))
    >>> loss[2000:] *= 1.03  # from step 2000 the run is 3% worse than its trend
    >>> [e.step for e in ForecastDeviationDetector().scan(loss)]
    [2010]
    """

    name = "forecast"
    _params = ("fit_start", "fit_points", "max_fit_points", "n_boot", "level", "z", "smooth",
               "rel_tol", "seed")
    _state = ("_xs", "_ys", "_law", "_boot", "_sigma", "_recent", "_inside", "_failed",
              "_quiet_until")

    def __init__(self, fit_start: int = FORECAST_FIT_START,
                 fit_points: int = FORECAST_FIT_POINTS,
                 max_fit_points: int = FORECAST_MAX_FIT_POINTS, n_boot: int = FORECAST_N_BOOT,
                 level: float = FORECAST_LEVEL, z: float = FORECAST_Z,
                 smooth: int = FORECAST_SMOOTH, rel_tol: float = FORECAST_REL_TOL,
                 seed: int = 0) -> None:
        check_positive("fit_points", fit_points, integer=True)
        check_positive("max_fit_points", max_fit_points, integer=True)
        check_positive("smooth", smooth, integer=True)
        check_positive("z", z)
        if fit_start < 0 or fit_start + 10 > fit_points:
            raise InputError(f"fit_start: expected 0 <= fit_start <= fit_points - 10, got "
                             f"{fit_start} with fit_points {fit_points}")
        if n_boot != 0 and n_boot < 2:
            raise InputError(f"n_boot: expected 0 (no bootstrap) or >= 2, got {n_boot}")
        if not 0 < level < 1:
            raise InputError(f"level: expected a number between 0 and 1, got {level}")
        if rel_tol < 0:
            raise InputError(f"rel_tol: expected a number >= 0, got {rel_tol}")
        self.fit_start, self.fit_points, self.max_fit_points = fit_start, fit_points, \
            max_fit_points
        self.n_boot, self.level, self.z, self.smooth = n_boot, level, z, smooth
        self.rel_tol, self.seed = rel_tol, seed
        self._xs: list[float] = []
        self._ys: list[float] = []
        self._law: dict[str, float] | None = None  # E, A, alpha
        self._boot: list[list[float]] = []  # bootstrap [E, A, alpha] rows
        self._sigma = 0.0  # residual σ on the log scale
        self._recent: deque[float] = deque(maxlen=smooth)  # log(value / upper band)
        self._inside = False
        self._failed = False
        # After an event, stay quiet for fit_points steps: a mean that hovers at the threshold
        # is one finding, not many.
        self._quiet_until = -(2**62)

    # -- the fit -----------------------------------------------------------------------------
    def _fit(self) -> Event | None:
        import pandas as pd

        from scaleguard.laws import LawFit

        xs = np.asarray(self._xs[self.fit_start:])
        ys = np.asarray(self._ys[self.fit_start:])
        self._xs, self._ys = [], []
        pick = np.unique(np.linspace(0, len(xs) - 1, min(self.max_fit_points, len(xs)))
                         .astype(int))
        frame = pd.DataFrame({"x": xs[pick], "y": ys[pick]})
        try:
            if (ys <= 0).any():
                raise FitError("the saturating law is fitted on log values: they must be > 0")
            fit = LawFit(form="saturating", x="x", y="y").fit(frame)
            law = {k: float(fit.params_[k]) for k in ("E", "A", "alpha")}
            if self.n_boot:
                boot = fit.bootstrap(n_boot=self.n_boot, seed=self.seed, level=self.level)
                order = [boot.param_names.index(k) for k in ("E", "A", "alpha")]
                self._boot = boot.samples[:, order].tolist()
        except FitError as exc:
            self._failed = True
            return Event(self.name, "forecast_unavailable", int(xs[-1] - 1), float(ys[-1]),
                         "info", f"no forecast: {exc}")
        self._law = law
        resid = np.log(ys) - np.log(self._predict(xs, [law["E"], law["A"], law["alpha"]]))
        self._sigma = float(np.std(resid, ddof=3))
        return None

    @staticmethod
    def _predict(x: np.ndarray, p: Sequence[float]) -> np.ndarray:
        return np.asarray(p[0] + p[1] * np.power(x, -p[2]))

    def _upper(self, x: np.ndarray) -> np.ndarray:
        assert self._law is not None
        law = self._law
        central = self._predict(x, [law["E"], law["A"], law["alpha"]])
        if not self._boot:
            return central
        samples = np.array([self._predict(x, p) for p in self._boot])  # [B, m]
        upper = np.percentile(samples, 100 - 50 * (1 - self.level), axis=0)
        return np.maximum(upper, central)

    def _threshold(self) -> float:
        return self.z * self._sigma / math.sqrt(self.smooth) + math.log1p(self.rel_tol)

    def _event(self, value: float, step: int, excess: float) -> Event:
        assert self._law is not None
        law = self._law
        return Event(self.name, "forecast_deviation", int(step), float(value), "warning",
                     f"the mean of the last {self.smooth} values is {math.expm1(excess):.1%} "
                     f"above the {self.level:.0%} band of the law fitted on the early steps "
                     f"(E={law['E']:.4g}, A={law['A']:.4g}, alpha={law['alpha']:.3g})",
                     action="compare with the ladder's forecast; check the data mix, the "
                     "learning-rate schedule and recent changes")

    # -- detection ---------------------------------------------------------------------------
    def update(self, value: float, step: int) -> Event | None:
        """Collect, then fit once, then an event when the smoothed curve leaves the band."""
        found = self.scan([value], [step])
        return found[0] if found else None

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Vectorised once the law is fitted: rolling means from cumulative sums."""
        array, steps = finite_points(values, steps)
        found: list[Event] = []
        if self._failed:
            return found
        if self._law is None:
            need = self.fit_points - len(self._ys)
            self._xs += (steps[:need] + 1.0).tolist()
            self._ys += array[:need].tolist()
            array, steps = array[need:], steps[need:]
            if len(self._ys) < self.fit_points:
                return found
            failure = self._fit()
            if failure is not None:
                return [failure]
        if array.size == 0:
            return found
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.log(array) - np.log(self._upper(steps + 1.0))
        history = np.concatenate([np.asarray(self._recent, dtype=np.float64), excess])
        k = len(self._recent)
        c = np.concatenate([[0.0], np.cumsum(history)])
        idx = np.arange(k, len(history)) + 1
        lo = np.maximum(idx - self.smooth, 0)
        mean = (c[idx] - c[lo]) / (idx - lo)
        full = (idx - lo) >= self.smooth
        with np.errstate(invalid="ignore"):
            cond = full & (mean > self._threshold())
        begins, inside = run_starts(cond, self._inside)
        for j in begins:
            if steps[j] < self._quiet_until:
                continue
            self._quiet_until = int(steps[j]) + self.fit_points
            found.append(self._event(float(array[j]), int(steps[j]), float(mean[j])))
        self._inside = inside
        self._recent.extend(excess[-self.smooth:].tolist())
        return found
