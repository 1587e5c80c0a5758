"""Dimension analysis: which scale dimension pays most, per unit of what it costs.

For a fitted law over several scale columns (params and tokens; users, regions and GPUs...), the
elasticity of the metric to each column at the current point is ``d log y / d log x_j``: the
percentage change of the metric per percent more of that dimension. Growing a dimension by a
factor costs ``cost_j * x_j * (factor - 1)`` with ``cost_j`` the user's cost per unit (dollars per
GPU, FLOP per parameter...). The best dimension is the one with the largest predicted
improvement per unit of cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from scaleguard.errors import FitError, InputError

__all__ = ["DimensionEffect", "DimensionReport", "dimension_analysis"]

_LOG_STEP: Final = 1e-4  # central difference step in log x (exact to ~1e-8 for smooth laws)
DEFAULT_FACTOR: Final = 2.0  # compare dimensions by doubling each


@dataclass(frozen=True)
class DimensionEffect:
    """What growing one dimension by ``factor`` does at the current point."""

    column: str
    value: float  # current value of the column
    elasticity: float  # d log y / d log x
    predicted: float  # metric after growing this column by the factor
    improvement: float  # current metric - predicted (positive: lower is better and it fell)
    cost: float | None  # cost of the growth, when a cost per unit was given
    improvement_per_cost: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "value": self.value, "elasticity": self.elasticity,
                "predicted": self.predicted, "improvement": self.improvement,
                "cost": self.cost, "improvement_per_cost": self.improvement_per_cost}


@dataclass(frozen=True)
class DimensionReport:
    """Elasticities and growth effects of every scale column at ``point``."""

    point: dict[str, float]
    current: float
    factor: float
    lower_is_better: bool
    effects: tuple[DimensionEffect, ...]
    best: str  # the column with the largest improvement per cost (or per doubling)

    def as_dict(self) -> dict[str, Any]:
        return {"point": dict(self.point), "current": self.current, "factor": self.factor,
                "lower_is_better": self.lower_is_better,
                "effects": [e.as_dict() for e in self.effects], "best": self.best}

    def __repr__(self) -> str:
        parts = ", ".join(f"{e.column}: {e.elasticity:+.3g}" for e in self.effects)
        return f"DimensionReport(elasticities {parts}; best = {self.best})"


def dimension_analysis(fit: Any, point: Mapping[str, float], *,
                       costs: Mapping[str, float] | None = None,
                       factor: float = DEFAULT_FACTOR,
                       lower_is_better: bool = True) -> DimensionReport:
    """Elasticity of the fitted metric to each scale column at ``point``, and the best buy.

    Parameters
    ----------
    fit : LawFit
        A fitted law over one or more scale columns.
    point : mapping
        The current value of every scale column.
    costs : mapping, optional
        Cost per unit of each column (any currency, the same for all). Without it, dimensions
        are compared per growth ``factor`` (e.g. per doubling).
    factor : float
        How much each dimension grows in the comparison.
    lower_is_better : bool
        True for loss or latency; False for accuracy or throughput.

    Examples
    --------
    >>> from scaleguard.laws import LawFit
    >>> from scaleguard.examples import synthetic_ladder
    >>> coarse = {"e": [0.0, 1.0], "a": [5.0, 10.0], "b": [5.0, 10.0], "alpha": [0.5],
    ...           "beta": [0.5]}
    >>> fit = LawFit(form="chinchilla", starts=coarse).fit(synthetic_ladder(noise=0.0))
    >>> # Cost in FLOP: one more parameter costs 6 D FLOP, one more token 6 N FLOP.
    >>> report = dimension_analysis(fit, {"params": 1e9, "tokens": 2e9},
    ...                             costs={"params": 6 * 2e9, "tokens": 6 * 1e9})
    >>> report.best     # a 1B model on 2B tokens is starved of data
    'tokens'
    """
    if not hasattr(fit, "law_"):
        raise FitError("dimension analysis needs a fitted LawFit; call fit(table) first")
    if not (np.isfinite(factor) and factor > 0 and factor != 1):
        raise InputError(f"--factor: expected a positive number other than 1, got {factor}")
    law = fit.law_
    columns = [c for c in law.inputs if c != "unique_tokens"]
    missing = [c for c in law.inputs if c not in point and c != "unique_tokens"]
    if missing:
        raise InputError(f"dimension analysis: the point lacks {', '.join(missing)}; "
                         f"give a value for each of {', '.join(columns)}")
    values = {c: float(point[c]) for c in columns}
    for c, v in values.items():
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"dimension analysis: {c} = {v!r}, expected a positive number")
    if costs is not None:
        unknown = [c for c in costs if c not in columns]
        if unknown:
            raise InputError(f"--cost: unknown column(s) {', '.join(unknown)}; the law's "
                             f"scale columns are {', '.join(columns)}")

    def at(**changes: float) -> float:
        row = {**values, **changes}
        if "unique_tokens" in law.inputs:
            row["unique_tokens"] = float(point.get("unique_tokens", row["tokens"]))
        return float(fit.predict({k: [v] for k, v in row.items()})[0])

    current = at()
    effects = []
    for c in columns:
        up, down = at(**{c: values[c] * np.exp(_LOG_STEP)}), at(**{c: values[c] * np.exp(
            -_LOG_STEP)})
        if law.log_target:
            elasticity = (np.log(up) - np.log(down)) / (2 * _LOG_STEP)
        else:
            elasticity = (up - down) / (2 * _LOG_STEP) / current
        grown = at(**{c: values[c] * factor})
        improvement = (current - grown) if lower_is_better else (grown - current)
        cost = None
        per_cost = None
        if costs is not None and c in costs:
            cost = float(costs[c]) * values[c] * abs(factor - 1.0)
            per_cost = improvement / cost if cost > 0 else None
        effects.append(DimensionEffect(c, values[c], float(elasticity), grown,
                                       float(improvement), cost, per_cost))
    if costs is not None and all(e.improvement_per_cost is not None for e in effects):
        best = max(effects, key=lambda e: e.improvement_per_cost or -np.inf).column
    else:
        best = max(effects, key=lambda e: e.improvement).column
    return DimensionReport(values, current, float(factor), lower_is_better, tuple(effects),
                           best)
