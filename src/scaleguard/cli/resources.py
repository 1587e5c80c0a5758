"""``scaleguard resources train|memory|plan|energy|serve|devices``: budgets from model and hardware.

Quantities are read and printed in human units (``--params 70B --tokens 2T --power 700W``); the
library underneath works in SI (:mod:`scaleguard.resources`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, print_json
from scaleguard.cli._table import Column, print_table
from scaleguard.errors import InputError
from scaleguard.units import format_quantity, parse_quantity

# scaleguard.resources is imported inside each command: it pulls in pydantic, YAML and pandas,
# which --help does not need.
if TYPE_CHECKING:
    from scaleguard.cli.demo import Written
    from scaleguard.resources import GridIntensity, ModelShape, Precision

resources_app = typer.Typer(
    help="Resources: FLOPs, memory, parallel layout, time, cost, energy, carbon and serving.",
    no_args_is_help=True,
)
app.add_typer(resources_app, name="resources")

GPU_OPTION = typer.Option(..., "--gpu", help="Device type, e.g. h100-sxm, a100-80gb, mi300x.")
HARDWARE_OPTION = typer.Option(None, "--hardware-file",
                               help="YAML file of extra devices, same shape as the catalog.")
MODEL_OPTION = typer.Option(None, "--model", help="Preset model, e.g. llama-3-8b, gpt-3-175b.")
CONFIG_OPTION = typer.Option(None, "--config", help="A Hugging Face config.json of the model.")
SEQ_OPTION = typer.Option(None, "--seq", help="Sequence length (default: the model's).")
REGION_OPTION = typer.Option(None, "--region",
                             help="Grid region: ISO code (FRA), country, gcp:REGION, usa:STATE, "
                                  "world (needs scaleguard[energy]).")
INTENSITY_OPTION = typer.Option(None, "--intensity",
                                help="Grid intensity, e.g. 0.429kg/kWh or 429g/kWh.")
PUE_OPTION = typer.Option(1.0, "--pue", help="Data-centre PUE (>= 1).")
PRICE_OPTION = typer.Option(None, "--price", help="Price per device-hour, in --currency.")
CURRENCY_OPTION = typer.Option("USD", "--currency", help="Currency of --price and the cost.")
CALIBRATION_OPTION = typer.Option(None, "--calibration",
                                  help="Calibration file from scaleguard resources calibrate.")
DTYPE_OPTION = typer.Option(None, "--dtype", help="Peak to use: bf16, fp16, fp8, tf32, fp32 "
                                                  "(default: the device's, fp16 on a V100).")
# Help texts of the measured defaults (scaleguard.resources' DEFAULT_MFU and MFU_SOURCE, its
# serving efficiencies and EFFICIENCY_SOURCE), written out so that --help imports nothing; a test
# checks that they agree.
MFU_HELP = ("default 0.4: Llama 3 pre-training's 38-43% on 8k-16k H100s (Dubey et al. 2024, "
            "Table 4)")
EFFICIENCY_HELP = ("default 0.7 of peak FLOP/s and 0.9 of bandwidth: llm-analysis's inference "
                   "defaults, matched to FasterTransformer's measured latencies")
ATTENTION_OPTION = typer.Option("fused", "--attention",
                                help="fused (FlashAttention/SDPA) or eager (s×s scores stored).")
GRADIENTS_OPTION = typer.Option("fp32", "--gradients",
                                help="Gradient precision: fp32 (Megatron-LM/DeepSpeed default), "
                                     "bf16 or fp16.")
MASTER_OPTION = typer.Option("fp32", "--master",
                             help="Master weights: fp32 (default) or none.")
OPTIMIZER_OPTION = typer.Option("adam", "--optimizer",
                                help="adam, adamw (8 B/param of fp32 state), sgd-momentum, sgd.")


def _positive(text: str | None, option: str, dimension: str = "count", *,
              integer: bool = False, maximum: float = math.inf) -> float:
    """Parse a human quantity given to ``option`` and insist on a positive value (at most
    ``maximum``: the work a command does is bounded before it starts)."""
    if text is None:
        raise InputError(f"{option}: required")
    value = parse_quantity(text, dimension, name=option)
    if value <= 0:
        raise InputError(f"{option}: expected a positive quantity, got {text!r}")
    if value > maximum:
        raise InputError(f"{option}: expected at most {maximum:,.0f}, got {text!r}")
    if integer and value != int(value):
        raise InputError(f"{option}: expected a whole number, got {text!r}")
    return value


def _max_devices() -> int:
    from scaleguard.resources._planner import MAX_DEVICES  # lazily: --help stays light

    return MAX_DEVICES


def _fraction(value: float, option: str) -> float:
    if not 0 < value <= 1:
        raise InputError(f"{option}: expected a fraction in (0, 1], got {value!r}")
    return value


def _model(model: str | None, config: Path | None, seq: str | None) -> ModelShape:
    from scaleguard.resources import model_from_hf_config, model_preset

    if (model is None) == (config is None):
        raise InputError("--model, --config: give exactly one (a preset name or a config.json)")
    shape = (model_preset(model, option="--model") if model is not None
             else model_from_hf_config(config))  # type: ignore[arg-type]
    if seq is not None:
        shape = shape.with_seq(int(_positive(seq, "--seq", integer=True)))
    return shape


def _intensity(region: str | None, intensity: str | None) -> GridIntensity | None:
    from scaleguard.resources import GridIntensity, grid_intensity, parse_intensity

    if region is not None and intensity is not None:
        raise InputError("--region, --intensity: give one or the other")
    if intensity is not None:
        return GridIntensity(parse_intensity(intensity, name="--intensity"))
    if region is not None:
        return grid_intensity(region)
    return None


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    print_table(console, title, ["quantity", Column("value", "right")], rows)


def _energy_rows(energy: Any) -> list[tuple[str, str]]:
    rows = [("energy (× PUE " + f"{energy.pue:g})", format_quantity(energy.energy_j, "energy",
                                                                   digits=4))]
    if energy.carbon_g is not None:
        where = f" ({energy.intensity.region})" if energy.intensity.region else ""
        rows.append((f"carbon at {energy.intensity.g_per_kwh:.4g} gCO2e/kWh{where}",
                     format_quantity(energy.carbon_g, "carbon", digits=4)))
    if energy.cost is not None:
        rows.append((f"cost at {energy.price_per_device_hour:g} {energy.currency} per "
                     "device-hour", f"{energy.cost:,.0f} {energy.currency}"))
    return rows


def _assumed(text: str) -> None:
    """One line saying a figure is an assumption, not a measurement."""
    console.print(f"[yellow]assumed[/]: {text}")


def _calibrated_mfu(path: Path, device: Any, params: float | None) -> tuple[float, str]:
    """The MFU a training calibration file gives at ``params``, and a line saying where from."""
    from scaleguard.resources import read_calibration

    cal = read_calibration(path, kind="training")
    at = cal.mfu_at(params)
    if at is None:
        raise InputError(f"--calibration: {path} has no MFU (its run gave no device peak); "
                         "calibrate against a catalog device")
    where = "" if cal.device in (None, device.key) else f", measured on {cal.device}"
    return at[0], (f"MFU {at[0]:.3f} [{at[1]:.3f}, {at[2]:.3f}] from {path} "
                   f"({cal.source}{where})")


@resources_app.command("train")
def train_command(
    gpu: str = GPU_OPTION,
    gpus: str = typer.Option(..., "--gpus", help="Number of devices, e.g. 2048 or 2k."),
    mfu: float | None = typer.Option(None, "--mfu", help=f"Model FLOPs utilisation ({MFU_HELP})."),
    throughput: str | None = typer.Option(
        None, "--throughput",
        help="Measured tokens/s per device, instead of --mfu (the MFU is derived from it)."),
    calibration: Path | None = CALIBRATION_OPTION,
    params: str | None = typer.Option(None, "--params", help="Parameters N, e.g. 70B."),
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens D, e.g. 2T."),
    flops: str | None = typer.Option(None, "--flops", help="Training compute C instead of N, D."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    dtype: str | None = DTYPE_OPTION,
    goodput: float = typer.Option(1.0, "--goodput", help="Share of wall time spent training."),
    power: str | None = typer.Option(None, "--power", help="Power per device (default: TDP)."),
    pue: float = PUE_OPTION,
    region: str | None = REGION_OPTION,
    intensity: str | None = INTENSITY_OPTION,
    price: float | None = PRICE_OPTION,
    currency: str = CURRENCY_OPTION,
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Training time, GPU-hours, energy, carbon and cost: 6·N·D (or PaLM's form with --model,
    from the active parameters of a mixture of experts)."""
    from scaleguard.resources import (
        DEFAULT_MFU,
        MFU_SOURCE,
        check_currency,
        estimate_training,
        flops_per_token,
        get_device,
        training_flops,
    )
    from scaleguard.resources import mfu as mfu_of

    device = get_device(gpu, hardware_file, option="--gpu")
    dtype = dtype or device.training_dtype
    currency = check_currency(currency, "--currency")
    count = _positive(gpus, "--gpus", integer=True, maximum=_max_devices())
    if sum(x is not None for x in (mfu, throughput, calibration)) > 1:
        raise InputError("--mfu, --throughput, --calibration: give at most one")
    _fraction(goodput, "--goodput")
    n = None if params is None else _positive(params, "--params")
    d = None if tokens is None else _positive(tokens, "--tokens")
    c = None if flops is None else _positive(flops, "--flops", "flop")
    formula = "given"
    active = None
    if model is not None or config is not None:
        shape = _model(model, config, seq)
        n = n if n is not None else float(shape.params)
        active = float(shape.active_params) if shape.is_moe else None
        if c is None:
            if d is None:
                raise InputError("--tokens: required with --model (or give --flops)")
            c = flops_per_token(shape) * d
            formula = (f"(6N{'_active' if active else ''} + 12·L·H·Q·T) · D, T={shape.seq}")
    elif c is None:
        if n is None or d is None:
            raise InputError("--params, --tokens: give both (or --flops, or --model and --tokens)")
        formula = "6·N·D"
        c = training_flops(n, d)
    if not math.isfinite(c):  # each option was finite, their product is not
        raise InputError(f"--tokens: the training compute ({formula}) is beyond the float64 "
                         "range; give smaller --params/--tokens")
    source = None
    if throughput is not None:
        if c is None or d is None:
            raise InputError("--throughput: needs --tokens (FLOPs per token = compute / tokens)")
        mfu = mfu_of(_positive(throughput, "--throughput"), c / d, device.peak(dtype))
        if mfu > 1:
            raise InputError(f"--throughput: {throughput} tokens/s per device implies MFU "
                             f"{mfu:.2f} > 1 at the {dtype} peak of {device.key}")
        source = f"MFU {mfu:.3f} from the measured throughput"
    elif calibration is not None:
        mfu, source = _calibrated_mfu(calibration, device, active or n)
    elif mfu is None:
        mfu = DEFAULT_MFU
    else:
        source = "given"
    _fraction(mfu, "--mfu")
    estimate = estimate_training(
        device=device, devices=int(count), mfu=mfu, params=n, tokens=d, flops=c, dtype=dtype,
        goodput=goodput, power_w=None if power is None else _positive(power, "--power", "power"),
        pue=pue, intensity=_intensity(region, intensity), price_per_device_hour=price,
        currency=currency)
    if as_json:
        print_json({**estimate.as_dict(), "active_params": active,
                    "mfu_source": source or f"assumed: {MFU_SOURCE}"})
        return
    rows = [
        ("parameters", "" if n is None else format_quantity(n, digits=4)),
        *([("active parameters", format_quantity(active, digits=4))] if active else []),
        ("tokens", "" if d is None else format_quantity(d, digits=4)),
        (f"compute ({formula})", f"{estimate.flops:.4g} FLOP"),
        (f"peak {dtype} per device", format_quantity(estimate.peak_flops, "flop_rate", digits=4)),
        ("time at MFU", format_quantity(estimate.compute_seconds, "duration", digits=4)),
        (f"wall time at goodput {goodput:g}",
         format_quantity(estimate.wall_seconds, "duration", digits=4)),
        ("device-hours", format_quantity(estimate.device_hours, digits=4)),
        ("cluster tokens/s (wall-time average)", "" if estimate.tokens_per_second is None
         else format_quantity(estimate.tokens_per_second, digits=4)),
        *_energy_rows(estimate.energy),
    ]
    _print_rows(f"training on {estimate.devices} x {device.key} at MFU {mfu:.3g}", rows)
    if source is None:
        _assumed(f"MFU {mfu:g} ({MFU_SOURCE}); measure yours with scaleguard resources "
                 "calibrate RUN and pass --calibration FILE")
    elif source != "given":
        console.print(source)


def _precision(gradients: str, master: str, device: Any = None) -> Precision:
    """The model-state precision; the working weights in the device's 16-bit type (fp16 on a
    V100), bf16 when no device is named."""
    from scaleguard.resources import Precision

    weights = "bf16" if device is None or device.training_dtype != "fp16" else "fp16"
    try:
        return Precision(weights=weights, gradients=gradients, master=master)
    except InputError as exc:
        raise InputError(f"--{exc}") from None


def _precision_line(precision: Precision, optimizer: str) -> str:
    from scaleguard.resources import OPTIMIZERS

    states = (precision.weight_bytes + precision.gradient_bytes + precision.master_bytes
              + OPTIMIZERS[optimizer])
    return (f"model states: {precision.describe()}, {optimizer} ({states} B/param; "
            "fp32 gradients and master weights are Megatron-LM's and DeepSpeed's defaults)")


@resources_app.command("memory")
def memory_command(
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    gpu: str | None = typer.Option(None, "--gpu", help="Device type, to say whether it fits."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel size."),
    pp: int = typer.Option(1, "--pp", help="Pipeline-parallel size."),
    dp: int = typer.Option(1, "--dp", help="Data-parallel size."),
    ep: int = typer.Option(1, "--ep", help="Expert-parallel size (divides --dp; MoE models)."),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3 (3 = FSDP full sharding)."),
    micro_batch: int = typer.Option(1, "--micro-batch", help="Sequences per micro-batch."),
    recompute: str = typer.Option("selective", "--recompute", help="none, selective or full."),
    attention: str = ATTENTION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    gradients: str = GRADIENTS_OPTION,
    master: str = MASTER_OPTION,
    sequence_parallel: bool = typer.Option(True, "--sequence-parallel/--no-sequence-parallel"),
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Memory per device for training: weights, gradients, optimizer state and activations."""
    from scaleguard.resources import (
        OPTIMIZERS,
        Layout,
        estimate_memory,
        get_device,
        layout_problem,
    )

    shape = _model(model, config, seq)
    try:
        layout = Layout(tp, pp, dp, zero, micro_batch, recompute, sequence_parallel, ep,
                        attention)
    except InputError as exc:
        raise InputError(f"--{str(exc).replace('_', '-')}") from None
    problem = layout_problem(shape, layout)
    if problem is not None:
        raise InputError(f"--{problem}")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer: expected one of {', '.join(OPTIMIZERS)}, "
                         f"got {optimizer!r}")
    device = None if gpu is None else get_device(gpu, hardware_file, option="--gpu")
    precision = _precision(gradients, master, device)
    estimate = estimate_memory(shape, layout, optimizer=optimizer, precision=precision,
                               device=device)
    if as_json:
        print_json(estimate.as_dict())
        return
    size = lambda v: format_quantity(v, "bytes", digits=4)  # noqa: E731
    rows = [("weights", size(estimate.weights)), ("gradients", size(estimate.gradients)),
            ("optimizer state", size(estimate.optimizer_state)),
            ("ZeRO-3 gather buffer", size(estimate.zero3_gather)),
            (f"activations ({recompute} recomputation, {attention} attention)",
             size(estimate.activations)),
            ("logits", size(estimate.logits)),
            ("total per device", size(estimate.total))]
    if estimate.usable is not None:
        rows.append((f"usable on {device.key}" if device else "usable", size(estimate.usable)))
        rows.append(("fits", "yes" if estimate.fits else "NO"))
    _print_rows(f"{shape.name} (seq {shape.seq}): {layout.describe()}", rows)
    console.print(_precision_line(precision, optimizer))


@resources_app.command("plan")
def plan_command(
    gpu: str = GPU_OPTION,
    gpus: str = typer.Option(..., "--gpus", help="Number of devices."),
    global_batch: str = typer.Option(..., "--global-batch", help="Sequences per optimizer step."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    attention: str = ATTENTION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    gradients: str = GRADIENTS_OPTION,
    master: str = MASTER_OPTION,
    dtype: str | None = DTYPE_OPTION,
    calibration: Path | None = CALIBRATION_OPTION,
    top: int = typer.Option(10, "--top", help="How many layouts to show."),
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Which tp × pp × dp (× ep) layouts fit, ranked by estimated step time, and why others do
    not."""
    from scaleguard.resources import ATTENTION, OPTIMIZERS, get_device, plan_layouts
    from scaleguard.resources._planner import COMPUTE_EFFICIENCY, MAX_DEVICES

    shape = _model(model, config, seq)
    device = get_device(gpu, hardware_file, option="--gpu")
    precision = _precision(gradients, master, device)
    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer: expected one of {', '.join(OPTIMIZERS)}, "
                         f"got {optimizer!r}")
    if attention not in ATTENTION:
        raise InputError(f"--attention: expected one of {', '.join(ATTENTION)}, "
                         f"got {attention!r}")
    efficiency, source = COMPUTE_EFFICIENCY, None
    if calibration is not None:
        efficiency, source = _calibrated_mfu(calibration, device, shape.active_params)
    count = _positive(gpus, "--gpus", integer=True, maximum=MAX_DEVICES)
    plan = plan_layouts(shape, device, int(count),
                        global_batch=int(_positive(global_batch, "--global-batch", integer=True)),
                        optimizer=optimizer, dtype=dtype, precision=precision,
                        attention=attention, efficiency=efficiency)
    if as_json:
        print_json({**plan.as_dict(), "efficiency": efficiency})
        return
    with_ep = shape.is_moe
    rows = [[str(c.layout.tp), str(c.layout.pp), str(c.layout.dp),
             *([str(c.layout.ep)] if with_ep else []), str(c.layout.zero),
             str(c.layout.micro_batch), c.layout.recompute,
             format_quantity(c.memory.total, "bytes", digits=3),
             format_quantity(c.step_seconds, "duration", digits=3), f"{c.mfu:.2f}"]
            for c in plan.candidates[:max(top, 0)]]
    print_table(console, f"{shape.name} on {plan.devices} x {device.key}, global batch "
                         f"{plan.global_batch} x {plan.seq} tokens: {len(plan.candidates)} "
                         f"layouts fit",
                [*(Column(h, "right") for h in ("tp", "pp", "dp", *(["ep"] if with_ep else []),
                                                "ZeRO", "mb")), "recompute",
                 *(Column(h, "right") for h in ("memory", "step", "MFU"))], rows,
                legend="mb: micro-batch (sequences); memory: per device; step: one optimizer "
                       "step, estimated")
    console.print(f"{attention} attention; " + _precision_line(precision, optimizer))
    if source is None:
        _assumed(f"kernels reach {efficiency:.0%} of peak before communication (torchtitan's "
                 "58% MFU for Llama 3 8B on 64 A100 with FSDP); --calibration FILE to use a "
                 "measured MFU")
    else:
        console.print(f"compute efficiency: {source} (communication included, so step times "
                      "are conservative)")
    if not plan.fits:
        console.print("[bold red]no layout fits[/]: more devices, ZeRO/FSDP, or a smaller model")
    counts = plan.rejection_counts()
    if counts:
        console.print("rejected: " + ", ".join(f"{n} for {k}" for k, n in counts.items()))
        shown: set[str] = set()
        for rejection in plan.rejected:
            kind = rejection.reason.split(":")[0]
            if kind not in shown:
                shown.add(kind)
                console.print(f"  e.g. {rejection.describe()}", markup=False)


@resources_app.command("energy")
def energy_command(
    gpu_hours: str | None = typer.Option(None, "--gpu-hours", help="Device-hours, e.g. 184320."),
    gpus: str | None = typer.Option(None, "--gpus", help="Devices (with --duration)."),
    duration: str | None = typer.Option(None, "--duration", help="Wall time, e.g. 14.8d."),
    power: str | None = typer.Option(None, "--power", help="Power per device, e.g. 330W."),
    gpu: str | None = typer.Option(None, "--gpu", help="Device type (its TDP when no --power)."),
    pue: float = PUE_OPTION,
    region: str | None = REGION_OPTION,
    intensity: str | None = INTENSITY_OPTION,
    price: float | None = PRICE_OPTION,
    currency: str = CURRENCY_OPTION,
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Energy, carbon and cost: devices × power × hours × PUE × grid intensity."""
    from scaleguard.resources import check_currency, energy_estimate, get_device

    currency = check_currency(currency, "--currency")
    if gpu_hours is not None:
        if gpus is not None or duration is not None:
            raise InputError("--gpu-hours: give it alone, or --gpus with --duration")
        hours = _positive(gpu_hours, "--gpu-hours")
    elif gpus is not None and duration is not None:
        hours = (_positive(gpus, "--gpus", maximum=_max_devices())
                 * _positive(duration, "--duration", "duration") / 3600.0)
    else:
        raise InputError("--gpu-hours: required (or --gpus with --duration)")
    if power is not None:
        watts = _positive(power, "--power", "power")
    elif gpu is not None:
        device = get_device(gpu, hardware_file, option="--gpu")
        if device.tdp_w is None:
            raise InputError(f"--power: {device.key} has no published TDP; give --power")
        watts = device.tdp_w
    else:
        raise InputError("--power: required (or --gpu to use its TDP)")
    if pue < 1:
        raise InputError(f"--pue: expected a power usage effectiveness >= 1, got {pue!r}")
    estimate = energy_estimate(hours, watts, pue=pue, intensity=_intensity(region, intensity),
                               price_per_device_hour=price, currency=currency)
    if as_json:
        print_json(estimate.as_dict())
        return
    rows = [("device-hours", format_quantity(hours, digits=4)),
            ("power per device", format_quantity(watts, "power", digits=4)),
            *_energy_rows(estimate)]
    _print_rows("energy, carbon and cost", rows)


@contextmanager
def _named_as_options(options: dict[str, str]) -> Iterator[None]:
    """Re-raise the library's refusals, which name its parameters (``batch: ...``), naming the
    command-line options the user typed instead (``--batch: ...``)."""
    try:
        yield
    except InputError as error:
        text = str(error)
        for name, flag in options.items():
            if text.startswith(f"{name}: "):
                raise type(error)(flag + text[len(name):]) from error
        raise


@resources_app.command("serve")
def serve_command(
    gpu: str = GPU_OPTION,
    rate: float = typer.Option(..., "--rate", help="Target requests per second."),
    prompt: str = typer.Option(..., "--prompt", help="Prompt tokens per request."),
    output: str = typer.Option(..., "--output", help="Output tokens per request."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    latency: str | None = typer.Option(None, "--latency", help="End-to-end target, e.g. 5s."),
    tp: int | None = typer.Option(None, "--tp", help="Devices per replica (default: fewest)."),
    batch: int | None = typer.Option(None, "--batch",
                                     help="Sequences per replica (default: the best that fits)."),
    efficiency: float | None = typer.Option(
        None, "--efficiency",
        help=f"Share of peak and bandwidth reached (1 = ideal); {EFFICIENCY_HELP}."),
    calibration: Path | None = CALIBRATION_OPTION,
    attention: str = ATTENTION_OPTION,
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Devices to serve a load: KV cache, roofline TTFT and time per output token, batch and
    replicas. Exits 1 when the latency target cannot be met."""
    from scaleguard.resources import (
        ATTENTION,
        EFFICIENCY_SOURCE,
        Layout,
        get_device,
        layout_problem,
        plan_serving,
        read_calibration,
    )

    shape = _model(model, config, None)
    device = get_device(gpu, hardware_file, option="--gpu")
    if not rate > 0:
        raise InputError(f"--rate: expected a positive request rate, got {rate!r}")
    if efficiency is not None and calibration is not None:
        raise InputError("--efficiency, --calibration: give one or the other")
    if efficiency is not None:
        _fraction(efficiency, "--efficiency")
    source = None
    if calibration is not None:
        cal = read_calibration(calibration, kind="serving")
        efficiency = cal.efficiency
        lower, upper = cal.value_at()[1:]
        source = (f"efficiency {efficiency:.3f} [{lower:.3f}, {min(upper, 1.0):.3f}] from "
                  f"{calibration} ({cal.source})")
    if batch is not None and batch < 1:
        raise InputError(f"--batch: expected a positive integer, got {batch!r}")
    if tp is not None:
        if tp < 1:
            raise InputError(f"--tp: expected a positive integer, got {tp!r}")
        problem = layout_problem(shape, Layout(tp=tp))
        if problem is not None:
            raise InputError(f"--{problem}")
    if attention not in ATTENTION:
        raise InputError(f"--attention: expected one of {', '.join(ATTENTION)}, "
                         f"got {attention!r}")
    prompt_tokens = int(_positive(prompt, "--prompt", integer=True))
    output_tokens = int(_positive(output, "--output", integer=True))
    max_latency = None if latency is None else _positive(latency, "--latency", "duration")
    with _named_as_options({"batch": "--batch", "prompt, output": "--prompt, --output"}):
        plan = plan_serving(shape, device, rate=rate, prompt=prompt_tokens, output=output_tokens,
                            max_latency=max_latency, tp=tp, batch=batch, efficiency=efficiency,
                            attention=attention)
    if as_json:
        print_json(plan.as_dict())
    elif not plan.feasible:
        console.print(f"[bold red]infeasible[/]: serving {shape.name} on {device.key}: "
                      f"{plan.reason}")
    else:
        seconds = lambda v: format_quantity(v, "duration", digits=3)  # noqa: E731
        rows = [("devices", str(plan.devices)),
                ("replicas x tp", f"{plan.replicas} x {plan.tp}"),
                ("batch per replica", str(plan.batch)),
                ("time to first token (TTFT, prefill)", seconds(plan.ttft_seconds)),
                ("time per output token (TPOT, decode)", seconds(plan.tpot_seconds)),
                ("request latency (TTFT + output x TPOT)", seconds(plan.latency)),
                ("requests/s per replica", f"{plan.requests_per_second_per_replica:.3g}"),
                ("output tokens/s per device", f"{plan.tokens_per_second_per_device:,.0f}"),
                ("memory per device (all experts resident)" if shape.is_moe
                 else "memory per device",
                 format_quantity(plan.memory_per_device, "bytes", digits=3))]
        title = f"serving {shape.name} on {device.key} at {rate:g} requests/s"
        _print_rows(title, rows)
        if source is not None:
            console.print(source)
        elif plan.efficiency_assumed:
            _assumed(f"{plan.compute_efficiency:.0%} of peak FLOP/s and "
                     f"{plan.bandwidth_efficiency:.0%} of memory bandwidth ({EFFICIENCY_SOURCE}); "
                     "calibrate from a serving benchmark with scaleguard resources calibrate "
                     "--serving")
    if not plan.feasible:
        raise typer.Exit(1)


@resources_app.command("calibrate")
def calibrate_command(
    run: str = typer.Argument(..., help="A ladder folder (or its ladder.csv), a run name in the "
                                        "monitor store, or with --serving a benchmark table."),
    out: Path = typer.Option(Path("calibration.json"), "--out", help="Calibration file to write."),
    serving: bool = typer.Option(False, "--serving", help="RUN is a serving benchmark (CSV/JSONL:"
                                 " prompt_tokens, output_tokens, latency_s[, batch])."),
    store: Path | None = typer.Option(None, "--store", help="Monitor store (default: "
                                      "$SCALEGUARD_STORE or scaleguard-runs.duckdb)."),
    metric: str = typer.Option("tokens_per_s", "--metric", help="Throughput metric of the run."),
    per_device: bool = typer.Option(False, "--per-device/--whole-job",
                                    help="The metric counts one device's tokens (default: "
                                         "the whole job's)."),
    gpu: str | None = typer.Option(None, "--gpu", help="Device the run used (default: the "
                                   "run's config 'device'/'gpu')."),
    gpus: int | None = typer.Option(None, "--gpus", help="Devices the run used (default: the "
                                    "run's config 'devices'/'gpus', else 1)."),
    tp: int = typer.Option(1, "--tp", help="Serving: devices per replica in the benchmark."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    dtype: str | None = DTYPE_OPTION,
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit the MFU a measured run reached (on a ladder, against model size) or the efficiency a
    serving benchmark reached, with an interval, and write it for --calibration."""
    from scaleguard.resources import (
        calibrate_ladder,
        calibrate_serving_benchmark,
        get_device,
        ladder_frame,
    )

    path = Path(run)
    if not serving and path.is_file() and path.suffix.lower() != ".csv":
        raise InputError(f"{run}: not a ladder table (.csv) or folder; give --serving for a "
                         "serving benchmark, or a monitor run's name")
    if serving:
        if gpu is None:
            raise InputError("--gpu: required with --serving (the benchmark's device)")
        device = get_device(gpu, hardware_file, option="--gpu")
        cal = calibrate_serving_benchmark(path, _model(model, config, seq), device, tp=tp)
    elif path.is_dir() or path.suffix.lower() == ".csv":
        peak = None
        if gpu is not None:
            device = get_device(gpu, hardware_file, option="--gpu")
            peak = device.peak(dtype or device.training_dtype)
        cal = calibrate_ladder(ladder_frame(path), peak_flops=peak,
                               device=None if gpu is None else device.key)
    else:
        cal = _calibrate_stored_run(run, store, metric=metric, per_device=per_device, gpu=gpu,
                                    gpus=gpus, model=model, config=config, seq=seq, dtype=dtype,
                                    hardware_file=hardware_file)
    cal.write(out)
    if as_json:
        print_json(cal.as_dict())
        return
    centre, lower, upper = cal.value_at()
    if cal.kind == "serving":
        console.print(f"serving efficiency {centre:.3f} [{lower:.3f}, {upper:.3f}] at "
                      f"{cal.level:.0%} over {cal.observations} requests")
    else:
        peak = cal.peak_flops
        figure = (f"MFU {centre / peak:.3f} [{lower / peak:.3f}, {upper / peak:.3f}]" if peak
                  else f"{format_quantity(centre, 'flop_rate', digits=3)} per device "
                       f"[{format_quantity(lower, 'flop_rate', digits=3)}, "
                       f"{format_quantity(upper, 'flop_rate', digits=3)}] (no peak: give "
                       "--gpu for an MFU)")
        console.print(f"achieved {figure} at {cal.level:.0%}, {cal.observations} observations")
        if cal.sxx > 0:
            console.print(f"on the ladder: achieved FLOP/s ~ N^{cal.slope:.3f} "
                          f"(MFU changes by {2 ** cal.slope - 1:+.1%} per doubling of N)")
    console.print(f"calibration: {out}  (use: --calibration {out})")


def _calibrate_stored_run(run: str, store: Path | None, *, metric: str, per_device: bool,
                          gpu: str | None, gpus: int | None, model: str | None,
                          config: Path | None, seq: str | None, dtype: str | None,
                          hardware_file: Path | None) -> Any:
    """Calibrate a run of the monitor store; model, device and count default to its config."""
    from scaleguard.monitor import open_store
    from scaleguard.resources import calibrate_run, get_device

    runs = open_store(store, read_only=True)
    try:
        settings = runs.resolve(run).config
        name = gpu or settings.get("device") or settings.get("gpu")
        if not name:
            raise InputError(f"--gpu: required (run {run!r}'s config names no device)")
        device = get_device(str(name), hardware_file, option="--gpu")
        if model is None and config is None:
            model = settings.get("model")
            if not isinstance(model, str):
                raise InputError(f"--model, --config: required (run {run!r}'s config names "
                                 "no model preset)")
        count = gpus or int(settings.get("devices") or settings.get("gpus") or 1)
        if count < 1:
            raise InputError(f"--gpus: expected a positive number of devices, got {count}")
        return calibrate_run(runs, run, _model(model, config, seq), device, count,
                             metric=metric, per_device=per_device, dtype=dtype)
    finally:
        runs.close()


@resources_app.command("devices")
def devices_command(
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The hardware catalog (with any devices from --hardware-file)."""
    from scaleguard.resources import load_catalog

    catalog = load_catalog(hardware_file)
    if as_json:
        print_json({key: device.as_dict() for key, device in catalog.items()})
        return
    rows = []
    for key, device in catalog.items():
        peak = device.peak_flops
        rows.append([key, format_quantity(device.memory_bytes, "bytes", digits=4),
                     f"{device.memory_bandwidth / 1e9:,.0f} GB/s",
                     format_quantity(peak["bf16"], "flop_rate", digits=4) if "bf16" in peak
                     else "", format_quantity(peak["fp8"], "flop_rate", digits=4)
                     if "fp8" in peak else "",
                     "" if device.tdp_w is None else format_quantity(device.tdp_w, "power")])
    print_table(console, "hardware catalog", ["device", *(Column(h, "right") for h in (
        "memory", "bandwidth", "bf16 peak", "fp8 peak", "TDP"))], rows)


# The demo's target run: a Llama-3-70B-shaped model on 2T tokens, 512 H100s at MFU 0.4, on a
# grid of the given intensity (CodeCarbon's region data is an extra; the demo runs without it).
DEMO_MODEL = "llama-3-70b"
DEMO_TOKENS = 2e12
DEMO_GPU = "h100-sxm"
DEMO_GPUS = 512
DEMO_MFU = 0.4
DEMO_INTENSITY_G_PER_KWH = 429.0  # Patterson et al. 2021's US-average figure
DEMO_PUE = 1.1


def demo_step(out: Path) -> list[Written]:
    """``scaleguard demo``: the budget of a target run, its layout, its serving, measured."""
    from scaleguard.cli.demo import Written  # demo imports this module's package first
    from scaleguard.resources import (
        estimate_training,
        flops_per_token,
        measure,
        model_preset,
        plan_layouts,
        plan_serving,
    )

    shape = model_preset(DEMO_MODEL)
    with measure("demo-resources") as meter:
        training = estimate_training(device=DEMO_GPU, devices=DEMO_GPUS, mfu=DEMO_MFU,
                                     params=shape.params, tokens=DEMO_TOKENS,
                                     flops=flops_per_token(shape) * DEMO_TOKENS, pue=DEMO_PUE,
                                     intensity=DEMO_INTENSITY_G_PER_KWH)
        plan = plan_layouts(shape, DEMO_GPU, DEMO_GPUS, global_batch=512)
        serving = plan_serving(shape, DEMO_GPU, rate=10, prompt=2000, output=300,
                               max_latency=10.0)
    assert meter.result is not None
    best = plan.best
    payload = {
        "model": shape.as_dict(),
        "training": training.as_dict(),
        "layout": {"fits": plan.fits, "best": None if best is None else best.as_dict(),
                   "top": [c.as_dict() for c in plan.candidates[:5]],
                   "rejection_counts": plan.rejection_counts()},
        "serving": serving.as_dict(),
        "measurement_of_this_estimate": meter.result.as_dict(),
    }
    path = out / "resources_target_run.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    days = training.wall_seconds / 86400
    return [Written(path, f"{DEMO_MODEL} on {DEMO_GPUS} x {DEMO_GPU}: {days:.0f} days, "
                          f"best layout {best.layout.describe()}" if best
                          else "no layout fits")]
