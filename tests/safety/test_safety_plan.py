import copy

import pytest
import yaml

from scaleguard.errors import ConfigError
from scaleguard.safety import EXAMPLE_PLAN, load_plan, parse_plan, plan_schema


def base() -> dict:
    return yaml.safe_load(EXAMPLE_PLAN.read_text())


def test_the_example_plan_is_valid_and_reads_human_units():
    plan = load_plan(EXAMPLE_PLAN)
    assert [s.name for s in plan.stages] == ["internal", "canary", "region-eu", "everyone"]
    assert plan.stages[0].min_duration == 7200.0  # "2h"
    assert plan.stages[-1].min_exposures == 1e6  # "1M"
    assert plan.stage_segments(0) == [("region", "us"), ("tier", "pro")]
    assert plan.as_dict()["alpha"] == 0.05


def write(tmp_path, data) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def edited(change) -> dict:
    data = copy.deepcopy(base())
    change(data)
    return data


@pytest.mark.parametrize(("change", "expected"), [
    # The four invalid plans the issue names, each with its YAML path.
    (lambda d: d["stages"][1].__setitem__("metrics", ["harmful_output", "toxicity"]),
     "plan.yaml: stages[1].metrics[1]: unknown metric 'toxicity'"),
    (lambda d: d["stages"][2].__setitem__("traffic", 0.02),
     "plan.yaml: stages[2].traffic: traffic 0.02 is below the previous stage's 0.05"),
    (lambda d: d.__setitem__("alpha", 1.5),
     "plan.yaml: alpha: expected a number in (0, 1), got 1.5"),
    (lambda d: d.__setitem__("alpha", 0),
     "plan.yaml: alpha: expected a number in (0, 1), got 0"),
    (lambda d: d["stages"][3].__setitem__("name", "canary"),
     "plan.yaml: stages[3].name: duplicate stage name 'canary'"),
    # Field-level problems found by pydantic keep their path too.
    (lambda d: d["stages"][2].__setitem__("traffic", 1.5),
     "plan.yaml: stages[2].traffic: Input should be less than or equal to 1"),
    (lambda d: d["stages"][0].__setitem__("min_duration", "2 fortnights"),
     "plan.yaml: stages[0].min_duration:"),
    (lambda d: d["metrics"][0].__setitem__("kind", "median"),
     "plan.yaml: metrics[0].kind: Input should be 'rate', 'mean' or 'quantile'"),
    (lambda d: d["metrics"][1].pop("name"), "plan.yaml: metrics[1].name: missing required field"),
    (lambda d: d.__setitem__("stage", []), "plan.yaml: stage: unknown field"),
    (lambda d: d["stages"][0]["segments"].__setitem__("region", ["mars"]),
     "plan.yaml: stages[0].segments.region[0]: unknown region 'mars'"),
    (lambda d: d["metrics"][0].update(guardrail=None, margin=None),
     "plan.yaml: metrics[0]: metric 'harmful_output' needs a guardrail, a margin or both"),
    (lambda d: d["metrics"][0].__setitem__("guardrail", 2.0),
     "plan.yaml: metrics[0].guardrail: a rate is in [0, 1], got 2.0"),
    (lambda d: d["metrics"][0].__setitem__("compare_to", "previous_stage"),
     "plan.yaml: stages[0].metrics: the first stage has no previous stage"),
    (lambda d: d.__setitem__("error_control", {"method": "group_sequential"}),
     "plan.yaml: stages[0].max_exposures: group_sequential error control needs"),
])
def test_invalid_plans_name_the_yaml_path(tmp_path, change, expected):
    path = write(tmp_path, edited(change))
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(path.replace("plan.yaml", "")) and expected in message
    assert "\n" not in message


def test_several_problems_are_counted_on_one_line(tmp_path):
    data = edited(lambda d: (d.__setitem__("alpha", 2), d["stages"][3].__setitem__("name",
                                                                                   "canary")))
    with pytest.raises(ConfigError, match=r"alpha: .* \(1 more problem\)"):
        parse_plan(data, "plan.yaml")


def test_unreadable_plans(tmp_path):
    with pytest.raises(ConfigError, match="no such plan file"):
        load_plan(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: line"):
        load_plan(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the plan is empty"):
        load_plan(empty)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_plan(listed)


def test_json_schema_is_exported_from_the_models():
    schema = plan_schema()
    assert schema["title"] == "RolloutPlan"
    stage = schema["$defs"]["StageSpec"]
    assert stage["properties"]["traffic"]["exclusiveMinimum"] == 0
    assert set(schema["required"]) == {"name", "metrics", "stages"}


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TRAFFIC = st.floats(min_value=0.001, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(TRAFFIC, min_size=1, max_size=6))
def test_any_decrease_in_traffic_is_named_at_its_first_stage(shares):
    data = {"name": "p", "metrics": [{"name": "harm", "guardrail": 0.01}],
            "stages": [{"name": f"s{i}", "traffic": t} for i, t in enumerate(shares)]}
    first_drop = next((i for i in range(1, len(shares)) if shares[i] < shares[i - 1]), None)
    if first_drop is None:
        assert len(parse_plan(data).stages) == len(shares)
    else:
        with pytest.raises(ConfigError, match=rf"^plan: stages\[{first_drop}\]\.traffic: "):
            parse_plan(data)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(allow_nan=True), st.integers(-5, 5),
                st.sampled_from(["", "five", "5%", None, [], {}])))
def test_alpha_outside_the_unit_interval_is_always_refused(alpha):
    data = {"name": "p", "alpha": alpha, "metrics": [{"name": "harm", "guardrail": 0.01}],
            "stages": [{"name": "s", "traffic": 0.5}]}
    ok = isinstance(alpha, int | float) and 0 < float(alpha) < 1
    if ok:
        assert parse_plan(data).alpha == float(alpha)
    else:
        with pytest.raises(ConfigError, match=r"^plan: alpha: "):
            parse_plan(data)
