"""Simulate a rollout plan many times: false rollbacks, detection, exposures and time to full.

Every run draws its own traffic and events, look by look, and three policies judge the same
draws: the plan's always-valid gates (mSPRT or alpha spending, Holm/Bonferroni across metrics x
segments), the fixed-horizon z-test checked at every look (naive peeking), and a Kayenta-style
Mann-Whitney judge with a score threshold. The plan's own policy also plays its adaptive option
(traffic ramps); the baselines widen exactly as planned. Everything is vectorised over runs
(numpy arrays of shape ``(runs, ...)``); runs are split into chunks of fixed size, each with
its own child of one ``np.random.SeedSequence``, so the results depend on the seed only — not
on the executor that runs the chunks, nor on how many workers it has.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from scaleguard.compute import Executor, Progress, get_executor
from scaleguard.errors import InputError
from scaleguard.safety._gates import Counts, comparison_gate, guardrail_gate
from scaleguard.safety._oversight import ReviewEvidence
from scaleguard.safety._plan import AdaptiveSpec, MetricSpec, RolloutPlan
from scaleguard.safety._rules import (
    ADVANCE,
    COMPLETE,
    CONTINUE,
    HOLD,
    HOLD_REASONS,
    MISSING,
    NEXT_STAGE,
    NON_CRITICAL,
    OVER_CAPACITY,
    OVERSIGHT,
    ROLL_BACK,
    Test,
    judge,
    plan_tests,
    stage_active,
    widen,
)
from scaleguard.safety._srm import srm_metrics, srm_p_values

__all__ = [
    "CHUNK_RUNS",
    "chunk_runs",
    "KAYENTA_CONFIDENCE",
    "KAYENTA_EFFECT_TOLERANCE",
    "KAYENTA_MARGINAL_SCORE",
    "POLICIES",
    "PolicyOutcome",
    "Scenario",
    "SimulationResult",
    "simulate",
]

ScenarioKind = Literal["aa", "metric", "segment", "rare", "srm"]
Policy = Literal["always_valid", "naive_peeking", "kayenta"]
POLICIES: tuple[Policy, ...] = ("always_valid", "naive_peeking", "kayenta")
# Runs per chunk: fixed by the plan, so the random streams do not depend on the executor. Large
# chunks amortise numpy's per-call cost; plans with many metric x segment cells use small ones
# (each chunk keeps 9 cumulative arrays of runs x metrics x cells floats).
CHUNK_RUNS = 2000
SMALL_CHUNK_RUNS = 500
_LARGE_CHUNK_CELLS = 64  # metrics x cells up to which a chunk holds CHUNK_RUNS runs (~9 MB)


def chunk_runs(plan: RolloutPlan) -> int:
    """Runs per chunk for ``plan`` (a function of the plan only: results depend on the seed)."""
    cells = math.prod(len(values) for values in plan.segments.values())
    return CHUNK_RUNS if cells * len(plan.metrics) <= _LARGE_CHUNK_CELLS else SMALL_CHUNK_RUNS
DEFAULT_MAX_LOOKS = 100  # looks in a stage without max_duration before a run counts as stalled
# Work bounded before it starts (a run of the example plan is ~3,000 metric x cell x look
# updates, ~1 million a second on one core): at most MAX_WORK updates (a few minutes), looks per
# stage (each look keeps history: chunk runs x looks x metrics floats) and segment cells.
MAX_RUNS = 1_000_000
MAX_WORK = 300_000_000
MAX_LOOKS_PER_STAGE = 10_000
MAX_SEGMENT_CELLS = 4_096
# Kayenta's NetflixACAJudge: MannWhitneyClassifier(tolerance = 0.25, confLevel = 0.98), and the
# canary config's scoreThresholds (marginal 75; a run scoring below it fails).
KAYENTA_CONFIDENCE = 0.98
KAYENTA_EFFECT_TOLERANCE = 0.25
KAYENTA_MARGINAL_SCORE = 75.0


@dataclass(frozen=True)
class Scenario:
    """What the treatment really does.

    ``aa``: nothing (treatment = control). ``metric``: ``metric`` is ``factor`` times worse
    everywhere. ``segment``: worse only in ``segment`` (``"region=eu"``). ``rare``: ``metric``'s
    control rate is ``rate`` and the treatment's ``factor`` times that. ``srm``: the treatment
    behaves like the control but receives ``factor`` times its planned exposures (a broken
    split).
    """

    kind: ScenarioKind = "aa"
    metric: str | None = None
    segment: str | None = None
    factor: float = 2.0
    rate: float | None = None

    def check(self, plan: RolloutPlan) -> None:
        names = [m.name for m in plan.metrics]
        if self.kind not in ("aa", "metric", "segment", "rare", "srm"):
            raise InputError(f"--scenario: expected aa, metric, segment, rare or srm, got "
                             f"{self.kind!r}")
        if self.kind not in ("aa", "srm") and self.metric not in names:
            raise InputError(f"--metric: scenario {self.kind!r} needs one of the plan's metrics "
                             f"({', '.join(names)}), got {self.metric!r}")
        if self.kind == "segment":
            dim, _, value = (self.segment or "").partition("=")
            if value not in plan.segments.get(dim, []):
                known = ", ".join(f"{d}={v}" for d, vs in plan.segments.items() for v in vs)
                raise InputError(f"--segment: expected one of the plan's segments ({known}), "
                                 f"got {self.segment!r}")
        if not self.factor > 0 or not math.isfinite(self.factor):
            raise InputError(f"--factor: expected a positive number, got {self.factor}")
        if self.kind == "rare" and (self.rate is None or not 0 < self.rate < 1):
            raise InputError(f"--rate: the rare scenario needs a rate in (0, 1), got {self.rate}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyOutcome:
    """How one policy fared over all runs (rates are fractions of runs)."""

    policy: str
    runs: int
    rollback_rate: float
    rollback_se: float
    hold_rate: float
    complete_rate: float
    mean_exposures_before_rollback: float | None
    mean_looks_to_rollback: float | None
    mean_time_to_full: float | None
    held_by_reason: dict[str, float] = field(default_factory=dict)  # shares of all runs

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimulationResult:
    """Outcomes of every policy on one scenario; ``rollback_rate`` is the false rollback rate
    under ``aa`` and the detection rate otherwise."""

    plan: str
    scenario: Scenario
    runs: int
    seed: int
    alpha: float
    outcomes: tuple[PolicyOutcome, ...]

    def outcome(self, policy: str) -> PolicyOutcome:
        return next(o for o in self.outcomes if o.policy == policy)

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "scenario": self.scenario.as_dict(), "runs": self.runs,
                "seed": self.seed, "alpha": self.alpha,
                "outcomes": [o.as_dict() for o in self.outcomes]}

    def __repr__(self) -> str:
        rates = ", ".join(f"{o.policy} {o.rollback_rate:.3f}" for o in self.outcomes)
        return (f"SimulationResult({self.plan!r}, {self.scenario.kind}, {self.runs} runs: "
                f"rollback rate {rates})")


# --- the traffic model ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Model:
    """The plan turned into arrays: cells are combinations of segment values."""

    cells: list[dict[str, str]]
    weights: np.ndarray  # (cells,) traffic share of each cell
    admitted: np.ndarray  # (stages, cells) bool
    groups: list[tuple[str, np.ndarray]]  # (label, cell mask) for overall + each segment
    control: np.ndarray  # (metrics, cells) control value per metric and cell
    treatment: np.ndarray  # (metrics, cells)
    sd: np.ndarray  # (metrics,) per-exposure sd of mean metrics
    looks_max: np.ndarray  # (stages,)
    treatment_share: float  # treatment exposures per control exposure (1: the planned split)


def _baseline(metric: MetricSpec) -> float:
    if metric.baseline is not None:
        return metric.baseline
    if metric.kind == "quantile":
        return 0.5 * (1.0 - (metric.quantile or 0.5))
    if metric.guardrail is not None:
        return 0.5 * metric.guardrail  # halfway to the guardrail: a passing system by default
    raise InputError(f"metric {metric.name!r}: the simulator needs its baseline (expected "
                     "control value)")


def _worse(metric: MetricSpec, value: np.ndarray | float, factor: float) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if metric.kind == "rate" and metric.direction == "higher_is_better":
        return 1.0 - (1.0 - value) * factor  # the misses grow by factor
    if metric.kind == "mean" and metric.direction == "higher_is_better":
        return value / factor
    return value * factor


def check_work(plan: RolloutPlan, runs: int, source: str = "plan") -> None:
    """Refuse, before any allocation, a simulation too large for memory or minutes; ``source``
    (the plan's file) prefixes the problems that are the plan's."""
    if runs > MAX_RUNS:
        raise InputError(f"--runs: at most {MAX_RUNS:,} simulated rollouts, got {runs:,}")
    cells = math.prod(len(values) for values in plan.segments.values())
    if cells > MAX_SEGMENT_CELLS:
        raise InputError(f"{source}: segments: {cells:,} segment cells (one per combination "
                         f"of values); the simulator handles at most {MAX_SEGMENT_CELLS:,}")
    interval = plan.simulation.look_interval
    looks = [math.ceil(s.max_duration / interval) if s.max_duration else DEFAULT_MAX_LOOKS
             for s in plan.stages]
    worst = max(range(len(looks)), key=looks.__getitem__)
    if looks[worst] > MAX_LOOKS_PER_STAGE:
        raise InputError(f"{source}: simulation.look_interval: {interval:g} s gives "
                         f"{looks[worst]:,} looks in stage {plan.stages[worst].name!r}; at most "
                         f"{MAX_LOOKS_PER_STAGE:,} can be simulated (use a longer interval)")
    work = runs * sum(looks) * len(plan.metrics) * cells
    if work > MAX_WORK:
        raise InputError(f"--runs: {runs:,} rollouts of {sum(looks):,} looks x "
                         f"{len(plan.metrics)} metrics x {cells:,} segment cells is "
                         f"{work:,.0f} updates, more than {MAX_WORK:,}; use fewer runs")


def _model(plan: RolloutPlan, scenario: Scenario) -> _Model:
    dims = list(plan.segments)
    combos = list(itertools.product(*(plan.segments[d] for d in dims))) or [()]
    cells = [dict(zip(dims, combo, strict=True)) for combo in combos]
    weights = np.ones(len(cells))
    given = plan.simulation.segment_weights or {}
    for i, cell in enumerate(cells):
        for dim, value in cell.items():
            share = given.get(dim, {})
            weights[i] *= share.get(value, 1.0) / (sum(share.values()) if share else
                                                   len(plan.segments[dim]))
    weights /= weights.sum()
    admitted = np.array([[all(v in (stage.segments or {}).get(d, [v]) for d, v in cell.items())
                          for cell in cells] for stage in plan.stages])
    groups = [("overall", np.ones(len(cells), dtype=bool))]
    groups += [(f"{d}={v}", np.array([c[d] == v for c in cells])) for d in dims
               for v in plan.segments[d]]
    control = np.empty((len(plan.metrics), len(cells)))
    treatment = np.empty_like(control)
    for j, metric in enumerate(plan.metrics):
        base = float(scenario.rate) if scenario.kind == "rare" and scenario.rate is not None \
            and metric.name == scenario.metric else _baseline(metric)
        control[j] = base
        treatment[j] = base
        if scenario.kind in ("metric", "rare") and metric.name == scenario.metric:
            treatment[j] = _worse(metric, base, scenario.factor)
        elif scenario.kind == "segment" and metric.name == scenario.metric:
            dim, _, value = (scenario.segment or "").partition("=")
            hit = np.array([c[dim] == value for c in cells])
            treatment[j, hit] = _worse(metric, base, scenario.factor)
    for j, metric in enumerate(plan.metrics):
        if metric.kind != "mean" and (np.any(treatment[j] > 1) or np.any(treatment[j] < 0)):
            raise InputError(f"--factor: makes {metric.name!r} a rate outside [0, 1]")
    sd = np.array([m.sd or 1.0 for m in plan.metrics])
    interval = plan.simulation.look_interval or 1.0
    looks_max = np.array([math.ceil(s.max_duration / interval) if s.max_duration else
                          DEFAULT_MAX_LOOKS for s in plan.stages])
    # Treatment exposures per control exposure: the planned split, broken by an srm scenario.
    planned_share = plan.srm.treatment_share
    broken = scenario.factor if scenario.kind == "srm" else 1.0
    split = planned_share / (1.0 - planned_share) * broken
    return _Model(cells, weights, admitted, groups, control, treatment, sd, looks_max, split)


# --- one chunk of runs ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Chunk:
    plan: RolloutPlan
    scenario: Scenario
    runs: int
    seed: np.random.SeedSequence
    policies: tuple[Policy, ...] = POLICIES
    trace: bool = False


def _draw(rng: np.random.Generator, metric: MetricSpec, n: np.ndarray, value: np.ndarray,
          sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of ``n`` exposures per (run, cell) of one metric."""
    if metric.kind != "mean":
        events = rng.binomial(n.astype(np.int64), value).astype(float)
        return events, events
    safe = np.maximum(n, 2.0)
    mean = rng.normal(value, sd / np.sqrt(safe))
    var = sd * sd * rng.chisquare(safe - 1.0) / (safe - 1.0)
    total = np.where(n > 0, n * mean, 0.0)
    return total, np.where(n > 0, (n - 1.0) * var + n * mean * mean, 0.0)


def _group_counts(cum: dict[str, np.ndarray], prefix: str, j: int, masks: np.ndarray,
                  binary: bool) -> Counts:
    """Cumulative counts of one arm (``t``, ``c`` or ``p`` = previous stage), every group at
    once: ``(runs, groups)`` arrays."""
    return Counts(cum[prefix + "n"][:, j] @ masks.T, cum[prefix + "s"][:, j] @ masks.T,
                  cum[prefix + "q"][:, j] @ masks.T, binary)


@dataclass(frozen=True)
class _LookStats:
    p: np.ndarray  # (runs, tests)
    z: np.ndarray
    z_naive: np.ndarray  # fixed-horizon z of "no difference" (the naive baseline)
    passed: np.ndarray
    treated_n: np.ndarray


def _look_stats(plan: RolloutPlan, tests: tuple[Test, ...], cum: dict[str, np.ndarray],
                masks: np.ndarray, runs: int) -> _LookStats:
    """Every gate's statistics from the cumulative counts: one gate call per metric and test
    kind, over all runs and segments at once (the same gate functions as ``decide``)."""
    size = len(tests)
    p, z, z_naive = np.ones((runs, size)), np.zeros((runs, size)), np.zeros((runs, size))
    passed, treated_n = np.zeros((runs, size), dtype=bool), np.zeros((runs, size))
    groups = [None, *((d, v) for d, values in plan.segments.items() for v in values)]
    column = {(t.metric, groups.index(t.segment), t.kind): i for i, t in enumerate(tests)}
    for j, metric in enumerate(plan.metrics):
        binary = metric.kind != "mean"
        treated = _group_counts(cum, "t", j, masks, binary)
        for kind in ("guardrail", "comparison"):
            if (metric.guardrail if kind == "guardrail" else metric.margin) is None:
                continue
            if kind == "guardrail":
                gate = guardrail_gate(metric, treated, plan.alpha)
            else:
                other = "c" if metric.compare_to == "control" else "p"
                gate = comparison_gate(metric, treated,
                                       _group_counts(cum, other, j, masks, binary), plan.alpha)
            cols = [column[(j, g, kind)] for g in range(len(groups))]
            p[:, cols], z[:, cols], passed[:, cols] = gate.p_value, gate.z, gate.passed
            with np.errstate(divide="ignore", invalid="ignore"):
                z_naive[:, cols] = np.where(np.isfinite(gate.se) & (gate.se > 0),
                                            gate.estimate / gate.se, 0.0)
            treated_n[:, cols] = treated.n
    return _LookStats(p, z, z_naive, passed, treated_n)


def _srm_flags(plan: RolloutPlan, cum: dict[str, np.ndarray], masks: np.ndarray,
               checked: np.ndarray) -> np.ndarray:
    """Per run: a sample-ratio mismatch shown (the same test and Bonferroni as ``decide``).

    ``checked``: ``(runs, metrics, groups)``, the splits ``decide`` would check at each run's
    stage (gated metrics, admitted segments: both arms have rows there).
    """
    if not plan.srm.enabled:
        return np.zeros(checked.shape[0], dtype=bool)
    t = cum["tn"] @ masks.T  # (runs, metrics, groups)
    c = cum["cn"] @ masks.T
    m = np.maximum(checked.sum(axis=(1, 2)), 1)
    p = srm_p_values(t, c, plan.srm.treatment_share)
    return np.any(checked & (p <= (plan.srm.alpha / m)[:, None, None]), axis=(1, 2))


def _baseline_judgement(plan: RolloutPlan, fail: np.ndarray, critical: np.ndarray,
                        ready_gates: np.ndarray, exposures: np.ndarray, elapsed: np.ndarray,
                        stage: np.ndarray) -> np.ndarray:
    """Action codes of a baseline policy: its own failures, the plan's minimums and maximums."""
    specs = plan.stages
    short = (exposures < np.array([s.min_exposures for s in specs])[stage]) | \
        (elapsed < np.array([s.min_duration for s in specs])[stage])
    max_duration = np.array([np.inf if s.max_duration is None else s.max_duration
                             for s in specs])[stage]
    waiting = ~ready_gates | short
    return np.select([np.any(fail & critical, axis=1), np.any(fail, axis=1),
                      waiting & (elapsed >= max_duration), waiting],
                     [ROLL_BACK, HOLD, HOLD, CONTINUE], ADVANCE)


# A run held for a reason the controller gives; the simulator adds one of its own: a stage
# without max_duration still inconclusive after DEFAULT_MAX_LOOKS looks.
STALLED = len(HOLD_REASONS)
SIM_HOLD_REASONS = (*HOLD_REASONS, f"no max_duration: inconclusive after {DEFAULT_MAX_LOOKS} "
                                   "looks")


def _run_chunk(chunk: _Chunk) -> dict[str, np.ndarray]:
    """Simulate ``chunk.runs`` rollouts under every policy; per-run outcome arrays.

    The plan's own policy is the controller's rules (:mod:`scaleguard.safety._rules`), run on
    every run at once; with ``chunk.trace`` the draws and each look's action are returned too,
    so that a test can replay them through :func:`scaleguard.safety.decide`.
    """
    plan, scenario, runs = chunk.plan, chunk.scenario, chunk.runs
    model = _model(plan, scenario)
    rng = np.random.default_rng(chunk.seed)
    n_metrics, n_cells, n_stages = len(plan.metrics), len(model.cells), len(plan.stages)
    per_look = plan.simulation.exposures_per_look
    interval = plan.simulation.look_interval
    alpha = plan.alpha
    gated = np.array([[m.name in (s.metrics or [m.name]) for m in plan.metrics]
                      for s in plan.stages])  # (stages, metrics)
    masks = np.array([mask for _, mask in model.groups], dtype=float)  # (groups, cells)
    tests = plan_tests(plan)
    checked_by_stage = stage_active(plan)  # (stages, tests)
    critical = np.array([plan.metrics[t.metric].critical for t in tests], dtype=bool)
    is_guardrail = np.array([t.kind == "guardrail" for t in tests], dtype=bool)
    # The splits an SRM check covers at each stage: gated metrics x admitted groups.
    group_admitted = np.array([[mask.astype(bool)[admitted].any() for mask in masks]
                               for admitted in model.admitted])  # (stages, groups)
    srm_checked = gated[:, :, None] & group_admitted[:, None, :]  # (stages, metrics, groups)
    srm_checked &= srm_metrics(plan)[None, :, None]
    # A previous-stage comparison in a segment the previous stage did not admit has no data:
    # missing, as `decide` finds it (no rows), so the run holds.
    groups = [None, *((d, v) for d, values in plan.segments.items() for v in values)]
    missing_by_stage = np.array([s > 0 and any(
        checked_by_stage[s, i] and t.kind == "comparison"
        and plan.metrics[t.metric].compare_to == "previous_stage"
        and not group_admitted[s - 1, groups.index(t.segment)] for i, t in enumerate(tests))
        for s in range(n_stages)])
    max_total = int(model.looks_max.sum())
    results: dict[str, np.ndarray] = {}
    # The baselines are other judges: they neither ramp nor know the reviewers.
    as_planned = plan.model_copy(update={"adaptive": AdaptiveSpec(), "oversight": None})
    flag_metric = [m.name for m in plan.metrics].index(plan.oversight.metric) \
        if plan.oversight is not None and plan.oversight.metric is not None else None
    # Each policy sees the same draws: one generator state per chunk, replayed per policy.
    state = rng.bit_generator.state
    for policy in chunk.policies:
        rng.bit_generator.state = state
        own = policy == "always_valid"
        stage = np.zeros(runs, dtype=int)
        looks = np.zeros(runs, dtype=int)
        status = np.zeros(runs, dtype=int)  # 0 running, 1 rolled back, 2 held, 3 complete
        held_for = np.zeros(runs, dtype=int)  # SIM_HOLD_REASONS code
        exposures = np.zeros(runs)  # treatment exposures so far, all stages
        end_look = np.full(runs, -1)
        full_at = np.full(runs, np.nan)
        shape = (runs, n_metrics, n_cells)
        cum = {name: np.zeros(shape) for name in ("tn", "ts", "tq", "cn", "cs", "cq",
                                                  "pn", "ps", "pq")}
        # Per-look values: only the Kayenta judge reads them.
        kept = int(model.looks_max.max()) if policy == "kayenta" else 1
        history_t = np.zeros((runs, kept, n_metrics))
        history_c = np.zeros_like(history_t)
        min_p = np.ones((runs, len(tests)))
        fractions: list[tuple[float, ...]] = [()] * runs
        # The adaptive option is the plan's own policy only; the baselines widen as planned.
        traffic = np.full(runs, plan.stages[0].traffic)
        step_now = np.full(runs, plan.adaptive.initial_step)
        stage_min_adjusted = np.ones(runs)
        trace_draws, trace_actions, trace_stage = [], [], []
        for look in range(max_total):
            live = status == 0
            if not live.any():
                break
            n_cell = np.round(per_look * traffic[:, None] * model.weights[None, :]
                              * model.admitted[stage])  # (runs, cells)
            n_cell = np.where(live[:, None], n_cell, 0.0)
            n_arm = {"t": np.round(n_cell * model.treatment_share), "c": n_cell}
            drawn = np.zeros((runs, n_metrics, n_cells, 2, 3)) if chunk.trace and own else None
            for j, metric in enumerate(plan.metrics):
                for a, (arm, values) in enumerate((("t", model.treatment[j]),
                                                   ("c", model.control[j]))):
                    n = n_arm[arm]
                    total, total_sq = _draw(rng, metric, n, values[None, :], float(model.sd[j]))
                    cum[f"{arm}n"][:, j] += n
                    cum[f"{arm}s"][:, j] += total
                    cum[f"{arm}q"][:, j] += total_sq
                    if drawn is not None:
                        drawn[:, j, :, a] = np.stack([n, total, total_sq], axis=-1)
                    if policy == "kayenta":
                        with np.errstate(divide="ignore", invalid="ignore"):
                            rate = total.sum(axis=1) / n.sum(axis=1)
                        hist = history_t if arm == "t" else history_c
                        slot = np.minimum(looks, hist.shape[1] - 1)
                        hist[np.arange(runs), slot, j] = np.nan_to_num(rate)
            looks = looks + live
            exposures = exposures + np.where(live, n_arm["t"].sum(axis=1), 0.0)
            elapsed = looks * interval
            active = checked_by_stage[stage] & live[:, None]
            if policy == "kayenta":
                fail = np.zeros_like(active)
                scored = _kayenta_fail(plan, gated, stage, looks, history_t, history_c) & live
                fail[:, 0], active[:, 0] = scored, active[:, 0] | scored
                action = _baseline_judgement(as_planned, fail, np.ones_like(critical), np.ones(
                    runs, dtype=bool), cum["tn"][:, 0].sum(axis=1), elapsed, stage)
            else:
                stats_now = _look_stats(plan, tests, cum, masks, runs)
                if own:
                    srm = _srm_flags(plan, cum, masks, srm_checked[stage]) & live
                    blocked = np.where(missing_by_stage[stage], MISSING, 0)
                    judged = judge(plan, stage, stats_now.p, stats_now.z, stats_now.passed,
                                   active, stats_now.treated_n, elapsed, min_p, fractions,
                                   stage_min_adjusted, blocked, srm)
                    min_p = np.where(live[:, None], judged.running, min_p)
                    fractions = judged.fractions
                    stage_min_adjusted = np.where(live, judged.stage_min_adjusted,
                                                  stage_min_adjusted)
                    action = judged.action
                    held_for = np.where(live & (action == HOLD), judged.hold_reason, held_for)
                else:
                    # A fixed-horizon z-test at alpha, re-checked at every look, no correction:
                    # what a dashboard with a p-value column invites. Comparisons are two-sided
                    # (any significant difference alarms, Kayenta's "either" direction);
                    # guardrails one-sided (only exceeding the limit alarms).
                    zn = stats_now.z_naive
                    fail = active & np.where(is_guardrail[None, :], zn > stats.norm.isf(alpha),
                                             np.abs(zn) > stats.norm.isf(alpha / 2))
                    action = _baseline_judgement(as_planned, fail, critical,
                                                 np.ones(runs, dtype=bool),
                                                 cum["tn"][:, 0].sum(axis=1), elapsed, stage)
            if not own:
                held_for = np.where(live & (action == HOLD), NON_CRITICAL, held_for)
            action = np.where(live, action, -1)
            # A stage without max_duration that never concludes: the simulation stops it.
            stalled = (action == CONTINUE) & (looks >= model.looks_max[stage])
            held_for = np.where(stalled, STALLED, held_for)
            status = np.where(action == ROLL_BACK, 1, status)
            status = np.where((action == HOLD) | stalled, 2, status)
            ready = action == ADVANCE
            review = None
            if own and plan.oversight is not None:
                flagged = cum["ts"][:, flag_metric].sum(axis=1) if flag_metric is not None \
                    else np.zeros(runs)
                flag_n = cum["tn"][:, flag_metric].sum(axis=1) if flag_metric is not None \
                    else np.zeros(runs)
                review = ReviewEvidence(flagged, flag_n, judged.exposures, elapsed, traffic)
            moved = widen(plan if own else as_planned, ready, stage, traffic, step_now,
                          stage_min_adjusted, np.ones(runs, dtype=bool), review)
            # A traffic increase the reviewers cannot absorb holds (the controller's rule).
            over = moved.kind == OVER_CAPACITY
            status = np.where(over, 2, status)
            held_for = np.where(over, OVERSIGHT, held_for)
            action = np.where(over, HOLD, action)
            if chunk.trace and own:
                trace_draws.append(drawn)
                trace_actions.append(action.copy())
                trace_stage.append(stage.copy())
            status = np.where(moved.kind == COMPLETE, 3, status)
            end_look = np.where(live & (status != 0), look + 1, end_look)
            move = moved.kind == NEXT_STAGE
            stage, traffic, step_now = moved.stage, moved.traffic, moved.step
            reached = (status == 0) & (stage == n_stages - 1) & \
                (traffic >= plan.stages[-1].traffic) & np.isnan(full_at)
            full_at = np.where(reached, (look + 1) * interval, full_at)
            if move.any():
                looks[move] = 0
                min_p[move] = 1.0
                stage_min_adjusted[move] = 1.0
                for i in np.flatnonzero(move):
                    fractions[i] = ()
                for prefix in ("n", "s", "q"):
                    cum["p" + prefix][move] = cum["t" + prefix][move]
                    cum["t" + prefix][move] = 0.0
                    cum["c" + prefix][move] = 0.0
        if n_stages == 1:
            full_at = np.where(status == 3, 0.0, full_at)
        results[policy + ":status"] = status
        results[policy + ":held_for"] = held_for
        results[policy + ":exposures"] = exposures
        results[policy + ":end_look"] = end_look
        results[policy + ":full_at"] = full_at
        if chunk.trace and own:
            results["trace:draws"] = np.array(trace_draws)
            results["trace:action"] = np.array(trace_actions)
            results["trace:stage"] = np.array(trace_stage)
    return results


def _kayenta_fail(plan: RolloutPlan, gated: np.ndarray, stage: np.ndarray, looks: np.ndarray,
                  history_t: np.ndarray, history_c: np.ndarray) -> np.ndarray:
    """Kayenta-style judge: Mann-Whitney per metric over the per-look values of this stage.

    A metric fails when the test rejects at ``KAYENTA_CONFIDENCE`` and the treatment's mean is
    off by more than ``KAYENTA_EFFECT_TOLERANCE`` in the harmful direction; the score is the
    share of metrics that do not fail, and a score below ``KAYENTA_MARGINAL_SCORE`` fails.
    """
    runs = stage.size
    failing = np.zeros((runs, len(plan.metrics)), dtype=bool)
    for k in np.unique(looks):
        if k < 2:
            continue  # one value per arm cannot be ranked
        rows = looks == k
        t, c = history_t[rows, :k], history_c[rows, :k]
        with np.errstate(invalid="ignore", divide="ignore"):
            p = stats.mannwhitneyu(t, c, axis=1, alternative="two-sided").pvalue
            ratio = t.mean(axis=1) / c.mean(axis=1)
        for j, metric in enumerate(plan.metrics):
            worse = ratio[:, j] > 1 + KAYENTA_EFFECT_TOLERANCE
            if metric.kind == "mean" and metric.direction == "higher_is_better" or \
                    metric.kind == "rate" and metric.direction == "higher_is_better":
                worse = ratio[:, j] < 1 - KAYENTA_EFFECT_TOLERANCE
            failing[rows, j] = (np.nan_to_num(p[:, j], nan=1.0) < 1 - KAYENTA_CONFIDENCE) & worse
    failing &= gated[stage]
    counted = np.maximum(gated[stage].sum(axis=1), 1)
    score = 100.0 * (1.0 - failing.sum(axis=1) / counted)
    return score < KAYENTA_MARGINAL_SCORE


def simulate(plan: RolloutPlan, scenario: Scenario, runs: int = 1000, seed: int = 0, *,
             executor: str | Executor | None = None, progress: Progress | None = None,
             policies: tuple[Policy, ...] = POLICIES) -> SimulationResult:
    """Run ``plan`` ``runs`` times on ``scenario`` and summarise each of ``policies``.

    The plan's own policy (``always_valid``) is the controller's rules, so its figures are what
    :func:`scaleguard.safety.decide` would decide on the same draws; the simulator grants every
    manual approval (it measures the statistics, not the people).

    Results depend on ``(plan, scenario, runs, seed)`` only: chunks of :func:`chunk_runs` runs
    each get one child of ``SeedSequence(seed)``, whatever executor runs them.

    >>> from scaleguard.safety._plan import parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "margin": 0.002,
    ...                    "baseline": 0.01}], "stages": [{"name": "all", "traffic": 1.0,
    ...                    "min_duration": "10h", "max_duration": "10h"}],
    ...                    "simulation": {"exposures_per_look": 2000, "look_interval": "1h"}})
    >>> result = simulate(plan, Scenario("metric", "harm", factor=2.0), runs=200, seed=1)
    >>> result.outcome("always_valid").rollback_rate > 0.9
    True
    """
    if runs < 1 or int(runs) != runs:
        raise InputError(f"--runs: expected a whole number >= 1, got {runs}")
    check_work(plan, int(runs))
    scenario.check(plan)
    _model(plan, scenario)  # refuse impossible scenarios before any work
    size = chunk_runs(plan)
    sizes = [size] * (runs // size) + ([runs % size] if runs % size
                                                   else [])
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise InputError(f"policies: expected some of {', '.join(POLICIES)}, got {policies}")
    chunks = [_Chunk(plan, scenario, size, child, tuple(policies))
              for size, child in zip(sizes, children, strict=True)]
    parts = get_executor(executor).map(_run_chunk, chunks, progress=progress)
    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    outcomes = []
    for policy in policies:
        status = merged[policy + ":status"]
        held_for = merged[policy + ":held_for"][status == 2]
        back = status == 1
        rate = float(back.mean())
        full = merged[policy + ":full_at"]
        reached = np.isfinite(full) & (status == 3)
        outcomes.append(PolicyOutcome(
            policy=policy, runs=runs, rollback_rate=rate,
            rollback_se=math.sqrt(rate * (1 - rate) / runs),
            hold_rate=float((status == 2).mean()), complete_rate=float((status == 3).mean()),
            mean_exposures_before_rollback=float(merged[policy + ":exposures"][back].mean())
            if back.any() else None,
            mean_looks_to_rollback=float(merged[policy + ":end_look"][back].mean())
            if back.any() else None,
            mean_time_to_full=float(full[reached].mean()) if reached.any() else None,
            held_by_reason={SIM_HOLD_REASONS[code]: float(count / runs) for code, count in
                            zip(*np.unique(held_for, return_counts=True), strict=True)}))
    return SimulationResult(plan.name, scenario, runs, seed, plan.alpha, tuple(outcomes))
