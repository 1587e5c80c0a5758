"""``scaleguard fit``: JSON is as_dict(), the plot opens offline, bad input exits 2 in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaleguard.cli import main
from scaleguard.cli.fit import parse_point
from scaleguard.errors import InputError
from scaleguard.examples import synthetic_ladder


@pytest.fixture
def ladder_csv(tmp_path):
    path = tmp_path / "ladder.csv"
    synthetic_ladder(seed=0).to_csv(path, index=False)
    return path


@pytest.fixture
def curve_csv(tmp_path):
    x = np.geomspace(10, 1e5, 20)
    path = tmp_path / "curve.csv"
    pd.DataFrame({"users": x, "latency": 0.2 + 3.0 * x**-0.4}).to_csv(path, index=False)
    return path


def test_fit_json_has_everything_asked_for(ladder_csv, tmp_path, capsys):
    plot = tmp_path / "ladder.html"
    code = main(["fit", str(ladder_csv), "--json", "--predict", "params=70B,tokens=1.4T",
                 "--budget", "1e22", "--holdout-above", "flops=3e19", "--bootstrap", "20",
                 "--plot", str(plot)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["form"] == "chinchilla" and out["n_points"] == 40
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert out["converged"] is True and out["objective"] > 0
    assert set(out["bootstrap"]["ci"]["alpha"]) == {"low", "high", "median", "std"}
    prediction = out["predictions"][0]
    assert prediction["params"] == 70e9 and prediction["tokens"] == 1.4e12
    assert set(prediction["elasticity"]) == {"params", "tokens"}
    assert all(-1 < e < 0 for e in prediction["elasticity"].values())
    assert prediction["lower"] <= prediction["estimate"] <= prediction["upper"]
    allocation = out["allocation"][0]
    assert allocation["budget_flops"] == 1e22
    # N* and D* get bootstrap intervals around the full fit's split.
    assert allocation["params_interval"]["low"] < allocation["params"] < \
        allocation["params_interval"]["high"]
    assert allocation["tokens_interval"]["low"] < allocation["tokens"] < \
        allocation["tokens_interval"]["high"]
    assert prediction["interval"]["lower"] < prediction["estimate"] < \
        prediction["interval"]["upper"]
    assert out["calibration"]["level"] == 0.95
    assert 6 * allocation["params"] * allocation["tokens"] == pytest.approx(1e22)
    assert out["validation"]["n_test"] == 8 and out["validation"]["mare"] < 0.05
    html = plot.read_text(encoding="utf-8")
    assert "compute-optimal loss" in html and "bootstrap band" in html


def test_fit_prints_a_readable_table(curve_csv, capsys):
    assert main(["fit", str(curve_csv), "--form", "saturating", "--x", "users", "--y",
                 "latency", "--predict", "users=1M", "--holdout-above", "users=1e4"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "saturating law, 20 runs" in out and "alpha" in out and "1e+06" in out
    assert "held out users > 10000" in out and "MARE" in out
    assert "elasticities" in out and "grow first" in out


def test_fit_auto_on_a_scale_table_with_plot(curve_csv, tmp_path, capsys):
    plot = tmp_path / "plots" / "fit.html"
    code = main(["fit", str(curve_csv), "--form", "auto", "--x", "users", "--y", "latency",
                 "--json", "--plot", str(plot), "--predict", "users=1M"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["form"] == out["selection"]["best"]
    assert {s["form"] for s in out["selection"]["scores"]} <= {"power", "saturating", "bounded",
                                                               "broken"}
    assert out["predictions"][0]["users"] == 1e6
    html = plot.read_text(encoding="utf-8")
    assert "plotly" in html and '<script src="http' not in html  # plotly.js inlined: offline


def test_parse_point_reads_human_units():
    assert parse_point("params=70B,tokens=1.4T") == {"params": 70e9, "tokens": 1.4e12}
    with pytest.raises(InputError, match="expected COLUMN=VALUE"):
        parse_point("params70B")


def _run_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleguard: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize(("rows", "message"), [
    ("params,tokens,loss\n1e8,2e9,3.0\n", "needs at least 2 rows, got 1"),
    ("params,tokens,loss\n1e8,2e9,3.0\n1e8,4e9,2.9\n1e8,8e9,2.8\n1e8,1e10,2.7\n1e8,2e10,2.6\n"
     "1e8,4e10,2.5\n", "every row has params = 1e+08"),
    ("params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9,-2.9\n", "row 2 (line 3): column 'loss' is -2.9"),
    ("params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9,\n", "column 'loss' is empty"),
    ("params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9,2.9\n4e8,8e9,2.8\n",
     "has 5 parameters (E, A, B, alpha, beta) but the table has only 3 rows"),
])
def test_bad_tables_exit_2_with_one_line(tmp_path, capsys, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text(rows)
    err = _run_error(["fit", str(path)], capsys)
    assert message in err, err


@pytest.mark.parametrize(("extra", "message"), [
    (["--form", "cubic"], "--form: unknown law 'cubic'"),
    (["--bootstrap", "1"], "--bootstrap: expected 0"),
    (["--holdout-above", "flops=1e30"], "no row lies above it"),
    (["--predict", "params=lots"], "--predict params"),
    (["--budget", "-5"], "--budget: expected a positive number"),
    (["--form", "power", "--x", "params", "--budget", "1e22"], "not power"),
    (["--holdout-above", "flops=1e19", "--leave-largest-group-out"], "choose one split"),
    (["--predict", "params=1B,tokens=2B", "--cost", "gpus=3"], "--cost: unknown column(s) gpus"),
    (["--cost", "params"], "--cost 'params': expected COLUMN=VALUE"),
    # In the user's terms (#18): what is missing and an example, not "missing column 'tokens'".
    (["--predict", "params=70B"], "--predict params=70B: the chinchilla law also needs tokens= "
     "(training tokens); e.g. --predict params=70B,tokens=1.4T"),
])
def test_bad_options_exit_2_with_one_line(ladder_csv, capsys, extra, message):
    err = _run_error(["fit", str(ladder_csv), *extra], capsys)
    assert message in err, err


def test_missing_file_exits_2(tmp_path, capsys):
    err = _run_error(["fit", str(tmp_path / "none.csv")], capsys)
    assert "no such file" in err


def test_fit_warns_past_one_decade_and_says_which_law_it_used(ladder_csv, capsys):
    # The ladder's largest run is 1e20 FLOP; 70B x 1.4T is 5.9e23 FLOP, 3.8 decades beyond.
    assert main(["fit", str(ladder_csv), "--json", "--predict", "params=70B,tokens=1.4T",
                 "--predict", "params=1B,tokens=10B", "--budget", "1e22"]) == 0
    out = json.loads(capsys.readouterr().out)
    far, near = out["predictions"]
    assert far["decades_beyond_data"] == pytest.approx(np.log10(6 * 70e9 * 1.4e12 / 1e20))
    assert near["decades_beyond_data"] == 0.0
    assert sum("decades of flops beyond the largest run" in w for w in out["warnings"]) == 2
    assert out["chosen_by"].startswith("fixed: the chinchilla law was asked for")


def test_predict_with_params_and_flops_derives_tokens(ladder_csv, capsys):
    assert main(["fit", str(ladder_csv), "--json", "--predict", "params=1B,flops=6e19"]) == 0
    prediction = json.loads(capsys.readouterr().out)["predictions"][0]
    assert main(["fit", str(ladder_csv), "--json", "--predict", "params=1B,tokens=10B"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["estimate"] == \
        pytest.approx(prediction["estimate"])


def test_ray_errors_name_the_option_that_chose_ray():
    from scaleguard.compute import get_executor

    assert get_executor("ray").option == "--executor"
    assert get_executor("ray://head:10001", option="--backend").option == "--backend"


def test_fit_reads_runs_of_checkpoints_and_seeds(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for n in np.geomspace(2e7, 1e9, 5):
        for seed in (0, 1):
            for k in range(1, 11):
                d = 2 * n * k
                loss = (1.8 + 400 / n**0.34 + 1500 / d**0.28) * np.exp(rng.normal(0, 0.005))
                rows.append({"run": f"{n:.0f}-{seed}", "seed": seed, "step": k, "params": n,
                             "tokens": d, "loss": loss})
    path = tmp_path / "checkpoints.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["fit", str(path), "--drop-early", "0.25"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "10 runs, 80 of 100 checkpoints fitted (the first 25% of each run's tokens " \
           "dropped)" in out
    assert "seed-to-seed noise" in out
