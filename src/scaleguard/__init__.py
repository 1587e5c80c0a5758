"""scaleguard: scale AI systems on evidence.

Fit scaling laws along every dimension, budget the next run, watch it while it trains, widen a
deployment only while its safety properties hold, and name what stops the next step.

The top-level namespace is small on purpose: the components live in their subpackages
(``scaleguard.laws``, ``scaleguard.safety``, ``scaleguard.monitor``, ``scaleguard.resources``,
``scaleguard.limits``) and are imported from there.
"""

import typing

from scaleguard._version import __version__
from scaleguard.errors import (
    ConfigError,
    FitError,
    InputError,
    ScaleguardError,
    TableError,
    UnitError,
)
from scaleguard.units import format_quantity, parse_quantity

if typing.TYPE_CHECKING:
    from scaleguard.io import read_ladder, read_scale_table, read_table

__all__ = [
    "ConfigError",
    "FitError",
    "InputError",
    "ScaleguardError",
    "TableError",
    "UnitError",
    "__version__",
    "format_quantity",
    "parse_quantity",
    "read_ladder",
    "read_scale_table",
    "read_table",
]

# The table readers need pandas (a third of a second to import): they are loaded on first use, so
# that `import scaleguard` and the CLI's --help stay fast (PEP 562 module __getattr__).
_LAZY = {"read_ladder": "scaleguard.io", "read_scale_table": "scaleguard.io",
         "read_table": "scaleguard.io"}


def __getattr__(name: str) -> typing.Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'scaleguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
