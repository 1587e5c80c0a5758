"""A monitor sink that sends a run's batches to the service over HTTP, with retries.

``scaleguard.monitor.start(name, url="http://127.0.0.1:8321", token=...)`` writes through a
:class:`RemoteSink`: the run buffers and batches as it does for a local store (one request per
flush), and this sink retries a batch on connection errors, timeouts, 429 and 5xx answers with
exponential backoff. Each batch carries its ``Idempotency-Key`` (the batch's own ``key``, made
when the run cut it), so a retry of a batch that the service had stored before the answer was
lost is recognised and not stored twice. A batch that still fails stays with the run, key and
all, and the next flush sends it again under the same key: however long acknowledgements are
lost, a batch is stored once.

It lives in ``monitor`` (it is a sink) and needs only httpx: the service imports the monitor,
never the other way round.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from scaleguard.errors import InputError, ScaleguardError

__all__ = ["CLIENT_BACKOFF_S", "CLIENT_RETRIES", "CLIENT_TIMEOUT_S", "RemoteSink",
           "ServiceUnavailable"]

# 10 s per request: a batch of 100,000 points is ~3 MB and is stored in well under a second on
# loopback; 5 attempts 0.25 s apart doubling (0.25, 0.5, 1, 2 s) ride out a service restart of a
# few seconds, like urllib3's Retry(total=5, backoff_factor=0.25).
CLIENT_TIMEOUT_S = 10.0
CLIENT_RETRIES = 5
CLIENT_BACKOFF_S = 0.25
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class ServiceUnavailable(ScaleguardError):
    """The service could not be reached (or kept failing) after every retry."""


class RemoteSink:
    """Writes a run's batches to a scaleguard service (the monitor's ``Sink`` protocol).

    Parameters
    ----------
    url:
        The service's base URL, e.g. ``http://127.0.0.1:8321``.
    token:
        A bearer token the service accepts for writes.
    timeout, retries, backoff:
        Seconds per request; attempts in all; first pause between attempts (doubling).
    transport:
        An ``httpx`` transport (tests pass the app's ASGI or a mock transport).
    """

    def __init__(self, url: str, token: str, *, timeout: float = CLIENT_TIMEOUT_S,
                 retries: int = CLIENT_RETRIES, backoff: float = CLIENT_BACKOFF_S,
                 transport: Any = None) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise InputError(f"url: expected http://HOST:PORT or https://..., got {url!r}")
        if not token:
            raise InputError("token: the service needs a bearer token for writes")
        if retries < 1:
            raise InputError(f"retries: expected at least 1 attempt, got {retries}")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.requests_retried = 0
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {token}"})

    def _post(self, path: str, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> Any:
        import httpx

        pause = self.backoff
        problem = ""
        for attempt in range(self.retries):
            if attempt:
                self.requests_retried += 1
                time.sleep(pause)
                pause *= 2
            try:
                response = self._client.post(path, json=payload, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, timed out: try again
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.is_error:  # 4xx: the request itself is wrong; retrying cannot help
                raise InputError(f"{self.url}{path}: HTTP {response.status_code}: "
                                 f"{_error_text(response)}")
            return response.json()
        raise ServiceUnavailable(f"{self.url}{path}: no answer after {self.retries} attempts "
                                 f"({problem})")

    # -- the monitor's Sink protocol -----------------------------------------------------------
    def open_run(self, run: Any) -> None:
        """Create the run on the service (or resume it, same id)."""
        self._post("/api/v1/runs", {"name": run.name, "run_id": run.run_id,
                                    "config": _json_ready(run.config),
                                    "started_at": run.started_at, "status": run.status})

    def write(self, batch: Any) -> bool:
        """Send one batch; the service stores it in one transaction before it answers.

        False when the service had stored this batch (its key) already.
        """
        payload = batch.as_dict()
        for alert in payload["alerts"]:
            alert.pop("run", None)  # the service takes the run from the URL
        key = batch.key or uuid.uuid4().hex  # the same key on every retry of this batch
        answer = self._post(f"/api/v1/runs/{batch.run_id}/batches", payload,
                            headers={"Idempotency-Key": key})
        return not (isinstance(answer, dict) and answer.get("duplicate"))

    def close_run(self, run_id: str, status: str, finished_at: float) -> None:
        """Mark the run finished on the service."""
        self._post(f"/api/v1/runs/{run_id}/finish",
                   {"status": status, "finished_at": finished_at})

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteSink({self.url!r})"


def _error_text(response: Any) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text[:200]


def _json_ready(config: dict[str, Any]) -> dict[str, Any]:
    import json

    return dict(json.loads(json.dumps(config, default=str)))
