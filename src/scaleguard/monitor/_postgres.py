"""The team backend: a PostgreSQL database that several processes (service replicas) share.

psycopg 3 (the ``postgres`` extra) with a small connection pool: each transaction takes a
connection, so a replica's readers do not wait for its writer. Points go in with ``COPY``
(psycopg's C row writer), the fastest way PostgreSQL takes rows. Two processes may open the
same database at once: migrations run under a transaction-scoped advisory lock, so only the
first applies them, and a keyed batch claims its key under the table's primary key, so two
replicas never store the same batch twice.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from scaleguard.errors import InputError
from scaleguard.monitor._sqlstore import PointColumns, SQLStore, Tx

__all__ = ["MIGRATION_LOCK", "PostgresStore", "redacted"]

# pg_advisory_xact_lock key of "migrate this database" (any fixed 64-bit number: ours reads
# "scaleguard" in ASCII, first 8 bytes).
MIGRATION_LOCK = 0x7363616C65677561
POOL_SIZE = 8  # connections per process: the group writer, request threads, the scheduler
_CONNECT_TIMEOUT_S = 10.0
_COPY_CHUNK_ROWS = 50_000  # ~2.5 MB of CSV per write to COPY


def _placeholders(sql: str) -> str:
    """``?`` placeholders (the store's) as psycopg's ``%s`` (literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(_placeholders(sql), list(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(_placeholders(sql), list(params))
        return list(cur.fetchall()) if cur.description is not None else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_placeholders(sql), [list(r) for r in rows])


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresStore(SQLStore):
    """Runs, points, events and alerts in a PostgreSQL database.

    Parameters
    ----------
    url:
        ``postgresql://user:password@host:port/database`` (libpq's URI form; ``PG*``
        environment variables fill in what it leaves out).
    read_only:
        Refuse writes (the sessions are read-only; queries only).
    pool_size:
        Most connections this process holds.
    """

    dialect = "postgres"

    def __init__(self, url: str, *, read_only: bool = False, pool_size: int = POOL_SIZE) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise InputError(f"store {redacted(url)}: PostgreSQL needs the 'postgres' extra "
                             f"({exc.name} is missing); pip install 'scaleguard[postgres]'"
                             ) from None
        self.url = url
        self.path = redacted(url)
        self.read_only = read_only
        self._series_ids = {}
        options = "-c default_transaction_read_only=on" if read_only else ""
        self._pool: Any = None
        try:  # one plain connection first: a wrong URL fails now, with libpq's own reason
            psycopg.connect(url, connect_timeout=int(_CONNECT_TIMEOUT_S)).close()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InputError(f"store {self.path}: cannot connect to PostgreSQL ({reason})"
                             ) from None
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True,
                                    timeout=_CONNECT_TIMEOUT_S, name="scaleguard",
                                    kwargs={"autocommit": True, "options": options})
        if not read_only:
            self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[Tx]:
        if self._pool is None:
            raise InputError(f"store {self.path}: already closed")
        with self._pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    def _lock_migrations(self, tx: Tx) -> None:
        # Held until this transaction ends: a second replica starting now waits, then finds
        # every migration applied.
        tx.rows("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])

    def _lock_rollout(self, tx: Tx, rollout_id: str) -> None:
        # Another replica deciding the same rollout waits here until this decision commits.
        tx.rows("SELECT rollout_id FROM rollouts WHERE rollout_id = ? FOR UPDATE", [rollout_id])

    def _insert_points(self, tx: Tx, columns: PointColumns) -> None:
        import pyarrow.csv as csv

        assert isinstance(tx, _PgTx)
        # Arrow's C++ CSV writer quotes strings and spells nan/inf as PostgreSQL reads them;
        # several times faster than psycopg's row-by-row writer. One chunk of CSV at a time
        # (the memory of a chunk, not of the transaction).
        with tx.conn.cursor() as cur, cur.copy("COPY points (series_id, step, time, value) "
                                               "FROM STDIN (FORMAT csv)") as copy:
            for chunk in columns.table.to_batches(max_chunksize=_COPY_CHUNK_ROWS):
                out = io.BytesIO()
                csv.write_csv(chunk, out, csv.WriteOptions(include_header=False))
                copy.write(out.getvalue())

    def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> PostgresStore:
        return self

    def __repr__(self) -> str:
        state = "closed" if self._pool is None else ("read-only" if self.read_only else "open")
        return f"PostgresStore({self.path!r}, {state})"
