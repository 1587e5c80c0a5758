"""``LawFit``: fit a scaling law to a table the way Chinchilla Approach 3 does.

Huber loss on log values, *summed* over runs (not averaged: the replication showed that the
averaged objective stops L-BFGS early), minimised from a grid of starting points, best kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from scaleguard.errors import FitError, InputError
from scaleguard.laws._checkpoints import EARLY_FRACTION, CheckpointInfo, prepare_checkpoints
from scaleguard.laws._data import as_frame, design, inputs_for, points_matrix
from scaleguard.laws._families import FORMS, Law, get_law
from scaleguard.laws._optimize import Objective, fit_from_starts

if TYPE_CHECKING:
    from scaleguard.compute import Executor, Progress
    from scaleguard.laws._bootstrap import BootstrapResult, PredictionInterval
    from scaleguard.laws._selection import Selection, SelectionResult

__all__ = ["LawFit", "LawFitResult", "DEFAULT_DELTA"]

# Huber threshold on log loss of Hoffmann et al. 2022 (Approach 3) and Besiroglu et al. 2024.
DEFAULT_DELTA: Final = 1e-3
# A parameter this close to a box bound (relative to the box width) is "on the bound".
_ON_BOUND: Final = 1e-6
# A fit beyond the starting grid by more than this share of the grid's span is reported: the
# grid may have missed a better basin further out (just past the edge is ordinary).
_GRID_MARGIN: Final = 0.1
# In-sample mean absolute relative error above which the law is said not to follow its own
# data. Scaling-law fits miss their points by about the run-to-run noise: 0.47% on the
# Chinchilla replication's 240 points, 0.2-1% on the backtest's curves; ten times that is a
# law that cannot bend the way the data do (or a scale it cannot represent, e.g. inputs ~1e297).
MISFIT_MARE: Final = 0.05


@dataclass(frozen=True)
class LawFitResult:
    """A fitted law: its form, parameters and how well the fit went.

    ``bootstrap`` holds parameter CIs once :meth:`LawFit.bootstrap` has run; ``selection`` the
    held-out scores of each family when the form was chosen by ``form="auto"``.
    """

    form: str
    formula: str
    inputs: tuple[str, ...]
    target: str
    params: dict[str, float]
    objective: float
    converged: bool
    n_points: int
    n_starts: int
    loss: str
    delta: float
    warnings: tuple[str, ...] = ()
    bootstrap: BootstrapResult | None = None
    selection: SelectionResult | None = None
    checkpoints: CheckpointInfo | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "formula": self.formula,
            "inputs": list(self.inputs),
            "target": self.target,
            "params": dict(self.params),
            "objective": self.objective,
            "converged": self.converged,
            "n_points": self.n_points,
            "n_starts": self.n_starts,
            "loss": self.loss,
            "delta": self.delta,
            "warnings": list(self.warnings),
            "bootstrap": None if self.bootstrap is None else self.bootstrap.as_dict(),
            "selection": None if self.selection is None else self.selection.as_dict(),
            "checkpoints": None if self.checkpoints is None else self.checkpoints.as_dict(),
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        flag = "" if self.converged else ", not converged"
        return (f"LawFitResult({self.form}: {params}; objective={self.objective:.6g}, "
                f"n={self.n_points}{flag})")


@dataclass
class LawFit:
    """Fit a scaling law (scikit-learn style: settings here, learned values end in ``_``).

    Parameters
    ----------
    form : str
        ``chinchilla``, ``saturating``, ``power``, ``data_constrained``, ``broken``, ``sigmoid``,
        or ``auto`` (chosen by rolling-origin held-out error, see :func:`select_form`).
    loss : str
        ``huber`` (default) or ``squared``, on log values (on values for ``sigmoid``).
    delta : float
        Huber threshold (1e-3 as in Chinchilla Approach 3).
    x : str or list of str, optional
        Scale column(s) of 1-D and multi-column laws; ``chinchilla`` reads ``params`` and
        ``tokens``, ``data_constrained`` also ``unique_tokens``.
    y : str
        The metric column.
    breaks : int
        Number of breaks of the ``broken`` law.
    starts : array or mapping, optional
        Starting points (raw coordinates, ``[S, P]``) or a grid ``{raw name: values}``, in place
        of the family's grid (e.g. a coarse grid in tests).
    n_polish : int
        How many distinct best end points are polished at tight tolerances (and kept, best
        first, in ``candidates_``: the bootstrap restarts from them).
    forms : sequence of str, optional
        Candidates for ``form="auto"``.
    max_iter : int
        Iteration limit of the batched L-BFGS for the starts that survive screening.
    run : str
        Column naming the run each row (checkpoint) belongs to. When present, each run weighs
        the same in the fit and checkpoints before ``drop_early`` of a run's final tokens (or
        step) are dropped (:mod:`scaleguard.laws._checkpoints`).
    drop_early : float
        Share of each run's progress whose checkpoints are not fitted (0.1: Choshen et al.
        2024).

    Examples
    --------
    >>> from scaleguard.examples import synthetic_ladder
    >>> fit = LawFit(form="chinchilla").fit(synthetic_ladder(seed=0, noise=0.0))
    >>> {k: float(f"{v:.4g}") for k, v in fit.params_.items()}
    {'E': 1.817, 'A': 482.0, 'B': 2085.0, 'alpha': 0.348, 'beta': 0.366}
    >>> round(float(fit.predict({"params": 70e9, "tokens": 1.4e12})[0]), 3)
    1.973
    """

    form: str = "chinchilla"
    loss: str = "huber"
    delta: float = DEFAULT_DELTA
    x: str | Sequence[str] | None = None
    y: str = "loss"
    breaks: int = 1
    starts: np.ndarray | Mapping[str, Sequence[float]] | None = None
    n_polish: int = 5
    forms: Sequence[str] | None = None
    max_iter: int = 200
    run: str = "run"
    drop_early: float = EARLY_FRACTION

    # Learned attributes (set by fit).
    law_: Law = field(init=False, repr=False)
    params_: dict[str, float] = field(init=False, repr=False)
    theta_: np.ndarray = field(init=False, repr=False)
    candidates_: np.ndarray = field(init=False, repr=False)
    objective_: float = field(init=False, repr=False)
    converged_: bool = field(init=False, repr=False)
    n_points_: int = field(init=False, repr=False)
    warnings_: tuple[str, ...] = field(init=False, repr=False)
    result_: LawFitResult = field(init=False, repr=False)
    X_: np.ndarray = field(init=False, repr=False)
    y_values_: np.ndarray = field(init=False, repr=False)
    bootstrap_: BootstrapResult | None = field(init=False, repr=False, default=None)
    row_weights_: np.ndarray | None = field(init=False, repr=False, default=None)
    seed_noise_: float | None = field(init=False, repr=False, default=None)
    # form="auto" only: every candidate's fit and rolling-origin backtest.
    selection_: Selection | None = field(init=False, repr=False, default=None)

    # ------------------------------------------------------------------ fitting
    def make_law(self, frame: pd.DataFrame | None = None, form: str | None = None) -> Law:
        """The law family this fitter uses for ``frame`` (its columns settle 1-D defaults)."""
        form = form or self.form
        if form not in FORMS:
            raise InputError(f"--form: unknown law {form!r}; expected one of "
                             f"{', '.join(FORMS)} or auto")
        return get_law(form, inputs_for(form, self.x, frame), breaks=self.breaks)

    def fit(self, table: Any) -> LawFit:
        """Fit the law to ``table`` (a DataFrame such as ``read_ladder`` gives); return self."""
        frame = as_frame(table)
        if self.form == "auto":
            from scaleguard.laws._selection import run_selection

            selection = run_selection(frame, self, forms=self.forms)
            self._adopt(selection.fits[selection.result.best], selection)
            return self
        law = self.make_law(frame)
        frame, weights, checkpoints = prepare_checkpoints(frame, law.inputs, self.y,
                                                          run=self.run,
                                                          drop_early=self.drop_early)
        X, y = design(law, frame, self.y)
        target = np.log(y) if law.log_target else y
        objective = Objective(law, X, target, self.loss, self.delta, weights=weights)
        lower, upper = law.bounds(X, y)
        starts = self._starts(law, X, y)
        outcome = fit_from_starts(objective, starts, lower, upper, n_polish=self.n_polish,
                                  max_iter=self.max_iter)
        if not np.all(np.isfinite(outcome.theta)):
            raise FitError(f"{frame.attrs.get('source', 'table')}: the {law.name} objective is "
                           "not finite at any starting point; check the data's scale")
        self.law_, self.X_, self.y_values_ = law, X, y
        self.theta_, self.candidates_ = outcome.theta, outcome.candidates
        self.params_ = law.to_public(outcome.theta)
        self.objective_, self.converged_ = outcome.value, outcome.converged
        self.n_points_ = X.shape[1]
        self.warnings_ = self._warnings(law, outcome.theta, starts, lower, upper,
                                        outcome.converged) + _misfit(law, self.params_, X, y,
                                                                     weights)
        self.bootstrap_, self.selection_ = None, None
        self.row_weights_, self.seed_noise_ = weights, checkpoints.seed_noise
        self.result_ = LawFitResult(
            form=law.name, formula=law.formula, inputs=law.inputs, target=self.y,
            params=dict(self.params_), objective=self.objective_, converged=self.converged_,
            n_points=self.n_points_, n_starts=outcome.n_starts, loss=self.loss,
            delta=self.delta, warnings=self.warnings_,
            checkpoints=checkpoints if checkpoints.run_column is not None or
            checkpoints.seed_noise is not None else None)
        return self

    def _adopt(self, chosen: LawFit, selection: Selection) -> None:
        for name in ("law_", "X_", "y_values_", "theta_", "candidates_", "params_",
                     "objective_", "converged_", "n_points_", "warnings_", "row_weights_",
                     "seed_noise_"):
            setattr(self, name, getattr(chosen, name))
        self.bootstrap_ = None
        self.selection_ = selection
        self.result_ = replace(chosen.result_, selection=selection.result)

    def _starts(self, law: Law, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.starts is None:
            return law.starts(X, y)
        if isinstance(self.starts, Mapping):
            missing = [n for n in law.raw_names if n not in self.starts]
            if missing:
                raise InputError(f"starts: the {law.name} grid needs values for "
                                 f"{', '.join(missing)}")
            grid = itertools.product(*(self.starts[n] for n in law.raw_names))
            return np.array(list(grid), dtype=float)
        starts = np.atleast_2d(np.asarray(self.starts, dtype=float))
        if starts.shape[1] != law.n_params:
            raise InputError(f"starts: expected {law.n_params} columns "
                             f"({', '.join(law.raw_names)}), got {starts.shape[1]}")
        return starts

    @staticmethod
    def _warnings(law: Law, theta: np.ndarray, starts: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, converged: bool) -> tuple[str, ...]:
        notes = []
        width = upper - lower
        margin = _GRID_MARGIN * (starts.max(axis=0) - starts.min(axis=0))
        for i, name in enumerate(law.raw_names):
            if theta[i] - lower[i] <= _ON_BOUND * width[i] or \
                    upper[i] - theta[i] <= _ON_BOUND * width[i]:
                side = "lower" if theta[i] - lower[i] <= _ON_BOUND * width[i] else "upper"
                notes.append(f"{name} = {theta[i]:.6g} lies on its {side} bound: the data do "
                             "not pin it down")
            elif law.fixed_grid and (theta[i] < starts[:, i].min() - margin[i]
                                     or theta[i] > starts[:, i].max() + margin[i]):
                notes.append(f"{name} = {theta[i]:.6g} lies outside the starting grid "
                             f"[{starts[:, i].min():.6g}, {starts[:, i].max():.6g}]; "
                             "consider a wider grid")
        if not converged:
            notes.append("the optimiser stopped at its iteration limit before converging")
        return tuple(notes)

    # ------------------------------------------------------------------ using the fit
    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise FitError("this LawFit is not fitted yet; call fit(table) first")

    def predict(self, points: Any) -> np.ndarray:
        """The metric predicted at ``points`` (a table or ``{column: value(s)}``)."""
        self._check_fitted()
        X = points_matrix(self.law_, points)
        return self.law_.predict(self.params_, X)

    def bootstrap(self, n_boot: int = 1000, seed: int = 0, *,
                  executor: str | Executor | None = None, level: float = 0.95,
                  progress: Progress | None = None, workers: int | None = None
                  ) -> BootstrapResult:
        """Refit on ``n_boot`` resamples of the rows; parameter CIs at ``level``.

        Each resample starts from this fit's best distinct minima (not the whole grid), which
        keeps 1,000 resamples practical. ``executor`` is ``"serial"``, ``"process"`` or an
        :class:`~scaleguard.compute.Executor`.
        """
        from scaleguard.laws._bootstrap import run_bootstrap

        self._check_fitted()
        self.bootstrap_ = run_bootstrap(self, n_boot=n_boot, seed=seed, executor=executor,
                                        level=level, progress=progress, workers=workers)
        self.result_ = replace(self.result_, bootstrap=self.bootstrap_)
        return self.bootstrap_

    def predict_interval(self, points: Any, level: float = 0.95) -> PredictionInterval:
        """Point prediction and bootstrap interval at ``points`` (run :meth:`bootstrap` first)."""
        from scaleguard.laws._bootstrap import prediction_interval

        self._check_fitted()
        if self.bootstrap_ is None:
            raise FitError("predict_interval needs a bootstrap; call bootstrap(n_boot=...) "
                           "first (CLI: --bootstrap N)")
        return prediction_interval(self, points, level)

    def __repr__(self) -> str:
        if hasattr(self, "result_"):
            return f"LawFit(form={self.form!r}) -> {self.result_!r}"
        return f"LawFit(form={self.form!r}, loss={self.loss!r}, delta={self.delta})"


def _misfit(law: Law, params: Mapping[str, float], X: np.ndarray, y: np.ndarray,
            weights: np.ndarray | None) -> tuple[str, ...]:
    """A warning when the fit misses its own points by more than :data:`MISFIT_MARE` on
    average (weighted as the fit weighs the rows); none otherwise."""
    with np.errstate(over="ignore", invalid="ignore"):
        misses = np.abs(law.predict(params, X) / y - 1.0)
    error = float(np.average(misses, weights=weights)) if np.all(np.isfinite(misses)) \
        else float("inf")
    if error <= MISFIT_MARE:
        return ()
    return (f"the {law.name} law misses its own points by {error:.1%} on average (in-sample "
            f"MARE; above {MISFIT_MARE:.0%}): it does not follow these data, so its "
            "extrapolations cannot be trusted; check the data's scale and try another form",)
