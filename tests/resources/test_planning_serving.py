"""Layout planner and serving capacity: published figures, orderings and bad input."""

from __future__ import annotations

import json
import math

import pytest

from scaleguard.errors import InputError
from scaleguard.resources import (
    decode_step,
    get_device,
    kv_cache_bytes_per_token,
    model_preset,
    plan_layouts,
    plan_serving,
    prefill_step,
)


def test_kv_cache_per_token_llama3():
    # 2 · layers · kv_heads · head_dim · 2 bytes (bf16): Llama-3-8B 2·32·8·128·2 = 131,072 B and
    # Llama-3-70B 2·80·8·128·2 = 327,680 B, as vLLM/NVIDIA's inference guides tabulate.
    assert kv_cache_bytes_per_token(model_preset("llama-3-8b")) == 131_072
    assert kv_cache_bytes_per_token(model_preset("llama-3-70b")) == 327_680


def test_llama_7b_decode_batch_1_on_a100_is_about_6_7_ms():
    # The memory-bandwidth roofline figure issue 4 quotes: LLaMA-7B (6.74B params, 13.5 GB in
    # fp16) read once per token from an A100-80GB (~2 TB/s) -> about 6.7 ms/token ideal.
    step = decode_step(model_preset("llama-7b"), get_device("a100-80gb"), batch=1, context=128,
                       efficiency=1.0)
    assert step.bound == "memory"
    assert step.seconds * 1e3 == pytest.approx(6.7, rel=0.03)


def test_llama_7b_latencies_match_llm_analysis():
    # llm-analysis examples/llama/README.md, LLaMA-7B on A100-SXM-80GB, prompt 512, batch 1:
    # ideal prefill 22.41 ms, decode 6.73 ms; with flops efficiency 0.7 and HBM efficiency 0.9
    # (our defaults) prefill 31.89 ms and decode 7.48 ms.
    model, a100 = model_preset("llama-7b"), get_device("a100-80gb")
    assert prefill_step(model, a100, batch=1, prompt=512, efficiency=1.0).seconds * 1e3 == \
        pytest.approx(22.41, rel=0.02)
    assert prefill_step(model, a100, batch=1, prompt=512).seconds * 1e3 == \
        pytest.approx(31.89, rel=0.02)
    assert decode_step(model, a100, batch=1, context=512).seconds * 1e3 == \
        pytest.approx(7.48, rel=0.02)


def test_roofline_turns_compute_bound_with_batch_and_prompt():
    model, h100 = model_preset("llama-3-8b"), get_device("h100-sxm")
    assert prefill_step(model, h100, batch=1, prompt=4096).bound == "compute"
    small = decode_step(model, h100, batch=1, context=512)
    large = decode_step(model, h100, batch=512, context=512)
    assert large.seconds > small.seconds
    assert 512 / large.seconds > 50 / small.seconds  # batching multiplies throughput
    assert json.loads(json.dumps(large.as_dict()))["bound"] in ("memory", "compute")


def test_tensor_parallel_divides_step_time():
    model, h100 = model_preset("llama-3-70b"), get_device("h100-sxm")
    one = decode_step(model, h100, batch=8, context=1024)
    four = decode_step(model, h100, batch=8, context=1024, tp=4)
    assert four.seconds == pytest.approx(one.seconds / 4)


def test_serving_plan_meets_rate_and_latency():
    plan = plan_serving(model_preset("llama-3-70b"), "h100-sxm", rate=20, prompt=2000,
                        output=300, max_latency=10.0)
    assert plan.feasible
    assert plan.latency <= 10.0
    assert plan.replicas * plan.requests_per_second_per_replica >= 20
    assert plan.devices == plan.replicas * plan.tp
    assert plan.tp == 4  # 141 GB of bf16 weights need 4 x 80 GB with room for the KV cache
    assert plan.memory_per_device <= 0.9 * get_device("h100-sxm").memory_bytes
    assert math.ceil(20 / plan.requests_per_second_per_replica) == plan.replicas
    assert json.loads(json.dumps(plan.as_dict()))["devices"] == plan.devices


def test_serving_more_load_needs_no_fewer_devices():
    model = model_preset("llama-3-8b")
    counts = [plan_serving(model, "a100-80gb", rate=r, prompt=500, output=200,
                           max_latency=5.0).devices for r in (1, 10, 100, 1000)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_serving_infeasible_latency_says_why():
    plan = plan_serving(model_preset("llama-3-70b"), "h100-sxm", rate=1, prompt=1000,
                        output=500, max_latency=0.5)
    assert not plan.feasible
    assert "exceeds the target" in plan.reason


def test_serving_bad_input():
    model = model_preset("llama-3-8b")
    with pytest.raises(InputError, match="rate: expected a positive"):
        plan_serving(model, "h100", rate=-1, prompt=10, output=10)
    with pytest.raises(InputError, match="tp: 3 does not divide the 32 attention heads"):
        plan_serving(model, "h100", rate=1, prompt=10, output=10, tp=3)
    with pytest.raises(InputError, match="prompt, output: one sequence of"):
        plan_serving(model, "tpu-v5e", rate=1, prompt=10_000_000, output=10)


def test_planner_llama3_8b_on_64_a100_is_near_torchtitan():
    # torchtitan ran Llama 3 8B with FSDP (ZeRO-3) on 64 A100s at 58.2% MFU (docs/performance.md);
    # the planner should pick pure data parallelism with sharding and land in that region.
    plan = plan_layouts(model_preset("llama-3-8b"), "a100-80gb", 64, global_batch=64)
    best = plan.best
    assert plan.fits and best is not None
    assert (best.layout.tp, best.layout.pp, best.layout.dp) == (1, 1, 64)
    assert best.layout.zero >= 1
    assert 0.45 < best.mfu < 0.65
    steps = [c.step_seconds for c in plan.candidates]
    assert steps == sorted(steps)
    assert all(c.memory.fits for c in plan.candidates)


def test_planner_explains_rejections():
    plan = plan_layouts(model_preset("llama-3-70b"), "h100-sxm", 64, global_batch=256)
    counts = plan.rejection_counts()
    assert {"memory", "tp", "pp", "global_batch"} <= set(counts)
    reasons = {r.reason.split(":")[0]: r.reason for r in plan.rejected}
    assert "does not divide the 80 layers" in reasons["pp"]
    assert "spans nodes of 8 devices" in reasons["tp"]
    assert "usable" in reasons["memory"]
    payload = json.loads(json.dumps(plan.as_dict()))
    assert payload["fits"] is True and payload["best"]["layout"]["dp"] >= 1


def test_planner_says_when_nothing_fits():
    plan = plan_layouts(model_preset("llama-3.1-405b"), "a100-40gb", 8, global_batch=8)
    assert not plan.fits and plan.best is None
    assert plan.rejection_counts()["memory"] > 0


def test_planner_bad_input():
    model = model_preset("llama-3-8b")
    with pytest.raises(InputError, match="device: unknown device 'gpu9000'"):
        plan_layouts(model, "gpu9000", 8, global_batch=8)
    with pytest.raises(InputError, match="global_batch: expected a positive"):
        plan_layouts(model, "h100", 8, global_batch=0)
    with pytest.raises(InputError, match="optimizer: expected one of"):
        plan_layouts(model, "h100", 8, global_batch=8, optimizer="lion")
