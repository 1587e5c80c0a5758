"""Decision webhooks: each decision, posted off the decision path to the configured receivers.

Two formats: ``json`` posts the decision record (the audit record with the rollout's id) and
``slack`` posts ``{"text": ...}``, which Slack, Mattermost and Teams workflow incoming webhooks
accept. Receivers come from ``serve --webhook URL`` (``slack+https://...`` picks the Slack
format for one URL) and from the plan's ``webhooks``.

A decision is stored before it is published, and publishing only puts it on a bounded queue:
one worker thread delivers with retries and backoff, so that a slow, failing or unreachable
receiver never delays, blocks or changes a decision. When the queue is full, the newest
notifications are dropped and counted (the audit log keeps every decision regardless).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scaleguard.errors import ConfigError
from scaleguard.io import shown

__all__ = ["WebhookDispatcher", "WebhookTarget", "parse_webhook", "slack_text"]

log = logging.getLogger("scaleguard.webhooks")

Format = Literal["json", "slack"]
FORMATS: tuple[Format, ...] = ("json", "slack")
QUEUE_SIZE = 1000  # notifications waiting; a receiver down for a day at one look a minute fits
ATTEMPTS = 4  # first try and three retries
BACKOFF_S = 0.5  # first retry after 0.5 s, then 1 s, 2 s: a receiver restarting is back by then
TIMEOUT_S = 5.0  # per delivery; Slack answers in well under a second


@dataclass(frozen=True)
class WebhookTarget:
    """Where one webhook goes and in which format."""

    url: str
    format: Format = "json"


def parse_webhook(text: str, default_format: str = "json", name: str = "--webhook"
                  ) -> WebhookTarget:
    """A receiver from ``URL`` or ``FORMAT+URL`` (``slack+https://hooks.slack.com/...``).

    >>> parse_webhook("slack+https://hooks.example/T1")
    WebhookTarget(url='https://hooks.example/T1', format='slack')
    >>> parse_webhook("ftp://x")
    Traceback (most recent call last):
    ...
    scaleguard.errors.ConfigError: --webhook: expected an http(s) URL, optionally prefixed \
json+ or slack+, got 'ftp://x'
    """
    if default_format not in FORMATS:
        raise ConfigError(f"{name}: unknown format {default_format!r}; expected json or slack")
    chosen: str = default_format
    url = text.strip()
    head, plus, rest = url.partition("+")
    if plus and head in FORMATS:
        chosen, url = head, rest
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://") or \
            any(c.isspace() for c in url) or _unusable(url):
        raise ConfigError(f"{name}: expected an http(s) URL, optionally prefixed json+ or "
                          f"slack+, got {shown(text, 200)}")
    return WebhookTarget(url, chosen)  # type: ignore[arg-type]


def _unusable(url: str) -> bool:
    """Whether httpx refuses to build a request to ``url`` (a control character, a port past
    65535, no host, longer than it allows): refused when configured, not at a decision."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return True
    return not parsed.host or (parsed.port is not None and not 0 < parsed.port <= 65535)


def slack_text(rollout_id: str, record: Mapping[str, Any]) -> str:
    """One readable line per decision, then its first reasons (Slack mrkdwn)."""
    action = str(record.get("action", "?"))
    traffic = record.get("traffic")
    share = f"{float(traffic):.4g}" if isinstance(traffic, int | float) else "?"
    head = (f"*scaleguard* rollout `{rollout_id}`: *{action.replace('_', ' ')}* at stage "
            f"`{record.get('stage', '?')}`, traffic {share}")
    failing = record.get("failing") or []
    lines = [head]
    if failing:
        lines.append("failing: " + ", ".join(str(f) for f in failing[:5]))
    lines.extend(f"• {reason}" for reason in list(record.get("reasons") or [])[:3])
    return "\n".join(lines)


def _body(target: WebhookTarget, rollout_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    if target.format == "slack":
        return {"text": slack_text(rollout_id, record)}
    return {"rollout_id": rollout_id, **record}


class WebhookDispatcher:
    """Delivers decisions to webhooks from one background thread through a bounded queue.

    Parameters
    ----------
    targets:
        Receivers of every rollout's decisions (``serve --webhook``).
    queue_size, attempts, backoff, timeout:
        Bounds: notifications waiting, tries per notification, first retry delay (doubling),
        seconds per try.

    Attributes ``delivered``, ``failed`` (gave up after its attempts) and ``dropped`` (queue
    full) count notifications.
    """

    def __init__(self, targets: Sequence[WebhookTarget] = (), *, queue_size: int = QUEUE_SIZE,
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF_S,
                 timeout: float = TIMEOUT_S) -> None:
        self.targets = tuple(targets)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout
        self.delivered = self.failed = self.dropped = 0
        self._queue: queue.Queue[tuple[WebhookTarget, dict[str, Any]] | None] = \
            queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def publish(self, rollout_id: str, record: Mapping[str, Any],
                extra: Iterable[Any] = ()) -> None:
        """Queue ``record`` for every receiver (``extra``: the plan's, with ``url``/``format``);
        never blocks and never raises for a receiver's sake."""
        targets = [*self.targets, *(WebhookTarget(w.url, w.format) for w in extra)]
        if not targets or self._stop.is_set():
            return
        self._ensure_worker()
        for target in targets:
            try:
                self._queue.put_nowait((target, _body(target, rollout_id, record)))
            except queue.Full:
                with self._lock:
                    self.dropped += 1
                log.warning("webhook queue full (%d waiting): dropped the %s decision of "
                            "rollout %s for %s", self._queue.maxsize, record.get("action"),
                            rollout_id, target.url)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker: what it can deliver within ``timeout`` is delivered, the rest is
        dropped (the decisions stay in the audit log)."""
        self.drain(timeout)
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(queue.Full):  # a full queue wakes the worker anyway
                self._queue.put_nowait(None)
            self._thread.join(timeout=timeout)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name="scaleguard-webhooks")
                self._thread.start()

    def _work(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                item = self._queue.get()
                try:
                    if item is not None:
                        self._deliver(client, *item)
                except Exception:  # a receiver's URL or body httpx cannot send: never fatal,
                    with self._lock:  # or every later notification would wait forever
                        self.failed += 1
                    log.exception("webhook %s: gave up", item[0].url if item else "?")
                finally:
                    self._queue.task_done()

    def _deliver(self, client: Any, target: WebhookTarget, body: dict[str, Any]) -> None:
        import httpx

        why = ""
        for attempt in range(self.attempts):
            if attempt and self._stop.wait(self.backoff * 2 ** (attempt - 1)):
                break
            try:
                response = client.post(target.url, json=body)
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                with self._lock:
                    self.delivered += 1
                return
            why = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the receiver refuses this body: retrying sends the same refusal
        with self._lock:
            self.failed += 1
        log.warning("webhook %s: gave up (%s)", target.url, why)
