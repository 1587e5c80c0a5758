"""Resource management: what a training or serving step costs.

FLOPs, memory per device, parallel layout, wall time, GPU-hours, money, energy and carbon, from a
model shape and the hardware catalog; serving capacity from a roofline; and live energy
measurement with :func:`measure`. Everything here is pure arithmetic on SI units, except
:func:`measure` (which reads energy counters) and the catalog/config readers.

>>> from scaleguard.resources import estimate_training
>>> run = estimate_training(params=175e9, tokens=300e9, device="v100-sxm", devices=10_000,
...                         mfu=0.2, dtype="fp16", power_w=330, pue=1.1, intensity=429)
>>> run.flops, round(run.wall_seconds / 86400, 1)  # GPT-3: FLOP, days
(3.15e+23, 14.6)
"""

from scaleguard.resources._calibrate_inputs import (
    calibrate_ladder,
    calibrate_run,
    calibrate_serving_benchmark,
    ladder_frame,
    rung_model_flops,
)
from scaleguard.resources._calibration import (
    Calibration,
    calibrate_serving,
    calibrate_training,
    read_calibration,
)
from scaleguard.resources._carbon import GridIntensity, grid_intensity, parse_intensity
from scaleguard.resources._compute import (
    DEFAULT_MFU,
    MFU_SOURCE,
    attention_flops_per_token,
    flops_per_token,
    goodput,
    mfu,
    tokens_per_second,
    training_flops,
    training_seconds,
)
from scaleguard.resources._energy import EnergyEstimate, check_currency, energy_estimate
from scaleguard.resources._hardware import DTYPES, Device, get_device, load_catalog
from scaleguard.resources._measure import EnergyMeter, Measurement, measure
from scaleguard.resources._memory import (
    ATTENTION,
    GRADIENT_DTYPES,
    MASTER_DTYPES,
    OPTIMIZERS,
    RECOMPUTE,
    Layout,
    MemoryEstimate,
    Precision,
    activation_bytes_per_layer,
    estimate_memory,
    layer_activations,
    layout_problem,
    logits_bytes,
    model_state_bytes,
)
from scaleguard.resources._model import (
    MODEL_PRESETS,
    LatentAttention,
    ModelShape,
    model_from_hf_config,
    model_preset,
)
from scaleguard.resources._planner import LayoutCandidate, LayoutPlan, Rejection, plan_layouts
from scaleguard.resources._serving import (
    EFFICIENCY_SOURCE,
    RooflineStep,
    ServingPlan,
    decode_step,
    kv_cache_bytes_per_token,
    plan_serving,
    prefill_step,
)
from scaleguard.resources._training import TrainingEstimate, estimate_training

__all__ = [
    "ATTENTION",
    "Calibration",
    "DEFAULT_MFU",
    "DTYPES",
    "EFFICIENCY_SOURCE",
    "GRADIENT_DTYPES",
    "MASTER_DTYPES",
    "MFU_SOURCE",
    "MODEL_PRESETS",
    "OPTIMIZERS",
    "RECOMPUTE",
    "Device",
    "EnergyEstimate",
    "EnergyMeter",
    "GridIntensity",
    "LatentAttention",
    "Layout",
    "LayoutCandidate",
    "LayoutPlan",
    "Measurement",
    "MemoryEstimate",
    "Precision",
    "ModelShape",
    "Rejection",
    "RooflineStep",
    "ServingPlan",
    "TrainingEstimate",
    "activation_bytes_per_layer",
    "attention_flops_per_token",
    "calibrate_ladder",
    "calibrate_run",
    "calibrate_serving",
    "calibrate_serving_benchmark",
    "calibrate_training",
    "check_currency",
    "decode_step",
    "energy_estimate",
    "estimate_memory",
    "estimate_training",
    "flops_per_token",
    "get_device",
    "goodput",
    "grid_intensity",
    "kv_cache_bytes_per_token",
    "ladder_frame",
    "layer_activations",
    "layout_problem",
    "load_catalog",
    "logits_bytes",
    "measure",
    "mfu",
    "model_from_hf_config",
    "model_preset",
    "model_state_bytes",
    "parse_intensity",
    "plan_layouts",
    "plan_serving",
    "prefill_step",
    "read_calibration",
    "rung_model_flops",
    "tokens_per_second",
    "training_flops",
    "training_seconds",
]
