"""Built-in example data, generated here from known laws with noise — and labelled synthetic.

Nothing in this module is measured data. It exists so that ``scaleguard demo`` and the tests can
run on a fresh machine with no files, and so that a fit can be checked against the law that drew
the points.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

__all__ = ["SYNTHETIC_LAW", "SYNTHETIC_BUDGETS", "synthetic_ladder"]

# The law the synthetic ladder is drawn from: L = E + A/N^alpha + B/D^beta, with the parameters
# of the Chinchilla replication (Besiroglu et al. 2024), so that the demo looks like the field.
SYNTHETIC_LAW: Final = {"E": 1.817, "A": 482.0, "B": 2085.4, "alpha": 0.348, "beta": 0.366}
# Iso-FLOP budgets (FLOP) of the synthetic ladder: small enough to be a realistic pilot ladder.
SYNTHETIC_BUDGETS: Final = (1e18, 3e18, 1e19, 3e19, 1e20)


def synthetic_ladder(seed: int = 0, *, noise: float = 0.01, sizes_per_budget: int = 8,
                     budgets: tuple[float, ...] = SYNTHETIC_BUDGETS) -> pd.DataFrame:
    """An iso-FLOP ladder drawn from :data:`SYNTHETIC_LAW` with multiplicative log-normal noise.

    Each budget ``C`` gets ``sizes_per_budget`` model sizes spread around the compute-optimal
    size, with ``tokens = C / (6 N)``. Columns: ``params``, ``tokens``, ``flops``, ``loss``,
    ``group`` (the budget's label) and ``source`` (always ``"synthetic"``).

    >>> ladder = synthetic_ladder(seed=1)
    >>> len(ladder), sorted(ladder["source"].unique())
    (40, ['synthetic'])
    """
    if noise < 0:
        raise ValueError("noise must be >= 0")
    rng = np.random.default_rng(seed)
    law = SYNTHETIC_LAW
    rows = []
    for budget in budgets:
        # Compute-optimal N for this law (Hoffmann et al. 2022, eq. 4) as the centre of the sweep.
        a, b = law["alpha"], law["beta"]
        g = (a * law["A"] / (b * law["B"])) ** (1.0 / (a + b))
        n_opt = g * (budget / 6.0) ** (b / (a + b))
        for params in n_opt * np.geomspace(1 / 8, 8, sizes_per_budget):
            tokens = budget / (6.0 * params)
            loss = law["E"] + law["A"] / params**a + law["B"] / tokens**b
            rows.append({
                "params": float(params),
                "tokens": float(tokens),
                "flops": float(budget),
                "loss": float(loss * np.exp(rng.normal(0.0, noise))),
                "group": f"C={budget:.0e}",
                "source": "synthetic",
            })
    return pd.DataFrame(rows)
