"""One interface for running many independent jobs: serially, on local processes, or elsewhere.

Bootstrap resamples, rollout simulations and ladder rungs are embarrassingly parallel. They are
written against :class:`Executor` and never know where they run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol, TypeVar, runtime_checkable

from scaleguard.errors import InputError

__all__ = ["Executor", "Progress", "SerialExecutor", "ProcessExecutor", "get_executor"]

T = TypeVar("T")
R = TypeVar("R")

# Called after each finished item with (done, total); the CLI passes a rich progress bar's update.
Progress = Callable[[int, int], None]


@runtime_checkable
class Executor(Protocol):
    """Runs ``fn`` on every item and returns the results in the order of ``items``.

    ``fn`` and the items must be picklable (a module-level function) for backends that run in
    other processes or on other machines.
    """

    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T], *,
            progress: Progress | None = None) -> list[R]: ...


class SerialExecutor:
    """Runs every item in this process, one after the other (the reference for every backend).

    >>> SerialExecutor().map(abs, [-1, 2, -3])
    [1, 2, 3]
    """

    name = "serial"

    def map(self, fn: Callable[[T], R], items: Sequence[T], *,
            progress: Progress | None = None) -> list[R]:
        results = []
        for done, item in enumerate(items, start=1):
            results.append(fn(item))
            if progress is not None:
                progress(done, len(items))
        return results

    def __repr__(self) -> str:
        return "SerialExecutor()"


MAX_WORKERS = 1024  # worker processes of one pool; a larger count is a typo, not a machine


class ProcessExecutor:
    """Runs items on a pool of local worker processes (``workers`` defaults to the CPU count).

    Items are sent in chunks so that many small jobs do not drown in inter-process overhead.
    """

    name = "process"

    def __init__(self, workers: int | None = None, chunks_per_worker: int = 4) -> None:
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            raise InputError(f"--workers: expected 1 to {MAX_WORKERS} worker processes, "
                             f"got {workers}")
        self.workers = workers or os.cpu_count() or 1
        self.chunks_per_worker = chunks_per_worker

    def map(self, fn: Callable[[T], R], items: Sequence[T], *,
            progress: Progress | None = None) -> list[R]:
        items = list(items)
        if not items:
            return []
        chunksize = max(1, len(items) // (self.workers * self.chunks_per_worker))
        results = []
        # Never more processes than items: with the fork start method the pool starts every
        # worker up front (--workers 100000 on five runs forked 100,000 processes).
        with ProcessPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            for done, result in enumerate(pool.map(fn, items, chunksize=chunksize), start=1):
                results.append(result)
                if progress is not None:
                    progress(done, len(items))
        return results

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers})"


def get_executor(spec: str | Executor | None = None, *, workers: int | None = None,
                 option: str = "--executor") -> Executor:
    """Turn ``'serial'``, ``'process'``, ``'ray'`` or ``'ray://host:port'`` into an executor.

    An executor is returned as it is, and None means serial. ``'ray'`` is local Ray (or the
    cluster ``RAY_ADDRESS`` names), ``'ray://host:port'`` a remote cluster through Ray Client;
    Ray is imported only when the executor first runs. ``option`` names the command-line option
    in error messages.

    >>> get_executor("serial").name
    'serial'
    >>> get_executor("ray://head:10001")
    RayExecutor(address='ray://head:10001', num_cpus=1.0, num_gpus=0.0)
    """
    if spec is None:
        return SerialExecutor()
    if isinstance(spec, Executor):
        return spec
    if spec == "serial":
        return SerialExecutor()
    if spec == "process":
        return ProcessExecutor(workers)
    from scaleguard.compute._ray import RAY_ADDRESS_PREFIX, RayExecutor

    if spec == "ray":
        return RayExecutor(option=option)
    if isinstance(spec, str) and spec.startswith(RAY_ADDRESS_PREFIX) and spec != RAY_ADDRESS_PREFIX:
        return RayExecutor(address=spec, option=option)
    raise InputError(f"{option}: unknown backend {spec!r}; "
                     "expected serial, process, ray or ray://host:port")
