"""The short terminal summary of an assessment (rich)."""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scaleguard.limits import Assessment, Readiness, Severity

__all__ = ["print_summary"]

_STYLE = {Severity.OK: "green", Severity.WARN: "yellow", Severity.BLOCK: "bold red"}
_READY = {Readiness.READY: "bold green", Readiness.CONDITIONAL: "bold yellow",
          Readiness.NOT_READY: "bold red"}


def print_summary(assessment: Assessment, console: Console) -> None:
    """Verdict, binding constraint and cheapest change, then one line per limit checked."""
    v = assessment.verdict
    head = Text(v.readiness.value.upper(), style=_READY[v.readiness])
    lines = [head, Text(f"binding constraint: {v.binding.title} — {v.binding.message}")]
    if v.change is not None:
        ways = " or ".join(c.describe() for c in (v.change, *v.alternatives[:1]))
        lines.append(Text(f"cheapest change that lifts it: {ways}"))
    console.print(Panel(Group(*lines), title=f"scaleguard assess — {assessment.name}",
                        expand=False))
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("", "limit", "need ÷ limit", "finding"):
        table.add_column(column, overflow="fold", justify="right" if column == "need ÷ limit"
                         else "left")
    for f in sorted(v.findings, key=lambda f: -f.severity.rank):
        pressure = f"{f.pressure:.2g}×" if math.isfinite(f.pressure) else "—"
        table.add_row(Text(f.severity.value, style=_STYLE[f.severity]), f.title, pressure,
                      f.message)
    console.print(table)
