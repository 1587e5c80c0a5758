"""Issue #13: simulations too large for memory or minutes are refused before any work."""

from __future__ import annotations

import pytest

from scaleguard.cli import main
from scaleguard.errors import ConfigError, InputError
from scaleguard.safety import Scenario, simulate
from scaleguard.safety._plan import parse_plan


def _plan(**simulation):
    return {"name": "p", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.01}],
            "stages": [{"name": "all", "traffic": 1.0, "min_duration": "1h",
                        "max_duration": "1d"}],
            "simulation": {"exposures_per_look": 2000, "look_interval": "1h", **simulation}}


def test_a_zero_look_interval_is_refused_by_the_plan():
    # Was: a hang (the clock never advanced).
    with pytest.raises(ConfigError, match="simulation.look_interval: Input should be greater"):
        parse_plan(_plan(look_interval=0), "plan.yaml")


def test_a_nanosecond_look_interval_is_refused_before_allocating():
    # Was: MemoryError allocating 36.8 PiB.
    plan = parse_plan(_plan(look_interval="1ns"), "plan.yaml")
    with pytest.raises(InputError, match=r"look_interval: 1e-09 s gives 86,400,000,000,000 "
                                         r"looks in stage 'all'"):
        simulate(plan, Scenario("aa"), runs=10)


def test_too_many_runs_or_segment_cells_are_refused():
    plan = parse_plan(_plan(), "plan.yaml")
    with pytest.raises(InputError, match=r"--runs: at most 1,000,000"):
        simulate(plan, Scenario("aa"), runs=10**9)
    wide = _plan()
    wide["segments"] = {f"d{i}": [f"v{j}" for j in range(100)] for i in range(4)}
    with pytest.raises(InputError, match=r"100,000,000 segment cells"):
        simulate(parse_plan(wide, "plan.yaml"), Scenario("aa"), runs=10)


def test_the_cli_refuses_in_one_line_before_the_progress_bar(tmp_path, capsys):
    import yaml

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(_plan(look_interval="1ns")))
    assert main(["rollout", "simulate", str(path), "--runs", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: simulation.look_interval" in err
