"""Scaling-law families: parameters, bounds, starting grids, batched values and gradients.

Every family is fitted in *raw* coordinates chosen so that the optimiser sees a well-scaled
problem (logs of the positive coefficients: ``e = log E``, ``a = log A``, as in Chinchilla
Approach 3), and reports *public* parameters (``E``, ``A``, ``alpha``...) that people read.

A family's :meth:`Law.forward` takes a batch of raw parameter vectors ``theta`` (shape
``[S, P]``: S starting points at once) and the inputs ``X`` (shape ``[k, n]``: k scale columns,
n rows) and returns the fitted value in *fit space* (the log of the metric for every family but
``sigmoid``) with shape ``[S, n]``, plus a ``backward(w)`` closure giving ``sum_n w * df/dtheta``
(shape ``[S, P]``). That vector-Jacobian product is all the fitter needs, and it never builds
an ``[S, n, P]`` Jacobian.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import numpy as np

from scaleguard.errors import InputError

__all__ = [
    "FORMS",
    "Law",
    "PowerLaw",
    "AdditiveLaw",
    "DataConstrainedLaw",
    "BrokenLaw",
    "BoundedLaw",
    "SigmoidLaw",
    "get_law",
    "CHINCHILLA_GRID",
    "TOKENS_PER_PARAM_OPTIMAL",
]

Backward = Callable[[np.ndarray], np.ndarray]

# The starting grid of Chinchilla Approach 3 (Hoffmann et al. 2022, appendix D.2) as the
# replication's code builds it (Besiroglu et al. 2024: np.arange(0, 2.5, 0.5), np.arange(-1, 1.5,
# 0.5), np.arange(0, 30, 5)): 5 x 5 x 5 x 6 x 6 = 4,500 starts, over the raw coordinates.
CHINCHILLA_GRID: Final[dict[str, tuple[float, ...]]] = {
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}
# Compute-optimal tokens per parameter (Hoffmann et al. 2022, Table 3: ~20); Muennighoff et al.
# 2023 take U_N, the parameters that the unique data can feed, as the compute-optimal size for U_D.
TOKENS_PER_PARAM_OPTIMAL: Final = 20.0
# Box bounds on raw coordinates: wide enough to never bind on real ladders, so that a fit that
# reaches one is reported (it means the data do not pin that parameter down).
_LOG_COEF_BOUNDS: Final = (-60.0, 200.0)  # log A, log B: A up to e^200
_LOG_FLOOR_BOUNDS: Final = (-30.0, 30.0)  # log E: E = 1e-13 means "no floor"
_EXPONENT_BOUNDS: Final = (0.0, 10.0)  # alpha, beta of decreasing laws
_SIGNED_EXPONENT_BOUNDS: Final = (-20.0, 20.0)  # power law: a metric may grow with scale
_LOG_R_STAR_BOUNDS: Final = (np.log(1e-2), np.log(1e4))  # R*_D, R*_N in epochs
_FLOOR_FRACTIONS: Final = (0.01, 0.25, 0.5, 0.75, 0.9, 0.97)  # starting E as a share of min(y)
_START_EXPONENTS: Final = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)


def _lse(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """log-sum-exp of same-shape ``[S, n]`` arrays and their softmax weights.

    Written with in-place operations on a list rather than a stacked ``[S, m, n]`` array: the
    reductions then run over contiguous memory, which makes the 4,500-start grid ~2x cheaper.
    """
    top = terms[0].copy()
    for term in terms[1:]:
        np.maximum(top, term, out=top)
    weights = []
    total = np.zeros_like(top)
    for term in terms:
        w = np.subtract(term, top)
        np.exp(w, out=w)
        total += w
        weights.append(w)
    inverse = np.reciprocal(total)
    for w in weights:
        w *= inverse
    np.log(total, out=total)
    total += top
    return total, weights


_LOG_FLOAT_MAX: Final = float(np.log(np.finfo(np.float64).max))
_LOG_FLOAT_TINY: Final = float(np.log(np.finfo(np.float64).tiny))


def _place_bounds(X: np.ndarray) -> tuple[float, float]:
    """Bounds on the log of a place along the scale (a break, a midpoint): within a span of the
    data either side, beyond which the data cannot identify it, and within the floats (a place
    past the largest float would be reported as infinite, one below the smallest as 0)."""
    lx = np.log(X[0])
    span = max(float(lx.max() - lx.min()), 1e-9)
    return (max(float(lx.min()) - span, _LOG_FLOAT_TINY),
            min(float(lx.max()) + span, _LOG_FLOAT_MAX))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


class Law(ABC):
    """A family of scaling laws. Subclasses set the class attributes and implement the maths.

    Attributes
    ----------
    name : str
        The form's name (``"chinchilla"``, ``"saturating"``...).
    inputs : tuple of str
        Table columns the law reads, in the order of the rows of ``X``.
    param_names : tuple of str
        Public parameter names, in the order of :meth:`to_public`.
    raw_names : tuple of str
        Optimiser coordinates, same length and order.
    log_target : bool
        True when the law is fitted on log values (the metric must be positive).
    log_inputs : bool
        True when the inputs enter through their logs (they must be positive).
    fixed_grid : bool
        True when the starting grid does not depend on the data (then a fit outside the grid's
        span is reported).
    """

    name: str
    inputs: tuple[str, ...]
    param_names: tuple[str, ...]
    raw_names: tuple[str, ...]
    log_target: bool = True
    log_inputs: bool = True
    fixed_grid: bool = False

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    @abstractmethod
    def formula(self) -> str:
        """The law written out, e.g. ``L = E + A/N^alpha + B/D^beta``."""

    @abstractmethod
    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        """Fit-space values ``[S, n]`` for raw parameters ``theta`` ``[S, P]`` and inputs ``X``."""

    @abstractmethod
    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Starting points ``[S, P]`` (raw) for data ``X`` ``[k, n]`` and metric ``y`` ``[n]``."""

    @abstractmethod
    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        """Raw vector ``[P]`` -> public parameters."""

    @abstractmethod
    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        """Public parameters -> raw vector ``[P]``."""

    def bounds(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box bounds (lower, upper) on the raw coordinates for this data."""
        return self._bounds()

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def value(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Fit-space values only (no gradient)."""
        return self.forward(theta, X)[0]

    def predict(self, params: Mapping[str, float], X: np.ndarray) -> np.ndarray:
        """The metric in its own units at inputs ``X`` ``[k, n]`` for public ``params``."""
        fitted = self.value(self.to_raw(params)[None, :], np.asarray(X, dtype=float))[0]
        return np.exp(fitted) if self.log_target else fitted

    def _public_dict(self, values: Sequence[float]) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.param_names, values, strict=True)}

    def _require(self, params: Mapping[str, float]) -> list[float]:
        missing = [p for p in self.param_names if p not in params]
        if missing:
            raise InputError(f"{self.name} law: missing parameter(s) {', '.join(missing)}; "
                             f"expected {', '.join(self.param_names)}")
        return [float(params[p]) for p in self.param_names]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.formula!r}, inputs={self.inputs})"


class PowerLaw(Law):
    """``y = A * x1^-alpha1 * x2^-alpha2 ...``: a straight line in log-log space.

    One column gives the classic ``y = A * x^-alpha``; several give a multiplicative law whose
    exponents are the (negated) elasticities of the metric to each column. Exponents may be
    negative: cost or latency often *grow* with scale.

    >>> law = PowerLaw(("x",))
    >>> law.predict({"A": 10.0, "alpha": 0.5}, [[1.0, 100.0]]).round(6).tolist()
    [10.0, 1.0]
    """

    name = "power"

    def __init__(self, inputs: Sequence[str] = ("x",)) -> None:
        self.inputs = tuple(inputs)
        k = len(self.inputs)
        self._exp_names = ("alpha",) if k == 1 else tuple(f"alpha_{c}" for c in self.inputs)
        self.param_names = ("A", *self._exp_names)
        self.raw_names = ("a", *self._exp_names)

    @property
    def formula(self) -> str:
        return "y = A" + "".join(f" * {c}^-{e}" for c, e in zip(self.inputs, self._exp_names,
                                                                   strict=True))

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        lx = np.log(X)  # [k, n]
        f = theta[:, :1] - np.einsum("sk,kn->sn", theta[:, 1:], lx)

        def backward(w: np.ndarray) -> np.ndarray:
            return np.concatenate([w.sum(axis=1, keepdims=True),
                                   -np.einsum("sn,kn->sk", w, lx)], axis=1)

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        lx, ly = np.log(X), np.log(y)
        per_dim = np.linspace(-2.0, 2.0, 9) if len(self.inputs) <= 2 else np.array([-1., 0., 1.])
        exps = np.array(list(itertools.product(per_dim, repeat=len(self.inputs))))
        # For each exponent vector the best intercept is the median offset: start there.
        a = np.median(ly[None, :] + exps @ lx, axis=1)
        return np.column_stack([a, exps])

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = [_LOG_COEF_BOUNDS[0] * 10] + [_SIGNED_EXPONENT_BOUNDS[0]] * len(self.inputs)
        hi = [_LOG_COEF_BOUNDS[1] * 10] + [_SIGNED_EXPONENT_BOUNDS[1]] * len(self.inputs)
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        return self._public_dict([np.exp(theta[0]), *theta[1:]])

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        values = self._require(params)
        return np.array([np.log(values[0]), *values[1:]])


class AdditiveLaw(Law):
    """``y = E + A1/x1^alpha1 + A2/x2^alpha2 + ...``, fitted as ``LSE(e, a_j - alpha_j log x_j)``.

    With one column this is the ``saturating`` law (a learning curve ``E + A x^-alpha``); over
    ``params`` and ``tokens`` it is the ``chinchilla`` law ``E + A/N^alpha + B/D^beta``
    (Hoffmann et al. 2022, eq. 2), whose starting grid is Approach 3's.

    >>> law = get_law("chinchilla")
    >>> p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    >>> round(float(law.predict(p, [[70e9], [1.4e12]])[0]), 3)   # Chinchilla 70B
    1.937
    """

    def __init__(self, inputs: Sequence[str] = ("x",), *, chinchilla: bool = False) -> None:
        self.inputs = tuple(inputs)
        k = len(self.inputs)
        self.chinchilla = chinchilla
        coefs: tuple[str, ...]
        exps: tuple[str, ...]
        if chinchilla:
            self.name = "chinchilla"
            coefs, exps = ("A", "B"), ("alpha", "beta")
            self.fixed_grid = True
        elif k == 1:
            self.name = "saturating"
            coefs, exps = ("A",), ("alpha",)
        else:
            self.name = "saturating"
            coefs = tuple(f"A_{c}" for c in self.inputs)
            exps = tuple(f"alpha_{c}" for c in self.inputs)
        self._coefs, self._exps = coefs, exps
        self.param_names = ("E", *coefs, *exps)
        self.raw_names = ("e", *(c.lower() if chinchilla else "log_" + c for c in coefs), *exps)

    @property
    def formula(self) -> str:
        symbols = ("N", "D") if self.chinchilla else self.inputs
        terms = " + ".join(f"{c}/{s}^{e}" for c, s, e in zip(self._coefs, symbols, self._exps,
                                                             strict=True))
        return f"{'L' if self.chinchilla else 'y'} = E + {terms}"

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        k = len(self.inputs)
        lx = np.log(X)  # [k, n]
        e, a, alpha = theta[:, :1], theta[:, 1:1 + k], theta[:, 1 + k:]
        floor = np.broadcast_to(e, (theta.shape[0], lx.shape[1]))
        f, p = _lse([floor, *(a[:, j:j + 1] - alpha[:, j:j + 1] * lx[j] for j in range(k))])

        def backward(w: np.ndarray) -> np.ndarray:
            wp = [w * pj for pj in p]  # [S, n] each
            g_coef = [wj.sum(axis=1) for wj in wp]  # d/de and d/da_j
            # einsum, not @: a BLAS call here wakes OpenBLAS's thread pool on every
            # evaluation, which costs more than the product itself at these sizes.
            g_exp = [-np.einsum("sn,n->s", wp[j + 1], lx[j]) for j in range(k)]
            return np.column_stack([*g_coef, *g_exp])

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.chinchilla:
            g = CHINCHILLA_GRID
            grid = itertools.product(g["e"], g["a"], g["b"], g["alpha"], g["beta"])
            return np.array(list(grid), dtype=float)
        k = len(self.inputs)
        lx = np.log(X)
        exps_1d = _START_EXPONENTS if k == 1 else (0.1, 0.3, 0.6, 1.0)
        offsets = (-1.0, 0.0, 1.0) if k == 1 else (0.0,)
        rows = []
        for frac in _FLOOR_FRACTIONS:
            floor = frac * float(y.min())
            # What the power terms must explain, shared equally between the k terms.
            rest = np.log(np.maximum(y - floor, 1e-12 * float(y.max())) / k)
            for exps in itertools.product(exps_1d, repeat=k):
                a = [float(np.median(rest + ex * lx[j])) for j, ex in enumerate(exps)]
                for off in offsets:
                    rows.append([np.log(floor), *(v + off for v in a), *exps])
        return np.array(rows)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.inputs)
        lo = [_LOG_FLOOR_BOUNDS[0]] + [_LOG_COEF_BOUNDS[0]] * k + [_EXPONENT_BOUNDS[0]] * k
        hi = [_LOG_FLOOR_BOUNDS[1]] + [_LOG_COEF_BOUNDS[1]] * k + [_EXPONENT_BOUNDS[1]] * k
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        k = len(self.inputs)
        return self._public_dict([*np.exp(theta[:1 + k]), *theta[1 + k:]])

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        k = len(self.inputs)
        values = self._require(params)
        return np.array([*np.log(values[:1 + k]), *values[1 + k:]])


class DataConstrainedLaw(Law):
    """Muennighoff et al. 2023: the Chinchilla law on *effective* data and parameters.

    ``L = E + A/N'^alpha + B/D'^beta`` with ``D' = U_D + U_D R*_D (1 - exp(-R_D/R*_D))``,
    ``R_D = D/U_D - 1`` the repeated epochs of the ``U_D`` unique tokens, and likewise
    ``N' = U_N + U_N R*_N (1 - exp(-R_N/R*_N))`` with ``U_N = min(N, U_D/20)`` (the parameters
    the unique data can feed compute-optimally) and ``R_N = N/U_N - 1``. Inputs are
    ``params``, ``tokens`` and ``unique_tokens``.

    >>> law = get_law("data_constrained")
    >>> p = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35,
    ...      "R_D": 15.4, "R_N": 5.3}
    >>> # 1B params on 20B unique tokens: one epoch, four epochs, and 80B unique tokens
    >>> law.predict(p, [[1e9] * 3, [20e9, 80e9, 80e9], [20e9, 20e9, 80e9]]).round(3).tolist()
    [2.608, 2.472, 2.466]
    """

    name = "data_constrained"
    inputs = ("params", "tokens", "unique_tokens")
    param_names = ("E", "A", "B", "alpha", "beta", "R_D", "R_N")
    raw_names = ("e", "a", "b", "alpha", "beta", "log_R_D", "log_R_N")
    fixed_grid = True
    # A coarser Approach-3 grid times a grid over R* (Muennighoff et al. fit R*_D = 15.4,
    # R*_N = 5.3): 3^5 x 4^2... kept near 4,000 starts so that it costs about one Chinchilla fit.
    GRID: Final = {
        "e": (-1.0, 0.0, 1.0),
        "a": (0.0, 6.0, 12.0, 18.0),
        "b": (0.0, 6.0, 12.0, 18.0),
        "alpha": (0.25, 0.5, 0.75),
        "beta": (0.25, 0.5, 0.75),
        "log_R_D": tuple(np.log([1.5, 5.0, 15.0])),
        "log_R_N": tuple(np.log([1.5, 5.0, 15.0])),
    }

    @property
    def formula(self) -> str:
        return "L = E + A/N'^alpha + B/D'^beta, D' = U_D(1 + R_D(1 - exp(-(D/U_D - 1)/R_D)))"

    @staticmethod
    def effective(base: np.ndarray, total: np.ndarray,
                  log_r_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Effective amount ``[S, n]`` and d log(amount)/d log R* for ``total`` over ``base``."""
        r_star = np.exp(log_r_star)  # [S, 1]
        repeats = total / base - 1.0  # [n], >= 0
        decay = np.exp(-repeats[None, :] / r_star)
        amount = base * (1.0 + r_star * (1.0 - decay))
        d_amount = base * ((1.0 - decay) - (repeats[None, :] / r_star) * decay)  # d/dR*
        return amount, r_star * d_amount / amount

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        params, tokens, unique = X
        u_d = np.minimum(unique, tokens)
        u_n = np.minimum(params, u_d / TOKENS_PER_PARAM_OPTIMAL)
        d_eff, dld = self.effective(u_d, tokens, theta[:, 5:6])
        n_eff, dln = self.effective(u_n, params, theta[:, 6:7])
        lnn, lnd = np.log(n_eff), np.log(d_eff)
        floor = np.broadcast_to(theta[:, :1], lnn.shape)
        f, p = _lse([floor, theta[:, 1:2] - theta[:, 3:4] * lnn,
                     theta[:, 2:3] - theta[:, 4:5] * lnd])
        alpha, beta = theta[:, 3:4], theta[:, 4:5]

        def backward(w: np.ndarray) -> np.ndarray:
            we, wn, wd = (w * pj for pj in p)
            return np.column_stack([
                we.sum(1), wn.sum(1), wd.sum(1), -(wn * lnn).sum(1), -(wd * lnd).sum(1),
                -(wd * beta * dld).sum(1), -(wn * alpha * dln).sum(1),
            ])

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array(list(itertools.product(*self.GRID.values())), dtype=float)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = [_LOG_FLOOR_BOUNDS[0], *[_LOG_COEF_BOUNDS[0]] * 2, *[_EXPONENT_BOUNDS[0]] * 2,
              *[_LOG_R_STAR_BOUNDS[0]] * 2]
        hi = [_LOG_FLOOR_BOUNDS[1], *[_LOG_COEF_BOUNDS[1]] * 2, *[_EXPONENT_BOUNDS[1]] * 2,
              *[_LOG_R_STAR_BOUNDS[1]] * 2]
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        return self._public_dict([*np.exp(theta[:3]), theta[3], theta[4], *np.exp(theta[5:])])

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        v = self._require(params)
        return np.array([*np.log(v[:3]), v[3], v[4], *np.log(v[5:])])


class BrokenLaw(Law):
    """Broken neural scaling law (Caballero et al. 2022, eq. 1) with ``breaks`` breaks.

    ``y = E + B x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i)``: the log-log slope is ``-c0``
    before the first break, and changes by ``-c_i`` around ``x = d_i`` over a width set by
    ``f_i`` (small ``f_i``: a sharp break).

    >>> law = BrokenLaw(breaks=1)
    >>> p = {"E": 0.0001, "B": 1.0, "c0": 0.0, "c1": 1.0, "d1": 100.0, "f1": 0.1}
    >>> law.predict(p, [[1.0, 1e4]]).round(3).tolist()   # flat, then slope -1 after x = 100
    [1.0, 0.01]
    """

    name = "broken"
    log_target = True

    def __init__(self, inputs: Sequence[str] = ("x",), breaks: int = 1) -> None:
        if len(inputs) != 1:
            raise InputError(f"broken law: expected one scale column, got {len(inputs)}")
        if breaks < 1:
            raise InputError(f"broken law: expected at least 1 break, got {breaks}")
        self.inputs = tuple(inputs)
        self.breaks = int(breaks)
        per = [(f"c{i}", f"d{i}", f"f{i}") for i in range(1, breaks + 1)]
        self.param_names = ("E", "B", "c0", *itertools.chain.from_iterable(per))
        self.raw_names = ("e", "b", "c0", *itertools.chain.from_iterable(
            (c, f"log_{d}", f"log_{f}") for c, d, f in per))

    @property
    def formula(self) -> str:
        factors = "".join(f" (1 + (x/d{i})^(1/f{i}))^(-c{i} f{i})"
                          for i in range(1, self.breaks + 1))
        return f"y = E + B x^-c0{factors}"

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        lx = np.log(X[0])[None, :]  # [1, n]
        body = theta[:, 1:2] - theta[:, 2:3] * lx
        parts = []
        for i in range(self.breaks):
            c, g, h = (theta[:, 3 + 3 * i + j: 4 + 3 * i + j] for j in range(3))
            width = np.exp(h)
            z = (lx - g) / width
            sp, sg = _softplus(z), _sigmoid(z)
            body = body - c * width * sp
            parts.append((c, width, z, sp, sg))
        f, p = _lse([np.broadcast_to(theta[:, :1], body.shape), body])

        def backward(w: np.ndarray) -> np.ndarray:
            we, wb = w * p[0], w * p[1]
            cols = [we.sum(1), wb.sum(1), -(wb * lx).sum(1)]
            for c, width, z, sp, sg in parts:
                cols += [-(wb * width * sp).sum(1), (wb * c * sg).sum(1),
                         (wb * c * width * (sg * z - sp)).sum(1)]
            return np.column_stack(cols)

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        lx = np.log(X[0])
        ly = np.log(y)
        locations = np.quantile(lx, (0.25, 0.5, 0.75))
        rows = []
        for frac in (1e-3, 0.5, 0.9):
            floor = frac * float(y.min())
            rest = np.log(np.maximum(y - floor, 1e-12 * float(y.max())))
            for c0 in (0.0, 0.3, 1.0):
                b = float(np.median(rest + c0 * lx))
                per_break = list(itertools.product((-0.5, 0.3, 1.0), locations,
                                                   np.log([0.3, 1.0])))
                combos = itertools.product(per_break, repeat=self.breaks)
                for combo in combos:
                    gs = [g for _, g, _ in combo]
                    if any(g2 <= g1 for g1, g2 in itertools.pairwise(gs)):
                        continue  # breaks in increasing order only
                    rows.append([np.log(floor), b, c0, *itertools.chain.from_iterable(combo)])
        del ly
        return np.array(rows)

    def bounds(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = _place_bounds(X)
        lo = [_LOG_FLOOR_BOUNDS[0], _LOG_COEF_BOUNDS[0], -_EXPONENT_BOUNDS[1]]
        hi = [_LOG_FLOOR_BOUNDS[1], _LOG_COEF_BOUNDS[1], _EXPONENT_BOUNDS[1]]
        for _ in range(self.breaks):
            lo += [-_EXPONENT_BOUNDS[1], low, np.log(1e-2)]
            hi += [_EXPONENT_BOUNDS[1], high, np.log(1e2)]
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        values = [np.exp(theta[0]), np.exp(theta[1]), theta[2]]
        for i in range(self.breaks):
            c, g, h = theta[3 + 3 * i: 6 + 3 * i]
            values += [c, np.exp(g), np.exp(h)]
        return self._public_dict(values)

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        v = self._require(params)
        raw = [np.log(v[0]), np.log(v[1]), v[2]]
        for i in range(self.breaks):
            c, d, f = v[3 + 3 * i: 6 + 3 * i]
            raw += [c, np.log(d), np.log(f)]
        return np.array(raw)


class BoundedLaw(Law):
    """A learning curve between two plateaus: ``y = E + (U - E) / (1 + (x/x0)^alpha)``.

    The metric falls from ``U`` at small scale (an error rate at chance level, a loss before
    learning starts) to the floor ``E``, fastest around the midpoint ``x0``; far above ``x0`` it
    is the saturating law ``E + (U - E) x0^alpha x^-alpha``. It is the Morgan-Mercer-Flodin
    learning curve (Gu, Hu & Liu 2001; among the best of the curve families in Viering & Loog
    2022's survey) and Alabdulmohsin, Neyshabur & Zhai 2022's M4 estimator
    ``(y - E)/(U - y)^a = b x^-c`` with ``a = 1``, the case that has a closed form. A saturating
    law cannot bend back to a plateau at the small end, so on curves that start there it
    fits the early runs with a wrong slope and extrapolates with it. It is also the broken law
    with ``c0 = 0`` and ``c1 = 1/f1``: a special case of it.

    >>> law = BoundedLaw()
    >>> p = {"E": 0.1, "U": 0.9, "x0": 1e3, "alpha": 1.0}
    >>> law.predict(p, [[1.0, 1e3, 1e6]]).round(4).tolist()   # chance, midway, near the floor
    [0.8992, 0.5, 0.1008]
    """

    name = "bounded"
    log_target = True

    def __init__(self, inputs: Sequence[str] = ("x",)) -> None:
        if len(inputs) != 1:
            raise InputError(f"bounded law: expected one scale column, got {len(inputs)}")
        self.inputs = tuple(inputs)
        self.param_names = ("E", "U", "x0", "alpha")
        # u is the log of the drop U - E, so that U > E holds everywhere in the box.
        self.raw_names = ("e", "log_drop", "log_x0", "alpha")

    @property
    def formula(self) -> str:
        x = self.inputs[0]
        return f"y = E + (U - E) / (1 + ({x}/x0)^alpha)"

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        lx = np.log(X[0])[None, :]  # [1, n]
        alpha, centred = theta[:, 3:4], lx - theta[:, 2:3]
        z = alpha * centred
        sp, sg = _softplus(z), _sigmoid(z)
        body = theta[:, 1:2] - sp  # log of (U - E) / (1 + (x/x0)^alpha)
        f, p = _lse([np.broadcast_to(theta[:, :1], body.shape), body])

        def backward(w: np.ndarray) -> np.ndarray:
            we, wb = w * p[0], w * p[1]
            return np.column_stack([we.sum(1), wb.sum(1), (wb * sg * alpha).sum(1),
                                    -(wb * sg * centred).sum(1)])

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        lx = np.log(X[0])
        rows = []
        for frac in (0.01, 0.5, 0.9, 0.97):
            floor = frac * float(y.min())
            for top in (1.02, 1.3, 3.0):
                drop = np.log(top * float(y.max()) - floor)
                for g in np.quantile(lx, (0.0, 0.25, 0.5, 0.75, 1.0)):
                    for alpha in (0.2, 0.5, 1.0, 2.0):
                        rows.append([np.log(floor), drop, g, alpha])
        return np.array(rows)

    def bounds(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = _place_bounds(X)
        lo = [_LOG_FLOOR_BOUNDS[0], _LOG_COEF_BOUNDS[0], low, _EXPONENT_BOUNDS[0]]
        hi = [_LOG_FLOOR_BOUNDS[1], _LOG_FLOOR_BOUNDS[1], high, _EXPONENT_BOUNDS[1]]
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        floor = np.exp(theta[0])
        return self._public_dict([floor, floor + np.exp(theta[1]), np.exp(theta[2]), theta[3]])

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        floor, top, x0, alpha = self._require(params)
        if not top > floor > 0 or not x0 > 0:
            raise InputError(f"bounded law: expected U > E > 0 and x0 > 0, got U={top}, "
                             f"E={floor}, x0={x0}")
        return np.array([np.log(floor), np.log(top - floor), np.log(x0), alpha])


class SigmoidLaw(Law):
    """Accuracy from loss: ``y = floor + (ceiling - floor) / (1 + exp(slope (x - midpoint)))``.

    The second step of a model ladder (loss -> accuracy): with ``slope > 0`` accuracy rises from
    ``floor`` (chance) to ``ceiling`` as the loss falls past ``midpoint``; a large slope is a
    capability that appears suddenly. Fitted on the metric itself (accuracy may be 0), not its log.

    >>> law = SigmoidLaw()
    >>> p = {"floor": 0.25, "ceiling": 0.9, "slope": 10.0, "midpoint": 2.5}
    >>> law.predict(p, [[2.5, 1.5]]).round(3).tolist()
    [0.575, 0.9]
    """

    name = "sigmoid"
    log_target = False
    log_inputs = False
    param_names = ("floor", "ceiling", "slope", "midpoint")
    raw_names = param_names

    def __init__(self, inputs: Sequence[str] = ("loss",)) -> None:
        if len(inputs) != 1:
            raise InputError(f"sigmoid law: expected one input column, got {len(inputs)}")
        self.inputs = tuple(inputs)

    @property
    def formula(self) -> str:
        return (f"y = floor + (ceiling - floor) / (1 + exp(slope ({self.inputs[0]} - "
                "midpoint)))")

    def forward(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, Backward]:
        x = X[0][None, :]
        lo, hi, k, x0 = (theta[:, j:j + 1] for j in range(4))
        s = _sigmoid(-k * (x - x0))
        f = lo + (hi - lo) * s

        def backward(w: np.ndarray) -> np.ndarray:
            ds = w * (hi - lo) * s * (1.0 - s)
            return np.column_stack([(w * (1.0 - s)).sum(1), (w * s).sum(1),
                                    -(ds * (x - x0)).sum(1), (ds * k).sum(1)])

        return f, backward

    def starts(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = X[0]
        xspan = max(float(x.max() - x.min()), 1e-12)
        yspan = max(float(y.max() - y.min()), 1e-12)
        grid = itertools.product(
            (float(y.min()), float(y.min()) - 0.2 * yspan),
            (float(y.max()), float(y.max()) + 0.5 * yspan),
            [s / xspan for s in (-16.0, -4.0, -1.0, 1.0, 4.0, 16.0)],
            np.quantile(x, (0.1, 0.3, 0.5, 0.7, 0.9)),
        )
        return np.array(list(grid), dtype=float)

    def bounds(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = X[0]
        xspan = max(float(x.max() - x.min()), 1e-12)
        yspan = max(float(y.max() - y.min()), 1e-12)
        # Wide boxes scaled to the data: the fit may extrapolate the plateaus, not invent them.
        lo = [float(y.min()) - 10 * yspan, float(y.min()) - 10 * yspan, -1e3 / xspan,
              float(x.min()) - 10 * xspan]
        hi = [float(y.max()) + 10 * yspan, float(y.max()) + 10 * yspan, 1e3 / xspan,
              float(x.max()) + 10 * xspan]
        return np.array(lo), np.array(hi)

    def to_public(self, theta: np.ndarray) -> dict[str, float]:
        lo, hi, k, x0 = (float(v) for v in theta)
        if lo > hi:  # the same curve with the plateaus named the other way round
            lo, hi, k = hi, lo, -k
        return self._public_dict([lo, hi, k, x0])

    def to_raw(self, params: Mapping[str, float]) -> np.ndarray:
        return np.array(self._require(params))


FORMS: Final = ("chinchilla", "saturating", "power", "data_constrained", "broken", "bounded",
                 "sigmoid")


def get_law(form: str, inputs: Sequence[str] | str | None = None, *, breaks: int = 1) -> Law:
    """The law family ``form`` over the scale columns ``inputs``.

    ``chinchilla`` reads ``params`` and ``tokens``; ``data_constrained`` also ``unique_tokens``;
    the other forms read the columns given (``x`` by default; ``loss`` for ``sigmoid``).

    >>> get_law("saturating", "step").formula
    'y = E + A/step^alpha'
    >>> get_law("chinchilla").param_names
    ('E', 'A', 'B', 'alpha', 'beta')
    """
    cols: tuple[str, ...] | None = (inputs,) if isinstance(inputs, str) else (
        tuple(inputs) if inputs is not None else None)
    if cols is not None and len(cols) == 0:
        raise InputError(f"--x: the {form} law needs at least one scale column")
    if form == "chinchilla":
        return AdditiveLaw(cols or ("params", "tokens"), chinchilla=True) if (
            cols is None or len(cols) == 2) else _wrong_inputs(form, cols, 2)
    if form == "data_constrained":
        law = DataConstrainedLaw()
        if cols is not None and cols != law.inputs:
            return _wrong_inputs(form, cols, 3)
        return law
    if form == "saturating":
        return AdditiveLaw(cols or ("x",))
    if form == "power":
        return PowerLaw(cols or ("x",))
    if form == "broken":
        return BrokenLaw(cols or ("x",), breaks=breaks)
    if form == "bounded":
        return BoundedLaw(cols or ("x",))
    if form == "sigmoid":
        return SigmoidLaw(cols or ("loss",))
    raise InputError(f"--form: unknown law {form!r}; expected one of {', '.join(FORMS)} or auto")


def _wrong_inputs(form: str, cols: tuple[str, ...], k: int) -> Law:
    raise InputError(f"--x: the {form} law reads {k} columns (params, tokens"
                     f"{', unique_tokens' if k == 3 else ''}), got {', '.join(cols)}")
