"""End-to-end look latency: from the scheduler's tick to the decision stored.

A look reads the rollout, asks Prometheus for the window (``source: prometheus``), checks and
screens the stored windows, decides, and commits state, audit record and windows in one
transaction under the rollout's lock. Timed here, per rollout:

1. a rollout fed by posted observations (no network): tick -> stored;
2. a rollout fed by a real Prometheus (Debian's, started here, scraping the end-to-end test's
   model server; skipped when ``prometheus`` is not installed): tick -> stored, including its
   8 queries (2 arms x 2 regions x 2 columns);

each against the reference ``decide()`` alone on the same rows in the same process (the pure
controller's share of a look). A look is due at most ``look_interval / 4`` (at most 1 s)
before the tick that takes it: that is the scheduling lateness on top of these figures.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_scheduler_look.py [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import timed

from scaleguard.monitor import RolloutChange, open_store
from scaleguard.safety import (
    DatabaseRolloutStore,
    RolloutState,
    check_observations,
    decide,
    initial_state,
    parse_plan,
    screen_observations,
)
from scaleguard.safety._prometheus import PrometheusClient
from scaleguard.service._scheduler import LookScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

INTERVAL = 1.0
QUERIES = {
    "exposures": 'sum(increase(requests_total{version="$arm",region="$region"}[$window]))',
    "events": 'sum(increase(harmful_total{version="$arm",region="$region"}[$window]))',
}


def _plan(source: str) -> dict[str, Any]:
    metric: dict[str, Any] = {"name": "harm", "margin": 0.03, "strict": True}
    if source == "prometheus":
        metric |= {"source": "prometheus", "queries": QUERIES}
    return {"name": f"bench-{source}", "look_interval": INTERVAL, "metrics": [metric],
            "segments": {"region": ["us", "eu"]}, "srm": {"enabled": False},
            "prometheus": {"arms": {"control": "v1", "treatment": "v2"}},
            "stages": [{"name": "pilot", "traffic": 0.01, "min_duration": "1d"},
                       {"name": "all", "traffic": 1.0}]}


def _rows(windows: int, at: float) -> list[dict[str, Any]]:
    return [{"stage": "pilot", "arm": arm, "metric": "harm", "region": region,
             "exposures": 1000, "events": 20, "window": f"w{w}", "time": at}
            for w in range(windows) for arm in ("control", "treatment")
            for region in ("us", "eu")]


def _create(store: Any, plan: dict[str, Any], at: float, rows: list[dict[str, Any]]) -> str:
    parsed = parse_plan(plan)
    rollout = DatabaseRolloutStore(store, parsed.name)
    rollout.create(parsed.name, plan, initial_state(parsed, at), at)
    store.update_rollout(parsed.name, lambda record, _: RolloutChange(
        record.state, None, 0, record.updated_at, record.updated_at, rows))
    return parsed.name


def _reference(store: Any, rollout_id: str, now: float) -> float:
    """decide() alone on the rollout's stored rows: median seconds."""
    import pandas as pd

    record = store.rollout(rollout_id)
    plan = parse_plan(record.plan)
    state = RolloutState.from_dict(record.state)
    frame = pd.DataFrame(store.rollout_rows(rollout_id))
    screened = screen_observations(check_observations(frame, plan), plan, now, "pilot",
                                   state.stage_started)
    return timed(lambda: decide(plan, state, screened, now), 50).median


def observations_look(repeat: int) -> None:
    store = open_store(":memory:")
    t0 = time.time()
    rollout_id = _create(store, _plan("observations"), t0, _rows(60, t0))
    scheduler = LookScheduler(store)
    latencies = []
    for look in range(1, repeat + 1):
        began = time.perf_counter()
        assert scheduler.tick(t0 + look * INTERVAL) == [rollout_id]
        latencies.append(time.perf_counter() - began)
    look_s = statistics.median(latencies)
    reference = _reference(store, rollout_id, t0 + repeat * INTERVAL)
    print(f"posted observations (240 stored windows): tick -> stored {look_s * 1e3:.1f} ms "
          f"per look (min {min(latencies) * 1e3:.1f}, max {max(latencies) * 1e3:.1f}); "
          f"decide() alone {reference * 1e3:.1f} ms; ratio {look_s / reference:.1f}x")


def prometheus_look(repeat: int) -> None:
    from servers import Prometheus, model_server

    if shutil.which("prometheus") is None:
        print("prometheus: skipped (Debian's prometheus is not installed)")
        return
    import httpx

    with tempfile.TemporaryDirectory() as folder, model_server() as model_url:
        prometheus = Prometheus(Path(folder), model_url.removeprefix("http://"))
        prometheus.start()
        try:
            with httpx.Client(base_url=model_url) as http:
                for region in ("us", "eu"):
                    for version in ("v1", "v2"):
                        http.get("/chat", params={"version": version, "region": region,
                                                  "n": 1000})
            time.sleep(2 * INTERVAL)  # two scrapes at least before the first window
            store = open_store(":memory:")
            client = PrometheusClient(prometheus.url)
            rollout_id = _create(store, _plan("prometheus"), time.time() - INTERVAL, [])
            scheduler = LookScheduler(store, prometheus=client)
            latencies, queries = [], []
            for _ in range(repeat):
                began = time.perf_counter()
                assert scheduler.tick(time.time()) == [rollout_id]
                latencies.append(time.perf_counter() - began)
                one = time.perf_counter()
                client.query('sum(increase(requests_total{version="v1"}[1s]))', time.time())
                queries.append(time.perf_counter() - one)
                time.sleep(INTERVAL)
            client.close()
        finally:
            prometheus.stop()
    look_s = statistics.median(latencies)
    reference = _reference(store, rollout_id, time.time())
    holds = sum(a["action"] == "hold" for a in store.rollout_audit(rollout_id))
    print(f"real Prometheus (8 queries per look): tick -> stored {look_s * 1e3:.1f} ms per "
          f"look (min {min(latencies) * 1e3:.1f}, max {max(latencies) * 1e3:.1f}); one query "
          f"{statistics.median(queries) * 1e3:.1f} ms; decide() alone {reference * 1e3:.1f} "
          f"ms; ratio {look_s / reference:.1f}x; {holds} of {repeat} looks held (missing "
          "data: a window in which Prometheus had fewer than two samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    observations_look(args.repeat)
    prometheus_look(args.repeat)


if __name__ == "__main__":
    main()
