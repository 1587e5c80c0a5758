"""Issue #13 regressions: what the store cannot hold is refused by line, never stored wrong."""

from __future__ import annotations

import json

import pytest

from scaleguard.cli import main
from scaleguard.errors import TableError
from scaleguard.monitor import DuckDBStore, read_metric_log


@pytest.mark.parametrize("step", ["100000000000000000000", "9223372036854775808", "inf"])
def test_steps_beyond_int64_are_refused_not_wrapped(tmp_path, step, capsys):
    # Was: stored as -9223372036854775808 with exit 0, even with --on-bad reject.
    path = tmp_path / "log.csv"
    path.write_text(f"step,loss\n1,2.0\n{step},1.5\n")
    with pytest.raises(TableError, match=r"log.csv: line 3: step is .*2\*\*63 - 1"):
        read_metric_log(path, on_bad="reject")
    log = read_metric_log(path)
    assert log.frame.step.tolist() == [1] and log.bad_lines[0].line == 3
    store = tmp_path / "runs.duckdb"
    assert main(["monitor", "ingest", str(path), "--store", str(store), "--on-bad",
                 "reject"]) == 2
    assert "line 3" in capsys.readouterr().err
    with DuckDBStore(store) as opened:
        assert opened.runs() == []


def test_big_exact_steps_survive_and_jsonl_huge_numbers_are_bad_lines(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n9007199254740993,2.0\n9223372036854775807,1.0\n")
    assert read_metric_log(path).frame.step.tolist() == [9007199254740993, 2**63 - 1]
    lines = [json.dumps({"step": 2**63, "loss": 1.0}), '{"step": 1, "loss": ' + "9" * 400 + "}",
             "[" * 50_000 + "]" * 50_000, '{"step": 2, "\\ud800": 1.0}',
             '{"step": 3, "loss": 1.0}']
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    log = read_metric_log(jsonl)
    assert [b.line for b in log.bad_lines] == [1, 2, 3, 4]
    assert log.bad_lines[1].reason.startswith("loss: 999999") and "range" in \
        log.bad_lines[1].reason
    assert "lone surrogate" in log.bad_lines[3].reason
    assert log.frame.step.tolist() == [3]


def test_non_utf8_lines_are_bad_lines_not_replaced(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 1.0}\n{"step": 2, "l\xffss": 1.0}\n')
    log = read_metric_log(path)
    assert log.metrics == ["loss"] and log.bad_lines[0].line == 2
    csv = tmp_path / "log.csv"
    csv.write_bytes(b"step,loss\n1,1.0\n2,\xff\n")
    assert read_metric_log(csv).bad_lines[0].line == 3


def _events(tmp_path):
    from tests.monitor.test_monitor_ingest import _tb_write

    _tb_write(tmp_path / "tb", [(s, "loss", 3.0 - s) for s in range(5)])
    (file,) = (tmp_path / "tb").glob("events.out.tfevents*")
    return file


def test_a_corrupt_tensorboard_record_is_reported_and_obeys_on_bad(tmp_path):
    # Was: 1 of 5 points imported, bad_lines [] and exit 0, even with --on-bad reject.
    file = _events(tmp_path)
    data = bytearray(file.read_bytes())
    # The file is a version record then 5 scalar records; flip one byte inside the third.
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += 12 + int.from_bytes(data[at:at + 8], "little") + 4
    data[offsets[3] + 14] ^= 0xFF
    file.write_bytes(bytes(data))
    log = read_metric_log(file)
    assert log.frame.step.tolist() == [0, 1, 3, 4]
    assert [(b.line, "CRC mismatch" in b.reason) for b in log.bad_lines] == [(4, True)]
    with pytest.raises(TableError, match="record .*CRC mismatch|CRC mismatch"):
        read_metric_log(file, on_bad="reject")
    file.write_bytes(bytes(data[:offsets[5] + 7]))  # cut inside the last record
    assert "truncated" in read_metric_log(file).bad_lines[-1].reason
