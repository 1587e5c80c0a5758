"""Running a study: read the files it names, fit its ladder, gather safety evidence, assess.

This is the edge of the package: it reads the ladder, the monitoring store and the alert log,
and fits the law (``scaleguard.laws``); everything after is :func:`assess`, which is pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scaleguard.compute import Executor, Progress
from scaleguard.errors import ConfigError, ScaleguardError, TableError
from scaleguard.io import read_ladder, read_table
from scaleguard.laws import LawFit
from scaleguard.limits._assess import Evidence, assess
from scaleguard.limits._assessment import Assessment
from scaleguard.limits._law_view import LawView
from scaleguard.limits._safety_checks import GateState, OpenAlert
from scaleguard.limits._study import MonitoringSpec, RolloutSpec, Study
from scaleguard.resources import get_device, read_calibration

__all__ = ["fit_ladder", "gather_evidence", "run_study", "read_alert_log", "rollout_evidence"]

# The hint the table readers end a missing-column message with (io's missing_column_error).
_COL_HINT = re.compile(r"map yours with --col (\w+)=Header")


def fit_ladder(study: Study, frame: pd.DataFrame, *, executor: str | Executor | None = None,
               progress: Progress | None = None) -> LawView:
    """Fit the study's law to ``frame`` and bootstrap it as the study asks."""
    spec = study.ladder
    fit = LawFit(form=spec.form).fit(frame)
    resamples: list[dict[str, float]] = []
    summary = fit.result_.as_dict()
    if spec.bootstrap > 0:
        boot = fit.bootstrap(spec.bootstrap, spec.seed, executor=executor,
                             level=spec.confidence, progress=progress)
        resamples = [dict(zip(boot.param_names, map(float, row), strict=True))
                     for row in boot.samples]
        summary = fit.result_.as_dict()
    return LawView(dict(fit.params_), tuple(resamples), summary)


def _alert_from_dict(row: dict[str, Any]) -> OpenAlert:
    step = row.get("step")
    return OpenAlert(run=str(row.get("run", "")), metric=str(row.get("metric") or
                                                             row.get("title", "")),
                     severity=str(row.get("severity", "warning")),
                     step=math.nan if step is None else float(step),
                     message=str(row.get("message") or row.get("title", "")))


def read_alert_log(path: Path) -> list[OpenAlert]:
    """Alerts from a JSONL alert log (what ``scaleguard.monitor``'s JSONL sink writes)."""
    frame = read_table(path, required=["severity"])
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [_alert_from_dict({str(k): v for k, v in row.items()}) for row in rows]


def _store_alerts(spec: MonitoringSpec, where: str | Path) -> list[OpenAlert]:
    """The open alerts of the store (acknowledged and resolved ones are being dealt with)."""
    from scaleguard.monitor import is_postgres_url, open_store

    if not is_postgres_url(where) and not Path(where).exists():
        raise ConfigError(f"monitoring.store: {where} does not exist")
    store = open_store(where, read_only=True)
    try:
        run_ids = [store.resolve(name).run_id for name in spec.runs] if spec.runs else [None]
        names = {info.run_id: info.name for info in store.runs()}
        alerts = []
        for run_id in run_ids:
            for alert in store.alerts(run_id, state="open"):
                row = alert.as_dict()
                row["run"] = names.get(alert.run, alert.run)
                alerts.append(_alert_from_dict(row))
        return alerts
    finally:
        store.close()


def _gate_state(gate: Any) -> GateState:
    """A ``scaleguard.safety`` gate result as the safety check reads it."""
    detail = (f"estimate {gate.estimate:.3g} against limit {gate.limit:.3g}, adjusted p "
              f"{gate.adjusted_p:.3g}, {gate.treatment_exposures:,.0f} exposures")
    return GateState(gate.key, gate.verdict, detail)


def rollout_evidence(spec: RolloutSpec, study: Study) -> tuple[list[GateState], dict[str, Any]]:
    """Gates of the rollout's current stage, as the safety controller decides them now.

    Read-only: the saved state is read, never written (the controller's own command does that).
    With no saved state the rollout is taken to be at its first stage.
    """
    from scaleguard.safety import FileRolloutStore, load_plan
    from scaleguard.safety import read_observations as read_rollout_observations

    plan = load_plan(study.resolve(spec.plan))
    summary: dict[str, Any] = {"plan": plan.name, "stages": len(plan.stages)}
    if spec.rollout_id is not None:
        return _stored_rollout_evidence(spec.rollout_id, plan, study, summary)
    store = FileRolloutStore(study.resolve(spec.state)) if spec.state is not None else None
    state = store.load_state() if store is not None else None
    if state is not None and state.plan != plan.name:
        raise ConfigError(f"rollout.state: {spec.state} holds rollout {state.plan!r}, not plan "
                          f"{plan.name!r}")
    if spec.observations is None:
        stage = plan.stages[state.stage_index if state else 0]
        summary.update(stage=stage.name, action="none", reasons="no observations yet")
        return [GateState("observations", "continue", "no observations yet")], summary
    rows = read_rollout_observations(study.resolve(spec.observations), plan)
    return _decided(plan, state, rows, summary)


def _stored_rollout_evidence(rollout_id: str, plan: Any, study: Study,
                             summary: dict[str, Any]) -> tuple[list[GateState], dict[str, Any]]:
    """The rollout as the monitoring store keeps it (the service's, or `decide --store`'s)."""
    from scaleguard.monitor import open_store
    from scaleguard.safety import DatabaseRolloutStore

    if study.monitoring is None or study.monitoring.store is None:
        raise ConfigError("rollout.rollout_id: the rollout is read from monitoring.store; "
                          "name the store there (or with assess --store)")
    store = open_store(_store_of(study, study.monitoring.store), read_only=True)
    try:
        rollout = DatabaseRolloutStore(store, rollout_id)
        state = rollout.load_state()
        if state is None:
            raise ConfigError(f"rollout.rollout_id: no rollout {rollout_id!r} in "
                              f"{study.monitoring.store}")
        if state.plan != plan.name:
            raise ConfigError(f"rollout.rollout_id: {rollout_id} is a rollout of plan "
                              f"{state.plan!r}, not {plan.name!r}")
        totals = rollout.totals(plan)
    finally:
        store.close()
    return _decided(plan, state, totals, summary)


def _decided(plan: Any, state: Any, rows: Any, summary: dict[str, Any]
             ) -> tuple[list[GateState], dict[str, Any]]:
    from scaleguard.safety import CellTotals, decide, initial_state

    table = rows.frame if isinstance(rows, CellTotals) else rows  # windows or their totals
    has_time = "time" in table.columns and len(table)
    now = float(table["time"].max()) if has_time else 0.0  # as of the newest observation
    if state is None:
        state = initial_state(plan, float(table["time"].min()) if has_time else now)
    decision = decide(plan, state, rows, now)
    gates = [_gate_state(g) for g in decision.gates]
    if not gates or decision.action == "hold" and not decision.failing:
        # Held for missing or late data (or awaiting approval): never a pass.
        gates.append(GateState("controller", "continue", "; ".join(decision.reasons)))
    if state.status == "rolled_back":
        gates.append(GateState("controller", "fail", "the rollout was rolled back"))
    summary.update(stage=plan.stages[state.stage_index].name, action=decision.action,
                   next_stage=decision.stage, traffic=decision.traffic,
                   reasons="; ".join(decision.reasons))
    if decision.oversight is not None:
        summary["oversight_wall"] = _oversight_wall(plan, decision.oversight,
                                                    state.stage_index)
    return gates, summary


def _oversight_wall(plan: Any, projected: dict[str, Any], stage: int) -> dict[str, Any]:
    """Every stage's review load from the controller's projection (unknowns fail safe)."""
    from scaleguard.safety import oversight_wall

    upper = projected["flag_upper"]
    volume = projected["exposures_per_hour"]
    return oversight_wall(plan, 1.0 if upper is None else upper,
                          math.inf if volume is None else volume, stage).as_dict()


def _store_of(study: Study, store: str) -> str | Path:
    from scaleguard.monitor import is_postgres_url

    return store if is_postgres_url(store) else study.resolve(Path(store))


def gather_evidence(study: Study) -> Evidence:
    """The alerts and gates the study's monitoring store, alert log and rollout plan hold."""
    alerts: list[OpenAlert] = []
    monitored = study.monitoring is not None
    if study.monitoring is not None:
        if study.monitoring.store is not None:
            alerts += _store_alerts(study.monitoring, _store_of(study, study.monitoring.store))
        if study.monitoring.alerts is not None:
            alerts += read_alert_log(study.resolve(study.monitoring.alerts))
    gates: list[GateState] = []
    rollout = None
    if study.rollout is not None:
        gates, rollout = rollout_evidence(study.rollout, study)
    return Evidence(gates=tuple(gates), alerts=tuple(alerts), rollout=rollout,
                    monitored=monitored)


def run_study(study: Study, *, executor: str | Executor | None = None,
              progress: Progress | None = None,
              stage: Callable[[str], None] | None = None) -> Assessment:
    """Assess a loaded study end to end (reads its files; fits; decides)."""
    try:
        return _run_study(study, executor=executor, progress=progress, stage=stage)
    except ScaleguardError as exc:  # a field of the study found bad late: name the file too
        raise study.named(exc) from None


def _run_study(study: Study, *, executor: str | Executor | None,
               progress: Progress | None,
               stage: Callable[[str], None] | None) -> Assessment:
    say = stage or (lambda _: None)
    # Refuse a bad device name before spending seconds on the fit.
    hardware_file = study.hardware.hardware_file
    get_device(study.hardware.device, study.resolve(hardware_file) if hardware_file else None,
               option="hardware.device")
    say("reading the ladder")
    try:
        frame = read_ladder(study.resolve(study.ladder.path), study.ladder.columns or None)
    except TableError as exc:
        # The table readers hint the command line's --col; a study maps its columns in YAML.
        raise TableError(_COL_HINT.sub(r"map yours in the study's ladder.columns, e.g. "
                                       r"ladder: {columns: {\1: Header}}", str(exc))) from None
    say("fitting the scaling law")
    view = fit_ladder(study, frame, executor=executor, progress=progress)
    say("gathering safety evidence")
    evidence = gather_evidence(study)
    calibration = study.hardware.calibration
    measured = (None if calibration is None
                else read_calibration(study.resolve(calibration), kind="training"))
    return assess(study, frame, view, evidence, progress=say, calibration=measured)
