"""Drift between stages: do the new cohort's inputs or scores look like the previous cohort's?

Per feature: the population stability index (PSI), the two-sample Kolmogorov-Smirnov test
(numeric), the chi-square test of homogeneity (categorical, or numeric on the PSI bins) and a
kernel maximum mean discrepancy (MMD) permutation test (numeric). A verdict per feature names
what moved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from scaleguard.errors import InputError

__all__ = ["PSI_WATCH", "PSI_DRIFT", "PSI_BINS", "MMD_PERMUTATIONS", "MMD_MAX_POINTS",
           "FeatureDrift", "DriftReport", "drift_report", "psi", "mmd_test"]

# PSI rule of thumb from credit scoring (Siddiqi 2006, "Credit Risk Scorecards"): below 0.1 no
# real shift, 0.1-0.25 a moderate shift to watch, above 0.25 a major shift.
PSI_WATCH = 0.1
PSI_DRIFT = 0.25
PSI_BINS = 10  # deciles of the reference cohort, the usual PSI binning
_PSI_FLOOR = 1e-4  # share given to an empty bin so that the log stays finite
MMD_PERMUTATIONS = 200  # p-value resolution 1/201, enough to compare with alpha = 0.05
MMD_MAX_POINTS = 500  # per cohort; MMD is O(n^2), so larger cohorts are subsampled (seeded)

Verdict = Literal["stable", "watch", "drift"]


def _bins(reference: np.ndarray) -> np.ndarray:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    return edges


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of ``current`` against ``reference`` on reference deciles.

    >>> rng = np.random.default_rng(0)
    >>> psi(rng.normal(size=5000), rng.normal(size=5000)) < PSI_WATCH
    True
    >>> psi(rng.normal(size=5000), rng.normal(1.0, 1.0, size=5000)) > PSI_DRIFT
    True
    """
    edges = _bins(np.asarray(reference, dtype=float))
    ref = np.maximum(_shares(np.asarray(reference, dtype=float), edges), _PSI_FLOOR)
    cur = np.maximum(_shares(np.asarray(current, dtype=float), edges), _PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _categorical_psi(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    levels = sorted(set(ref.astype(str)) | set(cur.astype(str)))
    table = np.array([[int((s.astype(str) == level).sum()) for level in levels]
                      for s in (ref, cur)], dtype=float)
    shares = np.maximum(table / table.sum(axis=1, keepdims=True), _PSI_FLOOR)
    value = float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))
    kept = table[:, table.sum(axis=0) > 0]
    p = float(stats.chi2_contingency(kept).pvalue) if kept.shape[1] > 1 else 1.0
    return value, p


def mmd_test(x: np.ndarray, y: np.ndarray, seed: int = 0,
             permutations: int = MMD_PERMUTATIONS) -> tuple[float, float]:
    """Squared MMD with a Gaussian kernel (median-distance bandwidth) and its permutation p-value.

    Gretton et al. 2012, "A kernel two-sample test" (biased V-statistic; the permutation test is
    exact whatever the estimator's bias).

    >>> rng = np.random.default_rng(1)
    >>> _, p = mmd_test(rng.normal(size=200), rng.normal(size=200))
    >>> p > 0.05
    True
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    if len(x) > MMD_MAX_POINTS:
        x = x[rng.choice(len(x), MMD_MAX_POINTS, replace=False)]
    if len(y) > MMD_MAX_POINTS:
        y = y[rng.choice(len(y), MMD_MAX_POINTS, replace=False)]
    z = np.vstack([x, y])
    # The median-bandwidth kernel is invariant to one common scale of the data, so dividing by
    # the largest magnitude changes no statistic while keeping squared distances of values
    # near 1e300 finite (their squares would overflow to inf and make the kernel NaN).
    scale = float(np.max(np.abs(z))) if z.size else 0.0
    if np.isfinite(scale) and scale > 0:
        z = z / scale
    sq = np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1)
    median = np.median(sq[np.triu_indices(len(z), k=1)])
    kernel = np.exp(-sq / (median if median > 0 else 1.0))
    n = len(x)

    def stat(labels: np.ndarray) -> np.ndarray:
        # labels: (perms, n + m) booleans, True for the first sample; vectorised over perms.
        a = labels.astype(float)
        b = 1.0 - a
        a /= a.sum(axis=1, keepdims=True)
        b /= b.sum(axis=1, keepdims=True)
        ka, kb = a @ kernel, b @ kernel  # two BLAS products instead of three einsums
        return np.sum(ka * a, axis=1) + np.sum(kb * b, axis=1) - 2 * np.sum(ka * b, axis=1)

    observed = np.zeros((1, len(z)), dtype=bool)
    observed[0, :n] = True
    value = float(stat(observed)[0])
    perms = np.argsort(rng.random((permutations, len(z))), axis=1) < n
    null = stat(perms)
    p = (1.0 + np.sum(null >= value - 1e-15)) / (permutations + 1.0)
    return value, float(p)


@dataclass(frozen=True)
class FeatureDrift:
    """Drift tests of one feature; p-values are raw (the verdict uses Bonferroni over all)."""

    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float
    ks_statistic: float | None
    ks_p: float | None
    chi2_p: float
    mmd: float | None
    mmd_p: float | None
    verdict: Verdict
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """A verdict per feature for the new cohort against the previous one."""

    alpha: float
    reference_rows: int
    current_rows: int
    features: tuple[FeatureDrift, ...]

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.verdict == "drift"]

    def as_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows, "drifted": self.drifted,
                "features": [f.as_dict() for f in self.features]}

    def __repr__(self) -> str:
        return (f"DriftReport({len(self.features)} features, drifted: "
                f"{', '.join(self.drifted) or 'none'})")


def drift_report(reference: pd.DataFrame, current: pd.DataFrame,
                 features: list[str] | None = None, alpha: float = 0.05,
                 seed: int = 0) -> DriftReport:
    """Compare every feature of ``current`` (new cohort) with ``reference`` (previous cohort).

    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"score": rng.normal(size=800), "lang": rng.choice(["en", "fr"], 800)})
    >>> cur = pd.DataFrame({"score": rng.normal(0.5, 1, 800),
    ...                     "lang": rng.choice(["en", "fr"], 800)})
    >>> drift_report(ref, cur).drifted
    ['score']
    """
    if not 0 < alpha < 1:
        raise InputError(f"--alpha: expected a number in (0, 1), got {alpha}")
    names = features if features is not None else [c for c in reference.columns
                                                   if c in current.columns]
    if not names:
        raise InputError("drift: the two cohorts share no feature column")
    for name in names:
        for label, frame in (("reference", reference), ("current", current)):
            if name not in frame.columns:
                raise InputError(f"drift: feature {name!r} is missing from the {label} cohort")
            if frame[name].dropna().empty:
                raise InputError(f"drift: feature {name!r} has no values in the {label} cohort")
    tests_per_feature = 3
    threshold = alpha / (tests_per_feature * len(names))  # Bonferroni over features x tests
    out = []
    for i, name in enumerate(names):
        ref, cur = reference[name].dropna(), current[name].dropna()
        numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur) \
            and not pd.api.types.is_bool_dtype(ref)
        if numeric:
            r, c = ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)
            value = psi(r, c)
            ks = stats.ks_2samp(r, c)
            edges = _bins(r)
            table = np.array([_shares(r, edges) * r.size, _shares(c, edges) * c.size])
            table = table[:, table.sum(axis=0) > 0]
            chi2_p = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
            mmd, mmd_p = mmd_test(r, c, seed=seed + i)
            ps = {"KS": float(ks.pvalue), "chi-square": chi2_p, "MMD": mmd_p}
            fd_kind: Literal["numeric", "categorical"] = "numeric"
            ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
        else:
            value, chi2_p = _categorical_psi(ref, cur)
            ps = {"chi-square": chi2_p}
            fd_kind, ks_stat, ks_p, mmd, mmd_p = "categorical", None, None, None, None
        rejected = [test for test, p in ps.items() if p < threshold]
        if value >= PSI_DRIFT or rejected:
            verdict: Verdict = "drift"
            why = [f"PSI {value:.3f} >= {PSI_DRIFT}"] if value >= PSI_DRIFT else []
            why += [f"{test} p {ps[test]:.2g} < {threshold:.2g}" for test in rejected]
            reason = "; ".join(why)
        elif value >= PSI_WATCH:
            verdict, reason = "watch", f"PSI {value:.3f} >= {PSI_WATCH}"
        else:
            verdict, reason = "stable", "no test rejects; PSI below 0.1"
        out.append(FeatureDrift(name, fd_kind, value, ks_stat, ks_p, chi2_p, mmd, mmd_p,
                                verdict, reason))
    return DriftReport(alpha, len(reference), len(current), tuple(out))
