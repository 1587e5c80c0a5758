"""Dimension analysis: elasticities per scale column and the best buy per unit cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleguard.errors import FitError, InputError
from scaleguard.laws import LawFit, dimension_analysis, get_law

TRUTH = {"A": 0.05, "alpha_users": -0.6, "alpha_regions": 0.3}  # latency grows with users


@pytest.fixture(scope="module")
def latency_fit() -> LawFit:
    rng = np.random.default_rng(0)
    users = np.geomspace(1e3, 1e6, 8).repeat(4)
    regions = np.tile([1.0, 2.0, 4.0, 8.0], 8)
    law = get_law("power", ["users", "regions"])
    latency = law.predict(TRUTH, np.vstack([users, regions])) * np.exp(rng.normal(0, 0.01, 32))
    table = pd.DataFrame({"users": users, "regions": regions, "latency": latency})
    return LawFit(form="power", x=["users", "regions"], y="latency").fit(table)


def test_elasticities_of_a_multiplicative_law_are_its_exponents(latency_fit):
    report = dimension_analysis(latency_fit, {"users": 1e5, "regions": 2})
    elasticity = {e.column: e.elasticity for e in report.effects}
    assert elasticity["users"] == pytest.approx(0.6, abs=0.02)
    assert elasticity["regions"] == pytest.approx(-0.3, abs=0.02)
    # Lower latency is better: only adding regions improves it.
    assert report.best == "regions"
    assert report.as_dict()["effects"][0]["column"] == "users"


def test_best_dimension_per_unit_cost_follows_the_costs():
    law = get_law("saturating", ["gpus", "data"])
    truth = {"E": 1.0, "A_gpus": 4.0, "A_data": 4.0, "alpha_gpus": 0.5, "alpha_data": 0.5}
    g, d = np.meshgrid(np.geomspace(1, 1e3, 6), np.geomspace(1, 1e3, 6))
    X = np.vstack([g.ravel(), d.ravel()])
    table = pd.DataFrame({"gpus": X[0], "data": X[1], "loss": law.predict(truth, X)})
    fit = LawFit(form="saturating", x=["gpus", "data"]).fit(table)
    point = {"gpus": 10.0, "data": 10.0}
    cheap_gpus = dimension_analysis(fit, point, costs={"gpus": 1.0, "data": 10.0})
    cheap_data = dimension_analysis(fit, point, costs={"gpus": 10.0, "data": 1.0})
    assert cheap_gpus.best == "gpus" and cheap_data.best == "data"
    effect = cheap_gpus.effects[0]
    assert effect.cost == pytest.approx(1.0 * 10.0 * (2.0 - 1.0))
    assert effect.improvement > 0


def test_bad_dimension_requests_are_refused(latency_fit):
    with pytest.raises(InputError, match="lacks regions"):
        dimension_analysis(latency_fit, {"users": 1e5})
    with pytest.raises(InputError, match="unknown column"):
        dimension_analysis(latency_fit, {"users": 1e5, "regions": 2}, costs={"gpus": 1.0})
    with pytest.raises(InputError, match="expected a positive number"):
        dimension_analysis(latency_fit, {"users": -1.0, "regions": 2})
    with pytest.raises(FitError, match="fitted LawFit"):
        dimension_analysis(LawFit(), {"params": 1e9, "tokens": 1e10})
