"""The ladder's output folder: one record per finished rung, and the ladder table built from them.

A rung's record (``rungs/<name>.json``) is written the moment it finishes, atomically; the table
(``ladder.csv``) is rebuilt from every record. So an interrupted ladder loses at most the rungs in
flight, and ``scaleguard ladder run`` started again skips what is recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scaleguard.errors import ConfigError
from scaleguard.io import load_json, read_text

__all__ = ["RECORDS_DIR", "TABLE_NAME", "TABLE_COLUMNS", "read_records", "write_record",
           "write_table"]

RECORDS_DIR = "rungs"
TABLE_NAME = "ladder.csv"
# The ladder table's columns (DESIGN.md: params, tokens, flops, loss first, then metrics).
TABLE_COLUMNS = ("params", "tokens", "flops", "loss", "name", "layers", "width", "heads",
                 "params_total", "steps", "train_loss", "time_s", "cpu_s", "tokens_per_s", "mfu",
                 "energy_j", "energy_status", "alerts", "device", "precision", "seed", "lr",
                 "fingerprint", "corpus")


def write_record(folder: Path, row: Mapping[str, Any]) -> Path:
    """Write one finished rung's row to ``folder/<name>.json`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{row['name']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(row), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Rows of the rungs recorded in ``folder``, by rung name."""
    records: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return records
    for path in sorted(folder.glob("*.json")):
        try:  # io's limits: not UTF-8, too deep or too large is one line, never a traceback
            row = load_json(read_text(path, "rung record"), str(path), error=ConfigError,
                            finite=False)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; delete it to re-run that rung") from None
        if not isinstance(row, dict) or "name" not in row or "fingerprint" not in row:
            raise ConfigError(f"{path}: not a rung record (no 'name' or 'fingerprint'); "
                              "delete it to re-run that rung")
        records[str(row["name"])] = row
    return records


def write_table(out: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the ladder table (``out/ladder.csv``), rows ordered by size."""
    frame = pd.DataFrame([dict(row) for row in rows])
    columns = [c for c in TABLE_COLUMNS if c in frame.columns]
    columns += [c for c in frame.columns if c not in columns]
    frame = frame[columns].sort_values(["params", "tokens"], kind="stable")
    path = out / TABLE_NAME
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
