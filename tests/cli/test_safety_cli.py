import json

import numpy as np
import pandas as pd
import pytest
import yaml

from scaleguard.cli import main
from scaleguard.safety import EXAMPLE_PLAN

PLAN = str(EXAMPLE_PLAN)


def run_json(capsys, *args):
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_validate_prints_the_stages(capsys):
    assert main(["rollout", "validate", PLAN]) == 0
    out = capsys.readouterr().out
    assert "assistant-v2" in out and "valid" in out and "region-eu" in out
    assert run_json(capsys, "rollout", "validate", PLAN)["plan"]["name"] == "assistant-v2"


def test_invalid_plan_exits_2_with_the_yaml_path(tmp_path, capsys):
    data = yaml.safe_load(EXAMPLE_PLAN.read_text())
    data["stages"][2]["traffic"] = 0.01
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["rollout", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleguard: error: ") and "plan.yaml: stages[2].traffic:" in err
    assert err.count("\n") == 1


def test_schema_is_json(capsys):
    assert main(["rollout", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "RolloutPlan"


def observations(path, harm_factor=1.0, hours=3):
    rng = np.random.default_rng(0)
    records = []
    for metric, base in (("harmful_output", 0.001), ("refusal", 0.05), ("latency_p99", 0.005)):
        for arm in ("control", "treatment"):
            rate = base * (harm_factor if arm == "treatment" and metric == "harmful_output"
                           else 1.0)
            records.append({"stage": "internal", "arm": arm, "metric": metric, "region": "us",
                            "tier": "pro", "exposures": 400_000,
                            "events": int(rng.binomial(400_000, rate)),
                            "time": f"2026-11-23T{10 + hours:02d}:00:00Z"})
    pd.DataFrame(records).to_csv(path, index=False)
    return str(path)


def test_decide_persists_state_and_audit_and_rolls_back_a_regression(tmp_path, capsys):
    state = tmp_path / "state"
    clean = observations(tmp_path / "clean.csv")
    out = run_json(capsys, "rollout", "decide", PLAN, "--observations", clean, "--state",
                   str(state), "--now", "2026-11-23T13:30:00Z")
    assert out["action"] == "continue"  # the stage started at the first row's time, 13:00
    out = run_json(capsys, "rollout", "decide", PLAN, "--observations", clean, "--state",
                   str(state), "--now", "2026-11-23T15:30:00Z")
    assert out["action"] == "hold" and "late data" in out["reasons"][0]
    newer = observations(tmp_path / "newer.csv", hours=5)
    out = run_json(capsys, "rollout", "decide", PLAN, "--observations", newer, "--state",
                   str(state), "--now", "2026-11-23T15:30:00Z")
    assert out["action"] == "advance" and out["stage"] == "canary"
    assert len((state / "audit.jsonl").read_text().splitlines()) == 3
    bad = observations(tmp_path / "bad.csv", harm_factor=3.0)
    fresh = tmp_path / "fresh"
    assert main(["rollout", "decide", PLAN, "--observations", bad, "--state", str(fresh),
                 "--now", "2026-11-23T15:30:00Z"]) == 0
    printed = capsys.readouterr().out
    assert "ROLL_BACK" in printed and "harmful_output fails" in printed


def test_decide_refuses_a_state_of_another_plan(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text(json.dumps({"plan": "other", "stage_index": 0,
                                                  "traffic": 0.1}))
    clean = observations(tmp_path / "clean.csv")
    assert main(["rollout", "decide", PLAN, "--observations", clean, "--state",
                 str(state)]) == 2
    assert "holds rollout 'other'" in capsys.readouterr().err


def test_simulate_prints_every_policy(tmp_path, capsys):
    plan = {"name": "one", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.01}],
            "stages": [{"name": "all", "traffic": 1.0, "min_duration": "5h",
                        "max_duration": "5h"}],
            "simulation": {"exposures_per_look": "4k", "look_interval": "1h"}}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(plan))
    out = run_json(capsys, "rollout", "simulate", str(path), "--scenario", "metric",
                   "--metric", "harm", "--factor", "2", "--runs", "300", "--seed", "3")
    assert [o["policy"] for o in out["outcomes"]] == ["always_valid", "naive_peeking",
                                                      "kayenta"]
    assert out["runs"] == 300 and out["scenario"]["factor"] == 2.0
    assert main(["rollout", "simulate", str(path), "--runs", "200"]) == 0
    printed = capsys.readouterr().out
    assert "aa scenario" in printed and "naive_peeking" in printed
    assert main(["rollout", "simulate", str(path), "--runs", "1.5"]) == 2
    assert "--runs" in capsys.readouterr().err


def test_bound_reproduces_published_figures(capsys):
    out = run_json(capsys, "safety", "bound", "--failures", "1", "--trials", "1000")
    assert out["clopper_pearson_upper"] == pytest.approx(4.73e-3, rel=2e-3)
    out = run_json(capsys, "safety", "bound", "--failures", "0", "--trials", "10k",
                   "--target", "1e-3", "--next", "1M")
    assert out["trials_to_certify"] == 2995 and out["incidents_upper"] > 0
    assert main(["safety", "bound", "--failures", "0", "--trials", "1000"]) == 0
    assert "Clopper-Pearson" in capsys.readouterr().out
    assert main(["safety", "bound", "--failures", "3", "--trials", "2"]) == 2
    assert "--failures" in capsys.readouterr().err


def test_forecast_from_a_scores_table(tmp_path, capsys):
    rng = np.random.default_rng(0)
    p = np.exp(-np.exp(-rng.gumbel(-5.0, 0.3, size=500)))
    path = tmp_path / "scores.csv"
    pd.DataFrame({"p": p}).to_csv(path, index=False)
    out = run_json(capsys, "safety", "forecast", str(path), "--queries", "1M")
    assert out["worst_probability"] > out["observed_worst_probability"]
    pd.DataFrame({"p": [0.1, 1.2]}).to_csv(path, index=False)
    assert main(["safety", "forecast", str(path), "--queries", "1M"]) == 2
    assert "row 2" in capsys.readouterr().err


def test_drift_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pd.DataFrame({"score": rng.normal(size=500)}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"score": rng.normal(1, 1, size=500)}).to_csv(tmp_path / "b.csv", index=False)
    out = run_json(capsys, "safety", "drift", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))
    assert out["drifted"] == ["score"]


def test_demo_step_writes_a_plan_the_commands_accept(tmp_path, capsys):
    from scaleguard.cli.safety import demo_step

    written = demo_step(tmp_path)
    names = [w.path.name for w in written]
    assert names == ["rollout_plan.yaml", "rollout_observations.csv", "rollout_decision.json",
                     "rollout_simulation.json", "rollout_harm_bound.json"]
    assert set(pd.read_csv(tmp_path / "rollout_observations.csv")["source"]) == {"synthetic"}
    decision = json.loads((tmp_path / "rollout_decision.json").read_text())
    assert decision["action"] == "advance" and decision["stage"] == "canary"
    assert main(["rollout", "validate", str(tmp_path / "rollout_plan.yaml")]) == 0
    capsys.readouterr()
    out = run_json(capsys, "rollout", "decide", str(tmp_path / "rollout_plan.yaml"),
                   "--observations", str(tmp_path / "rollout_observations.csv"),
                   "--now", "2026-01-01T02:30:00Z")
    # The 03:00 windows are dated after the decision time: untrusted, so the rollout holds.
    assert out["action"] == "hold" and "ahead of the decision time" in out["reasons"][0]
    out = run_json(capsys, "rollout", "decide", str(tmp_path / "rollout_plan.yaml"),
                   "--observations", str(tmp_path / "rollout_observations.csv"),
                   "--now", "2026-01-01T02:58:00Z")
    # Within the clock skew; a fresh state starts at the first row (01:00): 1 h 58 min is
    # short of the 2 h minimum.
    assert out["action"] == "continue" and "minimum duration" in out["reasons"][-1]


def test_decide_keeps_the_rollout_in_a_monitor_store(tmp_path, store_url, capsys):
    """``rollout decide --store`` with a DuckDB file and with ``postgresql://...``."""
    from scaleguard.monitor import open_store
    from scaleguard.safety import DatabaseRolloutStore

    clean = observations(tmp_path / "clean.csv")
    db = store_url
    for _ in range(2):
        assert main(["rollout", "decide", PLAN, "--observations", clean, "--store", str(db),
                     "--rollout", "assistant", "--now", "2026-11-23T13:30:00Z"]) == 0
    with open_store(db) as store:
        rollout = DatabaseRolloutStore(store, "assistant")
        audit = rollout.audit()
        state = rollout.load_state()
    assert [r["action"] for r in audit] == ["continue", "continue"]
    assert state is not None and state.decisions == 2  # the second decision read the first's
    assert main(["rollout", "decide", PLAN, "--observations", clean, "--store", str(db),
                 "--state", str(tmp_path / "s")]) == 2
    assert "give --store or --state, not both" in capsys.readouterr().err
