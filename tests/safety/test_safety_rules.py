"""The controller's rules: Holm across gates in both error-control modes."""

import numpy as np

from scaleguard.safety import parse_plan
from scaleguard.safety._rules import _boundary, judge, plan_tests


def two_gate_plan(method, correction):
    return parse_plan({
        "name": "holm", "alpha": 0.05,
        "error_control": {"method": method, "correction": correction},
        "metrics": [{"name": "a", "margin": 0.01}, {"name": "b", "margin": 0.01}],
        "stages": [{"name": "all", "traffic": 1.0, "max_exposures": 1000}]})


def run(plan, p, z):
    tests = plan_tests(plan)
    ones = np.ones((1, len(tests)), dtype=bool)
    return judge(plan, np.array([0]), np.array([p]), np.array([z]), ~ones, ones,
                 np.full((1, len(tests)), 500.0), np.array([3600.0]),
                 np.ones((1, len(tests))), [()], np.array([1.0]))


def test_holm_rejects_what_bonferroni_cannot_with_always_valid_p_values():
    # p = (0.02, 0.04): Bonferroni needs <= 0.025 for both; Holm steps down to 0.05 for the
    # second once the first is rejected (Holm 1979).
    p = [0.02, 0.04]
    assert run(two_gate_plan("msprt", "holm"), p, [0, 0]).fail.tolist() == [[True, True]]
    assert run(two_gate_plan("msprt", "bonferroni"), p, [0, 0]).fail.tolist() == \
        [[True, False]]


def test_group_sequential_steps_down_like_holm_too():
    # At information fraction 0.5: one z above the alpha/2 boundary, one between the alpha/2
    # and the alpha boundaries (Maurer & Bretz 2013: Holm over group-sequential boundaries).
    tight = _boundary((0.5,), 0.025, "obrien_fleming")
    loose = _boundary((0.5,), 0.05, "obrien_fleming")
    assert loose < tight
    z = [tight + 0.1, (tight + loose) / 2]
    holm = run(two_gate_plan("group_sequential", "holm"), [1.0, 1.0], z)
    bonferroni = run(two_gate_plan("group_sequential", "bonferroni"), [1.0, 1.0], z)
    assert holm.fail.tolist() == [[True, True]]
    assert bonferroni.fail.tolist() == [[True, False]]
    assert holm.fractions == [(0.5,)]
