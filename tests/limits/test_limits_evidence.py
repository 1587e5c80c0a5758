"""Safety evidence from the other components: rollout gates (safety) and alerts (monitor)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scaleguard.errors import ConfigError, TableError
from scaleguard.limits import Readiness, gather_evidence, study_from_dict

PLAN = {
    "name": "assistant-v2",
    "alpha": 0.05,
    "metrics": [{"name": "harmful_output", "kind": "rate", "guardrail": 0.002,
                 "margin": 0.0005, "critical": True}],
    "stages": [{"name": "canary", "traffic": 0.05}, {"name": "everyone", "traffic": 1.0}],
}


def _observations(path: Path, treatment_rate: float) -> Path:
    rows = []
    for window in range(10):  # ten hourly windows of 100k exposures per arm
        for arm, rate in (("control", 0.001), ("treatment", treatment_rate)):
            rows.append({"stage": "canary", "arm": arm, "metric": "harmful_output",
                         "exposures": 100_000, "events": int(100_000 * rate),
                         "time": 1_700_000_000 + 3600 * window})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _study(folder: Path, **sections) -> dict:
    (folder / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")
    return {"ladder": {"path": "ladder.csv"}, "target": {"compute": 1e21},
            "hardware": {"device": "h100-sxm", "devices": 8}, **sections}


def evidence(folder: Path, **sections):
    return gather_evidence(study_from_dict(_study(folder, **sections), base_dir=folder))


def test_a_clean_rollout_passes_its_gates(tmp_path):
    obs = _observations(tmp_path / "obs.csv", 0.001)
    ev = evidence(tmp_path, rollout={"plan": "plan.yaml", "observations": obs.name})
    assert ev.gates and {g.state for g in ev.gates} == {"pass"}
    assert ev.rollout["plan"] == "assistant-v2" and ev.rollout["stage"] == "canary"


def test_a_harmful_rollout_fails_its_gate_and_blocks(tmp_path, make_study, ladder, known_law):
    from scaleguard.limits import assess

    obs = _observations(tmp_path / "obs.csv", 0.004)  # twice the guardrail
    ev = evidence(tmp_path, rollout={"plan": "plan.yaml", "observations": obs.name})
    failed = [g for g in ev.gates if g.state == "fail"]
    assert failed and all("harmful_output" in g.name for g in failed)
    a = assess(study_from_dict(make_study()), ladder, known_law, ev)
    assert a.verdict.readiness is Readiness.NOT_READY
    assert a.verdict.binding.check == "safety_gates"
    assert "harmful_output" in a.verdict.binding.message


def test_a_plan_without_observations_is_a_condition(tmp_path):
    ev = evidence(tmp_path, rollout={"plan": "plan.yaml"})
    assert [g.state for g in ev.gates] == ["continue"]


def test_alerts_from_the_monitoring_store(tmp_path):
    from scaleguard.monitor import start

    store = tmp_path / "runs.duckdb"
    with start("pilot-1b", store=str(store)) as run:
        run.alert("loss spike", message="loss 7σ above its mean", severity="critical")
    ev = evidence(tmp_path, monitoring={"store": store.name})
    assert ev.monitored
    assert [(a.run, a.severity) for a in ev.alerts] == [("pilot-1b", "critical")]


def test_alerts_from_a_jsonl_log_and_its_errors(tmp_path):
    log = tmp_path / "alerts.jsonl"
    log.write_text('{"run": "r", "severity": "warning", "title": "slow"}\n\n', encoding="utf-8")
    ev = evidence(tmp_path, monitoring={"alerts": log.name})
    assert [(a.run, a.severity, a.metric) for a in ev.alerts] == [("r", "warning", "slow")]
    assert math.isnan(ev.alerts[0].step)
    log.write_text('{"run": "r", "severity": "warning"}\nnot json\n', encoding="utf-8")
    with pytest.raises(TableError, match=r"alerts.jsonl: line 2: not valid JSON"):
        evidence(tmp_path, monitoring={"alerts": log.name})
    with pytest.raises(ConfigError, match="monitoring.store: .* does not exist"):
        evidence(tmp_path, monitoring={"store": "absent.duckdb"})
