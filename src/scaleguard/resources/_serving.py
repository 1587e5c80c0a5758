"""Serving: KV cache size, prefill and decode time from a roofline, and devices for a load.

Each step takes the longer of its compute time (FLOPs / peak) and its memory time (bytes read /
bandwidth): decode at small batch reads every weight once per token and is memory-bound;
prefill of a long prompt is compute-bound. The prefill is the time to first token (TTFT); each
decode step is the time per output token (TPOT).

A mixture of experts keeps every expert resident, computes with the active parameters only, and
reads the experts the step's tokens are routed to: with ``n`` tokens each picking ``k`` of ``E``
experts, E·(1 − (1 − k/E)^n) of them on average (uniform routing). With ``attention="eager"``
the s×s scores are written and read back through memory (fused kernels keep them on chip).

Efficiencies default to measured figures, not the ideal roofline: 70% of peak FLOP/s and 90% of
memory bandwidth, llm-analysis's inference settings matched to FasterTransformer's measured
latencies (examples/fastertransformer in cli99/llm-analysis). Give ``efficiency`` (one share of
both, e.g. calibrated from a serving benchmark) to replace them; 1.0 is the ideal roofline.

>>> from scaleguard.resources import model_preset
>>> kv_cache_bytes_per_token(model_preset("llama-3-8b"))
131072
>>> step = decode_step(model_preset("llama-7b"), get_device("a100-80gb"), batch=1, context=1,
...                    efficiency=1.0)
>>> round(step.seconds * 1e3, 1), step.bound  # ms per token, ideal
(6.6, 'memory')
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

from scaleguard.errors import InputError
from scaleguard.resources._checks import check_fraction, check_positive
from scaleguard.resources._hardware import Device, get_device
from scaleguard.resources._memory import (
    ACTIVATION_BYTES,
    ATTENTION,
    USABLE_MEMORY_FRACTION,
    Layout,
    layout_problem,
)
from scaleguard.resources._model import ModelShape
from scaleguard.units import format_quantity

__all__ = [
    "EFFICIENCY_SOURCE",
    "RooflineStep",
    "ServingPlan",
    "decode_step",
    "kv_cache_bytes_per_token",
    "plan_serving",
    "prefill_step",
]

# Inference FLOPs: 2 per (active) parameter per token (one multiply-add), plus attention's QK^T
# and AV over the context, 2·2·L·h per token of context (Kaplan et al. 2020, Table 1).
FLOPS_PER_PARAM_FORWARD: Final = 2
ATTENTION_FLOPS_PER_CONTEXT: Final = 4
# Shares of peak FLOP/s and memory bandwidth reached when serving (see the module docstring).
COMPUTE_EFFICIENCY: Final = 0.7
BANDWIDTH_EFFICIENCY: Final = 0.9
EFFICIENCY_SOURCE: Final = ("llm-analysis's inference defaults, matched to FasterTransformer's "
                            "measured latencies")
# Eager attention writes the scores, reads them for the softmax, writes the probabilities and
# reads them for AV: four 16-bit passes over heads x queries x context.
EAGER_SCORE_PASSES: Final = 4
# Batch sizes tried when planning, powers of two as serving engines schedule them.
BATCH_SIZES: Final[tuple[int, ...]] = tuple(2**i for i in range(11))  # 1 .. 1024


def kv_cache_bytes_per_token(model: ModelShape, dtype_bytes: int = 2) -> int:
    """KV cache per token: 2 (K and V) · layers · kv_heads · head_dim · bytes; under latent
    attention the cached latent and rotary key, layers · (kv_rank + rope_dim) · bytes."""
    if model.latent is not None:
        return model.layers * (model.latent.kv_rank + model.latent.rope_dim) * dtype_bytes
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


def _efficiencies(efficiency: float | None) -> tuple[float, float]:
    if efficiency is None:
        return COMPUTE_EFFICIENCY, BANDWIDTH_EFFICIENCY
    share = check_fraction(efficiency, "efficiency")
    return share, share


def _step(flops: float, bytes_read: float, device: Device, tp: int, dtype: str | None,
          efficiency: float | None) -> RooflineStep:
    compute_share, bandwidth_share = _efficiencies(efficiency)
    peak = device.peak(dtype or device.training_dtype) * tp * compute_share
    bandwidth = device.memory_bandwidth * tp * bandwidth_share
    return RooflineStep(flops, bytes_read, flops / peak, bytes_read / bandwidth)


def _weights_read(model: ModelShape, tokens: float, weight_bytes: int) -> float:
    """Weight bytes a step over ``tokens`` tokens reads: the dense part and the routed experts."""
    dense = (model.params - model.expert_params) * weight_bytes
    if not model.is_moe:
        return dense
    touched = 1.0 - (1.0 - model.experts_per_token / model.experts) ** tokens
    return dense + model.expert_params * weight_bytes * touched


def _forward_flops(model: ModelShape, tokens: float, context: float) -> float:
    head = (model.qk_head_dim + model.v_head_dim) / 2
    attention = ATTENTION_FLOPS_PER_CONTEXT * model.layers * model.heads * head * context
    return tokens * (FLOPS_PER_PARAM_FORWARD * model.active_params + attention)


def _check_attention(attention: str) -> None:
    if attention not in ATTENTION:
        raise InputError(f"attention: expected one of {', '.join(ATTENTION)}, got {attention!r}")


def _score_traffic(model: ModelShape, queries: float, context: float, attention: str) -> float:
    """Bytes eager attention moves through memory for its scores (0 when fused)."""
    _check_attention(attention)
    if attention == "fused":
        return 0.0
    return EAGER_SCORE_PASSES * 2 * model.layers * model.heads * queries * context


def decode_step(model: ModelShape, device: Device, *, batch: int, context: float, tp: int = 1,
                weight_bytes: int = 2, kv_bytes: int = 2, dtype: str | None = None,
                efficiency: float | None = None, attention: str = "fused") -> RooflineStep:
    """One decode step: ``batch`` sequences each emit a token, attending to ``context`` tokens.

    Reads every (touched) weight once and each sequence's KV cache; ``tp`` devices share it.
    """
    b = check_positive(batch, "batch")
    c = check_positive(context, "context")
    flops = _forward_flops(model, b, c)
    bytes_read = (_weights_read(model, b, weight_bytes)
                  + b * c * kv_cache_bytes_per_token(model, kv_bytes)
                  + _score_traffic(model, b, c, attention))
    return _step(flops, bytes_read, device, tp, dtype, efficiency)


def prefill_step(model: ModelShape, device: Device, *, batch: int, prompt: int, tp: int = 1,
                 weight_bytes: int = 2, kv_bytes: int = 2, dtype: str | None = None,
                 efficiency: float | None = None, attention: str = "fused") -> RooflineStep:
    """Prefill of ``batch`` prompts of ``prompt`` tokens (causal: half the full attention)."""
    b = check_positive(batch, "batch")
    p = check_positive(prompt, "prompt")
    flops = _forward_flops(model, b * p, p / 2)
    bytes_read = (_weights_read(model, b * p, weight_bytes)
                  + b * p * kv_cache_bytes_per_token(model, kv_bytes)
                  + _score_traffic(model, b * p, p, attention))
    return _step(flops, bytes_read, device, tp, dtype, efficiency)


@dataclass(frozen=True)
class ServingPlan:
    """Devices needed to serve ``rate`` requests/s of ``prompt`` + ``output`` tokens.

    One replica spans ``tp`` devices and runs ``batch`` sequences at once; a request takes its
    prefill, the time to first token (``ttft_seconds``), plus ``output`` decode steps of
    ``tpot_seconds`` each (time per output token): ``latency``. Replicas = ceil(rate /
    per-replica rate). ``compute_efficiency`` and ``bandwidth_efficiency`` are the shares of peak
    used; ``efficiency_assumed`` says whether they are the module's defaults.
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
    ttft_seconds: float
    tpot_seconds: float
    latency: float
    requests_per_second_per_replica: float
    tokens_per_second_per_device: float
    replicas: int
    devices: int
    memory_per_device: float
    feasible: bool
    reason: str = ""
    compute_efficiency: float = COMPUTE_EFFICIENCY
    bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY
    efficiency_assumed: bool = True
    attention: str = "fused"

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
                 weight_bytes: int = 2, kv_bytes: int = 2, dtype: str | None = None,
                 efficiency: float | None = None, attention: str = "fused",
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
        Share of peak FLOP/s and bandwidth reached (1.0 = the ideal roofline); None: the
        measured defaults (:data:`COMPUTE_EFFICIENCY`, :data:`BANDWIDTH_EFFICIENCY`).
    attention:
        ``fused`` or ``eager`` (the prefill then also holds one layer's s×s scores).
    """
    hardware = get_device(device)
    target = check_positive(rate, "rate")
    p = int(check_positive(prompt, "prompt"))
    o = int(check_positive(output, "output"))
    if max_latency is not None:
        check_positive(max_latency, "latency")
    usable = check_fraction(usable_fraction, "usable_fraction")
    _check_attention(attention)
    compute_share, bandwidth_share = _efficiencies(efficiency)
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
        scores = (2 * ACTIVATION_BYTES * size * model.heads * p * p
                  if attention == "eager" else 0.0)  # one layer's scores and probabilities
        memory = weights + size * kv_per_sequence + scores
        if memory > budget:
            if batch is not None:
                raise InputError(f"batch: {batch} sequences of {p + o} tokens do not fit beside "
                                 f"the weights on tp={tp} x {hardware.key}")
            break
        prefill = prefill_step(model, hardware, batch=size, prompt=p, tp=tp,
                               weight_bytes=weight_bytes, kv_bytes=kv_bytes, dtype=dtype,
                               efficiency=efficiency, attention=attention).seconds
        decode = decode_step(model, hardware, batch=size, context=p + o / 2, tp=tp,
                             weight_bytes=weight_bytes, kv_bytes=kv_bytes, dtype=dtype,
                             efficiency=efficiency, attention=attention).seconds
        latency = prefill + o * decode
        per_replica = size / latency
        replicas = math.ceil(target / per_replica)
        plan = ServingPlan(model.name, hardware.key, target, p, o, max_latency, tp, size,
                           prefill, decode, latency, per_replica, per_replica * o / tp,
                           replicas, replicas * tp, memory / tp, True, "", compute_share,
                           bandwidth_share, efficiency is None, attention)
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
