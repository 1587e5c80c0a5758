"""One result object for everything ``scaleguard fit`` computes about a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.laws._allocation import (
    Allocation,
    EpochAdvice,
    allocation_interval,
    optimal_allocation,
)
from scaleguard.laws._data import points_matrix, with_derived_inputs
from scaleguard.laws._extrapolation import decades_beyond, reach_warning
from scaleguard.laws._fit import LawFit, LawFitResult
from scaleguard.laws._forecast import ensemble, error_model, law_interval
from scaleguard.laws._intervals import ErrorModel
from scaleguard.laws._validation import Split, ValidationScores, validate

__all__ = ["FitReport", "build_report"]


@dataclass(frozen=True)
class FitReport:
    """A fit with its predictions, compute-optimal allocations and held-out validation.

    ``chosen_by`` says how the law used for every number here was chosen; ``warnings`` hold
    the fit's own warnings and those about the predictions (e.g. far extrapolation).
    """

    source: str
    fit: LawFitResult
    predictions: tuple[dict[str, Any], ...] = ()
    allocations: tuple[Allocation, ...] = ()
    epochs: tuple[EpochAdvice, ...] = ()
    validation: ValidationScores | None = None
    warnings: tuple[str, ...] = ()
    calibration: ErrorModel | None = None

    @property
    def chosen_by(self) -> str:
        if self.fit.selection is None:
            return f"fixed: the {self.fit.form} law was asked for (form={self.fit.form!r})"
        return self.fit.selection.reason

    def as_dict(self) -> dict[str, Any]:
        out = {"source": self.source, **self.fit.as_dict()}
        out["chosen_by"] = self.chosen_by
        out["warnings"] = list(self.warnings)
        out["calibration"] = None if self.calibration is None else self.calibration.as_dict()
        out["predictions"] = [dict(p) for p in self.predictions]
        out["allocation"] = [a.as_dict() for a in self.allocations]
        out["best_epochs"] = [e.as_dict() for e in self.epochs]
        out["validation"] = None if self.validation is None else self.validation.as_dict()
        return out

    def __repr__(self) -> str:
        extra = []
        if self.predictions:
            extra.append(f"{len(self.predictions)} predictions")
        if self.allocations:
            extra.append(f"{len(self.allocations)} allocations")
        if self.validation is not None:
            extra.append(f"held-out MARE {self.validation.mare:.3g}")
        return f"FitReport({self.source}: {self.fit!r}{'; ' if extra else ''}{', '.join(extra)})"


def build_report(fitter: LawFit, frame: Any, *, source: str,
                 points: Sequence[Mapping[str, float]] = (), budgets: Sequence[float] = (),
                 unique_tokens: float | None = None, split: Split | None = None,
                 level: float = 0.95, costs: Mapping[str, float] | None = None,
                 lower_is_better: bool = True) -> FitReport:
    """Predictions at ``points`` (with bootstrap intervals of the law's value when the fit has
    them, the calibrated ``interval`` of a new run, the ``ensemble`` of an auto fit, and the
    elasticity to each scale column with the best dimension to grow, per unit of ``costs`` when
    given), allocations at ``budgets``, best epochs for data-constrained fits, and the held-out
    score on ``split``.
    """
    from scaleguard.laws._allocation import best_epochs
    from scaleguard.laws._dimensions import dimension_analysis

    predictions: list[dict[str, Any]] = []
    warnings = list(fitter.result_.warnings)
    model = error_model(fitter, frame, level) if points and fitter.law_.log_target else None
    if model is not None and model.warning is not None:
        warnings.append(model.warning)
    for point in points:
        given = with_derived_inputs(fitter.law_, pd.DataFrame({k: [v] for k, v in
                                                               point.items()}))
        row = {str(k): float(v) for k, v in given.iloc[0].items()
               if k != "unique_tokens" or k in point}
        reach = decades_beyond(fitter.law_, fitter.X_,
                               points_matrix(fitter.law_, {k: [v] for k, v in row.items()}))
        where = ",".join(f"{k}={v:.4g}" for k, v in row.items())
        note = reach_warning(float(reach.decades[0]), reach.column[0], reach.largest[0], where)
        if note is not None:
            warnings.append(note)
        if fitter.bootstrap_ is not None:
            interval = fitter.predict_interval({k: [v] for k, v in row.items()}, level)
            predictions.append({**row, "estimate": float(interval.estimate[0]),
                                "lower": float(interval.lower[0]),
                                "upper": float(interval.upper[0]), "level": level})
        else:
            value = fitter.predict({k: [v] for k, v in row.items()})
            predictions.append({**row, "estimate": float(np.asarray(value)[0])})
        dims = dimension_analysis(fitter, row, costs=costs, lower_is_better=lower_is_better)
        predictions[-1]["elasticity"] = {e.column: e.elasticity for e in dims.effects}
        predictions[-1]["best_dimension"] = dims.best
        predictions[-1]["decades_beyond_data"] = float(reach.decades[0])
        if model is not None:
            _, low, high, _ = law_interval(fitter, model, {k: [v] for k, v in row.items()})
            predictions[-1]["interval"] = {"lower": float(low[0]), "upper": float(high[0]),
                                           "level": level}
        if fitter.selection_ is not None:
            mix = ensemble(fitter, frame, {k: [v] for k, v in row.items()}, level)
            predictions[-1]["ensemble"] = mix.row(0)
    allocations = tuple(optimal_allocation(fitter, c, unique_tokens=unique_tokens)
                        for c in budgets)
    if fitter.bootstrap_ is not None:
        allocations = tuple(allocation_interval(fitter, a, level) for a in allocations)
    for a in allocations:
        spent = {"params": [a.params], "tokens": [a.tokens], "unique_tokens": [
            a.unique_tokens if a.unique_tokens is not None else a.tokens]}
        reach = decades_beyond(fitter.law_, fitter.X_, points_matrix(fitter.law_, spent))
        note = reach_warning(float(reach.decades[0]), reach.column[0], reach.largest[0],
                             f"budget {a.budget:.3g} FLOP (N*, D*)")
        if note is not None:
            warnings.append(note)
    epochs: tuple[EpochAdvice, ...] = ()
    if fitter.law_.name == "data_constrained" and unique_tokens is not None:
        epochs = tuple(best_epochs(fitter, c, unique_tokens) for c in budgets)
    validation = validate(fitter, frame, split) if split is not None else None
    return FitReport(source=source, fit=fitter.result_, predictions=tuple(predictions),
                     allocations=allocations, epochs=epochs, validation=validation,
                     warnings=tuple(warnings), calibration=model)
