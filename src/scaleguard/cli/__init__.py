"""The ``scaleguard`` command line: one thin layer over the library.

Each command lives in its own module and registers itself on :data:`app` when imported here.
"""

from scaleguard.cli._app import app, main, run

# Command modules: importing them registers their commands (one line each, keep sorted).
from scaleguard.cli import assess as _assess  # noqa: E402,F401  isort: skip
from scaleguard.cli import demo as _demo  # noqa: E402,F401  isort: skip
from scaleguard.cli import fit as _fit  # noqa: E402,F401  isort: skip
from scaleguard.cli import inspect as _inspect  # noqa: E402,F401  isort: skip
from scaleguard.cli import ladder as _ladder  # noqa: E402,F401  isort: skip
from scaleguard.cli import monitor as _monitor  # noqa: E402,F401  isort: skip
from scaleguard.cli import resources as _resources  # noqa: E402,F401  isort: skip
from scaleguard.cli import safety as _safety  # noqa: E402,F401  isort: skip
from scaleguard.cli import serve as _serve  # noqa: E402,F401  isort: skip

__all__ = ["app", "main", "run"]
