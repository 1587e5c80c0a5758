"""Calibration from measured runs: fits, intervals, files, and the commands that use them."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.cli import main
from scaleguard.errors import ConfigError, InputError
from scaleguard.resources import (
    calibrate_ladder,
    calibrate_run,
    calibrate_serving,
    calibrate_serving_benchmark,
    calibrate_training,
    decode_step,
    flops_per_token,
    get_device,
    model_preset,
    prefill_step,
    read_calibration,
    rung_model_flops,
)

H100 = get_device("h100-sxm")


def test_one_run_mean_and_interval():
    rng = np.random.default_rng(0)
    rates = 0.45 * H100.peak() * np.exp(rng.normal(0, 0.03, 200))
    cal = calibrate_training(rates, peak_flops=H100.peak(), device="h100-sxm")
    mfu, lower, upper = cal.mfu_at()
    assert lower < 0.45 < upper and upper - lower < 0.03
    assert cal.observations == 20  # 200 samples summarised as 20 batch means
    assert cal.slope == 0 and cal.mfu == pytest.approx(mfu)


def test_ladder_recovers_how_mfu_changes_with_size():
    params = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9])
    rates = 1e14 * (params / 1e8) ** 0.1
    cal = calibrate_training(rates, params=params, peak_flops=1e15)
    assert cal.slope == pytest.approx(0.1)
    assert cal.mfu_at(3.2e9)[0] == pytest.approx(0.1 * 32 ** 0.1)
    noisy = rates * np.exp(np.random.default_rng(1).normal(0, 0.05, len(rates)))
    fit = calibrate_training(noisy, params=params, peak_flops=1e15)
    centre, lower, upper = fit.mfu_at(3.2e9)
    assert lower < 0.1 * 32 ** 0.1 < upper
    # Farther from the measured sizes, a wider interval.
    far = fit.mfu_at(1e11)
    assert far[2] / far[1] > upper / lower


def test_calibration_file_round_trip(tmp_path):
    cal = calibrate_training([1e14, 1.1e14, 0.9e14], params=[1e8, 2e8, 4e8],
                             peak_flops=H100.peak(), device="h100-sxm", source="ladder",
                             power_w=650.0)
    back = read_calibration(cal.write(tmp_path / "cal.json"))
    assert back == cal
    payload = json.loads((tmp_path / "cal.json").read_text())
    assert payload["format"] == "scaleguard-calibration/1" and 0 < payload["mfu"] < 1


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a calibration file"),
    ('{"format": "scaleguard-calibration/1", "kind": "training"}', "field 'intercept' missing"),
    ('{"format": "scaleguard-calibration/1", "kind": "gpu", "intercept": 1, "slope": 0, '
     '"x_mean": 0, "sxx": 0, "sd": 0, "observations": 1, "source": "x"}',
     "field 'kind': expected training or serving"),
    ('{"format": "scaleguard-calibration/1", "kind": "training", "intercept": 1, "slope": 0, '
     '"x_mean": 0, "sxx": -1, "sd": 0, "observations": 1, "source": "x"}', "is not valid"),
    ('{"format": "scaleguard-calibration/1", "kind": "training", "intercept": "a", '
     '"slope": 0, "x_mean": 0, "sxx": 0, "sd": 0, "observations": 1, "source": "x"}',
     "not valid"),
])
def test_bad_calibration_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        read_calibration(path)
    assert str(path) in str(info.value)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4),
                    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(),
                                                                             max_size=2))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["kind", "intercept", "slope", "x_mean", "sxx", "sd",
                                        "observations", "source", "level", "peak_flops",
                                        "predictive", "extra"]), _VALUES, max_size=8))
def test_fuzzed_calibration_files_are_refused_or_read(tmp_path, fields):
    good = {"format": "scaleguard-calibration/1", "kind": "training", "intercept": 30.0,
            "slope": 0.0, "x_mean": 0.0, "sxx": 0.0, "sd": 0.1, "observations": 3,
            "source": "run"}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({**good, **fields}))
    try:
        cal = read_calibration(path)
    except ConfigError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert math.isfinite(cal.intercept) and cal.observations >= 1


def test_wrong_kind_is_refused(tmp_path):
    path = calibrate_serving([1.0, 1.0], [2.0, 2.1]).write(tmp_path / "serve.json")
    with pytest.raises(ConfigError, match="a serving calibration, where a training one"):
        read_calibration(path, kind="training")


def test_serving_benchmark_recovers_the_efficiency(tmp_path, capsys):
    model, a100 = model_preset("llama-3-8b"), get_device("a100-80gb")
    rows = []
    for prompt, output, batch in [(512, 128, 1), (1024, 256, 4), (2048, 64, 8), (256, 512, 2)]:
        ideal = (prefill_step(model, a100, batch=batch, prompt=prompt, efficiency=1.0).seconds
                 + output * decode_step(model, a100, batch=batch, context=prompt + output / 2,
                                        efficiency=1.0).seconds)
        rows.append({"prompt_tokens": prompt, "output_tokens": output, "batch": batch,
                     "latency_s": ideal / 0.55})
    path = tmp_path / "bench.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    cal = calibrate_serving_benchmark(path, model, a100)
    assert cal.efficiency == pytest.approx(0.55)
    # The command writes it; serve --calibration uses it and says where it came from.
    out = tmp_path / "serving.json"
    assert main(["resources", "calibrate", str(path), "--serving", "--gpu", "a100",
                 "--model", "llama-3-8b", "--out", str(out)]) == 0
    assert "serving efficiency 0.550" in capsys.readouterr().out
    assert main(["resources", "serve", "--model", "llama-3-8b", "--gpu", "a100", "--rate", "2",
                 "--prompt", "500", "--output", "100", "--calibration", str(out),
                 "--json"]) == 0
    served = json.loads(capsys.readouterr().out)
    assert served["compute_efficiency"] == pytest.approx(0.55)
    assert served["efficiency_assumed"] is False
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt_tokens,output_tokens,latency_s\n100,10,-1\n")
    with pytest.raises(InputError, match=r"bad.csv: row 1 .*latency_s"):
        calibrate_serving_benchmark(bad, model, a100)


def _ladder_table(tmp_path, exponent=0.3):
    params = np.array([1e4, 2e4, 4e4, 8e4])
    total = params * 1.4
    tokens = params * 20
    rates = 1e9 * (params / 1e4) ** exponent
    frame = pd.DataFrame({"name": [f"r{i}" for i in range(4)], "params": params,
                          "params_total": total, "tokens": tokens, "loss": [3, 2.8, 2.6, 2.4],
                          "time_s": rung_model_flops(total, tokens) / rates,
                          "energy_j": rung_model_flops(total, tokens) / rates * 5.0,
                          "energy_status": "estimated"})
    folder = tmp_path / "ladder"
    folder.mkdir()
    frame.to_csv(folder / "ladder.csv", index=False)
    return folder


def test_calibrate_command_on_a_ladder_and_train_with_it(tmp_path, capsys):
    folder = _ladder_table(tmp_path)
    out = tmp_path / "cal.json"
    assert main(["resources", "calibrate", str(folder), "--gpu", "epyc-9654",
                 "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "achieved MFU" in text and "N^0.300" in text and str(out) in text
    cal = read_calibration(out)
    assert cal.slope == pytest.approx(0.3) and cal.power_w == pytest.approx(5.0)
    assert cal.power_estimated
    # train --calibration takes the MFU at the target's size from the ladder's law.
    assert main(["resources", "train", "--params", "1.6e5", "--tokens", "1B",
                 "--gpu", "epyc-9654", "--gpus", "1", "--calibration", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mfu"] == pytest.approx(cal.mfu_at(1.6e5)[0])
    assert payload["mfu_source"].startswith("MFU")
    # A serving file where a training one is needed is refused in one line, exit 2.
    serve = calibrate_serving([1.0], [2.0]).write(tmp_path / "serve.json")
    assert main(["resources", "train", "--params", "7B", "--tokens", "1T", "--gpu", "h100",
                 "--gpus", "8", "--calibration", str(serve)]) == 2
    assert "where a training one is needed" in capsys.readouterr().err


def test_ladder_calibration_needs_two_rungs(tmp_path):
    frame = pd.DataFrame({"params": [1e4], "tokens": [2e5], "time_s": [3.0]})
    with pytest.raises(InputError, match="1 rung"):
        calibrate_ladder(frame)


def test_calibrate_a_monitor_run(tmp_path, capsys):
    from scaleguard.monitor import open_store, start

    store_path = tmp_path / "runs.duckdb"
    model = model_preset("llama-3-8b")
    per_device = 0.4 * H100.peak() / flops_per_token(model)
    rng = np.random.default_rng(2)
    with start("pretrain", {"model": "llama-3-8b", "device": "h100-sxm", "devices": 64},
               store=str(store_path), detectors="none") as run:
        for step in range(100):
            run.log({"tokens_per_s": 64 * per_device * (1 + rng.normal(0, 0.01)),
                     "loss": 3.0}, step=step)
    with open_store(str(store_path), read_only=True) as store:
        cal = calibrate_run(store, "pretrain", model, H100, 64)
        with pytest.raises(InputError, match="--metric: run 'pretrain' has no metric 'tps'"):
            calibrate_run(store, "pretrain", model, H100, 64, metric="tps")
    assert cal.mfu == pytest.approx(0.4, rel=0.01)
    out = tmp_path / "cal.json"
    assert main(["resources", "calibrate", "pretrain", "--store", str(store_path),
                 "--out", str(out)]) == 0
    assert "achieved MFU 0.4" in capsys.readouterr().out
    assert main(["resources", "plan", "--model", "llama-3-8b", "--gpu", "h100", "--gpus", "64",
                 "--global-batch", "64", "--calibration", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["efficiency"] == pytest.approx(0.4, rel=0.01)


def test_assess_takes_the_calibrated_mfu(tmp_path, capsys):
    import yaml

    from scaleguard.examples import synthetic_ladder

    synthetic_ladder(seed=0).to_csv(tmp_path / "ladder.csv", index=False)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "calibrated", "ladder": {"path": "ladder.csv", "bootstrap": 0},
        "target": {"compute": "1e21"}, "hardware": {"device": "h100-sxm", "devices": 8}}))
    cal = calibrate_training([0.2 * H100.peak()] * 3, peak_flops=H100.peak(), source="pilot")
    path = cal.write(tmp_path / "cal.json")

    def hours(*extra: str) -> tuple[float, str]:
        assert main(["assess", str(study), "--json", "--executor", "serial", *extra]) in (0, 1)
        payload = json.loads(capsys.readouterr().out)
        line = next(r for r in payload["resources"] if r["name"] == "devices")
        hours = next(r for r in payload["resources"] if r["name"] == "device-hours")
        return hours["value"], line["note"]

    assumed, note = hours()
    measured, calibrated_note = hours("--calibration", str(path))
    assert "MFU 40%" in note and "MFU 20% (calibrated: pilot)" in calibrated_note
    assert measured == pytest.approx(2 * assumed)


def test_unwritable_calibration_file_is_one_line(tmp_path, capsys):
    folder = _ladder_table(tmp_path)
    target = tmp_path / "no" / "such" / "cal.json"
    assert main(["resources", "calibrate", str(folder), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "cal.json: cannot write the calibration" in err and err.count("\n") == 1


def test_ladder_with_an_empty_energy_cell_is_still_calibrated(tmp_path):
    from scaleguard.resources import ladder_frame

    folder = _ladder_table(tmp_path)
    table = pd.read_csv(folder / "ladder.csv")
    table.loc[1, "energy_j"] = None
    table.to_csv(folder / "ladder.csv", index=False)
    cal = calibrate_ladder(ladder_frame(folder))
    assert cal.power_w is None and cal.slope == pytest.approx(0.3)
    table.loc[2, "time_s"] = None
    table.to_csv(folder / "ladder.csv", index=False)
    with pytest.raises(InputError, match=r"ladder.csv: row 3 .*time_s"):
        ladder_frame(folder)
