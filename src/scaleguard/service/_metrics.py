"""Prometheus metrics of one app: ingest counters, latest values and alert counts.

Each app has its own :class:`prometheus_client.CollectorRegistry` (two apps in one process, as in
the tests, never share counters). Ingest counts are counted as requests are answered; latest
values and alert counts are read from the store at scrape time, so they are right after a
restart too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ServiceMetrics"]

# Latest values are exported for running runs only: a finished run's values no longer change,
# and every (run, metric) pair is a Prometheus time series (their docs warn against unbounded
# label cardinality).
_LATEST_SQL = """
SELECT r.name, p.run_id, p.name, arg_max(p.value, p.step)
FROM points p JOIN runs r ON r.run_id = p.run_id
WHERE r.status = 'running'
GROUP BY r.name, p.run_id, p.name
ORDER BY p.run_id, p.name
"""
_ALERTS_SQL = """
SELECT a.run_id, coalesce(r.name, a.run_id), a.severity, count(*)
FROM alerts a LEFT JOIN runs r ON r.run_id = a.run_id
GROUP BY 1, 2, 3 ORDER BY 1, 3
"""


class _StoreCollector(Collector):
    """Reads latest values and alert counts from the store each time Prometheus scrapes."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        latest = GaugeMetricFamily("scaleguard_metric_latest",
                                   "Latest logged value of each metric of each running run",
                                   labels=["run", "run_id", "metric"])
        alerts = GaugeMetricFamily("scaleguard_alerts", "Alerts stored, by run and severity",
                                   labels=["run", "run_id", "severity"])
        with self.store.transaction() as con:
            latest_rows = con.execute(_LATEST_SQL).fetchall()
            alert_rows = con.execute(_ALERTS_SQL).fetchall()
        for run, run_id, metric, value in latest_rows:
            latest.add_metric([run, run_id, metric], math.nan if value is None else value)
        for run_id, run, severity, count in alert_rows:
            alerts.add_metric([run, run_id, severity], count)
        yield latest
        yield alerts


class _CommitCollector(Collector):
    """How many transactions the group committer needed for how many batches."""

    def __init__(self, committer: Any) -> None:
        self.committer = committer

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("scaleguard_commit_transactions",
                                  "Transactions that stored metric batches (group commit)",
                                  value=self.committer.transactions)
        yield CounterMetricFamily("scaleguard_committed_batches",
                                  "Metric batches stored by those transactions",
                                  value=self.committer.batches)


class ServiceMetrics:
    """The counters and histograms one app updates, on a registry of its own."""

    def __init__(self, store: Any) -> None:
        self.registry = CollectorRegistry()
        self.points = Counter("scaleguard_ingested_points", "Metric points stored",
                              registry=self.registry)
        self.batches = Counter("scaleguard_ingested_batches", "Metric batches stored",
                               registry=self.registry)
        self.alerts_received = Counter("scaleguard_ingested_alerts",
                                       "Alerts stored through the API", registry=self.registry)
        # Refused requests show here by status: 401 (token), 413 (size), 422 (validation).
        self.requests = Histogram("scaleguard_request_seconds", "Time to answer a request",
                                  ["method", "route", "status"], registry=self.registry)
        self.registry.register(_StoreCollector(store))

    def watch_committer(self, committer: Any) -> None:
        """Export the group committer's transaction and batch counts."""
        self.registry.register(_CommitCollector(committer))
