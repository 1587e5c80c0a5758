"""Human quantities in, SI out — and back.

The computing core works in SI units only (FLOP, bytes, seconds, watts, joules, grams of CO2e).
People type and read ``70B`` parameters, ``2T`` tokens, ``80GiB``, ``3.2MWh``, ``500tCO2e``,
``14.8d``. This module is the one place that translates between the two.

>>> parse_quantity("70B")
70000000000.0
>>> parse_quantity("80GiB", "bytes")
85899345920.0
>>> format_quantity(552e6 * 3600, "energy", digits=4)
'552MWh'
>>> format_quantity(172800.0, "duration")
'2d'

A bare ``B`` after a number means *billion* (``70B`` parameters); bytes need a prefix or the
word: ``512bytes``, ``1kB``, ``80GiB``. A bare ``m`` is minutes and ``M`` is million.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal, get_args

from scaleguard.errors import UnitError

__all__ = ["Dimension", "DIMENSIONS", "parse_quantity", "format_quantity"]

Dimension = Literal["count", "bytes", "flop", "flop_rate", "duration", "power", "energy", "carbon"]
DIMENSIONS: Final[tuple[str, ...]] = get_args(Dimension)

_SI: Final = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_IEC: Final = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_WH: Final = 3600.0  # joules in one watt-hour
_YEAR: Final = 365.0 * 86400.0


def _build_table() -> dict[str, tuple[str, float]]:
    """Every accepted unit symbol -> (dimension, factor to SI)."""
    table: dict[str, tuple[str, float]] = {}
    # Counts (parameters, tokens, users): short-scale suffixes as the field writes them.
    for sym, factor in {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.items():
        table[sym] = ("count", factor)
    for prefix, factor in {**_SI, **_IEC}.items():
        if prefix:
            table[prefix + "B"] = ("bytes", factor)
        table[prefix + "FLOP"] = ("flop", factor)
        table[prefix + "FLOPs"] = ("flop", factor)
        table[prefix + "FLOP/s"] = ("flop_rate", factor)
        table[prefix + "FLOPS"] = ("flop_rate", factor)
        table[prefix + "W"] = ("power", factor)
        table[prefix + "J"] = ("energy", factor)
        table[prefix + "Wh"] = ("energy", factor * _WH)
    for sym in ("byte", "bytes"):
        table[sym] = ("bytes", 1.0)
    for sym, factor in {"gCO2e": 1.0, "kgCO2e": 1e3, "tCO2e": 1e6, "ktCO2e": 1e9,
                        "MtCO2e": 1e12}.items():
        table[sym] = ("carbon", factor)
    for sym, factor in {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                        "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
                        "y": _YEAR}.items():
        table[sym] = ("duration", factor)
    # IEC prefixes only make sense for bytes; drop the odd combinations built above.
    return {s: v for s, v in table.items() if not (s[:2] in _IEC and v[0] != "bytes")}


_UNITS: Final = _build_table()
_NUMBER: Final = re.compile(
    r"^\s*([+-]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµ/0-9]*)\s*$"
)

# What format_quantity prints, largest first: (symbol, factor).
_DISPLAY: Final[dict[str, list[tuple[str, float]]]] = {
    "count": [("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)],
    "bytes": [("PiB", 2.0**50), ("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20),
              ("KiB", 2.0**10), ("bytes", 1.0)],
    "flop": [("FLOP", 1.0)],
    "flop_rate": [("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("FLOP/s", 1.0)],
    "duration": [("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)],
    "power": [("GW", 1e9), ("MW", 1e6), ("kW", 1e3), ("W", 1.0)],
    "energy": [("GWh", 1e9 * _WH), ("MWh", 1e6 * _WH), ("kWh", 1e3 * _WH), ("Wh", _WH),
               ("J", 1.0)],
    "carbon": [("MtCO2e", 1e12), ("ktCO2e", 1e9), ("tCO2e", 1e6), ("kgCO2e", 1e3),
               ("gCO2e", 1.0)],
}


def _check_dimension(dimension: str | None) -> None:
    if dimension is not None and dimension not in DIMENSIONS:
        raise UnitError(f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")


def parse_quantity(text: str | float | int, dimension: str | None = None,
                   *, name: str = "value") -> float:
    """Parse ``text`` such as ``'70B'`` or ``'3.2MWh'`` into a float in SI units.

    Parameters
    ----------
    text:
        The quantity. Numbers (``7e9``, ``1_000``) pass through as counts.
    dimension:
        When given, the unit must belong to it (``'bytes'``, ``'energy'``, ...). A bare number is
        accepted for any dimension and taken to be in SI units already.
    name:
        The option or field name used in error messages.

    Raises
    ------
    UnitError
        On text that is not a number with a known unit, on a unit of another dimension, and on
        non-finite values.
    """
    _check_dimension(dimension)
    if isinstance(text, bool):
        raise UnitError(f"{name}: expected a quantity, got a boolean")
    if isinstance(text, int | float):
        if isinstance(text, int) and abs(text) >= 2**1024:  # float() would raise OverflowError
            raise UnitError(f"{name}: an integer of {text.bit_length()} bits is too large "
                            "(beyond the float64 range)")
        value = float(text)
        unit = ""
    else:
        match = _NUMBER.match(str(text))
        if match is None:
            raise UnitError(f"{name}: cannot read {text!r} as a quantity (e.g. 7e9, 70B, 80GiB)")
        value = float(match.group(1).replace("_", ""))
        unit = match.group(2)
    if not math.isfinite(value):
        raise UnitError(f"{name}: {text!r} is not a finite number")
    if unit not in _UNITS:
        raise UnitError(f"{name}: unknown unit {unit!r} in {text!r}")
    unit_dimension, factor = _UNITS[unit]
    if unit == "":
        return value  # a bare number is SI in any dimension
    if unit_dimension == "count" and dimension not in (None, "count", "flop"):
        # '70B' of energy is meaningless; '1.5T' FLOP is not how anyone writes it either,
        # but counts of FLOP written as 3e23 or 300T are fine.
        raise UnitError(f"{name}: {text!r} is a count, expected a unit of {dimension}")
    if dimension is not None and unit_dimension != dimension and unit_dimension != "count":
        raise UnitError(f"{name}: {text!r} has a unit of {unit_dimension}, "
                        f"expected a unit of {dimension}")
    scaled = value * factor
    if not math.isfinite(scaled):  # 1e308k: each part is finite, the product is not
        raise UnitError(f"{name}: {text!r} is too large (beyond the float64 range)")
    return scaled


def _number(value: float, digits: int | None) -> str:
    text = repr(value) if digits is None else f"{value:.{digits}g}"
    if "e" in text or "E" in text:
        mantissa, exponent = text.lower().split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exponent)}"
    elif "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_quantity(value: float, dimension: str = "count", *, digits: int | None = None,
                    name: str = "value") -> str:
    """Print ``value`` (SI) with the largest display unit that keeps it at or above one.

    ``digits=None`` keeps full precision so that ``parse_quantity(format_quantity(x, d), d)``
    gives ``x`` back to within floating-point rounding; pass ``digits=3`` for tables.
    ``name`` (the field or option) is named when ``value`` is not finite.
    """
    _check_dimension(dimension)
    value = float(value)
    if not math.isfinite(value):
        raise UnitError(f"{name}: cannot print the non-finite {value!r} as a quantity of "
                        f"{dimension}")
    if value == 0 and dimension != "flop":
        return "0"  # zero in any unit: not "0bytes" or "0ms"
    units = _DISPLAY[dimension]
    magnitude = abs(value)
    symbol, factor = units[-1]
    for sym, fac in units:
        if magnitude >= fac:
            symbol, factor = sym, fac
            break
    if dimension == "flop":
        return f"{_number(value, digits)}{symbol and ' ' + symbol}"
    scaled = value / factor
    if digits is not None:
        # Rounding may carry into the next unit up (999.96k -> 1000k); re-pick if it does.
        rounded = float(f"{scaled:.{digits}g}")
        bigger = [(s, f) for s, f in units if f > factor]
        if bigger and abs(rounded) * factor >= bigger[-1][1]:
            symbol, factor = bigger[-1]
            scaled = value / factor
    return f"{_number(scaled, digits)}{symbol}"
