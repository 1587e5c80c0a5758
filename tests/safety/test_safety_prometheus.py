"""Prometheus as an observation source: templates validated at plan creation, rendered per arm
and segment cell, answers turned into windows, and every bad answer a hold naming its query."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError
from scaleguard.safety import (
    PrometheusClient,
    check_observations,
    look_queries,
    parse_plan,
    window_rows,
)
from scaleguard.safety._prometheus import (
    MAX_QUERIES_PER_LOOK,
    Sample,
    template_variables,
    window_start,
)

EXPOSURES = 'sum(increase(requests_total{version="$arm",region="$region"}[$window]))'
EVENTS = 'sum(increase(harmful_total{version="$arm",region="$region"}[$window]))'
PLAN = {
    "name": "prom",
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.01, "source": "prometheus",
                 "queries": {"exposures": EXPOSURES, "events": EVENTS}}],
    "segments": {"region": ["us", "eu"]},
    "prometheus": {"arms": {"control": "v1", "treatment": "v2"}, "staleness": 30},
    "stages": [{"name": "pilot", "traffic": 0.01, "segments": {"region": ["us"]}},
               {"name": "all", "traffic": 1.0}],
}


def _plan(**metric: Any) -> dict[str, Any]:
    return {**PLAN, "metrics": [{**PLAN["metrics"][0], **metric}]}


def test_templates_are_rendered_per_arm_and_admitted_segment_cell():
    plan = parse_plan(PLAN)
    pilot = look_queries(plan, 0, 100.0, 190.5)
    assert [(q.arm, q.cell, q.column) for q in pilot] == [
        ("control", (("region", "us"),), "exposures"), ("control", (("region", "us"),), "events"),
        ("treatment", (("region", "us"),), "exposures"),
        ("treatment", (("region", "us"),), "events")]
    assert pilot[2].promql == \
        'sum(increase(requests_total{version="v2",region="us"}[90500ms]))'
    assert len(look_queries(plan, 1, 0.0, 1.0)) == 8  # both regions once the stage admits them


def test_label_values_are_escaped_in_promql_strings():
    plan = parse_plan({**PLAN, "segments": {"region": ['e"u\\']}, "stages": [
        {"name": "all", "traffic": 1.0}]})
    (query, *_) = look_queries(plan, 0, 0.0, 1.0)
    assert 'region="e\\"u\\\\"' in query.promql


def test_template_variables_and_stray_dollars():
    assert template_variables("rate(x[$window]) * ${arm}") == {"window", "arm"}
    assert template_variables("x $$ y") == set()
    with pytest.raises(ValueError, match="character 3"):
        template_variables("x $ y")


@pytest.mark.parametrize(("change", "message"), [
    (_plan(queries={"exposures": EXPOSURES, "events": EVENTS.replace("$region", "$regoin")}),
     "plan: metrics[0].queries.events: unknown template variable $regoin; expected $arm, "
     "$window, $stage, $region"),
    (_plan(queries={"exposures": EXPOSURES, "events": 'sum(harmful_total{region="$region"})'}),
     "plan: metrics[0].queries.events: the template must use $arm"),
    (_plan(queries={"exposures": EXPOSURES.replace("$region", "eu"), "events": EVENTS}),
     "plan: metrics[0].queries.exposures: the template must use $region"),
    (_plan(queries={"exposures": EXPOSURES}),
     "plan: metrics[0].queries: a prometheus rate metric needs a template for events"),
    (_plan(queries={"exposures": EXPOSURES, "events": EVENTS, "n": EVENTS}),
     "plan: metrics[0].queries.n: a rate metric has no column 'n'"),
    (_plan(source="observations"),
     "plan: metrics[0].queries: only source: prometheus metrics take queries"),
    (_plan(queries={"exposures": EXPOSURES, "events": "sum(x) $ 2 $arm $region"}),
     "plan: metrics[0].queries.events: a '$' at character 8 starts no variable"),
    ({**PLAN, "prometheus": {"arms": {"canary": "v2"}}}, "plan: prometheus.arms.canary"),
    ({**PLAN, "segments": {"region": [f"r{i}" for i in range(MAX_QUERIES_PER_LOOK)]},
      "stages": [{"name": "all", "traffic": 1.0}]},
     "plan: metrics: the prometheus metrics need 4000 queries per look"),
])
def test_bad_templates_are_refused_naming_the_field(change, message):
    with pytest.raises(ConfigError) as info:
        parse_plan(change)
    assert str(info.value).startswith(message), str(info.value)


def _answers(plan: Any, values: dict[str, float], at: float) -> list[Sample | str]:
    return [Sample(values[q.column] * (2 if q.arm == "treatment" else 1), at)
            for q in look_queries(plan, 0, 0.0, at)]


def test_answers_become_one_window_per_arm_and_cell():
    plan = parse_plan(PLAN)
    queries = look_queries(plan, 0, 100.0, 160.0)
    rows, problems = window_rows(plan, 0, queries, _answers(plan, {"exposures": 1000.0,
                                                                   "events": 7.0}, 160.0),
                                 100.0, 160.0)
    assert problems == []
    assert rows == [
        {"stage": "pilot", "arm": arm, "metric": "harm", "region": "us", "exposures": n,
         "events": k, "time": 160.0, "window": "prometheus:100.000-160.000"}
        for arm, n, k in (("control", 1000.0, 7.0), ("treatment", 2000.0, 14.0))]
    checked = check_observations(pd.DataFrame(rows), plan)  # what the controller will read
    assert len(checked) == 2


@pytest.mark.parametrize(("broken", "problem"), [
    ("Prometheus at http://p did not answer (ConnectError: refused)", "did not answer"),
    (Sample(math.nan, 160.0), "returned nan (not a finite number)"),
    (Sample(-3.0, 160.0), "returned -3, below 0"),
    (Sample(5.0, 100.0), "60 s before the look (staleness bound 30 s): stale"),
    ("no series (missing data: is the counter initialised for every label?)", "no series"),
])
def test_any_bad_answer_stores_no_window_and_names_its_query(broken, problem):
    plan = parse_plan(PLAN)
    queries = look_queries(plan, 0, 100.0, 160.0)
    answers = _answers(plan, {"exposures": 1000.0, "events": 7.0}, 160.0)
    answers[3] = broken  # treatment events
    rows, problems = window_rows(plan, 0, queries, answers, 100.0, 160.0)
    assert rows == [] and len(problems) == 1
    assert problems[0].startswith(f"prometheus query {queries[3].promql} (metric harm events, "
                                  "treatment, region=us): ")
    assert problem in problems[0]


def test_more_events_than_exposures_is_a_problem_naming_the_events_query():
    plan = parse_plan(PLAN)
    queries = look_queries(plan, 0, 0.0, 10.0)
    answers = [Sample(5.0 if q.column == "events" else 4.0, 10.0) for q in queries]
    rows, problems = window_rows(plan, 0, queries, answers, 0.0, 10.0)
    assert rows == [] and len(problems) == 2
    assert problems[0].startswith(f"prometheus query {queries[1].promql} ")
    assert problems[0].endswith("returned 5 events, more than the 4 exposures of its window")


_ANSWER = st.one_of(
    st.builds(Sample, st.floats(allow_nan=True, allow_infinity=True, width=64),
              st.floats(min_value=0, max_value=400)),
    st.text(max_size=20))


@settings(max_examples=150, deadline=None)
@given(answers=st.lists(_ANSWER, min_size=4, max_size=4))
@example(answers=[Sample(1e16, 300.0)] * 4)  # above 2^53: check_observations refuses it
def test_any_answers_give_checkable_rows_or_named_problems(answers):
    plan = parse_plan(PLAN)
    queries = look_queries(plan, 0, 100.0, 300.0)
    rows, problems = window_rows(plan, 0, queries, answers, 100.0, 300.0)
    assert bool(rows) != bool(problems)
    if rows:
        check_observations(pd.DataFrame(rows), plan)  # never refused: bad answers held back
    for problem in problems:
        assert problem.startswith("prometheus query sum(increase(")


def test_the_next_window_starts_where_the_stages_last_window_ended():
    from scaleguard.safety import initial_state

    plan = parse_plan(PLAN)
    state = initial_state(plan, 50.0)
    assert window_start(plan, state, []) == 50.0
    # The rollout's cell totals: only cells of a prometheus metric in the current stage count
    # (`latency` is posted; `all` is another stage).
    cells = [{"stage": "pilot", "arm": "control", "metric": "harm", "time": 80.0},
             {"stage": "pilot", "arm": "treatment", "metric": "harm", "time": 80.0},
             {"stage": "pilot", "arm": "control", "metric": "latency", "time": 95.0},
             {"stage": "all", "arm": "control", "metric": "harm", "time": 99.0}]
    assert window_start(plan, state, cells) == 80.0


class _FakeAPI:
    """A local HTTP server answering /api/v1/query with canned bodies (the error paths a real
    Prometheus rarely shows on demand)."""

    def __init__(self, answer: Any, status: int = 200) -> None:
        self.queries: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.queries.append(parse_qs(urlparse(self.path).query))
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_api() -> Iterator[Any]:
    made: list[_FakeAPI] = []

    def make(answer: Any, status: int = 200) -> _FakeAPI:
        made.append(_FakeAPI(answer, status))
        return made[-1]

    yield make
    for api in made:
        api.server.shutdown()
        api.server.server_close()


def _vector(*values: str, at: float = 160.0) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"version": "v2"}, "value": [at, v]} for v in values]}}


@pytest.mark.parametrize(("answer", "status", "expected"), [
    (_vector("12.5"), 200, Sample(12.5, 160.0)),
    (_vector("NaN"), 200, "nan"),
    ({"status": "success", "data": {"resultType": "scalar", "result": [160.0, "3"]}}, 200,
     Sample(3.0, 160.0)),
    (_vector(), 200, "no series (missing data"),
    (_vector("1", "2"), 200, "2 series, expected one (aggregate them, e.g. with sum())"),
    ({"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}, 400,
     "Prometheus answered HTTP 400: parse error at char 4"),
    (b"<html>proxy error</html>", 502, "did not answer (JSONDecodeError"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"value": 3}]}}, 200,
     "an answer that is not [timestamp, value]"),
])
def test_the_client_turns_each_answer_into_a_sample_or_a_problem(fake_api, answer, status,
                                                                  expected):
    api = fake_api(answer, status)
    client = PrometheusClient(api.url)
    got = client.query("sum(x)", 160.0)
    client.close()
    assert api.queries == [{"query": ["sum(x)"], "time": ["160.000"]}]
    if isinstance(expected, Sample):
        assert got == expected
    elif expected == "nan":
        assert isinstance(got, Sample) and math.isnan(got.value)
    else:
        assert isinstance(got, str) and got.startswith(expected) or expected in got, got


def test_an_unreachable_prometheus_is_a_problem_not_an_exception():
    from scaleguard.service._background import free_port

    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    got = client.query("up", 1.0)
    assert isinstance(got, str) and "did not answer (ConnectError" in got


def test_both_arms_need_their_own_label_value():
    with pytest.raises(ConfigError, match="prometheus.arms: control and treatment are both 'v2'"):
        parse_plan({**PLAN, "prometheus": {"arms": {"control": "v2", "treatment": "v2"}}})


@settings(max_examples=200, deadline=None)
@given(template=st.text(alphabet=st.sampled_from('$${}armwindowstegion_x"[]() '), max_size=40))
def test_any_template_is_accepted_or_refused_naming_its_field(template):
    plan = _plan(queries={"exposures": EXPOSURES, "events": template})
    try:
        parsed = parse_plan(plan)
    except ConfigError as exc:
        assert str(exc).startswith("plan: metrics[0].queries.events: "), str(exc)
        return
    rendered = look_queries(parsed, 1, 0.0, 1.0)  # what passed renders without an error
    assert {q.promql.count('region="') for q in rendered if q.column == "exposures"} == {1}


def test_posting_rows_of_a_prometheus_metric_is_refused():
    from scaleguard.errors import InputError
    from scaleguard.safety._prometheus import refuse_posted_rows

    plan = parse_plan(PLAN)
    refuse_posted_rows(plan, [])
    with pytest.raises(InputError, match=r"^rows: row 2: metric 'harm' is read from Prometheus"):
        refuse_posted_rows(plan, [{"metric": "other"}, {"metric": "harm"}])
