"""Bootstrap: the replication's intervals, seeded reproducibility, executors, bad settings."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from scaleguard.errors import InputError
from scaleguard.laws import LawFit, get_law

# Besiroglu et al. 2024 (DESIGN.md): 95% bootstrap CIs of the replication's fit.
REPLICATION = {"E": 1.817, "alpha": 0.348, "beta": 0.366}
REPLICATION_CI = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
# Percentile endpoints from 200 resamples wander by about a hundredth around 1,000-resample ones.
ENDPOINT_TOLERANCE = {"E": 0.015, "alpha": 0.01, "beta": 0.015}
SATURATING = {"E": 2.0, "A": 8.0, "alpha": 0.4}


def test_bootstrap_reproduces_replication_intervals(chinchilla_fit):
    fit = copy.copy(chinchilla_fit)  # bootstrap() rebinds attributes: the shared fit stays
    boot = fit.bootstrap(n_boot=200, seed=0)
    assert boot.failures == 0
    for name, (lo, hi) in REPLICATION_CI.items():
        ours = boot.ci[name]
        assert ours[0] <= REPLICATION[name] <= ours[1]
        assert ours[0] == pytest.approx(lo, abs=ENDPOINT_TOLERANCE[name]), name
        assert ours[1] == pytest.approx(hi, abs=ENDPOINT_TOLERANCE[name]), name
    assert fit.result_.bootstrap is boot
    assert set(fit.result_.as_dict()["bootstrap"]["ci"]) == {"E", "A", "B", "alpha", "beta"}


@pytest.fixture(scope="module")
def curve() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = np.geomspace(10, 1e4, 30)
    y = get_law("saturating").predict(SATURATING, x[None, :]) * np.exp(rng.normal(0, 0.01, 30))
    return pd.DataFrame({"x": x, "y": y})


def test_seeded_bootstrap_is_reproducible_and_executor_independent(curve):
    fit = LawFit(form="saturating", x="x", y="y").fit(curve)
    first = fit.bootstrap(n_boot=30, seed=7).samples
    again = fit.bootstrap(n_boot=30, seed=7).samples
    other = fit.bootstrap(n_boot=30, seed=8).samples
    on_processes = fit.bootstrap(n_boot=30, seed=7, executor="process", workers=2).samples
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, on_processes, rtol=1e-12)
    assert not np.allclose(first, other)


def test_prediction_interval_covers_the_true_law_when_extrapolating(curve):
    fit = LawFit(form="saturating", x="x", y="y").fit(curve)
    fit.bootstrap(n_boot=100, seed=0)
    far = np.array([1e5, 1e6])
    interval = fit.predict_interval({"x": far}, level=0.95)
    truth = get_law("saturating").predict(SATURATING, far[None, :])
    assert np.all(interval.lower <= truth) and np.all(truth <= interval.upper)
    assert np.all(interval.lower <= interval.estimate) and np.all(
        interval.estimate <= interval.upper)
    # A wider level gives a wider band.
    wide = fit.predict_interval({"x": far}, level=0.99)
    assert np.all(wide.upper - wide.lower >= interval.upper - interval.lower)
    rows = interval.as_dict()["points"]
    assert rows[0]["x"] == 1e5 and rows[0]["level"] == 0.95


def test_progress_reports_every_resample(curve):
    seen = []
    fit = LawFit(form="power", x="x", y="y").fit(curve)
    fit.bootstrap(n_boot=60, seed=0, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (60, 60)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_boot": 1}, "--bootstrap: expected a whole number of resamples >= 2, got 1"),
    ({"n_boot": 10, "level": 1.5}, "level: expected a number between 0 and 1"),
    ({"n_boot": 10, "executor": "cluster"}, "--executor: unknown backend 'cluster'"),
])
def test_bad_bootstrap_settings_are_refused(curve, kwargs, message):
    fit = LawFit(form="power", x="x", y="y").fit(curve)
    with pytest.raises(InputError, match=message):
        fit.bootstrap(**kwargs)
