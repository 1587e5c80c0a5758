"""Manual approval and the rollout page's history: ``/api/v1/rollouts/{id}/approve`` and
``/history``.

An approval is written like a decision, through the rollout store in one transaction under
the rollout's lock: the new state (the stage added to ``approved``) and an audit record naming
who approved (the bearer token's name) and when (the service's clock). The next decision, from
observations or the scheduler, runs the one controller, which honours the state's approvals.
What may be approved is :func:`scaleguard.safety._approvals.approve`'s to say: a stage that is
not waiting, approved twice, or of a finished rollout is refused with 409 and nothing stored.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from scaleguard.errors import StateConflict
from scaleguard.monitor import RolloutChange, RolloutRecord
from scaleguard.service._body import StrictJSONRoute
from scaleguard.service._guards import identity, require_read, require_write
from scaleguard.service._json import jsonable
from scaleguard.service._rollouts import _load, _parsed, _summary, no_such_rollout
from scaleguard.service._runs import store_of
from scaleguard.service._schemas import StoredText, _Strict
from scaleguard.service._verdict import latest_entry

__all__ = ["ApprovalIn", "DEFAULT_LOOKS", "ENTRIES", "router"]

DEFAULT_LOOKS = 1_000  # audit entries a history answer reads; at a look a minute, 16 hours
_MAX_LOOKS = 20_000  # a bound on one answer: 20,000 looks of a few gates is a few megabytes
ENTRIES = 200  # newest audit entries given whole (the page's audit table), oldest first

router = APIRouter(prefix="/api/v1", tags=["rollouts"], route_class=StrictJSONRoute)


class ApprovalIn(_Strict):
    """Approve entering ``stage`` (the stage the rollout waits to enter), with an optional
    note saying why; who and when are the service's to record."""

    stage: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=1_000)


def _began(record: RolloutRecord, audit: list[dict[str, Any]]) -> float:
    """When the first stage began: a first-stage decision's state keeps it; otherwise the
    earlier of the rollout's creation and its first entry."""
    first: dict[str, Any] = audit[0] if audit else {}
    kept = first.get("state")
    state: dict[str, Any] = kept if isinstance(kept, dict) else {}
    if state.get("stage_index") == 0 and isinstance(state.get("stage_started"), int | float):
        return float(state["stage_started"])
    when = first.get("time")
    return min(record.created_at, float(when)) if isinstance(when, int | float) else \
        record.created_at


@router.post("/rollouts/{rollout}/approve", status_code=201,
             dependencies=[Depends(require_write)],
             summary="Approve entering the stage a rollout waits for; recorded in its audit log")
def approve_stage(rollout: StoredText, body: ApprovalIn, request: Request) -> dict[str, Any]:
    from scaleguard.safety import DatabaseRolloutStore
    from scaleguard.safety._approvals import approve

    store = store_of(request)
    who = identity(request)
    # Read outside the lock (the audit log cannot be read inside it); the step checks that the
    # state is still the one these were read with.
    before = store.rollout(rollout)
    last = latest_entry(store, rollout)

    def step(record: RolloutRecord, _stored: Any) -> RolloutChange:
        if before is None or record.state != before.state:
            raise StateConflict(f"rollout {rollout!r} changed while approving (a decision came "
                                "in): look at it again, then approve")
        plan, state = _parsed(record)
        now = time.time()
        approval = approve(plan, state, last, body.stage, who, now,
                           body.note)
        return RolloutChange(approval.state.as_dict(), jsonable(approval.as_dict()),
                             approval.state.decisions, now, now, result=approval)

    change = DatabaseRolloutStore(store, rollout).decide_with(step)
    if change is None:
        raise no_such_rollout(rollout)
    return jsonable({"rollout_id": rollout, **change.result.as_dict()})


@router.get("/rollouts/{rollout}/history", dependencies=[Depends(require_read)],
            summary="What the rollout page draws: traffic ramp, each gate's confidence "
                    "sequence against its limit, SRM checks, approvals, the newest audit "
                    "entries")
def get_history(rollout: StoredText, request: Request,
                looks: int = Query(DEFAULT_LOOKS, ge=1, le=_MAX_LOOKS,
                                   description="newest audit entries to read")
                ) -> dict[str, Any]:
    from scaleguard.safety._history import rollout_history

    store = store_of(request)
    plan, state, record = _load(store, rollout)
    audit = store.rollout_audit(rollout, last=looks)
    start = None
    if len(audit) < looks:  # the whole log: the ramp starts where the rollout did
        start = {"stage": plan.stages[0].name, "traffic": plan.stages[0].traffic,
                 "time": _began(record, audit)}
    history = rollout_history(audit, start)
    return jsonable({**_summary(rollout, plan, state, latest_entry(store, rollout),
                                record.updated_at),
                     **history.as_dict(), "looks": len(audit), "complete": start is not None,
                     "entries": audit[-ENTRIES:]})
