"""The short terminal summary of an assessment (rich)."""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.panel import Panel
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
    # The CLI's table helper (readable at any width); imported here, not at the top, because
    # the library must not need the command line to be importable.
    from scaleguard.cli._table import Column, print_table

    rows: list[list[str | Text]] = [
        [Text(f.severity.value, style=_STYLE[f.severity]), Text(f.title),
         f"{f.pressure:.2g}×" if math.isfinite(f.pressure) else "—", Text(f.message)]
        for f in sorted(v.findings, key=lambda f: -f.severity.rank)]
    print_table(console, None, ["", "limit", Column("need ÷ limit", "right"), "finding"], rows,
                key=2)
