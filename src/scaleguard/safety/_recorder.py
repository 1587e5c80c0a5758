"""Client-side observation windows: ``record()`` calls summed per cell until a flush cuts them.

A cell is (stage, arm, metric, segment values). A rate metric counts ``exposures`` and
``events`` (its value is 0 or 1); a quantile metric counts the exposures whose value is above
its guardrail as events (the controller's exceedance form of a quantile); a mean metric keeps
``n``, ``mean`` and the sample variance ``var`` by Welford's update, which neither overflows nor
cancels catastrophically over millions of values. Every cell also counts ``units``: the units
whose first observation of the metric in the stage falls in the window (the client's
:class:`~scaleguard.safety._units.FirstSeen` says which), so that the sample-ratio check can
test the split of units, the randomisation's own, rather than of requests.

Cutting the windows names each with the recorder's id and a sequence number
(``<client id>-<n>``), so that the rows of one cut keep one identity however often they are sent
again: the service counts a window id once (:func:`scaleguard.safety.screen_observations`).
Pure and standard-library only, like :mod:`scaleguard.safety._assignment`.
"""

from __future__ import annotations

import math
from typing import Any

from scaleguard.errors import InputError
from scaleguard.safety._assignment import MetricInfo

__all__ = ["WindowRecorder", "check_value"]

Cell = tuple[str, str, str, tuple[str, ...]]  # stage, arm, metric, segment values


class WindowRecorder:
    """Sums ``record()`` calls into cells; :meth:`cut` turns them into observation rows.

    Not thread-safe by itself: the clients call it under their lock.

    >>> from scaleguard.safety._assignment import MetricInfo
    >>> recorder = WindowRecorder("app-1")
    >>> harm = MetricInfo("harm", "rate")
    >>> for value, new_unit in ((0, True), (1, False), (0, True)):
    ...     recorder.add("pilot", "treatment", harm, value, ("us",), new_unit)
    >>> [row] = recorder.cut(("region",), now=100.0)
    >>> row["exposures"], row["events"], row["units"], row["window"]
    (3.0, 1.0, 2.0, 'app-1-1')
    """

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.cuts = 0
        # rate/quantile cells: [exposures, events, -, units]; mean cells: [n, mean, M2, units]
        self._cells: dict[Cell, list[float]] = {}
        self._kinds: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._cells)

    def add(self, stage: str, arm: str, metric: MetricInfo, value: float,
            segments: tuple[str, ...], new_unit: bool) -> None:
        """Count one observation (checked by :func:`check_value` first); ``new_unit``: the
        unit's first observation of this metric in this stage."""
        key = (stage, arm, metric.name, segments)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = [0.0, 0.0, 0.0, 0.0]
            self._kinds[metric.name] = metric.kind
        if new_unit:
            cell[3] += 1.0
        if metric.kind == "mean":
            cell[0] += 1.0
            delta = value - cell[1]
            cell[1] += delta / cell[0]
            cell[2] += delta * (value - cell[1])
        else:
            cell[0] += 1.0
            if metric.kind == "rate":
                cell[1] += value
            elif metric.guardrail is not None and value > metric.guardrail:
                cell[1] += 1.0

    def cut(self, dimensions: tuple[str, ...], now: float) -> list[dict[str, Any]]:
        """The rows of every cell so far, as one window dated ``now``; the cells start again.

        ``dimensions`` names the segment values of each cell (the plan's segment dimensions
        in the order they were recorded with).
        """
        if not self._cells:
            return []
        self.cuts += 1
        window = f"{self.client_id}-{self.cuts}"
        rows = []
        for (stage, arm, metric, values), cell in self._cells.items():
            row: dict[str, Any] = {"stage": stage, "arm": arm, "metric": metric,
                                   **dict(zip(dimensions, values, strict=True))}
            if self._kinds[metric] == "mean":
                n = cell[0]
                row.update(n=n, mean=cell[1], var=cell[2] / (n - 1.0) if n > 1 else 0.0)
            else:
                row.update(exposures=cell[0], events=cell[1])
            row.update(units=cell[3], window=window, time=now)
            rows.append(row)
        self._cells = {}
        return rows


def check_value(metric: MetricInfo, value: Any) -> float:
    """``value`` as a float fit for ``metric``, or an :class:`InputError` naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"value: expected a number for metric {metric.name!r}, got "
                         f"{value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"value: expected a finite number for metric {metric.name!r}, got "
                         f"{value!r}")
    if metric.kind == "rate" and number not in (0.0, 1.0):
        raise InputError(f"value: rate metric {metric.name!r} records 0 or 1 (an event or "
                         f"not), got {value!r}")
    return number
