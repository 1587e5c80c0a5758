"""Turning one line of a metric log (JSONL object or CSV row) into points, or saying why not.

Shared by ``ingest`` (whole files) and ``watch`` (lines as they are appended), so that both
accept and refuse exactly the same lines, with the same messages.

Accepted shapes, per line:

- wide: a step (``step``, ``_step``, ``global_step``, ``iteration``, ``iter``, ``Step``), an
  optional time (``time``, ``timestamp``, ``_timestamp``, ``wall_time``, ``Wall time``), and one
  column per metric (W&B history exports, most training logs);
- long: ``name`` (or ``key``, ``metric``, ``tag``) and ``value`` with a step (MLflow metric
  history, scaleguard's own metric stream), optionally ``run`` (or ``run_id``).

Times above 1e11 are taken as milliseconds since the epoch (MLflow, W&B ``_timestamp`` in ms)
and converted to seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scaleguard.errors import InputError
from scaleguard.io._boundary import (
    MAX_DEPTH,
    as_finite,
    as_step,
    document_problem,
    shown,
    text_problem,
)

__all__ = ["MS_THRESHOLD", "NAN_WORDS", "BadLine", "LineError", "Point", "RowParser",
           "parse_json_line"]

STEP_KEYS = ("step", "_step", "global_step", "iteration", "iter", "Step", "trainer/global_step")
TIME_KEYS = ("time", "timestamp", "_timestamp", "wall_time", "Wall time", "Timestamp")
NAME_KEYS = ("name", "key", "metric", "tag")
RUN_KEYS = ("run", "run_id", "Run")
MS_THRESHOLD = 1e11  # epoch seconds reach 1e11 in the year 5138; epoch ms passed it in 1973
# W&B chart export: "<run name> - <metric>", with "__MIN"/"__MAX" envelope columns to drop.
_WANDB_COLUMN = re.compile(r"^(?P<run>.+?) - (?P<metric>.+?)(?P<env>__MIN|__MAX)?$")
NAN_WORDS = {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity", "+infinity"}


@dataclass(frozen=True)
class Point:
    """One parsed metric value. ``time`` is epoch seconds or NaN when the log has none."""

    step: int
    time: float
    name: str
    value: float
    run: str = ""


@dataclass(frozen=True)
class BadLine:
    """A line that was refused: its 1-based line number in the file and why."""

    line: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"line": self.line, "reason": self.reason}


class LineError(ValueError):
    """Raised by the parsers for one bad line (caught and turned into a :class:`BadLine`)."""


def _number(raw: object, what: str) -> float:
    # NaN and infinity are values a log may hold (findings); 10**400 is not a float64.
    try:
        return as_finite(raw, what, allow_nonfinite=True)
    except InputError as exc:
        raise LineError(str(exc)) from None


def _step(raw: object, key: str) -> int:
    try:
        return as_step(raw, key)  # stored as BIGINT: 2**63 and above would wrap around
    except InputError as exc:
        raise LineError(str(exc)) from None


def _time(raw: object, key: str) -> float:
    value = _number(raw, key)
    if not math.isfinite(value):
        raise LineError(f"{key} is {shown(raw)}, expected a finite time")
    return value / 1000.0 if value > MS_THRESHOLD else value


def _text(raw: str, what: str) -> str:
    problem = text_problem(raw)  # a lone surrogate, or a byte that was not UTF-8
    if problem is not None:
        raise LineError(f"{what} {shown(raw)} {problem}")
    return raw


def _first_key(keys: Sequence[str], candidates: Sequence[str]) -> str | None:
    present = set(keys)
    return next((c for c in candidates if c in present), None)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out


def parse_json_line(text: str, fallback_step: int) -> list[Point]:
    """Points of one JSONL line (wide or long). ``fallback_step`` is used when it has no step.

    Raises :class:`LineError` for invalid JSON, a non-object, a bad step/time, a long record
    without a number value, or a wide record with no metric at all. In a wide record, string
    values that are not numbers are tags and are ignored; ``null`` is a missing value.
    """
    _text(text, "the line")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except (RecursionError, ValueError):  # 100,000 brackets deep; an int of 5,000 digits
        raise LineError(f"nested more than {MAX_DEPTH} levels deep or a number too long"
                        ) from None
    if not isinstance(record, dict):
        raise LineError(f"expected a JSON object, got {type(record).__name__}")
    problem = document_problem(record, finite=False)  # NaN is a value; depth, text are not
    if problem is not None:
        raise LineError(f"{problem[0]}: {problem[1]}")
    record = _flatten(record)
    keys = list(record)
    step_key, time_key = _first_key(keys, STEP_KEYS), _first_key(keys, TIME_KEYS)
    name_key, run_key = _first_key(keys, NAME_KEYS), _first_key(keys, RUN_KEYS)
    step = _step(record[step_key], step_key) if step_key else fallback_step
    time = _time(record[time_key], time_key) if time_key else math.nan
    run = str(record[run_key]) if run_key and record[run_key] is not None else ""
    if name_key and "value" in record:
        return [Point(step, time, str(record[name_key]), _number(record["value"], "value"), run)]
    skip = {step_key, time_key, run_key}
    points = []
    for key, raw in record.items():
        if key in skip or raw is None:
            continue
        if isinstance(raw, str) and raw.strip().lower() not in NAN_WORDS:
            try:
                float(raw)
            except ValueError:
                continue  # a tag such as "phase": "train"
        if isinstance(raw, list):
            continue
        points.append(Point(step, time, key, _number(raw, key), run))
    if not points:
        raise LineError("no metric values (expected numbers besides the step and time)")
    return points


class RowParser:
    """Points of CSV rows, given the header.

    Recognises a long header (name/key + value), W&B chart exports (``run - metric`` columns,
    ``__MIN``/``__MAX`` dropped) and plain wide tables. Empty cells are missing values.
    """

    def __init__(self, header: Sequence[str]) -> None:
        self.header = [_text(h.strip(), "column") for h in header]
        if not any(self.header):
            raise LineError("the header is empty")
        if len(set(self.header)) != len(self.header):
            dup = next(h for h in self.header if self.header.count(h) > 1)
            raise LineError(f"column {dup!r} appears twice in the header")
        self.step_index = self._index(STEP_KEYS)
        self.time_index = self._index(TIME_KEYS)
        self.run_index = self._index(RUN_KEYS)
        name_index = self._index(NAME_KEYS)
        self.long = name_index is not None and "value" in self.header
        self.name_index = name_index
        self.value_index = self.header.index("value") if self.long else None
        skip = {self.step_index, self.time_index, self.run_index}
        # (column index, metric name, run name) of each metric column of a wide table.
        self.metrics: list[tuple[int, str, str]] = []
        if not self.long:
            for i, h in enumerate(self.header):
                if i in skip or not h:
                    continue
                match = _WANDB_COLUMN.match(h)
                if match and match["env"]:
                    continue
                if match:
                    self.metrics.append((i, match["metric"], match["run"]))
                else:
                    self.metrics.append((i, h, ""))
            if not self.metrics:
                raise LineError(f"no metric columns in header {', '.join(self.header)}")

    def _index(self, candidates: Sequence[str]) -> int | None:
        key = _first_key(self.header, candidates)
        return self.header.index(key) if key is not None else None

    def parse(self, fields: Sequence[str], fallback_step: int) -> list[Point]:
        """Points of one row; raises :class:`LineError` for a bad row."""
        if len(fields) != len(self.header):
            raise LineError(f"expected {len(self.header)} fields, got {len(fields)}")
        for field in fields:
            _text(field, "field")
        h = self.header
        step = (_step(fields[self.step_index], h[self.step_index])
                if self.step_index is not None else fallback_step)
        time = (_time(fields[self.time_index], h[self.time_index])
                if self.time_index is not None and fields[self.time_index].strip() else math.nan)
        run = fields[self.run_index].strip() if self.run_index is not None else ""
        if self.long:
            assert self.name_index is not None and self.value_index is not None
            name = fields[self.name_index].strip()
            if not name:
                raise LineError(f"{h[self.name_index]} is empty")
            return [Point(step, time, name, _number(fields[self.value_index], "value"), run)]
        points = []
        for index, metric, column_run in self.metrics:
            cell = fields[index]
            if not cell.strip():
                continue
            points.append(Point(step, time, metric, _number(cell, h[index]), column_run or run))
        return points
