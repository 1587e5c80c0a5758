"""The typer application, its error handling and the entry point.

Command modules (``scaleguard.cli.<name>``) import :data:`app` and register their commands on it;
``scaleguard.cli`` imports each of them once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
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
    rich_markup_mode="rich",
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


def command_paths() -> list[list[str]]:
    """Every command and group of the CLI as an argument list, the root (``[]``) first.

    Tests and the startup benchmark walk this to run each command's ``--help``.
    """
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):  # a group's commands
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status (no ``sys.exit``; handy in tests).

    A :class:`ScaleguardError` becomes one line on stderr and status 2. Usage errors keep click's
    message and status 2. Anything else is a bug and propagates with its traceback.
    """
    command = typer.main.get_command(app)
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
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
