"""The typer application, its error handling and the entry point.

Command modules (``scaleguard.cli.<name>``) import :data:`app` and register their commands on it;
:func:`main` imports the one its command line names (:data:`COMMAND_MODULES`), or all of them.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import typer
import typer.main

from scaleguard._version import __version__
from scaleguard.errors import ScaleguardError

__all__ = ["app", "command_paths", "main", "run"]

app = typer.Typer(
    name="scaleguard",
    help="Scale AI systems on evidence: scaling laws, resources, monitoring, safe rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks of real bugs stay plain and complete
    # Plain click-style help: typer's rich help imports rich.markdown and renders panels, which
    # makes a bare --help of a minimal typer app 3-4x slower than `import typer` (issue #18).
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"scaleguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """scaleguard: scale AI systems on evidence."""


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """``command`` and, for a group, every command under it, with their argument paths."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, [*path, name])


class _AsGiven:
    """A typer runtime parameter that passes the value through unchanged."""

    @staticmethod
    def coerce(value: Any, **_: Any) -> Any:
        return value


_AS_GIVEN = _AsGiven()


def _readable_help(command: Any) -> None:
    """Help that reads like a person wrote it, and costs no import, on ``command``.

    typer (0.29) writes each option's Python type (``--store <str>``, ``--json <bool>``) and a
    required argument as ``{file}``; we write ``--store STORE``, ``--json`` and ``FILE``, as click
    and argparse do. The command lists show each command's whole first paragraph (wrapped)
    instead of cutting it at 45 characters with "...".
    """
    if command.help and not command.short_help:
        command.short_help = inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " ")
    # --help itself is made on first use and cached; make it now (click asks the context only
    # for the help option's names) so that it gets the same treatment.
    help_option = command.get_help_option(SimpleNamespace(help_option_names=["--help"]))
    if help_option is not None:
        # typer converts every parameter's value through pydantic, imported on first use (a
        # tenth of a second); --help is a plain flag, given (True) or not (None), and needs none.
        help_option._runtime_param = _AS_GIVEN
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
            # Instance attributes shadow typer's methods of the same names (see above).
            param.display_type_rich = lambda ctx: None  # no "<path>" after the name
            param._usage_display_name = (lambda p=param: p.metavar if p.required
                                         else f"[{p.metavar}]")
        elif param.metavar is None:
            param.metavar = "" if getattr(param, "is_flag", False) else param.name.upper()


# Each top-level command and the module that registers it. `main` imports only the module its
# command line names: importing all nine costs ~45 ms, as much as typer itself (issue #18).
# tests/cli/test_app.py checks this map against the commands the modules register.
COMMAND_MODULES: dict[str, str] = {
    "assess": "assess", "demo": "demo", "fit": "fit", "inspect": "inspect",
    "ladder": "ladder", "monitor": "monitor", "resources": "resources",
    "rollout": "safety", "safety": "safety", "serve": "serve", "token": "serve",
}


def load_commands(argv: Sequence[str] | None = None) -> None:
    """Register the commands ``argv`` needs: its command's module, or every module when it
    names none (``--help``, ``--version``, a typo that deserves the full list)."""
    words = [word for word in (argv if argv is not None else sys.argv[1:])
             if not word.startswith("-")]
    first = words[0] if words else None
    names = [COMMAND_MODULES[first]] if first in COMMAND_MODULES \
        else sorted(set(COMMAND_MODULES.values()))
    for name in names:
        importlib.import_module(f"scaleguard.cli.{name}")


def build_command() -> Any:
    """The click command behind :data:`app`, with readable help on every command."""
    root = typer.main.get_command(app)
    for _, command in _commands(root, []):
        _readable_help(command)
    return root


def command_paths() -> list[list[str]]:
    """Every command and group of the CLI as an argument list, the root (``[]``) first.

    Tests and the startup benchmark walk this to run each command's ``--help``.
    """
    load_commands([])
    return [path for path, _ in _commands(typer.main.get_command(app), [])]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status (no ``sys.exit``; handy in tests).

    A :class:`ScaleguardError` becomes one line on stderr and status 2. Usage errors keep click's
    message and status 2. So do the two limits of the machine rather than of the code — an
    input nested deeper than the interpreter's stack or larger than its memory — which the
    readers bound up front; this is the net under them. Anything else is a bug and propagates
    with its traceback.
    """
    load_commands(argv)
    command = build_command()
    try:
        # Standalone mode: click handles --help, usage errors (status 2) and Ctrl-C itself and
        # ends with SystemExit; only exceptions from our own code come through.
        command.main(args=list(argv) if argv is not None else None, prog_name="scaleguard",
                     standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")
        return 1
    except ScaleguardError as exc:
        sys.stderr.write(f"scaleguard: error: {exc}\n")
        return 2
    except (RecursionError, MemoryError) as exc:
        what = "too deeply nested" if isinstance(exc, RecursionError) else "too large"
        sys.stderr.write(f"scaleguard: error: the input is {what} to process "
                         f"({type(exc).__name__})\n")
        return 2
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
