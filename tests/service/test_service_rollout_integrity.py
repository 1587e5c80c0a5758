"""Observation integrity over HTTP: the service screens windows exactly as `rollout decide`.

Each bad-data case of issue #12 that reaches the service: retries, misdated rows, huge counts,
an unvouched start, rows without a time; and one sequence decided by both faces."""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import yaml

from scaleguard.cli import main
from scaleguard.safety import FileRolloutStore, initial_state, parse_plan

HOUR = 3600.0
T0 = time.time()
PLAN = {
    "name": "integrity-http", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.02, "baseline": 0.01}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "min_exposures": 20_000, "min_duration": "1h",
                "max_duration": "1d"},
               {"name": "all", "traffic": 1.0}],
}


def batch(exposures=6000, at=T0 + 600, **extra):
    return [{"stage": "pilot", "arm": arm, "metric": "harm", "region": region,
             "exposures": exposures, "events": exposures // 100, "time": at, **extra}
            for arm in ("control", "treatment") for region in ("us", "eu")]


def new_rollout(client, auth, name, **body):
    response = client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": name,
                                                     "started_at": T0, **body}, headers=auth)
    assert response.status_code == 201, response.text
    return f"/api/v1/rollouts/{name}/observations"


def post(client, auth, url, rows, now, status=200):
    response = client.post(url, json={"rows": rows, "now": now}, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


def test_reposting_the_same_rows_does_not_double_the_counts(client, auth):
    url = new_rollout(client, auth, "retry")
    post(client, auth, url, batch(), T0 + 1200)
    again = post(client, auth, url, batch(), T0 + 1.5 * HOUR)
    assert again["action"] == "continue"
    assert any("12000 of 20000 minimum exposures" in r for r in again["reasons"])
    assert "4 duplicate windows ignored" in again["notes"][0]


def test_a_row_dated_far_ahead_holds_and_is_not_kept(client, auth):
    url = new_rollout(client, auth, "future")
    rows = batch(exposures=20_000)
    rows[0] = {**rows[0], "time": 1e300}
    held = post(client, auth, url, rows, T0 + 1.5 * HOUR)
    assert held["action"] == "hold" and "ahead of the decision time" in held["reasons"][0]
    # The misdated row was not stored, so it cannot switch the late-data check off later: the
    # next look, hours on, with the row re-sent correctly dated, sees every row as late.
    late = post(client, auth, url, batch(exposures=20_000)[:1], T0 + 5 * HOUR)
    assert late["action"] == "hold" and "late data" in late["reasons"][0]


def test_huge_counts_and_unvouched_starts_are_refused(client, auth):
    url = new_rollout(client, auth, "huge")
    rows = batch()
    rows[1] = {**rows[1], "exposures": 1e300}
    response = client.post(url, json={"rows": rows, "now": T0 + HOUR}, headers=auth)
    assert response.status_code == 422 and "rows: row 2" in response.json()["error"]
    assert "at most 2^53" in response.json()["error"]
    for started_at, message in ((0.0, "data.max_age"), (T0 + 10 * HOUR, "ahead")):
        response = client.post("/api/v1/rollouts", json={"plan": PLAN, "started_at": started_at},
                               headers=auth)
        assert response.status_code == 422 and message in response.json()["error"]


def test_rows_without_a_time_are_dated_on_arrival_and_later_timed_rows_still_count(client,
                                                                                    auth):
    url = new_rollout(client, auth, "untimed")
    untimed = [{k: v for k, v in r.items() if k != "time"} for r in batch()]
    post(client, auth, url, untimed, T0 + 1200)
    timed = post(client, auth, url, batch(exposures=5000, at=T0 + 1.4 * HOUR), T0 + 1.5 * HOUR)
    # Both posts count (22,000 treatment exposures, over the 20,000 minimum): it advances.
    assert timed["action"] == "advance" and timed["stage"] == "all"


_PLACE = re.compile(r"\S+: row \d+ \(line \d+\)")


def _comparable(decision: dict) -> dict:
    text = json.loads(_PLACE.sub("ROW", json.dumps(decision)))
    return {k: text[k] for k in ("action", "stage", "traffic", "reasons", "notes", "gates")}


def test_the_service_and_the_cli_decide_the_same_on_the_same_rows(client, auth, tmp_path,
                                                                   capsys):
    url = new_rollout(client, auth, "same")
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(PLAN))
    state = tmp_path / "state"
    FileRolloutStore(state).save_state(initial_state(parse_plan(PLAN), T0))
    first, second = batch(), batch(exposures=8000, at=T0 + 1.2 * HOUR)
    future = batch(exposures=100, at=T0 + 1.3 * HOUR)
    future[2] = {**future[2], "time": T0 + 30 * HOUR}
    steps = [(first, first, T0 + 0.5 * HOUR),                     # too young
             (first + second, first + first + second, T0 + 1.5 * HOUR),  # a retry
             (future, first + second + future, T0 + 1.6 * HOUR)]  # one misdated row
    for posted, file_rows, now in steps:
        via_http = post(client, auth, url, posted, now)
        pd.DataFrame(file_rows).to_csv(tmp_path / "obs.csv", index=False)
        assert main(["rollout", "decide", str(plan_path), "--observations",
                     str(tmp_path / "obs.csv"), "--state", str(state), "--now", repr(now),
                     "--json"]) == 0
        via_cli = json.loads(capsys.readouterr().out)
        assert _comparable(via_http) == _comparable(via_cli)
    assert via_cli["action"] == "hold" and "untrusted" in via_cli["reasons"][0]


def test_creating_a_rollout_reports_its_feasibility(client, auth):
    three = {**PLAN, "name": "three",
             "stages": [{"name": f"s{i}", "traffic": t, "min_exposures": "50k",
                         "max_duration": "1d"} for i, t in enumerate((0.01, 0.1, 1.0))],
             "simulation": {"exposures_per_look": "200k", "look_interval": "1h"}}
    response = client.post("/api/v1/rollouts", json={"plan": three}, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["feasibility"]["stages"][0]["time_to_min_exposures"] == 90_000
    assert "stage 's0' needs 1.04d to reach its 50k minimum" in body["warnings"][0]


def test_a_row_at_time_zero_or_an_unknown_segment_never_advances(client, auth):
    url = new_rollout(client, auth, "stray")
    rows = batch(exposures=20_000, at=T0 + 1800)  # a 30-minute-old stage, 1 h minimum
    rows.append({**rows[0], "time": 0.0, "exposures": 1, "events": 0})
    held = post(client, auth, url, rows, T0 + 1.2 * HOUR)
    assert held["action"] == "hold" and "rows: row 5" in held["reasons"][0]
    assert "before stage 'pilot' started" in held["reasons"][0]
    mars = batch(at=T0 + 1.1 * HOUR)
    mars[3] = {**mars[3], "region": "mars"}
    response = client.post(url, json={"rows": mars, "now": T0 + 1.2 * HOUR}, headers=auth)
    assert response.status_code == 422
    assert "rows: row 4 (line 4): column 'region' is 'mars'" in response.json()["error"]
