"""CLI startup: ``scaleguard --help``, every command's ``--help`` and ``import scaleguard``.

Each is timed as a fresh process, against ``python -c "import typer"`` timed in the same run (the
reference: a CLI built on typer cannot start faster than typer imports). The target is a ratio of
at most 2.5 for every ``--help``.

``--src DIR`` (repeatable) times other copies of the package instead of this checkout's, e.g.
two commits unpacked with ``git archive COMMIT src | tar -x -C /tmp/before``: before and after
are then measured side by side, in turn, on the same load. The commands timed are those of this
checkout.

Run: .venv/bin/python benchmarks/bench_startup.py [--repeat 5] [--src /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _timing import timed

from scaleguard.cli._app import command_paths

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
TARGET_RATIO = 2.5  # issue #18: every --help within 2.5x of `python -c "import typer"`
CLI = "import sys; sys.argv[0] = 'scaleguard'; from scaleguard.cli import run; run()"


def _runner(argv: list[str], src: Path | None) -> Callable[[], int]:
    """Run ``argv`` as a fresh process with ``src`` (if given) first on its import path."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else dict(os.environ)
    env["COLUMNS"] = "80"
    return lambda: subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode


def _interleaved(runners: list[Callable[[], int]], repeat: int) -> list[list[float] | None]:
    """Seconds of each run of each runner, run in turn ``repeat`` times (after one warm-up
    round), so that every side sees the same load of a shared machine; None for a runner that
    fails (a command an older copy of the package does not have)."""
    # The warm-up round: files in the page cache, .pyc compiled, and which sides can run.
    works = [run() == 0 for run in runners]
    seconds: list[list[float]] = [[] for _ in runners]
    for _ in range(repeat):
        for run, ok, times in zip(runners, works, seconds, strict=True):
            if ok:
                times += timed(run, 1, warmup=False).seconds
    return [times if ok else None for ok, times in zip(works, seconds, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", type=Path, action="append", default=[],
                        help="A src/ folder to time (repeatable; default: this checkout's).")
    args = parser.parse_args()
    sources = args.src or [HERE_SRC]
    reference = _runner([sys.executable, "-c", "import typer"], None)
    cases = [("import scaleguard", [sys.executable, "-c", "import scaleguard"])]
    cases += [(" ".join(["scaleguard", *path, "--help"]),
               [sys.executable, "-c", CLI, *path, "--help"]) for path in command_paths()]
    labels = ["this checkout" if s == HERE_SRC else s.parent.name for s in sources]
    print(f"{'command':<40}" + "".join(f"{label[-26:]:>28}" for label in labels))
    print(f"{'':<40}" + f"{'median / typer (min/min)':>28}" * len(labels))
    ratios: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    references: list[float] = []
    for name, argv in cases:
        ref, *sides = _interleaved([reference, *(_runner(argv, s) for s in sources)],
                                   args.repeat)
        assert ref is not None, "python -c 'import typer' failed"
        references.append(statistics.median(ref))
        cells = []
        for label, times in zip(labels, sides, strict=True):
            if times is None:
                cells.append(f"{'(no such command)':>28}")
                continue
            by_median = statistics.median(times) / statistics.median(ref)
            by_min = min(times) / min(ref)  # the least disturbed run of each side
            if name != "import scaleguard":
                ratios[label].append((by_median, by_min))
            cells.append(f"{statistics.median(times) * 1e3:>8.0f} ms {by_median:>6.2f}x "
                         f"({by_min:.2f}x)")
        print(f"{name:<40}" + "".join(cells), flush=True)
    ms = statistics.median(references) * 1e3
    print(f"reference python -c 'import typer': median of rows {ms:.0f} ms"
          f" (min {min(references) * 1e3:.0f}, max {max(references) * 1e3:.0f}); repeat "
          f"{args.repeat}, COLUMNS=80")
    for label, pairs in ratios.items():
        worst_median = max(m for m, _ in pairs)
        worst_min = max(m for _, m in pairs)
        typical = statistics.median(m for m, _ in pairs)
        print(f"{label}: --help of {len(pairs)} commands: median ratio {typical:.2f}x; slowest "
              f"{worst_median:.2f}x by medians, {worst_min:.2f}x by minimums (target "
              f"{TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
