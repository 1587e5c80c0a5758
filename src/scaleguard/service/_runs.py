"""Runs, metric batches, series, events and alerts: ``/api/v1/runs`` and ``/api/v1/alerts``.

Every read and write goes through the monitor :class:`~scaleguard.monitor.Store` (DuckDB or
PostgreSQL); no SQL here. A write commits before the 2xx answer, so an acknowledged batch is
durable. A batch with an ``Idempotency-Key`` is stored once: the store claims the key in the
batch's own transaction, so a retry, here or on another replica, is answered as a duplicate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from scaleguard.errors import InputError
from scaleguard.io import shown, text_problem
from scaleguard.monitor import ALERT_STATES, Alert, Batch, RunInfo, Store, StoredEvent
from scaleguard.monitor._downsample import DOWNSAMPLE_METHODS
from scaleguard.monitor._events import SEVERITIES
from scaleguard.service._errors import NotFound
from scaleguard.service._guards import require_read, require_write
from scaleguard.service._json import jsonable
from scaleguard.service._schemas import (
    INT64_MAX,
    INT64_MIN,
    AlertStateIn,
    BatchIn,
    RunCreate,
    RunFinish,
)

__all__ = ["DEFAULT_SERIES_POINTS", "MAX_RUNS_PAGE", "MAX_SERIES_POINTS", "router"]

# A chart a few thousand pixels wide shows at most that many distinct points; 2,000 keeps a
# page of six charts light, and zooming in asks again for the visible range.
DEFAULT_SERIES_POINTS = 2_000
MAX_SERIES_POINTS = 20_000  # SVG charts slow down past a few tens of thousands of points
_MIN_SERIES_POINTS = 3  # LTTB keeps the first and the last point and needs one in between
MAX_RUNS_PAGE = 1_000  # runs in one listing page

router = APIRouter(prefix="/api/v1", tags=["monitoring"])


def store_of(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


_KNOWN_RUNS = 10_000  # run ids a service remembers as existing (then it starts again)


def _run_id_of(request: Request, run: str) -> str:
    """The id of run ``run`` (an id or a name; 404 when there is none), for a batch.

    Run ids are never deleted or reused, so an id found once is remembered: a batch then asks
    the store nothing before its write (on DuckDB the lookup would queue behind the group
    committer's transactions, for the store has one connection). A name is resolved every time:
    a newer run may take it.
    """
    known: set[str] | None = getattr(request.app.state, "known_run_ids", None)
    if known is None:
        known = request.app.state.known_run_ids = set()
    if run in known:
        return run
    info = find_run(store_of(request), run)
    if info.run_id == run:
        if len(known) >= _KNOWN_RUNS:
            known.clear()
        known.add(run)
    return info.run_id


def find_run(store: Store, run: str, *, count: bool = False) -> RunInfo:
    """The run with id ``run``, else the newest run named ``run``; 404 when there is none.

    Its points are counted only when ``count`` is true: a batch must not pay for a scan.
    """
    problem = text_problem(run)  # a NUL in the lookup was a PostgreSQL error: a 500
    if problem is not None:
        raise InputError(f"run {shown(run)}: {problem}")
    info = store.find_run(run, count=count)
    if info is None:
        raise NotFound(f"run {run!r}: no run with this id or name")
    return info


def _latest(store: Store, run_id: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{run_id: {metric: {value, step, points}}}`` of the newest point of each metric."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for v in store.latest(run_id):
        out.setdefault(v.run_id, {})[v.metric] = {"value": v.value, "step": v.step,
                                                  "points": v.points}
    return out


def _alert_counts(store: Store, run_id: str | None = None) -> dict[str, dict[str, int]]:
    """``{run_id: {severity: count}}`` of the open alerts (acknowledged and resolved ones are
    being dealt with)."""
    out: dict[str, dict[str, int]] = {}
    for c in store.alert_counts(run_id):
        if c.state == "open":
            out.setdefault(c.run_id, {})[c.severity] = c.count
    return out


def _run_summary(info: RunInfo, latest: dict[str, Any], alerts: dict[str, int]) -> dict[str, Any]:
    return {**info.as_dict(), "latest": latest, "alerts": alerts}


@router.post("/runs", status_code=201, dependencies=[Depends(require_write)],
             summary="Create a run (or resume one by its id)")
def create_run(body: RunCreate, request: Request) -> dict[str, Any]:
    store = store_of(request)
    run_id = body.run_id or uuid.uuid4().hex[:16]
    started = body.started_at if body.started_at is not None else time.time()
    store.open_run(RunInfo(run_id, body.name, body.status, started, None, body.config))
    return find_run(store, run_id, count=True).as_dict()


@router.get("/runs", dependencies=[Depends(require_read)],
            summary="List runs, newest first, with their latest values and open alert counts")
def list_runs(request: Request,
              status: str | None = Query(None, max_length=40,
                                         description="Only runs of this status"),
              name: str | None = Query(None, max_length=200, description="Only runs of this name"),
              limit: int | None = Query(None, ge=1, le=MAX_RUNS_PAGE),
              offset: int = Query(0, ge=0, le=INT64_MAX)) -> list[dict[str, Any]]:
    store = store_of(request)
    runs = store.runs(status=status, name=name, limit=limit, offset=offset)
    latest, alerts = _latest(store), _alert_counts(store)
    return jsonable([_run_summary(info, latest.get(info.run_id, {}), alerts.get(info.run_id, {}))
                     for info in runs])


@router.get("/runs/{run}", dependencies=[Depends(require_read)],
            summary="One run (by id, or the newest of that name)")
def get_run(run: str, request: Request) -> dict[str, Any]:
    store = store_of(request)
    info = find_run(store, run, count=True)
    return jsonable(_run_summary(info, _latest(store, info.run_id).get(info.run_id, {}),
                                 _alert_counts(store, info.run_id).get(info.run_id, {})))


@router.post("/runs/{run}/finish", dependencies=[Depends(require_write)],
             summary="Mark a run finished, failed or crashed")
def finish_run(run: str, body: RunFinish, request: Request) -> dict[str, Any]:
    store = store_of(request)
    info = find_run(store, run)
    finished = body.finished_at if body.finished_at is not None else time.time()
    store.close_run(info.run_id, body.status, finished)
    return find_run(store, info.run_id, count=True).as_dict()


async def _may_write(request: Request) -> None:
    """:func:`require_write` run on the event loop: a header check needs no worker thread, and
    each hop to the thread pool and back cost a batch more than the check itself."""
    require_write(request)


@router.post("/runs/{run}/batches", status_code=201, dependencies=[Depends(_may_write)],
             summary="Append a batch of metric points (and events, alerts) in one transaction")
async def post_batch(run: str, body: BatchIn, request: Request, response: Response,
                     idempotency_key: str | None = Header(
                         None, max_length=200,
                         description="Same key on every retry of one batch: stored once")
                     ) -> dict[str, Any]:
    """Queue the batch for the group committer and wait, on the event loop, for its commit.

    Only what may wait on the database goes to a worker thread (the first lookup of a run,
    a duplicate's receipt): a request thread blocked in the committer's queue held a pool
    thread for the whole commit, and the hand-offs took a fifth of the service's time under
    load.
    """
    store = store_of(request)
    known: set[str] = getattr(request.app.state, "known_run_ids", set())
    run_id = run if run in known else await run_in_threadpool(_run_id_of, request, run)
    if body.run_id is not None and body.run_id not in (run_id, run):
        raise InputError(f"run_id: body names run {body.run_id!r} but the URL names {run!r}")
    now = time.time()
    count = len(body.values)
    times = (np.full(count, now) if body.times is None
             else np.asarray(body.times, dtype=np.float64))
    batch = Batch(
        run_id=run_id,
        steps=np.asarray(body.steps, dtype=np.int64),
        times=times,
        names=body.names,
        values=np.asarray(body.values, dtype=np.float64),
        events=[StoredEvent(e.kind, e.time, e.payload, e.source, e.step, run_id)
                for e in body.events],
        alerts=[Alert(run_id, a.time, a.severity, a.title, a.message, a.metric, a.step,
                      a.value, a.detector, a.action, a.extra) for a in body.alerts],
        key=idempotency_key,
    )
    # True once committed, False: its key was stored before
    if not await asyncio.wrap_future(request.app.state.committer.submit(batch)):
        receipt = await run_in_threadpool(store.batch_receipt, run_id, idempotency_key or "")
        response.status_code = 200
        return {**(receipt or _ack(run_id, body, idempotency_key)), "duplicate": True}
    metrics = request.app.state.metrics
    metrics.points.inc(count)
    metrics.batches.inc()
    metrics.alerts_received.inc(len(body.alerts))
    return {"run_id": run_id, "points": count, "events": len(body.events),
            "alerts": len(body.alerts)}


def _ack(run_id: str, body: BatchIn, key: str | None) -> dict[str, Any]:
    return {"run_id": run_id, "points": len(body.values), "events": len(body.events),
            "alerts": len(body.alerts), "key": key}


@router.get("/runs/{run}/metrics", dependencies=[Depends(require_read)],
            summary="Metric names of a run")
def list_metrics(run: str, request: Request) -> list[str]:
    store = store_of(request)
    return store.metrics(find_run(store, run).run_id)


@router.get("/runs/{run}/series", dependencies=[Depends(require_read)],
            summary="One metric of a run, downsampled for plotting, optionally a step range")
def get_series(
    run: str, request: Request,
    metric: str = Query(..., min_length=1, description="Metric name, e.g. loss or train/loss"),
    max_points: int = Query(DEFAULT_SERIES_POINTS, ge=_MIN_SERIES_POINTS, le=MAX_SERIES_POINTS),
    method: str = Query("lttb", pattern="^(" + "|".join(DOWNSAMPLE_METHODS) + ")$"),
    start: int | None = Query(None, ge=INT64_MIN, le=INT64_MAX,
                              description="First step to include"),
    end: int | None = Query(None, ge=INT64_MIN, le=INT64_MAX,
                            description="Last step to include"),
) -> dict[str, Any]:
    store = store_of(request)
    info = find_run(store, run)
    if metric not in store.metrics(info.run_id):
        raise NotFound(f"metric {metric!r}: run {info.name!r} has no such metric")
    if start is not None and end is not None and end < start:
        raise InputError(f"end: expected a step >= start ({start}), got {end}")
    # A zoomed view is the visible range only, downsampled on its own so that detail appears.
    series = store.series(info.run_id, metric, max_points=max_points, method=method,
                          start=start, end=end)
    return jsonable({**series.as_dict(), "start": start, "end": end})


@router.get("/runs/{run}/events", dependencies=[Depends(require_read)],
            summary="Events of a run (detector findings, notes), oldest first")
def list_events(run: str, request: Request,
                kind: str | None = Query(None, description="Kind prefix, e.g. detector.")
                ) -> list[dict[str, Any]]:
    store = store_of(request)
    info = find_run(store, run)
    return jsonable([e.as_dict() for e in store.events(info.run_id, kind)])


@router.get("/alerts", dependencies=[Depends(require_read)],
            summary="Alerts, newest first, optionally of one run, one state, at least one severity")
def list_alerts(request: Request, run: str | None = Query(None),
                severity: str = Query("info", pattern="^(" + "|".join(SEVERITIES) + ")$"),
                state: str | None = Query(None, pattern="^(" + "|".join(ALERT_STATES) + ")$"),
                limit: int = Query(500, ge=1, le=10_000)) -> list[dict[str, Any]]:
    store = store_of(request)
    run_id = find_run(store, run).run_id if run is not None else None
    names = {info.run_id: info.name for info in store.runs()}
    alerts = store.alerts(run_id, state=state, min_severity=severity, limit=limit)
    return jsonable([{**a.as_dict(), "run_name": names.get(a.run, a.run)}
                     for a in reversed(alerts)])


@router.post("/alerts/{alert_id}/state", dependencies=[Depends(require_write)],
             summary="Acknowledge, resolve or reopen an alert")
def set_alert_state(alert_id: int = Path(..., ge=0, le=INT64_MAX), *,
                     body: AlertStateIn, request: Request) -> dict[str, Any]:
    store = store_of(request)
    if store.alert(alert_id) is None:
        raise NotFound(f"alert {alert_id}: no such alert")
    return jsonable(store.set_alert_state(alert_id, body.state).as_dict())
