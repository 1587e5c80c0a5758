"""Where alerts go: the terminal, a JSONL file, a webhook (the store gets them with the batch).

An alert sink is anything with ``emit(alert)`` and ``close()``. Sinks are called as alerts
happen (alerts are rare; points are batched), so each one must be quick: the webhook posts from
a background thread, with a timeout and retries.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from scaleguard.errors import InputError
from scaleguard.monitor._events import Alert, severity_rank

__all__ = ["AlertSink", "JsonlAlertSink", "TerminalAlertSink", "WebhookAlertSink"]

# Webhook delivery: 5 s per attempt and 3 attempts with exponential backoff (0.5 s, 1 s) —
# the defaults of common HTTP clients' retry helpers (urllib3 Retry backoff 0.5).
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_RETRIES = 3
WEBHOOK_BACKOFF_S = 0.5


@runtime_checkable
class AlertSink(Protocol):
    """Receives alerts one at a time."""

    def emit(self, alert: Alert) -> None:
        """Deliver one alert."""

    def close(self) -> None:
        """Finish pending deliveries and release resources."""


class TerminalAlertSink:
    """Prints each alert of at least ``min_severity`` as one coloured line on stderr."""

    _STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}

    def __init__(self, min_severity: str = "info", console: Any = None) -> None:
        from rich.console import Console

        severity_rank(min_severity)  # refuse unknown names early
        self.min_severity = min_severity
        self.console = console if console is not None else Console(stderr=True)

    def emit(self, alert: Alert) -> None:
        """Print the alert's line."""
        if severity_rank(alert.severity) >= severity_rank(self.min_severity):
            self.console.print(alert.line(), style=self._STYLE[alert.severity], markup=False,
                               highlight=False)

    def close(self) -> None:
        """Nothing to release."""


class JsonlAlertSink:
    """Appends each alert as one JSON line (``as_dict()``) to a file, flushed at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open for alerts ({exc.strerror})") from None

    def emit(self, alert: Alert) -> None:
        """Append the alert."""
        with self._lock:
            self._handle.write(json.dumps(alert.as_dict(), default=str) + "\n")
            self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if not self._handle.closed:
                self._handle.close()


class WebhookAlertSink:
    """POSTs each alert as JSON to ``url``, from a background thread, retrying on failure.

    ``headers`` are added to each request (e.g. an authorization token). Failures after the
    last retry are counted in ``failures`` and kept in ``last_error``; they never reach the
    training loop. :meth:`close` waits for deliveries in flight.
    """

    def __init__(self, url: str, *, timeout: float = WEBHOOK_TIMEOUT_S,
                 retries: int = WEBHOOK_RETRIES, backoff: float = WEBHOOK_BACKOFF_S,
                 headers: dict[str, str] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"webhook url {url!r}: expected http:// or https://")
        if retries < 1:
            raise InputError(f"retries: expected at least 1, got {retries}")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.delivered = 0
        self.failures = 0
        self.last_error = ""
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _post(self, body: bytes) -> None:
        for attempt in range(self.retries):
            request = urllib.request.Request(self.url, data=body, headers=self.headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        with self._lock:
                            self.delivered += 1
                        return
                    error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                error = str(getattr(exc, "reason", exc))
            if attempt + 1 < self.retries:
                time.sleep(self.backoff * 2**attempt)
        with self._lock:
            self.failures += 1
            self.last_error = error

    def emit(self, alert: Alert) -> None:
        """Start delivering the alert; returns at once."""
        body = json.dumps(alert.as_dict(), default=str).encode("utf-8")
        thread = threading.Thread(target=self._post, args=(body,), daemon=True,
                                  name="scaleguard-webhook")
        thread.start()
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def close(self) -> None:
        """Wait for deliveries in flight (each bounded by its timeout and retries)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
