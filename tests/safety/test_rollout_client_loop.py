"""The deployment loop fed by ``record()``: a real service (uvicorn, a free port) and synthetic
users who reach the new version only through ``assign()``, time-compressed (windows of a
fraction of a second, no minimum durations).

(a) a good version goes stage by stage from 5% to 100% and completes, with nobody involved;
(b) a version with 3x harmful outputs in one region is rolled back, the decision naming it;
(d) no unit changes arm as traffic grows;
(e) with the service stopped, ``assign`` returns "control" once its deadline has passed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scaleguard.safety import RolloutClient

sys.path.insert(0, str(Path(__file__).parent))
from rollout_live_service import TOKEN, LiveService  # noqa: E402

BASE_HARM = 0.02  # harmful-output rate of today's version
PLAN = {
    "name": "loop-test",
    "alpha": 0.05,
    "metrics": [
        # compared with the concurrent control: needs a control arm, so not gated at 100%
        {"name": "harm", "kind": "rate", "guardrail": 0.1, "margin": 0.02, "critical": True},
        # an absolute guardrail: the only gate where the new version serves everyone
        {"name": "error", "kind": "rate", "guardrail": 0.2, "critical": True},
    ],
    "segments": {"region": ["us", "eu"]},
    "stages": [
        {"name": "pilot", "traffic": 0.05},
        {"name": "quarter", "traffic": 0.25},
        {"name": "half", "traffic": 0.5},
        {"name": "everyone", "traffic": 1.0, "metrics": ["error"]},
    ],
    "data": {"max_age": "1h"},
    "assignment": {"ttl": 0.05},
}
USERS = 20_000
REQUESTS = 40_000  # per window


def drive(service: LiveService, rollout: str, harm: dict[str, float], seed: int,
          max_windows: int = 60) -> tuple[RolloutClient, list[float], set[int], int]:
    """Synthetic traffic until the rollout completes or rolls back: per window, REQUESTS
    requests from USERS users (each in one region), each assigned and recorded.

    Returns the client, the traffic of each window, the units ever served treatment, and how
    many requests served control to a unit served treatment before (while not rolled back).
    """
    rng = np.random.default_rng(seed)
    region = np.where(rng.random(USERS) < 0.5, "us", "eu")
    # A deadline far above the TTL: on a loaded machine the refresh thread can wait seconds for
    # the GIL behind 40,000 assign() calls, and serving control then would count as a switch;
    # the deadline itself is the outage test's subject.
    client = RolloutClient(service.url, rollout=rollout, token=TOKEN, deadline=30.0,
                           flush_interval=3600, timeout=2.0)
    client.assign(0, region="us")  # the first call waits for the first read of the state
    traffic: list[float] = []
    treated: set[int] = set()
    switched = 0
    for _ in range(max_windows):
        state = client.assignment
        assert state is not None
        if state.status in ("complete", "rolled_back"):
            break
        traffic.append(state.traffic)
        units = rng.integers(0, USERS, REQUESTS)
        draws = rng.random((REQUESTS, 2))
        for unit, (u_harm, u_error) in zip(units.tolist(), draws.tolist(), strict=True):
            where = region[unit]
            arm = client.assign(unit, region=where)
            if arm == "treatment":
                treated.add(unit)
            elif unit in treated:
                switched += 1
            rate = harm[where] if arm == "treatment" else BASE_HARM
            client.record(unit, "harm", u_harm < rate, region=where)
            client.record(unit, "error", u_error < 0.05, region=where)
        assert client.flush()  # the service decides on the new windows
        version = state.version
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the refresh after a post reads the decision
            now = client.assignment
            if now is not None and now.version > version:
                break
            time.sleep(0.01)
    return client, traffic, treated, switched


@pytest.fixture(scope="module")
def service():
    served = LiveService()
    yield served
    served.stop()


def test_a_good_version_goes_to_everyone_and_no_unit_changes_arm(service):
    service.create(PLAN, "good")
    client, traffic, treated, switched = drive(service, "good",
                                               {"us": BASE_HARM, "eu": BASE_HARM}, seed=1)
    client.close()
    audit = service.get("good/audit")
    decisions = [a for a in audit if "kind" not in a]
    assert decisions[-1]["state"]["status"] == "complete", decisions[-1]["reasons"]
    assert sorted(set(traffic)) == [0.05, 0.25, 0.5, 1.0]  # stage by stage, in order
    assert traffic == sorted(traffic)
    assert not any(a["action"] in ("roll_back", "hold") for a in decisions)
    # the split checked is one of units (the randomisation's), not of their many requests
    checks = [c for a in decisions if a.get("srm") for c in a["srm"]["checks"]]
    assert checks and {c["counted"] for c in checks} == {"units"}
    # no unit once served treatment was served control again while the traffic grew
    assert switched == 0 and len(treated) > USERS // 2
    with RolloutClient(service.url, rollout="good", token=TOKEN) as after:
        assert all(after.assign(u, region="us") == "treatment" for u in range(200))


def test_a_harmful_version_in_one_region_is_rolled_back_naming_it(service):
    service.create(PLAN, "harmful")
    client, traffic, _, _ = drive(service, "harmful", {"us": BASE_HARM, "eu": 3 * BASE_HARM},
                               seed=2)
    try:
        decision = service.get("harmful/decision")
        assert decision["action"] == "roll_back", decision["reasons"]
        assert any("region=eu" in f for f in decision["failing"])
        assert not any("region=us" in f for f in decision["failing"])
        assert "region=eu" in " ".join(decision["reasons"])
        assert max(traffic) < 1.0
        assert client.assignment is not None and client.assignment.status == "rolled_back"
        assert {client.assign(u, region="eu") for u in range(500)} == {"control"}
    finally:
        client.close()


def test_with_the_service_stopped_assign_serves_control_after_its_deadline():
    served = LiveService()
    served.create(PLAN, "outage")
    client = RolloutClient(served.url, rollout="outage", token=TOKEN, deadline=0.5, ttl=0.05,
                           timeout=0.2)
    try:
        treated = [u for u in range(2000) if client.assign(u, region="us") == "treatment"]
        assert len(treated) > 50
        served.stop()
        began = time.monotonic()
        assert client.assign(treated[0], region="us") == "treatment"  # within the deadline
        while client.assign(treated[0], region="us") == "treatment":
            assert time.monotonic() - began < 3, "still serving treatment past the deadline"
            time.sleep(0.02)
        assert time.monotonic() - began >= 0.3  # it kept the cached state for its deadline
        assert {client.assign(u, region="us") for u in treated} == {"control"}
    finally:
        client.close()
