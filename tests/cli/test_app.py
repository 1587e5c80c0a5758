import subprocess
import sys

from scaleguard import __version__
from scaleguard.cli import main


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"scaleguard {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "inspect" in out


def test_usage_error_is_status_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_bad_input_is_one_line_and_status_2_from_the_console_script(tmp_path):
    """Through the installed entry point: exit 2, one line on stderr, no traceback."""
    bad = tmp_path / "bad.csv"
    bad.write_text("params,tokens,loss\n1e8,2e9,3\n-1,2e9,3\n")
    done = subprocess.run([sys.executable, "-c", "from scaleguard.cli import run; run()",
                           "inspect", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("scaleguard: error: ")
    assert "bad.csv: row 2 (line 3): column 'params'" in lines[0]
    assert "Traceback" not in done.stderr
