"""One real assessment (ladder file, study file, fit, bootstrap) shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleguard.examples import synthetic_ladder
from scaleguard.limits import Assessment, load_study, run_study

STUDY = """\
name: report test study
ladder: {path: ladder.csv, bootstrap: 6, seed: 1}
target: {compute: 1e23, loss_tolerance: 0.2}
hardware: {device: h100-sxm, devices: 1024, price_per_device_hour: 2.5, grid_intensity: 367}
limits: {money: 1M, energy: 1000MWh, carbon: 300tCO2e, wall_clock: 30d}
data: {unique_tokens: 100B}
"""


@pytest.fixture(scope="session")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    synthetic_ladder(seed=0).to_csv(folder / "ladder.csv", index=False)
    path = folder / "study.yaml"
    path.write_text(STUDY, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def assessment(study_file: Path) -> Assessment:
    return run_study(load_study(study_file), executor="serial")
