"""Forecasts at target points: the law's prediction interval and the ensemble of laws.

The interval of one law comes from its calibrated :class:`~._intervals.ErrorModel`; for the
law an ``auto`` fit chose, it also spans the other eligible laws' disagreement with it (their
weighted mean squared log difference), since when the pick is uncertain the data could have
chosen another law just as well. The ensemble averages the eligible laws of a
``form="auto"`` fit in log space with the selection's weights (inverse backtest error); its
variance is the weighted mean of each law's own variance plus the spread of the laws around
the average, so disagreement between laws widens it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from scaleguard.errors import FitError
from scaleguard.laws._backtest import FormBacktest, backtest_form, rolling_origins
from scaleguard.laws._data import as_frame, points_matrix, scale_columns
from scaleguard.laws._extrapolation import decades_beyond
from scaleguard.laws._intervals import ErrorModel, fit_error_model, interval_ends, robust_sd
from scaleguard.laws._validation import origin_column

if TYPE_CHECKING:
    from scaleguard.laws._fit import LawFit

__all__ = ["EnsemblePrediction", "law_backtest", "error_model", "law_interval", "ensemble"]


def law_backtest(fit: LawFit, frame: pd.DataFrame) -> FormBacktest:
    """The rolling-origin backtest of ``fit``'s law (reused from ``auto`` when it ran one)."""
    if fit.selection_ is not None and fit.law_.name in fit.selection_.backtests:
        return fit.selection_.backtests[fit.law_.name]
    fixed = replace(fit, form=fit.law_.name)
    x = () if fit.x is None else scale_columns(fit.law_)
    origins = rolling_origins(frame, origin_column(frame, x, fit.run),
                              min_train_rows=fit.law_.n_params + 1)
    return backtest_form(fixed, frame, origins)


def _noise(fit: LawFit) -> tuple[float, str]:
    """Run-to-run noise on the log scale: the seeds' spread when known, else the fit's."""
    fitted = fit.law_.value(fit.theta_[None, :], fit.X_)[0]
    spread = robust_sd(np.log(fit.y_values_) - fitted, fit.law_.n_params)
    seed = getattr(fit, "seed_noise_", None)
    if seed is not None and seed > spread:
        return float(seed), "seed-to-seed spread"
    return spread, "fit residuals"


def error_model(fit: LawFit, frame: Any, level: float = 0.9,
                backtest: FormBacktest | None = None) -> ErrorModel:
    """The calibrated error model of ``fit``'s law on ``frame`` (the table it was fitted on)."""
    if not fit.law_.log_target:
        raise FitError(f"prediction intervals need a law fitted on log values, not "
                       f"{fit.law_.name}")
    back = backtest if backtest is not None else law_backtest(fit, as_frame(frame))
    noise, source = _noise(fit)
    return fit_error_model(noise, back.residuals, back.distances, back.origin_of, level=level,
                           noise_source=source)


def law_interval(fit: LawFit, model: ErrorModel, points: Any
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(estimate, lower, upper, decades beyond the data) of ``fit``'s law at ``points``."""
    frame = as_frame(points, "points")
    X = points_matrix(fit.law_, frame)
    estimate = fit.law_.predict(fit.params_, X)
    decades = decades_beyond(fit.law_, fit.X_, X).decades
    lower, upper = model.bounds(estimate, decades, spread=_pick_spread(fit, frame, estimate))
    return estimate, lower, upper, decades


def _pick_spread(fit: LawFit, points: pd.DataFrame, estimate: np.ndarray) -> np.ndarray:
    """Log-scale sd of the other eligible laws of an ``auto`` fit around its pick ``[m]``
    (the selection's weights; 0 for a fixed form)."""
    if fit.selection_ is None:
        return np.zeros(estimate.shape)
    weights = fit.selection_.result.weights
    var = np.zeros(estimate.shape)
    for form, w in weights.items():
        member = fit.selection_.fits[form]
        other = member.law_.predict(member.params_, points_matrix(member.law_, points))
        var += w * np.log(other / estimate) ** 2
    return np.sqrt(var)


@dataclass(frozen=True)
class EnsemblePrediction:
    """The weighted average of the eligible laws at each point, with its interval."""

    estimate: np.ndarray  # [m]
    lower: np.ndarray
    upper: np.ndarray
    level: float
    weights: dict[str, float]
    members: dict[str, np.ndarray]  # form -> [m] its own prediction

    def row(self, j: int) -> dict[str, Any]:
        return {"estimate": float(self.estimate[j]), "lower": float(self.lower[j]),
                "upper": float(self.upper[j]), "level": self.level,
                "weights": dict(self.weights),
                "members": {k: float(v[j]) for k, v in self.members.items()}}


def ensemble(fit: LawFit, frame: Any, points: Any, level: float = 0.9) -> EnsemblePrediction:
    """The ensemble of an ``auto`` fit's eligible laws at ``points``."""
    if fit.selection_ is None:
        raise FitError("an ensemble needs form='auto' (it averages the candidate laws)")
    weights = fit.selection_.result.weights
    means, variances, members = [], [], {}
    for form in weights:
        member = fit.selection_.fits[form]
        model = error_model(member, frame, level, fit.selection_.backtests[form])
        estimate, _, _, decades = law_interval(member, model, points)
        members[form] = estimate
        means.append(np.log(estimate))
        variances.append(model.sd(decades) ** 2)
    share = np.array(list(weights.values()))[:, None]
    mu = np.sum(share * np.array(means), axis=0)
    var = np.sum(share * (np.array(variances) + (np.array(means) - mu) ** 2), axis=0)
    lower, upper = interval_ends(mu, float(norm.ppf(0.5 + level / 2.0)) * np.sqrt(var))
    return EnsemblePrediction(estimate=np.exp(mu), lower=lower, upper=upper,
                              level=float(level), weights=dict(weights), members=members)
