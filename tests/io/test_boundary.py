"""The shared input boundary: depth, size, string, finite-number and int64-step limits."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError, InputError
from scaleguard.io import (
    INT64_MAX,
    MAX_DEPTH,
    as_finite,
    as_step,
    check_document,
    document_problem,
    dumps_json,
    load_json,
    load_yaml,
    read_text,
    read_yaml,
)


def test_deep_yaml_is_refused_before_the_recursive_composer(tmp_path):
    # Issue #13: plan_yaml of 20,000 nested brackets gave RecursionError.
    path = tmp_path / "plan.yaml"
    path.write_text("[" * 20_000 + "]" * 20_000)
    with pytest.raises(ConfigError, match=r"plan.yaml: line 1: nested more than 64 levels"):
        read_yaml(path, "plan")
    path.write_text("x: 1\na: " + "[" * 500 + "]" * 500)
    with pytest.raises(ConfigError, match=r"plan.yaml: line 2: nested more than 64 levels"):
        read_yaml(path, "plan")


def test_deep_json_is_refused_with_one_line():
    with pytest.raises(InputError, match="nested more than"):
        load_json("[" * 100_000 + "]" * 100_000, "body")
    with pytest.raises(InputError, match=r"body: (\[0\])+: nested more than 64"):
        load_json("[" * 260 + "]" * 260, "body")


def test_yaml_alias_bomb_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match="more than 1,000,000 values"):
        load_yaml("\n".join(lines), "bomb.yaml")


def test_lone_surrogates_nan_and_huge_ints_are_named_by_path():
    assert document_problem({"tags": ["ok", "\ud800"]}) == (
        "tags[1]", "contains a lone surrogate (U+D800) at character 0, not valid Unicode")
    assert document_problem({"x": {"\udfff": 1}})[1].startswith("key contains a lone")
    assert document_problem({"lr": math.inf}) == ("lr", "inf is not a finite number")
    assert document_problem({"lr": math.inf}, finite=False) is None
    assert "64-bit integer" in document_problem({"n": 10**400})[1]
    with pytest.raises(ConfigError, match="^run: lr: inf is not a finite number$"):
        check_document({"lr": math.inf}, "run")


def test_non_utf8_folder_missing_and_oversized_files(tmp_path):
    bad = tmp_path / "hw.yaml"
    bad.write_bytes(b"gpus:\n  name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"hw.yaml: line 2, column 9: not UTF-8 text"):
        read_text(bad, "hardware")
    with pytest.raises(ConfigError, match="is a folder, expected a plan file"):
        read_text(tmp_path, "plan")
    with pytest.raises(ConfigError, match="no such plan file"):
        read_text(tmp_path / "nope.yaml", "plan")
    big = tmp_path / "big.yaml"
    big.write_text("x" * 2_000)
    with pytest.raises(ConfigError, match="more than the 1,000 a plan file may have"):
        read_text(big, "plan", max_bytes=1_000)


@pytest.mark.parametrize("raw", [2**63, "100000000000000000000", "inf", math.nan, -1, 1.5,
                                 True, "9223372036854775808", "1e400", 10**400])
def test_steps_outside_int64_are_refused(raw):
    # Issue #13: a step >= 2**63 was stored as -9223372036854775808.
    with pytest.raises(InputError, match="expected a whole number from 0 to 2\\*\\*63 - 1"):
        as_step(raw)


def test_steps_are_exact_above_2_53():
    assert as_step("9007199254740993") == 9007199254740993
    assert as_step(INT64_MAX) == INT64_MAX
    assert as_step(" 7 ") == 7


def test_as_finite_names_overflow():
    with pytest.raises(InputError, match="beyond the float64 range"):
        as_finite(10**400, "loss")
    with pytest.raises(InputError, match="expected a finite number"):
        as_finite("nan", "lr")
    assert as_finite("-inf", allow_nonfinite=True) == -math.inf


def test_dumps_json_never_writes_nan_or_infinity():
    text = dumps_json({"a": [math.inf, -math.inf, math.nan, 1.0]}, indent=2)
    assert json.loads(text) == {"a": ["inf", "-inf", "nan", 1.0]}
    assert "Infinity" not in text and "NaN" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_what_passes_the_boundary_round_trips_through_strict_json(value):
    if document_problem(value) is None:
        text = json.dumps(value, allow_nan=False)
        assert json.loads(text) == value
        text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused_in_one_line(text):
    for load in (load_yaml, load_json):
        try:
            load(text, "doc")
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("doc")


def test_depth_limit_is_documented_and_generous():
    assert 16 <= MAX_DEPTH < 200
    nested: object = 1
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert document_problem(nested) is None
