import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.errors import TableError
from scaleguard.io import (
    NumericColumn,
    check_numeric,
    parse_column_map,
    read_ladder,
    read_scale_table,
    read_table,
)

LADDER_CSV = "params,tokens,loss\n1e8,2e9,3.2\n4e8,8e9,2.9\n1.6e9,3.2e10,2.6\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_csv_tsv_jsonl_and_parquet_alike(tmp_path):
    frame = pd.read_csv(write(tmp_path, "a.csv", LADDER_CSV))
    paths = [tmp_path / "a.csv", write(tmp_path, "a.tsv", frame.to_csv(sep="\t", index=False))]
    jsonl = "\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n"
    paths.append(write(tmp_path, "a.jsonl", jsonl))
    frame.to_parquet(tmp_path / "a.parquet")
    paths.append(tmp_path / "a.parquet")
    for path in paths:
        ladder = read_ladder(path)
        np.testing.assert_allclose(ladder["flops"], 6 * frame["params"] * frame["tokens"])
        assert ladder.attrs["derived"] == ["flops"]


def test_tokens_are_derived_from_flops_and_columns_mapped(tmp_path):
    path = write(tmp_path, "c.csv", "Model Size,Training FLOP,Loss\n1e8,6e18,3.0\n")
    ladder = read_ladder(path, ["params=Model Size", "flops=Training FLOP", "loss=Loss"])
    assert ladder["tokens"].item() == pytest.approx(1e10)
    assert ladder.attrs["derived"] == ["tokens"]


def test_column_map_accepts_dict_and_refuses_bad_pairs():
    assert parse_column_map({"params": "N"}) == {"params": "N"}
    assert parse_column_map(['params="Model Size"']) == {"params": "Model Size"}
    with pytest.raises(TableError, match="expected NAME=Header"):
        parse_column_map(["params"])
    with pytest.raises(TableError, match="mapped twice"):
        parse_column_map(["params=a", "params=b"])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.csv", "params,tokens\n1e8,2e9\n", r"m\.csv: missing column 'loss'"),
        ("t.csv", "params,loss\n1e8,3\n", r"t\.csv: a ladder needs a 'tokens' or a 'flops'"),
        ("n.csv", LADDER_CSV + "abc,1e9,3\n",
         r"n\.csv: row 4 \(line 5\): column 'params' is 'abc', expected a number"),
        ("z.csv", "params,tokens,loss\n1e8,2e9,3\n0,1e9,3\n",
         r"z\.csv: row 2 \(line 3\): column 'params' is 0\.0, expected a positive number"),
        ("neg.csv", "params,tokens,loss\n-5,2e9,3\n",
         r"row 1 \(line 2\): column 'params' is -5, expected a positive number"),
        ("nan.csv", "params,tokens,loss\n1e8,2e9,nan\n",
         r"row 1 \(line 2\): column 'loss' is empty, expected a number \(missing or NaN\)"),
        ("gap.csv", "params,tokens,loss\n1e8,,3\n", r"column 'tokens' is empty"),
        ("inf.csv", "params,tokens,loss\n1e8,inf,3\n1e8,inf,3\n",
         r"column 'tokens' is inf, expected a finite number \(1 more bad row"),
        ("e.csv", "", r"e\.csv: the file is empty"),
        ("h.csv", "params,tokens,loss\n", r"h\.csv: the table has no data rows"),
        ("x.xlsx", "whatever", r"x\.xlsx: unknown table format '\.xlsx'"),
        ("noext", "whatever", r"unknown table format '\(no suffix\)'"),
        ("j.jsonl", '{"params": 1}\n{oops\n', r"j\.jsonl: line 2: not valid JSON"),
        ("l.jsonl", "[1, 2]\n", r"line 1: expected a JSON object"),
    ],
)
def test_bad_tables_name_file_and_row(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(TableError, match=message):
        read_ladder(path)


def test_missing_file_and_mapped_header(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    path = write(tmp_path, "a.csv", LADDER_CSV)
    with pytest.raises(TableError, match=r"column 'Model Size' \(mapped to 'params'\) not found"):
        read_table(path, {"params": "Model Size"})


def test_jsonl_rows_are_numbered_by_line(tmp_path):
    lines = ['{"params": 1e8, "tokens": 2e9, "loss": 3}',
             '{"params": -1, "tokens": 2e9, "loss": 3}']
    path = write(tmp_path, "r.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(TableError, match=r"row 2 \(line 2\)"):
        read_ladder(path)


def test_boolean_column_is_not_a_number(tmp_path):
    frame = pd.DataFrame({"params": [True, False], "tokens": [1e9, 1e9], "loss": [3.0, 3.0]})
    frame.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(TableError, match="'params' is True, expected a number"):
        read_ladder(tmp_path / "b.parquet")


def test_scale_table_takes_every_numeric_metric(tmp_path):
    path = write(tmp_path, "s.csv", "users,latency_ms,region\n10,12.5,eu\n100,14.0,us\n")
    frame = read_scale_table(path, "users")
    assert frame.attrs["metrics"] == ["latency_ms"]
    with pytest.raises(TableError, match="no numeric metric"):
        read_scale_table(write(tmp_path, "t.csv", "users,region\n1,eu\n"), "users")
    with pytest.raises(TableError, match="missing column 'gpus'"):
        read_scale_table(path, "gpus")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                 st.text(max_size=4)), min_size=1, max_size=12))
def test_check_numeric_accepts_exactly_the_positive_finite_numbers(values):
    frame = pd.DataFrame({"v": pd.Series(values, dtype=object)})
    frame.attrs["source"] = "prop.csv"
    as_numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    good = bool(np.all(np.isfinite(as_numbers)) and np.all(as_numbers > 0))
    if good:
        out = check_numeric(frame, [NumericColumn("v", positive=True)])
        assert out["v"].dtype == np.float64
    else:
        with pytest.raises(TableError, match=r"^prop\.csv: row \d+ \(line \d+\): column 'v'"):
            check_numeric(frame, [NumericColumn("v", positive=True)])
