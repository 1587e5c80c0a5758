"""Every endpoint through FastAPI's test client: good requests, refused writes, bad bodies."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scaleguard.monitor import DuckDBStore
from scaleguard.service import ServiceSettings, create_app

WRITES = [
    ("post", "/api/v1/runs", {"name": "x"}),
    ("post", "/api/v1/runs/{run}/batches", {"steps": [1], "names": ["loss"], "values": [1.0]}),
    ("post", "/api/v1/runs/{run}/finish", {"status": "finished"}),
]
READS = ["/api/v1/runs", "/api/v1/runs/{run}", "/api/v1/runs/{run}/metrics",
         "/api/v1/runs/{run}/series?metric=loss", "/api/v1/runs/{run}/events",
         "/api/v1/alerts", "/metrics"]


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_is_versioned_and_documents_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in ("/api/v1/runs", "/api/v1/runs/{run}/batches", "/api/v1/runs/{run}/series",
                 "/api/v1/alerts", "/healthz", "/metrics"):
        assert path in paths
    assert client.get("/api/v1/docs").status_code == 200


def test_create_list_and_get_runs(client, auth, new_run):
    first = new_run(client, auth, "alpha", config={"lr": 3e-4, "layers": 12})
    second = new_run(client, auth, "beta")
    runs = client.get("/api/v1/runs", headers=auth).json()
    assert {r["run_id"] for r in runs} == {first, second}
    by_name = client.get("/api/v1/runs/alpha", headers=auth).json()
    assert by_name["run_id"] == first
    assert by_name["config"] == {"lr": 3e-4, "layers": 12}
    assert by_name["status"] == "running" and by_name["points"] == 0


def test_resuming_a_run_by_id_keeps_its_points(client, auth, run_id, batch):
    client.post(f"/api/v1/runs/{run_id}/batches", json=batch(5), headers=auth)
    again = client.post("/api/v1/runs", json={"name": "run-a", "run_id": run_id}, headers=auth)
    assert again.status_code == 201
    assert again.json()["points"] == 5


def test_batch_is_stored_and_summarised(client, auth, run_id, batch):
    response = client.post(f"/api/v1/runs/{run_id}/batches", json=batch(100), headers=auth)
    assert response.status_code == 201
    assert response.json() == {"run_id": run_id, "points": 100, "events": 0, "alerts": 0}
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth).json()
    assert run["points"] == 100
    assert run["latest"]["loss"] == {"value": pytest.approx(10 / 100), "step": 99, "points": 100}
    assert client.get(f"/api/v1/runs/{run_id}/metrics", headers=auth).json() == ["loss"]


def test_nan_and_inf_survive_the_round_trip(client, auth, run_id):
    body = {"steps": [1, 2, 3], "names": ["loss"] * 3, "values": [1.0, "nan", "-inf"]}
    assert client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth).status_code == 201
    series = client.get(f"/api/v1/runs/{run_id}/series?metric=loss", headers=auth).json()
    assert series["values"] == [1.0, "nan", "-inf"]
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth).json()["latest"]["loss"]["value"] \
        == "-inf"


def test_series_is_downsampled_and_keeps_a_spike(client, auth, run_id, batch):
    body = batch(10_000)
    body["values"][7_777] = 1e6  # one spike: downsampling must not hide it
    client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth)
    series = client.get(f"/api/v1/runs/{run_id}/series?metric=loss&max_points=200",
                        headers=auth).json()
    assert series["raw_points"] == 10_000
    assert len(series["steps"]) <= 200
    assert 7_777 in series["steps"]
    assert series["steps"] == sorted(series["steps"])


def test_series_zooms_into_a_step_range(client, auth, run_id, batch):
    client.post(f"/api/v1/runs/{run_id}/batches", json=batch(5_000), headers=auth)
    zoom = client.get(f"/api/v1/runs/{run_id}/series?metric=loss&start=1000&end=1099"
                      "&max_points=500", headers=auth).json()
    assert zoom["raw_points"] == 100
    assert zoom["steps"] == list(range(1000, 1100))  # fewer than max_points: every point
    assert zoom["values"][0] == pytest.approx(10 / 1001)
    minmax = client.get(f"/api/v1/runs/{run_id}/series?metric=loss&start=0&max_points=10"
                        "&method=minmax", headers=auth).json()
    assert len(minmax["steps"]) <= 10 and minmax["raw_points"] == 5_000


@pytest.mark.parametrize("query, field", [
    ("metric=loss&max_points=2", "max_points"),
    ("metric=loss&max_points=1000000", "max_points"),
    ("metric=loss&method=mean", "method"),
    ("metric=loss&start=x", "start"),
    ("max_points=100", "metric"),
    ("metric=loss&start=100000000000000000000000", "start"),
])
def test_series_refuses_bad_queries(client, auth, run_id, batch, query, field):
    client.post(f"/api/v1/runs/{run_id}/batches", json=batch(10), headers=auth)
    response = client.get(f"/api/v1/runs/{run_id}/series?{query}", headers=auth)
    assert response.status_code == 422
    assert field in response.json()["error"]


def test_series_end_before_start_and_unknown_metric(client, auth, run_id, batch):
    client.post(f"/api/v1/runs/{run_id}/batches", json=batch(10), headers=auth)
    backwards = client.get(f"/api/v1/runs/{run_id}/series?metric=loss&start=5&end=2",
                           headers=auth)
    assert backwards.status_code == 422 and "end" in backwards.json()["error"]
    unknown = client.get(f"/api/v1/runs/{run_id}/series?metric=accuracy", headers=auth)
    assert unknown.status_code == 404 and "accuracy" in unknown.json()["error"]


def test_unknown_run_is_404_naming_it(client, auth):
    for path in ("/api/v1/runs/nope", "/api/v1/runs/nope/metrics", "/api/v1/alerts?run=nope"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert "'nope'" in response.json()["error"]
    posted = client.post("/api/v1/runs/nope/batches",
                         json={"steps": [1], "names": ["a"], "values": [1]}, headers=auth)
    assert posted.status_code == 404


def test_events_and_alerts(client, auth, run_id, new_run):
    other = new_run(client, auth, "other")
    body = {"steps": [1, 2], "names": ["loss", "loss"], "values": [2.0, 40.0],
            "events": [{"kind": "note", "time": 10.0, "payload": {"text": "lr warm-up done"},
                        "step": 1}],
            "alerts": [{"time": 11.0, "severity": "critical", "title": "spike in loss",
                        "metric": "loss", "step": 2, "value": 40.0, "detector": "spike",
                        "action": "restart from the checkpoint before step 2"},
                       {"time": 12.0, "severity": "info", "title": "fyi"}]}
    assert client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth).json() \
        == {"run_id": run_id, "points": 2, "events": 1, "alerts": 2}
    client.post(f"/api/v1/runs/{other}/batches", json={
        "steps": [], "names": [], "values": [],
        "alerts": [{"time": 13.0, "severity": "warning", "title": "slow"}]}, headers=auth)
    events = client.get(f"/api/v1/runs/{run_id}/events", headers=auth).json()
    assert [(e["kind"], e["payload"], e["step"]) for e in events] \
        == [("note", {"text": "lr warm-up done"}, 1)]
    alerts = client.get("/api/v1/alerts", headers=auth).json()
    assert [a["title"] for a in alerts] == ["slow", "fyi", "spike in loss"]  # newest first
    assert alerts[2]["run_name"] == "run-a" and alerts[2]["step"] == 2
    critical = client.get("/api/v1/alerts?severity=warning", headers=auth).json()
    assert [a["title"] for a in critical] == ["slow", "spike in loss"]
    mine = client.get(f"/api/v1/alerts?run={run_id}&limit=1", headers=auth).json()
    assert [a["title"] for a in mine] == ["fyi"]
    counts = client.get(f"/api/v1/runs/{run_id}", headers=auth).json()["alerts"]
    assert counts == {"critical": 1, "info": 1}


def test_finish_marks_the_run(client, auth, run_id):
    response = client.post(f"/api/v1/runs/{run_id}/finish", json={"status": "failed"},
                           headers=auth)
    assert response.status_code == 200
    assert response.json()["status"] == "failed" and response.json()["finished_at"] > 0


def test_a_retried_batch_is_stored_once(client, auth, run_id, batch):
    headers = {**auth, "Idempotency-Key": "batch-0001"}
    first = client.post(f"/api/v1/runs/{run_id}/batches", json=batch(10), headers=headers)
    retry = client.post(f"/api/v1/runs/{run_id}/batches", json=batch(10), headers=headers)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["duplicate"] is True and retry.json()["points"] == 10
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth).json()["points"] == 10
    other = client.post(f"/api/v1/runs/{run_id}/batches", json=batch(10, 10),
                        headers={**auth, "Idempotency-Key": "batch-0002"})
    assert other.status_code == 201
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth).json()["points"] == 20
    assert client.get(f"/api/v1/runs/{run_id}/events", headers=auth).json() == []


# -- refused writes ---------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, body", WRITES)
@pytest.mark.parametrize("header", [
    None, "Bearer wrong-token-0123456789", "Basic dGVzdDp0ZXN0", "Bearer ", "test-token",
])
def test_writes_without_a_valid_token_are_refused(client, auth, run_id, method, path, body,
                                                  header):
    headers = {} if header is None else {"Authorization": header}
    before = client.get(f"/api/v1/runs/{run_id}", headers=auth).json()
    response = client.request(method, path.format(run=run_id), json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["error"]
    after = client.get(f"/api/v1/runs/{run_id}", headers=auth).json()
    assert after == before  # nothing was written
    assert len(client.get("/api/v1/runs", headers=auth).json()) == 1


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_unless_opened(make_client, auth, new_run, path):
    closed = make_client()
    run = new_run(closed, auth)
    assert closed.get(path.format(run=run)).status_code == 401
    assert closed.get(path.format(run=run), headers={"Authorization": "Bearer nope"}) \
        .status_code == 401
    opened = make_client(open_reads=True)
    run = new_run(opened, auth)
    opened.post(f"/api/v1/runs/{run}/batches",
                json={"steps": [1], "names": ["loss"], "values": [1.0]}, headers=auth)
    assert opened.get(path.format(run=run)).status_code == 200
    assert opened.post("/api/v1/runs", json={"name": "x"}).status_code == 401  # writes: still


def test_a_second_token_in_the_file_also_writes(make_client, auth):
    import hashlib

    other = "another-token-abcdefghijkl"
    opened = make_client(token_hashes=(hashlib.sha256(b"first-token-abcdefghijkl").digest(),
                                       hashlib.sha256(other.encode()).digest()))
    response = opened.post("/api/v1/runs", json={"name": "x"},
                           headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 201
    assert opened.post("/api/v1/runs", json={"name": "x"}, headers=auth).status_code == 401


# -- oversized and malformed bodies ------------------------------------------------------------
def test_oversized_body_is_refused_with_413(make_client, auth, new_run):
    small = make_client(max_body_bytes=1_000)
    run = new_run(small, auth)
    big = {"steps": list(range(500)), "names": ["loss"] * 500, "values": [1.0] * 500}
    response = small.post(f"/api/v1/runs/{run}/batches", json=big, headers=auth)
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]
    assert small.get(f"/api/v1/runs/{run}", headers=auth).json()["points"] == 0


def test_oversized_chunked_body_without_length_is_refused(make_client, auth, new_run):
    small = make_client(max_body_bytes=1_000)
    run = new_run(small, auth)

    def chunks():  # no Content-Length: the limit must count what streams in
        yield b'{"steps": ['
        for _ in range(1_000):  # 2,000 bytes in all
            yield b"1,"
        yield b'1], "names": [], "values": []}'

    response = small.post(f"/api/v1/runs/{run}/batches", content=chunks(),
                          headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_lying_content_length_is_refused(make_client, auth):
    small = make_client(max_body_bytes=1_000)
    response = small.post("/api/v1/runs", content=b'{"name": "x"}',
                          headers={**auth, "Content-Type": "application/json",
                                   "Content-Length": "not-a-number"})
    assert response.status_code == 400


@pytest.mark.parametrize("body, field", [
    ({"steps": [1, 2], "names": ["loss"], "values": [1.0, 2.0]}, "differ in length"),
    ({"steps": [1], "names": ["loss"], "values": ["high"]}, "body.values.0"),
    ({"steps": [1.5], "names": ["loss"], "values": [1.0]}, "body.steps.0"),
    ({"steps": [1], "names": [""], "values": [1.0]}, "names"),
    ({"steps": [1], "names": ["loss"]}, "body.values"),
    ({"steps": [1], "names": ["loss"], "values": [1.0], "colour": "red"}, "body.colour"),
    ({"steps": [1], "names": ["loss"], "values": [1.0], "times": [1.0, 2.0]}, "times=2"),
    ({"steps": [], "names": [], "values": [], "alerts": [{"time": 1, "severity": "loud",
                                                          "title": "x"}]},
     "body.alerts.0.severity"),
    ({"steps": [1], "names": ["loss"], "values": [1.0], "run_id": "someone-else"}, "run_id"),
    ([1, 2, 3], "body"),
    ({"steps": [2**70], "names": ["loss"], "values": [1.0]}, "body.steps.0"),  # past int64
    ({"steps": [], "names": [], "values": [], "events": [{"kind": "k", "time": 1,
                                                          "step": -(2**64)}]},
     "body.events.0.step"),
])
def test_malformed_batches_get_4xx_naming_the_field(client, auth, run_id, body, field):
    response = client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth)
    assert response.status_code in (400, 422)
    message = response.json()["error"]
    assert field in message
    assert "\n" not in message and "Traceback" not in response.text
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth).json()["points"] == 0


def test_too_many_points_in_one_batch(client, auth, run_id):
    from scaleguard.service._schemas import MAX_BATCH_POINTS

    n = MAX_BATCH_POINTS + 1
    body = {"steps": [0] * n, "names": ["l"] * n, "values": [0] * n}
    response = client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth)
    assert response.status_code == 422
    assert "body.steps" in response.json()["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"steps": [1,', b"\xff\xfe"])
def test_invalid_json_is_422(client, auth, run_id, raw):
    response = client.post(f"/api/v1/runs/{run_id}/batches", content=raw,
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"].startswith("body")


@pytest.mark.parametrize("body, field", [
    ({}, "body.name"),
    ({"name": ""}, "body.name"),
    ({"name": "x", "run_id": "has spaces"}, "body.run_id"),
    ({"name": "x", "run_id": "../etc"}, "body.run_id"),
    ({"name": "x", "config": [1, 2]}, "body.config"),
    ({"name": "x", "started_at": -1}, "body.started_at"),
])
def test_malformed_runs_get_422(client, auth, body, field):
    response = client.post("/api/v1/runs", json=body, headers=auth)
    assert response.status_code == 422
    assert field in response.json()["error"]


def test_a_bug_answers_500_without_a_trace(settings, auth):
    class BrokenStore(DuckDBStore):
        def runs(self):
            raise RuntimeError("secret internal detail /srv/scaleguard/db.py line 42")

    with TestClient(create_app(settings(), store=BrokenStore(":memory:")),
                    raise_server_exceptions=False) as broken:
        response = broken.get("/api/v1/runs", headers=auth)
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
    assert "secret" not in response.text and "Traceback" not in response.text


@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers()
                    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["steps", "names", "values", "times",
                                                       "alerts", "events", "x"]), inner,
                                      max_size=4), max_leaves=12))
def test_no_body_makes_the_service_fail(client, auth, run_id, body):
    response = client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth)
    assert response.status_code in (201, 400, 422)
    assert "error" in response.json() or response.status_code == 201


# -- Prometheus ----------------------------------------------------------------------------------
def test_metrics_expose_ingest_latest_values_and_alerts(client, auth, run_id, new_run, batch):
    body = batch(50, alerts=[{"time": 1.0, "severity": "critical", "title": "spike"}])
    client.post(f"/api/v1/runs/{run_id}/batches", json=body, headers=auth)
    client.post(f"/api/v1/runs/{run_id}/batches",
                json={"steps": [49], "names": ["grad_norm"], "values": ["nan"]}, headers=auth)
    finished = new_run(client, auth, "done")
    client.post(f"/api/v1/runs/{finished}/batches", json=batch(3), headers=auth)
    client.post(f"/api/v1/runs/{finished}/finish", json={}, headers=auth)
    client.post("/api/v1/runs", json={"name": "y"})  # refused: counted as a 401
    text = client.get("/metrics", headers=auth).text
    samples = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
               if line and not line.startswith("#")}
    assert float(samples["scaleguard_ingested_points_total"]) == 54
    assert float(samples["scaleguard_ingested_batches_total"]) == 3
    assert float(samples["scaleguard_ingested_alerts_total"]) == 1
    assert float(samples["scaleguard_committed_batches_total"]) == 3
    assert 1 <= float(samples["scaleguard_commit_transactions_total"]) <= 3
    latest = f'scaleguard_metric_latest{{metric="loss",run="run-a",run_id="{run_id}"}}'
    assert float(samples[latest]) == pytest.approx(10 / 50)
    assert math.isnan(float(samples[latest.replace("loss", "grad_norm")]))
    assert not any(finished in key for key in samples if key.startswith("scaleguard_metric"))
    alerts = (f'scaleguard_alerts{{run="run-a",run_id="{run_id}",severity="critical",'
              'state="open"}')
    assert float(samples[alerts]) == 1
    refused = ('scaleguard_request_seconds_count{method="POST",route="/api/v1/runs",'
               'status="401"}')
    assert float(samples[refused]) == 1


def test_two_apps_keep_separate_counters(settings, auth):
    first, second = create_app(settings()), create_app(settings())
    with TestClient(first) as a, TestClient(second) as b:
        run = a.post("/api/v1/runs", json={"name": "x"}, headers=auth).json()["run_id"]
        a.post(f"/api/v1/runs/{run}/batches",
               json={"steps": [1], "names": ["l"], "values": [1]}, headers=auth)
        assert "scaleguard_ingested_points_total 1.0" in a.get("/metrics", headers=auth).text
        assert "scaleguard_ingested_points_total 0.0" in b.get("/metrics", headers=auth).text


# -- durability ----------------------------------------------------------------------------------
def test_acknowledged_batches_are_in_the_file_after_close(tmp_path, settings, auth):
    path = tmp_path / "service.duckdb"
    with TestClient(create_app(settings(store=str(path)))) as writer:
        run = writer.post("/api/v1/runs", json={"name": "durable"}, headers=auth).json()["run_id"]
        for start in range(0, 300, 100):
            assert writer.post(f"/api/v1/runs/{run}/batches", headers=auth, json={
                "steps": list(range(start, start + 100)), "names": ["loss"] * 100,
                "values": [1.0] * 100}).status_code == 201
    with DuckDBStore(path, read_only=True) as store:
        assert store.runs()[0].points == 300


def test_settings_are_checked():
    from scaleguard.errors import ConfigError

    with pytest.raises(ConfigError, match="port"):
        ServiceSettings(port=70_000)
    with pytest.raises(ConfigError, match="host"):
        ServiceSettings(host=" ")
    assert ServiceSettings(host="::1").is_loopback and not ServiceSettings(host="0.0.0.0") \
        .is_loopback
    shown = ServiceSettings(token_hashes=(b"x" * 32,)).as_dict()
    assert shown["token_hashes"] == 1 and json.dumps(shown)


def test_a_million_points_are_served_downsampled_with_their_spike(settings, auth):
    import numpy as np

    from scaleguard.monitor import Batch, RunInfo

    store = DuckDBStore(":memory:")
    n = 1_000_000
    store.open_run(RunInfo("big", "big", "running", 0.0))
    steps = np.arange(n)
    values = 2 + 8 / np.sqrt(steps + 10)
    values[654_321] = 50.0  # one spike among a million points
    store.write(Batch("big", steps, np.zeros(n), ["loss"] * n, values))
    with TestClient(create_app(settings(), store=store)) as client:
        series = client.get("/api/v1/runs/big/series?metric=loss", headers=auth).json()
        zoom = client.get("/api/v1/runs/big/series?metric=loss&start=654000&end=655000",
                          headers=auth).json()
    assert series["raw_points"] == n and len(series["steps"]) <= 2_000
    assert 654_321 in series["steps"] and series["steps"][0] == 0 and series["steps"][-1] == n - 1
    assert zoom["raw_points"] == 1_001 and zoom["steps"] == list(range(654_000, 655_001))
