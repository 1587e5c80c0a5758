import numpy as np
import pytest

from scaleguard.safety import (
    adjust_p_values,
    alpha_spent,
    beta_binomial_interval,
    beta_binomial_p_value,
    normal_mixture_p_value,
    spending_boundaries,
)

ALPHA = 0.05


def test_normal_mixture_p_value_keeps_alpha_under_continuous_monitoring():
    # 4000 A/A streams of 200 looks: reject whenever the running-minimum p-value falls below
    # alpha. A fixed-horizon z-test checked this often rejects far more.
    rng = np.random.default_rng(0)
    runs, looks = 4000, 200
    x = rng.standard_normal((runs, looks)).cumsum(axis=1)
    n = np.arange(1, looks + 1)
    p = normal_mixture_p_value(x / n, 1.0 / n, mixture_sd=0.2)
    ever = (np.minimum.accumulate(p, axis=1) <= ALPHA).any(axis=1).mean()
    se = np.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert ever <= ALPHA + 2 * se
    naive = (np.abs(x / np.sqrt(n)) > 1.96).any(axis=1).mean()
    assert naive > 3 * ALPHA


def test_beta_binomial_p_value_keeps_alpha_for_a_rare_rate():
    rng = np.random.default_rng(1)
    rate, runs, looks, batch = 1e-3, 4000, 100, 500
    events = rng.binomial(batch, rate, size=(runs, looks)).cumsum(axis=1)
    trials = batch * np.arange(1, looks + 1)
    p = beta_binomial_p_value(events, trials, rate)
    ever = (p <= ALPHA).any(axis=1).mean()
    assert ever <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / runs)


def test_beta_binomial_interval_contains_the_rate_and_shrinks():
    lo, hi = beta_binomial_interval(10, 1000, ALPHA)
    assert lo < 0.01 < hi
    lo2, hi2 = beta_binomial_interval(100, 10_000, ALPHA)
    assert hi2 - lo2 < hi - lo
    assert beta_binomial_interval(0, 0, ALPHA) == (0.0, 1.0)


def test_obrien_fleming_boundaries_match_published_lan_demets_values():
    # ldbounds / gsDesign, Lan-DeMets O'Brien-Fleming, 5 equally spaced looks, alpha 0.025
    # one-sided: 4.877, 3.357, 2.680, 2.290, 2.031.
    bounds = spending_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.025, "obrien_fleming")
    assert bounds == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    # Pocock type: 2.438, 2.427, 2.410, 2.397, 2.386 (two-sided 0.05 tables).
    pocock = spending_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.025, "pocock")
    assert pocock == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=3e-3)


def test_spending_boundaries_spend_exactly_alpha_by_monte_carlo():
    t = np.arange(1, 11) / 10
    bounds = spending_boundaries(t, ALPHA, "pocock")
    rng = np.random.default_rng(2)
    z = rng.standard_normal((100_000, 10)).cumsum(axis=1) / np.sqrt(np.arange(1, 11))
    assert (z > bounds).any(axis=1).mean() == pytest.approx(ALPHA, abs=0.003)
    assert float(alpha_spent(1.0, ALPHA, "obrien_fleming")) == pytest.approx(ALPHA)


def test_spending_boundaries_refuse_bad_fractions():
    from scaleguard.errors import InputError
    with pytest.raises(InputError, match="information fractions"):
        spending_boundaries([0.5, 0.4], ALPHA)
    with pytest.raises(InputError, match="spending"):
        spending_boundaries([0.5, 1.0], ALPHA, "linear")  # type: ignore[arg-type]


def test_holm_is_uniformly_more_powerful_than_bonferroni_and_vectorised():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.1, size=(500, 8))
    holm, bonf = adjust_p_values(p, "holm"), adjust_p_values(p, "bonferroni")
    assert np.all(holm <= bonf + 1e-15)
    assert np.all(holm >= p)
    one = adjust_p_values(p[7], "holm")
    assert np.allclose(one, holm[7])
