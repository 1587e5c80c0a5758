"""Rollout observations: the rows a controller decides on, checked against the plan.

One row per exposure or per aggregated window: ``stage``, ``arm`` (``control``/``treatment``),
``metric``, one column per segment dimension, then ``exposures`` and ``events`` for rate and
quantile metrics, or ``n``, ``mean`` and ``var`` for mean metrics; ``time`` (ISO 8601 or Unix
seconds) is optional and, when present, lets the controller refuse late data; ``window`` is an
optional id of the window a row summarises; ``units`` (optional) counts the units whose first
exposure of the stage falls in the window, and lets the sample-ratio check test the split of
units rather than of exposures.

Two steps, both pure and shared by the CLI and the service so that they cannot disagree:

- :func:`check_observations` refuses what is malformed (one line naming the row and column):
  unknown stage, arm, metric or segment value; counts that are missing, negative, not finite or
  beyond :data:`MAX_COUNT`; more events than exposures; times that are not finite or negative.
- :func:`screen_observations` decides which well-formed windows can be trusted at a decision
  time: each window has an identity (``window``, else its time, with stage, arm, metric and
  segments); a repeated window is counted once and reported; a window dated ahead of the clock,
  before its stage started, or repeated with other numbers is untrusted and holds the rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import TableError
from scaleguard.io import missing_column_error, read_table
from scaleguard.safety._plan import RolloutPlan
from scaleguard.safety._totals import CellTotals

__all__ = ["ARMS", "CLOCK_SKEW", "MAX_COUNT", "Screened", "check_observations",
           "continuous_start", "read_observations", "screen_observations", "window_keys"]

ARMS = ("control", "treatment")
# Counts above 2^53 are no longer exact in a float64; no real window comes near it, so a larger
# count is a corrupt row, not traffic (it would also switch the exposure checks off).
MAX_COUNT = float(2**53)
# A window may be dated this far ahead of the decision's clock (NTP keeps servers within
# milliseconds; five minutes covers a badly synchronised client) before it counts as misdated.
CLOCK_SKEW = 300.0
# A mean or variance this large cannot be pooled: cell totals keep n x mean^2 and (n - 1) x var,
# which for n up to 2^53 must stay finite (2^53 x (1e100)^2 = 9e215); no metric in its natural
# unit comes near, so a larger one is a corrupt row (or a metric to state in another unit).
MAX_MEAN, MAX_VAR = 1e100, 1e200
_COUNT_COLUMNS = ("exposures", "events", "n")
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
            if out[column].dtype in (bool, object):  # JSON's true/false read as 1/0 counts
                flags = out[column].map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
                _first_bad(out, rows & flags, column, "expected a number, not true or false")
            values = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=float)
            _first_bad(out, rows & ~np.isfinite(values), column,
                       f"expected a number for a {kind} metric")
            if column != "mean":
                _first_bad(out, rows & (values < 0), column, "expected a number >= 0")
            if column in _COUNT_COLUMNS:
                _first_bad(out, rows & (values > MAX_COUNT), column,
                           f"expected a count of at most 2^53 ({MAX_COUNT:.4g})")
            if column in ("mean", "var"):
                bound = MAX_MEAN if column == "mean" else MAX_VAR
                _first_bad(out, rows & (np.abs(values) > bound), column,
                           f"expected a {column} of at most {bound:g} in magnitude (state the "
                           "metric in a larger unit)")
            out[column] = values
        if kind in ("rate", "quantile"):
            _first_bad(out, rows & (out["events"].to_numpy() > out["exposures"].to_numpy()),
                       "events", "more events than exposures")
    if "units" in out.columns:
        _check_units(out, kind_of_row)
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
                   "expected an ISO 8601 time or Unix seconds (finite)")
        _first_bad(out, seconds < 0, "time", "expected a time at or after 1970-01-01 (>= 0)")
        out["time"] = seconds
    if "window" in out.columns:
        _first_bad(out, out["window"].isna().to_numpy(), "window", "expected a window id")
        out["window"] = out["window"].astype(str).str.strip()
    for dim, allowed in plan.segments.items():
        if dim in out.columns:
            text = out[dim].astype(str).str.strip()
            _first_bad(out, (~text.isin(allowed) | out[dim].isna()).to_numpy(), dim,
                       f"expected a {dim} of the plan ({', '.join(allowed)})")
            out[dim] = text
    return out


def _check_units(out: pd.DataFrame, kind_of_row: np.ndarray) -> None:
    """The optional ``units`` column: units first observed in the window (blank: not counted)."""
    given = out["units"].notna().to_numpy()
    units = pd.to_numeric(out["units"], errors="coerce").to_numpy(dtype=float)
    _first_bad(out, given & ~np.isfinite(units), "units",
               "expected a count of units (or nothing)")
    _first_bad(out, given & (units < 0), "units", "expected a number >= 0")
    seen = np.full(len(out), np.inf)
    for column, kinds in (("exposures", ("rate", "quantile")), ("n", ("mean",))):
        if column in out.columns:
            rows = np.isin(kind_of_row, kinds)
            seen[rows] = out[column].to_numpy(dtype=float)[rows]
    _first_bad(out, given & (units > seen), "units",
               "more units than exposures (a unit counts once, at its first exposure)")
    out["units"] = units


def window_keys(rows: pd.DataFrame, plan: RolloutPlan) -> list[tuple[str, ...]]:
    """Each row's window identity: stage, arm, metric, segments and ``window`` (else ``time``).

    Without a ``window`` or ``time`` column every row of a cell is one window: send a window id
    or a time with per-exposure rows.
    """
    parts = ["stage", "arm", "metric", *plan.segments,
             "window" if "window" in rows.columns else "time"]
    columns = [rows[p].astype(str).to_numpy() for p in parts if p in rows.columns]
    return list(zip(*columns, strict=True))


_VALUE_COLUMNS = ("exposures", "events", "n", "mean", "var", "units")


@dataclass(frozen=True)
class Screened:
    """The windows a decision may trust, and what was set aside.

    ``rows``: trusted windows, each counted once (or, from a rollout store, the
    :class:`~scaleguard.safety._totals.CellTotals` of every trusted window kept and new);
    ``kept``: positions in the input of the trusted new windows;
    ``duplicates``: places of repeated windows ignored (a retry); ``problems``: untrusted rows,
    each naming its place: any of them holds the rollout.
    """

    rows: pd.DataFrame | CellTotals
    kept: tuple[int, ...]
    duplicates: tuple[str, ...]
    problems: tuple[str, ...]

    def notes(self) -> list[str]:
        """The report of ignored duplicates, for a decision's evidence."""
        if not self.duplicates:
            return []
        shown = ", ".join(self.duplicates[:3]) + (f" and {len(self.duplicates) - 3} more"
                                                  if len(self.duplicates) > 3 else "")
        return [f"{len(self.duplicates)} duplicate window{'s' if len(self.duplicates) > 1 else ''}"
                f" ignored, counted once: {shown}"]

    def as_dict(self) -> dict[str, Any]:
        return {"trusted_rows": len(self.kept), "duplicates": list(self.duplicates),
                "problems": list(self.problems)}


def _place(rows: pd.DataFrame, position: int) -> str:
    return _where(rows, position)


def screen_observations(rows: pd.DataFrame, plan: RolloutPlan, now: float,
                        stage: str | None = None, stage_started: float | None = None,
                        skew: float = CLOCK_SKEW, stored: pd.DataFrame | None = None
                        ) -> Screened:
    """Split checked ``rows`` into trusted windows and untrusted ones at decision time ``now``.

    Earlier rows win: a window seen again with the same numbers is a duplicate (ignored and
    reported); with other numbers it is a conflict (untrusted). ``stored``: checked windows
    kept from earlier requests (a rollout store passes those whose identities recur in
    ``rows``): they come before every row. Rows dated more than ``skew`` seconds after ``now``,
    rows of ``stage`` dated before ``stage_started``, and rows of a stage after ``stage`` (one
    that has not started: its data cannot exist yet) are untrusted.

    >>> from scaleguard.safety._plan import parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "guardrail": 0.01}],
    ...                    "stages": [{"name": "pilot", "traffic": 0.01}]})
    >>> row = {"stage": "pilot", "arm": "treatment", "metric": "harm", "exposures": 100,
    ...        "events": 1, "time": 50.0}
    >>> screened = screen_observations(check_observations(pd.DataFrame([row, row]), plan),
    ...                                plan, now=100.0)
    >>> len(screened.rows), screened.duplicates
    (1, ('observations: row 2 (line 2)',))
    """
    if not np.isfinite(now):
        raise TableError(f"now: expected a finite decision time, got {now}")
    problems: list[str] = []
    duplicates: list[str] = []
    trusted = np.ones(len(rows), dtype=bool)
    if "time" in rows.columns and len(rows):
        times = rows["time"].to_numpy(dtype=float)
        ahead = times > now + skew
        for i in np.flatnonzero(ahead):
            problems.append(f"{_place(rows, int(i))}: time {times[i]:.0f} is "
                            f"{times[i] - now:.0f} s ahead of the decision time {now:.0f} "
                            f"(clock skew allowed {skew:.0f} s): misdated, untrusted")
        trusted &= ~ahead
        if stage is not None and stage_started is not None:
            early = (rows["stage"].to_numpy() == stage) & (times < stage_started - skew)
            for i in np.flatnonzero(early):
                problems.append(f"{_place(rows, int(i))}: time {times[i]:.0f} is before stage "
                                f"{stage!r} started at {stage_started:.0f}: untrusted")
            trusted &= ~early
    if stage is not None and len(rows):
        order = [s.name for s in plan.stages]
        later = rows["stage"].isin(order[order.index(stage) + 1:]).to_numpy()
        for i in np.flatnonzero(later & trusted):
            problems.append(f"{_place(rows, int(i))}: stage {rows['stage'].iloc[i]!r} has not "
                            f"started (the rollout is at {stage!r}): untrusted")
        trusted &= ~later
    columns = [c for c in _VALUE_COLUMNS if c in rows.columns]
    keys = window_keys(rows, plan)
    values = rows[columns].to_numpy(dtype=float)
    first: dict[tuple[str, ...], int] = {}
    if stored is not None and len(stored):
        # Stored windows win; -1 - j marks the j-th of them.
        kept_values = stored.reindex(columns=columns).to_numpy(dtype=float)
        for j, key in enumerate(window_keys(stored, plan)):
            first.setdefault(key, -1 - j)
    for row, key in enumerate(keys):
        if not trusted[row]:
            continue
        seen = first.setdefault(key, row)
        if seen == row:
            continue
        trusted[row] = False
        earlier = values[seen] if seen >= 0 else kept_values[-1 - seen]
        if np.array_equal(values[row], earlier, equal_nan=True):
            duplicates.append(_place(rows, row))
        else:
            where = _place(rows, seen).rsplit(": ", 1)[-1] if seen >= 0 else "a stored window"
            problems.append(f"{_place(rows, row)}: repeats the window of {where} with other "
                            "numbers: conflicting, untrusted")
    kept = tuple(int(i) for i in np.flatnonzero(trusted))
    out = rows.iloc[list(kept)].reset_index(drop=True)
    out.attrs = dict(rows.attrs)
    if len(problems) > _MAX_PROBLEMS:
        problems = [*problems[:_MAX_PROBLEMS], f"and {len(problems) - _MAX_PROBLEMS} more "
                                               "untrusted rows"]
    return Screened(out, kept, tuple(duplicates), tuple(problems))


_MAX_PROBLEMS = 20  # problems listed one by one; the rest are counted


def continuous_start(times: Sequence[float] | np.ndarray, max_gap: float) -> float | None:
    """Start of the last unbroken stretch of ``times`` (no gap above ``max_gap``), or None.

    A rollout's start read from its data must not rest on one stray early row (``time = 0``
    would make a 30-minute-old stage look days old): the stretch before a gap longer than the
    plan's ``max_age`` is not part of the stage's continuous record.

    >>> continuous_start([0.0, 5000.0, 5600.0, 6200.0], max_gap=3600.0)
    5000.0
    """
    ordered = np.sort(np.asarray(times, dtype=float))
    if ordered.size == 0:
        return None
    gaps = np.flatnonzero(np.diff(ordered) > max_gap)
    return float(ordered[gaps[-1] + 1] if gaps.size else ordered[0])


def read_observations(path: str | Path, plan: RolloutPlan,
                      columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/JSONL observations table and check it against ``plan``."""
    return check_observations(read_table(path, columns), plan)
