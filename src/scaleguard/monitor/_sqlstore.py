"""The :class:`~scaleguard.monitor.Store` queries, once, for every SQL backend.

A backend supplies a transaction (:meth:`SQLStore._transaction`, yielding a :class:`Tx`), the
bulk insert of points (Arrow for DuckDB, binary ``COPY`` for PostgreSQL), and its dialect's name for
the migrations. Everything else (which rows a query reads, how keys make a batch idempotent,
how alert states change) is here, so the backends cannot drift apart; the contract tests run
the same suite on both.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections import ChainMap
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from scaleguard.errors import InputError
from scaleguard.monitor._downsample import downsample
from scaleguard.monitor._events import ALERT_STATES, SEVERITIES, Alert
from scaleguard.monitor._migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    VERSIONS_TABLE,
    Dialect,
    Migration,
    statements,
)
from scaleguard.monitor._rollout_sql import RolloutTables
from scaleguard.monitor._store import (
    AlertCount,
    Batch,
    LatestValue,
    RunInfo,
    Series,
    StoredEvent,
)

__all__ = ["NameCodes", "PointColumns", "SQLStore", "Tx"]

# Keys per INSERT into batch_keys: 6 parameters each, far below PostgreSQL's 65,535.
_CLAIMS_PER_STATEMENT = 1_000
# Series codes a store remembers (runs x metrics; then it forgets them and asks again)
_SERIES_REMEMBERED = 100_000
_RUN_COLUMNS = "r.run_id, r.name, r.status, r.started_at, r.finished_at, r.config"
_ALERT_COLUMNS = ("run_id, time, severity, title, message, metric, step, value, detector, "
                  "action, extra, alert_id, state")
# The newest point of each (run, metric) and the number of its points, in one pass that both
# backends run (no arg_max in PostgreSQL, no DISTINCT ON needed).
_LATEST = """
SELECT l.run_id, r.name, l.name, l.value, l.step, l.n FROM (
    SELECT s.run_id, s.name, p.value, p.step,
           row_number() OVER (PARTITION BY p.series_id ORDER BY p.step DESC, p.time DESC) AS k,
           count(*) OVER (PARTITION BY p.series_id) AS n
    FROM points p JOIN series s ON s.series_id = p.series_id {where}
    ) l JOIN runs r ON r.run_id = l.run_id
WHERE l.k = 1 {running} ORDER BY l.run_id, l.name
"""


class Tx(Protocol):
    """One open transaction, in ``?`` placeholders whatever the backend's own are."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class NameCodes:
    """Each batch's metric names as small integers (their order of first appearance) and the
    distinct names: a few names over many points, counted once each."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.names: list[list[str]] = []
        self.codes: list[np.ndarray] = []
        for batch in batches:
            # C-level loops only (dict.fromkeys, map): 3x faster than a Python generator
            code = {n: i for i, n in enumerate(dict.fromkeys(batch.names))}
            self.codes.append(np.fromiter(map(code.__getitem__, batch.names), np.int32,
                                          len(batch)))
            self.names.append([str(n) for n in code])

    def pairs(self, batches: Sequence[Batch]) -> set[tuple[str, str]]:
        """The distinct (run id, metric name) pairs of ``batches``."""
        return {(b.run_id, n) for b, names in zip(batches, self.names, strict=True)
                for n in names}


class PointColumns:
    """The points of several batches as one Arrow table (series_id, step, time, value), the
    layout of the ``points`` table: four numeric columns, no strings. DuckDB inserts the
    table as it is; PostgreSQL takes it through binary ``COPY``."""

    def __init__(self, batches: Sequence[Batch], names: NameCodes,
                 series: Mapping[tuple[str, str], int]) -> None:
        import pyarrow as pa

        ids = [np.asarray([series[(b.run_id, n)] for n in distinct], np.int32)[codes]
               for b, distinct, codes in zip(batches, names.names, names.codes, strict=True)]
        self.table = pa.Table.from_arrays(
            [pa.array(np.concatenate(ids)),
             pa.array(np.concatenate([np.asarray(b.steps, np.int64) for b in batches])),
             pa.array(np.concatenate([np.asarray(b.times, np.float64) for b in batches])),
             pa.array(np.concatenate([np.asarray(b.values, np.float64) for b in batches]),
                      from_pandas=False)],
            names=["series_id", "step", "time", "value"])

    def __len__(self) -> int:
        return int(self.table.num_rows)


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                 json.loads(row[10]), int(row[11]), row[12])


class SQLStore(RolloutTables, ABC):
    """The queries of a store over a SQL database; subclasses connect and bulk-insert."""

    path: str  # what the store was opened from, for messages
    dialect: Dialect
    read_only: bool = False
    # (run id, metric name) -> series code, of committed series only (a backend's __init__
    # starts it empty): a code, once committed, never changes, so a process looks it up once.
    _series_ids: dict[tuple[str, str], int]

    # -- what a backend supplies ---------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Tx]:
        """A transaction: commits when the block ends, rolls back on an exception."""

    @abstractmethod
    def _insert_points(self, tx: Tx, columns: PointColumns) -> None:
        """Append the points in the open transaction, as fast as the backend allows."""

    @abstractmethod
    def _lock_migrations(self, tx: Tx) -> None:
        """Keep two processes from migrating the same database at once."""

    def _lock_rollout(self, tx: Tx, rollout_id: str) -> None:
        """Hold the rollout's row until ``tx`` ends (PostgreSQL); DuckDB's one writer needs no
        more than the store's lock, which the transaction holds."""

    @abstractmethod
    def close(self) -> None:
        """Release the database (idempotent)."""

    # -- schema --------------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Apply the migrations this database lacks, each recorded in ``schema_versions``."""
        with self._transaction() as tx:
            self._lock_migrations(tx)
            tx.run(statements_table(self.dialect))
            have = {int(r[0]) for r in tx.rows("SELECT version FROM schema_versions")}
            newest = max(have, default=0)
            if newest > SCHEMA_VERSION:
                raise InputError(f"store {self.path}: schema version {newest} is newer than this "
                                 f"scaleguard knows ({SCHEMA_VERSION}); upgrade scaleguard")
            for migration in MIGRATIONS:
                if migration.version in have:
                    continue
                for sql in statements(migration, self.dialect):
                    tx.run(sql)
                tx.run("INSERT INTO schema_versions VALUES (?, ?, ?)",
                       [migration.version, migration.name, time.time()])

    def schema_version(self) -> int:
        """The newest migration applied to this database (0: none recorded)."""
        with self._transaction() as tx:
            if not tx.rows(_HAS_VERSIONS[self.dialect]):
                return 0
            return int(tx.rows("SELECT coalesce(max(version), 0) FROM schema_versions")[0][0])

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self._transaction() as tx:
            tx.rows("SELECT 1")

    # -- Sink ----------------------------------------------------------------------------------
    def open_run(self, run: RunInfo) -> None:
        """Insert the run, or set an existing one (same id) back to running."""
        with self._transaction() as tx:
            tx.run("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE "
                   "SET status = excluded.status, finished_at = NULL",
                   [run.run_id, run.name, run.status, run.started_at, run.finished_at,
                    json.dumps(run.config, default=str)])

    def write(self, batch: Batch) -> bool:
        """Append the batch's points, events and alerts in one transaction (False, writing
        nothing, when its key was stored already)."""
        return self.write_many([batch])[0]

    def write_many(self, batches: Sequence[Batch]) -> list[bool]:
        """Write ``batches`` in one transaction; per batch, whether it was stored.

        A keyed batch is claimed by inserting its key into ``batch_keys`` first: the primary
        key refuses a second copy, and on PostgreSQL a concurrent claim of the same key by
        another replica waits for this transaction and then finds the key taken.
        """
        if not batches:
            return []
        known = self._series_ids
        added: dict[tuple[str, str], int] = {}
        with self._transaction() as tx:
            fresh = self._claim(tx, batches)
            stored = [b for b, new in zip(batches, fresh, strict=True) if new]
            if with_points := [b for b in stored if len(b)]:
                names = NameCodes(with_points)
                # in one order, so that two replicas adding the same series never deadlock
                for pair in sorted(names.pairs(with_points) - known.keys()):
                    added[pair] = self._series_id(tx, *pair)
                self._insert_points(tx, PointColumns(with_points, names,
                                                     ChainMap(added, known)))
            events = [[e.run_id if e.run_id is not None else b.run_id, e.step, e.time, e.kind,
                       e.source, json.dumps(e.payload, default=str)]
                      for b in stored for e in b.events]
            if events:
                tx.many("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", events)
            alerts = [[b.run_id, a.time, a.severity, a.title, a.message, a.metric, a.step,
                       a.value, a.detector, a.action, json.dumps(a.extra, default=str)]
                      for b in stored for a in b.alerts]
            if alerts:
                tx.many("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                        "nextval('alert_ids'), 'open', NULL)", alerts)
        if len(known) + len(added) > _SERIES_REMEMBERED:
            known.clear()  # a bounded memory: forgotten codes are looked up again
        known.update(added)  # committed: from now on the codes are the database's
        return fresh

    @staticmethod
    def _series_id(tx: Tx, run_id: str, name: str) -> int:
        """The code of the series, inserted if new; a concurrent insert of the same pair (another
        replica) waits for the first transaction, then finds its row."""
        rows = tx.rows("INSERT INTO series VALUES (nextval('series_ids'), ?, ?) "
                       "ON CONFLICT DO NOTHING RETURNING series_id", [run_id, name])
        if not rows:
            rows = tx.rows("SELECT series_id FROM series WHERE run_id = ? AND name = ?",
                           [run_id, name])
        return int(rows[0][0])

    @staticmethod
    def _claim(tx: Tx, batches: Sequence[Batch]) -> list[bool]:
        """Per batch, whether it is new: an unkeyed batch always is; a keyed one if its key
        goes into ``batch_keys`` now (the first copy within ``batches`` counts).

        The keys go in a few multi-row statements, not one statement each: a group of 400
        batches paid 400 round trips (PostgreSQL) or 400 planned statements (DuckDB, 3-5 ms
        each) before. Sorted, so that two replicas claiming overlapping keys lock them in one
        order (no deadlock).
        """
        first: dict[tuple[str, str], int] = {}
        for i, batch in enumerate(batches):
            if batch.key is not None:
                first.setdefault((batch.run_id, batch.key), i)
        claimed: set[tuple[str, str]] = set()
        pending = sorted(first)
        now = time.time()
        for start in range(0, len(pending), _CLAIMS_PER_STATEMENT):
            part = pending[start:start + _CLAIMS_PER_STATEMENT]
            values = []
            for pair in part:
                b = batches[first[pair]]
                values += [b.run_id, b.key, len(b), len(b.events), len(b.alerts), now]
            rows = tx.rows("INSERT INTO batch_keys VALUES "
                           + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))
                           + " ON CONFLICT DO NOTHING RETURNING run_id, key", values)
            claimed.update((str(r[0]), str(r[1])) for r in rows)
        return [b.key is None or (first[(b.run_id, b.key)] == i and (b.run_id, b.key) in claimed)
                for i, b in enumerate(batches)]

    def batch_receipt(self, run_id: str, key: str) -> dict[str, Any] | None:
        """``{run_id, key, points, events, alerts, stored_at}`` of a stored keyed batch."""
        with self._transaction() as tx:
            rows = tx.rows("SELECT points, events, alerts, stored_at FROM batch_keys "
                           "WHERE run_id = ? AND key = ?", [run_id, key])
        if not rows:
            return None
        points, events, alerts, stored_at = rows[0]
        return {"run_id": run_id, "key": key, "points": int(points), "events": int(events),
                "alerts": int(alerts), "stored_at": stored_at}

    def close_run(self, run_id: str, status: str, finished_at: float) -> None:
        """Mark the run finished with ``status``."""
        with self._transaction() as tx:
            tx.run("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                   [status, finished_at, run_id])

    def append_events(self, events: Sequence[StoredEvent]) -> None:
        """Append generic events (each with its own ``run_id``, or none) in one transaction."""
        if not events:
            return
        with self._transaction() as tx:
            tx.many("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    [[e.run_id, e.step, e.time, e.kind, e.source,
                      json.dumps(e.payload, default=str)] for e in events])

    # -- runs ----------------------------------------------------------------------------------
    def runs(self, *, status: str | None = None, name: str | None = None,
             limit: int | None = None, offset: int = 0) -> list[RunInfo]:
        """Runs, newest first, with their point counts; filtered and paged if asked."""
        where, params = _filters({"r.status": status, "r.name": name})
        page = ""
        if limit is not None:
            page = " LIMIT ? OFFSET ?"
            params += [int(limit), int(offset)]
        elif offset:
            page = " OFFSET ?"
            params.append(int(offset))
        with self._transaction() as tx:
            rows = tx.rows(
                f"SELECT {_RUN_COLUMNS}, coalesce(c.n, 0) FROM runs r LEFT JOIN "
                "(SELECT s.run_id, count(*) AS n FROM points p JOIN series s "
                "ON s.series_id = p.series_id GROUP BY s.run_id) c "
                f"ON c.run_id = r.run_id {where} ORDER BY r.started_at DESC, r.run_id{page}",
                params)
        return [_run(r, r[6]) for r in rows]

    def find_run(self, run: str, *, count: bool = False) -> RunInfo | None:
        """The run with id ``run``, else the newest named ``run``, else None."""
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT {_RUN_COLUMNS} FROM runs r WHERE r.run_id = ? OR r.name = ? "
                           "ORDER BY CASE WHEN r.run_id = ? THEN 0 ELSE 1 END, "
                           "r.started_at DESC LIMIT 1", [run, run, run])
            if not rows:
                return None
            points = (tx.rows("SELECT count(*) FROM points WHERE series_id IN "
                              "(SELECT series_id FROM series WHERE run_id = ?)",
                              [rows[0][0]])[0][0] if count else None)
        return _run(rows[0], points)

    def resolve(self, run: str) -> RunInfo:
        """The run whose id is ``run``, else the newest run named ``run`` (counted)."""
        info = self.find_run(run, count=True)
        if info is None:
            known = ", ".join(sorted({r.name for r in self.runs()})) or "none"
            raise InputError(f"--run {run!r}: no such run in store {self.path}; runs are {known}")
        return info

    # -- points --------------------------------------------------------------------------------
    def metrics(self, run_id: str) -> list[str]:
        """Metric names of a run, sorted."""
        with self._transaction() as tx:
            return [r[0] for r in tx.rows(
                "SELECT name FROM series WHERE run_id = ? ORDER BY name", [run_id])]

    def _columns(self, sql: str, params: Sequence[Any], width: int) -> list[np.ndarray]:
        """The ``width`` columns of a query as arrays (a backend may read them faster than
        row by row)."""
        with self._transaction() as tx:
            rows = tx.rows(sql, params)
        if not rows:
            return [np.empty(0) for _ in range(width)]
        return [np.asarray(col) for col in zip(*rows, strict=True)]

    def series(self, run_id: str, metric: str, *, max_points: int | None = None,
               method: str = "lttb", start: int | None = None,
               end: int | None = None) -> Series:
        """One metric of one run in step order, optionally steps ``start..end``, downsampled to
        about ``max_points`` (the range is downsampled on its own, so zooming shows detail)."""
        where = "series_id = (SELECT series_id FROM series WHERE run_id = ? AND name = ?)"
        params = list[Any]([run_id, metric])
        if start is not None:
            where, params = where + " AND step >= ?", [*params, int(start)]
        if end is not None:
            where, params = where + " AND step <= ?", [*params, int(end)]
        step, value, at = self._columns(
            f"SELECT step, value, time FROM points WHERE {where} ORDER BY step, time", params, 3)
        steps = np.asarray(step, dtype=np.int64)
        values = np.asarray(value, dtype=np.float64)
        times = np.asarray(at, dtype=np.float64)
        keep = downsample(steps, values, max_points, method)
        return Series(run_id, metric, steps[keep], values[keep], times[keep], len(steps))

    def frame(self, run_id: str) -> Any:
        """All points of a run as a pandas frame with columns step, time, name, value."""
        import pandas as pd

        step, at, name, value = self._columns(
            "SELECT p.step, p.time, s.name, p.value FROM points p JOIN series s "
            "ON s.series_id = p.series_id WHERE s.run_id = ? ORDER BY s.name, p.step, p.time",
            [run_id], 4)
        return pd.DataFrame({"step": np.asarray(step, np.int64),
                             "time": np.asarray(at, np.float64),
                             "name": np.asarray(name, object),
                             "value": np.asarray(value, np.float64)})

    def latest(self, run_id: str | None = None, *,
               running_only: bool = False) -> list[LatestValue]:
        """The newest value of each metric of each run (one run's, or running runs' only)."""
        where, params = ("WHERE s.run_id = ?", [run_id]) if run_id is not None else ("", [])
        sql = _LATEST.format(where=where,
                             running="AND r.status = 'running'" if running_only else "")
        with self._transaction() as tx:
            rows = tx.rows(sql, params)
        return [LatestValue(r[0], r[1], r[2], np.nan if r[3] is None else float(r[3]), int(r[4]),
                            int(r[5])) for r in rows]

    # -- events and alerts ---------------------------------------------------------------------
    def events(self, run_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events, oldest first; ``kind`` matches a prefix (``"rollout."``)."""
        where, params = _filters({"run_id": run_id})
        if kind is not None:
            where += (" AND" if where else "WHERE") + " substr(kind, 1, ?) = ?"
            params += [len(kind), kind]
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT kind, time, payload, source, step, run_id FROM events "
                           f"{where} ORDER BY time, kind", params)
        return [StoredEvent(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def alerts(self, run_id: str | None = None, *, state: str | None = None,
               min_severity: str = "info", limit: int | None = None) -> list[Alert]:
        """Stored alerts with their ids and states, oldest first (the newest ``limit``)."""
        _check_state(state)
        if min_severity not in SEVERITIES:
            raise InputError(f"severity: expected one of {', '.join(SEVERITIES)}, "
                             f"got {min_severity!r}")
        where, params = _filters({"run_id": run_id, "state": state})
        floor = list(SEVERITIES[SEVERITIES.index(min_severity):])
        where += (" AND" if where else "WHERE") + \
            f" severity IN ({', '.join('?' * len(floor))})"
        params += floor
        page = ""
        if limit is not None:
            page, params = " LIMIT ?", [*params, int(limit)]
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT {_ALERT_COLUMNS} FROM alerts {where} "
                           f"ORDER BY time DESC, alert_id DESC{page}", params)
        return [_alert(r) for r in reversed(rows)]

    def alert_counts(self, run_id: str | None = None) -> list[AlertCount]:
        """Alerts counted by run, severity and state."""
        where, params = _filters({"a.run_id": run_id})
        with self._transaction() as tx:
            rows = tx.rows("SELECT a.run_id, coalesce(r.name, a.run_id), a.severity, a.state, "
                           "count(*) FROM alerts a LEFT JOIN runs r ON r.run_id = a.run_id "
                           f"{where} GROUP BY a.run_id, r.name, a.severity, a.state "
                           "ORDER BY a.run_id, a.severity, a.state", params)
        return [AlertCount(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def alert(self, alert_id: int) -> Alert | None:
        """The stored alert with this id, or None."""
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alert_id = ?",
                           [int(alert_id)])
        return _alert(rows[0]) if rows else None

    def set_alert_state(self, alert_id: int, state: str, *, at: float | None = None) -> Alert:
        """Acknowledge, resolve or reopen a stored alert; the alert as it now is."""
        if state not in ALERT_STATES:
            raise InputError(f"state: expected one of {', '.join(ALERT_STATES)}, got {state!r}")
        with self._transaction() as tx:
            tx.run("UPDATE alerts SET state = ?, state_at = ? WHERE alert_id = ?",
                   [state, time.time() if at is None else at, int(alert_id)])
        changed = self.alert(alert_id)
        if changed is None:
            raise InputError(f"alert {alert_id}: no such alert in store {self.path}")
        return changed

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_HAS_VERSIONS = {
    "duckdb": "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_versions'",
    "postgres": "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_versions' "
                "AND table_schema = current_schema()",
}


def statements_table(dialect: Dialect) -> str:
    """The ``CREATE TABLE IF NOT EXISTS schema_versions`` statement of a backend."""
    return statements(Migration(0, "versions", (VERSIONS_TABLE,)), dialect)[0]


def _run(row: Sequence[Any], points: Any) -> RunInfo:
    return RunInfo(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]),
                   None if points is None else int(points))


def _filters(equal: dict[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b = ?`` over the columns whose wanted value is not None."""
    used = {k: v for k, v in equal.items() if v is not None}
    if not used:
        return "", []
    return "WHERE " + " AND ".join(f"{k} = ?" for k in used), list(used.values())


def _check_state(state: str | None) -> None:
    if state is not None and state not in ALERT_STATES:
        raise InputError(f"state: expected one of {', '.join(ALERT_STATES)}, got {state!r}")
