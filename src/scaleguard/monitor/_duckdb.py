"""The embedded backend: one DuckDB file (or ``":memory:"``), one writing process.

Each batch is written in one transaction, so a crash loses at most the batch being written,
never what was committed (DuckDB replays its write-ahead log on the next open). DuckDB lets
only one process open a file read-write; within that process one connection is shared under a
lock. Points go in as one Arrow table per transaction (a few distinct names over many rows,
dictionary-encoded).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from scaleguard.errors import InputError
from scaleguard.monitor._migrations import SCHEMA_VERSION
from scaleguard.monitor._sqlstore import PointColumns, SQLStore, Tx

__all__ = ["CHECKPOINT_THRESHOLD", "DuckDBStore"]

CHECKPOINT_THRESHOLD = "256MB"  # write-ahead log size that makes a commit checkpoint


class _DuckTx:
    def __init__(self, con: Any) -> None:
        self.con = con

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.con.execute(sql, list(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.con.execute(sql, list(params)).fetchall()
        return rows

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.con.executemany(sql, [list(r) for r in rows])


def _open_error(path: str, exc: Exception) -> InputError:
    reason = " ".join(str(exc).split())
    if "lock" in reason.lower():
        return InputError(f"store {path}: opened by another process (DuckDB allows one writer); "
                          "stop it, use a postgresql:// store, or send metrics through the "
                          "service")
    return InputError(f"store {path}: cannot open as DuckDB ({reason})")


class DuckDBStore(SQLStore):
    """Runs, points, events and alerts in one DuckDB database file (or ``":memory:"``).

    Parameters
    ----------
    path:
        Database file (created if absent) or ``":memory:"``. A file written by an older
        scaleguard is migrated in place when opened read-write.
    read_only:
        Open without write access (queries only; several readers may share a file that no
        process holds read-write). An outdated file is migrated first, if no one holds it.

    Examples
    --------
    >>> import numpy as np
    >>> from scaleguard.monitor import Batch, RunInfo
    >>> store = DuckDBStore(":memory:")
    >>> store.open_run(RunInfo("r1", "demo", "running", 0.0))
    >>> store.write(Batch("r1", np.arange(3), np.zeros(3), ["loss"] * 3, np.array([3., 2., 1.])))
    True
    >>> store.series("r1", "loss").values.tolist()
    [3.0, 2.0, 1.0]
    >>> store.close()
    """

    dialect = "duckdb"

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._series_ids = {}
        if self.path != ":memory:" and read_only and not Path(self.path).is_file():
            raise InputError(f"store {self.path}: no such file")
        self._con: Any = None
        if read_only:
            self._connect(read_only=True)
            if self.schema_version() < SCHEMA_VERSION:  # migrate once, then read
                self.close()
                self._connect(read_only=False)
                self._migrate()
                self.close()
                self._connect(read_only=True)
        else:
            self._connect(read_only=False)
            self._migrate()

    def _connect(self, *, read_only: bool) -> None:
        import duckdb

        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        if not read_only:
            # A commit whose write-ahead log passes the threshold checkpoints the database
            # (16 MB by default: every few 100,000-point transactions), and that checkpoint,
            # not the insert, was most of an ingest's time (315k against 796k points/s for
            # 1M points). A larger log only costs a longer replay after a crash.
            self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> DuckDBStore:
        return self

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            if self._con is None:
                raise InputError(f"store {self.path}: already closed")
            con = self._con
            if self.read_only:  # nothing to commit; DuckDB refuses BEGIN on read-only files
                yield _DuckTx(con)
                return
            con.execute("BEGIN TRANSACTION")
            try:
                yield _DuckTx(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _lock_migrations(self, tx: Tx) -> None:
        """Nothing to do: DuckDB admits one writing process, and this one holds the lock."""

    def _insert_points(self, tx: Tx, columns: PointColumns) -> None:
        con = self._con
        con.register("_scaleguard_points", columns.table)
        try:
            con.execute("INSERT INTO points SELECT * FROM _scaleguard_points")
        finally:
            con.unregister("_scaleguard_points")

    def _columns(self, sql: str, params: Sequence[Any], width: int) -> list[np.ndarray]:
        with self._transaction():
            cols = self._con.execute(sql, list(params)).fetchnumpy()
        return [np.asarray(c) for c in cols.values()]

    def __repr__(self) -> str:
        state = "closed" if self._con is None else ("read-only" if self.read_only else "open")
        return f"DuckDBStore({self.path!r}, {state})"
