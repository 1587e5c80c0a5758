"""Scaling limitation assessment: what stops the next scaling step?

Each limit check is a small pure function that returns a :class:`Finding` (severity, numbers,
the source of its rule, and the changes that would lift it). :func:`decide` joins findings into a
:class:`Verdict` naming the binding constraint and the cheapest change that lifts it.
"""

from scaleguard.limits._assess import MUENNIGHOFF_R_D, MUENNIGHOFF_R_N, Evidence, assess
from scaleguard.limits._assessment import (
    Assessment,
    Curve,
    IsoFlopCurve,
    ResourceLine,
    TargetPoint,
)
from scaleguard.limits._findings import Change, Finding, Severity
from scaleguard.limits._law_view import LawView
from scaleguard.limits._resource_checks import HEADROOM, memory_wall, resource_wall
from scaleguard.limits._run import fit_ladder, gather_evidence, read_alert_log, run_study
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
from scaleguard.limits._study import Study, load_study, study_from_dict
from scaleguard.limits._verdict import Readiness, Verdict, decide

__all__ = [
    "Assessment",
    "BLOCKING_ALERT_SEVERITIES",
    "Change",
    "Curve",
    "EPOCHS_NEGLIGIBLE",
    "EXTRAPOLATION_BLOCK_DECADES",
    "EXTRAPOLATION_WARN_DECADES",
    "Evidence",
    "Finding",
    "GateState",
    "HEADROOM",
    "IRREDUCIBLE_FRACTION",
    "IsoFlopCurve",
    "LawView",
    "MUENNIGHOFF_R_D",
    "MUENNIGHOFF_R_N",
    "OpenAlert",
    "Readiness",
    "ResourceLine",
    "Severity",
    "Study",
    "TargetPoint",
    "Verdict",
    "assess",
    "data_wall",
    "decide",
    "diminishing_returns",
    "extrapolation_risk",
    "fit_ladder",
    "gather_evidence",
    "load_study",
    "memory_wall",
    "open_alerts",
    "read_alert_log",
    "resource_wall",
    "run_study",
    "safety_gates",
    "study_from_dict",
]
