"""Memory per device: weights, gradients, optimizer state and activations under a parallel layout.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models"), bytes per layer for sequence s, micro-batch b, width h, heads a, with
tensor-parallel size t:

- no recomputation: s·b·h·(34 + 5·a·s/h), divided by t with sequence parallelism
  (with tensor parallelism alone, s·b·h·(10 + 24/t + 5·a·s/(h·t)));
- selective recomputation (attention scores recomputed): s·b·h·34 (/t);
- full recomputation (only each layer's input kept): 2·s·b·h (/t with sequence parallelism).

The formula is the paper's, for a GPT block (4h MLP, multi-head attention, 16-bit activations);
embedding and logits activations are not counted.

>>> from scaleguard.resources import model_preset
>>> llama = model_preset("llama-3-8b").with_seq(1024)
>>> estimate_memory(llama, Layout(recompute="selective")).activations / 2**30
4.25
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from scaleguard.errors import InputError
from scaleguard.resources._checks import check_positive
from scaleguard.resources._hardware import Device
from scaleguard.resources._model import ModelShape
from scaleguard.units import format_quantity

__all__ = [
    "OPTIMIZERS",
    "RECOMPUTE",
    "Layout",
    "MemoryEstimate",
    "activation_bytes_per_layer",
    "estimate_memory",
    "model_state_bytes",
]

# Bytes per parameter: (weights, gradients, optimizer state). Mixed-precision Adam keeps 16-bit
# weights and gradients plus fp32 master weights, momentum and variance: 2 + 2 + 12 = 16 B/param
# (Rajbhandari et al. 2020, ZeRO, K = 12); with fp32 gradient accumulation 2 + 4 + 12 = 18
# (DeepSpeed's ZeRO-3 memory estimator). Pure fp32 Adam: 4 + 4 + 8.
OPTIMIZERS: Final[dict[str, tuple[int, int, int]]] = {
    "adam-mixed": (2, 2, 12),
    "adam-mixed-fp32-grads": (2, 4, 12),
    "adam-fp32": (4, 4, 8),
    "sgd-momentum-mixed": (2, 2, 8),  # fp32 master weights + momentum
    "adam-bf16": (2, 2, 4),  # pure bf16 weights and moments, no master copy
}
RECOMPUTE: Final[tuple[str, ...]] = ("none", "selective", "full")
ZERO_STAGES: Final[tuple[int, ...]] = (0, 1, 2, 3)
# ZeRO-3 gathers one module's 16-bit weights and gradients at a time: 2 + 2 bytes per parameter
# of the largest module (DeepSpeed's estimate_zero3_model_states_mem_needs).
ZERO3_GATHER_BYTES_PER_PARAM: Final = 4
# Activations are stored in 16-bit (Korthikanti et al. 2022 count 2 bytes per element).
ACTIVATION_BYTES: Final = 2


@dataclass(frozen=True)
class Layout:
    """A parallel layout: tp × pp × dp devices, ZeRO stage, micro-batch and recomputation.

    ``zero`` 3 is what PyTorch FSDP's full sharding does; ``sequence_parallel`` applies with
    ``tp > 1`` (Megatron-LM's sequence parallelism).
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    zero: int = 0
    micro_batch: int = 1
    recompute: str = "selective"
    sequence_parallel: bool = True

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "micro_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected a positive integer, got {value!r}")
        if self.zero not in ZERO_STAGES:
            raise InputError(f"zero: expected a ZeRO stage 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise InputError(f"recompute: expected one of {', '.join(RECOMPUTE)}, "
                             f"got {self.recompute!r}")

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    def check(self, model: ModelShape) -> None:
        """Raise an :class:`InputError` naming the option if the layout cannot split ``model``."""
        problem = layout_problem(model, self)
        if problem is not None:
            raise InputError(problem)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The layout in words, for people: ``tp 4 × pp 1 × dp 128, ZeRO-3, micro-batch 1,
        selective recomputation``."""
        recompute = "no" if self.recompute == "none" else self.recompute
        return (f"tp {self.tp} × pp {self.pp} × dp {self.dp}, ZeRO-{self.zero}, "
                f"micro-batch {self.micro_batch}, {recompute} recomputation")

    def __repr__(self) -> str:
        return (f"Layout(tp={self.tp}, pp={self.pp}, dp={self.dp}, zero={self.zero}, "
                f"mb={self.micro_batch}, recompute={self.recompute})")


def layout_problem(model: ModelShape, layout: Layout) -> str | None:
    """Why ``layout`` cannot split ``model`` (one line naming the option), or None if it can."""
    if model.heads % layout.tp:
        return f"tp: {layout.tp} does not divide the {model.heads} attention heads of {model.name}"
    if model.kv_heads % layout.tp and layout.tp % model.kv_heads:
        return (f"tp: {layout.tp} neither divides nor is a multiple of the {model.kv_heads} "
                f"key/value heads of {model.name}")
    if model.layers % layout.pp:
        return f"pp: {layout.pp} does not divide the {model.layers} layers of {model.name}"
    return None


def activation_bytes_per_layer(seq: int, micro_batch: int, hidden: int, heads: int,
                               recompute: str = "selective", tp: int = 1,
                               sequence_parallel: bool = True) -> float:
    """Activation memory of one transformer layer (bytes), Korthikanti et al. 2022, Table 2."""
    if recompute not in RECOMPUTE:
        raise InputError(f"recompute: expected one of {', '.join(RECOMPUTE)}, got {recompute!r}")
    sbh = float(seq) * micro_batch * hidden
    attention = 5.0 * heads * seq / hidden  # softmax, its dropout mask and scores: the a·s/h term
    sp = sequence_parallel and tp > 1
    if recompute == "full":
        return ACTIVATION_BYTES * sbh / (tp if sp else 1)
    if sp:
        return sbh * (34.0 + (attention if recompute == "none" else 0.0)) / tp
    return sbh * (10.0 + 24.0 / tp + (attention / tp if recompute == "none" else 0.0))


def model_state_bytes(params: float, *, optimizer: str = "adam-mixed", zero: int = 0,
                      dp: int = 1, tp: int = 1, pp: int = 1,
                      largest_layer_params: float = 0.0) -> tuple[float, float, float, float]:
    """Per-device (weights, gradients, optimizer state, ZeRO-3 gather buffer) in bytes.

    ZeRO stage 1 shards optimizer state over ``dp``, stage 2 also gradients, stage 3 also
    weights (Rajbhandari et al. 2020); tensor and pipeline parallelism split all three.

    >>> states = model_state_bytes(2851e6, optimizer="adam-mixed-fp32-grads", zero=3, dp=8,
    ...                            largest_layer_params=32e6)  # DeepSpeed's t5-3b example
    >>> round(sum(states) / 2**30, 2)
    6.09
    """
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if zero not in ZERO_STAGES:
        raise InputError(f"zero: expected a ZeRO stage 0, 1, 2 or 3, got {zero!r}")
    local = check_positive(params, "params") / (tp * pp)
    weight_b, grad_b, optim_b = OPTIMIZERS[optimizer]
    weights = local * weight_b / (dp if zero >= 3 else 1)
    grads = local * grad_b / (dp if zero >= 2 else 1)
    optim = local * optim_b / (dp if zero >= 1 else 1)
    gather = (ZERO3_GATHER_BYTES_PER_PARAM * largest_layer_params / tp
              if zero >= 3 and dp > 1 else 0.0)
    return weights, grads, optim, gather


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one device holds for a model under a layout (the busiest: the first pipeline stage).

    ``capacity`` and ``fits`` are set when a device was given; ``fits`` compares ``total`` with
    ``usable`` (capacity × usable fraction).
    """

    model: str
    layout: Layout
    seq: int
    optimizer: str
    weights: float
    gradients: float
    optimizer_state: float
    zero3_gather: float
    activations: float
    capacity: float | None = None
    usable: float | None = None

    @property
    def total(self) -> float:
        return (self.weights + self.gradients + self.optimizer_state + self.zero3_gather
                + self.activations)

    @property
    def fits(self) -> bool | None:
        return None if self.usable is None else self.total <= self.usable

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layout": self.layout.as_dict(), "seq": self.seq,
                "optimizer": self.optimizer, "weights": self.weights,
                "gradients": self.gradients, "optimizer_state": self.optimizer_state,
                "zero3_gather": self.zero3_gather, "activations": self.activations,
                "total": self.total, "capacity": self.capacity, "usable": self.usable,
                "fits": self.fits}

    def __repr__(self) -> str:
        def size(value: float) -> str:
            return format_quantity(value, "bytes", digits=3)
        verdict = "" if self.fits is None else (
            f" of {size(self.usable or 0)} usable: {'fits' if self.fits else 'does not fit'}")
        return (f"MemoryEstimate({self.model}, {self.layout!r}: total {size(self.total)}"
                f"{verdict}; weights {size(self.weights)}, grads {size(self.gradients)}, "
                f"optimizer {size(self.optimizer_state)}, activations {size(self.activations)})")


# Share of device memory a training job can use: the CUDA context, NCCL buffers and the caching
# allocator's fragmentation take the rest (PyTorch's memory docs; a 10% margin is customary).
USABLE_MEMORY_FRACTION: Final = 0.9


def estimate_memory(model: ModelShape, layout: Layout, *, optimizer: str = "adam-mixed",
                    device: Device | None = None, in_flight_micro_batches: int | None = None,
                    usable_fraction: float = USABLE_MEMORY_FRACTION) -> MemoryEstimate:
    """Per-device memory of training ``model`` (at ``model.seq``) under ``layout``.

    With pipeline parallelism (1F1B schedule), the first stage keeps the activations of
    ``min(pp, in_flight_micro_batches)`` micro-batches for its ``layers / pp`` layers
    (Korthikanti et al. 2022, section 4.2.3): as much as all layers of one micro-batch.

    Raises
    ------
    InputError
        When the layout cannot split the model (``tp`` must divide the heads, ``pp`` the layers).
    """
    layout.check(model)
    weights, grads, optim, gather = model_state_bytes(
        model.params, optimizer=optimizer, zero=layout.zero, dp=layout.dp, tp=layout.tp,
        pp=layout.pp, largest_layer_params=model.largest_layer_params)
    in_flight = layout.pp if in_flight_micro_batches is None else min(
        layout.pp, int(check_positive(in_flight_micro_batches, "in_flight_micro_batches")))
    per_layer = activation_bytes_per_layer(model.seq, layout.micro_batch, model.hidden,
                                           model.heads, layout.recompute, layout.tp,
                                           layout.sequence_parallel)
    activations = per_layer * (model.layers // layout.pp) * in_flight
    capacity = None if device is None else device.memory_bytes
    usable = None if capacity is None else capacity * usable_fraction
    return MemoryEstimate(model.name, layout, model.seq, optimizer, weights, grads, optim,
                          gather, activations, capacity, usable)
