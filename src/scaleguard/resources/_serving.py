"""Serving: KV cache size, prefill and decode time from a roofline, and devices for a load.

Each step takes the longer of its compute time (FLOPs / peak) and its memory time (bytes read /
bandwidth): decode at small batch reads every weight once per token and is memory-bound;
prefill of a long prompt is compute-bound. Figures are ideal (100% of peak and bandwidth) unless
an ``efficiency`` below one is given.

>>> from scaleguard.resources import model_preset
>>> kv_cache_bytes_per_token(model_preset("llama-3-8b"))
131072
>>> step = decode_step(model_preset("llama-7b"), get_device("a100-80gb"), batch=1, context=1)
>>> round(step.seconds * 1e3, 1), step.bound  # ms per token
(6.6, 'memory')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

from scaleguard.errors import InputError
from scaleguard.resources._checks import check_fraction, check_positive
from scaleguard.resources._hardware import Device, get_device
from scaleguard.resources._memory import USABLE_MEMORY_FRACTION, Layout, layout_problem
from scaleguard.resources._model import ModelShape
from scaleguard.units import format_quantity

__all__ = [
    "RooflineStep",
    "ServingPlan",
    "decode_step",
    "kv_cache_bytes_per_token",
    "plan_serving",
    "prefill_step",
]

# Inference FLOPs: 2 per parameter per token (one multiply-add), plus attention's QK^T and AV
# over the context, 2·2·L·h per token of context (Kaplan et al. 2020, Table 1).
FLOPS_PER_PARAM_FORWARD: Final = 2
ATTENTION_FLOPS_PER_CONTEXT: Final = 4
# Batch sizes tried when planning, powers of two as serving engines schedule them.
BATCH_SIZES: Final[tuple[int, ...]] = tuple(2**i for i in range(11))  # 1 .. 1024


def kv_cache_bytes_per_token(model: ModelShape, dtype_bytes: int = 2) -> int:
    """KV cache per token: 2 (K and V) · layers · kv_heads · head_dim · bytes."""
    return 2 * model.layers * model.kv_heads * model.head_dim * dtype_bytes


@dataclass(frozen=True)
class RooflineStep:
    """One forward step: its FLOPs, bytes read, the time each needs, and which one binds."""

    flops: float
    bytes: float
    compute_seconds: float
    memory_seconds: float

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds, "bound": self.bound}

    def __repr__(self) -> str:
        return (f"RooflineStep({format_quantity(self.seconds, 'duration', digits=3)}, "
                f"{self.bound}-bound, {self.flops:.3g} FLOP, "
                f"{format_quantity(self.bytes, 'bytes', digits=3)} read)")


def _step(flops: float, bytes_read: float, device: Device, tp: int, dtype: str,
          efficiency: float) -> RooflineStep:
    peak = device.peak(dtype) * tp * efficiency
    bandwidth = device.memory_bandwidth * tp * efficiency
    return RooflineStep(flops, bytes_read, flops / peak, bytes_read / bandwidth)


def decode_step(model: ModelShape, device: Device, *, batch: int, context: float, tp: int = 1,
                weight_bytes: int = 2, kv_bytes: int = 2, dtype: str = "bf16",
                efficiency: float = 1.0) -> RooflineStep:
    """One decode step: ``batch`` sequences each emit a token, attending to ``context`` tokens.

    Reads every weight once and each sequence's KV cache; ``tp`` devices share the work.
    """
    b = check_positive(batch, "batch")
    c = check_positive(context, "context")
    flops = b * (FLOPS_PER_PARAM_FORWARD * model.params
                 + ATTENTION_FLOPS_PER_CONTEXT * model.layers * model.hidden * c)
    bytes_read = model.params * weight_bytes + b * c * kv_cache_bytes_per_token(model, kv_bytes)
    return _step(flops, bytes_read, device, tp, dtype, check_fraction(efficiency, "efficiency"))


def prefill_step(model: ModelShape, device: Device, *, batch: int, prompt: int, tp: int = 1,
                 weight_bytes: int = 2, kv_bytes: int = 2, dtype: str = "bf16",
                 efficiency: float = 1.0) -> RooflineStep:
    """Prefill of ``batch`` prompts of ``prompt`` tokens (causal: half the full attention)."""
    b = check_positive(batch, "batch")
    p = check_positive(prompt, "prompt")
    flops = b * p * (FLOPS_PER_PARAM_FORWARD * model.params
                     + ATTENTION_FLOPS_PER_CONTEXT * model.layers * model.hidden * p / 2)
    bytes_read = model.params * weight_bytes + b * p * kv_cache_bytes_per_token(model, kv_bytes)
    return _step(flops, bytes_read, device, tp, dtype, check_fraction(efficiency, "efficiency"))


@dataclass(frozen=True)
class ServingPlan:
    """Devices needed to serve ``rate`` requests/s of ``prompt`` + ``output`` tokens.

    One replica spans ``tp`` devices and runs ``batch`` sequences at once; a request takes its
    prefill plus ``output`` decode steps (``latency``). Replicas = ceil(rate / per-replica rate).
    ``feasible`` is False when no batch size meets the latency target within memory; then
    ``reason`` says why and the counts describe the smallest replica tried.
    ``tokens_per_second_per_device`` counts output tokens.
    """

    model: str
    device: str
    rate: float
    prompt: int
    output: int
    max_latency: float | None
    tp: int
    batch: int
    prefill_seconds: float
    decode_seconds_per_token: float
    latency: float
    requests_per_second_per_replica: float
    tokens_per_second_per_device: float
    replicas: int
    devices: int
    memory_per_device: float
    feasible: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        if not self.feasible:
            return f"ServingPlan({self.model} on {self.device}: infeasible, {self.reason})"
        return (f"ServingPlan({self.model} on {self.device}: {self.devices} devices = "
                f"{self.replicas} replicas x tp={self.tp}, batch {self.batch}, latency "
                f"{format_quantity(self.latency, 'duration', digits=3)}, "
                f"{self.tokens_per_second_per_device:,.0f} tokens/s per device)")


def _min_tp(model: ModelShape, device: Device, weight_bytes: int, usable: float) -> int:
    """Smallest tensor-parallel size whose devices hold the weights with room to spare."""
    for tp in (1, 2, 4, 8, 16, 32, 64):
        if layout_problem(model, Layout(tp=tp)) is not None:
            continue
        if model.params * weight_bytes / tp < usable * device.memory_bytes:
            return tp
    raise InputError(f"model: {model.name}'s weights do not fit on 64 x {device.key}")


# Weights may take at most this share of usable memory when choosing tp, leaving the rest for
# the KV cache (vLLM's default gpu_memory_utilization is 0.9 of the device; half of what remains
# after weights as a floor keeps useful batch sizes).
_WEIGHT_SHARE: Final = 0.5


def plan_serving(model: ModelShape, device: str | Device, *, rate: float, prompt: int,
                 output: int, max_latency: float | None = None, tp: int | None = None,
                 batch: int | None = None,
                 weight_bytes: int = 2, kv_bytes: int = 2, dtype: str = "bf16",
                 efficiency: float = 1.0,
                 usable_fraction: float = USABLE_MEMORY_FRACTION) -> ServingPlan:
    """Devices needed to serve a load, choosing the largest batch that meets the latency target.

    Parameters
    ----------
    rate:
        Target requests per second.
    prompt, output:
        Tokens in and out per request.
    max_latency:
        End-to-end latency target per request (s); None for throughput only.
    tp:
        Devices per replica; by default the fewest that hold the weights in half the memory.
    batch:
        Sequences per replica; by default the largest power of two that fits and meets the target.
    efficiency:
        Share of peak FLOP/s and bandwidth reached (1.0 = the ideal roofline).
    """
    hardware = get_device(device)
    target = check_positive(rate, "rate")
    p = int(check_positive(prompt, "prompt"))
    o = int(check_positive(output, "output"))
    if max_latency is not None:
        check_positive(max_latency, "latency")
    usable = check_fraction(usable_fraction, "usable_fraction")
    if tp is None:
        tp = _min_tp(model, hardware, weight_bytes, usable * _WEIGHT_SHARE)
    else:
        problem = layout_problem(model, Layout(tp=int(check_positive(tp, "tp"))))
        if problem is not None:
            raise InputError(problem)
    budget = usable * hardware.memory_bytes * tp
    weights = model.params * weight_bytes
    kv_per_sequence = (p + o) * kv_cache_bytes_per_token(model, kv_bytes)
    best: ServingPlan | None = None
    first: ServingPlan | None = None
    sizes = BATCH_SIZES if batch is None else (int(check_positive(batch, "batch")),)
    for size in sizes:
        memory = weights + size * kv_per_sequence
        if memory > budget:
            if batch is not None:
                raise InputError(f"batch: {batch} sequences of {p + o} tokens do not fit beside "
                                 f"the weights on tp={tp} x {hardware.key}")
            break
        prefill = prefill_step(model, hardware, batch=size, prompt=p, tp=tp,
                               weight_bytes=weight_bytes, kv_bytes=kv_bytes, dtype=dtype,
                               efficiency=efficiency).seconds
        decode = decode_step(model, hardware, batch=size, context=p + o / 2, tp=tp,
                             weight_bytes=weight_bytes, kv_bytes=kv_bytes, dtype=dtype,
                             efficiency=efficiency).seconds
        latency = prefill + o * decode
        per_replica = size / latency
        replicas = math.ceil(target / per_replica)
        plan = ServingPlan(model.name, hardware.key, target, p, o, max_latency, tp, size,
                           prefill, decode, latency, per_replica, per_replica * o / tp,
                           replicas, replicas * tp, memory / tp, True)
        first = first or plan
        if max_latency is not None and latency > max_latency:
            break  # latency only grows with batch
        if best is None or plan.devices <= best.devices:
            best = plan
    if best is not None:
        return best
    if first is None:
        raise InputError(f"prompt, output: one sequence of {p + o} tokens does not fit beside "
                         f"the weights on tp={tp} x {hardware.key}")
    reason = (f"latency {first.latency:.3g}s at batch {first.batch} exceeds the target "
              f"{max_latency:.3g}s; "
              "use faster devices, a larger tp or a shorter output")
    return ServingPlan(**{**asdict(first), "feasible": False, "reason": reason})
