"""The one default store of ``monitor``, ``serve`` and ``assess`` (no heavy imports: the CLI's
help reads it)."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_STORE_ENV", "DEFAULT_STORE_FILE", "default_store"]

DEFAULT_STORE_ENV = "SCALEGUARD_STORE"  # environment variable naming the default store
DEFAULT_STORE_FILE = "scaleguard-runs.duckdb"  # in the working directory, like MLflow's mlruns/


def default_store() -> str:
    """``$SCALEGUARD_STORE`` if set, else ``scaleguard-runs.duckdb`` in the working directory."""
    return os.environ.get(DEFAULT_STORE_ENV) or DEFAULT_STORE_FILE
