"""Compute-optimal allocation, iso-FLOP analysis, frontier and best epochs."""

from __future__ import annotations

import numpy as np
import pytest

from scaleguard.errors import FitError, InputError
from scaleguard.examples import SYNTHETIC_LAW, synthetic_ladder
from scaleguard.laws import (
    LawFit,
    best_epochs,
    efficient_frontier,
    isoflop_curve,
    isoflop_minima,
    optimal_allocation,
)

MUENNIGHOFF = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35,
               "R_D": 15.4, "R_N": 5.3}  # Muennighoff et al. 2023, fitted constants


def test_closed_form_allocation_is_the_minimum_of_the_iso_flop_curve():
    budget = 1e23
    allocation = optimal_allocation(SYNTHETIC_LAW, budget)
    sizes = allocation.params * np.geomspace(0.5, 2.0, 2001)
    curve = isoflop_curve(SYNTHETIC_LAW, budget, sizes)
    assert sizes[np.argmin(curve)] == pytest.approx(allocation.params, rel=2e-3)
    assert curve.min() == pytest.approx(allocation.loss, rel=1e-9)
    assert 6 * allocation.params * allocation.tokens == pytest.approx(budget)


def test_allocation_scales_with_the_published_exponents():
    a, b = SYNTHETIC_LAW["alpha"], SYNTHETIC_LAW["beta"]
    small, big = optimal_allocation(SYNTHETIC_LAW, 1e21), optimal_allocation(SYNTHETIC_LAW, 1e23)
    # N* ∝ C^(beta/(alpha+beta)), D* ∝ C^(alpha/(alpha+beta)) (Hoffmann et al. 2022, eq. 4).
    assert np.log10(big.params / small.params) / 2 == pytest.approx(b / (a + b))
    assert np.log10(big.tokens / small.tokens) / 2 == pytest.approx(a / (a + b))
    payload = big.as_dict()
    assert payload["tokens_per_param"] == pytest.approx(big.tokens / big.params)


def test_replication_fit_allocates_about_20_tokens_per_parameter(chinchilla_fit):
    # Besiroglu et al. 2024: their fit agrees with Chinchilla's ~20 tokens per parameter.
    allocation = optimal_allocation(chinchilla_fit, 5.76e23)
    assert 15 < allocation.tokens_per_param < 30


def test_isoflop_minima_recover_the_allocation_exponent():
    iso = isoflop_minima(synthetic_ladder(seed=0, noise=0.0, sizes_per_budget=12))
    a, b = SYNTHETIC_LAW["alpha"], SYNTHETIC_LAW["beta"]
    assert iso.params_exponent == pytest.approx(b / (a + b), abs=0.02)
    assert iso.tokens_exponent == pytest.approx(a / (a + b), abs=0.02)
    assert all(m.interior for m in iso.minima) and len(iso.minima) == 5
    n_star, _ = iso.allocation(1e20)
    assert n_star == pytest.approx(optimal_allocation(SYNTHETIC_LAW, 1e20).params, rel=0.1)


def test_frontier_loss_falls_with_budget():
    frontier = efficient_frontier(SYNTHETIC_LAW, np.geomspace(1e18, 1e26, 9))
    assert np.all(np.diff(frontier.loss) < 0)
    assert np.all(frontier.loss > SYNTHETIC_LAW["E"])
    assert len(frontier.as_dict()["points"]) == 9


def test_best_epochs_repeats_scarce_data_but_not_plentiful_data():
    scarce = best_epochs(MUENNIGHOFF, 1e22, 2e10)
    plenty = best_epochs(MUENNIGHOFF, 1e22, 1e14)
    assert scarce.epochs > 1.5 and scarce.loss < scarce.loss_one_epoch
    assert plenty.epochs <= 1.0
    allocation = optimal_allocation(MUENNIGHOFF, 1e22, unique_tokens=2e10)
    assert allocation.params == pytest.approx(scarce.params, rel=1e-6)
    assert allocation.epochs == pytest.approx(scarce.epochs, rel=1e-6)


def test_bad_allocations_are_refused():
    with pytest.raises(InputError, match="^budget: expected a positive number"):
        optimal_allocation(SYNTHETIC_LAW, -1.0)
    with pytest.raises(InputError, match="needs --unique-tokens"):
        optimal_allocation(MUENNIGHOFF, 1e22)
    with pytest.raises(FitError, match="best epochs needs a data_constrained fit"):
        best_epochs(SYNTHETIC_LAW, 1e22, 1e10)
    power = LawFit(form="power", x="flops").fit(synthetic_ladder(seed=0))
    with pytest.raises(FitError, match="not power"):
        optimal_allocation(power, 1e22)
    with pytest.raises(FitError, match="need at least 2 budgets"):
        isoflop_minima(synthetic_ladder(seed=0, budgets=(1e18,)))
