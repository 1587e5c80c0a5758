"""The store contract: one suite, run against DuckDB and PostgreSQL (``store_url``)."""

import gzip
import json
import math
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.errors import InputError
from scaleguard.monitor import (
    Alert,
    Batch,
    DuckDBStore,
    PostgresStore,
    RunInfo,
    Sink,
    Store,
    StoredEvent,
    open_store,
)
from scaleguard.monitor._migrations import MIGRATIONS, SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"


def _batch(run_id="r1", n=5, start=0, name="loss"):
    steps = np.arange(start, start + n)
    return Batch(run_id, steps, steps * 1.0, [name] * n, np.linspace(3, 2, n))


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


def test_both_backends_satisfy_both_protocols(store):
    assert isinstance(store, Sink) and isinstance(store, Store)
    assert store.schema_version() == SCHEMA_VERSION


def test_store_round_trip_points_events_alerts(store_url):
    with open_store(store_url) as store:
        store.open_run(RunInfo("r1", "gpt", "running", 10.0, None, {"lr": 3e-4}))
        alert = Alert("gpt", 11.0, "critical", "nonfinite in loss", "value is nan", "loss", 3,
                      math.nan, "nonfinite", "restart")
        batch = Batch("r1", np.array([0, 1, 2, 3]), np.zeros(4), ["loss"] * 4,
                      np.array([3.0, 2.5, math.inf, math.nan]),
                      events=[StoredEvent("detector.nonfinite", 11.0, {"step": 3}, "test", 3)],
                      alerts=[alert])
        assert store.write(batch) is True
        store.close_run("r1", "finished", 12.0)
    with open_store(store_url, read_only=True) as store:
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
        assert stored.state == "open" and stored.alert_id is not None
        assert store.metrics("r1") == ["loss"]
        json.dumps(series.as_dict())  # JSON-ready even with inf and nan


def test_resolve_by_name_takes_newest_and_by_id(store):
    store.open_run(RunInfo("a", "same", "running", 1.0))
    store.open_run(RunInfo("b", "same", "running", 2.0))
    assert store.resolve("same").run_id == "b"
    assert store.resolve("a").run_id == "a"
    assert store.find_run("nope") is None
    with pytest.raises(InputError, match="--run 'nope': no such run .* runs are same"):
        store.resolve("nope")


def test_runs_filter_and_page(store):
    for i in range(5):
        store.open_run(RunInfo(f"r{i}", "even" if i % 2 == 0 else "odd", "running", float(i)))
    store.close_run("r3", "failed", 9.0)
    assert [r.run_id for r in store.runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(limit=2, offset=1)] == ["r3", "r2"]
    assert [r.run_id for r in store.runs(name="even")] == ["r4", "r2", "r0"]
    assert [r.run_id for r in store.runs(status="failed")] == ["r3"]
    assert store.runs(offset=10) == []


def test_series_downsampling_keeps_a_spike_and_nans(store):
    store.open_run(RunInfo("r", "big", "running", 0.0))
    n = 50_000
    values = np.sin(np.arange(n) / 1000.0)
    values[23_457] = 50.0
    values[7] = math.nan
    steps = np.arange(n)
    store.write(Batch("r", steps, steps * 1.0, ["loss"] * n, values))
    for method in ("lttb", "minmax"):
        series = store.series("r", "loss", max_points=1000, method=method)
        assert series.raw_points == n and len(series) <= 1002
        assert 23_457 in series.steps.tolist() and 7 in series.steps.tolist()
    zoom = store.series("r", "loss", start=100, end=199)
    assert zoom.steps.tolist() == list(range(100, 200)) and zoom.raw_points == 100
    with pytest.raises(InputError, match="method: expected one of lttb, minmax"):
        store.series("r", "loss", max_points=10, method="mean")


def test_latest_values_of_each_metric(store):
    store.open_run(RunInfo("r", "run", "running", 0.0))
    store.open_run(RunInfo("s", "done", "running", 1.0))
    store.write(Batch("r", np.array([0, 2, 1]), np.zeros(3), ["loss", "loss", "lr"],
                      np.array([3.0, 1.0, 0.1])))
    store.write(Batch("s", np.array([5]), np.zeros(1), ["loss"], np.array([7.0])))
    store.close_run("s", "finished", 2.0)
    got = {(v.run_id, v.metric): (v.value, v.step, v.points) for v in store.latest()}
    assert got == {("r", "loss"): (1.0, 2, 2), ("r", "lr"): (0.1, 1, 1),
                   ("s", "loss"): (7.0, 5, 1)}
    assert {v.run_id for v in store.latest(running_only=True)} == {"r"}
    assert [v.metric for v in store.latest("s")] == ["loss"]


def test_failed_batch_is_rolled_back_entirely(store):
    store.open_run(RunInfo("r", "x", "running", 0.0))
    bad = Batch("r", np.arange(3), np.zeros(3), ["loss"] * 3, np.ones(3),
                events=[StoredEvent("k", None, {}, "s")], key="k1")  # NULL time: refused
    with pytest.raises(Exception):  # noqa: B017 - the backend's constraint error
        store.write(bad)
    assert len(store.frame("r")) == 0 and store.batch_receipt("r", "k1") is None


def test_a_keyed_batch_is_stored_once(store):
    store.open_run(RunInfo("r", "x", "running", 0.0))
    one, two = _batch("r", 5), _batch("r", 3, start=5)
    keyed = Batch(one.run_id, one.steps, one.times, one.names, one.values, key="k1")
    assert store.write_many([keyed, keyed, two]) == [True, False, True]
    assert store.write(keyed) is False
    assert len(store.frame("r")) == 8
    receipt = store.batch_receipt("r", "k1")
    assert receipt is not None and (receipt["points"], receipt["key"]) == (5, "k1")
    assert store.batch_receipt("r", "other") is None


def test_alert_states(store):
    store.open_run(RunInfo("r", "x", "running", 0.0))
    store.write(Batch("r", np.arange(0), np.zeros(0), [], np.zeros(0), alerts=[
        Alert("x", float(t), severity, f"alert {t}") for t, severity in
        enumerate(["info", "warning", "critical"])]))
    first, second, third = store.alerts("r")
    assert [a.alert_id for a in (first, second, third)] == sorted({first.alert_id,
                                                                   second.alert_id,
                                                                   third.alert_id})
    assert store.set_alert_state(second.alert_id, "acknowledged").state == "acknowledged"
    store.set_alert_state(third.alert_id, "resolved", at=5.0)
    assert [a.title for a in store.alerts(state="open")] == ["alert 0"]
    assert [a.title for a in store.alerts(min_severity="warning")] == ["alert 1", "alert 2"]
    assert [a.title for a in store.alerts(limit=2)] == ["alert 1", "alert 2"]
    counts = {(c.severity, c.state): c.count for c in store.alert_counts()}
    assert counts == {("info", "open"): 1, ("warning", "acknowledged"): 1,
                      ("critical", "resolved"): 1}
    with pytest.raises(InputError, match="state: expected one of open, acknowledged"):
        store.set_alert_state(first.alert_id, "gone")
    with pytest.raises(InputError, match="alert 999999: no such alert"):
        store.set_alert_state(999_999, "resolved")


def test_events_by_kind_prefix(store):
    store.append_events([StoredEvent("rollout.audit", 5.0, {"stage": "pilot"}, "safety"),
                         StoredEvent("rollout%x", 6.0, {}, "safety")])
    assert [e.payload for e in store.events(kind="rollout.")] == [{"stage": "pilot"}]
    assert len(store.events(kind="rollout")) == 2
    assert store.events(kind="detector.") == []


def test_concurrent_writes_from_threads_are_all_kept(store):
    store.open_run(RunInfo("r", "x", "running", 0.0))
    threads = [threading.Thread(target=lambda i=i: [store.write(_batch("r", 100, i * 1000 + k
                                                                        * 100))
                                                    for k in range(5)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.frame("r")) == 4 * 5 * 100


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=12))
def test_any_sequence_of_resent_batches_stores_each_key_once(store_url, sends):
    """Property: whatever the order and repetition of sends, each key's points land once."""
    with open_store(":memory:" if store_url.endswith(".duckdb") else store_url) as store:
        store.open_run(RunInfo("p", "x", "running", 0.0))
        before = len(store.frame("p"))
        seen: set[int] = set()
        # A fresh prefix per example: the PostgreSQL database outlives examples, and id() of a
        # collected list can come back, which made keys of two examples collide.
        prefix = uuid.uuid4().hex
        for key, size in sends:
            fresh = store.write(Batch("p", np.arange(size), np.zeros(size), ["m"] * size,
                                      np.ones(size), key=f"{prefix}-{key}"))
            assert fresh == (key not in seen)
            seen.add(key)
        sizes = {}
        for key, size in sends:
            sizes.setdefault(key, size)
        assert len(store.frame("p")) - before == sum(sizes.values())


_NAMES = ("loss", "lr", "ü/norm", "")


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(("a", "b")),
                                   st.lists(st.integers(0, len(_NAMES) - 1), max_size=6),
                                   st.none() | st.integers(0, 3)), max_size=4),
                min_size=1, max_size=5))
def test_points_read_back_as_written_whatever_the_grouping(store_url, groups):
    """Property: batches of two runs over a few metric names (new ones appearing in any group,
    keys repeating), written group by group, read back through frame, metrics, latest and runs
    exactly as a plain table of the kept points says: the series codes are invisible."""
    with open_store(":memory:" if store_url.endswith(".duckdb") else store_url) as store:
        prefix = uuid.uuid4().hex  # the PostgreSQL database outlives examples
        runs = {r: f"{prefix}-{r}" for r in ("a", "b")}
        for r, run_id in runs.items():
            store.open_run(RunInfo(run_id, r, "running", 0.0))
        kept, keys, step = [], set(), 0
        for group in groups:
            batches = []
            for r, codes, key in group:
                steps = np.arange(step, step + len(codes))
                step += len(codes)
                names = [_NAMES[c] for c in codes]
                batches.append(Batch(runs[r], steps, steps / 2.0, names, steps * 1.5,
                                     key=None if key is None else f"k{key}"))
                if key is None or (runs[r], key) not in keys:
                    kept += [(runs[r], int(s), n) for s, n in zip(steps, names, strict=True)]
                if key is not None:
                    keys.add((runs[r], key))
            store.write_many(batches)
        for run_id in runs.values():
            mine = sorted((n, s) for r, s, n in kept if r == run_id)
            frame = store.frame(run_id)
            assert list(zip(frame["name"], frame["step"], strict=True)) == mine
            assert (frame["value"] == frame["step"] * 1.5).all()
            assert store.metrics(run_id) == sorted({n for n, _ in mine})
            assert {v.metric: (v.step, v.points) for v in store.latest(run_id)} == \
                {n: (max(s for m, s in mine if m == n), sum(m == n for m, _ in mine))
                 for n in {n for n, _ in mine}}
        assert {r.run_id: r.points for r in store.runs() if r.run_id.startswith(prefix)} == \
            {run_id: sum(r == run_id for r, _, _ in kept) for run_id in runs.values()}


def test_forgotten_series_codes_are_looked_up_again(store, monkeypatch):
    """The store remembers a bounded number of series codes; past it, it forgets them, and a
    later batch of a forgotten series still lands under that series' one code."""
    import scaleguard.monitor._sqlstore as sqlstore

    monkeypatch.setattr(sqlstore, "_SERIES_REMEMBERED", 2)
    store.open_run(RunInfo("r", "x", "running", 0.0))
    for k in range(2):
        for name in ("a", "b", "c", "d", "e"):
            store.write(_batch("r", 3, start=3 * k, name=name))
    assert len(store._series_ids) <= 2
    assert store.metrics("r") == ["a", "b", "c", "d", "e"]
    assert [v.points for v in store.latest("r")] == [6] * 5


def test_two_processes_on_one_postgres_store_each_key_once(pg_url):
    """Two stores on one database (two replicas) racing to store the same keyed batches."""
    stores = [PostgresStore(pg_url), PostgresStore(pg_url)]
    stores[0].open_run(RunInfo("r", "x", "running", 0.0))
    outcomes: list[bool] = []
    lock = threading.Lock()

    def send(store: Store) -> None:
        for k in range(20):
            fresh = store.write(Batch("r", np.arange(10), np.zeros(10), [f"m{k % 4}"] * 10,
                                      np.ones(10), key=f"k{k}"))
            with lock:
                outcomes.append(fresh)

    threads = [threading.Thread(target=send, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 20 and len(stores[1].frame("r")) == 200
    # both raced to add each metric's series: one code each, every point under it
    assert stores[0].metrics("r") == ["m0", "m1", "m2", "m3"]
    assert [v.points for v in stores[1].latest("r")] == [50] * 4
    for s in stores:
        s.close()


def test_read_only_postgres_refuses_writes(pg_url):
    PostgresStore(pg_url).close()
    with PostgresStore(pg_url, read_only=True) as store:
        with pytest.raises(Exception, match="read-only"):  # noqa: B017 - psycopg's error
            store.open_run(RunInfo("r", "x", "running", 0.0))
        assert store.runs() == []


def test_postgres_errors_name_the_server():
    with pytest.raises(InputError, match=r"store postgresql://u:\*\*\*@127.0.0.1:1/x: "
                                         "cannot connect to PostgreSQL"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")


def test_a_store_written_before_schema_versions_migrates_in_place(tmp_path):
    """The fixture was written by the code of the release before versions (see
    fixtures/make_store_v0.py); it opens, is upgraded where it lies, and keeps everything."""
    path = tmp_path / "old.duckdb"
    with gzip.open(FIXTURES / "store_v0.duckdb.gz") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "schema_versions" not in tables and "batch_keys" not in tables
    with open_store(path, read_only=True) as store:  # read-only still upgrades it first
        assert store.schema_version() == SCHEMA_VERSION
        assert [r.run_id for r in store.runs()] == ["r-old-2", "r-old-1"]
        assert store.resolve("gpt-small").points == 100
        assert store.series("r-old-2", "loss").values.tolist() == [2.0, 1.5, 1.0]
        (alert,) = store.alerts()
        assert (alert.title, alert.state, alert.alert_id) == ("spike in loss", "open", 1)
        # The old service receipt became a batch key: a retry of that batch is still refused.
        assert store.batch_receipt("r-old-2", "key-0001")["points"] == 3  # type: ignore[index]
        assert [e.kind for e in store.events()] == ["detector.spike"]
        # The service's rollout tables became the store's, with their decision.
        (rollout,) = store.rollouts()
        assert rollout.rollout_id == "ro-old" and rollout.state["decisions"] == 1
        assert len(store.rollout_audit("ro-old")) == 1 and len(store.rollout_rows("ro-old")) == 2
    with open_store(path) as store:
        assert store.write(Batch("r-old-2", np.arange(3), np.zeros(3), ["loss"] * 3,
                                 np.ones(3), key="key-0001")) is False
        store.write(Batch("r-old-1", np.array([100]), np.zeros(1), ["loss"], np.ones(1),
                          alerts=[Alert("gpt-small", 2000.0, "critical", "new")]))
        assert [a.alert_id for a in store.alerts()] == [1, 2]
    with duckdb.connect(str(path), read_only=True) as con:
        assert [r[0] for r in con.execute("SELECT version FROM schema_versions "
                                          "ORDER BY version").fetchall()] == \
            [m.version for m in MIGRATIONS]


def _reads(store):
    """What every read path of the store answers for the v4 fixture's runs, JSON-ready (the
    dashboard, ``/metrics``, the ``monitor`` CLI and export read through these methods)."""
    import dataclasses

    out: dict = {"runs": [r.as_dict() for r in store.runs()],
                 "finished": [r.as_dict() for r in store.runs(status="finished", limit=1)],
                 "found": store.find_run("gpt-a", count=True).as_dict(),
                 "latest": [dataclasses.asdict(v) for v in store.latest()],
                 "latest_running": [dataclasses.asdict(v)
                                    for v in store.latest(running_only=True)],
                 "alerts": [a.as_dict() for a in store.alerts()],
                 "alert_counts": [dataclasses.asdict(c) for c in store.alert_counts()],
                 "events": [e.as_dict() for e in store.events()],
                 "receipt": store.batch_receipt("r-v4-a", "key-v4")}
    for run in ("r-v4-a", "r-v4-b"):
        out[f"metrics {run}"] = store.metrics(run)
        out[f"frame {run}"] = store.frame(run).to_dict("list")
        for metric in store.metrics(run):
            for label, kwargs in {"raw": {}, "lttb": {"max_points": 50},
                                  "minmax": {"max_points": 40, "method": "minmax"},
                                  "range": {"start": 490, "end": 510, "max_points": 8}
                                  }.items():
                out[f"series {run} {metric} {label}"] = \
                    store.series(run, metric, **kwargs).as_dict()  # type: ignore[arg-type]
    return out


def _unzipped(tmp_path, name):
    path = tmp_path / name.removesuffix(".gz")
    with gzip.open(FIXTURES / name) as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def test_a_version_4_store_migrates_in_place_and_reads_as_before(tmp_path):
    """``store_v4.duckdb.gz`` (fixtures/make_store_v4.py) keeps run ids and metric names as text
    in every point; migration 5 moves them into ``series`` codes where the file lies. Every read
    path answers exactly what the code before the migration answered
    (``store_v4_reads.json.gz``, recorded with that code), and new points of old and new series
    land beside the old ones."""
    path = _unzipped(tmp_path, "store_v4.duckdb.gz")
    expected = gzip.decompress((FIXTURES / "store_v4_reads.json.gz").read_bytes()).decode()
    with open_store(path, read_only=True) as store:  # read-only: migrated first, then read
        assert store.schema_version() == SCHEMA_VERSION
        assert json.dumps(_reads(store), sort_keys=True) + "\n" == expected
        assert store.find_run("r-v4-a", count=True).points == 3001  # type: ignore[union-attr]
    with open_store(path) as store:
        assert json.dumps(_reads(store), sort_keys=True) + "\n" == expected  # reopened
        assert store.write(Batch("r-v4-a", np.array([1]), np.zeros(1), ["loss"], np.ones(1),
                                 key="key-v4")) is False
        store.write(Batch("r-v4-b", np.array([10, 11]), np.zeros(2), ["loss", "acc"],
                          np.array([0.5, 0.9])))
        assert store.metrics("r-v4-b") == ["acc", "loss"]
        assert store.series("r-v4-b", "loss").values[-1] == 0.5
        assert [r.points for r in store.runs()] == [12, 3001]


def test_a_version_4_postgres_store_migrates_in_place(pg_url):
    """The same migration on PostgreSQL: a database at schema 4 (made here with migrations 1-4
    and points in their layout of the time) opens at the current version with every point."""
    import psycopg

    from scaleguard.monitor._migrations import statements

    steps = np.arange(300)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("CREATE TABLE schema_versions (version INTEGER PRIMARY KEY, "
                    "name VARCHAR NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        for migration in MIGRATIONS[:4]:
            for sql in statements(migration, "postgres"):
                con.execute(sql)
            con.execute("INSERT INTO schema_versions VALUES (%s, %s, 0)",
                        [migration.version, migration.name])
        con.execute("INSERT INTO runs VALUES ('r', 'old', 'running', 1, NULL, '{}')")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO points VALUES ('r', %s, %s, %s, %s)",
                            [(int(s), float(s), ("loss", "lr")[s % 2], s / 10.0)
                             for s in steps])
    with open_store(pg_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.resolve("old").points == 300 and store.metrics("r") == ["loss", "lr"]
        assert store.series("r", "lr").steps.tolist() == steps[1::2].tolist()
        store.write(Batch("r", np.array([300]), np.zeros(1), ["loss"], np.array([7.0])))
        assert store.latest("r")[0].value == 7.0 and store.frame("r").shape == (301, 4)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.duckdb"
    DuckDBStore(path).close()
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_versions VALUES (99, 'from the future', 0)")
    with pytest.raises(InputError, match="schema version 99 is newer than this scaleguard"):
        DuckDBStore(path)


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


STORE_MODULES = {"_sqlstore.py", "_duckdb.py", "_postgres.py", "_migrations.py",
                 "_rollout_sql.py"}
_SQL = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE")


def test_no_sql_outside_the_store_modules_and_no_monitor_to_service_import():
    """The one door: SQL lives in scaleguard/monitor's store modules only, and the monitor
    never imports the service (the service imports the monitor)."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "scaleguard"
    offenders = []
    for path in src.rglob("*.py"):
        if path.parent.name == "monitor" and path.name in STORE_MODULES:
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and any(word in node.value for word in _SQL):
                offenders.append(f"{path.relative_to(src)}:{node.lineno}")
            if path.parent.name == "monitor" and isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names]
                assert not any(n.startswith("scaleguard.service") for n in names), path
        assert ".transaction()" not in text or path.name in STORE_MODULES, path
    assert offenders == []
