"""Where runs, configs, metric points, events and alerts are kept: a small interface and DuckDB.

The interface is two protocols. :class:`Sink` is all a :class:`~scaleguard.monitor.Run` needs
(open a run, write a batch, close the run), so that a remote sink (HTTP to the service) or a
server database can stand in for the local file. :class:`Store` adds the queries.

:class:`DuckDBStore` keeps everything in one DuckDB file (or ``":memory:"``). Each batch is
written in one transaction, so a crash loses at most the batch being written, never what was
committed (DuckDB replays its write-ahead log on the next open). DuckDB lets only one process
open a file read-write; within that process one connection is shared under a lock.

Other components keep their own records here in one of two ways: append rows to the generic
``events`` table with :meth:`DuckDBStore.append_events` (``kind`` names the record type, e.g.
``"rollout.audit"``, ``payload`` holds any JSON-ready dict), or create their own tables inside
:meth:`DuckDBStore.transaction`, which hands out the connection under the store's lock.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from scaleguard.errors import InputError
from scaleguard.monitor._downsample import downsample
from scaleguard.monitor._events import Alert

__all__ = [
    "Batch",
    "DuckDBStore",
    "RunInfo",
    "Series",
    "Sink",
    "Store",
    "StoredEvent",
    "open_store",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, status VARCHAR NOT NULL,
    started_at DOUBLE NOT NULL, finished_at DOUBLE, config VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    run_id VARCHAR NOT NULL, step BIGINT NOT NULL, time DOUBLE NOT NULL,
    name VARCHAR NOT NULL, value DOUBLE);
CREATE TABLE IF NOT EXISTS events (
    run_id VARCHAR, step BIGINT, time DOUBLE NOT NULL, kind VARCHAR NOT NULL,
    source VARCHAR NOT NULL, payload VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    run_id VARCHAR NOT NULL, time DOUBLE NOT NULL, severity VARCHAR NOT NULL,
    title VARCHAR NOT NULL, message VARCHAR NOT NULL, metric VARCHAR NOT NULL, step BIGINT,
    value DOUBLE, detector VARCHAR NOT NULL, action VARCHAR NOT NULL, extra VARCHAR NOT NULL);
"""


def _points_table(batch: Batch) -> pa.Table:
    """The batch's points as Arrow, strings dictionary-encoded (a few distinct metric names
    over many rows: 3x faster to build and to insert than plain strings)."""
    import pandas as pd

    n = len(batch)
    codes, uniques = pd.factorize(pd.Series(batch.names, dtype=object), sort=False)
    return pa.Table.from_arrays(
        [pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                        pa.array([batch.run_id], pa.string())),
         pa.array(np.asarray(batch.steps, dtype=np.int64)),
         pa.array(np.asarray(batch.times, dtype=np.float64)),
         pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                        pa.array([str(u) for u in uniques], pa.string())),
         pa.array(np.asarray(batch.values, dtype=np.float64), from_pandas=False)],
        names=["run_id", "step", "time", "name", "value"])


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


@runtime_checkable
class Sink(Protocol):
    """What a run writes through: a local store, or (later) an HTTP client to the service."""

    def open_run(self, run: RunInfo) -> None:
        """Record a new run (or a resumed one: same ``run_id``, status set back to running)."""

    def write(self, batch: Batch) -> None:
        """Write one batch atomically: all of it or nothing."""

    def close_run(self, run_id: str, status: str, finished_at: float) -> None:
        """Mark a run finished (``status`` ``finished``, ``failed``...)."""


@runtime_checkable
class Store(Sink, Protocol):
    """A sink that can also be queried."""

    def runs(self) -> list[RunInfo]:
        """Every run, newest first, with its point count."""

    def resolve(self, run: str) -> RunInfo:
        """The run with this id, or the newest run with this name."""

    def metrics(self, run_id: str) -> list[str]:
        """Metric names of a run, sorted."""

    def series(self, run_id: str, metric: str, *, max_points: int | None = None,
               method: str = "lttb") -> Series:
        """One metric of one run, downsampled to about ``max_points`` if given."""

    def frame(self, run_id: str) -> Any:
        """All points of a run as a long pandas frame: step, time, name, value."""

    def events(self, run_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events, oldest first, optionally of one run and one kind (prefix)."""

    def alerts(self, run_id: str | None = None) -> list[Alert]:
        """Stored alerts, oldest first, optionally of one run."""

    def append_events(self, events: Sequence[StoredEvent]) -> None:
        """Append generic events in one transaction."""

    def close(self) -> None:
        """Release the database."""


def _open_error(path: str, exc: Exception) -> InputError:
    reason = " ".join(str(exc).split())
    if "lock" in reason.lower():
        return InputError(f"store {path}: opened by another process (DuckDB allows one writer); "
                          "stop it, or send metrics through the service")
    return InputError(f"store {path}: cannot open as DuckDB ({reason})")


class DuckDBStore:
    """Runs, points, events and alerts in one DuckDB database file (or ``":memory:"``).

    Parameters
    ----------
    path:
        Database file (created if absent) or ``":memory:"``.
    read_only:
        Open without write access (queries only; several readers may share a file that no
        process holds read-write).

    Examples
    --------
    >>> import numpy as np
    >>> store = DuckDBStore(":memory:")
    >>> store.open_run(RunInfo("r1", "demo", "running", 0.0))
    >>> store.write(Batch("r1", np.arange(3), np.zeros(3), ["loss"] * 3, np.array([3., 2., 1.])))
    >>> store.series("r1", "loss").values.tolist()
    [3.0, 2.0, 1.0]
    >>> store.close()
    """

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False) -> None:
        import duckdb

        self.path = str(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        if self.path != ":memory:" and read_only and not Path(self.path).is_file():
            raise InputError(f"store {self.path}: no such file")
        try:
            self._con: Any = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        if not read_only:
            self._con.execute(_SCHEMA)

    # -- connection handling -------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> Any:
        if self._con is None:
            raise InputError(f"store {self.path}: already closed")
        return self._con

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The DuckDB connection inside one transaction, under the store's lock.

        Commits on success, rolls back on an exception. For components that keep their own
        tables in the same file (``CREATE TABLE IF NOT EXISTS my_table ...``).
        """
        with self._lock:
            con = self._connection()
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- Sink ------------------------------------------------------------------------------
    def open_run(self, run: RunInfo) -> None:
        """Insert the run, or set an existing one (same id) back to running."""
        with self.transaction() as con:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE "
                "SET status = excluded.status, finished_at = NULL",
                [run.run_id, run.name, run.status, run.started_at, run.finished_at,
                 json.dumps(run.config, default=str)])

    def write(self, batch: Batch) -> None:
        """Append the batch's points, events and alerts in one transaction."""
        with self.transaction() as con:
            if len(batch):
                table = _points_table(batch)
                con.register("_scaleguard_batch", table)
                try:
                    con.execute("INSERT INTO points SELECT * FROM _scaleguard_batch")
                finally:
                    con.unregister("_scaleguard_batch")
            if batch.events:
                self._insert_events(con, batch.events, batch.run_id)
            if batch.alerts:
                con.executemany(
                    "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [[batch.run_id, a.time, a.severity, a.title, a.message, a.metric, a.step,
                      a.value, a.detector, a.action, json.dumps(a.extra, default=str)]
                     for a in batch.alerts])

    def close_run(self, run_id: str, status: str, finished_at: float) -> None:
        """Mark the run finished with ``status``."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                        [status, finished_at, run_id])

    @staticmethod
    def _insert_events(con: Any, events: Sequence[StoredEvent], run_id: str | None) -> None:
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                        [[e.run_id if e.run_id is not None else run_id, e.step, e.time, e.kind,
                          e.source, json.dumps(e.payload, default=str)] for e in events])

    def append_events(self, events: Sequence[StoredEvent]) -> None:
        """Append generic events (each with its own ``run_id``, or none) in one transaction."""
        with self.transaction() as con:
            self._insert_events(con, events, None)

    # -- queries ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self._connection().execute(sql, list(params)).fetchall()
            return rows

    def runs(self) -> list[RunInfo]:
        """Every run, newest first, with its number of points."""
        rows = self._query(
            "SELECT r.run_id, r.name, r.status, r.started_at, r.finished_at, r.config, "
            "(SELECT count(*) FROM points p WHERE p.run_id = r.run_id) "
            "FROM runs r ORDER BY r.started_at DESC, r.run_id")
        return [RunInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6])) for r in rows]

    def resolve(self, run: str) -> RunInfo:
        """The run whose id is ``run``, else the newest run named ``run``."""
        for info in self.runs():
            if info.run_id == run:
                return info
        for info in self.runs():
            if info.name == run:
                return info
        known = ", ".join(sorted({r.name for r in self.runs()})) or "none"
        raise InputError(f"--run {run!r}: no such run in store {self.path}; runs are {known}")

    def metrics(self, run_id: str) -> list[str]:
        """Metric names of a run, sorted."""
        return [r[0] for r in self._query(
            "SELECT DISTINCT name FROM points WHERE run_id = ? ORDER BY name", [run_id])]

    def series(self, run_id: str, metric: str, *, max_points: int | None = None,
               method: str = "lttb") -> Series:
        """One metric of one run in step order, downsampled to about ``max_points``."""
        with self._lock:
            cols = self._connection().execute(
                "SELECT step, value, time FROM points WHERE run_id = ? AND name = ? "
                "ORDER BY step, time", [run_id, metric]).fetchnumpy()
        steps = np.asarray(cols["step"], dtype=np.int64)
        values = np.asarray(cols["value"], dtype=np.float64)
        times = np.asarray(cols["time"], dtype=np.float64)
        keep = downsample(steps, values, max_points, method)
        return Series(run_id, metric, steps[keep], values[keep], times[keep], len(steps))

    def frame(self, run_id: str) -> Any:
        """All points of a run as a pandas frame with columns step, time, name, value."""
        with self._lock:
            return self._connection().execute(
                "SELECT step, time, name, value FROM points WHERE run_id = ? "
                "ORDER BY name, step, time", [run_id]).df()

    def events(self, run_id: str | None = None, kind: str | None = None) -> list[StoredEvent]:
        """Stored events, oldest first; ``kind`` matches a prefix (``"rollout."``)."""
        sql = "SELECT kind, time, payload, source, step, run_id FROM events WHERE true"
        params: list[Any] = []
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if kind is not None:
            sql += " AND starts_with(kind, ?)"
            params.append(kind)
        rows = self._query(sql + " ORDER BY time, kind", params)
        return [StoredEvent(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def alerts(self, run_id: str | None = None) -> list[Alert]:
        """Stored alerts, oldest first, optionally of one run (its id)."""
        sql = ("SELECT run_id, time, severity, title, message, metric, step, value, detector, "
               "action, extra FROM alerts")
        params = [run_id] if run_id is not None else []
        rows = self._query(sql + (" WHERE run_id = ?" if run_id else "") + " ORDER BY time",
                           params)
        return [Alert(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                      json.loads(r[10])) for r in rows]

    def __repr__(self) -> str:
        state = "closed" if self._con is None else ("read-only" if self.read_only else "open")
        return f"DuckDBStore({self.path!r}, {state})"


DEFAULT_STORE_ENV = "SCALEGUARD_STORE"  # environment variable naming the default store file
DEFAULT_STORE_FILE = "scaleguard-runs.duckdb"  # in the working directory, like MLflow's mlruns/


def open_store(store: str | Path | Store | None = None, *, read_only: bool = False) -> Store:
    """A store from a path, ``":memory:"``, an existing store, or the default.

    The default is ``$SCALEGUARD_STORE`` if set, else ``scaleguard-runs.duckdb`` in the working
    directory.
    """
    import os

    if store is not None and not isinstance(store, str | Path):
        return store
    path = store if store is not None else os.environ.get(DEFAULT_STORE_ENV, DEFAULT_STORE_FILE)
    if str(path) != ":memory:" and Path(path).suffix.lower() not in (".duckdb", ".db", ""):
        raise InputError(f"store {path}: expected a .duckdb file or ':memory:'")
    return DuckDBStore(path, read_only=read_only)
