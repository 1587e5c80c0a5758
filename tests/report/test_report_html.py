"""The report: one self-contained HTML file, the same content as JSON, and what a browser shows."""

from __future__ import annotations

import json
import re

import pytest

from scaleguard.limits import Readiness
from scaleguard.report import isoflop_chart, law_chart, render_html, walls_chart, write_report


def test_the_end_to_end_assessment_names_the_data_wall(assessment):
    # 512B tokens at the compute-optimal 1e23 FLOP against 100B unique: about 5 epochs.
    v = assessment.verdict
    assert v.readiness is Readiness.NOT_READY
    assert v.binding.check == "data_wall"
    assert 4 < v.binding.numbers["epochs"] < 7
    assert v.change.quantity == "unique tokens"
    t = assessment.target
    assert t.low < t.loss < t.high  # a bootstrap interval, from real refits
    assert assessment.law["form"] == "chinchilla" and assessment.law["n_points"] == 40


def test_html_is_self_contained(assessment):
    html = render_html(assessment)
    # plotly.js is inlined once: no script or stylesheet is loaded from anywhere (the browser
    # test below also checks that the page makes no request at all).
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<link[^>]+href=", html) is None
    assert html.count('class="plotly-graph-div"') == 3
    assert len(html) > 3_000_000  # the bundled plotly.js
    for heading in ("Limit findings", "Fitted law and extrapolation", "Iso-FLOP frontier",
                    "Resources, energy and carbon", "Rollout plan", "Monitoring alerts"):
        assert heading in html
    assert "not ready" in html and "data wall" in html


def test_charts_use_log_axes_units_and_mark_the_target(assessment):
    for chart in (law_chart(assessment), isoflop_chart(assessment)):
        layout = chart.layout
        assert layout.xaxis.type == "log"
        assert "(" in layout.xaxis.title.text and "(" in layout.yaxis.title.text  # units
        assert "nats/token" in layout.yaxis.title.text
        names = [trace.name or "" for trace in chart.data]
        assert any(name.startswith("target") for name in names)
    law = law_chart(assessment)
    target = next(t for t in law.data if t.name == "target")
    assert target.x[0] == pytest.approx(assessment.target.compute)
    walls = walls_chart(assessment)
    assert walls.layout.xaxis.type == "log" and "ratio" in walls.layout.xaxis.title.text


def test_json_is_the_assessment_as_dict(assessment, tmp_path):
    html_path, json_path = write_report(assessment, tmp_path / "out")
    assert html_path.name == "report.html" and html_path.stat().st_size > 0
    payload = json.loads(json_path.read_text())
    assert payload == json.loads(json.dumps(assessment.as_dict()))
    assert payload["verdict"]["binding_constraint"] == "data_wall"
    assert "NaN" not in json_path.read_text()  # strict JSON: no NaN or Infinity


def test_browser_renders_every_chart_without_console_errors(chromium, assessment, tmp_path):
    html_path, _ = write_report(assessment, tmp_path)
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: problems.append(f"request {r.url}")
            if not r.url.startswith(("file:", "data:", "blob:", "about:")) else None)
    page.goto(html_path.as_uri())
    page.wait_for_selector("#chart-walls .main-svg")
    for chart in ("chart-law", "chart-isoflop", "chart-walls"):
        assert page.locator(f"#{chart} .main-svg").count() >= 1
        title = page.locator(f"#{chart} .xtitle").text_content() or ""
        assert title.endswith(")")  # the unit, in brackets
    assert page.locator(".verdict .status").inner_text().lower() == "not ready"
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.close()
    assert problems == []
