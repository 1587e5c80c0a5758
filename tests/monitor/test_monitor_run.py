import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import scaleguard.monitor as sgm
from scaleguard.errors import InputError
from scaleguard.monitor import DuckDBStore, JsonlAlertSink, SpikeDetector


class RecordingSink:
    """A sink that keeps batches in memory (what a remote sink would post)."""

    def __init__(self, fail_first=0):
        self.batches, self.opened, self.closed, self.fail_first = [], [], [], fail_first
        self.attempts = []  # the key of every write tried

    def open_run(self, run):
        self.opened.append(run)

    def write(self, batch):
        self.attempts.append(batch.key)
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("service down")
        self.batches.append(batch)
        return True

    def close_run(self, run_id, status, finished_at):
        self.closed.append((run_id, status))


def test_log_buffers_then_writes_one_batch_per_flush():
    sink = RecordingSink()
    run = sgm.start("r", sink=sink, flush_every=None, detectors="none")
    for step in range(10):
        run.log({"loss": 1.0 / (step + 1), "lr": 1e-3}, step=step)
    assert sink.batches == []  # nothing written while logging
    assert run.flush() == 20
    run.log({"loss": 0.05})  # step None: next step
    run.finish()
    assert [len(b) for b in sink.batches] == [20, 1]
    assert sink.batches[1].steps.tolist() == [10]
    assert sink.closed == [(run.run_id, "finished")]
    with pytest.raises(InputError, match="log\\(\\) after finish"):
        run.log({"loss": 1.0})


def test_timer_keeps_flushing_after_a_failed_write():
    sink = RecordingSink(fail_first=1)
    run = sgm.start("r", sink=sink, flush_every=0.05, detectors="none")
    run.log({"loss": 2.0}, step=0)
    deadline = time.time() + 5
    while not sink.batches and time.time() < deadline:
        time.sleep(0.01)
    assert run.flush_errors == 1 and "service down" in run.last_flush_error
    assert sink.batches[0].values.tolist() == [2.0]  # retried by the next timed flush
    run.finish()


def test_timer_flushes_in_the_background():
    sink = RecordingSink()
    run = sgm.start("r", sink=sink, flush_every=0.05)
    run.log({"loss": 2.0}, step=0)
    deadline = time.time() + 5
    while not sink.batches and time.time() < deadline:
        time.sleep(0.01)
    assert sink.batches and len(sink.batches[0]) == 1
    run.finish()


def test_full_buffer_flushes_at_once():
    sink = RecordingSink()
    run = sgm.start("r", sink=sink, flush_every=None, max_buffer=100, detectors="none")
    for step in range(250):
        run.log({"x": step}, step=step)
    assert [len(b) for b in sink.batches] == [100, 100]
    run.finish()


def test_failed_write_keeps_the_points_for_the_next_flush():
    sink = RecordingSink(fail_first=1)
    run = sgm.start("r", sink=sink, flush_every=None, detectors="none")
    run.log({"x": 1.0}, step=0)
    with pytest.raises(ConnectionError):
        run.flush()
    run.log({"x": 2.0}, step=1)
    run.finish()
    # The failed batch is sent again as it was, under its key (a sink that stored it but lost
    # the answer recognises it), then the points logged since, as a batch of their own.
    assert [b.values.tolist() for b in sink.batches] == [[1.0], [2.0]]
    assert sink.attempts[0] == sink.attempts[1] == sink.batches[0].key is not None
    assert sink.batches[1].key not in (None, sink.batches[0].key)


def test_bad_input_is_refused_by_name():
    sink = RecordingSink()
    with pytest.raises(InputError, match="name: expected a non-empty run name"):
        sgm.start("", sink=sink)
    with pytest.raises(InputError, match="flush_every"):
        sgm.start("r", sink=sink, flush_every=0)
    with pytest.raises(InputError, match="detectors: expected"):
        sgm.start("r", sink=sink, detectors="all")
    with pytest.raises(InputError, match="give store= or sink="):
        sgm.start("r", store=":memory:", sink=sink)
    run = sgm.start("r", sink=sink, flush_every=None)
    with pytest.raises(InputError, match="metric 'loss' is 'abc', expected a number"):
        run.log({"lr": 1e-3, "loss": "abc"}, step=0)
    assert run.flush() == 0  # nothing of the bad call was kept
    with pytest.raises(InputError, match="step: expected an integer"):
        run.log({"loss": 1.0}, step=1.5)
    with pytest.raises(InputError, match="severity: expected one of"):
        run.alert("x", severity="fatal")
    run.finish()


def test_default_detectors_raise_alerts_to_sinks_and_store(tmp_path):
    store = DuckDBStore(":memory:")
    alerts_file = tmp_path / "alerts.jsonl"
    rng = np.random.default_rng(3)
    with sgm.start("train", store=store, alert_sinks=[JsonlAlertSink(alerts_file)]) as run:
        for step in range(400):
            loss = 3 + 0.01 * rng.standard_normal()
            if step == 300:
                loss = math.nan
            if step == 200:
                loss = 4.0
            run.log({"loss": loss, "tokens_per_s": 1e5}, step=step)
        run.alert("checkpoint slow", "took 10 min", severity="info", step=350)
    found = [(a.detector, a.step) for a in store.alerts(run.run_id)]
    assert ("spike", 200) in found and ("nonfinite", 300) in found
    assert ("manual", 350) in found
    lines = [json.loads(x) for x in alerts_file.read_text().splitlines()]
    assert [x["step"] for x in lines] == [a.step for a in run.alerts_raised]
    nan_alert = next(a for a in run.alerts_raised if a.detector == "nonfinite")
    assert "restart from the checkpoint before step 200" in nan_alert.action


def test_custom_detectors_and_their_state_survive_a_restart():
    sink = RecordingSink()
    run = sgm.start("r", sink=sink, flush_every=None,
                    detectors={"loss": [SpikeDetector(window=16, min_points=8)]})
    for step in range(50):
        run.log({"loss": 1.0 + 0.01 * (step % 2)}, step=step)
    saved = json.loads(json.dumps(run.state_dict()))
    run.finish()
    resumed = sgm.start("r", sink=sink, run_id=run.run_id, flush_every=None)
    resumed.load_state_dict(saved)
    resumed.log({"loss": 5.0}, step=50)  # a spike at once: the window came back
    assert [a.step for a in resumed.alerts_raised] == [50]
    resumed.finish()
    assert sink.opened[1].run_id == run.run_id


def test_context_manager_marks_failed_runs():
    sink = RecordingSink()
    with pytest.raises(ValueError), sgm.start("r", sink=sink, flush_every=None) as run:
        run.log({"loss": 1.0})
        raise ValueError("training crashed")
    assert sink.closed == [(run.run_id, "failed")]
    assert len(sink.batches[0]) == 1


def test_store_path_is_opened_and_closed_by_the_run(tmp_path):
    path = tmp_path / "runs.duckdb"
    with sgm.start("r", {"lr": 1e-3}, store=path) as run:
        run.log({"loss": 1.0}, step=0)
    with DuckDBStore(path, read_only=True) as store:
        assert store.resolve("r").points == 1


_CHILD = textwrap.dedent("""
    import sys, time
    import scaleguard.monitor as sgm
    run = sgm.start("killed", store=sys.argv[1], flush_every=None, detectors="none")
    step = 0
    for batch in range(5):
        for _ in range(1000):
            run.log({"loss": 1.0, "grad_norm": 0.5}, step=step)
            step += 1
        run.flush()
        print(step, flush=True)
    for _ in range(500):  # never flushed
        run.log({"loss": 1.0}, step=step)
        step += 1
    print("waiting", flush=True)
    time.sleep(60)
""")


def test_sigkill_keeps_every_flushed_point(tmp_path):
    path = tmp_path / "runs.duckdb"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "waiting":
                break
        # While the child holds the file read-write, another process is told so in one line.
        with pytest.raises(InputError, match="opened by another process"):
            DuckDBStore(path, read_only=True)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert lines[:5] == ["1000", "2000", "3000", "4000", "5000"]
    with DuckDBStore(path) as store:
        info = store.resolve("killed")
        assert info.status == "running"  # never finished
        frame = store.frame(info.run_id)
        assert len(frame) == 10_000  # every flushed point, none of the unflushed
        assert sorted(frame["step"].unique().tolist()) == list(range(5000))


def test_public_names_are_what_all_says():
    public = {n for n in vars(sgm) if not n.startswith("_")}
    public = {n for n in public if type(getattr(sgm, n)).__name__ != "module"}
    assert set(sgm.__all__) == public
    assert sorted(sgm.__all__) == list(sgm.__all__)
