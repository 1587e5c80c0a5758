"""Scale dimension analysis: fit, select and extrapolate scaling laws along every dimension.

- Families (:func:`get_law`): ``chinchilla``, ``saturating``, ``power``, ``data_constrained``,
  ``broken``, ``sigmoid``; each with bounds, a starting grid, a batched value and gradient.
- :class:`LawFit`: Huber on log values, summed, L-BFGS from a grid evaluated as one batch;
  ``bootstrap()`` for parameter CIs and ``predict_interval()``; ``form="auto"`` chooses the
  family by rolling-origin held-out error with guards and a one-standard-error lean to simpler
  laws (:func:`select_form`, :func:`rolling_origins`, :func:`validate`).
- Allocation: :func:`optimal_allocation`, :func:`efficient_frontier`, :func:`isoflop_curve`,
  :func:`isoflop_minima` (Approach 2), :func:`best_epochs` (data-constrained).
- :func:`dimension_analysis`: elasticity to each scale column and the best one to grow.

>>> from scaleguard.laws import LawFit, get_law
>>> get_law("chinchilla").formula
'L = E + A/N^alpha + B/D^beta'
"""

from scaleguard.laws._allocation import (
    Allocation,
    EpochAdvice,
    Frontier,
    IsoFlopAnalysis,
    IsoFlopMinimum,
    best_epochs,
    efficient_frontier,
    isoflop_curve,
    isoflop_minima,
    optimal_allocation,
)
from scaleguard.laws._backtest import FormBacktest, rolling_origins
from scaleguard.laws._bootstrap import BootstrapResult, PredictionInterval
from scaleguard.laws._dimensions import DimensionEffect, DimensionReport, dimension_analysis
from scaleguard.laws._families import (
    CHINCHILLA_GRID,
    FORMS,
    TOKENS_PER_PARAM_OPTIMAL,
    AdditiveLaw,
    BrokenLaw,
    DataConstrainedLaw,
    Law,
    PowerLaw,
    SigmoidLaw,
    get_law,
)
from scaleguard.laws._fit import DEFAULT_DELTA, LawFit, LawFitResult
from scaleguard.laws._selection import SelectionResult, select_form
from scaleguard.laws._validation import (
    Split,
    ValidationScores,
    default_split,
    holdout_split,
    largest_group_split,
    parse_holdout,
    score_predictions,
    validate,
)

__all__ = [
    "CHINCHILLA_GRID",
    "DEFAULT_DELTA",
    "FORMS",
    "TOKENS_PER_PARAM_OPTIMAL",
    "AdditiveLaw",
    "Allocation",
    "BootstrapResult",
    "BrokenLaw",
    "DataConstrainedLaw",
    "DimensionEffect",
    "DimensionReport",
    "EpochAdvice",
    "FormBacktest",
    "Frontier",
    "IsoFlopAnalysis",
    "IsoFlopMinimum",
    "Law",
    "LawFit",
    "LawFitResult",
    "PowerLaw",
    "PredictionInterval",
    "SelectionResult",
    "SigmoidLaw",
    "Split",
    "ValidationScores",
    "best_epochs",
    "default_split",
    "dimension_analysis",
    "efficient_frontier",
    "get_law",
    "holdout_split",
    "isoflop_curve",
    "isoflop_minima",
    "largest_group_split",
    "optimal_allocation",
    "parse_holdout",
    "rolling_origins",
    "score_predictions",
    "select_form",
    "validate",
]
