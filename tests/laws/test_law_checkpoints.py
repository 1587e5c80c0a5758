"""Ladders of checkpoints and seeds (Choshen et al. 2024, the Hitchhiker's guide)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.errors import InputError, ScaleguardError
from scaleguard.laws import LawFit
from scaleguard.laws._checkpoints import EARLY_FRACTION, prepare_checkpoints, seed_noise

TRUTH = {"E": 1.8, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}
GRID = {"e": (0.0, 0.5), "a": (5.0, 6.0), "b": (7.0, 8.0), "alpha": (0.3,), "beta": (0.3,)}


def _checkpoint_ladder(noise: float = 0.004, seeds: int = 2, long_run_steps: int = 200
                       ) -> pd.DataFrame:
    """Five model sizes, two seeds each, 20 checkpoints; the largest has ``long_run_steps``."""
    rng = np.random.default_rng(0)
    rows = []
    for i, n in enumerate(np.geomspace(2e7, 1e9, 5)):
        steps = long_run_steps if i == 4 else 20
        final = 20 * n
        for s in range(seeds):
            for k in range(1, steps + 1):
                d = final * k / steps
                loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH[
                    "beta"]
                rows.append({"run": f"N{i}-s{s}", "seed": s, "step": k, "params": n,
                             "tokens": d, "loss": loss * np.exp(rng.normal(0, noise))})
    return pd.DataFrame(rows)


def test_early_checkpoints_are_dropped_and_runs_weigh_the_same():
    ladder = _checkpoint_ladder()
    kept, weights, info = prepare_checkpoints(ladder, ("params", "tokens"), "loss",
                                              drop_early=0.13)
    # Below 13% of the tokens: steps 1-2 of a 20-step run, 1-25 of the 200-step run.
    assert info.n_rows == len(ladder) and info.n_kept == 8 * 18 + 2 * 175
    assert info.progress_column == "tokens" and info.drop_early == 0.13
    assert LawFit().drop_early == EARLY_FRACTION == 0.1
    per_run = pd.Series(weights).groupby(kept["run"].to_numpy()).sum()
    assert np.allclose(per_run, per_run.iloc[0]) and info.n_runs == 10
    assert weights.sum() == pytest.approx(len(kept))
    with pytest.raises(InputError, match="drop_early"):
        prepare_checkpoints(ladder, ("params", "tokens"), "loss", drop_early=1.0)


def test_seed_noise_is_the_spread_between_seeds():
    ladder = _checkpoint_ladder(noise=0.01, seeds=3)
    noise, groups = seed_noise(ladder, ["params", "tokens"], "loss")
    assert noise == pytest.approx(0.01, rel=0.1) and groups == 4 * 20 + 200
    assert seed_noise(ladder.drop_duplicates(["params", "tokens"]), ["params", "tokens"],
                      "loss") == (None, 0)


def test_a_long_run_does_not_drown_the_others():
    ladder = _checkpoint_ladder(long_run_steps=400)
    # Bias the long run: its shape would pull an unweighted fit towards itself.
    long_run = ladder["params"] == ladder["params"].max()
    ladder.loc[long_run, "loss"] *= 1.03
    fit = LawFit(form="chinchilla", starts=GRID).fit(ladder)
    flat = LawFit(form="chinchilla", starts=GRID, run="no such column").fit(ladder)
    small = ladder[~long_run]
    truth = (TRUTH["E"] + TRUTH["A"] / small["params"] ** TRUTH["alpha"]
             + TRUTH["B"] / small["tokens"] ** TRUTH["beta"])
    error_weighted = np.abs(fit.predict(small) / truth - 1).mean()
    error_flat = np.abs(flat.predict(small) / truth - 1).mean()
    assert error_weighted < error_flat
    assert fit.result_.checkpoints.n_runs == 10
    assert fit.seed_noise_ == pytest.approx(0.004, rel=0.2)
    assert fit.result_.as_dict()["checkpoints"]["n_kept"] < len(ladder)


_progress = st.one_of(st.floats(min_value=1.0, max_value=1e6), st.just(float("nan")))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _progress,
                               st.floats(min_value=0.5, max_value=10.0)), min_size=1,
                     max_size=12),
       drop=st.floats(min_value=0.0, max_value=0.9))
def test_any_checkpoint_table_fits_or_is_refused_in_one_line(rows, drop):
    frame = pd.DataFrame(rows, columns=["run", "step", "y"]).assign(x=lambda t: t["step"])
    kept, weights, info = prepare_checkpoints(frame, ("x",), "y", drop_early=drop)
    assert info.n_kept == len(kept) <= len(frame) and len(weights) == len(kept)
    assert np.all(weights > 0) and weights.sum() == pytest.approx(len(kept))
    try:
        fit = LawFit(form="power", x="x", y="y", drop_early=drop).fit(frame)
    except ScaleguardError as exc:
        assert "\n" not in str(exc)
        return
    assert np.all(np.isfinite(fit.predict({"x": [1.0, 1e7]})))
