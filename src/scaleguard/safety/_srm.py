"""Sample-ratio mismatch: is the observed control/treatment split the planned one?

When the split is broken (a bug in assignment, a bot filter on one arm, a crash that drops
exposures), every gate compares populations that differ by more than the treatment, so none of
their evidence can be trusted; GrowthBook and Statsig hold an experiment on SRM for this reason.

The test is always valid, so it may be checked at every look: the treatment's share of the
stage's exposures is a Bernoulli rate, and its beta-binomial mixture martingale against the
planned share (Robbins 1970) is the two-arm case of the Dirichlet-multinomial sequential test of
Lindon & Malek (2022), "Anytime-valid inference for multinomial count data", which sequential
SRM checks rest on. By Ville's inequality the chance that it ever exceeds ``1/alpha`` under a
correct split is at most ``alpha``. The checks (every metric, overall and per segment) share
``srm.alpha`` by Bonferroni.

What is counted is the randomisation's own unit when the windows say so: with a ``units``
count in every window of a split (the application SDK sends one), the check tests the split
of units first exposed in the stage; otherwise the split of exposures (``n`` for means). Only
the first is right when units are randomised and each sends many requests: a unit's requests
share its arm, so exposures come in clusters of one arm and, over a fixed population, their
split strays from the planned one by more standard errors with every window, until a correct
split is flagged (Kohavi, Tang & Xu 2020, ch. 21; Fabijan et al. 2019 test users for this
reason). Exposures are the right count when each one is assigned on its own (per-request
randomisation, the simulator's model).

Metrics with ``source: prometheus`` are not checked: their counters see every request of each
version, not the experiment's matched arms, so no planned share describes them, and they count
requests, never units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.safety._plan import RolloutPlan
from scaleguard.safety._sequential import beta_binomial_log_mixture
from scaleguard.safety._totals import window_sums

__all__ = ["SRMCheck", "SRMResult", "srm_check", "srm_metrics", "srm_p_values"]


def srm_p_values(treatment: np.ndarray | float, control: np.ndarray | float,
                 share: float) -> np.ndarray:
    """Always-valid p-values of "the treatment's share of exposures is ``share``" (broadcasts).

    >>> float(srm_p_values(100_000, 100_000, 0.5)) > 0.5   # a correct split
    True
    >>> float(srm_p_values(110_000, 100_000, 0.5)) < 1e-9  # treatment got 1.1x its share
    True
    """
    t = np.asarray(treatment, dtype=float)
    n = t + np.asarray(control, dtype=float)
    with np.errstate(over="ignore"):
        return np.minimum(1.0, np.exp(-beta_binomial_log_mixture(t, n, share)))


def srm_metrics(plan: RolloutPlan) -> np.ndarray:
    """Which of the plan's metrics the check covers (``decide`` and the simulator alike): those
    whose windows come from the experiment's own observations."""
    return np.array([m.source == "observations" for m in plan.metrics], dtype=bool)


@dataclass(frozen=True)
class SRMCheck:
    """One split checked: a metric's units (or exposures) in a segment of the stage."""

    metric: str
    segment: str
    treatment: float
    control: float
    expected_share: float
    p_value: float
    counted: str = "exposures"  # or "units": what treatment and control count

    @property
    def observed_share(self) -> float:
        total = self.treatment + self.control
        return self.treatment / total if total else float("nan")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        share = self.observed_share
        out["observed_share"] = share if share == share else None
        return out


@dataclass(frozen=True)
class SRMResult:
    """Every split checked at this look; ``mismatch`` when any is shown off at ``alpha``."""

    alpha: float
    checks: tuple[SRMCheck, ...]

    @property
    def threshold(self) -> float:
        return self.alpha / max(1, len(self.checks))  # Bonferroni over the checks

    @property
    def failing(self) -> list[SRMCheck]:
        return [c for c in self.checks if c.p_value <= self.threshold]

    @property
    def mismatch(self) -> bool:
        return bool(self.failing)

    def reason(self) -> str:
        worst = min(self.failing, key=lambda c: c.p_value)
        total = worst.treatment + worst.control
        return (f"sample ratio mismatch in {worst.metric} ({worst.segment}): treatment share "
                f"{worst.observed_share:.4f} of {total:.0f} {worst.counted}, "
                f"planned {worst.expected_share:g} (always-valid p {worst.p_value:.2g} <= "
                f"{self.threshold:.2g}); a broken split invalidates every gate, so the rollout "
                "holds")

    def as_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "mismatch": self.mismatch,
                "failing": [f"{c.metric}/{c.segment}" for c in self.failing],
                "checks": [c.as_dict() for c in self.checks]}


def srm_check(plan: RolloutPlan, index: int,
              rows: pd.DataFrame | Mapping[str, np.ndarray]) -> SRMResult | None:
    """The split of stage ``index``'s units or exposures, overall and per admitted segment, per
    metric.

    ``rows``: the observations (a table, or its columns as arrays: windows or cell totals). None
    when the plan turns the check off. Cells where one arm has no rows are not checked here:
    that is missing data, which holds on its own. A split is one of units when every window in
    it counted units (``unit_windows`` equals ``windows``; a table of windows: no ``units``
    blank), else one of exposures.
    """
    spec = plan.srm
    if not spec.enabled or not len(rows) or "stage" not in rows:
        return None
    column = {c: np.asarray(rows[c]) for c in ("stage", "arm", "metric", *plan.segments)
              if c in rows}
    # Counts as cell sums: a table of windows is summed per window (each a cell of one), so
    # "every window counted units" has one definition, window_sums', for both inputs.
    sums = rows if "windows" in rows else window_sums(rows)
    column |= {c: np.asarray(sums[c], dtype=float) for c in
               ("exposures", "n", "units", "windows", "unit_windows") if c in sums}
    size = column["stage"].size
    units = column.get("units", np.zeros(size))
    uncounted = column.get("unit_windows", np.zeros(size)) < column.get("windows", np.ones(size))
    in_stage = column["stage"] == plan.stages[index].name
    arms = column["arm"]
    treated, controls = in_stage & (arms == "treatment"), in_stage & (arms == "control")
    checks = []
    covered = {m.name for m, keep in zip(plan.metrics, srm_metrics(plan), strict=True) if keep}
    for metric in plan.stage_metrics(index):
        if metric.name not in covered:
            continue
        mine = column["metric"] == metric.name
        counted = column.get("n" if metric.kind == "mean" else "exposures")
        exposures = np.zeros(mine.size) if counted is None else counted.astype(float)
        for segment in [None, *plan.stage_segments(index)]:
            mask = mine
            if segment is not None:
                if segment[0] not in column:
                    continue
                mask = mine & (column[segment[0]] == segment[1])
            t_rows, c_rows = mask & treated, mask & controls
            if not t_rows.any() or not c_rows.any():
                continue
            split = t_rows | c_rows
            counts, what = (units, "units") if not uncounted[split].any() else \
                (exposures, "exposures")
            t, c = float(counts[t_rows].sum()), float(counts[c_rows].sum())
            label = "overall" if segment is None else f"{segment[0]}={segment[1]}"
            checks.append(SRMCheck(metric.name, label, t, c, spec.treatment_share,
                                   float(srm_p_values(t, c, spec.treatment_share)), what))
    return SRMResult(spec.alpha, tuple(checks))

