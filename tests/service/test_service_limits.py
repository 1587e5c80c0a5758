"""Issue #13 regressions: hostile bodies get a 4xx naming the field, never a 500, and nothing
that would break later reads is stored."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from scaleguard.monitor import Batch, DuckDBStore, RunInfo
from scaleguard.service._committer import GroupCommitter


def _post(client, path, text, auth):
    return client.post(path, content=text, headers={**auth, "content-type": "application/json"})


def _deep(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body", [
    '{"name": "r", "config": {"tag": "\\ud800"}}',
    '{"name": "\\udfff"}',
    '{"name": "r", "config": {"x": ' + _deep(260) + "}}",
    '{"name": "r", "config": {"x": ' + _deep(100_000) + "}}",
    '{"name": "r", "config": {"lr": NaN}}',
    '{"name": "r", "config": {"n": ' + "9" * 30 + "}}",
])
def test_run_configs_that_cannot_be_read_back_are_refused(make_client, auth, body):
    # Was: 500 with the row committed, and GET /api/v1/runs answering 500 from then on.
    client = make_client()
    answer = _post(client, "/api/v1/runs", body, auth)
    assert 400 <= answer.status_code < 500, answer.text
    assert "\n" not in answer.json()["error"]
    listing = client.get("/api/v1/runs", headers=auth)
    assert listing.status_code == 200 and listing.json() == []


@pytest.mark.parametrize("extra", [
    {"times": ["NaN", 1.0]}, {"names": ["loss", "\ud800"]},
    {"events": [{"kind": "k", "time": 1.0, "payload": {"x": json.loads(_deep(260))}}]},
    {"events": [{"kind": "k", "time": "Infinity"}]},
    {"alerts": [{"time": 1.0, "severity": "info", "title": "t", "extra": {"v": "\udc00"}}]},
])
def test_bad_batches_are_422_and_the_run_stays_readable(make_client, auth, new_run, extra):
    client = make_client()
    run = new_run(client, auth)
    body = {"steps": [1, 2], "names": ["loss", "loss"], "values": [1.0, 2.0], **extra}
    text = json.dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    answer = _post(client, f"/api/v1/runs/{run}/batches", text, auth)
    assert answer.status_code == 422, answer.text
    for path in (f"/api/v1/runs/{run}", "/api/v1/runs", f"/api/v1/runs/{run}/events",
                 "/api/v1/alerts"):
        assert client.get(path, headers=auth).status_code == 200
    assert client.get(f"/api/v1/runs/{run}", headers=auth).json()["points"] == 0


def test_plan_yaml_of_deep_brackets_is_refused(make_client, auth):
    # Was: 500 (RecursionError) for 20,000 nested brackets.
    client = make_client()
    for depth in (20_000, 300):
        answer = client.post("/api/v1/rollouts", json={"plan_yaml": "a: " + _deep(depth)},
                             headers=auth)
        assert answer.status_code in (400, 422), answer.text
        assert "plan_yaml" in answer.json()["error"]


def test_a_surrogate_in_the_url_is_a_404_not_a_500(make_client, auth):
    client = make_client()
    for path in ("/api/v1/runs/%ED%A0%80", "/api/v1/runs/%ED%A0%80/series?metric=%ED%A0%80",
                 "/api/v1/alerts?run=%FF"):
        assert client.get(path, headers=auth).status_code in (400, 404, 422), path


class PoisonStore(DuckDBStore):
    """Refuses any write holding the metric "poison", after holding the first write back
    until a gate opens (so that the others queue up into one group)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.entered, self.gate, self.first = threading.Event(), threading.Event(), True

    def write_many(self, batches: Sequence[Batch]) -> list[bool]:
        if self.first:
            self.first = False
            self.entered.set()
            assert self.gate.wait(10)
        if any("poison" in batch.names for batch in batches):
            raise ValueError("the database refused a row")
        return super().write_many(batches)


def test_a_failing_group_fails_only_the_batch_at_fault():
    # Was: one poisoned batch failed 231 of 474 innocent batches committed with it.
    store = PoisonStore()
    store.open_run(RunInfo("a", "a", "running", 0.0))
    committer = GroupCommitter(store)

    def batch(start: int, name: str = "loss") -> Batch:
        return Batch("a", np.arange(start, start + 5), np.zeros(5), [name] * 5, np.ones(5))

    first = committer.submit(batch(0))
    assert store.entered.wait(10)
    innocent = [committer.submit(batch(10 * (i + 1))) for i in range(6)]
    poisoned = committer.submit(batch(100, "poison"))
    innocent += [committer.submit(batch(200 + 10 * i)) for i in range(6)]
    store.gate.set()
    for future in [first, *innocent]:
        future.result(timeout=10)
    with pytest.raises(ValueError, match="refused"):
        poisoned.result(timeout=10)
    committer.close()
    assert len(store.series("a", "loss").steps) == 5 * 13
    assert store.metrics("a") == ["loss"]


def test_an_exhausted_stack_in_a_handler_is_a_4xx(make_client, auth, monkeypatch):
    # The net under the schemas' depth limit: never a 500.
    def deep(*args, **kwargs):
        raise RecursionError

    client = make_client()
    monkeypatch.setattr(client.app.state.store, "metrics", deep)
    run = client.post("/api/v1/runs", json={"name": "r"}, headers=auth).json()["run_id"]
    answer = client.get(f"/api/v1/runs/{run}/metrics", headers=auth)
    assert answer.status_code == 422 and answer.json()["error"] == "body: nested too deeply"
