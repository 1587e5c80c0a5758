"""What a limit check returns: a :class:`Finding`, and the :class:`Change` that would lift it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Severity", "Change", "Finding"]


class Severity(StrEnum):
    """How much a finding weighs on the verdict, from harmless to blocking."""

    OK = "ok"  # within its limit with headroom
    WARN = "warn"  # allowed, but only under a condition the verdict states
    BLOCK = "block"  # the step cannot go ahead as planned

    @property
    def rank(self) -> int:
        return {"ok": 0, "warn": 1, "block": 2}[self.value]


@dataclass(frozen=True)
class Change:
    """One change to the plan that would lift a limit, and how large a change it is.

    ``factor`` multiplies ``quantity`` (``1.6`` on ``unique tokens`` is 1.6× more unique data,
    ``0.75`` on ``parameters`` is 25% fewer). Changes are compared by ``|log factor|``: the
    cheapest is the one that moves the plan least. A change with no factor (close an alert, pass
    a gate) is an action, not a scaling, and is never "cheaper" than a numeric one.
    """

    quantity: str
    factor: float | None = None
    action: str = ""

    @property
    def size(self) -> float:
        """``|log factor|``, or infinity for an action with no factor."""
        if self.factor is None or not self.factor > 0 or not math.isfinite(self.factor):
            return math.inf
        return abs(math.log(self.factor))

    def describe(self) -> str:
        """``'1.6× more unique tokens'``, ``'25% fewer parameters'``, or the action itself."""
        if self.factor is None:
            return self.action or self.quantity
        if self.factor >= 1.0:
            text = f"{_two_figures(self.factor)}× more {self.quantity}"
        else:
            fewer = "fewer" if self.quantity.endswith("s") else "less"  # count or mass noun
            text = f"{_two_figures(100.0 * (1.0 - self.factor))}% {fewer} {self.quantity}"
        return f"{text} ({self.action})" if self.action else text

    def as_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "factor": self.factor, "action": self.action,
                "text": self.describe()}


def _two_figures(value: float) -> str:
    """At most two figures below ten, rounded up so that "1.6× more" is never a shade short."""
    if value >= 10:
        return f"{math.ceil(value - 1e-9):d}"
    return f"{math.ceil(value * 10 - 1e-9) / 10:g}"


@dataclass(frozen=True)
class Finding:
    """The result of one limit check.

    Attributes
    ----------
    check:
        The check's identifier, e.g. ``"data_wall"``.
    title:
        Its name for people, e.g. ``"data wall"``.
    severity:
        :class:`Severity` of what was found.
    message:
        One sentence with the numbers that matter.
    pressure:
        How hard the plan presses on this limit: need / limit for a wall (``1.3`` is 30% over),
        scaled so that ``> 1`` means the limit is crossed. The verdict's binding constraint is the
        worst severity, then the highest pressure. ``nan`` where there is no single ratio.
    numbers:
        The figures behind the message, SI units, names ending in their unit where not obvious.
    source:
        Where the rule and its threshold come from.
    changes:
        Changes that would lift the limit, cheapest first.
    """

    check: str
    title: str
    severity: Severity
    message: str
    pressure: float = math.nan
    numbers: dict[str, float] = field(default_factory=dict)
    source: str = ""
    changes: tuple[Change, ...] = ()

    def __post_init__(self) -> None:
        # Stable sort on a rounded size: on a tie the check's own change (listed first) wins.
        object.__setattr__(self, "changes",
                           tuple(sorted(self.changes, key=lambda c: round(c.size, 9))))

    @property
    def cheapest_change(self) -> Change | None:
        return self.changes[0] if self.changes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "title": self.title,
            "severity": self.severity.value,
            "message": self.message,
            "pressure": None if math.isnan(self.pressure) else self.pressure,
            "numbers": {k: _json_number(v) for k, v in self.numbers.items()},
            "source": self.source,
            "changes": [c.as_dict() for c in self.changes],
        }

    def __repr__(self) -> str:
        return f"Finding({self.check}: {self.severity.value}, {self.message!r})"


def _json_number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    value = float(value)
    return value if math.isfinite(value) else None
