"""Plotly figures of a fitted law: the data, the law, its extrapolation band and the frontier.

Building the figure is pure; writing it (self-contained HTML, plotly.js inlined so that it opens
offline) is the caller's job: ``fig.write_html(path, include_plotlyjs=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from scaleguard.io import FLOPS_PER_PARAM_TOKEN
from scaleguard.laws._allocation import efficient_frontier, isoflop_curve

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from scaleguard.laws._fit import LawFit

__all__ = ["law_figure"]

_EXTRAPOLATE_DECADES: Final = 2.0  # draw the law this many decades past the largest run
_CURVE_POINTS: Final = 120
_BAND_COLOUR: Final = "rgba(31, 119, 180, 0.2)"


def _band(fit: LawFit, X: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    boot = fit.bootstrap_
    if boot is None:
        return None
    law = fit.law_
    raw = np.array([law.to_raw(dict(zip(boot.param_names, s, strict=True)))
                    for s in boot.samples])
    values = law.value(raw, X)
    values = np.exp(values) if law.log_target else values
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail], axis=0)
    return lo, hi


def law_figure(fit: LawFit, *, title: str | None = None, level: float = 0.95,
               budgets: Sequence[float] = ()) -> go.Figure:
    """A figure of ``fit``: one panel for 1-D laws, two (iso-FLOP curves, frontier) for
    laws of params and tokens.

    >>> import pandas as pd
    >>> from scaleguard.laws import LawFit
    >>> fit = LawFit(form="power", x="x", y="y").fit(pd.DataFrame({"x": [1, 10, 100],
    ...                                                           "y": [4.0, 2.0, 1.0]}))
    >>> [trace.name for trace in law_figure(fit).data]
    ['runs', 'power law']
    """
    import plotly.graph_objects as go

    law = fit.law_
    title = title or f"{law.name} law: {law.formula}"
    if law.name in ("chinchilla", "data_constrained"):
        return _ladder_figure(fit, title, level, budgets)
    x_name = law.inputs[0]
    x_data = fit.X_[0]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x_data, y=fit.y_values_, mode="markers", name="runs"))
    if len(law.inputs) == 1:
        if law.log_inputs:
            grid = np.geomspace(x_data.min(), x_data.max() * 10**_EXTRAPOLATE_DECADES,
                                _CURVE_POINTS)
        else:
            span = x_data.max() - x_data.min()
            grid = np.linspace(x_data.min() - 0.5 * span, x_data.max() + 0.5 * span,
                               _CURVE_POINTS)
        X = grid[None, :]
        band = _band(fit, X, level)
        if band is not None:
            fig.add_trace(go.Scatter(x=np.r_[grid, grid[::-1]], y=np.r_[band[1], band[0][::-1]],
                                     fill="toself", fillcolor=_BAND_COLOUR, line={"width": 0},
                                     name=f"{level:.0%} bootstrap band", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=grid, y=law.predict(fit.params_, X), mode="lines",
                                 name=f"{law.name} law"))
    log_axis = "log" if law.log_inputs else "linear"
    fig.update_layout(title=title, xaxis={"title": x_name, "type": log_axis},
                      yaxis={"title": fit.y, "type": "log" if law.log_target else "linear"},
                      template="plotly_white")
    return fig


def _ladder_figure(fit: LawFit, title: str, level: float, budgets: Sequence[float]
                   ) -> go.Figure:
    import plotly.graph_objects as pgo
    from plotly.subplots import make_subplots as subplots

    law = fit.law_
    params, tokens = fit.X_[0], fit.X_[1]
    flops = FLOPS_PER_PARAM_TOKEN * params * tokens
    fig = subplots(rows=1, cols=2, subplot_titles=("loss vs model size (iso-FLOP curves)",
                                                   "efficient frontier: loss vs compute"))
    fig.add_trace(pgo.Scatter(x=params, y=fit.y_values_, mode="markers", name="runs",
                              marker={"color": np.log10(flops), "colorscale": "Viridis",
                                      "colorbar": {"title": "log10 FLOP", "x": 0.45}},
                              text=[f"C={c:.3g}" for c in flops]), row=1, col=1)
    budget_levels = np.unique(np.round(np.log10(flops), 1))
    for level_c in budget_levels:
        c = 10**level_c
        ns = np.geomspace(params.min() / 2, params.max() * 2, _CURVE_POINTS)
        fig.add_trace(pgo.Scatter(x=ns, y=isoflop_curve(fit, c, ns), mode="lines",
                                  line={"width": 1}, name=f"C={c:.2g}", showlegend=False),
                      row=1, col=1)
    c_lo = flops.min()
    c_hi = max(flops.max() * 10**_EXTRAPOLATE_DECADES, *budgets) if budgets else \
        flops.max() * 10**_EXTRAPOLATE_DECADES
    grid = np.geomspace(c_lo, c_hi, 60)
    unique = float(np.max(fit.X_[2])) if law.name == "data_constrained" else None
    frontier = efficient_frontier(fit, grid, unique_tokens=unique)
    fig.add_trace(pgo.Scatter(x=flops, y=fit.y_values_, mode="markers", name="runs (by compute)",
                              marker={"color": "grey", "size": 5}), row=1, col=2)
    band = _band(fit, np.vstack([frontier.params, frontier.tokens] + (
        [np.full_like(grid, unique)] if unique is not None else [])), level)
    if band is not None:
        fig.add_trace(pgo.Scatter(x=np.r_[grid, grid[::-1]], y=np.r_[band[1], band[0][::-1]],
                                  fill="toself", fillcolor=_BAND_COLOUR, line={"width": 0},
                                  name=f"{level:.0%} bootstrap band", hoverinfo="skip"),
                      row=1, col=2)
    fig.add_trace(pgo.Scatter(x=grid, y=frontier.loss, mode="lines", name="compute-optimal loss",
                              text=[f"N*={n:.3g}, D*={d:.3g}" for n, d in
                                    zip(frontier.params, frontier.tokens, strict=True)]),
                  row=1, col=2)
    if budgets:
        targets = efficient_frontier(fit, budgets, unique_tokens=unique)
        fig.add_trace(pgo.Scatter(x=targets.budgets, y=targets.loss, mode="markers",
                                  marker={"symbol": "star", "size": 12}, name="target budgets",
                                  text=[f"N*={n:.3g}, D*={d:.3g}" for n, d in
                                        zip(targets.params, targets.tokens, strict=True)]),
                      row=1, col=2)
    fig.update_xaxes(type="log", title_text="params (N)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="training FLOP (C = 6ND)", row=1, col=2)
    fig.update_yaxes(type="log", title_text=fit.y, row=1, col=1)
    fig.update_yaxes(type="log", title_text=fit.y, row=1, col=2)
    fig.update_layout(title=title, template="plotly_white")
    return fig
