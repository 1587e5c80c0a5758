"""scaleguard: scale AI systems on evidence.

Fit scaling laws along every dimension, budget the next run, watch it while it trains, widen a
deployment only while its safety properties hold, and name what stops the next step.

The top-level namespace is small on purpose: the components live in their subpackages
(``scaleguard.laws``, ``scaleguard.safety``, ``scaleguard.monitor``, ``scaleguard.resources``,
``scaleguard.limits``) and are imported from there.
"""

from scaleguard._version import __version__
from scaleguard.errors import (
    ConfigError,
    FitError,
    InputError,
    ScaleguardError,
    TableError,
    UnitError,
)
from scaleguard.io import read_ladder, read_scale_table, read_table
from scaleguard.units import format_quantity, parse_quantity

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
