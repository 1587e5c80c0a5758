import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from scaleguard.cli import main
from scaleguard.monitor import Alert, WebhookAlertSink
from scaleguard.monitor._check import check_frame
from scaleguard.monitor._ingest import read_metric_log
from scaleguard.monitor._synthetic import Fault, synthetic_training_log


def _csv(tmp_path, faults=(), seed=0, steps=3000, name="log.csv"):
    frame = synthetic_training_log(steps, seed, tuple(faults))
    wide = frame.pivot(index="step", columns="name", values="value").reset_index()
    path = tmp_path / name
    wide.to_csv(path, index=False, na_rep="nan")  # an empty cell would be "not logged"
    return path


def test_check_prints_planted_faults_and_json_is_as_dict(tmp_path, capsys):
    path = _csv(tmp_path, [Fault("spike", 2000, 0.3), Fault("nan", 2500)])
    assert main(["monitor", "check", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = check_frame(read_metric_log(path).frame, source=str(path)).as_dict()
    assert payload == json.loads(json.dumps(expected))
    found = {(e["metric"], e["step"], e["kind"]) for e in payload["events"]}
    assert {("loss", 2000, "spike"), ("loss", 2500, "nonfinite")} <= found
    assert main(["monitor", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nonfinite" in out and "restart from the checkpoint before step 2400" in out


def test_check_clean_log_and_fail_on(tmp_path, capsys):
    clean = _csv(tmp_path, seed=3)
    assert main(["monitor", "check", str(clean), "--fail-on", "warning"]) == 0
    assert "no faults found" in capsys.readouterr().out
    faulty = _csv(tmp_path, [Fault("nan", 100)], name="bad.csv")
    assert main(["monitor", "check", str(faulty), "--fail-on", "critical"]) == 1


def test_check_extra_detectors_and_alert_file(tmp_path, capsys):
    path = _csv(tmp_path, steps=2500)
    alerts = tmp_path / "alerts.jsonl"
    assert main(["monitor", "check", str(path), "--no-defaults", "--add", "plateau:loss",
                 "--metric", "loss", "--alerts", str(alerts), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["detectors"] == {"loss": ["plateau"]}
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert [x["detector"] for x in lines] == [e["detector"] for e in payload["events"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["monitor", "check"], "give a FILE or --run NAME"),
    (["monitor", "check", "absent.csv"], "absent.csv: no such file"),
    (["monitor", "check", "{csv}", "--add", "zap:loss"], "detector 'zap': unknown"),
    (["monitor", "check", "{csv}", "--fail-on", "info"], "--fail-on: expected one of"),
    (["monitor", "check", "--run", "x", "--store", "{tmp}/none.duckdb"], "no such file"),
    (["monitor", "watch", "{csv}", "--interval", "0"], "--interval: expected seconds > 0"),
    (["monitor", "ingest", "{csv}", "--on-bad", "maybe"], "--on-bad: expected one of"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    path = _csv(tmp_path, steps=50)
    argv = [a.format(csv=path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleguard: error: ") and message in err and err.count("\n") == 1


def test_ingest_runs_and_check_a_stored_run(tmp_path, capsys):
    path = _csv(tmp_path, [Fault("throughput_drop", 1000, 0.4)])
    store = str(tmp_path / "runs.duckdb")
    assert main(["monitor", "ingest", str(path), "--run", "gpt", "--store", store,
                 "--json"]) == 0
    ingested = json.loads(capsys.readouterr().out)
    assert ingested["points"] == 9000 and ingested["runs_written"][0]["name"] == "gpt"
    assert main(["monitor", "runs", "--store", store, "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["name"], run["status"], run["points"]) == ("gpt", "imported", 9000)
    assert main(["monitor", "runs", "--store", store]) == 0
    assert "gpt" in capsys.readouterr().out
    assert main(["monitor", "check", "--run", "gpt", "--store", store, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [(e["metric"], e["kind"]) for e in events] == [("tokens_per_s", "throughput_drop")]


def test_watch_follows_a_growing_log_and_skips_garbage(tmp_path, capsys):
    path = tmp_path / "live.jsonl"
    path.write_text("")

    def writer():
        with path.open("a") as f:
            for step in range(200):
                f.write(json.dumps({"step": step, "loss": 3.0 + 0.001 * (step % 3)}) + "\n")
                if step == 50:
                    f.write("{{{ garbage\n")
                if step == 150:
                    f.write(json.dumps({"step": step, "loss": "NaN"}) + "\n")
                f.flush()
                if step % 50 == 0:
                    time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    assert main(["monitor", "watch", str(path), "--interval", "0.05", "--duration", "1.0",
                 "--json"]) == 0
    thread.join()
    payload = json.loads(capsys.readouterr().out)
    assert payload["latest"]["loss"]["step"] == 199
    assert payload["bad_lines"] == 1 and payload["last_bad_lines"][0]["line"] == 52
    assert [(a["metric"], a["step"]) for a in payload["alerts"]] == [("loss", 150)]
    # The live table renders too.
    assert main(["monitor", "watch", str(path), "--interval", "0.05", "--duration",
                 "0.1"]) == 0
    assert "watching" in capsys.readouterr().out


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_posts_with_retries():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Hook.received, _Hook.fail_first = [], 1
        url = f"http://127.0.0.1:{server.server_port}/hook"
        sink = WebhookAlertSink(url, backoff=0.01)
        sink.emit(Alert("run", 1.0, "critical", "nonfinite in loss", step=5))
        sink.close()
        assert sink.delivered == 1 and sink.failures == 0
        assert _Hook.received[0]["step"] == 5
        dead = WebhookAlertSink("http://127.0.0.1:9/none", timeout=0.2, retries=2,
                                backoff=0.01)
        dead.emit(Alert("run", 1.0, "warning", "x"))
        dead.close()
        assert dead.failures == 1 and dead.last_error
    finally:
        server.shutdown()


def test_burn_rate_from_the_cli_uses_the_log_times(tmp_path, capsys):
    # One request outcome every 10 s for a day; from 20h on, every one fails.
    lines = ["time,step,errors"]
    for i in range(8640):
        lines.append(f"{1.7e9 + 10 * i},{i},{1.0 if i >= 7200 else 0.0}")
    path = tmp_path / "errors.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main(["monitor", "check", str(path), "--no-defaults", "--add",
                 "burn_rate:errors,slo=0.999", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    first = events[0]
    # 14.4x over 1h needs 1h x 14.4 x 0.001 = 52 s of failures: the 6th failed sample.
    assert first["severity"] == "critical" and first["step"] == int(1.7e9 + 10 * 7205)


def test_demo_step_finds_every_planted_fault(tmp_path):
    from scaleguard.cli.monitor import demo_step

    written = demo_step(tmp_path)
    assert [w.path.name for w in written] == ["monitor_training_log.csv", "monitor_runs.duckdb",
                                             "monitor_alerts.jsonl", "monitor_check.json"]
    check = json.loads((tmp_path / "monitor_check.json").read_text())
    assert {(e["kind"], e["step"]) for e in check["events"] if e["metric"] == "loss"} == \
        {("spike", 1500), ("nonfinite", 2200)}
    alerts = [json.loads(x) for x in (tmp_path / "monitor_alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == len(check["events"])
    assert demo_step(tmp_path)[2].what == written[2].what  # a rerun starts afresh


def test_terminal_sink_prints_one_line_per_alert():
    from io import StringIO

    from rich.console import Console

    from scaleguard.monitor import TerminalAlertSink

    buffer = StringIO()
    sink = TerminalAlertSink(min_severity="warning", console=Console(file=buffer, width=200))
    sink.emit(Alert("run", 1.0, "info", "ignored"))
    sink.emit(Alert("run", 1.0, "critical", "nonfinite in loss", "value is nan", step=7,
                    action="restart"))
    sink.close()
    assert buffer.getvalue() == "[critical] run: nonfinite in loss at step 7 — value is nan. " \
                                "Action: restart\n"
