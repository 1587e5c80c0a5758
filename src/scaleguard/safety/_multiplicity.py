"""Error control across many gates: Bonferroni and Holm over always-valid p-values.

Each metric x segment gate is its own hypothesis; without a correction, adding segments adds
chances of a false rollback. Holm (1979) controls the family-wise error rate like Bonferroni but
rejects more. Applied to always-valid p-values, both keep that control under continuous
monitoring: a first false rejection needs some true null's running-minimum p-value to fall below
``alpha / m0``, which by a union bound happens with probability at most ``alpha``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from scaleguard.errors import InputError

__all__ = ["CORRECTIONS", "Correction", "adjust_p_values"]

Correction = Literal["holm", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bonferroni", "none")


def adjust_p_values(p_values: np.ndarray, method: Correction = "holm") -> np.ndarray:
    """Adjusted p-values along the last axis (compare each with ``alpha``).

    Vectorised: a ``(runs, tests)`` array is adjusted run by run.

    >>> adjust_p_values(np.array([0.01, 0.04, 0.03]), "holm").round(3)
    array([0.03, 0.06, 0.06])
    >>> adjust_p_values(np.array([0.01, 0.04, 0.03]), "bonferroni").round(3)
    array([0.03, 0.12, 0.09])
    """
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    if method == "none" or m == 0:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    if method != "holm":
        raise InputError(f"correction: expected one of {', '.join(CORRECTIONS)}, got {method!r}")
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    # Step-down: an adjusted p-value is never below the one ranked before it.
    ranked = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=-1)
    return out
