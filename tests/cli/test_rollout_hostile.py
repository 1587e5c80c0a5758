"""``scaleguard rollout decide`` on hostile observation files, state folders and options: exit 0
or exit 2 with one line naming the file, row or field, never a traceback (the CSV plans and
tables are fuzzed in tests/fuzz/test_fuzz_cli.py; here JSONL rows, state files, ``--rollout``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._hostile import dumps, examples, hostile_value, mutated, raw_garbage, to_bytes
from tests.fuzz.test_fuzz_cli import PLAN, cli

NOW = "2026-01-01T02:00:00Z"
ROWS = [{"stage": "all", "arm": arm, "metric": "harm", "region": "us", "exposures": 20000,
         "events": events, "time": "2026-01-01T01:00:00Z", "window": "w1"}
        for arm, events in (("control", 20), ("treatment", 21))]
FUZZ = settings(max_examples=examples(15), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _plan(folder: Path) -> Path:
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"\n".join(to_bytes(dumps(r)) for r in rows) + b"\n")
    return path


def test_a_true_count_is_refused_naming_the_row(tmp_path):
    # JSON's true was read as the count 1 by pandas' to_numeric: now the row is named.
    rows = [{**ROWS[0], "exposures": True}, ROWS[1]]
    status, err = cli(["rollout", "decide", _plan(tmp_path), "--observations",
                       _jsonl(tmp_path / "obs.jsonl", rows), "--now", NOW])
    assert status == 2
    assert "obs.jsonl: row 1 (line 1): column 'exposures'" in err and "true or false" in err


@pytest.mark.parametrize("rollout_id", ["a\x00b", "\ud800"])
def test_a_rollout_id_no_store_can_hold_is_refused(tmp_path, rollout_id):
    # A lone surrogate was a RuntimeError inside DuckDB's driver, a NUL a PostgreSQL DataError:
    # both tracebacks.
    status, err = cli(["rollout", "decide", _plan(tmp_path), "--observations",
                       _jsonl(tmp_path / "obs.jsonl", ROWS), "--store",
                       tmp_path / "store.duckdb", "--rollout", rollout_id, "--now", NOW])
    assert status == 2 and err.startswith("scaleguard: error: --rollout: ")


@FUZZ
@given(rows=st.lists(st.one_of(mutated(ROWS[0]), st.dictionaries(
    st.sampled_from(sorted(ROWS[0])), hostile_value, max_size=8)), min_size=1, max_size=4))
def test_hostile_jsonl_observations_decide_or_are_refused(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("obs")
    cli(["rollout", "decide", _plan(folder), "--observations",
         _jsonl(folder / "obs.jsonl", [*ROWS, *rows]), "--state", folder / "state", "--now", NOW,
         "--json"])


@FUZZ
@given(data=st.data())
def test_hostile_state_files_are_refused_naming_the_file(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("state")
    plan, observations = _plan(folder), _jsonl(folder / "obs.jsonl", ROWS)
    state = folder / "state"
    assert cli(["rollout", "decide", plan, "--observations", observations, "--state", state,
                "--now", NOW])[0] == 0
    good = json.loads((state / "state.json").read_text())
    hostile = data.draw(st.one_of(mutated(good).map(lambda d: to_bytes(dumps(d))), raw_garbage))
    (state / "state.json").write_bytes(hostile)
    status, err = cli(["rollout", "decide", plan, "--observations", observations, "--state",
                       state, "--now", NOW])
    if status == 2:
        assert "state.json" in err or "--state" in err, err


def test_a_negative_seed_is_refused(tmp_path):
    # numpy's SeedSequence raised a bare ValueError: a traceback.
    status, err = cli(["rollout", "simulate", _plan(tmp_path), "--runs", "5", "--seed", "-1"])
    assert status == 2 and err.startswith("scaleguard: error: --seed: ")


def test_a_process_pool_is_never_larger_than_its_work(tmp_path, monkeypatch):
    # With the fork start method a pool forks every worker up front: `--workers 100000` on
    # five runs forked 100,000 processes (the machine stalled). Counted, not forked, here.
    import scaleguard.compute._executor as executor

    sizes: list[int] = []

    class Recording(executor.SerialExecutor):
        def __init__(self, max_workers: int) -> None:
            sizes.append(max_workers)

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def map(self, fn, items, chunksize=1):  # type: ignore[override]
            return map(fn, items)

    monkeypatch.setattr(executor, "ProcessPoolExecutor", Recording)
    status, _ = cli(["rollout", "simulate", _plan(tmp_path), "--runs", "5", "--executor",
                     "process", "--workers", "1000", "--json"])
    assert status == 0 and sizes and max(sizes) <= 5
    status, err = cli(["rollout", "simulate", _plan(tmp_path), "--runs", "5", "--executor",
                       "process", "--workers", "100000"])
    assert status == 2 and "--workers: expected 1 to 1024" in err
