"""Human oversight as a capacity: the review load a traffic share brings, against the reviewers.

A rollout that widens from 1% to 100% multiplies the outputs people must review by 100; the
reviewers do not multiply with it. Before each traffic increase the controller (the one in
:mod:`scaleguard.safety._rules`, which ``decide`` and the simulator share) projects

    load (reviews/h) = flag share (upper bound) x exposures/h at full traffic x next traffic

and holds when it exceeds ``reviewers x reviews_per_hour``. The flag share is either fixed by
the plan (``review_share``) or measured: the treatment's rate of the plan's flag metric in the
current stage, taken at the upper end of its always-valid beta-binomial confidence sequence
(the same sequence as the rate guardrails, so peeking at every look keeps its level). Pure:
arrays in, frozen dataclasses out; arrays are ``(runs,)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaleguard.safety._plan import OversightSpec, RolloutPlan
from scaleguard.safety._sequential import beta_binomial_interval

__all__ = ["OversightWall", "ReviewEvidence", "ReviewLoad", "flag_upper_bound",
           "oversight_wall", "review_load"]

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class ReviewEvidence:
    """What one look saw of each run's review load, in the current stage.

    ``flagged``/``flag_exposures``: treatment events and exposures of the plan's flag metric
    (overall); ``exposures``: treatment exposures behind the stage's overall gates (its
    volume); ``elapsed``: seconds in the stage; ``traffic``: its traffic share now.
    """

    flagged: np.ndarray
    flag_exposures: np.ndarray
    exposures: np.ndarray
    elapsed: np.ndarray
    traffic: np.ndarray


@functools.lru_cache(maxsize=4096)
def _upper(flagged: int, exposures: int, confidence: float) -> float:
    if exposures <= 0:
        return 1.0  # nothing seen: every share is possible (fail safe: the load is the volume)
    return beta_binomial_interval(flagged, exposures, 1.0 - confidence)[1]


def flag_upper_bound(flagged: np.ndarray, exposures: np.ndarray, confidence: float,
                     where: np.ndarray | None = None) -> np.ndarray:
    """Upper end of the always-valid confidence sequence of each run's flag rate (nan outside
    ``where``).

    >>> round(float(flag_upper_bound(np.array([0]), np.array([3000]), 0.95)[0]), 5)
    0.00252
    """
    flagged, exposures = np.asarray(flagged, dtype=float), np.asarray(exposures, dtype=float)
    where = np.ones(flagged.shape, dtype=bool) if where is None else where
    out = np.full(flagged.shape, np.nan)
    for i in np.flatnonzero(where):
        out[i] = _upper(int(round(flagged[i])), int(round(exposures[i])), confidence)
    return out


@dataclass(frozen=True)
class ReviewLoad:
    """Projected review load at a traffic share, per run, against the reviewers' capacity."""

    traffic: np.ndarray  # the share projected
    flag_rate: np.ndarray  # observed share of exposures going to review (fixed: review_share)
    flag_upper: np.ndarray  # the share the projection uses (its upper bound)
    exposures_per_hour: np.ndarray  # the new system's exposures per hour at full traffic
    load: np.ndarray  # reviews per hour needed at ``traffic``
    capacity: float  # reviews per hour the reviewers complete
    reviews_per_hour: float  # per reviewer
    reviewers: int

    @property
    def exceeds(self) -> np.ndarray:
        return np.asarray(self.load > self.capacity)

    @property
    def reviewers_needed(self) -> np.ndarray:
        """Reviewers the projected load needs (inf when the load is unbounded)."""
        with np.errstate(invalid="ignore"):
            return np.ceil(self.load / self.reviews_per_hour - 1e-9)

    def at(self, run: int = 0) -> dict[str, Any]:
        """One run's figures, JSON-ready (unbounded values are null)."""
        needed = float(self.reviewers_needed[run])
        return {"traffic": _number(self.traffic[run]), "flag_rate": _number(self.flag_rate[run]),
                "flag_upper": _number(self.flag_upper[run]),
                "exposures_per_hour": _number(self.exposures_per_hour[run]),
                "load_per_hour": _number(self.load[run]), "capacity_per_hour": self.capacity,
                "reviewers": self.reviewers,
                "reviewers_needed": int(needed) if math.isfinite(needed) else None,
                "exceeds": bool(self.exceeds[run])}

    def describe(self, run: int = 0) -> str:
        """The numbers behind an oversight hold, in one clause."""
        f = self.at(run)
        needed = f["reviewers_needed"]
        return (f"projected review load {_fmt(self.load[run])} reviews/h at traffic "
                f"{self.traffic[run]:g} (flag rate upper bound {_fmt(self.flag_upper[run])} x "
                f"{_fmt(self.exposures_per_hour[run])} exposures/h at full traffic) exceeds the "
                f"capacity {self.capacity:g} reviews/h of {self.reviewers} reviewer"
                f"{'s' if self.reviewers != 1 else ''}; it needs "
                f"{needed if needed is not None else 'unboundedly many'} reviewers")


def _number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{float(value):.3g}" if math.isfinite(float(value)) else "unbounded"


def _volume(spec: OversightSpec, evidence: ReviewEvidence) -> np.ndarray:
    """Exposures per hour at full traffic: the plan's figure, or the stage's rate scaled up."""
    if spec.exposures_per_hour is not None:
        return np.full(evidence.exposures.shape, float(spec.exposures_per_hour))
    hours = np.asarray(evidence.elapsed, dtype=float) / SECONDS_PER_HOUR
    traffic = np.asarray(evidence.traffic, dtype=float)
    known = (hours > 0) & (traffic > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # No time seen yet in the stage: the volume is unknown, and unknown never widens.
        return np.where(known, evidence.exposures / np.where(known, hours * traffic, 1.0),
                        np.inf)


def review_load(spec: OversightSpec, evidence: ReviewEvidence, traffic: np.ndarray,
                where: np.ndarray | None = None) -> ReviewLoad:
    """The review load of each run at ``traffic`` (computed where ``where``; nan elsewhere).

    >>> spec = OversightSpec(review_share=0.02, reviewers=2, reviews_per_hour=50,
    ...                      exposures_per_hour=10_000)
    >>> seen = ReviewEvidence(*(np.zeros(1),) * 4, np.array([0.05]))
    >>> load = review_load(spec, seen, np.array([0.5]))
    >>> float(load.load[0]), bool(load.exceeds[0]), int(load.reviewers_needed[0])
    (100.0, False, 2)
    """
    traffic = np.asarray(traffic, dtype=float)
    where = np.ones(traffic.shape, dtype=bool) if where is None else where
    if spec.review_share is not None:
        rate = np.full(traffic.shape, float(spec.review_share))
        upper = rate
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(evidence.flag_exposures > 0,
                            evidence.flagged / np.maximum(evidence.flag_exposures, 1.0), np.nan)
        upper = flag_upper_bound(evidence.flagged, evidence.flag_exposures, spec.confidence,
                                 where)
    volume = _volume(spec, evidence)
    with np.errstate(invalid="ignore"):
        load = np.where(where, upper * volume * traffic, np.nan)
    return ReviewLoad(traffic, rate, upper, volume, load,
                      float(spec.reviewers * spec.reviews_per_hour), float(spec.reviews_per_hour),
                      spec.reviewers)


@dataclass(frozen=True)
class OversightWall:
    """Each stage's projected review load: where the reviewers run out, and how many the whole
    rollout needs (its last stage)."""

    plan: str
    stages: tuple[str, ...]
    traffic: tuple[float, ...]
    load: tuple[float, ...]  # reviews per hour at each stage's traffic
    reviewers_needed: tuple[float, ...]
    capacity: float
    reviewers: int
    flag_upper: float
    exposures_per_hour: float
    first_over: str | None  # the first stage (from the current one) over capacity

    @property
    def full_rollout_reviewers(self) -> float:
        return self.reviewers_needed[-1]

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "capacity_per_hour": self.capacity,
                "reviewers": self.reviewers, "flag_upper": _number(self.flag_upper),
                "exposures_per_hour": _number(self.exposures_per_hour),
                "first_over": self.first_over,
                "full_rollout_reviewers": _count(self.full_rollout_reviewers),
                "stages": [{"stage": s, "traffic": t, "load_per_hour": _number(load),
                            "reviewers_needed": _count(n), "exceeds": load > self.capacity}
                           for s, t, load, n in zip(self.stages, self.traffic, self.load,
                                                    self.reviewers_needed, strict=True)]}


def _count(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def oversight_wall(plan: RolloutPlan, flag_upper: float, exposures_per_hour: float,
                   current: int = 0) -> OversightWall:
    """Project every stage's review load from one look's flag share (its upper bound) and
    volume, as ``decide`` reports them (``Decision.oversight``).

    ``current``: the rollout's stage; the wall is the first stage from there whose load
    exceeds the capacity.

    >>> from scaleguard.safety import parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "guardrail": 0.01}],
    ...                    "stages": [{"name": "pilot", "traffic": 0.01},
    ...                               {"name": "all", "traffic": 1.0}],
    ...                    "oversight": {"review_share": 0.01, "reviewers": 2,
    ...                                  "reviews_per_hour": 50}})
    >>> wall = oversight_wall(plan, 0.01, 100_000)
    >>> wall.first_over, wall.full_rollout_reviewers
    ('all', 20.0)
    """
    assert plan.oversight is not None
    traffic = np.array([s.traffic for s in plan.stages])
    seen = ReviewEvidence(*(np.zeros(traffic.shape),) * 5)
    fixed = plan.oversight.model_copy(update={"review_share": float(flag_upper), "metric": None,
                                              "exposures_per_hour": float(exposures_per_hour)})
    load = review_load(fixed, seen, traffic)
    over = [s.name for i, s in enumerate(plan.stages) if i >= current and load.exceeds[i]]
    return OversightWall(plan.name, tuple(s.name for s in plan.stages), tuple(traffic.tolist()),
                         tuple(load.load.tolist()), tuple(load.reviewers_needed.tolist()),
                         load.capacity, load.reviewers, float(flag_upper),
                         float(exposures_per_hour), over[0] if over else None)
