"""One self-contained HTML file for an assessment: plotly bundled once, no CDN, opens offline."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from scaleguard._version import __version__
from scaleguard.limits import Assessment, Readiness, Severity
from scaleguard.report._charts import SEVERITY_COLOURS, isoflop_chart, law_chart, walls_chart
from scaleguard.units import format_quantity

__all__ = ["render_html"]

_READINESS_COLOURS = {Readiness.READY: SEVERITY_COLOURS[Severity.OK],
                      Readiness.CONDITIONAL: SEVERITY_COLOURS[Severity.WARN],
                      Readiness.NOT_READY: SEVERITY_COLOURS[Severity.BLOCK]}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #212121; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px 0; font-size: 26px; } h2 { margin-top: 36px; font-size: 20px; }
.sub { color: #616161; margin-bottom: 18px; }
.verdict { border-radius: 8px; padding: 16px 20px; color: white; }
.verdict .status { font-size: 24px; font-weight: 700; text-transform: uppercase; }
.verdict .line { margin-top: 6px; font-size: 15px; line-height: 1.45; }
table { border-collapse: collapse; width: 100%; background: white; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid #e0e0e0;
         vertical-align: top; }
th { background: #eeeeee; } td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; color: white;
         font-size: 12px; font-weight: 600; text-transform: uppercase; }
.source { color: #757575; font-size: 12px; }
.chart { background: white; margin: 14px 0; border: 1px solid #e0e0e0; border-radius: 6px; }
.empty { color: #757575; font-style: italic; }
footer { color: #9e9e9e; font-size: 12px; margin-top: 40px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
           ) -> str:
    """Rows of already-escaped cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    num = ' class="num"'
    body = "".join(
        "<tr>" + "".join(f"<td{num if i in numeric else ''}>{cell}</td>"
                         for i, cell in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _badge(text: str, colour: str) -> str:
    return f'<span class="badge" style="background:{colour}">{_e(text)}</span>'


def _figure(fig: Any, div_id: str) -> str:
    body = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})
    return f'<div class="chart">{body}</div>'


def _verdict(a: Assessment) -> str:
    v = a.verdict
    lines = [f'<div class="line"><b>Binding constraint:</b> {_e(v.binding.title)} — '
             f"{_e(v.binding.message)}</div>"]
    if v.change is not None:
        ways = " or ".join(_e(c.describe()) for c in (v.change, *v.alternatives))
        lines.append(f'<div class="line"><b>Cheapest change that lifts it:</b> {ways}</div>')
    others = [f.title for f in (*v.blocking, *v.conditions) if f is not v.binding]
    if others:
        lines.append(f'<div class="line"><b>Also:</b> {_e(", ".join(others))}</div>')
    return (f'<div class="verdict" style="background:{_READINESS_COLOURS[v.readiness]}">'
            f'<div class="status">{_e(v.readiness.value)}</div>{"".join(lines)}</div>')


def _findings(a: Assessment) -> str:
    rows = []
    order = sorted(a.verdict.findings, key=lambda f: -f.severity.rank)
    for f in order:
        changes = "<br>".join(_e(c.describe()) for c in f.changes) or "—"
        pressure = f"{f.pressure:.2g}×" if math.isfinite(f.pressure) else "—"
        rows.append([_badge(f.severity.value, SEVERITY_COLOURS[f.severity]), _e(f.title),
                     f'{_e(f.message)}<div class="source">rule: {_e(f.source)}</div>',
                     pressure, changes])
    return _table(["", "limit", "finding", "need ÷ limit", "what lifts it"], rows, numeric=[3])


def _target(a: Assessment) -> str:
    t = a.target
    interval = (f"[{t.low:.4g}, {t.high:.4g}] ({t.confidence:.0%})"
                if math.isfinite(t.low) else "no bootstrap")
    rows = [["fixed by the study", _e(t.kind)],
            ["training compute", _e(format_quantity(t.compute, "flop", digits=3))],
            ["model size N", _e(format_quantity(t.params, digits=3) + " parameters")],
            ["training tokens D", _e(format_quantity(t.tokens, digits=3) + " tokens")],
            ["tokens per parameter", f"{t.tokens / t.params:.1f}"],
            ["predicted loss", f"{t.loss:.4g} nats/token"],
            ["prediction interval", _e(interval)]]
    law = a.law
    params = ", ".join(f"{k}={v:.4g}" for k, v in law.get("params", {}).items())
    rows += [["law", _e(f"{law.get('form', '?')}: {law.get('formula', '')}")],
             ["fitted parameters", _e(params)],
             ["ladder runs fitted", _e(law.get("n_points", len(a.ladder.get("loss", ()))))]]
    return _table(["", "value"], rows, numeric=[1])


def _resources(a: Assessment) -> str:
    rows = [[_e(r.name), _e(r.shown), _e(r.note)] for r in a.resources]
    return _table(["resource", "estimate", "note"], rows, numeric=[1])


def _rollout(a: Assessment) -> str:
    if not a.gates and not a.rollout:
        return '<p class="empty">The study names no rollout plan.</p>'
    colours = {"pass": SEVERITY_COLOURS[Severity.OK], "fail": SEVERITY_COLOURS[Severity.BLOCK]}
    head = ""
    if a.rollout:
        head = "<p>" + "; ".join(f"{_e(k)}: {_e(v)}" for k, v in a.rollout.items()
                                 if k != "oversight_wall") + "</p>"
    rows = [[_badge(g.state, colours.get(g.state, SEVERITY_COLOURS[Severity.WARN])),
             _e(g.name), _e(g.detail)] for g in a.gates]
    return head + _table(["state", "gate", "evidence"], rows) + _oversight(a)


def _oversight(a: Assessment) -> str:
    """Each stage's projected human-review load against the reviewers (the oversight wall)."""
    wall = (a.rollout or {}).get("oversight_wall")
    if not wall:
        return ""

    def shown(value: float | None, digits: str = ".3g") -> str:
        return "unbounded" if value is None else format(value, digits)

    rows = [[_badge("over" if s["exceeds"] else "fits",
                    SEVERITY_COLOURS[Severity.BLOCK if s["exceeds"] else Severity.OK]),
             _e(s["stage"]), f"{s['traffic']:g}", _e(shown(s["load_per_hour"])),
             _e(shown(s["reviewers_needed"], "d"))] for s in wall["stages"]]
    return (f"<h3>Oversight wall</h3><p>{wall['reviewers']} reviewers, "
            f"{wall['capacity_per_hour']:g} reviews/h; flag share upper bound "
            f"{_e(shown(wall['flag_upper']))} of {_e(shown(wall['exposures_per_hour']))} "
            "exposures/h at full traffic</p>"
            + _table(["", "stage", "traffic", "reviews/h", "reviewers needed"], rows,
                     numeric=[2, 3, 4]))


def _alerts(a: Assessment) -> str:
    if not a.alerts:
        return '<p class="empty">No open monitoring alerts.</p>'
    rows = [[_e(x.severity), _e(x.run), _e(x.metric),
             "" if math.isnan(x.step) else f"{x.step:g}", _e(x.message)] for x in a.alerts]
    return _table(["severity", "run", "metric", "step", "message"], rows, numeric=[3])


def render_html(assessment: Assessment) -> str:
    """The whole report as one HTML string; plotly.js is inlined once for all charts."""
    a = assessment
    charts = [_figure(law_chart(a), "chart-law"), _figure(isoflop_chart(a), "chart-isoflop"),
              _figure(walls_chart(a), "chart-walls")]
    notes = "".join(f"<li>{_e(n)}</li>" for n in a.notes)
    sections = [
        f"<h1>Scaling readiness: {_e(a.name)}</h1>",
        '<div class="sub">Can we scale to '
        f'{_e(format_quantity(a.target.compute, "flop", digits=3))}'
        f" ({_e(format_quantity(a.target.params, digits=3))} parameters, "
        f"{_e(format_quantity(a.target.tokens, digits=3))} tokens)?</div>",
        _verdict(a),
        "<h2>Limit findings</h2>", _findings(a), charts[2],
        "<h2>Fitted law and extrapolation</h2>", charts[0], _target(a),
        "<h2>Iso-FLOP frontier</h2>", charts[1],
        "<h2>Resources, energy and carbon</h2>", _resources(a),
        "<h2>Rollout plan</h2>", _rollout(a),
        "<h2>Monitoring alerts</h2>", _alerts(a),
    ]
    if notes:
        sections += ["<h2>Notes</h2>", f"<ul>{notes}</ul>"]
    sections.append(f"<footer>scaleguard {_e(__version__)} · the same content is in "
                    "assessment.json beside this file</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>scaleguard: {_e(a.name)}</title><style>{_CSS}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
            f"<body><main>{''.join(sections)}</main></body></html>\n")
