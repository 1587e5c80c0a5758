"""What an assessment holds: the verdict, and every number and curve the report shows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaleguard.limits._safety_checks import GateState, OpenAlert
from scaleguard.limits._verdict import Verdict

__all__ = ["Curve", "IsoFlopCurve", "TargetPoint", "ResourceLine", "Assessment"]


def _floats(values: Any) -> list[float | None]:
    """A JSON-ready list: NaN and infinities become null."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Curve:
    """Loss along compute on the compute-optimal frontier, with its prediction band."""

    compute: tuple[float, ...]  # FLOP
    loss: tuple[float, ...]
    low: tuple[float, ...]  # band edges; NaN where no bootstrap was run
    high: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"compute": _floats(self.compute), "loss": _floats(self.loss),
                "low": _floats(self.low), "high": _floats(self.high)}


@dataclass(frozen=True)
class IsoFlopCurve:
    """Loss over model size at one compute budget (an iso-FLOP profile) and its minimum."""

    compute: float  # FLOP
    params: tuple[float, ...]
    loss: tuple[float, ...]
    best_params: float
    best_loss: float
    is_target: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"compute": self.compute, "params": _floats(self.params),
                "loss": _floats(self.loss), "best_params": self.best_params,
                "best_loss": self.best_loss, "is_target": self.is_target}


@dataclass(frozen=True)
class TargetPoint:
    """The step being assessed: its allocation and the loss predicted there."""

    kind: str  # "compute", "loss" or "model": what the study fixed
    compute: float  # FLOP
    params: float
    tokens: float
    loss: float
    low: float = math.nan
    high: float = math.nan
    confidence: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "compute": self.compute, "params": self.params,
                "tokens": self.tokens, "tokens_per_param": self.tokens / self.params,
                "loss": self.loss, "interval": [_number(self.low), _number(self.high)],
                "confidence": _number(self.confidence)}


@dataclass(frozen=True)
class ResourceLine:
    """One row of the resource and carbon table: a figure, shown in human units."""

    name: str
    value: float  # SI
    shown: str  # the value in human units, e.g. '1.29GWh'
    limit: float = math.nan
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": _number(self.value), "shown": self.shown,
                "limit": _number(self.limit), "note": self.note}


@dataclass(frozen=True)
class Assessment:
    """One scaling decision assessed: the verdict and what it rests on."""

    name: str
    verdict: Verdict
    target: TargetPoint
    law: dict[str, Any]
    ladder: dict[str, tuple[float, ...]]  # params, tokens, flops, loss of each run
    frontier: Curve
    isoflops: tuple[IsoFlopCurve, ...]
    resources: tuple[ResourceLine, ...]
    gates: tuple[GateState, ...] = ()
    alerts: tuple[OpenAlert, ...] = ()
    rollout: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.as_dict(),
            "target": self.target.as_dict(),
            "law": self.law,
            "ladder": {k: _floats(v) for k, v in self.ladder.items()},
            "frontier": self.frontier.as_dict(),
            "isoflops": [c.as_dict() for c in self.isoflops],
            "resources": [r.as_dict() for r in self.resources],
            "gates": [g.as_dict() for g in self.gates],
            "alerts": [a.as_dict() for a in self.alerts],
            "rollout": self.rollout,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return (f"Assessment({self.name!r}: {self.verdict.readiness.value}, "
                f"binding={self.verdict.binding.check!r})")
