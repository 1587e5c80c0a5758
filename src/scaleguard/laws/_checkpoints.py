"""Ladders of checkpoints and seeds: which rows to fit, how much each counts, and seed noise.

Choshen, Zhang & Andreas 2024 ("A Hitchhiker's Guide to Scaling Law Estimation") fit on the
intermediate checkpoints of each run, not only the final one, after discarding the first ~10%
of each run's tokens (early loss reflects warm-up, not the law), and average over seeds. Here:

- rows of a ``run`` whose progress (``tokens``, else ``step``) is below :data:`EARLY_FRACTION`
  of that run's final progress are dropped;
- each run weighs the same in the fit whatever its number of checkpoints (a long curve does
  not drown the others): a row's weight is ``(rows / runs) / rows in its run``;
- rows that share every scale value (seeds of one configuration, or replicates) give the
  seed-to-seed noise: the pooled standard deviation of their log metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from scaleguard.errors import InputError

__all__ = ["EARLY_FRACTION", "CheckpointInfo", "has_checkpoints", "prepare_checkpoints",
           "seed_noise"]

# Choshen et al. 2024: drop checkpoints from the first 10% of a run's training tokens.
EARLY_FRACTION: Final = 0.1
_PROGRESS_COLUMNS: Final = ("tokens", "step")


@dataclass(frozen=True)
class CheckpointInfo:
    """What the checkpoint handling did to a table."""

    run_column: str | None
    n_runs: int
    n_rows: int  # rows given
    n_kept: int  # rows fitted
    drop_early: float
    progress_column: str | None
    seed_noise: float | None  # pooled log sd across rows with identical scales, None if none
    n_replicated: int  # configurations with two or more rows at identical scales

    def as_dict(self) -> dict[str, Any]:
        return {"run_column": self.run_column, "n_runs": self.n_runs, "n_rows": self.n_rows,
                "n_kept": self.n_kept, "drop_early": self.drop_early,
                "progress_column": self.progress_column, "seed_noise_log_sd": self.seed_noise,
                "n_replicated_configurations": self.n_replicated}


def has_checkpoints(frame: pd.DataFrame, run: str = "run") -> bool:
    """True when some run in ``run`` holds several rows: a table of training curves."""
    return run in frame.columns and bool(frame[run].astype(str).duplicated().any())


def seed_noise(frame: pd.DataFrame, scales: Sequence[str], y: str) -> tuple[float | None, int]:
    """Pooled standard deviation of ``log y`` across rows sharing every ``scales`` value.

    >>> t = pd.DataFrame({"x": [1, 1, 2, 2], "y": [1.0, 1.02, 2.0, 1.96]})
    >>> noise, groups = seed_noise(t, ["x"], "y")
    >>> round(noise, 4), groups
    (0.0141, 2)
    """
    columns = [c for c in scales if c in frame.columns]
    if not columns or y not in frame.columns:
        return None, 0
    values = pd.to_numeric(frame[y], errors="coerce")
    logs = np.log(values.where(values > 0))
    grouped = logs.groupby([frame[c] for c in columns])
    sizes = grouped.count()
    replicated = sizes[sizes >= 2]
    if replicated.empty:
        return None, 0
    squares = grouped.var(ddof=1)[replicated.index] * (replicated - 1)
    return float(np.sqrt(squares.sum() / (replicated - 1).sum())), int(replicated.size)


def prepare_checkpoints(frame: pd.DataFrame, scales: Sequence[str], y: str, *,
                        run: str = "run", drop_early: float = EARLY_FRACTION
                        ) -> tuple[pd.DataFrame, np.ndarray | None, CheckpointInfo]:
    """Rows to fit, their weights (None when there is no ``run`` column) and what was done."""
    if not 0.0 <= drop_early < 1.0:
        raise InputError(f"drop_early: expected a fraction in [0, 1), got {drop_early}")
    n_rows = len(frame)
    if run not in frame.columns:
        noise, replicated = seed_noise(frame, scales, y)
        return frame, None, CheckpointInfo(None, n_rows, n_rows, n_rows, 0.0, None, noise,
                                           replicated)
    runs = frame[run].astype(str)
    progress_column = next((c for c in _PROGRESS_COLUMNS if c in frame.columns), None)
    kept = frame
    if progress_column is not None and drop_early > 0:
        progress = pd.to_numeric(frame[progress_column], errors="coerce")
        final = progress.groupby(runs).transform("max")
        keep = ~(progress < drop_early * final)  # NaN progress is kept: design() refuses it
        kept = frame[keep.to_numpy()]
        runs = runs[keep.to_numpy()]
    per_run = runs.map(runs.value_counts()).to_numpy(dtype=float)
    n_runs = int(runs.nunique())
    weights = (len(kept) / max(n_runs, 1)) / per_run
    noise, replicated = seed_noise(kept, scales, y)
    info = CheckpointInfo(run, n_runs, n_rows, len(kept), float(drop_early), progress_column,
                          noise, replicated)
    return kept, weights, info
