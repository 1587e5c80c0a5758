"""What applications need to assign traffic: ``GET /api/v1/rollouts/{id}/assignment``.

The answer is an :class:`~scaleguard.safety.Assignment` (status, stage, traffic, segments
admitted, the salt of the sticky hash, a cache lifetime), read from the stored state and the
last decision, with an ``ETag``: a client that sends ``If-None-Match`` gets ``304 Not Modified``
while nothing changed, so polling every few seconds costs a few bytes.

The salt is drawn when the rollout is created (:func:`with_salt`) and kept in the stored plan
(``assignment.salt``), so every replica, restart and client hashes units alike. A rollout
stored without one (``rollout decide --store`` makes rollouts from plan files) hashes with its
rollout id as the salt, as LaunchDarkly's SDKs use the flag key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from scaleguard.safety._assignment import Assignment, MetricInfo
from scaleguard.service._body import StrictJSONRoute
from scaleguard.service._guards import require_read
from scaleguard.service._rollouts import _load
from scaleguard.service._runs import store_of
from scaleguard.service._schemas import StoredText

__all__ = ["assignment_of", "router", "rollout_status", "with_salt"]

router = APIRouter(prefix="/api/v1", tags=["rollouts"], route_class=StrictJSONRoute)


def with_salt(plan: Any, raw: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The plan and its stored form with a salt: the plan's own, else 128 random bits."""
    from scaleguard.safety import parse_plan

    if plan.assignment.salt is not None:
        return plan, raw
    block = dict(raw.get("assignment") or {})
    salted = {**raw, "assignment": {**block, "salt": secrets.token_hex(16)}}
    return parse_plan(salted, "plan"), salted


def rollout_status(state: Any, last: dict[str, Any] | None) -> str:
    """``live``, ``paused``, ``held``, ``rolled_back`` or ``complete`` (see Assignment).

    A hold on evidence (a failing gate, a sample-ratio mismatch) is ``held``: a person must
    look, and meanwhile no unit is exposed. A hold that waits (missing or late data, an
    approval, an inconclusive stage) is ``paused``: traffic stays where it is, so the data that
    would end the wait keeps coming.
    """
    if state.status != "running":
        return str(state.status)
    if last is None or last.get("action") != "hold":
        return "live"
    mismatch = bool((last.get("srm") or {}).get("mismatch"))
    return "held" if last.get("failing") or mismatch else "paused"


def assignment_of(rollout_id: str, plan: Any, state: Any,
                  last: dict[str, Any] | None) -> Assignment:
    """The rollout's assignment from its plan, state and last audit record."""
    stage = plan.stages[state.stage_index]
    return Assignment(
        rollout_id=rollout_id, status=rollout_status(state, last), stage=stage.name,
        stage_index=state.stage_index, traffic=float(state.traffic),
        salt=plan.assignment.salt or rollout_id,
        segments={d: tuple(v) for d, v in plan.segments.items()},
        admitted={d: tuple(v) for d, v in (stage.segments or {}).items()},
        metrics=tuple(MetricInfo(m.name, m.kind, m.guardrail if m.kind == "quantile" else None,
                                 m.source) for m in plan.metrics),
        treatment_share=plan.srm.treatment_share, ttl_s=plan.assignment.ttl,
        version=state.decisions)


@router.get("/rollouts/{rollout}/assignment", dependencies=[Depends(require_read)],
            summary="What an application needs to assign units: status, stage, traffic, "
                    "segments admitted, salt (ETag; If-None-Match answers 304)")
def get_assignment(rollout: StoredText, request: Request) -> Response:
    from scaleguard.service._verdict import latest_decision

    store = store_of(request)
    plan, state, _ = _load(store, rollout)
    last = latest_decision(store, rollout)  # approvals in the audit log are not decisions
    body = json.dumps(assignment_of(rollout, plan, state, last).as_dict(),
                      separators=(",", ":"), sort_keys=True).encode()
    etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
