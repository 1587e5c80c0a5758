"""Honest validation: fit on the small runs, score on the large ones.

In-sample fit always favours the family with more parameters; what matters is how well a law
fitted on the runs we have predicts the bigger run we have not made. Two splits do that:
holdout above a scale (``--holdout-above params=1e9``) and leave-largest-group-out (the ladder's
largest budget group is held out). Choosing a law by such scores is :mod:`._selection`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from scaleguard.errors import FitError, InputError
from scaleguard.laws._checkpoints import has_checkpoints
from scaleguard.laws._data import as_frame
from scaleguard.units import parse_quantity

if TYPE_CHECKING:
    from scaleguard.laws._fit import LawFit

__all__ = ["ValidationScores", "Split", "score_predictions", "parse_holdout", "holdout_split",
           "largest_group_split", "default_split", "validate", "scale_column", "origin_column"]

# With no split asked for, the largest 20% of runs by scale are held out (at least one row).
DEFAULT_HOLDOUT_SHARE: Final = 0.2
MIN_GROUPS: Final = 3  # leave-largest-group-out needs at least two groups left to fit on
# A ladder is backtested by model size once an origin can hold out one size and keep three.
MIN_LADDER_SIZES: Final = 4


@dataclass(frozen=True)
class Split:
    """A train/test split of a table and how it was made."""

    method: str  # "holdout" or "largest_group"
    description: str
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class ValidationScores:
    """Held-out error of one fitted form on one split."""

    form: str
    method: str
    description: str
    n_train: int
    n_test: int
    mare: float  # mean |predicted - actual| / |actual|
    log_rmse: float  # sqrt(mean (log predicted - log actual)^2)
    max_relative_error: float
    # "fixed" when ``form`` was asked for; "auto" when form="auto" was re-run on the training
    # rows alone (an honest score of the whole procedure) and chose ``form`` there.
    procedure: str = "fixed"

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form, "procedure": self.procedure, "method": self.method,
                "description": self.description, "n_train": self.n_train,
                "n_test": self.n_test, "mare": self.mare, "log_rmse": self.log_rmse,
                "max_relative_error": self.max_relative_error}

    def __repr__(self) -> str:
        return (f"ValidationScores({self.form}, {self.description}: MARE={self.mare:.4g}, "
                f"log RMSE={self.log_rmse:.4g}, train {self.n_train} / test {self.n_test})")


def score_predictions(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    """(MARE, log RMSE, max relative error) of predictions against positive actual values.

    Examples
    --------
    >>> [round(v, 4) for v in score_predictions(np.array([1.1, 2.0]), np.array([1.0, 2.0]))]
    [0.05, 0.0674, 0.1]
    """
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    rel = np.abs(predicted - actual) / np.abs(actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(predicted) - np.log(actual)
    log_rmse = float(np.sqrt(np.mean(logs**2))) if np.all(predicted > 0) else math.inf
    return float(rel.mean()), log_rmse, float(rel.max())


def parse_holdout(text: str) -> tuple[str, float]:
    """``"params=1e9"`` or ``"params=1B"`` -> ``("params", 1e9)``."""
    column, sep, value = str(text).partition("=")
    if not sep or not column.strip() or not value.strip():
        raise InputError(f"--holdout-above {text!r}: expected COLUMN=VALUE, e.g. params=1e9")
    return column.strip(), parse_quantity(value.strip(), name="--holdout-above")


def holdout_split(frame: pd.DataFrame, column: str, threshold: float) -> Split:
    """Train on rows with ``column <= threshold``, test on the rows above it."""
    if column not in frame.columns:
        raise InputError(f"--holdout-above: no column {column!r}; columns are "
                         f"{', '.join(map(repr, frame.columns))}")
    values = pd.to_numeric(frame[column], errors="coerce")
    above = (values > threshold).to_numpy()
    if not above.any() or above.all():
        raise InputError(f"--holdout-above {column}={threshold:g}: "
                         f"{'no' if not above.any() else 'every'} row lies above it; "
                         f"{column} spans {values.min():g} to {values.max():g}")
    return Split("holdout", f"{column} > {threshold:g}", frame[~above], frame[above])


def largest_group_split(frame: pd.DataFrame, group: str = "group",
                        scale: str | None = None) -> Split:
    """Hold out the group whose runs are largest (by median ``scale``, e.g. ``flops``)."""
    if group not in frame.columns:
        raise InputError(f"leave-largest-group-out: no column {group!r} to group runs by")
    groups = frame[group].astype(str)
    if groups.nunique() < MIN_GROUPS:
        raise InputError(f"leave-largest-group-out: {group!r} has {groups.nunique()} groups; "
                         f"need at least {MIN_GROUPS}")
    scale = scale or scale_column(frame)
    size = pd.to_numeric(frame[scale], errors="coerce").groupby(groups).median()
    largest = str(size.idxmax())
    test = (groups == largest).to_numpy()
    return Split("largest_group", f"{group} = {largest} (largest {scale})", frame[~test],
                 frame[test])


def scale_column(frame: pd.DataFrame, inputs: Sequence[str] = ()) -> str:
    """The column runs are ordered by: a 1-D law's own scale, else compute, else size."""
    if len(inputs) == 1 and inputs[0] in frame.columns:
        return inputs[0]
    for name in ("flops", *inputs, "params", "x"):
        if name in frame.columns:
            return name
    raise InputError("validation: no scale column (flops, params or x) to order runs by")


def origin_column(frame: pd.DataFrame, x: Sequence[str] = (), run: str = "run") -> str:
    """The column a rolling-origin backtest orders runs by (see :func:`scale_column`).

    A ladder of training curves (a run in ``run`` with several checkpoints, ``params`` with at least
    :data:`MIN_LADDER_SIZES` sizes, no 1-D scale ``x`` asked for) is backtested by model size:
    each origin holds out the largest models' whole runs, which is what a ladder is for (the
    next model). Ordered by compute, an origin would hold out the late checkpoints of every
    run instead, and a law of compute alone, which cannot tell a small model late in training
    from a large one early, could score as well as the two-input law there and then miss the
    next model by several times more (issue #17's synthetic training-curve ladders).
    """
    if not x and has_checkpoints(frame, run) and "params" in frame.columns and \
            pd.to_numeric(frame["params"], errors="coerce").nunique() >= MIN_LADDER_SIZES:
        return "params"
    return scale_column(frame, x)


def default_split(frame: pd.DataFrame, inputs: Sequence[str] = ()) -> Split:
    """Leave-largest-group-out when a ``group`` column has enough groups, else hold out the
    largest :data:`DEFAULT_HOLDOUT_SHARE` of the runs by scale."""
    if "group" in frame.columns and frame["group"].astype(str).nunique() >= MIN_GROUPS:
        return largest_group_split(frame, "group")
    scale = scale_column(frame, inputs)
    values = pd.to_numeric(frame[scale], errors="coerce").to_numpy()
    n_test = max(1, int(round(DEFAULT_HOLDOUT_SHARE * len(values))))
    distinct = np.unique(values)
    if distinct.size < 2:
        raise FitError(f"validation: every run has the same {scale}; nothing to hold out")
    threshold = np.sort(values)[len(values) - n_test - 1]
    threshold = min(threshold, distinct[-2])  # keep at least one run above
    return holdout_split(frame, scale, float(threshold))


def validate(fitter: LawFit, table: Any, split: Split | None = None) -> ValidationScores:
    """Fit a copy of ``fitter`` on the split's training rows and score it on the test rows."""
    frame = as_frame(table)
    if split is None:
        split = default_split(frame, _inputs_hint(fitter, frame))
    fitted = replace(fitter).fit(split.train)
    predicted = fitted.predict(split.test)
    actual = pd.to_numeric(split.test[fitter.y], errors="coerce").to_numpy(dtype=float)
    mare, log_rmse, worst = score_predictions(predicted, actual)
    return ValidationScores(form=fitted.result_.form, method=split.method,
                            description=split.description, n_train=len(split.train),
                            n_test=len(split.test), mare=mare, log_rmse=log_rmse,
                            max_relative_error=worst,
                            procedure="auto" if fitter.form == "auto" else "fixed")


def _inputs_hint(fitter: LawFit, frame: pd.DataFrame) -> tuple[str, ...]:
    if fitter.form == "auto":
        return ()
    return fitter.make_law(frame).inputs
