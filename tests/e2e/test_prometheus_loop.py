"""The deployment loop end to end, real parts only, each started here: Debian's Prometheus
server scraping a two-version model server (its own process, ``prometheus_client`` counters by
version and region), the scaleguard service reading Prometheus at every look, and synthetic
users sent to a version by ``assign()``.

Time-compressed: Prometheus scrapes every 0.5 s, the plans look every second, and each call of a
synthetic user stands for a session of :data:`SESSION` requests.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")
if shutil.which("prometheus") is None:
    pytest.skip("Debian's prometheus is not installed (.ci/run installs it): the end-to-end "
                "loop test needs a real Prometheus server", allow_module_level=True)

from scaleguard.safety import RolloutClient  # noqa: E402
from scaleguard.service import ServiceSettings, create_app  # noqa: E402
from scaleguard.service._background import BackgroundServer  # noqa: E402

from .servers import Prometheus, model_server  # noqa: E402

SESSION = 100  # requests per call of a synthetic user
CLIENT_TTL = 0.2  # s an application serves its cached rollout state before refreshing
TOKEN = "e2e-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REGIONS = ("us", "eu")
HARM_QUERIES = {
    "exposures": 'sum(increase(requests_total{version="$arm",region="$region"}[$window]))',
    "events": 'sum(increase(harmful_total{version="$arm",region="$region"}[$window]))',
}


def _plan(name: str, treatment: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        # Two scrapes per look at least: increase() needs two samples inside each window.
        "look_interval": 1.0,
        # 2% of outputs are harmful on v1; fail as soon as the new version is shown worse at
        # all (strict), pass once it is shown less than 3 points worse (the margin).
        "metrics": [{"name": "harm", "kind": "rate", "margin": 0.03, "strict": True,
                     "source": "prometheus", "queries": HARM_QUERIES}],
        "segments": {"region": list(REGIONS)},
        "prometheus": {"arms": {"control": "v1", "treatment": treatment}, "staleness": "5s"},
        # The sample-ratio check stays on (the default): it leaves Prometheus metrics out,
        # whose counters see every request of each version, not matched arms.
        "stages": stages,
    }


RAMP = [{"name": "one-percent", "traffic": 0.01}, {"name": "fifth", "traffic": 0.2},
        {"name": "everyone", "traffic": 1.0}]


@dataclass
class Users:
    """Synthetic users calling the model server with the version ``assign()`` gives them, in a
    thread, remembering each unit's arms in order."""

    model_url: str
    assign: Callable[..., str]
    treatment: str
    count: int = 1000
    arms: dict[str, list[str]] = field(default_factory=dict)
    calls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Users:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.model_url, timeout=5) as http:
            while not self._stop.is_set():
                unit = f"user-{self.calls % self.count}"
                region = REGIONS[int(hashlib.sha256(unit.encode()).hexdigest(), 16) % 2]
                arm = self.assign(unit, region=region)
                history = self.arms.setdefault(unit, [])
                if not history or history[-1] != arm:
                    history.append(arm)
                version = self.treatment if arm == "treatment" else "v1"
                http.get("/chat", params={"version": version, "region": region,
                                          "n": SESSION}).raise_for_status()
                self.calls += 1

    def visit_everyone(self, timeout: float = 20.0) -> None:
        """Wait until every unit has called once more, after the clients' caches expired."""
        time.sleep(CLIENT_TTL * 2)
        target, deadline = self.calls + self.count, time.monotonic() + timeout
        while self.calls < target:
            assert time.monotonic() < deadline, "the users stopped calling"
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class Loop:
    service: BackgroundServer
    prometheus: Prometheus
    model_url: str

    def create(self, plan: dict[str, Any]) -> str:
        made = httpx.post(f"{self.service.url}/api/v1/rollouts", json={"plan": plan},
                          headers=AUTH)
        assert made.status_code == 201, made.text
        return str(made.json()["rollout_id"])

    def client(self, rollout_id: str, deadline: float = 2.0) -> RolloutClient:
        """The application's SDK for a rollout, with time-compressed refresh and deadline."""
        return RolloutClient(self.service.url, rollout=rollout_id, token=TOKEN, ttl=CLIENT_TTL,
                             deadline=deadline, timeout=0.5)

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.service.url}/api/v1/rollouts/{rollout_id}",
                              headers=AUTH).json())

    def audit(self, rollout_id: str) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.service.url}/api/v1/rollouts/{rollout_id}/audit",
                              headers=AUTH).json())

    def until(self, rollout_id: str, done: Callable[[dict[str, Any]], bool],
              timeout: float = 25.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.rollout(rollout_id)
            if done(state):
                return state
            time.sleep(0.1)
        last = self.audit(rollout_id)[-2:]
        evidence = [(a["action"], a["stage"], a["reasons"],
                     [(g["segment"], g["verdict"], g["treatment_exposures"],
                       g["comparator_exposures"], g["estimate"], g["upper"]) for g in a["gates"]])
                    for a in last]
        raise AssertionError(f"rollout {rollout_id} did not get there in {timeout:g} s: "
                             f"{evidence}")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    folder = tmp_path_factory.mktemp("e2e")
    with model_server() as model_url:
        prometheus = Prometheus(folder, model_url.removeprefix("http://"))
        prometheus.start()
        settings = ServiceSettings(store=":memory:", prometheus_url=prometheus.url,
                                   token_hashes=(hashlib.sha256(TOKEN.encode()).digest(),))
        try:
            with BackgroundServer(create_app(settings)) as service:
                yield Loop(service, prometheus, model_url)
        finally:
            prometheus.stop()


def test_a_good_version_reaches_everyone_and_a_bad_one_is_rolled_back(loop):
    """(a) 1% -> 100% with nobody involved; (b) 3x harmful outputs in the EU only: rolled
    back, naming the region; (d) no unit changes arm while traffic grows."""
    good = loop.create(_plan("good", "v2", RAMP))
    bad = loop.create(_plan("bad", "v3", RAMP))
    clients = [loop.client(good), loop.client(bad)]
    users = [Users(loop.model_url, clients[0].assign, "v2").start(),
             Users(loop.model_url, clients[1].assign, "v3").start()]
    try:
        rolled_back = loop.until(bad, lambda s: s["status"] == "rolled_back")
        finished = loop.until(good, lambda s: s["traffic"] == 1.0)
        users[0].visit_everyone()  # each unit once more, at 100%
    finally:
        for crowd in users:
            crowd.stop()
        for client in clients:
            client.close()
    assert rolled_back["traffic"] == 0.0
    decision = loop.audit(bad)[-1]
    assert decision["action"] == "roll_back"
    assert "harm/region=eu/comparison" in decision["failing"], decision["failing"]
    assert not any("region=us" in gate for gate in decision["failing"])
    assert any("region=eu" in reason for reason in decision["reasons"])
    actions = [(a["action"], a["stage"]) for a in loop.audit(good)]
    assert ("advance", "fifth") in actions and ("advance", "everyone") in actions
    assert finished["stage"] == "everyone"
    # (d): sticky buckets: a unit in treatment stays there as the share grows.
    histories = list(users[0].arms.values())
    assert all(h in (["control"], ["treatment"], ["control", "treatment"]) for h in histories)
    assert all(h[-1] == "treatment" for h in histories), (
        [h for h in histories if h[-1] != "treatment"][:3], actions, loop.rollout(good))


def test_with_prometheus_stopped_the_rollout_holds_and_resumes_when_it_is_back(loop):
    """(c) The outage holds, naming the query; once Prometheus is back the window covering the
    outage is read and the rollout goes on."""
    stages = [{"name": "one-percent", "traffic": 0.01, "min_duration": 3},
              {"name": "everyone", "traffic": 1.0}]
    rollout = loop.create(_plan("outage", "v2", stages))
    client = loop.client(rollout)
    users = Users(loop.model_url, client.assign, "v2").start()
    try:
        loop.until(rollout, lambda s: s["decisions"] >= 2)
        loop.prometheus.stop()
        held = loop.until(rollout, lambda s: s["last_action"] == "hold", timeout=10)
        assert held["stage"] == "one-percent"
        reason = loop.audit(rollout)[-1]["reasons"][0]
        assert "prometheus query sum(increase(requests_total{version=" in reason
        assert "did not answer" in reason
        time.sleep(1.0)
        loop.prometheus.start()
        resumed = loop.until(rollout, lambda s: s["traffic"] == 1.0)
    finally:
        users.stop()
        client.close()
    assert resumed["stage"] == "everyone"
    actions = [a["action"] for a in loop.audit(rollout)]
    assert actions.index("hold") < actions.index("advance")


def test_with_the_service_stopped_assign_serves_control_after_its_deadline():
    """(e) A unit in treatment stays there while the service answers; once the service is
    gone, every unit gets control after the client's deadline, not before."""
    settings = ServiceSettings(store=":memory:", scheduler=False,
                               token_hashes=(hashlib.sha256(TOKEN.encode()).digest(),))
    deadline = 1.5
    with BackgroundServer(create_app(settings)) as service:
        made = httpx.post(f"{service.url}/api/v1/rollouts", headers=AUTH, json={
            "plan": _plan("away", "v2", [{"name": "everyone", "traffic": 1.0}])})
        assert made.status_code == 201, made.text
        client = RolloutClient(service.url, rollout=made.json()["rollout_id"], token=TOKEN,
                               ttl=CLIENT_TTL, deadline=deadline, timeout=0.3)
        try:
            assert client.assign("user-1", region="eu") == "treatment"
        except BaseException:
            client.close()
            raise
    stopped = time.monotonic()
    try:
        arms = []
        while time.monotonic() - stopped < deadline + 3:
            arms.append((time.monotonic() - stopped, client.assign("user-1", region="eu")))
            if arms[-1][1] == "control":
                break
            time.sleep(0.05)
    finally:
        client.close()
    gone, arm = arms[-1]
    assert arm == "control", arms[-3:]
    # Treatment until the deadline since the last answer (within one refresh of the stop).
    assert gone >= deadline - CLIENT_TTL - 0.1, arms[-3:]
