"""The look scheduler: every running rollout is decided at its plan's ``look_interval``.

Posted observations decide a rollout when they arrive; the scheduler decides it when nothing
arrives too, so that a stage whose minimum duration has passed advances, one past its maximum
holds, and ``source: prometheus`` metrics are read at every look. A look is due when
``look_interval`` has passed since the rollout's last stored change (a decision of any kind).

Decisions go through :meth:`~scaleguard.safety.DatabaseRolloutStore.decide_with`, the same
transaction under the rollout's lock as a posted observation: the look re-reads the rollout
there and stands down if anything changed it since the look began, so several replicas on one
store (or a post racing a look) decide each look once. Prometheus is asked before that lock
is taken (no network wait under a database lock).

Bounded: one rollout whose plan cannot be read or whose look fails is logged and skipped (it
holds: nothing advances it), and the others are still decided.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from scaleguard.monitor import RolloutChange, RolloutRecord, Store, StoredWindows
from scaleguard.service._json import jsonable

__all__ = ["LoopCollector", "LookScheduler", "decide_rows"]

log = logging.getLogger("scaleguard.scheduler")

MIN_TICK_S = 0.05  # the scheduler never spins faster than 20 looks a second per rollout
MAX_TICK_S = 1.0  # a new rollout, or one whose interval passed, waits at most a second more
REPEAT_LOG_S = 60.0  # a rollout failing the same way at every look is logged once a minute
_TICK_SHARE = 0.25  # tick at a quarter of the shortest interval: a look is late by <= 25%


class _Superseded(Exception):
    """The rollout changed between the start of a look and its lock: someone else decided."""


def decide_rows(plan: Any, state: Any, stored: StoredWindows, new: Sequence[dict[str, Any]],
                now: float, source: str, problems: Sequence[str] = (),
                approvals: frozenset[str] = frozenset()) -> tuple[Any, dict[str, Any], Any]:
    """Decide on the rollout's stored totals and the new rows ``new`` (checked, screened
    against the ``stored`` windows, :func:`~scaleguard.safety.absorb_windows`).

    Returns the decision, its audit record and what to store (an
    :class:`~scaleguard.safety.Absorbed`). ``problems`` are extra reasons not to trust this
    look (a failed query): they hold.
    """
    from scaleguard.safety import absorb_windows, audit_record, decide

    absorbed = absorb_windows(plan, state, stored, list(new), now)
    screened = absorbed.screened
    if problems:
        screened = replace(screened, problems=(*screened.problems, *problems))
    decision = decide(plan, state, screened, now, approvals)
    return decision, jsonable(audit_record(plan.name, decision, source)), absorbed


class LookScheduler:
    """Decides every running rollout of ``store`` whose look is due.

    Parameters
    ----------
    store:
        The monitor store holding the rollouts.
    prometheus:
        A :class:`~scaleguard.safety.PrometheusClient` for ``source: prometheus`` metrics;
        without one, such a rollout holds, saying so.
    publish:
        ``publish(rollout_id, audit_record, plan_webhooks)`` after each stored decision (the
        webhook dispatcher); it must not block.
    clock:
        Unix seconds now (tests pass a fake clock).
    """

    def __init__(self, store: Store, *, prometheus: Any = None,
                 publish: Callable[[str, dict[str, Any], Sequence[Any]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.prometheus = prometheus
        self._publish = publish
        self._clock = clock
        self._tick = MAX_TICK_S
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: dict[str, tuple[str, float]] = {}  # last logged problem, when
        self.decided = self.failed = 0  # looks, counted for /metrics

    def tick(self, now: float | None = None) -> list[str]:
        """Decide every due rollout now; the ids decided."""
        at = self._clock() if now is None else now
        decided, intervals = [], []
        for record in self.store.rollouts():
            try:
                done, interval = self._look(record, at)
            except Exception as exc:  # one bad rollout must not stop the others: it holds
                self.failed += 1
                self._failed(record.rollout_id, exc)
                continue
            self._failures.pop(record.rollout_id, None)
            if interval is not None:
                intervals.append(interval)
            if done:
                decided.append(record.rollout_id)
        self.decided += len(decided)
        shortest = min(intervals, default=MAX_TICK_S / _TICK_SHARE)
        self._tick = min(MAX_TICK_S, max(MIN_TICK_S, shortest * _TICK_SHARE))
        return decided

    def _failed(self, rollout_id: str, exc: Exception) -> None:
        """Log a failed look: once per new problem, then every :data:`REPEAT_LOG_S`."""
        from scaleguard.errors import ScaleguardError

        text = str(exc)
        last = self._failures.get(rollout_id)
        now = time.monotonic()
        if last is not None and last[0] == text and now - last[1] < REPEAT_LOG_S:
            return
        self._failures[rollout_id] = (text, now)
        message = "rollout %s: the look failed; the rollout holds until a look succeeds: %s"
        if isinstance(exc, ScaleguardError):  # a named problem (bad plan or state): one line
            log.error(message, rollout_id, text)
        else:
            log.exception(message, rollout_id, text)

    def _look(self, record: RolloutRecord, now: float) -> tuple[bool, float | None]:
        from scaleguard.safety import DatabaseRolloutStore, RolloutState, parse_plan

        if record.state.get("status", "running") != "running":
            return False, None  # finished: skipped before any parsing, at every tick
        plan = parse_plan(record.plan, f"rollout {record.rollout_id} plan")
        state = RolloutState.from_dict(record.state, f"rollout {record.rollout_id} state")
        if now - record.updated_at < plan.look_interval:
            return False, plan.look_interval
        observed, problems, source = self._observe(record, plan, state, now)
        seen = record.updated_at

        def step(current: RolloutRecord, stored: StoredWindows) -> RolloutChange:
            if current.updated_at != seen:
                raise _Superseded
            decision, audit, absorbed = decide_rows(plan, state, stored, observed, now, source,
                                                    problems)
            return replace(absorbed.change(decision, audit, now, now), result=audit)

        try:
            change = DatabaseRolloutStore(self.store, record.rollout_id).decide_with(step)
        except _Superseded:
            return False, plan.look_interval
        if change is None:
            return False, None  # deleted meanwhile
        if self._publish is not None:
            self._publish(record.rollout_id, change.result, plan.webhooks)
        return True, plan.look_interval

    def _observe(self, record: RolloutRecord, plan: Any, state: Any, now: float
                 ) -> tuple[list[dict[str, Any]], list[str], str]:
        """This look's Prometheus window rows, the problems that hold it, the audit source."""
        from scaleguard.safety._prometheus import look_queries, window_rows, window_start

        source = f"scheduler look at {now:.3f}"
        if not any(m.source == "prometheus" for m in plan.metrics):
            return [], [], source
        start = window_start(plan, state, self.store.rollout_cells(record.rollout_id))
        queries = look_queries(plan, state.stage_index, start, now)
        if not queries or now <= start:
            return [], [], source
        source += f", prometheus window {start:.3f}-{now:.3f}"
        if self.prometheus is None:
            return [], [f"prometheus query {queries[0].promql} ({queries[0].label}): the "
                        "service has no Prometheus to ask (serve --prometheus URL)"], source
        answers = self.prometheus.query_all(queries, now)
        rows, problems = window_rows(plan, state.stage_index, queries, answers, start, now)
        return rows, problems, source

    def start(self) -> None:
        """Tick in a background thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="scaleguard-scheduler")
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.tick()
            except Exception:  # the store did not answer: try again at the next tick
                log.exception("scheduler tick failed; retrying")


class LoopCollector:
    """``/metrics``: looks the scheduler decided or failed, and webhook notifications
    delivered, given up or dropped (a prometheus_client collector)."""

    def __init__(self, scheduler: LookScheduler, webhooks: Any) -> None:
        self.scheduler = scheduler
        self.webhooks = webhooks

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        looks = CounterMetricFamily("scaleguard_scheduled_looks",
                                    "Rollout looks taken by the scheduler, by outcome "
                                    "(decided, or failed: the rollout holds)",
                                    labels=["outcome"])
        looks.add_metric(["decided"], self.scheduler.decided)
        looks.add_metric(["failed"], self.scheduler.failed)
        sent = CounterMetricFamily("scaleguard_webhook_notifications",
                                   "Decision notifications by outcome (delivered; failed "
                                   "after its retries; dropped, the queue being full)",
                                   labels=["outcome"])
        for outcome in ("delivered", "failed", "dropped"):
            sent.add_metric([outcome], getattr(self.webhooks, outcome))
        yield looks
        yield sent
