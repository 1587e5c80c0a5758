"""Plan feasibility: before a rollout runs, each stage's time to its minimum, its earliest end,
the smallest harm each margin gate shows with 80% power, and warnings for what cannot work."""

import json

import pytest
import yaml

from scaleguard.cli import main
from scaleguard.safety import Scenario, feasibility, parse_plan, simulate

# The plan: three stages (1%, 10%, 100%), 50k minimum exposures within a 1-day maximum,
# 200k exposures per look (1 h) at full traffic: the 1% stage gets 2k/h, 25 h for 50k.
THREE = {
    "name": "three", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.002, "baseline": 0.01}],
    "stages": [{"name": f"s{i}", "traffic": t, "min_exposures": "50k", "max_duration": "1d"}
               for i, t in enumerate((0.01, 0.1, 1.0))],
    "simulation": {"exposures_per_look": "200k", "look_interval": "1h"},
}


def test_the_three_stage_plan_shows_its_reach_and_warns():
    report = feasibility(parse_plan(THREE))
    first, second, third = report.stages
    assert first.exposures_per_hour == 2000 and first.time_to_min_exposures == 25 * 3600
    assert second.time_to_min_exposures == pytest.approx(2.5 * 3600)
    assert third.time_to_min_exposures == pytest.approx(0.25 * 3600)
    assert second.earliest_end == 3 * 3600  # on the hourly look grid
    assert report.time_to_full == first.earliest_end + second.earliest_end
    assert "stage 's0' needs 1.04d to reach its 50k minimum" in report.warnings[0]
    assert "can never advance" in report.warnings[0]
    assert not any("'s1' needs" in w or "'s2' needs" in w for w in report.warnings)
    gate = second.gates[0]
    # 50k per arm, rate 1%: the mixture boundary adds about 0.0015 and the 80% power about
    # 0.0005 to the margin.
    assert 0.002 < gate.detectable < 0.006


def test_validate_prints_feasibility_and_warnings(tmp_path, capsys):
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(THREE))
    assert main(["rollout", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "feasibility at 200k/h" in out and "warning: stage 's0' needs" in out
    assert "expected time to full rollout" in out
    assert main(["rollout", "validate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["name"] == "three"
    assert data["feasibility"]["stages"][0]["time_to_min_exposures"] == 90_000
    assert data["feasibility"]["warnings"]


def test_simulate_counts_the_held_runs_by_reason(tmp_path, capsys):
    result = simulate(parse_plan(THREE), Scenario("aa"), runs=200, seed=0,
                      policies=("always_valid",)).outcome("always_valid")
    assert result.complete_rate == 0.0 and result.hold_rate == 1.0
    assert result.held_by_reason == {"inconclusive at max_duration": 1.0}
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(THREE))
    assert main(["rollout", "simulate", str(path), "--runs", "100"]) == 0
    assert "always_valid held: inconclusive at max_duration 100.0%" in capsys.readouterr().out


def test_an_underpowered_margin_is_warned_about():
    small = {**THREE, "metrics": [{"name": "harm", "margin": 0.0002, "baseline": 0.01}],
             "stages": [{"name": "only", "traffic": 1.0, "min_exposures": "10k"}]}
    report = feasibility(parse_plan(small))
    assert any("a harm of twice its margin 0.0002 may pass unseen" in w
               for w in report.warnings)
    strict = {**small, "metrics": [{"name": "harm", "margin": 0.0002, "baseline": 0.01,
                                    "strict": True}]}
    assert any("any harm above 0" in w for w in feasibility(parse_plan(strict)).warnings)
