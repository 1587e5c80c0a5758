"""How far a prediction lies beyond the data, in decades of the scale the law extrapolates along.

Extrapolation error grows with distance from the largest run (the rolling-origin backtest
measures how fast); past one decade a fit that looked perfect in range can be off by several
per cent, so the report says so next to the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from scaleguard.io import FLOPS_PER_PARAM_TOKEN
from scaleguard.laws._data import scale_columns
from scaleguard.laws._families import Law

__all__ = ["EXTRAPOLATION_WARN_DECADES", "Reach", "decades_beyond", "reach_warning"]

# Issue #17/#18: a prediction more than one decade past the largest run is flagged.
EXTRAPOLATION_WARN_DECADES: Final = 1.0


@dataclass(frozen=True)
class Reach:
    """Decades beyond the data at each point ``[m]`` and the column that sets it."""

    decades: np.ndarray  # [m], 0 inside the data's range
    column: tuple[str, ...]  # [m] the scale column with the largest reach at each point
    largest: tuple[float, ...]  # [m] that column's largest value in the data


def _scales(law: Law, X: np.ndarray) -> dict[str, np.ndarray]:
    """Each extrapolated scale column ``[n]``; a law of params and tokens also gets flops."""
    columns = {c: X[law.inputs.index(c)] for c in scale_columns(law)}
    if "params" in columns and "tokens" in columns:
        columns["flops"] = FLOPS_PER_PARAM_TOKEN * columns["params"] * columns["tokens"]
    return columns


def decades_beyond(law: Law, X_data: np.ndarray, X_points: np.ndarray) -> Reach:
    """How many decades each point lies past the data's largest value, along any scale column.

    >>> from scaleguard.laws import get_law
    >>> law = get_law("power", "x")
    >>> r = decades_beyond(law, np.array([[1.0, 10.0, 100.0]]), np.array([[50.0, 1e4]]))
    >>> r.decades.round(3).tolist(), r.column
    ([0.0, 2.0], ('x', 'x'))
    """
    data, points = _scales(law, np.asarray(X_data, float)), _scales(law, np.asarray(X_points,
                                                                                   float))
    m = np.asarray(X_points).shape[1]
    if not data:
        return Reach(np.zeros(m), ("",) * m, (float("nan"),) * m)
    names = list(data)
    tops = np.array([float(np.max(data[c])) for c in names])
    beyond = np.vstack([np.log10(points[c] / top) for c, top in zip(names, tops, strict=True)])
    worst = np.argmax(beyond, axis=0)
    decades = np.maximum(beyond[worst, np.arange(m)], 0.0)
    return Reach(decades, tuple(names[i] for i in worst), tuple(float(tops[i]) for i in worst))


def reach_warning(decades: float, column: str, largest: float, where: str) -> str | None:
    """The report's warning for a prediction ``decades`` past the data, or None within one."""
    if not decades > EXTRAPOLATION_WARN_DECADES:
        return None
    return (f"the prediction at {where} lies {decades:.1f} decades of {column} beyond the "
            f"largest run ({column} = {largest:.3g}); extrapolation error grows with that "
            "distance, read it as a forecast with the interval, not a measurement")
