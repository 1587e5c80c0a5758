import json

import numpy as np
import pytest

from scaleguard.errors import InputError
from scaleguard.monitor import ForecastDeviationDetector, detector_from_state
from scaleguard.monitor._check import check_frame, parse_detector_spec
from scaleguard.monitor._synthetic import Fault, synthetic_training_log


def _loss(steps, seed, faults=()):
    frame = synthetic_training_log(steps, seed, faults)
    return frame[frame.name == "loss"].value.to_numpy()


def test_clean_curve_stays_inside_the_band_and_a_slow_rise_leaves_it():
    clean = _loss(10_000, 0)
    assert ForecastDeviationDetector().scan(clean) == []
    # +2e-4 per step: too slow for the divergence detector's 100-step window...
    drifting = _loss(6000, 0, (Fault("divergence", 3000, 2e-4),))
    late = [e.step for e in check_frame(synthetic_training_log(
        6000, 0, (Fault("divergence", 3000, 2e-4),))).events if e.metric == "loss"]
    assert all(step > 4000 for step in late)
    # ... but it leaves the band of the law fitted on the early steps.
    (event,) = ForecastDeviationDetector().scan(drifting)
    assert event.kind == "forecast_deviation" and 3000 < event.step < 3500
    assert "above the 95% band" in event.message


def test_state_survives_a_restart_after_the_fit():
    loss = _loss(6000, 1, (Fault("divergence", 3000, 2e-4),))
    whole = [e.step for e in ForecastDeviationDetector().scan(loss)]
    first = ForecastDeviationDetector()
    part = first.scan(loss[:2000])
    state = json.loads(json.dumps(first.state_dict()))
    assert state["state"]["_law"] is not None and len(state["state"]["_boot"]) == 20
    second = detector_from_state(state)
    steps = np.arange(2000, 6000)
    assert [e.step for e in part + second.scan(loss[2000:], steps)] == whole
    one_by_one = detector_from_state(state)
    found = [e.step for v, s in zip(loss[2000:3600].tolist(), steps[:1600].tolist(),
                                    strict=True)
             if (e := one_by_one.update(v, s)) is not None]
    assert found == [s for s in whole if s < 3600] and found


def test_unfittable_values_give_one_info_event():
    (event,) = ForecastDeviationDetector(fit_start=0, fit_points=20, n_boot=0).scan(
        np.r_[-np.ones(20), np.ones(100)])
    assert event.kind == "forecast_unavailable" and event.severity == "info"


def test_settings_are_checked_and_it_is_available_from_the_cli_spec():
    with pytest.raises(InputError, match="fit_start"):
        ForecastDeviationDetector(fit_start=995)
    with pytest.raises(InputError, match="n_boot"):
        ForecastDeviationDetector(n_boot=1)
    metric, factory = parse_detector_spec("forecast:loss,n_boot=0")
    assert factory(metric)[0].n_boot == 0
