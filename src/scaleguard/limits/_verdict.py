"""One verdict from many findings: ready, ready with conditions, or not ready — and why."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scaleguard.errors import InputError
from scaleguard.limits._findings import Change, Finding, Severity

__all__ = ["Readiness", "Verdict", "decide"]


class Readiness(StrEnum):
    """The verdict. ``exit_status`` is what ``scaleguard assess`` ends with, for scripts."""

    READY = "ready"
    CONDITIONAL = "ready with conditions"
    NOT_READY = "not ready"

    @property
    def exit_status(self) -> int:
        """0 ready, 1 not ready, 3 ready with conditions (2 is kept for bad input).

        A CI gate that must stop on anything but a clean *ready* tests for non-zero; one that
        accepts conditions tests for 1 alone.
        """
        return _EXIT_STATUS[self]


_EXIT_STATUS = {Readiness.READY: 0, Readiness.NOT_READY: 1, Readiness.CONDITIONAL: 3}


def _weight(finding: Finding) -> tuple[int, float]:
    """Worst severity first; among equals, the limit pressed hardest (nan counts as least)."""
    pressure = finding.pressure if not math.isnan(finding.pressure) else -math.inf
    return finding.severity.rank, pressure


@dataclass(frozen=True)
class Verdict:
    """The answer to "can we scale to the target, and if not, what stops us?".

    ``binding`` is the constraint that binds: the finding with the worst severity and, among
    those, the highest pressure (need over limit). ``change`` is the cheapest change that lifts
    it, ``alternatives`` the other changes that would, cheapest first.
    """

    readiness: Readiness
    binding: Finding
    change: Change | None
    alternatives: tuple[Change, ...]
    findings: tuple[Finding, ...]

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.BLOCK)

    @property
    def conditions(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARN)

    def headline(self) -> str:
        """One sentence: the readiness, what binds, and the cheapest way out."""
        if self.readiness is Readiness.READY:
            return (f"ready: every limit holds; the tightest is the {self.binding.title} "
                    f"({self.binding.message})")
        text = f"{self.readiness.value}: the {self.binding.title} binds — {self.binding.message}"
        if self.change is not None:
            ways = [self.change, *self.alternatives[:1]]
            text += "; it lifts with " + ", or ".join(c.describe() for c in ways)
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "readiness": self.readiness.value,
            "headline": self.headline(),
            "binding_constraint": self.binding.check,
            "cheapest_change": None if self.change is None else self.change.as_dict(),
            "alternatives": [c.as_dict() for c in self.alternatives],
            "blocking": [f.check for f in self.blocking],
            "conditions": [f.check for f in self.conditions],
            "findings": [f.as_dict() for f in self.findings],
        }

    def __repr__(self) -> str:
        return f"Verdict({self.readiness.value!r}, binding={self.binding.check!r})"


def decide(findings: Sequence[Finding]) -> Verdict:
    """Join the findings into a :class:`Verdict`.

    Examples
    --------
    >>> from scaleguard.limits import data_wall, resource_wall
    >>> v = decide([data_wall(tokens_needed=6.4e12, unique_tokens=1e12),
    ...             resource_wall("budget_wall", need=4e6, limit=5e6, source="quote")])
    >>> v.readiness.value, v.binding.check, v.change.describe()
    ('not ready', 'data_wall', '1.6× more unique tokens')
    """
    if not findings:
        raise InputError("decide: no findings to decide on")
    ordered = sorted(findings, key=_weight, reverse=True)
    binding = ordered[0]
    worst = binding.severity
    readiness = {Severity.BLOCK: Readiness.NOT_READY, Severity.WARN: Readiness.CONDITIONAL,
                 Severity.OK: Readiness.READY}[worst]
    changes = binding.changes if worst is not Severity.OK else ()
    return Verdict(readiness, binding, changes[0] if changes else None, tuple(changes[1:]),
                   tuple(findings))
