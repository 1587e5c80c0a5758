"""Read YAML configuration files (studies, rollout plans, ladder specs) into pydantic models.

One place turns a missing file, bad YAML or the first pydantic error into a one-line
:class:`~scaleguard.errors.ConfigError` naming the file and the YAML path of the bad field
(``plan.yaml: stages[2].traffic: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scaleguard.errors import ConfigError
from scaleguard.io._boundary import load_yaml, read_text, shown, yaml_path

__all__ = ["read_yaml", "validate_config", "yaml_path"]

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML (or JSON) file within the input limits; ``what`` ("plan", "study", ...)
    names it in messages."""
    data = load_yaml(read_text(path, what), str(path))
    if data is None:
        raise ConfigError(f"{path}: the {what} is empty")
    return data


def validate_config(model: type[M], data: Any, source: str, *, expected: str = "a mapping") -> M:
    """Validate ``data`` as ``model``; the first problem becomes a one-line ConfigError.

    >>> from pydantic import BaseModel
    >>> class Plan(BaseModel):
    ...     traffic: list[float]
    >>> validate_config(Plan, {"traffic": [0.01, "lots"]}, "plan.yaml")
    Traceback (most recent call last):
    ...
    scaleguard.errors.ConfigError: plan.yaml: traffic[1]: Input should be a valid number, \
unable to parse string as a number (got 'lots')
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected {expected} at the top level, "
                          f"got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "missing required field"
        value = error.get("input")
        got = "" if error["type"] in ("missing", "extra_forbidden") \
            or isinstance(value, dict | list) else f" (got {shown(value, 60)})"
        more = exc.error_count() - 1
        tail = f" ({more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {yaml_path(tuple(error['loc']))}: {message}{got}{tail}"
                          ) from None
