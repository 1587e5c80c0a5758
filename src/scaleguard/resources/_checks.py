"""Argument checks shared by the resources formulas: one-line errors naming the field."""

from __future__ import annotations

import math

from scaleguard.errors import InputError

__all__ = ["check_fraction", "check_positive"]


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float, or an :class:`InputError` naming ``name`` if it is not > 0."""
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        expected = "a non-negative" if allow_zero else "a positive"
        raise InputError(f"{name}: expected {expected} finite number, got {value!r}")
    return number


def check_fraction(value: float, name: str) -> float:
    """``value`` in (0, 1], or an :class:`InputError` naming ``name``."""
    number = check_positive(value, name)
    if number > 1:
        raise InputError(f"{name}: expected a fraction in (0, 1], got {value!r}")
    return number
