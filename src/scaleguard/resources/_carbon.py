"""Grid carbon intensity: from a region, using CodeCarbon's published data, or from a value.

CodeCarbon ships the intensity data it uses (Our World in Data's per-country mix, cloud
providers' per-region figures, EPA eGRID for US states) inside its package; scaleguard reads those
files where they are installed, without importing CodeCarbon itself (its import is heavy).

>>> parse_intensity("0.429kg/kWh")
429.0
>>> parse_intensity("57gCO2e/kWh")
57.0
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from scaleguard.errors import ConfigError, InputError, UnitError

__all__ = ["GridIntensity", "grid_intensity", "parse_intensity"]

_LB_PER_MWH_TO_G_PER_KWH: Final = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh
_MASS: Final = {"g": 1.0, "kg": 1e3, "t": 1e6, "lb": 453.59237, "lbs": 453.59237}
_ENERGY_KWH: Final = {"wh": 1e-3, "kwh": 1.0, "mwh": 1e3, "gwh": 1e6, "j": 1 / 3.6e6,
                      "mj": 1 / 3.6}
_INTENSITY: Final = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*"
    r"(?:(g|kg|t|lbs?)\s*(?:co2e?q?|co2e|co2)?\s*/\s*(wh|kwh|mwh|gwh|j|mj))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GridIntensity:
    """Carbon intensity of the electricity a run uses, in grams CO2e per kWh, and its source."""

    g_per_kwh: float
    region: str | None = None
    source: str = "given"
    year: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        where = f"{self.region}, " if self.region else ""
        return f"GridIntensity({self.g_per_kwh:.4g} gCO2e/kWh, {where}{self.source})"


def parse_intensity(text: str | float, *, name: str = "intensity") -> float:
    """Read ``'0.429kg/kWh'``, ``'429g/kWh'``, ``'429gCO2e/kWh'`` or a bare number (g/kWh)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, mass, energy = float(text), "g", "kwh"
    else:
        match = _INTENSITY.match(str(text))
        if match is None:
            raise UnitError(f"{name}: cannot read {text!r} as a carbon intensity "
                            "(e.g. 0.429kg/kWh, 429g/kWh, 429gCO2e/kWh)")
        value = float(match.group(1))
        mass = (match.group(2) or "g").lower()
        energy = (match.group(3) or "kwh").lower()
    if value < 0:
        raise UnitError(f"{name}: {text!r} is negative; expected a carbon intensity >= 0")
    return value * _MASS[mass] / _ENERGY_KWH[energy]


def _codecarbon_data() -> Path:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("region: grid intensity by region needs CodeCarbon's data: "
                          "pip install 'scaleguard[energy]', or give the value with --intensity")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.lru_cache(maxsize=1)
def _regions() -> dict[str, GridIntensity]:
    """Every region CodeCarbon has a figure for, keyed by lower-case name."""
    data = _codecarbon_data()
    table: dict[str, GridIntensity] = {}
    try:
        mix = json.loads((data / "private_infra" / "global_energy_mix.json").read_text("utf-8"))
        for iso, row in mix.items():
            figure = GridIntensity(float(row["carbon_intensity"]), iso,
                                   "CodeCarbon global_energy_mix (Our World in Data)",
                                   row.get("year"))
            table[iso.lower()] = figure
            table[str(row.get("country_name", iso)).lower()] = figure
        with (data / "cloud" / "impact.csv").open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                key = f"{row['provider']}:{row['region']}".lower()
                table[key] = GridIntensity(float(row["impact"]), key,
                                           f"CodeCarbon cloud/impact.csv ({row['source']})")
        usa_file = data / "private_infra" / "2023" / "usa_emissions.json"
        usa = json.loads(usa_file.read_text("utf-8"))
        year = usa.get("_source", {}).get("year")
        for state, row in usa.items():
            if state.startswith("_"):
                continue
            figure = GridIntensity(float(row["emissions"]) * _LB_PER_MWH_TO_G_PER_KWH,
                                   f"usa:{state}", "CodeCarbon usa_emissions (EPA eGRID)", year)
            table[f"usa:{state}"] = figure
            table[f"usa:{str(row.get('regionCode', state)).lower()}"] = figure
        world = json.loads((data / "private_infra" / "carbon_intensity_per_source.json")
                           .read_text("utf-8"))
        table["world"] = GridIntensity(float(world["world_average"]), "world",
                                       "CodeCarbon carbon_intensity_per_source (IEA world average)")
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"region: CodeCarbon's data files in {data} are not as expected "
                          f"({exc}); give the value with --intensity") from None
    return table


def grid_intensity(region: str) -> GridIntensity:
    """Intensity of a region from CodeCarbon's data.

    ``region`` is an ISO code or country name (``'FRA'``, ``'France'``), a cloud region as
    ``provider:region`` (``'gcp:us-central1'``; CodeCarbon lists Google Cloud's), a US state
    (``'usa:california'`` or ``'usa:ca'``) or ``'world'``.

    Raises
    ------
    ConfigError
        When CodeCarbon (the ``energy`` extra) is not installed.
    InputError
        When the region is unknown.
    """
    table = _regions()
    key = region.strip().lower()
    if key not in table:
        near = sorted(k for k in table if key[:3] and k.startswith(key[:3]))[:5]
        hint = f"; close: {', '.join(near)}" if near else ""
        raise InputError(f"region: unknown region {region!r} (ISO code, country, "
                         f"provider:region or usa:state){hint}")
    return table[key]
