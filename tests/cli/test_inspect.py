import json

import pytest

from scaleguard.cli import main
from scaleguard.examples import synthetic_ladder


@pytest.fixture
def ladder_csv(tmp_path):
    path = tmp_path / "ladder.csv"
    synthetic_ladder(seed=3).drop(columns=["tokens"]).to_csv(path, index=False)
    return path


def test_inspect_summarises_a_ladder(ladder_csv, capsys):
    assert main(["inspect", str(ladder_csv)]) == 0
    out = capsys.readouterr().out
    assert "40 rows" in out and "derived" in out and "params" in out


def test_inspect_json_is_as_dict(ladder_csv, capsys):
    assert main(["inspect", str(ladder_csv), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "ladder" and summary["rows"] == 40
    assert summary["derived"] == ["tokens"]
    assert summary["ranges"]["flops"] == {"min": 1e18, "max": 1e20}
    assert summary["orders_of_magnitude"]["flops"] == pytest.approx(2.0)
    assert summary["groups"] == 5


def test_inspect_maps_columns(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("Model Size,Training FLOP,loss\n1e8,6e18,3.0\n2e8,6e18,2.9\n")
    assert main(["inspect", str(path), "--col", "params=Model Size",
                 "--col", "flops=Training FLOP", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["derived"] == ["tokens"]


def test_inspect_scale_table(tmp_path, capsys):
    path = tmp_path / "users.csv"
    path.write_text("users,p95_ms\n100,120\n1000,150\n10000,210\n")
    assert main(["inspect", str(path), "--x", "users", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "scale" and summary["orders_of_magnitude"]["users"] == 2.0


@pytest.mark.parametrize(
    ("name", "text", "args", "fragment"),
    [
        ("m.csv", "params,tokens\n1e8,2e9\n", [], "m.csv: missing column 'loss'"),
        ("n.csv", "params,tokens,loss\n1e8,2e9,3\n1e8,x,3\n", [],
         "n.csv: row 2 (line 3): column 'tokens' is 'x', expected a number"),
        ("z.csv", "params,tokens,loss\n0,2e9,3\n", [], "row 1 (line 2): column 'params' is 0"),
        ("f.csv", "params,tokens,loss\n1e8,2e9,inf\n", [], "column 'loss' is inf"),
        ("e.csv", "", [], "e.csv: the file is empty"),
        ("u.txt", "params\n1\n", [], "u.txt: unknown table format '.txt'"),
        ("s.csv", "users,p95\n1,2\n", [], "no params, tokens or flops column"),
        ("k.csv", LADDER := "params,tokens,loss\n1e8,2e9,3\n", ["--kind", "huge"], "--kind"),
        ("c.csv", LADDER, ["--col", "params"], "--col 'params': expected NAME=Header"),
        ("x.csv", LADDER, ["--kind", "scale"], "--x: a scale table needs"),
    ],
)
def test_inspect_rejects_bad_input_with_status_2(tmp_path, capsys, name, text, args, fragment):
    path = tmp_path / name
    path.write_text(text)
    assert main(["inspect", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1
