"""Thin adapter over ``scaleguard.resources``' layout planner: does *any* layout fit, and if not,
the largest model and the fewest devices that would — plus a model shape for a bare size N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from scaleguard.errors import InputError
from scaleguard.resources import (
    Device,
    Layout,
    LayoutPlan,
    MemoryEstimate,
    ModelShape,
    estimate_memory,
    plan_layouts,
)

__all__ = ["LayoutSearch", "search_layouts", "shape_for_params", "largest_fitting_params",
           "fewest_fitting_devices", "default_global_batch", "BATCH_TOKENS"]

# Llama-like proportions for a model known only by its size: head dimension 128 and width about
# 128 × depth (Llama 2 7B: 4096 = 128 × 32; GPT-3 175B: 12288 = 128 × 96), SwiGLU MLP of 8/3 of
# the width rounded to 256, a 32k vocabulary.
_HEAD_DIM: Final = 128
_WIDTH_PER_LAYER: Final = 128
_VOCAB: Final = 32_000
# Tokens per optimizer step when the study gives no batch: about 4M, as GPT-3 175B (3.2M) and
# Llama 2 (4M) trained with.
BATCH_TOKENS: Final = 4 * 2**20


def shape_for_params(params: float, seq: int) -> ModelShape:
    """A decoder-only transformer of about ``params`` parameters with Llama-like proportions."""
    if not (math.isfinite(params) and params > 0):
        raise InputError(f"params: expected a positive model size, got {params!r}")
    # params ≈ 12·L·h² and h = 128·L give h = (128·params/12)^(1/3). Width is rounded to a
    # multiple of 8 heads so that every tensor-parallel degree of a node divides the heads.
    quantum = _HEAD_DIM * (8 if params >= 1e9 else 1)
    hidden = max(quantum, round((params * _WIDTH_PER_LAYER / 12.0) ** (1 / 3) / quantum) * quantum)
    layers = max(1, round(params / (12.0 * hidden * hidden)))
    ffn = max(256, round(8 * hidden / 3 / 256) * 256)
    heads = hidden // _HEAD_DIM
    return ModelShape(layers, hidden, heads, heads, ffn, _VOCAB, seq,
                      name=f"~{params:.3g}-param transformer")


def default_global_batch(devices: int, seq: int) -> int:
    """Sequences per step: about :data:`BATCH_TOKENS` tokens, a multiple of ``devices``."""
    sequences = max(1, round(BATCH_TOKENS / seq))
    return devices * max(1, math.ceil(sequences / devices))


@dataclass(frozen=True)
class LayoutSearch:
    """The planner's answer: the leanest layout (fitting or not) and the fastest that fits."""

    fits: bool
    leanest: MemoryEstimate  # the layout needing least memory per device
    fastest: MemoryEstimate | None  # the planner's first choice; None when nothing fits
    plan: LayoutPlan


def search_layouts(model: ModelShape, device: Device, devices: int, global_batch: int,
                   dtype: str = "bf16") -> LayoutSearch:
    """Every tp × pp × dp layout the planner tries; when none fits, the one needing least memory."""
    plan = plan_layouts(model, device, devices, global_batch=global_batch, dtype=dtype)
    if plan.best is not None:
        leanest = min((c.memory for c in plan.candidates), key=lambda m: m.total)
        return LayoutSearch(True, leanest, plan.best.memory, plan)
    least: MemoryEstimate | None = None
    for r in plan.rejected:
        if not r.reason.startswith("memory") or r.zero is None or r.micro_batch is None:
            continue
        layout = Layout(r.tp, r.pp, r.dp, r.zero, r.micro_batch, r.recompute or "full")
        estimate = estimate_memory(model, layout, device=device,
                                   in_flight_micro_batches=global_batch // (r.dp * r.micro_batch))
        if least is None or estimate.total < least.total:
            least = estimate
    if least is None:
        reasons = "; ".join(sorted(plan.rejection_counts()))
        raise InputError(f"hardware.devices: no layout of {devices} devices can split "
                         f"{model.name} ({reasons})")
    return LayoutSearch(False, least, None, plan)


def _fits(params: float, seq: int, device: Device, devices: int, dtype: str) -> bool:
    model = shape_for_params(params, seq)
    return plan_layouts(model, device, devices, dtype=dtype,
                        global_batch=default_global_batch(devices, seq)).fits


def largest_fitting_params(params: float, seq: int, device: Device, devices: int,
                           dtype: str = "bf16") -> float:
    """The largest model (Llama-like shape) some layout fits, by bisection on log N (nan: none)."""
    lo, hi = math.log(params) - math.log(1e4), math.log(params)
    if not _fits(math.exp(lo), seq, device, devices, dtype):
        return math.nan
    for _ in range(20):  # to 2^-20 of four decades: far finer than the shapes' rounding
        mid = (lo + hi) / 2
        if _fits(math.exp(mid), seq, device, devices, dtype):
            lo = mid
        else:
            hi = mid
    return math.exp(lo)


def fewest_fitting_devices(model: ModelShape, device: Device, devices: int,
                           dtype: str = "bf16", max_factor: int = 1024) -> float:
    """The smallest power-of-two multiple of ``devices`` on which some layout fits (nan: none)."""
    count = devices * 2
    while count <= devices * max_factor:
        batch = default_global_batch(count, model.seq)
        if plan_layouts(model, device, count, global_batch=batch, dtype=dtype).fits:
            return float(count)
        count *= 2
    return math.nan
