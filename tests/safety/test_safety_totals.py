"""Deciding from a store's cell totals equals deciding from every window ever posted.

The reference is what the service did before it kept totals: every request re-read all stored
windows, checked and screened them together with the new ones (stored first), and decided from
all trusted windows. The store-backed path (:func:`absorb_windows`, what the service runs)
screens only the new rows against the stored windows that share their identities and decides
from the kept totals. On random streams of requests (retries, conflicting repeats, misdated
rows, rows of a stage not yet started, rate and mean metrics, segments) both make the same
decisions and keep the same windows, on DuckDB and on PostgreSQL. Means are multiples of 1/8
and variances of 1/4 so that every sum is exact in floating point: the comparison is exact,
not approximate.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.monitor import open_store
from scaleguard.safety import (
    DatabaseRolloutStore,
    absorb_windows,
    cell_totals,
    check_observations,
    decide,
    initial_state,
    merge_totals,
    parse_plan,
    screen_observations,
)

T0 = 1_700_000_000.0
LOOK = 1200.0
PLAN = parse_plan({
    "name": "totals", "alpha": 0.05,
    "metrics": [{"name": "harm", "guardrail": 0.2, "margin": 0.05, "baseline": 0.05},
                {"name": "latency", "kind": "mean", "margin": 2.0}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.05, "min_exposures": 200, "min_duration": "30m"},
               {"name": "wide", "traffic": 0.5, "min_exposures": 400},
               {"name": "all", "traffic": 1.0}],
})
STAGES = [s.name for s in PLAN.stages]


@st.composite
def windows(draw: Any, look: int) -> dict[str, Any]:
    now = T0 + (look + 1) * LOOK
    row: dict[str, Any] = {"stage": draw(st.sampled_from(STAGES)),
                           "arm": draw(st.sampled_from(["control", "treatment"])),
                           "region": draw(st.sampled_from(["us", "eu"])),
                           # mostly recent; sometimes misdated (ahead, or long before)
                           "time": now - draw(st.sampled_from([0, 60, 600, 1100, -900, 9000]))}
    if draw(st.booleans()):
        exposures = draw(st.integers(0, 40))
        row.update(metric="harm", exposures=exposures,
                   events=draw(st.integers(0, exposures // 10)))
    else:
        row.update(metric="latency", n=draw(st.integers(1, 60)),
                   mean=draw(st.integers(40, 120)) / 8, var=draw(st.integers(0, 40)) / 4)
    if draw(st.booleans()):  # the SDK's first-exposure count (the SRM then tests units)
        row["units"] = draw(st.integers(0, int(row.get("exposures", row.get("n", 0)))))
    return row


@st.composite
def block(draw: Any, look: int) -> list[dict[str, Any]]:
    """One clean look: every arm, region and metric, arms split evenly, at the rollout's
    current stage (``stage`` None: filled in when posted) or sometimes another."""
    stage = None if draw(st.integers(0, 3)) else draw(st.sampled_from(STAGES))
    at = T0 + (look + 1) * LOOK - draw(st.sampled_from([0, 60, 600]))
    out = []
    counted = draw(st.booleans())  # the block's windows carry units
    for region in ("us", "eu"):
        exposures, n = draw(st.integers(100, 400)), draw(st.integers(20, 60))
        for arm in ("control", "treatment"):
            base = {"stage": stage, "arm": arm, "region": region, "time": at}
            out.append({**base, "metric": "harm", "exposures": exposures,
                        "events": exposures // 20 + draw(st.integers(0, 3))})
            out.append({**base, "metric": "latency", "n": n,
                        "mean": draw(st.integers(78, 82)) / 8,
                        "var": draw(st.integers(18, 22)) / 4})
            if counted:
                out[-2]["units"] = exposures // 4 + draw(st.integers(0, 3))
                out[-1]["units"] = n // 2
    return out


@st.composite
def streams(draw: Any) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    for look in range(draw(st.integers(1, 7))):
        rows = draw(block(look)) if draw(st.integers(0, 4)) else []
        rows += draw(st.lists(windows(look), max_size=2 if rows else 8))
        earlier = [r for request in out for r in request]
        if earlier and draw(st.booleans()):
            again = dict(draw(st.sampled_from(earlier)))
            if draw(st.booleans()):  # a conflicting repeat rather than a retry
                again["exposures" if "exposures" in again else "n"] += 1
            rows.insert(draw(st.integers(0, len(rows))), again)
        out.append(rows)
    return out


_PLACE = re.compile(r"\S+: row \d+ \(line \d+\)")
_SEEN = re.compile(r"repeats the window of .*? with")


def _comparable(decision: Any) -> str:
    text = _PLACE.sub("ROW", json.dumps(decision.as_dict(), sort_keys=True))
    return _SEEN.sub("repeats the window of EARLIER with", text)


def _reference(state: Any, kept: list[dict[str, Any]], posted: list[dict[str, Any]],
               now: float) -> tuple[Any, list[dict[str, Any]]]:
    """Every stored window re-read and re-screened with the new ones (stored first)."""
    frame = pd.DataFrame(kept + posted)
    frame.attrs["source"] = "rows"
    rows = check_observations(frame if len(frame) else pd.DataFrame(columns=["stage", "arm",
                                                                             "metric"]), PLAN)
    screened = screen_observations(rows, PLAN, now, STAGES[state.stage_index],
                                   state.stage_started)
    assert set(range(len(kept))) <= set(screened.kept)  # stored windows stay trusted
    fresh = [posted[i - len(kept)] for i in screened.kept if i >= len(kept)]
    return decide(PLAN, state, screened, now), kept + fresh


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def shared_store(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Any:
    """One store per backend for every example (each example is a rollout of its own)."""
    url = str(tmp_path_factory.mktemp("totals") / "totals.duckdb") \
        if request.param == "duckdb" else str(request.getfixturevalue("pg_cluster").database())
    with open_store(url) as store:
        yield store


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(stream=streams())
def test_deciding_from_totals_equals_deciding_from_every_window(shared_store, stream):
    store = shared_store
    rollout = DatabaseRolloutStore(store, uuid.uuid4().hex)
    state = initial_state(PLAN, T0)
    rollout.create(PLAN.name, PLAN.model_dump(mode="json"), state, at=T0)
    kept: list[dict[str, Any]] = []
    for look, request in enumerate(stream):
        now = T0 + (look + 1) * LOOK
        posted = [r if r["stage"] else {**r, "stage": STAGES[state.stage_index]}
                  for r in request]
        expected, kept = _reference(state, kept, posted, now)

        def step(record: Any, stored: Any, posted=posted, now=now, state=state) -> Any:
            absorbed = absorb_windows(PLAN, state, stored, posted, now)
            return absorbed.change(decide(PLAN, state, absorbed.screened, now), None, now)

        decision = rollout.decide_with(step).result
        assert _comparable(decision) == _comparable(expected)
        state = decision.state
    stored = rollout.observations()
    assert stored == kept
    # assess reads the same totals: deciding from them is deciding from every window
    frame = check_observations(pd.DataFrame(kept), PLAN) if kept else pd.DataFrame()
    at = T0 + (len(stream) + 1) * LOOK
    assert _comparable(decide(PLAN, state, rollout.totals(PLAN), at)) == \
        _comparable(decide(PLAN, state, frame if kept else cell_totals(frame, PLAN), at))


@settings(max_examples=30, deadline=None)
@given(stream=streams(), cut=st.integers(0, 20))
def test_totals_of_totals_are_the_totals_of_all_windows(stream, cut):
    rows = [{**r, "stage": r["stage"] or "pilot"} for request in stream for r in request]
    if not rows:
        return
    frame = check_observations(pd.DataFrame(rows), PLAN)
    whole = cell_totals(frame, PLAN).frame
    parts = merge_totals(cell_totals(frame.iloc[:cut].reset_index(drop=True), PLAN),
                         cell_totals(frame.iloc[cut:].reset_index(drop=True), PLAN)).frame
    keys = ["stage", "arm", "metric", "region"]
    pd.testing.assert_frame_equal(whole.sort_values(keys).reset_index(drop=True),
                                  parts.sort_values(keys).reset_index(drop=True))


def test_a_window_of_a_stage_not_yet_started_is_untrusted_and_not_kept(store_url):
    row = {"stage": "wide", "arm": "treatment", "metric": "harm", "region": "us",
           "exposures": 100, "events": 1, "time": T0 + 10}
    with open_store(store_url) as store:
        rollout = DatabaseRolloutStore(store, "r")
        state = initial_state(PLAN, T0)
        rollout.create(PLAN.name, PLAN.model_dump(mode="json"), state, at=T0)

        def step(record: Any, stored: Any) -> Any:
            absorbed = absorb_windows(PLAN, state, stored, [row], T0 + 60)
            return absorbed.change(decide(PLAN, state, absorbed.screened, T0 + 60), None,
                                   T0 + 60)

        decision = rollout.decide_with(step).result
        assert decision.action == "hold"
        assert "stage 'wide' has not started (the rollout is at 'pilot')" in decision.reasons[0]
        assert rollout.observations() == []


def test_windows_of_a_version_3_store_are_keyed_and_summed_by_the_next_decision(tmp_path):
    """``store_v3.duckdb.gz`` was written by the release before totals (see
    tests/monitor/fixtures/make_store_v3.py): 8 windows in ``rollout_rows``, no identities."""
    import gzip
    import shutil
    from pathlib import Path

    from scaleguard.monitor._migrations import SCHEMA_VERSION
    from scaleguard.safety import RolloutState

    path = tmp_path / "v3.duckdb"
    fixture = Path(__file__).parents[1] / "monitor" / "fixtures" / "store_v3.duckdb.gz"
    with gzip.open(fixture) as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    with open_store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 4
        rollout = DatabaseRolloutStore(store, "ro-v3")
        plan = parse_plan(rollout.plan_spec())
        state = rollout.load_state()
        assert state is not None and state.decisions == 2
        old = rollout.observations()
        assert len(old) == 8 and store.rollout_cells("ro-v3") == []
        totals = rollout.totals(plan).frame  # read before any decision: summed on the fly
        assert sorted(totals["exposures"]) == [12_000.0] * 4
        now = max(w["time"] for w in old) + 600

        def step(record: Any, stored: Any) -> Any:
            current = RolloutState.from_dict(record.state)
            retry_and_new = old[:4] + [{**w, "time": now} for w in old[:4]]
            absorbed = absorb_windows(plan, current, stored, retry_and_new, now)
            return absorbed.change(decide(plan, current, absorbed.screened, now), None, now)

        decision = rollout.decide_with(step).result
        assert "4 duplicate windows ignored" in decision.notes[0]
        assert len(rollout.observations()) == 12  # moved, and the 4 new ones
        cells = pd.DataFrame(store.rollout_cells("ro-v3"))
        assert sorted(cells["exposures"]) == [18_000.0] * 4 and set(cells["windows"]) == {3.0}
        assert rollout.totals(plan).frame["exposures"].sum() == 72_000.0
