"""Fuzz every CLI reader with hostile files and options (issue #13).

Each case runs the command in-process and asserts what a user must always get: exit 0 (the
input happened to be fine) or exit 2 with exactly one line on stderr, never a traceback, never
a hang (each command has :data:`LIMIT_S` seconds), and, for ``monitor ingest``, a store that is
still readable with every point stored before intact.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._hostile import (
    CASES,
    csv_tables,
    examples,
    hostile_text,
    jsonl_logs,
    raw_garbage,
    time_limit,
    yaml_docs,
)

from scaleguard.cli import main

LIMIT_S = 60  # generous on a loaded 2-core CI machine; a hang runs forever
FUZZ = settings(max_examples=examples(12), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=examples(5))

LADDER_HEADER = ["params", "tokens", "loss"]
# A small Chinchilla-shaped ladder (E=1.8, A=400, B=400, alpha=beta=0.33): nine runs.
LADDER_ROWS = [[f"{n:.6g}", f"{d:.6g}", f"{1.8 + 400 / n**0.33 + 400 / d**0.33:.6g}"]
               for n in (1e7, 3e7, 1e8) for d in (2e8, 6e8, 2e9)]
OBS_HEADER = ["stage", "arm", "metric", "exposures", "events", "time"]
OBS_ROWS = [["all", arm, "harm", "20000", events, "2026-01-01T01:00:00Z"]
            for arm, events in (("control", "20"), ("treatment", "21"))]
PLAN = {"name": "p", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.001}],
        "segments": {"region": ["us", "eu"]},
        "stages": [{"name": "all", "traffic": 1.0, "min_duration": "1h",
                    "max_duration": "10h"}],
        "simulation": {"exposures_per_look": 20000, "look_interval": "1h"}}
HARDWARE = {"devices": {"my-gpu": {"name": "My GPU", "kind": "gpu", "memory": "80GiB",
                                   "memory_bandwidth": 3.35e12, "peak_flops": {"bf16": 989e12},
                                   "tdp": 700, "link_bandwidth": 900e9,
                                   "devices_per_node": 8}}}
MODEL_CONFIG = {"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32,
                "intermediate_size": 14336, "vocab_size": 128256,
                "max_position_embeddings": 8192, "num_key_value_heads": 8}


def cli(argv: Sequence[object]) -> tuple[int, str]:
    """Run the CLI; return (status, stderr). A traceback or a hang fails the test."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), time_limit(LIMIT_S):
        status = main([str(a) for a in argv])
    CASES["cli"] += 1
    text = err.getvalue()
    assert status in (0, 2), (status, text)
    assert "Traceback" not in text, text
    if status == 2 and not text.startswith("Usage: "):  # click's usage errors keep its form
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("scaleguard: error: "), text
    return status, text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@FUZZ
@given(data=csv_tables(LADDER_HEADER, LADDER_ROWS), suffix=st.sampled_from([".csv", ".tsv"]))
def test_ladder_tables_inspect(tmp_path_factory, data, suffix):
    if suffix == ".tsv":
        data = data.replace(b",", b"\t")
    path = _write(tmp_path_factory.mktemp("t") / f"ladder{suffix}", data)
    cli(["inspect", path, "--json"])


@FEW
@given(data=csv_tables(LADDER_HEADER, LADDER_ROWS))
def test_ladder_tables_fit(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("t")
    cli(["fit", _write(folder / "ladder.csv", data), "--json", "--plot", folder / "p.html"])


@FUZZ
@given(data=st.one_of(jsonl_logs(), raw_garbage))
def test_jsonl_ladder_tables(tmp_path_factory, data):
    cli(["inspect", _write(tmp_path_factory.mktemp("t") / "ladder.jsonl", data)])


@FUZZ
@given(data=st.one_of(jsonl_logs(), csv_tables(["step", "loss", "lr"],
                                                [["0", "3.0", "1e-3"], ["1", "2.9", "1e-3"]])),
       on_bad=st.sampled_from(["skip", "reject"]))
def test_metric_logs_ingest_keep_the_store_readable(tmp_path_factory, data, on_bad):
    from scaleguard.monitor import DuckDBStore

    folder = tmp_path_factory.mktemp("t")
    store = folder / "runs.duckdb"
    good = folder / "good.csv"
    good.write_text("step,loss\n0,3.0\n1,2.5\n2,2.0\n")
    assert cli(["monitor", "ingest", good, "--store", store, "--run", "good"])[0] == 0
    suffix = ".jsonl" if data.lstrip().startswith(b"{") else ".csv"
    cli(["monitor", "ingest", _write(folder / f"log{suffix}", data), "--store", store,
         "--on-bad", on_bad, "--json"])
    with DuckDBStore(store, read_only=True) as opened:
        runs = {info.name: info for info in opened.runs()}
        assert opened.series(runs["good"].run_id, "loss").values.tolist() == [3.0, 2.5, 2.0]
        for info in runs.values():  # every stored point is readable and was valid
            frame = opened.frame(info.run_id)
            assert bool((frame["step"] >= 0).all())


@FUZZ
@given(data=st.one_of(jsonl_logs(), raw_garbage))
def test_metric_logs_check(tmp_path_factory, data):
    cli(["monitor", "check", _write(tmp_path_factory.mktemp("t") / "log.jsonl", data),
         "--json"])


@FUZZ
@given(data=yaml_docs(PLAN))
def test_rollout_plans_validate_and_simulate(tmp_path_factory, data):
    plan = _write(tmp_path_factory.mktemp("t") / "plan.yaml", data)
    status, _ = cli(["rollout", "validate", plan])
    if status == 0:
        cli(["rollout", "simulate", plan, "--runs", "20", "--json"])


@FUZZ
@given(plan=st.one_of(st.just(yaml.safe_dump(PLAN).encode()), yaml_docs(PLAN)),
       observations=csv_tables(OBS_HEADER, OBS_ROWS))
def test_rollout_observations_decide(tmp_path_factory, plan, observations):
    folder = tmp_path_factory.mktemp("t")
    cli(["rollout", "decide", _write(folder / "plan.yaml", plan), "--observations",
         _write(folder / "obs.csv", observations), "--state", folder / "state",
         "--now", "2026-01-01T02:00:00Z", "--json"])


SPEC = {"name": "lad", "rungs": [{"layers": 1, "width": 16}, {"layers": 2, "width": 32}],
        "next": {"layers": 2, "width": 64}, "batch_size": 4, "model": {"block_size": 16},
        "corpus": {"max_bytes": "100k"}}


@FUZZ
@given(spec=yaml_docs(SPEC), record=st.one_of(raw_garbage, yaml_docs({"name": "L1-W16"})))
def test_ladder_specs_and_rung_records(tmp_path_factory, spec, record):
    # The readers only: `ladder run` and `ladder predict` then train, which is not for CI.
    from scaleguard.errors import ConfigError
    from scaleguard.ladder._spec import load_spec
    from scaleguard.ladder._table import read_records

    folder = tmp_path_factory.mktemp("t")
    _write(folder / "L1-W16.json", record)
    for read, arg in ((load_spec, _write(folder / "spec.yaml", spec)), (read_records, folder)):
        CASES["cli"] += 1
        try:
            with time_limit(LIMIT_S):
                read(arg)
        except ConfigError as exc:
            assert "\n" not in str(exc) and str(arg) in str(exc)


def _study() -> dict:
    text = resources.files("scaleguard.limits").joinpath("examples/study.yaml").read_text()
    study = yaml.safe_load(text)
    study["ladder"]["bootstrap"] = 0
    return study


@FEW
@given(study=yaml_docs(_study()))
def test_studies_assess(tmp_path_factory, study):
    folder = tmp_path_factory.mktemp("t")
    (folder / "synthetic_ladder.csv").write_text(
        "\n".join(",".join(row) for row in [LADDER_HEADER, *LADDER_ROWS]) + "\n")
    cli(["assess", _write(folder / "study.yaml", study), "--out", folder / "out", "--json"])


@FUZZ
@given(hardware=yaml_docs(HARDWARE), config=st.one_of(raw_garbage, yaml_docs(MODEL_CONFIG)))
def test_hardware_files_and_model_configs(tmp_path_factory, hardware, config):
    folder = tmp_path_factory.mktemp("t")
    base = ["resources", "plan", "--gpu", "h100-sxm", "--gpus", "8", "--global-batch", "64"]
    cli([*base, "--model", "llama-3-8b", "--hardware-file", _write(folder / "hw.yaml",
                                                                    hardware)])
    cli([*base.copy()[:2], "--gpu", "my-gpu", *base[4:], "--model", "llama-3-8b",
         "--hardware-file", folder / "hw.yaml"])
    cli([*base, "--config", _write(folder / "config.json", config)])


@FUZZ
@given(reference=csv_tables(["score", "length"], [["0.1", "10"], ["0.2", "12"], ["0.3", "9"]]),
       scores=csv_tables(["p"], [["0.001"], ["0.002"], ["0.01"], ["0.02"], ["0.05"]]))
def test_drift_and_forecast_tables(tmp_path_factory, reference, scores):
    folder = tmp_path_factory.mktemp("t")
    ref = _write(folder / "ref.csv", reference)
    cli(["safety", "drift", ref, ref, "--json"])
    cli(["safety", "forecast", _write(folder / "scores.csv", scores), "--queries", "1M",
         "--tail", "3", "--json"])


QUANTITY_COMMANDS = [
    ["resources", "plan", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--global-batch", "64",
     "--gpus", "{}"],
    ["resources", "plan", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--global-batch", "{}",
     "--gpus", "8"],
    ["resources", "memory", "--model", "llama-3-8b", "--seq", "{}"],
    ["resources", "train", "--params", "{}", "--tokens", "1T", "--gpu", "h100-sxm", "--gpus",
     "8", "--mfu", "0.4"],
    ["resources", "train", "--params", "8B", "--tokens", "1T", "--gpu", "h100-sxm", "--gpus",
     "{}", "--mfu", "0.4"],
    ["resources", "energy", "--gpus", "{}", "--duration", "1d", "--gpu", "h100-sxm"],
    ["resources", "energy", "--gpu-hours", "{}", "--power", "700W"],
    ["resources", "serve", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--rate", "{}",
     "--prompt", "1000", "--output", "200"],
    ["resources", "serve", "--model", "llama-3-8b", "--gpu", "h100-sxm", "--rate", "10",
     "--prompt", "{}", "--output", "200"],
    ["safety", "bound", "--failures", "0", "--trials", "{}", "--json"],
    ["safety", "bound", "--failures", "0", "--trials", "1000", "--next", "{}"],
]


@settings(FUZZ, max_examples=examples(30))
@given(command=st.sampled_from(QUANTITY_COMMANDS), value=hostile_text)
def test_quantity_options(command, value):
    if value.startswith("-") or not value.strip():
        return  # "-5h" reads as an option, "" as no value: click's usage errors, not ours
    status, err = cli([part.replace("{}", value) for part in command])
    assert "nan" not in err.lower() or "nan" in value.lower() or status == 0


def test_the_hostile_classes_are_all_present():
    # The strategies must keep producing the classes that broke readers (issue #13).
    from tests.fuzz import _hostile

    assert math.isnan(_hostile.HOSTILE_NUMBERS[14]) and 10**400 in _hostile.HOSTILE_NUMBERS
    assert {"\ud800", "1e308k", "9" * 400, str(2**63)} <= set(_hostile.HOSTILE_TEXT)
