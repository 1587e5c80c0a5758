"""The readiness report: one self-contained HTML file, the same content as JSON, and a short
terminal summary, all from a :class:`scaleguard.limits.Assessment`."""

from scaleguard.report._charts import isoflop_chart, law_chart, walls_chart
from scaleguard.report._html import render_html
from scaleguard.report._terminal import print_summary
from scaleguard.report._write import JSON_NAME, REPORT_NAME, write_report

__all__ = [
    "JSON_NAME",
    "REPORT_NAME",
    "isoflop_chart",
    "law_chart",
    "print_summary",
    "render_html",
    "walls_chart",
    "write_report",
]
