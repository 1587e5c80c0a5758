"""``scaleguard resources train|memory|plan|energy|serve|devices``: budgets from model and hardware.

Quantities are read and printed in human units (``--params 70B --tokens 2T --power 700W``); the
library underneath works in SI (:mod:`scaleguard.resources`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, print_json
from scaleguard.errors import InputError
from scaleguard.units import format_quantity, parse_quantity

# scaleguard.resources is imported inside each command: it pulls in pydantic, YAML and pandas,
# which --help does not need.
if TYPE_CHECKING:
    from scaleguard.cli.demo import Written
    from scaleguard.resources import GridIntensity, ModelShape

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
PRICE_OPTION = typer.Option(None, "--price", help="Price per device-hour (any currency).")


def _positive(text: str | None, option: str, dimension: str = "count", *,
              integer: bool = False, maximum: float = math.inf) -> float:
    """Parse a human quantity given to ``option`` and insist on a positive value (at most
    ``maximum``: the work a command does is bounded before it starts)."""
    if text is None:
        raise InputError(f"{option}: required")
    value = parse_quantity(text, dimension, name=option)
    if value <= 0:
        raise InputError(f"{option}: expected a positive quantity, got {text!r}")
    if integer and value != int(value):
        raise InputError(f"{option}: expected a whole number, got {text!r}")
    if value > maximum:
        raise InputError(f"{option}: expected at most {maximum:,.0f}, got {text!r}")
    return value


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


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _energy_rows(energy: Any) -> list[tuple[str, str]]:
    rows = [("energy (× PUE " + f"{energy.pue:g})", format_quantity(energy.energy_j, "energy",
                                                                   digits=4))]
    if energy.carbon_g is not None:
        where = f" ({energy.intensity.region})" if energy.intensity.region else ""
        rows.append((f"carbon at {energy.intensity.g_per_kwh:.4g} gCO2e/kWh{where}",
                     format_quantity(energy.carbon_g, "carbon", digits=4)))
    if energy.cost is not None:
        rows.append((f"cost at {energy.price_per_device_hour:g} per device-hour",
                     f"{energy.cost:,.0f}"))
    return rows


@resources_app.command("train")
def train_command(
    gpu: str = GPU_OPTION,
    gpus: str = typer.Option(..., "--gpus", help="Number of devices, e.g. 2048 or 2k."),
    mfu: float | None = typer.Option(None, "--mfu", help="Model FLOPs utilisation, e.g. 0.4."),
    throughput: str | None = typer.Option(
        None, "--throughput",
        help="Measured tokens/s per device, instead of --mfu (the MFU is derived from it)."),
    params: str | None = typer.Option(None, "--params", help="Parameters N, e.g. 70B."),
    tokens: str | None = typer.Option(None, "--tokens", help="Training tokens D, e.g. 2T."),
    flops: str | None = typer.Option(None, "--flops", help="Training compute C instead of N, D."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    dtype: str = typer.Option("bf16", "--dtype", help="Peak to use: bf16, fp16, fp8, tf32, fp32."),
    goodput: float = typer.Option(1.0, "--goodput", help="Share of wall time spent training."),
    power: str | None = typer.Option(None, "--power", help="Power per device (default: TDP)."),
    pue: float = PUE_OPTION,
    region: str | None = REGION_OPTION,
    intensity: str | None = INTENSITY_OPTION,
    price: float | None = PRICE_OPTION,
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Training time, GPU-hours, energy, carbon and cost: 6·N·D (or PaLM's form with --model)."""
    from scaleguard.resources import estimate_training, flops_per_token, get_device, training_flops
    from scaleguard.resources import mfu as mfu_of

    device = get_device(gpu, hardware_file, option="--gpu")
    count = _positive(gpus, "--gpus", integer=True)
    if (mfu is None) == (throughput is None):
        raise InputError("--mfu, --throughput: give exactly one")
    _fraction(goodput, "--goodput")
    n = None if params is None else _positive(params, "--params")
    d = None if tokens is None else _positive(tokens, "--tokens")
    c = None if flops is None else _positive(flops, "--flops", "flop")
    formula = "given"
    if model is not None or config is not None:
        shape = _model(model, config, seq)
        n = n if n is not None else float(shape.params)
        if c is None:
            if d is None:
                raise InputError("--tokens: required with --model (or give --flops)")
            c = flops_per_token(shape) * d
            formula = f"(6N + 12·L·H·Q·T) · D, T={shape.seq}"
    elif c is None:
        if n is None or d is None:
            raise InputError("--params, --tokens: give both (or --flops, or --model and --tokens)")
        formula = "6·N·D"
        c = training_flops(n, d)
    if throughput is not None:
        if c is None or d is None:
            raise InputError("--throughput: needs --tokens (FLOPs per token = compute / tokens)")
        mfu = mfu_of(_positive(throughput, "--throughput"), c / d, device.peak(dtype))
        if mfu > 1:
            raise InputError(f"--throughput: {throughput} tokens/s per device implies MFU "
                             f"{mfu:.2f} > 1 at the {dtype} peak of {device.key}")
    assert mfu is not None
    _fraction(mfu, "--mfu")
    estimate = estimate_training(
        device=device, devices=int(count), mfu=mfu, params=n, tokens=d, flops=c, dtype=dtype,
        goodput=goodput, power_w=None if power is None else _positive(power, "--power", "power"),
        pue=pue, intensity=_intensity(region, intensity), price_per_device_hour=price)
    if as_json:
        print_json(estimate.as_dict())
        return
    rows = [
        ("parameters", "" if n is None else format_quantity(n, digits=4)),
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
    console.print(_table(f"training on {estimate.devices} x {device.key} at MFU {mfu:.3g}", rows))


@resources_app.command("memory")
def memory_command(
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    gpu: str | None = typer.Option(None, "--gpu", help="Device type, to say whether it fits."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel size."),
    pp: int = typer.Option(1, "--pp", help="Pipeline-parallel size."),
    dp: int = typer.Option(1, "--dp", help="Data-parallel size."),
    zero: int = typer.Option(0, "--zero", help="ZeRO stage 0-3 (3 = FSDP full sharding)."),
    micro_batch: int = typer.Option(1, "--micro-batch", help="Sequences per micro-batch."),
    recompute: str = typer.Option("selective", "--recompute", help="none, selective or full."),
    optimizer: str = typer.Option("adam-mixed", "--optimizer",
                                  help="adam-mixed (16 B/param), adam-mixed-fp32-grads (18), "
                                       "adam-fp32, sgd-momentum-mixed, adam-bf16."),
    sequence_parallel: bool = typer.Option(True, "--sequence-parallel/--no-sequence-parallel"),
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Memory per device for training: weights, gradients, optimizer state and activations."""
    from scaleguard.resources import Layout, estimate_memory, get_device, layout_problem

    shape = _model(model, config, seq)
    try:
        layout = Layout(tp, pp, dp, zero, micro_batch, recompute, sequence_parallel)
    except InputError as exc:
        raise InputError(f"--{str(exc).replace('_', '-')}") from None
    problem = layout_problem(shape, layout)
    if problem is not None:
        raise InputError(f"--{problem}")
    device = None if gpu is None else get_device(gpu, hardware_file, option="--gpu")
    estimate = estimate_memory(shape, layout, optimizer=optimizer, device=device)
    if as_json:
        print_json(estimate.as_dict())
        return
    size = lambda v: format_quantity(v, "bytes", digits=4)  # noqa: E731
    rows = [("weights", size(estimate.weights)), ("gradients", size(estimate.gradients)),
            ("optimizer state", size(estimate.optimizer_state)),
            ("ZeRO-3 gather buffer", size(estimate.zero3_gather)),
            (f"activations ({recompute} recomputation)", size(estimate.activations)),
            ("total per device", size(estimate.total))]
    if estimate.usable is not None:
        rows.append((f"usable on {device.key}" if device else "usable", size(estimate.usable)))
        rows.append(("fits", "yes" if estimate.fits else "NO"))
    console.print(_table(f"{shape.name} (seq {shape.seq}), {layout!r}", rows))


@resources_app.command("plan")
def plan_command(
    gpu: str = GPU_OPTION,
    gpus: str = typer.Option(..., "--gpus", help="Number of devices."),
    global_batch: str = typer.Option(..., "--global-batch", help="Sequences per optimizer step."),
    model: str | None = MODEL_OPTION,
    config: Path | None = CONFIG_OPTION,
    seq: str | None = SEQ_OPTION,
    optimizer: str = typer.Option("adam-mixed", "--optimizer", help="As for `memory`."),
    dtype: str = typer.Option("bf16", "--dtype", help="Peak to use."),
    top: int = typer.Option(10, "--top", help="How many layouts to show."),
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Which tp × pp × dp layouts fit, ranked by estimated step time, and why others do not."""
    from scaleguard.resources import get_device, plan_layouts
    from scaleguard.resources._planner import MAX_DEVICES

    shape = _model(model, config, seq)
    device = get_device(gpu, hardware_file, option="--gpu")
    count = _positive(gpus, "--gpus", integer=True, maximum=MAX_DEVICES)
    plan = plan_layouts(shape, device, int(count),
                        global_batch=int(_positive(global_batch, "--global-batch", integer=True)),
                        optimizer=optimizer, dtype=dtype)
    if as_json:
        print_json(plan.as_dict())
        return
    table = Table(title=f"{shape.name} on {plan.devices} x {device.key}, global batch "
                        f"{plan.global_batch} x {plan.seq} tokens: {len(plan.candidates)} "
                        f"layouts fit")
    for header in ("tp", "pp", "dp", "zero", "mb", "recompute", "memory", "step", "MFU"):
        table.add_column(header, justify="left" if header == "recompute" else "right")
    for cand in plan.candidates[:max(top, 0)]:
        lay = cand.layout
        table.add_row(str(lay.tp), str(lay.pp), str(lay.dp), str(lay.zero),
                      str(lay.micro_batch), lay.recompute,
                      format_quantity(cand.memory.total, "bytes", digits=3),
                      format_quantity(cand.step_seconds, "duration", digits=3),
                      f"{cand.mfu:.2f}")
    console.print(table)
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
                console.print(f"  e.g. {rejection!r}")


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
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Energy, carbon and cost: devices × power × hours × PUE × grid intensity."""
    from scaleguard.resources import energy_estimate, get_device

    if gpu_hours is not None:
        if gpus is not None or duration is not None:
            raise InputError("--gpu-hours: give it alone, or --gpus with --duration")
        hours = _positive(gpu_hours, "--gpu-hours")
    elif gpus is not None and duration is not None:
        hours = (_positive(gpus, "--gpus")
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
                               price_per_device_hour=price)
    if as_json:
        print_json(estimate.as_dict())
        return
    rows = [("device-hours", format_quantity(hours, digits=4)),
            ("power per device", format_quantity(watts, "power", digits=4)),
            *_energy_rows(estimate)]
    console.print(_table("energy, carbon and cost", rows))


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
    efficiency: float = typer.Option(1.0, "--efficiency",
                                     help="Share of peak and bandwidth reached (1 = ideal)."),
    hardware_file: Path | None = HARDWARE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Devices to serve a load: KV cache, roofline prefill/decode, batch and replicas."""
    from scaleguard.resources import Layout, get_device, layout_problem, plan_serving

    shape = _model(model, config, None)
    device = get_device(gpu, hardware_file, option="--gpu")
    if not rate > 0:
        raise InputError(f"--rate: expected a positive request rate, got {rate!r}")
    _fraction(efficiency, "--efficiency")
    if batch is not None and batch < 1:
        raise InputError(f"--batch: expected a positive integer, got {batch!r}")
    if tp is not None:
        if tp < 1:
            raise InputError(f"--tp: expected a positive integer, got {tp!r}")
        problem = layout_problem(shape, Layout(tp=tp))
        if problem is not None:
            raise InputError(f"--{problem}")
    plan = plan_serving(
        shape, device, rate=rate, prompt=int(_positive(prompt, "--prompt", integer=True)),
        output=int(_positive(output, "--output", integer=True)),
        max_latency=None if latency is None else _positive(latency, "--latency", "duration"),
        tp=tp, batch=batch, efficiency=efficiency)
    if as_json:
        print_json(plan.as_dict())
        return
    seconds = lambda v: format_quantity(v, "duration", digits=3)  # noqa: E731
    rows = [("devices", str(plan.devices)), ("replicas x tp", f"{plan.replicas} x {plan.tp}"),
            ("batch per replica", str(plan.batch)),
            ("prefill", seconds(plan.prefill_seconds)),
            ("decode per token", seconds(plan.decode_seconds_per_token)),
            ("request latency", seconds(plan.latency)),
            ("requests/s per replica", f"{plan.requests_per_second_per_replica:.3g}"),
            ("output tokens/s per device", f"{plan.tokens_per_second_per_device:,.0f}"),
            ("memory per device", format_quantity(plan.memory_per_device, "bytes", digits=3))]
    title = f"serving {shape.name} on {device.key} at {rate:g} requests/s"
    console.print(_table(title, rows))
    if not plan.feasible:
        console.print(f"[bold red]infeasible[/]: {plan.reason}")


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
    table = Table(title="hardware catalog")
    for header in ("device", "memory", "bandwidth", "bf16 peak", "fp8 peak", "TDP"):
        table.add_column(header, justify="left" if header == "device" else "right")
    for key, device in catalog.items():
        peak = device.peak_flops
        table.add_row(key, format_quantity(device.memory_bytes, "bytes", digits=4),
                      f"{device.memory_bandwidth / 1e9:,.0f} GB/s",
                      format_quantity(peak["bf16"], "flop_rate", digits=4) if "bf16" in peak
                      else "", format_quantity(peak["fp8"], "flop_rate", digits=4)
                      if "fp8" in peak else "",
                      "" if device.tdp_w is None else format_quantity(device.tdp_w, "power"))
    console.print(table)


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
                          f"best layout {best.layout!r}" if best else "no layout fits")]
