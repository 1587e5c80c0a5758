"""Rollouts in the store's database: plan, state, observation windows, cell totals, audit log.

The SQL of :class:`~scaleguard.safety.DatabaseRolloutStore` lives here, beside the monitor's
(one door: nobody else writes SQL). A decision is read-modify-write: :meth:`update_rollout`
runs it inside one transaction that holds the rollout's row lock (PostgreSQL ``FOR UPDATE``;
DuckDB's single writer holds the store's lock), so two service replicas never decide the same
look twice: the second waits, then sees the first one's state and observations.

A decision reads the rollout's cell totals (one small record per stage, arm, metric and
segment, kept up to date by each decision) and only those stored windows whose identities
recur in the new rows (a primary-key lookup), never every window ever posted: its cost does
not grow with the rollout's history. Windows stored before schema version 4 (``rollout_rows``,
no identity, no totals) are handed to the first decision that follows, which keys and sums
them and moves them to ``rollout_windows``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RolloutChange", "RolloutRecord", "RolloutTables", "StoredWindows"]


@dataclass(frozen=True)
class RolloutRecord:
    """A stored rollout: its plan (as given), its state, and when it was made and changed."""

    rollout_id: str
    plan_name: str
    plan: dict[str, Any]
    state: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class RolloutChange:
    """What one decision writes: new observation windows (each with its identity), the cell
    totals they changed, the new state, its audit record."""

    state: dict[str, Any]
    audit: dict[str, Any] | None  # None: a change of state alone, no decision to log
    seq: int  # the decision's number (the state's decision count)
    decided_at: float  # the decision's own time (the audit record's)
    stored_at: float  # wall clock when stored (rows' arrival, the rollout's update time)
    rows: Sequence[dict[str, Any]] = field(default_factory=tuple)
    keys: Sequence[str] = field(default_factory=tuple)  # each row's window identity
    cells: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # cell key -> totals
    moved_legacy: bool = False  # the pre-version-4 rows were keyed and are in ``rows``
    result: Any = None  # what the caller wants back (the decision), not stored


_LOOKUP_CHUNK = 500  # identities per lookup query (well under every driver's parameter limit)


class StoredWindows:
    """What a decision may read of a rollout's stored windows, inside its transaction."""

    def __init__(self, tx: Any, rollout_id: str) -> None:
        self._tx, self._id = tx, rollout_id

    def cells(self) -> list[dict[str, Any]]:
        """The rollout's cell totals, as stored."""
        return [json.loads(r[0]) for r in self._tx.rows(
            "SELECT totals FROM rollout_cells WHERE rollout_id = ?", [self._id])]

    def find(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored windows with these identities (those that exist), by identity."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start:start + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for key, row_json in self._tx.rows(
                    "SELECT window_key, row_json FROM rollout_windows WHERE rollout_id = ? "
                    f"AND window_key IN ({marks})", [self._id, *chunk]):
                found[key] = json.loads(row_json)
        return found

    def legacy(self) -> list[dict[str, Any]]:
        """Windows stored before schema version 4, not yet keyed (normally none)."""
        return _legacy_rows(self._tx, self._id)


def _record(row: Sequence[Any]) -> RolloutRecord:
    return RolloutRecord(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5])


def _dated(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    out = []
    for row_json, received_at in rows:
        row = json.loads(row_json)
        out.append(row if row.get("time") is not None else {**row, "time": received_at})
    return out


def _legacy_rows(tx: Any, rollout_id: str) -> list[dict[str, Any]]:
    return _dated(tx.rows("SELECT row_json, received_at FROM rollout_rows WHERE rollout_id = ? "
                          "ORDER BY received_at", [rollout_id]))


_COLUMNS = "rollout_id, plan_name, plan, state, created_at, updated_at"


class RolloutTables:
    """Rollout methods of a SQL store (mixed into :class:`~scaleguard.monitor.SQLStore`)."""

    _transaction: Any
    _lock_rollout: Callable[[Any, str], None]

    def create_rollout(self, record: RolloutRecord) -> bool:
        """Store a new rollout; False (nothing stored) if its id is taken."""
        with self._transaction() as tx:
            made = tx.rows(f"INSERT INTO rollouts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT DO NOTHING RETURNING rollout_id",
                           [record.rollout_id, record.plan_name, json.dumps(record.plan),
                            json.dumps(record.state), record.created_at, record.updated_at])
        return bool(made)

    def rollout(self, rollout_id: str) -> RolloutRecord | None:
        """The stored rollout, or None."""
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT {_COLUMNS} FROM rollouts WHERE rollout_id = ?", [rollout_id])
        return _record(rows[0]) if rows else None

    def rollouts(self) -> list[RolloutRecord]:
        """Every rollout, most recently updated first."""
        with self._transaction() as tx:
            rows = tx.rows(f"SELECT {_COLUMNS} FROM rollouts "
                           "ORDER BY updated_at DESC, rollout_id")
        return [_record(r) for r in rows]

    def rollout_rows(self, rollout_id: str) -> list[dict[str, Any]]:
        """Every observation window stored for the rollout, in arrival order; a window stored
        without a ``time`` is dated when it arrived."""
        with self._transaction() as tx:
            return _legacy_rows(tx, rollout_id) + _dated(tx.rows(
                "SELECT row_json, received_at FROM rollout_windows WHERE rollout_id = ? "
                "ORDER BY received_at, seq", [rollout_id]))

    def rollout_cells(self, rollout_id: str) -> list[dict[str, Any]]:
        """The rollout's cell totals, as the last decision stored them."""
        with self._transaction() as tx:
            return StoredWindows(tx, rollout_id).cells()

    def rollout_audit(self, rollout_id: str, last: int | None = None) -> list[dict[str, Any]]:
        """The rollout's audit records, oldest first (only the newest ``last`` if given)."""
        sql = "SELECT record, seq FROM rollout_audit WHERE rollout_id = ? ORDER BY seq DESC"
        params: list[Any] = [rollout_id]
        if last is not None:
            sql, params = sql + " LIMIT ?", [*params, int(last)]
        with self._transaction() as tx:
            rows = tx.rows(sql, params)
        return [json.loads(r[0]) for r in reversed(rows)]

    def update_rollout(self, rollout_id: str,
                       step: Callable[[RolloutRecord, StoredWindows], RolloutChange]
                       ) -> RolloutChange | None:
        """Run ``step`` on the rollout and its stored windows under the rollout's lock, and
        store what it returns (windows, cell totals, state, audit) in the same transaction;
        None if there is no rollout.

        An exception in ``step`` rolls everything back: nothing is stored.
        """
        with self._transaction() as tx:
            self._lock_rollout(tx, rollout_id)
            found = tx.rows(f"SELECT {_COLUMNS} FROM rollouts WHERE rollout_id = ?",
                            [rollout_id])
            if not found:
                return None
            change = step(_record(found[0]), StoredWindows(tx, rollout_id))
            if change.moved_legacy:
                tx.run("DELETE FROM rollout_rows WHERE rollout_id = ?", [rollout_id])
            if change.rows:
                # The primary key (rollout, identity) refuses a window stored twice.
                tx.many("INSERT INTO rollout_windows VALUES (?, ?, ?, ?, ?)",
                        [[rollout_id, key, change.stored_at, seq, json.dumps(r)]
                         for seq, (key, r) in enumerate(zip(change.keys, change.rows,
                                                            strict=True))])
            if change.cells:
                tx.many("INSERT INTO rollout_cells VALUES (?, ?, ?) ON CONFLICT (rollout_id, "
                        "cell) DO UPDATE SET totals = excluded.totals",
                        [[rollout_id, cell, json.dumps(totals)]
                         for cell, totals in change.cells.items()])
            tx.run("UPDATE rollouts SET state = ?, updated_at = ? WHERE rollout_id = ?",
                   [json.dumps(change.state), change.stored_at, rollout_id])
            if change.audit is not None:
                tx.run("INSERT INTO rollout_audit VALUES (?, ?, ?, ?)",
                       [rollout_id, change.seq, change.decided_at,
                        json.dumps(change.audit, default=str)])
        return change
