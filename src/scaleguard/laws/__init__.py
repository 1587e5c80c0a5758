"""Scale dimension analysis: fit, select and extrapolate scaling laws along every dimension.

>>> from scaleguard.laws import LawFit, get_law
>>> get_law("chinchilla").formula
'L = E + A/N^alpha + B/D^beta'
"""

from scaleguard.laws._bootstrap import BootstrapResult, PredictionInterval
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

__all__ = [
    "CHINCHILLA_GRID",
    "DEFAULT_DELTA",
    "FORMS",
    "TOKENS_PER_PARAM_OPTIMAL",
    "AdditiveLaw",
    "BootstrapResult",
    "BrokenLaw",
    "DataConstrainedLaw",
    "Law",
    "LawFit",
    "LawFitResult",
    "PowerLaw",
    "PredictionInterval",
    "SigmoidLaw",
    "get_law",
]
