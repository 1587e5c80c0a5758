"""Studies built around the synthetic ladder's known law, for the limit tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scaleguard.examples import SYNTHETIC_LAW, synthetic_ladder
from scaleguard.io import prepare_ladder
from scaleguard.limits import LawView

# A study that passes every check: one decade beyond the ladder (1e20 FLOP), on 8 H100s,
# with limits far above what the step needs (3.7 days, ~$1.4k, 0.54 MWh, 0.22 tCO2e).
PASSING_STUDY: dict[str, Any] = {
    "name": "passes everything",
    "ladder": {"path": "ladder.csv", "bootstrap": 0},
    "target": {"compute": "1e21", "loss_tolerance": 0.5},
    "hardware": {"device": "h100-sxm", "devices": 8, "mfu": 0.4,
                 "price_per_device_hour": 2.0, "pue": 1.1, "grid_intensity": 400},
    "limits": {"money": "1M", "energy": "1000MWh", "carbon": "1000tCO2e", "wall_clock": "60d"},
    "data": {"unique_tokens": "10T"},
    "returns": {"irreducible_fraction": 0.05},
}


def _make_study(**changes: Any) -> dict[str, Any]:
    """PASSING_STUDY with sections updated: make_study(limits={"money": "1k"})."""
    study = copy.deepcopy(PASSING_STUDY)
    for section, values in changes.items():
        if isinstance(values, dict):
            study[section] = {**study.get(section, {}), **values}
        else:
            study[section] = values
    return study


@pytest.fixture(scope="session")
def make_study() -> Callable[..., dict[str, Any]]:
    """Builds PASSING_STUDY with some sections changed."""
    return _make_study


@pytest.fixture(scope="session")
def ladder() -> pd.DataFrame:
    return prepare_ladder(synthetic_ladder(seed=0))


@pytest.fixture(scope="session")
def known_law() -> LawView:
    """The law the ladder was drawn from, with 20 resamples spread 1% around it (seeded)."""
    rng = np.random.default_rng(0)
    resamples = tuple({k: v * float(np.exp(rng.normal(0.0, 0.01))) for k, v in
                       SYNTHETIC_LAW.items()} for _ in range(20))
    return LawView(dict(SYNTHETIC_LAW), resamples,
                   {"form": "chinchilla", "formula": "L = E + A/N^alpha + B/D^beta",
                    "params": dict(SYNTHETIC_LAW), "n_points": 40})
