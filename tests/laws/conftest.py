"""Fixtures shared by the laws tests: the replication's 240 points, fitted once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scaleguard.io import read_ladder
from scaleguard.laws import LawFit

CHINCHILLA_CSV = (Path(__file__).resolve().parents[3] / "shared" / "data"
                  / "chinchilla_svg_extracted.csv")


@pytest.fixture(scope="session")
def chinchilla_points() -> pd.DataFrame:
    """The replication's 240 points (the 5 highest-loss points dropped); skips without them."""
    if not CHINCHILLA_CSV.is_file():
        pytest.skip("../shared/data is absent (it is not shipped to users)")
    ladder = read_ladder(CHINCHILLA_CSV, ["params=Model Size", "flops=Training FLOP"])
    return ladder.sort_values("loss").iloc[:-5].reset_index(drop=True)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_points: pd.DataFrame) -> LawFit:
    """Approach 3 on the full 4,500-start grid, as the replication fits it."""
    return LawFit(form="chinchilla").fit(chinchilla_points)


@pytest.fixture(scope="session")
def coarse_grid() -> dict[str, tuple[float, ...]]:
    """243 starts instead of 4,500, for chinchilla fits whose grid is not the point."""
    return {"e": (-1.0, 0.0, 1.0), "a": (0.0, 10.0, 20.0), "b": (0.0, 10.0, 20.0),
            "alpha": (0.0, 0.5, 1.0), "beta": (0.0, 0.5, 1.0)}
