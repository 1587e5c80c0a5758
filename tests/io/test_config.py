import pytest
from pydantic import BaseModel, ConfigDict

from scaleguard.errors import ConfigError
from scaleguard.io import read_yaml, validate_config


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    traffic: float


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: list[Stage]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "plan.yaml: no such plan file"),
        ("", "plan.yaml: the plan is empty"),
        ("stages: [unclosed\n", "plan.yaml: line 2: not valid YAML"),
    ],
)
def test_read_yaml_refuses_missing_empty_and_broken_files(tmp_path, text, message):
    path = tmp_path / "plan.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_yaml(path, "plan")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "plan.yaml: expected a mapping at the top level, got list"),
        ({}, "plan.yaml: stages: missing required field$"),
        ({"stages": [{"name": "a", "traffic": 0.1}, {"name": "b"}]},
         r"plan.yaml: stages\[1\].traffic: missing required field$"),
        ({"stages": [{"name": "a", "traffic": "x"}]},
         r"stages\[0\].traffic: .*valid number.* \(got 'x'\)$"),
        ({"stages": [{"name": "a", "traffic": 1, "extra": 2}]},
         r"stages\[0\].extra: unknown field$"),
        ({"stages": [{"traffic": "x"}]}, r"stages\[0\].name: missing required field \(1 more"),
    ],
)
def test_validate_config_names_the_yaml_path(data, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(Plan, data, "plan.yaml")


def test_valid_config_round_trips(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("stages:\n  - {name: pilot, traffic: 0.01}\n")
    plan = validate_config(Plan, read_yaml(path), str(path))
    assert plan.stages[0].traffic == 0.01
