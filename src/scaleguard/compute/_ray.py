"""The Ray backend of :class:`~scaleguard.compute.Executor`: local Ray or a Ray cluster.

Ray is an optional extra (``pip install 'scaleguard[ray]'``) and is imported only when a
:class:`RayExecutor` first runs something, so ``import scaleguard.compute`` stays light.

Items are sent in chunks (several per CPU of the cluster) so that thousands of small jobs, such as
bootstrap resamples, do not each pay Ray's per-task overhead; heavy jobs such as ladder rungs come
one per task, each with the CPUs and GPUs it asks for. Results come back in the order of the items,
whatever order the tasks finish in, so a seeded computation gives the same answer as on the
serial backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from scaleguard.compute._executor import Progress
from scaleguard.errors import InputError, ScaleguardError

__all__ = ["RayExecutor", "RAY_ADDRESS_PREFIX"]

T = TypeVar("T")
R = TypeVar("R")

RAY_ADDRESS_PREFIX = "ray://"  # Ray Client address of a remote cluster's head node
# Chunks per cluster CPU: enough to balance uneven jobs, few enough to keep task overhead small
# (the same rule ProcessExecutor follows).
CHUNKS_PER_CPU = 4


def _import_ray(option: str = "--executor") -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(f"{option} ray: Ray is not installed; "
                         "install it with pip install 'scaleguard[ray]'") from None
    return ray


def _run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Any]:
    """What one Ray task runs: ``fn`` on each item of its chunk, in order."""
    return [fn(item) for item in chunk]


class RayExecutor:
    """Runs items as Ray tasks on a local Ray instance or on a cluster.

    Parameters
    ----------
    address:
        ``None`` starts (or joins, when ``RAY_ADDRESS`` is set) a local Ray instance;
        ``"auto"`` joins the cluster this machine belongs to; ``"ray://host:10001"`` connects
        to a remote cluster's head through Ray Client. Ignored when Ray is already initialised
        in this process (the caller's ``ray.init`` wins).
    num_cpus, num_gpus:
        Resources each task asks for: a ladder rung on a GPU asks for ``num_gpus=1`` and Ray
        schedules it on a node that has one free.
    chunksize:
        Items per task; by default the items are cut into about ``CHUNKS_PER_CPU`` chunks per
        CPU of the cluster.
    init_kwargs:
        Passed to ``ray.init`` when this executor starts Ray (``num_cpus``, ``runtime_env``, ...).
        On a remote cluster, scaleguard must be importable on the workers (installed there, or
        shipped with ``runtime_env={"py_modules": [...]}``).
    option:
        The command-line option that chose Ray, named in error messages (``--executor`` of
        ``fit``, ``--backend`` of ``ladder``).

    Notes
    -----
    ``fn`` and the items are pickled with cloudpickle; the same picklability rule as for
    :class:`~scaleguard.compute.ProcessExecutor` applies. A :class:`~scaleguard.errors.\
ScaleguardError` raised inside a task is raised again here as itself, not wrapped.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, chunksize: int | None = None,
                 init_kwargs: dict[str, Any] | None = None, option: str = "--executor") -> None:
        if num_cpus < 0 or num_gpus < 0:
            raise InputError(f"RayExecutor: num_cpus and num_gpus must be >= 0, "
                             f"got {num_cpus} and {num_gpus}")
        if chunksize is not None and chunksize < 1:
            raise InputError(f"RayExecutor: chunksize must be at least 1, got {chunksize}")
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.chunksize = chunksize
        self.init_kwargs = dict(init_kwargs or {})
        self.option = option

    def _ensure_ray(self) -> Any:
        ray = _import_ray(self.option)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            kwargs.update(self.init_kwargs)
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise InputError(f"{self.option} ray: cannot reach the Ray cluster at "
                                 f"{self.address!r} ({str(exc).splitlines()[0]})") from None
        return ray

    def _chunks(self, ray: Any, items: list[Any]) -> list[list[Any]]:
        size = self.chunksize
        if size is None:
            cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1.0)))
            per_task = max(self.num_cpus, 1e-9)
            slots = max(1, int(cpus / per_task)) if self.num_cpus > 0 else int(cpus)
            size = max(1, math.ceil(len(items) / (slots * CHUNKS_PER_CPU)))
        return [items[i:i + size] for i in range(0, len(items), size)]

    def map(self, fn: Callable[[T], R], items: Sequence[T], *,
            progress: Progress | None = None) -> list[R]:
        items = list(items)
        if not items:
            return []
        ray = self._ensure_ray()
        chunks = self._chunks(ray, items)
        task = ray.remote(_run_chunk).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
        fn_ref = ray.put(fn)  # shipped once, not once per task
        refs = [task.remote(fn_ref, chunk) for chunk in chunks]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[list[R] | None] = [None] * len(refs)
        pending, done = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    chunk_result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    for other in pending:
                        ray.cancel(other)
                    if isinstance(exc.cause, ScaleguardError):
                        raise exc.cause from None
                    raise
                results[index[ref]] = chunk_result
                done += len(chunk_result)
                if progress is not None:
                    progress(done, len(items))
        return [result for chunk_result in results if chunk_result is not None
                for result in chunk_result]

    def __repr__(self) -> str:
        where = "local" if self.address is None else self.address
        return f"RayExecutor(address={where!r}, num_cpus={self.num_cpus}, num_gpus={self.num_gpus})"
