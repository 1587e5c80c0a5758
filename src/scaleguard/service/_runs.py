"""Runs, metric batches, series, events and alerts: ``/api/v1/runs`` and ``/api/v1/alerts``.

The service process owns the monitor store (DuckDB allows one read-write process per file).
Every write goes through the store in one transaction that commits before the 2xx answer, so
an acknowledged batch is durable; the store's lock serialises concurrent writers.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from concurrent.futures import Future
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from scaleguard.errors import InputError
from scaleguard.monitor import Alert, Batch, RunInfo, StoredEvent, downsample
from scaleguard.monitor._downsample import DOWNSAMPLE_METHODS
from scaleguard.monitor._events import SEVERITIES
from scaleguard.service._errors import NotFound
from scaleguard.service._guards import require_read, require_write
from scaleguard.service._json import jsonable
from scaleguard.service._schemas import INT64_MAX, INT64_MIN, BatchIn, RunCreate, RunFinish

__all__ = ["DEFAULT_SERIES_POINTS", "MAX_SERIES_POINTS", "router"]

# A chart a few thousand pixels wide shows at most that many distinct points; 2,000 keeps a
# page of six charts light, and zooming in asks again for the visible range.
DEFAULT_SERIES_POINTS = 2_000
MAX_SERIES_POINTS = 20_000  # SVG charts slow down past a few tens of thousands of points
_MIN_SERIES_POINTS = 3  # LTTB keeps the first and the last point and needs one in between

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

_FIND_RUN = """
SELECT run_id, name, status, started_at, finished_at, config FROM runs
WHERE run_id = ? OR name = ? ORDER BY (run_id = ?) DESC, started_at DESC LIMIT 1
"""
_COUNT_POINTS = "SELECT count(*) FROM points WHERE run_id = ?"
_LATEST = """
SELECT run_id, name, arg_max(value, step), max(step), count(*) FROM points
{where} GROUP BY run_id, name ORDER BY run_id, name
"""
_RECEIPT = "service.batch"  # kind of the event recording that a keyed batch was stored
_SEEN_BATCH = f"""
SELECT payload FROM events WHERE run_id = ? AND kind = '{_RECEIPT}'
AND json_extract_string(payload, '$.key') = ? LIMIT 1
"""
_ALERT_COUNTS = "SELECT run_id, severity, count(*) FROM alerts GROUP BY run_id, severity"


def _store(request: Request) -> Any:
    return request.app.state.store


def find_run(store: Any, run: str, *, count: bool = False) -> RunInfo:
    """The run with id ``run``, else the newest run named ``run``; 404 when there is none.

    Its points are counted only when ``count`` is true: a batch must not pay for a scan.
    """
    with store.transaction() as con:
        row = con.execute(_FIND_RUN, [run, run, run]).fetchone()
        if row is None:
            raise NotFound(f"run {run!r}: no run with this id or name")
        points = int(con.execute(_COUNT_POINTS, [row[0]]).fetchone()[0]) if count else None
    return RunInfo(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), points)


def _latest(store: Any, run_id: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{run_id: {metric: {value, step, points}}}`` of the newest point of each metric."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    with store.transaction() as con:
        rows = con.execute(_LATEST.format(where=where), params).fetchall()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rid, metric, value, step, count in rows:
        out.setdefault(rid, {})[metric] = {"value": value, "step": step, "points": count}
    return out


def _alert_counts(store: Any) -> dict[str, dict[str, int]]:
    with store.transaction() as con:
        rows = con.execute(_ALERT_COUNTS).fetchall()
    out: dict[str, dict[str, int]] = {}
    for rid, severity, count in rows:
        out.setdefault(rid, {})[severity] = int(count)
    return out


def _run_summary(info: RunInfo, latest: dict[str, Any], alerts: dict[str, int]) -> dict[str, Any]:
    return {**info.as_dict(), "latest": latest, "alerts": alerts}


@router.post("/runs", status_code=201, dependencies=[Depends(require_write)],
             summary="Create a run (or resume one by its id)")
def create_run(body: RunCreate, request: Request) -> dict[str, Any]:
    store = _store(request)
    run_id = body.run_id or uuid.uuid4().hex[:16]
    started = body.started_at if body.started_at is not None else time.time()
    store.open_run(RunInfo(run_id, body.name, body.status, started, None, body.config))
    return find_run(store, run_id, count=True).as_dict()


@router.get("/runs", dependencies=[Depends(require_read)],
            summary="List runs, newest first, with their latest values and alert counts")
def list_runs(request: Request) -> list[dict[str, Any]]:
    store = _store(request)
    latest, alerts = _latest(store), _alert_counts(store)
    return jsonable([_run_summary(info, latest.get(info.run_id, {}), alerts.get(info.run_id, {}))
                     for info in store.runs()])


@router.get("/runs/{run}", dependencies=[Depends(require_read)],
            summary="One run (by id, or the newest of that name)")
def get_run(run: str, request: Request) -> dict[str, Any]:
    store = _store(request)
    info = find_run(store, run, count=True)
    return jsonable(_run_summary(info, _latest(store, info.run_id).get(info.run_id, {}),
                                 _alert_counts(store).get(info.run_id, {})))


@router.post("/runs/{run}/finish", dependencies=[Depends(require_write)],
             summary="Mark a run finished, failed or crashed")
def finish_run(run: str, body: RunFinish, request: Request) -> dict[str, Any]:
    store = _store(request)
    info = find_run(store, run)
    finished = body.finished_at if body.finished_at is not None else time.time()
    store.close_run(info.run_id, body.status, finished)
    return find_run(store, info.run_id, count=True).as_dict()


@router.post("/runs/{run}/batches", status_code=201, dependencies=[Depends(require_write)],
             summary="Append a batch of metric points (and events, alerts) in one transaction")
def post_batch(run: str, body: BatchIn, request: Request, response: Response,
               idempotency_key: str | None = Header(
                   None, max_length=200,
                   description="Same key on every retry of one batch: stored once")
               ) -> dict[str, Any]:
    store = _store(request)
    info = find_run(store, run)
    if body.run_id is not None and body.run_id not in (info.run_id, run):
        raise InputError(f"run_id: body names run {body.run_id!r} but the URL names {run!r}")
    now = time.time()
    count = len(body.values)
    times = (np.full(count, now) if body.times is None
             else np.asarray(body.times, dtype=np.float64))
    batch = Batch(
        run_id=info.run_id,
        steps=np.asarray(body.steps, dtype=np.int64),
        times=times,
        names=body.names,
        values=np.asarray(body.values, dtype=np.float64),
        events=[StoredEvent(e.kind, e.time, e.payload, e.source, e.step, info.run_id)
                for e in body.events],
        alerts=[Alert(info.run_id, a.time, a.severity, a.title, a.message, a.metric, a.step,
                      a.value, a.detector, a.action, a.extra) for a in body.alerts],
    )
    committer = request.app.state.committer
    if idempotency_key is None:
        committer.write(batch)  # returns once committed: an acknowledged batch is durable
    else:
        stored, other, mine = _claim_key(request, info.run_id, idempotency_key)
        if stored is not None:
            response.status_code = 200
            return stored
        if other is not None:  # the same batch is being stored right now: share its outcome
            other.result()
            response.status_code = 200
            return {**_ack(info.run_id, body, idempotency_key), "duplicate": True}
        # The receipt is written in the batch's own transaction: both or neither.
        receipt = StoredEvent(_RECEIPT, now, _ack(info.run_id, body, idempotency_key),
                              "service", None, info.run_id)
        batch = dataclasses.replace(batch, events=[*batch.events, receipt])
        try:
            committer.write(batch)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(None)
        finally:
            with request.app.state.key_lock:
                request.app.state.in_flight.pop((info.run_id, idempotency_key), None)
    metrics = request.app.state.metrics
    metrics.points.inc(count)
    metrics.batches.inc()
    metrics.alerts_received.inc(len(body.alerts))
    return {"run_id": info.run_id, "points": count, "events": len(body.events),
            "alerts": len(body.alerts)}


def _ack(run_id: str, body: BatchIn, key: str) -> dict[str, Any]:
    return {"run_id": run_id, "points": len(body.values), "events": len(body.events),
            "alerts": len(body.alerts), "key": key}


def _claim_key(request: Request, run_id: str, key: str
               ) -> tuple[dict[str, Any] | None, Future[None] | None, Future[None]]:
    """For a batch with this key: its acknowledgement if it is stored already, else the future
    of the request storing it right now, else a new future that makes this request the one
    (checked and claimed under one lock, so that two retries cannot both store it)."""
    mine: Future[None] = Future()
    with request.app.state.key_lock:
        with request.app.state.store.transaction() as con:
            seen = con.execute(_SEEN_BATCH, [run_id, key]).fetchone()
        if seen is not None:
            return {**json.loads(seen[0]), "duplicate": True}, None, mine
        other = request.app.state.in_flight.get((run_id, key))
        if other is None:
            request.app.state.in_flight[(run_id, key)] = mine
        return None, other, mine


@router.get("/runs/{run}/metrics", dependencies=[Depends(require_read)],
            summary="Metric names of a run")
def list_metrics(run: str, request: Request) -> list[str]:
    store = _store(request)
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
    store = _store(request)
    info = find_run(store, run)
    if metric not in store.metrics(info.run_id):
        raise NotFound(f"metric {metric!r}: run {info.name!r} has no such metric")
    if start is None and end is None:
        series = store.series(info.run_id, metric, max_points=max_points, method=method)
        return jsonable({**series.as_dict(), "start": None, "end": None})
    if start is not None and end is not None and end < start:
        raise InputError(f"end: expected a step >= start ({start}), got {end}")
    # A zoomed view: the visible range only, downsampled on its own so that detail appears.
    full = store.series(info.run_id, metric)
    lo = np.searchsorted(full.steps, start, "left") if start is not None else 0
    hi = np.searchsorted(full.steps, end, "right") if end is not None else len(full.steps)
    steps, values, times = full.steps[lo:hi], full.values[lo:hi], full.times[lo:hi]
    keep = downsample(steps, values, max_points, method)
    return jsonable({"run_id": info.run_id, "metric": metric,
                     "raw_points": int(hi - lo), "steps": steps[keep].tolist(),
                     "times": times[keep].tolist(), "values": values[keep].tolist(),
                     "start": start, "end": end})


@router.get("/runs/{run}/events", dependencies=[Depends(require_read)],
            summary="Events of a run (detector findings, notes), oldest first")
def list_events(run: str, request: Request,
                kind: str | None = Query(None, description="Kind prefix, e.g. detector.")
                ) -> list[dict[str, Any]]:
    store = _store(request)
    info = find_run(store, run)
    events = store.events(info.run_id, kind)
    if kind is None:  # batch receipts are bookkeeping; ask for kind=service. to see them
        events = [e for e in events if e.kind != _RECEIPT]
    return jsonable([e.as_dict() for e in events])


@router.get("/alerts", dependencies=[Depends(require_read)],
            summary="Alerts, newest first, optionally of one run and at least one severity")
def list_alerts(request: Request, run: str | None = Query(None),
                severity: str = Query("info", pattern="^(" + "|".join(SEVERITIES) + ")$"),
                limit: int = Query(500, ge=1, le=10_000)) -> list[dict[str, Any]]:
    store = _store(request)
    run_id = find_run(store, run).run_id if run is not None else None
    names = {info.run_id: info.name for info in store.runs()}
    floor = SEVERITIES.index(severity)
    alerts = [a for a in store.alerts(run_id) if SEVERITIES.index(a.severity) >= floor]
    return jsonable([{**a.as_dict(), "run_name": names.get(a.run, a.run)}
                     for a in reversed(alerts[-limit:])])
