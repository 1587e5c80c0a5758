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


# Each of these costs tens of milliseconds or more to import, and --help needs none of them.
# (pydantic is not here: typer itself imports it to convert Path and similar parameters.)
HEAVY_MODULES = ("pandas", "scipy", "numpy", "pyarrow", "yaml", "duckdb", "plotly", "torch",
                 "ray", "fastapi", "httpx")


def test_help_of_every_command_imports_no_heavy_module():
    """`import scaleguard` and each command's --help run without pandas, scipy, numpy..."""
    code = f"""
import contextlib, io, sys
heavy = {HEAVY_MODULES!r}
def loaded():
    return sorted(set(heavy) & {{m.split('.')[0] for m in sys.modules}})
import scaleguard
assert not loaded(), ('import scaleguard', loaded())
from scaleguard.cli import main
from scaleguard.cli._app import command_paths
paths = command_paths()
assert len(paths) > 20, paths
for path in paths:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main([*path, '--help']) == 0, path
    assert 'Usage' in out.getvalue(), path
    assert not loaded(), (path, loaded())
print('ok', len(paths))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_fit_help_names_every_law_family():
    """fit spells the families for --help without importing scaleguard.laws: they must agree."""
    from scaleguard.cli.fit import FORM_NAMES
    from scaleguard.laws import FORMS

    assert tuple(FORM_NAMES) == tuple(FORMS)


def test_help_has_no_type_placeholders_or_cut_text(capsys):
    """Every --help reads as prose: NAME for a value, no <str>/<list[str]>/{file}, no "..."."""
    import re

    from scaleguard.cli._app import command_paths

    for path in command_paths():
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        where = " ".join(["scaleguard", *path])
        assert not re.search(r"<[a-z_]+(\[[a-z_, ]+\])?>", out), (where, out)
        assert not re.search(r"\{[a-z_]+\}", out), (where, out)
        assert "..." not in out.replace("COMMAND [ARGS]...", ""), (where, out)
        assert max(map(len, out.splitlines())) <= 80, where


def test_help_keeps_square_brackets(capsys):
    """'scaleguard[energy]' is an extra's name, not markup to swallow."""
    assert main(["resources", "energy", "--help"]) == 0
    assert "scaleguard[energy]" in capsys.readouterr().out


def test_arguments_and_flags_read_like_click(capsys):
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: scaleguard fit [OPTIONS] FILE" in out
    assert "--form FORM" in out and "--json " in out


def test_command_modules_map_names_every_command_and_loads_only_what_is_asked():
    """`main` imports only the module of the command it runs (issue #18: startup); the map it
    uses must name exactly the top-level commands the modules register."""
    import subprocess
    import sys

    from scaleguard.cli._app import COMMAND_MODULES, command_paths

    top = {path[0] for path in command_paths() if len(path) == 1}
    assert top == set(COMMAND_MODULES)
    code = ("import sys; from scaleguard.cli import main; main(['resources', '--help']);"
            "print(sorted(m for m in sys.modules if m.startswith('scaleguard.cli.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "scaleguard.cli.resources" in loaded
    assert "scaleguard.cli.fit" not in loaded and "scaleguard.cli.monitor" not in loaded
