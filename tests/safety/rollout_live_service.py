"""A real scaleguard service for the SDK's tests: the ASGI app under uvicorn, on a free port, in
a thread, over an in-memory store; stoppable mid-test (the service unreachable)."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")
uvicorn = pytest.importorskip("uvicorn", reason="the service needs the 'serve' extra")

from scaleguard.service import ServiceSettings, create_app  # noqa: E402

TOKEN = "sdk-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class LiveService:
    """``url``, ``app`` (its ``state.store`` is the rollout store), ``stop()``."""

    def __init__(self) -> None:
        self.app = create_app(ServiceSettings(
            store=":memory:", token_hashes=(hashlib.sha256(TOKEN.encode()).digest(),)))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port,
                                                     log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)

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
        self._server.should_exit = True
        self._thread.join(timeout=10)
