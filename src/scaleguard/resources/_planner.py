"""The layout planner: which tp × pp × dp layouts fit in memory, and which is fastest.

Every layout of ``devices`` devices is tried with each ZeRO stage, micro-batch size and
recomputation mode; those that fit are ranked by an estimated step time, and every rejected one
is kept with its reason.

Step-time model (simple on purpose; it ranks layouts, it does not promise a figure):

- compute: hardware FLOPs (model FLOPs plus recomputation) / (devices · peak · efficiency);
- pipeline bubble: (pp − 1) / micro-batches-per-step of the compute time (1F1B schedule,
  Narayanan et al. 2021);
- tensor parallelism: four all-reduces of s·b·h activations per layer and micro-batch (two
  forward, two backward; six with full recomputation), ring cost 2(t−1)/t, on the fast link when
  the group fits in a node and on the network otherwise; not overlapped;
- pipeline parallelism: one activation send forward and one gradient back per stage boundary;
- data parallelism: a gradient all-reduce of the local weights in the gradient precision
  (ZeRO-3 adds two all-gathers of them: 1.5× the volume, Rajbhandari et al. 2020), overlapped
  with the backward pass;
- expert parallelism: four all-to-alls per MoE layer and micro-batch (dispatch and combine,
  forward and backward) of each token's ``experts_per_token`` copies, (ep−1)/ep of them leaving
  the device; not overlapped.

``attention`` (fused by default) decides whether the s×s scores are stored: with eager attention
fewer layouts fit without recomputation.

>>> from scaleguard.resources import model_preset
>>> plan = plan_layouts(model_preset("llama-3-8b"), "h100-sxm", 64, global_batch=512)
>>> plan.fits, plan.best.layout.devices
(True, 64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from scaleguard.errors import InputError
from scaleguard.resources._checks import check_fraction, check_positive
from scaleguard.resources._compute import attention_flops_per_token, flops_per_token
from scaleguard.resources._hardware import Device, get_device
from scaleguard.resources._memory import (
    ACTIVATION_BYTES,
    ATTENTION,
    NORM_BYTES,
    OPTIMIZERS,
    RECOMPUTE,
    USABLE_MEMORY_FRACTION,
    ZERO_STAGES,
    Layout,
    MemoryEstimate,
    Precision,
    estimate_memory,
    layout_problem,
)
from scaleguard.resources._model import ModelShape
from scaleguard.units import format_quantity

__all__ = ["MAX_DEVICES", "LayoutCandidate", "LayoutPlan", "Rejection", "plan_layouts"]

# Share of peak FLOP/s that dense training kernels reach before communication: torchtitan's
# Llama 3 8B on 64 A100 reports 58.2% MFU *with* its FSDP communication (docs/performance.md),
# so 0.6 of peak for the kernels alone is a middle-of-the-road figure.
COMPUTE_EFFICIENCY: Final = 0.6
# Network bandwidth per device between nodes: one 400 Gbit/s NIC per GPU (InfiniBand NDR, as in
# DGX H100 and Meta's Grand Teton hosts, torchtitan docs/performance.md) = 50 GB/s each way.
INTER_NODE_BANDWIDTH: Final = 50e9
# Micro-batch sizes tried by default.
MICRO_BATCHES: Final[tuple[int, ...]] = (1, 2, 4, 8)
# Share of the backward pass (2/3 of training FLOPs) during which the DP gradient reduction can
# run concurrently; the rest is exposed.
BACKWARD_SHARE: Final = 2.0 / 3.0
# Devices a plan may have: 2**24 (16.8M) is ~100x the largest training clusters announced
# (about 10^5 GPUs in 2024), and bounds the layout search for --gpus 1e12 up front.
MAX_DEVICES: Final = 2**24


@dataclass(frozen=True)
class LayoutCandidate:
    """A layout that fits, with its memory and estimated step time (seconds) broken down."""

    layout: Layout
    memory: MemoryEstimate
    micro_batches_per_step: int
    compute_seconds: float
    bubble_seconds: float
    tp_comm_seconds: float
    pp_comm_seconds: float
    dp_comm_exposed_seconds: float
    step_seconds: float
    tokens_per_second: float
    mfu: float
    ep_comm_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.as_dict(), "memory": self.memory.as_dict(),
                "micro_batches_per_step": self.micro_batches_per_step,
                "compute_seconds": self.compute_seconds, "bubble_seconds": self.bubble_seconds,
                "tp_comm_seconds": self.tp_comm_seconds,
                "pp_comm_seconds": self.pp_comm_seconds,
                "dp_comm_exposed_seconds": self.dp_comm_exposed_seconds,
                "ep_comm_seconds": self.ep_comm_seconds,
                "step_seconds": self.step_seconds, "tokens_per_second": self.tokens_per_second,
                "mfu": self.mfu}

    def __repr__(self) -> str:
        return (f"LayoutCandidate({self.layout!r}: step "
                f"{format_quantity(self.step_seconds, 'duration', digits=3)}, MFU {self.mfu:.2f}, "
                f"{format_quantity(self.memory.total, 'bytes', digits=3)} per device)")


@dataclass(frozen=True)
class Rejection:
    """A layout (or a family of them: ``zero``/``micro_batch``/``recompute`` None) not kept."""

    tp: int
    pp: int
    dp: int
    zero: int | None
    micro_batch: int | None
    recompute: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "zero": self.zero,
                "micro_batch": self.micro_batch, "recompute": self.recompute,
                "reason": self.reason}

    def describe(self) -> str:
        """The rejected layout (or family) and why, for people: ``tp 16 × pp 1 × dp 32: ...``."""
        rest = "".join(f", {text}" for value, text in (
            (self.zero, f"ZeRO-{self.zero}"), (self.micro_batch, f"micro-batch {self.micro_batch}"),
            (self.recompute, f"{'no' if self.recompute == 'none' else self.recompute} "
                             "recomputation")) if value is not None)
        return f"tp {self.tp} × pp {self.pp} × dp {self.dp}{rest}: {self.reason}"

    def __repr__(self) -> str:
        rest = "".join(f", {k}={v}" for k, v in (("zero", self.zero),
                                                  ("mb", self.micro_batch),
                                                  ("recompute", self.recompute)) if v is not None)
        return f"Rejection(tp={self.tp}, pp={self.pp}, dp={self.dp}{rest}: {self.reason})"


@dataclass(frozen=True)
class LayoutPlan:
    """Every layout of a model on ``devices`` devices: those that fit (fastest first), the rest."""

    model: str
    device: str
    devices: int
    global_batch: int
    seq: int
    optimizer: str
    candidates: tuple[LayoutCandidate, ...]
    rejected: tuple[Rejection, ...]
    precision: Precision = Precision()
    attention: str = "fused"

    @property
    def fits(self) -> bool:
        """Whether any layout fits in memory."""
        return bool(self.candidates)

    @property
    def best(self) -> LayoutCandidate | None:
        return self.candidates[0] if self.candidates else None

    def rejection_counts(self) -> dict[str, int]:
        """How many layouts each kind of reason rejected (the text before the first colon)."""
        counts: dict[str, int] = {}
        for rejection in self.rejected:
            kind = rejection.reason.split(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "devices": self.devices,
                "global_batch": self.global_batch, "seq": self.seq, "optimizer": self.optimizer,
                "precision": self.precision.as_dict(), "attention": self.attention,
                "fits": self.fits, "best": None if self.best is None else self.best.as_dict(),
                "candidates": [c.as_dict() for c in self.candidates],
                "rejection_counts": self.rejection_counts(),
                "rejected": [r.as_dict() for r in self.rejected]}

    def __repr__(self) -> str:
        head = (f"LayoutPlan({self.model} on {self.devices} x {self.device}: "
                f"{len(self.candidates)} fit, {len(self.rejected)} rejected")
        return head + (f"; best {self.best!r})" if self.best else ")")


def _divisors(n: int) -> list[int]:
    # Pairs (d, n // d) up to sqrt(n): 4,096 steps for MAX_DEVICES, not 16 million.
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def _ring_seconds(size_bytes: float, group: int, bandwidth: float, factor: float = 2.0) -> float:
    """Ring collective: each device sends factor·(g−1)/g of the buffer, one direction at a time."""
    if group <= 1:
        return 0.0
    return factor * (group - 1) / group * size_bytes / bandwidth


def _estimate(model: ModelShape, hardware: Device, layout: Layout, memory: MemoryEstimate,
              global_batch: int, dtype: str, efficiency: float,
              inter_node_bandwidth: float) -> LayoutCandidate:
    seq = model.seq
    micro_batches = global_batch // (layout.dp * layout.micro_batch)
    tokens = global_batch * seq
    model_flops = flops_per_token(model) * tokens
    attention_forward = attention_flops_per_token(model) / 3 * tokens
    extra = {"none": 0.0, "selective": attention_forward, "full": model_flops / 3}
    hardware_flops = model_flops + extra[layout.recompute]
    peak = hardware.peak(dtype)
    compute = hardware_flops / (layout.devices * peak * efficiency)
    bubble = compute * (layout.pp - 1) / micro_batches

    node = hardware.devices_per_node
    link = hardware.link_bandwidth / 2  # the catalog quotes both directions together
    activation = ACTIVATION_BYTES * seq * layout.micro_batch * model.hidden
    layers_here = model.layers // layout.pp
    all_reduces = 6 if layout.recompute == "full" else 4
    tp_link = link if layout.tp <= node else inter_node_bandwidth
    tp_comm = micro_batches * layers_here * all_reduces * _ring_seconds(
        activation, layout.tp, tp_link)
    pp_link = link if layout.tp * layout.pp <= node else inter_node_bandwidth
    pp_comm = (2 * micro_batches * activation / layout.tp / pp_link) if layout.pp > 1 else 0.0
    ep_comm = 0.0
    if layout.ep > 1:
        ep_link = link if layout.tp * layout.ep <= node else inter_node_bandwidth
        routed = activation * model.experts_per_token / layout.tp
        ep_comm = (micro_batches * model.moe_layers / layout.pp * 4 * routed
                   * (layout.ep - 1) / layout.ep / ep_link)
    grad_bytes = memory.precision.gradient_bytes
    local_weights = grad_bytes * ((model.params - model.expert_params)
                                  + model.expert_params / layout.ep) / (layout.tp * layout.pp)
    dp_link = link if layout.devices <= node else inter_node_bandwidth
    dp_factor = 3.0 if layout.zero >= 3 else 2.0
    dp_comm = _ring_seconds(local_weights, layout.dp, dp_link, dp_factor)
    dp_exposed = max(0.0, dp_comm - BACKWARD_SHARE * compute)

    step = compute + bubble + tp_comm + pp_comm + ep_comm + dp_exposed
    return LayoutCandidate(layout, memory, micro_batches, compute, bubble, tp_comm, pp_comm,
                           dp_exposed, step, tokens / step,
                           model_flops / (step * layout.devices * peak), ep_comm)


def _expert_parallel_sizes(model: ModelShape, dp: int) -> list[int]:
    """ep sizes to try: divisors of dp that divide the experts (1 alone for a dense model)."""
    if not model.is_moe:
        return [1]
    return [e for e in _divisors(dp) if model.experts % e == 0]


def plan_layouts(model: ModelShape, device: str | Device, devices: int, *, global_batch: int,
                 optimizer: str = "adam", dtype: str | None = None,
                 precision: Precision | None = None, attention: str = "fused",
                 zero_stages: tuple[int, ...] = ZERO_STAGES,
                 micro_batches: tuple[int, ...] = MICRO_BATCHES,
                 recompute: tuple[str, ...] = RECOMPUTE,
                 efficiency: float = COMPUTE_EFFICIENCY,
                 inter_node_bandwidth: float = INTER_NODE_BANDWIDTH,
                 usable_fraction: float = USABLE_MEMORY_FRACTION,
                 norm_bytes: int = NORM_BYTES,
                 hardware_file: str | Path | None = None) -> LayoutPlan:
    """Enumerate layouts of ``model`` (at ``model.seq``) on ``devices`` devices and rank them.

    Parameters
    ----------
    global_batch:
        Sequences per optimizer step (all data-parallel ranks together).
    zero_stages, micro_batches, recompute:
        The options to try besides tp × pp × dp.
    efficiency:
        Share of peak FLOP/s the kernels reach (see :data:`COMPUTE_EFFICIENCY`).
    precision, attention:
        Model-state precision (:class:`Precision`) and the attention kernel (``fused`` or
        ``eager``), as in :func:`estimate_memory`.
    """
    hardware = get_device(device, hardware_file, option="device")
    count = int(check_positive(devices, "devices"))
    if count > MAX_DEVICES:
        raise InputError(f"devices: at most {MAX_DEVICES:,} devices can be planned, got {count:,}")
    batch = int(check_positive(global_batch, "global_batch"))
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if attention not in ATTENTION:
        raise InputError(f"attention: expected one of {', '.join(ATTENTION)}, got {attention!r}")
    precision = precision or Precision()
    dtype = dtype or hardware.training_dtype
    hardware.peak(dtype)
    check_fraction(efficiency, "efficiency")
    check_positive(inter_node_bandwidth, "inter_node_bandwidth")
    for mode in recompute:
        if mode not in RECOMPUTE:
            raise InputError(f"recompute: expected among {', '.join(RECOMPUTE)}, got {mode!r}")
    for stage in zero_stages:
        if stage not in ZERO_STAGES:
            raise InputError(f"zero: expected stages among 0, 1, 2, 3, got {stage!r}")
    for mb in micro_batches:
        check_positive(mb, "micro_batch")

    candidates: list[LayoutCandidate] = []
    rejected: list[Rejection] = []
    for tp in _divisors(count):
        for pp in _divisors(count // tp):
            dp = count // (tp * pp)
            problem = layout_problem(model, Layout(tp=tp, pp=pp, dp=dp))
            if problem is None and tp > hardware.devices_per_node:
                problem = (f"tp: {tp} spans nodes of {hardware.devices_per_node} devices; "
                           "tensor parallelism needs the fast intra-node link")
            if problem is not None:
                rejected.append(Rejection(tp, pp, dp, None, None, None, problem))
                continue
            for zero in (s for s in zero_stages if dp > 1 or s == 0):
                for mb in micro_batches:
                    if batch % (dp * mb):
                        rejected.append(Rejection(
                            tp, pp, dp, zero, mb, None,
                            f"global_batch: {batch} is not a multiple of dp x micro_batch = "
                            f"{dp * mb}"))
                        continue
                    for mode in recompute:
                        for ep in _expert_parallel_sizes(model, dp):
                            layout = Layout(tp, pp, dp, zero, mb, mode, ep=ep,
                                            attention=attention)
                            memory = estimate_memory(
                                model, layout, optimizer=optimizer, precision=precision,
                                device=hardware, in_flight_micro_batches=batch // (dp * mb),
                                usable_fraction=usable_fraction, norm_bytes=norm_bytes)
                            if not memory.fits:
                                need = format_quantity(memory.total, "bytes", digits=3)
                                have = format_quantity(memory.usable or 0, "bytes", digits=3)
                                rejected.append(Rejection(
                                    tp, pp, dp, zero, mb, mode,
                                    f"memory: needs {need} per device, {have} usable"))
                                continue
                            candidates.append(_estimate(model, hardware, layout, memory, batch,
                                                        dtype, efficiency,
                                                        inter_node_bandwidth))
    candidates.sort(key=lambda c: (c.step_seconds, c.memory.total))
    return LayoutPlan(model.name, hardware.key, count, batch, model.seq, optimizer,
                      tuple(candidates), tuple(rejected), precision, attention)
