"""The ladder spec: which models to train, on what, for how long, and how (YAML, checked).

A ladder is a family of decoder-only transformers that differ only in depth and width, each
trained on a token budget proportional to its size, with the learning rate scaled with width.

>>> spec = LadderSpec.model_validate({"rungs": [{"layers": 1, "width": 32},
...                                             {"layers": 2, "width": 64}]})
>>> [r.name for r in spec.rungs], spec.rungs[1].heads(spec.model.head_dim)
(['L1-W32', 'L2-W64'], 4)
>>> round(spec.learning_rate(spec.rungs[1]), 6)
0.003
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaleguard.io import read_yaml, validate_config
from scaleguard.units import parse_quantity

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "CorpusSpec",
    "LadderSpec",
    "ModelSpec",
    "OptimizerSpec",
    "RungSpec",
    "load_spec",
]

# Compute-optimal data per parameter (Hoffmann et al. 2022, "20 tokens per parameter").
CHINCHILLA_TOKENS_PER_PARAM = 20.0
# nanoGPT's GPT-2 defaults: AdamW betas (0.9, 0.95), weight decay 0.1, gradient clip 1.0.
DEFAULT_BETAS = (0.9, 0.95)
DEFAULT_WEIGHT_DECAY = 0.1
DEFAULT_GRAD_CLIP = 1.0
# Cosine decay to 10% of the peak learning rate (Hoffmann et al. 2022, section 3).
DEFAULT_MIN_LR_RATIO = 0.1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _count(value: Any) -> Any:
    """Accept ``8MB``-style human counts as well as numbers."""
    return parse_quantity(value, "count") if isinstance(value, str) else value


class RungSpec(_Strict):
    """One model of the ladder: its depth and width, and optionally its own token budget."""

    layers: int = Field(ge=1, le=256)
    width: int = Field(ge=8, le=65536, description="model width d_model")
    # Training tokens (default from the size); at most 1e12: a small-GPT ladder trains on
    # millions to billions, and the step count is bounded before training starts.
    tokens: float | None = Field(default=None, gt=0, le=1e12)
    name: str = ""  # default L{layers}-W{width}

    _tokens = field_validator("tokens", mode="before")(_count)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None:
            data = {**data, "name": f"L{data.get('layers')}-W{data.get('width')}"}
        return data

    def heads(self, head_dim: int) -> int:
        """Attention heads: the width divided into heads of ``head_dim``."""
        return max(1, self.width // head_dim)


class ModelSpec(_Strict):
    """What every rung shares: context length and head size (bytes are the tokens)."""

    # Context length in tokens (bytes).
    block_size: int = Field(default=64, ge=4, le=8192)
    head_dim: int = Field(default=16, ge=4, le=256)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class OptimizerSpec(_Strict):
    """AdamW with warm-up and cosine decay; the peak rate scales as ``lr · base_width / width``.

    The 1/width rule is muP's scaling of Adam's hidden-layer rate (Yang et al. 2022), so one
    ``lr`` tuned on a small rung serves the whole ladder.
    """

    lr: float = Field(default=3e-3, gt=0, le=1.0, description="peak learning rate at base_width")
    base_width: int = Field(default=64, ge=1)
    betas: tuple[float, float] = DEFAULT_BETAS
    weight_decay: float = Field(default=DEFAULT_WEIGHT_DECAY, ge=0)
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1)
    min_lr_ratio: float = Field(default=DEFAULT_MIN_LR_RATIO, ge=0, le=1)
    grad_clip: float = Field(default=DEFAULT_GRAD_CLIP, gt=0)


class CorpusSpec(_Strict):
    """The text to train on: files and folders, or by default the Python standard library."""

    paths: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = (".py",)
    # Bytes read at most (train + validation).
    max_bytes: float = Field(default=8e6, gt=0)
    val_fraction: float = Field(default=0.05, gt=0, lt=0.5)

    _max_bytes = field_validator("max_bytes", mode="before")(_count)


class LadderSpec(_Strict):
    """A whole ladder: rungs, data, optimiser, device and what to log."""

    name: str = "ladder"
    rungs: tuple[RungSpec, ...] = Field(min_length=1)
    next: RungSpec | None = Field(default=None, description="the rung `ladder predict` forecasts")
    tokens_per_param: float = Field(default=CHINCHILLA_TOKENS_PER_PARAM, gt=0)
    # At most 65,536 sequences a step: one step's activations must fit in memory up front.
    batch_size: int = Field(default=16, ge=1, le=65_536,
                            description="sequences per optimiser step")
    seed: int = Field(default=0, ge=0)
    device: Literal["cpu", "cuda"] = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    threads: int | None = Field(default=None, ge=1, description="CPU threads per rung (torch)")
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    corpus: CorpusSpec = Field(default_factory=CorpusSpec)
    eval_every: int = Field(default=100, ge=1, description="steps between validation losses")
    eval_batches: int = Field(default=8, ge=1)
    log_every: int = Field(default=10, ge=1)
    # Steps between resumable checkpoints.
    checkpoint_every: int = Field(default=200, ge=1)
    peak_flops: float | None = Field(default=None, gt=0, description="device peak FLOP/s, for MFU")
    # Hardware catalog key (e.g. h100-sxm): its peak at this precision gives MFU when
    # peak_flops is not set.
    hardware: str | None = None

    @field_validator("peak_flops", mode="before")
    @classmethod
    def _peak(cls, value: Any) -> Any:
        return parse_quantity(value, "flop_rate") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> LadderSpec:
        names = [r.name for r in self.rungs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rung names must be unique; {', '.join(map(repr, twice))} repeats")
        if self.precision == "fp16" and self.device != "cuda":
            raise ValueError("precision fp16 needs device cuda (use bf16 or fp32 on cpu)")
        for rung in (*self.rungs, *([self.next] if self.next else [])):
            if rung.width % self.model.head_dim:
                raise ValueError(f"rung {rung.name!r}: width {rung.width} is not a multiple of "
                                 f"model.head_dim {self.model.head_dim}")
        return self

    def learning_rate(self, rung: RungSpec) -> float:
        """Peak learning rate of ``rung`` (1/width scaling from ``optimizer.base_width``)."""
        return self.optimizer.lr * self.optimizer.base_width / rung.width

    def device_peak_flops(self) -> float | None:
        """Peak FLOP/s for MFU: ``peak_flops``, else the catalog's ``hardware`` at ``precision``."""
        if self.peak_flops is not None or self.hardware is None:
            return self.peak_flops
        from scaleguard.resources import get_device

        return get_device(self.hardware, option="hardware").peak(self.precision)

    def next_rung(self) -> RungSpec:
        """The rung to forecast: ``next`` if given, else the largest rung at twice the width."""
        if self.next is not None:
            return self.next
        last = self.rungs[-1]
        return RungSpec(layers=last.layers, width=2 * last.width)

    def fingerprint(self, rung: RungSpec) -> str:
        """A short hash of everything that decides ``rung``'s result; resuming checks it."""
        shared = self.model_dump(mode="json", exclude={"name", "rungs", "next", "eval_every",
                                                       "log_every", "checkpoint_every",
                                                       "peak_flops", "hardware", "threads"})
        payload = json.dumps({"rung": rung.model_dump(mode="json"), **shared}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def load_spec(path: str | Path) -> LadderSpec:
    """Read and check a ladder spec from YAML (or JSON); errors name the file and the field."""
    return validate_config(LadderSpec, read_yaml(path, "ladder spec"), str(path),
                           expected="a mapping with at least 'rungs'")
