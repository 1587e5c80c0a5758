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

import functools
import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from scaleguard.compute import Executor, Progress, get_executor
from scaleguard.errors import InputError
from scaleguard.safety._gates import Counts, comparison_gate, guardrail_gate
from scaleguard.safety._plan import MetricSpec, RolloutPlan
from scaleguard.safety._spending import SpendingName, spending_boundaries

__all__ = [
    "CHUNK_RUNS",
    "KAYENTA_CONFIDENCE",
    "KAYENTA_EFFECT_TOLERANCE",
    "KAYENTA_MARGINAL_SCORE",
    "POLICIES",
    "PolicyOutcome",
    "Scenario",
    "SimulationResult",
    "simulate",
]

ScenarioKind = Literal["aa", "metric", "segment", "rare"]
Policy = Literal["always_valid", "naive_peeking", "kayenta"]
POLICIES: tuple[Policy, ...] = ("always_valid", "naive_peeking", "kayenta")
CHUNK_RUNS = 500  # runs per chunk: fixed, so the random streams do not depend on the executor
DEFAULT_MAX_LOOKS = 100  # looks in a stage without max_duration before a run counts as stalled
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
    control rate is ``rate`` and the treatment's ``factor`` times that.
    """

    kind: ScenarioKind = "aa"
    metric: str | None = None
    segment: str | None = None
    factor: float = 2.0
    rate: float | None = None

    def check(self, plan: RolloutPlan) -> None:
        names = [m.name for m in plan.metrics]
        if self.kind not in ("aa", "metric", "segment", "rare"):
            raise InputError(f"--scenario: expected aa, metric, segment or rare, got "
                             f"{self.kind!r}")
        if self.kind != "aa" and self.metric not in names:
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
    return _Model(cells, weights, admitted, groups, control, treatment, sd, looks_max)


# --- one chunk of runs ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Chunk:
    plan: RolloutPlan
    scenario: Scenario
    runs: int
    seed: np.random.SeedSequence


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


def _family_adjusted(p: np.ndarray, active: np.ndarray, correction: str) -> np.ndarray:
    """Holm/Bonferroni-adjusted p-values over the active tests of each run (inactive: 1)."""
    p = np.where(active, p, 1.0)
    m = active.sum(axis=1, keepdims=True).astype(float)
    if correction == "none":
        return p
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    mult = np.maximum(m - np.arange(p.shape[1]), 1.0)
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked * mult, axis=1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=1)
    return np.where(active, out, 1.0)


@functools.lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float, spending: SpendingName) -> np.ndarray:
    """Spending boundaries, computed once per process for a plan's looks (they cost ~0.1 s)."""
    return spending_boundaries(fractions, alpha, spending)


def _arm_counts(cum: dict[str, np.ndarray], prefix: str, j: int, mask: np.ndarray,
                binary: bool) -> Counts:
    """Cumulative counts of one arm (``t``, ``c`` or ``p`` = previous stage) in a segment."""
    return Counts(cum[prefix + "n"][:, j][:, mask].sum(axis=1),
                  cum[prefix + "s"][:, j][:, mask].sum(axis=1),
                  cum[prefix + "q"][:, j][:, mask].sum(axis=1), binary)


def _run_chunk(chunk: _Chunk) -> dict[str, np.ndarray]:
    """Simulate ``chunk.runs`` rollouts under every policy; per-run outcome arrays."""
    plan, scenario, runs = chunk.plan, chunk.scenario, chunk.runs
    model = _model(plan, scenario)
    rng = np.random.default_rng(chunk.seed)
    n_metrics, n_cells, n_stages = len(plan.metrics), len(model.cells), len(plan.stages)
    per_look = plan.simulation.exposures_per_look
    interval = plan.simulation.look_interval
    alpha = plan.alpha
    gated = np.array([[m.name in (s.metrics or [m.name]) for m in plan.metrics]
                      for s in plan.stages])  # (stages, metrics)
    group_masks = np.array([mask for _, mask in model.groups])  # (groups, cells)
    # Tests: (metric, group, kind) in a fixed order.
    tests = [(j, g, kind) for j, metric in enumerate(plan.metrics) for g in range(len(model.groups))
             for kind in ("guardrail", "comparison")
             if (metric.guardrail if kind == "guardrail" else metric.margin) is not None]
    max_total = int(model.looks_max.sum())
    planned = np.array([s.traffic for s in plan.stages])
    results: dict[str, np.ndarray] = {}
    # Each policy sees the same draws: one generator state per chunk, replayed per policy.
    state = rng.bit_generator.state
    for policy in POLICIES:
        rng.bit_generator.state = state
        stage = np.zeros(runs, dtype=int)
        looks = np.zeros(runs, dtype=int)
        status = np.zeros(runs, dtype=int)  # 0 running, 1 rolled back, 2 held, 3 complete
        exposures = np.zeros(runs)  # treatment exposures so far, all stages
        end_look = np.full(runs, -1)
        full_at = np.full(runs, np.nan)
        shape = (runs, n_metrics, n_cells)
        cum = {name: np.zeros(shape) for name in ("tn", "ts", "tq", "cn", "cs", "cq",
                                                  "pn", "ps", "pq")}
        history_t = np.zeros((runs, int(model.looks_max.max()), n_metrics))
        history_c = np.zeros_like(history_t)
        min_p = np.ones((runs, len(tests)))
        # The adaptive option (the plan's own policy only; the baselines widen as planned):
        # current traffic, traffic step, and the stage's smallest adjusted p-value.
        adaptive = plan.adaptive.enabled and policy == "always_valid"
        traffic = np.full(runs, planned[0])
        step_now = np.full(runs, plan.adaptive.initial_step)
        stage_min_adjusted = np.ones(runs)
        for step in range(max_total):
            live = status == 0
            if not live.any():
                break
            n_cell = np.round(per_look * traffic[:, None] * model.weights[None, :]
                              * model.admitted[stage])  # (runs, cells)
            n_cell = np.where(live[:, None], n_cell, 0.0)
            n = np.broadcast_to(n_cell[:, None, :], shape)
            for j, metric in enumerate(plan.metrics):
                for arm, values in (("t", model.treatment[j]), ("c", model.control[j])):
                    total, total_sq = _draw(rng, metric, n[:, j], values[None, :],
                                            float(model.sd[j]))
                    cum[f"{arm}n"][:, j] += n[:, j]
                    cum[f"{arm}s"][:, j] += total
                    cum[f"{arm}q"][:, j] += total_sq
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rate = total.sum(axis=1) / n[:, j].sum(axis=1)
                    hist = history_t if arm == "t" else history_c
                    slot = np.minimum(looks, hist.shape[1] - 1)
                    hist[np.arange(runs), slot, j] = np.nan_to_num(rate)
            looks = looks + live
            exposures = exposures + np.where(live, n_cell.sum(axis=1), 0.0)
            # Gate statistics for every test, every run (vectorised over runs).
            p = np.ones((runs, len(tests)))
            z = np.zeros((runs, len(tests)))
            z_naive = np.zeros((runs, len(tests)))  # fixed-horizon z of "no difference"
            passed = np.ones((runs, len(tests)), dtype=bool)
            active = np.zeros((runs, len(tests)), dtype=bool)
            for t, (j, g, kind) in enumerate(tests):
                metric = plan.metrics[j]
                mask = group_masks[g]
                binary = metric.kind != "mean"
                treated = _arm_counts(cum, "t", j, mask, binary)
                if kind == "guardrail":
                    gate = guardrail_gate(metric, treated, alpha)
                elif metric.compare_to == "control":
                    gate = comparison_gate(metric, treated, _arm_counts(cum, "c", j, mask, binary),
                                           alpha)
                else:
                    gate = comparison_gate(metric, treated, _arm_counts(cum, "p", j, mask, binary),
                                           alpha)
                in_stage = gated[stage, j] & (model.admitted[stage][:, mask].any(axis=1))
                if metric.compare_to == "previous_stage" and kind == "comparison":
                    in_stage &= stage > 0
                active[:, t] = in_stage & live
                p[:, t] = gate.p_value
                z[:, t] = gate.z
                with np.errstate(divide="ignore", invalid="ignore"):
                    z_naive[:, t] = np.where(np.isfinite(gate.se) & (gate.se > 0),
                                             gate.estimate / gate.se, 0.0)
                passed[:, t] = gate.passed
            critical = np.array([plan.metrics[j].critical for j, _, _ in tests])
            is_guardrail = np.array([kind == "guardrail" for _, _, kind in tests])
            if policy == "always_valid":
                min_p = np.where(active, np.minimum(min_p, p), min_p)
                if plan.error_control.method == "msprt":
                    adjusted = _family_adjusted(min_p, active, plan.error_control.correction)
                    fail = active & (adjusted <= alpha)
                else:
                    m = np.maximum(active.sum(axis=1), 1)
                    fail = np.zeros_like(active)
                    for s_idx, s in enumerate(plan.stages):
                        here = live & (stage == s_idx)
                        if not here.any():
                            continue
                        # Information fraction of each look, as the controller measures it:
                        # treatment exposures so far over the stage's planned maximum. Past
                        # the maximum the last boundary is reused.
                        per_stage_look = np.round(per_look * s.traffic * model.weights
                                                  * model.admitted[s_idx]).sum()
                        frac = np.minimum(1.0, np.arange(1, int(model.looks_max[s_idx]) + 1)
                                          * per_stage_look / float(s.max_exposures or 1.0))
                        frac = np.unique(frac)
                        for mm in np.unique(m[here]):
                            bounds = _boundaries(tuple(frac), alpha / mm,
                                                 plan.error_control.spending)
                            rows = here & (m == mm)
                            k = np.minimum(looks[rows] - 1, bounds.size - 1)
                            fail[rows] = z[rows] > bounds[k][:, None]
                    fail &= active
                    adjusted = np.where(active, np.minimum(1.0, min_p * m[:, None]), 1.0)
                stage_min_adjusted = np.where(live, np.minimum(stage_min_adjusted,
                                                               adjusted.min(axis=1)),
                                              stage_min_adjusted)
                ready_gates = np.all(passed | ~active, axis=1)
            elif policy == "naive_peeking":
                # A fixed-horizon z-test at alpha, re-checked at every look, no correction:
                # what a dashboard with a p-value column invites. Comparisons are two-sided
                # (any significant difference alarms, Kayenta's "either" direction);
                # guardrails one-sided (only exceeding the limit alarms).
                two_sided = np.abs(z_naive) > stats.norm.isf(alpha / 2)
                fail = active & np.where(is_guardrail[None, :], z_naive > stats.norm.isf(alpha),
                                         two_sided)
                ready_gates = np.ones(runs, dtype=bool)
            else:
                fail = np.zeros_like(active)
                ready_gates = np.ones(runs, dtype=bool)
                scored = _kayenta_fail(plan, gated, stage, looks, history_t, history_c) & live
                fail[:, 0] = scored
                active[:, 0] |= scored
            failed_any = np.any(fail & active, axis=1) & live
            failed_critical = np.any(fail & active & critical[None, :], axis=1) & live
            if policy == "kayenta":
                failed_critical = failed_any
            elapsed = looks * interval
            min_exposures = np.array([s.min_exposures for s in plan.stages])[stage]
            min_duration = np.array([s.min_duration for s in plan.stages])[stage]
            stage_exposure = cum["tn"][:, 0].sum(axis=1)  # every metric sees every exposure
            ready = live & ~failed_any & ready_gates & (stage_exposure >= min_exposures) & \
                (elapsed >= min_duration)
            stalled = live & ~failed_any & ~ready & (looks >= model.looks_max[stage])
            status = np.where(failed_critical, 1, status)
            status = np.where(failed_any & ~failed_critical, 2, status)
            status = np.where(stalled, 2, status)
            end_look = np.where(live & (failed_any | stalled), step + 1, end_look)
            if adaptive:
                # Ramp within the stage first: traffic x step, capped at the stage's share.
                ramp = ready & (traffic < planned[stage])
                traffic = np.where(ramp, np.minimum(planned[stage], traffic * step_now), traffic)
                ready &= ~ramp
                close = stage_min_adjusted < plan.adaptive.close_call
                grown = np.where(close,
                                 np.maximum(plan.adaptive.min_step,
                                            step_now * plan.adaptive.shrink),
                                 np.minimum(plan.adaptive.max_step,
                                            step_now * plan.adaptive.grow))
                step_now = np.where(ready, grown, step_now)
            last = stage == n_stages - 1
            done = ready & last
            status = np.where(done, 3, status)
            end_look = np.where(done, step + 1, end_look)
            move = ready & ~last
            stage = np.where(move, stage + 1, stage)
            traffic = np.where(move, np.minimum(planned[stage], traffic * step_now)
                               if adaptive else planned[stage], traffic)
            reached = (status == 0) & (stage == n_stages - 1) & \
                (traffic >= planned[-1]) & np.isnan(full_at)
            full_at = np.where(reached, (step + 1) * interval, full_at)
            if move.any():
                looks[move] = 0
                min_p[move] = 1.0
                stage_min_adjusted[move] = 1.0
                for prefix in ("n", "s", "q"):
                    cum["p" + prefix][move] = cum["t" + prefix][move]
                    cum["t" + prefix][move] = 0.0
                    cum["c" + prefix][move] = 0.0
        if n_stages == 1:
            full_at = np.where(status == 3, 0.0, full_at)
        results[policy + ":status"] = status
        results[policy + ":exposures"] = exposures
        results[policy + ":end_look"] = end_look
        results[policy + ":full_at"] = full_at
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
             executor: str | Executor | None = None, progress: Progress | None = None
             ) -> SimulationResult:
    """Run ``plan`` ``runs`` times on ``scenario`` and summarise every policy.

    Results depend on ``(plan, scenario, runs, seed)`` only: chunks of :data:`CHUNK_RUNS` runs
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
    scenario.check(plan)
    _model(plan, scenario)  # refuse impossible scenarios before any work
    sizes = [CHUNK_RUNS] * (runs // CHUNK_RUNS) + ([runs % CHUNK_RUNS] if runs % CHUNK_RUNS
                                                   else [])
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    chunks = [_Chunk(plan, scenario, size, child)
              for size, child in zip(sizes, children, strict=True)]
    parts = get_executor(executor).map(_run_chunk, chunks, progress=progress)
    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    outcomes = []
    for policy in POLICIES:
        status = merged[policy + ":status"]
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
            mean_time_to_full=float(full[reached].mean()) if reached.any() else None))
    return SimulationResult(plan.name, scenario, runs, seed, plan.alpha, tuple(outcomes))
