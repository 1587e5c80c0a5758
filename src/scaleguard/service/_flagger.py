"""Flagger: webhooks that let a canary go on only while scaleguard's decision allows it.

Flagger POSTs ``{"name", "namespace", "phase", "checksum", "metadata"}`` to each webhook and
reads only the status: 200-202 to go on, anything else to stop (Flagger's
``docs/gitbook/usage/webhooks.md``). The canary maps to the scaleguard rollout named by
``metadata.rollout_id``, else ``<name>.<namespace>``. The answers (from
:func:`~scaleguard.service._verdict.verdict_of`, the latest decision; nothing is decided here):

- ``confirm-rollout``: 200 while the rollout runs and is not held (verdict pass or continue);
- ``confirm-traffic-increase``: 200 while Flagger's confirmed steps are fewer than the stages
  scaleguard has entered (step k takes the canary to stage k's weight: the first to the first
  stage's, each later one follows an advance), each recorded in the rollout's audit log so
  that Flagger's weight never runs ahead of the decision;
- ``confirm-promotion``: 200 when scaleguard completed the rollout;
- ``rollback``: 200 (Flagger rolls back) when scaleguard rolled the rollout back.

Everything else is 409 with the verdict and its reasons, which Flagger logs. Flagger sends no
headers of its own, so the bearer token travels in ``metadata.token`` (as Flagger's own
examples do) unless a proxy adds an ``Authorization`` header.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from scaleguard.service._auth import check_token
from scaleguard.service._body import StrictJSONRoute
from scaleguard.service._guards import require_write
from scaleguard.service._json import jsonable
from scaleguard.service._runs import store_of
from scaleguard.service._schemas import StoredText
from scaleguard.service._verdict import AUDIT_SCAN, Verdict, read_verdict

__all__ = ["FLAGGER_KIND", "FlaggerPayload", "HOOKS", "router"]

Hook = Literal["confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"]
HOOKS: tuple[str, ...] = ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion",
                          "rollback")
FLAGGER_KIND = "flagger"  # the ``kind`` of a confirmation's audit record
_REASONS_SHOWN = 3  # Flagger copies the body into events: a few reasons, not the evidence

router = APIRouter(prefix="/api/v1/flagger", tags=["flagger"], route_class=StrictJSONRoute)


class FlaggerPayload(BaseModel):
    """Flagger's webhook payload (``CanaryWebhookPayload``); fields it may add are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: StoredText = Field(min_length=1, max_length=253, description="the canary's name")
    namespace: StoredText = Field(min_length=1, max_length=253,
                                  description="the canary's namespace")
    phase: str = Field("", max_length=64, description="the canary's phase, e.g. Progressing")
    checksum: str | None = Field(None, max_length=256, description="hash of the canary's "
                                 "tracked configs and last applied spec")
    metadata: dict[str, StoredText] = Field(default_factory=dict, max_length=100,
                                     description="the webhook's metadata: rollout_id names "
                                                 "the scaleguard rollout; token the bearer "
                                                 "token")

    @property
    def canary(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def rollout_id(self) -> str:
        return self.metadata.get("rollout_id") or self.canary


def _authorize(request: Request, payload: FlaggerPayload) -> None:
    """The bearer token from the header, else from ``metadata.token`` (Flagger's only way)."""
    if request.headers.get("authorization") or "token" not in payload.metadata:
        require_write(request)  # the header's token, or the usual 401
        return
    if not check_token(payload.metadata["token"], request.app.state.settings.token_hashes):
        raise HTTPException(401, "invalid bearer token in metadata.token",
                            headers={"WWW-Authenticate": 'Bearer realm="scaleguard"'})


def _steps_confirmed(audit: list[dict[str, Any]], whole: bool) -> int | None:
    """Traffic increases confirmed to Flagger so far (its canary's step), from the newest
    confirmation; None when the entries read (``whole``: the full log) hold none and may not
    reach back to the start."""
    for record in reversed(audit):
        if record.get("kind") == FLAGGER_KIND:
            return int(record.get("step", 0))
    return 0 if whole or len(audit) < AUDIT_SCAN else None


def _answer(hook: str, payload: FlaggerPayload, verdict: Verdict, go: bool, why: str
            ) -> JSONResponse:
    body = {"hook": hook, "canary": payload.canary, "proceed": go, "why": why,
            **{k: v for k, v in verdict.as_dict().items()
               if k in ("rollout_id", "verdict", "stage", "stage_index", "status", "traffic",
                        "action", "failing", "decided_at", "age_s")},
            "reasons": list(verdict.reasons[:_REASONS_SHOWN])}
    return JSONResponse(jsonable(body), status_code=200 if go else 409)


@router.post("/{hook}", summary="Flagger webhook (confirm-rollout, confirm-traffic-increase, "
                                "confirm-promotion, rollback): 200 to go on, 409 to stop")
def flagger_hook(hook: Hook, payload: FlaggerPayload, request: Request) -> JSONResponse:
    _authorize(request, payload)
    store = store_of(request)
    now = time.time()
    verdict, plan, state = read_verdict(store, payload.rollout_id, now)
    if hook == "rollback":
        go = verdict.verdict == "fail"
        return _answer(hook, payload, verdict, go, "scaleguard rolled the rollout back" if go
                       else f"scaleguard has not rolled back (verdict {verdict.verdict})")
    if hook == "confirm-promotion":
        go = state.status == "complete"
        return _answer(hook, payload, verdict, go, "the rollout is complete" if go else
                       f"promotion waits for the last stage {plan.stages[-1].name!r} to pass "
                       f"(verdict {verdict.verdict} at {verdict.current_stage!r})")
    if not verdict.proceed:
        return _answer(hook, payload, verdict, False, f"verdict {verdict.verdict}: "
                       f"{verdict.reasons[0] if verdict.reasons else 'scaleguard holds'}")
    if hook == "confirm-rollout":
        return _answer(hook, payload, verdict, True, "the rollout runs")
    return _traffic_increase(store, payload, verdict, plan, state, now)


def _traffic_increase(store: Any, payload: FlaggerPayload, verdict: Verdict, plan: Any,
                      state: Any, now: float) -> JSONResponse:
    """One increase per stage scaleguard has entered (Flagger's step k is stage k's weight),
    each recorded under the rollout's lock; a Flagger behind catches up a step an interval."""
    from scaleguard.monitor import RolloutChange
    from scaleguard.safety import DatabaseRolloutStore, RolloutState

    hook = "confirm-traffic-increase"
    index = state.stage_index
    steps = _steps_confirmed(store.rollout_audit(verdict.rollout_id, last=AUDIT_SCAN), False)
    if steps is None:  # a long stage: read the whole log (bounded by the rollout's looks)
        steps = _steps_confirmed(store.rollout_audit(verdict.rollout_id), True) or 0
    # Flagger's step k carries stage k's weight: it may take stage_index + 1 steps in all.
    if steps > index:
        return _answer(hook, payload, verdict, False, f"Flagger's weight already follows stage "
                       f"{verdict.current_stage!r}; the next increase waits for scaleguard to "
                       "advance")

    def step(record: Any, _: Any) -> RolloutChange:
        current = RolloutState.from_dict(record.state, f"rollout {record.rollout_id} state")
        if current.decisions != state.decisions:
            return RolloutChange(record.state, None, current.decisions, now, time.time(),
                                 result=False)  # decided meanwhile: Flagger asks again
        after = replace(current, decisions=current.decisions + 1)
        entry = {"kind": FLAGGER_KIND, "hook": hook, "canary": payload.canary,
                 "checksum": payload.checksum, "phase": payload.phase, "step": steps + 1,
                 "stage": plan.stages[min(steps, index)].name, "stage_index": index,
                 "traffic": current.traffic, "time": now}
        return RolloutChange(after.as_dict(), entry, after.decisions, now, time.time(),
                             result=True)

    change = DatabaseRolloutStore(store, verdict.rollout_id).decide_with(step)
    if change is None or not change.result:
        return _answer(hook, payload, verdict, False, "the rollout changed while answering; "
                       "Flagger asks again at its next interval")
    taken = plan.stages[min(steps, index)]
    return _answer(hook, payload, verdict, True, f"the canary may take step {steps + 1}: stage "
                   f"{taken.name!r}'s traffic {taken.traffic:g}")
