"""The oversight wall in `assess`: which stage outgrows the reviewers, and how many the full
rollout needs."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console

from scaleguard.limits import assess, gather_evidence, study_from_dict
from scaleguard.report import render_html
from scaleguard.report._terminal import print_summary

PLAN = {
    "name": "assistant-v3",
    "metrics": [{"name": "harm", "guardrail": 0.05}],
    "stages": [{"name": "pilot", "traffic": 0.01}, {"name": "broad", "traffic": 0.3},
               {"name": "everyone", "traffic": 1.0}],
    # 1% of 100,000 exposures/h reviewed: 10/h at the pilot, 300/h at broad, 1,000/h at all.
    "oversight": {"review_share": 0.01, "reviewers": 2, "reviews_per_hour": 50,
                  "exposures_per_hour": 100_000},
}


def _study(folder: Path) -> dict:
    (folder / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")
    rows = [{"stage": "pilot", "arm": arm, "metric": "harm", "exposures": 10_000, "events": 0,
             "time": 1_700_000_000} for arm in ("treatment", "control")]
    pd.DataFrame(rows).to_csv(folder / "obs.csv", index=False)
    return {"ladder": {"path": "ladder.csv"}, "target": {"compute": 1e21},
            "hardware": {"device": "h100-sxm", "devices": 8},
            "rollout": {"plan": "plan.yaml", "observations": "obs.csv"}}


def test_assess_reports_the_oversight_wall(tmp_path, make_study, ladder, known_law):
    evidence = gather_evidence(study_from_dict(_study(tmp_path), base_dir=tmp_path))
    wall = evidence.rollout["oversight_wall"]
    assert wall["first_over"] == "broad" and wall["full_rollout_reviewers"] == 20
    a = assess(study_from_dict(make_study()), ladder, known_law, evidence)
    finding = next(f for f in a.verdict.findings if f.check == "oversight_wall")
    assert finding.severity.value == "block"
    assert "stage 'broad'" in finding.message and "300 reviews/h" in finding.message
    assert "the full rollout needs 20 reviewers" in finding.message
    assert finding.pressure == 10.0  # 1,000 reviews/h at everyone over 100/h
    html = render_html(a)
    assert "Oversight wall" in html and "reviewers needed" in html
    out = io.StringIO()
    print_summary(a, Console(file=out, width=80, color_system=None))
    assert "oversight wall" in out.getvalue()
