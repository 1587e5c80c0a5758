"""Performance monitoring: track metrics, keep them in a store, detect faults, raise alerts.

Track a run the way wandb or MLflow do::

    import scaleguard.monitor as sgm
    with sgm.start("gpt-small", config={"lr": 3e-4}, store="runs.duckdb") as run:
        for step in range(steps):
            run.log({"loss": loss, "grad_norm": gnorm, "tokens_per_s": tps}, step=step)

``log`` appends to a buffer (microseconds); batches go to the store every second, at finish
and at exit. Detectors chosen from each metric's name (NaN/Inf, 6σ spikes, Megatron's 10×
rule, divergence, throughput drops) raise alerts as the values arrive; others (plateau,
Page-Hinkley, CUSUM, SLO burn rate, deviation from a scaling-law forecast) are opt-in.
"""

from scaleguard.monitor._alerts import (
    AlertSink,
    JsonlAlertSink,
    TerminalAlertSink,
    WebhookAlertSink,
)
from scaleguard.monitor._burnrate import (
    BURN_RATE_RULES,
    BurnRateDetector,
    BurnRule,
    detection_time,
)
from scaleguard.monitor._changepoint import CusumDetector, PageHinkleyDetector
from scaleguard.monitor._check import CheckResult, check_frame, check_series
from scaleguard.monitor._detector import Detector
from scaleguard.monitor._downsample import downsample, lttb, minmax_buckets
from scaleguard.monitor._duckdb import DuckDBStore
from scaleguard.monitor._events import ALERT_STATES, Alert, Event
from scaleguard.monitor._forecast import ForecastDeviationDetector
from scaleguard.monitor._ingest import MetricLog, ingest_log, read_metric_log
from scaleguard.monitor._integrations import hf_callback, lightning_callback
from scaleguard.monitor._postgres import PostgresStore
from scaleguard.monitor._registry import detector_classes, detector_from_state, make_detector
from scaleguard.monitor._remote import RemoteSink, ServiceUnavailable
from scaleguard.monitor._rollout_sql import RolloutChange, RolloutRecord, StoredWindows
from scaleguard.monitor._run import Run, start
from scaleguard.monitor._spikes import LossRatioDetector, NonFiniteDetector, SpikeDetector
from scaleguard.monitor._store import (
    AlertCount,
    Batch,
    LatestValue,
    RunInfo,
    Series,
    Sink,
    Store,
    StoredEvent,
    default_store,
    is_postgres_url,
    open_store,
)
from scaleguard.monitor._suite import default_detectors, metric_kind
from scaleguard.monitor._trend import DivergenceDetector, PlateauDetector, ThroughputDropDetector
from scaleguard.monitor._watch import LogFollower, Watcher

__all__ = [
    "ALERT_STATES",
    "Alert",
    "AlertCount",
    "AlertSink",
    "BURN_RATE_RULES",
    "Batch",
    "BurnRateDetector",
    "BurnRule",
    "CheckResult",
    "CusumDetector",
    "Detector",
    "DivergenceDetector",
    "DuckDBStore",
    "Event",
    "ForecastDeviationDetector",
    "JsonlAlertSink",
    "LatestValue",
    "LogFollower",
    "LossRatioDetector",
    "MetricLog",
    "NonFiniteDetector",
    "PageHinkleyDetector",
    "PlateauDetector",
    "PostgresStore",
    "RemoteSink",
    "RolloutChange",
    "RolloutRecord",
    "Run",
    "RunInfo",
    "Series",
    "ServiceUnavailable",
    "Sink",
    "SpikeDetector",
    "Store",
    "StoredEvent",
    "StoredWindows",
    "TerminalAlertSink",
    "ThroughputDropDetector",
    "Watcher",
    "WebhookAlertSink",
    "check_frame",
    "check_series",
    "default_detectors",
    "default_store",
    "detection_time",
    "detector_classes",
    "detector_from_state",
    "downsample",
    "hf_callback",
    "ingest_log",
    "is_postgres_url",
    "lightning_callback",
    "lttb",
    "make_detector",
    "metric_kind",
    "minmax_buckets",
    "open_store",
    "read_metric_log",
    "start",
]
