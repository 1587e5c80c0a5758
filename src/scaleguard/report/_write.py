"""Writing an assessment to a folder: the HTML report and the same content as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from scaleguard.errors import InputError
from scaleguard.limits import Assessment
from scaleguard.report._html import render_html

__all__ = ["write_report", "REPORT_NAME", "JSON_NAME"]

REPORT_NAME = "report.html"
JSON_NAME = "assessment.json"


def write_report(assessment: Assessment, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``assessment.json`` into ``out`` and return their paths."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    html_path, json_path = out / REPORT_NAME, out / JSON_NAME
    html_path.write_text(render_html(assessment), encoding="utf-8")
    json_path.write_text(json.dumps(assessment.as_dict(), indent=2) + "\n", encoding="utf-8")
    return html_path, json_path
