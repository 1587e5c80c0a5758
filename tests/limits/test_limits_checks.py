"""Each limit check on its own: thresholds, the changes it proposes, and the inputs it refuses."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaleguard.errors import InputError
from scaleguard.limits import (
    EPOCHS_NEGLIGIBLE,
    EXTRAPOLATION_BLOCK_DECADES,
    HEADROOM,
    Change,
    GateState,
    Readiness,
    Severity,
    data_wall,
    decide,
    diminishing_returns,
    extrapolation_risk,
    memory_wall,
    open_alerts,
    resource_wall,
    safety_gates,
)

positive = st.floats(min_value=1e-6, max_value=1e30, allow_nan=False, allow_infinity=False)


@given(need=st.floats(min_value=0, max_value=1e30), limit=positive,
       check=st.sampled_from(["time_wall", "budget_wall", "energy_wall", "carbon_wall"]))
def test_resource_wall_blocks_exactly_when_the_need_exceeds_the_limit(need, limit, check):
    f = resource_wall(check, need=need, limit=limit, source="test")
    assert f.pressure == pytest.approx(need / limit)
    assert (f.severity is Severity.BLOCK) == (need > limit)
    assert (f.severity is Severity.WARN) == (HEADROOM * limit < need <= limit)
    if f.severity is Severity.BLOCK:
        assert f.cheapest_change.factor == pytest.approx(need / limit)


@given(tokens=positive, unique=positive)
def test_data_wall_severity_follows_the_epochs(tokens, unique):
    f = data_wall(tokens_needed=tokens, unique_tokens=unique)
    epochs = tokens / unique
    expected = (Severity.OK if epochs <= 1 else
                Severity.WARN if epochs <= EPOCHS_NEGLIGIBLE else Severity.BLOCK)
    assert f.severity is expected
    assert f.numbers["epochs"] == pytest.approx(epochs)


@pytest.mark.parametrize(("decades", "tolerance", "severity"), [
    (1.0, None, Severity.OK), (2.5, None, Severity.WARN), (4.5, None, Severity.BLOCK),
    (1.0, 0.01, Severity.WARN),  # close to the ladder, but the interval is wider than needed
])
def test_extrapolation_thresholds(decades, tolerance, severity):
    f = extrapolation_risk(target_compute=1e20 * 10**decades, ladder_max_compute=1e20,
                           interval=(2.0, 2.05), tolerance=tolerance)
    assert f.severity is severity
    assert f.numbers["interval_width"] == pytest.approx(0.05)
    if decades > EXTRAPOLATION_BLOCK_DECADES:
        assert f.pressure > 1


def test_diminishing_returns_warns_below_the_fraction():
    common = dict(target_compute=1e24, irreducible=2.0, gain_per_doubling=0.01,
                  ladder_gain_per_doubling=0.04, cost_per_doubling=1e6,
                  energy_per_doubling=3.6e12, compute_at_fraction=1e23, fraction=0.05)
    warn = diminishing_returns(loss_at_target=2.05, **common)  # reducible 0.05 < 0.1
    assert warn.severity is Severity.WARN and warn.pressure == pytest.approx(2.0)
    assert warn.cheapest_change.factor == pytest.approx(0.1)
    assert warn.numbers["gain_per_usd"] == pytest.approx(1e-8)
    assert warn.numbers["gain_per_mwh"] == pytest.approx(1e-5)  # 3.6e12 J = 1,000 MWh
    ok = diminishing_returns(loss_at_target=2.5, **common)
    assert ok.severity is Severity.OK and ok.changes == ()
    with pytest.raises(InputError, match="returns.irreducible_fraction"):
        diminishing_returns(loss_at_target=2.5, **{**common, "fraction": 1.5})


def test_memory_wall_fits_or_blocks():
    base = dict(device_bytes=72e9, params=7e9, devices=8)
    assert memory_wall(fits=True, bytes_per_device=30e9, **base).severity is Severity.OK
    # Usable memory already keeps resources' 10% back: a full fit is still a fit.
    assert memory_wall(fits=True, bytes_per_device=71e9, **base).severity is Severity.OK
    blocked = memory_wall(fits=False, bytes_per_device=60e9, max_params_that_fit=5e9, **base)
    assert blocked.severity is Severity.BLOCK and blocked.pressure > 1  # crossed regardless


def test_gates_and_alerts():
    assert safety_gates([GateState("a", "pass")]).severity is Severity.OK
    assert safety_gates([GateState("a", "continue")]).severity is Severity.WARN
    assert safety_gates([GateState("a", "fail")]).severity is Severity.BLOCK
    assert open_alerts([]).severity is Severity.OK


@pytest.mark.parametrize(("factor", "text"), [
    (1.6, "1.6× more unique tokens"), (1.61, "1.7× more unique tokens"),  # never short
    (12.2, "13× more unique tokens"), (0.75, "25% fewer unique tokens"),
])
def test_change_descriptions_round_towards_enough(factor, text):
    assert Change("unique tokens", factor).describe() == text


def test_change_with_a_mass_noun_and_an_action():
    assert Change("training compute", 0.5).describe() == "50% less training compute"
    assert Change("gate x", None, "pass gate x").describe() == "pass gate x"
    assert Change("gate x", None).size == math.inf


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_checks_refuse_nonsense(bad):
    with pytest.raises(InputError, match="data.unique_tokens"):
        data_wall(tokens_needed=1e12, unique_tokens=bad)
    with pytest.raises(InputError, match="limits.energy"):
        resource_wall("energy_wall", need=1.0, limit=bad, source="test")
    with pytest.raises(InputError, match="target_compute"):
        extrapolation_risk(target_compute=bad, ladder_max_compute=1e20, interval=(1, 2))


def test_unknown_wall_and_no_findings_are_refused():
    with pytest.raises(InputError, match="check: expected one of"):
        resource_wall("power_wall", need=1.0, limit=2.0, source="test")
    with pytest.raises(InputError, match="no findings"):
        decide([])


def test_verdict_prefers_severity_then_pressure():
    mild = resource_wall("budget_wall", need=3.0, limit=2.0, source="t")  # 1.5x over
    hard = resource_wall("energy_wall", need=5.0, limit=2.0, source="t")  # 2.5x over
    near = resource_wall("time_wall", need=1.99, limit=2.0, source="t")  # a condition
    v = decide([near, mild, hard])
    assert v.readiness is Readiness.NOT_READY and v.binding is hard
    assert [f.check for f in v.blocking] == ["budget_wall", "energy_wall"]
    assert [f.check for f in v.conditions] == ["time_wall"]
    assert v.as_dict()["binding_constraint"] == "energy_wall"
