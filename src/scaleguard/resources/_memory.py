"""Memory per device: weights, gradients, optimizer state and activations under a parallel layout.

Activations extend Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", section 4.1) from the model's shape, per layer for sequence s, micro-batch b,
width h, heads a, tensor-parallel size t (bytes per token in brackets, 16-bit activations):

- kept whole on every tensor-parallel rank unless sequence parallelism splits them: the two norms'
  inputs (4·h each: autocast, torchtitan and Hugging Face run norms in fp32 and keep the fp32
  input; 2·h with Megatron-LM's fused 16-bit norms, as in the paper), the QKV and MLP inputs
  (2·h each) and two dropout masks (h each);
- split over t: Q, K, V (2·(h + 2·kv_heads·head_dim): grouped-query attention shrinks K and V),
  the output projection's input (2·h) and the MLP: 4·ffn for GPT's two matrices (fc1 output and
  GELU output), 6·ffn for a gated MLP (gate and up outputs, and their product);
- core attention, with ``attention="eager"`` the s×s scores, softmax and dropout (5·a·s, the
  paper's term); with ``attention="fused"`` (FlashAttention, PyTorch SDPA) only the kernel's own
  copy of its output (2·h) and the fp32 log-sum-exp (4·a). Selective recomputation drops it;
  full recomputation keeps only each layer's input (2·h);
- a mixture-of-experts MLP keeps, for each of the ``experts_per_token`` experts a token visits,
  the permuted input (2·h) and that expert's MLP, plus the shared experts and fp32 router logits.

For a GPT block (4h MLP, multi-head attention) with eager attention and 16-bit norms this is the
paper's s·b·h·(34 + 5·a·s/h), exactly; fp32 norms add 4·s·b·h. The logits (2·vocab per token,
split over t) are counted separately, on the last pipeline stage.

>>> from scaleguard.resources import model_preset
>>> gpt = model_preset("gpt-3-6.7b").with_seq(1024)
>>> estimate_memory(gpt, Layout(recompute="selective"), norm_bytes=2).activations / 2**30
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
    "ATTENTION",
    "GRADIENT_DTYPES",
    "MASTER_DTYPES",
    "OPTIMIZERS",
    "RECOMPUTE",
    "Layout",
    "MemoryEstimate",
    "Precision",
    "activation_bytes_per_layer",
    "estimate_memory",
    "logits_bytes",
    "model_state_bytes",
]

# Optimizer state in fp32 bytes per parameter, besides the master weights: Adam keeps momentum
# and variance (8), SGD with momentum one buffer (4), plain SGD none.
OPTIMIZERS: Final[dict[str, int]] = {"adam": 8, "adamw": 8, "sgd-momentum": 4, "sgd": 0}
WEIGHT_DTYPES: Final[dict[str, int]] = {"bf16": 2, "fp16": 2, "fp32": 4}
GRADIENT_DTYPES: Final[dict[str, int]] = {"fp32": 4, "bf16": 2, "fp16": 2}
MASTER_DTYPES: Final[dict[str, int]] = {"fp32": 4, "none": 0}
RECOMPUTE: Final[tuple[str, ...]] = ("none", "selective", "full")
ATTENTION: Final[tuple[str, ...]] = ("fused", "eager")
ZERO_STAGES: Final[tuple[int, ...]] = (0, 1, 2, 3)
# ZeRO-3 gathers one module's 16-bit weights and gradients at a time: 2 + 2 bytes per parameter
# of the largest module (DeepSpeed's estimate_zero3_model_states_mem_needs).
ZERO3_GATHER_BYTES_PER_PARAM: Final = 4
# Activations are stored in 16-bit (Korthikanti et al. 2022 count 2 bytes per element).
ACTIVATION_BYTES: Final = 2
# FlashAttention keeps the row-wise log-sum-exp of the scores in fp32 for its backward pass
# (Dao et al. 2022, Algorithm 2), one per head and token.
LOGSUMEXP_BYTES: Final = 4
ROUTER_LOGIT_BYTES: Final = 4  # MoE routers compute their softmax/sigmoid in fp32
# What each norm keeps of its input per element: fp32 under autocast and in torchtitan's and
# Hugging Face's RMSNorm (llm-analysis's default too); Megatron-LM's fused norms keep 2.
NORM_BYTES: Final = 4


def _lookup(table: dict[str, int], value: str, name: str) -> int:
    if value not in table:
        raise InputError(f"{name}: expected one of {', '.join(table)}, got {value!r}")
    return table[value]


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of the model states under mixed precision.

    The defaults are Megatron-LM's and DeepSpeed's: 16-bit working weights, gradients accumulated
    and all-reduced in fp32 (Megatron-LM turns ``accumulate_allreduce_grads_in_fp32`` on with
    ``--bf16``; DeepSpeed's ZeRO estimator counts 18 bytes per parameter for Adam) and fp32
    master weights in the optimizer: 2 + 4 + (4 + 8) = 18 bytes per parameter with Adam.
    ``master="none"`` updates the working weights directly (pure bf16 or fp32 training).
    """

    weights: str = "bf16"
    gradients: str = "fp32"
    master: str = "fp32"

    def __post_init__(self) -> None:
        _lookup(WEIGHT_DTYPES, self.weights, "weights")
        _lookup(GRADIENT_DTYPES, self.gradients, "gradients")
        _lookup(MASTER_DTYPES, self.master, "master")

    @property
    def weight_bytes(self) -> int:
        return WEIGHT_DTYPES[self.weights]

    @property
    def gradient_bytes(self) -> int:
        return GRADIENT_DTYPES[self.gradients]

    @property
    def master_bytes(self) -> int:
        return MASTER_DTYPES[self.master]

    def describe(self) -> str:
        master = "no master copy" if self.master == "none" else f"{self.master} master weights"
        return f"{self.weights} weights, {self.gradients} gradients, {master}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """A parallel layout: tp × pp × dp devices, ZeRO stage, micro-batch and recomputation.

    ``zero`` 3 is what PyTorch FSDP's full sharding does; ``sequence_parallel`` applies with
    ``tp > 1`` (Megatron-LM's sequence parallelism). ``ep`` splits a mixture of experts' routed
    experts over that many data-parallel ranks (it divides ``dp``, as in Megatron-Core).
    ``attention`` is ``fused`` (FlashAttention/SDPA) or ``eager`` (the s×s scores are stored).
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    zero: int = 0
    micro_batch: int = 1
    recompute: str = "selective"
    sequence_parallel: bool = True
    ep: int = 1
    attention: str = "fused"

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "micro_batch", "ep"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected a positive integer, got {value!r}")
        if self.zero not in ZERO_STAGES:
            raise InputError(f"zero: expected a ZeRO stage 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise InputError(f"recompute: expected one of {', '.join(RECOMPUTE)}, "
                             f"got {self.recompute!r}")
        if self.attention not in ATTENTION:
            raise InputError(f"attention: expected one of {', '.join(ATTENTION)}, "
                             f"got {self.attention!r}")
        if self.dp % self.ep:
            raise InputError(f"ep: {self.ep} does not divide dp={self.dp} (experts are split "
                             "over data-parallel ranks)")

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
        experts = f" × ep {self.ep}" if self.ep > 1 else ""
        return (f"tp {self.tp} × pp {self.pp} × dp {self.dp}{experts}, ZeRO-{self.zero}, "
                f"micro-batch {self.micro_batch}, {recompute} recomputation")

    def __repr__(self) -> str:
        ep = f", ep={self.ep}" if self.ep > 1 else ""
        return (f"Layout(tp={self.tp}, pp={self.pp}, dp={self.dp}{ep}, zero={self.zero}, "
                f"mb={self.micro_batch}, recompute={self.recompute}, "
                f"attention={self.attention})")


def layout_problem(model: ModelShape, layout: Layout) -> str | None:
    """Why ``layout`` cannot split ``model`` (one line naming the option), or None if it can."""
    if model.heads % layout.tp:
        return f"tp: {layout.tp} does not divide the {model.heads} attention heads of {model.name}"
    if model.kv_heads % layout.tp and layout.tp % model.kv_heads:
        return (f"tp: {layout.tp} neither divides nor is a multiple of the {model.kv_heads} "
                f"key/value heads of {model.name}")
    if model.layers % layout.pp:
        return f"pp: {layout.pp} does not divide the {model.layers} layers of {model.name}"
    if layout.ep > 1 and not model.is_moe:
        return f"ep: {model.name} has no experts to split over {layout.ep} ranks"
    if model.is_moe and model.experts % layout.ep:
        return f"ep: {layout.ep} does not divide the {model.experts} experts of {model.name}"
    return None


def _attention_widths(model: ModelShape) -> tuple[int, int, int]:
    """Widths of Q, K and V per token (latent attention materialises full-width K and V)."""
    if model.latent is not None:
        return (model.heads * model.qk_head_dim, model.heads * model.qk_head_dim,
                model.heads * model.v_head_dim)
    kv = model.kv_heads * model.head_dim
    return model.hidden, kv, kv


def activation_bytes_per_layer(model: ModelShape, layout: Layout, *, moe: bool = False,
                               norm_bytes: int = NORM_BYTES) -> float:
    """Activation memory of one transformer layer (bytes) at ``model.seq``, the module's formula.

    ``moe`` picks an MoE layer's MLP (for a mixture of experts); ``norm_bytes`` is what each
    norm keeps of its input per element (:data:`NORM_BYTES`; 2 reproduces the paper).
    """
    tokens = float(model.seq) * layout.micro_batch
    h = model.hidden
    tp = layout.tp
    whole = tp if (layout.sequence_parallel and tp > 1) else 1  # divisor of the un-split part
    if layout.recompute == "full":
        return ACTIVATION_BYTES * tokens * h / whole
    gated = 6 if model.gated_ffn else 4
    q, k, v = _attention_widths(model)
    out = model.heads * model.v_head_dim
    replicated = 2 * (norm_bytes * h + ACTIVATION_BYTES * h + h)  # norms, inputs, dropout masks
    split: float = ACTIVATION_BYTES * (q + k + v + out)
    if layout.recompute == "none":
        split += (5.0 * model.heads * model.seq if layout.attention == "eager"
                  else ACTIVATION_BYTES * out + LOGSUMEXP_BYTES * model.heads)
    if moe:
        per_expert = ACTIVATION_BYTES * h + gated * model.expert_ffn
        split += model.experts_per_token * per_expert + gated * model.shared_ffn
        replicated += ROUTER_LOGIT_BYTES * model.experts
    else:
        split += gated * model.ffn
    return tokens * (replicated / whole + split / tp)


def logits_bytes(model: ModelShape, layout: Layout) -> float:
    """The 16-bit logits of one micro-batch, split over the tensor-parallel vocabulary."""
    return (ACTIVATION_BYTES * float(model.seq) * layout.micro_batch * model.vocab / layout.tp)


def _split(params: float, shard: int, stage: int, bytes_per: int, *, level: int) -> float:
    return params * bytes_per / (shard if stage >= level else 1)


def model_state_bytes(params: float, *, optimizer: str = "adam",
                      precision: Precision | None = None, zero: int = 0, dp: int = 1,
                      tp: int = 1, pp: int = 1, ep: int = 1, expert_params: float = 0.0,
                      largest_layer_params: float = 0.0) -> tuple[float, float, float, float]:
    """Per-device (weights, gradients, optimizer state, ZeRO-3 gather buffer) in bytes.

    ZeRO stage 1 shards optimizer state (master weights and moments) over ``dp``, stage 2 also
    gradients, stage 3 also weights (Rajbhandari et al. 2020); tensor and pipeline parallelism
    split all three. ``expert_params`` of the total are routed experts: split further over
    ``ep`` and sharded over the ``dp / ep`` ranks that hold the same experts.

    >>> states = model_state_bytes(2851e6, zero=3, dp=8,
    ...                            largest_layer_params=32e6)  # DeepSpeed's t5-3b example
    >>> round(sum(states) / 2**30, 2)
    6.09
    """
    moments = _lookup(OPTIMIZERS, optimizer, "optimizer")
    precision = precision or Precision()
    if zero not in ZERO_STAGES:
        raise InputError(f"zero: expected a ZeRO stage 0, 1, 2 or 3, got {zero!r}")
    total = check_positive(params, "params")
    experts = check_positive(expert_params, "expert_params", allow_zero=True)
    parts = (((total - experts) / (tp * pp), dp), (experts / (tp * pp * ep), max(dp // ep, 1)))
    optim_bytes = precision.master_bytes + moments
    weights = sum(_split(n, g, zero, precision.weight_bytes, level=3) for n, g in parts)
    grads = sum(_split(n, g, zero, precision.gradient_bytes, level=2) for n, g in parts)
    optim = sum(_split(n, g, zero, optim_bytes, level=1) for n, g in parts)
    gather = (ZERO3_GATHER_BYTES_PER_PARAM * largest_layer_params / tp
              if zero >= 3 and dp > 1 else 0.0)
    return weights, grads, optim, gather


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one device holds for a model under a layout (the busiest pipeline stage).

    ``activations`` are the transformer layers'; ``logits`` those of the output layer (on the
    last stage; zero when the first stage, holding more micro-batches in flight, is busier).
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
    logits: float = 0.0
    precision: Precision = Precision()

    @property
    def total(self) -> float:
        return (self.weights + self.gradients + self.optimizer_state + self.zero3_gather
                + self.activations + self.logits)

    @property
    def fits(self) -> bool | None:
        return None if self.usable is None else self.total <= self.usable

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layout": self.layout.as_dict(), "seq": self.seq,
                "optimizer": self.optimizer, "precision": self.precision.as_dict(),
                "weights": self.weights, "gradients": self.gradients,
                "optimizer_state": self.optimizer_state, "zero3_gather": self.zero3_gather,
                "activations": self.activations, "logits": self.logits, "total": self.total,
                "capacity": self.capacity, "usable": self.usable, "fits": self.fits}

    def __repr__(self) -> str:
        def size(value: float) -> str:
            return format_quantity(value, "bytes", digits=3)
        verdict = "" if self.fits is None else (
            f" of {size(self.usable or 0)} usable: {'fits' if self.fits else 'does not fit'}")
        return (f"MemoryEstimate({self.model}, {self.layout!r}: total {size(self.total)}"
                f"{verdict}; weights {size(self.weights)}, grads {size(self.gradients)}, "
                f"optimizer {size(self.optimizer_state)}, activations {size(self.activations)}, "
                f"logits {size(self.logits)})")


# Share of device memory a training job can use: the CUDA context, NCCL buffers and the caching
# allocator's fragmentation take the rest (PyTorch's memory docs; a 10% margin is customary).
USABLE_MEMORY_FRACTION: Final = 0.9


def layer_activations(model: ModelShape, layout: Layout, *,
                      norm_bytes: int = NORM_BYTES) -> float:
    """Activations of all layers for one micro-batch (dense and MoE layers each counted)."""
    dense = activation_bytes_per_layer(model, layout, norm_bytes=norm_bytes)
    if not model.is_moe:
        return dense * model.layers
    moe = activation_bytes_per_layer(model, layout, moe=True, norm_bytes=norm_bytes)
    return dense * model.dense_layers + moe * model.moe_layers


def estimate_memory(model: ModelShape, layout: Layout, *, optimizer: str = "adam",
                    precision: Precision | None = None, device: Device | None = None,
                    in_flight_micro_batches: int | None = None,
                    usable_fraction: float = USABLE_MEMORY_FRACTION,
                    norm_bytes: int = NORM_BYTES) -> MemoryEstimate:
    """Per-device memory of training ``model`` (at ``model.seq``) under ``layout``.

    With pipeline parallelism (1F1B schedule), the first stage keeps the activations of
    ``min(pp, in_flight_micro_batches)`` micro-batches for its ``layers / pp`` layers
    (Korthikanti et al. 2022, section 4.2.3): as much as all layers of one micro-batch. The last
    stage keeps one micro-batch and the logits; the busier of the two is reported.

    Raises
    ------
    InputError
        When the layout cannot split the model (``tp`` must divide the heads, ``pp`` the layers,
        ``ep`` the experts).
    """
    layout.check(model)
    precision = precision or Precision()
    weights, grads, optim, gather = model_state_bytes(
        model.params, optimizer=optimizer, precision=precision, zero=layout.zero,
        dp=layout.dp, tp=layout.tp, pp=layout.pp, ep=layout.ep,
        expert_params=model.expert_params, largest_layer_params=model.largest_layer_params)
    in_flight = layout.pp if in_flight_micro_batches is None else min(
        layout.pp, int(check_positive(in_flight_micro_batches, "in_flight_micro_batches")))
    stage = layer_activations(model, layout, norm_bytes=norm_bytes) / layout.pp
    logits = logits_bytes(model, layout)
    first, last = stage * in_flight, stage + logits
    activations, logits = (stage, logits) if last >= first else (first, 0.0)
    capacity = None if device is None else device.memory_bytes
    usable = None if capacity is None else capacity * usable_fraction
    return MemoryEstimate(model.name, layout, model.seq, optimizer, weights, grads, optim,
                          gather, activations, capacity, usable, logits, precision)
