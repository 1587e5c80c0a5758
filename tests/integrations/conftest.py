"""Fixtures of the deploy-tool integration tests: a service over a fresh store, a rollout in it,
and observations that drive its decision to pass, fail or hold."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the integrations need the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from scaleguard.service import ServiceSettings, create_app  # noqa: E402

TOKEN = "integration-token-0123456789"
# The token of Flagger's documented webhook payload (fluxcd/flagger docs/gitbook/usage/
# webhooks.md, "metadata": {"token": ...}): the service accepts it, so the body posts verbatim.
FLAGGER_DOC_TOKEN = "16688eb5e9f289f1991c"
# The rollout of the docs page (docs/how-to/deploy-tools.md): its stages are the canary weights.
PLAN = {
    "name": "assistant-v3",
    "data": {"max_age": "1d"},
    "metrics": [{"name": "harmful_output", "guardrail": 0.05},
                {"name": "flagged_for_review", "guardrail": 0.5, "critical": False}],
    "stages": [{"name": "pilot", "traffic": 0.05}, {"name": "broad", "traffic": 0.2},
               {"name": "half", "traffic": 0.5}],
}
HOUR = 3600.0


def _settings() -> ServiceSettings:
    return ServiceSettings(store=":memory:", token_hashes=tuple(
        hashlib.sha256(t.encode()).digest() for t in (TOKEN, FLAGGER_DOC_TOKEN)))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(_settings()), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def live() -> Iterator[str]:
    """The service under uvicorn on a free local port, in a thread: its url (an SDK's view)."""
    pytest.importorskip("uvicorn")
    from scaleguard.service._background import BackgroundServer

    with BackgroundServer(create_app(_settings())) as server:
        yield server.url


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def rollout(client: TestClient, auth: dict[str, str]) -> Callable[..., str]:
    """Create a rollout (id given) of :data:`PLAN`, begun an hour ago."""

    def make(rollout_id: str = "assistant-v3", plan: dict[str, Any] | None = None) -> str:
        response = client.post("/api/v1/rollouts", headers=auth,
                               json={"plan": plan or PLAN, "rollout_id": rollout_id,
                                     "started_at": time.time() - HOUR})
        assert response.status_code == 201, response.text
        return rollout_id

    return make


def _window(stage: str, harm: int = 0, flagged: int = 100, exposures: int = 10_000
            ) -> list[dict[str, Any]]:
    """One window of ``stage``: ``harm`` harmful and ``flagged`` flagged outputs per arm."""
    now = time.time() - 60
    return [{"stage": stage, "arm": arm, "metric": metric, "exposures": exposures,
             "events": events if arm == "treatment" else 0, "time": now}
            for arm in ("treatment", "control")
            for metric, events in (("harmful_output", harm), ("flagged_for_review", flagged))]


@pytest.fixture
def rows() -> Callable[..., list[dict[str, Any]]]:
    """Observation rows of one window (see :func:`_window`)."""
    return _window


@pytest.fixture
def observe(client: TestClient, auth: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Post a window and return the controller's decision."""

    def post(rollout_id: str, window: list[dict[str, Any]]) -> dict[str, Any]:
        response = client.post(f"/api/v1/rollouts/{rollout_id}/observations", headers=auth,
                               json={"rows": window})
        assert response.status_code == 200, response.text
        return dict(response.json())

    return post
