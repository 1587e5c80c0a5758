"""A real scaleguard service for the SDK's tests: the ASGI app under uvicorn, on a free port, in
a thread, over an in-memory store; stoppable mid-test (the service unreachable)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")
pytest.importorskip("uvicorn", reason="the service needs the 'serve' extra")

from scaleguard.service import ServiceSettings, create_app  # noqa: E402
from scaleguard.service._background import BackgroundServer  # noqa: E402

TOKEN = "sdk-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class LiveService:
    """``url``, ``app`` (its ``state.store`` is the rollout store), ``stop()``."""

    def __init__(self) -> None:
        self.app = create_app(ServiceSettings(
            store=":memory:", token_hashes=(hashlib.sha256(TOKEN.encode()).digest(),)))
        self._server = BackgroundServer(self.app).__enter__()
        self.url = self._server.url

    def create(self, plan: dict[str, Any], rollout_id: str) -> dict[str, Any]:
        import httpx

        response = httpx.post(f"{self.url}/api/v1/rollouts", headers=AUTH,
                              json={"plan": plan, "rollout_id": rollout_id})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, path: str) -> Any:
        import httpx

        response = httpx.get(f"{self.url}/api/v1/rollouts/{path}", headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        self._server.__exit__(None, None, None)
