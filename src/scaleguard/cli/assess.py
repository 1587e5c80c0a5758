"""``scaleguard assess STUDY.yaml``: the readiness verdict of a scaling decision and its report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, err_console, print_json
from scaleguard.cli._store_option import chosen_store
from scaleguard.errors import InputError

if TYPE_CHECKING:
    from scaleguard.compute import Progress as ProgressCallback
    from scaleguard.limits import Assessment

_EXECUTORS = ("serial", "process")
# What the demo adds to the example study: the evidence its step writes beside it.
_DEMO_EVIDENCE = """
rollout:
  plan: rollout_plan.yaml
  observations: rollout_observations.csv

monitoring:
  store: pilot_run.duckdb
"""


@contextmanager
def _progress(quiet: bool) -> Iterator[tuple[ProgressCallback, Callable[[str], None]]]:
    """A rich progress bar for the bootstrap and a line for each stage, on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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
                 quiet: bool = False, calibration: Path | None = None,
                 store: str | None = None) -> tuple[Assessment, Path, Path]:
    """Load, assess and write the report; the CLI and the demo share this. ``store`` (a
    DuckDB file relative to the working directory, or a postgresql:// URL) replaces the
    study's ``monitoring.store``: its open alerts count."""
    # Imported here so that `scaleguard --help` does not pay for scipy, plotly and the laws.
    from scaleguard.limits import load_study, run_study
    from scaleguard.report import write_report

    if executor not in _EXECUTORS:
        raise InputError(f"--executor: expected one of {', '.join(_EXECUTORS)}, got {executor!r}")
    study = load_study(study_path)
    if calibration is not None:  # a measured MFU replaces the study's hardware.mfu
        hardware = study.hardware.model_copy(update={"calibration": calibration.resolve()})
        study = study.model_copy(update={"hardware": hardware})
    if store is not None:
        study = _with_store(study, store)
    with _progress(quiet) as (on_resample, on_stage):
        assessment = run_study(study, executor=executor, progress=on_resample, stage=on_stage)
    folder = out if out is not None else study_path.parent / f"{study_path.stem}-report"
    html_path, json_path = write_report(assessment, folder)
    return assessment, html_path, json_path


def _with_store(study: Any, store: str) -> Any:
    from scaleguard.limits._study import MonitoringSpec
    from scaleguard.monitor import is_postgres_url

    where = chosen_store(store)
    if not is_postgres_url(where):
        where = str(Path(where).resolve())  # the working directory's, not the study's
    monitoring = study.monitoring or MonitoringSpec()
    return study.model_copy(update={"monitoring": monitoring.model_copy(update={"store": where})})


def _demo_evidence(out: Path) -> list[Any]:
    """Safety evidence for the demo study: a pilot run logged to a monitoring store (with a
    planted loss spike), and the rollout plan and observations the safety step wrote — or, when
    that step did not run, the example plan with clean synthetic observations of its first stage.
    """
    import numpy as np
    import pandas as pd

    from scaleguard.cli.demo import Written
    from scaleguard.monitor import start
    from scaleguard.safety import EXAMPLE_PLAN, load_plan

    rng = np.random.default_rng(0)
    # The pilot run at the top of the ladder; the monitor step's own store is a showcase of
    # planted faults (NaN included), not a run of this study.
    store = out / "pilot_run.duckdb"
    for stale in (store, Path(f"{store}.wal")):
        stale.unlink(missing_ok=True)  # a rerun starts afresh
    with start("pilot-1e20", store=str(store)) as run:
        for step in range(300):
            loss = 2.6 + 3.0 * (step + 10) ** -0.5 + rng.normal(0.0, 0.01)
            run.log({"loss": float(loss + (1.0 if step == 200 else 0.0))}, step=step)
    written = [Written(store, "synthetic pilot run with a planted loss spike (monitoring store)")]
    plan_path, observations = out / "rollout_plan.yaml", out / "rollout_observations.csv"
    if plan_path.exists() and observations.exists():
        return written  # the safety step's plan and observations
    plan_path.write_text(EXAMPLE_PLAN.read_text(encoding="utf-8"), encoding="utf-8")
    plan = load_plan(plan_path)
    stage = plan.stages[0]
    segments = {dim: (stage.segments or plan.segments)[dim][0] for dim in plan.segments}
    rows = []
    for window in range(12):  # twelve hourly windows of the first stage, no regression
        for metric in plan.metrics:
            for arm in ("control", "treatment"):
                rows.append({"stage": stage.name, "arm": arm, "metric": metric.name,
                             **segments, "exposures": 5_000,
                             "events": int(rng.binomial(5_000, metric.baseline or 0.01)),
                             "time": 1_767_225_600 + 3600 * window})
    pd.DataFrame(rows).to_csv(observations, index=False)
    return [*written,
            Written(plan_path, "example rollout plan (scaleguard rollout validate)"),
            Written(observations, f"synthetic observations of stage {stage.name!r}")]


def demo_step(out: Path) -> list[Any]:
    """Write the example study beside the demo's ladder, assess it and write its report."""
    from importlib.resources import files

    from scaleguard.cli.demo import Written, ladder_step
    from scaleguard.limits import load_study

    if not (out / "synthetic_ladder.csv").exists():
        ladder_step(out)
    study_path = out / "study.yaml"
    evidence = _demo_evidence(out)
    example = files("scaleguard.limits").joinpath("examples/study.yaml").read_text("utf-8")
    study_path.write_text(example + _DEMO_EVIDENCE, encoding="utf-8")
    load_study(study_path)  # the example must always validate
    assessment, html_path, json_path = assess_study(study_path, out / "report", quiet=True)
    return [
        *evidence,
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
    calibration: Path | None = typer.Option(
        None, "--calibration", help="MFU measured by scaleguard resources calibrate (replaces "
                                    "hardware.mfu)."),
    store: str | None = typer.Option(
        None, "--store", help="Monitor store whose open alerts count: a DuckDB file or "
                              "postgresql://user@host/db (default: the study's "
                              "monitoring.store)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Can we scale to the target? The verdict, the binding constraint and the report.

    Exit status: 0 ready, 1 not ready, 3 ready with conditions, 2 bad input (the study or a
    file it names).
    """
    assessment, html_path, json_path = assess_study(study, out, executor=executor,
                                                    quiet=as_json, calibration=calibration,
                                                    store=store)
    if as_json:
        print_json(assessment.as_dict())
    else:
        from scaleguard.report import print_summary

        print_summary(assessment, console)
        console.print(f"report: {html_path}\njson:   {json_path}")
    status = assessment.verdict.readiness.exit_status
    if status:
        raise typer.Exit(status)
