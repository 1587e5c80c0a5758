"""Prometheus metrics of one app: ingest counters, latest values and alert counts.

Each app has its own :class:`prometheus_client.CollectorRegistry` (two apps in one process, as in
the tests, never share counters). Ingest counts are counted as requests are answered; latest
values and alert counts are read from the store at scrape time, so they are right after a
restart too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scaleguard.monitor import Store

__all__ = ["ServiceMetrics"]

# Latest values are exported for running runs only: a finished run's values no longer change,
# and every (run, metric) pair is a Prometheus time series (their docs warn against unbounded
# label cardinality).


class _StoreCollector(Collector):
    """Reads latest values and alert counts from the store each time Prometheus scrapes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        latest = GaugeMetricFamily("scaleguard_metric_latest",
                                   "Latest logged value of each metric of each running run",
                                   labels=["run", "run_id", "metric"])
        alerts = GaugeMetricFamily("scaleguard_alerts",
                                   "Alerts stored, by run, severity and state (open, "
                                   "acknowledged, resolved)",
                                   labels=["run", "run_id", "severity", "state"])
        for v in self.store.latest(running_only=True):
            latest.add_metric([v.run_name, v.run_id, v.metric], v.value)
        for c in self.store.alert_counts():
            alerts.add_metric([c.run_name, c.run_id, c.severity, c.state], c.count)
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

    def __init__(self, store: Store) -> None:
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
