"""Load test of the service: N concurrent clients posting metric batches for a fixed time.

Starts ``scaleguard serve`` in a subprocess on 127.0.0.1 (a free port, a DuckDB file in a
temporary folder, a token file), then N client threads post batches of B points as fast as the
service answers, for T seconds. Afterwards it stops the server, opens the file, and checks that
the points acknowledged (2xx answers) equal the points stored: nothing lost, nothing doubled.

The reference, in the same run: the same batches written straight into a DuckDBStore in this
process (no HTTP, no JSON, no auth) for the same time. The ratio says what the service layer
costs per point; throughput and latency percentiles are printed beside it.

    .venv/bin/python benchmarks/bench_service_load.py [--clients 8] [--seconds 10]
        [--batch 500] [--repeat 3]

Bounded: it binds only to 127.0.0.1, stops by itself after repeat x (seconds + start-up), and
kills the server it started if anything goes wrong.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from scaleguard.monitor import Batch, DuckDBStore, RunInfo
from scaleguard.service._background import free_port, serve_process

TOKEN = "bench-token-0123456789abcdef"


def client(url: str, run: str, index: int, batch: int, stop_at: float,
           latencies: list[float], acked: list[int], failures: list[str]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    step = index * 1_000_000_000  # each client its own step range: duplicates would show
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        while time.monotonic() < stop_at:
            body = {"steps": list(range(step, step + batch)), "names": ["loss"] * batch,
                    "values": [1.0 / (1 + i) for i in range(batch)]}
            began = time.perf_counter()
            response = http.post(f"/api/v1/runs/{run}/batches", json=body)
            latencies.append(time.perf_counter() - began)
            if response.status_code == 201:
                acked.append(batch)
                step += batch
            else:
                failures.append(f"{response.status_code}: {response.text[:100]}")


def service_run(clients: int, seconds: float, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="scaleguard-load-") as folder:
        db, tokens = Path(folder) / "load.duckdb", Path(folder) / "tokens"
        tokens.write_text(TOKEN + "\n")
        port = free_port()
        server = serve_process(str(db), str(tokens), port)
        url = f"http://127.0.0.1:{port}"
        try:
            run = httpx.post(url + "/api/v1/runs", json={"name": "load"},
                             headers={"Authorization": f"Bearer {TOKEN}"}).json()["run_id"]
            latencies: list[float] = []
            acked: list[int] = []
            failures: list[str] = []
            began = time.monotonic()
            threads = [threading.Thread(target=client, args=(url, run, i, batch,
                                                             began + seconds, latencies, acked,
                                                             failures))
                       for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
        with DuckDBStore(db, read_only=True) as store:
            steps = store.series(run, "loss").steps
        stored, distinct = len(steps), len(np.unique(steps))
    lat = np.asarray(latencies) * 1000
    return {"acked": float(sum(acked)), "stored": float(stored), "distinct": float(distinct),
            "failures": float(len(failures)), "points_per_s": sum(acked) / elapsed,
            "batches_per_s": len(acked) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def reference_run(seconds: float, batch: int) -> float:
    """Points/s writing the same batches straight into a DuckDBStore file, one thread."""
    with tempfile.TemporaryDirectory(prefix="scaleguard-load-ref-") as folder:
        store = DuckDBStore(Path(folder) / "ref.duckdb")
        store.open_run(RunInfo("ref", "ref", "running", time.time()))
        written, step = 0, 0
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            values = np.array([1.0 / (1 + i) for i in range(batch)])  # as the clients build it
            store.write(Batch("ref", np.arange(step, step + batch), np.full(batch, time.time()),
                              ["loss"] * batch, values))
            written += batch
            step += batch
        elapsed = time.monotonic() - began
        assert store.runs()[0].points == written
        store.close()
    return written / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python "
          f"{platform.python_version()}, cpus {len(__import__('os').sched_getaffinity(0))}")
    print(f"{args.clients} clients x {args.seconds:g} s, batches of {args.batch} points, "
          f"{args.repeat} repeats; server: scaleguard serve on 127.0.0.1, DuckDB file")
    runs, refs = [], []
    for i in range(args.repeat):
        result = service_run(args.clients, args.seconds, args.batch)
        reference = reference_run(args.seconds, args.batch)
        runs.append(result)
        refs.append(reference)
        ok = (result["acked"] == result["stored"] == result["distinct"]
              and result["failures"] == 0)
        print(f"  repeat {i + 1}: {result['points_per_s']:,.0f} points/s "
              f"({result['batches_per_s']:.1f} batches/s), p50 {result['p50_ms']:.1f} ms, "
              f"p99 {result['p99_ms']:.1f} ms; acked {result['acked']:,.0f} = stored "
              f"{result['stored']:,.0f} (distinct {result['distinct']:,.0f}): "
              f"{'OK' if ok else 'MISMATCH'}; reference {reference:,.0f} points/s")
        if not ok:
            raise SystemExit("points acknowledged != points stored: the service lost or "
                             "doubled data")

    def med(key: str) -> tuple[float, float, float]:
        values = [r[key] for r in runs]
        return statistics.median(values), min(values), max(values)

    tput, p99, p50 = med("points_per_s"), med("p99_ms"), med("p50_ms")
    ref = statistics.median(refs)
    print(f"service throughput: {tput[0]:,.0f} points/s (min {tput[1]:,.0f}, max {tput[2]:,.0f})")
    print(f"latency per batch: p50 {p50[0]:.1f} ms, p99 {p99[0]:.1f} ms "
          f"(p99 min {p99[1]:.1f}, max {p99[2]:.1f})")
    print(f"reference (DuckDBStore.write in-process, 1 thread): {ref:,.0f} points/s")
    print(f"ratio service / reference: {tput[0] / ref:.2f}")
    print("points acknowledged = points stored in every repeat: OK")


if __name__ == "__main__":
    main()
