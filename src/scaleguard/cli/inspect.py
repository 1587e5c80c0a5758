"""``scaleguard inspect FILE``: summarise a ladder or scale table, refusing bad rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.text import Text

from scaleguard.cli._app import app
from scaleguard.cli._options import COL_OPTION, JSON_OPTION, console, print_json
from scaleguard.cli._table import Column, print_table
from scaleguard.errors import InputError
from scaleguard.units import format_quantity

if TYPE_CHECKING:
    from scaleguard.io import TableSummary

_DIMENSION_OF = {"params": "count", "tokens": "count", "unique_tokens": "count", "flops": "flop"}


def _summarize(path: Path, columns: dict[str, str], kind: str, x: str | None) -> TableSummary:
    from scaleguard.io import (
        LADDER_COLUMNS,
        missing_column_error,
        prepare_ladder,
        read_scale_table,
        read_table,
        summarize_table,
    )

    if kind == "scale":
        if x is None:
            raise InputError("--x: a scale table needs its scale column, e.g. --x users")
        return summarize_table(read_scale_table(path, x, columns=columns), "scale")
    frame = read_table(path, columns)
    if kind == "auto":
        kind = "ladder" if set(frame.columns) & set(LADDER_COLUMNS[:3]) else "scale"
        if kind == "scale" and x is None:
            raise InputError(f"{path}: no params, tokens or flops column, so not a ladder; "
                             "map them with --col, or give --x COL for a scale table")
        if kind == "scale":
            return _summarize(path, columns, "scale", x)
    missing = [name for name in ("params", "loss") if name not in frame.columns]
    if missing:
        raise missing_column_error(path, missing, frame.columns)
    return summarize_table(prepare_ladder(frame), "ladder")


@app.command("inspect")
def inspect_command(
    file: Path = typer.Argument(..., help="Table file: .csv, .tsv, .parquet or .jsonl."),
    col: list[str] | None = COL_OPTION,
    kind: str = typer.Option("auto", "--kind", help="ladder, scale or auto."),
    x: str | None = typer.Option(None, "--x", help="Scale column of a scale table."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Summarise a ladder or scale table: rows, columns, ranges and derived columns."""
    from scaleguard.io import parse_column_map

    allowed: tuple[Literal["auto", "ladder", "scale"], ...] = ("auto", "ladder", "scale")
    if kind not in allowed:
        raise InputError(f"--kind: expected one of {', '.join(allowed)}, got {kind!r}")
    summary = _summarize(file, parse_column_map(col), kind, x)
    if as_json:
        print_json(summary.as_dict())
        return
    rows = []
    for name in summary.columns:
        if name not in summary.ranges:
            rows.append([name, "", "", "", "text"])
            continue
        lo, hi = summary.ranges[name]
        dimension = _DIMENSION_OF.get(name)
        shown = [format_quantity(v, dimension, digits=4) if dimension else f"{v:.4g}"
                 for v in (lo, hi)]
        decades = summary.orders_of_magnitude.get(name)
        rows.append([name, *shown, "" if decades is None else f"{decades:.2f}",
                     "derived" if name in summary.derived else ""])
    print_table(console, f"{summary.source} — {summary.kind} table, {summary.rows} rows",
                ["column", *(Column(h, "right") for h in ("min", "max", "decades")), "note"],
                [[Text(cell) for cell in row] for row in rows])
    if summary.derived:
        console.print(f"derived: {', '.join(summary.derived)} "
                      "(tokens = flops / (6·params); flops = 6·params·tokens)")
    if summary.groups is not None:
        console.print(f"groups: {summary.groups}")
