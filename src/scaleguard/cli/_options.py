"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

__all__ = ["COL_OPTION", "JSON_OPTION", "MAX_COUNT", "console", "err_console", "output_file",
           "print_json", "whole_count"]

# Counts (trials, runs, exposures) are exact in float64 and in numpy's int64 up to 2**53.
MAX_COUNT = 2**53

console = Console()
err_console = Console(stderr=True)

COL_OPTION = typer.Option(
    None, "--col",
    help='Map a column: NAME=Header, e.g. --col params="Model Size". Repeatable.',
)
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON (its as_dict()).")


def print_json(payload: Any) -> None:
    """Print exactly ``payload`` as JSON on stdout (no rich markup, so it can be piped).

    Strict JSON: NaN and infinity are printed as the strings ``"nan"``, ``"inf"``, ``"-inf"``
    (``json.dumps`` would print ``NaN`` and ``Infinity``, which JSON readers refuse)."""
    from scaleguard.io import dumps_json  # lazily: io pulls in pandas

    typer.echo(dumps_json(payload, indent=2))


def output_file(path: Path, option: str) -> Path:
    """``path`` ready to be written by ``option`` (its folder made), or one line saying why
    not — checked before the work that produces the file, not after it."""
    from scaleguard.errors import InputError

    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot make its folder ({exc.strerror or exc})"
                         ) from None
    return path


def whole_count(text: str, option: str, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """A whole number given to ``option`` as a human count (``10k``, ``2M``), within
    [``minimum``, ``maximum``]: refused in one line naming the option otherwise."""
    from scaleguard.errors import InputError
    from scaleguard.units import parse_quantity

    value = parse_quantity(text, "count", name=option)
    if value != int(value) or not minimum <= value <= maximum:
        raise InputError(f"{option}: expected a whole number from {minimum:,} to {maximum:,}, "
                         f"got {text!r}")
    return int(value)
