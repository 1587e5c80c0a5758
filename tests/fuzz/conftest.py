"""Report how many hostile cases the fuzz suite ran (issue #13 asks for the count)."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fuzz._hostile import CASES

    if CASES:
        shown = ", ".join(f"{kind} {count}" for kind, count in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzz cases run: {sum(CASES.values())} ({shown})")
