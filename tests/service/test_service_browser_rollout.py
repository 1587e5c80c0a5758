"""The rollout page in headless Chromium: its charts render and its Approve button approves.

Skips (saying why) where Debian's ``chromium`` or Playwright is absent; ``.ci/run`` installs
both, so in CI it runs.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx

from scaleguard.service import create_app
from scaleguard.service._background import BackgroundServer

TOKEN = "test-token-0123456789abcdef"  # conftest's token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW = 60.0  # seconds an answer may take on a loaded CI machine
WAIT_MS = 20_000
SCREENSHOT = Path("/tmp/scaleguard-dashboard-rollout-approval.png")
PLAN = {"name": "approve-in-browser", "alpha": 0.05,
        "metrics": [{"name": "harm", "guardrail": 0.05, "margin": 0.005}],
        "segments": {"region": ["us", "eu"]},
        "stages": [{"name": "pilot", "traffic": 0.05, "min_duration": "1h"},
                   {"name": "wide", "traffic": 0.5, "manual_approval": True},
                   {"name": "all", "traffic": 1.0}]}


def _waiting_rollout(client: httpx.Client) -> float:
    """Three looks at the pilot; the last passes every gate past the minimum hour and waits
    for the approval of 'wide'."""
    now = time.time()
    made = client.post("/api/v1/rollouts", json={"plan": PLAN, "rollout_id": "ro-approve",
                                                 "started_at": now - 7000})
    assert made.status_code == 201, made.text
    for when, share in ((now - 6000, 0.25), (now - 4500, 0.5), (now - 3000, 1.0)):
        rows = [{"stage": "pilot", "arm": arm, "metric": "harm", "region": region,
                 "exposures": 200_000 * share, "events": 2_000 * share, "time": when}
                for arm in ("control", "treatment") for region in ("us", "eu")]
        # Cumulative windows by time: each look adds the exposures since the previous one.
        assert client.post("/api/v1/rollouts/ro-approve/observations",
                           json={"rows": rows, "now": when}).status_code == 200
    shown = client.get("/api/v1/rollouts/ro-approve").json()
    assert shown["awaiting_approval"] == "wide", shown
    return now


def _confirmed_by_a_deploy_tool(store: Any) -> None:
    """An audit entry of another kind (what a Flagger confirmation writes): the page shows it
    in the audit log and draws nothing of it."""
    from scaleguard.monitor import RolloutChange

    def confirm(record: Any, _rows: Any) -> RolloutChange:
        state = {**record.state, "decisions": record.state["decisions"] + 1}
        entry = {"kind": "flagger", "hook": "confirm-traffic-increase", "phase": "Progressing",
                 "stage": "pilot", "traffic": 0.05, "time": time.time()}
        return RolloutChange(state, entry, state["decisions"], time.time(), time.time())

    store.update_rollout("ro-approve", confirm)


def test_rollout_page_draws_ramp_sequences_srm_and_approves(chromium, settings):
    digest = hashlib.sha256(TOKEN.encode()).digest()
    app = create_app(settings(open_reads=True, token_names={digest: "release-owner"}))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, headers=AUTH,
                                                       timeout=SLOW) as client:
        now = _waiting_rollout(client)
        _confirmed_by_a_deploy_tool(app.state.store)
        gates = len(client.get("/api/v1/rollouts/ro-approve/history").json()["gates"])
        page = chromium.new_page(viewport={"width": 1300, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        external: list[str] = []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(server.url) else None)

        page.goto(server.url + "/rollouts/ro-approve")
        page.wait_for_selector("body[data-loaded='1']", timeout=WAIT_MS)
        # The ramp (start + three looks), a confidence band per gate, the SRM chart.
        page.wait_for_selector("#traffic-chart .scatterlayer .trace", timeout=WAIT_MS)
        assert page.locator("#traffic-chart .scatterlayer .trace").first \
            .locator(".point").count() == 4
        assert gates == 6 and page.locator(".gate-chart.js-plotly-plot").count() == gates
        assert page.locator(".gate-chart .scatterlayer").count() == gates
        eu = page.locator(".gate-chart[data-gate='harm/region=eu/comparison']")
        assert eu.locator(".scatterlayer .trace").count() == 4  # upper, lower, estimate, margin
        assert eu.locator(".scatterlayer .trace path.js-fill").count() >= 1  # the band
        assert "pass" in (eu.locator(".gtitle").text_content() or "")
        assert "ok" in page.locator("#srm-summary").inner_text()
        assert page.locator("#srm-table tbody tr").count() == 3  # overall, us, eu
        assert page.locator("#srm-chart .scatterlayer .trace").count() == 2
        logged = page.locator("#history-table").inner_text()
        assert "awaits manual approval" in logged and "confirm-traffic-increase" in logged

        # Reads are open, so no token is in the page yet: Approve asks for one first.
        page.fill("#approve-note", "pilot harm reviewed")
        page.click("#approve-button")
        page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
        assert client.get("/api/v1/rollouts/ro-approve").json()["approved"] == []
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.click("#approve-button")
        page.wait_for_selector("#approvals-table :text('release-owner')", timeout=WAIT_MS)
        assert page.locator("#approve-button").count() == 0  # nothing waits any more
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        seen = list(problems)
        page.close()

        audit = client.get("/api/v1/rollouts/ro-approve/audit").json()
        assert audit[-1]["kind"] == "approval" and audit[-1]["stage"] == "wide"
        assert audit[-1]["approved_by"] == "release-owner"
        assert audit[-1]["note"] == "pilot harm reviewed"
        # And the next decision enters the approved stage.
        entered = client.post("/api/v1/rollouts/ro-approve/observations",
                              json={"rows": [], "now": now - 2000}).json()
        assert entered["action"] == "advance" and entered["state"]["stage_index"] == 1
    assert seen == []
    assert external == []  # no CDN, nothing fetched from anywhere else
