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
