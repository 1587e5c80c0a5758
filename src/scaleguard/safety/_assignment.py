"""Sticky traffic assignment: a unit's bucket, and the arm a rollout's state gives it.

What ``GET /api/v1/rollouts/{id}/assignment`` answers is an :class:`Assignment`; an
application's :class:`~scaleguard.safety.RolloutClient` keeps the latest one and assigns units
from it without a request. Everything here is pure and needs only the standard library, so
that the client side imports neither pandas nor FastAPI.

The hash is the feature-flag SDKs' (LaunchDarkly, GrowthBook, Unleash): a unit's bucket is
``blake2b(f"{salt}:{unit_id}".encode(), digest_size=8)`` read as a big-endian unsigned
integer, modulo :data:`BUCKETS`. It is the same in every process, Python version and language
(never Python's randomised ``hash()``). Bands of buckets, not random draws, make it sticky:

- **treatment**: buckets ``[0, T)`` with ``T = round(traffic x 10,000)``; a unit in treatment at
  1% is in treatment at 10% and at 100%;
- **observed control**: buckets ``[10,000 - C, 10,000)`` at the top, with
  ``C = T x (1 - s) / s`` for the plan's planned treatment share ``s`` of observed exposures
  (``srm.treatment_share``; 0.5: a control arm as large as the treatment), capped by the
  buckets left above ``T``. When the cap binds (traffic above ``s``), only the treatment buckets
  ``[0, C x s / (1 - s))`` are observed, so that the observed split stays the planned one and
  the sample-ratio check holds for the right reason. At 100% no control is left: treatment is
  observed alone (guardrails and ``compare_to: previous_stage`` comparisons need nothing more);
- every other unit is served control and not observed: it is outside the experiment, as is a
  unit whose segments are not admitted at the stage, or that lacks a segment of the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from scaleguard.errors import InputError

__all__ = ["BUCKETS", "SERVING", "Arm", "Assignment", "MetricInfo", "MetricKind",
           "unit_bucket"]

BUCKETS = 10_000  # 0.01% of traffic a bucket, as LaunchDarkly's and GrowthBook's SDKs
# Statuses under which the treatment is served at the state's traffic; any other (held,
# rolled_back, unknown) serves everyone control: fail safe.
SERVING = frozenset({"live", "paused", "complete"})
_STATUSES = frozenset({*SERVING, "held", "rolled_back"})

Arm = Literal["treatment", "control"]
MetricKind = Literal["rate", "mean", "quantile"]


def unit_bucket(salt: str, unit_id: object) -> int:
    """The unit's bucket in ``[0, 10,000)``: the same in every process and language.

    >>> unit_bucket("s3cr3t-salt", "user-42")
    3608
    >>> unit_bucket("s3cr3t-salt", "user-42") == unit_bucket("s3cr3t-salt", "user-42")
    True
    """
    digest = hashlib.blake2b(f"{salt}:{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class MetricInfo:
    """What a client needs of a plan metric to aggregate ``record()`` calls into windows."""

    name: str
    kind: MetricKind
    guardrail: float | None = None  # a quantile metric's event: a value above it
    source: str = "observations"  # "prometheus": the service reads it; record() refuses it


@dataclass(frozen=True)
class Assignment:
    """A rollout's state as the service gives it to applications (the assignment endpoint).

    ``status``: ``live`` (treatment served at ``traffic``), ``paused`` (the last decision held
    while waiting for data, time or an approval: served at ``traffic``, not widened), ``held``
    (the last decision held on evidence a person must look at: a failing non-critical gate, a
    sample-ratio mismatch; everyone control), ``rolled_back`` (everyone control) or
    ``complete``. ``admitted``: the stage's segment admission (dimension -> admitted values;
    dimensions not named admit every value of the plan). ``version`` counts the decisions.
    """

    rollout_id: str
    status: str
    stage: str
    stage_index: int
    traffic: float
    salt: str
    segments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    admitted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metrics: tuple[MetricInfo, ...] = ()
    treatment_share: float = 0.5
    ttl_s: float = 5.0
    version: int = 0

    # Derived in __post_init__ so that assign() does one hash and a few comparisons.
    _treated: int = field(init=False, repr=False, compare=False, default=0)
    _observed: int = field(init=False, repr=False, compare=False, default=0)
    _control_from: int = field(init=False, repr=False, compare=False, default=BUCKETS)
    _values: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False,
                                               default_factory=dict)
    _by_name: dict[str, MetricInfo] = field(init=False, repr=False, compare=False,
                                            default_factory=dict)

    def __post_init__(self) -> None:
        share = self.treatment_share
        treated = round(min(1.0, max(0.0, self.traffic)) * BUCKETS) \
            if self.status in SERVING else 0
        needed = round(treated * (1 - share) / share)  # control buckets for the planned split
        control = min(needed, BUCKETS - treated)
        observed = treated if control in (0, needed) else int(control * share / (1 - share))
        # A unit is in the experiment when each of its plan segments is a value the plan knows
        # and the stage admits: the intersection of both lists.
        values = {d: frozenset(v).intersection(self.admitted.get(d, v))
                  for d, v in self.segments.items()}
        for name, value in (("_treated", treated), ("_observed", observed),
                            ("_control_from", BUCKETS - control), ("_values", values),
                            ("_by_name", {m.name: m for m in self.metrics})):
            object.__setattr__(self, name, value)

    @property
    def serving(self) -> bool:
        """Whether any unit is in treatment now."""
        return self._treated > 0

    def in_experiment(self, segments: Mapping[str, Any]) -> bool:
        """Whether a unit with these segments may be in either arm at this stage."""
        for dim, allowed in self._values.items():
            value = segments.get(dim)
            if value is None or str(value) not in allowed:
                return False
        return True

    def arm(self, bucket: int, segments: Mapping[str, Any]) -> Arm:
        """The arm a unit in ``bucket`` with ``segments`` is served."""
        if bucket < self._treated and self.in_experiment(segments):
            return "treatment"
        return "control"

    def observed_arm(self, bucket: int, segments: Mapping[str, Any]) -> Arm | None:
        """The arm a unit's observations count for, or None: outside the experiment."""
        if not self.in_experiment(segments):
            return None
        if bucket < self._observed:
            return "treatment"
        if bucket >= max(self._control_from, self._treated):
            return "control"
        return None

    def metric(self, name: str) -> MetricInfo:
        info = self._by_name.get(name)
        if info is None:
            known = ", ".join(m.name for m in self.metrics)
            raise InputError(f"metric: {name!r} is not a metric of rollout "
                             f"{self.rollout_id!r} ({known})")
        return info

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["segments"] = {d: list(v) for d, v in self.segments.items()}
        out["admitted"] = {d: list(v) for d, v in self.admitted.items()}
        out["buckets"] = BUCKETS
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "assignment") -> Assignment:
        """Read the endpoint's JSON; a malformed answer is an :class:`InputError` naming it."""
        try:
            if int(data.get("buckets", BUCKETS)) != BUCKETS:
                raise InputError(f"{source}: buckets: this client hashes into {BUCKETS}")
            status = str(data["status"])
            if status not in _STATUSES:
                status = "unknown"  # a status this client does not know serves control
            traffic = float(data["traffic"])
            share = float(data.get("treatment_share", 0.5))
            ttl = float(data.get("ttl_s", 5.0))
            if not (0.0 <= traffic <= 1.0 and 0.0 < share < 1.0 and 0.0 < ttl <= 3600.0):
                raise ValueError("traffic, treatment_share or ttl_s out of range")
            return cls(
                rollout_id=str(data["rollout_id"]), status=status, stage=str(data["stage"]),
                stage_index=int(data["stage_index"]), traffic=traffic, salt=str(data["salt"]),
                segments={str(d): tuple(str(x) for x in v)
                          for d, v in dict(data.get("segments") or {}).items()},
                admitted={str(d): tuple(str(x) for x in v)
                          for d, v in dict(data.get("admitted") or {}).items()},
                metrics=tuple(MetricInfo(str(m["name"]), _kind(m["kind"]),
                                         None if m.get("guardrail") is None
                                         else float(m["guardrail"]),
                                         str(m.get("source", "observations")))
                              for m in data.get("metrics") or ()),
                treatment_share=share, ttl_s=ttl, version=int(data.get("version", 0)))
        except InputError:
            raise
        except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a rollout assignment ({type(exc).__name__}: "
                             f"{exc})") from None


def _kind(value: Any) -> MetricKind:
    if value not in ("rate", "mean", "quantile"):
        raise ValueError(f"unknown metric kind {value!r}")
    return value
