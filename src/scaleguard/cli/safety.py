"""``scaleguard rollout validate|schema|decide|simulate`` and ``scaleguard safety bound|forecast|
drift``: staged rollouts and rare-event evidence from the command line."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from scaleguard.cli._app import app
from scaleguard.cli._options import (
    COL_OPTION,
    JSON_OPTION,
    console,
    err_console,
    print_json,
    whole_count,
)
from scaleguard.cli._table import Column, print_table
from scaleguard.errors import InputError
from scaleguard.units import format_quantity, parse_quantity

if TYPE_CHECKING:
    from rich.progress import Progress

rollout_app = typer.Typer(help="Staged rollout plans: validate, decide the next step, simulate.",
                          no_args_is_help=True)
safety_app = typer.Typer(help="Rare-event bounds, tail forecasts and drift between cohorts.",
                         no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")
app.add_typer(safety_app, name="safety")

PLAN_ARGUMENT = typer.Argument(..., help="Rollout plan (YAML).")
_ACTION_STYLE = {"advance": "bold green", "continue": "cyan", "hold": "yellow",
                 "roll_back": "bold red"}
_VERDICT_STYLE = {"pass": "green", "continue": "cyan", "fail": "bold red"}


def _time(text: str | None) -> float:
    """``--now``: Unix seconds or an ISO 8601 time; absent: the clock."""
    if text is None:
        return time.time()
    try:
        seconds = float(text)
    except ValueError:
        import pandas as pd

        try:
            stamp = pd.Timestamp(text)
            seconds = float((stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp)
                            .timestamp())
        except (ValueError, TypeError):
            raise InputError(f"--now: expected an ISO 8601 time or Unix seconds, got {text!r}"
                             ) from None
    if not math.isfinite(seconds) or seconds < 0:
        # nan or -inf would switch the late-data and minimum-duration checks off.
        raise InputError(f"--now: expected a finite time at or after 1970-01-01, got {text!r}")
    return seconds


@rollout_app.command("validate")
def validate_command(plan_path: Path = PLAN_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Check a rollout plan, show its stages and whether each can finish and see its margins."""
    from scaleguard.safety import feasibility, load_plan

    plan = load_plan(plan_path)
    reach = feasibility(plan)
    if as_json:
        print_json({"plan": plan.as_dict(), "feasibility": reach.as_dict()})
        return
    from rich import box

    table = Table(title=f"{plan_path}: plan {plan.name!r} is valid — alpha {plan.alpha:g}, "
                        f"{plan.error_control.method} with {plan.error_control.correction}",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False,
                  collapse_padding=True)
    longest = max(len(m.name) for m in plan.metrics) + 1
    for header in ("stage", "traffic", "segments", "metrics", "min n", "min..max",
                   "approval"):
        # Metric lists wrap at their commas, never inside a name; other cells stay whole.
        table.add_column(header, no_wrap=header != "metrics",
                         min_width=longest if header == "metrics" else None)
    for i, stage in enumerate(plan.stages):
        segs = plan.stage_segments(i)
        table.add_row(stage.name, f"{stage.traffic:.3g}", str(len(segs)),
                      ", ".join(m.name for m in plan.stage_metrics(i)),
                      format_quantity(stage.min_exposures, "count", digits=3),
                      f"{format_quantity(stage.min_duration, 'duration', digits=3)}.."
                      + (format_quantity(stage.max_duration, "duration", digits=3)
                         if stage.max_duration is not None else "open"),
                      "yes" if stage.manual_approval else "")
    console.print(table)
    _print_feasibility(reach)


def _print_feasibility(reach: Any) -> None:
    """Per stage: time to its minimum, earliest end, smallest harm each margin gate shows."""
    from rich import box

    def when(seconds: float | None) -> str:
        return "never" if seconds is None or not math.isfinite(seconds) else \
            format_quantity(seconds, "duration", digits=3)

    def size(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2g}"

    rate = format_quantity(reach.exposures_per_hour, "count", digits=3)
    table = Table(title=f"feasibility at {rate}/h at full traffic (80% power)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False,
                  collapse_padding=True)
    for header in ("stage", "per hour", "to min", "ends", "metric", "margin", "detects",
                   "in segment"):
        table.add_column(header, no_wrap=True, justify="left" if header in ("stage", "metric")
                         else "right")
    for stage in reach.stages:
        first = True
        for gate in stage.gates or [None]:
            table.add_row(stage.name if first else "",
                          format_quantity(stage.exposures_per_hour, "count", digits=3)
                          if first else "",
                          when(stage.time_to_min_exposures) if first else "",
                          when(stage.earliest_end) if first else "",
                          gate.metric if gate else "", f"{gate.margin:g}" if gate else "",
                          size(gate.detectable) if gate else "",
                          size(gate.detectable_in_segment) if gate else "")
            first = False
    console.print(table)
    console.print(f"expected time to full rollout: {when(reach.time_to_full)} (every gate "
                  "passing at its first chance)")
    for warning in reach.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@rollout_app.command("schema")
def schema_command() -> None:
    """Print the JSON schema of a rollout plan."""
    from scaleguard.safety import plan_schema

    print_json(plan_schema())


def _print_decision(decision: Any) -> None:
    style = _ACTION_STYLE[decision.action]
    console.print(f"[{style}]{decision.action.upper()}[/] at stage {decision.stage!r}, "
                  f"traffic {decision.traffic:g}")
    for reason in decision.reasons:
        console.print(f"  - {reason}")
    for note in decision.notes:
        console.print(f"  note: {note}")
    from rich import box

    # One block per metric and no wrapping cells, so that the table fits 80 columns.
    table = Table(title="gates (harm direction: above 0 is worse)", box=box.SIMPLE_HEAD,
                  padding=(0, 1), pad_edge=False, show_edge=False, collapse_padding=True)
    for header in ("gate", "test", "verdict", "bounds", "limit", "adj. p", "n"):
        table.add_column(header, no_wrap=True, justify="left" if header in (
            "gate", "test", "verdict") else "right")
    metric = None
    for g in decision.gates:
        if g.metric != metric:
            if metric is not None:
                table.add_section()
            metric = g.metric
            table.add_row(f"[bold]{g.metric}[/]")
        table.add_row(f"  {g.segment}", g.test, f"[{_VERDICT_STYLE[g.verdict]}]{g.verdict}[/]",
                      f"{_short(g.lower)}..{_short(g.upper)}", _short(g.limit),
                      f"{g.adjusted_p:.2g}",
                      format_quantity(g.treatment_exposures, "count", digits=3))
    if decision.gates:
        console.print(table)


def _short(value: float) -> str:
    return f"{value:.2g}" if math.isfinite(value) else ("-inf" if value < 0 else "inf")


@rollout_app.command("decide")
def decide_command(
    plan_path: Path = PLAN_ARGUMENT,
    observations: Path = typer.Option(..., "--observations", help="Observations table: stage, "
                                      "arm, metric, segment columns, exposures/events or "
                                      "n/mean/var, optional time."),
    state_dir: Path | None = typer.Option(None, "--state", help="Folder keeping the rollout's "
                                          "state.json and audit.jsonl (read, then updated)."),
    store_url: str | None = typer.Option(None, "--store", help="Keep the rollout (state, "
                                         "audit log) in this monitor store instead of a "
                                         "folder: a DuckDB file or postgresql://user@host/db, "
                                         "where the service and assess see it."),
    rollout_id: str | None = typer.Option(None, "--rollout", help="The rollout's id in "
                                          "--store (default: the plan's name)."),
    now: str | None = typer.Option(None, "--now", help="Decision time (ISO 8601 or Unix "
                                   "seconds; default: now)."),
    approve: list[str] | None = typer.Option(None, "--approve", help="Stage a person approved "
                                             "entering. Repeatable."),
    col: list[str] | None = COL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide advance / continue / hold / roll back from all observations so far."""
    from scaleguard.io import parse_column_map, shown, text_problem
    from scaleguard.safety import (
        DatabaseRolloutStore,
        FileRolloutStore,
        load_plan,
        read_observations,
    )

    plan = load_plan(plan_path)
    rows = read_observations(observations, plan, parse_column_map(col))
    when = _time(now)
    if store_url is not None and state_dir is not None:
        raise InputError("--store: keeps the rollout itself; give --store or --state, not both")
    if rollout_id is not None and store_url is None:
        raise InputError("--rollout: names a rollout of --store; give --store too")
    if rollout_id is not None and text_problem(rollout_id) is not None:
        # A NUL or a lone surrogate reached the database driver: a traceback, not a refusal.
        raise InputError(f"--rollout: {shown(rollout_id)} {text_problem(rollout_id)}")
    store: FileRolloutStore | DatabaseRolloutStore | None = None
    if store_url is not None:
        from scaleguard.monitor import open_store

        store = DatabaseRolloutStore(open_store(store_url), rollout_id or plan.name)
    elif state_dir is not None:
        store = FileRolloutStore(state_dir)
    try:
        decision = _decide(plan, rows, when, store, approve, str(observations), state_dir)
    finally:
        if isinstance(store, DatabaseRolloutStore):
            store.store.close()
    if as_json:
        print_json(decision.as_dict())
        return
    _print_decision(decision)
    if state_dir is not None:
        files = FileRolloutStore(state_dir)
        console.print(f"state and audit log: {files.state_path}, {files.audit_path}")
    elif store_url is not None:
        console.print(f"state and audit log: rollout {rollout_id or plan.name!r} of store "
                      f"{getattr(store, 'store', store_url)!r}")


def _decide(plan: Any, rows: Any, when: float, store: Any, approve: list[str] | None,
            source: str, state_dir: Path | None) -> Any:
    """Decide from the stored state (or a new one) and keep the decision in ``store``."""
    from scaleguard.safety import (
        DatabaseRolloutStore,
        FileRolloutStore,
        audit_record,
        check_state,
        continuous_start,
        decide,
        initial_state,
        screen_observations,
    )

    state = store.load_state() if store is not None else None
    if state is not None and state.plan != plan.name:
        raise InputError(f"--state {state_dir or store}: holds rollout {state.plan!r}, not "
                         f"plan {plan.name!r}")
    if state is None:
        # A new rollout starts with its data: the first stage's unbroken record (one stray
        # early row does not make the stage look old; it is then untrusted).
        first = rows.loc[rows["stage"] == plan.stages[0].name]
        started = continuous_start(first["time"].to_numpy(dtype=float),
                                   plan.data.max_age) \
            if "time" in rows.columns else None
        state = initial_state(plan, min(started if started is not None else when, when))
    check_state(plan, state, str(FileRolloutStore(state_dir).state_path) if state_dir else "state")
    screened = screen_observations(rows, plan, when, plan.stages[state.stage_index].name,
                                   state.stage_started)
    decision = decide(plan, state, screened, when, frozenset(approve or ()))
    record = audit_record(plan.name, decision, source)
    if isinstance(store, DatabaseRolloutStore):
        if not store.exists():
            store.create(plan.name, plan.model_dump(mode="json"), state)
        store.record_decision(decision, record)  # state and audit in one transaction
    elif store is not None:
        store.append_audit(record)
        store.save_state(decision.state)
    return decision


def _progress_bar(total_chunks: int, label: str) -> tuple[Progress, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True)
    task = bar.add_task(label, total=total_chunks)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


@rollout_app.command("simulate")
def simulate_command(
    plan_path: Path = PLAN_ARGUMENT,
    scenario: str = typer.Option("aa", "--scenario", help="aa, metric, segment, rare or srm "
                                 "(a broken split)."),
    metric: str | None = typer.Option(None, "--metric", help="Metric the scenario harms."),
    segment: str | None = typer.Option(None, "--segment", help="Segment harmed, e.g. "
                                       "region=eu (scenario segment)."),
    factor: float = typer.Option(2.0, "--factor", help="How many times worse the metric is."),
    rate: float | None = typer.Option(None, "--rate", help="Control rate of the rare harm."),
    runs: str = typer.Option("1000", "--runs", help="Simulated rollouts, e.g. 2000 or 10k."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same results."),
    executor: str = typer.Option("serial", "--executor", help="serial or process."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the plan many times: false rollbacks, detection, exposures, time to full rollout."""
    from scaleguard.compute import get_executor
    from scaleguard.safety import Scenario, load_plan, simulate
    from scaleguard.safety._simulate import check_work, chunk_runs

    if seed < 0:  # numpy's SeedSequence raised a bare ValueError on it: a traceback
        raise InputError(f"--seed: expected a whole number >= 0, got {seed}")
    plan = load_plan(plan_path)
    count = parse_quantity(runs, "count", name="--runs")
    if count != int(count) or count < 1:
        raise InputError(f"--runs: expected a whole number >= 1, got {runs!r}")
    check_work(plan, int(count), str(plan_path))  # before the progress bar starts
    chosen = Scenario(scenario, metric, segment, factor, rate)  # type: ignore[arg-type]
    pool = get_executor(executor, workers=workers)
    chunks = -(-int(count) // chunk_runs(plan))
    bar, update = _progress_bar(chunks, f"simulating {int(count)} rollouts")
    with bar:
        result = simulate(plan, chosen, int(count), seed, executor=pool, progress=update)
    if as_json:
        print_json(result.as_dict())
        return
    from rich import box

    label = "false rollbacks" if chosen.kind == "aa" else "rollbacks (detection)"
    # Short headers and whole cells, so that the table fits 80 columns; the footnote below
    # says what the exposure and look columns average.
    table = Table(title=f"{plan.name}: {chosen.kind} scenario, {result.runs} runs, seed {seed};"
                        f" {label}", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
                  show_edge=False, collapse_padding=True)
    for header in ("policy", "rollbacks", "± s.e.", "held", "completed", "exposures",
                   "looks", "to full"):
        table.add_column(header, no_wrap=True,
                         justify="left" if header == "policy" else "right")
    for o in result.outcomes:
        table.add_row(
            o.policy, f"{o.rollback_rate:.3f}", f"{o.rollback_se:.3f}", f"{o.hold_rate:.3f}",
            f"{o.complete_rate:.3f}",
            "" if o.mean_exposures_before_rollback is None else
            format_quantity(o.mean_exposures_before_rollback, "count", digits=3),
            "" if o.mean_looks_to_rollback is None else f"{o.mean_looks_to_rollback:.1f}",
            "" if o.mean_time_to_full is None else
            format_quantity(o.mean_time_to_full, "duration", digits=3))
    console.print(table)
    for o in result.outcomes:
        if o.held_by_reason:
            why = ", ".join(f"{reason} {share:.1%}" for reason, share in
                            sorted(o.held_by_reason.items(), key=lambda kv: -kv[1]))
            console.print(f"{o.policy} held: {why}")
    console.print("exposures, looks: treatment exposures and looks before a rollback (mean); "
                  "to full: time to full traffic (mean)")
    console.print(f"alpha {plan.alpha:g}; always_valid = the plan's gates, naive_peeking = a "
                  "fixed-horizon z-test at every look, kayenta = Mann-Whitney judge with a "
                  "score threshold")


@safety_app.command("bound")
def bound_command(
    failures: int = typer.Option(..., "--failures", help="Failures observed."),
    trials: str = typer.Option(..., "--trials", help="Exposures observed, e.g. 1000 or 10k."),
    confidence: float = typer.Option(0.95, "--confidence", help="One-sided confidence."),
    next_exposures: str | None = typer.Option(None, "--next", help="Exposures at the next "
                                              "stage: expected incidents and their bound."),
    target: float | None = typer.Option(None, "--target", help="Failure rate to certify: how "
                                        "many failure-free trials it needs."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Upper bounds on a failure rate (Clopper-Pearson, Bayesian) and incidents to expect."""
    from scaleguard.safety import rate_bound

    n = whole_count(trials, "--trials")
    nxt = parse_quantity(next_exposures, "count", name="--next") if next_exposures else None
    result = rate_bound(failures, int(n), confidence, next_exposures=nxt, target=target)
    if as_json:
        print_json(result.as_dict())
        return
    console.print(f"{failures} failures in {int(n)} trials (observed rate "
                  f"{result.observed_rate:.3g})")
    console.print(f"  rate <= {result.clopper_pearson_upper:.3g} at {confidence:.0%} "
                  "(one-sided Clopper-Pearson)")
    console.print(f"  rate <= {result.bayesian_upper:.3g} at {confidence:.0%} "
                  "(Bayesian, Jeffreys prior)")
    if result.next_exposures is not None:
        console.print(f"  next stage, {format_quantity(result.next_exposures, 'count', digits=3)}"
                      f" exposures: {result.expected_incidents:.3g} incidents expected, "
                      f"<= {result.incidents_upper:.3g} at the bound; P(at least one) <= "
                      f"{result.p_any_incident_upper:.3g}")
    if result.trials_to_certify is not None:
        console.print(f"  certifying rate <= {target:g} at {confidence:.0%} needs "
                      f"{result.trials_to_certify} failure-free trials")


@safety_app.command("forecast")
def forecast_command(
    scores: Path = typer.Argument(..., help="Table of per-query failure probabilities."),
    queries: str = typer.Option(..., "--queries", help="Deployment size, e.g. 1M."),
    column: str = typer.Option("p", "--column", help="Column holding the probabilities."),
    tail: int = typer.Option(10, "--tail", help="Top scores used for the Gumbel tail fit."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forecast the worst per-query failure probability at deployment scale (Jones et al.)."""
    from scaleguard.io import NumericColumn, check_numeric, read_table
    from scaleguard.safety import tail_forecast

    frame = check_numeric(read_table(scores, required=[column]),
                          [NumericColumn(column, nonnegative=True)])
    bad = frame[column] > 1
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(f"{scores}: row {row + 1}: column {column!r} is "
                         f"{frame[column].iloc[row]}, expected a probability in [0, 1]")
    n = parse_quantity(queries, "count", name="--queries")
    result = tail_forecast(frame[column].to_numpy(), n, tail)
    if as_json:
        print_json(result.as_dict())
        return
    console.print(f"worst per-query failure probability at "
                  f"{format_quantity(n, 'count', digits=3)} queries: "
                  f"[bold]{result.worst_probability:.3g}[/] (worst of the {result.evaluated} "
                  f"evaluated: {result.observed_worst_probability:.3g})")
    console.print(f"Gumbel tail on -log(-log p): location {result.location:.3g}, scale "
                  f"{result.scale:.3g}, fitted on the top {result.tail_points}")


@safety_app.command("drift")
def drift_command(
    reference: Path = typer.Argument(..., help="Previous cohort's inputs or scores (table)."),
    current: Path = typer.Argument(..., help="New cohort's inputs or scores (table)."),
    feature: list[str] | None = typer.Option(None, "--feature", help="Feature column to "
                                             "compare (default: all shared). Repeatable."),
    alpha: float = typer.Option(0.05, "--alpha", help="Family-wise error over all tests."),
    as_json: bool = JSON_OPTION,
) -> None:
    """PSI, Kolmogorov-Smirnov, chi-square and MMD per feature: new cohort against previous."""
    from scaleguard.io import read_table
    from scaleguard.safety import drift_report

    report = drift_report(read_table(reference), read_table(current), feature, alpha)
    if as_json:
        print_json(report.as_dict())
        return
    style = {"stable": "green", "watch": "yellow", "drift": "bold red"}
    rows = [[f.feature, f"[{style[f.verdict]}]{f.verdict}[/]", f"{f.psi:.3f}",
             "" if f.ks_p is None else f"{f.ks_p:.2g}", f"{f.chi2_p:.2g}",
             "" if f.mmd_p is None else f"{f.mmd_p:.2g}", f.reason] for f in report.features]
    print_table(console, f"drift of {current} against {reference}",
                ["feature", "verdict", *(Column(h, "right") for h in (
                    "PSI", "KS p", "chi-square p", "MMD p")), "why"], rows)


def demo_observations(plan: Any, seed: int = 0) -> Any:
    """Synthetic observations of a plan's first stage, drawn at each metric's baseline.

    Labelled ``source = synthetic``: they show the file format and the decision, nothing more.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    stage = plan.stages[0]
    admitted = plan.stage_segments(0)
    dims = {dim: [v for d, v in admitted if d == dim] for dim in plan.segments}
    cells = [dict(zip(dims, combo, strict=True)) for combo in
             __import__("itertools").product(*dims.values())] or [{}]
    per_cell = int(max(stage.min_exposures, 1000) * 2 / len(cells))
    records = []
    for hour in range(1, 4):
        for metric in plan.stage_metrics(0):
            for arm in ("control", "treatment"):
                for cell in cells:
                    record: dict[str, Any] = {"stage": stage.name, "arm": arm,
                                              "metric": metric.name, **cell}
                    if metric.kind == "mean":
                        sd = metric.sd or 1.0
                        record.update(n=per_cell, mean=rng.normal(metric.baseline or 0.0,
                                                                  sd / np.sqrt(per_cell)),
                                      var=sd * sd)
                    else:
                        record.update(exposures=per_cell,
                                      events=int(rng.binomial(per_cell, metric.baseline or 0.0)))
                    record.update(time=f"2026-01-01T{hour:02d}:00:00Z", source="synthetic")
                    records.append(record)
    return pd.DataFrame(records)


def demo_step(out: Path) -> list[Any]:
    """The example rollout plan, synthetic observations, a decision and a quick simulation."""
    import json
    import shutil

    from scaleguard.cli.demo import Written
    from scaleguard.safety import (
        EXAMPLE_PLAN,
        Scenario,
        check_observations,
        decide,
        initial_state,
        load_plan,
        rate_bound,
        simulate,
    )

    plan_path = out / "rollout_plan.yaml"
    shutil.copyfile(EXAMPLE_PLAN, plan_path)
    plan = load_plan(plan_path)
    obs_path = out / "rollout_observations.csv"
    frame = demo_observations(plan)
    frame.to_csv(obs_path, index=False)
    rows = check_observations(frame, plan)
    started = float(rows["time"].min()) - 3600.0
    decision = decide(plan, initial_state(plan, started), rows, float(rows["time"].max()) + 600)
    decision_path = out / "rollout_decision.json"
    decision_path.write_text(json.dumps(decision.as_dict(), indent=2) + "\n", encoding="utf-8")
    sim = simulate(plan, Scenario("segment", "harmful_output", "region=eu", factor=3.0),
                   runs=100, seed=0)
    sim_path = out / "rollout_simulation.json"
    sim_path.write_text(json.dumps(sim.as_dict(), indent=2) + "\n", encoding="utf-8")
    harm = rows[(rows["metric"] == "harmful_output") & (rows["arm"] == "treatment")]
    bound = rate_bound(int(harm["events"].sum()), int(harm["exposures"].sum()),
                       next_exposures=plan.simulation.exposures_per_look * plan.stages[1].traffic
                       * 24)
    bound_path = out / "rollout_harm_bound.json"
    bound_path.write_text(json.dumps(bound.as_dict(), indent=2) + "\n", encoding="utf-8")
    av = sim.outcome("always_valid")
    return [
        Written(plan_path, f"example rollout plan, {len(plan.stages)} stages "
                           "(scaleguard rollout validate)"),
        Written(obs_path, f"synthetic observations of stage {plan.stages[0].name!r}"),
        Written(decision_path, f"decision: {decision.action} "
                               f"(scaleguard rollout decide --json)"),
        Written(sim_path, f"100 simulated rollouts, 3x harm in region=eu: always-valid gates "
                          f"roll back {av.rollback_rate:.0%} (scaleguard rollout simulate)"),
        Written(bound_path, f"harm rate <= {bound.clopper_pearson_upper:.2g} at 95% "
                            "(scaleguard safety bound)"),
    ]
