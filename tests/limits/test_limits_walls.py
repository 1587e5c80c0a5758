"""Studies built to hit each wall exactly once, and one that passes them all."""

from __future__ import annotations

import math

import pytest

from scaleguard.errors import ConfigError, InputError
from scaleguard.limits import (
    Evidence,
    GateState,
    OpenAlert,
    Readiness,
    Severity,
    assess,
    study_from_dict,
)

ALL_CLEAR = Evidence(gates=(GateState("harmful-output rate", "pass"),),
                     rollout={"plan": "rollout.yaml"}, monitored=True)


def run(ladder, law, study, evidence=ALL_CLEAR):
    return assess(study_from_dict(study), ladder, law, evidence)


def not_ok(assessment):
    return [f.check for f in assessment.verdict.findings if f.severity is not Severity.OK]


def test_the_passing_study_is_ready(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study())
    assert a.verdict.readiness is Readiness.READY
    assert not_ok(a) == []
    checks = {f.check for f in a.verdict.findings}
    assert checks == {"diminishing_returns", "extrapolation", "data_wall", "memory_wall",
                      "time_wall", "budget_wall", "energy_wall", "carbon_wall", "safety_gates",
                      "open_alerts"}
    # Ready still names the tightest limit: the one with the highest need / limit.
    pressures = {f.check: f.pressure for f in a.verdict.findings}
    assert a.verdict.binding.check == max(pressures, key=pressures.get)
    assert a.verdict.change is None
    assert a.verdict.headline().startswith("ready: every limit holds")


# (study changes, evidence, binding check, readiness): each hits exactly one wall.
WALLS = {
    "diminishing_returns": (dict(returns={"irreducible_fraction": 0.5}), ALL_CLEAR,
                            Readiness.CONDITIONAL),
    "extrapolation": (dict(target={"compute": "3e24"},
                           hardware={"devices": 4096},
                           limits={"money": "1e9", "energy": "1e6MWh", "carbon": "1e6tCO2e"},
                           returns={"irreducible_fraction": 0.01}),
                      ALL_CLEAR, Readiness.NOT_READY),
    "data_wall": (dict(data={"unique_tokens": "10B"}), ALL_CLEAR, Readiness.NOT_READY),
    "memory_wall": (dict(hardware={"device": "v100-sxm", "devices": 1, "dtype": "fp16"},
                         limits={"wall_clock": "100y", "money": "1e9"}),
                    ALL_CLEAR, Readiness.NOT_READY),
    "time_wall": (dict(limits={"wall_clock": "2d"}), ALL_CLEAR, Readiness.NOT_READY),
    "budget_wall": (dict(limits={"money": "1k"}), ALL_CLEAR, Readiness.NOT_READY),
    "energy_wall": (dict(limits={"energy": "0.3MWh"}), ALL_CLEAR, Readiness.NOT_READY),
    "carbon_wall": (dict(limits={"carbon": "100kgCO2e"}), ALL_CLEAR, Readiness.NOT_READY),
    "safety_gates": (dict(), Evidence(gates=(GateState("harmful-output rate", "pass"),
                                             GateState("jailbreak rate", "fail", "p=0.003")),
                                      rollout={"plan": "rollout.yaml"}, monitored=True),
                     Readiness.NOT_READY),
    "open_alerts": (dict(), Evidence(gates=ALL_CLEAR.gates, rollout={"plan": "rollout.yaml"},
                                     alerts=(OpenAlert("pilot-1b", "loss", "critical", 1200,
                                                       "loss spike 7σ"),),
                                     monitored=True),
                    Readiness.NOT_READY),
}


@pytest.mark.parametrize("wall", sorted(WALLS))
def test_each_wall_binds_alone(make_study, ladder, known_law, wall):
    changes, evidence, readiness = WALLS[wall]
    a = run(ladder, known_law, make_study(**changes), evidence)
    assert not_ok(a) == [wall]
    assert a.verdict.binding.check == wall
    assert a.verdict.readiness is readiness
    assert a.verdict.binding.title in a.verdict.headline()
    assert a.verdict.change is not None  # every wall names a way out
    assert a.verdict.change.describe() in a.verdict.headline()


def test_data_wall_names_the_cheapest_change(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(data={"unique_tokens": "10B"}))
    finding = a.verdict.binding
    tokens = finding.numbers["tokens_needed"]
    assert finding.numbers["epochs"] == pytest.approx(tokens / 10e9)
    # 6.0 epochs over a 4-epoch allowance: 1.5x more unique data lifts it; less compute or
    # more parameters also would, at a larger change.
    assert a.verdict.change.quantity == "unique tokens"
    assert a.verdict.change.factor == pytest.approx(tokens / 4e10)
    assert {c.quantity for c in a.verdict.alternatives} == {"training compute", "parameters"}
    assert all(c.size >= a.verdict.change.size - 1e-9 for c in a.verdict.alternatives)
    assert finding.numbers["loss_penalty"] > 0  # repetition costs loss (Muennighoff et al.)


def test_budget_wall_change_lifts_the_wall(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(limits={"money": "1k"}))
    need = a.verdict.binding.numbers["need"]
    change = a.verdict.change
    # The cheapest of "more money" and "less compute" is the same factor either way round.
    assert change.factor == pytest.approx(need / 1e3) or change.factor == pytest.approx(1e3 / need)
    rerun = run(ladder, known_law, make_study(limits={"money": need * 1.0001}))
    assert rerun.verdict.readiness is Readiness.CONDITIONAL  # no margin left, but not blocked


def test_time_wall_offers_more_devices(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(limits={"wall_clock": "2d"}))
    quantities = {c.quantity for c in (a.verdict.change, *a.verdict.alternatives)}
    assert {"devices", "wall-clock time", "training compute"} <= quantities


def test_memory_wall_names_a_smaller_model_or_more_devices(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(hardware={"device": "v100-sxm", "devices": 1,
                                                    "dtype": "fp16"},
                                          limits={"wall_clock": "100y", "money": "1e9"}))
    finding = a.verdict.binding
    assert finding.numbers["bytes_per_device"] > finding.numbers["device_bytes"]
    assert 0 < finding.numbers["max_params_that_fit"] < finding.numbers["params"]
    assert finding.numbers["min_devices_that_fit"] >= 2
    assert {c.quantity for c in finding.changes} == {"parameters", "devices"}


def test_undecided_gates_and_warning_alerts_are_conditions(make_study, ladder, known_law):
    evidence = Evidence(gates=(GateState("toxicity", "continue"),), rollout={"plan": "p"},
                        alerts=(OpenAlert("pilot", "grad_norm", "warning"),), monitored=True)
    a = run(ladder, known_law, make_study(), evidence)
    assert a.verdict.readiness is Readiness.CONDITIONAL
    assert sorted(not_ok(a)) == ["open_alerts", "safety_gates"]


def test_without_rollout_or_monitoring_those_are_noted_not_passed(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(), Evidence())
    checks = {f.check for f in a.verdict.findings}
    assert "safety_gates" not in checks and "open_alerts" not in checks
    assert any("rollout plan" in note for note in a.notes)
    assert any("monitoring" in note for note in a.notes)


def test_loss_target_is_located_on_the_frontier(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(target={"compute": None, "loss": 2.2}))
    assert a.target.kind == "loss"
    assert a.target.loss == pytest.approx(2.2, abs=1e-6)
    n, d, loss = known_law.allocation(a.target.compute)
    assert a.target.params == pytest.approx(float(n))


def test_model_target_uses_six_n_d(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(target={"compute": None, "params": "3B",
                                                  "tokens": "60B"}))
    assert a.target.compute == pytest.approx(6 * 3e9 * 60e9)
    assert a.target.kind == "model"


def test_unreachable_loss_is_refused(make_study, ladder, known_law):
    with pytest.raises(InputError, match=r"target.loss: 1.8 is at or below .* E = 1.817"):
        run(ladder, known_law, make_study(target={"compute": None, "loss": 1.8}))


def test_money_limit_without_a_price_is_refused(make_study, ladder, known_law):
    study = make_study()
    del study["hardware"]["price_per_device_hour"]
    with pytest.raises(ConfigError, match="limits.money.*price_per_device_hour"):
        run(ladder, known_law, study)


def test_prediction_interval_comes_from_the_resamples(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study())
    t = a.target
    assert t.low < t.loss < t.high
    assert t.high - t.low < 0.5  # the study's tolerance: no extrapolation warning
    assert math.isfinite(a.frontier.low[0]) and len(a.frontier.compute) == len(a.frontier.low)


def test_hardware_model_preset_shape_and_intensity_text(make_study, ladder, known_law):
    a = run(ladder, known_law, make_study(hardware={"model": "llama-3-8b",
                                                    "grid_intensity": "0.429kg/kWh"}))
    memory = next(f for f in a.verdict.findings if f.check == "memory_wall")
    assert memory.numbers["params"] == pytest.approx(8.03e9, rel=1e-3)
    assert any("memory checked for hardware.model" in note for note in a.notes)
    carbon = next(r for r in a.resources if r.name == "carbon")
    energy = next(r for r in a.resources if r.name == "energy")
    assert carbon.value == pytest.approx(energy.value / 3.6e6 * 429)  # g = kWh x g/kWh
    shape = {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn": 14336,
             "vocab": 128256}
    b = run(ladder, known_law, make_study(hardware={"model": shape}))
    memory = next(f for f in b.verdict.findings if f.check == "memory_wall")
    assert memory.numbers["params"] == pytest.approx(8.03e9, rel=1e-3)
    with pytest.raises(ConfigError, match="hardware.model"):
        run(ladder, known_law, make_study(hardware={"model": {"layers": 2, "width": 3}}))


def test_gpt3_energy_and_carbon_reproduce_patterson(make_study, ladder, known_law):
    """GPT-3 175B on 300B tokens, 10,000 V100 at 330 W for 14.8 days, PUE 1.1, 429 gCO2e/kWh:
    1,287 MWh and 552 tCO2e (Patterson et al. 2021, Table 4); within 1%."""
    days = 14.8
    mfu = 6 * 175e9 * 300e9 / (10_000 * 125e12 * days * 86400)  # V100 fp16 peak 125 TFLOP/s
    study = make_study(target={"compute": None, "params": "175B", "tokens": "300B"},
                       hardware={"device": "v100-sxm", "devices": 10_000, "dtype": "fp16",
                                 "mfu": mfu, "power_w": 330, "pue": 1.1,
                                 "grid_intensity": 429},
                       limits={"energy": "1000MWh", "carbon": "500tCO2e", "wall_clock": "20d",
                               "money": "1e9"})
    a = run(ladder, known_law, study)
    energy = next(f for f in a.verdict.findings if f.check == "energy_wall")
    carbon = next(f for f in a.verdict.findings if f.check == "carbon_wall")
    assert energy.numbers["need"] / 3.6e9 == pytest.approx(1287, rel=0.01)  # MWh
    assert carbon.numbers["need"] / 1e6 == pytest.approx(552, rel=0.01)  # tCO2e
    assert energy.severity is Severity.BLOCK and carbon.severity is Severity.BLOCK
    assert a.verdict.binding.check == "energy_wall"  # 1.29x over beats 1.10x over
