"""The look scheduler: running rollouts are decided at their plan's look_interval, once per
look however many schedulers share the store, and one broken rollout never stops the others."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from scaleguard.monitor import RolloutRecord, open_store  # noqa: E402
from scaleguard.safety import DatabaseRolloutStore, initial_state, parse_plan  # noqa: E402
from scaleguard.service import create_app  # noqa: E402
from scaleguard.service._scheduler import LookScheduler  # noqa: E402

from .conftest import settings_for  # noqa: E402

T0 = 1_800_000_000.0
PLAN = {
    "name": "loop",
    "look_interval": "10s",
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.01}],
    "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": 25},
               {"name": "all", "traffic": 1.0}],
    "srm": {"enabled": False},
}
CLEAN = [{"stage": "pilot", "arm": arm, "metric": "harm", "exposures": 50_000, "events": 500,
          "window": "w1", "time": T0 + 1} for arm in ("control", "treatment")]


def _create(store: Any, rollout_id: str, plan: dict[str, Any] = PLAN, at: float = T0) -> None:
    parsed = parse_plan(plan)
    assert DatabaseRolloutStore(store, rollout_id).create(parsed.name, plan,
                                                          initial_state(parsed, at), at)


def _store_rows(store: Any, rollout_id: str, rows: list[dict[str, Any]]) -> None:
    """Keep ``rows`` as the rollout's windows (identities, cell totals), deciding nothing."""
    from scaleguard.monitor import RolloutChange
    from scaleguard.safety import RolloutState, absorb_windows

    def keep(record: Any, stored: Any) -> RolloutChange:
        kept = absorb_windows(parse_plan(record.plan), RolloutState.from_dict(record.state),
                              stored, rows, record.updated_at + 1)
        return RolloutChange(record.state, None, 0, record.updated_at, record.updated_at,
                             kept.rows, kept.keys, kept.cells)

    store.update_rollout(rollout_id, keep)


def _actions(store: Any, rollout_id: str) -> list[str]:
    return [a["action"] for a in store.rollout_audit(rollout_id)]


def test_a_rollout_is_decided_at_each_look_without_new_observations():
    store = open_store(":memory:")
    _create(store, "ro")
    _store_rows(store, "ro", CLEAN)
    scheduler = LookScheduler(store)
    assert scheduler.tick(T0 + 5) == []  # not due: 10 s have not passed since the creation
    assert scheduler.tick(T0 + 10) == ["ro"]
    assert scheduler.tick(T0 + 15) == []  # 10 s since the look, not since the creation
    assert scheduler.tick(T0 + 20) == ["ro"]
    assert scheduler.tick(T0 + 30) == ["ro"]  # min_duration 25 s passed: the stage completes
    audit = store.rollout_audit("ro")
    assert [a["action"] for a in audit] == ["continue", "continue", "advance"]
    assert audit[0]["observations"] == f"scheduler look at {T0 + 10:.3f}"
    assert audit[-1]["stage"] == "all" and audit[-1]["state"]["decisions"] == 3


def test_finished_rollouts_are_left_alone():
    store = open_store(":memory:")
    _create(store, "ro", {**PLAN, "stages": [{"name": "only", "traffic": 1.0}]})
    _store_rows(store, "ro", [{**r, "stage": "only"} for r in CLEAN])
    scheduler = LookScheduler(store)
    assert scheduler.tick(T0 + 10) == ["ro"]
    assert store.rollout("ro").state["status"] == "complete"
    assert scheduler.tick(T0 + 100) == []


def test_two_schedulers_on_one_store_decide_each_look_once(store_url):
    """Replicas: each has its own store connection (PostgreSQL) and its own scheduler; both
    tick at every look, concurrently, and the look is decided once."""
    first = open_store(store_url)
    second = first if not store_url.startswith("postgres") else open_store(store_url)
    try:
        _create(first, "ro", {**PLAN, "stages": [{"name": "pilot", "traffic": 0.05,
                                                  "min_duration": "1h"},
                                                 {"name": "all", "traffic": 1.0}]})
        schedulers = [LookScheduler(first), LookScheduler(second)]
        looks = 6
        for look in range(1, looks + 1):
            now = T0 + 10 * look
            barrier = threading.Barrier(2)
            decided: list[list[str]] = [[], []]

            def run(i: int, at: float = now, start: threading.Barrier = barrier,
                    out: list[list[str]] = decided) -> None:
                start.wait()
                out[i] = schedulers[i].tick(at)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(decided[0] + decided[1]) == ["ro"], f"look {look}: {decided}"
        audit = first.rollout_audit("ro")
        assert len(audit) == looks
        assert [a["state"]["decisions"] for a in audit] == list(range(1, looks + 1))
    finally:
        if second is not first:
            second.close()
        first.close()


def test_a_broken_rollout_is_logged_and_the_others_are_still_decided(caplog):
    store = open_store(":memory:")
    bad = parse_plan(PLAN)
    store.create_rollout(RolloutRecord("broken", "loop", {"name": "loop", "stages": "x"},
                                       initial_state(bad, T0).as_dict(), T0, T0))
    _create(store, "good")
    with caplog.at_level(logging.ERROR, logger="scaleguard.scheduler"):
        assert LookScheduler(store).tick(T0 + 10) == ["good"]
    assert "rollout broken: the look failed" in caplog.text
    assert "rollout broken plan: metrics: missing required field" in caplog.text
    assert _actions(store, "good") == ["hold"] and _actions(store, "broken") == []


def test_a_prometheus_metric_without_a_prometheus_holds_naming_the_query():
    plan = {**PLAN, "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.01,
                                 "source": "prometheus",
                                 "queries": {"exposures": 'sum(increase(req{v="$arm"}[$window]))',
                                             "events": 'sum(increase(bad{v="$arm"}[$window]))'}}]}
    store = open_store(":memory:")
    _create(store, "ro", plan)
    LookScheduler(store).tick(T0 + 10)
    (record,) = store.rollout_audit("ro")
    assert record["action"] == "hold"
    assert 'sum(increase(req{v="control"}[10000ms]))' in record["reasons"][0]
    assert "serve --prometheus URL" in record["reasons"][0]


def test_the_app_runs_the_scheduler_in_its_lifespan():
    plan = {**PLAN, "look_interval": 0.1}
    with TestClient(create_app(settings_for())) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        _create(store, "ro", plan, at=time.time())
        deadline = time.monotonic() + 10
        while len(store.rollout_audit("ro")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(store.rollout_audit("ro")) >= 3
        from .conftest import TOKEN

        exposed = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert 'scaleguard_scheduled_looks_total{outcome="decided"}' in exposed
        assert 'scaleguard_webhook_notifications_total{outcome="dropped"} 0.0' in exposed
    with TestClient(create_app(settings_for(scheduler=False))) as client:
        store = client.app.state.store  # type: ignore[attr-defined]
        _create(store, "ro", plan, at=time.time())
        time.sleep(0.5)
        assert store.rollout_audit("ro") == []


def test_look_interval_is_a_duration_and_must_be_positive():
    assert parse_plan({**PLAN, "look_interval": "2m"}).look_interval == 120.0
    assert parse_plan({**PLAN, "look_interval": 0.2}).look_interval == 0.2
    with pytest.raises(Exception, match="look_interval"):
        parse_plan({**PLAN, "look_interval": 0})


PROM_PLAN = {
    **PLAN,
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.01, "source": "prometheus",
                 "queries": {"exposures": 'sum(increase(req{v="$arm"}[$window]))',
                             "events": 'sum(increase(bad{v="$arm"}[$window]))'}}],
}


class _Prometheus:
    """Stands in for PrometheusClient: 100 requests and 1 harmful answer per second per arm,
    or an outage."""

    def __init__(self) -> None:
        self.down = False
        self.asked: list[str] = []

    def query_all(self, queries: Any, at: float) -> list[Any]:
        from scaleguard.safety._prometheus import Sample

        self.asked.extend(q.promql for q in queries)
        if self.down:
            return ["Prometheus at http://p did not answer (ConnectError: refused)"] * len(queries)
        seconds = float(queries[0].promql.rsplit("[", 1)[1].removesuffix("ms]))")) / 1000
        return [Sample((100.0 if q.column == "exposures" else 1.0) * seconds, at)
                for q in queries]


def test_prometheus_windows_tile_the_stage_and_an_outage_holds_then_resumes():
    store = open_store(":memory:")
    _create(store, "ro", {**PROM_PLAN, "stages": [{"name": "pilot", "traffic": 0.05,
                                                   "min_duration": 35},
                                                  {"name": "all", "traffic": 1.0}]})
    prometheus = _Prometheus()
    scheduler = LookScheduler(store, prometheus=prometheus)
    assert scheduler.tick(T0 + 10) == ["ro"]
    prometheus.down = True
    assert scheduler.tick(T0 + 20) == ["ro"]
    prometheus.down = False
    assert scheduler.tick(T0 + 30) == ["ro"]
    assert scheduler.tick(T0 + 30.5) == []  # not due
    audit = store.rollout_audit("ro")
    assert [a["action"] for a in audit] == ["continue", "hold", "continue"]
    assert 'sum(increase(req{v="control"}[10000ms])) (metric harm exposures, control)' \
        in audit[1]["reasons"][0] and "did not answer" in audit[1]["reasons"][0]
    windows = sorted({r["window"] for r in store.rollout_rows("ro")})
    # The outage stored nothing; the next window covers it, so no second is lost or doubled.
    assert windows == [f"prometheus:{T0:.3f}-{T0 + 10:.3f}",
                       f"prometheus:{T0 + 10:.3f}-{T0 + 30:.3f}"]
    assert sum(r["exposures"] for r in store.rollout_rows("ro") if r["arm"] == "control") == 3000
    assert scheduler.tick(T0 + 40) == ["ro"]
    advanced = store.rollout_audit("ro")[-1]
    assert (advanced["action"], advanced["stage"]) == ("advance", "all")
    assert scheduler.tick(T0 + 50) == ["ro"]  # the new stage's first window starts at its start
    assert f"prometheus:{T0 + 40:.3f}-{T0 + 50:.3f}" in {
        r["window"] for r in store.rollout_rows("ro") if r["stage"] == "all"}


def test_an_unknown_template_variable_is_refused_at_creation_naming_the_field():
    events = 'sum(increase(bad{v="$arm",zone="$zone"}[$window]))'
    plan = {**PROM_PLAN, "metrics": [{**PROM_PLAN["metrics"][0],
                                      "queries": {**PROM_PLAN["metrics"][0]["queries"],
                                                  "events": events}}]}
    from .conftest import TOKEN

    with TestClient(create_app(settings_for(scheduler=False))) as client:
        response = client.post("/api/v1/rollouts", json={"plan": plan},
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422
    assert "plan: metrics[0].queries.events: unknown template variable $zone" in response.text


def test_posted_rows_of_a_prometheus_metric_are_refused_and_nothing_is_stored():
    from .conftest import TOKEN

    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings_for(scheduler=False))) as client:
        made = client.post("/api/v1/rollouts", json={"plan": PROM_PLAN, "rollout_id": "ro"},
                           headers=auth)
        assert made.status_code == 201, made.text
        posted = client.post("/api/v1/rollouts/ro/observations", headers=auth,
                             json={"rows": [{**CLEAN[0], "time": time.time()}]})
        assert posted.status_code == 422
        assert "rows: row 1: metric 'harm' is read from Prometheus" in posted.text
        assert client.get("/api/v1/rollouts/ro/audit", headers=auth).json() == []
