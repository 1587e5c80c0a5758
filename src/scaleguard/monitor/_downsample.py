"""Downsampling a long series for plotting: LTTB and min/max per bucket, by ``tsdownsample``.

A million-point loss curve cannot be drawn point by point in a browser; both methods keep the
shape (LTTB, Steinarsson 2013) or every extreme (min/max) with a few thousand points.
``tsdownsample`` (Rust, SIMD; the library behind plotly-resampler) does the work: on 1M points
its LTTB is ~50x faster than the NumPy loop it replaced, with the same indices where x is
evenly spaced and the buckets hold whole numbers of points; otherwise a bucket edge that falls
on a whole number may round the other way and move a pick by one point (97%+ of picks agree;
tests/monitor/test_monitor_downsample.py keeps the old loop as the reference).
"""

from __future__ import annotations

import numpy as np

from scaleguard.errors import InputError

__all__ = ["DOWNSAMPLE_METHODS", "downsample", "lttb", "minmax_buckets"]

DOWNSAMPLE_METHODS = ("lttb", "minmax")
_MIN_POINTS = 3  # LTTB keeps the first and last point and needs one bucket between them


def lttb(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of the ``n_out`` points that Largest-Triangle-Three-Buckets keeps.

    Steinarsson (2013), "Downsampling Time Series for Visual Representation", algorithm 4.1:
    the first and last points are kept; in each of ``n_out - 2`` buckets, the point forming the
    largest triangle with the point kept before and the mean of the next bucket.

    Examples
    --------
    >>> x = np.arange(10.0); y = np.array([0, 0, 0, 9, 0, 0, 0, 0, 0, 0.0])
    >>> lttb(x, y, 4).tolist()
    [0, 3, 5, 9]
    """
    from tsdownsample import LTTBDownsampler

    n = len(x)
    if n_out >= n or n <= _MIN_POINTS:
        return np.arange(n)
    if n_out < _MIN_POINTS:
        raise InputError(f"max_points: LTTB needs at least {_MIN_POINTS} points, got {n_out}")
    picked = LTTBDownsampler().downsample(np.ascontiguousarray(x, dtype=np.float64),
                                          np.ascontiguousarray(y, dtype=np.float64),
                                          n_out=n_out)
    return np.asarray(picked, dtype=np.int64)


def minmax_buckets(y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of the minimum and maximum of each of ``n_out // 2`` equal buckets, in order.

    Every extreme survives, so a one-step spike is never hidden by the downsampling.

    Examples
    --------
    >>> minmax_buckets(np.array([3.0, 1, 2, 8, 5, 4]), 4).tolist()
    [0, 1, 3, 5]
    """
    from tsdownsample import MinMaxDownsampler

    n = len(y)
    if n_out >= n:
        return np.arange(n)
    picked = MinMaxDownsampler().downsample(np.ascontiguousarray(y, dtype=np.float64),
                                            n_out=max(n_out // 2, 1) * 2)
    return np.unique(np.asarray(picked, dtype=np.int64))  # a bucket's min may be its max


def downsample(x: np.ndarray, y: np.ndarray, max_points: int | None,
               method: str = "lttb") -> np.ndarray:
    """Indices of at most about ``max_points`` points of ``(x, y)`` to plot.

    Non-finite values (NaN, ±inf) are always kept: they are what a monitor is for.
    """
    if method not in DOWNSAMPLE_METHODS:
        raise InputError(f"method: expected one of {', '.join(DOWNSAMPLE_METHODS)}, "
                         f"got {method!r}")
    if max_points is None or len(y) <= max_points:
        return np.arange(len(y))
    if max_points < _MIN_POINTS:
        raise InputError(f"max_points: expected at least {_MIN_POINTS}, got {max_points}")
    finite = np.isfinite(y)
    where = np.flatnonzero(finite)
    picked = (lttb(x[where].astype(np.float64), y[where], max_points) if method == "lttb"
              else minmax_buckets(y[where], max_points))
    return np.union1d(where[picked], np.flatnonzero(~finite))
