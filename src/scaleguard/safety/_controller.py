"""The rollout controller: plan + state + observations -> advance / continue / hold / roll back.

:func:`decide` is pure: it reads no file and keeps no memory, so that the CLI and the HTTP
service call the same function; its rules live in :mod:`scaleguard.safety._rules`, which the
simulator runs over thousands of rollouts at once, so that the figures it publishes are what
``decide`` does. Persistence lives in :mod:`scaleguard.safety._store`. It is fail-safe: missing,
late or untrusted data, a sample-ratio mismatch, an inconclusive stage past its maximum duration,
or a missing manual approval never advance the rollout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from scaleguard.safety._observations import Screened
from scaleguard.safety._oversight import ReviewEvidence, review_load
from scaleguard.safety._plan import MetricSpec, RolloutPlan
from scaleguard.safety._rules import (
    ACTIONS,
    AWAITING,
    COMPLETE,
    CONTINUE,
    HOLD,
    INCONCLUSIVE,
    LATE,
    MISSING,
    NON_CRITICAL,
    OVER_CAPACITY,
    RAMP,
    ROLL_BACK,
    SRM,
    UNTRUSTED,
    Judgement,
    Test,
    Widening,
    judge,
    plan_tests,
    stage_active,
    widen,
)
from scaleguard.safety._srm import SRMResult, srm_check
from scaleguard.safety._totals import CellTotals, window_sums

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

    ``min_p`` holds each gate's running-minimum always-valid p-value in the current stage,
    ``fractions`` the information fractions of past looks (group-sequential plans), and
    ``approved`` the stages a person has approved entering (who and when is in the audit log);
    every decision honours them. ``decisions`` counts the audit log's entries: the controller's
    decisions and people's approvals.
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
    approved: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fractions"] = list(self.fractions)
        out["approved"] = list(self.approved)
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "state") -> RolloutState:
        """Read a stored state through a validated model: a bad field is named, never guessed."""
        model = validate_config(_StateModel, data, source)
        return cls(**{**model.model_dump(), "fractions": tuple(model.fractions),
                      "min_p": dict(model.min_p), "approved": tuple(model.approved)})


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
    # One name per stage a person approved: a plan has a handful of stages; bounded so that a
    # corrupt stored state is refused rather than read without end.
    approved: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1_000)


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
    srm: SRMResult | None = None  # the sample-ratio check's evidence
    # Projected human-review load of the next traffic share (plans with oversight).
    oversight: dict[str, Any] | None = None

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if g.verdict == "fail"]

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "stage": self.stage, "traffic": self.traffic,
                "reasons": list(self.reasons), "notes": list(self.notes),
                "srm": self.srm.as_dict() if self.srm is not None else None,
                "oversight": self.oversight, "time": self.time,
                "failing": [g.key for g in self.failing],
                "gates": [g.as_dict() for g in self.gates], "state": self.state.as_dict()}

    def __repr__(self) -> str:
        why = "; ".join(self.reasons)
        return f"Decision({self.action} at stage {self.stage!r}, traffic {self.traffic:g}: {why})"


class _Rows:
    """The observations as numpy arrays read once: windows, or cells of summed windows.

    Every reader sums what it selects, so windows (each a cell of one window,
    :func:`window_sums`) and a store's :class:`CellTotals` give the same decision.
    """

    def __init__(self, rows: pd.DataFrame | Mapping[str, np.ndarray] | CellTotals,
                 plan: RolloutPlan) -> None:
        table = rows.frame if isinstance(rows, CellTotals) else rows
        present = set(table.columns) if isinstance(table, pd.DataFrame) else set(table)
        self.columns: dict[str, np.ndarray] = {c: np.asarray(table[c]) for c in
                                               ("stage", "arm", "metric") if c in present}
        self.size = len(self.columns["stage"]) if "stage" in self.columns else 0
        self.segments = {d: np.asarray(table[d]) for d in plan.segments if d in present}
        self.values: dict[str, np.ndarray] = {
            c: np.asarray(table[c], dtype=float) for c in
            ("exposures", "events", "n", "n_mean", "n_m2", "windows", "units", "unit_windows",
             "time") if c in present} \
            if isinstance(rows, CellTotals) else window_sums(table) if self.size else {}
        # Everything by column name, for the readers that take arrays (SRM, late data).
        self.arrays: dict[str, np.ndarray] = {**self.columns, **self.segments, **self.values}

    def select(self, stage: str, arm: str, metric: str,
               segment: tuple[str, str] | None) -> np.ndarray | None:
        if not self.size:
            return None
        mask = (self.columns["stage"] == stage) & (self.columns["arm"] == arm) & \
            (self.columns["metric"] == metric)
        if segment is not None:
            values = self.segments.get(segment[0])
            if values is None:
                return None
            mask &= values == segment[1]
        return mask if mask.any() else None

    def counts(self, mask: np.ndarray, metric: MetricSpec) -> Counts:
        if metric.kind == "mean":
            return Counts(np.asarray(self.values["n"][mask].sum()),
                          np.asarray(float(self.values["n_mean"][mask].sum())),
                          np.asarray(float(self.values["n_m2"][mask].sum())), False)
        return Counts.rate(self.values["events"][mask].sum(),
                           self.values["exposures"][mask].sum())


@dataclass(frozen=True)
class _Look:
    """One look's gate statistics over the plan's tests (one run), and what is missing."""

    p: np.ndarray
    z: np.ndarray
    passed: np.ndarray
    active: np.ndarray
    treated_n: np.ndarray
    comparator_n: list[float | None]
    stats: list[GateStatistics | None]
    treated: list[Counts | None]
    missing: list[str]


def _evaluate(plan: RolloutPlan, index: int, cells: _Rows) -> _Look:
    """Every gate's statistics at stage ``index`` (cumulative over the stage's rows)."""
    stage = plan.stages[index]
    previous = plan.stages[index - 1].name if index else None
    tests = plan_tests(plan)
    checked = stage_active(plan)[index]
    size = len(tests)
    p, z = np.ones(size), np.zeros(size)
    passed, active = np.zeros(size, dtype=bool), np.zeros(size, dtype=bool)
    treated_n = np.zeros(size)
    comparator_n: list[float | None] = [None] * size
    stats: list[GateStatistics | None] = [None] * size
    treated: list[Counts | None] = [None] * size
    missing: list[str] = []
    for t, test in enumerate(tests):
        if not checked[t]:
            continue
        metric = plan.metrics[test.metric]
        mask = cells.select(stage.name, "treatment", metric.name, test.segment)
        if mask is None:
            note = f"{metric.name} ({test.label}, treatment)"
            if note not in missing:
                missing.append(note)
            continue
        t_counts = cells.counts(mask, metric)
        if test.kind == "guardrail":
            gate = guardrail_gate(metric, t_counts, plan.alpha)
        else:
            if metric.compare_to == "control":
                other = cells.select(stage.name, "control", metric.name, test.segment)
                what = "control"
            else:
                assert previous is not None
                other = cells.select(previous, "treatment", metric.name, test.segment)
                what = f"previous stage {previous!r}"
            if other is None:
                missing.append(f"{metric.name} ({test.label}, {what})")
                continue
            c_counts = cells.counts(other, metric)
            gate = comparison_gate(metric, t_counts, c_counts, plan.alpha)
            comparator_n[t] = float(c_counts.n)
        p[t], z[t] = _scalar(gate, "p_value"), _scalar(gate, "z")
        passed[t], active[t] = bool(gate.passed), True
        treated_n[t] = float(t_counts.n)
        stats[t], treated[t] = gate, t_counts
    return _Look(p, z, passed, active, treated_n, comparator_n, stats, treated, missing)


def _scalar(stats: GateStatistics, name: str) -> float:
    return float(np.asarray(getattr(stats, name)))


def _late(plan: RolloutPlan, cells: _Rows, stage: str, now: float) -> str | None:
    if "time" not in cells.values:
        return None
    times = cells.values["time"][cells.columns["stage"] == stage]
    if not times.size:
        return None
    age = now - float(times.max())
    if age > plan.data.max_age:
        return (f"late data: newest observation is {age:.0f} s old, over max_age "
                f"{plan.data.max_age:.0f} s; late data never advance")
    return None


def decide(plan: RolloutPlan, state: RolloutState,
           observations: pd.DataFrame | Screened | Mapping[str, np.ndarray] | CellTotals,
           now: float,
           approvals: frozenset[str] | set[str] = frozenset()) -> Decision:
    """Decide the next step of a rollout from all observations so far (cumulative).

    ``observations`` is a checked table (:func:`check_observations`; or its columns as arrays,
    for callers that keep them so), or better the windows :func:`screen_observations` found
    trustworthy at ``now``: then duplicates are reported and untrusted rows hold the rollout;
    or the windows' :class:`CellTotals` (what a rollout store keeps): the same decision.
    ``now`` is Unix seconds; ``approvals`` names the stages a human has approved entering.
    The rules are :mod:`scaleguard.safety._rules`, the ones the
    simulator runs over thousands of rollouts at once.
    """
    check_state(plan, state)
    if not math.isfinite(now) or now < 0:
        raise InputError(f"now: expected a finite decision time >= 0 (Unix seconds), got {now}")
    screened = observations if isinstance(observations, Screened) else None
    if isinstance(observations, Screened):
        observations = observations.rows
    index = state.stage_index
    stage = plan.stages[index]
    base = replace(state, decisions=state.decisions + 1)
    notes = tuple(screened.notes()) if screened is not None else ()
    if state.status != "running":
        what = "rolled back" if state.status == "rolled_back" else "complete"
        action: Action = "roll_back" if state.status == "rolled_back" else "hold"
        return Decision(action, stage.name, state.traffic if state.status == "complete" else 0.0,
                        (f"the rollout is already {what}; start a new one to continue",), (),
                        base, now, notes)
    # Every reader below selects the stage (and the previous stage) itself.
    cells = _Rows(observations, plan)
    look = _evaluate(plan, index, cells)
    tests = plan_tests(plan)
    keys = [_key(plan, t) for t in tests]
    late = _late(plan, cells, stage.name, now)
    blocked = UNTRUSTED if screened is not None and screened.problems else \
        MISSING if look.missing else LATE if late else 0
    srm = srm_check(plan, index, cells.arrays)
    one = np.zeros(1, dtype=int) + index
    judged = judge(plan, one, look.p[None], look.z[None], look.passed[None], look.active[None],
                   look.treated_n[None], np.array([now - state.stage_started]),
                   np.array([[state.min_p.get(k, 1.0) for k in keys]]), [state.fractions],
                   np.array([state.stage_min_adjusted_p]), np.array([blocked]),
                   np.array([srm is not None and srm.mismatch]))
    gates = []
    for t in np.flatnonzero(look.active):
        test, stats = tests[t], look.stats[t]
        assert stats is not None
        metric = plan.metrics[test.metric]
        verdict: Verdict = "fail" if judged.fail[0, t] else \
            ("pass" if judged.passed[0, t] else "continue")
        lower, upper = _scalar(stats, "lower"), _scalar(stats, "upper")
        counts = look.treated[t]
        if test.kind == "guardrail" and metric.kind != "mean" and counts is not None:
            lower, upper = guardrail_interval(metric, counts, plan.alpha)
        gates.append(GateResult(metric.name, test.label, test.kind, verdict, metric.critical,
                                _scalar(stats, "estimate"), lower, upper,
                                _scalar(stats, "limit"), float(judged.running[0, t]),
                                float(judged.adjusted[0, t]), float(look.treated_n[t]),
                                look.comparator_n[t]))
    active = np.flatnonzero(look.active)
    new_state = replace(base, min_p={keys[t]: float(judged.running[0, t]) for t in active},
                        fractions=judged.fractions[0],
                        stage_min_adjusted_p=float(judged.stage_min_adjusted[0]))
    reasons = _reasons(plan, state, judged, gates, look, screened, late, srm, now)
    code = int(judged.action[0])
    review = review_evidence(plan, cells, stage.name, float(judged.exposures[0]),
                             now - state.stage_started, state.traffic)
    projected = _projected_review(plan, state, review)

    def done(action: Action, after: RolloutState, traffic: float) -> Decision:
        return Decision(action, plan.stages[after.stage_index].name, traffic, tuple(reasons),
                        tuple(gates), after, now, notes, srm, projected)

    if code == ROLL_BACK:
        return done("roll_back", replace(new_state, status="rolled_back", traffic=0.0), 0.0)
    if code in (HOLD, CONTINUE):
        return done(ACTIONS[code], new_state, state.traffic)  # type: ignore[arg-type]
    approved = index + 1 >= len(plan.stages) or not plan.stages[index + 1].manual_approval or \
        plan.stages[index + 1].name in approvals or plan.stages[index + 1].name in state.approved
    moved = widen(plan, np.array([True]), one, np.array([state.traffic]),
                  np.array([state.step]), judged.stage_min_adjusted, np.array([approved]),
                  review)
    if moved.review is not None and int(moved.kind[0]) != COMPLETE:
        projected = moved.review.at(0)  # the share the rollout would have widened to
    return _widened(plan, new_state, moved, reasons, done, now)


def review_evidence(plan: RolloutPlan, cells: _Rows | pd.DataFrame, stage: str,
                    exposures: float, elapsed: float, traffic: float) -> ReviewEvidence | None:
    """One look's review evidence: the flag metric's treatment counts in ``stage`` (overall),
    the stage's treatment exposures, seconds in it and its traffic share."""
    spec = plan.oversight
    if spec is None:
        return None
    rows = cells if isinstance(cells, _Rows) else _Rows(cells, plan)
    flagged = flag_exposures = 0.0
    if spec.metric is not None:
        mask = rows.select(stage, "treatment", spec.metric, None)
        if mask is not None:
            counts = rows.counts(mask, plan.metric(spec.metric))
            flagged, flag_exposures = float(counts.total), float(counts.n)
    return ReviewEvidence(*(np.array([v], dtype=float) for v in
                            (flagged, flag_exposures, exposures, elapsed, traffic)))


def _projected_review(plan: RolloutPlan, state: RolloutState,
                      review: ReviewEvidence | None) -> dict[str, Any] | None:
    """The review load at the next stage's traffic, whatever this look decides (evidence)."""
    if plan.oversight is None or review is None:
        return None
    nxt = plan.stages[min(state.stage_index + 1, len(plan.stages) - 1)].traffic
    return review_load(plan.oversight, review, np.array([nxt])).at(0)


def _key(plan: RolloutPlan, test: Test) -> str:
    return f"{plan.metrics[test.metric].name}/{test.label}/{test.kind}"


def _reasons(plan: RolloutPlan, state: RolloutState, judged: Judgement, gates: list[GateResult],
             look: _Look, screened: Screened | None, late: str | None, srm: Any,
             now: float) -> list[str]:
    """The decision's reasons, in the order the rules were checked."""
    reasons: list[str] = []
    code, why = int(judged.action[0]), int(judged.hold_reason[0])
    if screened is not None and screened.problems:
        # Named first whatever follows: a rollback on the trusted rows still says what was
        # set aside.
        reasons.append(f"untrusted data, {len(screened.problems)} row problem"
                       f"{'s' if len(screened.problems) > 1 else ''}: "
                       + "; ".join(screened.problems[:3]) + "; untrusted data never advance")
    failing = [g for g in gates if g.verdict == "fail"]
    if code == ROLL_BACK:
        return reasons + [f"{g.metric} fails in {g.segment}: "
                          f"{failure_meaning(plan.metric(g.metric), g)} (adjusted p "
                          f"{g.adjusted_p:.3g} <= alpha {plan.alpha:g})"
                          for g in failing if g.critical]
    if why == NON_CRITICAL:
        return reasons + [f"non-critical {g.metric} fails in {g.segment}: "
                          f"{failure_meaning(plan.metric(g.metric), g)} (adjusted p "
                          f"{g.adjusted_p:.3g}); a person must decide" for g in failing]
    if why == UNTRUSTED:
        return reasons
    if why == MISSING:
        shown = ", ".join(look.missing[:3]) + (f" and {len(look.missing) - 3} more"
                                               if len(look.missing) > 3 else "")
        return [f"missing data: {shown}; missing data never advance"]
    if why == LATE:
        assert late is not None
        return [late]
    if why == SRM:
        return [srm.reason()]
    stage = plan.stages[state.stage_index]
    elapsed = now - state.stage_started
    waiting = [g for g in gates if g.verdict != "pass"]
    if waiting:
        reasons.append(f"{len(waiting)} of {len(gates)} gates not yet conclusive "
                       f"(e.g. {waiting[0].key})")
    if judged.short_exposures[0]:
        reasons.append(f"{judged.exposures[0]:.0f} of {stage.min_exposures:.0f} minimum "
                       "exposures")
    if judged.short_duration[0]:
        reasons.append(f"{elapsed:.0f} of {stage.min_duration:.0f} s minimum duration")
    if why == INCONCLUSIVE:
        reasons.append(f"past max_duration {stage.max_duration:.0f} s without passing; "
                       "inconclusive stages never advance")
    return reasons


def _widened(plan: RolloutPlan, state: RolloutState, moved: Widening, reasons: list[str],
             done: Any, now: float) -> Decision:
    """Every gate passed at this stage: say how the rollout widened (ramp, stage, complete)."""
    kind = int(moved.kind[0])
    stage = plan.stages[state.stage_index]
    traffic, step = float(moved.traffic[0]), float(moved.step[0])
    if kind == OVER_CAPACITY:
        assert moved.review is not None
        ramping = plan.adaptive.enabled and state.traffic < stage.traffic
        target = stage.name if ramping else plan.stages[state.stage_index + 1].name
        reasons.append(f"oversight capacity: all gates pass, but widening to stage "
                       f"{target!r}: {moved.review.describe(0)}; a rollout never outgrows "
                       "its reviewers")
        return done("hold", state, state.traffic)
    if kind == RAMP:
        reasons.append(f"all gates pass; ramping {stage.name!r} from {state.traffic:g} to "
                       f"{traffic:g} (step x{state.step:g})")
        return done("advance", replace(state, traffic=traffic), traffic)
    if plan.adaptive.enabled and kind != AWAITING:
        close = bool(moved.close_call[0])
        reasons.append(f"stage was {'a close call' if close else 'clean'} (smallest adjusted "
                       f"p {state.stage_min_adjusted_p:.3g}); traffic step now x{step:g}")
    if kind == COMPLETE:
        reasons.append(f"all gates pass at the last stage {stage.name!r} ({PASS_MEANING}); "
                       "rollout complete")
        return done("advance", replace(state, status="complete", step=step), stage.traffic)
    nxt = plan.stages[state.stage_index + 1]
    if kind == AWAITING:
        reasons.append(awaiting_approval_reason(nxt.name))
        return done("hold", state, state.traffic)
    reasons.append(f"all gates pass at {stage.name!r} ({PASS_MEANING}); advancing to "
                   f"{nxt.name!r} at traffic {traffic:g}")
    after = replace(state, stage_index=state.stage_index + 1, traffic=traffic,
                    stage_started=now, step=step,
                    min_p={}, fractions=(), stage_min_adjusted_p=1.0)
    return done("advance", after, traffic)


def awaiting_approval_reason(stage: str) -> str:
    """The reason a decision gives when every gate passed and entering ``stage`` waits for a
    person's approval (what the service's approval endpoint looks for)."""
    return f"all gates pass; entering stage {stage!r} awaits manual approval"


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


