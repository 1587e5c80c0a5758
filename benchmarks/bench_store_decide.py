"""Cost of one rollout decision as the stored history grows: 100 vs 100,000 windows.

One decision is what ``POST /api/v1/rollouts/{id}/observations`` runs inside its transaction,
without HTTP: 8 new windows (2 arms x 2 regions x 2 metrics) screened against the stored ones,
the decision, the new windows, cell totals, state and audit record written. Measured on each
backend (a DuckDB file; PostgreSQL on a throwaway cluster when its binaries are there) after
100 and after 100,000 windows are stored, beside the reference in the same process: what the
service did before it kept totals (read every stored window, check and screen them all with
the new ones, decide from all of them; nothing written). Median of ``--repeat`` decisions.

    .venv/bin/python benchmarks/bench_store_decide.py [--small 100] [--large 100000]
        [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from scaleguard.monitor import open_store
from scaleguard.safety import (
    DatabaseRolloutStore,
    absorb_windows,
    audit_record,
    check_observations,
    decide,
    initial_state,
    parse_plan,
    screen_observations,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import pgcluster  # noqa: E402 - the tests' throwaway cluster

T0 = 1_700_000_000.0
PLAN = parse_plan({
    "name": "bench-decide", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.2, "margin": 0.05, "baseline": 0.05},
                {"name": "latency", "kind": "mean", "margin": 2.0}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "max_duration": "30d"},
               {"name": "all", "traffic": 1.0}],
    "data": {"max_age": "30d"},
})
CELLS = [(arm, region) for arm in ("control", "treatment") for region in ("us", "eu")]


def windows(first: int, count: int) -> list[dict[str, Any]]:
    """``count`` distinct windows (time-keyed, one second apart), harm and latency alike."""
    out = []
    for i in range(first, first + count):
        arm, region = CELLS[i % 4]
        base = {"stage": "pilot", "arm": arm, "region": region, "time": T0 + i // 8}
        out.append({**base, "metric": "harm", "exposures": 100, "events": 5} if i % 8 < 4 else
                   {**base, "metric": "latency", "n": 20, "mean": 10.0, "var": 4.0})
    return out


def _step(posted: list[dict[str, Any]], now: float) -> Any:
    from scaleguard.safety import RolloutState

    def step(record: Any, stored: Any) -> Any:
        state = RolloutState.from_dict(record.state)
        absorbed = absorb_windows(PLAN, state, stored, posted, now)
        decision = decide(PLAN, state, absorbed.screened, now)
        return absorbed.change(decision, audit_record(PLAN.name, decision), now)
    return step


def fill(rollout: DatabaseRolloutStore, upto: int, have: int) -> int:
    for first in range(have, upto, 10_000):  # the service's largest request
        chunk = windows(first, min(10_000, upto - first))
        rollout.decide_with(_step(chunk, T0 + (first + len(chunk)) // 8 + 60))
    return upto


def timed(rollout: DatabaseRolloutStore, have: int, repeat: int) -> tuple[float, float, int]:
    """Median seconds of one decision (store path), of the reference, and windows after."""
    ours, reference = [], []
    for _ in range(repeat):
        posted = windows(have, 8)
        now = T0 + have // 8 + 60
        began = time.perf_counter()
        rollout.decide_with(_step(posted, now))
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        old = rollout.observations()[:-8]  # what was stored before this look
        frame = pd.DataFrame(old + posted)
        frame.attrs["source"] = "rows"
        rows = check_observations(frame, PLAN)
        state = rollout.load_state()
        assert state is not None
        screened = screen_observations(rows, PLAN, now, "pilot", state.stage_started)
        decide(PLAN, state, screened, now)
        reference.append(time.perf_counter() - began)
        have += 8
    return statistics.median(ours), statistics.median(reference), have


def backend(url: str, small: int, large: int, repeat: int) -> dict[str, float]:
    with open_store(url) as store:
        rollout = DatabaseRolloutStore(store, "bench")
        rollout.create(PLAN.name, PLAN.model_dump(mode="json"), initial_state(PLAN, T0), at=T0)
        have = fill(rollout, small, 0)
        ours_small, ref_small, have = timed(rollout, have, repeat)
        have = fill(rollout, large, have)
        ours_large, ref_large, have = timed(rollout, have, repeat)
        assert len(rollout.observations()) == have
    return {"ours_small": ours_small, "ours_large": ours_large, "ref_small": ref_small,
            "ref_large": ref_large}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        results["DuckDB"] = backend(str(Path(folder) / "decide.duckdb"), args.small,
                                    args.large, args.repeat)
    bindir = pgcluster.find_bindir()
    if bindir is not None:
        cluster = pgcluster.Cluster(bindir, durable=True).start()
        try:
            results["PostgreSQL"] = backend(cluster.database(), args.small, args.large,
                                            args.repeat)
        finally:
            cluster.stop()
    print(f"{'backend':<12}{'stored':>9}{'decision ms':>13}{'reference ms':>14}")
    for name, r in results.items():
        for size, ours, ref in ((args.small, r["ours_small"], r["ref_small"]),
                                (args.large, r["ours_large"], r["ref_large"])):
            print(f"{name:<12}{size:>9,}{ours * 1e3:>13.1f}{ref * 1e3:>14.1f}")
        print(f"{name:<12}{'growth':>9}{r['ours_large'] / r['ours_small']:>12.2f}x"
              f"{r['ref_large'] / r['ref_small']:>13.1f}x")


if __name__ == "__main__":
    main()
