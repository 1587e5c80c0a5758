"""The assessment: fit the ladder, place the target, estimate its resources, run every limit
check and decide. This is where the components meet; each check stays a pure function."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from scaleguard.errors import ConfigError, InputError, UnitError
from scaleguard.laws import get_law
from scaleguard.limits._assessment import (
    Assessment,
    Curve,
    IsoFlopCurve,
    ResourceLine,
    TargetPoint,
)
from scaleguard.limits._findings import Change, Finding
from scaleguard.limits._law_view import LawView
from scaleguard.limits._layouts import (
    default_global_batch,
    fewest_fitting_devices,
    largest_fitting_params,
    search_layouts,
    shape_for_params,
)
from scaleguard.limits._resource_checks import memory_wall, resource_wall
from scaleguard.limits._safety_checks import (
    GateState,
    OpenAlert,
    open_alerts,
    oversight_capacity,
    safety_gates,
)
from scaleguard.limits._scaling_checks import (
    EPOCHS_NEGLIGIBLE,
    data_wall,
    diminishing_returns,
    extrapolation_risk,
)
from scaleguard.limits._study import Study
from scaleguard.limits._verdict import decide
from scaleguard.resources import (
    Calibration,
    GridIntensity,
    ModelShape,
    TrainingEstimate,
    estimate_training,
    get_device,
    grid_intensity,
    model_preset,
    parse_intensity,
)
from scaleguard.units import format_quantity

__all__ = ["assess", "Evidence", "MUENNIGHOFF_R_D", "MUENNIGHOFF_R_N"]

# Muennighoff et al. 2023 (eq. 5, fitted values): repeated tokens lose value with decay constant
# R*_D = 15.4 epochs, excess parameters with R*_N = 5.3.
MUENNIGHOFF_R_D: Final = 15.4
MUENNIGHOFF_R_N: Final = 5.3
_FRONTIER_POINTS: Final = 80  # points on the frontier curve of the report
_ISOFLOP_POINTS: Final = 60
_MAX_ISOFLOP_BUDGETS: Final = 7  # more profiles than this are unreadable on one chart


@dataclass(frozen=True)
class Evidence:
    """What the safety and monitoring components said, already reduced to gates and alerts."""

    gates: tuple[GateState, ...] = ()
    alerts: tuple[OpenAlert, ...] = ()
    rollout: dict[str, Any] | None = None  # plan summary for the report; None: no plan
    monitored: bool = False


def _money(value: float) -> str:
    return f"${value:,.0f}"


_LOG_COMPUTE_RANGE: Final = (0.0, 45.0)  # 1 to 1e45 FLOP: where targets are searched


def _compute_reaching(view: LawView, goal: float) -> float:
    """Compute (FLOP) at which the compute-optimal loss falls to ``goal``; nan if not in range."""

    def gap(log_c: float) -> float:
        return float(view.allocation(10.0**log_c)[2]) - goal

    lo, hi = _LOG_COMPUTE_RANGE
    if gap(lo) <= 0:
        return 10.0**lo
    if gap(hi) > 0:
        return math.nan
    return 10.0 ** brentq(gap, lo, hi, xtol=1e-9)


def _locate_target(study: Study, view: LawView) -> tuple[float, float, float, float]:
    """(compute, params, tokens, loss) of the step the study describes."""
    t = study.target
    if t.compute is not None:
        compute = t.compute
    elif t.loss is not None:
        if t.loss <= view.irreducible:
            raise InputError(f"target.loss: {t.loss:g} is at or below the fitted irreducible "
                             f"loss E = {view.irreducible:.4g}; no amount of compute reaches it")
        compute = _compute_reaching(view, t.loss)
        if math.isnan(compute):
            raise InputError(f"target.loss: {t.loss:g} needs more than 1e45 FLOP on the "
                             "fitted law")
    else:
        size, data = float(t.params or math.nan), float(t.tokens or math.nan)  # both set
        return 6.0 * size * data, size, data, float(view.loss(size, data))
    n, d, loss = view.allocation(compute)
    return compute, float(n), float(d), float(loss)


def _compute_at_fraction(view: LawView, fraction: float) -> float:
    """Compute where the optimal loss's reducible part falls to ``fraction · E`` (nan: never)."""
    compute = _compute_reaching(view, view.irreducible * (1.0 + fraction))
    return math.nan if compute == 10.0 ** _LOG_COMPUTE_RANGE[0] else compute


def _intensity(value: float | str) -> float | GridIntensity:
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_intensity(value, name="hardware.grid_intensity")
    except UnitError:
        pass
    try:
        return grid_intensity(value)  # a region: CodeCarbon's data
    except InputError as exc:
        raise type(exc)(f"hardware.grid_intensity: {exc}") from None


def _model_shape(study: Study, params: float) -> ModelShape:
    spec, seq = study.hardware.model, study.hardware.seq_len
    if spec is None:
        return shape_for_params(params, seq)
    if isinstance(spec, str):
        return model_preset(spec, option="hardware.model").with_seq(seq)
    try:
        return ModelShape(**{"seq": seq, **spec, "name": "hardware.model"})  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"hardware.model: {exc}") from None


def _intensity_note(intensity: GridIntensity | None) -> str:
    if intensity is None:
        return ""
    return f"{intensity.g_per_kwh:.4g} gCO2e/kWh ({intensity.source})"


def _mfu(study: Study, params: float, calibration: Calibration | None) -> float:
    """The study's MFU, or the calibrated one at the target's size."""
    if calibration is None:
        return study.hardware.mfu
    at = calibration.mfu_at(params)
    if at is None:
        raise ConfigError(f"hardware.calibration: {calibration.source} gave no MFU (no device "
                          "peak); calibrate against a catalog device")
    return at[0]


def _training(study: Study, compute: float, params: float, tokens: float,
              calibration: Calibration | None = None) -> TrainingEstimate:
    hw = study.hardware
    return estimate_training(device=get_device(hw.device, study.resolve(hw.hardware_file)
                                               if hw.hardware_file else None),
                             devices=hw.devices, mfu=_mfu(study, params, calibration),
                             params=params, tokens=tokens,
                             flops=compute, dtype=hw.dtype, pue=hw.pue, power_w=hw.power_w,
                             intensity=_intensity(hw.grid_intensity),
                             price_per_device_hour=hw.price_per_device_hour)


def _compute_change(view: LawView, compute: float, factor: float, why: str) -> Change:
    n, d, loss = view.allocation(compute * factor)
    return Change("training compute", factor,
                  f"{why}: {format_quantity(float(n), digits=3)} parameters on "
                  f"{format_quantity(float(d), digits=3)} tokens, loss {float(loss):.3f}")


def _memory_finding(study: Study, params: float) -> tuple[Finding, ResourceLine]:
    hw = study.hardware
    device = get_device(hw.device, study.resolve(hw.hardware_file) if hw.hardware_file else None)
    model = _model_shape(study, params)
    batch = hw.global_batch or default_global_batch(hw.devices, model.seq)
    search = search_layouts(model, device, hw.devices, batch, hw.dtype)
    shown = search.fastest or search.leanest

    usable = shown.usable or device.memory_bytes
    max_params = min_devices = math.nan
    if not search.fits:
        max_params = largest_fitting_params(params, hw.seq_len, device, hw.devices, hw.dtype)
        min_devices = fewest_fitting_devices(model, device, hw.devices, hw.dtype)
    finding = memory_wall(fits=search.fits, bytes_per_device=search.leanest.total,
                          device_bytes=usable, params=model.params, devices=hw.devices,
                          layout=shown.layout.describe(), max_params_that_fit=max_params,
                          min_devices_that_fit=min_devices,
                          reason=f"{len(search.plan.rejected)} layouts rejected")
    chosen = "fastest layout that fits" if search.fits else "leanest layout (does not fit)"
    line = ResourceLine("memory per device", shown.total,
                        format_quantity(shown.total, "bytes", digits=3),
                        usable, f"{chosen}: {shown.layout.describe()}; global batch {batch} "
                                f"sequences; {format_quantity(usable, 'bytes', digits=3)} usable "
                                f"of {device.key}; {model.describe()}")
    return finding, line


def _isoflops(view: LawView, ladder: pd.DataFrame, target: TargetPoint) -> tuple[IsoFlopCurve, ...]:
    budgets = np.unique(np.round(np.log10(ladder["flops"].to_numpy(float)), 2))
    if len(budgets) > _MAX_ISOFLOP_BUDGETS:
        budgets = np.linspace(budgets.min(), budgets.max(), _MAX_ISOFLOP_BUDGETS)
    curves = []
    spread = np.geomspace(1 / 10, 10, _ISOFLOP_POINTS)
    for log_c in budgets:
        compute = 10.0**log_c
        n_best, _, l_best = view.allocation(compute)
        n = float(n_best) * spread
        curves.append(IsoFlopCurve(compute, tuple(n), tuple(view.isoflop(compute, n)),
                                   float(n_best), float(l_best)))
    n_best, _, l_best = view.allocation(target.compute)
    n = float(n_best) * spread
    curves.append(IsoFlopCurve(target.compute, tuple(n), tuple(view.isoflop(target.compute, n)),
                               float(n_best), float(l_best), is_target=True))
    return tuple(curves)


def assess(study: Study, ladder: pd.DataFrame, view: LawView, evidence: Evidence | None = None,
           *, progress: Callable[[str], None] | None = None,
           calibration: Calibration | None = None) -> Assessment:
    """Assess ``study`` given its checked ladder, its fitted law and the safety evidence.

    Reading files, fitting the law and querying the stores happen before (see
    :func:`scaleguard.limits.run_study`); this joins their results and stays free of I/O.
    """
    evidence = evidence or Evidence()
    say = progress or (lambda _: None)
    confidence = study.ladder.confidence
    compute, params, tokens, loss = _locate_target(study, view)
    low, high = (float(v) for v in view.loss_interval(params, tokens, confidence))
    target = TargetPoint(study.target.kind, compute, params, tokens, loss, low, high, confidence)
    ladder_max = float(ladder["flops"].max())
    say("estimating resources")
    run = _training(study, compute, params, tokens, calibration)
    doubling = run  # doubling from C to 2C costs one more C
    findings: list[Finding] = []
    notes: list[str] = []

    # Diminishing returns: the gain of one more doubling, at the target and atop the ladder.
    gain = float(view.allocation(compute)[2] - view.allocation(2 * compute)[2])
    ladder_gain = float(view.allocation(ladder_max)[2] - view.allocation(2 * ladder_max)[2])
    fraction = study.returns.irreducible_fraction
    findings.append(diminishing_returns(
        target_compute=compute, loss_at_target=loss, irreducible=view.irreducible,
        gain_per_doubling=gain, ladder_gain_per_doubling=ladder_gain,
        cost_per_doubling=doubling.cost if doubling.cost is not None else math.nan,
        energy_per_doubling=doubling.energy_j,
        compute_at_fraction=_compute_at_fraction(view, fraction), fraction=fraction))

    findings.append(extrapolation_risk(
        target_compute=compute, ladder_max_compute=ladder_max,
        interval=(low, high) if math.isfinite(low) else (loss, loss),
        tolerance=study.target.loss_tolerance))
    if not math.isfinite(low):
        notes.append("no bootstrap (ladder.bootstrap: 0): the prediction interval is not known")

    unique = study.data.unique_tokens
    if unique is None:
        notes.append("data wall not checked: the study gives no data.unique_tokens")
    else:
        dc = {**view.params, "R_D": MUENNIGHOFF_R_D, "R_N": MUENNIGHOFF_R_N}
        points = np.array([[params], [tokens], [unique]])
        constrained = float(get_law("data_constrained").predict(dc, points)[0])
        penalty = max(constrained - loss, 0.0)
        alternatives = []
        fit_tokens = EPOCHS_NEGLIGIBLE * unique
        if tokens > fit_tokens:
            if study.target.kind == "model":
                alternatives.append(Change("training tokens", fit_tokens / tokens))
            else:
                factor = (fit_tokens / tokens) ** (1.0 / view.tokens_exponent())
                alternatives.append(_compute_change(view, compute, factor,
                                                    "a compute-optimal run within 4 epochs"))
            alternatives.append(Change("parameters", compute / (6.0 * fit_tokens) / params,
                                       "same compute, trained on 4 epochs of the unique data"))
        findings.append(data_wall(tokens_needed=tokens, unique_tokens=unique,
                                  loss_penalty=penalty, alternatives=alternatives))

    say("searching parallel layouts")
    memory, memory_line = _memory_finding(study, params)
    findings.append(memory)
    shape_params = memory.numbers["params"]
    if abs(math.log(shape_params / params)) > math.log(1.1):
        notes.append(f"memory checked for hardware.model ({format_quantity(shape_params, digits=3)}"
                     f" parameters), not for the target's {format_quantity(params, digits=3)}")

    limits = study.limits
    less = "stay within the limit"
    walls: list[tuple[str, float | None, float | None, str]] = [
        ("time_wall", run.wall_seconds, limits.wall_clock,
         "6·N·D FLOP at the given MFU on the given devices (PaLM's MFU accounting)"),
        ("budget_wall", run.cost, limits.money, "device-hours × price per device-hour"),
        ("energy_wall", run.energy_j, limits.energy,
         "devices × power × hours × PUE (Patterson et al. 2021)"),
        ("carbon_wall", run.carbon_g, limits.carbon, "energy × grid carbon intensity"),
    ]
    for check, need, limit, source in walls:
        if limit is None:
            notes.append(f"{check.replace('_', ' ')} not checked: no limit in the study")
            continue
        if need is None:
            raise ConfigError("limits.money: a money limit needs hardware.price_per_device_hour")
        alternatives = [_compute_change(view, compute, min(limit / need, 1.0), less)] \
            if need > limit else []
        if check == "time_wall" and need > limit:
            alternatives.append(Change("devices", need / limit, "at the same MFU"))
        findings.append(resource_wall(check, need=need, limit=limit, source=source,
                                      alternatives=alternatives))

    if evidence.rollout is not None:
        findings.append(safety_gates(evidence.gates))
        if evidence.rollout.get("oversight_wall") is not None:
            findings.append(oversight_capacity(evidence.rollout["oversight_wall"]))
    else:
        notes.append("safety gates not checked: the study names no rollout plan")
    if evidence.monitored:
        findings.append(open_alerts(evidence.alerts))
    else:
        notes.append("monitoring alerts not checked: the study names no monitoring store")

    verdict = decide(findings)
    grid = np.geomspace(min(float(ladder["flops"].min()), compute) / 2,
                        max(ladder_max, compute) * 4, _FRONTIER_POINTS)
    band_low, band_high = view.frontier_interval(grid, confidence)
    frontier = Curve(tuple(grid), tuple(view.allocation(grid)[2]), tuple(band_low),
                     tuple(band_high))
    energy = run.energy
    resources = (
        ResourceLine("training compute", compute, format_quantity(compute, "flop", digits=3)),
        ResourceLine("model size", params, format_quantity(params, digits=3) + " parameters"),
        ResourceLine("training tokens", tokens, format_quantity(tokens, digits=3) + " tokens",
                     note=f"{tokens / params:.1f} tokens per parameter"),
        ResourceLine("devices", float(run.devices), f"{run.devices} × {run.device}",
                     note=f"MFU {run.mfu:.0%}"
                          + (f" (calibrated: {calibration.source})" if calibration else "")
                          + f", {run.dtype}"),
        ResourceLine("wall-clock time", run.wall_seconds,
                     format_quantity(run.wall_seconds, "duration", digits=3),
                     limits.wall_clock or math.nan),
        ResourceLine("device-hours", run.device_hours, f"{run.device_hours:,.0f} h"),
        ResourceLine("cost", run.cost if run.cost is not None else math.nan,
                     _money(run.cost) if run.cost is not None else "no price given",
                     limits.money or math.nan,
                     "" if energy.price_per_device_hour is None
                     else f"${energy.price_per_device_hour:g} per device-hour"),
        ResourceLine("energy", run.energy_j, format_quantity(run.energy_j, "energy", digits=3),
                     limits.energy or math.nan,
                     f"{energy.power_w:g} W per device, PUE {energy.pue:g}"),
        ResourceLine("carbon", run.carbon_g if run.carbon_g is not None else math.nan,
                     format_quantity(run.carbon_g, "carbon", digits=3)
                     if run.carbon_g is not None else "no grid intensity",
                     limits.carbon or math.nan, _intensity_note(energy.intensity)),
        memory_line,
    )
    ladder_columns = {c: tuple(ladder[c].to_numpy(float)) for c in ("params", "tokens", "flops",
                                                                       "loss")}
    return Assessment(name=study.name, verdict=verdict, target=target, law=dict(view.summary),
                      ladder=ladder_columns, frontier=frontier,
                      isoflops=_isoflops(view, ladder, target), resources=resources,
                      gates=evidence.gates, alerts=evidence.alerts,
                      rollout=evidence.rollout or {}, notes=tuple(notes))
