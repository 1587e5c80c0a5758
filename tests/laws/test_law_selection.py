"""``form="auto"``: rolling-origin selection, its guards and the one-standard-error rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaleguard.examples import synthetic_ladder
from scaleguard.laws import FormBacktest, LawFit, get_law, holdout_split, rolling_origins, validate
from scaleguard.laws._selection import (
    BEND_OVERRIDE_P,
    BOUNDED_P_VALUE,
    BREAK_P_VALUE,
    ONE_D_FORMS,
    PLATEAU_OVERRIDE_P,
    _floored_choice,
    _guards,
    _one_se_choice,
    _overruled,
    _rejections,
    candidate_forms,
    guard,
    left_out_forms,
    nested_p_value,
    nested_rejection,
)


def _issue_curve(seed: int) -> pd.DataFrame:
    """Issue #17's reproduction: 11 points of y = 1.5 + 30 x^-0.25, 0.3% noise."""
    rng = np.random.default_rng(seed)
    x = 5e5 * 2.0 ** np.arange(11)  # 5e5 ... 5.12e8, exactly
    return pd.DataFrame({"x": x, "y": (1.5 + 30 * x**-0.25) * np.exp(rng.normal(0, 0.003, 11))})


def test_issue_reproduction_auto_errs_no_more_than_saturating_and_says_why():
    curve = _issue_curve(0)
    split = holdout_split(curve, "x", 2.56e8)  # fit on 10 points, predict the 11th
    fixed = validate(LawFit(form="saturating", x="x", y="y"), curve, split)
    fit = LawFit(form="auto", x="x", y="y").fit(split.train)
    auto_error = abs(fit.predict(split.test)[0] / split.test["y"].iloc[0] - 1)
    assert auto_error <= 1.1 * fixed.mare
    selection = fit.result_.selection
    assert "6 parameters for 10 points; needs at least 12" in selection.excluded["broken"]
    assert fit.result_.form == selection.best != "broken"
    assert len(selection.origins) == 4 and selection.origins[0] == f"x > {1.28e8:g}"
    assert "not eligible: " in selection.reason
    assert "broken (6 parameters for 10 points" in selection.reason
    every = selection.as_dict()
    assert {s["form"] for s in every["scores"]} == set(ONE_D_FORMS)
    assert all(len(s["origin_mare"]) == 4 for s in every["scores"])
    assert sum(every["weights"].values()) == pytest.approx(1.0)
    assert "broken" not in every["weights"]


def test_a_real_bend_on_a_long_curve_earns_the_broken_law():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e9, 30)
    truth = {"E": 0.5, "B": 20.0, "c0": 0.05, "c1": 0.25, "d1": 1e6, "f1": 0.5}
    y = get_law("broken").predict(truth, x[None, :]) * np.exp(rng.normal(0, 0.003, x.size))
    curve = pd.DataFrame({"x": x, "y": y})
    fit = LawFit(form="auto", x="x", y="y").fit(curve)
    assert fit.result_.form == "broken"
    assert fit.result_.selection.rule == "lowest"


def test_rolling_origins_roll_over_a_ladder_s_budget_groups():
    ladder = synthetic_ladder(seed=0)  # 5 budgets, 8 runs each
    origins = rolling_origins(ladder, "flops")
    assert [len(s.test) for s in origins] == [8, 16]  # the earliest still fits on 3 budgets
    assert origins[0].description == "group median flops > 3e+19"
    assert rolling_origins(ladder.iloc[:16], "flops", min_train_rows=6) == ()


def _backtest(form: str, n_params: int, errors: list[float]) -> FormBacktest:
    empty = np.zeros(0)
    return FormBacktest(form, n_params, tuple(errors), tuple(errors), empty, empty,
                        empty.astype(int))


def test_one_standard_error_rule_prefers_the_simpler_law_unless_the_complex_wins_throughout():
    simple = _backtest("saturating", 3, [0.010, 0.004, 0.012, 0.006])
    noisy_winner = _backtest("broken", 6, [0.002, 0.009, 0.003, 0.010])  # wins on average
    assert _one_se_choice(noisy_winner, [simple, noisy_winner], "mare") is simple
    steady_winner = _backtest("broken", 6, [0.008, 0.003, 0.010, 0.005])  # wins at every origin
    assert _one_se_choice(steady_winner, [simple, steady_winner], "mare") is None
    # The simplest law loses to the middle one at every origin: the middle one gets it, not the
    # simplest merely because the most complex law was noisy.
    power = _backtest("power", 2, [0.030, 0.020, 0.050, 0.040])
    assert _one_se_choice(noisy_winner, [power, simple, noisy_winner], "mare") is simple
    one_origin = _backtest("broken", 6, [0.001])
    assert _one_se_choice(one_origin, [_backtest("power", 2, [0.5]), one_origin], "mare") is None


def test_a_law_nested_in_an_eligible_one_is_not_preferred_as_the_simpler():
    # power is saturating with no floor: when nothing beats it consistently it still does not
    # get the pick from the saturating law it is nested in; it gets it only by lowest error.
    power = _backtest("power", 2, [0.004, 0.003, 0.060, 0.090])  # nor beats, nor is beaten
    floor = _backtest("saturating", 3, [0.015, 0.020, 0.036, 0.026])
    noisy_winner = _backtest("broken", 6, [0.002, 0.040, 0.005, 0.050])
    assert _one_se_choice(noisy_winner, [power, floor, noisy_winner], "mare") is floor
    assert _one_se_choice(floor, [power, floor], "mare") is None  # as the lowest, it stands
    # Without the law it is nested in, power is the simpler law again.
    assert _one_se_choice(noisy_winner, [power, noisy_winner], "mare") is power


def test_guard_flags_a_parameter_on_its_bound():
    x = np.geomspace(10, 1e5, 20)
    rising = pd.DataFrame({"x": x, "y": 2.0 + 0.1 * np.log(x)})  # a falling law: alpha -> 0
    assert guard(LawFit(form="saturating", x="x", y="y").fit(rising)) == "alpha on a bound"
    assert guard(LawFit(form="power", x="x", y="y").fit(rising)) is None


def test_a_power_law_the_data_reject_against_the_saturating_law_is_not_eligible():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e6, 1e9, 12)
    noise = np.exp(rng.normal(0, 0.003, x.size))
    floor = pd.DataFrame({"x": x, "y": (1.7 + 40 * x**-0.3) * noise})
    no_floor = pd.DataFrame({"x": x, "y": 40 * x**-0.08 * noise})
    fits = {form: LawFit(form=form, x="x", y="y").fit(floor) for form in ("power", "saturating")}
    assert "rejected in sample by the saturating law" in nested_rejection(
        fits["power"], fits["saturating"])
    plain = {form: LawFit(form=form, x="x", y="y").fit(no_floor)
             for form in ("power", "saturating")}
    assert nested_rejection(plain["power"], plain["saturating"]) is None


def test_a_floor_free_law_gives_the_pick_to_the_eligible_floored_law():
    floor = _backtest("saturating", 3, [0.010, 0.004, 0.012, 0.006])
    lucky = _backtest("power", 2, [0.004, 0.006, 0.003, 0.009])  # lower on average only
    assert _floored_choice(lucky, [lucky, floor]) is floor
    steady = _backtest("power", 2, [0.008, 0.003, 0.010, 0.005])  # lower at every origin
    assert _floored_choice(steady, [steady, floor]) is floor
    assert _floored_choice(lucky, [lucky]) is None  # no floored law to prefer
    assert _floored_choice(floor, [lucky, floor]) is None  # it has its floor


def test_the_data_reject_a_law_without_a_bend_against_the_broken_law_on_a_long_curve():
    rng = np.random.default_rng(4)
    x = np.geomspace(1e6, 1e9, 32)
    truth = {"E": 1.5, "B": 30.0, "c0": 0.1, "c1": 0.3, "d1": 3e7, "f1": 0.5}
    bent = get_law("broken").predict(truth, x[None, :]) * np.exp(rng.normal(0, 0.003, x.size))
    fit = LawFit(form="auto", x="x", y="y").fit(pd.DataFrame({"x": x, "y": bent}))
    excluded = fit.result_.selection.excluded
    assert "rejected in sample by the broken law" in excluded["saturating"]
    assert fit.result_.form == "broken"
    straight = (1.5 + 30.0 * x**-0.3) * np.exp(rng.normal(0, 0.003, x.size))
    fits = {form: LawFit(form=form, x="x", y="y").fit(pd.DataFrame({"x": x, "y": straight}))
            for form in ("saturating", "broken")}
    assert nested_rejection(fits["saturating"], fits["broken"]) is None


def test_a_strong_bend_overrules_the_broken_laws_break_guards_and_a_straight_curve_does_not():
    # A sharp break (f1 at its lower bound) on 30 points: the guard flags log_f1, but the data
    # reject the saturating law against the broken one far beyond BEND_OVERRIDE_P.
    rng = np.random.default_rng(2)
    x = np.geomspace(1e6, 1e9, 30)
    truth = {"E": 1.0, "B": 30.0, "c0": 0.05, "c1": 0.4, "d1": 3e7, "f1": 0.01}
    bent = get_law("broken").predict(truth, x[None, :]) * np.exp(rng.normal(0, 0.003, x.size))
    fits = {form: LawFit(form=form, x="x", y="y").fit(pd.DataFrame({"x": x, "y": bent}))
            for form in ("saturating", "broken")}
    assert guard(fits["broken"]) == "log_f1 on a bound"
    assert nested_p_value(fits["saturating"], fits["broken"]) < BEND_OVERRIDE_P["on_bound"]
    assert _guards(fits)[0] == {}
    straight = (1.5 + 30.0 * x**-0.3) * np.exp(rng.normal(0, 0.003, x.size))
    plain = {form: LawFit(form=form, x="x", y="y").fit(pd.DataFrame({"x": x, "y": straight}))
             for form in ("saturating", "broken")}
    assert guard(plain["broken"]) == "log_f1 on a bound"  # and no bend to overrule it
    assert _guards(plain) == ({"broken": "log_f1 on a bound"}, set())  # a break never yields


def test_a_special_case_of_a_rejected_law_is_rejected_with_it(monkeypatch):
    # The F test of power against broken has more degrees of freedom than saturating's and
    # can miss a bend that rejects saturating; power fits no better than saturating, so the
    # rejection holds for it too. The p-values are set here to isolate that rule.
    x = np.geomspace(1e6, 1e9, 26)
    table = pd.DataFrame({"x": x, "y": 1.5 + 30.0 * x**-0.3})
    fits = {form: LawFit(form=form, x="x", y="y").fit(table)
            for form in ("power", "saturating", "broken")}
    p_values = {("power", "saturating"): 0.5, ("power", "broken"): 0.002,
                ("saturating", "broken"): 1e-4}
    monkeypatch.setattr("scaleguard.laws._selection.nested_p_value",
                        lambda simple, general: p_values[simple.law_.name, general.law_.name])
    rejected = _rejections(fits, {})
    assert "rejected in sample by the broken law" in rejected["saturating"]
    assert rejected["power"] == "a special case of the saturating law, which the data reject"
    p_values["saturating", "broken"] = 0.01  # no bend: neither is rejected
    assert _rejections(fits, {}) == {}
    p_values["saturating", "broken"] = 1e-4  # a guarded broken law rejects nothing
    assert _rejections(fits, {"broken": "its break lies outside the data"}) == {}


def _training_curves(seed: int, sizes: int = 6) -> pd.DataFrame:
    """A ladder of training curves: checkpoints of each run on a Chinchilla law, with a
    learning-rate-schedule excess mid-run that vanishes at the run's end."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.geomspace(2e7, 2e9, sizes)):
        tokens = np.geomspace(0.02, 1.0, 16) * 20 * n
        share = tokens / tokens[-1]
        loss = (1.8 + 400 / n**0.34 + 1500 / tokens**0.3) * \
            (1 + 0.03 * np.sin(np.pi * share) ** 2 * (1 - share))
        rows.append(pd.DataFrame({"run": f"r{i}", "params": n, "tokens": tokens,
                                  "flops": 6 * n * tokens,
                                  "loss": loss * np.exp(rng.normal(0, 0.003, tokens.size))}))
    return pd.concat(rows, ignore_index=True)


def test_a_ladder_of_training_curves_is_backtested_by_model_and_not_by_compute_alone():
    ladder = _training_curves(0)
    # Kaplan et al. 2020: a loss of compute alone is the frontier, not any run's checkpoint.
    assert candidate_forms(ladder, None) == ("chinchilla",)
    assert candidate_forms(ladder.groupby("run").tail(1), None) == \
        ("chinchilla", "power", "saturating")  # final points only: the frontier laws compete
    assert left_out_forms(ladder.groupby("run").tail(1), None) == {}
    assert candidate_forms(ladder, "flops") == ("power", "saturating", "bounded", "broken")
    fit = LawFit(form="auto").fit(ladder[ladder["params"] < 2e9])
    selection = fit.result_.selection
    assert selection.best == "chinchilla"
    # The reason does not hide the laws it never fitted (and explicit forms leave none out).
    assert set(selection.left_out) == {"power", "saturating"}
    assert "not compared: power (a law of compute alone" in selection.reason
    assert selection.as_dict()["left_out"] == selection.left_out
    # Each origin holds out the largest models' whole runs, as --holdout-above params= does.
    assert selection.origins[0] == f"params > {ladder['params'].unique()[-3]:g}"
    assert all(o.startswith("params > ") for o in selection.origins)
    # Given compute laws as candidates explicitly, auto still rolls over models and they lose.
    explicit = LawFit(form="auto", forms=("chinchilla", "power", "saturating")).fit(ladder)
    assert explicit.result_.selection.best == "chinchilla"
    assert explicit.result_.selection.left_out == {}
    held = holdout_split(ladder, "params", float(ladder["params"].unique()[-2]))
    scores = {form: validate(LawFit(form=form), ladder, held).mare
              for form in ("chinchilla", "saturating", "auto")}
    assert scores["auto"] == scores["chinchilla"] < scores["saturating"] / 2


def test_the_backtest_overrules_a_bound_guard_only_for_a_law_that_beats_every_rival():
    # A chinchilla fit whose beta ends on its bound (every run saw the same tokens) still
    # predicted the next model 4-10x better than the laws of compute alone at every origin.
    excluded = {"chinchilla": "beta on a bound", "broken": "log_f1 on a bound"}
    chinchilla = _backtest("chinchilla", 5, [0.013, 0.016, 0.013, 0.016])
    rivals = [_backtest("power", 2, [0.068, 0.116, 0.186, 0.271]),
              _backtest("saturating", 3, [0.068, 0.116, 0.183, 0.264])]
    backtests = {b.form: b for b in [chinchilla, *rivals]}
    backtests["broken"] = _backtest("broken", 6, [0.001, 0.001, 0.001, 0.001])
    assert _overruled({"chinchilla"}, excluded, backtests, rivals, "mare") == \
        {"chinchilla": "beta on a bound"}
    # Not when one rival is as good at some origins; never without a rival to beat.
    mixed = [rivals[0], _backtest("saturating", 3, [0.010, 0.020, 0.012, 0.018])]
    assert _overruled({"chinchilla"}, excluded, backtests, mixed, "mare") == {}
    assert _overruled({"chinchilla"}, excluded, backtests, [], "mare") == {}
    assert _overruled(set(), excluded, backtests, rivals, "mare") == {}  # broken never yields


def _bounded_curve(n: int, seed: int, noise: float = 0.005) -> pd.DataFrame:
    """An error rate falling from a plateau near chance (U = 0.8) to a floor (E = 0.1)."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    truth = {"E": 0.1, "U": 0.8, "x0": 2e7, "alpha": 0.9}
    y = get_law("bounded").predict(truth, x[None, :]) * np.exp(rng.normal(0, noise, n))
    return pd.DataFrame({"x": x, "y": y})


def _fits(table: pd.DataFrame, forms: tuple[str, ...]) -> dict:
    return {form: LawFit(form=form, x="x", y="y").fit(table) for form in forms}


def test_the_plateau_a_short_curve_starts_on_lifts_the_bounded_laws_points_guard():
    # Seven points, four parameters: the points guard alone would leave the bounded law out,
    # and the saturating law would fit the plateau with the wrong slope.
    fits = _fits(_bounded_curve(7, 0), ("saturating", "bounded"))
    assert guard(fits["bounded"]).startswith("4 parameters for 7 points")
    assert nested_p_value(fits["saturating"], fits["bounded"]) < PLATEAU_OVERRIDE_P
    excluded = _guards(fits)[0]
    assert "bounded" not in excluded
    assert "rejected in sample by the bounded law" in _rejections(fits, excluded)["saturating"]
    # Without a plateau in the data the guard stands.
    x = np.geomspace(1e6, 1e9, 7)
    straight = pd.DataFrame({"x": x, "y": (0.1 + 30.0 * x**-0.3) * np.exp(
        np.random.default_rng(1).normal(0, 0.005, 7))})
    plain = _fits(straight, ("saturating", "bounded"))
    assert _guards(plain)[0]["bounded"].startswith("4 parameters for 7 points")


def test_auto_takes_the_bounded_law_on_a_plateau_and_not_where_the_curve_falls_before_its_bend():
    fit = LawFit(form="auto", x="x", y="y").fit(_bounded_curve(30, 2))
    selection = fit.result_.selection
    assert selection.excluded["saturating"].startswith("rejected in sample by the b")
    assert fit.result_.form == "bounded" and "bounded" not in selection.excluded
    # A broken law that already falls (c0 = 0.05) before it steepens: the bounded law forces
    # that early part flat. The evidence is moderate (0.6% noise): the strict level of a law
    # without a bend would keep the bounded law, the conventional 5% rejects it.
    rng = np.random.default_rng(4)
    x = np.geomspace(1e6, 1e9, 30)
    truth = {"E": 1.0, "B": 1.0, "c0": 0.05, "c1": 0.3, "d1": 3e7, "f1": 0.5}
    law = get_law("broken")
    truth["B"] = 0.8 / (law.predict(truth, x[None, :1])[0] - 1.0)
    bent = law.predict(truth, x[None, :]) * np.exp(rng.normal(0, 0.006, x.size))
    fits = _fits(pd.DataFrame({"x": x, "y": bent}), ("bounded", "broken"))
    assert BREAK_P_VALUE < nested_p_value(fits["bounded"], fits["broken"]) < BOUNDED_P_VALUE
    assert "rejected in sample by the broken law" in _rejections(fits, {})["bounded"]
