"""The dashboard in headless Chromium on a live server with seeded data.

Skips (saying why) where Debian's ``chromium`` or Playwright is absent; ``.ci/run`` installs
both, so in CI it runs.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx

from scaleguard.service import create_app
from scaleguard.service._background import BackgroundServer

TOKEN = "test-token-0123456789abcdef"  # conftest's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW = 60.0  # seconds an answer may take on a loaded CI machine
SCREENSHOT_DIR = Path("/tmp")
SPIKE_STEP = 3_000


def _seed(url: str) -> str:
    """Two runs of 5,000 steps; the second has a loss spike and a planted critical alert."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=SLOW) as client:
        run_ids = []
        for name in ("baseline", "spiky"):
            run_id = client.post("/api/v1/runs", json={"name": name,
                                                       "config": {"lr": 3e-4}}).json()["run_id"]
            steps = list(range(5_000))
            loss = [2 + 8 / math.sqrt(s + 10) + 0.01 * math.sin(s) for s in steps]
            body = {"steps": steps * 2, "names": ["loss"] * 5_000 + ["grad_norm"] * 5_000,
                    "values": loss + [1 + 0.1 * math.cos(s / 7) for s in steps]}
            if name == "spiky":
                body["values"][SPIKE_STEP] = 9.0
                body["alerts"] = [{
                    "time": time.time(), "severity": "critical", "title": "planted loss spike",
                    "message": "loss 9.0 far above its 6-sigma band", "metric": "loss",
                    "step": SPIKE_STEP, "value": 9.0, "detector": "spike",
                    "action": "restart from the checkpoint before step 2900"}]
            assert client.post(f"/api/v1/runs/{run_id}/batches", json=body).status_code == 201
            run_ids.append(run_id)
    return run_ids[1]


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # A poll still in flight when the test navigates away is aborted by the browser: not a fault.
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")
            if r.failure != "net::ERR_ABORTED" else None)
    return problems


def test_dashboard_renders_runs_charts_and_the_planted_alert(chromium, settings):
    app = create_app(settings(open_reads=True))
    with BackgroundServer(app) as server:
        spiky = _seed(server.url)
        page = chromium.new_page(viewport={"width": 1300, "height": 900})
        problems = _watch(page)
        external: list[str] = []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(server.url) else None)

        page.goto(server.url + "/")
        page.wait_for_selector("body[data-loaded='1']", timeout=20_000)
        assert page.locator("#runs-table tbody tr").count() == 2
        assert page.locator(".spark .scatterlayer .trace").count() == 2  # both sparklines drawn
        assert "critical 1" in page.locator("#runs-table").inner_text()
        page.screenshot(path=str(SCREENSHOT_DIR / "scaleguard-dashboard-runs.png"),
                        full_page=True)

        page.click("a.run-link:text-is('spiky')")
        page.wait_for_url(f"**/runs/{spiky}")
        page.wait_for_selector("body[data-loaded='1']", timeout=20_000)
        page.wait_for_selector("#chart-loss .main-svg", timeout=20_000)
        assert page.locator(".chart .js-plotly-plot, .chart.js-plotly-plot").count() == 2
        # The chart draws the downsampled curve and marks the planted alert's step.
        assert page.locator("#chart-loss .scatterlayer .trace").count() == 2
        assert page.locator("#chart-loss .scatterlayer .point").count() == 1
        alerts = page.locator("#run-alerts").inner_text()
        assert "planted loss spike" in alerts and str(SPIKE_STEP) in alerts
        title = page.locator("#chart-loss .gtitle").text_content() or ""
        assert "of 5000 points" in title  # downsampled from 5,000 to the chart's 2,000
        page.screenshot(path=str(SCREENSHOT_DIR / "scaleguard-dashboard-run.png"),
                        full_page=True)

        # Zoom: a relayout asks the API for the visible range only, at full detail.
        with page.expect_response(lambda r: "start=" in r.url and "series" in r.url):
            page.evaluate("Plotly.relayout(document.getElementById('chart-loss'),"
                          " {'xaxis.range': [2990, 3010]})")
        # Polled from here: the page's CSP (no eval) also forbids Playwright's string predicates.
        deadline = time.monotonic() + 20
        while page.locator("#chart-loss .gtitle").text_content() != "loss":
            assert time.monotonic() < deadline, "the zoomed chart was not redrawn"
            page.wait_for_timeout(50)

        page.goto(server.url + "/alerts")
        page.wait_for_selector("body[data-loaded='1']", timeout=20_000)
        assert "planted loss spike" in page.locator("#alerts").inner_text()
        # Live refresh: an alert posted now shows up on the open page by itself (polling).
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=SLOW) as client:
            client.post(f"/api/v1/runs/{spiky}/batches", json={
                "steps": [], "names": [], "values": [],
                "alerts": [{"time": time.time(), "severity": "warning", "title": "late arrival"}]})
        page.wait_for_selector("#alerts :text('late arrival')", timeout=20_000)
        seen = list(problems)
        page.close()
    assert seen == []
    assert external == []  # no CDN, nothing fetched from anywhere else


def test_dashboard_asks_for_a_token_when_reads_are_closed(chromium, settings):
    app = create_app(settings())
    with BackgroundServer(app) as server:
        for name in ("first", "second"):
            httpx.post(server.url + "/api/v1/runs", json={"name": name}, headers=AUTH,
                       timeout=SLOW)
        page = chromium.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#login:not([hidden])", timeout=20_000)
        assert page.locator("#runs-table").count() == 0  # nothing shown without a token
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.wait_for_selector("#runs-table", timeout=20_000)
        assert page.locator("#runs-table tbody tr").count() == 2
        page.close()


def test_rollout_pages_show_stage_gates_and_history(chromium, settings):
    plan = {"name": "browser-plan", "alpha": 0.05,
            "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005}],
            "segments": {"region": ["us", "eu"]},
            "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": "1h"},
                       {"name": "all", "traffic": 1.0}]}
    rows = [{"stage": "pilot", "arm": arm, "metric": "harm", "region": region,
             "exposures": 200_000, "events": 2_000}
            for arm in ("control", "treatment") for region in ("us", "eu")]
    app = create_app(settings(open_reads=True))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                       headers=AUTH, timeout=SLOW) as client:
        now = time.time()
        # started_at within the plan's data.max_age (2 h): the service refuses a start older
        # than the data it can vouch for.
        created = client.post("/api/v1/rollouts", json={"plan": plan, "rollout_id": "ro-browser",
                                                        "started_at": now - 7000})
        assert created.status_code == 201, created.text
        # Half an hour in: gates pass but the stage's minimum hour has not passed; then an
        # hour and a half in, with no new rows: advance to "all".
        for when, new_rows in ((now - 5400, rows), (now - 1800, [])):
            client.post("/api/v1/rollouts/ro-browser/observations",
                        json={"rows": new_rows, "now": when})
        page = chromium.new_page(viewport={"width": 1300, "height": 900})
        problems = _watch(page)
        page.goto(server.url + "/rollouts")
        page.wait_for_selector("#rollouts-table", timeout=20_000)
        assert "browser-plan" in page.locator("#rollouts-table").inner_text()
        page.click("a.rollout-link:text-is('ro-browser')")
        page.wait_for_selector("#traffic-chart .scatterlayer .trace", timeout=20_000)
        gates = page.locator("#gates-table").inner_text()
        assert "region=eu" in gates and "pass" in gates
        history = page.locator("#history-table").inner_text()
        assert "continue" in history and "advancing to 'all'" in history
        assert page.locator("#history-table tbody tr").count() == 2
        meta = page.locator("#rollout-meta").inner_text()
        assert "stage all" in meta and "traffic 100%" in meta
        page.screenshot(path=str(SCREENSHOT_DIR / "scaleguard-dashboard-rollout.png"),
                        full_page=True)
        seen = list(problems)
        page.close()
    assert seen == []
