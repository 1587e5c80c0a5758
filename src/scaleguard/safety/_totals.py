"""Cell totals: what a decision reads of its observation windows, summed once per cell.

A cell is one (stage, arm, metric, segment values) combination. Every gate, the sample-ratio
check and the late-data check read sums over cells, never single windows: exposures and
events for rates and quantiles; for means the pooled sufficient statistics ``n``,
``n_mean`` = Σ n·mean and ``n_m2`` = Σ ((n − 1)·var + n·mean²) (the exact pooling of windows'
n/mean/var: the pooled mean is n_mean / n, the pooled variance (n_m2 − n_mean²/n) / (n − 1));
the units first exposed (``units``) and how many windows counted them (``unit_windows``);
and the newest window's ``time``. So totals of totals are the totals of all windows
(:func:`merge_totals`), and a rollout store can keep one row per cell instead of re-reading
every window ever posted; the controller decides from totals either way, so the two cannot
disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import TableError
from scaleguard.safety._plan import RolloutPlan

__all__ = ["CellTotals", "cell_totals", "check_layout", "merge_totals", "window_layout",
           "window_sums"]

# ``units``: units first exposed in the cell's windows; ``unit_windows``: the windows that
# counted them (a split's units are tested only when every one of its windows did).
_SUMMED = ("exposures", "events", "n", "n_mean", "n_m2", "windows", "units", "unit_windows")


@dataclass(frozen=True)
class CellTotals:
    """One row per cell: the key columns (``stage``, ``arm``, ``metric``, the segment columns
    the windows carry), the sums of :data:`_SUMMED` and ``time`` (newest window; absent when
    windows carry no time). ``layout`` names the optional columns of the windows summed
    (segment dimensions, ``window``): every window of a rollout carries the same ones."""

    frame: pd.DataFrame
    layout: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    def records(self) -> dict[str, dict[str, Any]]:
        """Each cell as a JSON-ready record, keyed by its cell key (for a store to keep)."""
        keys = [c for c in self.frame.columns if c not in (*_SUMMED, "time")]
        out = {}
        for row in self.frame.to_dict("records"):
            record = {str(k): (None if isinstance(v, float) and np.isnan(v) else v)
                      for k, v in row.items()}
            out[json.dumps([record[k] for k in keys])] = {**record, "layout": list(self.layout)}
        return out

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> CellTotals:
        """Totals from the records :meth:`records` made (a store's cells)."""
        rows = [dict(r) for r in records]
        layout = tuple(rows[0].get("layout", ())) if rows else ()
        for row in rows:
            row.pop("layout", None)
        frame = pd.DataFrame(rows) if rows else _empty()
        for column in _SUMMED + (("time",) if "time" in frame.columns else ()):
            # A store written before a column was summed has none: nothing was counted.
            frame[column] = pd.to_numeric(frame[column]).astype(float) \
                if column in frame.columns else 0.0
        return cls(frame, layout)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ("stage", "arm", "metric")}
                        | {c: pd.Series(dtype=float) for c in _SUMMED})


def window_layout(rows: pd.DataFrame | Mapping[str, Any], plan: RolloutPlan) -> tuple[str, ...]:
    """The optional columns windows carry: the plan's segment dimensions present, ``window``."""
    present = set(rows.columns) if isinstance(rows, pd.DataFrame) else set(rows)
    return tuple(c for c in (*plan.segments, "window") if c in present)


def check_layout(rows: pd.DataFrame, plan: RolloutPlan, stored: tuple[str, ...] | None,
                 source: str = "rows") -> None:
    """Refuse new windows whose optional columns differ from the stored windows' ones.

    A window without the segment column the others have would count in the overall gate but in
    no segment's; a window id where the others are keyed by time would escape duplicate
    detection. ``stored`` None: nothing stored yet, any layout is the rollout's.
    """
    if stored is None or not len(rows):
        return
    mine = window_layout(rows, plan)
    for column in stored:
        if column not in mine:
            raise TableError(f"{source}: column {column!r} is missing: every stored window of "
                             f"this rollout has one")
    for column in mine:
        if column not in stored:
            raise TableError(f"{source}: column {column!r} is not in the stored windows of "
                             "this rollout: every window of a rollout names the same segments "
                             "and window ids")


def cell_totals(rows: pd.DataFrame | Mapping[str, Any], plan: RolloutPlan) -> CellTotals:
    """Sum checked windows (:func:`check_observations`) per cell.

    >>> from scaleguard.safety._plan import parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "guardrail": 0.01}],
    ...                    "stages": [{"name": "pilot", "traffic": 0.01}]})
    >>> row = {"stage": "pilot", "arm": "treatment", "metric": "harm", "exposures": 100.0,
    ...        "events": 1.0}
    >>> cell_totals(pd.DataFrame([row, {**row, "events": 2.0}]), plan).frame[["exposures",
    ...                                                                     "events"]].values
    array([[200.,   3.]])
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(dict(rows))
    layout = window_layout(frame, plan)
    keys = ["stage", "arm", "metric", *(c for c in layout if c != "window")]
    if not len(frame) or "stage" not in frame.columns:
        return CellTotals(_empty(), layout)
    work = frame[keys].copy()
    for column, values in window_sums(frame).items():
        work[column] = values
    sums = {c: "sum" for c in _SUMMED} | ({"time": "max"} if "time" in work.columns else {})
    out = work.groupby(keys, sort=False, dropna=False).agg(sums).reset_index()
    return CellTotals(out, layout)


def window_sums(rows: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each window's own contribution to its cell's sums (:data:`_SUMMED`, and ``time`` when
    windows carry one): a window is a cell of one window, so a reader that sums these over
    windows sums what :func:`cell_totals` sums per cell."""
    size = len(np.asarray(rows["stage"])) if "stage" in rows else 0
    n = _column(rows, "n", size)
    mean, var = _column(rows, "mean", size), _column(rows, "var", size)
    out: dict[str, np.ndarray] = {
        "exposures": _column(rows, "exposures", size), "events": _column(rows, "events", size),
        "n": n,
        # Rows of rate metrics have no n/mean/var (NaN in a mixed table): they add nothing.
        "n_mean": np.where(np.isnan(mean), 0.0, n * mean),
        "n_m2": np.where(np.isnan(var), 0.0, (n - 1.0) * var + n * mean * mean),
        "windows": np.ones(size)}
    units = np.asarray(rows["units"], dtype=float) if "units" in rows else np.full(size, np.nan)
    out["units"] = np.nan_to_num(units, nan=0.0)
    out["unit_windows"] = np.isfinite(units).astype(float)
    if "time" in rows:
        out["time"] = np.asarray(rows["time"], dtype=float)
    return out


def _column(rows: pd.DataFrame | Mapping[str, Any], name: str, size: int) -> np.ndarray:
    if name not in rows:
        return np.full(size, np.nan if name in ("mean", "var") else 0.0)
    values = np.asarray(rows[name], dtype=float)
    return values if name in ("mean", "var") else np.nan_to_num(values, nan=0.0)


def merge_totals(a: CellTotals, b: CellTotals) -> CellTotals:
    """The totals of the windows of ``a`` and ``b`` together (``b``'s layout wins if ``a``
    holds nothing)."""
    if not len(a):
        return b
    if not len(b):
        return a
    both = pd.concat([a.frame, b.frame], ignore_index=True)
    keys = [c for c in both.columns if c not in (*_SUMMED, "time")]
    sums = {c: "sum" for c in _SUMMED} | ({"time": "max"} if "time" in both.columns else {})
    out = both.groupby(keys, sort=False, dropna=False).agg(sums).reset_index()
    return CellTotals(out, a.layout)
