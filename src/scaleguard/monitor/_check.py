"""Running detectors over whole series: what ``scaleguard monitor check`` does."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import InputError
from scaleguard.monitor._detector import Detector
from scaleguard.monitor._events import Event, severity_rank
from scaleguard.monitor._registry import make_detector
from scaleguard.monitor._suite import default_detectors

__all__ = ["CheckResult", "check_frame", "check_series", "parse_detector_spec"]

DetectorFactory = Callable[[str], list[Detector]]


@dataclass(frozen=True)
class CheckResult:
    """Events found in a set of series, in step order, and what was checked."""

    source: str
    points: int
    metrics: tuple[str, ...]
    detectors: dict[str, list[str]]
    events: tuple[Event, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        """True when no event is a warning or worse."""
        return not any(severity_rank(e.severity) >= 1 for e in self.events)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"source": self.source, "points": self.points, "metrics": list(self.metrics),
                "detectors": {k: list(v) for k, v in self.detectors.items()},
                "healthy": self.healthy, "events": [e.as_dict() for e in self.events]}

    def __repr__(self) -> str:
        return (f"CheckResult({self.source!r}: {self.points} points, {len(self.metrics)} "
                f"metrics, {len(self.events)} events)")


def check_series(values: Sequence[float] | np.ndarray, metric: str = "",
                 steps: Sequence[int] | np.ndarray | None = None,
                 detectors: Sequence[Detector] | None = None,
                 times: Sequence[float] | np.ndarray | None = None) -> list[Event]:
    """Events of ``detectors`` (default: chosen from ``metric``'s name) over one series.

    ``times`` (seconds), when given and finite, go to time-based detectors (burn rate) in place
    of the steps.

    Examples
    --------
    >>> loss = [3.0, 2.9, 2.8, float("nan"), 2.7]
    >>> [(e.kind, e.step) for e in check_series(loss, "loss")]
    [('nonfinite', 3)]
    """
    chosen = list(detectors) if detectors is not None else default_detectors(metric)
    array = np.asarray(values, dtype=np.float64)
    clock = None
    if times is not None:
        clock = np.asarray(times, dtype=np.float64)
        clock = clock if clock.size and np.isfinite(clock).all() else None
    found = [e.with_metric(metric) for d in chosen
             for e in d.scan(array, clock if d.uses_time and clock is not None else steps)]
    return sorted(found, key=lambda e: (e.step, -severity_rank(e.severity), e.detector))


def check_frame(frame: pd.DataFrame, *, source: str = "<frame>",
                extra: Mapping[str, Sequence[DetectorFactory]] | None = None,
                defaults: bool = True, metrics: Sequence[str] | None = None) -> CheckResult:
    """Check every metric of a long frame (columns step, name, value; optional time).

    ``extra`` adds detectors per metric (factories called with the metric name); ``defaults``
    False keeps only those. ``metrics`` restricts the check to these names. Values of one step
    logged twice are both checked, in file order.
    """
    for column in ("step", "name", "value"):
        if column not in frame.columns:
            raise InputError(f"{source}: missing column {column!r}; the metric stream needs "
                             "step, name and value")
    names = sorted(frame["name"].unique().tolist())
    if metrics:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise InputError(f"--metric {unknown[0]!r}: not in {source}; metrics are "
                             f"{', '.join(names)}")
        names = [n for n in names if n in metrics]
    for metric in (extra or {}):
        if metric not in names:
            raise InputError(f"--add ...:{metric}: metric {metric!r} not in {source}; "
                             f"metrics are {', '.join(names)}")
    events: list[Event] = []
    used: dict[str, list[str]] = {}
    for name in names:
        part = frame[frame["name"] == name]
        part = part.sort_values("step", kind="stable")
        chosen = default_detectors(name) if defaults else []
        chosen += [d for factory in (extra or {}).get(name, ()) for d in factory(name)]
        used[name] = [d.name for d in chosen]
        times = part["time"].to_numpy() if "time" in part.columns else None
        events += check_series(part["value"].to_numpy(), name, part["step"].to_numpy(), chosen,
                               times)
    events.sort(key=lambda e: (e.step, -severity_rank(e.severity), e.metric, e.detector))
    return CheckResult(source, int(frame["name"].isin(names).sum()), tuple(names), used,
                       tuple(events))


def parse_detector_spec(spec: str) -> tuple[str, DetectorFactory]:
    """``"plateau:loss"`` or ``"cusum:latency,h=4,mode=up"`` -> (metric, factory).

    Examples
    --------
    >>> metric, factory = parse_detector_spec("cusum:latency,h=4,mode=up")
    >>> metric, factory(metric)
    ('latency', [CusumDetector(k=0.5, h=4, target=None, sigma=None, warmup=50, mode='up')])
    """
    head, *settings = [s.strip() for s in spec.split(",")]
    kind, sep, metric = head.partition(":")
    if not sep or not kind or not metric:
        raise InputError(f"--add {spec!r}: expected DETECTOR:METRIC[,name=value...], "
                         "e.g. plateau:loss or cusum:latency,h=4")
    params: dict[str, Any] = {}
    for item in settings:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise InputError(f"--add {spec!r}: setting {item!r} is not name=value")
        params[key.strip()] = _setting(raw.strip())
    try:  # refuse a bad spec now, not per metric, naming the option as the user typed it
        make_detector(kind, **params)
    except InputError as exc:
        raise InputError(f"--add {spec!r}: {exc}") from None
    return metric, lambda _metric: [make_detector(kind, **params)]


def _setting(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw
