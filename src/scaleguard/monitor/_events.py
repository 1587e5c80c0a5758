"""What detectors find (:class:`Event`) and what reaches people (:class:`Alert`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ALERT_STATES", "SEVERITIES", "Alert", "AlertState", "Event", "Severity",
           "severity_rank"]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
# What people did about a stored alert: nothing yet (open), seen and owned (acknowledged), or
# dealt with (resolved); the states of Alertmanager's and PagerDuty's incident life cycle.
AlertState = Literal["open", "acknowledged", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "resolved")


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical (to filter with ``>=``)."""
    return SEVERITIES.index(severity)


def _json_number(value: float) -> float | str:
    # JSON has no NaN/Inf: spell them as strings so that as_dict() stays JSON-ready.
    return value if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class Event:
    """One finding of a detector on one metric.

    Attributes
    ----------
    detector:
        Detector name, e.g. ``"spike"``.
    kind:
        What was found: ``"nonfinite"``, ``"spike"``, ``"divergence"``, ``"change"``, ...
    step:
        Step (or, for time-based detectors, time in seconds) of the point that triggered it.
    value:
        The observed value at ``step``.
    severity:
        ``"info"``, ``"warning"`` or ``"critical"``.
    message:
        One line saying what was seen, with the numbers that triggered it.
    metric:
        Metric name; filled in by whoever knows it (the check or the run), empty otherwise.
    action:
        A recommended action, one line.
    """

    detector: str
    kind: str
    step: int
    value: float
    severity: Severity
    message: str
    metric: str = ""
    action: str = ""

    def with_metric(self, metric: str) -> Event:
        """The same event, naming its metric."""
        return Event(self.detector, self.kind, self.step, self.value, self.severity,
                     self.message, metric, self.action)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite values as strings)."""
        return {"detector": self.detector, "kind": self.kind, "metric": self.metric,
                "step": self.step, "value": _json_number(self.value),
                "severity": self.severity, "message": self.message, "action": self.action}

    def __repr__(self) -> str:
        where = f"{self.metric}@{self.step}" if self.metric else f"step {self.step}"
        return f"Event({self.severity} {self.kind} {where}: {self.message})"


@dataclass(frozen=True)
class Alert:
    """An event (or a manual alert) of one run, at one time, ready for the sinks.

    ``time`` is seconds since the Unix epoch. An alert read back from a store also has its
    ``alert_id`` there and its ``state`` (see :data:`ALERT_STATES`); a new one has no id.
    """

    run: str
    time: float
    severity: Severity
    title: str
    message: str = ""
    metric: str = ""
    step: int | None = None
    value: float | None = None
    detector: str = "manual"
    action: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    alert_id: int | None = None
    state: AlertState = "open"

    @classmethod
    def from_event(cls, event: Event, run: str, time: float) -> Alert:
        """The alert for ``event`` of run ``run``."""
        title = f"{event.kind} in {event.metric}" if event.metric else event.kind
        return cls(run=run, time=time, severity=event.severity, title=title,
                   message=event.message, metric=event.metric, step=event.step,
                   value=event.value, detector=event.detector, action=event.action)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out: dict[str, Any] = {
            "run": self.run, "time": self.time, "severity": self.severity, "title": self.title,
            "message": self.message, "metric": self.metric, "step": self.step,
            "value": None if self.value is None else _json_number(self.value),
            "detector": self.detector, "action": self.action, "extra": dict(self.extra)}
        if self.alert_id is not None:  # only a stored alert has an id and a state
            out = {**out, "alert_id": self.alert_id, "state": self.state}
        return out

    def line(self) -> str:
        """One human line: ``[critical] run: title at step N — message (action)``."""
        at = f" at step {self.step}" if self.step is not None else ""
        tail = f" — {self.message}" if self.message else ""
        action = f" Action: {self.action}" if self.action else ""
        return f"[{self.severity}] {self.run}: {self.title}{at}{tail}.{action}".replace("..", ".")

    def __repr__(self) -> str:
        return f"Alert({self.line()})"
