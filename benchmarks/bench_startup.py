"""CLI startup: ``scaleguard --help``, every command's ``--help`` and ``import scaleguard``.

Each is timed as a fresh process, against ``python -c "import typer"`` timed in the same run (the
reference: a CLI built on typer cannot start faster than typer imports). The target is a ratio of
at most 2.5 for every ``--help``.

``--src DIR`` times another copy of the package (e.g. an older commit unpacked with
``git archive COMMIT src | tar -x -C /tmp/before``) in the same run, so that before and after are
measured side by side on the same load. The commands timed are those of this checkout.

Run: .venv/bin/python benchmarks/bench_startup.py [--repeat 5] [--src /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _timing import timed

from scaleguard.cli._app import command_paths

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
TARGET_RATIO = 2.5  # issue #18: every --help within 2.5x of `python -c "import typer"`
CLI = "import sys; sys.argv[0] = 'scaleguard'; from scaleguard.cli import run; run()"


def _seconds(argv: list[str], src: Path | None, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else dict(os.environ)
    env["COLUMNS"] = "80"

    def once() -> None:
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)

    return timed(once, repeat).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", type=Path, action="append", default=[],
                        help="Another src/ folder to time beside this checkout's.")
    args = parser.parse_args()
    sources = [HERE_SRC, *args.src]
    typer_argv = [sys.executable, "-c", "import typer"]
    references: list[float] = []
    cases = [("import scaleguard", [sys.executable, "-c", "import scaleguard"])]
    cases += [(" ".join(["scaleguard", *path, "--help"]),
               [sys.executable, "-c", CLI, *path, "--help"]) for path in command_paths()]
    labels = ["this checkout" if s == HERE_SRC else str(s) for s in sources]
    print(f"{'command':<40}" + "".join(f"{label[-18:]:>20}" for label in labels))
    print(f"{'':<40}" + f"{'median  / typer':>20}" * len(labels))
    worst = dict.fromkeys(labels, 0.0)
    for name, argv in cases:
        # The reference is timed again before every row: the load of a shared machine drifts.
        reference = _seconds(typer_argv, None, args.repeat)
        references.append(reference)
        cells = []
        for src, label in zip(sources, labels, strict=True):
            seconds = _seconds(argv, src, args.repeat)
            ratio = seconds / reference
            if name != "import scaleguard":
                worst[label] = max(worst[label], ratio)
            cells.append(f"{seconds * 1e3:>9.0f} ms {ratio:>6.2f}x")
        print(f"{name:<40}" + "".join(cells))
    ms = statistics.median(references) * 1e3
    print(f"reference python -c 'import typer': median of rows {ms:.0f} ms"
          f" (min {min(references) * 1e3:.0f}, max {max(references) * 1e3:.0f}); repeat "
          f"{args.repeat}, COLUMNS=80")
    for label, ratio in worst.items():
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        print(f"{label}: slowest --help {ratio:.2f}x import typer ({verdict} the "
              f"{TARGET_RATIO}x target)")


if __name__ == "__main__":
    main()
