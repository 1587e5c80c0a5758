"""The Ray backend gives the same results as the local backends with the same seeds."""

import numpy as np

from scaleguard.compute import RayExecutor
from scaleguard.examples import synthetic_ladder
from scaleguard.laws import LawFit
from scaleguard.safety import Scenario, simulate
from scaleguard.safety._plan import parse_plan

_PLAN = {"name": "p", "metrics": [{"name": "harm", "margin": 0.002, "baseline": 0.01}],
         "stages": [{"name": "pilot", "traffic": 0.1, "min_duration": "5h",
                     "max_duration": "5h"},
                    {"name": "all", "traffic": 1.0, "min_duration": "5h", "max_duration": "5h"}],
         "simulation": {"exposures_per_look": 2000, "look_interval": "1h"}}


def test_bootstrap_on_ray_equals_serial(ray_local):
    ladder = synthetic_ladder(seed=3, sizes_per_budget=3)
    fit = LawFit(form="saturating", x="flops").fit(ladder)
    serial = fit.bootstrap(n_boot=24, seed=7, executor="serial")
    on_ray = fit.bootstrap(n_boot=24, seed=7, executor=RayExecutor())
    assert on_ray.samples.shape == serial.samples.shape == (24 - serial.failures, 3)
    np.testing.assert_array_equal(on_ray.samples, serial.samples)
    assert on_ray.ci == serial.ci
    # A different seed draws different resamples: the equality above is not vacuous.
    other = fit.bootstrap(n_boot=24, seed=8, executor="serial")
    assert not np.array_equal(other.samples, serial.samples)


def test_rollout_simulator_on_ray_equals_serial(ray_local):
    plan = parse_plan(_PLAN)
    scenario = Scenario("metric", "harm", factor=1.5)
    serial = simulate(plan, scenario, runs=1200, seed=4, executor="serial")
    on_ray = simulate(plan, scenario, runs=1200, seed=4, executor="ray")
    assert on_ray.as_dict() == serial.as_dict()
    other = simulate(plan, scenario, runs=1200, seed=5, executor="serial")
    assert other.as_dict() != serial.as_dict()
