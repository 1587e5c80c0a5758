"""The application SDK's cost on the caller's path: ``assign`` from the cache, ``record``.

Each figure is set beside a reference measured in the same process on the same unit ids:

- ``assign`` (the cached assignment, a blake2b bucket, the stage's segment admission) against
  the floor any sticky hash pays: a bare ``dict`` lookup plus the same ``blake2b`` of
  ``salt:unit``;
- ``record`` (the same bucket, the value checked, the window's cell summed under a lock)
  against a ``dict`` counter increment under a ``threading.Lock``;
- the look latency: ``record`` -> ``flush`` -> the service decides -> the client's background
  refresh holds the new state, against a real service (uvicorn on loopback, in-memory DuckDB;
  skipped without the ``serve`` extra).

The state is served by an ``httpx.MockTransport`` for the first two, so they time the client
alone. Run: ``.venv/bin/python benchmarks/bench_rollout_client.py [--calls 200000]
[--repeat 5] [--looks 20]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from _timing import timed

from scaleguard.safety import Assignment, RolloutClient
from scaleguard.safety._assignment import MetricInfo

STATE = Assignment("bench", "live", "pilot", 0, 0.3, "bench-salt-0123",
                   segments={"region": ("us", "eu", "apac"), "tier": ("free", "pro")},
                   admitted={"region": ("us", "eu")},
                   metrics=(MetricInfo("harm", "rate"), MetricInfo("latency", "mean")),
                   ttl_s=3600.0)


def mock_client() -> RolloutClient:
    body = json.dumps(STATE.as_dict()).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, content=body, headers={"etag": '"bench"'})
        return httpx.Response(200, json={"action": "continue"})

    return RolloutClient("http://bench.invalid", rollout="bench", token="t" * 20,
                         transport=httpx.MockTransport(answer), flush_interval=3600,
                         deadline=3600)


def per_call(seconds: float, calls: int) -> float:
    return seconds / calls * 1e9


def bench_calls(calls: int, repeat: int) -> None:
    client = mock_client()
    units = [f"user-{i}" for i in range(calls)]
    regions = ["us", "eu", "apac"]
    client.assign(units[0], region="us", tier="free")  # the first call reads the state
    cache = {"bench": STATE}
    salt = STATE.salt

    def assign() -> int:
        treated = 0
        for i, unit in enumerate(units):
            treated += client.assign(unit, region=regions[i % 3], tier="free") == "treatment"
        return treated

    def reference() -> int:
        total = 0
        for unit in units:
            state = cache["bench"]
            total += int.from_bytes(hashlib.blake2b(f"{salt}:{unit}".encode(),
                                                    digest_size=8).digest(), "big") % 10_000 \
                < 3000 and state.stage == "pilot"
        return total

    def record() -> None:
        for i, unit in enumerate(units):
            client.record(unit, "harm", i % 50 == 0, region=regions[i % 2], tier="pro")

    counts: dict[str, int] = {}
    lock = threading.Lock()

    def counter() -> None:
        for unit in units:
            with lock:
                counts[unit[-1]] = counts.get(unit[-1], 0) + 1

    a, ref = timed(assign, repeat), timed(reference, repeat)
    r, c = timed(record, repeat), timed(counter, repeat)
    print(f"calls {calls:,} a run, median of {repeat} runs; treatment share of the calls "
          f"{a.result / calls:.3f} (traffic 0.3, 2 of 3 regions admitted)")
    print(f"  assign from the cache       {per_call(a.median, calls):8.0f} ns/call  "
          f"(min {per_call(a.min, calls):.0f})")
    print(f"  dict + blake2b reference    {per_call(ref.median, calls):8.0f} ns/call  "
          f"ratio {a.median / ref.median:.2f}x")
    print(f"  record                      {per_call(r.median, calls):8.0f} ns/call  "
          f"(min {per_call(r.min, calls):.0f})")
    print(f"  locked dict counter         {per_call(c.median, calls):8.0f} ns/call  "
          f"ratio {r.median / c.median:.2f}x")
    began = time.perf_counter()
    client.flush()
    print(f"  flush of {(repeat + 1) * calls:,} record() calls as windows, one post: "
          f"{(time.perf_counter() - began) * 1e3:.2f} ms")
    client.close()


def bench_look(looks: int) -> None:
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "safety"))
        from rollout_live_service import TOKEN, LiveService
    except Exception as exc:  # the serve extra (or pytest) absent: say so and skip
        print(f"look latency: skipped ({type(exc).__name__}: {exc})")
        return
    service = LiveService()
    plan = {"name": "bench-look", "metrics": [{"name": "harm", "guardrail": 0.5,
                                               "margin": 0.2}],
            "segments": {"region": ["us", "eu"]},
            "stages": [{"name": "pilot", "traffic": 0.5}, {"name": "all", "traffic": 1.0}],
            "assignment": {"ttl": 0.01}}
    service.create(plan, "look")
    client = RolloutClient(service.url, rollout="look", token=TOKEN, flush_interval=3600)
    client.assign(0, region="us")
    latencies = []
    for look in range(looks):
        for unit in range(2000):
            client.record(unit, "harm", unit % 20 == 0, region="us" if unit % 2 else "eu")
        before = client.assignment.version if client.assignment else -1
        began = time.perf_counter()
        client.flush()
        while (client.assignment.version if client.assignment else -1) <= before:
            time.sleep(0.0005)
        latencies.append(time.perf_counter() - began)
        if look == 0:
            print(f"look latency: {looks} looks of 2,000 records (8 window rows a look) "
                  "against uvicorn on loopback")
    client.close()
    service.stop()
    print(f"  record -> flush -> decision -> state seen: median "
          f"{statistics.median(latencies) * 1e3:.1f} ms (min {min(latencies) * 1e3:.1f}, "
          f"max {max(latencies) * 1e3:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--looks", type=int, default=20)
    args = parser.parse_args()
    bench_calls(args.calls, args.repeat)
    if args.looks:
        bench_look(args.looks)


if __name__ == "__main__":
    main()
