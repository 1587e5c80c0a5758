"""scaleguard's service: an HTTP API and a live dashboard for monitoring and rollouts.

Install with the ``serve`` extra (FastAPI, uvicorn, httpx, prometheus-client) and start it with
``scaleguard serve``. Jobs post metric batches to ``/api/v1/runs/{run}/batches`` (or use
``scaleguard.monitor.start(..., url=..., token=...)``), people watch the dashboard at ``/``.

Writes need a bearer token from the token file (kept as SHA-256 digests, compared in constant
time); reads need one too unless the service was started with open reads.
"""

from typing import TYPE_CHECKING, Any

from scaleguard.service._auth import check_token, hash_token, load_tokens, new_token
from scaleguard.service._settings import ServiceSettings

if TYPE_CHECKING:
    from scaleguard.service._app import create_app


def __getattr__(name: str) -> Any:
    # FastAPI is imported only by whoever builds the app: a training job that sends metrics
    # through scaleguard.service.client needs httpx alone.
    if name == "create_app":
        from scaleguard.service._app import create_app

        return create_app
    raise AttributeError(f"module 'scaleguard.service' has no attribute {name!r}")


__all__ = [
    "ServiceSettings",
    "check_token",
    "create_app",
    "hash_token",
    "load_tokens",
    "new_token",
]
