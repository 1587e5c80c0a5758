"""``scaleguard monitor ingest|check|watch|runs|alerts|ack|resolve``: metric logs into a store,
faults out, alerts dealt with."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, err_console, print_json
from scaleguard.cli._store_option import STORE_OPTION
from scaleguard.cli._table import Column, print_table, table_view
from scaleguard.errors import InputError

monitor_app = typer.Typer(help="Track runs, detect faults in metric logs, follow live logs.",
                          no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")

ON_BAD_OPTION = typer.Option("skip", "--on-bad", help="Malformed lines: skip (and list them) "
                             "or reject the file.")
ADD_OPTION = typer.Option(None, "--add", help="Add a detector: DETECTOR:METRIC[,name=value], "
                          "e.g. plateau:loss or burn_rate:error_rate,slo=0.999. Repeatable.")
NO_DEFAULTS_OPTION = typer.Option(False, "--no-defaults", help="Only the --add detectors.")
ALERTS_OPTION = typer.Option(None, "--alerts", help="Append alerts as JSON lines to this file.")
WEBHOOK_OPTION = typer.Option(None, "--webhook", help="POST each alert as JSON to this URL.")
_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
_FAIL_ON = ("never", "warning", "critical")


def _extra(specs: list[str] | None) -> dict[str, list[Any]]:
    from scaleguard.monitor._check import parse_detector_spec

    extra: dict[str, list[Any]] = {}
    for spec in specs or []:
        metric, factory = parse_detector_spec(spec)
        extra.setdefault(metric, []).append(factory)
    return extra


def _alert_sinks(alerts: Path | None, webhook: str | None) -> list[Any]:
    from scaleguard.monitor import JsonlAlertSink, WebhookAlertSink

    sinks: list[Any] = []
    if alerts is not None:
        sinks.append(JsonlAlertSink(alerts))
    if webhook is not None:
        sinks.append(WebhookAlertSink(webhook))
    return sinks


def _fmt(value: float) -> str:
    return f"{value:.6g}"


@monitor_app.command("ingest")
def ingest_command(
    file: Path = typer.Argument(..., help="Metric log: .csv/.tsv, .jsonl, W&B or MLflow CSV "
                                "export, TensorBoard event file or folder."),
    run: str | None = typer.Option(None, "--run", help="Run name (default: the file's stem)."),
    store: str | None = STORE_OPTION,
    on_bad: str = ON_BAD_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a metric log into the store as one run (or one per run the file names)."""
    from scaleguard.monitor import open_store
    from scaleguard.monitor._ingest import ingest_log, read_metric_log

    log = read_metric_log(file, on_bad=on_bad)
    sink = open_store(store)
    try:
        written = ingest_log(log, sink, run)
    finally:
        sink.close()
    if as_json:
        print_json({**log.as_dict(), "runs_written": [r.as_dict() for r in written]})
        return
    if log.bad_lines:
        err_console.print(log.bad_summary(), style="yellow", markup=False, highlight=False)
    print_table(console, f"ingested {file} ({log.format}) into {getattr(sink, 'path', store)}",
                ["run", "id", Column("points", "right"), "metrics"],
                [[Text(info.name), info.run_id, str(info.points), Text(", ".join(log.metrics))]
                 for info in written])


@monitor_app.command("check")
def check_command(
    file: Path | None = typer.Argument(None, help="Metric log to check (or use --run)."),
    run: str | None = typer.Option(None, "--run", help="Check a stored run (name or id)."),
    store: str | None = STORE_OPTION,
    on_bad: str = ON_BAD_OPTION,
    add: list[str] | None = ADD_OPTION,
    no_defaults: bool = NO_DEFAULTS_OPTION,
    metric: list[str] | None = typer.Option(None, "--metric", help="Only these metrics."),
    alerts: Path | None = ALERTS_OPTION,
    webhook: str | None = WEBHOOK_OPTION,
    fail_on: str = typer.Option("never", "--fail-on", help="Exit with status 1 when an event "
                                "of this severity or worse is found: never, warning, critical."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the detectors over a metric log or a stored run and print the events found."""
    from scaleguard.monitor import Alert, open_store
    from scaleguard.monitor._check import check_frame
    from scaleguard.monitor._events import severity_rank
    from scaleguard.monitor._ingest import read_metric_log

    if fail_on not in _FAIL_ON:
        raise InputError(f"--fail-on: expected one of {', '.join(_FAIL_ON)}, got {fail_on!r}")
    if (file is None) == (run is None):
        raise InputError("check: give a FILE or --run NAME (one of them)")
    extra = _extra(add)
    if file is not None:
        log = read_metric_log(file, on_bad=on_bad)
        frame = log.frame.copy()
        if len(log.runs) > 1:
            frame["name"] = frame["run"] + ":" + frame["name"]
        source, run_name = str(file), file.stem
        if log.bad_lines and not as_json:
            err_console.print(log.bad_summary(), style="yellow", markup=False, highlight=False)
    else:
        assert run is not None
        opened = open_store(store, read_only=True)
        try:
            info = opened.resolve(run)
            frame = opened.frame(info.run_id)
        finally:
            opened.close()
        source, run_name = f"run {info.name} ({info.run_id})", info.name
    result = check_frame(frame, source=source, extra=extra, defaults=not no_defaults,
                         metrics=metric)
    sinks = _alert_sinks(alerts, webhook)
    for event in result.events:
        for sink in sinks:
            sink.emit(Alert.from_event(event, run_name, time.time()))
    for sink in sinks:
        sink.close()
    if as_json:
        print_json(result.as_dict())
    else:
        _print_events(result)
    worst = max((severity_rank(e.severity) for e in result.events), default=-1)
    if fail_on != "never" and worst >= severity_rank(fail_on):
        raise typer.Exit(1)


def _print_events(result: Any) -> None:
    print_table(console, f"{result.source}: {result.points} points, {len(result.metrics)} "
                         f"metrics, {len(result.events)} events",
                [Column("step", "right"), "metric", "severity", "detector",
                 Column("value", "right"), "what"],
                [[str(e.step), Text(e.metric), Text(e.severity, style=_STYLE[e.severity]),
                  e.detector, _fmt(e.value), Text(e.message)] for e in result.events], key=2)
    if not result.events:
        console.print("no faults found", style="green")
    for e in result.events:
        if e.action:
            console.print(f"step {e.step} {e.metric}: {e.action}", markup=False,
                          highlight=False)


def _watch_view(path: Path, watcher: Any) -> Group:
    state = watcher.state
    width = console.width
    latest = table_view(f"watching {path} — {sum(state.points.values())} points, "
                        f"{state.alert_count} alerts, {state.bad_count} malformed lines",
                        ["metric", *(Column(h, "right") for h in ("step", "value", "points"))],
                        [[Text(name), str(state.latest[name][0]), _fmt(state.latest[name][1]),
                          str(state.points[name])] for name in sorted(state.latest)],
                        width=width)
    recent = table_view("latest alerts", [Column("step", "right"), "metric", "severity", "what"],
                        [[str(a.step), Text(a.metric), Text(a.severity, style=_STYLE[a.severity]),
                          Text(a.message)] for a in list(state.alerts)[-10:]], width=width, key=2)
    parts: list[Any] = [latest, recent]
    if state.bad_lines:
        last = state.bad_lines[-1]
        parts.append(Text(f"skipped malformed line {last.line}: {last.reason}", style="yellow"))
    return Group(*parts)


@monitor_app.command("watch")
def watch_command(
    file: Path = typer.Argument(..., help="A growing .csv or .jsonl metric log."),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between reads."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many "
                                          "seconds (default: until Ctrl-C)."),
    add: list[str] | None = ADD_OPTION,
    no_defaults: bool = NO_DEFAULTS_OPTION,
    alerts: Path | None = ALERTS_OPTION,
    webhook: str | None = WEBHOOK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Follow a growing metric log: a live table of the latest values and alerts.

    Malformed lines are counted and shown, never fatal. With --json, prints the alerts and
    the final state as JSON when it stops.
    """
    from scaleguard.monitor._watch import LogFollower, Watcher

    if not 0 < interval < math.inf:
        raise InputError(f"--interval: expected seconds > 0, got {interval}")
    if duration is not None and not duration >= 0:  # NaN too: it never compares as reached
        raise InputError(f"--duration: expected seconds >= 0, got {duration}")
    watcher = Watcher(LogFollower(file), extra=_extra(add), defaults=not no_defaults)
    sinks = _alert_sinks(alerts, webhook)
    found: list[Any] = []
    deadline = None if duration is None else time.monotonic() + duration
    live = None if as_json else Live(_watch_view(file, watcher), console=console,
                                     refresh_per_second=4, transient=False)
    try:
        if live is not None:
            live.start()
        while True:
            new = watcher.poll()
            found += new
            for alert in new:
                for sink in sinks:
                    sink.emit(alert)
            if live is not None:
                live.update(_watch_view(file, watcher))
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(interval if deadline is None
                       else max(0.0, min(interval, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        for sink in sinks:
            sink.close()
    if as_json:
        state = watcher.state
        print_json({"source": str(file), "alerts": [a.as_dict() for a in found],
                    "latest": {k: {"step": s, "value": v} for k, (s, v) in state.latest.items()},
                    "points": dict(state.points), "bad_lines": state.bad_count,
                    "last_bad_lines": [b.as_dict() for b in state.bad_lines]})


@monitor_app.command("runs")
def runs_command(
    store: str | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the runs in the store, newest first."""
    from scaleguard.monitor import open_store

    opened = open_store(store, read_only=True)
    try:
        runs = opened.runs()
    finally:
        opened.close()
    if as_json:
        print_json([r.as_dict() for r in runs])
        return
    rows: list[list[str | Text]] = [[Text(info.name), info.run_id, info.status,
             time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.started_at)) + " UTC",
             str(info.points)] for info in runs]
    print_table(console, f"{len(runs)} runs in {getattr(opened, 'path', store)}",
                ["name", "id", "status", "started", Column("points", "right")], rows)


@monitor_app.command("alerts")
def alerts_command(
    run: str | None = typer.Option(None, "--run", help="Only this run (name or id)."),
    open_only: bool = typer.Option(False, "--open", help="Only alerts nobody has "
                                   "acknowledged or resolved yet."),
    severity: str = typer.Option("info", "--severity", help="At least this severity: info, "
                                 "warning or critical."),
    limit: int = typer.Option(100, "--limit", min=1, help="The newest this many."),
    store: str | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List stored alerts, newest first, with their ids and states."""
    from scaleguard.monitor import open_store

    opened = open_store(store, read_only=True)
    try:
        run_id = opened.resolve(run).run_id if run is not None else None
        alerts = opened.alerts(run_id, state="open" if open_only else None,
                               min_severity=severity, limit=limit)[::-1]
        names = {info.run_id: info.name for info in opened.runs()}
    finally:
        opened.close()
    if as_json:
        print_json([{**a.as_dict(), "run_name": names.get(a.run, a.run)} for a in alerts])
        return
    print_table(console, f"{len(alerts)} {'open ' if open_only else ''}alerts in "
                         f"{getattr(opened, 'path', store)}",
                [Column("id", "right"), "state", "severity", "run", Column("step", "right"),
                 "title"],
                [[str(a.alert_id), a.state, a.severity, Text(names.get(a.run, a.run)),
                  "" if a.step is None else str(a.step), Text(a.title)] for a in alerts])


def _set_state(ids: list[int], state: str, store: str | None, as_json: bool) -> None:
    from scaleguard.monitor import open_store

    opened = open_store(store)
    try:
        missing = [i for i in ids if opened.alert(i) is None]
        if missing:  # refuse the whole command before changing anything
            raise InputError(f"alert {missing[0]}: no such alert in store "
                             f"{getattr(opened, 'path', store)}")
        changed = [opened.set_alert_state(i, state) for i in ids]
    finally:
        opened.close()
    if as_json:
        print_json([a.as_dict() for a in changed])
        return
    for a in changed:
        console.print(f"alert {a.alert_id} {state}: {a.line()}", markup=False)


IDS_ARGUMENT = typer.Argument(..., help="Alert ids (from `scaleguard monitor alerts`).")


@monitor_app.command("ack")
def ack_command(ids: list[int] = IDS_ARGUMENT, store: str | None = STORE_OPTION,
                as_json: bool = JSON_OPTION) -> None:
    """Acknowledge alerts: someone owns them (they stop counting as open)."""
    _set_state(ids, "acknowledged", store, as_json)


@monitor_app.command("resolve")
def resolve_command(ids: list[int] = IDS_ARGUMENT, store: str | None = STORE_OPTION,
                    as_json: bool = JSON_OPTION) -> None:
    """Resolve alerts: dealt with."""
    _set_state(ids, "resolved", store, as_json)


def demo_step(out: Path) -> list[Any]:
    """The demo's monitoring part: a synthetic training log with planted faults, logged through
    the tracking API into a store (alerts to a JSONL file as they happen), then checked."""
    import json

    from scaleguard.cli.demo import Written
    from scaleguard.monitor import DuckDBStore, JsonlAlertSink, start
    from scaleguard.monitor._check import check_frame
    from scaleguard.monitor._synthetic import Fault, synthetic_training_log

    faults = (Fault("spike", 1500, 0.3), Fault("nan", 2200), Fault("throughput_drop", 2600, 0.3))
    frame = synthetic_training_log(3000, seed=0, faults=faults)
    log_path = out / "monitor_training_log.csv"
    wide = frame.pivot(index="step", columns="name", values="value").reset_index()
    wide.to_csv(log_path, index=False, na_rep="nan")
    store_path, alerts_path = out / "monitor_runs.duckdb", out / "monitor_alerts.jsonl"
    for stale in (store_path, Path(f"{store_path}.wal"), alerts_path):
        stale.unlink(missing_ok=True)  # a rerun starts afresh
    with DuckDBStore(store_path) as store:
        with start("demo-train", {"synthetic": True, "faults": [f.kind for f in faults]},
                   store=store, alert_sinks=[JsonlAlertSink(alerts_path)]) as run:
            columns = ("loss", "grad_norm", "tokens_per_s")
            values = wide[list(columns)].to_numpy(dtype=float).tolist()
            for step, row in zip(wide["step"].tolist(), values, strict=True):
                run.log(dict(zip(columns, row, strict=True)), step=int(step))
        alerts = len(store.alerts(run.run_id))
    check_path = out / "monitor_check.json"
    result = check_frame(frame, source=str(log_path))
    check_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    planted = ", ".join(f"{f.kind}@{f.step}" for f in faults)
    return [
        Written(log_path, f"synthetic training log, 3000 steps, planted: {planted}"),
        Written(store_path, "the run logged through scaleguard.monitor.start (DuckDB store)"),
        Written(alerts_path, f"{alerts} alerts raised while logging"),
        Written(check_path, f"scaleguard monitor check --json: {len(result.events)} events"),
    ]
