"""Many data sets fitted as one batch (fit_replicates) agree with fitting each on its own."""

from __future__ import annotations

import numpy as np
import pytest

from scaleguard.errors import InputError
from scaleguard.laws import get_law
from scaleguard.laws._optimize import Objective, fit_from_starts, fit_replicates


def _replicates(form: str, n_rep: int, seed: int = 0):
    law = get_law(form, ("x",))
    x = np.geomspace(1e6, 1e9, 30)[None, :]
    truth = {"saturating": {"E": 1.8, "A": 40.0, "alpha": 0.3},
             "broken": {"E": 1.5, "B": 30.0, "c0": 0.1, "c1": 0.3, "d1": 3e7, "f1": 0.5}}[form]
    mean = np.log(law.predict(truth, x))
    targets = mean[None, :] + 0.005 * np.random.default_rng(seed).standard_normal((n_rep, 30))
    lower, upper = law.bounds(x, np.exp(mean))
    return law, x, targets, law.starts(x, np.exp(mean)), lower, upper


@pytest.mark.parametrize("form", ["saturating", "broken"])
def test_each_replicate_fits_as_well_as_alone(form: str) -> None:
    law, x, targets, starts, lower, upper = _replicates(form, 4)
    theta, value = fit_replicates(Objective(law, x, targets), starts, lower, upper)
    for i, target in enumerate(targets):
        alone = fit_from_starts(Objective(law, x, target), starts, lower, upper)
        # the same minimum, or a better one (every start runs on; fit_from_starts keeps 64)
        assert value[i] <= alone.value * (1 + 1e-6) + 1e-12
        own, _ = Objective(law, x, target)(theta[i][None, :])
        assert own[0] == pytest.approx(value[i], rel=1e-9)


def test_screened_replicates_stay_near_the_full_search() -> None:
    law, x, targets, starts, lower, upper = _replicates("broken", 3, seed=1)
    _, full = fit_replicates(Objective(law, x, targets), starts, lower, upper)
    _, screened = fit_replicates(Objective(law, x, targets), starts, lower, upper, keep=6)
    assert np.all(screened <= full * 1.05 + 1e-12)  # six screened starts find the basin


def test_per_start_weights_are_refused() -> None:
    law, x, targets, starts, lower, upper = _replicates("saturating", 2)
    objective = Objective(law, x, targets, weights=np.ones((2, 30)))
    with pytest.raises(InputError, match="shared by every replicate"):
        fit_replicates(objective, starts, lower, upper)
