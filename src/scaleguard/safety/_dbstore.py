"""A rollout kept in a monitor store: plan, state, observation windows and audit log.

The one rollout store with a database behind it (DuckDB or PostgreSQL, through
:class:`scaleguard.monitor.Store`; no SQL here). ``scaleguard rollout decide --store``, the
service and ``assess`` all read and write rollouts through it, so a rollout decided by the
service is the one ``assess`` reads. A decision's state, audit record and new observation
windows are written in one transaction under the rollout's lock (:meth:`decide_with`), so two
service replicas never decide the same look twice.

A decision reads totals, not history: the store keeps each rollout's :class:`CellTotals`
(updated by every decision) and each window's identity. :func:`absorb_windows` checks a
request's new rows, screens them (duplicates and conflicting repeats against the stored
windows with the same identities, clock and stage checks) and adds the trusted ones to the
totals; the controller decides from those totals, which is the decision from every window
kept (``tests/safety/test_safety_totals.py`` shows both agree on random streams).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from scaleguard.errors import InputError
from scaleguard.safety._controller import Decision, RolloutState
from scaleguard.safety._observations import (
    Screened,
    check_observations,
    screen_observations,
    window_keys,
)
from scaleguard.safety._plan import RolloutPlan
from scaleguard.safety._totals import CellTotals, cell_totals, check_layout, merge_totals

__all__ = ["Absorbed", "DatabaseRolloutStore", "absorb_windows"]


@dataclass(frozen=True)
class Absorbed:
    """A request's windows screened against a rollout's stored ones: what to decide from
    (``screened``: its rows are the totals of every trusted window, kept and new) and what to
    store (the trusted new windows with their identities, the cells they changed)."""

    screened: Screened
    rows: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]
    cells: dict[str, dict[str, Any]]
    moved_legacy: bool

    def change(self, decision: Decision, audit: dict[str, Any] | None, decided_at: float,
               stored_at: float | None = None) -> Any:
        """The store's change for ``decision``: new windows, cells, state and audit record."""
        from scaleguard.monitor import RolloutChange

        return RolloutChange(decision.state.as_dict(), audit, decision.state.decisions,
                             decided_at, time.time() if stored_at is None else stored_at,
                             self.rows, self.keys, self.cells, self.moved_legacy,
                             result=decision)


def _frame(rows: Sequence[dict[str, Any]], source: str) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    frame.attrs["source"] = source
    return frame


def _keys(frame: pd.DataFrame, plan: RolloutPlan) -> list[str]:
    return [json.dumps(list(key)) for key in window_keys(frame, plan)] if len(frame) else []


def absorb_windows(plan: RolloutPlan, state: RolloutState, stored: Any,
                   posted: Sequence[dict[str, Any]], now: float,
                   source: str = "rows") -> Absorbed:
    """Screen ``posted`` windows (each with a ``time``) against the rollout's ``stored`` ones
    (a :class:`scaleguard.monitor.StoredWindows`) at decision time ``now``.

    Refused (one line naming the row): a malformed row, or one whose segment columns or
    window id differ from the stored windows'. Stored windows were screened when they arrived
    and are not screened again; windows stored before schema version 4 are keyed and summed
    here once (``moved_legacy``).
    """
    kept = CellTotals.from_records(stored.cells())
    legacy = stored.legacy()
    legacy_rows: list[dict[str, Any]] = []
    legacy_keys: list[str] = []
    if legacy:
        old = check_observations(_frame(legacy, "stored windows"), plan)
        firsts: dict[str, int] = {}
        for i, key in enumerate(_keys(old, plan)):
            firsts.setdefault(key, i)  # a window kept twice by mistake counts once, the first
        chosen = sorted(firsts.values())
        legacy_rows = [legacy[i] for i in chosen]
        legacy_keys = sorted(firsts, key=firsts.__getitem__)
        moved = cell_totals(old.iloc[chosen].reset_index(drop=True), plan)
        kept = merge_totals(kept, moved)
    layout = kept.layout if len(kept) else None
    fresh_rows: list[dict[str, Any]] = []
    fresh_keys: list[str] = []
    changed = CellTotals(kept.frame.iloc[:0], kept.layout)
    if posted:
        new = check_observations(_frame(posted, source), plan)  # refuse before storing
        check_layout(new, plan, layout, source)
        keys = _keys(new, plan)
        matches = stored.find(keys)
        matches.update({k: r for k, r in zip(legacy_keys, legacy_rows, strict=True)
                        if k in set(keys)})
        earlier = check_observations(_frame(list(matches.values()), "stored windows"), plan) \
            if matches else None
        screened = screen_observations(new, plan, now, plan.stages[state.stage_index].name,
                                       state.stage_started, stored=earlier)
        fresh_rows = [posted[i] for i in screened.kept]
        fresh_keys = [keys[i] for i in screened.kept]
        changed = cell_totals(new.iloc[list(screened.kept)].reset_index(drop=True), plan)
        total = merge_totals(kept, changed)
    else:
        screened, total = Screened(pd.DataFrame(), (), (), ()), kept
    # Only the cells this request (or the move of old windows) changed are written back.
    touched = set(changed.records()) | (set(moved.records()) if legacy else set())
    cells = {k: v for k, v in total.records().items() if k in touched}
    return Absorbed(replace(screened, rows=total), tuple(legacy_rows + fresh_rows),
                    tuple(legacy_keys + fresh_keys), cells, bool(legacy))


class DatabaseRolloutStore:
    """The rollout ``rollout_id`` of a monitor store (the :class:`RolloutStore` protocol).

    Parameters
    ----------
    store:
        A :class:`scaleguard.monitor.Store` (``open_store("runs.duckdb")``, a PostgreSQL URL).
    rollout_id:
        Which rollout (the service's ids; ``rollout decide --store`` uses the plan's name).
    """

    def __init__(self, store: Any, rollout_id: str) -> None:
        self.store = store
        self.rollout_id = rollout_id

    def create(self, plan_name: str, plan_spec: dict[str, Any], state: RolloutState,
               at: float | None = None) -> bool:
        """Store a new rollout of this id; False (nothing stored) if it exists already."""
        from scaleguard.monitor import RolloutRecord

        now = time.time() if at is None else at
        return bool(self.store.create_rollout(RolloutRecord(self.rollout_id, plan_name,
                                                            plan_spec, state.as_dict(), now,
                                                            now)))

    def exists(self) -> bool:
        return self.store.rollout(self.rollout_id) is not None

    def plan_spec(self) -> dict[str, Any]:
        """The plan the rollout was created with, as given."""
        return dict(self._record().plan)

    def load_state(self) -> RolloutState | None:
        record = self.store.rollout(self.rollout_id)
        if record is None:
            return None
        return RolloutState.from_dict(record.state, f"rollout {self.rollout_id} state")

    def observations(self) -> list[dict[str, Any]]:
        """Every observation window stored for the rollout, in arrival order."""
        return list(self.store.rollout_rows(self.rollout_id))

    def totals(self, plan: RolloutPlan) -> CellTotals:
        """The rollout's cell totals: what a decision reads (windows stored before schema
        version 4 and not yet moved are summed here)."""
        kept = CellTotals.from_records(self.store.rollout_cells(self.rollout_id))
        if len(kept):
            return kept
        # No totals yet: no window at all, or only windows of an older store that no decision
        # has moved yet (a decision moves them all and writes their totals).
        legacy = self.observations()
        frame = check_observations(_frame(legacy, f"rollout {self.rollout_id}"), plan) \
            if legacy else pd.DataFrame()
        return cell_totals(frame, plan)

    def decide_with(self, step: Callable[[Any, Any], Any]) -> Any:
        """Run ``step(record, stored windows) -> RolloutChange`` under the rollout's lock and
        store its change in the same transaction; the change (None: no such rollout).

        ``stored windows`` is a :class:`scaleguard.monitor.StoredWindows` (cell totals, lookup
        by identity): give it and the new rows to :func:`absorb_windows`."""
        return self.store.update_rollout(self.rollout_id, step)

    def record_decision(self, decision: Decision, record: dict[str, Any],
                        windows: Sequence[dict[str, Any]] = ()) -> None:
        """The decision's new state, its audit record and the new windows (screened as a
        request's rows are: a window stored already is not stored twice): all or nothing."""
        from scaleguard.safety._plan import parse_plan

        def step(stored: Any, view: Any) -> Any:
            plan = parse_plan(stored.plan, f"rollout {self.rollout_id} plan")
            before = RolloutState.from_dict(stored.state, f"rollout {self.rollout_id} state")
            absorbed = absorb_windows(plan, before, view, list(windows), decision.time)
            return absorbed.change(decision, _json_ready(record), decision.time)

        if self.store.update_rollout(self.rollout_id, step) is None:
            raise InputError(f"rollout {self.rollout_id!r}: no such rollout in store "
                             f"{getattr(self.store, 'path', self.store)}")

    def save_state(self, state: RolloutState) -> None:
        from scaleguard.monitor import RolloutChange

        self._record()  # refuse an unknown rollout with its name
        self.store.update_rollout(self.rollout_id, lambda *_: RolloutChange(
            state.as_dict(), None, state.decisions, time.time(), time.time()))

    def append_audit(self, record: dict[str, Any]) -> None:
        from scaleguard.monitor import RolloutChange

        current = self._record()
        seq = len(self.store.rollout_audit(self.rollout_id)) + 1
        self.store.update_rollout(self.rollout_id, lambda *_: RolloutChange(
            current.state, _json_ready(record), seq, float(record.get("time", time.time())),
            time.time()))

    def audit(self) -> list[dict[str, Any]]:
        return list(self.store.rollout_audit(self.rollout_id))

    def _record(self) -> Any:
        record = self.store.rollout(self.rollout_id)
        if record is None:
            raise InputError(f"rollout {self.rollout_id!r}: no such rollout in store "
                             f"{getattr(self.store, 'path', self.store)}")
        return record

    def __repr__(self) -> str:
        return f"DatabaseRolloutStore({self.rollout_id!r}, {self.store!r})"


def _json_ready(record: dict[str, Any]) -> dict[str, Any]:
    import json

    return dict(json.loads(json.dumps(record, default=str)))
