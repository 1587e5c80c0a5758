"""Thin adapter: the best parallel layout for a model on a cluster, and a model shape for any N.

``scaleguard.resources`` estimates the memory of one layout; the assessment needs to know whether
*any* layout fits, the largest model that would, and the fewest devices that would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from scaleguard.errors import InputError
from scaleguard.resources import Device, Layout, MemoryEstimate, ModelShape, estimate_memory

__all__ = ["LayoutSearch", "best_layout", "shape_for_params", "largest_fitting_params",
           "fewest_fitting_devices"]

# Llama-like proportions for a model known only by its size: head dimension 128 and width about
# 128 × depth (Llama 2 7B: 4096 = 128 × 32; GPT-3 175B: 12288 = 128 × 96), SwiGLU MLP of 8/3 of
# the width rounded to 256, a 32k vocabulary.
_HEAD_DIM: Final = 128
_WIDTH_PER_LAYER: Final = 128
_VOCAB: Final = 32_000
_TENSOR_PARALLEL: Final = (1, 2, 4, 8)  # within one 8-device node (Megatron-LM practice)
_ZERO: Final = (0, 1, 2, 3)
_RECOMPUTE: Final = ("selective", "full")


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


@dataclass(frozen=True)
class LayoutSearch:
    """The layout that needs least memory per device, and how many were tried."""

    best: MemoryEstimate
    fits: bool
    tried: int
    rejected_for_shape: int


def best_layout(model: ModelShape, device: Device, devices: int) -> LayoutSearch:
    """Try tp × pp × dp (with every ZeRO stage and recomputation) that multiply to ``devices``."""
    best: MemoryEstimate | None = None
    tried = rejected = 0
    for tp in _TENSOR_PARALLEL:
        if devices % tp:
            continue
        for pp in range(1, devices // tp + 1):
            if (devices // tp) % pp or model.layers % pp:
                continue
            dp = devices // (tp * pp)
            for zero in _ZERO if dp > 1 else (0,):
                for recompute in _RECOMPUTE:
                    layout = Layout(tp=tp, pp=pp, dp=dp, zero=zero, recompute=recompute)
                    try:
                        estimate = estimate_memory(model, layout, device=device)
                    except InputError:
                        rejected += 1
                        continue
                    tried += 1
                    if best is None or estimate.total < best.total:
                        best = estimate
    if best is None:
        raise InputError(f"hardware.devices: no layout of {devices} devices splits {model.name}")
    return LayoutSearch(best, bool(best.fits), tried, rejected)


def largest_fitting_params(params: float, seq: int, device: Device, devices: int) -> float:
    """The largest model (Llama-like shape) that some layout fits, by bisection on log N."""
    lo, hi = math.log(params) - math.log(1e4), math.log(params)
    if not best_layout(shape_for_params(math.exp(lo), seq), device, devices).fits:
        return math.nan
    for _ in range(24):
        mid = (lo + hi) / 2
        if best_layout(shape_for_params(math.exp(mid), seq), device, devices).fits:
            lo = mid
        else:
            hi = mid
    return math.exp(lo)


def fewest_fitting_devices(model: ModelShape, device: Device, devices: int,
                           max_factor: int = 1024) -> float:
    """The smallest power-of-two multiple of ``devices`` on which some layout fits (nan if none)."""
    count = devices * 2
    while count <= devices * max_factor:
        if best_layout(model, device, count).fits:
            return float(count)
        count *= 2
    return math.nan
