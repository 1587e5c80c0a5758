"""Rolling-origin backtest: fit below each of several of the largest scales, predict above.

One held-out split of ten points scores a law on two of them: far too noisy to choose a law by.
Rolling the origin back over several of the largest scales (as forecasters backtest a time
series) gives one score per origin for each law, so a choice can ask whether a law wins
*consistently*, and the held-out residuals at known distances calibrate prediction intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from scaleguard.errors import FitError, InputError
from scaleguard.laws._extrapolation import decades_beyond
from scaleguard.laws._validation import MIN_GROUPS, Split, score_predictions

if TYPE_CHECKING:
    from scaleguard.laws._fit import LawFit

__all__ = ["MAX_ORIGINS", "ORIGIN_STEP", "MIN_TRAIN_SHARE", "FormBacktest", "rolling_origins",
           "backtest_form"]

# Up to four origins, each holding out another tenth of the distinct scales (at least one
# more): on 11 points the origins fit on 10, 9, 8 and 7; on 240 points on 90% ... 60%.
MAX_ORIGINS: Final = 4
ORIGIN_STEP: Final = 0.1
# The earliest origin still fits on at least half of the distinct scales (and three of them):
# a law fitted on the smallest few runs says little about the full fit.
MIN_TRAIN_SHARE: Final = 0.5
_MIN_TRAIN_SCALES: Final = 3
_ERROR_FLOOR: Final = 1e-12  # a perfect origin (error 0) must not give log(0)


def _order_key(frame: pd.DataFrame, scale: str, grouped: bool) -> pd.Series:
    """The key origins roll over: a ladder's budget groups by size, else the scale itself."""
    values = pd.to_numeric(frame[scale], errors="coerce")
    if grouped:
        groups = frame["group"].astype(str)
        return groups.map(values.groupby(groups).median()).astype(float)
    return values.astype(float)


def rolling_origins(frame: pd.DataFrame, scale: str, *, min_train_rows: int = 2
                    ) -> tuple[Split, ...]:
    """Splits that fit on everything up to an origin and hold out everything above it.

    The latest origin comes first. Origins whose training part would keep fewer than
    ``min_train_rows`` rows, fewer than :data:`MIN_TRAIN_SHARE` of the distinct scales, or
    fewer than three of them, are not made; the result may be empty.

    >>> x = pd.DataFrame({"x": [1.0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]})
    >>> [s.description for s in rolling_origins(x, "x")]
    ['x > 512', 'x > 256', 'x > 128', 'x > 64']
    """
    if scale not in frame.columns:
        raise InputError(f"rolling origins: no column {scale!r} to order runs by")
    grouped = "group" in frame.columns and frame["group"].astype(str).nunique() >= MIN_GROUPS
    key = _order_key(frame, scale, grouped).to_numpy()
    distinct = np.unique(key[np.isfinite(key)])
    m = distinct.size
    splits = []
    for k in range(1, MAX_ORIGINS + 1):
        held = max(k, int(round(ORIGIN_STEP * k * m)))
        kept = m - held
        if kept < max(_MIN_TRAIN_SCALES, math.ceil(MIN_TRAIN_SHARE * m)):
            break
        origin = distinct[kept - 1]
        train = key <= origin
        if int(train.sum()) < min_train_rows:
            break
        description = (f"group median {scale} > {origin:g}" if grouped
                       else f"{scale} > {origin:g}")
        splits.append(Split("rolling_origin", description, frame[train], frame[~train]))
    return tuple(splits)


@dataclass(frozen=True)
class FormBacktest:
    """One law's held-out errors at each origin, and its held-out log residuals.

    ``residuals`` are ``log(actual / predicted)`` of every held-out row of every origin, and
    ``distances`` how many decades beyond that origin's training data each row lay: together
    they say how fast the law's extrapolation error grows (see ``_intervals``).
    """

    form: str
    n_params: int
    origin_mare: tuple[float, ...]  # [K], inf where the law could not be fitted at an origin
    origin_log_rmse: tuple[float, ...]
    residuals: np.ndarray
    distances: np.ndarray
    origin_of: np.ndarray  # [r] which origin each residual came from
    failures: tuple[str, ...] = ()

    def errors(self, criterion: str) -> np.ndarray:
        """Per-origin errors ``[K]`` by ``criterion`` (``mare`` or ``log_rmse``)."""
        return np.array(self.origin_mare if criterion == "mare" else self.origin_log_rmse)

    def mean(self, criterion: str) -> float:
        values = self.errors(criterion)
        return float(np.mean(values)) if values.size else math.inf

    def log_errors(self, criterion: str) -> np.ndarray:
        """Per-origin log errors: origins far from the data err by far more than near ones,
        and on the log scale each origin counts by its *ratio* between laws, not its size."""
        return np.log(np.maximum(self.errors(criterion), _ERROR_FLOOR))

    def geometric_mean(self, criterion: str) -> float:
        logs = self.log_errors(criterion)
        return float(np.exp(np.mean(logs))) if logs.size else math.inf

    @property
    def mare(self) -> float:
        return self.mean("mare")

    @property
    def log_rmse(self) -> float:
        return self.mean("log_rmse")

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form, "n_params": self.n_params, "mare": _finite(self.mare),
                "log_rmse": _finite(self.log_rmse),
                "geometric_mean_mare": _finite(self.geometric_mean("mare")),
                "origin_mare": [_finite(v) for v in self.origin_mare],
                "origin_log_rmse": [_finite(v) for v in self.origin_log_rmse],
                "failures": list(self.failures)}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # JSON has no inf


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def backtest_form(fitter: LawFit, frame: pd.DataFrame, origins: tuple[Split, ...]
                  ) -> FormBacktest:
    """Fit ``fitter`` (a fixed form) at each origin and score it on the rows above."""
    mare, log_rmse, failures = [], [], []
    residuals, distances, origin_of = [], [], []
    n_params = fitter.make_law(frame).n_params
    # An origin's fit only predicts: polishing its best end point alone is enough (the runners-
    # up that the full fit polishes serve its bootstrap), and it makes a power fit ~3x cheaper.
    at_origin = replace(fitter, n_polish=1)
    for i, split in enumerate(origins):
        try:
            fitted = replace(at_origin).fit(split.train)
            predicted = fitted.predict(split.test)
        except (FitError, InputError) as exc:
            mare.append(math.inf)
            log_rmse.append(math.inf)
            failures.append(f"{split.description}: {exc}")
            continue
        actual = pd.to_numeric(split.test[fitter.y], errors="coerce").to_numpy(dtype=float)
        scores = score_predictions(predicted, actual)
        mare.append(scores[0])
        log_rmse.append(scores[1])
        if np.all(predicted > 0):
            X_test = np.vstack([pd.to_numeric(split.test[c]).to_numpy(dtype=float)
                                for c in fitted.law_.inputs])
            residuals.append(np.log(actual / predicted))
            distances.append(decades_beyond(fitted.law_, fitted.X_, X_test).decades)
            origin_of.append(np.full(actual.size, i))
    return FormBacktest(form=fitter.form, n_params=n_params, origin_mare=tuple(mare),
                        origin_log_rmse=tuple(log_rmse), residuals=_cat(residuals),
                        distances=_cat(distances), origin_of=_cat(origin_of).astype(int),
                        failures=tuple(failures))
