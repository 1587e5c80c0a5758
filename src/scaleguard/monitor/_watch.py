"""Following a growing metric log (``tail -f``) and running detectors on each new point."""

from __future__ import annotations

import csv
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scaleguard.errors import TableError
from scaleguard.monitor._detector import Detector
from scaleguard.monitor._events import Alert, Event
from scaleguard.monitor._parse import BadLine, LineError, Point, RowParser, parse_json_line
from scaleguard.monitor._suite import default_detectors

__all__ = ["LogFollower", "Watcher", "WatchState"]

_KEEP_ALERTS = 20  # recent alerts kept for display
_KEEP_BAD = 5  # recent malformed lines kept for display
_READ_CHUNK = 1 << 20  # bytes read per poll at most, so one poll never stalls the display


class LogFollower:
    """Reads the complete lines appended to a CSV or JSONL file since the last poll.

    A line still being written (no newline yet) waits for the next poll. A file that shrinks
    (rotated or rewritten) is read again from the start. Malformed lines never raise: they
    come back as :class:`BadLine` with their line number.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise TableError(f"{self.path}: is a folder, expected a metric log file")
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson", ".log", ".json"):
            raise TableError(f"{self.path}: watch follows .csv, .tsv or .jsonl logs, "
                             f"not {suffix or 'files without a suffix'!r}")
        self.format = "jsonl" if suffix in (".jsonl", ".ndjson", ".log", ".json") else "csv"
        self.delimiter = "\t" if suffix == ".tsv" else ","
        self._reset()

    def _reset(self) -> None:
        self.offset = 0
        self.lineno = 0
        self.rows = 0
        self._partial = b""
        self._parser: RowParser | None = None

    def poll(self) -> tuple[list[Point], list[BadLine]]:
        """New points and malformed lines since the last poll."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [], []
        if size < self.offset:
            self._reset()
        if size == self.offset:
            return [], []
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(_READ_CHUNK)
        except IsADirectoryError:
            raise TableError(f"{self.path}: is a folder, expected a metric log file") from None
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the data ended with a newline
        points: list[Point] = []
        bad: list[BadLine] = []
        for raw in lines:
            self.lineno += 1
            # Bytes that are not UTF-8 become lone surrogates, which the parser refuses.
            text = raw.decode("utf-8", errors="surrogateescape").rstrip("\r")
            if not text.strip():
                continue
            try:
                points += self._parse(text)
            except LineError as exc:
                bad.append(BadLine(self.lineno, str(exc)))
        return points, bad

    def _parse(self, text: str) -> list[Point]:
        if self.format == "jsonl":
            found = parse_json_line(text, fallback_step=self.rows)
            self.rows += 1
            return found
        try:
            fields = next(csv.reader([text], delimiter=self.delimiter))
        except csv.Error as exc:
            raise LineError(f"not valid CSV ({exc})") from None
        if self._parser is None:
            self._parser = RowParser(fields)  # the header
            return []
        found = self._parser.parse(fields, fallback_step=self.rows)
        self.rows += 1
        return found


@dataclass
class WatchState:
    """What the live display shows: the latest value of each metric, recent alerts, and the
    malformed lines seen."""

    latest: dict[str, tuple[int, float]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=_KEEP_ALERTS))
    bad_lines: deque[BadLine] = field(default_factory=lambda: deque(maxlen=_KEEP_BAD))
    bad_count: int = 0
    alert_count: int = 0


class Watcher:
    """A follower plus detectors per metric; :meth:`poll` returns the alerts of new points."""

    def __init__(self, follower: LogFollower, *, run: str | None = None,
                 extra: Mapping[str, Sequence[Callable[[str], list[Detector]]]] | None = None,
                 defaults: bool = True) -> None:
        self.follower = follower
        self.run = run or follower.path.stem
        self.extra = dict(extra or {})
        self.defaults = defaults
        self.state = WatchState()
        self._detectors: dict[str, list[Detector]] = {}

    def _for(self, metric: str) -> list[Detector]:
        if metric not in self._detectors:
            chosen = default_detectors(metric) if self.defaults else []
            chosen += [d for make in self.extra.get(metric, ()) for d in make(metric)]
            self._detectors[metric] = chosen
        return self._detectors[metric]

    def poll(self) -> list[Alert]:
        """Read new lines, update the detectors, return the new alerts."""
        points, bad = self.follower.poll()
        self.state.bad_count += len(bad)
        self.state.bad_lines.extend(bad)
        now = time.time()
        alerts: list[Alert] = []
        for p in points:
            name = f"{p.run}:{p.name}" if p.run else p.name
            self.state.latest[name] = (p.step, p.value)
            self.state.points[name] = self.state.points.get(name, 0) + 1
            for detector in self._for(name):
                clock = p.time if detector.uses_time and math.isfinite(p.time) else p.step
                # A time-based detector takes seconds where the others take steps.
                event: Event | None = detector.update(p.value, clock)  # type: ignore[arg-type]
                if event is not None:
                    alerts.append(Alert.from_event(event.with_metric(name), self.run,
                                                   p.time if p.time == p.time else now))
        self.state.alerts.extend(alerts)
        self.state.alert_count += len(alerts)
        return alerts
