"""Downsampling a long series for plotting: LTTB and min/max per bucket.

A million-point loss curve cannot be drawn point by point in a browser; both methods keep the
shape (LTTB, Steinarsson 2013) or every extreme (min/max) with a few thousand points.
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
    n = len(x)
    if n_out >= n or n <= _MIN_POINTS:
        return np.arange(n)
    if n_out < _MIN_POINTS:
        raise InputError(f"max_points: LTTB needs at least {_MIN_POINTS} points, got {n_out}")
    # Bucket edges over the inner points 1 .. n-2.
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


def minmax_buckets(y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of the minimum and maximum of each of ``n_out // 2`` equal buckets, in order.

    Every extreme survives, so a one-step spike is never hidden by the downsampling.

    Examples
    --------
    >>> minmax_buckets(np.array([3.0, 1, 2, 8, 5, 4]), 4).tolist()
    [0, 1, 3, 5]
    """
    n = len(y)
    if n_out >= n:
        return np.arange(n)
    buckets = max(n_out // 2, 1)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    out: list[int] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        chunk = y[lo:hi]
        pair = sorted({lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))})
        out.extend(pair)
    return np.asarray(out, dtype=np.int64)


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
