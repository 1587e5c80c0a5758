"""The hardware catalog: peak FLOP/s, memory, bandwidth and power of each device type.

The catalog is a YAML file shipped in the package (``hardware.yaml``, sources in its comments);
users add or replace devices with a file of the same shape.

>>> h100 = get_device("h100-sxm")
>>> h100.peak("bf16") / 1e12
989.4
>>> h100.memory_bytes / 2**30
80.0
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from scaleguard.errors import ConfigError, InputError
from scaleguard.units import format_quantity, parse_quantity

__all__ = ["DTYPES", "Device", "get_device", "load_catalog"]

DTYPES: Final[tuple[str, ...]] = ("fp8", "bf16", "fp16", "tf32", "fp32")
_CATALOG_FILE: Final = "hardware.yaml"


class _DeviceSpec(BaseModel):
    """One catalog entry as written in YAML (validated, then turned into a :class:`Device`)."""

    model_config = ConfigDict(extra="forbid")

    # The descriptions are what the docs' hardware-file reference shows (generated from here).
    name: str = Field(description="the vendor's name, e.g. NVIDIA H100 SXM5 80GB")
    kind: str = Field("gpu", description="gpu, tpu or cpu")
    aliases: list[str] = Field([], description="other names --gpu accepts")
    memory: str | PositiveFloat = Field(description="device memory: 80GiB, or bytes")
    memory_bandwidth: PositiveFloat = Field(description="bytes/s, e.g. 3.35e12")
    peak_flops: dict[str, PositiveFloat] = Field(description="dense peak FLOP/s per dtype "
                                                 "(fp8, bf16, fp16, tf32, fp32)")
    tdp: PositiveFloat | None = Field(None, description="board power, watts")
    link_bandwidth: PositiveFloat = Field(description="fast intra-node link of one device, "
                                          "bytes/s (aggregate, bidirectional)")
    devices_per_node: PositiveInt = Field(8, description="devices that link joins")


@dataclass(frozen=True)
class Device:
    """A device type: what one accelerator (or CPU socket) can do, in SI units.

    Attributes
    ----------
    key:
        Catalog key, e.g. ``'h100-sxm'``.
    memory_bytes, memory_bandwidth:
        Device memory (bytes) and its bandwidth (bytes/s).
    peak_flops:
        Dense peak FLOP/s per dtype (``'bf16'``, ``'fp8'``, ...).
    tdp_w:
        Board power (W); ``None`` where the vendor publishes none.
    link_bandwidth, devices_per_node:
        Aggregate bidirectional fast-link bandwidth of one device (bytes/s) and how many devices
        that link joins.
    """

    key: str
    name: str
    kind: str
    memory_bytes: float
    memory_bandwidth: float
    peak_flops: dict[str, float] = field(hash=False)
    tdp_w: float | None
    link_bandwidth: float
    devices_per_node: int
    aliases: tuple[str, ...] = ()

    def peak(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype``; an :class:`InputError` if the device lacks it."""
        if dtype not in self.peak_flops:
            raise InputError(f"dtype: {self.key} has no peak for {dtype!r}; "
                             f"it has {', '.join(self.peak_flops)}")
        return self.peak_flops[dtype]

    @property
    def training_dtype(self) -> str:
        """The 16-bit type the device trains in: bf16 where it has it (A100 on), else fp16
        (V100, T4), else its widest (a CPU's fp32)."""
        for dtype in ("bf16", "fp16", "fp32", "tf32", "fp8"):
            if dtype in self.peak_flops:
                return dtype
        return next(iter(self.peak_flops))

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "kind": self.kind,
                "memory_bytes": self.memory_bytes, "memory_bandwidth": self.memory_bandwidth,
                "peak_flops": dict(self.peak_flops), "tdp_w": self.tdp_w,
                "link_bandwidth": self.link_bandwidth, "devices_per_node": self.devices_per_node,
                "aliases": list(self.aliases)}

    def __repr__(self) -> str:
        peak = self.peak_flops.get("bf16") or max(self.peak_flops.values())
        return (f"Device({self.key!r}, {format_quantity(self.memory_bytes, 'bytes', digits=4)}, "
                f"{format_quantity(peak, 'flop_rate', digits=4)} peak, "
                f"tdp={'?' if self.tdp_w is None else format_quantity(self.tdp_w, 'power')})")


def _parse_catalog(data: Any, source: str) -> dict[str, Device]:
    if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
        raise ConfigError(f"{source}: expected a mapping with a 'devices:' mapping of entries")
    devices: dict[str, Device] = {}
    for key, entry in data["devices"].items():
        key = str(key).lower()
        try:
            spec = _DeviceSpec.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"]) or "entry"
            raise ConfigError(f"{source}: device {key!r}: field {where}: {err['msg']}") from None
        unknown = sorted(set(spec.peak_flops) - set(DTYPES))
        if unknown:
            raise ConfigError(f"{source}: device {key!r}: field peak_flops: unknown dtype "
                              f"{unknown[0]!r}; expected among {', '.join(DTYPES)}")
        if not spec.peak_flops:
            raise ConfigError(f"{source}: device {key!r}: field peak_flops: "
                              "give at least one dtype")
        memory = parse_quantity(spec.memory, "bytes", name=f"{source}: device {key!r}: memory")
        if memory <= 0:
            raise ConfigError(f"{source}: device {key!r}: field memory: expected a positive size")
        devices[key] = Device(
            key=key, name=spec.name, kind=spec.kind, memory_bytes=memory,
            memory_bandwidth=spec.memory_bandwidth, peak_flops=dict(spec.peak_flops),
            tdp_w=spec.tdp, link_bandwidth=spec.link_bandwidth,
            devices_per_node=spec.devices_per_node,
            aliases=tuple(a.lower() for a in spec.aliases))
    return devices


@functools.lru_cache(maxsize=1)
def _builtin_catalog() -> dict[str, Device]:
    text = resources.files("scaleguard.resources").joinpath(_CATALOG_FILE).read_text("utf-8")
    return _parse_catalog(yaml.safe_load(text), _CATALOG_FILE)


def load_catalog(hardware_file: str | Path | None = None) -> dict[str, Device]:
    """The built-in catalog, with the devices of ``hardware_file`` added (same keys replace).

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or an entry lacks a field or has a bad value.
    """
    catalog = dict(_builtin_catalog())
    if hardware_file is not None:
        from scaleguard.io import load_yaml, read_text  # lazily: io pulls in pandas

        path = Path(hardware_file)
        data = load_yaml(read_text(path, "hardware"), str(path))  # within io's limits
        catalog.update(_parse_catalog(data, str(path)))
    return catalog


def get_device(name: str | Device, hardware_file: str | Path | None = None, *,
               option: str = "device") -> Device:
    """Look a device up by key or alias (case-insensitive), e.g. ``'h100-sxm'`` or ``'a100'``.

    ``option`` is the name used in the error message (``'--gpu'`` on the command line).
    """
    if isinstance(name, Device):
        return name
    catalog = load_catalog(hardware_file)
    wanted = str(name).strip().lower()
    if wanted in catalog:
        return catalog[wanted]
    for device in catalog.values():
        if wanted in device.aliases:
            return device
    raise InputError(f"{option}: unknown device {name!r}; known: {', '.join(sorted(catalog))} "
                     "(add your own with a hardware file)")
