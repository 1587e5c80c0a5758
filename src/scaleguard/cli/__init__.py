"""The ``scaleguard`` command line: one thin layer over the library.

Each command lives in its own module and registers itself on :data:`app` when imported.
:func:`main` imports only the module that the command line names (``scaleguard resources
--help`` does not import ``fit`` or ``monitor``), so every command starts fast; the map from
command to module is ``scaleguard.cli._app.COMMAND_MODULES``.
"""

from scaleguard.cli._app import app, load_commands, main, run

__all__ = ["app", "load_commands", "main", "run"]
