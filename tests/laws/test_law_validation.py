"""Held-out validation and choosing the family by it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleguard.errors import FitError, InputError, UnitError
from scaleguard.examples import synthetic_ladder
from scaleguard.laws import (
    LawFit,
    get_law,
    holdout_split,
    largest_group_split,
    parse_holdout,
    score_predictions,
    select_form,
    validate,
)


def _curve(form: str, params: dict[str, float], noise: float = 0.005, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.geomspace(10, 1e5, 24)
    y = get_law(form).predict(params, x[None, :]) * np.exp(rng.normal(0, noise, x.size))
    return pd.DataFrame({"x": x, "y": y})


def test_scores_are_mare_and_log_rmse():
    mare, log_rmse, worst = score_predictions(np.array([2.2, 1.0]), np.array([2.0, 1.0]))
    assert mare == pytest.approx(0.05)
    assert log_rmse == pytest.approx(np.sqrt(np.log(1.1) ** 2 / 2))
    assert worst == pytest.approx(0.1)


def test_parse_holdout_reads_human_quantities():
    assert parse_holdout("params=1B") == ("params", 1e9)
    assert parse_holdout(" flops = 3e20 ") == ("flops", 3e20)
    with pytest.raises(InputError, match="expected COLUMN=VALUE"):
        parse_holdout("params")
    with pytest.raises(UnitError, match="--holdout-above"):
        parse_holdout("params=lots")


def test_holdout_fits_below_and_scores_above(coarse_grid):
    ladder = synthetic_ladder(seed=0)
    split = holdout_split(ladder, "flops", 1e19)
    assert split.train["flops"].max() <= 1e19 < split.test["flops"].min()
    scores = validate(LawFit(form="chinchilla", starts=coarse_grid), ladder, split)
    assert scores.n_train == 24 and scores.n_test == 16
    # The law is right and the noise is 1%: extrapolating 10x in compute stays within ~2%.
    assert scores.mare < 0.02 and scores.log_rmse < 0.03
    assert scores.description == "flops > 1e+19"


def test_leave_largest_group_out_holds_out_the_largest_budget():
    ladder = synthetic_ladder(seed=0)
    split = largest_group_split(ladder)
    assert set(split.test["group"]) == {"C=1e+20"}
    assert len(split.train) == 32


@pytest.mark.parametrize(("call", "message"), [
    (lambda f: holdout_split(f, "flops", 1e30), "no row lies above it"),
    (lambda f: holdout_split(f, "flops", 1.0), "every row lies above it"),
    (lambda f: holdout_split(f, "gpus", 1.0), "no column 'gpus'"),
    (lambda f: largest_group_split(f.iloc[:16]), "has 2 groups; need at least 3"),
    (lambda f: largest_group_split(f.drop(columns="group")), "no column 'group'"),
])
def test_bad_splits_are_refused(call, message):
    with pytest.raises(InputError, match=message):
        call(synthetic_ladder(seed=0))


def test_auto_picks_the_family_that_predicts_held_out_runs():
    saturating = _curve("saturating", {"E": 1.5, "A": 6.0, "alpha": 0.5})
    power = _curve("power", {"A": 30.0, "alpha": 0.25})
    fit = LawFit(form="auto", x="x", y="y", forms=["power", "saturating"]).fit(saturating)
    assert fit.result_.form == "saturating"
    assert fit.result_.selection.best == "saturating"
    chosen = select_form(power, LawFit(x="x", y="y"), forms=["power", "saturating"],
                         criterion="log_rmse")
    # Both describe a pure power law (E -> 0). The floor-free law keeps the pick only by
    # beating the saturating law at every origin; else the law with the floor gets it, and says
    # why (the module's rule 3: a floor the data do not support costs little).
    scores = {s.form: s.log_rmse for s in chosen.scores}
    assert chosen.best == min(scores, key=scores.__getitem__) or (
        chosen.best == "saturating" and chosen.rule == "floor"
        and "the same law without a floor" in chosen.reason)
    assert chosen.as_dict()["criterion"] == "log_rmse"


def test_auto_on_a_ladder_reports_candidates_that_cannot_fit(coarse_grid):
    ladder = synthetic_ladder(seed=0)
    fit = LawFit(form="auto", forms=["chinchilla", "data_constrained"],
                 starts=coarse_grid).fit(ladder)
    assert fit.result_.form == "chinchilla"
    assert "data_constrained" in fit.result_.selection.failed
    assert "unique_tokens" in fit.result_.selection.failed["data_constrained"]


def test_auto_with_no_usable_candidate_and_bad_criterion():
    tiny = _curve("power", {"A": 3.0, "alpha": 0.5}).iloc[:5]
    with pytest.raises(FitError, match="no candidate"):
        LawFit(form="auto", x="x", y="y", forms=["broken"]).fit(tiny)
    with pytest.raises(InputError, match="criterion"):
        select_form(tiny, LawFit(x="x", y="y"), criterion="r2")
