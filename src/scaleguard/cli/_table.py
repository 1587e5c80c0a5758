"""Tables for every command: readable at any terminal width, never a value cut short.

A table that fits the terminal is printed as a table; its text columns wrap between words. One
that does not fit even with every column at its longest word is *stacked*: each row becomes a
heading (its first ``key`` cells) and a line or two of ``header value`` pairs, so that nothing is
truncated to "harmf…" and nothing is folded mid-word.

Cells are strings (rich markup, as in :class:`rich.table.Table`) or :class:`rich.text.Text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "print_table", "table_view"]

Cell = str | Text
_INDENT = "  "  # of the header-value lines under each heading of a stacked table
_GAP = "   "  # between two header-value pairs on one line


@dataclass(frozen=True)
class Column:
    """A column's header and alignment. Right-aligned columns are numbers: they never wrap."""

    header: str
    justify: Literal["left", "right"] = "left"


def _column(spec: str | Column) -> Column:
    return spec if isinstance(spec, Column) else Column(spec)


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(cell)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _widest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _width_range(col: Column, cells: Sequence[Text], *, whole_header: bool) -> tuple[int, int]:
    """The narrowest ``col`` can be without cutting a word (a number: without wrapping it; the
    header: without wrapping it, if ``whole_header``) and the width at which nothing wraps."""
    header = cell_len(col.header) if whole_header else _longest_word(col.header)
    widest = max([_widest_line(c.plain) for c in cells] + [cell_len(col.header), 1])
    if col.justify == "right":
        return max(widest, header), max(widest, header)
    narrowest = max([_longest_word(c.plain) for c in cells] + [header, 1])
    return narrowest, widest


def _fit_widths(ranges: Sequence[tuple[int, int]], room: int) -> list[int]:
    """Column widths summing to at most ``room``: each at least its minimum, and the space left
    shared among the columns that can wrap in proportion to how much wider they would be."""
    widths = [lo for lo, _ in ranges]
    spare = room - sum(widths)
    want = [hi - lo for lo, hi in ranges]
    if sum(want) <= spare:
        return [hi for _, hi in ranges]
    total = sum(want)
    widths = [lo + (spare * w) // total for (lo, _), w in zip(ranges, want, strict=True)]
    return widths


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Text]],
           widths: Sequence[int]) -> Table:
    table = Table(header_style="bold")
    for col, width in zip(columns, widths, strict=True):
        table.add_column(col.header, justify=col.justify, overflow="fold", width=width,
                         no_wrap=col.justify == "right")
    for row in rows:
        table.add_row(*row)
    return table


def _stacked(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], key: int,
             width: int) -> list[RenderableType]:
    """Each row as a bold heading of its ``key`` first cells and packed header-value lines."""
    lines: list[RenderableType] = []
    for row in rows:
        cells = [_text(cell) for cell in row]
        heading = Text(" · ").join(cell for cell in cells[:key] if cell.plain)
        heading.stylize("bold")
        lines.append(heading)
        line = Text(_INDENT)
        for col, cell in zip(columns[key:], cells[key:], strict=True):
            if not cell.plain:
                continue
            pair = Text.assemble((col.header, "dim"), " ", cell)
            if line.plain.strip() and line.cell_len + len(_GAP) + pair.cell_len > width:
                lines.append(line)
                line = Text(_INDENT)
            if line.plain.strip():
                line.append(_GAP)
            line.append_text(pair)
        if line.plain.strip():
            lines.append(line)
    return lines


def table_view(title: str | Text | None, columns: Sequence[str | Column],
               rows: Sequence[Sequence[Cell]], *, width: int, key: int = 1,
               legend: str | None = None) -> RenderableType:
    """The title, then ``rows`` as a table if it fits in ``width`` columns, else stacked.

    ``key``: how many leading cells name a row (its heading when stacked). ``legend``: a line
    under the table that explains abbreviations in its headers or cells.
    """
    specs = [_column(c) for c in columns]
    for row in rows:
        if len(row) != len(specs):
            raise ValueError(f"table row has {len(row)} cells for {len(specs)} columns")
    parts: list[RenderableType] = []
    if title is not None:
        parts.append(_text(title) if isinstance(title, Text) else Text(title, style="bold"))
    texts = [[_text(cell) for cell in row] for row in rows]
    # Each column takes its padding (a space each side) and a border; the room left is for the
    # cells. Headers stay on one line if they can; if even the narrowest columns do not fit,
    # rich would truncate ("harmf…") or fold mid-word: the rows are stacked instead.
    room = width - 3 * len(specs) - 1
    for whole_header in (True, False):
        ranges = [_width_range(col, [row[i] for row in texts], whole_header=whole_header)
                  for i, col in enumerate(specs)]
        if sum(lo for lo, _ in ranges) <= room:
            parts.append(_table(specs, texts, _fit_widths(ranges, room)))
            break
    else:
        parts += _stacked(specs, rows, max(1, min(key, len(specs))), width)
    if legend:
        parts.append(Text(legend, style="dim"))
    return Group(*parts)


def print_table(console: Console, title: str | Text | None, columns: Sequence[str | Column],
                rows: Sequence[Sequence[Cell]], *, key: int = 1,
                legend: str | None = None) -> None:
    """Print :func:`table_view` at the console's width."""
    console.print(table_view(title, columns, rows, width=console.width, key=key, legend=legend))
