"""The study file: one scaling decision in YAML, validated by pydantic.

A study names the ladder to fit, the target of the step, the hardware, the limits it must stay
within, the data there is, and optionally a rollout plan and the monitoring store. Quantities are
written the way people write them (``1e23``, ``70B``, ``2T``, ``5000MWh``, ``800tCO2e``, ``60d``)
and held in SI. Every error names the study file and the YAML path of the bad field.

>>> study = Study.model_validate({
...     "ladder": {"path": "ladder.csv"},
...     "target": {"compute": "1e23"},
...     "hardware": {"device": "h100-sxm", "devices": 1024},
...     "limits": {"energy": "2000MWh", "wall_clock": "60d"}})
>>> study.target.compute, study.limits.energy, study.limits.wall_clock
(1e+23, 7200000000000.0, 5184000.0)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from scaleguard.errors import ConfigError, ScaleguardError
from scaleguard.io import read_yaml, validate_config
from scaleguard.laws._bootstrap import MAX_RESAMPLES
from scaleguard.limits._scaling_checks import IRREDUCIBLE_FRACTION
from scaleguard.resources._planner import MAX_DEVICES
from scaleguard.units import parse_quantity

__all__ = ["Study", "load_study", "study_from_dict"]


def _quantity(dimension: str) -> BeforeValidator:
    def parse(value: Any) -> float:
        if isinstance(value, str) and dimension == "count":
            value = value.strip().removeprefix("$").strip()  # money is written "$5M"
        try:
            number = parse_quantity(value, dimension)
        except ScaleguardError as exc:
            raise ValueError(str(exc).removeprefix("value: ")) from None
        if not (math.isfinite(number) and number > 0):
            raise ValueError(f"expected a positive quantity, got {value!r}")
        return number

    return BeforeValidator(parse)


# The descriptions are what the file-format reference of the docs shows (generated from here).
Count = Annotated[float, _quantity("count"), Field(description="a count: 30B, 1.5M, 2e9")]
Flop = Annotated[float, _quantity("flop"), Field(description="FLOP: 1e23, 5e22FLOP")]
Energy = Annotated[float, _quantity("energy"), Field(description="energy: 1000MWh, 3.6e12J")]
Carbon = Annotated[float, _quantity("carbon"), Field(description="CO2e: 300tCO2e, 5e5kgCO2e")]
Duration = Annotated[float, _quantity("duration"), Field(description="a duration: 30d, 12h")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderSpec(_Section):
    """The ladder runs and the law to fit on them."""

    path: Path = Field(description="the ladder table (CSV, TSV, Parquet, JSONL): params, "
                                   "tokens and/or flops, loss; relative to the study file")
    columns: dict[str, str] = Field(
        default_factory=dict, description="map the table's headers to scaleguard's names, "
        "e.g. {params: Model Size, flops: Training FLOP} (what --col does for fit and inspect)")
    # The verdict needs loss as a function of N and D.
    form: Literal["chinchilla"] = Field("chinchilla", description="the law: L = E + A/N^alpha "
                                        "+ B/D^beta, fitted as Chinchilla's Approach 3")
    bootstrap: int = Field(200, ge=0, le=MAX_RESAMPLES, description="bootstrap resamples for the "
                           "prediction interval (0: none)")
    seed: int = Field(0, description="seed of the bootstrap")
    confidence: float = Field(0.9, gt=0, lt=1, description="level of the prediction interval")


# Targets an assessment can plan for, bounded so that every derived size stays a float and
# the layout search stays short: 1e30 FLOP is ~10^4 times the largest runs reported (Epoch AI,
# ~5e25 FLOP in 2024); 1e16 parameters and 1e18 tokens are as far beyond today's models.
MAX_TARGET_FLOP = 1e30
MAX_TARGET_PARAMS = 1e16
MAX_TARGET_TOKENS = 1e18


class TargetSpec(_Section):
    """The step: a compute budget, a loss to reach, or a model size with its tokens."""

    compute: Annotated[Flop, Field(ge=1.0, le=MAX_TARGET_FLOP)] | None = None
    loss: float | None = Field(None, gt=0, description="a loss to reach (instead of compute)")
    params: Annotated[Count, Field(ge=1.0, le=MAX_TARGET_PARAMS)] | None = None
    tokens: Annotated[Count, Field(ge=1.0, le=MAX_TARGET_TOKENS)] | None = None
    loss_tolerance: float | None = Field(None, gt=0, description="the widest loss interval "
                                         "the decision can act on")

    @model_validator(mode="after")
    def _one_target(self) -> TargetSpec:
        given = [name for name in ("compute", "loss") if getattr(self, name) is not None]
        if self.params is not None or self.tokens is not None:
            if self.params is None or self.tokens is None:
                raise ValueError("a model-size target needs both params and tokens")
            given.append("params+tokens")
        if len(given) != 1:
            raise ValueError("give exactly one target: compute, loss, or params with tokens "
                             f"(got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        if self.compute is not None:
            return "compute"
        return "loss" if self.loss is not None else "model"


class HardwareSpec(_Section):
    """Where the step runs and what an hour of it costs."""

    device: str = Field(description="a key of the hardware catalog (scaleguard resources "
                        "devices), e.g. h100-sxm")
    devices: int = Field(ge=1, le=MAX_DEVICES,  # the most a layout search plans
                         description="how many devices the step runs on")
    mfu: float = Field(0.4, gt=0, le=1, description="model FLOPs utilisation assumed")
    calibration: Path | None = Field(None, description="a `scaleguard resources calibrate` "
                                     "file: its measured MFU at the target's size replaces mfu")
    dtype: str = Field("bf16", description="the peak the MFU applies to")
    hardware_file: Path | None = Field(None, description="a YAML file of extra devices, same "
                                       "shape as the catalog")
    price_per_device_hour: float | None = Field(None, ge=0, description="USD per device-hour")
    power_w: float | None = Field(None, gt=0, description="average watts per device "
                                  "(default: the catalog's TDP)")
    # Patterson et al. 2021 use 1.1 for Google data centres.
    pue: float = Field(1.1, ge=1, description="data-centre power usage effectiveness")
    grid_intensity: float | str = Field(400.0, description="gCO2e/kWh, or a region (FRA, "
                                        "gcp:us-central1; needs the energy extra)")
    seq_len: int = Field(4096, ge=1, description="training sequence length (tokens)")
    global_batch: int | None = Field(None, ge=1, description="sequences per optimizer step "
                                     "(default: about 4M tokens)")
    model: str | dict[str, int] | None = Field(None, description="a preset name (llama-3-70b) "
                                               "or a transformer shape; default: one sized "
                                               "from the target")

    @field_validator("model")
    @classmethod
    def _model_fields(cls, value: Any) -> Any:
        # Named here, with the study's path, rather than as ModelShape's TypeError later.
        if isinstance(value, dict):
            import dataclasses

            from scaleguard.resources._model import ModelShape

            fields = {f.name: f for f in dataclasses.fields(ModelShape)}
            unknown = sorted(set(value) - set(fields) - {"name", "seq"})
            if unknown:
                raise ValueError(f"unknown field {unknown[0]!r}; a model shape has "
                                 f"{', '.join(n for n in fields if n not in ('name', 'seq'))}")
            missing = [n for n, f in fields.items() if n not in value and n != "seq"
                       and f.default is dataclasses.MISSING]
            if missing:
                raise ValueError(f"missing {', '.join(missing)} (or give a preset name)")
            try:  # its own checks (positive sizes...), named with the study's path
                ModelShape(**{"seq": 1, **value})
            except (ScaleguardError, TypeError) as exc:
                raise ValueError(str(exc)) from None
        return value


class LimitsSpec(_Section):
    """What the step must stay within; a limit left out is not checked."""

    money: Count | None = Field(default=None, description="USD: 1M, $250k")
    energy: Energy | None = None
    carbon: Carbon | None = None
    wall_clock: Duration | None = None


class DataSpec(_Section):
    """The training data there is."""

    unique_tokens: Count | None = Field(default=None, description="deduplicated tokens "
                                        "available (the data wall; Muennighoff et al. 2023)")


class ReturnsSpec(_Section):
    """When returns count as diminishing."""

    irreducible_fraction: float = Field(default=IRREDUCIBLE_FRACTION, gt=0, lt=1,
                                        description="diminishing once L - E falls under this "
                                                    "fraction of E")


class RolloutSpec(_Section):
    """A staged rollout (``scaleguard.safety``): its plan, observations and saved state."""

    plan: Path = Field(description="the rollout plan (YAML)")
    observations: Path | None = Field(default=None, description="the observations table (CSV, ...)")
    state: Path | None = Field(default=None, description="the folder `scaleguard rollout decide "
                               "--state` keeps")
    rollout_id: str | None = Field(
        default=None, description="a rollout kept in the monitoring store (by the service or "
        "`rollout decide --store`): its state and observation windows are read from there")


class MonitoringSpec(_Section):
    """Monitoring evidence: open alerts of the pilot runs block or condition the verdict."""

    store: str | None = Field(default=None, description="a DuckDB file (relative to the "
                              "study) or a postgresql:// URL")
    alerts: Path | None = Field(default=None,
                                description="a JSONL file of alerts, one object a line")
    runs: list[str] | None = Field(default=None, description="the runs to count (default: all)")


class Study(_Section):
    """One scaling decision. Paths are relative to the study file."""

    name: str = Field("study", description="what the report calls the decision")
    ladder: LadderSpec
    target: TargetSpec
    hardware: HardwareSpec
    limits: LimitsSpec = Field(default_factory=lambda: LimitsSpec())
    data: DataSpec = Field(default_factory=lambda: DataSpec())
    returns: ReturnsSpec = Field(default_factory=lambda: ReturnsSpec())
    rollout: RolloutSpec | None = None
    monitoring: MonitoringSpec | None = None
    base_dir: Path = Path(".")  # where relative paths start; set by load_study
    _source: str = PrivateAttr("<study>")  # the study file, named in errors found later

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    @property
    def source(self) -> str:
        """The study file (``<study>`` for one built in code)."""
        return self._source

    def named(self, exc: ScaleguardError) -> ScaleguardError:
        """``exc`` with the study file in front when it names a field of the study
        (``hardware.device: unknown device``) rather than a file of its own."""
        text = str(exc)
        if any(text.startswith((f"{field}.", f"{field}:")) for field in type(self).model_fields):
            return type(exc)(f"{self._source}: {text}")
        return exc


def study_from_dict(data: Any, *, source: str = "<study>", base_dir: Path | None = None) -> Study:
    """Validate a parsed study; errors name ``source`` and the YAML path of the bad field."""
    if base_dir is not None and isinstance(data, dict):
        data = {**data, "base_dir": base_dir}
    study = validate_config(Study, data, source,
                            expected="a mapping of sections (ladder, target, hardware, ...)")
    study._source = source
    return study


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML file."""
    path = Path(path)
    data = read_yaml(path, "study")
    if isinstance(data, dict) and "base_dir" in data:
        raise ConfigError(f"{path}: base_dir: unknown field")
    return study_from_dict(data, source=str(path), base_dir=path.parent)
