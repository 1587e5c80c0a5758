"""Reading metric logs users already have: CSV/JSONL logs, W&B and MLflow CSV exports, and
TensorBoard event files; and writing them into a store as runs.

Malformed lines are reported with their line numbers and, by ``on_bad``, skipped (``"skip"``)
or make the whole file refused (``"reject"``).
"""

from __future__ import annotations

import csv
import math
import struct
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import InputError, TableError
from scaleguard.io._boundary import as_step, shown, text_problem
from scaleguard.monitor._parse import (
    MS_THRESHOLD,
    NAN_WORDS,
    BadLine,
    LineError,
    Point,
    RowParser,
    parse_json_line,
)
from scaleguard.monitor._store import Batch, RunInfo, Sink

__all__ = ["ON_BAD", "MetricLog", "ingest_log", "read_metric_log"]

ON_BAD = ("skip", "reject")
_MAX_BAD_SHOWN = 5  # bad lines named in a one-line summary; the rest are counted
_TB_PREFIX = "events.out.tfevents"
_EXACT_FLOAT_INT = 2.0**53  # float64 holds every whole number up to here, and no further


@dataclass(frozen=True)
class MetricLog:
    """A metric log read into a long frame (run, step, time, name, value), with the lines that
    were skipped."""

    source: str
    format: str
    frame: pd.DataFrame
    bad_lines: tuple[BadLine, ...] = field(default_factory=tuple)

    @property
    def metrics(self) -> list[str]:
        """Metric names, sorted."""
        return sorted(self.frame["name"].unique().tolist())

    @property
    def runs(self) -> list[str]:
        """Run names the file gives (``""`` for a file of one unnamed run)."""
        return sorted(self.frame["run"].unique().tolist())

    def bad_summary(self) -> str:
        """One line naming the first bad lines and counting the rest ('' if none)."""
        if not self.bad_lines:
            return ""
        shown = "; ".join(f"line {b.line}: {b.reason}" for b in self.bad_lines[:_MAX_BAD_SHOWN])
        more = len(self.bad_lines) - _MAX_BAD_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        return (f"{self.source}: skipped {len(self.bad_lines)} malformed "
                f"line{'s' if len(self.bad_lines) > 1 else ''}: {shown}{tail}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (not the points)."""
        return {"source": self.source, "format": self.format, "points": len(self.frame),
                "metrics": self.metrics, "runs": self.runs,
                "bad_lines": [b.as_dict() for b in self.bad_lines]}

    def __repr__(self) -> str:
        return (f"MetricLog({self.source!r}, {self.format}, {len(self.frame)} points, "
                f"{len(self.metrics)} metrics, {len(self.bad_lines)} bad lines)")


def _frame(points: Iterable[Point]) -> pd.DataFrame:
    rows = list(points)
    return pd.DataFrame({
        "run": pd.Series([p.run for p in rows], dtype=object),
        "step": np.fromiter((p.step for p in rows), dtype=np.int64, count=len(rows)),
        "time": np.fromiter((p.time for p in rows), dtype=np.float64, count=len(rows)),
        "name": pd.Series([p.name for p in rows], dtype=object),
        "value": np.fromiter((p.value for p in rows), dtype=np.float64, count=len(rows)),
    })


class _Collector:
    """Gathers points and bad lines; raises at the first bad line when rejecting."""

    def __init__(self, path: Path, on_bad: str) -> None:
        self.path, self.on_bad = path, on_bad
        self.points: list[Point] = []
        self.frames: list[pd.DataFrame] = []  # whole files read by the vectorised CSV path
        self.bad: list[BadLine] = []

    def bad_line(self, line: int, reason: str) -> None:
        if self.on_bad == "reject":
            raise TableError(f"{self.path}: line {line}: {reason} "
                             "(use --on-bad skip to skip malformed lines)")
        self.bad.append(BadLine(line, reason))


def _read_jsonl(path: Path, out: _Collector) -> None:
    # Bytes that are not UTF-8 become lone surrogates, which the parser refuses by line.
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for lineno, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                out.points += parse_json_line(text, fallback_step=lineno - 1)
            except LineError as exc:
                out.bad_line(lineno, str(exc))


def _numbers(column: pd.Series) -> pd.Series | None:
    """The text column as float64, or None if a non-empty cell is not a number."""
    text = column.str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & (text != "") & ~text.str.lower().isin(NAN_WORDS)
    return None if bool(bad.any()) else values.astype("float64")


class _CsvColumns:
    """A CSV file read once by pandas' C parser (numbers parsed natively), and again as text
    only for the columns where that is needed: a column with NaN (an empty cell means "not
    logged", "nan" means NaN) or with text in it."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self.path, self.delimiter = path, delimiter
        self.parsed = pd.read_csv(path, sep=delimiter, engine="c", encoding="utf-8",
                                  low_memory=False)
        self._text: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.parsed)

    def header(self) -> list[str]:
        return [str(c).strip() for c in self.parsed.columns]

    def text(self, index: int) -> pd.Series:
        if self._text is None:
            self._text = pd.read_csv(self.path, sep=self.delimiter, engine="c", dtype=str,
                                     keep_default_na=False, na_filter=False, encoding="utf-8")
        return self._text.iloc[:, index]

    def numbers(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, present) of a numeric column, or None if a cell is not a number."""
        column = self.parsed.iloc[:, index]
        if column.dtype.kind in "fiu":
            values = column.to_numpy(dtype=np.float64)
            if not np.isnan(values).any():
                return values, np.ones(len(values), dtype=bool)
        text = self.text(index)
        parsed = _numbers(text)
        if parsed is None:
            return None
        return parsed.to_numpy(), (text.str.strip() != "").to_numpy()


def _steps(cols: _CsvColumns, index: int) -> np.ndarray | None:
    """The step column as int64, or None unless every cell is a whole number in
    [0, 2**63 - 1] that float64 holds exactly (beyond 2**53 only an int64 column does)."""
    column = cols.parsed.iloc[:, index]
    if column.dtype.kind == "i":
        values = column.to_numpy(dtype=np.int64)
        return values if not (values < 0).any() else None
    found = cols.numbers(index)
    if found is None or not found[1].all():
        return None
    steps = found[0]
    if np.isnan(steps).any() or (steps < 0).any() or (steps > _EXACT_FLOAT_INT).any() \
            or (steps != np.floor(steps)).any():
        return None
    return steps.astype(np.int64)


def _read_csv_fast(path: Path, delimiter: str, parser: RowParser) -> pd.DataFrame | None:
    """The whole file through pandas' C parser, or None at the first doubt (a bad row, a
    non-number), in which case the line-by-line reader finds and names the bad lines."""
    try:
        cols = _CsvColumns(path, delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        return None
    if cols.header() != parser.header or len(cols) == 0:
        return None
    n = len(cols)
    if parser.step_index is not None:
        exact = _steps(cols, parser.step_index)
        if exact is None:
            return None
        step_values = exact
    else:
        step_values = np.arange(n, dtype=np.int64)
    times = np.full(n, np.nan)
    if parser.time_index is not None:
        parsed = cols.numbers(parser.time_index)
        if parsed is None or np.isinf(parsed[0]).any() or \
                np.isnan(parsed[0][parsed[1]]).any():
            return None
        times = np.where(parsed[0] > MS_THRESHOLD, parsed[0] / 1000.0, parsed[0])
    runs = (cols.text(parser.run_index).str.strip().to_numpy(dtype=object)
            if parser.run_index is not None else np.full(n, "", dtype=object))
    if parser.long:
        assert parser.name_index is not None and parser.value_index is not None
        names = cols.text(parser.name_index).str.strip()
        values = cols.numbers(parser.value_index)
        if values is None or (names == "").any() or not values[1].all():
            return None
        return pd.DataFrame({"run": runs, "step": step_values, "time": times,
                             "name": names.to_numpy(dtype=object), "value": values[0]})
    parts = []
    for index, metric, column_run in parser.metrics:
        found = cols.numbers(index)
        if found is None:
            return None
        numbers, present = found  # an empty cell: not logged at that step
        parts.append(pd.DataFrame({
            "run": np.full(int(present.sum()), column_run, dtype=object) if column_run
            else runs[present], "step": step_values[present], "time": times[present],
            "name": metric, "value": numbers[present]}))
    return pd.concat(parts, ignore_index=True)


def _read_csv(path: Path, out: _Collector, delimiter: str) -> None:
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise TableError(f"{path}: the file is empty") from None
        except csv.Error as exc:
            raise TableError(f"{path}: line 1: cannot read the header ({exc})") from None
        try:
            parser = RowParser(header)
        except LineError as exc:
            raise TableError(f"{path}: line 1: {exc}") from None
        fast = _read_csv_fast(path, delimiter, parser)
        if fast is not None:
            out.frames.append(fast)
            return
        row_index = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                out.bad_line(reader.line_num, f"not valid CSV ({exc})")
                continue
            if not fields or not any(f.strip() for f in fields):
                continue
            try:
                out.points += parser.parse(fields, fallback_step=row_index)
            except LineError as exc:
                out.bad_line(reader.line_num, str(exc))
            row_index += 1


def _event_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob(f"{_TB_PREFIX}*") if p.is_file())
        if not files:
            raise TableError(f"{path}: no TensorBoard event files ({_TB_PREFIX}.*) in this folder")
        return files
    return [path]


def _tf_records(file: Path, masked_crc32c: Any) -> Iterator[tuple[int, bytes | None, str]]:
    """(record number, payload, "") of each record of a TFRecord file, or (number, None,
    reason) for a corrupt one. A record is: length (uint64 LE), its masked CRC-32C, the payload,
    the payload's masked CRC-32C. A bad payload CRC skips that record only; a bad length or a
    truncated record ends the file, as nothing after it can be framed."""
    with file.open("rb") as handle:
        number = 0
        while header := handle.read(12):
            number += 1
            if len(header) < 12:
                yield number, None, "truncated record header"
                return
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                yield number, None, "corrupt record length (CRC mismatch); the rest is unreadable"
                return
            payload, crc = handle.read(length), handle.read(4)
            if len(payload) < length or len(crc) < 4:
                yield number, None, "truncated record"
                return
            if masked_crc32c(payload) != struct.unpack("<I", crc)[0]:
                yield number, None, "corrupt record (CRC mismatch)"
                continue
            yield number, payload, ""


def _read_tensorboard(path: Path, out: _Collector) -> None:
    try:
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
        from tensorboard.util import tensor_util
    except ImportError:
        raise InputError(f"{path}: reading TensorBoard event files needs the tensorboard "
                         "package: pip install 'scaleguard[tensorboard]'") from None
    root = path if path.is_dir() else path.parent
    for file in _event_files(path):
        # Scalars of a sub-folder (train/, eval/) are named "<folder>/<tag>".
        prefix = "" if file.parent == root else f"{file.parent.relative_to(root).as_posix()}/"
        # Bad records are counted as lines (record numbers) so that --on-bad treats them alike.
        for number, raw, reason in _tf_records(file, masked_crc32c):
            if raw is None:
                out.bad_line(number, f"{file.name}: {reason}")
                continue
            try:
                event = event_pb2.Event.FromString(raw)
                points = _event_points(event, prefix, tensor_util)
            except (DecodeError, ValueError) as exc:  # InputError and LineError too
                out.bad_line(number, f"{file.name}: unreadable event record ({exc})")
                continue
            out.points += points


def _event_points(event: Any, prefix: str, tensor_util: Any) -> list[Point]:
    if not event.HasField("summary"):
        return []
    step = as_step(event.step)
    wall = float(event.wall_time)
    points = []
    for value in event.summary.value:
        if value.HasField("simple_value"):
            number = float(value.simple_value)
        elif value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
            number = float(tensor_util.make_ndarray(value.tensor).item())
        else:
            continue  # images, histograms, text: not metrics
        tag = prefix + value.tag
        if text_problem(tag) is not None:
            raise LineError(f"tag {shown(tag)} is not valid Unicode")
        points.append(Point(step, wall if math.isfinite(wall) else math.nan, tag, number))
    return points


def _format_of(path: Path) -> str:
    if path.is_dir() or path.name.startswith(_TB_PREFIX):
        return "tensorboard"
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".json": "jsonl", ".log": "jsonl"}
    if suffix not in formats:
        raise TableError(f"{path}: unknown metric log format {path.suffix or '(no suffix)'!r}; "
                         "expected .csv, .tsv, .jsonl/.ndjson, a TensorBoard event file "
                         f"({_TB_PREFIX}.*) or a folder of them")
    return formats[suffix]


def read_metric_log(path: str | Path, *, on_bad: str = "skip") -> MetricLog:
    """Read a metric log into a long frame.

    Parameters
    ----------
    path:
        ``.csv``/``.tsv`` (wide, long, W&B chart export, MLflow metric history),
        ``.jsonl``/``.ndjson`` (one object per line, wide or long), a TensorBoard event file
        (``events.out.tfevents.*``) or a folder holding them.
    on_bad:
        ``"skip"`` malformed lines (they are listed in ``bad_lines``) or ``"reject"`` the file
        at the first one (a :class:`~scaleguard.errors.TableError` naming the line).
    """
    if on_bad not in ON_BAD:
        raise InputError(f"--on-bad: expected one of {', '.join(ON_BAD)}, got {on_bad!r}")
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file")
    fmt = _format_of(path)
    if path.is_file() and path.stat().st_size == 0:
        raise TableError(f"{path}: the file is empty")
    out = _Collector(path, on_bad)
    if fmt == "tensorboard":
        _read_tensorboard(path, out)
    elif fmt == "jsonl":
        _read_jsonl(path, out)
    else:
        _read_csv(path, out, "," if fmt == "csv" else "\t")
    frame = pd.concat([_frame(out.points), *out.frames], ignore_index=True) if out.frames \
        else _frame(out.points)
    if frame.empty:
        reason = f" ({len(out.bad)} malformed lines, first: line {out.bad[0].line}: " \
                 f"{out.bad[0].reason})" if out.bad else ""
        raise TableError(f"{path}: no metric points found{reason}")
    return MetricLog(str(path), fmt, frame, tuple(out.bad))


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def ingest_log(log: MetricLog, sink: Sink, run: str | None = None, *,
               config: dict[str, Any] | None = None, batch_points: int = 1_000_000
               ) -> list[RunInfo]:
    """Write a metric log into a store as finished runs; returns the runs written.

    A file of one run becomes the run ``run`` (default: the file's stem); a file naming several
    runs (W&B exports, MLflow ``run_id``) gives one run each, named ``<run>:<name in file>``
    when ``run`` is given. Points are written in batches of ``batch_points``, each atomic.
    """
    default = run or Path(log.source).stem
    written = []
    for key, part in log.frame.groupby("run", sort=True):
        file_run = str(key)
        name = default if not file_run else (f"{run}:{file_run}" if run else file_run)
        now = time.time()
        info = RunInfo(uuid.uuid4().hex[:12], name, "running", now, None,
                       {"source": log.source, "format": log.format, **(config or {})})
        sink.open_run(info)
        part = part.sort_values(["step", "name"], kind="stable")
        for chunk in _chunks(part, batch_points):
            times = chunk["time"].to_numpy(dtype=np.float64)
            sink.write(Batch(info.run_id, chunk["step"].to_numpy(dtype=np.int64),
                             times, chunk["name"].tolist(), chunk["value"].to_numpy(
                                 dtype=np.float64)))
        finished = float(np.nanmax(part["time"])) if part["time"].notna().any() else now
        sink.close_run(info.run_id, "imported", finished if math.isfinite(finished) else now)
        written.append(RunInfo(info.run_id, name, "imported", now, finished, info.config,
                               len(part)))
    return written
