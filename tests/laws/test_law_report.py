"""FitReport: everything ``scaleguard fit --json`` prints, built from one fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaleguard.laws import LawFit, get_law, holdout_split
from scaleguard.laws._report import build_report

TRUTH = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35, "R_D": 15.4,
         "R_N": 5.3}
SMALL_GRID = {"e": (0.0, 1.0), "a": (6.0,), "b": (6.0,), "alpha": (0.3,), "beta": (0.3,),
              "log_R_D": (np.log(5.0), np.log(15.0)), "log_R_N": (np.log(5.0),)}


@pytest.fixture(scope="module")
def repeated_runs() -> pd.DataFrame:
    rows = [{"params": p, "tokens": u * e, "unique_tokens": u}
            for p in np.geomspace(1e8, 3e9, 5) for u in (2e9, 1e10) for e in (1, 2, 4, 8, 16)]
    frame = pd.DataFrame(rows)
    X = frame[["params", "tokens", "unique_tokens"]].to_numpy().T
    frame["loss"] = get_law("data_constrained").predict(TRUTH, X)
    return frame


def test_report_of_a_data_constrained_fit(repeated_runs):
    fit = LawFit(form="data_constrained", starts=SMALL_GRID).fit(repeated_runs)
    report = build_report(fit, repeated_runs, source="runs.csv",
                          points=[{"params": 1e9, "tokens": 8e10, "unique_tokens": 2e10}],
                          budgets=[1e22], unique_tokens=2e10,
                          split=holdout_split(repeated_runs, "params", 1e9))
    payload = json.loads(json.dumps(report.as_dict()))
    assert payload["form"] == "data_constrained" and payload["source"] == "runs.csv"
    assert payload["params"]["R_D"] == pytest.approx(15.4, rel=0.05)
    assert payload["predictions"][0]["estimate"] == pytest.approx(
        get_law("data_constrained").predict(TRUTH, [[1e9], [8e10], [2e10]])[0], rel=1e-4)
    epochs = payload["best_epochs"][0]
    assert epochs["epochs"] > 1 and epochs["loss"] < epochs["loss_one_epoch"]
    assert payload["allocation"][0]["epochs"] == pytest.approx(epochs["epochs"])
    assert payload["validation"]["n_test"] == 20 and payload["validation"]["mare"] < 0.01
    assert "FitReport(runs.csv" in repr(report)
