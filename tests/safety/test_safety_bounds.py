import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import FitError, InputError
from scaleguard.safety import (
    bayesian_upper,
    clopper_pearson_upper,
    rate_bound,
    tail_forecast,
    trials_to_certify,
)


@pytest.mark.parametrize(("failures", "trials", "published"), [
    (0, 1_000, 2.99e-3),   # 1 - 0.05^(1/1000): the "rule of three" regime
    (1, 1_000, 4.73e-3),
    (3, 10_000, 7.75e-4),
])
def test_clopper_pearson_matches_published_values(failures, trials, published):
    assert clopper_pearson_upper(failures, trials) == pytest.approx(published, rel=2e-3)


def test_2995_failure_free_trials_certify_one_in_a_thousand():
    assert trials_to_certify(1e-3, 0.95) == 2995
    assert clopper_pearson_upper(0, 2995) <= 1e-3 < clopper_pearson_upper(0, 2994)


def test_trials_to_certify_with_allowed_failures_is_the_first_passing_n():
    n = trials_to_certify(1e-3, 0.95, failures=2)
    assert clopper_pearson_upper(2, n) <= 1e-3 < clopper_pearson_upper(2, n - 1)


def test_bayesian_bound_with_jeffreys_prior_and_next_stage_incidents():
    assert bayesian_upper(0, 1000) < clopper_pearson_upper(0, 1000)
    bound = rate_bound(0, 1000, next_exposures=1e5, target=1e-3)
    assert bound.expected_incidents == 0.0
    assert bound.incidents_upper == pytest.approx(299.1, rel=1e-3)
    assert bound.p_any_incident_upper == pytest.approx(1.0)
    assert bound.trials_to_certify == 2995
    assert bound.as_dict()["clopper_pearson_upper"] == bound.clopper_pearson_upper
    assert "Clopper-Pearson" in repr(bound)


@settings(max_examples=60, deadline=None)
@given(trials=st.integers(1, 10**6), share=st.floats(0, 1), confidence=st.floats(0.5, 0.999))
def test_upper_bound_is_above_the_observed_rate_and_covers(trials, share, confidence):
    failures = int(share * trials)
    upper = clopper_pearson_upper(failures, trials, confidence)
    assert failures / trials <= upper <= 1.0
    if failures < trials:  # at the bound, seeing <= k failures has probability 1 - confidence
        from scipy import stats
        assert stats.binom.cdf(failures, trials, upper) == pytest.approx(1 - confidence,
                                                                         abs=1e-6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"failures": -1, "trials": 10}, "--failures"),
    ({"failures": 11, "trials": 10}, "more than --trials"),
    ({"failures": 0, "trials": 0}, "--trials"),
    ({"failures": 0, "trials": 10, "confidence": 1.0}, "--confidence"),
])
def test_bad_counts_are_refused_by_name(kwargs, message):
    with pytest.raises(InputError, match=message):
        clopper_pearson_upper(**kwargs)


def test_bad_target_rate_is_refused():
    with pytest.raises(InputError, match="--target"):
        trials_to_certify(0.0)


def test_tail_forecast_is_unbiased_on_a_known_gumbel_tail():
    # Scores s = -log(-log p) drawn from Gumbel(-5, 0.3): the expected maximum of N scores is
    # -5 + 0.3 (log N + Euler's gamma). Averaged over seeds, the forecast lands on it.
    queries = 1e6
    truth = -5 + 0.3 * (math.log(queries) + np.euler_gamma)
    forecasts = []
    for seed in range(1000):  # one forecast has sd ~1.1 here; the mean of 1000 has ~0.035
        rng = np.random.default_rng(seed)
        p = np.exp(-np.exp(-rng.gumbel(-5.0, 0.3, size=2000)))
        forecasts.append(tail_forecast(p, queries).worst_score)
    assert np.mean(forecasts) == pytest.approx(truth, abs=0.12)


def test_tail_forecast_refuses_bad_scores():
    with pytest.raises(InputError, match="position 2"):
        tail_forecast(np.array([0.1, 1.5, 0.2]), 1e3)
    with pytest.raises(FitError, match="at least 10"):
        tail_forecast(np.array([0.0] * 20 + [0.1] * 3), 1e3)
    with pytest.raises(InputError, match="--queries"):
        tail_forecast(np.linspace(0.01, 0.5, 50), 10)
