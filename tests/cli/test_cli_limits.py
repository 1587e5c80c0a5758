"""Issue #13 regressions in the CLI: one line, exit 2, no traceback, no hang."""

from __future__ import annotations

import math

import pytest

from scaleguard.cli import main
from scaleguard.cli._options import print_json


def _fails_in_one_line(argv, capsys, *expected):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in expected:
        assert part in err, err


def test_output_and_watched_paths_that_are_folders(tmp_path, capsys):
    ladder = tmp_path / "ladder.csv"
    ladder.write_text("params,tokens,loss\n1e6,2e7,4\n")
    _fails_in_one_line(["fit", ladder, "--plot", tmp_path], capsys, "--plot", "is a folder")
    folder = tmp_path / "log.csv"
    folder.mkdir()
    _fails_in_one_line(["monitor", "watch", folder, "--duration", "0.1"], capsys,
                       "is a folder")


@pytest.mark.parametrize("duration", ["nan", "-1"])
def test_watch_refuses_a_duration_that_never_ends(tmp_path, capsys, duration):
    log = tmp_path / "log.csv"
    log.write_text("step,loss\n1,2\n")
    _fails_in_one_line(["monitor", "watch", log, "--duration", duration], capsys, "--duration")


def test_json_output_is_strict_json(capsys):
    # Was: --json printed Infinity and NaN, which JSON readers refuse.
    import json

    print_json({"bound": math.inf, "values": [math.nan, -math.inf, 1.5]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"bound": "inf", "values": ["nan", "-inf", 1.5]}


def test_overflowing_quantities_name_the_option(capsys):
    _fails_in_one_line(["safety", "bound", "--failures", "0", "--trials", "1e308k"], capsys,
                       "--trials: '1e308k' is too large")


NOT_UTF8 = b"name: \xff\xfe\n"
DEEP = "a: " + "[" * 5_000 + "]" * 5_000 + "\n"


@pytest.mark.parametrize("content, expected", [(NOT_UTF8, "not UTF-8 text"),
                                               (DEEP, "nested more than 64 levels deep")])
def test_hardware_files_model_configs_and_states_are_read_within_limits(tmp_path, capsys,
                                                                         content, expected):
    # Was: UnicodeDecodeError / RecursionError tracebacks.
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    plan = ["resources", "plan", "--gpu", "h100-sxm", "--gpus", "8", "--global-batch", "64"]
    _fails_in_one_line([*plan, "--model", "llama-3-8b", "--hardware-file", bad], capsys,
                       str(bad), expected)
    config = tmp_path / "config.json"
    config.write_bytes(b'{"hidden_size": \xff}' if isinstance(content, bytes)
                       else ('{"a": ' + "[" * 5_000 + "]" * 5_000 + "}").encode())
    _fails_in_one_line([*plan, "--config", config], capsys, str(config), expected)


def test_a_state_file_that_is_not_utf8_is_one_line(tmp_path):
    from scaleguard.errors import ConfigError
    from scaleguard.safety import FileRolloutStore

    (tmp_path / "state.json").write_bytes(b'{"plan": "\xff"}')
    with pytest.raises(ConfigError, match=r"state.json: line 1, column 11: not UTF-8"):
        FileRolloutStore(tmp_path).load_state()


@pytest.mark.parametrize("argv, expected", [
    (["safety", "bound", "--failures", "0", "--trials", "1.8446744076577247e+19"],
     "--trials: expected a whole number"),  # was: TypeError from scipy's beta ppf
    (["resources", "train", "--params", "8B", "--tokens", "1T", "--gpu", "h100-sxm", "--gpus",
      "1e300", "--mfu", "0.4"], "--gpus: expected at most"),  # was: "device_hours: ... 0.0"
    (["resources", "train", "--params", "1e300", "--tokens", "1e300", "--gpu", "h100-sxm",
      "--gpus", "8", "--mfu", "0.4"], "--tokens: the training compute"),  # was: "flops: ..."
])
def test_messages_name_the_options_typed(capsys, argv, expected):
    _fails_in_one_line(argv, capsys, expected)


def test_the_machine_limits_are_one_line_not_a_traceback(monkeypatch, capsys):
    # The net under the readers' own bounds: a RecursionError or MemoryError from deep inside a
    # command is still one line and status 2.
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("scaleguard.io.read_table", exhausted)
    _fails_in_one_line(["inspect", "any.csv"], capsys, "too large to process (MemoryError)")


@pytest.mark.parametrize("extra, expected", [
    (["--bootstrap", "1000000000"], "--bootstrap: expected 0 (none) or 2 to 100,000"),  # was:
    (["--level", "2"], "--level: expected an interval level in (0, 1)"),  # MemoryError
])
def test_fit_bounds_its_options_before_fitting(tmp_path, capsys, extra, expected):
    ladder = tmp_path / "ladder.csv"
    ladder.write_text("params,tokens,loss\n1e6,2e7,4\n")
    _fails_in_one_line(["fit", ladder, *extra], capsys, expected)


def test_detector_settings_name_the_add_option(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("step,loss\n1,2\n2,1.5\n")
    _fails_in_one_line(["monitor", "check", log, "--add", "spike:loss,sigma=nan"], capsys,
                       "--add 'spike:loss,sigma=nan': sigma: expected a positive number")


def _example_study(tmp_path, replace, new):
    """The example study with one line changed, beside a small ladder it can fit."""
    from importlib import resources

    from tests.fuzz.test_fuzz_cli import LADDER_HEADER, LADDER_ROWS

    text = resources.files("scaleguard.limits").joinpath("examples/study.yaml").read_text()
    (tmp_path / "synthetic_ladder.csv").write_text(
        "\n".join(",".join(row) for row in [LADDER_HEADER, *LADDER_ROWS]) + "\n")
    study = tmp_path / "study.yaml"
    study.write_text(text.replace(replace, new).replace("bootstrap: 24", "bootstrap: 0"))
    return study


@pytest.mark.parametrize("replace, new, expected", [
    ("seq_len: 4096", "seq_len: 4096\n  model: {layers: 32}",
     "hardware.model: missing hidden, heads"),  # was: ModelShape.__init__() missing 5 ...
    ("compute: 1e23", "compute: 1e300", "target.compute: Input should be less than"),  # hang
    ("devices: 1024", "devices: 1000000000", "hardware.devices: Input should be less than"),
    # Found bad late, were: "device: unknown device ..." naming neither the study nor the path.
    ("device: h100-sxm", "device: nonexistent", "hardware.device: unknown device"),
    ("grid_intensity: 367", "grid_intensity: Atlantis", "hardware.grid_intensity: region:"),
])
def test_study_errors_name_the_file_and_the_yaml_path(tmp_path, capsys, replace, new, expected):
    study = _example_study(tmp_path, replace, new)
    _fails_in_one_line(["assess", study], capsys, f"{study}: {expected}")
