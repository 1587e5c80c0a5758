"""Grid intensity (CodeCarbon's data), intensity parsing, and live measurement with measure()."""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import numpy as np
import pytest

from scaleguard.errors import ConfigError, InputError, UnitError
from scaleguard.resources import _carbon, grid_intensity, measure, parse_intensity


@pytest.mark.parametrize("text, g_per_kwh", [
    ("0.429kg/kWh", 429.0), ("429g/kWh", 429.0), ("429gCO2e/kWh", 429.0),
    ("57 gCO2eq/kWh", 57.0), ("0.385 kgCO2e/kWh", 385.0), ("385", 385.0),
    ("1000lbs/MWh", 453.59237), ("0.1t/MWh", 100.0),
])
def test_parse_intensity(text, g_per_kwh):
    assert parse_intensity(text) == pytest.approx(g_per_kwh)


@pytest.mark.parametrize("text", ["lots", "429 kWh", "-3g/kWh", "429g/kg"])
def test_parse_intensity_rejects(text):
    with pytest.raises(UnitError, match="--intensity"):
        parse_intensity(text, name="--intensity")


def test_region_intensity_from_codecarbon_data():
    # Needs the energy extra (installed by the test extra): CodeCarbon's own data files.
    assert importlib.util.find_spec("codecarbon") is not None
    france = grid_intensity("FRA")
    assert grid_intensity("france") == france
    assert 20 < france.g_per_kwh < 120 and "CodeCarbon" in france.source
    assert grid_intensity("world").g_per_kwh == 475  # IEA world average CodeCarbon ships
    assert 300 < grid_intensity("gcp:us-central1").g_per_kwh < 600
    assert grid_intensity("usa:california") == grid_intensity("usa:ca")
    assert json.dumps(france.as_dict())


def test_unknown_region():
    with pytest.raises(InputError, match="region: unknown region 'atlantis'"):
        grid_intensity("atlantis")


def test_region_without_codecarbon_says_install_the_extra(monkeypatch):
    monkeypatch.setattr(_carbon.importlib.util, "find_spec", lambda name: None)
    _carbon._regions.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'scaleguard\[energy\]'"):
            grid_intensity("FRA")
    finally:
        monkeypatch.undo()
        _carbon._regions.cache_clear()


class RecordingRun:
    """Stands in for a monitor run: anything with .log(dict, step=...)."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, float], int | None]] = []

    def log(self, metrics, step=None):
        self.calls.append((dict(metrics), step))


def test_measure_a_real_numpy_workload():
    run = RecordingRun()
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((300, 300))
    with measure("matmul", run=run, step=7) as meter:
        for _ in range(30):
            matrix = np.tanh(matrix @ matrix.T / 300)
        time.sleep(0.01)
    result = meter.result
    assert result is not None
    assert result.wall_seconds >= 0.01
    assert result.cpu_seconds > 0
    assert result.energy_j > 0
    assert result.status in ("measured", "estimated")
    if result.cpu_status == "estimated":  # this machine: no readable RAPL
        assert result.cpu_method.startswith("cpu-time x 4W/thread")
        assert result.cpu_energy_j == pytest.approx(result.cpu_seconds * 4.0)
    (metrics, step), = run.calls
    assert step == 7
    assert metrics["energy/wall_seconds"] == result.wall_seconds
    assert metrics["energy/measured"] in (0.0, 1.0)
    assert json.loads(json.dumps(result.as_dict()))["status"] == result.status
    assert "Measurement('matmul'" in repr(result)


def test_measure_reads_rapl_counters_when_readable(tmp_path):
    # A fake powercap tree: one package domain whose counter advances 2.5 J, wrapping once.
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "energy_uj").write_text("999000000\n")
    (domain / "max_energy_range_uj").write_text("1000000000\n")
    sub = tmp_path / "intel-rapl:0:0"  # a sub-domain, already inside the package figure
    sub.mkdir()
    (sub / "energy_uj").write_text("5\n")
    with measure(rapl_root=tmp_path, gpu=False) as meter:
        (domain / "energy_uj").write_text("1500000\n")
    result = meter.result
    assert result.cpu_method == "rapl" and result.cpu_status == "measured"
    assert result.cpu_energy_j == pytest.approx(2.5)
    assert result.status == "measured"


def test_measure_writes_to_a_monitor_store(tmp_path):
    monitor = pytest.importorskip("scaleguard.monitor")
    store = monitor.open_store(str(tmp_path / "runs.duckdb"))
    try:
        with measure("energy-check", store=store, step=3):
            sum(range(1000))
        (info,) = store.runs()
        frame = store.frame(info.run_id)
        assert "energy/energy_j" in set(frame["name"])
        assert set(frame["step"]) == {3}
    finally:
        store.close()


def test_measure_bad_input():
    with pytest.raises(InputError, match="run: expected an object with .log"):
        measure(run=object())
    with pytest.raises(InputError, match="cpu_watts_per_thread: expected a positive"):
        measure(cpu_watts_per_thread=0)


def test_measure_records_even_when_the_block_fails():
    with pytest.raises(ZeroDivisionError), measure() as meter:
        1 / 0  # noqa: B018
    assert meter.result is not None and meter.result.wall_seconds >= 0


class FakeNvml:
    """Stands in for nvidia-ml-py on a machine without a GPU: two GPUs whose counters advance."""

    def __init__(self, energy_counter: bool = True) -> None:
        self.energy_counter = energy_counter
        self.reads = 0
        self.shut = False

    def nvmlInit(self):  # noqa: N802 - NVML's names
        pass

    def nvmlShutdown(self):  # noqa: N802
        self.shut = True

    def nvmlDeviceGetCount(self):  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        if not self.energy_counter:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        self.reads += 1
        return 1_000_000 + (self.reads > 2) * 150_000  # mJ; +150 J each by the second read

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        return 300_000  # mW


def test_measure_reads_nvml_energy_counters(monkeypatch, tmp_path):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with measure(rapl_root=tmp_path) as meter:
        pass
    result = meter.result
    assert result.gpus == 2 and result.gpu_method == "nvml-energy"
    assert result.gpu_energy_j == pytest.approx(300.0)  # 2 GPUs x 150 J
    assert result.gpu_status == "measured"
    assert result.status == "estimated"  # the CPU part is still an estimate here
    assert fake.shut


def test_measure_falls_back_to_nvml_power(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(energy_counter=False))
    with measure(rapl_root=tmp_path) as meter:
        time.sleep(0.01)
    result = meter.result
    assert result.gpu_method == "nvml-power" and result.gpu_status == "estimated"
    assert result.gpu_energy_j == pytest.approx(600.0 * result.wall_seconds)
