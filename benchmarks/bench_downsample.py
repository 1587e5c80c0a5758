"""LTTB on 1M points: tsdownsample (what the store uses) against the NumPy loop it replaced.

The reference loop is the one the tests keep (tests/monitor/test_monitor_downsample.py); both
pick the same indices on evenly spaced x, checked here too.

    .venv/bin/python benchmarks/bench_downsample.py [--points 1000000] [--out 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _timing import show, timed

from scaleguard.monitor import lttb, minmax_buckets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "monitor"))
from test_monitor_downsample import reference_lttb  # noqa: E402 - the tests' reference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--out", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    y = np.random.default_rng(0).normal(size=args.points).cumsum()
    x = np.arange(args.points, dtype=np.float64)
    print(f"{args.points:,} points down to {args.out:,}")
    old = show("NumPy LTTB loop (before)", timed(lambda: reference_lttb(x, y, args.out),
                                                 args.repeat))
    new = show("tsdownsample LTTB", timed(lambda: lttb(x, y, args.out), args.repeat))
    show("tsdownsample min/max", timed(lambda: minmax_buckets(y, args.out), args.repeat))
    same = np.array_equal(lttb(x, y, args.out), reference_lttb(x, y, args.out))
    print(f"speed-up {old / new:.1f}x; same indices: {same}")


if __name__ == "__main__":
    main()
