"""The shared table helper: at any width every word of every cell is printed whole."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from scaleguard.cli._table import Column, print_table

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_=.-0123456789", min_size=1, max_size=24)
CELL = st.lists(WORD, min_size=0, max_size=5).map(" ".join)


def render(width: int, columns: list[str | Column], rows: list[list[str]], **kw: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    print_table(console, "title", columns, rows, **kw)  # type: ignore[arg-type]
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(width=st.integers(40, 160), n_columns=st.integers(1, 9), data=st.data())
def test_every_word_is_printed_whole_and_no_line_is_too_long(width, n_columns, data):
    columns: list[str | Column] = [
        Column(f"col{i} {data.draw(WORD)}", data.draw(st.sampled_from(["left", "right"])))
        for i in range(n_columns)]
    rows = data.draw(st.lists(st.lists(CELL, min_size=n_columns, max_size=n_columns),
                              min_size=1, max_size=6))
    text = render(width, columns, rows)
    assert "…" not in text
    for line in text.splitlines():
        assert len(line) <= width, line
    lines = text.splitlines()
    for row in rows:
        for cell in row:
            for word in cell.split():
                assert any(word in line for line in lines), (word, text)


def test_a_table_that_fits_stays_a_table():
    text = render(80, ["name", Column("value", "right")], [["alpha", "1,234"], ["beta", "5"]])
    assert "┃ name" in text and "1,234 │" in text


def test_a_wide_table_is_stacked_with_its_key_cells_as_heading():
    columns = ["metric", "segment", Column("estimate", "right"), Column("bound", "right")]
    rows = [["harmful_output_rate_per_thousand", "region=eu-west-1-frankfurt",
             "-0.000925", "[-0.00123, -0.000612]"]]
    text = render(70, columns, rows, key=2)
    assert "harmful_output_rate_per_thousand · region=eu-west-1-frankfurt" in text
    assert "estimate -0.000925" in text and "bound [-0.00123, -0.000612]" in text
    assert "┃" not in text


def test_legend_follows_the_table():
    text = render(80, ["a"], [["x"]], legend="x: an abbreviation")
    assert text.rstrip().endswith("x: an abbreviation")
