"""Alert states through the CLI (``monitor alerts|ack|resolve``) and ``assess``'s open count."""

import json

import numpy as np
import pytest

from scaleguard.cli import main
from scaleguard.limits._run import _store_alerts
from scaleguard.limits._study import MonitoringSpec
from scaleguard.monitor import Alert, Batch, RunInfo, open_store


@pytest.fixture
def alerting_store(store_url):
    with open_store(store_url) as store:
        store.open_run(RunInfo("r1", "gpt-small", "running", 0.0))
        store.write(Batch("r1", np.arange(0), np.zeros(0), [], np.zeros(0), alerts=[
            Alert("gpt-small", 1.0, "critical", "nonfinite in loss", "value is nan", "loss", 3),
            Alert("gpt-small", 2.0, "warning", "spike in loss", step=9),
            Alert("gpt-small", 3.0, "info", "checkpoint saved", step=10)]))
    return store_url


def _alerts(capsys, *args):
    assert main(["monitor", "alerts", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_alerts_ack_resolve_round_trip(alerting_store, capsys):
    where = ["--store", alerting_store]
    listed = _alerts(capsys, *where)
    assert [a["title"] for a in listed] == ["checkpoint saved", "spike in loss",
                                            "nonfinite in loss"]  # newest first
    assert {a["state"] for a in listed} == {"open"} and listed[0]["run_name"] == "gpt-small"
    ids = {a["title"]: a["alert_id"] for a in listed}
    assert main(["monitor", "ack", str(ids["nonfinite in loss"]), *where]) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert main(["monitor", "resolve", str(ids["checkpoint saved"]), *where]) == 0
    capsys.readouterr()
    assert [a["title"] for a in _alerts(capsys, "--open", *where)] == ["spike in loss"]
    assert [a["state"] for a in _alerts(capsys, "--severity", "critical", "--run", "gpt-small",
                                        *where)] == ["acknowledged"]
    assert main(["monitor", "alerts", *where]) == 0
    table = capsys.readouterr().out
    assert "3 alerts in" in table and max(len(line) for line in table.splitlines()) <= 80


def test_a_missing_alert_id_changes_nothing_and_exits_2(alerting_store, capsys):
    assert main(["monitor", "ack", "1", "999999", "--store", alerting_store]) == 2
    err = capsys.readouterr().err
    assert "alert 999999: no such alert" in err and err.count("\n") == 1
    assert {a["state"] for a in _alerts(capsys, "--store", alerting_store)} == {"open"}


def test_assess_counts_only_open_alerts(alerting_store, tmp_path):
    with open_store(alerting_store) as store:
        first, second, _ = store.alerts()
        store.set_alert_state(first.alert_id, "acknowledged")
        store.set_alert_state(second.alert_id, "resolved")
    found = _store_alerts(MonitoringSpec(store=alerting_store), alerting_store)
    assert [(a.severity, a.step) for a in found] == [("info", 10)]


def test_assess_store_flag_replaces_the_study_store(tmp_path, monkeypatch):
    from scaleguard.cli.assess import _with_store
    from scaleguard.limits._study import Study

    monkeypatch.chdir(tmp_path)
    study = Study.model_construct(monitoring=None)
    assert _with_store(study, "runs.duckdb").monitoring.store == str(tmp_path / "runs.duckdb")
    url = "postgresql://team@db.example/runs"
    assert _with_store(study, url).monitoring.store == url
