"""Limit checks on safety: unmet rollout gates and open monitoring alerts block readiness.

The inputs are small records that the assessment builds from ``scaleguard.safety`` decisions and
``scaleguard.monitor`` alerts, so that these checks stay pure and testable without either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scaleguard.limits._findings import Change, Finding, Severity

__all__ = ["GateState", "OpenAlert", "safety_gates", "open_alerts", "oversight_capacity",
           "BLOCKING_ALERT_SEVERITIES"]

# Alert severities that stop a scaling step until someone resolves them: scaleguard.monitor's
# "critical" (its detectors' NaN, divergence and fast-burn alerts); "info" and "warning" alerts
# are conditions (the SRE workbook pages on critical alerts and tickets the others).
BLOCKING_ALERT_SEVERITIES: Final = frozenset({"critical"})


@dataclass(frozen=True)
class GateState:
    """One rollout gate: its name, ``pass`` / ``fail`` / ``continue`` (not yet decided), why."""

    name: str
    state: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "detail": self.detail}


@dataclass(frozen=True)
class OpenAlert:
    """One unresolved monitoring alert."""

    run: str
    metric: str
    severity: str
    step: float = math.nan
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "metric": self.metric, "severity": self.severity,
                "step": None if math.isnan(self.step) else self.step, "message": self.message}


def safety_gates(gates: Sequence[GateState], *, plan: str = "rollout plan") -> Finding:
    """Unmet gates of the rollout plan block readiness; undecided ones are a condition.

    Examples
    --------
    >>> f = safety_gates([GateState("toxicity", "pass"), GateState("jailbreaks", "fail", "2.1%")])
    >>> f.severity.value, f.cheapest_change.describe()
    ('block', 'pass gate jailbreaks (fix the regression and repeat the stage)')
    """
    failed = [g for g in gates if g.state == "fail"]
    pending = [g for g in gates if g.state not in ("pass", "fail")]
    numbers = {"gates": float(len(gates)), "failed": float(len(failed)),
               "pending": float(len(pending))}
    source = "always-valid gates of the rollout plan (scaleguard.safety)"
    if failed:
        names = ", ".join(g.name + (f" ({g.detail})" if g.detail else "") for g in failed)
        return Finding("safety_gates", "safety gates", Severity.BLOCK,
                       f"{len(failed)} of {len(gates)} gates of the {plan} failed: {names}",
                       math.inf, numbers, source,
                       tuple(Change(f"gate {g.name}", None,
                                    f"pass gate {g.name} (fix the regression and repeat the stage)")
                             for g in failed))
    if pending:
        names = ", ".join(g.name for g in pending)
        return Finding("safety_gates", "safety gates", Severity.WARN,
                       f"{len(pending)} of {len(gates)} gates of the {plan} are undecided: {names}",
                       1.0, numbers, source,
                       (Change("exposures", None, "collect exposures until every gate decides"),))
    return Finding("safety_gates", "safety gates", Severity.OK,
                   f"all {len(gates)} gates of the {plan} pass", 0.0, numbers, source)


def _count(n: int, noun: str) -> str:
    return f"1 {noun} is" if n == 1 else f"{n} {noun}s are"


def open_alerts(alerts: Sequence[OpenAlert]) -> Finding:
    """Open critical alerts block readiness; other open alerts are a condition.

    Examples
    --------
    >>> open_alerts([]).severity.value
    'ok'
    >>> open_alerts([OpenAlert("pilot-7b", "loss", "critical", 1200, "loss spike")]).severity.value
    'block'
    """
    blocking = [a for a in alerts if a.severity.lower() in BLOCKING_ALERT_SEVERITIES]
    numbers = {"open_alerts": float(len(alerts)), "blocking_alerts": float(len(blocking))}
    source = "open alerts in the monitoring store (scaleguard.monitor)"

    def name(a: OpenAlert) -> str:
        step = "" if math.isnan(a.step) else f" at step {a.step:g}"
        return f"{a.metric} on {a.run}{step}"

    if not alerts:
        return Finding("open_alerts", "monitoring alerts", Severity.OK, "no open alerts", 0.0,
                       numbers, source)
    shown = ", ".join(name(a) for a in (blocking or list(alerts))[:3])
    more = "" if len(blocking or alerts) <= 3 else f" and {len(blocking or alerts) - 3} more"
    if blocking:
        return Finding("open_alerts", "monitoring alerts", Severity.BLOCK,
                       f"{_count(len(blocking), 'critical alert')} open: {shown}{more}",
                       math.inf,
                       numbers, source,
                       (Change("open alerts", None, "resolve the critical alerts "
                                                   "(or show they are false alarms)"),))
    return Finding("open_alerts", "monitoring alerts", Severity.WARN,
                   f"{_count(len(alerts), 'alert')} open: {shown}{more}", 1.0, numbers, source,
                   (Change("open alerts", None, "review the open alerts"),))


def oversight_capacity(wall: Mapping[str, Any]) -> Finding:
    """The oversight wall: the first stage whose projected review load exceeds the reviewers.

    ``wall`` is ``scaleguard.safety``'s ``OversightWall.as_dict()``: each stage's projected
    reviews per hour, the capacity, and the reviewers the full rollout needs.

    Examples
    --------
    >>> stages = [{"stage": "pilot", "traffic": 0.01, "load_per_hour": 10.0,
    ...            "reviewers_needed": 1, "exceeds": False},
    ...           {"stage": "all", "traffic": 1.0, "load_per_hour": 1000.0,
    ...            "reviewers_needed": 20, "exceeds": True}]
    >>> f = oversight_capacity({"plan": "p", "capacity_per_hour": 100.0, "reviewers": 2,
    ...                         "first_over": "all", "full_rollout_reviewers": 20,
    ...                         "stages": stages})
    >>> f.severity.value, f.cheapest_change.describe()
    ('block', '10× more reviewers (staff 20 reviewers for the full rollout)')
    """
    capacity, reviewers = float(wall["capacity_per_hour"]), int(wall["reviewers"])
    stages = list(wall["stages"])
    full = wall["full_rollout_reviewers"]
    full_text = "an unbounded number of" if full is None else f"{full}"
    worst = max((float("inf") if s["load_per_hour"] is None else s["load_per_hour"])
                for s in stages)
    numbers = {"capacity_per_hour": capacity, "reviewers": float(reviewers),
               "full_rollout_reviewers": math.inf if full is None else float(full),
               "full_rollout_load_per_hour": math.inf if stages[-1]["load_per_hour"] is None
               else float(stages[-1]["load_per_hour"])}
    pressure = worst / capacity if capacity > 0 else math.inf
    source = ("projected review load = flag share (upper confidence bound) x exposures/h x "
              "traffic, against reviewers x reviews per reviewer-hour (scaleguard.safety "
              "oversight)")
    over = wall["first_over"]
    if over is None:
        return Finding("oversight_wall", "oversight wall", Severity.OK,
                       f"{reviewers} reviewers ({capacity:g} reviews/h) cover every remaining "
                       f"stage; the full rollout needs {full_text} reviewers", pressure,
                       numbers, source)
    stage = next(s for s in stages if s["stage"] == over)
    load = "an unbounded" if stage["load_per_hour"] is None else f"{stage['load_per_hour']:.3g}"
    factor = None if full is None or reviewers == 0 else float(full) / reviewers
    return Finding("oversight_wall", "oversight wall", Severity.BLOCK,
                   f"stage {over!r} (traffic {stage['traffic']:g}) needs {load} reviews/h, over "
                   f"the capacity {capacity:g} reviews/h of {reviewers} reviewers; the full "
                   f"rollout needs {full_text} reviewers", pressure, numbers, source,
                   (Change("reviewers", factor, f"staff {full_text} reviewers for the full "
                                                "rollout"),))
