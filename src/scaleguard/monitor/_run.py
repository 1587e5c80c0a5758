"""The tracking API: ``start()`` a run, ``log()`` metrics, ``alert()``, ``finish()``.

``log`` only appends to in-memory lists (a few microseconds); a background thread hands the
buffer to the sink as one batch every ``flush_every`` seconds, and ``finish``, the ``with``
block's end and interpreter exit flush what is left. Detectors run inside ``log`` so that a
NaN is reported at the step it happens; their alerts go to the alert sinks at once and to the
store with the next batch.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scaleguard.errors import InputError
from scaleguard.io._boundary import as_finite, as_step, check_document, shown, text_problem
from scaleguard.monitor._alerts import AlertSink
from scaleguard.monitor._detector import Detector
from scaleguard.monitor._events import SEVERITIES, Alert, Event, Severity
from scaleguard.monitor._store import Batch, RunInfo, Sink, Store, StoredEvent, open_store
from scaleguard.monitor._suite import default_detectors

__all__ = ["FLUSH_EVERY_S", "MAX_BUFFER_POINTS", "Run", "start"]

# Flush at least once a second (wandb's and MLflow's async loggers batch on the same order)
# and whenever 100,000 points wait (about 3 MB of buffer), whichever comes first.
FLUSH_EVERY_S = 1.0
MAX_BUFFER_POINTS = 100_000

DetectorSpec = str | Mapping[str, Sequence[Detector]] | None


class Run:
    """One tracked run. Create it with :func:`start`; see there for the parameters."""

    def __init__(self, name: str, sink: Sink, *, config: Mapping[str, Any] | None = None,
                 run_id: str | None = None, detectors: DetectorSpec = "default",
                 alert_sinks: Sequence[AlertSink] = (), flush_every: float | None = FLUSH_EVERY_S,
                 max_buffer: int = MAX_BUFFER_POINTS, owns_sink: bool = False) -> None:
        if not name or not isinstance(name, str) or text_problem(name) is not None:
            raise InputError(f"name: expected a non-empty run name of valid text, "
                             f"got {shown(name)}")
        if flush_every is not None and not flush_every > 0:
            raise InputError(f"flush_every: expected seconds > 0 or None, got {flush_every!r}")
        if max_buffer < 1:
            raise InputError(f"max_buffer: expected a positive number of points, got {max_buffer}")
        if isinstance(detectors, str) and detectors not in ("default", "none"):
            raise InputError(f"detectors: expected 'default', 'none' or a mapping metric -> "
                             f"detectors, got {detectors!r}")
        self.name = name
        self.run_id = run_id or uuid.uuid4().hex[:12]
        # Kept as JSON: what cannot be read back (NaN, lone surrogates, 300 levels deep) is
        # refused now rather than stored.
        self.config = check_document(dict(config or {}), "config", error=InputError)
        self.sink = sink
        self.alert_sinks = list(alert_sinks)
        self.max_buffer = max_buffer
        self.flush_every = flush_every
        self.status = "running"
        self.started_at = time.time()
        self._owns_sink = owns_sink
        self._auto_detectors = detectors == "default"
        self._detectors: dict[str, list[Detector]] = (
            {k: list(v) for k, v in detectors.items()} if isinstance(detectors, Mapping) else {})
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._steps: list[int] = []
        self._times: list[float] = []
        self._names: list[str] = []
        self._values: list[float] = []
        self._events: list[StoredEvent] = []
        self._alerts: list[Alert] = []
        self._unsent: list[Batch] = []  # cut, keyed, not yet acknowledged by the sink
        # Metric names already found storable, each with its label for a value's error.
        self._checked_names: dict[str, str] = {}
        self._step = -1
        self.points_logged = 0
        self.alerts_raised: list[Alert] = []
        self.flush_errors = 0
        self.last_flush_error = ""
        sink.open_run(RunInfo(self.run_id, name, "running", self.started_at, None, self.config))
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if flush_every is not None:
            self._timer = threading.Thread(target=_flush_loop, args=(weakref.ref(self),
                                           self._stop, flush_every), daemon=True,
                                           name=f"scaleguard-flush-{self.run_id}")
            self._timer.start()
        atexit.register(self._at_exit)

    # -- logging ---------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record ``metrics`` (name -> number) at ``step`` (the next step when None).

        Non-numbers are refused by name; NaN and ±inf are kept (and reported by detectors).
        """
        if self.status != "running":
            raise InputError(f"run {self.name!r}: log() after finish()")
        if step is None:
            step = self._step + 1
        elif not isinstance(step, int | np.integer) or isinstance(step, bool):
            raise InputError(f"step: expected an integer, got {shown(step)}")
        # Checked here, not at the flush: a point the store cannot hold (a step of 2**63, a
        # value of 10**400) would fail every later flush and take the points after it along.
        step = as_step(step)
        values = [(name, as_finite(raw, self._metric_label(name), allow_nonfinite=True))
                  for name, raw in metrics.items()]  # all or nothing: no half-logged step
        self._step = max(self._step, step)
        now = time.time()
        found: list[Event] = []
        with self._lock:
            for name, value in values:
                self._steps.append(step)
                self._times.append(now)
                self._names.append(name)
                self._values.append(value)
                detectors = self._detectors.get(name)
                if detectors is None and self._auto_detectors:
                    detectors = self._detectors[name] = default_detectors(name)
                if detectors:
                    for detector in detectors:
                        clock = now if detector.uses_time else step  # seconds or steps
                        event = detector.update(value, clock)  # type: ignore[arg-type]
                        if event is not None:
                            found.append(event.with_metric(name))
            self.points_logged += len(metrics)
            full = len(self._values) >= self.max_buffer
        for event in found:
            self._raise(Alert.from_event(event, self.name, now))
        if full:
            self.flush()

    def alert(self, title: str, message: str = "", *, severity: Severity = "warning",
              metric: str = "", step: int | None = None, value: float | None = None,
              action: str = "") -> Alert:
        """Raise an alert by hand; it goes to the alert sinks now and the store next flush."""
        if severity not in SEVERITIES:
            raise InputError(f"severity: expected one of {', '.join(SEVERITIES)}, "
                             f"got {severity!r}")
        alert = Alert(self.name, time.time(), severity, title, message, metric, step, value,
                      "manual", action)
        self._raise(alert)
        return alert

    def _raise(self, alert: Alert) -> None:
        with self._lock:
            self._alerts.append(alert)
            self.alerts_raised.append(alert)
        for sink in self.alert_sinks:
            sink.emit(alert)

    def _metric_label(self, name: object) -> str:
        """``name``'s label for errors, once ``name`` is known storable.

        A run logs the same few names every step: each is checked once, not on every call."""
        label = self._checked_names.get(name)  # type: ignore[call-overload]
        if label is None:
            label = "log: metric " + shown(_valid_name(name, "log: metric name"))
            self._checked_names[name] = label  # type: ignore[index]
        return label

    def log_event(self, kind: str, payload: Mapping[str, Any] | None = None, *,
                  step: int | None = None, source: str = "") -> None:
        """Record a generic event of this run (buffered like points)."""
        event = StoredEvent(_valid_name(kind, "log_event: kind"), time.time(),
                            check_document(dict(payload or {}), f"log_event {kind!r}: payload",
                                           error=InputError),
                            source, None if step is None else as_step(step), self.run_id)
        with self._lock:
            self._events.append(event)

    # -- flushing --------------------------------------------------------------------------
    def flush(self) -> int:
        """Write the buffer as one batch now; returns the number of points written."""
        with self._flush_lock:
            with self._lock:
                if not (self._values or self._events or self._alerts):
                    return self._send(None)
                batch = Batch(self.run_id, np.asarray(self._steps, dtype=np.int64),
                              np.asarray(self._times, dtype=np.float64), self._names,
                              np.asarray(self._values, dtype=np.float64), self._events,
                              self._alerts, key=uuid.uuid4().hex)
                self._steps, self._times, self._names, self._values = [], [], [], []
                self._events, self._alerts = [], []
            return self._send(batch)

    def _send(self, batch: Batch | None) -> int:
        """Send the batches that failed before (oldest first), then ``batch``.

        A batch that fails stays queued as it is, with its key: a later flush sends the same
        batch under the same key, so a sink that stored it but lost the answer stores it once.
        """
        if batch is not None:
            self._unsent.append(batch)
        sent = 0
        while self._unsent:
            self.sink.write(self._unsent[0])  # raises while the sink is down: nothing is lost
            sent += len(self._unsent.pop(0))
        return sent

    def finish(self, status: str = "finished") -> None:
        """Flush, mark the run ``status``, stop the timer and close what the run opened."""
        if self.status != "running":
            return
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join()
        self.flush()
        self.status = status
        self.sink.close_run(self.run_id, status, time.time())
        for sink in self.alert_sinks:
            sink.close()
        if self._owns_sink and hasattr(self.sink, "close"):
            self.sink.close()
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.finish("finished")

    # -- detectors' state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Detectors' state by metric (to save with a training checkpoint) and the last step."""
        with self._lock:
            return {"run_id": self.run_id, "step": self._step,
                    "detectors": {m: [d.state_dict() for d in ds]
                                  for m, ds in self._detectors.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore detectors saved by :meth:`state_dict` (e.g. after resuming a job)."""
        from scaleguard.monitor._registry import detector_from_state

        with self._lock:
            self._step = int(state.get("step", self._step))
            self._detectors = {m: [detector_from_state(d) for d in ds]
                               for m, ds in state.get("detectors", {}).items()}

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return (f"Run({self.name!r}, id={self.run_id}, {self.status}, "
                f"{self.points_logged} points, {len(self.alerts_raised)} alerts)")


def _valid_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or text_problem(name) is not None:
        reason = text_problem(name) if isinstance(name, str) and name else "expected a name"
        raise InputError(f"{what} {shown(name)}: {reason}")
    return name


def _flush_loop(ref: weakref.ref[Run], stop: threading.Event, every: float) -> None:
    # Holds only a weak reference, so an abandoned run can still be collected.
    while not stop.wait(every):
        run = ref()
        if run is None:
            return
        try:
            run.flush()
        except Exception as exc:  # a failed timed flush must not kill the thread; the batch
            run.flush_errors += 1  # went back into the buffer and the next flush retries it
            run.last_flush_error = f"{type(exc).__name__}: {exc}"
        del run


def start(name: str, config: Mapping[str, Any] | None = None,
          store: str | Path | Store | None = None, *, sink: Sink | None = None,
          run_id: str | None = None, detectors: DetectorSpec = "default",
          alert_sinks: Sequence[AlertSink] = (), flush_every: float | None = FLUSH_EVERY_S,
          max_buffer: int = MAX_BUFFER_POINTS, url: str | None = None,
          token: str | None = None) -> Run:
    """Start tracking a run.

    Parameters
    ----------
    name:
        The run's name (several runs may share one; each gets its own ``run_id``).
    config:
        Hyperparameters and anything else worth keeping with the run (JSON-ready values).
    store:
        A DuckDB file path, ``":memory:"``, a :class:`Store`, or None for ``$SCALEGUARD_STORE``
        or ``./scaleguard-runs.duckdb``. A store opened from a path is closed by ``finish``.
    sink:
        Write through this :class:`Sink` instead of a store (e.g. a remote one).
    run_id:
        Resume the run with this id (its points are appended to).
    detectors:
        ``"default"`` (chosen from each metric's name, see :func:`default_detectors`),
        ``"none"``, or a mapping metric -> detectors.
    alert_sinks:
        Where alerts go as they happen (terminal, JSONL file, webhook); the store keeps them
        too.
    flush_every:
        Seconds between background flushes; None flushes only on finish, exit and full buffer.
    max_buffer:
        Flush as soon as this many points wait.
    url, token:
        Send to a scaleguard service (``scaleguard serve``) at ``url`` with this bearer token
        instead of a local store (:class:`~scaleguard.monitor.RemoteSink`: retries, needs
        httpx).

    Examples
    --------
    >>> from scaleguard.monitor import DuckDBStore
    >>> store = DuckDBStore(":memory:")
    >>> with start("demo", {"lr": 3e-4}, store=store) as run:
    ...     for step in range(3):
    ...         run.log({"loss": 3.0 - step, "grad_norm": 1.0}, step=step)
    >>> store.series(run.run_id, "loss").values.tolist()
    [3.0, 2.0, 1.0]
    >>> store.runs()[0].status
    'finished'
    """
    if url is not None:  # the service's HTTP sink
        if store is not None or sink is not None:
            raise InputError("start: give url= or store= or sink=, not several")
        from scaleguard.monitor._remote import RemoteSink

        sink, owns = RemoteSink(url, token or ""), True
    elif sink is None:
        owns = store is None or isinstance(store, str | Path)
        sink = open_store(store)
    else:
        if store is not None:
            raise InputError("start: give store= or sink=, not both")
        owns = False
    return Run(name, sink, config=config, run_id=run_id, detectors=detectors,
               alert_sinks=alert_sinks, flush_every=flush_every, max_buffer=max_buffer,
               owns_sink=owns)
