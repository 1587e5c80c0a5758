"""The application SDK: the sticky hash, the arms a state gives, client-side windows, and the
clients against a real service (retries counted once, threads, fail-safe control, asyncio)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import InputError
from scaleguard.safety import Assignment, AsyncRolloutClient, RolloutClient, unit_bucket
from scaleguard.safety._assignment import BUCKETS, MetricInfo
from scaleguard.safety._recorder import WindowRecorder, check_value
from scaleguard.safety._units import FirstSeen

sys.path.insert(0, str(Path(__file__).parent))
from rollout_live_service import TOKEN, LiveService  # noqa: E402

PLAN = {
    "name": "sdk-test",
    "metrics": [{"name": "harm", "guardrail": 0.2, "margin": 0.05},
                {"name": "latency", "kind": "quantile", "quantile": 0.9, "guardrail": 2.0,
                 "margin": 0.05},
                {"name": "score", "kind": "mean", "guardrail": 10.0}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.1, "segments": {"region": ["us"]}},
               {"name": "all", "traffic": 1.0}],
}


def assignment(traffic: float, status: str = "live", share: float = 0.5,
               admitted: dict[str, tuple[str, ...]] | None = None) -> Assignment:
    return Assignment("r", status, "pilot", 0, traffic, "salt-0123456789",
                      segments={"region": ("us", "eu")}, admitted=admitted or {},
                      metrics=(MetricInfo("harm", "rate"),), treatment_share=share)


# -- the hash ------------------------------------------------------------------------------------
def test_the_bucket_is_the_documented_blake2b_and_the_same_in_another_process():
    import hashlib

    digest = hashlib.blake2b(b"salt-0123456789:user-7", digest_size=8).digest()
    assert unit_bucket("salt-0123456789", "user-7") == int.from_bytes(digest, "big") % 10_000
    code = ("from scaleguard.safety._assignment import unit_bucket;"
            "print([unit_bucket('salt-0123456789', f'user-{i}') for i in range(50)])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # str hash() differs; ours must not
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == str([unit_bucket("salt-0123456789", f"user-{i}") for i in range(50)])


def test_buckets_are_uniform_and_salts_independent():
    ids = [f"user-{i}" for i in range(50_000)]
    counts = np.bincount([unit_bucket("salt-a-123456", u) // 1000 for u in ids], minlength=10)
    chi2 = float(((counts - 5000.0) ** 2 / 5000.0).sum())
    assert chi2 < 30  # 9 degrees of freedom: p < 5e-4 under uniform buckets
    first = np.array([unit_bucket("salt-a-123456", u) < 1000 for u in ids])
    second = np.array([unit_bucket("salt-b-123456", u) < 1000 for u in ids])
    assert abs((first & second).mean() - 0.01) < 0.003  # another salt: another 10%


@settings(max_examples=60, deadline=None)
@given(salt=st.text("abcdef0123456789", min_size=8, max_size=20),
       units=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
       low=st.floats(0.0001, 1.0), high=st.floats(0.0001, 1.0),
       share=st.floats(0.05, 0.95))
def test_a_unit_in_treatment_stays_in_treatment_as_traffic_grows(salt, units, low, high, share):
    low, high = sorted((low, high))
    small = Assignment("r", "live", "s", 0, low, salt, treatment_share=share)
    large = Assignment("r", "live", "s", 0, high, salt, treatment_share=share)
    for unit in units:
        b = unit_bucket(salt, unit)
        if small.arm(b, {}) == "treatment":
            assert large.arm(b, {}) == "treatment"
        for state in (small, large):
            observed = state.observed_arm(b, {})
            # observed treatment is served treatment; observed control is served control
            assert observed is None or observed == state.arm(b, {})


@pytest.mark.parametrize("traffic", [0.01, 0.1, 0.3, 0.5, 0.75, 0.99])
@pytest.mark.parametrize("share", [0.5, 0.2])
def test_the_observed_split_is_the_planned_share(traffic, share):
    state = assignment(traffic, share=share)
    observed = [state.observed_arm(b, {"region": "us"}) for b in range(BUCKETS)]
    treated, control = observed.count("treatment"), observed.count("control")
    assert treated / (treated + control) == pytest.approx(share, abs=0.01)
    served = sum(state.arm(b, {"region": "us"}) == "treatment" for b in range(BUCKETS))
    assert served == round(traffic * BUCKETS)


def test_at_full_traffic_treatment_is_observed_alone():
    state = assignment(1.0)
    assert {state.observed_arm(b, {"region": "eu"}) for b in range(BUCKETS)} == {"treatment"}


@pytest.mark.parametrize("status", ["held", "rolled_back", "unknown"])
def test_held_rolled_back_or_unknown_serve_control_and_observe_nothing(status):
    state = assignment(1.0, status=status)
    assert not state.serving
    assert {state.arm(b, {"region": "us"}) for b in range(0, BUCKETS, 7)} == {"control"}
    assert {state.observed_arm(b, {"region": "us"}) for b in range(0, BUCKETS, 7)} == {None}


def test_segments_admitted_missing_or_unknown():
    state = assignment(1.0, admitted={"region": ("us",)})
    assert state.arm(3, {"region": "us"}) == "treatment"
    assert state.arm(3, {"region": "eu"}) == "control"  # not admitted at this stage
    assert state.arm(3, {}) == "control"  # a plan dimension not given
    assert state.arm(3, {"region": "mars"}) == "control"  # not a value of the plan
    assert state.observed_arm(3, {"region": "eu"}) is None


def test_a_malformed_assignment_is_refused_with_its_source():
    good = assignment(0.1).as_dict()
    assert Assignment.from_dict(good) == assignment(0.1)
    assert Assignment.from_dict({**good, "status": "paused-ish"}).status == "unknown"
    for bad in ({**good, "traffic": 2.0}, {**good, "buckets": 100}, {"status": "live"},
                {**good, "metrics": [{"name": "x", "kind": "p99"}]}, [1, 2]):
        with pytest.raises(InputError, match="^svc: "):
            Assignment.from_dict(bad, "svc")


# -- the windows ---------------------------------------------------------------------------------
def test_windows_sum_rates_count_quantile_exceedances_and_keep_welford_means():
    recorder = WindowRecorder("c1")
    rng = np.random.default_rng(3)
    values = rng.normal(5.0, 2.0, 1001)
    for v in values:
        recorder.add("pilot", "control", MetricInfo("score", "mean"), float(v), ("us",), True)
    for v in (0.5, 2.5, 3.0, 1.0):
        recorder.add("pilot", "treatment", MetricInfo("latency", "quantile", 2.0), v, ("eu",),
                     False)
    for i, v in enumerate((1, 0, 0, 1, 1)):
        recorder.add("pilot", "treatment", MetricInfo("harm", "rate"), v, ("eu",), i < 2)
    rows = {row["metric"]: row for row in recorder.cut(("region",), now=10.0)}
    assert rows["score"]["n"] == 1001
    assert rows["score"]["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert rows["score"]["var"] == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert (rows["latency"]["exposures"], rows["latency"]["events"]) == (4, 2)
    assert (rows["harm"]["exposures"], rows["harm"]["events"]) == (5, 3)
    assert (rows["score"]["units"], rows["latency"]["units"], rows["harm"]["units"]) == (1001, 0, 2)
    assert {r["window"] for r in rows.values()} == {"c1-1"} and rows["harm"]["region"] == "eu"
    assert recorder.cut(("region",), now=11.0) == []  # nothing new: no window
    recorder.add("pilot", "control", MetricInfo("harm", "rate"), 0.0, ("us",), True)
    assert recorder.cut(("region",), now=12.0)[0]["window"] == "c1-2"


@pytest.mark.parametrize("value", [0.5, 2, -1, float("nan"), "x", None])
def test_a_rate_records_zero_or_one_only(value):
    with pytest.raises(InputError, match="^value: "):
        check_value(MetricInfo("harm", "rate"), value)


def test_means_refuse_infinite_values_only():
    assert check_value(MetricInfo("score", "mean"), -3.5) == -3.5
    with pytest.raises(InputError, match="finite"):
        check_value(MetricInfo("score", "mean"), float("inf"))


# -- the clients against a real service ----------------------------------------------------------
@pytest.fixture(scope="module")
def service():
    served = LiveService()
    yield served
    served.stop()


_made = iter(range(10**6))


@pytest.fixture
def rollout(service):
    rollout_id = f"sdk-{next(_made)}"
    service.create(PLAN, rollout_id)
    return rollout_id


def stored_rows(service, rollout_id) -> list[dict[str, Any]]:
    return list(service.app.state.store.rollout_rows(rollout_id))


def test_assign_follows_the_services_state_and_segments(service, rollout):
    with RolloutClient(service.url, rollout=rollout, token=TOKEN) as client:
        salt = service.get(rollout)["plan_spec"]["assignment"]["salt"]
        units = [f"u{i}" for i in range(2000)]
        arms = [client.assign(u, region="us") for u in units]
        expected = ["treatment" if unit_bucket(salt, u) < 1000 else "control" for u in units]
        assert arms == expected
        assert {client.assign(u, region="eu") for u in units} == {"control"}  # not admitted
        assert client.assignment is not None and client.assignment.version == 0


class DropAnswers(httpx.BaseTransport):
    """Forwards every request to the real service, then loses the first ``drops`` answers to
    observation posts: the service has stored the windows, the client does not know it."""

    def __init__(self, drops: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.drops = drops
        self.posts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/observations"):
            self.posts += 1
            if self.drops > 0:
                self.drops -= 1
                response.read()
                raise httpx.ReadError("answer lost", request=request)
        return response


def test_a_window_whose_answer_was_lost_is_sent_again_and_counted_once(service, rollout):
    transport = DropAnswers(drops=2)
    client = RolloutClient(service.url, rollout=rollout, token=TOKEN, transport=transport,
                           flush_interval=3600)
    try:
        for i in range(400):
            client.record(f"u{i}", "harm", i % 7 == 0, region="us")
            client.record(f"u{i}", "score", float(i % 5), region="us")
        assert client.flush() is False  # answer lost: kept, same window ids
        assert client.flush() is False
        assert client.flush() is True
    finally:
        client.close()
    assert transport.posts == 3 and client.stats["retries"] == 2
    rows = stored_rows(service, rollout)
    # one row per cell, stored once although the service received the window three times
    assert len(rows) == len({(r["arm"], r["metric"]) for r in rows}) == 4
    salt = service.get(rollout)["plan_spec"]["assignment"]["salt"]
    observed = sum(1 for i in range(400) if not 1000 <= unit_bucket(salt, f"u{i}") < 9000)
    assert sum(r["exposures"] for r in rows if r["metric"] == "harm") == observed
    notes = service.get(f"{rollout}/decision")["notes"]
    assert any("duplicate window" in note for note in notes)


def test_record_from_many_threads_counts_every_call(service, rollout):
    client = RolloutClient(service.url, rollout=rollout, token=TOKEN, flush_interval=0.05)
    salt = service.get(rollout)["plan_spec"]["assignment"]["salt"]
    inside = [f"u{i}" for i in range(20_000) if unit_bucket(salt, f"u{i}") < 1000
              or unit_bucket(salt, f"u{i}") >= 9000][:400]

    def work(offset: int) -> None:
        for n in range(25):
            # 12% harmful: under the guardrail, so no decision rolls back mid-test
            client.record(inside[(offset * 25 + n) % len(inside)], "harm", n % 10 == 0,
                          region="us")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    rows = stored_rows(service, rollout)
    assert sum(r["exposures"] for r in rows) == 8 * 5 * 25 == client.stats["recorded"]
    assert sum(r["events"] for r in rows) == 8 * 5 * 3


def test_unknown_metric_or_value_is_refused_on_the_callers_path(service, rollout):
    with RolloutClient(service.url, rollout=rollout, token=TOKEN) as client:
        with pytest.raises(InputError, match="'clicks' is not a metric"):
            client.record("u1", "clicks", 1, region="us")
        with pytest.raises(InputError, match="records 0 or 1"):
            client.record("u1", "harm", 3, region="us")


class Switch(httpx.BaseTransport):
    """The real service until ``down`` is set; then every request fails to connect."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def test_control_once_the_service_is_unreachable_past_the_deadline(service, rollout):
    switch = Switch()
    with RolloutClient(service.url, rollout=rollout, token=TOKEN, ttl=0.05, deadline=0.5,
                       transport=switch) as client:
        treated = next(f"u{i}" for i in range(1000)
                       if client.assign(f"u{i}", region="us") == "treatment")
        switch.down = True
        assert client.assign(treated, region="us") == "treatment"  # within the deadline
        time.sleep(0.7)
        assert client.assign(treated, region="us") == "control"
        assert client.assignment is None
        switch.down = False
        time.sleep(0.3)
        assert client.assign(treated, region="us") == "treatment"  # back: serving again


def test_an_unknown_rollout_or_a_bad_token_serves_control(service, rollout):
    with RolloutClient(service.url, rollout="no-such-rollout", token=TOKEN) as client:
        assert client.assign("u1", region="us") == "control"
    with RolloutClient(service.url, rollout=rollout, token="wrong-token-0123456789") as client:
        assert client.assign("u1", region="us") == "control"


def test_the_client_refuses_bad_settings():
    with pytest.raises(InputError, match="^url: "):
        RolloutClient("ftp://x", rollout="r")
    with pytest.raises(InputError, match="^deadline: "):
        RolloutClient("http://127.0.0.1:9", rollout="r", deadline=0)


def test_the_async_client_assigns_and_records(service, rollout):
    async def main() -> dict[str, int]:
        async with AsyncRolloutClient(service.url, rollout=rollout, token=TOKEN,
                                      flush_interval=3600) as client:
            arms = [client.assign(f"u{i}", region="us") for i in range(2000)]
            assert 150 < arms.count("treatment") < 250
            for i in range(300):
                client.record(f"u{i}", "latency", 0.1 * (i % 40), region="us")
            assert await client.flush()
            return client.stats

    # In a thread of its own: another test of the session may leave this thread's loop running.
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(stats=asyncio.run(main())))
    worker.start()
    worker.join(timeout=60)
    stats = out["stats"]
    rows = stored_rows(service, rollout)
    assert sum(r["exposures"] for r in rows) == stats["recorded"] > 0
    assert service.get(f"{rollout}/decision") is not None


def test_the_client_side_imports_neither_fastapi_nor_pandas():
    code = ("import sys; from scaleguard.safety import RolloutClient, AsyncRolloutClient;"
            "RolloutClient('http://127.0.0.1:9', rollout='r', deadline=0.1, timeout=0.1).close();"
            "heavy = {'fastapi', 'starlette', 'uvicorn', 'pandas', 'scipy', 'pydantic'};"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"



# -- the client's windows and the service's checks agree; hostile answers are refused ---------
@settings(max_examples=40, deadline=None)
@given(calls=st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(["harm", "latency",
                                                                        "score"]),
                                st.floats(-50, 50), st.sampled_from(["us", "eu", "mars"])),
                      max_size=200),
       traffic=st.sampled_from([0.1, 0.5, 1.0]))
def test_recorded_windows_pass_the_services_observation_checks(calls, traffic):
    import pandas as pd

    from scaleguard.safety import check_observations, parse_plan

    plan = parse_plan(PLAN)
    state = Assignment("r", "live", "pilot", 0, traffic, "salt-0123456789",
                       segments={"region": ("us", "eu")}, admitted={"region": ("us",)},
                       metrics=(MetricInfo("harm", "rate"),
                                MetricInfo("latency", "quantile", 2.0),
                                MetricInfo("score", "mean")))
    recorder = WindowRecorder("c")
    seen = FirstSeen(size_bytes=1 << 16)
    counted, pairs = 0, set()
    for unit, metric, value, region in calls:
        info = state.metric(metric)
        value = float(value > 0) if info.kind == "rate" else value
        arm = state.observed_arm(unit_bucket(state.salt, unit), {"region": region})
        if arm is not None:
            recorder.add(state.stage, arm, info, check_value(info, value), (region,),
                         seen.first(state.stage, metric, unit))
            counted += 1
            pairs.add((metric, unit))
    rows = recorder.cut(("region",), now=1000.0)
    if rows:
        checked = check_observations(pd.DataFrame(rows), plan)  # refuses a bad row: raises
        assert len(checked) == len(rows)
        assert sum(r.get("exposures", 0) + r.get("n", 0) for r in rows) == counted
        # each (metric, unit) counted once (2^19 bits hold 200 pairs at a false-positive
        # chance near 10^-11 each: exact here)
        assert sum(r["units"] for r in rows) == len(pairs)
        assert set(checked["region"]) <= {"us"}  # only admitted, known segments are counted


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=6), max_leaves=30))
def test_any_answer_is_an_assignment_or_one_input_error(data):
    good = assignment(0.1).as_dict()
    for candidate in (data, {**good, "traffic": data}, {**good, "metrics": data},
                      {**good, "segments": data}, {**good, "version": data}):
        try:
            parsed = Assignment.from_dict(candidate, "svc")
        except InputError as exc:
            assert str(exc).startswith("svc: ") and "\n" not in str(exc)
        else:
            assert 0.0 <= parsed.traffic <= 1.0


def test_a_metric_read_from_prometheus_is_not_recorded_twice(service):
    promql = 'sum(increase(requests_total{version="$arm",region="$region"}[$window]))'
    plan = {**PLAN, "metrics": [*PLAN["metrics"], {
        "name": "errors", "guardrail": 0.1, "source": "prometheus",
        "queries": {"exposures": promql, "events": promql.replace("requests", "errors")}}]}
    service.create(plan, "with-prometheus")
    with RolloutClient(service.url, rollout="with-prometheus", token=TOKEN) as client:
        client.record("u1", "harm", 0, region="us")  # posted metrics are recorded as before
        with pytest.raises(InputError, match="'errors' is read from prometheus"):
            client.record("u1", "errors", 1, region="us")


def test_the_background_thread_outlives_a_broken_answer(service, rollout, monkeypatch):
    with RolloutClient(service.url, rollout=rollout, token=TOKEN, ttl=0.05,
                       deadline=5) as client:
        assert client.assign("u1", region="us") in ("treatment", "control")
        calls = []

        def broken(*args):
            calls.append(args)
            raise RuntimeError("a bug in one refresh")

        monkeypatch.setattr(client._core, "fetched", broken)
        time.sleep(0.3)
        monkeypatch.undo()
        version = client.assignment.version
        service_post = httpx.post(f"{service.url}/api/v1/rollouts/{rollout}/observations",
                                  json={"rows": []},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert service_post.status_code == 200 and calls
        began = time.monotonic()
        while client.assignment.version == version:  # still refreshing after the failures
            assert time.monotonic() - began < 3
            time.sleep(0.02)
