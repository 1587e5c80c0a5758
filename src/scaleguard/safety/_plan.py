"""The rollout plan: stages, metrics, segments and error control, validated from YAML.

A plan is data, so it is checked once on the way in and every problem is reported with its
place in the file (``plan.yaml: stages[2].traffic: ...``). The pydantic models here also give
the plan's JSON schema, for editors and for the HTTP service.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from scaleguard.errors import ConfigError, ScaleguardError
from scaleguard.io import read_yaml, validate_config
from scaleguard.safety._multiplicity import Correction
from scaleguard.safety._spending import SpendingName
from scaleguard.units import parse_quantity

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MAX_DATA_AGE",
    "AdaptiveSpec",
    "AssignmentSpec",
    "DataSpec",
    "ErrorControl",
    "DEFAULT_LOOK_INTERVAL",
    "MetricSpec",
    "OversightSpec",
    "PrometheusSpec",
    "RolloutPlan",
    "SRMSpec",
    "SimulationSpec",
    "StageSpec",
    "WebhookSpec",
    "load_plan",
    "parse_plan",
    "plan_schema",
]

DEFAULT_ALPHA = 0.05  # the conventional 5% false-rollback budget for the whole rollout
DEFAULT_MAX_DATA_AGE = 7200.0  # s; observations older than two hours count as late (fail-safe)
DEFAULT_LOOK_INTERVAL = 60.0  # s; Flagger's default analysis interval (1m)
# A Prometheus answer evaluated this long before the look is stale: twice Prometheus's default
# 1m scrape interval, so one missed scrape is tolerated and a frozen or cached answer is not.
DEFAULT_PROMETHEUS_STALENESS = 120.0


def _quantity(dimension: str) -> BeforeValidator:
    """Accept ``'2h'`` or ``'10k'`` as well as plain numbers (SI) in a plan field."""

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_quantity(value, dimension)
            except ScaleguardError as exc:
                raise ValueError(str(exc).removeprefix("value: ")) from None
        return value

    return BeforeValidator(parse)


Duration = Annotated[float, _quantity("duration"), Field(ge=0, description="seconds, or '2h'")]
Count = Annotated[float, _quantity("count"), Field(ge=0, description="a count, or '10k'")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(_Model):
    """A safety or quality metric checked at every stage.

    ``rate`` metrics count ``events`` among ``exposures``; ``mean`` metrics give ``n``, ``mean``
    and ``var``; ``quantile`` metrics count the exposures whose value exceeded ``guardrail``, so
    that "the q-quantile stays below the guardrail" becomes "the exceedance rate stays below
    1 - q".
    """

    name: str = Field(min_length=1)
    kind: Literal["rate", "mean", "quantile"] = "rate"
    direction: Literal["lower_is_better", "higher_is_better"] = "lower_is_better"
    guardrail: float | None = Field(None, allow_inf_nan=False,
                                    description="absolute limit on the treatment's value: the "
                                                "guardrail gate passes when the upper confidence "
                                                "bound of the treatment's value is below it and "
                                                "fails when the lower bound is above it")
    quantile: float | None = Field(None, gt=0, lt=1, description="q of a quantile metric")
    margin: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="non-inferiority margin, absolute, in the metric's units: how much worse "
                    "than the comparator is acceptable. With theta = treatment - comparator in "
                    "the harm direction, the comparison gate passes when the upper confidence "
                    "bound of theta is below the margin and fails when the lower bound is above "
                    "it (shown worse than the margin); otherwise it continues")
    strict: bool = Field(False, description="comparison fails as soon as the treatment is shown "
                                            "worse at all (lower bound of theta above 0), not "
                                            "only worse than the margin: for critical safety "
                                            "metrics")
    compare_to: Literal["control", "previous_stage"] = "control"
    critical: bool = Field(True, description="a failing critical metric rolls back; "
                                             "others hold")
    mixture_sd: float | None = Field(None, gt=0, allow_inf_nan=False,
                                     description="sd of the mSPRT normal mixture (default: the "
                                                 "margin)")
    baseline: float | None = Field(None, allow_inf_nan=False,
                                   description="expected control value (simulator)")
    sd: float | None = Field(None, gt=0, allow_inf_nan=False,
                             description="per-exposure sd of a mean (simulator)")
    source: Literal["observations", "prometheus"] = Field(
        "observations", description="where the service gets this metric's windows: posted "
                                    "observation rows, or PromQL queries at each look")
    queries: dict[str, str] | None = Field(
        None, description="PromQL templates of a prometheus metric, one per column: exposures "
                          "and events (rate, quantile) or n, mean and var (mean). Variables: "
                          "$arm, $window, $stage and one per segment dimension, e.g. "
                          "sum(increase(requests_total{version=\"$arm\",region=\"$region\"}"
                          "[$window]))")


class StageSpec(_Model):
    """One step of the rollout: who gets the new system, and for how long at least and at most."""

    name: str = Field(min_length=1)
    traffic: float = Field(gt=0, le=1, description="share of traffic on the new system")
    cohort: str | None = Field(None, description="who is admitted, e.g. 'internal users'")
    segments: dict[str, list[str]] | None = Field(
        None, description="segment values admitted at this stage; absent: all")
    metrics: list[str] | None = Field(None, description="metrics gated here; absent: all")
    min_exposures: Count = 0.0
    max_exposures: Count | None = Field(None, description="planned maximum (group-sequential "
                                                          "information fraction)")
    min_duration: Duration = 0.0
    max_duration: Duration | None = None
    manual_approval: bool = False


class ErrorControl(_Model):
    """How false rollbacks are kept below ``alpha`` across looks, metrics and segments."""

    method: Literal["msprt", "group_sequential"] = "msprt"
    correction: Correction = "holm"
    spending: SpendingName = "obrien_fleming"


class DataSpec(_Model):
    """When observations count as late: fail-safe, late data never advance a rollout."""

    max_age: Duration = DEFAULT_MAX_DATA_AGE


SRM_ALPHA = 0.001  # GrowthBook's default SRM threshold (p < 0.001): a broken split is rare


class SRMSpec(_Model):
    """The sample-ratio check: the treatment's planned share of each stage's observed units
    (exposures when the windows do not count units); metrics read from Prometheus are not
    checked (their counters see every request of each version, not matched arms)."""

    enabled: bool = True
    treatment_share: float = Field(default=0.5, gt=0, lt=1,
                                   description="planned share of a stage's observed units "
                                               "(or exposures, when windows carry no `units` "
                                               "count) on the treatment arm (0.5: a control "
                                               "arm as large as the treatment)")
    alpha: float = Field(default=SRM_ALPHA, gt=0, lt=1, description="false-alarm budget of the "
                         "always-valid SRM test, shared by its checks (Bonferroni)")


class AdaptiveSpec(_Model):
    """Traffic steps that grow after clean stages and shrink after close calls."""

    enabled: bool = False
    initial_step: float = Field(default=2.0, gt=1, description="traffic multiplier per advance")
    grow: float = Field(default=2.0, ge=1)
    shrink: float = Field(default=0.5, gt=0, le=1)
    min_step: float = Field(default=1.25, gt=1)
    max_step: float = Field(default=10.0, gt=1)
    close_call: float = Field(default=0.2, gt=0, lt=1,
                              description="a stage whose smallest adjusted p-value fell below "
                                          "this was a close call")


class SimulationSpec(_Model):
    """Traffic model for ``rollout simulate``: exposures per look at full traffic, look cadence."""

    exposures_per_look: Count = 100_000.0
    look_interval: Annotated[Duration, Field(gt=0)] = 3600.0  # 0 never advances the clock
    segment_weights: dict[str, dict[str, float]] | None = None


DEFAULT_CLIENT_TTL = 5.0  # s; LaunchDarkly's and Unleash's SDKs poll flag state every few seconds


class AssignmentSpec(_Model):
    """How applications assign units to arms (``RolloutClient.assign``): the sticky hash's salt.

    A unit's bucket is ``blake2b(f"{salt}:{unit_id}", digest_size=8)`` read as a big-endian
    integer, modulo 10,000; it is in treatment while its bucket is below ``traffic`` x 10,000.
    """

    salt: str | None = Field(default=None, min_length=8, max_length=128,
                             pattern=r"^[A-Za-z0-9._:-]+$",
                             description="the salt of the sticky hash; absent: the service "
                                         "draws a random one when it creates the rollout and "
                                         "keeps it in the stored plan. Reuse a salt only to "
                                         "expose the same units again")
    ttl: Annotated[Duration, Field(gt=0, le=3600,
                                   description="how long a client serves its cached rollout "
                                               "state before it refreshes it (in the "
                                               "background)")] = DEFAULT_CLIENT_TTL


OVERSIGHT_CONFIDENCE = 0.95  # the usual one-sided level of a rate's upper bound


class OversightSpec(_Model):
    """Human review as a capacity that must keep pace with the rollout.

    Review load (reviews per hour) = the share of the new system's exposures that goes to a
    person x its exposures per hour at full traffic x the traffic share. The share is either
    fixed (``review_share``: e.g. 2% sampled for review) or measured (``metric``: a rate metric
    whose events are the outputs flagged for review, taken at the upper end of its always-valid
    confidence sequence). Capacity = ``reviewers`` x ``reviews_per_hour``. Before every traffic
    increase the controller projects the load at the new share and holds ("oversight capacity")
    when it exceeds the capacity.
    """

    review_share: float | None = Field(
        None, gt=0, le=1, allow_inf_nan=False,
        description="fixed share of the new system's exposures routed to human review")
    metric: str | None = Field(
        None, min_length=1,
        description="a rate metric of the plan whose events are the outputs flagged for "
                    "review; its observed treatment rate in the current stage is bounded "
                    "above (always-valid beta-binomial confidence sequence at confidence)")
    reviewers: int = Field(ge=0, description="people reviewing flagged outputs")
    reviews_per_hour: float = Field(gt=0, allow_inf_nan=False,
                                    description="reviews one reviewer completes per hour")
    exposures_per_hour: Annotated[Count, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None,
        description="the new system's exposures per hour at full traffic (1.0); absent: "
                    "estimated at each look as the stage's treatment exposures per hour "
                    "divided by its traffic share")
    confidence: float = Field(OVERSIGHT_CONFIDENCE, gt=0, lt=1,
                              description="level of the flag rate's upper bound")


class PrometheusSpec(_Model):
    """How the service reads ``source: prometheus`` metrics from the Prometheus HTTP API."""

    arms: dict[Literal["control", "treatment"], str] = Field(
        default_factory=dict, description="the label value each arm has in Prometheus "
                                          "(what $arm becomes), e.g. {control: v1, treatment: "
                                          "v2}; absent: the arm's own name")
    staleness: Annotated[Duration, Field(
        gt=0, description="an answer evaluated longer than this before the look is stale "
                          "and holds")] = DEFAULT_PROMETHEUS_STALENESS

    def arm_label(self, arm: str) -> str:
        return self.arms.get(arm, arm)  # type: ignore[call-overload]


class WebhookSpec(_Model):
    """Where the service posts each decision of this rollout (besides ``serve --webhook``)."""

    url: str = Field(pattern=r"^https?://\S+$", max_length=2000,
                     description="http(s) URL receiving a POST per decision")
    format: Literal["json", "slack"] = Field(
        "json", description="json: the decision record; slack: {\"text\": ...} for a Slack "
                            "(or Mattermost, Teams workflow) incoming webhook")


class RolloutPlan(_Model):
    """A staged rollout plan (see ``scaleguard rollout schema`` for the JSON schema)."""

    name: str = Field(min_length=1)
    alpha: float = Field(DEFAULT_ALPHA, description="false-rollback budget, in (0, 1)")
    error_control: ErrorControl = Field(default_factory=ErrorControl)
    metrics: list[MetricSpec] = Field(min_length=1)
    segments: dict[str, list[str]] = Field(default_factory=dict,
                                           description="segment values checked separately")
    stages: list[StageSpec] = Field(min_length=1)
    data: DataSpec = Field(default_factory=DataSpec)
    assignment: AssignmentSpec = Field(default_factory=AssignmentSpec)
    srm: SRMSpec = Field(default_factory=SRMSpec)
    adaptive: AdaptiveSpec = Field(default_factory=AdaptiveSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    oversight: OversightSpec | None = Field(
        None, description="human review capacity: hold before a traffic increase whose "
                          "projected review load exceeds it")
    look_interval: Annotated[Duration, Field(gt=0)] = Field(
        DEFAULT_LOOK_INTERVAL, description="how often the service decides a running rollout "
                                           "even when no observation arrives (seconds, or "
                                           "'1m'; sub-second values for tests)")
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=20)

    def metric(self, name: str) -> MetricSpec:
        return next(m for m in self.metrics if m.name == name)

    def stage_metrics(self, index: int) -> list[MetricSpec]:
        chosen = self.stages[index].metrics
        return list(self.metrics) if chosen is None else [self.metric(n) for n in chosen]

    def stage_segments(self, index: int) -> list[tuple[str, str]]:
        """(dimension, value) pairs checked at a stage: the plan's, less those not admitted."""
        admitted = self.stages[index].segments or {}
        return [(dim, value) for dim, values in self.segments.items() for value in values
                if dim not in admitted or value in admitted[dim]]

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _check(plan: RolloutPlan) -> list[tuple[str, str]]:
    """Cross-field rules pydantic cannot state per field: (YAML path, problem) pairs."""
    problems: list[tuple[str, str]] = []
    if not 0.0 < plan.alpha < 1.0:
        problems.append(("alpha", f"expected a number in (0, 1), got {plan.alpha}"))
    names = [m.name for m in plan.metrics]
    for i, metric in enumerate(plan.metrics):
        where = f"metrics[{i}]"
        if metric.name in names[:i]:
            problems.append((f"{where}.name", f"duplicate metric name {metric.name!r}"))
        if metric.guardrail is None and metric.margin is None:
            problems.append((where, f"metric {metric.name!r} needs a guardrail, a margin or "
                                    "both"))
        if metric.strict and metric.margin is None:
            problems.append((f"{where}.strict", f"strict applies to the comparison gate; "
                                                f"metric {metric.name!r} has no margin"))
        if metric.kind == "quantile" and (metric.quantile is None or metric.guardrail is None):
            problems.append((where, f"quantile metric {metric.name!r} needs quantile (q) and "
                                    "guardrail (the limit on the q-quantile)"))
        if metric.kind != "quantile" and metric.quantile is not None:
            problems.append((f"{where}.quantile", f"only quantile metrics take a quantile, "
                                                  f"{metric.name!r} is a {metric.kind}"))
        if metric.kind == "rate":
            for field in ("guardrail", "baseline"):
                value = getattr(metric, field)
                if value is not None and not 0.0 <= value <= 1.0:
                    problems.append((f"{where}.{field}", f"a rate is in [0, 1], got {value}"))
    for dim, values in plan.segments.items():
        if len(set(values)) != len(values):
            problems.append((f"segments.{dim}", "duplicate segment values"))
    stage_names: list[str] = []
    for i, stage in enumerate(plan.stages):
        where = f"stages[{i}]"
        if stage.name in stage_names:
            problems.append((f"{where}.name", f"duplicate stage name {stage.name!r}"))
        stage_names.append(stage.name)
        if i and stage.traffic < plan.stages[i - 1].traffic:
            problems.append((f"{where}.traffic", f"traffic {stage.traffic} is below the previous "
                                                 f"stage's {plan.stages[i - 1].traffic}; "
                                                 "traffic shares must not decrease"))
        for j, name in enumerate(stage.metrics or []):
            if name not in names:
                problems.append((f"{where}.metrics[{j}]", f"unknown metric {name!r}; the plan's "
                                                          f"metrics are {', '.join(names)}"))
        for dim, values in (stage.segments or {}).items():
            if dim not in plan.segments:
                problems.append((f"{where}.segments.{dim}", f"unknown segment dimension {dim!r}"))
                continue
            for j, value in enumerate(values):
                if value not in plan.segments[dim]:
                    problems.append((f"{where}.segments.{dim}[{j}]",
                                     f"unknown {dim} {value!r}; expected one of "
                                     f"{', '.join(plan.segments[dim])}"))
        if stage.max_duration is not None and stage.max_duration < stage.min_duration:
            problems.append((f"{where}.max_duration", "is below min_duration"))
        if (stage.max_exposures is not None and stage.max_exposures < stage.min_exposures) or \
                stage.max_exposures == 0:
            problems.append((f"{where}.max_exposures", "must be positive and >= min_exposures"))
        if plan.error_control.method == "group_sequential" and stage.max_exposures is None:
            problems.append((f"{where}.max_exposures", "group_sequential error control needs "
                                                       "each stage's planned maximum exposures"))
        gated = [m for m in plan.metrics if stage.metrics is None or m.name in stage.metrics]
        if i == 0 and any(m.compare_to == "previous_stage" for m in gated):
            problems.append((f"{where}.metrics", "the first stage has no previous stage to "
                                                 "compare with"))
    problems += _check_oversight(plan, names)
    if plan.adaptive.min_step > plan.adaptive.max_step:
        problems.append(("adaptive.min_step", "is above max_step"))
    from scaleguard.safety._prometheus import template_problems

    problems.extend(template_problems(plan))
    return problems


def _check_oversight(plan: RolloutPlan, names: list[str]) -> list[tuple[str, str]]:
    spec = plan.oversight
    if spec is None:
        return []
    if (spec.review_share is None) == (spec.metric is None):
        return [("oversight", "give exactly one of review_share (a fixed share of exposures "
                              "reviewed) or metric (a rate metric counting flagged outputs)")]
    if spec.metric is not None:
        if spec.metric not in names:
            return [("oversight.metric", f"unknown metric {spec.metric!r}; the plan's metrics "
                                         f"are {', '.join(names)}")]
        if plan.metric(spec.metric).kind != "rate":
            return [("oversight.metric", f"metric {spec.metric!r} is a "
                                         f"{plan.metric(spec.metric).kind}; flagged outputs "
                                         "are counted by a rate metric")]
    return []


def parse_plan(data: Mapping[str, Any], source: str = "plan") -> RolloutPlan:
    """Validate a plan given as a mapping; ``source`` names it in messages.

    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "guardrail": 0.01}],
    ...                    "stages": [{"name": "pilot", "traffic": 0.01}]})
    >>> plan.stages[0].traffic, plan.error_control.correction
    (0.01, 'holm')
    >>> parse_plan({"name": "p", "alpha": 2, "metrics": [{"name": "harm", "guardrail": 0.01}],
    ...             "stages": [{"name": "pilot", "traffic": 0.01}]}, "plan.yaml")
    Traceback (most recent call last):
    ...
    scaleguard.errors.ConfigError: plan.yaml: alpha: expected a number in (0, 1), got 2.0
    """
    plan = validate_config(RolloutPlan, dict(data) if isinstance(data, Mapping) else data,
                           source)
    problems = _check(plan)
    if problems:
        path, problem = problems[0]
        tail = f" ({len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" \
            if len(problems) > 1 else ""
        raise ConfigError(f"{source}: {path}: {problem}{tail}")
    return plan


def load_plan(path: str | Path) -> RolloutPlan:
    """Read and validate a rollout plan from a YAML (or JSON) file."""
    return parse_plan(read_yaml(path, "plan"), str(path))


def plan_schema() -> dict[str, Any]:
    """The JSON schema of a rollout plan (from the pydantic models).

    >>> sorted(plan_schema()["required"])
    ['metrics', 'name', 'stages']
    """
    schema = RolloutPlan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


