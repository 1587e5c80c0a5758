"""``scaleguard demo``: write an example study on built-in synthetic data and say what it wrote.

The demo is a list of steps, one per component; each writes its files into the output folder
and returns what it wrote. Components add their step to :data:`DEMO_STEPS` as they land.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.text import Text

from scaleguard.cli._app import app
from scaleguard.cli._options import console
from scaleguard.cli._table import print_table


@dataclass(frozen=True)
class Written:
    """One file a demo step wrote, and what it holds."""

    path: Path
    what: str


DemoStep = Callable[[Path], list[Written]]

_README = """# scaleguard demo study

Everything in this folder was produced by `scaleguard demo`.

`synthetic_ladder.csv` is **synthetic**: drawn by scaleguard from the law
L = E + A/N^alpha + B/D^beta with {law} and 1% log-normal noise, on 5 iso-FLOP
budgets of 8 model sizes each. It is not measured data; it is there so that every command can be
tried on a fresh machine. Try:

    scaleguard inspect {ladder}
"""


def ladder_step(out: Path) -> list[Written]:
    """The synthetic ladder, its README and the summary ``inspect`` gives of it."""
    from scaleguard.examples import SYNTHETIC_LAW, synthetic_ladder
    from scaleguard.io import read_ladder, summarize_table

    ladder_path = out / "synthetic_ladder.csv"
    synthetic_ladder(seed=0).to_csv(ladder_path, index=False)
    summary_path = out / "ladder_summary.json"
    summary = summarize_table(read_ladder(ladder_path), "ladder")
    summary_path.write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    readme_path = out / "README.md"
    law = ", ".join(f"{k}={v}" for k, v in SYNTHETIC_LAW.items())
    readme_path.write_text(_README.format(law=law, ladder=ladder_path), encoding="utf-8")
    return [
        Written(ladder_path, f"synthetic ladder, {summary.rows} runs"),
        Written(summary_path, "summary of the ladder (scaleguard inspect --json)"),
        Written(readme_path, "what this folder holds"),
    ]


def laws_step(out: Path) -> list[Written]:
    """The scaling-law fit of the synthetic ladder, its CIs, validation and plot."""
    from scaleguard.cli.fit import demo_step  # lazily: that module imports this one

    return demo_step(out)


def resources_step(out: Path) -> list[Written]:
    """The budget, layout and serving of a target run (``scaleguard resources``)."""
    from scaleguard.cli.resources import demo_step  # lazily: that module imports this one

    return demo_step(out)


def safety_step(out: Path) -> list[Written]:
    """The example rollout plan, a decision on synthetic data, a simulation and a rate bound."""
    from scaleguard.cli.safety import demo_step  # lazily: that module imports this one

    return demo_step(out)


def monitor_step(out: Path) -> list[Written]:
    """A synthetic training log with planted faults, tracked into a store and checked."""
    from scaleguard.cli.monitor import demo_step  # lazily: that module imports this one

    return demo_step(out)


def assess_step(out: Path) -> list[Written]:
    """The example study assessed end to end: verdict, report.html and assessment.json."""
    from scaleguard.cli.assess import demo_step  # lazily: that module imports this one

    return demo_step(out)


DEMO_STEPS: list[tuple[str, DemoStep]] = [
    ("ladder", ladder_step),
    ("laws", laws_step),
    ("resources", resources_step),
    ("safety", safety_step),
    ("monitor", monitor_step),
    ("assess", assess_step),  # keep last: the end-to-end verdict on what the steps above wrote
]


def _shown(path: Path, out: Path) -> str:
    """``path`` inside ``out`` as the title names ``out``: short enough for one line."""
    return str(path.relative_to(out)) if path.is_relative_to(out) else str(path)


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("scaleguard-demo"), "--out", help="Folder to write into."),
) -> None:
    """Run scaleguard end to end on built-in synthetic data and write the study to a folder."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Written]] = []
    with console.status("running the demo…"):
        for name, step in DEMO_STEPS:
            written += [(name, item) for item in step(out)]
    print_table(console, f"scaleguard demo — wrote {len(written)} files to {out}/",
                ["step", "file", "what"],
                [[name, Text(_shown(item.path, out)), Text(item.what)]
                 for name, item in written],
                key=2)
    reports = [item.path for _, item in written if item.path.name == "report.html"]
    if reports:
        console.print(f"[bold]readiness report:[/bold] {reports[0].resolve()} "
                      "(self-contained; open it in a browser)")
