"""Compute-optimal allocation: how to split a FLOP budget between parameters and tokens.

``optimal_allocation`` minimises a fitted law's loss on the iso-FLOP line ``C = 6 N D``: in closed
form for the Chinchilla law (Hoffmann et al. 2022, eq. 4), numerically for the data-constrained
law. ``isoflop_minima`` is Approach 2 (a parabola in log N through each budget's runs), and
``best_epochs`` says how many passes over a fixed pool of unique tokens a budget should make.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scaleguard.errors import FitError, InputError
from scaleguard.io import FLOPS_PER_PARAM_TOKEN
from scaleguard.laws._data import as_frame
from scaleguard.laws._families import Law, get_law

__all__ = ["Allocation", "allocation_interval", "Frontier", "IsoFlopMinimum", "IsoFlopAnalysis",
           "EpochAdvice", "optimal_allocation", "efficient_frontier", "isoflop_curve",
           "isoflop_minima", "best_epochs"]

_LOG_N_SPAN: Final = 12.0  # search N* within e^±12 (~1.6e5x) of the balanced split sqrt(C/6)
_MIN_RUNS_PER_BUDGET: Final = 3  # a parabola needs three points


@dataclass(frozen=True)
class Allocation:
    """The compute-optimal split of ``budget`` FLOP and the loss the law predicts for it."""

    budget: float
    params: float
    tokens: float
    loss: float
    form: str
    unique_tokens: float | None = None
    # Percentile intervals of N* and D* over the bootstrap's parameter samples (when it ran).
    params_interval: tuple[float, float] | None = None
    tokens_interval: tuple[float, float] | None = None
    level: float | None = None

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    @property
    def epochs(self) -> float | None:
        return None if self.unique_tokens is None else self.tokens / self.unique_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"budget_flops": self.budget, "params": self.params, "tokens": self.tokens,
                "tokens_per_param": self.tokens_per_param, "loss": self.loss,
                "form": self.form, "unique_tokens": self.unique_tokens, "epochs": self.epochs,
                "params_interval": _pair(self.params_interval),
                "tokens_interval": _pair(self.tokens_interval), "level": self.level}

    def __repr__(self) -> str:
        return (f"Allocation(C={self.budget:.3g} FLOP: N*={self.params:.4g}, "
                f"D*={self.tokens:.4g}, {self.tokens_per_param:.1f} tokens/param, "
                f"loss={self.loss:.4g})")


def _pair(interval: tuple[float, float] | None) -> dict[str, float] | None:
    return None if interval is None else {"low": interval[0], "high": interval[1]}


def allocation_interval(fit: Any, allocation: Allocation, level: float = 0.95) -> Allocation:
    """``allocation`` with percentile intervals of N* and D* over ``fit``'s bootstrap samples.

    Each resample's parameters give their own compute-optimal split of the same budget; the
    spread of those splits is how well the ladder pins N* and D* down.
    """
    boot = getattr(fit, "bootstrap_", None)
    if boot is None:
        raise FitError("intervals on N* and D* need a bootstrap; call bootstrap(n_boot=...) "
                       "first (CLI: --bootstrap N)")
    n_opt, d_opt = [], []
    for sample in boot.samples:
        params = dict(zip(boot.param_names, map(float, sample), strict=True))
        try:
            a = optimal_allocation((fit.law_, params), allocation.budget,
                                   unique_tokens=allocation.unique_tokens)
        except FitError:  # a resample with alpha or beta at 0 has no optimum: it is skipped
            continue
        n_opt.append(a.params)
        d_opt.append(a.tokens)
    if len(n_opt) < 2:
        raise FitError("intervals on N* and D*: fewer than two resamples have an optimum")
    tail = 100.0 * (1.0 - level) / 2.0
    n_lo, n_hi = np.percentile(n_opt, [tail, 100.0 - tail])
    d_lo, d_hi = np.percentile(d_opt, [tail, 100.0 - tail])
    return replace(allocation, params_interval=(float(n_lo), float(n_hi)),
                   tokens_interval=(float(d_lo), float(d_hi)), level=float(level))


def _law_and_params(fit_or_params: Any) -> tuple[Law, dict[str, float]]:
    """Accept a fitted LawFit, a LawFitResult, a (law, parameters) pair, or a parameter dict
    of the chinchilla law."""
    if isinstance(fit_or_params, tuple) and len(fit_or_params) == 2 and \
            isinstance(fit_or_params[0], Law):
        return fit_or_params[0], dict(fit_or_params[1])
    if hasattr(fit_or_params, "law_") and hasattr(fit_or_params, "params_"):
        return fit_or_params.law_, dict(fit_or_params.params_)
    if hasattr(fit_or_params, "form") and hasattr(fit_or_params, "params"):
        return get_law(fit_or_params.form, fit_or_params.inputs), dict(fit_or_params.params)
    if isinstance(fit_or_params, Mapping):
        params = {k: float(v) for k, v in fit_or_params.items()}
        form = "data_constrained" if "R_D" in params else "chinchilla"
        return get_law(form), params
    raise InputError(f"expected a fitted LawFit, a LawFitResult or a parameter dict, got "
                     f"{type(fit_or_params).__name__}")


def _check_budget(budget: float) -> float:
    budget = float(budget)
    if not (np.isfinite(budget) and budget > 0):
        raise InputError(f"budget: expected a positive number of FLOP, got {budget!r}")
    return budget


def optimal_allocation(fit_or_params: Any, budget_flops: float, *,
                       unique_tokens: float | None = None) -> Allocation:
    """N*, D* minimising the fitted loss at ``C = 6 N D`` (for data-constrained laws, given
    ``unique_tokens``).

    Examples
    --------
    >>> p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al.
    >>> a = optimal_allocation(p, 5.76e23)   # Chinchilla's budget
    >>> round(a.params / 1e9, 1), round(a.tokens / 1e12, 2)
    (32.2, 2.98)
    """
    law, params = _law_and_params(fit_or_params)
    budget = _check_budget(budget_flops)
    if law.name == "chinchilla":
        a, b = params["alpha"], params["beta"]
        if a <= 0 or b <= 0:
            raise FitError(f"optimal allocation needs alpha > 0 and beta > 0; the fit has "
                           f"alpha={a:.4g}, beta={b:.4g}")
        g = (a * params["A"] / (b * params["B"])) ** (1.0 / (a + b))
        n_opt = g * (budget / FLOPS_PER_PARAM_TOKEN) ** (b / (a + b))
        d_opt = budget / (FLOPS_PER_PARAM_TOKEN * n_opt)
        loss = float(law.predict(params, np.array([[n_opt], [d_opt]]))[0])
        return Allocation(budget, float(n_opt), float(d_opt), loss, law.name)
    if law.name == "data_constrained":
        if unique_tokens is None:
            raise InputError("optimal allocation with a data_constrained law needs "
                             "--unique-tokens (the pool of unique training tokens)")
        n_opt, loss = _minimise_over_params(law, params, budget, float(unique_tokens))
        return Allocation(budget, n_opt, budget / (FLOPS_PER_PARAM_TOKEN * n_opt), loss,
                          law.name, float(unique_tokens))
    raise FitError(f"optimal allocation needs a law of params and tokens (chinchilla or "
                   f"data_constrained), not {law.name}")


def _minimise_over_params(law: Law, params: dict[str, float], budget: float,
                          unique: float) -> tuple[float, float]:
    centre = 0.5 * np.log(budget / FLOPS_PER_PARAM_TOKEN)

    def loss_at(log_n: float) -> float:
        n = np.exp(log_n)
        d = budget / (FLOPS_PER_PARAM_TOKEN * n)
        return float(law.predict(params, np.array([[n], [d], [min(unique, d)]]))[0])

    grid = np.linspace(centre - _LOG_N_SPAN, centre + _LOG_N_SPAN, 97)
    values = [loss_at(v) for v in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(loss_at, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-9})
    return float(np.exp(res.x)), float(res.fun)


@dataclass(frozen=True)
class Frontier:
    """Compute-optimal N*, D* and loss at a range of budgets: the efficient frontier."""

    budgets: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    form: str

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form, "points": [
            {"budget_flops": float(c), "params": float(n), "tokens": float(d),
             "loss": float(v)}
            for c, n, d, v in zip(self.budgets, self.params, self.tokens, self.loss,
                                  strict=True)]}

    def __repr__(self) -> str:
        return (f"Frontier({self.form}, {len(self.budgets)} budgets "
                f"{self.budgets.min():.3g}..{self.budgets.max():.3g} FLOP)")


def efficient_frontier(fit_or_params: Any, budgets: Sequence[float] | np.ndarray, *,
                       unique_tokens: float | None = None) -> Frontier:
    """:func:`optimal_allocation` at every budget."""
    allocations = [optimal_allocation(fit_or_params, c, unique_tokens=unique_tokens)
                   for c in budgets]
    if not allocations:
        raise InputError("efficient_frontier: expected at least one budget")
    return Frontier(budgets=np.array([a.budget for a in allocations]),
                    params=np.array([a.params for a in allocations]),
                    tokens=np.array([a.tokens for a in allocations]),
                    loss=np.array([a.loss for a in allocations]), form=allocations[0].form)


def isoflop_curve(fit_or_params: Any, budget_flops: float,
                  params: Sequence[float] | np.ndarray) -> np.ndarray:
    """The fitted loss along the iso-FLOP line of ``budget_flops`` at model sizes ``params``."""
    law, values = _law_and_params(fit_or_params)
    budget = _check_budget(budget_flops)
    n = np.asarray(params, dtype=float)
    d = budget / (FLOPS_PER_PARAM_TOKEN * n)
    if law.name == "data_constrained":
        return law.predict(values, np.vstack([n, d, d]))
    if law.name != "chinchilla":
        raise FitError(f"iso-FLOP curves need a law of params and tokens, not {law.name}")
    return law.predict(values, np.vstack([n, d]))


@dataclass(frozen=True)
class IsoFlopMinimum:
    """Approach 2 at one budget: the minimum of a parabola in log N through its runs."""

    budget: float
    params: float
    tokens: float
    loss: float
    n_runs: int
    interior: bool  # the minimum lies inside the sizes tried, not extrapolated past them

    def as_dict(self) -> dict[str, Any]:
        return {"budget_flops": self.budget, "params": self.params, "tokens": self.tokens,
                "loss": self.loss, "n_runs": self.n_runs, "interior": self.interior}


@dataclass(frozen=True)
class IsoFlopAnalysis:
    """Approach 2 over all budgets: per-budget minima and ``N* ∝ C^a``, ``D* ∝ C^b``."""

    minima: tuple[IsoFlopMinimum, ...]
    params_exponent: float  # a
    tokens_exponent: float  # b
    params_coefficient: float
    tokens_coefficient: float

    def allocation(self, budget_flops: float) -> tuple[float, float]:
        """(N*, D*) the power-law fits of the minima give at ``budget_flops``."""
        c = _check_budget(budget_flops)
        return (self.params_coefficient * c**self.params_exponent,
                self.tokens_coefficient * c**self.tokens_exponent)

    def as_dict(self) -> dict[str, Any]:
        return {"minima": [m.as_dict() for m in self.minima],
                "params_exponent": self.params_exponent,
                "tokens_exponent": self.tokens_exponent,
                "params_coefficient": self.params_coefficient,
                "tokens_coefficient": self.tokens_coefficient}

    def __repr__(self) -> str:
        return (f"IsoFlopAnalysis({len(self.minima)} budgets: N* ∝ C^{self.params_exponent:.3f},"
                f" D* ∝ C^{self.tokens_exponent:.3f})")


def isoflop_minima(table: Any, *, budget: str = "flops", y: str = "loss",
                   rel_tol: float = 0.05) -> IsoFlopAnalysis:
    """Approach 2 of Hoffmann et al. 2022 on a ladder of iso-FLOP groups.

    Runs are grouped by their FLOP budget (values within ``rel_tol`` of each other are one
    budget); each group with at least 3 sizes gets a parabola of loss in log N whose vertex is
    that budget's optimum; power laws through the optima give the allocation exponents.

    >>> from scaleguard.examples import synthetic_ladder
    >>> iso = isoflop_minima(synthetic_ladder(seed=0, noise=0.0))
    >>> round(iso.params_exponent, 2), round(iso.tokens_exponent, 2)  # true: 0.513, 0.487
    (0.51, 0.49)
    """
    frame = as_frame(table)
    for column in ("params", budget, y):
        if column not in frame.columns:
            raise InputError(f"iso-FLOP analysis: missing column {column!r}")
    data = frame[["params", budget, y]].apply(pd.to_numeric, errors="coerce").dropna()
    data = data[(data > 0).all(axis=1)].sort_values(budget)
    log_c = np.log(data[budget].to_numpy())
    # Start a new budget group wherever the log budget jumps by more than rel_tol.
    group = np.concatenate([[0], np.cumsum(np.diff(log_c) > np.log1p(rel_tol))])
    minima = []
    for g in np.unique(group):
        rows = data[group == g]
        if len(rows) < _MIN_RUNS_PER_BUDGET:
            continue
        log_n = np.log(rows["params"].to_numpy())
        curv, slope, _ = np.polyfit(log_n, rows[y].to_numpy(), 2)
        if curv <= 0:
            continue  # no minimum: the sizes tried do not bracket the optimum
        vertex = -slope / (2 * curv)
        c = float(np.exp(np.median(np.log(rows[budget].to_numpy()))))
        n_opt = float(np.exp(vertex))
        loss = float(np.polyval(np.polyfit(log_n, rows[y].to_numpy(), 2), vertex))
        minima.append(IsoFlopMinimum(c, n_opt, c / (FLOPS_PER_PARAM_TOKEN * n_opt), loss,
                                     len(rows), bool(log_n.min() <= vertex <= log_n.max())))
    if len(minima) < 2:
        raise FitError("iso-FLOP analysis: need at least 2 budgets with 3 or more model sizes "
                       "whose losses curve upwards around a minimum")
    lc = np.log([m.budget for m in minima])
    a, log_kn = np.polyfit(lc, np.log([m.params for m in minima]), 1)
    b, log_kd = np.polyfit(lc, np.log([m.tokens for m in minima]), 1)
    return IsoFlopAnalysis(tuple(minima), float(a), float(b), float(np.exp(log_kn)),
                           float(np.exp(log_kd)))


@dataclass(frozen=True)
class EpochAdvice:
    """The best number of passes over ``unique_tokens`` for a budget, and what it buys."""

    budget: float
    unique_tokens: float
    epochs: float
    params: float
    tokens: float
    loss: float
    loss_one_epoch: float  # the best loss using each unique token at most once

    def as_dict(self) -> dict[str, Any]:
        return {"budget_flops": self.budget, "unique_tokens": self.unique_tokens,
                "epochs": self.epochs, "params": self.params, "tokens": self.tokens,
                "loss": self.loss, "loss_one_epoch": self.loss_one_epoch}

    def __repr__(self) -> str:
        return (f"EpochAdvice({self.epochs:.2f} epochs of {self.unique_tokens:.3g} tokens: "
                f"N={self.params:.4g}, loss={self.loss:.4g} vs {self.loss_one_epoch:.4g} "
                "at one epoch)")


def best_epochs(fit_or_params: Any, budget_flops: float, unique_tokens: float) -> EpochAdvice:
    """For a data-constrained fit: the epochs (and model size) that minimise loss at a budget.

    >>> p = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35,
    ...      "R_D": 15.4, "R_N": 5.3}
    >>> advice = best_epochs(p, 1e22, 1e11)   # 1e22 FLOP, 100B unique tokens
    >>> advice.epochs > 1, advice.loss < advice.loss_one_epoch
    (True, True)
    """
    law, params = _law_and_params(fit_or_params)
    if law.name != "data_constrained":
        raise FitError(f"best epochs needs a data_constrained fit, not {law.name}")
    budget = _check_budget(budget_flops)
    unique = float(unique_tokens)
    if not (np.isfinite(unique) and unique > 0):
        raise InputError(f"--unique-tokens: expected a positive number, got {unique_tokens!r}")
    n_opt, loss = _minimise_over_params(law, params, budget, unique)
    tokens = budget / (FLOPS_PER_PARAM_TOKEN * n_opt)
    # One epoch at most: D <= U, so N >= C / (6 U); the best such N.
    n_floor = budget / (FLOPS_PER_PARAM_TOKEN * unique)
    log_ns = np.linspace(np.log(n_floor), np.log(n_floor) + _LOG_N_SPAN, 400)
    ns = np.exp(log_ns)
    ds = budget / (FLOPS_PER_PARAM_TOKEN * ns)
    one_epoch = float(law.predict(params, np.vstack([ns, ds, ds])).min())
    return EpochAdvice(budget, unique, tokens / unique, n_opt, tokens, loss,
                       min(one_epoch, loss) if tokens <= unique else one_epoch)
