"""Where calibrations come from: a ladder table, a monitor run, a serving benchmark (the I/O edge
of :mod:`scaleguard.resources._calibration`).

A ladder rung's model FLOPs are 6 · params_total · tokens (every parameter, attention left out at
a ladder's short contexts), over its ``time_s`` on one device (or its ``cpu_s``, the process CPU
seconds, which a shared machine's other load does not inflate). A monitor run's are FLOPs per token
of its model (PaLM's form) times its logged tokens/s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from scaleguard.errors import InputError
from scaleguard.io import FLOPS_PER_PARAM_TOKEN, NumericColumn, check_numeric, read_table
from scaleguard.resources._calibration import Calibration, calibrate_serving, calibrate_training
from scaleguard.resources._compute import flops_per_token
from scaleguard.resources._hardware import Device
from scaleguard.resources._model import ModelShape
from scaleguard.resources._serving import decode_step, prefill_step

__all__ = ["LADDER_TABLE", "calibrate_ladder", "calibrate_run", "calibrate_serving_benchmark",
           "ladder_frame", "rung_model_flops"]

LADDER_TABLE: Final = "ladder.csv"
# The first share of a run's throughput samples is warm-up (compilation, caches, data loader).
WARMUP_SHARE: Final = 0.1
SERVING_COLUMNS: Final = ("prompt_tokens", "output_tokens", "latency_s")


def rung_model_flops(params_total: Any, tokens: Any) -> Any:
    """Model FLOPs a ladder rung is calibrated against: 6 · every parameter · tokens."""
    return FLOPS_PER_PARAM_TOKEN * params_total * tokens


def ladder_frame(path: str | Path) -> pd.DataFrame:
    """A ladder table (``ladder.csv``, or a folder holding one) with the columns calibration uses,
    checked row by row."""
    file = Path(path)
    if file.is_dir():
        file = file / LADDER_TABLE
    frame = read_table(file, required=("params", "tokens", "time_s"))
    # Energy and CPU time are optional: a rung whose meter gave nothing leaves the cell empty,
    # and then the column is not used rather than the table refused.
    partial = [c for c in ("energy_j", "cpu_s", "params_total")
               if c in frame.columns and frame[c].isna().any()]
    frame = frame.drop(columns=partial)
    return check_numeric(frame, [NumericColumn("params", positive=True),
                                 NumericColumn("tokens", positive=True),
                                 NumericColumn("time_s", positive=True),
                                 NumericColumn("params_total", positive=True, required=False),
                                 NumericColumn("cpu_s", positive=True, required=False),
                                 NumericColumn("energy_j", nonnegative=True, required=False)])


def calibrate_ladder(frame: pd.DataFrame, *, peak_flops: float | None = None,
                     device: str | None = None, source: str | None = None,
                     seconds: str = "time_s") -> Calibration:
    """A power law of achieved FLOP/s in model size (``params``) from a ladder table's rungs.

    ``seconds`` is the column of each rung's duration: ``time_s`` (wall) or ``cpu_s``. The
    power is energy over that duration.
    """
    if seconds not in frame.columns:
        raise InputError(f"{source or frame.attrs.get('source', 'ladder')}: no {seconds!r} "
                         "column to calibrate against")
    if len(frame) < 2:
        raise InputError(f"{source or frame.attrs.get('source', 'ladder')}: {len(frame)} rung(s);"
                         " a size law needs at least 2")
    total = frame["params_total"] if "params_total" in frame.columns else frame["params"]
    duration = frame[seconds].to_numpy(dtype=float)
    flops = rung_model_flops(total.to_numpy(dtype=float), frame["tokens"].to_numpy(dtype=float))
    rates = flops / duration
    power = None
    estimated = False
    if "energy_j" in frame.columns and frame["energy_j"].notna().all():
        power = float(frame["energy_j"].sum() / duration.sum())
        status = frame["energy_status"] if "energy_status" in frame.columns else None
        estimated = status is None or bool((status != "measured").any())
    return calibrate_training(rates, params=frame["params"].to_numpy(dtype=float),
                              peak_flops=peak_flops, device=device,
                              source=source or str(frame.attrs.get("source", "ladder")),
                              power_w=power or None, power_estimated=estimated)


def calibrate_run(store: Any, run: str, model: ModelShape, device: Device, devices: int, *,
                  metric: str = "tokens_per_s", per_device: bool = False,
                  dtype: str | None = None) -> Calibration:
    """Achieved MFU of a stored monitor run from its tokens/s series.

    ``store`` is a :mod:`scaleguard.monitor` store; ``metric`` the logged throughput (whole job,
    or one device's with ``per_device``); the first :data:`WARMUP_SHARE` of samples is dropped.
    """
    info = store.resolve(run)
    if metric not in store.metrics(info.run_id):
        known = ", ".join(store.metrics(info.run_id)) or "none"
        raise InputError(f"--metric: run {info.name!r} has no metric {metric!r} (it has {known})")
    values = np.asarray(store.series(info.run_id, metric).values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    values = values[int(len(values) * WARMUP_SHARE):]
    if len(values) < 2:
        raise InputError(f"--metric: run {info.name!r} has {len(values)} usable {metric} "
                         "samples after warm-up; at least 2 are needed")
    share = 1 if per_device else devices
    rates = values / share * flops_per_token(model)
    dtype = dtype or device.training_dtype
    return calibrate_training(rates, peak_flops=device.peak(dtype), device=device.key,
                              dtype=dtype, source=f"run {info.name} ({metric})")


def calibrate_serving_benchmark(path: str | Path, model: ModelShape, device: Device, *,
                                tp: int = 1) -> Calibration:
    """Serving efficiency from a benchmark table: one row per request with ``prompt_tokens``,
    ``output_tokens``, ``latency_s`` (end to end) and optionally ``batch`` (concurrent
    sequences when it ran, default 1)."""
    frame = read_table(path, required=SERVING_COLUMNS)
    frame = check_numeric(frame, [NumericColumn("prompt_tokens", positive=True),
                                  NumericColumn("output_tokens", positive=True),
                                  NumericColumn("latency_s", positive=True),
                                  NumericColumn("batch", positive=True, required=False)])
    batch = frame["batch"] if "batch" in frame.columns else pd.Series(1.0, index=frame.index)
    ideal = []
    for prompt, output, size in zip(frame["prompt_tokens"], frame["output_tokens"], batch,
                                    strict=True):
        first = prefill_step(model, device, batch=size, prompt=int(prompt), tp=tp,
                             efficiency=1.0).seconds
        step = decode_step(model, device, batch=size, context=prompt + output / 2, tp=tp,
                           efficiency=1.0).seconds
        ideal.append(first + output * step)
    return calibrate_serving(ideal, frame["latency_s"].to_numpy(dtype=float),
                             source=f"{path} ({len(frame)} requests)", device=device.key)
