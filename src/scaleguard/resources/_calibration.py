"""Calibration from measured runs: the MFU (training) or efficiency (serving) a stack reached.

Training: each observation is an achieved model FLOP rate per device (model FLOPs / seconds /
devices). One run gives a mean with a t-interval (its throughput samples, warm-up dropped); a
ladder of model sizes gives a power law ``rate(N) = rate₀ · (N / N₀)^b`` fitted in log space,
with a t prediction interval for a new model size: how MFU changes with size. MFU is the rate
over the device's peak (PaLM's definition), when the peak is known.

Serving: each request of a measured benchmark (prompt and output tokens, time to first token,
end-to-end latency) is compared with the roofline at 100% efficiency; the efficiency is the
ratio ideal / measured, summarised the same way.

A calibration is written as a small JSON file (:meth:`Calibration.write`) that ``resources
train|plan|serve`` and ``assess`` read back (:func:`read_calibration`).

>>> cal = calibrate_training([3.0e14, 3.2e14, 3.1e14], peak_flops=989.4e12, source="run")
>>> round(cal.mfu, 3), cal.observations
(0.313, 3)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from scaleguard.errors import ConfigError, InputError
from scaleguard.resources._checks import check_fraction, check_positive

__all__ = ["CALIBRATION_KINDS", "Calibration", "calibrate_serving", "calibrate_training",
           "read_calibration"]

CALIBRATION_KINDS: Final = ("training", "serving")
FORMAT: Final = "scaleguard-calibration/1"
LEVEL: Final = 0.95
# Observations beyond this are summarised by equal batch means (bounded work, and batch means
# tame the autocorrelation of consecutive throughput samples).
MAX_BATCHES: Final = 20


@dataclass(frozen=True)
class Calibration:
    """A fitted log-linear law of a measured figure against model size (slope 0 for one run).

    Attributes
    ----------
    kind:
        ``training`` (the figure is model FLOP/s per device) or ``serving`` (efficiency).
    intercept, slope, x_mean, sxx, sd, observations:
        ``ln y = intercept + slope · (ln N − x_mean)``, residual standard deviation ``sd`` over
        ``observations``; ``sxx`` is the spread of ln N (0 without a size axis).
    predictive:
        The interval is for a new observation (a new rung) rather than for the mean.
    peak_flops:
        Peak FLOP/s of the measured device (MFU = rate / peak); None when unknown.
    power_w:
        Mean measured (or estimated) power per device, when energies were given.
    """

    kind: str
    intercept: float
    slope: float
    x_mean: float
    sxx: float
    sd: float
    observations: int
    source: str
    predictive: bool = False
    level: float = LEVEL
    device: str | None = None
    dtype: str | None = None
    peak_flops: float | None = None
    power_w: float | None = None
    power_estimated: bool = False

    def _interval(self, params: float | None) -> tuple[float, float, float]:
        x = 0.0 if params is None or self.sxx == 0 else math.log(params) - self.x_mean
        centre = self.intercept + self.slope * x
        fitted = 2 if self.sxx > 0 else 1
        dof = self.observations - fitted
        if dof < 1 or self.sd == 0:
            return math.exp(centre), math.exp(centre), math.exp(centre)
        spread = 1.0 / self.observations + (x * x / self.sxx if self.sxx > 0 else 0.0)
        half = (float(stats.t.ppf(0.5 + self.level / 2, dof)) * self.sd
                * math.sqrt(spread + (1.0 if self.predictive else 0.0)))
        return math.exp(centre), math.exp(centre - half), math.exp(centre + half)

    def value_at(self, params: float | None = None) -> tuple[float, float, float]:
        """(estimate, lower, upper) of the figure at ``params`` (the fit's centre if None)."""
        return self._interval(params)

    @property
    def rate(self) -> float:
        """Training: model FLOP/s per device at the centre of the fit."""
        return self.value_at()[0]

    @property
    def mfu(self) -> float | None:
        """Training: the MFU at the centre of the fit, None without a peak."""
        return None if self.peak_flops is None else self.rate / self.peak_flops

    def mfu_at(self, params: float | None = None) -> tuple[float, float, float] | None:
        """(MFU, lower, upper) at ``params``, capped at 1; None without a peak."""
        if self.peak_flops is None:
            return None
        peak = self.peak_flops
        return tuple(min(1.0, v / peak) for v in self.value_at(params))  # type: ignore[return-value]

    @property
    def efficiency(self) -> float:
        """Serving: the efficiency (share of peak FLOP/s and bandwidth) reached, capped at 1."""
        return min(1.0, self.value_at()[0])

    def as_dict(self) -> dict[str, Any]:
        centre, lower, upper = self.value_at()
        figures: dict[str, Any] = {"value": centre, "lower": lower, "upper": upper}
        if self.kind == "training" and self.peak_flops is not None:
            figures.update(mfu=centre / self.peak_flops, mfu_lower=lower / self.peak_flops,
                           mfu_upper=upper / self.peak_flops)
        return {"format": FORMAT, **asdict(self), **figures}

    def write(self, path: str | Path) -> Path:
        """Write the calibration file atomically (a reader never sees half of it)."""
        target = Path(path)
        partial = target.with_name(target.name + ".tmp")
        try:
            partial.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InputError(f"{target}: cannot write the calibration ({exc.strerror})") from None
        return target

    def __repr__(self) -> str:
        centre, lower, upper = self.value_at()
        if self.kind == "serving":
            what = f"efficiency {centre:.3f} [{lower:.3f}, {upper:.3f}]"
        elif self.peak_flops:
            what = (f"MFU {centre / self.peak_flops:.3f} [{lower / self.peak_flops:.3f}, "
                    f"{upper / self.peak_flops:.3f}]")
        else:
            what = f"{centre:.4g} FLOP/s per device [{lower:.4g}, {upper:.4g}]"
        size = f", slope {self.slope:.3f} in ln N" if self.sxx > 0 else ""
        return (f"Calibration({self.kind}, {what} at {self.level:.0%}{size}, "
                f"{self.observations} observations from {self.source})")


def _batch_means(values: np.ndarray) -> np.ndarray:
    if len(values) <= MAX_BATCHES:
        return values
    return np.array([chunk.mean() for chunk in np.array_split(values, MAX_BATCHES)])


def _checked(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise InputError(f"{name}: no observations to calibrate from")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise InputError(f"{name}: every observation must be a positive finite number")
    return array


def _fit(kind: str, values: ArrayLike, params: ArrayLike | None, source: str,
         **extra: Any) -> Calibration:
    y = np.log(_checked(values, kind))
    if params is None or len(np.unique(np.asarray(params, dtype=float))) < 2:
        logs = np.log(_batch_means(np.exp(y)))
        sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
        return Calibration(kind, float(logs.mean()), 0.0, 0.0, 0.0, sd, len(logs), source,
                           **extra)
    x = np.log(_checked(params, "params"))
    if len(x) != len(y):
        raise InputError(f"params: {len(x)} model sizes for {len(y)} observations")
    x_mean = float(x.mean())
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean())
    residuals = y - intercept - slope * (x - x_mean)
    sd = float(math.sqrt((residuals ** 2).sum() / (len(y) - 2))) if len(y) > 2 else 0.0
    return Calibration(kind, intercept, slope, x_mean, sxx, sd, len(y), source, predictive=True,
                       **extra)


def calibrate_training(rates: ArrayLike, *, params: ArrayLike | None = None,
                       peak_flops: float | None = None, source: str = "measured",
                       device: str | None = None, dtype: str | None = None,
                       power_w: float | None = None, power_estimated: bool = False,
                       level: float = LEVEL) -> Calibration:
    """Fit achieved model FLOP/s per device: a mean (one run) or a power law in ``params``.

    ``rates`` are model FLOPs / seconds / devices, one per throughput sample or per rung;
    ``params`` the model size of each (a ladder), or None for one model.
    """
    peak = None if peak_flops is None else check_positive(peak_flops, "peak_flops")
    power = None if power_w is None else check_positive(power_w, "power")
    fit = _fit("training", rates, params, source, device=device, dtype=dtype, peak_flops=peak,
               power_w=power, power_estimated=power_estimated)
    return replace(fit, level=check_fraction(level, "level"))


def calibrate_serving(ideal_seconds: ArrayLike, measured_seconds: ArrayLike, *,
                      source: str = "measured", device: str | None = None,
                      level: float = LEVEL) -> Calibration:
    """Efficiency = ideal roofline time / measured time, one ratio per request."""
    ideal = _checked(ideal_seconds, "ideal_seconds")
    measured = _checked(measured_seconds, "measured_seconds")
    if len(ideal) != len(measured):
        raise InputError(f"measured_seconds: {len(measured)} latencies for {len(ideal)} requests")
    fit = _fit("serving", ideal / measured, None, source, device=device)
    return replace(fit, level=check_fraction(level, "level"))


_REQUIRED: Final = ("kind", "intercept", "slope", "x_mean", "sxx", "sd", "observations",
                    "source")


def read_calibration(path: str | Path, *, kind: str | None = None) -> Calibration:
    """Read a calibration file; a :class:`ConfigError` naming the file and field if it is bad.

    ``kind`` (``training`` or ``serving``) insists on one kind.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the calibration ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not a calibration file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{file}: not a calibration file (no \"format\": \"{FORMAT}\"); "
                          "write one with scaleguard resources calibrate")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ConfigError(f"{file}: field {missing[0]!r} missing")
    if data["kind"] not in CALIBRATION_KINDS:
        raise ConfigError(f"{file}: field 'kind': expected training or serving, "
                          f"got {data['kind']!r}")
    if kind is not None and data["kind"] != kind:
        raise ConfigError(f"{file}: a {data['kind']} calibration, where a {kind} one is needed")
    fields: dict[str, Any] = {name: data[name] for name in Calibration.__dataclass_fields__
                              if name in data}
    try:
        cal = Calibration(**fields)
        for name in ("intercept", "slope", "x_mean", "sxx", "sd", "level"):
            if not math.isfinite(float(getattr(cal, name))):
                raise ValueError(name)
        if not isinstance(cal.observations, int) or cal.observations < 1 or cal.sxx < 0 \
                or cal.sd < 0 or not 0 < cal.level < 1:
            raise ValueError("observations, sxx, sd or level")
        if cal.peak_flops is not None and not float(cal.peak_flops) > 0:
            raise ValueError("peak_flops")
    except ValueError as exc:
        raise ConfigError(f"{file}: field {exc} is not valid") from None
    except TypeError:
        raise ConfigError(f"{file}: a field is not a number where one is needed") from None
    return cal
