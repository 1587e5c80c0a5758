"""Every command's output at 80 columns: no value cut to "…", no Python repr, no line too long.

Each command runs in this process on small generated inputs (the demo's synthetic data), with
the console 80 columns wide, as a terminal of that width would show it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scaleguard.cli import _options, main
from scaleguard.examples import synthetic_ladder
from scaleguard.monitor._synthetic import Fault, synthetic_training_log
from scaleguard.safety import EXAMPLE_PLAN, load_plan

# `Layout(tp=4`, `Rejection(tp=1`, `ModelShape('llama'`: a dataclass repr leaking into output.
PYTHON_REPR = re.compile(r"\b[A-Z][A-Za-z]+\((?:[a-z_]+=|'|\")")
WIDTH = 80


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("out80")
    synthetic_ladder(seed=0).to_csv(folder / "ladder.csv", index=False)
    from scaleguard.cli.safety import demo_observations

    demo_observations(load_plan(EXAMPLE_PLAN)).to_csv(folder / "obs.csv", index=False)
    log = synthetic_training_log(400, seed=0, faults=(Fault("spike", 300, 0.3),))
    log.pivot(index="step", columns="name", values="value").reset_index().to_csv(
        folder / "log.csv", index=False)
    study = {"name": "a study whose name is long enough to wrap at eighty columns",
             "ladder": {"path": "ladder.csv", "bootstrap": 0},
             "target": {"compute": "1e22"},
             "hardware": {"device": "h100-sxm", "devices": 64, "price_per_device_hour": 2.0},
             "limits": {"money": "200k", "energy": "300MWh"}}
    (folder / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    import numpy as np
    import pandas as pd

    scores = np.random.default_rng(0).beta(0.5, 200.0, 400)  # per-query failure probabilities
    pd.DataFrame({"p": scores}).to_csv(folder / "scores.csv", index=False)
    return folder


def commands(d: Path) -> list[list[str]]:
    plan = str(EXAMPLE_PLAN)
    return [
        ["inspect", f"{d}/ladder.csv"],
        ["fit", f"{d}/ladder.csv", "--predict", "params=70B,tokens=1.4T", "--budget", "1e22",
         "--holdout-above", "flops=3e19"],
        ["resources", "train", "--params", "70B", "--tokens", "2T", "--gpu", "h100-sxm",
         "--gpus", "2048", "--mfu", "0.4", "--intensity", "429g/kWh", "--price", "2.5"],
        ["resources", "memory", "--model", "llama-3-8b", "--dp", "64", "--zero", "3",
         "--gpu", "h100"],
        ["resources", "plan", "--model", "llama-3-70b", "--gpu", "h100", "--gpus", "512",
         "--global-batch", "512"],
        ["resources", "energy", "--gpu-hours", "184320", "--power", "400W"],
        ["resources", "serve", "--model", "llama-3-70b", "--gpu", "h100", "--rate", "20",
         "--prompt", "2k", "--output", "300", "--latency", "10s"],
        ["resources", "devices"],
        ["rollout", "validate", plan],
        ["rollout", "decide", plan, "--observations", f"{d}/obs.csv",
         "--now", "2026-01-01T03:30:00Z"],
        ["rollout", "simulate", plan, "--scenario", "segment", "--metric", "harmful_output",
         "--segment", "region=eu", "--factor", "3", "--runs", "40"],
        ["safety", "bound", "--failures", "0", "--trials", "3000", "--next", "1M"],
        ["safety", "drift", f"{d}/ladder.csv", f"{d}/ladder.csv"],
        ["safety", "forecast", f"{d}/scores.csv", "--queries", "10M"],
        ["token", f"{d}/tokens.txt"],
        ["monitor", "check", f"{d}/log.csv"],
        ["monitor", "ingest", f"{d}/log.csv", "--store", f"{d}/runs.duckdb"],
        ["monitor", "runs", "--store", f"{d}/runs.duckdb"],
        ["monitor", "alerts", "--store", f"{d}/runs.duckdb"],
        ["assess", f"{d}/study.yaml", "--executor", "serial"],
    ]


def test_every_command_reads_at_80_columns(inputs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    for console in (_options.console, _options.err_console):
        monkeypatch.setattr(console, "width", WIDTH)
    for argv in commands(inputs):
        status = main(argv)
        captured = capsys.readouterr()
        text = captured.out + captured.err
        where = " ".join(argv[:2])
        assert status in (0, 1, 3), (where, status, captured.err)
        assert text.strip(), where
        assert "…" not in text, (where, text)
        assert not PYTHON_REPR.search(text), (where, PYTHON_REPR.search(text), text)
        too_long = [line for line in text.splitlines() if len(line) > WIDTH]
        assert not too_long, (where, too_long)


def test_the_assessment_json_names_no_python_repr(inputs, capsys):
    assert main(["assess", f"{inputs}/study.yaml", "--executor", "serial", "--out",
                 f"{inputs}/report"]) in (0, 1, 3)
    capsys.readouterr()
    text = (inputs / "report" / "assessment.json").read_text(encoding="utf-8")
    assert not PYTHON_REPR.search(text), PYTHON_REPR.search(text)
