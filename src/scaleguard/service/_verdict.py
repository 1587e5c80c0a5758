"""What a deploy tool (Argo Rollouts, Flagger) reads: scaleguard's decision as one verdict.

The decision is the controller's (:func:`scaleguard.safety.decide`, run when observations
arrive or at each look); a deploy tool only reads it. The verdict for a stage of the rollout:

- ``fail``: the controller rolled the rollout back;
- ``pass``: the controller has moved past that stage (or completed the rollout);
- ``inconclusive``: the rollout holds there (a failing non-critical gate, untrusted, missing or
  late data, a sample-ratio mismatch, an inconclusive stage, awaiting approval, oversight
  capacity), the latest decision is older than the plan's ``data.max_age``, or the deploy tool
  is ahead of scaleguard: a person must look;
- ``continue``: the stage is still collecting evidence.

Pure except :func:`latest_decision` and :func:`read_verdict`, which read the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scaleguard.errors import InputError
from scaleguard.monitor import Store
from scaleguard.service._rollouts import _load as load_rollout

__all__ = ["AUDIT_SCAN", "VERDICTS", "Verdict", "latest_decision", "latest_entry", "read_verdict",
           "verdict_of"]

VerdictName = Literal["pass", "continue", "inconclusive", "fail"]
VERDICTS: tuple[VerdictName, ...] = ("pass", "continue", "inconclusive", "fail")
# Audit entries read back to find the latest decision: other entries (approvals, deploy-tool
# confirmations) come at most a few between two decisions.
AUDIT_SCAN = 50


@dataclass(frozen=True)
class Verdict:
    """The verdict on one stage of a rollout, with the decision's evidence."""

    rollout_id: str
    verdict: VerdictName
    stage: str  # the stage asked about
    current_stage: str  # where scaleguard's rollout is
    stage_index: int
    status: str
    traffic: float
    action: str | None  # the latest decision's action (None before the first)
    reasons: tuple[str, ...]
    decided_at: float | None
    age_s: float | None
    failing: tuple[str, ...] = ()
    gates: tuple[dict[str, Any], ...] = ()
    srm: dict[str, Any] | None = None
    oversight: dict[str, Any] | None = None

    @property
    def proceed(self) -> bool:
        """Whether a deploy tool may go on (``pass`` or ``continue``)."""
        return self.verdict in ("pass", "continue")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("reasons", "failing", "gates"):
            out[name] = list(out[name])
        return out


def _newest(store: Store, rollout_id: str,
            keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The newest of the rollout's last :data:`AUDIT_SCAN` audit entries that ``keep``s."""
    for record in reversed(store.rollout_audit(rollout_id, last=AUDIT_SCAN)):
        if keep(record):
            return record
    return None


def latest_entry(store: Store, rollout_id: str) -> dict[str, Any] | None:
    """The newest audit entry that changed the rollout's course: a controller decision or a
    person's approval (deploy-tool confirmations only record that a tool asked)."""
    from scaleguard.safety._approvals import is_approval

    return _newest(store, rollout_id, lambda r: "kind" not in r or is_approval(r))


def latest_decision(store: Store, rollout_id: str) -> dict[str, Any] | None:
    """The newest controller decision in the rollout's audit log (entries with a ``kind`` are
    people's approvals or deploy-tool confirmations, not decisions)."""
    return _newest(store, rollout_id, lambda r: "kind" not in r)


def verdict_of(rollout_id: str, plan: Any, state: Any, last: dict[str, Any] | None,
               now: float, stage: str | None = None) -> Verdict:
    """The verdict on ``stage`` (default: the rollout's current stage) at ``now``.

    ``last`` is the latest decision's audit record (None before the first).
    """
    names = [s.name for s in plan.stages]
    current = names[state.stage_index]
    asked = current if stage is None else stage
    if asked not in names:
        raise InputError(f"stage: {asked!r} is not a stage of plan {plan.name!r}; expected one "
                         f"of {', '.join(names)}")
    decided_at = float(last["time"]) if last and last.get("time") is not None else None
    since = decided_at if decided_at is not None else float(state.stage_started)
    age = max(0.0, now - since)
    reasons = tuple(last.get("reasons", ())) if last else ()
    verdict: VerdictName
    if state.status == "rolled_back":
        verdict = "fail"
    elif state.status == "complete" or names.index(asked) < state.stage_index:
        verdict = "pass"
        reasons = (f"scaleguard has moved past stage {asked!r}" if state.status != "complete"
                   else "the rollout is complete", *reasons)
    elif names.index(asked) > state.stage_index:
        verdict = "inconclusive"
        reasons = (f"the deploy tool is at stage {asked!r}, scaleguard's rollout at "
                   f"{current!r}: traffic never runs ahead of the decision", *reasons)
    elif age > plan.data.max_age:
        verdict = "inconclusive"
        reasons = (f"no decision for {age:.0f} s, over the plan's data.max_age "
                   f"{plan.data.max_age:.0f} s: a stale decision never advances", *reasons)
    elif last is not None and last.get("action") == "hold":
        verdict = "inconclusive"
    else:
        verdict = "continue"
        if last is None:
            reasons = ("no decision yet: the stage is collecting evidence",)
    return Verdict(rollout_id, verdict, asked, current, state.stage_index, state.status,
                   float(state.traffic), last.get("action") if last else None, reasons,
                   decided_at, age if decided_at is not None else None,
                   tuple(last.get("failing", ())) if last else (),
                   tuple(last.get("gates", ())) if last else (),
                   last.get("srm") if last else None, last.get("oversight") if last else None)


def read_verdict(store: Store, rollout_id: str, now: float, stage: str | None = None
                 ) -> tuple[Verdict, Any, Any]:
    """The verdict on a stored rollout (404 when there is none), its plan and its state."""
    plan, state, _ = load_rollout(store, rollout_id)
    return (verdict_of(rollout_id, plan, state, latest_decision(store, rollout_id), now, stage),
            plan, state)
