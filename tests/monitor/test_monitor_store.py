import json
import math
import threading

import numpy as np
import pytest

from scaleguard.errors import InputError
from scaleguard.monitor import (
    Alert,
    Batch,
    DuckDBStore,
    RunInfo,
    Sink,
    Store,
    StoredEvent,
    open_store,
)


def _batch(run_id="r1", n=5, start=0, name="loss"):
    steps = np.arange(start, start + n)
    return Batch(run_id, steps, steps * 1.0, [name] * n, np.linspace(3, 2, n))


def test_duckdb_store_satisfies_both_protocols():
    store = DuckDBStore(":memory:")
    assert isinstance(store, Sink) and isinstance(store, Store)


def test_store_round_trip_points_events_alerts(tmp_path):
    path = tmp_path / "runs.duckdb"
    with DuckDBStore(path) as store:
        store.open_run(RunInfo("r1", "gpt", "running", 10.0, None, {"lr": 3e-4}))
        alert = Alert("gpt", 11.0, "critical", "nonfinite in loss", "value is nan", "loss", 3,
                      math.nan, "nonfinite", "restart")
        batch = Batch("r1", np.array([0, 1, 2, 3]), np.zeros(4), ["loss"] * 4,
                      np.array([3.0, 2.5, math.inf, math.nan]),
                      events=[StoredEvent("detector.nonfinite", 11.0, {"step": 3}, "test", 3)],
                      alerts=[alert])
        store.write(batch)
        store.close_run("r1", "finished", 12.0)
    with DuckDBStore(path, read_only=True) as store:
        (info,) = store.runs()
        assert (info.name, info.status, info.config, info.points) == \
            ("gpt", "finished", {"lr": 3e-4}, 4)
        series = store.series("r1", "loss")
        assert series.values[:3].tolist() == [3.0, 2.5, math.inf]
        assert math.isnan(series.values[3])
        (event,) = store.events("r1")
        assert event.kind == "detector.nonfinite" and event.payload == {"step": 3}
        (stored,) = store.alerts("r1")
        assert stored.title == alert.title and stored.step == 3 and math.isnan(stored.value)
        assert store.metrics("r1") == ["loss"]
        json.dumps(series.as_dict())  # JSON-ready even with inf and nan


def test_resolve_by_name_takes_newest_and_by_id():
    store = DuckDBStore(":memory:")
    store.open_run(RunInfo("a", "same", "running", 1.0))
    store.open_run(RunInfo("b", "same", "running", 2.0))
    assert store.resolve("same").run_id == "b"
    assert store.resolve("a").run_id == "a"
    with pytest.raises(InputError, match="--run 'nope': no such run .* runs are same"):
        store.resolve("nope")


def test_series_downsampling_keeps_a_spike_and_nans():
    store = DuckDBStore(":memory:")
    store.open_run(RunInfo("r", "big", "running", 0.0))
    n = 200_000
    values = np.sin(np.arange(n) / 1000.0)
    values[123_457] = 50.0
    values[7] = math.nan
    steps = np.arange(n)
    store.write(Batch("r", steps, steps * 1.0, ["loss"] * n, values))
    for method in ("lttb", "minmax"):
        series = store.series("r", "loss", max_points=1000, method=method)
        assert series.raw_points == n and len(series) <= 1002
        assert 123_457 in series.steps.tolist() and 7 in series.steps.tolist()
    with pytest.raises(InputError, match="method: expected one of lttb, minmax"):
        store.series("r", "loss", max_points=10, method="mean")


def test_failed_batch_is_rolled_back_entirely():
    store = DuckDBStore(":memory:")
    store.open_run(RunInfo("r", "x", "running", 0.0))
    bad = Batch("r", np.arange(3), np.zeros(3), ["loss"] * 3, np.ones(3),
                events=[StoredEvent("k", None, {}, "s")])  # time NULL violates NOT NULL
    with pytest.raises(Exception):  # noqa: B017 - duckdb's constraint error
        store.write(bad)
    assert len(store.frame("r")) == 0


def test_other_components_can_keep_tables_and_events():
    store = DuckDBStore(":memory:")
    with store.transaction() as con:
        con.execute("CREATE TABLE IF NOT EXISTS rollout_audit (stage VARCHAR, decision VARCHAR)")
        con.execute("INSERT INTO rollout_audit VALUES ('pilot', 'advance')")
    with pytest.raises(RuntimeError), store.transaction() as con:
        con.execute("INSERT INTO rollout_audit VALUES ('all', 'advance')")
        raise RuntimeError("boom")  # rolled back
    with store.transaction() as con:
        assert con.execute("SELECT count(*) FROM rollout_audit").fetchone()[0] == 1
    store.append_events([StoredEvent("rollout.audit", 5.0, {"stage": "pilot"}, "safety")])
    assert [e.payload for e in store.events(kind="rollout.")] == [{"stage": "pilot"}]
    assert store.events(kind="detector.") == []


def test_concurrent_writes_from_threads_are_all_kept():
    store = DuckDBStore(":memory:")
    store.open_run(RunInfo("r", "x", "running", 0.0))
    threads = [threading.Thread(target=lambda i=i: [store.write(_batch("r", 100, i * 1000 + k
                                                                        * 100))
                                                    for k in range(5)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.frame("r")) == 4 * 5 * 100


def test_batch_wire_form_round_trips():
    batch = Batch("r", np.array([1, 2]), np.array([0.5, 0.6]), ["a", "b"],
                  np.array([1.0, math.nan]),
                  alerts=[Alert("x", 1.0, "warning", "t", value=math.inf)])
    back = Batch.from_dict(json.loads(json.dumps(batch.as_dict())))
    assert back.steps.tolist() == [1, 2] and math.isnan(back.values[1])
    assert back.alerts[0].value == math.inf
    with pytest.raises(InputError, match="batch: malformed"):
        Batch.from_dict({"steps": []})


def test_open_store_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="expected a .duckdb file"):
        open_store(tmp_path / "runs.csv")
    with pytest.raises(InputError, match="no such file"):
        open_store(tmp_path / "absent.duckdb", read_only=True)
    (tmp_path / "junk.duckdb").write_text("not a database")
    with pytest.raises(InputError, match="cannot open as DuckDB"):
        open_store(tmp_path / "junk.duckdb")
    store = DuckDBStore(":memory:")
    store.close()
    store.close()
    with pytest.raises(InputError, match="already closed"):
        store.runs()


def test_default_store_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGUARD_STORE", str(tmp_path / "env.duckdb"))
    store = open_store()
    assert store.path == str(tmp_path / "env.duckdb")  # type: ignore[attr-defined]
    store.close()
