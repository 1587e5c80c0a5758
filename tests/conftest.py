"""Shared fixtures. Tests may read ../shared (the design's reference data) only optionally."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder beside the repository; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (it is not shipped to users)")
    return SHARED_DATA
