"""Limit checks on resources: the memory and layout wall, and the time, money, energy and carbon
walls. Pure functions of numbers that ``scaleguard.resources`` estimated."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from scaleguard.errors import InputError
from scaleguard.limits._findings import Change, Finding, Severity
from scaleguard.units import format_quantity

__all__ = ["HEADROOM", "memory_wall", "resource_wall"]

# A plan that needs more than 90% of a limit is ready only with conditions: large runs lose about
# a tenth of their time to failures and restarts (Llama 3 reported ~90% effective training time;
# Dubey et al. 2024, section 3.3.4), so a plan without that margin will likely cross the limit.
HEADROOM: Final = 0.9

# What each wall measures, for messages: (unit dimension for format_quantity, limit's name).
_WALLS: Final = {
    "time_wall": ("duration", "wall-clock time", "limits.wall_clock"),
    "budget_wall": ("money", "money budget", "limits.money"),
    "energy_wall": ("energy", "energy budget", "limits.energy"),
    "carbon_wall": ("carbon", "carbon budget", "limits.carbon"),
}
_TITLES: Final = {"time_wall": "time wall", "budget_wall": "budget wall",
                  "energy_wall": "energy wall", "carbon_wall": "carbon wall"}


def _show(value: float, dimension: str) -> str:
    if dimension == "money":
        return f"${value:,.0f}" if value >= 100 else f"${value:.3g}"
    return format_quantity(value, dimension, digits=3)


def resource_wall(check: str, *, need: float, limit: float, source: str,
                  alternatives: Sequence[Change] = (), headroom: float = HEADROOM) -> Finding:
    """What the step needs of one resource against the study's limit on it.

    ``check`` is one of ``time_wall`` (seconds), ``budget_wall`` (USD), ``energy_wall`` (J) or
    ``carbon_wall`` (g CO2e). Over the limit blocks; over ``headroom`` of it is a condition. The
    limit itself can always be raised; ``alternatives`` adds the caller's other ways out (less
    compute, more devices).

    Examples
    --------
    >>> f = resource_wall("energy_wall", need=7.2e12, limit=3.6e12, source="test")
    >>> f.severity.value, f.pressure, f.cheapest_change.describe()
    ('block', 2.0, '2× more energy budget')
    """
    if check not in _WALLS:
        raise InputError(f"check: expected one of {', '.join(_WALLS)}, got {check!r}")
    dimension, limit_name, field = _WALLS[check]
    if not (math.isfinite(need) and need >= 0):
        raise InputError(f"{check}: need must be a non-negative number, got {need!r}")
    if not (math.isfinite(limit) and limit > 0):
        raise InputError(f"{field}: expected a positive limit, got {limit!r}")
    pressure = need / limit
    numbers = {"need": need, "limit": limit, "fraction_of_limit": pressure}
    text = f"the step needs {_show(need, dimension)} of the {_show(limit, dimension)} {limit_name}"
    changes: list[Change] = []
    if pressure > 1:
        severity = Severity.BLOCK
        changes.append(Change(limit_name, pressure))
        changes.extend(alternatives)
    elif pressure > headroom:
        severity = Severity.WARN
        text += f" ({pressure:.0%}: less than {1 - headroom:.0%} margin for failures and restarts)"
        changes.append(Change(limit_name, pressure / headroom, "to keep the margin"))
    else:
        severity = Severity.OK
        text += f" ({pressure:.0%})"
    return Finding(check, _TITLES[check], severity, text, pressure, numbers, source,
                   tuple(changes))


def memory_wall(*, fits: bool, bytes_per_device: float, device_bytes: float, params: float,
                devices: int, layout: str = "", max_params_that_fit: float = math.nan,
                min_devices_that_fit: float = math.nan, reason: str = "") -> Finding:
    """Whether any parallel layout fits the model in device memory.

    ``device_bytes`` is the *usable* memory of a device (``scaleguard.resources`` keeps 10% back
    for the CUDA context, communication buffers and allocator fragmentation, so no further
    margin is taken here). ``bytes_per_device`` is what the leanest layout needs, fitting or not;
    ``layout`` describes the layout to use (the planner's fastest that fits); ``reason`` says
    how many layouts were tried.

    Examples
    --------
    >>> f = memory_wall(fits=False, bytes_per_device=120e9, device_bytes=72e9, params=70e9,
    ...                 devices=8, max_params_that_fit=52.5e9, min_devices_that_fit=16)
    >>> f.severity.value, f.cheapest_change.describe()
    ('block', '25% fewer parameters')
    """
    if not (device_bytes > 0 and params > 0 and devices >= 1):
        raise InputError("memory_wall: device memory, parameters and devices must be positive")
    pressure = bytes_per_device / device_bytes
    numbers = {"bytes_per_device": bytes_per_device, "device_bytes": device_bytes,
               "fraction_of_memory": pressure, "params": params, "devices": float(devices),
               "max_params_that_fit": max_params_that_fit,
               "min_devices_that_fit": min_devices_that_fit}
    model = f"{format_quantity(params, digits=3)} parameters on {devices} devices"
    memory = format_quantity(device_bytes, "bytes", digits=3)
    need = format_quantity(bytes_per_device, "bytes", digits=3)
    changes: list[Change] = []
    if not fits:
        severity = Severity.BLOCK
        text = f"no parallel layout fits {model}: the leanest needs {need} of {memory} usable"
        if reason:
            text += f" ({reason})"
        if math.isfinite(max_params_that_fit) and max_params_that_fit > 0:
            changes.append(Change("parameters", max_params_that_fit / params))
        if math.isfinite(min_devices_that_fit) and min_devices_that_fit > devices:
            changes.append(Change("devices", min_devices_that_fit / devices))
        pressure = max(pressure, 1.0 + 1e-9)  # crossed, whatever the leanest layout needs
    else:
        severity = Severity.OK
        text = (f"{model} fit: the leanest layout needs {need} of {memory} usable per device "
                f"({pressure:.0%}); use {layout or 'the fastest layout that fits'}")
    return Finding("memory_wall", "memory and layout wall", severity, text, pressure, numbers,
                   "Korthikanti et al. 2022 activations, mixed-precision Adam 16 B/param; "
                   "layouts from scaleguard.resources' planner (10% of memory kept back)",
                   tuple(changes))
