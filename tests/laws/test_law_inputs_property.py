"""Property: any table either fits or is refused with a one-line ScaleguardError, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.errors import FitError, ScaleguardError, TableError
from scaleguard.laws import LawFit

_cells = st.one_of(
    st.floats(min_value=1e-3, max_value=1e6),
    st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xs=st.lists(_cells, min_size=1, max_size=8), ys=st.lists(_cells, min_size=1, max_size=8),
       form=st.sampled_from(["power", "saturating", "bounded", "broken", "auto"]))
def test_any_table_fits_or_is_refused_in_one_line(xs, ys, form):
    n = min(len(xs), len(ys))
    frame = pd.DataFrame({"x": xs[:n], "y": ys[:n]})
    bad_cell = not np.all(np.isfinite(frame.to_numpy()) & (frame.to_numpy() > 0))
    try:
        fit = LawFit(form=form, x="x", y="y").fit(frame)
    except ScaleguardError as exc:
        assert "\n" not in str(exc)
        if bad_cell:
            assert isinstance(exc, TableError)
        else:
            assert isinstance(exc, FitError)  # too few rows, or a single scale
        return
    assert not bad_cell
    assert np.all(np.isfinite(fit.predict({"x": frame["x"].to_numpy()})))



@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(st.tuples(st.floats(min_value=1e-3, max_value=1e12),
                                 st.floats(min_value=1e-6, max_value=1e6)),
                       min_size=2, max_size=14))
def test_auto_on_any_valid_curve_picks_a_candidate_or_refuses_in_one_line(points):
    # Every cell is valid, so only the laws can fail: too few points, a single scale, no fit.
    frame = pd.DataFrame(points, columns=["x", "y"])
    try:
        fit = LawFit(form="auto", x="x", y="y").fit(frame)
    except FitError as exc:
        assert "\n" not in str(exc)
        return
    selection = fit.result_.selection
    assert fit.result_.form == selection.best in {s.form for s in selection.scores}
    assert np.all(np.isfinite(fit.predict({"x": frame["x"].to_numpy() * 10})))


def test_inputs_beyond_float32_range_are_screened_in_float64():
    """Issue 13: a ladder scaled to ~1e297 came back at its starting values with
    converged: true, because the float32 screening pass turned every input into inf, so every
    start looked alike. Such inputs are screened in float64, where starts still differ."""
    from scaleguard.examples import synthetic_ladder
    from scaleguard.laws._families import get_law
    from scaleguard.laws._optimize import Objective

    frame = synthetic_ladder()
    law = get_law("chinchilla")
    X = frame[["params", "tokens"]].to_numpy().T * 1e287
    y = np.log(frame["loss"].to_numpy())
    screen = Objective(law, X, y, "huber", 1e-3).single_precision()
    assert screen.X.dtype == np.float64
    starts = np.array([[0.0, 5.0, 5.0, 0.3, 0.3], [1.0, 2.0, 2.0, 0.05, 0.05]])
    values, grads = screen(starts)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    assert values[0] != values[1]
    small = Objective(law, X / 1e287, y, "huber", 1e-3).single_precision()
    assert small.X.dtype == np.float32
