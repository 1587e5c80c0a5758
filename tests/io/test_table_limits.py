"""Issue #13 regressions of the table reader: nothing silently renamed, rescaled or replaced."""

from __future__ import annotations

import pandas as pd
import pytest

from scaleguard.errors import TableError
from scaleguard.io import read_table


def test_a_duplicate_column_is_refused_not_renamed(tmp_path):
    # Was: the second 'params' became 'params.1' without a word.
    path = tmp_path / "ladder.csv"
    path.write_text("params,tokens,params,loss\n1e6,2e7,5e6,4.0\n")
    with pytest.raises(TableError, match=r"ladder.csv: line 1: column 'params' appears twice"):
        read_table(path)
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("params, params\n1,2\n")
    with pytest.raises(TableError, match="appears twice"):
        read_table(spaced)


def test_parquet_datetimes_are_unix_seconds_not_nanoseconds(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "obs.parquet"
    pd.DataFrame({"time": pd.to_datetime(["2024-01-01T00:00:00", "2024-01-01T01:00:00"]),
                  "wait": pd.to_timedelta(["1s", "90s"]), "x": [1.0, 2.0]}).to_parquet(path)
    frame = read_table(path)
    assert frame["time"].tolist() == [1704067200.0, 1704070800.0]
    assert frame["wait"].tolist() == [1.0, 90.0]


def test_jsonl_tables_refuse_deep_nesting_and_bad_bytes_by_line(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"params": 1}\n{"params": ' + "[" * 20_000 + "]" * 20_000 + "}\n")
    with pytest.raises(TableError, match=r"deep.jsonl: line 2: nested more than 64"):
        read_table(deep)
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(b'{"params": 1}\n{"par\xffams": 2}\n')
    with pytest.raises(TableError, match=r"raw.jsonl: line 2: not UTF-8"):
        read_table(raw)


def test_derived_ladder_columns_that_overflow_are_named_by_row(tmp_path):
    # Was: "cannot format non-finite value inf" with no file or field.
    from scaleguard.io import prepare_ladder

    path = tmp_path / "ladder.csv"
    path.write_text("params,tokens,loss\n1e6,2e7,4.0\n1e300,1e300,3.0\n")
    with pytest.raises(TableError, match=r"ladder.csv: row 2 \(line 3\): flops = 6 · params · "
                                         r"tokens is inf"):
        prepare_ladder(read_table(path))


def test_a_table_that_is_not_utf8_names_the_line_and_column(tmp_path):
    path = tmp_path / "ladder.csv"
    path.write_bytes(b"params,tokens,loss\n1e6,2e7,4\n1e7,\xff,3\n")
    with pytest.raises(TableError, match=r"ladder.csv: line 3, column 5: not UTF-8 text"):
        read_table(path)
