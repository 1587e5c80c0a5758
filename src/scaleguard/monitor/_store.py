"""Where runs, configs, metric points, events and alerts are kept: the one door, and its words.

The door is two protocols. :class:`Sink` is all a :class:`~scaleguard.monitor.Run` needs
(open a run, write a batch, close the run), so that a remote sink (HTTP to the service) can
stand in for a database. :class:`Store` adds every query the CLI, the service, its dashboard
and ``assess`` make: nobody else writes SQL. Two backends implement it and pass one contract
test suite: :class:`~scaleguard.monitor.DuckDBStore` (one file, one writing process; the
default) and :class:`~scaleguard.monitor.PostgresStore` (a server several service replicas
share). :func:`open_store` picks one from a path or a ``postgresql://`` URL.

Other components keep their own records as generic events (:meth:`Store.append_events`:
``kind`` names the record type, ``payload`` holds any JSON-ready dict).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from scaleguard._store_default import DEFAULT_STORE_ENV, DEFAULT_STORE_FILE, default_store
from scaleguard.errors import InputError
from scaleguard.monitor._events import Alert, AlertState
from scaleguard.monitor._rollout_sql import RolloutChange, RolloutRecord, StoredWindows

__all__ = [
    "DEFAULT_STORE_ENV",
    "DEFAULT_STORE_FILE",
    "AlertCount",
    "Batch",
    "LatestValue",
    "RunInfo",
    "Series",
    "Sink",
    "Store",
    "StoredEvent",
    "default_store",
    "is_postgres_url",
    "open_store",
]

@dataclass(frozen=True)
class RunInfo:
    """One run: its id, name, status (``running``, ``finished``, ``failed``, ``crashed``...),
    start and finish times (seconds since the epoch) and configuration."""

    run_id: str
    name: str
    status: str
    started_at: float
    finished_at: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    points: int | None = None  # filled in by Store.runs()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"run_id": self.run_id, "name": self.name, "status": self.status,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "config": dict(self.config), "points": self.points}

    def __repr__(self) -> str:
        return f"RunInfo({self.name!r}, id={self.run_id}, {self.status}, points={self.points})"


@dataclass(frozen=True)
class StoredEvent:
    """A generic record kept in the ``events`` table (detector findings, audit entries...).

    ``kind`` names the record type (``"detector.spike"``, ``"rollout.audit"``); ``source`` who
    wrote it; ``payload`` any JSON-ready dict; ``run_id`` may be None for records of no run.
    """

    kind: str
    time: float
    payload: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    step: int | None = None
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"kind": self.kind, "time": self.time, "payload": dict(self.payload),
                "source": self.source, "step": self.step, "run_id": self.run_id}


@dataclass(frozen=True)
class Batch:
    """What a run hands its sink in one write: points (parallel arrays), events and alerts.

    A batch with a ``key`` is stored at most once per run: writing it again (a retry whose
    acknowledgement was lost, on this replica or another) stores nothing and reports so.

    ``steps`` int64, ``times`` float64 (epoch seconds), ``names`` str, ``values`` float64 (NaN
    and ±inf are kept: they are findings).
    """

    run_id: str
    steps: np.ndarray
    times: np.ndarray
    names: Sequence[str]
    values: np.ndarray
    events: Sequence[StoredEvent] = ()
    alerts: Sequence[Alert] = ()
    key: str | None = None  # idempotency key: a store keeps a keyed batch once, however resent

    def __len__(self) -> int:
        return len(self.values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the wire form a remote sink can post)."""
        return {"run_id": self.run_id, "steps": self.steps.tolist(),
                "times": self.times.tolist(), "names": list(self.names),
                "values": [v if math.isfinite(v) else str(v) for v in self.values.tolist()],
                "events": [e.as_dict() for e in self.events],
                "alerts": [a.as_dict() for a in self.alerts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Batch:
        """Inverse of :meth:`as_dict` (for the service's receiving end)."""
        try:
            alerts = [Alert(**{**a, "value": None if a.get("value") is None
                               else float(a["value"])}) for a in data.get("alerts", [])]
            return cls(run_id=str(data["run_id"]),
                       steps=np.asarray(data["steps"], dtype=np.int64),
                       times=np.asarray(data["times"], dtype=np.float64),
                       names=[str(n) for n in data["names"]],
                       values=np.asarray([float(v) for v in data["values"]], dtype=np.float64),
                       events=[StoredEvent(**e) for e in data.get("events", [])],
                       alerts=alerts)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"batch: malformed ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Series:
    """One metric of one run, in step order, possibly downsampled (``raw_points`` before)."""

    run_id: str
    metric: str
    steps: np.ndarray
    values: np.ndarray
    times: np.ndarray
    raw_points: int

    def __len__(self) -> int:
        return len(self.steps)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"run_id": self.run_id, "metric": self.metric, "raw_points": self.raw_points,
                "steps": self.steps.tolist(), "times": self.times.tolist(),
                "values": [v if math.isfinite(v) else str(v) for v in self.values.tolist()]}

    def __repr__(self) -> str:
        return (f"Series({self.metric!r} of {self.run_id}, {len(self)} points"
                f" of {self.raw_points})")


@dataclass(frozen=True)
class LatestValue:
    """The newest point (highest step) of one metric of one run, and how many points it has."""

    run_id: str
    run_name: str
    metric: str
    value: float
    step: int
    points: int


@dataclass(frozen=True)
class AlertCount:
    """How many alerts of one severity and state a run has."""

    run_id: str
    run_name: str
    severity: str
    state: AlertState
    count: int


@runtime_checkable
class Sink(Protocol):
    """What a run writes through: a store, or :class:`~scaleguard.monitor.RemoteSink`."""

    def open_run(self, run: RunInfo) -> None:
        """Record a new run (or a resumed one: same ``run_id``, status set back to running)."""

    def write(self, batch: Batch) -> bool:
        """Write one batch atomically: all of it or nothing. False when its key was stored
        already (nothing written)."""

    def close_run(self, run_id: str, status: str, finished_at: float) -> None:
        """Mark a run finished (``status`` ``finished``, ``failed``...)."""


@runtime_checkable
class Store(Sink, Protocol):
    """A sink that can also be queried: every query anyone needs is a method here."""

    def write_many(self, batches: Sequence[Batch]) -> list[bool]:
        """Write batches (of any runs) in one transaction; per batch, whether it was stored
        (False: its key was stored before, or earlier in ``batches``)."""

    def batch_receipt(self, run_id: str, key: str) -> dict[str, Any] | None:
        """What the batch with this key held when it was stored (points, events, alerts), or
        None if no such batch is stored."""

    def runs(self, *, status: str | None = None, name: str | None = None,
             limit: int | None = None, offset: int = 0) -> list[RunInfo]:
        """Runs, newest first, with their point counts; optionally of one status or name, one
        page (``limit`` runs after skipping ``offset``)."""

    def find_run(self, run: str, *, count: bool = False) -> RunInfo | None:
        """The run whose id is ``run``, else the newest run named ``run``, else None; its
        points are counted only when ``count`` (a count scans the run's points)."""

    def resolve(self, run: str) -> RunInfo:
        """Like :meth:`find_run` (counted), but a missing run is an ``InputError``."""

    def metrics(self, run_id: str) -> list[str]:
        """Metric names of a run, sorted."""

    def series(self, run_id: str, metric: str, *, max_points: int | None = None,
               method: str = "lttb", start: int | None = None,
               end: int | None = None) -> Series:
        """One metric of one run in step order, optionally only steps ``start..end``
        (inclusive), downsampled to about ``max_points`` if given."""

    def frame(self, run_id: str) -> Any:
        """All points of a run as a long pandas frame: step, time, name, value."""

    def latest(self, run_id: str | None = None, *,
               running_only: bool = False) -> list[LatestValue]:
        """The newest value of each metric of each run (or of one run; or of running runs)."""

    def events(self, run_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events, oldest first, optionally of one run and one kind (prefix)."""

    def alerts(self, run_id: str | None = None, *, state: str | None = None,
               min_severity: str = "info", limit: int | None = None) -> list[Alert]:
        """Stored alerts (with id and state), oldest first; optionally of one run, one state,
        at least one severity, only the newest ``limit``."""

    def alert_counts(self, run_id: str | None = None) -> list[AlertCount]:
        """Alerts counted by run, severity and state."""

    def alert(self, alert_id: int) -> Alert | None:
        """The stored alert with this id, or None."""

    def set_alert_state(self, alert_id: int, state: str, *, at: float | None = None) -> Alert:
        """Acknowledge, resolve or reopen a stored alert; the alert as it now is."""

    def append_events(self, events: Sequence[StoredEvent]) -> None:
        """Append generic events in one transaction."""

    # Rollouts (what scaleguard.safety.DatabaseRolloutStore reads and writes).
    def create_rollout(self, record: RolloutRecord) -> bool:
        """Store a new rollout; False (nothing stored) if its id is taken."""

    def rollout(self, rollout_id: str) -> RolloutRecord | None:
        """The stored rollout, or None."""

    def rollouts(self) -> list[RolloutRecord]:
        """Every rollout, most recently updated first."""

    def rollout_rows(self, rollout_id: str) -> list[dict[str, Any]]:
        """Every observation window stored for the rollout, in arrival order."""

    def rollout_cells(self, rollout_id: str) -> list[dict[str, Any]]:
        """The rollout's cell totals, as the last decision stored them."""

    def rollout_audit(self, rollout_id: str, last: int | None = None) -> list[dict[str, Any]]:
        """The rollout's audit records, oldest first (the newest ``last`` if given)."""

    def update_rollout(self, rollout_id: str,
                       step: Callable[[RolloutRecord, StoredWindows], RolloutChange]
                       ) -> RolloutChange | None:
        """Decide under the rollout's lock (``step`` reads the cell totals and the stored
        windows it asks for) and store the change in the same transaction."""

    def schema_version(self) -> int:
        """The newest migration applied to this database."""

    def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""

    def close(self) -> None:
        """Release the database."""


_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(store: str | Path) -> bool:
    """Whether ``store`` names a PostgreSQL database rather than a DuckDB file."""
    return str(store).startswith(_POSTGRES_SCHEMES)


def open_store(store: str | Path | Store | None = None, *, read_only: bool = False) -> Store:
    """A store from a DuckDB path, ``":memory:"``, a ``postgresql://`` URL, an existing store,
    or the default (:func:`default_store`).

    Examples
    --------
    >>> store = open_store(":memory:")
    >>> store.schema_version() >= 1
    True
    >>> open_store("runs.csv")
    Traceback (most recent call last):
    ...
    scaleguard.errors.InputError: store runs.csv: expected a .duckdb file, ':memory:' or a \
postgresql:// URL
    """
    if store is not None and not isinstance(store, str | Path):
        return store
    where = store if store is not None else default_store()
    if is_postgres_url(where):
        from scaleguard.monitor._postgres import PostgresStore

        return PostgresStore(str(where), read_only=read_only)
    if str(where) != ":memory:" and Path(where).suffix.lower() not in (".duckdb", ".db", ""):
        raise InputError(f"store {where}: expected a .duckdb file, ':memory:' or a "
                         "postgresql:// URL")
    from scaleguard.monitor._duckdb import DuckDBStore

    return DuckDBStore(where, read_only=read_only)
