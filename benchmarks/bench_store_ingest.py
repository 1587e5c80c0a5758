"""Ingest of 1M metric points, in one run: each store written directly, then the service on it.

Five ways, the same 1,000,000 points (4 metrics x 250,000 steps, one run), and DuckDB's own
ceiling beside them (``DuckDB bare insert``: the points table's columns from ready Arrow
tables, no store):

- ``sqlite3 executemany``: the reference, the same logical points as rows of a plain table
  (run_id TEXT, step, time, name TEXT, value: the strings written in every row; no index, no
  batch keys), built as Python tuples before the clock starts, one ``executemany`` of the
  prepared INSERT per transaction;
- ``DuckDB direct``: :meth:`DuckDBStore.write_many` from :class:`Batch` objects, all of its
  work on the clock: the batch key claimed in ``batch_keys``, names coded, series codes looked
  up (inserted the first time), one Arrow insert of (series_id, step, time, value) per
  transaction;
- ``PostgreSQL COPY``: :meth:`PostgresStore.write_many` the same way, points through binary
  ``COPY`` into the indexed ``points`` table, on a throwaway cluster (initdb, pg_ctl; fsync
  on, as a server would run);
- ``service on DuckDB`` / ``service on PostgreSQL``: ``scaleguard serve`` in a subprocess,
  8 client threads posting 500-point keyed batches (pre-encoded JSON) until 1M points are in;
  p50/p99 latency per batch beside the throughput.

Direct writes go in transactions of ``--direct-batch`` points (default 100,000), and once more
in the service's own 500-point batches, one transaction each (the service's reference: what its
store does with the same batches without HTTP, JSON and validation). Every mode checks that the
store holds exactly 1M points afterwards.

    .venv/bin/python benchmarks/bench_store_ingest.py [--points 1000000] [--clients 8]
        [--batch 500] [--direct-batch 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from scaleguard.monitor import Batch, RunInfo, open_store
from scaleguard.service._background import free_port, serve_process

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import pgcluster  # noqa: E402 - the tests' throwaway cluster

TOKEN = "bench-token-0123456789abcdef"
METRICS = ("loss", "grad_norm", "lr", "tokens_per_s")


def points(n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    steps = np.repeat(np.arange(n // len(METRICS), dtype=np.int64), len(METRICS))
    names = list(METRICS) * (n // len(METRICS))
    values = np.random.default_rng(0).normal(size=len(steps))
    return steps, names, values


def batches(n: int, size: int) -> list[Batch]:
    steps, names, values = points(n)
    times = np.full(len(steps), 1.8e9)
    return [Batch("bench", steps[i:i + size], times[i:i + size], names[i:i + size],
                  values[i:i + size], key=uuid.uuid4().hex) for i in range(0, len(steps), size)]


def direct(store_url: str, n: int, size: int) -> float:
    work = batches(n, size)
    store = open_store(store_url)
    store.open_run(RunInfo("bench", "bench", "running", 0.0))
    began = time.perf_counter()
    for b in work:
        store.write_many([b])
    took = time.perf_counter() - began
    stored = store.runs()[0].points
    store.close()
    assert stored == n, (store_url, stored)
    return n / took


def sqlite_executemany(path: Path, n: int, size: int) -> float:
    steps, names, values = points(n)
    rows = list(zip(["bench"] * len(steps), steps.tolist(), [1.8e9] * len(steps), names,
                    values.tolist(), strict=True))
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE points (run_id TEXT, step INTEGER, time REAL, name TEXT, "
                "value REAL)")
    began = time.perf_counter()
    for i in range(0, len(rows), size):
        with con:  # one transaction per batch, as the stores do
            con.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows[i:i + size])
    took = time.perf_counter() - began
    assert con.execute("SELECT count(*) FROM points").fetchone()[0] == n
    con.close()
    return n / took


def duckdb_floor(path: Path, n: int, size: int) -> float:
    """What DuckDB itself takes: the points table's four numeric columns, inserted from Arrow
    tables built before the clock starts, one transaction each, with no store around it (no
    keys, no name coding): the ceiling of ``DuckDB direct`` on this machine."""
    import duckdb
    import pyarrow as pa

    steps, names, values = points(n)
    codes = {name: i for i, name in enumerate(METRICS)}
    series = np.asarray([codes[name] for name in names], dtype=np.int32)
    tables = [pa.table({"series_id": series[i:i + size], "step": steps[i:i + size],
                        "time": np.full(len(steps[i:i + size]), 1.8e9),
                        "value": values[i:i + size]}) for i in range(0, n, size)]
    con = duckdb.connect(str(path))
    con.execute("SET checkpoint_threshold = '256MB'")  # as DuckDBStore sets it
    con.execute("CREATE TABLE points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, "
                "time DOUBLE NOT NULL, value DOUBLE)")
    began = time.perf_counter()
    for table in tables:
        con.execute("BEGIN TRANSACTION")
        con.register("ready", table)
        con.execute("INSERT INTO points SELECT * FROM ready")
        con.unregister("ready")
        con.execute("COMMIT")
    took = time.perf_counter() - began
    assert con.execute("SELECT count(*) FROM points").fetchone() == (n,)
    con.close()
    return n / took


def service(store_url: str, folder: Path, n: int, clients: int, size: int
            ) -> tuple[float, float, float]:
    tokens = folder / "tokens"
    tokens.write_text(TOKEN + "\n")
    port = free_port()
    server = serve_process(store_url, str(tokens), port)
    url = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        run = httpx.post(url + "/api/v1/runs", json={"name": "bench"}, headers=headers,
                         timeout=30).json()["run_id"]
        bodies = [json.dumps({"steps": b.steps.tolist(), "names": list(b.names),
                              "values": b.values.tolist(),
                              "times": b.times.tolist()}).encode() for b in batches(n, size)]
        latencies: list[float] = []
        lock = threading.Lock()

        def post(index: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                for body in bodies[index::clients]:
                    t0 = time.perf_counter()
                    answer = http.post(f"/api/v1/runs/{run}/batches", content=body,
                                       headers={"Idempotency-Key": uuid.uuid4().hex})
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                    assert answer.status_code == 201, answer.text

        threads = [threading.Thread(target=post, args=(i,)) for i in range(clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - began
        stored = httpx.get(f"{url}/api/v1/runs/{run}", headers=headers, timeout=30).json()
        assert stored["points"] == n, stored["points"]
    finally:
        server.kill()
        server.wait(timeout=30)
    ordered = sorted(latencies)
    return (n / took, statistics.median(ordered) * 1e3,
            ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--direct-batch", type=int, default=100_000)
    args = parser.parse_args()
    n = args.points - args.points % len(METRICS)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{n:,} points; direct batches of {args.direct_batch:,}; service: {args.clients} "
          f"clients x {args.batch}-point batches")
    bindir = pgcluster.find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql")
    cluster = pgcluster.Cluster(bindir, durable=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="scaleguard-ingest-") as tmp:
            folder = Path(tmp)
            rates = {
                "sqlite3 executemany": sqlite_executemany(folder / "ref.sqlite", n,
                                                          args.direct_batch),
                "DuckDB direct": direct(str(folder / "direct.duckdb"), n, args.direct_batch),
                "DuckDB bare insert": duckdb_floor(folder / "bare.duckdb", n, args.direct_batch),
                "PostgreSQL COPY": direct(cluster.database(), n, args.direct_batch),
                "DuckDB direct, small": direct(str(folder / "small.duckdb"), n, args.batch),
                "PostgreSQL COPY, small": direct(cluster.database(), n, args.batch),
            }
            for name, rate in rates.items():
                print(f"  {name:<24} {rate:12,.0f} points/s")
            for backend, url in (("DuckDB", str(folder / "service.duckdb")),
                                 ("PostgreSQL", cluster.database())):
                rate, p50, p99 = service(url, folder, n, args.clients, args.batch)
                big = rates["DuckDB direct" if backend == "DuckDB" else "PostgreSQL COPY"]
                small = rates[f"{'DuckDB direct' if backend == 'DuckDB' else 'PostgreSQL COPY'}"
                              ", small"]
                print(f"  service on {backend:<11} {rate:12,.0f} points/s  p50 {p50:6.1f} ms  "
                      f"p99 {p99:6.1f} ms per batch; {rate / small:.2f}x its store direct in "
                      f"the same batches, {rate / big:.2f}x in large ones")
            print(f"DuckDB direct / sqlite3: "
                  f"{rates['DuckDB direct'] / rates['sqlite3 executemany']:.1f}x "
                  f"(DuckDB bare insert / sqlite3: "
                  f"{rates['DuckDB bare insert'] / rates['sqlite3 executemany']:.1f}x); "
                  f"PostgreSQL COPY / sqlite3: "
                  f"{rates['PostgreSQL COPY'] / rates['sqlite3 executemany']:.1f}x")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
