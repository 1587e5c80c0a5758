"""Errors that scaleguard raises for bad input.

Every error here carries a one-line message naming the file, row, field or option at fault and
what was expected. The CLI prints the message and exits with status 2; anything that is *not* a
``ScaleguardError`` is a bug and still shows a traceback.
"""

from __future__ import annotations

__all__ = [
    "ScaleguardError",
    "InputError",
    "UnitError",
    "TableError",
    "ConfigError",
    "FitError",
    "StateConflict",
]


class ScaleguardError(Exception):
    """Base class for every error caused by the user's input rather than by a bug."""

    def __str__(self) -> str:
        # One line, always: the CLI prints exactly this and nothing more.
        return " ".join(super().__str__().split())


class InputError(ScaleguardError, ValueError):
    """A value given on the command line or to a function is outside what it accepts."""


class UnitError(InputError):
    """A human quantity such as ``70B`` or ``80GiB`` could not be parsed or has the wrong unit."""


class TableError(InputError):
    """A table file is missing, unreadable, of an unknown format, or has bad rows or columns."""


class ConfigError(InputError):
    """A YAML or JSON configuration (study, rollout plan, ladder spec) is invalid."""


class FitError(ScaleguardError):
    """A fit cannot be made from the data given (too few points, no spread in scale, ...)."""


class StateConflict(ScaleguardError):
    """A well-formed request that what it acts on does not allow now (approving a stage that is
    not waiting for approval, or twice): the service answers 409 and stores nothing."""
