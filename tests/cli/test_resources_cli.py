"""``scaleguard resources ...``: human units in and out, --json is as_dict(), errors exit 2."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.cli import main
from scaleguard.resources import (
    Layout,
    energy_estimate,
    estimate_memory,
    estimate_training,
    model_preset,
)


def run_json(capsys, *args: str) -> dict:
    assert main(["resources", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_train_human_units(capsys):
    assert main(["resources", "train", "--params", "70B", "--tokens", "2T", "--gpu", "h100-sxm",
                 "--gpus", "2048", "--mfu", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "70B" in out and "2T" in out and "12d" in out and "6·N·D" in out


def test_train_json_is_as_dict(capsys):
    payload = run_json(capsys, "train", "--params", "70B", "--tokens", "2T", "--gpu", "h100",
                       "--gpus", "2k", "--mfu", "0.4", "--pue", "1.1",
                       "--intensity", "0.429kg/kWh", "--price", "2.5", "--goodput", "0.9")
    expected = estimate_training(params=70e9, tokens=2e12, device="h100-sxm", devices=2000,
                                 mfu=0.4, pue=1.1, intensity=429, price_per_device_hour=2.5,
                                 goodput=0.9)
    assert payload == json.loads(json.dumps({**expected.as_dict(), "active_params": None,
                                             "mfu_source": payload["mfu_source"]}))
    assert payload["mfu_source"] == "given"


def test_train_with_model_uses_palm_form(capsys):
    payload = run_json(capsys, "train", "--model", "llama-3-8b", "--tokens", "15T",
                       "--gpu", "h100", "--gpus", "16384", "--mfu", "0.4")
    assert payload["flops"] > 6 * payload["params"] * 15e12  # attention adds FLOPs
    assert payload["params"] == model_preset("llama-3-8b").params


def test_train_mfu_from_measured_throughput(capsys):
    # torchtitan docs/performance.md: Llama 3 8B on 64 A100 at 2,973 tokens/s per GPU = 58.2% MFU.
    payload = run_json(capsys, "train", "--model", "llama-3-8b", "--tokens", "1T",
                       "--gpu", "a100", "--gpus", "64", "--throughput", "2973")
    assert payload["mfu"] == pytest.approx(0.582, abs=0.01)
    assert payload["tokens_per_second"] == pytest.approx(64 * 2973)


def test_train_with_region(capsys):
    payload = run_json(capsys, "train", "--flops", "1e23", "--gpu", "a100", "--gpus", "512",
                       "--mfu", "0.5", "--region", "FRA")
    assert payload["energy"]["intensity"]["region"] == "FRA"
    assert payload["energy"]["carbon_g"] > 0


def test_memory_matches_library_and_reports_fit(capsys):
    payload = run_json(capsys, "memory", "--model", "llama-3-8b", "--seq", "1024",
                       "--recompute", "none", "--gpu", "h100")
    expected = estimate_memory(model_preset("llama-3-8b").with_seq(1024),
                               Layout(recompute="none"))
    assert payload["activations"] == expected.activations
    assert payload["layout"]["attention"] == "fused"
    assert payload["precision"] == {"weights": "bf16", "gradients": "fp32", "master": "fp32"}
    assert payload["fits"] is False
    assert main(["resources", "memory", "--model", "llama-3-8b", "--dp", "8", "--zero", "3",
                 "--gpu", "h100"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "fits" in out
    # The precision defaults are printed, with where they come from.
    assert "bf16 weights, fp32 gradients, fp32 master weights, adam (18 B/param" in out
    assert "Megatron-LM" in out


def test_memory_from_hf_config(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 1024, "num_hidden_layers": 8,
                                "num_attention_heads": 16, "intermediate_size": 4096,
                                "vocab_size": 32000, "max_position_embeddings": 2048}))
    payload = run_json(capsys, "memory", "--config", str(path), "--micro-batch", "4")
    assert payload["layout"]["micro_batch"] == 4 and payload["seq"] == 2048


def test_plan_lists_layouts_and_rejections(capsys):
    assert main(["resources", "plan", "--model", "llama-3-70b", "--gpu", "h100",
                 "--gpus", "64", "--global-batch", "256", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "layouts fit" in out and "rejected:" in out and "memory" in out
    payload = run_json(capsys, "plan", "--model", "llama-3-8b", "--gpu", "a100",
                       "--gpus", "64", "--global-batch", "64")
    assert payload["fits"] is True and payload["best"]["layout"]["dp"] == 64


def test_plan_nothing_fits_is_said(capsys):
    assert main(["resources", "plan", "--model", "llama-3.1-405b", "--gpu", "a100-40gb",
                 "--gpus", "8", "--global-batch", "8"]) == 0
    assert "no layout fits" in capsys.readouterr().out


def test_energy_gpt3_patterson(capsys):
    # Patterson et al. 2021: 10,000 V100 x 330 W x 14.8 d x PUE 1.1 x 0.429 kg/kWh.
    payload = run_json(capsys, "energy", "--gpus", "10000", "--duration", "14.8d",
                       "--power", "330W", "--pue", "1.1", "--intensity", "0.429kg/kWh")
    assert payload == json.loads(json.dumps(energy_estimate(
        10_000 * 14.8 * 24, 330, pue=1.1, intensity=429).as_dict()))
    assert main(["resources", "energy", "--gpu-hours", "184320", "--gpu", "a100",
                 "--pue", "1.1", "--intensity", "385g/kWh"]) == 0
    assert "31.22tCO2e" in capsys.readouterr().out


def test_serve(capsys):
    payload = run_json(capsys, "serve", "--model", "llama-3-70b", "--gpu", "h100",
                       "--rate", "20", "--prompt", "2k", "--output", "300", "--latency", "10s")
    assert payload["feasible"] is True and payload["latency"] <= 10
    assert main(["resources", "serve", "--model", "llama-3-8b", "--gpu", "a100",
                 "--rate", "5", "--prompt", "500", "--output", "100"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "time to first token (TTFT, prefill)" in out
    assert "time per output token (TPOT, decode)" in out
    assert "assumed" in out and "FasterTransformer" in out


def test_serve_at_a_fixed_batch(capsys):
    payload = run_json(capsys, "serve", "--model", "llama-3-8b", "--gpu", "h100", "--rate", "10",
                       "--prompt", "1000", "--output", "200", "--batch", "32")
    assert payload["batch"] == 32
    assert payload["tokens_per_second_per_device"] == pytest.approx(
        32 / payload["latency"] * 200)


def test_devices_with_a_hardware_file(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_text("devices:\n  my-npu:\n    name: My NPU\n    memory: 64GB\n"
                    "    memory_bandwidth: 1.0e12\n    peak_flops: {bf16: 400e12}\n"
                    "    tdp: 500\n    link_bandwidth: 400e9\n")
    payload = run_json(capsys, "devices", "--hardware-file", str(path))
    assert "my-npu" in payload and "h100-sxm" in payload
    assert main(["resources", "devices"]) == 0
    assert "mi300x" in capsys.readouterr().out
    assert main(["resources", "train", "--flops", "1e22", "--gpu", "my-npu", "--gpus", "8",
                 "--mfu", "0.5", "--hardware-file", str(path)]) == 0


@pytest.mark.parametrize("args, message", [
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100x", "--gpus", "8", "--mfu",
      "0.4"], "--gpu: unknown device 'h100x'"),
    (["train", "--params", "7B", "--tokens", "-5", "--gpu", "h100", "--gpus", "8", "--mfu",
      "0.4"], "--tokens: expected a positive quantity, got '-5'"),
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--gpus", "8", "--mfu",
      "1.5"], "--mfu: expected a fraction in (0, 1]"),
    (["train", "--params", "7B", "--tokens", "1Tb", "--gpu", "h100", "--gpus", "8", "--mfu",
      "0.4"], "--tokens: unknown unit 'Tb'"),
    (["train", "--params", "7B", "--gpu", "h100", "--gpus", "8", "--mfu", "0.4"],
     "--params, --tokens: give both"),
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--gpus", "2.5",
      "--mfu", "0.4"], "--gpus: expected a whole number"),
    (["memory", "--model", "llama-3-8b", "--tp", "3"],
     "--tp: 3 does not divide the 32 attention heads of llama-3-8b"),
    (["memory", "--model", "llama-3-8b", "--pp", "5"], "--pp: 5 does not divide the 32 layers"),
    (["memory", "--model", "llama-3-8b", "--zero", "5"], "--zero: expected a ZeRO stage"),
    (["memory", "--model", "llama-3-8b", "--micro-batch", "0"],
     "--micro-batch: expected a positive integer"),
    (["memory", "--model", "llama-9"], "--model: unknown model 'llama-9'"),
    (["memory"], "--model, --config: give exactly one"),
    (["energy", "--gpu-hours", "100", "--power", "300W", "--intensity", "lots"],
     "--intensity: cannot read 'lots'"),
    (["energy", "--gpu-hours", "100", "--power", "300W", "--region", "atlantis"],
     "region: unknown region 'atlantis'"),
    (["energy", "--gpu-hours", "100", "--gpu", "tpu-v5e"], "--power: tpu-v5e has no published"),
    (["energy", "--gpu-hours", "100", "--power", "3kWh"], "--power: '3kWh' has a unit of energy"),
    (["energy", "--power", "300W"], "--gpu-hours: required"),
    (["serve", "--model", "llama-3-8b", "--gpu", "h100", "--rate", "0", "--prompt", "10",
      "--output", "10"], "--rate: expected a positive"),
    (["serve", "--model", "llama-3-8b", "--gpu", "h100", "--rate", "1", "--prompt", "10",
      "--output", "10", "--tp", "3"], "--tp: 3 does not divide"),
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--gpus", "8",
      "--mfu", "0.4", "--throughput", "1k"], "--mfu, --throughput, --calibration: give at most"),
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--gpus", "8",
      "--currency", "dollars"], "--currency: expected a three-letter code"),
    (["energy", "--gpu-hours", "100", "--power", "300W", "--currency", "e"],
     "--currency: expected a three-letter code"),
    (["plan", "--model", "llama-3-8b", "--gpu", "h100", "--gpus", "8", "--global-batch", "8",
      "--optimizer", "lion"], "--optimizer: expected one of adam"),
    (["calibrate", "tests/resources/configs/mixtral-8x7b.json"],
     "not a ladder table (.csv) or folder; give --serving"),
    (["memory", "--model", "llama-3-8b", "--attention", "flash"],
     "--attention: expected one of fused, eager"),
    (["memory", "--model", "llama-3-8b", "--gradients", "int8"],
     "--gradients: expected one of fp32, bf16, fp16"),
    (["memory", "--model", "llama-3-8b", "--dp", "8", "--ep", "2"],
     "--ep: llama-3-8b has no experts"),
    (["train", "--params", "7B", "--tokens", "1T", "--gpu", "h100", "--gpus", "8",
      "--throughput", "1M"], "--throughput: 1M tokens/s per device implies MFU"),
    (["serve", "--model", "llama-3-70b", "--gpu", "h100", "--rate", "1", "--prompt", "100k",
      "--output", "10", "--batch", "64"], "--batch: 64 sequences of 100010 tokens do not fit"),
    (["serve", "--model", "llama-3-70b", "--gpu", "h100", "--rate", "1", "--prompt", "4M",
      "--output", "10"], "--prompt, --output: one sequence of 4000010 tokens does not fit"),
    (["plan", "--model", "llama-3-8b", "--gpu", "h100", "--gpus", "8",
      "--global-batch", "0"], "--global-batch: expected a positive"),
])
def test_bad_input_exits_2_naming_the_option(args, message, capsys):
    assert main(["resources", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleguard: error: ")
    assert message in err
    assert err.count("\n") == 1


@settings(max_examples=25, deadline=None)
@given(st.floats(-1e15, 0.0, allow_nan=False), st.sampled_from(["--tokens", "--params", "--gpus"]))
def test_non_positive_quantities_are_refused(value, option):
    args = {"--params": "7B", "--tokens": "1T", "--gpus": "8"}
    args[option] = repr(value)
    argv = ["resources", "train", "--gpu", "h100", "--mfu", "0.4"]
    for name, text in args.items():
        argv += [name, text]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(argv) == 2
    assert stderr.getvalue().startswith(f"scaleguard: error: {option}: ")


# --- issue 19: defaults from published measurements, said to be assumptions ----------------

def test_train_default_mfu_is_an_assumption_with_its_source(capsys):
    assert main(["resources", "train", "--params", "70B", "--tokens", "2T", "--gpu", "h100",
                 "--gpus", "2048", "--price", "2", "--currency", "EUR"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "at MFU 0.4" in out and "assumed" in out and "Llama 3" in out
    assert "EUR per device-hour" in out and out.count("EUR") >= 2
    payload = run_json(capsys, "train", "--params", "70B", "--tokens", "2T", "--gpu", "h100",
                       "--gpus", "2048", "--price", "2")
    assert payload["mfu"] == 0.4 and payload["energy"]["currency"] == "USD"
    assert payload["mfu_source"].startswith("assumed")


def test_train_on_v100_uses_fp16(capsys):
    # A V100 has no bf16: the default peak is its fp16 tensor-core figure.
    payload = run_json(capsys, "train", "--params", "1.3B", "--tokens", "26B", "--gpu", "v100",
                       "--gpus", "8", "--mfu", "0.3")
    assert payload["dtype"] == "fp16" and payload["peak_flops"] == pytest.approx(125e12)
    memory = run_json(capsys, "memory", "--model", "gpt-3-1.3b", "--gpu", "v100", "--dp", "8",
                      "--zero", "1")
    assert memory["precision"]["weights"] == "fp16"
    assert run_json(capsys, "plan", "--model", "gpt-3-1.3b", "--gpu", "v100", "--gpus", "8",
                    "--global-batch", "64")["fits"] is True


def test_serve_that_cannot_meet_the_latency_exits_1_without_a_table(capsys):
    code = main(["resources", "serve", "--model", "llama-3-70b", "--gpu", "a100", "--rate",
                 "5", "--prompt", "2k", "--output", "2k", "--latency", "1s"])
    assert code == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "infeasible" in out and "exceeds the target" in out
    assert "replicas" not in out  # no devices table for a plan that cannot run


def test_moe_from_config_in_memory_plan_and_serve(capsys):
    from pathlib import Path
    config = str(Path(__file__).parents[1] / "resources" / "configs" / "mixtral-8x7b.json")
    payload = run_json(capsys, "train", "--config", config, "--tokens", "1T", "--gpu", "h100",
                       "--gpus", "64", "--mfu", "0.4", "--seq", "4096")
    assert payload["active_params"] == pytest.approx(12.9e9, rel=0.01)
    assert payload["flops"] < 6.5 * 13.1e9 * 1e12  # from active, not total, parameters
    one = run_json(capsys, "memory", "--config", config, "--seq", "4096", "--dp", "8",
                   "--zero", "1")
    split = run_json(capsys, "memory", "--config", config, "--seq", "4096", "--dp", "8",
                     "--zero", "1", "--ep", "8")
    assert split["weights"] < one["weights"] / 3
    assert main(["resources", "plan", "--config", config, "--seq", "4096", "--gpu", "h100",
                 "--gpus", "64", "--global-batch", "256", "--top", "3"]) == 0
    assert " ep " in capsys.readouterr().out.replace("┃", " ")
    served = run_json(capsys, "serve", "--config", config, "--gpu", "h100", "--rate", "1",
                      "--prompt", "1000", "--output", "100")
    assert served["memory_per_device"] * served["tp"] > 46.7e9 * 2  # every expert resident


def test_help_texts_of_the_defaults_agree_with_the_library():
    # The CLI writes the defaults' sources out so that --help imports nothing; they must say
    # what scaleguard.resources uses.
    from scaleguard.cli import resources as cli
    from scaleguard.resources import DEFAULT_MFU, EFFICIENCY_SOURCE, MFU_SOURCE
    from scaleguard.resources._serving import BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY

    assert f"default {DEFAULT_MFU:g}: {MFU_SOURCE}" == cli.MFU_HELP
    expected = (f"default {COMPUTE_EFFICIENCY:g} of peak FLOP/s and {BANDWIDTH_EFFICIENCY:g} of "
                f"bandwidth: {EFFICIENCY_SOURCE}")
    assert expected == cli.EFFICIENCY_HELP
