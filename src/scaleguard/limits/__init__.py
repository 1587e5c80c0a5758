"""Scaling limitation assessment: what stops the next scaling step?

Each limit check is a small pure function that returns a :class:`Finding` (severity, numbers,
the source of its rule, and the changes that would lift it). :func:`decide` joins findings into a
:class:`Verdict` naming the binding constraint and the cheapest change that lifts it.
"""

from scaleguard.limits._findings import Change, Finding, Severity
from scaleguard.limits._resource_checks import HEADROOM, MEMORY_HEADROOM, memory_wall, resource_wall
from scaleguard.limits._safety_checks import (
    BLOCKING_ALERT_SEVERITIES,
    GateState,
    OpenAlert,
    open_alerts,
    safety_gates,
)
from scaleguard.limits._scaling_checks import (
    EPOCHS_NEGLIGIBLE,
    EXTRAPOLATION_BLOCK_DECADES,
    EXTRAPOLATION_WARN_DECADES,
    IRREDUCIBLE_FRACTION,
    data_wall,
    diminishing_returns,
    extrapolation_risk,
)
from scaleguard.limits._verdict import Readiness, Verdict, decide

__all__ = [
    "BLOCKING_ALERT_SEVERITIES",
    "EPOCHS_NEGLIGIBLE",
    "EXTRAPOLATION_BLOCK_DECADES",
    "EXTRAPOLATION_WARN_DECADES",
    "HEADROOM",
    "IRREDUCIBLE_FRACTION",
    "MEMORY_HEADROOM",
    "Change",
    "Finding",
    "GateState",
    "OpenAlert",
    "Readiness",
    "Severity",
    "Verdict",
    "data_wall",
    "decide",
    "diminishing_returns",
    "extrapolation_risk",
    "memory_wall",
    "open_alerts",
    "resource_wall",
    "safety_gates",
]
