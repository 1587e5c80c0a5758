import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import InputError
from scaleguard.monitor import (
    BURN_RATE_RULES,
    BurnRateDetector,
    CusumDetector,
    DivergenceDetector,
    LossRatioDetector,
    NonFiniteDetector,
    PageHinkleyDetector,
    PlateauDetector,
    SpikeDetector,
    ThroughputDropDetector,
    detection_time,
    detector_classes,
    detector_from_state,
    make_detector,
)
from scaleguard.monitor._check import check_frame, parse_detector_spec
from scaleguard.monitor._synthetic import Fault, synthetic_training_log

SEEDS = range(5)


def _series(kind, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "loss":
        return 2 + 8 * (t + 10) ** -0.3 * (1 + 0.005 * rng.standard_normal(n))
    if kind == "tps":
        return 1e5 * (1 + 0.02 * rng.standard_normal(n))
    return rng.normal(1.0, 0.1, n)


def _factories():
    return [NonFiniteDetector, SpikeDetector, LossRatioDetector, DivergenceDetector,
            PlateauDetector, ThroughputDropDetector, lambda: PageHinkleyDetector(threshold=1.0),
            CusumDetector]


def _faulty(seed):
    x = _series("loss", 3000, seed)
    x[700] = np.nan
    x[1200] *= 3
    x[2000:] += 0.002 * np.arange(1000)
    x[2500] = np.inf
    return x


@pytest.mark.parametrize("make", _factories())
@pytest.mark.parametrize("seed", [0, 1])
def test_scan_equals_update_one_by_one(make, seed):
    values = _faulty(seed)
    steps = np.arange(len(values)) * 2
    single = make()
    by_update = [e for v, s in zip(values.tolist(), steps.tolist(), strict=True)
                 if (e := single.update(v, s)) is not None]
    by_scan = make().scan(values, steps)
    assert [(e.step, e.kind) for e in by_scan] == [(e.step, e.kind) for e in by_update]
    # ... and in pieces, with a state_dict round trip through JSON in the middle.
    first = make()
    events = first.scan(values[:1500], steps[:1500])
    second = detector_from_state(json.loads(json.dumps(first.state_dict())))
    events += second.scan(values[1500:], steps[1500:])
    assert [(e.step, e.kind) for e in events] == [(e.step, e.kind) for e in by_scan]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=300),
       st.integers(1, 299))
@settings(max_examples=40, deadline=None)
def test_scan_in_pieces_matches_scan_at_once(values, cut):
    for make in (SpikeDetector, LossRatioDetector, ThroughputDropDetector, NonFiniteDetector,
                 lambda: SpikeDetector(window=8, min_points=4)):
        whole = [(e.step, e.kind) for e in make().scan(values)]
        d = make()
        steps = np.arange(len(values))
        parts = d.scan(values[:cut], steps[:cut]) + d.scan(values[cut:], steps[cut:])
        assert [(e.step, e.kind) for e in parts] == whole


@pytest.mark.parametrize("seed", SEEDS)
def test_clean_curves_raise_nothing(seed):
    result = check_frame(synthetic_training_log(20_000, seed), source="clean")
    assert result.events == () and result.healthy


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fault", "metric", "within"), [
    (Fault("spike", 3000, 0.15), "loss", 0),          # ~11σ one-step spike: at its step
    (Fault("nan", 2500), "loss", 0),                  # at its step
    (Fault("divergence", 3500, 1e-3), "loss", 60),    # +0.04%/step: within ~40 steps
    (Fault("throughput_drop", 4000, 0.3), "tokens_per_s", 4),  # after 5 low points
])
def test_planted_faults_are_found_within_a_few_steps(seed, fault, metric, within):
    result = check_frame(synthetic_training_log(5000, seed, (fault,)))
    hits = [e for e in result.events if e.metric == metric]
    assert hits, f"{fault} not found"
    assert 0 <= hits[0].step - fault.step <= within
    # Nothing before the fault: no false alarm on the clean part.
    assert all(e.step >= fault.step for e in result.events)


def test_spike_detector_needs_a_warm_window_and_rebases_on_a_new_level():
    d = SpikeDetector(window=20, min_points=10, rebase_after=5)
    assert d.scan([1.0, 1.0, 50.0]) == []  # too few values to judge
    d = SpikeDetector(window=20, min_points=10, rebase_after=5)
    x = np.r_[np.tile([1.0, 1.01], 10), np.full(30, 2.0), [9.0]]
    assert [e.step for e in d.scan(x)] == [20, 50]  # the new level, then a spike above it


def test_megatron_rule_uses_the_first_samples():
    d = LossRatioDetector()
    x = np.r_[np.full(100, 2.0), np.full(10, 15.0), [20.0, 21.0, 1.0, 25.0]]
    assert [e.step for e in d.scan(x)] == [110, 113]  # >= 10 x 2.0; one per run


def test_page_hinkley_and_cusum_find_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    assert CusumDetector(target=0.0, sigma=1.0).scan(np.tile([0.5, -0.5], 500)) == []
    shifted = np.r_[rng.normal(0, 1, 500), rng.normal(2, 1, 200)]
    (event, *_) = CusumDetector(mode="up").scan(shifted)
    assert 500 <= event.step <= 515  # a 2σ shift within ~10 samples (k=0.5, h=5)
    jump = np.r_[rng.normal(0, 1, 500), rng.normal(3, 1, 200)]
    ph = PageHinkleyDetector(mode="up").scan(jump)  # river's defaults: threshold 50
    assert ph and 500 <= ph[0].step <= 530
    down = PageHinkleyDetector(mode="down").scan(-jump)
    assert down and 500 <= down[0].step <= 530 and "down" in down[0].message


def test_cusum_in_control_false_alarm_rate_matches_the_textbook():
    # Montgomery (Table 9.3): the two-sided tabular CUSUM with k=0.5, h=5 has an in-control
    # average run length of 465 (one-sided about twice that). Count alarms on N(0,1).
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1_000_000)
    alarms = len(CusumDetector(target=0.0, sigma=1.0).scan(x))
    assert len(x) / alarms == pytest.approx(465, rel=0.1)
    one_sided = len(CusumDetector(target=0.0, sigma=1.0, mode="up").scan(x))
    assert len(x) / one_sided == pytest.approx(2 * 465, rel=0.1)


def test_burn_rate_reproduces_the_workbook_detection_times():
    # SRE workbook: with a 99.9% SLO, 100% errors trip the 14.4x/1h rule after
    # 1h x 14.4 x 0.001 = 51.84 s; 10% errors after 518.4 s.
    assert detection_time(1.0, BURN_RATE_RULES[0]) == pytest.approx(51.84)
    assert detection_time(0.1, BURN_RATE_RULES[0]) == pytest.approx(518.4)
    assert [r.budget_spent() for r in BURN_RATE_RULES] == pytest.approx([0.02, 0.05, 0.10])
    t = np.arange(0.0, 3 * 86400 + 7200)  # 3 clean days, then 10% errors, 1 sample a second
    errors = np.zeros_like(t)
    start = 3 * 86400
    errors[start:] = (np.arange(len(t) - start) % 10 == 0)
    events = BurnRateDetector().scan(errors, t)
    page = events[0]
    assert page.severity == "critical" and "14.4x over 1h and 5m" in page.message
    assert page.step - start == pytest.approx(518.4, abs=10)


def test_burn_rate_stays_quiet_within_budget_and_refuses_bad_input():
    t = np.arange(0.0, 86400.0, 10)
    errors = (np.arange(len(t)) % 2000 == 1999).astype(float)  # 0.05% errors < 0.1% budget
    assert BurnRateDetector().scan(errors, t) == []
    with pytest.raises(InputError, match="slo: expected an objective"):
        BurnRateDetector(slo=99.9)
    with pytest.raises(InputError, match="time order"):
        BurnRateDetector().scan([0.0, 0.0], [5.0, 1.0])


def test_plateau_is_informational_and_off_by_default():
    (event,) = PlateauDetector().scan(np.r_[np.linspace(5, 3, 1000), np.full(1500, 3.0)])
    assert event.severity == "info"
    assert "plateau" not in check_frame(synthetic_training_log(3000)).detectors["loss"]


def test_detector_settings_are_checked():
    with pytest.raises(InputError, match="window: expected a positive integer"):
        SpikeDetector(window=0)
    with pytest.raises(InputError, match="sigma: expected a positive number"):
        SpikeDetector(sigma=-1)
    with pytest.raises(InputError, match="mode: expected one of up, down, both"):
        CusumDetector(mode="sideways")
    with pytest.raises(InputError, match="steps: expected 3 steps for 3 values"):
        SpikeDetector().scan([1.0, 2.0, 3.0], [1, 2])
    with pytest.raises(InputError, match="cannot be loaded into 'spike'"):
        SpikeDetector().load_state_dict(CusumDetector().state_dict())
    with pytest.raises(InputError, match="detector 'zap': unknown"):
        make_detector("zap")
    with pytest.raises(InputError, match="bad settings"):
        make_detector("spike", bogus=1)


def test_every_detector_has_a_name_and_a_readable_repr():
    classes = detector_classes()
    assert {"nonfinite", "spike", "loss_ratio", "divergence", "plateau", "throughput_drop",
            "page_hinkley", "cusum", "burn_rate"} <= set(classes)
    assert repr(SpikeDetector()) == "SpikeDetector(window=128, sigma=6.0, min_points=32, " \
                                    "rebase_after=16)"
    event = NonFiniteDetector().update(math.nan, 7)
    assert event is not None and json.dumps(event.as_dict())
    assert "restart from the checkpoint before step 0" in event.action


def test_detector_spec_parsing():
    metric, factory = parse_detector_spec("plateau:loss,window=50")
    assert metric == "loss" and factory(metric)[0].window == 50
    for bad in ("plateau", "plateau:", ":loss", "plateau:loss,window"):
        with pytest.raises(InputError, match="--add"):
            parse_detector_spec(bad)
    frame = synthetic_training_log(200)
    with pytest.raises(InputError, match="metric 'lat' not in"):
        check_frame(frame, extra={"lat": [factory]})
    with pytest.raises(InputError, match="--metric 'lat': not in"):
        check_frame(frame, metrics=["lat"])
