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


Count = Annotated[float, _quantity("count")]
Flop = Annotated[float, _quantity("flop")]
Energy = Annotated[float, _quantity("energy")]
Carbon = Annotated[float, _quantity("carbon")]
Duration = Annotated[float, _quantity("duration")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderSpec(_Section):
    """The ladder runs and the law to fit on them."""

    path: Path
    columns: dict[str, str] = Field(default_factory=dict)
    form: Literal["chinchilla"] = "chinchilla"  # the verdict needs loss as a function of N and D
    bootstrap: int = Field(200, ge=0, le=MAX_RESAMPLES)
    seed: int = 0
    confidence: float = Field(0.9, gt=0, lt=1)


# Targets an assessment can plan for, bounded so that every derived size stays a float and
# the layout search stays short: 1e30 FLOP is ~10^4 times the largest runs reported (Epoch AI,
# ~5e25 FLOP in 2024); 1e16 parameters and 1e18 tokens are as far beyond today's models.
MAX_TARGET_FLOP = 1e30
MAX_TARGET_PARAMS = 1e16
MAX_TARGET_TOKENS = 1e18


class TargetSpec(_Section):
    """The step: a compute budget, a loss to reach, or a model size with its tokens."""

    compute: Annotated[Flop, Field(ge=1.0, le=MAX_TARGET_FLOP)] | None = None
    loss: float | None = Field(None, gt=0)
    params: Annotated[Count, Field(ge=1.0, le=MAX_TARGET_PARAMS)] | None = None
    tokens: Annotated[Count, Field(ge=1.0, le=MAX_TARGET_TOKENS)] | None = None
    loss_tolerance: float | None = Field(None, gt=0)  # widest interval the decision acts on

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

    device: str
    devices: int = Field(ge=1, le=MAX_DEVICES)  # the most a layout search plans
    mfu: float = Field(0.4, gt=0, le=1)
    # A `scaleguard resources calibrate` file: its measured MFU at the target's size replaces mfu.
    calibration: Path | None = None
    dtype: str = "bf16"
    hardware_file: Path | None = None
    price_per_device_hour: float | None = Field(None, ge=0)  # USD
    power_w: float | None = Field(None, gt=0)  # average per device; default: the catalog's TDP
    pue: float = Field(1.1, ge=1)  # Patterson et al. 2021 use 1.1 for Google data centres
    grid_intensity: float | str = 400.0  # gCO2e/kWh, or a region name the catalog knows
    seq_len: int = Field(4096, ge=1)
    global_batch: int | None = Field(None, ge=1)  # sequences per step; default about 4M tokens
    model: str | dict[str, int] | None = None  # a preset name or a transformer shape

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

    money: Count | None = None  # USD
    energy: Energy | None = None
    carbon: Carbon | None = None
    wall_clock: Duration | None = None


class DataSpec(_Section):
    unique_tokens: Count | None = None


class ReturnsSpec(_Section):
    irreducible_fraction: float = Field(default=IRREDUCIBLE_FRACTION, gt=0, lt=1)


class RolloutSpec(_Section):
    """A staged rollout (``scaleguard.safety``): its plan, observations and saved state."""

    plan: Path
    observations: Path | None = None
    state: Path | None = None  # the folder `scaleguard rollout decide --state` keeps
    # A rollout kept in the monitoring store (by the service or `rollout decide --store`):
    # its state and observation windows are read from there.
    rollout_id: str | None = None


class MonitoringSpec(_Section):
    store: str | None = None  # a DuckDB file (relative to the study) or a postgresql:// URL
    alerts: Path | None = None  # a JSONL file of alerts, one object a line
    runs: list[str] | None = None


class Study(_Section):
    """One scaling decision. Paths are relative to the study file."""

    name: str = "study"
    ladder: LadderSpec
    target: TargetSpec
    hardware: HardwareSpec
    limits: LimitsSpec = Field(default_factory=lambda: LimitsSpec())
    data: DataSpec = Field(default_factory=lambda: DataSpec())
    returns: ReturnsSpec = Field(default_factory=lambda: ReturnsSpec())
    rollout: RolloutSpec | None = None
    monitoring: MonitoringSpec | None = None
    base_dir: Path = Path(".")  # where relative paths start; set by load_study

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path


def study_from_dict(data: Any, *, source: str = "<study>", base_dir: Path | None = None) -> Study:
    """Validate a parsed study; errors name ``source`` and the YAML path of the bad field."""
    if base_dir is not None and isinstance(data, dict):
        data = {**data, "base_dir": base_dir}
    return validate_config(Study, data, source,
                           expected="a mapping of sections (ladder, target, hardware, ...)")


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML file."""
    path = Path(path)
    data = read_yaml(path, "study")
    if isinstance(data, dict) and "base_dir" in data:
        raise ConfigError(f"{path}: base_dir: unknown field")
    return study_from_dict(data, source=str(path), base_dir=path.parent)
