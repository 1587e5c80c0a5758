"""Live measurement: wall time and energy of a block of code, measured where the machine allows.

GPU energy comes from NVML's energy counters (``nvidia-ml-py``, the ``energy`` extra) when a GPU
is there; CPU energy from RAPL counters under ``/sys/class/powercap`` where they are readable;
otherwise the CPU energy is *estimated* from the process's CPU time at a per-thread power, and the
result says so.

>>> with measure() as meter:
...     _ = sum(i * i for i in range(10_000))
>>> result = meter.result
>>> result.wall_seconds > 0, result.status in ("measured", "estimated")
(True, True)
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

from scaleguard.errors import InputError
from scaleguard.units import format_quantity

__all__ = ["EnergyMeter", "Measurement", "measure"]

# CodeCarbon's fallback when the CPU model is unknown: 4 W per thread (DEFAULT_POWER_PER_CORE in
# codecarbon/core/cpu.py); a busy thread is charged that for each CPU-second.
CPU_WATTS_PER_THREAD: Final = 4.0
_RAPL_ROOT: Final = Path("/sys/class/powercap")
MEASURED: Final = "measured"
ESTIMATED: Final = "estimated"


class _Logger(Protocol):
    def log(self, metrics: dict[str, float], step: int | None = ...) -> Any: ...


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` recorded.

    ``cpu_method`` and ``gpu_method`` say how each figure was obtained (``'rapl'``,
    ``'cpu-time x 4W/thread'``, ``'nvml-energy'``, ``'nvml-power'``); ``status`` is
    ``'measured'`` only when every part was read from a counter.
    """

    label: str
    wall_seconds: float
    cpu_seconds: float
    cpu_energy_j: float
    cpu_method: str
    cpu_status: str
    gpus: int
    gpu_energy_j: float | None
    gpu_method: str | None
    gpu_status: str | None

    @property
    def energy_j(self) -> float:
        return self.cpu_energy_j + (self.gpu_energy_j or 0.0)

    @property
    def status(self) -> str:
        parts = [self.cpu_status] + ([self.gpu_status] if self.gpu_status else [])
        return MEASURED if all(p == MEASURED for p in parts) else ESTIMATED

    @property
    def average_power_w(self) -> float:
        return self.energy_j / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """The figures as flat metrics (for a monitor run's ``log``)."""
        values = {"energy/wall_seconds": self.wall_seconds,
                  "energy/cpu_seconds": self.cpu_seconds,
                  "energy/cpu_energy_j": self.cpu_energy_j,
                  "energy/energy_j": self.energy_j,
                  "energy/measured": 1.0 if self.status == MEASURED else 0.0}
        if self.gpu_energy_j is not None:
            values["energy/gpu_energy_j"] = self.gpu_energy_j
        return values

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "energy_j": self.energy_j, "status": self.status,
                "average_power_w": self.average_power_w}

    def __repr__(self) -> str:
        def joules(value: float) -> str:
            return format_quantity(value, "energy", digits=3)
        gpu = "" if self.gpu_energy_j is None else (
            f", GPU {joules(self.gpu_energy_j)} ({self.gpu_method})")
        wall = format_quantity(self.wall_seconds, "duration", digits=3)
        return (f"Measurement({self.label!r}: {wall}, {joules(self.energy_j)} {self.status}; "
                f"CPU {joules(self.cpu_energy_j)} ({self.cpu_method}){gpu})")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _rapl_domains(root: Path) -> list[Path]:
    """Top-level RAPL package domains whose counters this process can read."""
    readable = []
    for domain in sorted(root.glob("intel-rapl:*")):
        if domain.name.count(":") != 1:
            continue  # sub-domains (core, uncore, dram) are inside the package figure
        try:
            int((domain / "energy_uj").read_text())
        except (OSError, ValueError):
            return []  # one unreadable package makes the sum wrong: use the estimate
        readable.append(domain)
    return readable


def _rapl_read(domains: list[Path]) -> list[int]:
    return [int((d / "energy_uj").read_text()) for d in domains]


def _rapl_joules(domains: list[Path], start: list[int], end: list[int]) -> float:
    total = 0
    for domain, a, b in zip(domains, start, end, strict=True):
        if b < a:  # the counter wrapped around
            b += int((domain / "max_energy_range_uj").read_text())
        total += b - a
    return total / 1e6


class _Nvml:
    """NVML handles for every visible GPU, or none when there is no GPU or no nvidia-ml-py."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.nvml: Any = None
        try:
            import pynvml  # the energy extra; imported here so the core never needs it
            pynvml.nvmlInit()
        except Exception:  # no library, no driver or no GPU: measure the CPU only
            return
        self.nvml = pynvml
        try:
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                            for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self.handles = []

    def energy_mj(self) -> list[int] | None:
        try:
            return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles]
        except Exception:  # pre-Volta GPUs have no energy counter
            return None

    def power_w(self) -> float:
        return sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1e3

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()


class EnergyMeter:
    """Context manager returned by :func:`measure`; ``result`` is set when the block ends."""

    def __init__(self, label: str, run: _Logger | None, store: Any, step: int | None,
                 cpu_watts_per_thread: float, gpu: bool, rapl_root: Path) -> None:
        if run is not None and not callable(getattr(run, "log", None)):
            raise InputError("run: expected an object with .log(dict, step=...), "
                             "such as scaleguard.monitor.start(...)")
        if not cpu_watts_per_thread > 0:
            raise InputError(f"cpu_watts_per_thread: expected a positive power, "
                             f"got {cpu_watts_per_thread!r}")
        self.label, self.run, self.store, self.step = label, run, store, step
        self.cpu_watts_per_thread = float(cpu_watts_per_thread)
        self.use_gpu = gpu
        self.rapl_root = rapl_root
        self.result: Measurement | None = None

    def __enter__(self) -> EnergyMeter:
        self._nvml = _Nvml() if self.use_gpu else None
        self._gpu_start = self._nvml.energy_mj() if self._nvml and self._nvml.handles else None
        self._gpu_power_start = (self._nvml.power_w()
                                 if self._nvml and self._nvml.handles and self._gpu_start is None
                                 else None)
        self._rapl = _rapl_domains(self.rapl_root)
        self._rapl_start = _rapl_read(self._rapl) if self._rapl else []
        self._cpu_start = _cpu_seconds()
        self._wall_start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        wall = time.perf_counter() - self._wall_start
        cpu = _cpu_seconds() - self._cpu_start
        if self._rapl:
            cpu_energy = _rapl_joules(self._rapl, self._rapl_start, _rapl_read(self._rapl))
            cpu_method, cpu_status = "rapl", MEASURED
        else:
            cpu_energy = cpu * self.cpu_watts_per_thread
            cpu_method = f"cpu-time x {self.cpu_watts_per_thread:g}W/thread"
            cpu_status = ESTIMATED
        gpus, gpu_energy, gpu_method, gpu_status = 0, None, None, None
        nvml = self._nvml
        if nvml is not None and nvml.handles:
            gpus = len(nvml.handles)
            end = nvml.energy_mj() if self._gpu_start is not None else None
            if self._gpu_start is not None and end is not None:
                gpu_energy = sum(b - a for a, b in zip(self._gpu_start, end, strict=True)) / 1e3
                gpu_method, gpu_status = "nvml-energy", MEASURED
            elif self._gpu_power_start is not None:
                gpu_energy = (self._gpu_power_start + nvml.power_w()) / 2 * wall
                gpu_method, gpu_status = "nvml-power", ESTIMATED
        if nvml is not None:
            nvml.close()
        self.result = Measurement(self.label, wall, cpu, cpu_energy, cpu_method, cpu_status,
                                  gpus, gpu_energy, gpu_method, gpu_status)
        self._record(self.result)

    def _record(self, result: Measurement) -> None:
        if self.run is not None:
            self.run.log(result.metrics(), step=self.step)
        if self.store is not None:
            from scaleguard.monitor import start  # only when a store is asked for

            with start(self.label, {"measure": result.as_dict()}, store=self.store,
                       detectors="none", flush_every=None) as run:
                run.log(result.metrics(), step=self.step or 0)


def measure(label: str = "measure", *, run: _Logger | None = None, store: Any = None,
            step: int | None = None, cpu_watts_per_thread: float = CPU_WATTS_PER_THREAD,
            gpu: bool = True, rapl_root: str | Path = _RAPL_ROOT) -> EnergyMeter:
    """Measure the wall time and energy of a ``with`` block.

    Parameters
    ----------
    label:
        Name of what is measured (the run's name when a ``store`` is given).
    run:
        Anything with ``.log(dict, step=...)`` (what ``scaleguard.monitor.start`` returns): the
        figures are logged to it as ``energy/...`` metrics at ``step``.
    store:
        A monitor store (path or object): the figures are written there as a run of their own.
    cpu_watts_per_thread:
        Power charged per busy CPU thread when RAPL is not readable (the estimate).
    gpu:
        Read NVML when a GPU is there; False skips it.
    rapl_root:
        Where the RAPL counters live (tests point it elsewhere).

    Examples
    --------
    ``with measure(run=run, step=step) as meter: train_step()`` then ``meter.result``.
    """
    return EnergyMeter(label, run, store, step, cpu_watts_per_thread, gpu, Path(rapl_root))
