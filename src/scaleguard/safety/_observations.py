"""Rollout observations: the rows a controller decides on, checked against the plan.

One row per exposure or per aggregated window: ``stage``, ``arm`` (``control``/``treatment``),
``metric``, one column per segment dimension, then ``exposures`` and ``events`` for rate and
quantile metrics, or ``n``, ``mean`` and ``var`` for mean metrics; ``time`` (ISO 8601 or Unix
seconds) is optional and, when present, lets the controller refuse late data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import TableError
from scaleguard.io import missing_column_error, read_table
from scaleguard.safety._plan import RolloutPlan

__all__ = ["ARMS", "check_observations", "read_observations"]

ARMS = ("control", "treatment")
_COLUMNS = {"rate": ("exposures", "events"), "quantile": ("exposures", "events"),
            "mean": ("n", "mean", "var")}


def _where(frame: pd.DataFrame, position: int) -> str:
    source = frame.attrs.get("source", "observations")
    first = int(frame.attrs.get("first_line", 1))
    return f"{source}: row {position + 1} (line {position + first})"


def _first_bad(frame: pd.DataFrame, mask: np.ndarray, column: str, problem: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        value: Any = frame[column].iloc[bad[0]] if column in frame.columns else None
        if hasattr(value, "item"):
            value = value.item()  # numpy scalar -> Python, for a readable message
        more = f" ({bad.size - 1} more bad rows)" if bad.size > 1 else ""
        raise TableError(f"{_where(frame, int(bad[0]))}: column {column!r} is {value!r}, "
                         f"{problem}{more}")


def check_observations(frame: pd.DataFrame, plan: RolloutPlan) -> pd.DataFrame:
    """Return a clean copy of ``frame`` (numbers as float, ``time`` as Unix seconds), or raise.

    Refused, naming the row: unknown stage, arm or metric; a missing, negative or non-numeric
    count; more events than exposures; a negative variance; an unreadable time.
    """
    source = frame.attrs.get("source", "observations")
    missing = [c for c in ("stage", "arm", "metric") if c not in frame.columns]
    if missing:
        raise missing_column_error(source, missing, frame.columns)
    out = frame.reset_index(drop=True).copy()
    out.attrs = dict(frame.attrs)
    for column in ("stage", "arm", "metric"):
        out[column] = out[column].astype(str).str.strip()
    stages = [s.name for s in plan.stages]
    _first_bad(out, ~out["stage"].isin(stages).to_numpy(), "stage",
               f"expected a stage of plan {plan.name!r} ({', '.join(stages)})")
    _first_bad(out, ~out["arm"].isin(ARMS).to_numpy(), "arm", "expected control or treatment")
    kinds = {m.name: m.kind for m in plan.metrics}
    _first_bad(out, ~out["metric"].isin(list(kinds)).to_numpy(), "metric",
               f"expected a metric of the plan ({', '.join(kinds)})")
    kind_of_row = out["metric"].map(kinds).to_numpy()
    for kind, columns in _COLUMNS.items():
        rows = kind_of_row == kind
        if not rows.any():
            continue
        for column in columns:
            if column not in out.columns:
                raise missing_column_error(source, [column], out.columns)
            values = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=float)
            _first_bad(out, rows & ~np.isfinite(values), column,
                       f"expected a number for a {kind} metric")
            if column != "mean":
                _first_bad(out, rows & (values < 0), column, "expected a number >= 0")
            out[column] = values
        if kind in ("rate", "quantile"):
            _first_bad(out, rows & (out["events"].to_numpy() > out["exposures"].to_numpy()),
                       "events", "more events than exposures")
    if "time" in out.columns:
        raw = out["time"]
        # Numbers are Unix seconds; anything else must parse as an ISO 8601 time.
        seconds = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        text = np.isnan(seconds) & raw.notna().to_numpy()
        if text.any():
            parsed = pd.to_datetime(raw[text].astype(str), utc=True, errors="coerce",
                                    format="ISO8601")
            stamps = np.array([t.timestamp() if not pd.isna(t) else np.nan for t in parsed])
            seconds[text] = stamps
        _first_bad(out, ~np.isfinite(seconds), "time",
                   "expected an ISO 8601 time or Unix seconds")
        out["time"] = seconds
    for dim in plan.segments:
        if dim in out.columns:
            out[dim] = out[dim].astype(str).str.strip()
    return out


def read_observations(path: str | Path, plan: RolloutPlan,
                      columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/JSONL observations table and check it against ``plan``."""
    return check_observations(read_table(path, columns), plan)
