"""Training compute: FLOPs per token, MFU from measured throughput and back, wall time, goodput.

>>> training_flops(175e9, 300e9)  # GPT-3
3.15e+23
>>> from scaleguard.resources import model_preset
>>> round(mfu(2973, flops_per_token(model_preset("llama-3-8b")), 312e12), 3)  # torchtitan
0.582
"""

from __future__ import annotations

from typing import Final

from scaleguard.errors import InputError
from scaleguard.io import FLOPS_PER_PARAM_TOKEN
from scaleguard.resources._checks import check_fraction, check_positive
from scaleguard.resources._model import ModelShape

__all__ = [
    "ATTENTION_FLOPS_FACTOR",
    "DEFAULT_MFU",
    "MFU_SOURCE",
    "attention_flops_per_token",
    "flops_per_token",
    "goodput",
    "mfu",
    "tokens_per_second",
    "training_flops",
    "training_seconds",
]

# The MFU assumed when none is measured: Meta's Llama 3 405B pre-training reached 38-43% BF16 MFU
# on 8,192-16,384 H100s (Dubey et al. 2024, "The Llama 3 Herd of Models", Table 4).
DEFAULT_MFU: Final = 0.40
MFU_SOURCE: Final = "Llama 3 pre-training's 38-43% on 8k-16k H100s (Dubey et al. 2024, Table 4)"
# PaLM (Chowdhery et al. 2022, Appendix B): attention adds 12·L·H·Q·T FLOPs per token on top of
# 6·N (forward + backward of the QK^T and AV matmuls over a context of T tokens).
ATTENTION_FLOPS_FACTOR: Final = 12


def training_flops(params: float, tokens: float) -> float:
    """Training compute C = 6·N·D (Kaplan et al. 2020), in FLOP."""
    return (FLOPS_PER_PARAM_TOKEN * check_positive(params, "params")
            * check_positive(tokens, "tokens"))


def attention_flops_per_token(model: ModelShape, seq: int | None = None) -> float:
    """Training FLOPs of QK^T and AV per token: 12·L·H·Q·T (PaLM), with Q the mean of the
    query/key and value head widths (they differ under latent attention)."""
    context = model.seq if seq is None else int(check_positive(seq, "seq"))
    head = (model.qk_head_dim + model.v_head_dim) / 2
    return ATTENTION_FLOPS_FACTOR * model.layers * model.heads * head * context


def flops_per_token(model: ModelShape, seq: int | None = None) -> float:
    """Training FLOPs per token with attention, PaLM's form: 6·N + 12·L·H·Q·T.

    N is the *active* parameter count: a mixture of experts' token passes through
    ``experts_per_token`` experts only, and a gated MLP's three matrices are in N already.
    ``seq`` (T) defaults to the model's sequence length.
    """
    return (FLOPS_PER_PARAM_TOKEN * model.active_params
            + attention_flops_per_token(model, seq))


def mfu(tokens_per_second_per_device: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the device's peak (PaLM's definition)."""
    throughput = check_positive(tokens_per_second_per_device, "tokens_per_second")
    return (throughput * check_positive(flops_per_token, "flops_per_token")
            / check_positive(peak_flops, "peak_flops"))


def tokens_per_second(mfu: float, flops_per_token: float, peak_flops: float) -> float:
    """Tokens/s per device that an MFU implies: the inverse of :func:`mfu`."""
    return (check_fraction(mfu, "mfu") * check_positive(peak_flops, "peak_flops")
            / check_positive(flops_per_token, "flops_per_token"))


def training_seconds(flops: float, devices: int, peak_flops: float, mfu: float,
                     goodput: float = 1.0) -> float:
    """Wall time of a run: FLOPs / (devices · peak · MFU), stretched by 1 / goodput."""
    rate = (check_positive(devices, "devices") * check_positive(peak_flops, "peak_flops")
            * check_fraction(mfu, "mfu"))
    return check_positive(flops, "flops") / rate / check_fraction(goodput, "goodput")


def goodput(failures_per_day: float = 0.0, restart_hours: float = 0.0,
            checkpoint_interval_hours: float = 0.0, downtime_fraction: float = 0.0) -> float:
    """Share of wall time that trains: lost work and restarts per failure, plus planned downtime.

    Each failure costs the restart time plus, on average, half a checkpoint interval of redone
    work (Young 1974's first-order model). Productive share = (1 − downtime) / (1 + λ·loss).

    >>> round(goodput(failures_per_day=8.6, restart_hours=0.25, checkpoint_interval_hours=0.5), 3)
    0.848
    """
    rate = check_positive(failures_per_day, "failures_per_day", allow_zero=True) / 24.0
    lost = (check_positive(restart_hours, "restart_hours", allow_zero=True)
            + check_positive(checkpoint_interval_hours, "checkpoint_interval_hours",
                             allow_zero=True) / 2.0)
    down = check_positive(downtime_fraction, "downtime_fraction", allow_zero=True)
    if down >= 1:
        raise InputError("downtime_fraction: expected a fraction below 1, "
                         f"got {downtime_fraction!r}")
    return (1.0 - down) / (1.0 + rate * lost)
