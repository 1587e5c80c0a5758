"""A training run's budget: FLOPs, wall time, GPU-hours, energy, carbon and cost in one estimate.

>>> run = estimate_training(params=70e9, tokens=2e12, device="h100-sxm", devices=2048, mfu=0.4)
>>> round(run.wall_seconds / 86400, 1)  # days
12.0
>>> round(run.device_hours / 1e3)  # thousand GPU-hours
590
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleguard.errors import InputError
from scaleguard.resources._carbon import GridIntensity
from scaleguard.resources._checks import check_positive
from scaleguard.resources._compute import tokens_per_second, training_flops, training_seconds
from scaleguard.resources._energy import EnergyEstimate, energy_estimate
from scaleguard.resources._hardware import Device, get_device
from scaleguard.units import format_quantity

__all__ = ["TrainingEstimate", "estimate_training"]


@dataclass(frozen=True)
class TrainingEstimate:
    """What a training run takes.

    Attributes
    ----------
    flops:
        Model FLOPs of the run (6·N·D unless given).
    compute_seconds:
        Time at the given MFU with no interruption.
    wall_seconds:
        ``compute_seconds / goodput``: what the calendar sees.
    device_hours:
        ``devices × wall_seconds / 3600``.
    tokens_per_second:
        Whole-cluster tokens/s the MFU implies, averaged over wall time (goodput included);
        None when only ``flops`` is given.
    energy:
        Energy, carbon and cost of those device-hours.
    """

    params: float | None
    tokens: float | None
    flops: float
    device: str
    devices: int
    dtype: str
    peak_flops: float
    mfu: float
    goodput: float
    compute_seconds: float
    wall_seconds: float
    device_hours: float
    tokens_per_second: float | None
    energy: EnergyEstimate

    @property
    def carbon_g(self) -> float | None:
        return self.energy.carbon_g

    @property
    def energy_j(self) -> float:
        return self.energy.energy_j

    @property
    def cost(self) -> float | None:
        return self.energy.cost

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "tokens": self.tokens, "flops": self.flops,
                "device": self.device, "devices": self.devices, "dtype": self.dtype,
                "peak_flops": self.peak_flops, "mfu": self.mfu, "goodput": self.goodput,
                "compute_seconds": self.compute_seconds, "wall_seconds": self.wall_seconds,
                "device_hours": self.device_hours, "tokens_per_second": self.tokens_per_second,
                "energy": self.energy.as_dict()}

    def __repr__(self) -> str:
        return (f"TrainingEstimate({self.flops:.3g} FLOP on {self.devices} x {self.device} at "
                f"MFU {self.mfu:.2f}: {format_quantity(self.wall_seconds, 'duration', digits=3)}"
                f", {self.energy!r})")


def estimate_training(*, device: str | Device, devices: int, mfu: float,
                      params: float | None = None, tokens: float | None = None,
                      flops: float | None = None, dtype: str | None = None, goodput: float = 1.0,
                      power_w: float | None = None, pue: float = 1.0,
                      intensity: float | GridIntensity | None = None,
                      price_per_device_hour: float | None = None, currency: str = "USD",
                      hardware_file: str | Path | None = None) -> TrainingEstimate:
    """Estimate a run from its size (``params`` and ``tokens``, or ``flops``) and its cluster.

    Parameters
    ----------
    device, devices:
        Device type (catalog key or :class:`Device`) and how many.
    mfu:
        Model FLOPs utilisation the run reaches, in (0, 1].
    dtype:
        Whose peak the MFU is a share of; by default the device's training type (bf16, or
        fp16 on a V100).
    params, tokens, flops:
        N and D (then C = 6·N·D), or C directly (e.g. from :func:`flops_per_token` × tokens).
    goodput:
        Share of wall time spent training (restarts, downtime): see :func:`goodput`.
    power_w:
        Average power per device; defaults to the device's TDP.
    pue, intensity, price_per_device_hour, currency:
        As in :func:`energy_estimate`.
    """
    hardware = get_device(device, hardware_file)
    count = check_positive(devices, "devices")
    if count != int(count):
        raise InputError(f"devices: expected a whole number of devices, got {devices!r}")
    if flops is None:
        if params is None or tokens is None:
            raise InputError("params, tokens: give both (C = 6·N·D) or give flops")
        flops = training_flops(params, tokens)
    else:
        flops = check_positive(flops, "flops")
    dtype = dtype or hardware.training_dtype
    peak = hardware.peak(dtype)
    compute = training_seconds(flops, int(count), peak, mfu)
    wall = training_seconds(flops, int(count), peak, mfu, goodput)
    power = hardware.tdp_w if power_w is None else check_positive(power_w, "power")
    if power is None:
        raise InputError(f"power: {hardware.key} has no published TDP; give the power per device")
    hours = count * wall / 3600.0
    throughput = None
    if params is not None and tokens is not None:
        throughput = count * tokens_per_second(mfu, flops / tokens, peak) * goodput
    energy = energy_estimate(hours, power, pue=pue, intensity=intensity,
                             price_per_device_hour=price_per_device_hour, currency=currency)
    return TrainingEstimate(params, tokens, flops, hardware.key, int(count), dtype, peak, mfu,
                            goodput, compute, wall, hours, throughput, energy)
