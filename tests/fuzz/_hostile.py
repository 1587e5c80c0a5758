"""Hypothesis strategies for hostile input: tables, YAML, JSON bodies, metric logs, options.

Each strategy mixes the classes of inputs that broke readers before (issue #13): numbers past
float64 (``1e400``, 400 digits) or int64 (``2**63``), NaN and infinity spelled every way, lone
surrogates and bytes that are not UTF-8, nesting thousands deep, YAML alias bombs, duplicate
headers, empty and ragged rows, and valid documents with one field replaced by any of these.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from hypothesis import strategies as st

# Cases run, by suite: printed at the end of the session (tests/fuzz/conftest.py).
CASES: Counter[str] = Counter()
# CI runs a bounded number of examples; SCALEGUARD_FUZZ_SCALE=20 runs twenty times as many.
SCALE = float(os.environ.get("SCALEGUARD_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """``n`` examples, times the scale asked for in the environment."""
    return max(1, round(n * SCALE))


INT64 = 2**63
DEEP = 3_000  # far past every depth limit and Python's recursion limit
HOSTILE_NUMBERS: list[Any] = [
    0, -1, 1, 0.5, -0.0, 1e-320, 1e308, -1e308, INT64, INT64 - 1, -INT64 - 1, 2**64, 10**30,
    10**400, float("nan"), float("inf"), float("-inf"), 1e12, 1e30, True, False, None,
]
HOSTILE_TEXT: list[str] = [
    "", " ", "nan", "NaN", "-nan", "inf", "+inf", "-Infinity", "1e400", "-1e400", "9" * 400,
    str(INT64), str(-INT64 - 1), "1e308k", "1e308T", "70B", "1e-400", "0x10", "1_000", "١٢",
    "\ud800", "a\udfffb", "\x00", "\u202e", "'", '"', ",", "\t", "\r\n", "[" * 50, "{" * 50,
    "1ns", "0s", "-5h", "1e9", "1e30", "nonexistent", "x" * 5_000, "2024-01-01T00:00:00Z",
]

hostile_scalar = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.sampled_from(HOSTILE_TEXT),
                           st.integers(), st.floats(), st.text(max_size=20))
hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=30),
                         st.floats().map(repr), st.integers().map(str))


class Deep:
    """A value nested ``depth`` lists deep: written as text by :func:`dumps`, since neither
    json nor yaml can serialise what they would recurse into thousands of times."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


def dumps(value: Any) -> str:
    """JSON text of ``value``, with every :class:`Deep` spelled as its brackets."""
    marks: dict[str, str] = {}

    def mark(obj: object) -> str:
        if isinstance(obj, Deep):
            key = f"@@deep{len(marks)}@@"
            marks[f'"{key}"'] = "[" * obj.depth + "]" * obj.depth
            return key
        return str(obj)

    text = json.dumps(value, default=mark)
    for key, brackets in marks.items():
        text = text.replace(key, brackets)
    return text


hostile_value = st.one_of(
    hostile_scalar,
    st.just(Deep(DEEP)), st.just(Deep(70)), st.just({"a": Deep(300)}),
    st.lists(hostile_scalar, max_size=4),
    st.dictionaries(hostile_text, hostile_scalar, max_size=3),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    # Paths into the document, at most 8 levels deep (a hostile value may nest thousands).
    yield prefix
    if len(prefix) >= 8:
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*prefix, i))


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    # Copies only the containers along the path: deepcopy would recurse into deep values.
    if not path:
        return value
    head, rest = path[0], path[1:]
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    out[head] = _replace(doc[head], rest, value)
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three fields (or keys) replaced by hostile values."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        if path and isinstance(path[-1], str) and draw(st.booleans()):
            parent = doc
            for part in path[:-1]:
                parent = parent[part]
            renamed = {(draw(hostile_text) if k == path[-1] else k): v for k, v in parent.items()}
            doc = _replace(doc, path[:-1], renamed)
        else:
            doc = _replace(doc, path, draw(hostile_value))
    return doc


def to_bytes(text: str) -> bytes:
    """UTF-8, with lone surrogates written as the (invalid) bytes they stand for."""
    return text.encode("utf-8", "surrogatepass")


def yaml_bytes(doc: Any) -> bytes:
    """YAML text of ``doc`` (JSON, which is YAML, when YAML cannot write it)."""
    try:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, TypeError):  # a Deep, a surrogate...
        text = dumps(doc)
    return to_bytes(text)


ALIAS_BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                       + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]"
                          for i in range(1, 9)]).encode()
raw_garbage = st.one_of(
    st.binary(max_size=200),
    st.just(b"a: " + b"[" * 20_000 + b"]" * 20_000),
    st.just(b"{" * 5_000),
    st.just(ALIAS_BOMB),
    st.just(b"\xff\xfe\x00\x00"),
    st.just(b""),
    st.text(max_size=200).map(to_bytes),
)


@st.composite
def yaml_docs(draw: st.DrawFn, valid: Any) -> bytes:
    """A YAML file: the valid document mutated, or garbage."""
    if draw(st.integers(0, 4)) == 0:
        return draw(raw_garbage)
    return yaml_bytes(draw(mutated(valid)))


@st.composite
def csv_tables(draw: st.DrawFn, header: list[str], good_rows: list[list[str]],
               delimiter: str = ",") -> bytes:
    """A table: ``good_rows`` under ``header`` with hostile cells, rows or header injected."""
    rows = [list(header)] + [list(r) for r in good_rows]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5))
        r = draw(st.integers(0, len(rows) - 1))
        if kind <= 2:  # a hostile cell (the header too)
            c = draw(st.integers(0, len(rows[r]) - 1)) if rows[r] else 0
            if rows[r]:
                rows[r][c] = draw(hostile_text)
        elif kind == 3:  # a ragged row
            rows[r] = rows[r][:draw(st.integers(0, len(rows[r])))] + draw(
                st.lists(hostile_text, max_size=2))
        elif kind == 4:  # a duplicate column
            rows[0] = rows[0] + [rows[0][0] if rows[0] else header[0]]
        else:  # an extra row of anything
            rows.append(draw(st.lists(hostile_text, min_size=1, max_size=len(header) + 1)))
    text = "\n".join(delimiter.join(cell.replace("\n", " ") for cell in row) for row in rows)
    data = to_bytes(text + "\n")
    if draw(st.integers(0, 5)) == 0:  # a byte that is not UTF-8 somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
    return data


@st.composite
def jsonl_logs(draw: st.DrawFn) -> bytes:
    """A JSONL metric log with hostile steps, times, names, values and lines."""
    lines = []
    for step in range(draw(st.integers(1, 6))):
        record: dict[str, Any] = {"step": step, "loss": 3.0 - 0.1 * step}
        kind = draw(st.integers(0, 6))
        if kind == 0:
            record["step"] = draw(hostile_value)
        elif kind == 1:
            record["loss"] = draw(hostile_value)
        elif kind == 2:
            record[draw(hostile_text)] = draw(hostile_scalar)
        elif kind == 3:
            record["time"] = draw(hostile_scalar)
        elif kind == 4:
            lines.append(draw(raw_garbage).replace(b"\n", b" "))
            continue
        lines.append(to_bytes(dumps(record)))
    return b"\n".join(lines) + b"\n"


class Hang(Exception):
    """The command ran past its time limit: a hang (work not bounded up front)."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`Hang` in the calling (main) thread after ``seconds``."""
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
