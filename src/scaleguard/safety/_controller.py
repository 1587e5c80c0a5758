"""The rollout controller: plan + state + observations -> advance / continue / hold / roll back.

:func:`decide` is pure: it reads no file and keeps no memory, so that the CLI, the HTTP service
and the simulator call the same function; persistence lives in :mod:`scaleguard.safety._store`.
It is fail-safe: missing or late data, an inconclusive stage past its maximum duration, or a
missing manual approval never advance the rollout.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from scaleguard.errors import ConfigError, InputError
from scaleguard.io import validate_config
from scaleguard.safety._gates import (
    Counts,
    GateStatistics,
    comparison_gate,
    guardrail_gate,
    guardrail_interval,
)
from scaleguard.safety._multiplicity import adjust_p_values
from scaleguard.safety._observations import Screened
from scaleguard.safety._plan import MetricSpec, RolloutPlan
from scaleguard.safety._spending import spending_boundaries

__all__ = ["Action", "Decision", "GateResult", "RolloutState", "check_state", "decide",
           "failure_meaning", "initial_state",
           "OVERALL"]

Action = Literal["advance", "continue", "hold", "roll_back"]
Status = Literal["running", "rolled_back", "complete"]
Verdict = Literal["pass", "fail", "continue"]
OVERALL = "overall"  # the segment name of a gate over all traffic


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout stands; JSON-ready, so that it survives a restart.

    ``min_p`` holds each gate's running-minimum always-valid p-value in the current stage, and
    ``fractions`` the information fractions of past looks (group-sequential plans).
    """

    plan: str
    stage_index: int
    traffic: float
    status: Status = "running"
    stage_started: float = 0.0
    step: float = 2.0
    min_p: dict[str, float] = field(default_factory=dict)
    fractions: tuple[float, ...] = ()
    stage_min_adjusted_p: float = 1.0
    decisions: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fractions"] = list(self.fractions)
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "state") -> RolloutState:
        """Read a stored state through a validated model: a bad field is named, never guessed."""
        model = validate_config(_StateModel, data, source)
        return cls(**{**model.model_dump(), "fractions": tuple(model.fractions),
                      "min_p": dict(model.min_p)})


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _StateModel(BaseModel):
    """The stored form of :class:`RolloutState`; ranges that a real rollout can reach."""

    model_config = ConfigDict(extra="forbid", strict=False)

    plan: str = Field(min_length=1)
    stage_index: int = Field(ge=0)
    traffic: float = Field(ge=0, le=1, allow_inf_nan=False)
    status: Status = "running"
    stage_started: float = Field(0.0, ge=0, allow_inf_nan=False)
    step: float = Field(2.0, gt=1, allow_inf_nan=False)
    min_p: dict[str, Probability] = Field(default_factory=dict)
    fractions: list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = Field(
        default_factory=list)
    stage_min_adjusted_p: Probability = 1.0
    decisions: int = Field(0, ge=0)


def initial_state(plan: RolloutPlan, now: float) -> RolloutState:
    """A rollout at its first stage, started at ``now`` (Unix seconds)."""
    return RolloutState(plan=plan.name, stage_index=0, traffic=plan.stages[0].traffic,
                        stage_started=now, step=plan.adaptive.initial_step)


@dataclass(frozen=True)
class GateResult:
    """One gate's evidence at this look (estimates in the harm direction: > 0 is worse)."""

    metric: str
    segment: str
    test: Literal["comparison", "guardrail"]
    verdict: Verdict
    critical: bool
    estimate: float
    lower: float
    upper: float
    limit: float
    p_value: float
    adjusted_p: float
    treatment_exposures: float
    comparator_exposures: float | None

    @property
    def key(self) -> str:
        return f"{self.metric}/{self.segment}/{self.test}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("estimate", "lower", "upper", "limit"):
            out[name] = _finite(out[name])
        return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Decision:
    """What to do now, why, and the evidence; ``state`` is the state after the decision."""

    action: Action
    stage: str
    traffic: float
    reasons: tuple[str, ...]
    gates: tuple[GateResult, ...]
    state: RolloutState
    time: float
    notes: tuple[str, ...] = ()  # about the data, e.g. duplicate windows ignored

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if g.verdict == "fail"]

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "stage": self.stage, "traffic": self.traffic,
                "reasons": list(self.reasons), "notes": list(self.notes), "time": self.time,
                "failing": [g.key for g in self.failing],
                "gates": [g.as_dict() for g in self.gates], "state": self.state.as_dict()}

    def __repr__(self) -> str:
        why = "; ".join(self.reasons)
        return f"Decision({self.action} at stage {self.stage!r}, traffic {self.traffic:g}: {why})"


def _select(rows: pd.DataFrame, stage: str, arm: str, metric: str,
            segment: tuple[str, str] | None) -> pd.DataFrame | None:
    mask = (rows["stage"] == stage) & (rows["arm"] == arm) & (rows["metric"] == metric)
    if segment is not None:
        dim, value = segment
        if dim not in rows.columns:
            return None
        mask &= rows[dim] == value
    picked = rows[mask]
    return picked if len(picked) else None


def _counts(rows: pd.DataFrame, metric: MetricSpec) -> Counts:
    if metric.kind == "mean":
        n = rows["n"].to_numpy()
        means = rows["mean"].to_numpy()
        var = rows["var"].to_numpy()
        total = float(n @ means)
        total_sq = float(((n - 1.0) * var + n * means * means).sum())
        return Counts(np.asarray(n.sum()), np.asarray(total), np.asarray(total_sq), False)
    return Counts.rate(rows["events"].sum(), rows["exposures"].sum())


def _scalar(stats: GateStatistics, name: str) -> float:
    return float(np.asarray(getattr(stats, name)))


# (metric, segment label, test, spec, statistics, treatment exposures, comparator exposures)
_Found = tuple[str, str, str, MetricSpec, GateStatistics, float, float | None]


def _evaluate(plan: RolloutPlan, state: RolloutState, rows: pd.DataFrame
              ) -> tuple[list[_Found], list[str], list[Counts]]:
    """Every gate's statistics at this stage, and the data found missing."""
    index = state.stage_index
    stage = plan.stages[index]
    previous = plan.stages[index - 1].name if index else None
    segments: list[tuple[str, str] | None] = [None, *plan.stage_segments(index)]
    found: list[_Found] = []
    missing: list[str] = []
    counts: list[Counts] = []  # the treatment's counts behind each gate
    for metric in plan.stage_metrics(index):
        for segment in segments:
            label = OVERALL if segment is None else f"{segment[0]}={segment[1]}"
            treated = _select(rows, stage.name, "treatment", metric.name, segment)
            if treated is None:
                missing.append(f"{metric.name} ({label}, treatment)")
                continue
            t_counts = _counts(treated, metric)
            if metric.guardrail is not None:
                found.append((metric.name, label, "guardrail", metric,
                              guardrail_gate(metric, t_counts, plan.alpha),
                              float(t_counts.n), None))
                counts.append(t_counts)
            if metric.margin is not None:
                if metric.compare_to == "control":
                    comparator = _select(rows, stage.name, "control", metric.name, segment)
                    what = "control"
                else:
                    assert previous is not None
                    comparator = _select(rows, previous, "treatment", metric.name, segment)
                    what = f"previous stage {previous!r}"
                if comparator is None:
                    missing.append(f"{metric.name} ({label}, {what})")
                    continue
                c_counts = _counts(comparator, metric)
                found.append((metric.name, label, "comparison", metric,
                              comparison_gate(metric, t_counts, c_counts, plan.alpha),
                              float(t_counts.n), float(c_counts.n)))
                counts.append(t_counts)
    return found, missing, counts


def decide(plan: RolloutPlan, state: RolloutState, observations: pd.DataFrame | Screened,
           now: float, approvals: frozenset[str] | set[str] = frozenset()) -> Decision:
    """Decide the next step of a rollout from all observations so far (cumulative).

    ``observations`` is a checked table (:func:`check_observations`), or better the windows
    :func:`screen_observations` found trustworthy at ``now``: then duplicates are reported and
    untrusted rows hold the rollout. ``now`` is Unix seconds; ``approvals`` names the stages a
    human has approved entering.
    """
    check_state(plan, state)
    if not math.isfinite(now) or now < 0:
        raise InputError(f"now: expected a finite decision time >= 0 (Unix seconds), got {now}")
    screened = observations if isinstance(observations, Screened) else None
    if isinstance(observations, Screened):
        observations = observations.rows
    stage = plan.stages[state.stage_index]
    base = replace(state, decisions=state.decisions + 1)
    if state.status != "running":
        what = "rolled back" if state.status == "rolled_back" else "complete"
        action: Action = "roll_back" if state.status == "rolled_back" else "hold"
        return Decision(action, stage.name, state.traffic if state.status == "complete" else 0.0,
                        (f"the rollout is already {what}; start a new one to continue",), (),
                        base, now)
    rows = observations[observations["stage"].isin(
        [stage.name] + ([plan.stages[state.stage_index - 1].name] if state.stage_index else []))]
    found, missing, counts = _evaluate(plan, state, rows)
    reasons: list[str] = []

    # Running minimum of each gate's always-valid p-value, then Holm/Bonferroni across gates.
    keys = [f"{m}/{seg}/{test}" for m, seg, test, *_ in found]
    running = np.array([min(state.min_p.get(k, 1.0), _scalar(s, "p_value"))
                        for k, (_, _, _, _, s, _, _) in zip(keys, found, strict=True)])
    method = plan.error_control
    fractions = state.fractions
    if method.method == "msprt":
        adjusted = adjust_p_values(running, method.correction) if len(found) else running
        failed = adjusted <= plan.alpha
    else:
        # Alpha spending on the stage's information fraction; Bonferroni across the gates.
        exposures = max((t_n for *_, t_n, _ in found), default=0.0)
        fraction = min(1.0, exposures / float(stage.max_exposures or 1.0))
        if fraction > (fractions[-1] if fractions else 0.0):
            fractions = (*fractions, fraction)
        per_gate = plan.alpha / max(1, len(found)) if method.correction != "none" else plan.alpha
        if fractions:
            bound = float(spending_boundaries(fractions, per_gate, method.spending)[-1])
        else:
            bound = math.inf
        z = np.array([_scalar(s, "z") for *_, s, _, _ in found])
        failed = z > bound
        adjusted = np.minimum(1.0, running * max(1, len(found)))
    gates = []
    for i, (name, seg, test, metric, stats, t_n, c_n) in enumerate(found):
        verdict: Verdict = "fail" if failed[i] else ("pass" if bool(stats.passed) else "continue")
        lower, upper = _scalar(stats, "lower"), _scalar(stats, "upper")
        if test == "guardrail" and metric.kind != "mean":
            lower, upper = guardrail_interval(metric, counts[i], plan.alpha)
        gates.append(GateResult(name, seg, test, verdict, metric.critical,  # type: ignore[arg-type]
                                _scalar(stats, "estimate"), lower, upper,
                                _scalar(stats, "limit"),
                                float(running[i]), float(adjusted[i]), t_n, c_n))
    min_adjusted = min([state.stage_min_adjusted_p, *map(float, adjusted)])
    new_state = replace(base, min_p=dict(zip(keys, map(float, running), strict=True)),
                        fractions=fractions, stage_min_adjusted_p=min_adjusted)

    def done(action: Action, state_after: RolloutState, traffic: float) -> Decision:
        return Decision(action, plan.stages[state_after.stage_index].name, traffic,
                        tuple(reasons), tuple(gates), state_after, now,
                        tuple(screened.notes()) if screened is not None else ())

    if screened is not None and screened.problems:
        # Named first whatever follows: a rollback on the trusted rows still says what was
        # set aside.
        reasons.append(f"untrusted data, {len(screened.problems)} row problem"
                       f"{'s' if len(screened.problems) > 1 else ''}: "
                       + "; ".join(screened.problems[:3])
                       + "; untrusted data never advance")
    critical = [g for g in gates if g.verdict == "fail" and g.critical]
    if critical:
        reasons += [f"{g.metric} fails in {g.segment}: {failure_meaning(plan.metric(g.metric), g)}"
                    f" (adjusted p {g.adjusted_p:.3g} <= alpha {plan.alpha:g})"
                    for g in critical]
        return done("roll_back", replace(new_state, status="rolled_back", traffic=0.0), 0.0)
    noncritical = [g for g in gates if g.verdict == "fail"]
    if noncritical:
        reasons += [f"non-critical {g.metric} fails in {g.segment}: "
                    f"{failure_meaning(plan.metric(g.metric), g)} (adjusted p "
                    f"{g.adjusted_p:.3g}); a person must decide" for g in noncritical]
        return done("hold", new_state, state.traffic)
    if screened is not None and screened.problems:
        return done("hold", new_state, state.traffic)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                          else "")
        reasons.append(f"missing data: {shown}; missing data never advance")
        return done("hold", new_state, state.traffic)
    if "time" in rows.columns:
        latest = float(rows.loc[rows["stage"] == stage.name, "time"].max())
        if now - latest > plan.data.max_age:
            reasons.append(f"late data: newest observation is {now - latest:.0f} s old, over "
                           f"max_age {plan.data.max_age:.0f} s; late data never advance")
            return done("hold", new_state, state.traffic)
    elapsed = now - state.stage_started
    exposures = min((g.treatment_exposures for g in gates if g.segment == OVERALL),
                    default=0.0)
    waiting = [g for g in gates if g.verdict != "pass"]
    if waiting:
        reasons.append(f"{len(waiting)} of {len(gates)} gates not yet conclusive "
                       f"(e.g. {waiting[0].key})")
    if exposures < stage.min_exposures:
        reasons.append(f"{exposures:.0f} of {stage.min_exposures:.0f} minimum exposures")
    if elapsed < stage.min_duration:
        reasons.append(f"{elapsed:.0f} of {stage.min_duration:.0f} s minimum duration")
    if reasons:
        if stage.max_duration is not None and elapsed > stage.max_duration:
            reasons.append(f"past max_duration {stage.max_duration:.0f} s without passing; "
                           "inconclusive stages never advance")
            return done("hold", new_state, state.traffic)
        return done("continue", new_state, state.traffic)
    return _advance(plan, new_state, now, approvals, reasons, done)


def check_state(plan: RolloutPlan, state: RolloutState, source: str = "state") -> None:
    """Refuse a state that does not belong to ``plan`` (a stage index out of its range)."""
    if state.plan != plan.name:
        raise ConfigError(f"{source}: holds rollout {state.plan!r}, not plan {plan.name!r}")
    if not 0 <= state.stage_index < len(plan.stages):
        raise ConfigError(f"{source}: stage_index: expected 0 to {len(plan.stages) - 1} (plan "
                          f"{plan.name!r} has {len(plan.stages)} stages), got {state.stage_index}")


def failure_meaning(metric: MetricSpec, gate: GateResult) -> str:
    """What a failing gate has shown, in the words of the plan (harm direction)."""
    if gate.test == "guardrail":
        return (f"its value is shown above the guardrail {metric.guardrail:g} "
                f"(estimate {gate.estimate:+.3g} past it)")
    against = "control" if metric.compare_to == "control" else "the previous stage"
    if metric.strict:
        return (f"strict comparison: shown worse than {against} at all (treatment - "
                f"{against} {gate.estimate:+.3g} in the harm direction)")
    return (f"shown worse than {against} by more than the margin {metric.margin:g} "
            f"(treatment - {against} {gate.estimate:+.3g} in the harm direction)")


PASS_MEANING = ("a comparison passes when the upper confidence bound of treatment - comparator "
                "(harm direction) is below its margin, a guardrail when the upper bound of the "
                "treatment's value is below the guardrail")


def _advance(plan: RolloutPlan, state: RolloutState, now: float, approvals: frozenset[str] |
             set[str], reasons: list[str], done: Any) -> Decision:
    """Every gate passed at this stage: widen, ramp (adaptive) or finish."""
    index = state.stage_index
    adaptive = plan.adaptive
    stage = plan.stages[index]
    if adaptive.enabled and state.traffic < stage.traffic:
        traffic = min(stage.traffic, state.traffic * state.step)
        reasons.append(f"all gates pass; ramping {stage.name!r} from {state.traffic:g} to "
                       f"{traffic:g} (step x{state.step:g})")
        return done("advance", replace(state, traffic=traffic), traffic)
    step = state.step
    if adaptive.enabled:
        close = state.stage_min_adjusted_p < adaptive.close_call
        step = (max(adaptive.min_step, step * adaptive.shrink) if close
                else min(adaptive.max_step, step * adaptive.grow))
        reasons.append(f"stage was {'a close call' if close else 'clean'} (smallest adjusted "
                       f"p {state.stage_min_adjusted_p:.3g}); traffic step now x{step:g}")
    if index + 1 == len(plan.stages):
        reasons.append(f"all gates pass at the last stage {stage.name!r} ({PASS_MEANING}); "
                       "rollout complete")
        return done("advance", replace(state, status="complete", step=step), stage.traffic)
    nxt = plan.stages[index + 1]
    if nxt.manual_approval and nxt.name not in approvals:
        reasons.append(f"all gates pass; entering stage {nxt.name!r} awaits manual approval")
        return done("hold", state, state.traffic)
    traffic = min(nxt.traffic, state.traffic * step) if adaptive.enabled else nxt.traffic
    reasons.append(f"all gates pass at {stage.name!r} ({PASS_MEANING}); advancing to "
                   f"{nxt.name!r} at traffic {traffic:g}")
    after = replace(state, stage_index=index + 1, traffic=traffic, stage_started=now, step=step,
                    min_p={}, fractions=(), stage_min_adjusted_p=1.0)
    return done("advance", after, traffic)
