"""Fixtures of the service tests: an app over a fresh store, its token, a client.

``client`` and ``make_client`` run each test twice: over an in-memory DuckDB store and over a
fresh PostgreSQL database (skipped, saying so, where PostgreSQL's binaries are absent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from scaleguard.service import ServiceSettings, create_app  # noqa: E402

TOKEN = "test-token-0123456789abcdef"


def settings_for(**overrides: Any) -> ServiceSettings:
    """Settings over an in-memory store accepting :data:`TOKEN` (overridable)."""
    # client_clock: the rollout tests replay hours of simulated time through ``now``; the
    # default (refusing a ``now`` ahead of the service clock) has its own test.
    base: dict[str, Any] = {"store": ":memory:", "client_clock": True,
                            "token_hashes": (hashlib.sha256(TOKEN.encode()).digest(),)}
    return ServiceSettings(**{**base, **overrides})


@pytest.fixture(params=["duckdb", "postgres"])
def backend_store(request: pytest.FixtureRequest) -> str:
    """Where the app's store lives: in-memory DuckDB, or a fresh PostgreSQL database."""
    if request.param == "duckdb":
        return ":memory:"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(backend_store: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(store=backend_store))) as test_client:
        yield test_client


@pytest.fixture
def make_client(backend_store: str) -> Iterator[Any]:
    """Build clients over apps with other settings; closes them afterwards."""
    made: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        test_client = TestClient(create_app(settings_for(**{"store": backend_store,
                                                            **overrides})),
                                 raise_server_exceptions=False)
        test_client.__enter__()
        made.append(test_client)
        return test_client

    yield make
    for test_client in made:
        test_client.__exit__(None, None, None)


def _new_run(client: TestClient, auth: dict[str, str], name: str = "run-a",
             **extra: Any) -> str:
    response = client.post("/api/v1/runs", json={"name": name, **extra}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["run_id"])


def _batch(n: int, start: int = 0, metric: str = "loss", **extra: Any) -> dict[str, Any]:
    steps = list(range(start, start + n))
    return {"steps": steps, "names": [metric] * n, "values": [10 / (1 + s) for s in steps],
            **extra}


@pytest.fixture
def new_run() -> Any:
    """``new_run(client, auth, name="run-a", **fields)``: create a run, return its id."""
    return _new_run


@pytest.fixture
def batch() -> Any:
    """``batch(n, start=0, metric="loss")``: ``n`` points, steps from ``start``, 10/(1+step)."""
    return _batch


@pytest.fixture
def run_id(client: TestClient, auth: dict[str, str]) -> str:
    return _new_run(client, auth)


@pytest.fixture
def settings() -> Any:
    """``settings(**overrides)``: settings over ``:memory:`` accepting the test token."""
    return settings_for
