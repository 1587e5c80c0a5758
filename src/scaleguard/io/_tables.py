"""Read a table file (CSV, TSV, Parquet, JSONL) into pandas and check its columns row by row."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaleguard.errors import TableError
from scaleguard.io._boundary import load_json, utf8_problem

__all__ = [
    "FORMATS",
    "NumericColumn",
    "parse_column_map",
    "read_table",
    "check_numeric",
    "missing_column_error",
]

# File suffix -> format name. Anything else is refused rather than guessed.
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_MAX_BAD_ROWS_NAMED = 1  # name the first bad row in full; count the rest (one-line messages)


def parse_column_map(pairs: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Turn ``["params=Model Size", "flops=Training FLOP"]`` into ``{"params": "Model Size", ...}``.

    The key is scaleguard's column name, the value the header in the user's file.
    """
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return {str(k): str(v) for k, v in pairs.items()}
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        name, header = name.strip(), header.strip().strip("\"'")
        if not sep or not name or not header:
            raise TableError(f"--col {pair!r}: expected NAME=Header, e.g. params=\"Model Size\"")
        if name in mapping:
            raise TableError(f"--col {pair!r}: column {name!r} is mapped twice")
        mapping[name] = header
    return mapping


def missing_column_error(source: object, missing: Sequence[str],
                         columns: Iterable[object]) -> TableError:
    """The one message for absent columns: what is missing, what is there, how to map it."""
    extra = f" (and {', '.join(map(repr, missing[1:]))})" if missing[1:] else ""
    return TableError(f"{source}: missing column {missing[0]!r}{extra}; columns are "
                      f"{', '.join(repr(str(c)) for c in columns)}; "
                      f"map yours with --col {missing[0]}=Header")


def _first_line(path: Path, fmt: str) -> int:
    """Line number of the first data row in the file, for messages (1-based)."""
    return 2 if fmt in ("csv", "tsv") else 1


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open("rb") as handle:  # bytes: a line that is not UTF-8 is named, not replaced
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = load_json(line, f"{path}: line {lineno}", error=TableError)
            if not isinstance(record, dict):
                raise TableError(f"{path}: line {lineno}: expected a JSON object per line")
            records.append(record)
    return pd.DataFrame.from_records(records)


def _check_header(path: Path, fmt: str, frame: pd.DataFrame) -> None:
    """Refuse a header naming a column twice: pandas would rename the second one
    (``params.1``) and a ladder would silently use whichever it finds."""
    if fmt in ("csv", "tsv"):
        header = pd.read_csv(path, sep="," if fmt == "csv" else "\t", header=None, nrows=1,
                             dtype=str, keep_default_na=False, skipinitialspace=True)
        names = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    else:
        names = [str(c).strip() for c in frame.columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TableError(f"{path}: line 1: column {name!r} appears twice in the header")
        seen.add(name)


def _seconds(frame: pd.DataFrame) -> pd.DataFrame:
    """Date-time columns (Parquet timestamps) as Unix seconds and durations as seconds, the
    units of every time in scaleguard; read as numbers they would be nanoseconds."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            if getattr(column.dt, "tz", None) is None:
                column = column.dt.tz_localize("UTC")  # a naive time is taken as UTC
            frame[name] = (column - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        elif column.dtype.kind == "m":
            frame[name] = column.dt.total_seconds()
    return frame


def read_table(path: str | Path, columns: Mapping[str, str] | Iterable[str] | None = None,
               *, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read ``path`` into a DataFrame, rename mapped columns, and check required ones exist.

    Parameters
    ----------
    path:
        ``.csv``, ``.tsv``, ``.parquet``/``.pq`` or ``.jsonl``/``.ndjson``.
    columns:
        Column map ``{name: header in file}`` or ``["name=Header", ...]`` as given to ``--col``.
    required:
        Names (after mapping) that must be present.

    The frame's ``attrs`` carry ``source`` (the path) and ``first_line`` (the file line of the
    first data row) so that later checks can name the row at fault.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise TableError(f"{path}: unknown table format {path.suffix or '(no suffix)'!r}; "
                         f"expected one of {known}")
    if path.is_dir():
        raise TableError(f"{path}: is a folder, expected a table file")
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TableError(f"{path}: the file is empty")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, skipinitialspace=True)
        elif fmt == "tsv":
            frame = pd.read_csv(path, sep="\t")
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_jsonl(path)
    except TableError:
        raise
    except UnicodeDecodeError:
        data = path.read_bytes()  # the error path only: find the line and column at fault
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TableError(f"{path}: {utf8_problem(data, exc)}; save the table as UTF-8"
                             ) from None
        raise TableError(f"{path}: cannot read as {fmt}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError,
            ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TableError(f"{path}: cannot read as {fmt}: {reason}") from None
    if frame.empty:
        raise TableError(f"{path}: the table has no data rows")
    _check_header(path, fmt, frame)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = _seconds(frame)

    mapping = parse_column_map(columns)
    for name, header in mapping.items():
        if header not in frame.columns:
            raise TableError(f"{path}: column {header!r} (mapped to {name!r}) not found; "
                             f"columns are {', '.join(map(repr, frame.columns))}")
    frame = frame.rename(columns={header: name for name, header in mapping.items()})
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise missing_column_error(path, missing, frame.columns)
    frame.attrs["source"] = str(path)
    frame.attrs["first_line"] = _first_line(path, fmt)
    return frame


@dataclass(frozen=True)
class NumericColumn:
    """How a numeric column must look: finite always; ``positive`` (> 0) or ``nonnegative``."""

    name: str
    positive: bool = False
    nonnegative: bool = False
    required: bool = True


def _where(frame: pd.DataFrame, index: int) -> str:
    source = frame.attrs.get("source", "<table>")
    first_line = int(frame.attrs.get("first_line", 1))
    return f"{source}: row {index + 1} (line {index + first_line})"


def _raise_bad(frame: pd.DataFrame, bad: np.ndarray, column: str, problem: str,
               raw: pd.Series) -> None:
    positions = np.flatnonzero(bad)
    if positions.size == 0:
        return
    first = int(positions[0])
    value = raw.iloc[first]
    shown = "empty" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else repr(value.item() if hasattr(value, "item") else value)
    more = positions.size - _MAX_BAD_ROWS_NAMED
    tail = f" ({more} more bad row{'s' if more > 1 else ''} in this column)" if more > 0 else ""
    raise TableError(f"{_where(frame, first)}: column {column!r} is {shown}, {problem}{tail}")


def check_numeric(frame: pd.DataFrame, rules: Sequence[NumericColumn]) -> pd.DataFrame:
    """Return a copy whose ruled columns are float64, refusing the first bad row by name.

    Refused: a missing required column, a non-numeric cell, NaN or an empty cell, ±inf, and
    values that are not positive (or not non-negative) where the rule says so.
    """
    out = frame.copy()
    for rule in rules:
        if rule.name not in out.columns:
            if rule.required:
                raise missing_column_error(frame.attrs.get("source", "<table>"), [rule.name],
                                           frame.columns)
            continue
        raw = out[rule.name]
        if raw.dtype == bool:
            _raise_bad(out, np.ones(len(raw), dtype=bool), rule.name, "expected a number", raw)
        numeric = pd.to_numeric(raw, errors="coerce").astype("float64")
        values = numeric.to_numpy()
        _raise_bad(out, np.isnan(values) & raw.notna().to_numpy(), rule.name,
                   "expected a number", raw)
        _raise_bad(out, np.isnan(values), rule.name, "expected a number (missing or NaN)", raw)
        _raise_bad(out, np.isinf(values), rule.name, "expected a finite number", raw)
        if rule.positive:
            _raise_bad(out, values <= 0, rule.name, "expected a positive number", raw)
        elif rule.nonnegative:
            _raise_bad(out, values < 0, rule.name, "expected a number >= 0", raw)
        out[rule.name] = numeric
    return out
