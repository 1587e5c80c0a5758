"""``scaleguard assess``: the verdict on stdout, the report on disk, one-line errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.cli import main
from scaleguard.errors import ConfigError
from scaleguard.examples import synthetic_ladder
from scaleguard.limits import load_study, study_from_dict

BASE = {
    "name": "cli study",
    "ladder": {"path": "ladder.csv", "bootstrap": 0},
    "target": {"compute": "1e21"},
    "hardware": {"device": "h100-sxm", "devices": 8, "price_per_device_hour": 2.0},
    "limits": {"money": "1k"},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    synthetic_ladder(seed=0).to_csv(path / "ladder.csv", index=False)
    return path


def write(folder: Path, study: dict, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def test_assess_prints_the_verdict_and_writes_the_report(folder, capsys):
    study = write(folder, BASE)
    assert main(["assess", str(study), "--out", str(folder / "out"), "--executor",
                 "serial"]) == 1  # not ready
    printed = capsys.readouterr().out
    assert "NOT READY" in printed and "budget wall" in printed
    assert str(folder / "out" / "report.html") in printed
    assert (folder / "out" / "report.html").stat().st_size > 1_000_000


def test_json_prints_exactly_as_dict(folder, capsys):
    study = write(folder, BASE)
    assert main(["assess", str(study), "--json", "--executor", "serial"]) == 1  # not ready
    payload = json.loads(capsys.readouterr().out)
    written = json.loads((folder / "study-report" / "assessment.json").read_text())
    assert payload == written
    assert payload["verdict"]["readiness"] == "not ready"
    assert payload["verdict"]["binding_constraint"] == "budget_wall"


@pytest.mark.parametrize(("change", "message"), [
    ({"target": {"compute": "1e21", "loss": 2.0}},
     "target: give exactly one target: compute, loss, or params with tokens"),
    ({"target": {"params": "7B"}}, "target: a model-size target needs both params and tokens"),
    ({"limits": {"energy": "3MWx"}}, "limits.energy: unknown unit 'MWx'"),
    ({"limits": {"energy": "3tCO2e"}}, "limits.energy: '3tCO2e' has a unit of carbon"),
    ({"limits": {"money": "-5"}}, "limits.money: expected a positive quantity"),
    ({"hardware": {"device": "h100-sxm", "devices": 0}}, "hardware.devices: Input should be "
                                                           "greater than or equal to 1"),
    ({"hardware": {"device": "h100-sxm", "devices": 8, "gpus": 8}}, "hardware.gpus: unknown field"),
    ({"ladder": {"bootstrap": 0}}, "ladder.path: missing required field"),
    ({"ladder": {"path": "missing.csv", "bootstrap": 0}}, "missing.csv"),
    ({"hardware": {"device": "tpu-v9", "devices": 8}}, "tpu-v9"),
    ({"target": {"loss": 1.5}}, "target.loss: 1.5 is at or below the fitted irreducible loss"),
])
def test_bad_studies_fail_with_one_line_naming_the_field(folder, capsys, change, message):
    study = write(folder, {**BASE, **change}, "bad.yaml")
    assert main(["assess", str(study), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleguard: error: ")
    assert err.count("\n") == 1
    assert message in err


def test_unreadable_and_invalid_files(folder, capsys):
    assert main(["assess", str(folder / "absent.yaml")]) == 2
    assert "absent.yaml: no such study file" in capsys.readouterr().err
    broken = folder / "broken.yaml"
    broken.write_text("ladder: [unclosed\n", encoding="utf-8")
    assert main(["assess", str(broken)]) == 2
    assert "broken.yaml: line 2: not valid YAML" in capsys.readouterr().err
    listed = folder / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    assert main(["assess", str(listed)]) == 2
    assert "expected a mapping of sections" in capsys.readouterr().err
    assert main(["assess", str(write(folder, BASE)), "--executor", "gpu"]) == 2
    assert "--executor: expected one of serial, process" in capsys.readouterr().err


def test_the_example_study_validates():
    from importlib.resources import files

    text = files("scaleguard.limits").joinpath("examples/study.yaml").read_text("utf-8")
    study = study_from_dict(yaml.safe_load(text))
    assert study.target.compute == 1e23 and study.data.unique_tokens == 1e11
    assert study.limits.energy == pytest.approx(1000 * 3.6e9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["money", "energy", "carbon", "wall_clock"]),
       value=st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_any_limit_value_is_accepted_or_refused_with_a_config_error(field, value):
    try:
        study = study_from_dict({**BASE, "limits": {field: value}}, source="s.yaml")
    except ConfigError as exc:
        assert str(exc).startswith(f"s.yaml: limits.{field}: ")
        assert "\n" not in str(exc)
    else:
        stored = getattr(study.limits, field)
        assert stored is None or stored > 0


def test_load_study_resolves_paths_beside_the_file(folder):
    study = load_study(write(folder, BASE))
    assert study.resolve(study.ladder.path) == folder / "ladder.csv"


def test_demo_step_assesses_the_example_study_end_to_end(tmp_path):
    from scaleguard.cli.assess import demo_step

    written = {item.path.name: item for item in demo_step(tmp_path)}
    assert {"study.yaml", "report.html", "assessment.json", "pilot_run.duckdb"} <= set(written)
    payload = json.loads((tmp_path / "report" / "assessment.json").read_text())
    assert payload["verdict"]["readiness"] == "not ready"
    assert payload["verdict"]["binding_constraint"] == "data_wall"
    assert payload["rollout"]["plan"] == "assistant-v2"  # the example plan, observed
    assert [a["metric"] for a in payload["alerts"]] == ["loss"]  # the planted spike, found
    assert "open in a browser" in written["report.html"].what


@pytest.mark.parametrize(("money", "readiness", "status"), [
    ("1M", "ready", 0),
    ("1.5k", "ready with conditions", 3),  # the step needs $1,404: over 90% of the budget
    ("1k", "not ready", 1),
])
def test_exit_status_says_the_verdict(folder, capsys, money, readiness, status):
    """Scripts and CI gates read the verdict from the exit status: 0, 3 or 1 (2: bad input)."""
    study = write(folder, {**BASE, "limits": {"money": money}}, name=f"money-{money}.yaml")
    assert main(["assess", str(study), "--json", "--executor", "serial"]) == status
    assert json.loads(capsys.readouterr().out)["verdict"]["readiness"] == readiness


def test_a_missing_ladder_column_points_at_the_study_not_at_a_flag(folder, capsys):
    """assess has no --col: the hint names the study's ladder.columns."""
    synthetic_ladder(seed=0).drop(columns=["tokens", "flops"]).to_csv(
        folder / "no_tokens.csv", index=False)
    study = write(folder, {**BASE, "ladder": {"path": "no_tokens.csv", "bootstrap": 0}},
                  name="no_tokens.yaml")
    assert main(["assess", str(study), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert "ladder.columns" in err and "--col" not in err and err.count("\n") == 1
