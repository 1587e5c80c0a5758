"""Monitor throughput: buffered ``run.log``, bulk ingest, detector scan rates.

Each figure is set beside a reference measured in the same process on the same rows:

- ``run.log`` (3 metrics a call, buffered, flushed to a DuckDB file) against one sqlite3
  ``executemany`` of the same rows into a file (one transaction);
- bulk append of 1,000,000 points (``DuckDBStore.write``, one Arrow batch) against sqlite3
  ``executemany`` of the same rows, and MLflow's ``log_batch`` (local file store, 1,000 metrics
  a call, its limit) when mlflow is installed;
- each detector's vectorised ``scan`` against its own ``update`` loop.

Run: ``.venv/bin/python benchmarks/bench_monitor.py [--repeat 5] [--points 1000000]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import Timing, timed

import scaleguard.monitor as sgm
from scaleguard.monitor import Batch, DuckDBStore, RunInfo, detector_classes
from scaleguard.monitor._ingest import ingest_log, read_metric_log
from scaleguard.monitor._synthetic import synthetic_training_log


def line(label: str, seconds: Timing, points: int) -> float:
    med, lo, hi = seconds.median, seconds.min, seconds.max
    rate = points / med
    print(f"  {label:<44} {rate:>14,.0f} points/s   median {med * 1e3:9.1f} ms "
          f"(min {lo * 1e3:.1f}, max {hi * 1e3:.1f})")
    return rate


def sqlite_executemany(path: Path, rows: list[tuple[str, int, float, str, float]]) -> int:
    if path.exists():
        path.unlink()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE points (run_id TEXT, step INTEGER, time REAL, name TEXT, "
                "value REAL)")
    with con:
        con.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
    count = con.execute("SELECT count(*) FROM points").fetchone()[0]
    con.close()
    return int(count)


def bench_log(tmp: Path, calls: int, repeat: int) -> None:
    print(f"\nrun.log: {calls:,} calls of 3 metrics ({3 * calls:,} points), buffered, "
          "then flushed to a DuckDB file in one batch")
    rng = np.random.default_rng(0)
    loss = (3 + 0.01 * rng.standard_normal(calls)).tolist()
    rows = [("bench", s, 0.0, name, v) for s in range(calls)
            for name, v in (("loss", loss[s]), ("grad_norm", 1.0), ("tokens_per_s", 1e5))]
    counts: dict[str, int] = {}
    ref = line("sqlite3 executemany (reference)",
               timed(lambda: counts.__setitem__("sqlite", sqlite_executemany(tmp / "ref.sqlite",
                                                                            rows)), repeat),
               len(rows))
    for detectors in ("none", "default"):
        loop_s, total_s = [], []
        for attempt in range(repeat + 1):  # the first is a warm-up
            path = tmp / f"log-{detectors}.duckdb"
            if path.exists():
                path.unlink()
            store = DuckDBStore(path)
            run = sgm.start("bench", store=store, detectors=detectors, flush_every=None,
                            max_buffer=10 * calls)
            log = run.log
            start = time.perf_counter()
            for step in range(calls):
                log({"loss": loss[step], "grad_norm": 1.0, "tokens_per_s": 1e5}, step=step)
            logged = time.perf_counter()
            run.finish()  # the one flush: all points in one transaction
            done = time.perf_counter()
            counts[detectors] = len(store.frame(run.run_id))
            store.close()
            if attempt:
                loop_s.append(logged - start)
                total_s.append(done - start)
        rate = line(f"run.log + flush, detectors={detectors}", Timing(total_s, [], None),
                    3 * calls)
        per_call = statistics.median(loop_s) / calls * 1e6
        print(f"  {'':<44} {per_call:>14.2f} us per run.log call (buffering only); "
              f"ratio to sqlite3 {rate / ref:.2f}x")
    ok = counts["none"] == counts["default"] == counts["sqlite"] == 3 * calls
    print(f"  rows stored: {counts} -> {'same' if ok else 'DIFFERENT'}")


def bench_bulk(tmp: Path, points: int, repeat: int) -> None:
    print(f"\nbulk append of {points:,} points")
    rng = np.random.default_rng(1)
    steps = np.repeat(np.arange(points // 4 + 1), 4)[:points]
    names = (["loss", "grad_norm", "tokens_per_s", "lr"] * (points // 4 + 1))[:points]
    values = rng.standard_normal(points)
    times = 1.7e9 + steps * 0.5
    counts: dict[str, int] = {}
    batch = Batch("bulk", steps, times, names, values)
    rows = list(zip(["bulk"] * points, steps.tolist(), times.tolist(), names, values.tolist(),
                    strict=True))
    ref = line("sqlite3 executemany (reference)",
               timed(lambda: counts.__setitem__("sqlite", sqlite_executemany(
                   tmp / "bulk.sqlite", rows)), repeat), points)
    duck_s = []
    for attempt in range(repeat + 1):
        path = tmp / "bulk.duckdb"
        if path.exists():
            path.unlink()
        with DuckDBStore(path) as store:
            store.open_run(RunInfo("bulk", "bulk", "running", 0.0))
            start = time.perf_counter()
            store.write(batch)  # Arrow build + insert + commit
            if attempt:
                duck_s.append(time.perf_counter() - start)
            counts["duckdb"] = len(store.frame("bulk"))
    rate = line("DuckDBStore.write (one Arrow batch)", Timing(duck_s, [], None), points)
    print(f"  {'':<44} ratio to sqlite3 {rate / ref:.2f}x")
    mlflow_points = min(points, 10_000)  # ~2,000 points/s: more would take minutes
    try:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        print("  MLflow log_batch: mlflow is not installed (pip install mlflow-skinny); skipped")
    else:
        metrics = [Metric(names[i], float(values[i]), int(times[i] * 1000), int(steps[i]))
                   for i in range(mlflow_points)]

        def mlflow() -> None:
            client = MlflowClient(tracking_uri=tempfile.mkdtemp(dir=tmp))
            run = client.create_run(client.create_experiment("bench"))
            for start in range(0, mlflow_points, 1000):  # MLflow's limit per log_batch
                client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000])
            counts["mlflow"] = sum(len(client.get_metric_history(run.info.run_id, k))
                                   for k in ("loss", "grad_norm", "tokens_per_s", "lr"))

        ml = line(f"MLflow log_batch, file store ({mlflow_points:,} points)",
                  timed(mlflow, max(1, repeat // 2)), mlflow_points)
        print(f"  {'':<44} DuckDBStore.write / MLflow log_batch {rate / ml:.0f}x")
    print(f"  rows stored: {counts}")


def bench_file_ingest(tmp: Path, points: int, repeat: int) -> None:
    steps = points // 3
    print(f"\nfile ingest: a wide CSV of {steps:,} steps x 3 metrics ({3 * steps:,} points), "
          "read (vectorised; line by line only when a line is bad) and written to DuckDB")
    frame = synthetic_training_log(steps, seed=0)
    wide = frame.pivot(index="step", columns="name", values="value").reset_index()
    path = tmp / "log.csv"
    wide.to_csv(path, index=False, na_rep="nan")
    store_path = tmp / "ingest.duckdb"

    def go() -> None:
        if store_path.exists():
            store_path.unlink()
        log = read_metric_log(path)
        with DuckDBStore(store_path) as store:
            ingest_log(log, store, "bench")
    line("read_metric_log + ingest_log", timed(go, max(1, repeat // 2)), 3 * steps)


def bench_detectors(points: int, repeat: int) -> None:
    print(f"\ndetector scan rate on {points:,} points (vectorised scan vs the update loop on "
          f"{min(points, 100_000):,})")
    frame = synthetic_training_log(points, seed=2)
    loss = frame[frame.name == "loss"].value.to_numpy()
    n_loop = min(points, 100_000)
    for name, cls in detector_classes().items():
        if name == "forecast":
            continue  # fits a law first: benchmarked by its own fit time, not a scan rate
        steps = np.arange(points, dtype=np.float64) if name == "burn_rate" else None
        values = (loss > 3.0).astype(float) if name == "burn_rate" else loss
        scan = timed(lambda cls=cls, values=values, steps=steps: cls().scan(values, steps),
                     repeat)
        short, short_steps = values[:n_loop], np.arange(n_loop)

        def loop(cls: type = cls, short: np.ndarray = short,
                 short_steps: np.ndarray = short_steps) -> None:
            d = cls()
            for v, s in zip(short.tolist(), short_steps.tolist(), strict=True):
                d.update(v, s)
        upd = timed(loop, max(1, repeat // 2))
        print(f"  {name:<16} scan {points / scan.median:>14,.0f} points/s   update loop "
              f"{n_loop / upd.median:>11,.0f} points/s ({upd.median / n_loop * 1e6:.2f} us/point)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--log-calls", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_log(Path(tmp), args.log_calls, args.repeat)
        bench_bulk(Path(tmp), args.points, args.repeat)
        bench_file_ingest(Path(tmp), args.points, args.repeat)
        bench_detectors(args.points, args.repeat)


if __name__ == "__main__":
    main()
