"""From a table to the arrays a law is fitted on, refusing what cannot give a sound fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scaleguard.errors import FitError, InputError
from scaleguard.io import FLOPS_PER_PARAM_TOKEN, NumericColumn, check_numeric
from scaleguard.laws._families import Law

__all__ = ["as_frame", "design", "inputs_for", "points_matrix", "scale_columns",
           "with_derived_inputs",
           "COLUMN_MEANING"]

# Columns whose spread is not required: every run may share one unique-data pool.
_MAY_BE_CONSTANT = ("unique_tokens",)
# What a ladder column means, in the words a refusal uses.
COLUMN_MEANING = {"params": "parameters", "tokens": "training tokens",
                  "unique_tokens": "unique training tokens", "flops": "training FLOP"}


def as_frame(table: Any, what: str = "table") -> pd.DataFrame:
    """A DataFrame from a DataFrame, a mapping of columns, or a list of records."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, Mapping):
        try:
            columns = {k: np.atleast_1d(np.asarray(v)) for k, v in table.items()}
            return pd.DataFrame(columns)
        except ValueError as exc:
            raise InputError(f"{what}: columns of unequal length ({exc})") from None
    if isinstance(table, Sequence) and not isinstance(table, str):
        return pd.DataFrame.from_records(list(table))
    raise InputError(f"{what}: expected a table (DataFrame or mapping of columns), "
                     f"got {type(table).__name__}")


def inputs_for(form: str, x: str | Sequence[str] | None, frame: pd.DataFrame | None
               ) -> tuple[str, ...] | None:
    """The scale columns a form reads: fixed for chinchilla and data_constrained, else ``x``.

    With no ``x``, a 1-D law on a ladder table reads ``flops`` and otherwise ``x``.
    """
    if form in ("chinchilla", "data_constrained"):
        return None  # the law's own columns
    if x is not None:
        return (x,) if isinstance(x, str) else tuple(x)
    if form == "sigmoid":
        return ("loss",)
    if frame is not None and "x" not in frame.columns and "flops" in frame.columns:
        return ("flops",)
    return ("x",)


def design(law: Law, frame: pd.DataFrame, y: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` ``[k, n]`` and ``y`` ``[n]`` for ``law``, or a one-line error naming the problem.

    Refused: missing columns, NaN/inf/non-numeric cells, non-positive values where the law takes
    logs, fewer rows than the law has parameters, and a scale column with a single value.
    """
    source = frame.attrs.get("source", "table")
    if y in law.inputs:
        raise InputError(f"--y: {y!r} is also a scale column of the {law.name} law; "
                         "name the metric column with --y")
    rules = [NumericColumn(c, positive=law.log_inputs) for c in law.inputs]
    rules.append(NumericColumn(y, positive=law.log_target))
    checked = check_numeric(frame, rules)
    n = len(checked)
    if n < 2:
        raise FitError(f"{source}: a {law.name} fit needs at least 2 rows, got {n}")
    if law.n_params > n:
        raise FitError(f"{source}: the {law.name} law has {law.n_params} parameters "
                       f"({', '.join(law.param_names)}) but the table has only {n} rows; "
                       f"give at least {law.n_params} runs or a simpler --form")
    for column in law.inputs:
        if column in _MAY_BE_CONSTANT:
            continue
        values = checked[column].to_numpy()
        if np.unique(values).size < 2:
            raise FitError(f"{source}: every row has {column} = {values[0]:.6g}; a law along "
                           f"{column!r} needs runs at two or more scales")
    X = np.vstack([checked[c].to_numpy(dtype=float) for c in law.inputs])
    return X, checked[y].to_numpy(dtype=float)


def with_derived_inputs(law: Law, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the law's inputs that follow from the others: tokens = flops / (6 N)
    when a point gives params and flops, flops = 6 N D from params and tokens, and
    unique_tokens = tokens (one epoch)."""
    if "flops" in law.inputs and "flops" not in frame.columns \
            and {"params", "tokens"} <= set(frame.columns):
        frame = frame.assign(flops=FLOPS_PER_PARAM_TOKEN * frame["params"] * frame["tokens"])
    if "tokens" in law.inputs and "tokens" not in frame.columns \
            and {"params", "flops"} <= set(frame.columns):
        frame = frame.assign(tokens=frame["flops"] / (FLOPS_PER_PARAM_TOKEN * frame["params"]))
    if "unique_tokens" in law.inputs and "unique_tokens" not in frame.columns \
            and "tokens" in frame.columns:
        frame = frame.assign(unique_tokens=frame["tokens"])
    return frame


def points_matrix(law: Law, points: Any, what: str = "points") -> np.ndarray:
    """``X`` ``[k, m]`` for prediction at ``points`` (a table or a mapping of columns).

    For the data-constrained law a missing ``unique_tokens`` means one epoch (all unique).
    """
    frame = with_derived_inputs(law, as_frame(points, what)).copy(deep=False)
    missing = [c for c in law.inputs if c not in frame.columns]
    if missing:
        given = ", ".join(map(str, frame.columns)) or "nothing"
        needs = " and ".join(f"{c} ({COLUMN_MEANING[c]})" if c in COLUMN_MEANING else c
                             for c in missing)
        raise InputError(f"{what}: the {law.name} law predicts from "
                         f"{', '.join(law.inputs)}; the point gives {given} but not {needs}"
                         + (", e.g. params=70B,tokens=1.4T" if "tokens" in missing else ""))
    rules = [NumericColumn(c, positive=law.log_inputs) for c in law.inputs]
    frame.attrs.setdefault("source", what)
    checked = check_numeric(frame, rules)
    return np.vstack([checked[c].to_numpy(dtype=float) for c in law.inputs])


def scale_columns(law: Law) -> tuple[str, ...]:
    """The columns along which ``law`` extrapolates (a shared unique-data pool is not one)."""
    return tuple(c for c in law.inputs if c not in _MAY_BE_CONSTANT) if law.log_inputs else ()
