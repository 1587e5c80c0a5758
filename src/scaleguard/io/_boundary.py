"""The one input boundary: limits every reader applies before a value goes any further.

Hostile or broken input (a file nested 20,000 brackets deep, a lone surrogate, a step of 2**63,
``1e308k``, a binary file where text was expected) must become a one-line error naming the file,
line or field, never a RecursionError, an OverflowError or a row that the store can write but
not read back. Every reader — YAML configs, JSON bodies, metric logs, tables — goes through the
checks here, so that all of them refuse the same things with the same words.

The limits:

- nesting depth of a document: :data:`MAX_DEPTH` (real configs nest four or five levels);
- values in a document: :data:`MAX_VALUES` (also bounds YAML alias expansion, "billion laughs");
- text files read whole: :data:`MAX_TEXT_BYTES`;
- strings: valid Unicode (no lone surrogates: UTF-8, DuckDB and PostgreSQL cannot hold them);
- numbers: finite where they are stored as JSON or used as quantities;
- steps: whole numbers in ``[0, 2**63 - 1]`` (a BIGINT; larger ones would wrap around).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scaleguard.errors import ConfigError, InputError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_TEXT_BYTES",
    "MAX_VALUES",
    "as_finite",
    "as_step",
    "check_document",
    "document_problem",
    "dumps_json",
    "jsonable",
    "load_json",
    "load_yaml",
    "read_text",
    "shown",
    "text_problem",
    "utf8_problem",
    "yaml_path",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 64  # far beyond any real config, far below Python's recursion limit (1,000)
MAX_VALUES = 1_000_000  # scalars and containers visited in one document
MAX_TEXT_BYTES = 16 * 2**20  # a plan, study or hardware file is a few kilobytes
_SHOWN_CHARS = 40


def yaml_path(loc: Sequence[int | str]) -> str:
    """``("stages", 2, "traffic")`` -> ``'stages[2].traffic'``; empty -> ``'(top level)'``.

    >>> yaml_path(("stages", 2, "traffic")), yaml_path(())
    ('stages[2].traffic', '(top level)')
    """
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """A short, always printable ``repr`` of ``value`` for an error message.

    Huge integers (``repr`` refuses more than 4,300 digits) and long strings are cut, lone
    surrogates are escaped.

    >>> shown(10**400 - 1)
    '999999999999999999999999...(400 digits)'
    >>> shown("\\ud800")
    "'\\\\ud800'"
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        try:
            digits = str(abs(value))
        except ValueError:  # more digits than Python prints: say roughly how many
            return f"an integer of about {int(value.bit_length() * math.log10(2)):,} digits"
        return f"{'-' if value < 0 else ''}{digits[:limit - 16]}...({len(digits)} digits)"
    text = repr(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as UTF-8 text by every store, or None when it can.

    A NUL character is valid UTF-8 but PostgreSQL's text columns refuse it: a name holding one
    would be a 500 at the database (and a lookup by it too), so it is refused here, on every
    backend alike.

    >>> text_problem("loss"), text_problem("a\\ud800")
    (None, 'contains a lone surrogate (U+D800) at character 1, not valid Unicode')
    >>> text_problem("a\\x00b")
    'contains a NUL character (U+0000) at character 1, which no store can hold as text'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"contains a lone surrogate (U+{ord(text[exc.start]):04X}) at character "
                f"{exc.start}, not valid Unicode")
    nul = text.find("\x00")
    if nul >= 0:
        return (f"contains a NUL character (U+0000) at character {nul}, which no store can "
                "hold as text")
    return None


def _scalar_problem(value: object, finite: bool, int64: bool = True) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | np.integer):
        return None if not int64 or INT64_MIN <= value <= INT64_MAX else \
            f"{shown(value)} is outside the 64-bit integer range"
    if isinstance(value, float | np.floating):
        return None if not finite or math.isfinite(value) else \
            f"{value!r} is not a finite number"
    return None


def document_problem(value: Any, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES,
                     finite: bool = True, int64: bool = True) -> tuple[str, str] | None:
    """The first place where ``value`` (parsed JSON/YAML) breaks a limit, as (path, reason).

    Walks without recursion, so that the check itself cannot overflow the stack; ``finite``
    refuses NaN and infinity (JSON has neither), ``int64`` integers outside 64 bits.

    >>> document_problem({"a": [1, {"b": float("nan")}]})
    ('a[1].b', 'nan is not a finite number')
    >>> document_problem([[[]]], max_depth=2)
    ('[0][0]', 'nested more than 2 levels deep')
    """
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(value, ())]
    visited = 0
    while stack:
        item, path = stack.pop()
        visited += 1
        if visited > max_values:
            return yaml_path(path), f"more than {max_values:,} values (aliases expanding?)"
        if isinstance(item, Mapping | list | tuple):
            if len(path) >= max_depth:
                return yaml_path(path), f"nested more than {max_depth} levels deep"
            if isinstance(item, Mapping):
                for key, child in item.items():
                    if not isinstance(key, str | int | float | bool) and key is not None:
                        return yaml_path(path), f"key {shown(key)} is not a string or number"
                    problem = _scalar_problem(key, finite, int64)
                    if problem:
                        return yaml_path((*path, shown(key))), f"key {problem}"
                    stack.append((child, (*path, str(key))))
            else:
                stack.extend((child, (*path, i)) for i, child in enumerate(item))
            continue
        problem = _scalar_problem(item, finite, int64)
        if problem:
            return yaml_path(path), problem
    return None


def check_document(value: Any, source: str, *, error: type[InputError] = ConfigError,
                   finite: bool = True, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` unchanged, or ``error('<source>: <path>: <reason>')`` at its first problem."""
    problem = document_problem(value, finite=finite, max_depth=max_depth)
    if problem is not None:
        raise error(f"{source}: {problem[0]}: {problem[1]}")
    return value


def as_step(raw: object, where: str = "step") -> int:
    """``raw`` as a step: a whole number in ``[0, 2**63 - 1]``; InputError otherwise.

    Integers and integer text are taken exactly (a float above 2**53 is not a whole number
    any more, so ``"9007199254740993"`` must not go through float).

    >>> as_step("12"), as_step(3.0), as_step(2**63 - 1)
    (12, 3, 9223372036854775807)
    >>> as_step(2**63)
    Traceback (most recent call last):
    ...
    scaleguard.errors.InputError: step is 9223372036854775808, expected a whole number \
from 0 to 2**63 - 1
    """
    if type(raw) is int and 0 <= raw <= INT64_MAX:  # the common case, on run.log's hot path
        return raw
    expected = f"{where} is {shown(raw)}, expected a whole number from 0 to 2**63 - 1"
    if isinstance(raw, bool):
        raise InputError(expected)
    value: int | None = None
    if isinstance(raw, int | np.integer):
        value = int(raw)
    elif isinstance(raw, float | np.floating):
        value = int(raw) if math.isfinite(raw) and raw == int(raw) else None
    elif isinstance(raw, str):
        text = raw.strip()
        if len(text) <= 20 and text.isascii() and text.isdigit():
            value = int(text)
        else:
            try:
                number = as_finite(text, where, allow_nonfinite=True) if len(text) <= 64 \
                    else math.nan
            except InputError:
                number = math.nan
            value = int(number) if math.isfinite(number) and number == int(number) else None
    if value is None or not 0 <= value <= INT64_MAX:
        raise InputError(expected)
    return value


def as_finite(raw: object, where: str = "value", *, allow_nonfinite: bool = False) -> float:
    """``raw`` (number or number text) as a float64; InputError when it is not a number, is
    out of the float64 range (``10**400``), or is NaN/infinite (unless ``allow_nonfinite``).

    >>> as_finite("2.5"), as_finite(float("inf"), allow_nonfinite=True)
    (2.5, inf)
    >>> as_finite(10**400)
    Traceback (most recent call last):
    ...
    scaleguard.errors.InputError: value is 100000000000000000000000...(401 digits), beyond \
the float64 range
    """
    if type(raw) is float:  # the common case, on run.log's hot path
        if allow_nonfinite or math.isfinite(raw):
            return raw
        raise InputError(f"{where} is {shown(raw)}, expected a finite number")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | np.number):
        raise InputError(f"{where} is {shown(raw)}, expected a number")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except OverflowError:
        raise InputError(f"{where} is {shown(raw)}, beyond the float64 range") from None
    except ValueError:
        raise InputError(f"{where} is {shown(raw)}, expected a number") from None
    if not allow_nonfinite and not math.isfinite(value):
        raise InputError(f"{where} is {shown(raw)}, expected a finite number")
    return value


def read_text(path: str | Path, what: str = "file", *, max_bytes: int = MAX_TEXT_BYTES,
              error: type[InputError] = ConfigError) -> str:
    """The UTF-8 text of ``path``, or one line saying why not (missing, a folder, too large,
    not UTF-8 — with the line and column of the first bad byte)."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder, expected a {what} file")
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: the {what} file is {size:,} bytes, more than the "
                        f"{max_bytes:,} a {what} file may have")
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {utf8_problem(data, exc)}; save the {what} file as UTF-8"
                    ) from None


def utf8_problem(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where ``data`` stops being UTF-8: ``'line 3, column 7: not UTF-8 text (byte 0xff)'``."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"line {line}, column {column}: not UTF-8 text (byte 0x{data[exc.start]:02x})"


def _yaml_depth_problem(text: str, max_depth: int) -> str | None:
    # The parser emits events without recursion; the composer after it recurses once per
    # level, so the depth is bounded here, before composing.
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                line = event.start_mark.line + 1 if event.start_mark is not None else 1
                return f"line {line}: nested more than {max_depth} levels deep"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def load_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH,
              error: type[InputError] = ConfigError) -> Any:
    """Parse YAML (or JSON) text within the limits; ``source`` names it in messages."""
    try:
        problem = _yaml_depth_problem(text, max_depth)
        if problem is not None:
            raise error(f"{source}: {problem}")
        # The pure-Python loader: its error marks point at the line at fault (libyaml's at
        # the end of the input), and configs are a few kilobytes.
        data = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise error(f"{source}: {where}not valid YAML ({reason})") from None
    except (RecursionError, MemoryError):
        raise error(f"{source}: too deeply nested or too large to read") from None
    return check_document(data, source, error=error, max_depth=max_depth)


def load_json(text: str | bytes, source: str, *, max_depth: int = MAX_DEPTH,
              error: type[InputError] = InputError, finite: bool = True) -> Any:
    """Parse JSON text within the limits; the literals NaN and Infinity (which Python writes,
    JSON does not have) are refused unless ``finite`` is false."""
    def refuse_constant(name: str) -> Any:
        raise error(f"{source}: {name} is not a JSON number")

    try:
        data = json.loads(text, parse_constant=refuse_constant if finite else None)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno})") from None
    except UnicodeDecodeError:
        raise error(f"{source}: not UTF-8 text") from None
    except (RecursionError, MemoryError):
        raise error(f"{source}: nested more than {max_depth} levels deep") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise error(f"{source}: {exc}") from None
    return check_document(data, source, error=error, max_depth=max_depth, finite=finite)


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name, recursively (JSON has no
    NaN or infinity; ``"nan"``, ``"inf"`` and ``"-inf"`` are how scaleguard spells them).

    >>> jsonable({"loss": [1.5, float("nan")], "peak": float("inf")})
    {'loss': [1.5, 'nan'], 'peak': 'inf'}
    """
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps_json(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (non-finite floats spelled as strings, never ``NaN``)."""
    try:
        return json.dumps(value, indent=indent, allow_nan=False, default=str)
    except ValueError:  # a NaN somewhere deep: walk it only when needed (rare)
        return json.dumps(jsonable(value), indent=indent, allow_nan=False, default=str)
