"""The report's charts, as plotly figures built from an :class:`~scaleguard.limits.Assessment`.

Readable by the field's conventions: compute and model size on log axes, loss on a linear axis in
nats per token, a unit on every axis, and the target marked on every chart where it has a place.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from scaleguard.limits import Assessment, Severity

__all__ = ["law_chart", "isoflop_chart", "walls_chart", "SEVERITY_COLOURS"]

SEVERITY_COLOURS = {Severity.OK: "#2e7d32", Severity.WARN: "#ef6c00", Severity.BLOCK: "#c62828"}
_TARGET = "#6a1b9a"
_LOSS_AXIS = "loss (nats/token)"
_LAYOUT = dict(template="plotly_white", height=460, margin=dict(l=70, r=30, t=60, b=60),
               legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(size=11)))


def law_chart(assessment: Assessment) -> go.Figure:
    """Ladder runs, the fitted compute-optimal frontier with its band, and the target."""
    a, curve, target = assessment, assessment.frontier, assessment.target
    fig = go.Figure()
    low, high = np.asarray(curve.low, dtype=float), np.asarray(curve.high, dtype=float)
    if np.isfinite(low).any():
        fig.add_trace(go.Scatter(x=list(curve.compute) + list(curve.compute[::-1]),
                                 y=list(high) + list(low[::-1]), fill="toself",
                                 fillcolor="rgba(21,101,192,0.15)", line=dict(width=0),
                                 hoverinfo="skip",
                                 name=f"{target.confidence:.0%} prediction interval"))
    fig.add_trace(go.Scatter(x=curve.compute, y=curve.loss, mode="lines",
                             line=dict(color="#1565c0", width=2),
                             name="fitted law, compute-optimal"))
    fig.add_trace(go.Scatter(x=a.ladder["flops"], y=a.ladder["loss"], mode="markers",
                             marker=dict(color="#424242", size=6, opacity=0.7),
                             name="ladder runs",
                             hovertemplate="C=%{x:.3g} FLOP<br>loss=%{y:.4f}<extra></extra>"))
    error = None
    if math.isfinite(target.low) and math.isfinite(target.high):
        error = dict(type="data", symmetric=False, array=[target.high - target.loss],
                     arrayminus=[target.loss - target.low], color=_TARGET, thickness=2)
    fig.add_trace(go.Scatter(x=[target.compute], y=[target.loss], mode="markers",
                             marker=dict(symbol="star", size=16, color=_TARGET),
                             error_y=error, name="target"))
    ladder_max = max(a.ladder["flops"])
    fig.add_vrect(x0=ladder_max, x1=max(curve.compute), fillcolor="rgba(0,0,0,0.04)",
                  line_width=0)
    # Annotations on a log axis take log10 coordinates (shapes take data values).
    fig.add_annotation(x=math.log10(ladder_max), y=1.0, yref="paper", xanchor="left",
                       yanchor="top", showarrow=False, text=" beyond the ladder: extrapolation",
                       font=dict(color="#616161", size=12))
    fig.add_vline(x=target.compute, line=dict(color=_TARGET, dash="dash", width=1))
    fig.update_layout(title="Fitted scaling law and extrapolation to the target",
                      **{**_LAYOUT, "margin": dict(l=70, r=30, t=90, b=60)})
    fig.update_xaxes(type="log", title_text="training compute C (FLOP, log scale)",
                     exponentformat="power")
    fig.update_yaxes(title_text=_LOSS_AXIS)
    return fig


def isoflop_chart(assessment: Assessment) -> go.Figure:
    """Iso-FLOP profiles (loss over model size at fixed compute), their minima and the target."""
    fig = go.Figure()
    palette = ["#90caf9", "#64b5f6", "#42a5f5", "#1e88e5", "#1565c0", "#0d47a1", "#0a2f6b"]
    ladder_curves = [c for c in assessment.isoflops if not c.is_target]
    for i, c in enumerate(ladder_curves):
        colour = palette[min(i, len(palette) - 1)]
        fig.add_trace(go.Scatter(x=c.params, y=c.loss, mode="lines",
                                 line=dict(color=colour, width=1.5),
                                 name=f"C = {c.compute:.0e} FLOP", legendgroup=str(i)))
    flops = np.asarray(assessment.ladder["flops"], dtype=float)
    fig.add_trace(go.Scatter(x=assessment.ladder["params"], y=assessment.ladder["loss"],
                             mode="markers", marker=dict(color="#424242", size=5, opacity=0.6),
                             name="ladder runs", text=[f"{v:.0e}" for v in flops],
                             hovertemplate="N=%{x:.3g}<br>loss=%{y:.4f}<br>C=%{text} FLOP"
                                           "<extra></extra>"))
    best = sorted(assessment.isoflops, key=lambda c: c.compute)
    fig.add_trace(go.Scatter(x=[c.best_params for c in best], y=[c.best_loss for c in best],
                             mode="lines+markers", line=dict(color="#c62828", dash="dot"),
                             marker=dict(size=7), name="iso-FLOP minima (efficient frontier)"))
    for c in assessment.isoflops:
        if c.is_target:
            fig.add_trace(go.Scatter(x=c.params, y=c.loss, mode="lines",
                                     line=dict(color=_TARGET, dash="dash", width=2),
                                     name=f"target C = {c.compute:.1e} FLOP"))
    t = assessment.target
    fig.add_trace(go.Scatter(x=[t.params], y=[t.loss], mode="markers",
                             marker=dict(symbol="star", size=16, color=_TARGET),
                             name=f"target N = {t.params:.3g}"))
    # Many profiles: the legend goes to the right, where it cannot cover the title or the data.
    fig.update_layout(title="Iso-FLOP profiles and the compute-optimal model size",
                      **{**_LAYOUT, "height": 500, "margin": dict(l=70, r=20, t=60, b=60),
                         "legend": dict(orientation="v", x=1.02, y=1, font=dict(size=11))})
    fig.update_xaxes(type="log", title_text="model size N (parameters, log scale)",
                     exponentformat="power")
    fig.update_yaxes(title_text=_LOSS_AXIS)
    return fig


def walls_chart(assessment: Assessment) -> go.Figure:
    """How hard the step presses on each limit: need ÷ limit, with the limit at 1."""
    findings = [f for f in assessment.verdict.findings
                if math.isfinite(f.pressure) and f.pressure > 0]
    findings.sort(key=lambda f: f.pressure)
    fig = go.Figure(go.Bar(
        x=[f.pressure for f in findings], y=[f.title for f in findings], orientation="h",
        marker_color=[SEVERITY_COLOURS[f.severity] for f in findings],
        text=[f"{f.pressure:.2g}×" for f in findings], textposition="outside",
        hovertext=[f.message for f in findings], hoverinfo="text", name="need ÷ limit"))
    fig.add_vline(x=1.0, line=dict(color="#c62828", width=2))
    fig.add_annotation(x=0.0, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                       text="limit", font=dict(color="#c62828"))  # x = log10(1)
    values = [f.pressure for f in findings] or [1.0]
    fig.update_layout(title="Pressure on each limit: need ÷ limit (red blocks, orange is a "
                            "condition, green holds)",
                      showlegend=False, **{**_LAYOUT, "height": 120 + 40 * max(len(findings), 2)})
    fig.update_xaxes(type="log", title_text="need ÷ limit (ratio, log scale)",
                     range=[math.log10(min(min(values), 0.5) / 1.5),
                            math.log10(max(max(values), 2.0) * 2.0)])
    fig.update_yaxes(title_text="limit")
    return fig
