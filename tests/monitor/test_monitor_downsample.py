"""Downsampling through tsdownsample keeps the results of the NumPy LTTB it replaced."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleguard.errors import InputError
from scaleguard.monitor import downsample, lttb, minmax_buckets


def reference_lttb(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """The NumPy loop scaleguard used before tsdownsample (Steinarsson 2013, algorithm 4.1),
    kept here as the reference the library must reproduce."""
    n = len(x)
    if n_out >= n or n <= 3:
        return np.arange(n)
    edges = np.linspace(1, n - 1, n_out - 1).astype(np.int64)
    keep = np.empty(n_out, dtype=np.int64)
    keep[0], keep[-1] = 0, n - 1
    prev = 0
    for b in range(n_out - 2):
        lo, hi = edges[b], max(edges[b + 1], edges[b] + 1)
        if b + 2 < len(edges):
            nlo, nhi = edges[b + 1], max(edges[b + 2], edges[b + 1] + 1)
            cx, cy = x[nlo:nhi].mean(), y[nlo:nhi].mean()
        else:
            cx, cy = x[-1], y[-1]
        ax, ay = x[prev], y[prev]
        area = np.abs((ax - cx) * (y[lo:hi] - ay) - (ax - x[lo:hi]) * (cy - ay))
        prev = lo + int(np.argmax(area))
        keep[b + 1] = prev
    return keep


@settings(max_examples=60, deadline=None)
@given(n_out=st.integers(3, 400), width=st.integers(2, 40), seed=st.integers(0, 2**32 - 1),
       step=st.sampled_from([1.0, 0.5, 10.0]))
def test_lttb_keeps_the_old_indices_where_x_is_evenly_spaced(n_out, width, seed, step):
    """Buckets of a whole number of points: both place every bucket edge exactly, and pick
    the same points."""
    n = (n_out - 2) * width + 2
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n).cumsum()
    x = np.arange(n) * step + 100.0
    assert lttb(x, y, n_out).tolist() == reference_lttb(x, y, n_out).tolist()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(4, 3_000), n_out=st.integers(3, 400), seed=st.integers(0, 2**32 - 1))
def test_lttb_differs_from_the_old_loop_only_at_rounded_bucket_edges(n, n_out, seed):
    """Any length: a bucket edge that falls on a whole number may round either way in the two
    (linspace against multiplication), moving a pick by a point there; nearly all agree."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n).cumsum()
    x = np.arange(n, dtype=np.float64)
    new, old = lttb(x, y, n_out), reference_lttb(x, y, n_out)
    assert len(new) == len(old) == min(n, n_out) and new[0] == 0 and new[-1] == n - 1
    assert np.mean(new == old) >= 0.9


def test_lttb_on_a_million_points_matches_the_reference():
    rng = np.random.default_rng(7)
    y = rng.normal(size=1_000_000).cumsum()
    x = np.arange(1_000_000, dtype=np.float64)
    assert np.array_equal(lttb(x, y, 2_000), reference_lttb(x, y, 2_000))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 3_000), n_out=st.integers(2, 400), seed=st.integers(0, 2**32 - 1))
def test_minmax_keeps_the_extremes_and_the_order(n, n_out, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    spike = int(rng.integers(n))
    y[spike] = 1e6
    kept = minmax_buckets(y, n_out)
    assert kept.tolist() == sorted(set(kept.tolist()))  # increasing, no index twice
    assert len(kept) <= max(n_out, 2) and spike in kept.tolist()
    assert int(np.argmin(y)) in kept.tolist()


def test_minmax_is_the_old_result_when_the_buckets_divide_the_series():
    y = np.array([3.0, 1, 2, 8, 5, 4, 0, 9])
    assert minmax_buckets(y, 4).tolist() == [1, 3, 6, 7]


def test_downsample_keeps_non_finite_values_and_refuses_bad_settings():
    y = np.sin(np.arange(10_000) / 100.0)
    y[[5, 5_000]] = [math.nan, math.inf]
    x = np.arange(10_000)
    for method in ("lttb", "minmax"):
        kept = downsample(x, y, 100, method)
        assert {5, 5_000} <= set(kept.tolist()) and len(kept) <= 102
    assert downsample(x, y, None).tolist() == list(range(10_000))
    with pytest.raises(InputError, match="max_points: expected at least 3"):
        downsample(x, y, 2)
    with pytest.raises(InputError, match="method: expected one of lttb, minmax"):
        downsample(x, y, 100, "mean")
