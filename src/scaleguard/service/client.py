"""Where :class:`~scaleguard.monitor.RemoteSink` used to live; it is a monitor sink now.

Kept so that ``from scaleguard.service.client import RemoteSink`` goes on working.
"""

from scaleguard.monitor._remote import (
    CLIENT_BACKOFF_S,
    CLIENT_RETRIES,
    CLIENT_TIMEOUT_S,
    RemoteSink,
    ServiceUnavailable,
)

__all__ = ["CLIENT_BACKOFF_S", "CLIENT_RETRIES", "CLIENT_TIMEOUT_S", "RemoteSink",
           "ServiceUnavailable"]
