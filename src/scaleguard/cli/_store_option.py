"""The one ``--store`` option of ``monitor``, ``serve`` and ``assess``, and its one default."""

from __future__ import annotations

import typer

from scaleguard._store_default import DEFAULT_STORE_ENV, DEFAULT_STORE_FILE, default_store
from scaleguard.errors import InputError

__all__ = ["STORE_OPTION", "chosen_store"]

STORE_OPTION = typer.Option(
    None, "--store",
    help=f"Monitor store: a DuckDB file, :memory:, or postgresql://user@host/db "
         f"(default: ${DEFAULT_STORE_ENV} or ./{DEFAULT_STORE_FILE}).")


def chosen_store(store: str | None, *, old_flag: str | None = None,
                 old_value: str | None = None) -> str:
    """The store named on the command line (or by a deprecated flag), else the default.

    Examples
    --------
    >>> chosen_store("runs.duckdb")
    'runs.duckdb'
    >>> chosen_store(None, old_flag="--db", old_value="old.duckdb")
    'old.duckdb'
    """
    if old_value is not None:
        if store is not None and store != old_value:
            raise InputError(f"{old_flag}: is the old name of --store; give one, not both")
        store = old_value
    if store is None:
        return default_store()
    if not store.strip():
        raise InputError("--store: expected a DuckDB file, :memory: or a postgresql:// URL, "
                         "got an empty value")
    return store
