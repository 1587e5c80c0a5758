"""``scaleguard assess STUDY.yaml``: the readiness verdict of a scaling decision and its report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, err_console, print_json
from scaleguard.compute import Progress as ProgressCallback
from scaleguard.errors import InputError

if TYPE_CHECKING:
    from scaleguard.limits import Assessment

_EXECUTORS = ("serial", "process")


@contextmanager
def _progress(quiet: bool) -> Iterator[tuple[ProgressCallback, Callable[[str], None]]]:
    """A rich progress bar for the bootstrap and a line for each stage, on stderr."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err_console, transient=True,
                   disable=quiet or not err_console.is_terminal)
    with bar:
        task = bar.add_task("assessing", total=None)

        def on_stage(text: str) -> None:
            bar.update(task, description=text)

        def on_resample(done: int, total: int) -> None:
            bar.update(task, description="bootstrapping the law", completed=done, total=total)

        yield on_resample, on_stage


def assess_study(study_path: Path, out: Path | None, *, executor: str = "process",
                 quiet: bool = False) -> tuple[Assessment, Path, Path]:
    """Load, assess and write the report; the CLI and the demo share this."""
    # Imported here so that `scaleguard --help` does not pay for scipy, plotly and the laws.
    from scaleguard.limits import load_study, run_study
    from scaleguard.report import write_report

    if executor not in _EXECUTORS:
        raise InputError(f"--executor: expected one of {', '.join(_EXECUTORS)}, got {executor!r}")
    study = load_study(study_path)
    with _progress(quiet) as (on_resample, on_stage):
        assessment = run_study(study, executor=executor, progress=on_resample, stage=on_stage)
    folder = out if out is not None else study_path.parent / f"{study_path.stem}-report"
    html_path, json_path = write_report(assessment, folder)
    return assessment, html_path, json_path


def demo_step(out: Path) -> list[Any]:
    """Write the example study beside the demo's ladder, assess it and write its report."""
    from importlib.resources import files

    from scaleguard.cli.demo import Written, ladder_step
    from scaleguard.limits import load_study

    if not (out / "synthetic_ladder.csv").exists():
        ladder_step(out)
    study_path = out / "study.yaml"
    study_path.write_text(files("scaleguard.limits").joinpath("examples/study.yaml")
                          .read_text(encoding="utf-8"), encoding="utf-8")
    load_study(study_path)  # the example must always validate
    assessment, html_path, json_path = assess_study(study_path, out / "report", quiet=True)
    return [
        Written(study_path, "example study: target, hardware, limits, data (scaleguard assess)"),
        Written(html_path, f"readiness report — open in a browser: "
                           f"{assessment.verdict.readiness.value}, "
                           f"binding: {assessment.verdict.binding.title}"),
        Written(json_path, "the same assessment as JSON (scaleguard assess --json)"),
    ]


@app.command("assess")
def assess_command(
    study: Path = typer.Argument(..., help="Study file (YAML): ladder, target, hardware, limits."),
    out: Path | None = typer.Option(None, "--out",
                                    help="Folder for report.html and assessment.json "
                                         "(default: STUDY-report/ beside the study)."),
    executor: str = typer.Option("process", "--executor",
                                 help="Where bootstrap refits run: serial or process."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Can we scale to the target? The verdict, the binding constraint and the report."""
    assessment, html_path, json_path = assess_study(study, out, executor=executor,
                                                    quiet=as_json)
    if as_json:
        print_json(assessment.as_dict())
        return
    from scaleguard.report import print_summary

    print_summary(assessment, console)
    console.print(f"report: {html_path}\njson:   {json_path}")
