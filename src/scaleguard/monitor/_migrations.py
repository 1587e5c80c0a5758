"""Schema versions of a store: numbered migrations, applied in order, recorded in the database.

A store opened by a newer scaleguard is upgraded in place (``ALTER``, ``INSERT ... SELECT``),
never rewritten; each applied migration leaves a row in ``schema_versions`` (version, name,
time), so that what a database has been through can be read from the database itself.
Migration 1 is the layout every store had before versions were recorded: its statements are
``IF NOT EXISTS``, so a store of that time is recognised as version 1 and upgraded from there.

A step is one statement for both backends, written in DuckDB's dialect (:func:`statements`
spells ``DOUBLE`` as PostgreSQL's ``DOUBLE PRECISION``), or a mapping backend -> statement
where they differ (JSON functions), with None where a backend has nothing to do (an index
PostgreSQL needs and DuckDB's inserts would pay for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "VERSIONS_TABLE", "Dialect", "Migration",
           "statements"]

Dialect = Literal["duckdb", "postgres"]


Step = str | dict[Dialect, str | None]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, and its statements in order."""

    version: int
    name: str
    steps: tuple[Step, ...]


VERSIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_versions (
    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at DOUBLE NOT NULL)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, points, events and alerts", (
        """CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, status VARCHAR NOT NULL,
            started_at DOUBLE NOT NULL, finished_at DOUBLE, config VARCHAR NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS points (
            run_id VARCHAR NOT NULL, step BIGINT NOT NULL, time DOUBLE NOT NULL,
            name VARCHAR NOT NULL, value DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS events (
            run_id VARCHAR, step BIGINT, time DOUBLE NOT NULL, kind VARCHAR NOT NULL,
            source VARCHAR NOT NULL, payload VARCHAR NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS alerts (
            run_id VARCHAR NOT NULL, time DOUBLE NOT NULL, severity VARCHAR NOT NULL,
            title VARCHAR NOT NULL, message VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            step BIGINT, value DOUBLE, detector VARCHAR NOT NULL, action VARCHAR NOT NULL,
            extra VARCHAR NOT NULL)""",
    )),
    Migration(2, "batch idempotency keys, alert ids and states", (
        # The service kept each keyed batch's receipt as a 'service.batch' event; a table with
        # the key as primary key lets the database itself refuse a second copy, across replicas.
        """CREATE TABLE batch_keys (
            run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, points BIGINT NOT NULL,
            events BIGINT NOT NULL, alerts BIGINT NOT NULL, stored_at DOUBLE NOT NULL,
            PRIMARY KEY (run_id, key))""",
        {"duckdb": """INSERT INTO batch_keys SELECT run_id, json_extract_string(payload, '$.key'),
            CAST(json_extract(payload, '$.points') AS BIGINT),
            CAST(json_extract(payload, '$.events') AS BIGINT),
            CAST(json_extract(payload, '$.alerts') AS BIGINT), time
            FROM events WHERE kind = 'service.batch'""",
         "postgres": """INSERT INTO batch_keys SELECT run_id, payload::jsonb ->> 'key',
            (payload::jsonb ->> 'points')::bigint, (payload::jsonb ->> 'events')::bigint,
            (payload::jsonb ->> 'alerts')::bigint, time
            FROM events WHERE kind = 'service.batch'"""},
        "DELETE FROM events WHERE kind = 'service.batch'",
        # Alerts get an id and a state. The table is copied into its new shape rather than
        # ALTERed: DuckDB cannot ALTER and UPDATE one table in one transaction, and replaying a
        # column DEFAULT nextval() from its write-ahead log fails. New alerts take
        # nextval('alert_ids') in their INSERT; the old ones are numbered in time order.
        "CREATE SEQUENCE alert_ids START 1",
        """CREATE TABLE alerts_v2 (
            run_id VARCHAR NOT NULL, time DOUBLE NOT NULL, severity VARCHAR NOT NULL,
            title VARCHAR NOT NULL, message VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            step BIGINT, value DOUBLE, detector VARCHAR NOT NULL, action VARCHAR NOT NULL,
            extra VARCHAR NOT NULL, alert_id BIGINT NOT NULL, state VARCHAR NOT NULL,
            state_at DOUBLE)""",
        """INSERT INTO alerts_v2 SELECT run_id, time, severity, title, message, metric, step,
            value, detector, action, extra, nextval('alert_ids'), 'open', NULL
            FROM (SELECT * FROM alerts ORDER BY time) AS old""",
        "DROP TABLE alerts",
        "ALTER TABLE alerts_v2 RENAME TO alerts",
        # A series query reads one metric of one run out of every run's points.
        {"postgres": "CREATE INDEX points_run_name ON points (run_id, name, step)"},
        {"postgres": "CREATE INDEX events_run_kind ON events (run_id, kind)"},
        {"postgres": "CREATE INDEX alerts_run ON alerts (run_id)"},
    )),
    Migration(3, "rollouts kept by the store", (
        # The service created these three tables itself before; a store that never ran the
        # service gets them empty, and both get the store's names.
        """CREATE TABLE IF NOT EXISTS service_rollouts (
            rollout_id VARCHAR PRIMARY KEY, plan_name VARCHAR NOT NULL, plan VARCHAR NOT NULL,
            state VARCHAR NOT NULL, created_at DOUBLE NOT NULL, updated_at DOUBLE NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS service_rollout_rows (
            rollout_id VARCHAR NOT NULL, received_at DOUBLE NOT NULL, row_json VARCHAR NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS service_rollout_audit (
            rollout_id VARCHAR NOT NULL, seq BIGINT NOT NULL, time DOUBLE NOT NULL,
            record VARCHAR NOT NULL)""",
        "ALTER TABLE service_rollouts RENAME TO rollouts",
        "ALTER TABLE service_rollout_rows RENAME TO rollout_rows",
        "ALTER TABLE service_rollout_audit RENAME TO rollout_audit",
        {"postgres": "CREATE INDEX rollout_rows_id ON rollout_rows (rollout_id, received_at)"},
        {"postgres": "CREATE INDEX rollout_audit_id ON rollout_audit (rollout_id, seq)"},
    )),
    Migration(4, "rollout windows keyed by identity, cell totals", (
        # A decision reads its rollout's cell totals and looks up only the stored windows whose
        # identities recur in the new rows; the primary key refuses a window stored twice.
        # Rows of rollout_rows (no identity yet) are keyed and moved by the rollout's next
        # decision, which knows its plan's segments.
        """CREATE TABLE rollout_windows (
            rollout_id VARCHAR NOT NULL, window_key VARCHAR NOT NULL,
            received_at DOUBLE NOT NULL, seq BIGINT NOT NULL, row_json VARCHAR NOT NULL,
            PRIMARY KEY (rollout_id, window_key))""",
        """CREATE TABLE rollout_cells (
            rollout_id VARCHAR NOT NULL, cell VARCHAR NOT NULL, totals VARCHAR NOT NULL,
            PRIMARY KEY (rollout_id, cell))""",
    )),
    Migration(5, "points keyed by series codes", (
        # A point carried its run id and metric name as text: two strings per point were most
        # of an insert's bytes and time (DuckDB 1.2M points/s against 3-4M for four numeric
        # columns). Each (run, metric) pair is now one row of `series`, and a point holds its
        # code. A series row is written in the transaction of its first points and never
        # alone, so every series has points (metrics() reads the series table only).
        "CREATE SEQUENCE series_ids START 1",
        """CREATE TABLE series (
            series_id INTEGER PRIMARY KEY, run_id VARCHAR NOT NULL, name VARCHAR NOT NULL,
            UNIQUE (run_id, name))""",
        """INSERT INTO series SELECT nextval('series_ids'), run_id, name
            FROM (SELECT DISTINCT run_id, name FROM points ORDER BY run_id, name) AS pairs""",
        """CREATE TABLE points_v5 (
            series_id INTEGER NOT NULL, step BIGINT NOT NULL, time DOUBLE NOT NULL,
            value DOUBLE)""",
        """INSERT INTO points_v5 SELECT s.series_id, p.step, p.time, p.value
            FROM points p JOIN series s ON s.run_id = p.run_id AND s.name = p.name""",
        "DROP TABLE points",  # PostgreSQL drops its index points_run_name with it
        "ALTER TABLE points_v5 RENAME TO points",
        {"postgres": "CREATE INDEX points_series ON points (series_id, step)"},
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def statements(migration: Migration, dialect: Dialect) -> list[str]:
    """The statements of ``migration`` for one backend, in order.

    Examples
    --------
    >>> statements(Migration(9, "demo", ("CREATE TABLE t (x DOUBLE)",
    ...                                  {"postgres": "CREATE INDEX t_x ON t (x)"})), "postgres")
    ['CREATE TABLE t (x DOUBLE PRECISION)', 'CREATE INDEX t_x ON t (x)']
    >>> statements(Migration(9, "demo", ({"postgres": "CREATE INDEX t_x ON t (x)"},)), "duckdb")
    []
    """
    out = []
    for step in migration.steps:
        sql = step if isinstance(step, str) else step.get(dialect)
        if sql is not None:
            out.append(re.sub(r"\bDOUBLE\b", "DOUBLE PRECISION", sql) if dialect == "postgres"
                       else sql)
    return out
