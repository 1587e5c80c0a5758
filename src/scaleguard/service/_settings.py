"""The service's settings: where the store lives, where it listens, who may write."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scaleguard._store_default import default_store
from scaleguard.errors import ConfigError

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_PORT", "ServiceSettings"]

DEFAULT_HOST = "127.0.0.1"  # loopback: nothing outside this machine reaches it unless asked
DEFAULT_PORT = 8321  # scaleguard's own choice, unassigned by IANA
# 4 MiB holds ~50,000 metric points of JSON in one request; nginx's default
# client_max_body_size is 1 MiB, so a proxy in front of us is the tighter limit by default.
DEFAULT_MAX_BODY_BYTES = 4 * 2**20


@dataclass(frozen=True)
class ServiceSettings:
    """How one service process runs.

    Parameters
    ----------
    store:
        The monitor store: a DuckDB file, ``":memory:"`` (tests, throwaway demos), or a
        ``postgresql://`` URL (several replicas on one database). Empty: the default of every
        command (``$SCALEGUARD_STORE``, else ``scaleguard-runs.duckdb``).
    db:
        Deprecated name of ``store`` (kept so that older settings go on working).
    host, port:
        Where ``scaleguard serve`` listens; loopback by default.
    token_file:
        Bearer tokens allowed to write (see :func:`scaleguard.service.load_tokens`). When absent,
        ``scaleguard serve`` makes one token for this process and prints it once.
    token_hashes:
        SHA-256 digests of the accepted tokens, already loaded (the app never sees plain tokens).
    token_names:
        Names of some of those digests (who approved, in the audit log); the others are named
        by their digest's first hex digits.
    open_reads:
        When true, reads (GET, the dashboard, ``/metrics``) need no token; writes always do.
    max_body_bytes:
        Larger request bodies are refused with 413 before they are parsed.
    client_clock:
        When true, a rollout request's ``now`` may lie any distance ahead of the service's
        clock (a replay of recorded time, a test). By default the service decides on its own
        clock: a ``now`` more than ``CLOCK_SKEW`` ahead would let a client skip a stage's
        minimum duration, so it is refused.
    scheduler:
        Decide every running rollout at its plan's ``look_interval`` (not only when
        observations arrive).
    prometheus_url:
        The Prometheus HTTP API that ``source: prometheus`` metrics are read from at each look.
    webhooks, webhook_format:
        Receivers of every decision: URLs, each optionally prefixed ``json+`` or ``slack+``;
        the format of those without a prefix (``json`` or ``slack``).

    Examples
    --------
    >>> ServiceSettings(store=":memory:").host
    '127.0.0.1'
    >>> ServiceSettings(db=":memory:").store
    ':memory:'
    >>> ServiceSettings(store=":memory:", max_body_bytes=0)
    Traceback (most recent call last):
    ...
    scaleguard.errors.ConfigError: max_body_bytes: expected a positive number of bytes, got 0
    """

    store: str = ""
    db: str | None = field(default=None, repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token_file: Path | None = None
    token_hashes: tuple[bytes, ...] = field(default=(), repr=False)
    token_names: Mapping[bytes, str] = field(default_factory=dict, repr=False)
    open_reads: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    client_clock: bool = False
    scheduler: bool = True
    prometheus_url: str | None = None
    webhooks: tuple[str, ...] = ()
    webhook_format: str = "json"

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port: expected an integer in 0..65535, got {self.port!r}")
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes <= 0:
            raise ConfigError("max_body_bytes: expected a positive number of bytes, "
                              f"got {self.max_body_bytes!r}")
        if not self.host.strip():
            raise ConfigError("host: expected an address such as 127.0.0.1, got an empty string")
        if self.prometheus_url is not None and \
                not self.prometheus_url.startswith(("http://", "https://")):
            raise ConfigError(f"prometheus_url: expected an http(s) URL such as "
                              f"http://localhost:9090, got {self.prometheus_url!r}")
        self.webhook_targets()  # refuse a bad URL when the settings are made, not at a decision
        if self.db is not None:
            if self.store and self.store != self.db:
                raise ConfigError(f"db: is the old name of store; give one, not both "
                                  f"(store={self.store!r}, db={self.db!r})")
            object.__setattr__(self, "store", self.db)
        if self.store == "":
            object.__setattr__(self, "store", default_store())
        elif not self.store.strip():
            raise ConfigError("store: expected a DuckDB file, ':memory:' or a postgresql:// URL, "
                              "got blanks")

    def webhook_targets(self) -> list[Any]:
        """The :class:`~scaleguard.service._webhooks.WebhookTarget` of each webhook URL."""
        from scaleguard.service._webhooks import parse_webhook

        return [parse_webhook(url, self.webhook_format, "webhooks") for url in self.webhooks]

    @property
    def is_loopback(self) -> bool:
        """Whether :attr:`host` is only reachable from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings; token hashes are summarised by their count, never shown."""
        out = asdict(self)
        out["token_file"] = None if self.token_file is None else str(self.token_file)
        out["token_hashes"] = len(self.token_hashes)
        out["token_names"] = sorted(self.token_names.values())
        return out
