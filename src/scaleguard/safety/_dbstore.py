"""A rollout kept in a monitor store: plan, state, observation windows and audit log.

The one rollout store with a database behind it (DuckDB or PostgreSQL, through
:class:`scaleguard.monitor.Store`; no SQL here). ``scaleguard rollout decide --store``, the
service and ``assess`` all read and write rollouts through it, so a rollout decided by the
service is the one ``assess`` reads. A decision's state, audit record and new observation
windows are written in one transaction under the rollout's lock (:meth:`decide_with`), so two
service replicas never decide the same look twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from scaleguard.errors import InputError
from scaleguard.safety._controller import Decision, RolloutState

__all__ = ["DatabaseRolloutStore"]


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

    def decide_with(self, step: Callable[[Any, list[dict[str, Any]]], Any]) -> Any:
        """Run ``step(record, stored windows) -> RolloutChange`` under the rollout's lock and
        store its change in the same transaction; the change (None: no such rollout)."""
        return self.store.update_rollout(self.rollout_id, step)

    def record_decision(self, decision: Decision, record: dict[str, Any],
                        windows: Sequence[dict[str, Any]] = ()) -> None:
        """The decision's new state, its audit record and the new windows: all or nothing."""
        from scaleguard.monitor import RolloutChange

        change = RolloutChange(decision.state.as_dict(), _json_ready(record),
                               decision.state.decisions, decision.time, time.time(),
                               list(windows))
        if self.store.update_rollout(self.rollout_id, lambda *_: change) is None:
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
