"""Argo Rollouts: scaleguard as an AnalysisTemplate ``web`` metric provider.

Argo calls ``/api/v1/argo/rollouts/{id}`` at each analysis measurement (GET, or POST with the
template's ``body``); the JSON answer is :class:`~scaleguard.service._verdict.Verdict`: its
``verdict`` (``pass``, ``continue``, ``inconclusive``, ``fail``) is what the template's
``jsonPath`` picks and its ``successCondition`` / ``failureCondition`` test, with the decision's
evidence beside it (reasons, failing gates, SRM, oversight load). ``stage`` (query or body)
names the Argo step's scaleguard stage: ``pass`` once scaleguard has moved past it. The answer is
read from the latest decision, never decided here: the controller decides when observations
arrive or at each look (one controller), and a stale decision is ``inconclusive``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from scaleguard.errors import InputError
from scaleguard.service._body import StrictJSONRoute
from scaleguard.service._guards import require_read
from scaleguard.service._json import jsonable
from scaleguard.service._runs import store_of
from scaleguard.service._schemas import JsonObject, StoredText
from scaleguard.service._verdict import read_verdict

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/argo", tags=["argo rollouts"], route_class=StrictJSONRoute)

_STAGE = Query(None, min_length=1, max_length=200,
               description="the scaleguard stage of this Argo step (default: the current one)")


def _answer(request: Request, rollout: str, stage: str | None) -> dict[str, Any]:
    verdict, _, _ = read_verdict(store_of(request), rollout, time.time(), stage)
    return jsonable(verdict.as_dict())


@router.get("/rollouts/{rollout}", dependencies=[Depends(require_read)],
            summary="Argo web metric: the verdict on a stage (pass / continue / inconclusive / "
                    "fail) with the decision's evidence")
def argo_measurement(rollout: StoredText, request: Request,
                     stage: str | None = _STAGE) -> dict[str, Any]:
    return _answer(request, rollout, stage)


@router.post("/rollouts/{rollout}", dependencies=[Depends(require_read)],
             summary="Argo web metric (POST): the same answer; the body may name the stage")
def argo_measurement_post(rollout: StoredText, request: Request, stage: str | None = _STAGE,
                          body: JsonObject | None = Body(None)) -> dict[str, Any]:
    # Argo sends the template's own body: only `stage` and `rollout_id` mean anything here.
    given = body or {}
    named = given.get("rollout_id")
    if named is not None and named != rollout:
        raise InputError(f"body.rollout_id: {named!r} differs from the path's rollout "
                         f"{rollout!r}")
    asked = given.get("stage", stage)
    if asked is not None and not isinstance(asked, str):
        raise InputError("body.stage: expected a stage name (text)")
    return _answer(request, rollout, asked)
