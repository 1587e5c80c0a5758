"""Forecast the next rung from the ladder's table before training it, then score the forecast.

Loss and cost: :func:`forecast_rung` predicts the validation loss, :func:`forecast_cost` the wall
time and energy (from the smaller rungs' calibration: achieved FLOP/s as a power law in size,
:func:`scaleguard.resources.calibrate_ladder`, and their mean power; the energy is an estimate).

The loss fit is :class:`scaleguard.laws.LawFit` on the final validation losses against compute. A
ladder that keeps tokens per parameter fixed moves along one line in (N, D), so a
one-dimensional law in ``flops`` is all it can identify: the saturating power law
``L = E + A·C^(-alpha)`` from four rungs on, a pure power law below that (three parameters need
a fourth point to be tested by anything but themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from scaleguard.compute import Executor
from scaleguard.errors import FitError
from scaleguard.ladder._shape import gpt_shape, non_embedding_params
from scaleguard.ladder._spec import LadderSpec, RungSpec
from scaleguard.ladder._train import rung_steps
from scaleguard.laws import LawFit, LawFitResult
from scaleguard.resources import calibrate_ladder, rung_model_flops, training_flops

__all__ = ["CostForecast", "RungForecast", "forecast_cost", "forecast_rung", "planned_size",
           "SATURATING_MIN_RUNGS"]

SATURATING_MIN_RUNGS = 4  # E + A·C^-alpha has 3 parameters: one more point to check them
MIN_RUNGS = 2  # a power law's two parameters


def planned_size(spec: LadderSpec, rung: RungSpec) -> dict[str, float]:
    """``params`` (non-embedding), ``tokens`` and ``flops`` the rung will train with.

    >>> spec = LadderSpec.model_validate({"rungs": [{"layers": 2, "width": 64}]})
    >>> planned_size(spec, spec.rungs[0])["params"]
    100096.0
    """
    shape = gpt_shape(rung.layers, rung.width, rung.heads(spec.model.head_dim),
                      spec.model.block_size)
    params = float(non_embedding_params(shape))
    tokens = float(rung_steps(spec, rung) * spec.batch_size * spec.model.block_size)
    return {"params": params, "tokens": tokens, "flops": training_flops(params, tokens),
            "params_total": float(shape.params)}


@dataclass(frozen=True)
class RungForecast:
    """A rung's validation loss predicted from the smaller rungs, and, once run, observed."""

    rung: str
    layers: int
    width: int
    params: float
    tokens: float
    flops: float
    predicted_loss: float
    lower: float | None  # bootstrap interval of the law's value (None without a bootstrap)
    upper: float | None
    level: float | None
    fit: LawFitResult
    fitted_on: tuple[str, ...]
    observed_loss: float | None = None

    @property
    def abs_rel_error(self) -> float | None:
        """|predicted − observed| / observed, once observed."""
        if self.observed_loss is None:
            return None
        return abs(self.predicted_loss - self.observed_loss) / self.observed_loss

    def observe(self, loss: float) -> RungForecast:
        """The same forecast with the rung's measured final validation loss."""
        return replace(self, observed_loss=float(loss))

    def as_dict(self) -> dict[str, Any]:
        return {"rung": self.rung, "layers": self.layers, "width": self.width,
                "params": self.params, "tokens": self.tokens, "flops": self.flops,
                "predicted_loss": self.predicted_loss, "lower": self.lower,
                "upper": self.upper, "level": self.level, "fitted_on": list(self.fitted_on),
                "observed_loss": self.observed_loss, "abs_rel_error": self.abs_rel_error,
                "fit": self.fit.as_dict()}

    def __repr__(self) -> str:
        band = "" if self.lower is None else f" [{self.lower:.4f}, {self.upper:.4f}]"
        seen = ("" if self.observed_loss is None else
                f", observed {self.observed_loss:.4f} (error {self.abs_rel_error:.2%})")
        return (f"RungForecast({self.rung}: predicted {self.predicted_loss:.4f}{band} from "
                f"{self.fit.n_points} rungs ({self.fit.form}){seen})")


def forecast_rung(table: pd.DataFrame, spec: LadderSpec, rung: RungSpec, *,
                  form: str | None = None, x: str = "flops", n_boot: int = 0, seed: int = 0,
                  level: float = 0.95, executor: str | Executor | None = None) -> RungForecast:
    """Fit ``table`` (a ladder table, e.g. ``read_ladder(out/ladder.csv)``) and predict ``rung``.

    ``form`` defaults to ``saturating`` from :data:`SATURATING_MIN_RUNGS` rungs on, else
    ``power``; ``n_boot`` > 0 adds a bootstrap interval (run on ``executor``).
    """
    rows = table[table["name"] != rung.name] if "name" in table.columns else table
    if len(rows) < MIN_RUNGS:
        raise FitError(f"ladder table: {len(rows)} rung(s) besides {rung.name!r}; a forecast "
                       f"needs at least {MIN_RUNGS}")
    chosen = form or ("saturating" if len(rows) >= SATURATING_MIN_RUNGS else "power")
    fit = LawFit(form=chosen, x=x).fit(rows)
    size = planned_size(spec, rung)
    point = {x: size[x]}
    lower = upper = used_level = None
    if n_boot > 0:
        fit.bootstrap(n_boot=n_boot, seed=seed, executor=executor, level=level)
        interval = fit.predict_interval(point, level=level)
        lower, upper, used_level = float(interval.lower[0]), float(interval.upper[0]), level
    names = tuple(str(n) for n in rows["name"]) if "name" in rows.columns else ()
    return RungForecast(rung=rung.name, layers=rung.layers, width=rung.width,
                        params=size["params"], tokens=size["tokens"], flops=size["flops"],
                        predicted_loss=float(fit.predict(point)[0]), lower=lower, upper=upper,
                        level=used_level, fit=fit.result_, fitted_on=names)


def _rel_error(predicted: float | None, observed: float | None) -> float | None:
    if predicted is None or observed is None or observed == 0:
        return None
    return abs(predicted - observed) / observed


@dataclass(frozen=True)
class CostForecast:
    """A rung's wall time and energy predicted from the smaller rungs, and, once run, measured.

    ``energy_estimated`` is always True for the prediction (power × predicted time);
    ``power_estimated`` says whether the smaller rungs' power itself was measured or estimated.
    ``*_cpu_seconds``: the same forecast of the process CPU time, when the table records it
    (``cpu_s``); a shared machine's load inflates wall time but not CPU time. The energy then
    follows CPU time (``power_w`` is per CPU-second).
    """

    rung: str
    params: float
    params_total: float
    tokens: float
    predicted_seconds: float
    lower_seconds: float
    upper_seconds: float
    level: float
    predicted_energy_j: float | None
    power_w: float | None
    power_estimated: bool
    rate_exponent: float
    fitted_on: tuple[str, ...]
    observed_seconds: float | None = None
    observed_energy_j: float | None = None
    observed_energy_status: str | None = None
    energy_estimated: bool = True
    predicted_cpu_seconds: float | None = None
    observed_cpu_seconds: float | None = None

    @property
    def seconds_abs_rel_error(self) -> float | None:
        return _rel_error(self.predicted_seconds, self.observed_seconds)

    @property
    def energy_abs_rel_error(self) -> float | None:
        return _rel_error(self.predicted_energy_j, self.observed_energy_j)

    @property
    def cpu_abs_rel_error(self) -> float | None:
        return _rel_error(self.predicted_cpu_seconds, self.observed_cpu_seconds)

    def observe(self, seconds: float, energy_j: float | None = None,
                energy_status: str | None = None,
                cpu_seconds: float | None = None) -> CostForecast:
        """The same forecast with the rung's measured time (and energy, CPU time)."""
        return replace(self, observed_seconds=float(seconds),
                       observed_energy_j=None if energy_j is None else float(energy_j),
                       observed_energy_status=energy_status,
                       observed_cpu_seconds=None if cpu_seconds is None else float(cpu_seconds))

    def as_dict(self) -> dict[str, Any]:
        return {"rung": self.rung, "params": self.params, "params_total": self.params_total,
                "tokens": self.tokens, "predicted_seconds": self.predicted_seconds,
                "lower_seconds": self.lower_seconds, "upper_seconds": self.upper_seconds,
                "level": self.level, "predicted_energy_j": self.predicted_energy_j,
                "energy_estimated": self.energy_estimated, "power_w": self.power_w,
                "power_estimated": self.power_estimated, "rate_exponent": self.rate_exponent,
                "fitted_on": list(self.fitted_on), "observed_seconds": self.observed_seconds,
                "observed_energy_j": self.observed_energy_j,
                "observed_energy_status": self.observed_energy_status,
                "seconds_abs_rel_error": self.seconds_abs_rel_error,
                "energy_abs_rel_error": self.energy_abs_rel_error,
                "predicted_cpu_seconds": self.predicted_cpu_seconds,
                "observed_cpu_seconds": self.observed_cpu_seconds,
                "cpu_abs_rel_error": self.cpu_abs_rel_error}

    def __repr__(self) -> str:
        seen = ("" if self.observed_seconds is None else
                f", observed {self.observed_seconds:.1f}s "
                f"(error {self.seconds_abs_rel_error:.1%})")
        return (f"CostForecast({self.rung}: predicted {self.predicted_seconds:.1f}s "
                f"[{self.lower_seconds:.1f}, {self.upper_seconds:.1f}]{seen})")


def forecast_cost(table: pd.DataFrame, spec: LadderSpec, rung: RungSpec) -> CostForecast:
    """Predict ``rung``'s wall time and energy from a ladder table's other rungs.

    ``table`` is :func:`scaleguard.resources.ladder_frame` of the ladder (``time_s``,
    ``params_total``, ``energy_j`` per rung).
    """
    rows = table[table["name"] != rung.name] if "name" in table.columns else table
    cal = calibrate_ladder(rows)
    size = planned_size(spec, rung)
    flops = rung_model_flops(size["params_total"], size["tokens"])
    rate, slow, fast = cal.value_at(size["params"])
    seconds = flops / rate
    power, cpu = cal.power_w, None
    energy = None if power is None else power * seconds
    if "cpu_s" in rows.columns and rows["cpu_s"].notna().all():
        by_cpu = calibrate_ladder(rows, seconds="cpu_s")
        cpu = flops / by_cpu.value_at(size["params"])[0]
        if by_cpu.power_w is not None:  # energy per CPU-second: exact where energy = CPU s x W
            power, energy = by_cpu.power_w, by_cpu.power_w * cpu
    names = tuple(str(n) for n in rows["name"]) if "name" in rows.columns else ()
    return CostForecast(rung=rung.name, params=size["params"], params_total=size["params_total"],
                        tokens=size["tokens"], predicted_seconds=seconds,
                        lower_seconds=flops / fast, upper_seconds=flops / slow, level=cal.level,
                        predicted_energy_j=energy, power_w=power,
                        power_estimated=cal.power_estimated, rate_exponent=cal.slope,
                        fitted_on=names, predicted_cpu_seconds=cpu)
