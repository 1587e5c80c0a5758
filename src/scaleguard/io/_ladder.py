"""Ladder tables and scale tables, as DESIGN.md defines them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import TableError
from scaleguard.io._tables import NumericColumn, check_numeric, read_table

__all__ = [
    "LADDER_COLUMNS",
    "FLOPS_PER_PARAM_TOKEN",
    "prepare_ladder",
    "read_ladder",
    "read_scale_table",
    "TableSummary",
    "summarize_table",
]

# C = 6·N·D: forward and backward pass of a dense transformer (Kaplan et al. 2020).
FLOPS_PER_PARAM_TOKEN = 6.0
LADDER_COLUMNS = ("params", "tokens", "flops", "loss")
_OPTIONAL_POSITIVE = ("unique_tokens",)
_OPTIONAL_NONNEGATIVE = ("step", "seed")

ColumnSpec = Mapping[str, str] | Iterable[str] | None


def prepare_ladder(frame: pd.DataFrame, *, require_loss: bool = True) -> pd.DataFrame:
    """Check a ladder frame and complete it: ``tokens`` from ``flops`` or ``flops`` from ``tokens``.

    The returned frame has float columns ``params``, ``tokens``, ``flops`` (and ``loss`` when
    required) and lists the columns it computed in ``attrs["derived"]``.
    """
    source = frame.attrs.get("source", "<table>")
    has_tokens, has_flops = "tokens" in frame.columns, "flops" in frame.columns
    if not has_tokens and not has_flops:
        raise TableError(f"{source}: a ladder needs a 'tokens' or a 'flops' column; columns are "
                         f"{', '.join(map(repr, frame.columns))}; "
                         "map yours with --col tokens=Header")
    rules = [NumericColumn("params", positive=True)]
    rules += [NumericColumn(name, positive=True) for name in ("tokens", "flops")
              if name in frame.columns]
    if require_loss or "loss" in frame.columns:
        rules.append(NumericColumn("loss", positive=True))
    rules += [NumericColumn(name, positive=True, required=False) for name in _OPTIONAL_POSITIVE]
    rules += [NumericColumn(name, nonnegative=True, required=False)
              for name in _OPTIONAL_NONNEGATIVE]
    out = check_numeric(frame, rules)
    derived: list[str] = []
    if not has_tokens:
        out["tokens"] = out["flops"] / (FLOPS_PER_PARAM_TOKEN * out["params"])
        derived.append("tokens")
    if not has_flops:
        out["flops"] = FLOPS_PER_PARAM_TOKEN * out["params"] * out["tokens"]
        derived.append("flops")
    for name in derived:  # finite inputs whose product or quotient is not (1e300 x 1e300)
        bad = ~np.isfinite(out[name].to_numpy(dtype=float)) | (out[name].to_numpy() <= 0)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            line = first + int(frame.attrs.get("first_line", 1))
            formula = "6 · params · tokens" if name == "flops" else "flops / (6 · params)"
            raise TableError(f"{source}: row {first + 1} (line {line}): {name} = {formula} is "
                             f"{float(out[name].iloc[first])!r}: outside float64")
    out.attrs["derived"] = derived
    return out


def read_ladder(path: str | Path, columns: ColumnSpec = None, *,
                require_loss: bool = True) -> pd.DataFrame:
    """Read a ladder table (``params``, ``tokens`` and/or ``flops``, ``loss``) and complete it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ladder.csv"
    >>> _ = p.write_text("Model Size,Training FLOP,loss\\n1e8,6e18,3.1\\n")
    >>> read_ladder(p, ["params=Model Size", "flops=Training FLOP"])["tokens"].item()
    10000000000.0
    """
    required = ["params", "loss"] if require_loss else ["params"]
    return prepare_ladder(read_table(path, columns, required=required), require_loss=require_loss)


def read_scale_table(path: str | Path, x: str, metrics: Sequence[str] = (),
                     columns: ColumnSpec = None) -> pd.DataFrame:
    """Read a scale table: one positive ``x`` column and finite metric columns.

    With no ``metrics`` given, every other numeric column is taken as a metric.
    """
    frame = read_table(path, columns, required=[x, *metrics])
    if not metrics:
        metrics = [c for c in frame.columns
                   if c != x and pd.api.types.is_numeric_dtype(frame[c])]
        if not metrics:
            raise TableError(f"{path}: no numeric metric column besides {x!r}")
    rules = [NumericColumn(x, positive=True)] + [NumericColumn(m) for m in metrics]
    out = check_numeric(frame, rules)
    out.attrs["x"] = x
    out.attrs["metrics"] = list(metrics)
    return out


@dataclass(frozen=True)
class TableSummary:
    """What ``scaleguard inspect`` prints: size, kind and the range of each numeric column."""

    source: str
    kind: str  # "ladder" or "scale"
    rows: int
    columns: tuple[str, ...]
    derived: tuple[str, ...]
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    groups: int | None = None
    orders_of_magnitude: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "rows": self.rows,
            "columns": list(self.columns),
            "derived": list(self.derived),
            "ranges": {k: {"min": lo, "max": hi} for k, (lo, hi) in self.ranges.items()},
            "groups": self.groups,
            "orders_of_magnitude": dict(self.orders_of_magnitude),
        }


def summarize_table(frame: pd.DataFrame, kind: str) -> TableSummary:
    """Summarise a checked ladder or scale table (pure: no I/O)."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    ranges = {c: (float(frame[c].min()), float(frame[c].max())) for c in numeric}
    span = {}
    for column in ("params", "tokens", "flops", frame.attrs.get("x")):
        if column in ranges and ranges[column][0] > 0:
            lo, hi = ranges[column]
            span[column] = float(np.log10(hi / lo))
    groups = int(frame["group"].nunique()) if "group" in frame.columns else None
    return TableSummary(
        source=str(frame.attrs.get("source", "<table>")),
        kind=kind,
        rows=len(frame),
        columns=tuple(frame.columns),
        derived=tuple(frame.attrs.get("derived", ())),
        ranges=ranges,
        groups=groups,
        orders_of_magnitude=span,
    )
