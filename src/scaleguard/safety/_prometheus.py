"""Prometheus as a rollout's observation source: PromQL templates in, observation windows out.

A plan metric with ``source: prometheus`` gives one PromQL template per column (``exposures``
and ``events`` for rates and quantiles, ``n``, ``mean`` and ``var`` for means). At each look
the service renders every template for each arm and each admitted segment cell of the stage,
asks Prometheus, and turns the answers into observation rows: one window per look.

Counters are cumulative, the controller's rows are not: a look's window runs from where the
stage's previous Prometheus window ended (the stage's start for the first) to the look, and
``$window`` is that span, so ``increase(requests_total[$window])`` evaluated at the look is
what happened in the window. The windows tile the stage without gap or overlap, so their sum,
which the controller reads, is the increase since the stage started. Each window has an id
(``prometheus:<start>-<end>``) and is stored like a posted one: asking again about a stored
window is a duplicate, never a second count (:func:`~scaleguard.safety.screen_observations`).

Everything here is pure except :class:`PrometheusClient` (httpx, imported when used). An
answer that is missing, stale, not a number, ambiguous (several series) or an error is a
problem naming its query: the look stores no window and the rollout holds.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scaleguard.safety._controller import RolloutState
    from scaleguard.safety._plan import RolloutPlan

__all__ = ["MAX_QUERIES_PER_LOOK", "PlannedQuery", "PrometheusClient", "Sample",
           "look_queries", "promql_duration", "promql_string", "refuse_posted_rows",
           "template_problems",
           "template_variables", "window_rows", "window_start"]

QUERY_COLUMNS = {"rate": ("exposures", "events"), "quantile": ("exposures", "events"),
                 "mean": ("n", "mean", "var")}
WINDOW_PREFIX = "prometheus:"
# Queries a look may send: 2 arms x 5 metrics x 50 segment cells x 2 columns. A plan asking
# for more would take a Prometheus server's whole query budget at every look.
MAX_QUERIES_PER_LOOK = 1000
_BUILT_IN = ("arm", "window", "stage")


def template_variables(template: str) -> set[str]:
    """The ``$name`` / ``${name}`` variables of a template; ValueError on a stray ``$``.

    >>> sorted(template_variables('sum(increase(x{v="$arm",r="${region}"}[$window]))'))
    ['arm', 'region', 'window']
    """
    found: set[str] = set()
    for match in string.Template.pattern.finditer(template):
        if match.group("invalid") is not None:
            raise ValueError(f"a '$' at character {match.start() + 1} starts no "
                             "variable (write $$ for a literal $)")
        name = match.group("named") or match.group("braced")
        if name:
            found.add(name)
    return found


def template_problems(plan: RolloutPlan) -> list[tuple[str, str]]:
    """(YAML path, problem) pairs for the Prometheus templates of ``plan``.

    Every template names ``$arm`` and every segment dimension of the plan: a stored window is
    one segment cell of one arm, and a template blind to a dimension would count the same
    traffic in each of its cells.
    """
    problems: list[tuple[str, str]] = []
    allowed = [*_BUILT_IN, *plan.segments]
    for i, metric in enumerate(plan.metrics):
        where = f"metrics[{i}]"
        if metric.source != "prometheus":
            if metric.queries is not None:
                problems.append((f"{where}.queries", f"only source: prometheus metrics take "
                                                     f"queries; {metric.name!r} reads posted "
                                                     "observations"))
            continue
        columns = QUERY_COLUMNS[metric.kind]
        given = metric.queries or {}
        for column in columns:
            if column not in given:
                problems.append((f"{where}.queries", f"a prometheus {metric.kind} metric needs "
                                                     f"a template for {column} (expected "
                                                     f"{', '.join(columns)})"))
        for column, template in given.items():
            place = f"{where}.queries.{column}"
            if column not in columns:
                problems.append((place, f"a {metric.kind} metric has no column {column!r} "
                                        f"(expected {', '.join(columns)})"))
                continue
            try:
                names = template_variables(template)
            except ValueError as exc:
                problems.append((place, str(exc)))
                continue
            unknown = sorted(names - set(allowed))
            if unknown:
                problems.append((place, f"unknown template variable ${unknown[0]}; expected "
                                        f"{', '.join('$' + a for a in allowed)}"))
            needed = [v for v in ("arm", *plan.segments) if v not in names]
            if needed:
                problems.append((place, f"the template must use ${needed[0]}: each window is "
                                        "one arm and one segment cell"))
    arms = plan.prometheus.arms
    if len(arms) == 2 and arms["control"] == arms["treatment"]:
        problems.append(("prometheus.arms", f"control and treatment are both "
                                            f"{arms['control']!r}: each arm needs its own "
                                            "label value"))
    most = max(_query_count(plan, s) for s in range(len(plan.stages)))
    if most > MAX_QUERIES_PER_LOOK:
        problems.append(("metrics", f"the prometheus metrics need {most} queries per look, "
                                    f"more than {MAX_QUERIES_PER_LOOK}: aggregate segments"))
    return problems


def refuse_posted_rows(plan: RolloutPlan, rows: Sequence[Mapping[str, Any]]) -> None:
    """Refuse posted rows of a ``source: prometheus`` metric: the service reads those windows
    from Prometheus, and a posted copy would count the same traffic twice."""
    from scaleguard.errors import InputError

    read = {m.name for m in plan.metrics if m.source == "prometheus"}
    for i, row in enumerate(rows):
        if row.get("metric") in read:
            raise InputError(f"rows: row {i + 1}: metric {row['metric']!r} is read from "
                             "Prometheus (source: prometheus); posting its windows too would "
                             "count the same traffic twice")


def promql_string(value: str) -> str:
    """``value`` escaped for a PromQL double-quoted string (Go escaping of ``\\`` and ``"``).

    >>> promql_string('eu"west')
    'eu\\\\"west'
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_duration(seconds: float) -> str:
    """A PromQL range duration in whole milliseconds, at least 1 ms.

    >>> promql_duration(90.25), promql_duration(0.0)
    ('90250ms', '1ms')
    """
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass(frozen=True)
class PlannedQuery:
    """One rendered PromQL query of a look: which metric, arm, segment cell and column."""

    metric: str
    arm: str
    cell: tuple[tuple[str, str], ...]
    column: str
    promql: str

    @property
    def label(self) -> str:
        segments = "".join(f", {dim}={value}" for dim, value in self.cell)
        return f"metric {self.metric} {self.column}, {self.arm}{segments}"


def _cells(plan: RolloutPlan, stage_index: int) -> list[tuple[tuple[str, str], ...]]:
    """Every admitted combination of segment values at a stage (one cell: one window row)."""
    admitted: dict[str, list[str]] = {}
    for dim, value in plan.stage_segments(stage_index):
        admitted.setdefault(dim, []).append(value)
    dims = list(plan.segments)
    if any(dim not in admitted for dim in dims):
        return []
    return [tuple(zip(dims, values, strict=True))
            for values in itertools.product(*(admitted[d] for d in dims))]


def _query_count(plan: RolloutPlan, stage_index: int) -> int:
    """How many queries a look at the stage sends, counted without rendering them (the
    cross product of segment values can be large)."""
    admitted: dict[str, int] = {}
    for dim, _ in plan.stage_segments(stage_index):
        admitted[dim] = admitted.get(dim, 0) + 1
    cells = math.prod(admitted.get(dim, 0) for dim in plan.segments)
    chosen = plan.stages[stage_index].metrics  # may name unknown metrics: reported elsewhere
    return 2 * cells * sum(len(QUERY_COLUMNS[m.kind]) for m in plan.metrics
                           if m.source == "prometheus" and (chosen is None or m.name in chosen))


def look_queries(plan: RolloutPlan, stage_index: int, start: float, end: float
                 ) -> list[PlannedQuery]:
    """The queries of one look at stage ``stage_index`` over the window ``[start, end]``."""
    stage = plan.stages[stage_index]
    gated = {m.name for m in plan.stage_metrics(stage_index)}
    window = promql_duration(end - start)
    out: list[PlannedQuery] = []
    for metric in plan.metrics:
        if metric.source != "prometheus" or metric.name not in gated or not metric.queries:
            continue
        for arm, cell in itertools.product(("control", "treatment"), _cells(plan, stage_index)):
            values = {"arm": promql_string(plan.prometheus.arm_label(arm)), "window": window,
                      "stage": promql_string(stage.name),
                      **{dim: promql_string(value) for dim, value in cell}}
            for column in QUERY_COLUMNS[metric.kind]:
                template = string.Template(metric.queries[column])
                out.append(PlannedQuery(metric.name, arm, cell, column,
                                        template.substitute(values)))
    return out


@dataclass(frozen=True)
class Sample:
    """Prometheus's answer to one instant query: its value and when it was evaluated."""

    value: float
    timestamp: float


def window_id(start: float, end: float) -> str:
    return f"{WINDOW_PREFIX}{start:.3f}-{end:.3f}"


def window_start(plan: RolloutPlan, state: RolloutState, cells: Sequence[Mapping[str, Any]]
                 ) -> float:
    """Where the next window of the current stage starts: the end of its last Prometheus
    window, else the stage's start.

    ``cells`` are the rollout's cell totals (what a decision reads, not every window): a cell
    of a ``source: prometheus`` metric holds only Prometheus windows (posted rows of such a
    metric are refused), and its ``time`` is the newest window's end.
    """
    stage = plan.stages[state.stage_index].name
    scraped = {m.name for m in plan.metrics if m.source == "prometheus"}
    ends = [float(c["time"]) for c in cells if c.get("stage") == stage
            and c.get("metric") in scraped and c.get("time") is not None]
    return max([state.stage_started, *ends])


def window_rows(plan: RolloutPlan, stage_index: int, queries: Sequence[PlannedQuery],
                answers: Sequence[Sample | str], start: float, end: float
                ) -> tuple[list[dict[str, Any]], list[str]]:
    """Observation rows of the window ``[start, end]`` from the answers to ``queries``.

    An answer is a :class:`Sample` or the text of what went wrong. Any problem (error, no
    series, not finite, negative, evaluated more than ``plan.prometheus.staleness`` before
    ``end``) is returned naming its query, and then no row is: a window missing one arm or
    one cell would compare a partial arm with a whole one.
    """
    from scaleguard.safety._observations import _COUNT_COLUMNS, MAX_COUNT

    problems: list[str] = []
    values: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, float]] = {}
    for query, answer in zip(queries, answers, strict=True):
        problem = answer if isinstance(answer, str) else None
        if isinstance(answer, Sample):
            if not math.isfinite(answer.value):
                problem = f"returned {answer.value} (not a finite number)"
            elif answer.value < 0 and query.column != "mean":
                problem = f"returned {answer.value:g}, below 0 (a counter reset?)"
            elif query.column in _COUNT_COLUMNS and answer.value > MAX_COUNT:
                # What a posted row may not carry either: sums above 2^53 are no longer exact.
                problem = f"returned {answer.value:g}, above the largest count 2^53"
            elif answer.timestamp < end - plan.prometheus.staleness:
                problem = (f"answer evaluated at {answer.timestamp:.3f}, "
                           f"{end - answer.timestamp:.0f} s before the look (staleness bound "
                           f"{plan.prometheus.staleness:g} s): stale")
        if problem is not None:
            problems.append(f"prometheus query {query.promql} ({query.label}): {problem}")
            continue
        assert isinstance(answer, Sample)
        values.setdefault((query.metric, query.arm, query.cell), {})[query.column] = \
            answer.value
    for (metric, arm, cell), columns in values.items():
        if columns.get("events", 0.0) > columns.get("exposures", math.inf):
            events = next(q for q in queries if (q.metric, q.arm, q.cell, q.column) ==
                          (metric, arm, cell, "events"))
            problems.append(f"prometheus query {events.promql} ({events.label}): returned "
                            f"{columns['events']:g} events, more than the "
                            f"{columns['exposures']:g} exposures of its window")
    if problems:
        return [], problems
    stage = plan.stages[stage_index].name
    rows = [{"stage": stage, "arm": arm, "metric": metric, **dict(cell), **columns,
             "time": end, "window": window_id(start, end)}
            for (metric, arm, cell), columns in values.items()]
    return rows, []


class PrometheusClient:
    """Instant queries against a Prometheus HTTP API (``GET /api/v1/query``).

    Parameters
    ----------
    url:
        The server, e.g. ``http://prometheus:9090``.
    timeout:
        Seconds per query; an answer later than this is an error (the rollout holds).
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def query(self, promql: str, at: float) -> Sample | str:
        """The single-series answer to ``promql`` evaluated at ``at``, or what went wrong."""
        import httpx

        try:
            response = self._client.get("/api/v1/query", params={"query": promql,
                                                                  "time": f"{at:.3f}"})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"Prometheus at {self.url} did not answer ({type(exc).__name__}: {exc})"
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            return f"Prometheus answered HTTP {response.status_code}: {error or 'not a success'}"
        data = body.get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar" and isinstance(result, list):
            result = [{"value": result}]
        if not isinstance(result, list) or not result:
            return "no series (missing data: is the counter initialised for every label?)"
        if len(result) > 1:
            return f"{len(result)} series, expected one (aggregate them, e.g. with sum())"
        try:
            stamp, text = result[0]["value"]
            return Sample(float(text), float(stamp))
        except (KeyError, TypeError, ValueError):
            return "an answer that is not [timestamp, value]"

    def query_all(self, queries: Sequence[PlannedQuery], at: float) -> list[Sample | str]:
        return [self.query(q.promql, at) for q in queries]

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"PrometheusClient({self.url!r})"
