"""Can the plan finish, and can it see the harms it is meant to stop? Checked before it runs.

From the plan's expected traffic (``simulation.exposures_per_look`` every ``look_interval`` at
100% traffic, split over segments by ``segment_weights``), each stage gets:

- the treatment exposures it receives per hour and the time to its ``min_exposures``;
- its earliest end (the later of that time and ``min_duration``, on the look grid);
- per comparison gate, the smallest harm ``theta`` (treatment - comparator, harm direction) the
  gate shows with 80% power at the stage's minimum size: the gate fails when the lower bound of
  its always-valid confidence sequence clears the margin, so ``theta = margin + w + z_0.8 sd``
  with ``w`` the sequence's half-width and ``sd`` the estimate's standard error (alpha shared by
  Bonferroni over the stage's gates: the first rejection Holm makes). ``strict`` gates clear 0.

Warnings: a stage that cannot reach its minimum exposures within its ``max_duration`` never
advances (it holds, inconclusive); a stage whose smallest detectable harm exceeds twice its
margin (for ``strict`` metrics: the margin) would let a harm beyond the margin through, in its
smallest segment too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from scaleguard.safety._gates import mixture_sd
from scaleguard.safety._plan import MetricSpec, RolloutPlan
from scaleguard.safety._rules import stage_active
from scaleguard.safety._sequential import normal_mixture_halfwidth
from scaleguard.units import format_quantity

__all__ = ["POWER", "Feasibility", "GateReach", "StageFeasibility", "feasibility"]

POWER = 0.8  # the conventional power of a trial design (Cohen 1988)


@dataclass(frozen=True)
class GateReach:
    """The smallest harm a comparison gate shows with :data:`POWER` at the stage's minimum."""

    metric: str
    margin: float
    strict: bool
    detectable: float | None  # overall, None without a baseline to size the variance
    segment: str | None  # the smallest admitted segment
    detectable_in_segment: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StageFeasibility:
    name: str
    exposures_per_hour: float  # treatment exposures per hour at the planned traffic
    time_to_min_exposures: float  # seconds; inf when the stage receives no traffic
    earliest_end: float  # seconds; on the look grid
    gates: tuple[GateReach, ...]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("time_to_min_exposures", "earliest_end"):
            out[key] = out[key] if math.isfinite(out[key]) else None
        out["gates"] = [g.as_dict() for g in self.gates]
        return out


@dataclass(frozen=True)
class Feasibility:
    """Per-stage reach of a plan at its expected traffic, and what cannot work."""

    plan: str
    exposures_per_hour: float  # at 100% traffic
    stages: tuple[StageFeasibility, ...]
    time_to_full: float  # seconds until the last stage's traffic, gates passing at once
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "exposures_per_hour": self.exposures_per_hour,
                "power": POWER, "stages": [s.as_dict() for s in self.stages],
                "time_to_full": self.time_to_full if math.isfinite(self.time_to_full)
                else None, "warnings": list(self.warnings)}


def _unit_variance(metric: MetricSpec) -> float | None:
    """Per-exposure variance of the metric at its baseline (None: nothing to size it by)."""
    if metric.kind == "mean":
        return metric.sd * metric.sd if metric.sd is not None else None
    if metric.baseline is None:
        return None
    p = metric.baseline
    return p * (1.0 - p)


def _detectable(metric: MetricSpec, n: float, alpha: float) -> float | None:
    variance = _unit_variance(metric)
    if variance is None or n <= 0 or not math.isfinite(n):
        return None
    se2 = 2.0 * variance / n  # treatment - control, n exposures each
    width = float(normal_mixture_halfwidth(se2, mixture_sd(metric), alpha))
    start = 0.0 if metric.strict else float(metric.margin or 0.0)
    return start + width + float(stats.norm.ppf(POWER)) * math.sqrt(se2)


def _segment_shares(plan: RolloutPlan, index: int) -> dict[str, float]:
    """Share of the stage's traffic in each admitted segment value (from segment_weights)."""
    given = plan.simulation.segment_weights or {}
    admitted = plan.stages[index].segments or {}
    out = {}
    for dim, values in plan.segments.items():
        weights = {v: given.get(dim, {}).get(v, 1.0) for v in values}
        total = sum(weights.values())
        kept = [v for v in values if dim not in admitted or v in admitted[dim]]
        kept_total = sum(weights[v] for v in kept)
        for v in kept:
            out[f"{dim}={v}"] = weights[v] / kept_total if kept_total else 0.0
        out[f"_{dim}"] = kept_total / total if total else 0.0  # admitted share of the dim
    return out


def feasibility(plan: RolloutPlan) -> Feasibility:
    """How long each stage takes at the expected traffic and which harms it can show.

    >>> from scaleguard.safety._plan import parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "margin": 0.001,
    ...     "baseline": 0.01}], "stages": [{"name": "pilot", "traffic": 0.01,
    ...     "min_exposures": "50k", "max_duration": "1d"}],
    ...     "simulation": {"exposures_per_look": "200k", "look_interval": "1h"}})
    >>> report = feasibility(plan)
    >>> report.stages[0].exposures_per_hour, report.stages[0].time_to_min_exposures / 3600
    (2000.0, 25.0)
    >>> report.warnings[0].startswith("stage 'pilot' needs 1.04d to reach its 50k minimum")
    True
    """
    sim = plan.simulation
    interval = sim.look_interval or 3600.0
    per_hour = sim.exposures_per_look / interval * 3600.0
    active = stage_active(plan)
    warnings: list[str] = []
    stages = []
    for i, stage in enumerate(plan.stages):
        shares = _segment_shares(plan, i)
        admitted = float(np.prod([shares[f"_{d}"] for d in plan.segments])) if plan.segments \
            else 1.0
        rate = per_hour * stage.traffic * admitted  # treatment exposures per hour
        to_min = stage.min_exposures / rate * 3600.0 if rate > 0 else math.inf
        needed = max(stage.min_duration, to_min)
        earliest = math.ceil(needed / interval - 1e-9) * interval if math.isfinite(needed) \
            else math.inf
        earliest = max(earliest, interval)  # the first look comes one interval in
        if stage.max_duration is not None and to_min > stage.max_duration:
            warnings.append(f"stage {stage.name!r} needs {_hours(to_min)} to reach its "
                            f"{_count(stage.min_exposures)} minimum exposures at "
                            f"{_count(rate)}/h, beyond its max_duration "
                            f"{_hours(stage.max_duration)}: it can never advance")
        n = max(stage.min_exposures, rate * max(stage.min_duration, interval) / 3600.0)
        gates_here = int(active[i].sum())
        alpha = plan.alpha / max(1, gates_here)
        reach = []
        for metric in plan.stage_metrics(i):
            if metric.margin is None or (metric.compare_to == "previous_stage" and i == 0):
                continue
            overall = _detectable(metric, n, alpha)
            segs = {k: v for k, v in shares.items() if not k.startswith("_")}
            smallest = min(segs, key=lambda k: segs[k]) if segs else None
            in_segment = _detectable(metric, n * segs[smallest], alpha) if smallest else None
            reach.append(GateReach(metric.name, metric.margin, metric.strict, overall, smallest,
                                   in_segment))
            limit = metric.margin if metric.strict else 2.0 * metric.margin
            for where, value in (("overall", overall), (smallest, in_segment)):
                if value is not None and value > limit:
                    what = "any harm above 0" if metric.strict else \
                        f"a harm of twice its margin {metric.margin:g}"
                    warnings.append(f"stage {stage.name!r}: {metric.name} ({where}) at "
                                    f"{_count(n)} exposures detects harms from {value:.3g} "
                                    f"with {POWER:.0%} power; {what} may pass unseen")
                    break
        stages.append(StageFeasibility(stage.name, rate, to_min, earliest, tuple(reach)))
    time_to_full = sum(s.earliest_end for s in stages[:-1])
    return Feasibility(plan.name, per_hour, tuple(stages), time_to_full, tuple(warnings))


def _hours(seconds: float) -> str:
    return format_quantity(seconds, "duration", digits=3) if math.isfinite(seconds) \
        else "forever"


def _count(value: float) -> str:
    return format_quantity(value, "count", digits=3)
