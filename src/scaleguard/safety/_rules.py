"""The controller's rules, vectorised over runs: one look's gate statistics -> an action.

:func:`scaleguard.safety.decide` calls these with one run (a real rollout); the simulator calls
them with thousands of runs at once. Both therefore apply the same error control (running
minimum of always-valid p-values, Holm across gates in both modes), the same order of checks
and the same widening rules; there is no second copy of the decision to drift apart.

Arrays are ``(runs,)`` or ``(runs, tests)``; tests are :func:`plan_tests` in its fixed order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from scaleguard.safety._multiplicity import adjust_p_values
from scaleguard.safety._oversight import ReviewEvidence, ReviewLoad, review_load
from scaleguard.safety._plan import RolloutPlan
from scaleguard.safety._spending import SpendingName, spending_boundaries

__all__ = ["ACTIONS", "HOLD_REASONS", "OVERSIGHT", "OVER_CAPACITY", "Judgement", "Test",
           "Widening", "judge", "plan_tests", "stage_active", "widen"]

Kind = Literal["guardrail", "comparison"]
# Action codes (index into ACTIONS).
ACTIONS = ("continue", "advance", "hold", "roll_back")
CONTINUE, ADVANCE, HOLD, ROLL_BACK = range(4)
# Why a run holds (index into HOLD_REASONS; 0: it does not).
HOLD_REASONS = ("", "non-critical gate failed", "untrusted data", "missing data", "late data",
                "sample ratio mismatch", "inconclusive at max_duration", "awaiting approval",
                "oversight capacity")
NON_CRITICAL, UNTRUSTED, MISSING, LATE, SRM, INCONCLUSIVE, APPROVAL, OVERSIGHT = range(1, 9)


@dataclass(frozen=True)
class Test:
    """One gate: a metric (index into ``plan.metrics``), a segment (None: overall), a test."""

    metric: int
    segment: tuple[str, str] | None
    kind: Kind

    @property
    def label(self) -> str:
        return "overall" if self.segment is None else f"{self.segment[0]}={self.segment[1]}"


def plan_tests(plan: RolloutPlan) -> tuple[Test, ...]:
    """Every gate of the plan, in the one order the controller and the simulator share."""
    segments: list[tuple[str, str] | None] = [None]
    segments += [(d, v) for d, values in plan.segments.items() for v in values]
    return tuple(Test(j, seg, kind) for j, metric in enumerate(plan.metrics) for seg in segments
                 for kind in ("guardrail", "comparison")
                 if (metric.guardrail if kind == "guardrail" else metric.margin) is not None)


def stage_active(plan: RolloutPlan) -> np.ndarray:
    """``(stages, tests)``: which gates a stage checks (its metrics, its admitted segments)."""
    tests = plan_tests(plan)
    out = np.zeros((len(plan.stages), len(tests)), dtype=bool)
    for s in range(len(plan.stages)):
        metrics = {m.name for m in plan.stage_metrics(s)}
        segments = set(plan.stage_segments(s))
        for t, test in enumerate(tests):
            metric = plan.metrics[test.metric]
            out[s, t] = metric.name in metrics and (test.segment is None or
                                                    test.segment in segments) and \
                not (test.kind == "comparison" and metric.compare_to == "previous_stage"
                     and s == 0)
    return out


@functools.lru_cache(maxsize=512)
def _boundary(fractions: tuple[float, ...], alpha: float, spending: SpendingName) -> float:
    """Last look's z-boundary of a fraction history (each costs ~0.1 s; reused across runs)."""
    return float(spending_boundaries(fractions, alpha, spending)[-1])


@dataclass(frozen=True)
class Judgement:
    """One look judged, per run: the gates' verdicts and the action before widening."""

    running: np.ndarray  # (runs, tests) running minimum p-value (1 where inactive)
    adjusted: np.ndarray  # (runs, tests) Holm/Bonferroni-adjusted running p-values
    fail: np.ndarray  # (runs, tests)
    passed: np.ndarray  # (runs, tests)
    action: np.ndarray  # (runs,) ACTIONS code; ADVANCE means "ready to widen"
    hold_reason: np.ndarray  # (runs,) HOLD_REASONS code
    fractions: list[tuple[float, ...]]  # per run, information fractions of the stage's looks
    stage_min_adjusted: np.ndarray  # (runs,)
    exposures: np.ndarray  # (runs,) treatment exposures behind the stage's overall gates
    short_exposures: np.ndarray  # (runs,) bool: below the stage's min_exposures
    short_duration: np.ndarray  # (runs,) bool: below the stage's min_duration


def _group_sequential(plan: RolloutPlan, stage: np.ndarray, z: np.ndarray, active: np.ndarray,
                      treated_n: np.ndarray, fractions: list[tuple[float, ...]]
                      ) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """Holm step-down over alpha-spending boundaries (Maurer & Bretz 2013, sec. 3).

    The information fraction of a look is the stage's treatment exposures over its planned
    maximum; a gate ranked ``r`` (by z, descending) among ``m`` active gates is tested at
    ``alpha / (m - r)`` once every gate ranked above it has been rejected.
    """
    runs, tests = z.shape
    control = plan.error_control
    max_exposures = np.array([s.max_exposures or 1.0 for s in plan.stages])[stage]
    info = np.where(active, treated_n, 0.0).max(axis=1, initial=0.0) / max_exposures
    info = np.minimum(1.0, info)
    history = [f + (float(i),) if i > (f[-1] if f else 0.0) else f
               for f, i in zip(fractions, info, strict=True)]
    m = active.sum(axis=1)
    order = np.argsort(np.where(active, -z, np.inf), axis=1, kind="stable")
    ranked_z = np.take_along_axis(z, order, axis=1)
    fail_ranked = np.zeros((runs, tests), dtype=bool)
    alive = np.array([bool(h) for h in history]) & (m > 0)  # still rejecting, step by step
    for r in range(tests):
        alive &= r < m
        if not alive.any():
            break
        bounds = np.full(runs, np.inf)
        for i in np.flatnonzero(alive):
            level = plan.alpha / (m[i] - r) if control.correction != "none" else plan.alpha
            if control.correction == "bonferroni":
                level = plan.alpha / m[i]
            bounds[i] = _boundary(history[i], level, control.spending)
        rejected = alive & (ranked_z[:, r] > bounds)
        fail_ranked[:, r] = rejected
        alive = rejected
    fail = np.zeros_like(fail_ranked)
    np.put_along_axis(fail, order, fail_ranked, axis=1)
    return fail & active, history


def judge(plan: RolloutPlan, stage: np.ndarray, p: np.ndarray, z: np.ndarray,
          passed: np.ndarray, active: np.ndarray, treated_n: np.ndarray, elapsed: np.ndarray,
          min_p: np.ndarray, fractions: list[tuple[float, ...]],
          stage_min_adjusted: np.ndarray, blocked: np.ndarray | None = None,
          srm: np.ndarray | None = None) -> Judgement:
    """Judge one look of every run.

    ``p``, ``z``, ``passed``: this look's gate statistics; ``active``: gates checked (and with
    data) at the run's stage; ``treated_n``: treatment exposures behind each gate; ``elapsed``:
    seconds in the stage; ``min_p``/``fractions``/``stage_min_adjusted``: the stage's memory.
    ``blocked``: a HOLD_REASONS code per run for data that cannot be used (untrusted, missing,
    late; 0 when fine); ``srm``: a sample-ratio mismatch was shown.
    """
    runs, _ = p.shape
    tests = plan_tests(plan)
    running = np.where(active, np.minimum(min_p, p), min_p)
    control = plan.error_control
    masked = np.where(active, running, 1.0)
    adjusted = np.where(active, _adjust(masked, active, control.correction), 1.0)
    if control.method == "msprt":
        fail = active & (adjusted <= plan.alpha)
        history = fractions
    else:
        fail, history = _group_sequential(plan, stage, z, active, treated_n, fractions)
    critical = np.array([plan.metrics[t.metric].critical for t in tests], dtype=bool)
    overall = np.array([t.segment is None for t in tests], dtype=bool)
    stage_min = np.minimum(stage_min_adjusted, adjusted.min(axis=1, initial=1.0))
    exposures = np.where(active & overall, treated_n, np.inf).min(axis=1, initial=np.inf)
    exposures = np.where(np.isfinite(exposures), exposures, 0.0)
    specs = plan.stages
    min_exposures = np.array([s.min_exposures for s in specs])[stage]
    min_duration = np.array([s.min_duration for s in specs])[stage]
    max_duration = np.array([np.inf if s.max_duration is None else s.max_duration
                             for s in specs])[stage]
    short_exposures = exposures < min_exposures
    short_duration = elapsed < min_duration
    waiting = np.any(active & ~passed, axis=1) | short_exposures | short_duration
    blocked = np.zeros(runs, dtype=int) if blocked is None else blocked
    srm = np.zeros(runs, dtype=bool) if srm is None else srm
    action = np.full(runs, ADVANCE)
    reason = np.zeros(runs, dtype=int)
    # Checked in this order, the first that applies decides (later rules only fill the rest).
    rules = [
        (np.any(fail & critical, axis=1), ROLL_BACK, 0),
        (np.any(fail, axis=1), HOLD, NON_CRITICAL),
        (blocked > 0, HOLD, blocked),
        (srm, HOLD, SRM),
        (waiting & (elapsed >= max_duration), HOLD, INCONCLUSIVE),
        (waiting, CONTINUE, 0),
    ]
    decided = np.zeros(runs, dtype=bool)
    for when, code, why in rules:
        now = when & ~decided
        action = np.where(now, code, action)
        reason = np.where(now, np.asarray(why), reason)
        decided |= when
    return Judgement(running, adjusted, fail, passed & active, action, reason, history,
                     stage_min, exposures, short_exposures, short_duration)


def _adjust(p: np.ndarray, active: np.ndarray, correction: str) -> np.ndarray:
    """Holm/Bonferroni over each run's active gates (inactive gates are not hypotheses)."""
    if correction == "none" or p.shape[1] == 0:
        return p
    m = active.sum(axis=1, keepdims=True).astype(float)
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    if np.all(active):
        return adjust_p_values(p, "holm")
    # Holm with m = the run's active gates: inactive p-values are 1 and sort last.
    order = np.argsort(p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    mult = np.maximum(m - np.arange(p.shape[1]), 1.0)
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked * mult, axis=1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=1)
    return out


# What widening did (index into WIDENINGS).
WIDENINGS = ("none", "ramp", "next stage", "complete", "awaiting approval",
             "oversight capacity")
NOT_WIDENED, RAMP, NEXT_STAGE, COMPLETE, AWAITING, OVER_CAPACITY = range(6)


@dataclass(frozen=True)
class Widening:
    """Where ready runs go: ramp within the stage, the next stage, or complete."""

    kind: np.ndarray  # (runs,) WIDENINGS code
    stage: np.ndarray
    traffic: np.ndarray
    step: np.ndarray
    close_call: np.ndarray  # (runs,) bool: the stage's smallest adjusted p was a close call
    review: ReviewLoad | None = None  # projected review load of the widened traffic


def widen(plan: RolloutPlan, ready: np.ndarray, stage: np.ndarray, traffic: np.ndarray,
          step: np.ndarray, stage_min_adjusted: np.ndarray, approved: np.ndarray,
          review: ReviewEvidence | None = None) -> Widening:
    """Every gate passed (``ready``): ramp traffic (adaptive), enter the next stage, or finish.

    ``approved``: the next stage's manual approval is given (or not needed). ``review``: what
    the look saw of the review load (plans with ``oversight``; absent: nothing seen, so no
    traffic increase fits). A traffic increase whose projected review load exceeds the
    reviewers' capacity does not happen (``OVER_CAPACITY``, checked before the approval: a
    person's approval adds no reviewers).
    """
    adaptive = plan.adaptive
    planned = np.array([s.traffic for s in plan.stages])
    last = stage == len(plan.stages) - 1
    kind = np.zeros(stage.shape, dtype=int)
    ramp = ready & adaptive.enabled & (traffic < planned[stage])
    new_traffic = np.where(ramp, np.minimum(planned[stage], traffic * step), traffic)
    kind = np.where(ramp, RAMP, kind)
    onward = ready & ~ramp
    close = stage_min_adjusted < adaptive.close_call
    if adaptive.enabled:
        grown = np.where(close, np.maximum(adaptive.min_step, step * adaptive.shrink),
                         np.minimum(adaptive.max_step, step * adaptive.grow))
        new_step = np.where(onward, grown, step)
    else:
        new_step = step
    kind = np.where(onward & last, COMPLETE, kind)
    nxt = np.minimum(stage + 1, len(plan.stages) - 1)
    awaiting = onward & ~last & ~approved
    kind = np.where(awaiting, AWAITING, kind)
    move = onward & ~last & approved
    kind = np.where(move, NEXT_STAGE, kind)
    entered = np.minimum(planned[nxt], traffic * new_step) if adaptive.enabled else planned[nxt]
    new_traffic = np.where(move, entered, new_traffic)
    new_traffic = np.where(onward & last, planned[stage], new_traffic)
    new_stage = np.where(move, nxt, stage)
    new_step = np.where(awaiting, step, new_step)
    load = None
    if plan.oversight is not None:
        increase = ramp | (onward & ~last)
        target = np.where(ramp, new_traffic, planned[nxt])
        if review is None:
            empty = np.zeros(stage.shape)
            review = ReviewEvidence(empty, empty, empty, empty, traffic)
        load = review_load(plan.oversight, review, target, increase)
        held = increase & load.exceeds
        kind = np.where(held, OVER_CAPACITY, kind)
        new_stage = np.where(held, stage, new_stage)
        new_traffic = np.where(held, traffic, new_traffic)
        new_step = np.where(held, step, new_step)
    return Widening(kind, new_stage, new_traffic, new_step, close, load)
