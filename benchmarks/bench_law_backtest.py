"""Backtest of law selection: each fixed form, ``auto`` and the ensemble, side by side.

Every curve is split once: the largest 20% of its points (at least two) are held out, each
method is fitted on the rest and scored by its mean absolute relative error (MARE) on the held-
out points, as ``scaleguard fit --holdout-above`` scores it. ``auto`` runs its whole procedure
(rolling origins, guards, one-standard-error rule) on the training part only. The coverage
column is the share of held-out points inside auto's 90% prediction interval (and the
ensemble's), which should be within 10 points of 90%.

Groups of curves (the selection rule's constants were set from first principles, not tuned on
any of them; the synthetic draws use their own seeds):

- ``short`` / ``short+bend`` / ``long`` / ``long+bend``: synthetic curves, 8-12 or 30-40
  points over 2.5-4 decades, 0.2-1% log-normal noise, the truth a saturating law
  ``E + A x^-alpha`` or a broken law with one bend inside the data.
- ``short+plateau`` / ``long+plateau``: error-rate curves that fall from a plateau near chance
  (0.5-0.95) towards a floor, drawn from Alabdulmohsin, Neyshabur & Zhai 2022's M4 law
  ``(y - E)/(U - y)^a = (x/x_m)^-c`` with ``a`` in 0.5-2 (1 is the ``bounded`` law's case;
  other values are not a law auto has), the midpoint from below the data to mid-way through
  it, and the 0.5-2% noise of a downstream metric.
- ``published laws``: loss curves regenerated from published fits with 0.5% noise: Chinchilla's
  Approach 3 law (Hoffmann et al. 2022, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28) along
  its compute-optimal frontier, Kaplan et al. 2020's L(N) = (N/8.8e13)^-0.076 and
  L(D) = (D/5.4e13)^-0.095, and the replication's refit (Besiroglu et al. 2024, E=1.82,
  A=482.0, B=2085.4, alpha=0.348, beta=0.366) at 20 tokens per parameter. Formulas are facts;
  no data is copied.
- ``ladder, tokens/param`` / ``ladder, same tokens``: synthetic LLM training curves, 5-8 model
  sizes of one family, 12-30 checkpoints a run from 2% of its tokens to its end, some sizes with
  2-3 seeds (0.4% run-to-run offset, 0.3% per checkpoint), the truth a Chinchilla law with
  drawn parameters plus a learning-rate-schedule excess mid-run that vanishes at each run's end
  (up to 3%, and up to 8% where every size sees the same tokens, as in Pythia-style suites).
  The largest model is held out whole, as ``--holdout-above params=`` holds it out; forms
  chinchilla, power and saturating along FLOP.
- ``chinchilla points`` (only when ``../shared/data/chinchilla_svg_extracted.csv`` is present; it
  is not shipped): the 240 points Epoch AI extracted from Hoffmann et al.'s Figure 4
  (published with Besiroglu et al. 2024), runs above the 80th percentile of FLOP held out,
  forms chinchilla, power and saturating along FLOP.

    .venv/bin/python benchmarks/bench_law_backtest.py [--curves 6] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scaleguard.errors import ScaleguardError  # noqa: E402
from scaleguard.io import read_ladder  # noqa: E402
from scaleguard.laws import LawFit, get_law, holdout_split  # noqa: E402
from scaleguard.laws._forecast import ensemble, error_model, law_interval  # noqa: E402
from scaleguard.laws._selection import ONE_D_FORMS  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_svg_extracted.csv"
HOLDOUT_SHARE = 0.2
LEVEL = 0.9
LADDER_FORMS = ("chinchilla", "power", "saturating")


@dataclass
class Curve:
    group: str
    name: str
    frame: pd.DataFrame
    x: str | None  # None: a ladder (chinchilla law of params and tokens)
    y: str
    holdout: str | None = None  # hold out the largest value of this column whole


@dataclass
class GroupScores:
    errors: dict[str, list[float]] = field(default_factory=dict)
    inside: dict[str, list[bool]] = field(default_factory=dict)
    picks: list[str] = field(default_factory=list)

    def add(self, method: str, error: float) -> None:
        self.errors.setdefault(method, []).append(error)


def _noisy(rng: np.random.Generator, y: np.ndarray, sd: float) -> np.ndarray:
    return y * np.exp(rng.normal(0.0, sd, y.size))


def synthetic_curves(n_curves: int, seed: int) -> list[Curve]:
    rng = np.random.default_rng(seed)
    curves = []
    for group, sizes, bend in (("short", (8, 12), False), ("short+bend", (8, 12), True),
                               ("long", (30, 40), False), ("long+bend", (30, 40), True)):
        for i in range(n_curves):
            n = int(rng.integers(sizes[0], sizes[1] + 1))
            decades = rng.uniform(2.5, 4.0)
            x = np.geomspace(1e6, 1e6 * 10**decades, n)
            floor = rng.uniform(1.0, 3.0)
            if bend:
                lx = np.log(x)
                d1 = float(np.exp(rng.uniform(np.quantile(lx, 0.3), np.quantile(lx, 0.6))))
                c0 = rng.uniform(0.05, 0.2)
                c1 = rng.uniform(-0.8 * c0, 0.3)  # flattens (c1 < 0) or steepens after d1
                law = get_law("broken")
                params = {"E": floor, "B": 1.0, "c0": c0, "c1": c1, "d1": d1,
                          "f1": rng.uniform(0.2, 1.0)}
                raw = law.predict(params, x[None, :]) - floor
                params["B"] = rng.uniform(0.3, 1.0) * floor / raw[0]
                y = law.predict(params, x[None, :])
            else:
                alpha = rng.uniform(0.1, 0.5)
                scale = rng.uniform(0.3, 1.0) * floor * x[0] ** alpha
                y = floor + scale * x**-alpha
            curves.append(Curve(group, f"{group}-{i}", pd.DataFrame(
                {"x": x, "y": _noisy(rng, y, rng.uniform(0.002, 0.01))}), "x", "y"))
    return curves


def _m4(x: np.ndarray, floor: float, top: float, a: float, c: float, x_mid: float
        ) -> np.ndarray:
    """Alabdulmohsin et al. 2022's M4 curve, solved for y by bisection (its left side grows
    with y between the floor and the top)."""
    target = (x / x_mid) ** -c
    low, high = np.full(x.shape, floor), np.full(x.shape, top)
    for _ in range(200):  # 200 halvings of a gap below 1 reach the floats' resolution
        y = 0.5 * (low + high)
        above = (y - floor) / (top - y) ** a > target
        high, low = np.where(above, y, high), np.where(above, low, y)
    return 0.5 * (low + high)


def plateau_curves(n_curves: int, seed: int) -> list[Curve]:
    rng = np.random.default_rng(seed + 3)  # its own stream: the other groups' draws stay put
    curves = []
    for group, sizes in (("short+plateau", (8, 12)), ("long+plateau", (30, 40))):
        for i in range(n_curves):
            n = int(rng.integers(sizes[0], sizes[1] + 1))
            x = np.geomspace(1e6, 1e6 * 10 ** rng.uniform(2.5, 4.0), n)
            top = rng.uniform(0.5, 0.95)
            floor = top * rng.uniform(0.05, 0.4)
            x_mid = float(np.exp(rng.uniform(np.log(x[0]) - 2.0, np.quantile(np.log(x), 0.5))))
            y = _m4(x, floor, top, rng.uniform(0.5, 2.0), rng.uniform(0.2, 1.0), x_mid)
            curves.append(Curve(group, f"{group}-{i}", pd.DataFrame(
                {"x": x, "y": _noisy(rng, y, rng.uniform(0.005, 0.02))}), "x", "y"))
    return curves


def published_curves(seed: int) -> list[Curve]:
    rng = np.random.default_rng(seed + 1)
    out = []
    hoffmann = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    a, b = hoffmann["alpha"], hoffmann["beta"]
    c = np.geomspace(1e18, 1e23, 11)
    g = (a * hoffmann["A"] / (b * hoffmann["B"])) ** (1 / (a + b))
    n_opt = g * (c / 6) ** (b / (a + b))
    d_opt = c / (6 * n_opt)
    loss = hoffmann["E"] + hoffmann["A"] / n_opt**a + hoffmann["B"] / d_opt**b
    out.append(Curve("published laws", "hoffmann-frontier", pd.DataFrame(
        {"x": c, "y": _noisy(rng, loss, 0.005)}), "x", "y"))
    n = np.geomspace(1e6, 1e10, 10)
    out.append(Curve("published laws", "kaplan-L(N)", pd.DataFrame(
        {"x": n, "y": _noisy(rng, (n / 8.8e13) ** -0.076, 0.005)}), "x", "y"))
    d = np.geomspace(1e8, 1e11, 10)
    out.append(Curve("published laws", "kaplan-L(D)", pd.DataFrame(
        {"x": d, "y": _noisy(rng, (d / 5.4e13) ** -0.095, 0.005)}), "x", "y"))
    refit = {"E": 1.82, "A": 482.0, "B": 2085.4, "alpha": 0.348, "beta": 0.366}
    n = np.geomspace(5e7, 5e9, 12)
    loss = refit["E"] + refit["A"] / n ** refit["alpha"] + refit["B"] / (20 * n) ** refit["beta"]
    out.append(Curve("published laws", "besiroglu-20tpp", pd.DataFrame(
        {"x": 6 * n * 20 * n, "y": _noisy(rng, loss, 0.005)}), "x", "y"))
    return out


def _training_ladder(rng: np.random.Generator, same_tokens: bool) -> pd.DataFrame:
    law = {"E": rng.uniform(1.6, 2.2), "A": rng.uniform(200, 600), "B": rng.uniform(300, 2500),
           "alpha": rng.uniform(0.28, 0.4), "beta": rng.uniform(0.26, 0.38)}
    sizes = np.geomspace(rng.uniform(1e7, 5e7), rng.uniform(5e8, 3e9), int(rng.integers(5, 9)))
    schedule = rng.uniform(0.0, 0.08 if same_tokens else 0.03)
    rows = []
    for i, n in enumerate(sizes):
        final = 3e11 if same_tokens else rng.uniform(10, 40) * n
        for s in range(1 if rng.random() < 0.6 else int(rng.integers(2, 4))):
            tokens = np.geomspace(0.02 * final, final, int(rng.integers(12, 31)))
            share = tokens / final
            loss = law["E"] + law["A"] / n ** law["alpha"] + law["B"] / tokens ** law["beta"]
            loss = loss * (1 + schedule * np.sin(np.pi * share) ** 2 * (1 - share))
            loss = _noisy(rng, loss * np.exp(rng.normal(0.0, 0.004)), 0.003)
            rows.append(pd.DataFrame({"run": f"n{i}-s{s}", "params": n, "tokens": tokens,
                                      "flops": 6 * n * tokens, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def ladder_curves(n_curves: int, seed: int) -> list[Curve]:
    rng = np.random.default_rng(seed + 2)  # its own stream: the 1-D groups' draws stay put
    return [Curve(f"ladder, {kind}", f"{kind}-{i}", _training_ladder(rng, same), None, "loss",
                  holdout="params")
            for kind, same in (("tokens/param", False), ("same tokens", True))
            for i in range(n_curves)]


def chinchilla_curve() -> list[Curve]:
    if not SHARED.is_file():
        return []
    ladder = read_ladder(SHARED, ["params=Model Size", "flops=Training FLOP"])
    ladder = ladder.sort_values("loss").iloc[:-5].reset_index(drop=True)
    return [Curve("chinchilla points", "hoffmann-fig4", ladder, None, "loss")]


def _split(curve: Curve):
    if curve.holdout is not None:
        sizes = np.unique(curve.frame[curve.holdout].to_numpy())
        return holdout_split(curve.frame, curve.holdout, float(sizes[-2]))
    scale = curve.x or "flops"
    values = curve.frame[scale].to_numpy()
    n_test = max(2, int(round(HOLDOUT_SHARE * len(values))))
    threshold = float(np.sort(values)[len(values) - n_test - 1])
    return holdout_split(curve.frame, scale, threshold)


def _mare(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted / actual - 1)))


def score_curve(curve: Curve, scores: GroupScores) -> None:
    split = _split(curve)
    actual = split.test[curve.y].to_numpy(dtype=float)
    forms: Sequence[str] = ONE_D_FORMS if curve.x else LADDER_FORMS
    for form in forms:
        try:
            fit = LawFit(form=form, x=curve.x if form != "chinchilla" else None,
                         y=curve.y).fit(split.train)
            scores.add(form, _mare(fit.predict(split.test), actual))
        except ScaleguardError:
            scores.add(form, np.nan)
    auto = LawFit(form="auto", x=curve.x, y=curve.y).fit(split.train)
    scores.picks.append(auto.law_.name)
    estimate = auto.predict(split.test)
    scores.add("auto", _mare(estimate, actual))
    model = error_model(auto, split.train, LEVEL)
    _, low, high, _ = law_interval(auto, model, split.test)
    scores.inside.setdefault("auto", []).extend((low <= actual) & (actual <= high))
    mix = ensemble(auto, split.train, split.test, LEVEL)
    scores.add("ensemble", _mare(mix.estimate, actual))
    scores.inside.setdefault("ensemble", []).extend((mix.lower <= actual) &
                                                    (actual <= mix.upper))


def _cell(value: float | None) -> str:
    if value is None:
        return f"{'-':>11}"
    return f"{value:>11.3f}" if value < 1e5 else f"{value:>11.2e}"  # a wild miss stays narrow


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=6, help="synthetic curves per group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups", default="", help="only the groups whose name contains "
                        "this text (e.g. ladder); every group by default")
    args = parser.parse_args(argv)
    curves = synthetic_curves(args.curves, args.seed) + plateau_curves(args.curves, args.seed) \
        + published_curves(args.seed) + ladder_curves(args.curves, args.seed) + \
        chinchilla_curve()
    curves = [c for c in curves if args.groups in c.group]
    groups: dict[str, GroupScores] = {}
    start = time.perf_counter()
    for curve in curves:
        score_curve(curve, groups.setdefault(curve.group, GroupScores()))
    methods = [*ONE_D_FORMS, "chinchilla", "auto", "ensemble"]
    print(f"held-out MARE (%), largest {HOLDOUT_SHARE:.0%} of each curve held out; "
          f"coverage of the {LEVEL:.0%} interval")
    header = f"{'group':<21}{'n':>3}" + "".join(f"{m:>11}" for m in methods) + \
        f"{'cov auto':>10}{'cov ens':>9}  auto vs best fixed"
    print(header)
    verdicts, all_best, all_auto = [], [], []
    for name, g in groups.items():
        means = {m: float(np.nanmean(g.errors[m])) * 100 for m in methods if m in g.errors}
        fixed = {m: v for m, v in means.items() if m not in ("auto", "ensemble")}
        best = min(fixed, key=fixed.__getitem__)
        ratio = means["auto"] / fixed[best]
        verdicts.append(ratio <= 1.1)
        all_best.append(fixed)
        all_auto.append(means["auto"])
        cells = "".join(_cell(means.get(m)) for m in methods)
        cov = {k: float(np.mean(v)) * 100 for k, v in g.inside.items()}
        print(f"{name:<21}{len(g.picks):>3}{cells}{cov['auto']:>9.0f}%{cov['ensemble']:>8.0f}%"
              f"  {ratio:.2f}x {best}")
    one_d = [f for f in all_best if "broken" in f]
    if one_d:
        mean_fixed = {m: float(np.mean([f[m] for f in one_d])) for m in ONE_D_FORMS}
        mean_auto = float(np.mean([a for a, f in zip(all_auto, all_best, strict=True)
                                   if "broken" in f]))
        print(f"1-D groups, mean over groups: auto {mean_auto:.3f}% vs best fixed form "
              f"{min(mean_fixed.values()):.3f}% "
              f"({min(mean_fixed, key=mean_fixed.__getitem__)})")
    print(f"auto within +10% of the best fixed form on every group: {all(verdicts)}")
    # The ladders' held-out models hold 12-90 checkpoints each: pooled with the curves' few
    # held-out points they would decide the overall figure alone, so each is reported apart.
    for label, chosen in (("curves", [g for k, g in groups.items() if not k.startswith("ladder")]),
                          ("ladders", [g for k, g in groups.items() if k.startswith("ladder")])):
        if chosen:
            inside = np.concatenate([g.inside["auto"] for g in chosen])
            print(f"overall coverage of auto's {LEVEL:.0%} interval, {label}: "
                  f"{inside.mean():.0%} of {inside.size} held-out points")
    print("auto's picks: " + ", ".join(f"{k} {dict(pd.Series(g.picks).value_counts())}"
                                       for k, g in groups.items()))
    print(f"{len(curves)} curves in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
