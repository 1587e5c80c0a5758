"""Formulas of scaleguard.resources on hand-checked cases, properties and bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import ConfigError, InputError, ScaleguardError
from scaleguard.resources import (
    MODEL_PRESETS,
    Layout,
    ModelShape,
    Precision,
    activation_bytes_per_layer,
    energy_estimate,
    estimate_memory,
    estimate_training,
    flops_per_token,
    get_device,
    goodput,
    layout_problem,
    load_catalog,
    mfu,
    model_from_hf_config,
    model_preset,
    model_state_bytes,
    tokens_per_second,
    training_flops,
    training_seconds,
)

GIB = 2.0**30


# --- hardware catalog ---------------------------------------------------------------------

def test_catalog_has_the_devices_the_issue_lists():
    catalog = load_catalog()
    for key in ("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "mi300x",
                "tpu-v5e", "tpu-v5p", "epyc-9654", "xeon-8480"):
        assert key in catalog
    for device in catalog.values():
        assert device.memory_bytes > 0 and device.memory_bandwidth > 0
        assert all(v > 0 for v in device.peak_flops.values())
        json.dumps(device.as_dict())


def test_aliases_and_case():
    assert get_device("H100").key == "h100-sxm"
    assert get_device("a100").key == "a100-80gb"


def test_unknown_device_names_the_option():
    with pytest.raises(InputError, match=r"^--gpu: unknown device 'h100x'; known: .*h100-sxm"):
        get_device("h100x", option="--gpu")


def test_missing_dtype_names_it():
    with pytest.raises(InputError, match="dtype: tpu-v5e has no peak for 'fp8'"):
        get_device("tpu-v5e").peak("fp8")


def test_user_hardware_file_adds_and_replaces(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text("devices:\n  my-npu:\n    name: My NPU\n    memory: 64GB\n"
                    "    memory_bandwidth: 1.0e12\n    peak_flops: {bf16: 400e12}\n"
                    "    tdp: 500\n    link_bandwidth: 400e9\n"
                    "  h100-sxm:\n    name: derated H100\n    memory: 80GiB\n"
                    "    memory_bandwidth: 3.35e12\n    peak_flops: {bf16: 800e12}\n"
                    "    link_bandwidth: 900e9\n")
    assert get_device("my-npu", path).memory_bytes == 64e9
    assert get_device("h100-sxm", path).peak() == 800e12
    assert get_device("h100-sxm").peak() == 989.4e12  # the built-in one is untouched


@pytest.mark.parametrize("text, message", [
    ("devices: [1, 2]", "expected a mapping with a 'devices:'"),
    ("devices:\n  x:\n    name: X\n", "device 'x': field memory: Field required"),
    ("devices:\n  x:\n    name: X\n    memory: 8GB\n    memory_bandwidth: 1e9\n"
     "    peak_flops: {int4: 1e12}\n    link_bandwidth: 1e9\n", "unknown dtype 'int4'"),
    ("devices:\n  x:\n    name: X\n    memory: lots\n    memory_bandwidth: 1e9\n"
     "    peak_flops: {bf16: 1e12}\n    link_bandwidth: 1e9\n", "cannot read 'lots'"),
    ("devices: {x: [", "not valid YAML"),
])
def test_bad_hardware_file(tmp_path, text, message):
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    with pytest.raises(ScaleguardError, match=message) as info:
        load_catalog(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_hardware_file(tmp_path):
    with pytest.raises(ConfigError, match="no such hardware file"):
        load_catalog(tmp_path / "absent.yaml")


# --- model shapes -------------------------------------------------------------------------

@pytest.mark.parametrize("name, params", [
    # Published parameter counts (model cards / papers).
    ("llama-7b", 6.738e9), ("llama-2-13b", 13.016e9), ("llama-2-70b", 68.977e9),
    ("llama-3-8b", 8.030e9), ("llama-3-70b", 70.554e9), ("llama-3.1-405b", 405.85e9),
    ("gpt-3-175b", 175e9), ("gpt-3-125m", 125e6), ("gpt-3-6.7b", 6.7e9),
])
def test_preset_param_counts(name, params):
    assert model_preset(name).params == pytest.approx(params, rel=0.01)


def test_hf_config_llama(tmp_path):
    config = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
              "vocab_size": 128256, "max_position_embeddings": 8192,
              "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    shape = model_from_hf_config(path)
    assert shape.params == model_preset("llama-3-8b").params


def test_hf_config_gpt2_style():
    # GPT-2 small's config.json: 124,439,808 parameters (Hugging Face's count).
    shape = model_from_hf_config({"model_type": "gpt2", "n_embd": 768, "n_layer": 12,
                                  "n_head": 12, "n_positions": 1024, "vocab_size": 50257})
    assert shape.params == 124_439_808


def test_hf_config_errors(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        model_from_hf_config(bad)
    with pytest.raises(ConfigError, match="missing field 'vocab_size'"):
        model_from_hf_config({"hidden_size": 64, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "max_position_embeddings": 128})
    with pytest.raises(ConfigError, match="heads: 5 heads do not divide hidden=64"):
        model_from_hf_config({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10,
                              "num_attention_heads": 5, "max_position_embeddings": 128})


def test_model_shape_validation():
    with pytest.raises(InputError, match="layers: expected a positive integer"):
        ModelShape(0, 64, 4, 4, 256, 100, 128)
    with pytest.raises(InputError, match="kv_heads: 3 key/value heads do not divide heads=4"):
        ModelShape(2, 64, 4, 3, 256, 100, 128)
    with pytest.raises(InputError, match="--model: unknown model 'llama-9'"):
        model_preset("llama-9", option="--model")


# --- compute ------------------------------------------------------------------------------

def test_flops_per_token_palm_form():
    model = model_preset("llama-3-8b")
    attention = 12 * 32 * 32 * 128 * 8192
    assert flops_per_token(model) == 6 * model.params + attention
    assert flops_per_token(model, seq=1) == 6 * model.params + 12 * 32 * 4096


@given(st.floats(1e-3, 1.0), st.floats(1e6, 1e12), st.floats(1e12, 1e16))
def test_mfu_and_throughput_are_inverse(u, per_token, peak):
    assert mfu(tokens_per_second(u, per_token, peak), per_token, peak) == pytest.approx(u)


def test_training_seconds_and_goodput():
    assert training_seconds(1e21, 10, 1e14, 0.5) == pytest.approx(2e6)
    assert training_seconds(1e21, 10, 1e14, 0.5, goodput=0.8) == pytest.approx(2.5e6)
    assert goodput() == 1.0
    # One failure a day, each costing 1 h of restart and 2 h of redone work (half of 4 h):
    assert goodput(1, 1, 4) == pytest.approx(1 / (1 + 3 / 24))
    assert goodput(downtime_fraction=0.1) == pytest.approx(0.9)


@pytest.mark.parametrize("call, message", [
    (lambda: training_flops(7e9, -5), "tokens: expected a positive finite number, got -5"),
    (lambda: training_flops(float("nan"), 5), "params: expected a positive finite number"),
    (lambda: mfu(0, 1e9, 1e15), "tokens_per_second: expected a positive"),
    (lambda: tokens_per_second(1.5, 1e9, 1e15), "mfu: expected a fraction in"),
    (lambda: training_seconds(1e21, 8, 1e15, 0.4, goodput=0), "goodput: expected a positive"),
    (lambda: goodput(downtime_fraction=1.0), "downtime_fraction: expected a fraction below 1"),
    (lambda: estimate_training(device="h100", devices=8, mfu=0.4, params=7e9),
     "params, tokens: give both"),
    (lambda: estimate_training(device="h100", devices=2.5, mfu=0.4, flops=1e21),
     "devices: expected a whole number"),
    (lambda: estimate_training(device="tpu-v5e", devices=8, mfu=0.4, flops=1e21),
     "power: tpu-v5e has no published TDP"),
    (lambda: energy_estimate(10, 300, pue=0.9), "pue: expected a power usage effectiveness"),
])
def test_bad_input_names_the_field(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_training_estimate_is_consistent():
    run = estimate_training(params=7e9, tokens=1e12, device="a100-80gb", devices=256, mfu=0.5,
                            goodput=0.9, pue=1.2, intensity=400, price_per_device_hour=2.0)
    assert run.flops == 6 * 7e9 * 1e12
    assert run.compute_seconds == pytest.approx(run.flops / (256 * 312e12 * 0.5))
    assert run.wall_seconds == pytest.approx(run.compute_seconds / 0.9)
    assert run.device_hours == pytest.approx(256 * run.wall_seconds / 3600)
    assert run.energy_j == pytest.approx(run.device_hours * 3600 * 400 * 1.2)
    assert run.carbon_g == pytest.approx(run.energy_j / 3.6e6 * 400)
    assert run.cost == pytest.approx(run.device_hours * 2.0)
    assert run.tokens_per_second * run.wall_seconds == pytest.approx(1e12)
    payload = run.as_dict()
    assert json.loads(json.dumps(payload)) == payload
    assert "TrainingEstimate(" in repr(run)


# --- memory -------------------------------------------------------------------------------

def test_optimizer_bytes_per_param():
    # Megatron-LM / DeepSpeed defaults: bf16 weights, fp32 gradients, fp32 master + Adam moments.
    weights, grads, optim, gather = model_state_bytes(1e9)
    assert (weights, grads, optim) == (2e9, 4e9, 12e9)
    assert sum(model_state_bytes(1e9, precision=Precision(gradients="bf16"))) / 1e9 == 16
    assert sum(model_state_bytes(1e9, precision=Precision(weights="fp32", master="none"))) \
        / 1e9 == 16  # pure fp32 Adam: 4 + 4 + 8
    assert sum(model_state_bytes(1e9, optimizer="sgd-momentum")) / 1e9 == 14
    assert Precision().describe() == "bf16 weights, fp32 gradients, fp32 master weights"


def test_zero_stages_shard_progressively():
    totals = [sum(model_state_bytes(8e9, zero=z, dp=8)) for z in range(3)]
    assert totals[0] == 18 * 8e9
    assert totals[1] == (2 + 4 + 12 / 8) * 8e9
    assert totals[2] == (2 + 4 / 8 + 12 / 8) * 8e9
    assert sum(model_state_bytes(8e9, zero=3, dp=8)) == 18 / 8 * 8e9  # no gather buffer given


def _gpt(layers: int, hidden: int, heads: int, seq: int) -> ModelShape:
    return ModelShape(layers, hidden, heads, heads, 4 * hidden, 50257, seq, gated_ffn=False,
                      name="gpt")


def test_activations_korthikanti_tensor_parallel_forms():
    s, b, h, a = 2048, 1, 12288, 96  # GPT-3 175B shape (Korthikanti et al. 2022, Table 3)
    gpt = _gpt(96, h, a, s)
    sbh = s * b * h

    def per_layer(**layout):
        return activation_bytes_per_layer(gpt, Layout(**layout), norm_bytes=2)

    assert per_layer(recompute="none", tp=8, sequence_parallel=False, attention="eager") == (
        pytest.approx(sbh * (10 + 24 / 8 + 5 * a * s / (h * 8))))
    assert per_layer(recompute="selective", tp=8) == pytest.approx(sbh * 34 / 8)
    assert per_layer(recompute="full", tp=8) == pytest.approx(2 * sbh / 8)
    # The paper's headline: selective recomputation + sequence parallelism cut activation
    # memory about 5x for GPT-3 at t=8 against tensor parallelism alone.
    base = per_layer(recompute="none", tp=8, sequence_parallel=False, attention="eager")
    assert 4.5 < base / per_layer(recompute="selective", tp=8) < 5.5
    # fp32 norm inputs add 2 x 2 bytes per element of s·b·h.
    fp32_norms = activation_bytes_per_layer(gpt, Layout(recompute="selective"))
    assert fp32_norms == pytest.approx(sbh * 38)


def test_gated_mlp_and_gqa_change_the_per_layer_count():
    # A gated MLP keeps gate, up and their product (6·ffn bytes a token) against GPT's fc1 and
    # GELU outputs (4·ffn): Llama's 3.5h SwiGLU needs more than GPT's 4h MLP (2 + 21 vs 2 + 16).
    h, s = 4096, 1024
    gpt = _gpt(32, h, 32, s)
    llama = ModelShape(32, h, 32, 32, 14336, 32000, s)
    gqa = ModelShape(32, h, 32, 8, 14336, 32000, s)
    layout = Layout(recompute="selective")
    sbh = s * h
    assert activation_bytes_per_layer(gpt, layout, norm_bytes=2) == sbh * 34
    assert activation_bytes_per_layer(llama, layout, norm_bytes=2) == sbh * (34 - 16 + 21)
    # K and V of 8 key/value heads instead of 32: 2 x 2 x (h - h/4) bytes fewer a token.
    assert activation_bytes_per_layer(llama, layout, norm_bytes=2) - \
        activation_bytes_per_layer(gqa, layout, norm_bytes=2) == sbh * 4 * 0.75


def test_fused_attention_drops_the_quadratic_term():
    gpt = _gpt(32, 4096, 32, 4096)
    eager = activation_bytes_per_layer(gpt, Layout(recompute="none", attention="eager"))
    fused = activation_bytes_per_layer(gpt, Layout(recompute="none", attention="fused"))
    selective = activation_bytes_per_layer(gpt, Layout(recompute="selective"))
    assert selective < fused < eager
    # Doubling the sequence doubles fused attention's memory, and roughly quadruples eager's
    # quadratic term.
    longer = gpt.with_seq(8192)
    assert activation_bytes_per_layer(longer, Layout(recompute="none")) == pytest.approx(2 * fused)
    assert activation_bytes_per_layer(longer, Layout(recompute="none", attention="eager")) > \
        3 * eager


def test_pipeline_keeps_all_layers_worth_of_activations_on_stage_one():
    model = model_preset("llama-3-8b").with_seq(1024)
    flat = estimate_memory(model, Layout())
    piped = estimate_memory(model, Layout(pp=4))
    assert piped.activations == flat.activations
    assert piped.weights == flat.weights / 4
    few = estimate_memory(model, Layout(pp=4), in_flight_micro_batches=2)
    assert few.activations == flat.activations / 2


def test_memory_fits_against_device():
    model = model_preset("llama-3-8b").with_seq(4096)
    small = estimate_memory(model, Layout(dp=64, zero=3), device=get_device("h100-sxm"))
    assert small.fits is True
    single = estimate_memory(model, Layout(), device=get_device("h100-sxm"))
    assert single.fits is False and single.total > 100 * GIB
    assert estimate_memory(model, Layout()).fits is None
    assert json.loads(json.dumps(small.as_dict()))["fits"] is True


GQA_TOY = ModelShape(4, 768, 12, 4, 2048, 1000, 256, name="toy")


@pytest.mark.parametrize("model, layout, message", [
    (model_preset("llama-3-8b"), Layout(tp=3),
     "tp: 3 does not divide the 32 attention heads of llama-3-8b"),
    (GQA_TOY, Layout(tp=6), "tp: 6 neither divides nor is a multiple of the 4 key/value heads"),
    (model_preset("llama-3-8b"), Layout(pp=5), "pp: 5 does not divide the 32 layers"),
])
def test_layout_that_cannot_split_the_model(model, layout, message):
    assert layout_problem(model, layout).startswith(message)
    assert layout_problem(model, Layout()) is None
    with pytest.raises(InputError, match=message):
        estimate_memory(model, layout)


@pytest.mark.parametrize("kwargs, message", [
    ({"tp": 0}, "tp: expected a positive integer, got 0"),
    ({"zero": 4}, "zero: expected a ZeRO stage 0, 1, 2 or 3, got 4"),
    ({"recompute": "some"}, "recompute: expected one of none, selective, full"),
    ({"attention": "flash"}, "attention: expected one of fused, eager, got 'flash'"),
    ({"dp": 4, "ep": 3}, "ep: 3 does not divide dp=4"),
])
def test_bad_layout_fields(kwargs, message):
    with pytest.raises(InputError, match=message):
        Layout(**kwargs)


def test_unknown_optimizer_and_precision():
    with pytest.raises(InputError, match="optimizer: expected one of adam, adamw"):
        model_state_bytes(1e9, optimizer="lion")
    with pytest.raises(InputError, match="gradients: expected one of fp32, bf16, fp16"):
        Precision(gradients="int8")
    with pytest.raises(InputError, match="master: expected one of fp32, none"):
        Precision(master="bf16")


@given(st.sampled_from(list(MODEL_PRESETS)), st.sampled_from([1, 2, 4, 8]),
       st.sampled_from([1, 2, 4]), st.sampled_from(["none", "selective", "full"]))
def test_more_parallelism_never_needs_more_memory(name, dp, mb, recompute):
    model = MODEL_PRESETS[name]
    one = estimate_memory(model, Layout(dp=1, zero=3, micro_batch=mb, recompute=recompute))
    many = estimate_memory(model, Layout(dp=dp, zero=3, micro_batch=mb, recompute=recompute))
    assert many.total <= one.total + many.zero3_gather
    cheaper = {"none": "selective", "selective": "full", "full": "full"}[recompute]
    less = estimate_memory(model, Layout(micro_batch=mb, recompute=cheaper))
    assert less.activations <= one.activations


def test_resources_exports_are_all():
    import scaleguard.resources as resources

    public = {name for name, value in vars(resources).items()
              if not name.startswith("_") and type(value).__name__ != "module"}
    assert set(resources.__all__) == public


# --- mixture of experts -------------------------------------------------------------------

def _moe(experts: int, top: int, shared: int = 0, dense: int = 0) -> ModelShape:
    return ModelShape(8, 512, 8, 8, 2048, 1000, 256, experts=experts, experts_per_token=top,
                      expert_ffn=1024, shared_ffn=shared, dense_layers=dense, name="moe")


@given(st.integers(1, 64), st.integers(1, 8), st.sampled_from([0, 1024]), st.integers(0, 7))
def test_moe_active_params_never_exceed_total(experts, top, shared, dense):
    model = _moe(experts, min(top, experts), shared, dense)
    assert model.active_params <= model.params
    assert (model.active_params == model.params) == (min(top, experts) == experts)
    # Training FLOPs follow the active parameters: 6·N_active + PaLM's attention term.
    assert flops_per_token(model) == 6 * model.active_params + 12 * 8 * 512 * 256


@given(st.sampled_from([1, 2, 4, 8]), st.sampled_from([0, 1, 2, 3]))
def test_expert_parallelism_never_needs_more_memory(ep, zero):
    model = _moe(8, 2)
    one = estimate_memory(model, Layout(dp=8, zero=zero))
    split = estimate_memory(model, Layout(dp=8, zero=zero, ep=ep))
    assert split.weights + split.gradients + split.optimizer_state <= \
        one.weights + one.gradients + one.optimizer_state
    assert split.activations == one.activations


def test_moe_shape_errors_name_the_field():
    with pytest.raises(InputError, match="experts_per_token: expected 1 to experts=4, got 5"):
        _moe(4, 5)
    with pytest.raises(InputError, match="experts: experts_per_token, expert_ffn"):
        ModelShape(2, 64, 4, 4, 256, 100, 128, experts_per_token=2)
    with pytest.raises(InputError, match="ep: 3 does not divide the 8 experts"):
        estimate_memory(_moe(8, 2), Layout(dp=3, ep=3))
    with pytest.raises(ConfigError, match="^config: experts_per_token"):
        model_from_hf_config({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10,
                              "num_attention_heads": 4, "max_position_embeddings": 128,
                              "intermediate_size": 128, "num_local_experts": 4,
                              "num_experts_per_tok": 9})
    with pytest.raises(ConfigError, match="interleaved with dense ones"):
        model_from_hf_config({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 10,
                              "num_attention_heads": 4, "max_position_embeddings": 128,
                              "num_experts": 4, "num_experts_per_tok": 2,
                              "moe_intermediate_size": 32, "decoder_sparse_step": 2})


def test_serving_reads_only_the_experts_a_step_touches():
    from scaleguard.resources import decode_step

    model = _moe(64, 2)
    h100 = get_device("h100-sxm")
    one = decode_step(model, h100, batch=1, context=10)
    many = decode_step(model, h100, batch=512, context=10)
    dense_bytes = (model.params - model.expert_params) * 2
    assert one.bytes - 10 * 2 * 8 * 8 * 64 * 2 == pytest.approx(
        dense_bytes + model.expert_params * 2 * (2 / 64))
    assert many.bytes < (model.params * 2 + 512 * 10 * 2 * 8 * 8 * 64 * 2) * 1.0001
    assert many.bytes > one.bytes


_MOE_KEYS = ["num_local_experts", "num_experts_per_tok", "intermediate_size",
             "moe_intermediate_size", "n_shared_experts", "shared_expert_intermediate_size",
             "first_k_dense_replace", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
             "qk_nope_head_dim", "v_head_dim", "decoder_sparse_step", "mlp_only_layers"]


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(_MOE_KEYS),
                       st.one_of(st.none(), st.booleans(), st.integers(-3, 300),
                                 st.floats(allow_nan=True), st.text(max_size=3),
                                 st.lists(st.integers(0, 3), max_size=2)), max_size=6))
def test_fuzzed_moe_configs_give_a_shape_or_one_config_error(changes):
    base = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
            "num_key_value_heads": 8, "intermediate_size": 512, "vocab_size": 1000,
            "max_position_embeddings": 512, "num_local_experts": 8, "num_experts_per_tok": 2}
    try:
        shape = model_from_hf_config({**base, **changes})
    except ConfigError as exc:
        assert str(exc).startswith("config: ") and "\n" not in str(exc)
    else:
        assert 0 < shape.active_params <= shape.params
