"""Rollouts run by the service: ``/api/v1/rollouts``.

The controller is :func:`scaleguard.safety.decide` (pure); what it needs between requests
(the plan, the state, the observation windows and their cell totals, the audit log) is kept by
:class:`~scaleguard.safety.DatabaseRolloutStore` in the monitor store (no SQL here), where
``scaleguard rollout decide --store`` and ``assess`` find the same rollouts. One request's
new rows, the new state and its audit record are written in one transaction that holds the
rollout's lock, so that a restart resumes each rollout exactly where its last acknowledged
decision left it, and two replicas on one PostgreSQL store never decide the same look twice.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, field_validator

from scaleguard.errors import ConfigError, InputError
from scaleguard.io import load_yaml, shown
from scaleguard.io._boundary import INT64_MAX, INT64_MIN
from scaleguard.monitor import RolloutChange, RolloutRecord, Store, StoredWindows
from scaleguard.service._body import StrictJSONRoute
from scaleguard.service._errors import NotFound
from scaleguard.service._guards import identity, require_read, require_write
from scaleguard.service._json import jsonable
from scaleguard.service._runs import store_of
from scaleguard.service._schemas import RUN_ID_PATTERN, JsonObject, StoredText, _Strict

__all__ = ["MAX_OBSERVATION_ROWS", "ObservationsIn", "RolloutCreate", "router"]

MAX_OBSERVATION_ROWS = 10_000  # rows a request may add; aggregated windows keep this small
_PLAN_YAML_CHARS = 200_000  # a plan of a few dozen stages and metrics is a few kilobytes

router = APIRouter(prefix="/api/v1", tags=["rollouts"], route_class=StrictJSONRoute)


class RolloutCreate(_Strict):
    """A new rollout from a plan: give the plan as a JSON object or as YAML text."""

    plan: JsonObject | None = None
    plan_yaml: str | None = Field(default=None, max_length=_PLAN_YAML_CHARS)
    rollout_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    started_at: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ObservationsIn(_Strict):
    """New observation rows (``stage``, ``arm``, ``metric``, segment columns, ``exposures`` and
    ``events`` or ``n``, ``mean``, ``var``, optional ``time``), approvals, and the decision time.
    """

    # bool kept as bool (not the lax union's 1), so that the checks refuse it by name
    rows: list[dict[str, str | float | int | bool | None]] = Field(
        default_factory=list, max_length=MAX_OBSERVATION_ROWS)
    approve: list[str] = Field(default_factory=list, max_length=100)
    now: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("rows", mode="before")
    @classmethod
    def _cells(cls, rows: Any) -> Any:
        # An integer of 400 digits, which no column can hold, was an OverflowError in the
        # table the decision reads (true and false are check_observations' to refuse).
        if not isinstance(rows, list):
            return rows  # pydantic names the type
        for i, row in enumerate(rows[:MAX_OBSERVATION_ROWS + 1]):
            if not isinstance(row, dict):
                continue
            for column, value in row.items():
                if isinstance(value, int) and not isinstance(value, bool) and \
                        not INT64_MIN <= value <= INT64_MAX:
                    raise ValueError(f"rows[{i}].{column}: {shown(value)} is outside the "
                                     "64-bit integer range")
        return rows


def _plan_of(body: RolloutCreate) -> tuple[Any, dict[str, Any]]:
    from scaleguard.safety import parse_plan

    if (body.plan is None) == (body.plan_yaml is None):
        raise InputError("plan: give exactly one of plan (a JSON object) or plan_yaml (text)")
    if body.plan_yaml is not None:
        data = load_yaml(body.plan_yaml, "plan_yaml")  # depth-checked: no RecursionError
        if not isinstance(data, dict):
            raise ConfigError("plan_yaml: expected a mapping at the top level")
        return parse_plan(data, "plan_yaml"), data
    assert body.plan is not None
    return parse_plan(body.plan, "plan"), body.plan


def no_such_rollout(rollout_id: str) -> NotFound:
    """The 404 of an unknown rollout; a path of any length is shown cut short."""
    return NotFound(f"rollout {shown(rollout_id, 80)}: no such rollout")


def _load(store: Store, rollout_id: str) -> tuple[Any, Any, RolloutRecord]:
    """The rollout's plan, state and stored record, or 404."""
    record = store.rollout(rollout_id)
    if record is None:
        raise no_such_rollout(rollout_id)
    return (*_parsed(record), record)


def _parsed(record: RolloutRecord) -> tuple[Any, Any]:
    from scaleguard.safety import RolloutState, parse_plan

    plan = parse_plan(record.plan, f"rollout {record.rollout_id} plan")
    return plan, RolloutState.from_dict(record.state, f"rollout {record.rollout_id} state")


def _summary(rollout_id: str, plan: Any, state: Any, last: dict[str, Any] | None,
             updated_at: float) -> dict[str, Any]:
    from scaleguard.safety._approvals import awaiting_approval

    return {"rollout_id": rollout_id, "plan": plan.name,
            "stage": plan.stages[state.stage_index].name, "stage_index": state.stage_index,
            "stages": [{"name": s.name, "traffic": s.traffic,
                        "manual_approval": s.manual_approval} for s in plan.stages],
            "traffic": state.traffic, "status": state.status, "decisions": state.decisions,
            "last_action": last["action"] if last else None, "updated_at": updated_at,
            # The stage a person may approve now (POST .../approve), and those approved.
            "awaiting_approval": awaiting_approval(plan, state, last),
            "approved": list(state.approved)}


def _started_at(plan: Any, started_at: float | None, now: float) -> float:
    """When the first stage began: the service's clock, or a recent time the client names.

    A start older than the plan's ``data.max_age`` would claim hours the service never
    observed (``started_at: 0`` would skip every minimum duration); one in the future is
    misdated.
    """
    from scaleguard.safety import CLOCK_SKEW

    if started_at is None:
        return now
    if started_at > now + CLOCK_SKEW:
        raise InputError(f"started_at: {started_at:.0f} is ahead of the service clock "
                         f"({now:.0f}) by more than {CLOCK_SKEW:.0f} s")
    if started_at < now - plan.data.max_age:
        raise InputError(f"started_at: {started_at:.0f} is {now - started_at:.0f} s before now, "
                         f"more than the plan's data.max_age {plan.data.max_age:.0f} s: the "
                         "service cannot vouch for time it did not observe")
    return started_at


def _decision_time(now: float | None, client_clock: bool) -> float:
    """The time a decision is made at: the service's clock, or the client's ``now``.

    A ``now`` behind the service's clock only shortens the time a stage has run (safe); one
    ahead of it would let a client skip minimum durations, so it is refused unless the service
    was started to replay recorded time (``client_clock``).
    """
    from scaleguard.safety import CLOCK_SKEW

    server = time.time()
    if now is None:
        return server
    if not client_clock and now > server + CLOCK_SKEW:
        raise InputError(f"now: {now:.0f} is ahead of the service clock ({server:.0f}) by more "
                         f"than {CLOCK_SKEW:.0f} s; the service decides on its own clock "
                         "(serve --client-clock replays recorded time)")
    return now


@router.post("/rollouts", status_code=201, dependencies=[Depends(require_write)],
             summary="Create a rollout from a plan (JSON object or YAML text)")
def create_rollout(body: RolloutCreate, request: Request) -> dict[str, Any]:
    from scaleguard.safety import DatabaseRolloutStore, feasibility, initial_state
    from scaleguard.service._assignment import with_salt
    from scaleguard.service._webhooks import parse_webhook

    store = store_of(request)
    plan, raw = with_salt(*_plan_of(body))  # the sticky hash's salt, kept with the plan
    for i, hook in enumerate(plan.webhooks):  # refused now, not when a decision is published
        parse_webhook(hook.url, hook.format, f"plan.webhooks[{i}].url")
    rollout_id = body.rollout_id or f"{re.sub(r'[^A-Za-z0-9._-]', '-', plan.name)[:40]}-" \
                                    f"{uuid.uuid4().hex[:8]}"
    now = time.time()
    started = _started_at(plan, body.started_at, now)
    state = initial_state(plan, started)
    if not DatabaseRolloutStore(store, rollout_id).create(plan.name, raw, state, now):
        raise InputError(f"rollout_id: rollout {rollout_id!r} exists already")
    # What `rollout validate` shows: can each stage finish, can it see a harm its margin size?
    reach = feasibility(plan).as_dict()
    return jsonable({**_summary(rollout_id, plan, state, None, now), "feasibility": reach,
                     "warnings": reach["warnings"]})


@router.get("/rollouts", dependencies=[Depends(require_read)],
            summary="List rollouts, most recently updated first")
def list_rollouts(request: Request) -> list[dict[str, Any]]:
    from scaleguard.service._verdict import latest_entry  # _verdict reads rollouts through us

    store = store_of(request)
    out = []
    for record in store.rollouts():
        plan, state = _parsed(record)
        out.append(_summary(record.rollout_id, plan, state,
                            latest_entry(store, record.rollout_id), record.updated_at))
    return jsonable(out)


@router.get("/rollouts/{rollout}", dependencies=[Depends(require_read)],
            summary="One rollout: plan, stage, traffic, state")
def get_rollout(rollout: StoredText, request: Request) -> dict[str, Any]:
    from scaleguard.service._verdict import latest_entry

    store = store_of(request)
    plan, state, record = _load(store, rollout)
    return jsonable({**_summary(rollout, plan, state, latest_entry(store, rollout),
                                record.updated_at),
                     "state": state.as_dict(),
                     "plan_spec": plan.model_dump(mode="json")})


@router.post("/rollouts/{rollout}/observations", dependencies=[Depends(require_write)],
             summary="Add observation rows (and approvals), decide, and log the decision")
def post_observations(rollout: StoredText, body: ObservationsIn, request: Request
                      ) -> dict[str, Any]:
    from scaleguard.safety import DatabaseRolloutStore
    from scaleguard.safety._prometheus import refuse_posted_rows
    from scaleguard.service._scheduler import decide_rows

    store = store_of(request)
    hooks: list[Any] = []  # the plan's webhooks, told of the decision once it is stored

    def step(record: RolloutRecord, stored: StoredWindows) -> RolloutChange:
        # Runs inside the store's transaction, under the rollout's lock: read, decide, write.
        plan, state = _parsed(record)
        hooks[:] = plan.webhooks
        stage_names = {s.name for s in plan.stages}
        unknown = [name for name in body.approve if name not in stage_names]
        if unknown:
            raise InputError(f"approve: {unknown[0]!r} is not a stage of plan {plan.name!r}")
        now = _decision_time(body.now, request.app.state.settings.client_clock)
        # A row without a time is dated when it arrives, so that every stored window has one
        # (a rollout whose first rows had no time must still accept rows that do).
        posted = [r if r.get("time") is not None else {**r, "time": now} for r in body.rows]
        refuse_posted_rows(plan, posted)
        # The same check and screening as `rollout decide` and the scheduler's looks: new rows
        # against the stored windows (a retry of one is a duplicate); the decision reads the
        # rollout's cell totals.
        decision, record_, absorbed = decide_rows(plan, state, stored, posted, now,
                                                  f"service request at {time.time():.3f}",
                                                  approvals=frozenset(body.approve))
        if body.approve:  # approvals given with the rows: the audit log still names who
            record_ = {**record_, "approve": list(body.approve), "approved_by": identity(request)}
        return absorbed.change(decision, record_, now)

    change = DatabaseRolloutStore(store, rollout).decide_with(step)
    if change is None:
        raise no_such_rollout(rollout)
    request.app.state.webhooks.publish(rollout, change.audit, hooks)
    return jsonable(change.result.as_dict())


@router.get("/rollouts/{rollout}/decision", dependencies=[Depends(require_read)],
            summary="The latest decision with its gate evidence (null before the first); "
                     "approvals are in the audit log")
def get_decision(rollout: StoredText, request: Request) -> dict[str, Any] | None:
    from scaleguard.service._verdict import latest_decision

    store = store_of(request)
    _load(store, rollout)
    return latest_decision(store, rollout)  # deploy-tool confirmations are not decisions


@router.get("/rollouts/{rollout}/audit", dependencies=[Depends(require_read)],
            summary="Every decision of the rollout, oldest first, with its evidence")
def get_audit(rollout: StoredText, request: Request) -> list[dict[str, Any]]:
    store = store_of(request)
    _load(store, rollout)
    return store.rollout_audit(rollout)
