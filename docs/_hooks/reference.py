"""MkDocs hook: the file-format and CLI references, generated from the code at every build.

A page holds a marker such as ``<!-- reference:study -->`` or ``<!-- reference:cli -->``; the hook
replaces it with tables made from the pydantic models (their fields, types, defaults and
descriptions) or with the help of every command, so the reference cannot drift from the code.
``tests/test_docs.py`` checks that every field of every model appears in what it generates.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

MARKER = re.compile(r"<!-- reference:([a-z_]+) -->")


def _models() -> dict[str, tuple[type[BaseModel], str]]:
    """Each format: its model and the name its keys start with in the docs (empty: top level)."""
    from scaleguard.ladder._spec import LadderSpec
    from scaleguard.limits._study import Study
    from scaleguard.resources._hardware import _DeviceSpec
    from scaleguard.safety._plan import RolloutPlan

    return {"study": (Study, ""), "plan": (RolloutPlan, ""), "ladder": (LadderSpec, ""),
            "hardware": (_DeviceSpec, "devices.KEY.")}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else schema


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON-schema type in words: ``number``, ``list of text``, ``one of `a`, `b` ``."""
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        kinds = [_type(s, defs) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return "one of " + ", ".join(f"`{v}`" for v in values)
    kind = schema.get("type")
    if kind == "array":
        return "list of " + _type(schema.get("items", {}), defs)
    if kind == "object" and "properties" in schema:
        return "section"
    if kind == "object":
        values = schema.get("additionalProperties")
        return "mapping" + (f" of {_type(values, defs)}" if isinstance(values, dict) else "")
    words = {"string": "text", "number": "number", "integer": "integer", "boolean": "true/false"}
    return words.get(kind or "", kind or "any")


def _section(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The nested model a field holds (directly, optionally or as list items), if any."""
    for option in [schema, *schema.get("anyOf", [])]:
        option = _resolve(option, defs)
        if option.get("type") == "array":
            option = _resolve(option.get("items", {}), defs)
        if "properties" in option:
            return option
    return None


def field_rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of every field of ``model``, nested ones dotted."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    rows: list[tuple[str, str, str, str]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        required = set(node.get("required", ()))
        for name, field in node.get("properties", {}).items():
            if name == "base_dir":
                continue  # set by the loader, refused in a file
            key = f"{path}{name}"
            nested = _section(field, defs)
            default = ("required" if name in required else
                       f"`{field['default']}`" if field.get("default") not in (None, {}, [])
                       else "")
            is_list = _resolve(field, defs).get("type") == "array" or any(
                _resolve(s, defs).get("type") == "array" for s in field.get("anyOf", []))
            description = field.get("description") or (nested or {}).get("description", "")
            rows.append((key, "list of sections" if nested and is_list else
                         "section" if nested else _type(field, defs), default,
                         " ".join(description.split())))
            if nested is not None:
                walk(nested, f"{key}[]." if is_list else f"{key}.")

    walk(schema, prefix)
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_reference(name: str) -> str:
    """The key table of one file format (``study``, ``plan``, ``ladder``, ``hardware``)."""
    model, prefix = _models()[name]
    rows = [(f"`{key}`", kind, default, text) for key, kind, default, text
            in field_rows(model, prefix)]
    return _table(("key", "type", "default", "what it is"), rows)


def observations_reference() -> str:
    """The columns of a rollout observations table, from the checks that read it."""
    from scaleguard.safety._observations import _COLUMNS, ARMS

    by_column: dict[str, list[str]] = {}
    for kind, columns in _COLUMNS.items():
        for column in columns:
            by_column.setdefault(column, []).append(kind)
    rows = [("`stage`", "required", "the plan's stage the row was observed in"),
            ("`arm`", "required", "one of " + ", ".join(f"`{a}`" for a in ARMS)),
            ("`metric`", "required", "a metric name of the plan"),
            ("one column per segment dimension", "required when the plan has segments",
             "e.g. `region`, `tier`: the segment value of the row")]
    rows += [(f"`{column}`", "for " + " and ".join(kinds) + " metrics",
              {"exposures": "exposures in the window", "events": "events among them (for a "
               "quantile metric: exposures whose value exceeded the guardrail)",
               "n": "observations in the window", "mean": "their mean",
               "var": "their variance"}.get(column, ""))
             for column, kinds in by_column.items()]
    rows += [("`time`", "optional", "ISO 8601 or Unix seconds; late data never advance"),
             ("`window`", "optional", "id of the window the row summarises; a repeated "
              "window counts once"),
             ("`units`", "optional", "units (users, sessions) whose first exposure to the "
              "metric in the stage falls in the window; when every window of a split has it, "
              "the sample-ratio check tests units, not exposures")]
    return _table(("column", "when", "what it is"), rows)


def cli_reference() -> str:
    """Every command's --help, as the command line prints it at 80 columns."""
    from scaleguard.cli import main
    from scaleguard.cli._app import command_paths

    parts = []
    for path in command_paths():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main([*path, "--help"])
        title = " ".join(["scaleguard", *path])
        parts.append(f"## `{title}`\n\n```text\n{out.getvalue().rstrip()}\n```\n")
    return "\n".join(parts)


GENERATORS: dict[str, Callable[[], str]] = {
    "study": lambda: format_reference("study"),
    "plan": lambda: format_reference("plan"),
    "ladder": lambda: format_reference("ladder"),
    "hardware": lambda: format_reference("hardware"),
    "observations": observations_reference,
    "cli": cli_reference,
}


def render(markdown: str) -> str:
    """``markdown`` with every reference marker replaced by what it names."""
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return render(markdown)


class _DocstringListsAreNotLinks(logging.Filter):
    """A doctest's output in a docstring (``[0.05, 0.1]``) reads as a Markdown reference, and
    autorefs warns that it links nowhere; in --strict that would fail the build on a docstring
    that is right. Only warnings that come from the package's sources are dropped: a broken
    link in the pages still fails the build."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Could not find cross-reference target" in message
                    and "/src/scaleguard/" in message)


def on_config(config: Any, **_: Any) -> Any:
    logging.getLogger("mkdocs.plugins.mkdocs_autorefs._internal.plugin").addFilter(
        _DocstringListsAreNotLinks())
    return config
