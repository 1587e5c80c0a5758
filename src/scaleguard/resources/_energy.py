"""Energy, carbon and money: devices × power × hours × PUE, times grid intensity and price.

>>> gpt3 = energy_estimate(device_hours=10_000 * 14.8 * 24, power_w=330, pue=1.1,
...                        intensity=429)  # Patterson et al. 2021, GPT-3
>>> round(gpt3.energy_j / 3.6e9), round(gpt3.carbon_g / 1e6)  # MWh, tCO2e
(1289, 553)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaleguard.errors import InputError
from scaleguard.resources._carbon import GridIntensity
from scaleguard.resources._checks import check_positive
from scaleguard.units import format_quantity

__all__ = ["EnergyEstimate", "check_currency", "energy_estimate"]

_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy, carbon and cost of ``device_hours`` of work.

    Attributes
    ----------
    energy_j:
        Facility energy: device energy × PUE (J).
    carbon_g:
        ``energy_j`` × grid intensity (g CO2e); ``None`` without an intensity.
    cost:
        ``device_hours`` × price per device-hour, in ``currency``; ``None`` without a price.
    currency:
        ISO 4217 code of the price and the cost (USD unless told).
    """

    device_hours: float
    power_w: float
    pue: float
    energy_j: float
    intensity: GridIntensity | None
    carbon_g: float | None
    price_per_device_hour: float | None
    cost: float | None
    currency: str = "USD"

    def as_dict(self) -> dict[str, Any]:
        return {"device_hours": self.device_hours, "power_w": self.power_w, "pue": self.pue,
                "energy_j": self.energy_j, "energy_kwh": self.energy_j / _J_PER_KWH,
                "intensity": None if self.intensity is None else self.intensity.as_dict(),
                "carbon_g": self.carbon_g, "price_per_device_hour": self.price_per_device_hour,
                "cost": self.cost, "currency": self.currency}

    def __repr__(self) -> str:
        parts = [f"{format_quantity(self.device_hours, digits=4)} device-hours",
                 format_quantity(self.energy_j, "energy", digits=4)]
        if self.carbon_g is not None:
            parts.append(format_quantity(self.carbon_g, "carbon", digits=4))
        if self.cost is not None:
            parts.append(f"cost {self.cost:,.0f} {self.currency}")
        return f"EnergyEstimate({', '.join(parts)})"


def check_currency(currency: str, name: str = "currency") -> str:
    """``currency`` as an upper-case ISO 4217 code, or an :class:`InputError` naming ``name``."""
    code = str(currency).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise InputError(f"{name}: expected a three-letter code such as USD, got {currency!r}")
    return code


def energy_estimate(device_hours: float, power_w: float, *, pue: float = 1.0,
                    intensity: float | GridIntensity | None = None,
                    price_per_device_hour: float | None = None,
                    currency: str = "USD") -> EnergyEstimate:
    """Energy = device-hours × power × PUE; CO2e = energy × intensity; cost = hours × price.

    Parameters
    ----------
    device_hours:
        Accelerator-hours (devices × wall hours).
    power_w:
        Average power drawn by one device (W): its TDP for a conservative estimate.
    pue:
        Data-centre power usage effectiveness (>= 1).
    intensity:
        Grid carbon intensity in gCO2e/kWh, or a :class:`GridIntensity` (from a region).
    price_per_device_hour:
        Price of one device-hour, in ``currency``.
    currency:
        Three-letter currency code (ISO 4217), e.g. ``USD``, ``EUR``.
    """
    hours = check_positive(device_hours, "device_hours")
    power = check_positive(power_w, "power")
    pue_value = check_positive(pue, "pue")
    if pue_value < 1:
        raise InputError(f"pue: expected a power usage effectiveness >= 1, got {pue!r}")
    energy = hours * 3600.0 * power * pue_value
    grid = None
    if intensity is not None:
        grid = (intensity if isinstance(intensity, GridIntensity)
                else GridIntensity(check_positive(intensity, "intensity", allow_zero=True)))
    carbon = None if grid is None else energy / _J_PER_KWH * grid.g_per_kwh
    price = (None if price_per_device_hour is None
             else check_positive(price_per_device_hour, "price", allow_zero=True))
    return EnergyEstimate(hours, power, pue_value, energy, grid, carbon, price,
                          None if price is None else hours * price, check_currency(currency))
