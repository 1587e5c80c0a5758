import json
import math

import numpy as np
import pytest

from scaleguard.errors import InputError, TableError
from scaleguard.monitor import DuckDBStore
from scaleguard.monitor._ingest import ingest_log, read_metric_log
from scaleguard.monitor._parse import LineError, RowParser, parse_json_line
from scaleguard.monitor._watch import LogFollower, Watcher


def _write(path, text):
    path.write_text(text)
    return path


def test_wide_csv_with_bad_lines_skipped_or_rejected(tmp_path):
    path = _write(tmp_path / "log.csv", "step,loss,grad_norm\n0,3.0,1.0\n1,2.9,\n"
                  "2,abc,1.1\nx,2.7,1.0\n4,2.6,1.0,9\n5,nan,1.0\n")
    log = read_metric_log(path)
    assert [(b.line, b.reason) for b in log.bad_lines] == [
        (4, "loss is 'abc', expected a number"),
        (5, "step is 'x', expected a whole number from 0 to 2**63 - 1"),
        (6, "expected 3 fields, got 4"),
    ]
    frame = log.frame
    assert len(frame) == 5  # the empty grad_norm cell is a missing value, not an error
    assert math.isnan(frame[(frame.step == 5) & (frame.name == "loss")].value.iloc[0])
    assert "line 4: loss is 'abc'" in log.bad_summary() and "skipped 3 malformed" in \
        log.bad_summary()
    with pytest.raises(TableError, match=r"log.csv: line 4: loss is 'abc', expected a number"):
        read_metric_log(path, on_bad="reject")
    with pytest.raises(InputError, match="--on-bad: expected one of skip, reject"):
        read_metric_log(path, on_bad="ignore")


def test_jsonl_wide_long_nested_and_bad_lines(tmp_path):
    lines = [
        json.dumps({"step": 0, "loss": 3.0, "phase": "train", "opt": {"lr": 1e-3}}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"step": 1, "loss": "NaN"}),
        "",
        json.dumps({"step": -1, "loss": 1.0}),
        json.dumps({"step": 2}),
        json.dumps({"name": "eval_loss", "value": 3.1, "step": 2, "timestamp": 1.7e12}),
    ]
    log = read_metric_log(_write(tmp_path / "log.jsonl", "\n".join(lines) + "\n"))
    assert [b.line for b in log.bad_lines] == [2, 3, 6, 7]
    assert "not valid JSON" in log.bad_lines[0].reason
    assert "expected a whole number from 0 to 2**63 - 1" in log.bad_lines[2].reason
    assert sorted(log.metrics) == ["eval_loss", "loss", "opt/lr"]
    eval_row = log.frame[log.frame.name == "eval_loss"].iloc[0]
    assert eval_row.time == pytest.approx(1.7e9)  # milliseconds -> seconds


def test_wandb_chart_export_and_mlflow_history(tmp_path):
    wandb = _write(tmp_path / "wandb.csv",
                   "Step,run-a - train/loss,run-a - train/loss__MIN,run-a - train/loss__MAX,"
                   "run-b - train/loss\n0,3.0,2.9,3.1,3.2\n1,2.5,2.4,2.6,\n")
    log = read_metric_log(wandb)
    assert log.runs == ["run-a", "run-b"] and log.metrics == ["train/loss"]
    assert len(log.frame) == 3
    mlflow = _write(tmp_path / "mlflow.csv",
                    "key,value,timestamp,step,run_id\nloss,3.0,1700000000000,0,abc\n"
                    "loss,2.0,1700000001000,1,abc\n")
    log = read_metric_log(mlflow)
    assert log.frame.time.tolist() == [1.7e9, 1.7e9 + 1]
    store = DuckDBStore(":memory:")
    (info,) = ingest_log(log, store, "imported")
    assert info.name == "imported:abc" and info.points == 2
    assert store.series(info.run_id, "loss").values.tolist() == [3.0, 2.0]
    assert store.resolve("imported:abc").status == "imported"


def test_unreadable_files_are_refused_by_name(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_metric_log(tmp_path / "absent.csv")
    with pytest.raises(TableError, match="unknown metric log format '.xlsx'"):
        read_metric_log(_write(tmp_path / "x.xlsx", "a"))
    with pytest.raises(TableError, match="the file is empty"):
        read_metric_log(_write(tmp_path / "e.csv", ""))
    with pytest.raises(TableError, match="line 1: no metric columns"):
        read_metric_log(_write(tmp_path / "h.csv", "step,time\n1,2\n"))
    with pytest.raises(TableError, match="line 1: column 'a' appears twice"):
        read_metric_log(_write(tmp_path / "d.csv", "step,a,a\n1,2,3\n"))
    with pytest.raises(TableError, match="no metric points found .*first: line 1"):
        read_metric_log(_write(tmp_path / "bad.jsonl", "oops\n"))
    with pytest.raises(TableError, match="no TensorBoard event files"):
        read_metric_log(tmp_path)


def test_line_parsers_directly():
    assert parse_json_line('{"loss": 2}', 7)[0].step == 7  # no step: the line's index
    with pytest.raises(LineError, match="expected a JSON object, got int"):
        parse_json_line("3", 0)
    with pytest.raises(LineError, match="loss is True, expected a number"):
        parse_json_line('{"step": 1, "loss": true}', 0)
    parser = RowParser(["iteration", "loss"])
    assert parser.parse(["12", "1.5"], 0)[0].step == 12
    with pytest.raises(LineError, match="iteration is '1.5', expected a whole number"):
        parser.parse(["1.5", "1.0"], 0)


def _tb_write(logdir, scalars):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for step, tag, value in scalars:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag,
                                                                       simple_value=value)])
        writer.add_event(event_pb2.Event(step=step, wall_time=1.7e9 + step, summary=summary))
    writer.close()


def test_tensorboard_event_files_and_folders(tmp_path):
    _tb_write(tmp_path / "train", [(s, "loss", 3.0 - 0.01 * s) for s in range(50)])
    _tb_write(tmp_path / "eval", [(s, "loss", 3.1) for s in (10, 20)])
    log = read_metric_log(tmp_path)
    assert log.format == "tensorboard"
    assert log.metrics == ["eval/loss", "train/loss"]
    train = log.frame[log.frame.name == "train/loss"]
    assert train.step.tolist() == list(range(50))
    assert train.value.iloc[-1] == pytest.approx(2.51, abs=1e-6)
    (single,) = (tmp_path / "train").glob("events.out.tfevents*")
    assert read_metric_log(single).metrics == ["loss"]


def test_follower_reads_complete_lines_only_and_survives_garbage(tmp_path):
    path = tmp_path / "live.jsonl"
    follower = LogFollower(path)
    assert follower.poll() == ([], [])  # not there yet: nothing, no error
    with path.open("w") as f:
        f.write('{"step": 0, "loss": 3.0}\n{"step": 1, "lo')
    points, bad = follower.poll()
    assert [p.step for p in points] == [0] and bad == []
    with path.open("a") as f:
        f.write('ss": 2.9}\n\x00\xff garbage\n{"step": 2, "loss": 2.8}\n')
    points, bad = follower.poll()
    assert [p.step for p in points] == [1, 2]
    assert [b.line for b in bad] == [3]
    path.write_text('{"step": 0, "loss": 9.0}\n')  # rewritten: start again
    points, _ = follower.poll()
    assert [p.value for p in points] == [9.0]
    with pytest.raises(TableError, match="watch follows .csv, .tsv or .jsonl"):
        LogFollower(tmp_path / "events.out.tfevents.1")


def test_watcher_raises_alerts_as_lines_arrive(tmp_path):
    path = tmp_path / "live.csv"
    watcher = Watcher(LogFollower(path))
    rng = np.random.default_rng(0)
    with path.open("w") as f:
        f.write("step,loss\n")
        for step in range(300):
            f.write(f"{step},{3 + 0.01 * rng.standard_normal()}\n")
        f.write("bad,row,here\n")
    assert watcher.poll() == []
    with path.open("a") as f:
        f.write("301,nan\n")
    (alert,) = watcher.poll()
    assert (alert.metric, alert.step, alert.severity) == ("loss", 301, "critical")
    assert watcher.state.bad_count == 1 and watcher.state.latest["loss"][0] == 301


@pytest.mark.parametrize("text", [
    "step,time,loss,grad_norm\n0,1700000000000,3.0,1.0\n1,1700000000500,nan,\n2,,2.5,inf\n",
    "Step,run-a - loss,run-a - loss__MIN,run-b - loss\n0,3.0,2.9,3.1\n1,2.5,2.4,\n",
    "key,value,step,run_id\nloss,3.0,0,a\nloss,-inf,1,a\nacc,0.5,1,b\n",
    "loss,acc\n3.0,0.1\n\n2.0,0.2\n",  # no step column: the row's index
])
def test_vectorised_csv_reader_agrees_with_the_line_reader(tmp_path, monkeypatch, text):
    import scaleguard.monitor._ingest as ingest

    path = _write(tmp_path / "log.csv", text)
    assert ingest._read_csv_fast(path, ",", RowParser(text.splitlines()[0].split(","))) \
        is not None  # the vectorised path took this file
    fast = read_metric_log(path).frame
    monkeypatch.setattr(ingest, "_read_csv_fast", lambda *args: None)
    slow = read_metric_log(path).frame
    key = ["run", "name", "step"]
    fast = fast.sort_values(key).reset_index(drop=True)
    slow = slow.sort_values(key).reset_index(drop=True)
    assert fast[key].equals(slow[key])
    np.testing.assert_array_equal(fast["value"].to_numpy(), slow["value"].to_numpy())
    np.testing.assert_array_equal(fast["time"].to_numpy(), slow["time"].to_numpy())
