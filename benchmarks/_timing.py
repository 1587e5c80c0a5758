"""Timing helpers every benchmark here shares: medians of repeated runs after a warm-up.

Benchmarks are run as scripts (``python benchmarks/NAME.py``), so this folder is on ``sys.path``
and they import this module as ``from _timing import show, timed``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of each timed run, and the last run's return value."""

    seconds: list[float]
    cpu_seconds: list[float]
    result: Any

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)


def timed(fn: Callable[[], Any], repeat: int, *, warmup: bool = True) -> Timing:
    """Run ``fn`` once to warm up (unless ``warmup=False``), then ``repeat`` timed times."""
    if warmup:
        fn()
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return Timing(wall, cpu, result)


def show(name: str, timing: Timing) -> float:
    """Print the median (min, max) in milliseconds; return the median in seconds."""
    print(f"  {name:<28} median {timing.median * 1e3:9.2f} ms  (min {timing.min * 1e3:.2f}, "
          f"max {timing.max * 1e3:.2f})")
    return timing.median
