"""Shared fixtures. Tests may read ../shared (the design's reference data) only optionally."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder beside the repository; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (it is not shipped to users)")
    return SHARED_DATA


# Flags that keep Chromium from phoning home on a closed network (each refused connection costs
# time) and let it run as root in a container.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright; skips where either is absent.

    ``.ci/run`` installs both (``apt-get install chromium``; ``playwright`` is in the test extra),
    so in CI these tests run; on a laptop without Chromium they skip and say why.
    """
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium')")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One local Ray instance with 2 CPUs for the whole test session (start-up costs seconds).

    Skips where Ray is absent; the ``test`` extra installs it, so in CI these tests run.
    """
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


# -- PostgreSQL: one throwaway cluster per test session, a fresh database per test ------------
def _pgcluster() -> Any:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import pgcluster

    return pgcluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster started with initdb/pg_ctl; skips, saying so, without binaries."""
    pgcluster = _pgcluster()
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs the 'postgres' extra")
    bindir = pgcluster.find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql;"
                    " .ci/run installs Debian's postgresql")
    cluster = pgcluster.Cluster(bindir).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    return str(pg_cluster.database())


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh store lives, once on each backend: a DuckDB file, a PostgreSQL URL."""
    if request.param == "duckdb":
        return str(tmp_path / "store.duckdb")
    return str(request.getfixturevalue("pg_url"))
