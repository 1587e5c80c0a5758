"""A rollout's history read from its audit log: what a rollout page draws.

Pure: audit records (the decisions' and approvals' dicts, oldest first) in, a frozen
:class:`RolloutHistory` out. The traffic ramp is the traffic after each decision; each gate's
confidence sequence is its interval at every look, in the harm direction (> 0 is worse), with
the limit it is judged against: for a comparison, treatment - control against the metric's
margin; for a guardrail, treatment - guardrail against 0 (the guardrail itself). A gate passes
once its upper bound is below the limit and fails once its lower bound is above it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scaleguard.safety._approvals import is_approval

__all__ = ["GateSeries", "RolloutHistory", "rollout_history"]


_BOUNDS = ("estimate", "lower", "upper", "limit")
_SERIES = ("seq", "time", "stage", *_BOUNDS, "verdict")


def _number(value: Any) -> float | None:
    """A stored bound as a float; None where it is not finite (stored as null or a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number - number == 0 else None  # inf - inf and nan are nan


@dataclass(frozen=True)
class GateSeries:
    """One gate (metric, segment, test) over the looks that evaluated it."""

    metric: str
    segment: str
    test: str
    seq: tuple[int, ...]
    time: tuple[float | None, ...]
    stage: tuple[str, ...]
    estimate: tuple[float | None, ...]
    lower: tuple[float | None, ...]
    upper: tuple[float | None, ...]
    limit: tuple[float | None, ...]
    verdict: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.metric}/{self.segment}/{self.test}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, **{k: list(v) if isinstance(v, tuple) else v
                                    for k, v in asdict(self).items()}}


@dataclass(frozen=True)
class RolloutHistory:
    """The ramp, each gate's confidence sequence, the SRM checks and the approvals."""

    ramp: tuple[dict[str, Any], ...]
    gates: tuple[GateSeries, ...]
    srm: tuple[dict[str, Any], ...]
    srm_latest: dict[str, Any] | None
    approvals: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"ramp": list(self.ramp), "gates": [g.as_dict() for g in self.gates],
                "srm": list(self.srm), "srm_latest": self.srm_latest,
                "approvals": list(self.approvals)}

    def __repr__(self) -> str:
        return (f"RolloutHistory({len(self.ramp)} ramp points, {len(self.gates)} gates, "
                f"{len(self.approvals)} approvals)")


def _series(key: tuple[str, str, str], cols: dict[str, list[Any]]) -> GateSeries:
    return GateSeries(*key, seq=tuple(cols["seq"]), time=tuple(cols["time"]),
                      stage=tuple(cols["stage"]), estimate=tuple(cols["estimate"]),
                      lower=tuple(cols["lower"]), upper=tuple(cols["upper"]),
                      limit=tuple(cols["limit"]), verdict=tuple(cols["verdict"]))


def _seq(record: Mapping[str, Any], default: int) -> int:
    state = record.get("state")
    seq = state.get("decisions") if isinstance(state, Mapping) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else default


def rollout_history(audit: Sequence[Mapping[str, Any]],
                    start: Mapping[str, Any] | None = None) -> RolloutHistory:
    """The history of a rollout from its audit records, oldest first.

    ``start`` (``stage``, ``traffic``, ``time``) is the ramp's first point, the rollout's start
    before any decision; leave it out when ``audit`` is only the newest part of the log.
    Records that are not mappings are skipped; bounds stored as null (not finite) stay None, so
    that a chart shows a gap rather than a made-up value.

    Examples
    --------
    >>> h = rollout_history([{"action": "advance", "stage": "all", "traffic": 1.0, "time": 9.0,
    ...                       "gates": [], "state": {"decisions": 1}}],
    ...                     start={"stage": "pilot", "traffic": 0.05, "time": 0.0})
    >>> [(p["time"], p["stage"], p["traffic"]) for p in h.ramp]
    [(0.0, 'pilot', 0.05), (9.0, 'all', 1.0)]
    """
    ramp = [] if start is None else [{"seq": 0, "time": _number(start.get("time")),
                                      "stage": str(start.get("stage", "")),
                                      "traffic": _number(start.get("traffic")),
                                      "action": "start"}]
    gates: dict[tuple[str, str, str], dict[str, list[Any]]] = {}
    srm: list[dict[str, Any]] = []
    srm_latest: dict[str, Any] | None = None
    approvals: list[dict[str, Any]] = []
    for number, record in enumerate(audit, start=1):
        if not isinstance(record, Mapping):
            continue
        seq, when, stage = _seq(record, number), _number(record.get("time")), \
            str(record.get("stage", ""))
        if "kind" in record and not is_approval(record):
            continue  # a deploy tool's confirmation: the audit log shows it; it moves nothing
        if is_approval(record):  # changes no traffic: a row of its own, not a ramp point
            approvals.append({"seq": seq, "time": when, "stage": stage,
                              "approved_by": record.get("approved_by"),
                              "note": record.get("note")})
            continue
        if record.get("kind"):
            continue  # a deploy tool's confirmation (Flagger): no decision, no traffic change
        ramp.append({"seq": seq, "time": when, "stage": stage,
                     "traffic": _number(record.get("traffic")),
                     "action": str(record.get("action", ""))})
        for gate in record.get("gates") or ():
            if not isinstance(gate, Mapping):
                continue
            key = (str(gate.get("metric")), str(gate.get("segment")), str(gate.get("test")))
            series = gates.setdefault(key, {name: [] for name in _SERIES})
            for name, value in (("seq", seq), ("time", when), ("stage", stage),
                                ("verdict", str(gate.get("verdict", ""))),
                                *((n, _number(gate.get(n))) for n in _BOUNDS)):
                series[name].append(value)
        check = record.get("srm")
        if isinstance(check, Mapping):
            shares = [c for c in check.get("checks") or () if isinstance(c, Mapping)]
            p_values = [p for p in (_number(c.get("p_value")) for c in shares) if p is not None]
            srm.append({"seq": seq, "time": when, "stage": stage,
                        "mismatch": bool(check.get("mismatch")),
                        "min_p": min(p_values, default=None), "checks": len(shares)})
            srm_latest = dict(check)
    return RolloutHistory(tuple(ramp),
                          tuple(_series(key, cols) for key, cols in gates.items()),
                          tuple(srm), srm_latest, tuple(approvals))
