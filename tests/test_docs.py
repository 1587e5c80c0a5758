"""The documentation site: every code block runs, and the generated references are complete.

Each page under docs/ is run as a reader would follow it, top to bottom, in an empty folder:

- a block with a ``title="NAME"`` is a file: it is saved under that name;
- ``bash``: each command runs; plain ``scaleguard ...`` lines run in this process (fast), a
  block with shell syntax (pipes, redirections, ``&``) runs in bash with this checkout's
  ``scaleguard`` on the PATH; a trailing ``# exit N`` is the status the command must end with;
- ``python``: runs in a fresh namespace;
- ``yaml`` / ``json`` without a title must parse; ``text`` (and a fence with no language) is
  printed output and is not run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from scaleguard.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)
TITLE = re.compile(r'title="([^"]+)"')
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
SHELL = re.compile(r"[|>&;$`]")
RUNNABLE = {"bash", "python", "yaml", "json", "csv", "text"}


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "_hooks" /
                                                  "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, file title or None, body) of each fenced block of ``page``."""
    found = []
    for lang, info, body in FENCE.findall(page.read_text(encoding="utf-8")):
        title = TITLE.search(info)
        found.append((lang, title.group(1) if title else None, body))
    return found


def commands(body: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT / "src")}


def run_bash(body: str, background: list[subprocess.Popen[bytes]]) -> None:
    lines = commands(body)
    if not any(SHELL.search(EXIT.sub("", line)) for line in lines):
        for line in lines:
            expected = EXIT.search(line)
            argv = shlex.split(EXIT.sub("", line))
            assert argv[0] == "scaleguard", f"a docs command must be scaleguard's: {line}"
            status = main(argv[1:])
            assert status == (int(expected.group(1)) if expected else 0), line
        return
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", body], env=_env(),
                               start_new_session=True)
    if lines[-1].endswith("&"):
        background.append(process)  # a service: ended when the page is done
        process.wait(timeout=60)  # bash returns once it has started it
        return
    assert process.wait(timeout=300) == 0, body


def run_page(page: Path) -> None:
    background: list[subprocess.Popen[bytes]] = []
    try:
        for lang, title, body in blocks(page):
            assert lang in RUNNABLE, f"{page.name}: a ```{lang} block the test cannot run"
            if title is not None:
                Path(title).write_text(body, encoding="utf-8")
            elif lang == "bash":
                run_bash(body, background)
            elif lang == "python":
                exec(compile(body, f"{page.name}:python", "exec"), {"__name__": "__docs__"})
            elif lang == "yaml":
                list(yaml.safe_load_all(body))  # Kubernetes manifests: several documents
            elif lang == "json":
                json.loads(body)
    finally:
        for process in background:  # its own session: the group is the service and its children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_every_code_block_runs(page, tmp_path, monkeypatch, capsys):
    if page.name == "train-a-ladder.md":
        pytest.importorskip("torch")
    if page.name in ("run-the-service.md", "assign-traffic.md"):
        pytest.importorskip("fastapi")
    monkeypatch.chdir(tmp_path)
    run_page(page)
    capsys.readouterr()


def _field_paths(model: Any, prefix: str = "") -> list[str]:
    """Every key of a pydantic model, nested models dotted (lists of them as ``name[].``)."""
    from typing import get_args, get_origin

    from pydantic import BaseModel

    paths = []
    for name, field in model.model_fields.items():
        if name == "base_dir":
            continue
        paths.append(f"{prefix}{name}")
        annotation = field.annotation
        options = [annotation, *get_args(annotation)]
        for option in options:
            inner = get_args(option)
            listed = get_origin(option) in (list, tuple) and inner
            target = inner[0] if listed else option
            if isinstance(target, type) and issubclass(target, BaseModel):
                paths += _field_paths(target, f"{prefix}{name}{'[]' if listed else ''}.")
                break
    return paths


@pytest.mark.parametrize("name", ["study", "plan", "ladder", "hardware"])
def test_each_format_reference_names_every_key_of_its_model(name):
    if name == "ladder":
        pytest.importorskip("torch")  # scaleguard.ladder imports torch
    reference = hooks()
    model, prefix = reference._models()[name]
    page = reference.format_reference(name)
    missing = [p for p in _field_paths(model, prefix) if f"`{p}`" not in page]
    assert not missing, missing
    if name == "study":
        assert "`ladder.columns`" in page and "mapping" in page


def test_the_pages_use_every_generator_and_the_cli_reference_has_every_command():
    reference = hooks()
    text = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    assert set(reference.MARKER.findall(text)) == set(reference.GENERATORS)
    cli = reference.cli_reference()
    from scaleguard.cli._app import command_paths

    for path in command_paths():
        assert f"## `{' '.join(['scaleguard', *path])}`" in cli
    observations = reference.observations_reference()
    for column in ("`stage`", "`arm`", "`exposures`", "`events`", "`n`", "`mean`", "`var`"):
        assert column in observations
