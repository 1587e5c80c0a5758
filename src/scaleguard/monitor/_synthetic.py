"""Synthetic training logs with faults planted at known steps: for tests, the demo and the
benchmark. Not measured data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaleguard.errors import InputError

__all__ = ["FAULT_KINDS", "Fault", "synthetic_training_log"]

FAULT_KINDS = ("spike", "nan", "divergence", "throughput_drop")
# The clean curve: a saturating learning curve L = E + A (t + t0)^-alpha with 0.5% noise,
# grad norm around 1 with 5% noise, and 1e5 tokens/s with 2% noise.
_E, _A, _ALPHA, _T0 = 2.0, 8.0, 0.3, 10.0
_LOSS_NOISE, _GRAD_NOISE, _TPS_NOISE = 0.005, 0.05, 0.02
_TOKENS_PER_S = 1e5


@dataclass(frozen=True)
class Fault:
    """A planted fault: ``kind`` at ``step``; ``size`` is the spike's height in loss units,
    the divergence's rise per step, or the throughput's fractional drop."""

    kind: str
    step: int
    size: float = 0.0


def synthetic_training_log(steps: int = 5000, seed: int = 0,
                           faults: tuple[Fault, ...] = ()) -> pd.DataFrame:
    """A long metric frame (step, time, name, value) of loss, grad_norm and tokens_per_s.

    Examples
    --------
    >>> frame = synthetic_training_log(100, faults=(Fault("nan", 50),))
    >>> sorted(frame["name"].unique()), int(frame["value"].isna().sum())  # loss and grad_norm
    (['grad_norm', 'loss', 'tokens_per_s'], 2)
    """
    if steps < 1:
        raise InputError(f"steps: expected a positive number, got {steps}")
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    loss = (_E + _A * (t + _T0) ** -_ALPHA) * (1 + _LOSS_NOISE * rng.standard_normal(steps))
    grad = 1.0 + _GRAD_NOISE * rng.standard_normal(steps)
    tps = _TOKENS_PER_S * (1 + _TPS_NOISE * rng.standard_normal(steps))
    for fault in faults:
        if fault.kind not in FAULT_KINDS:
            raise InputError(f"fault {fault.kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if not 0 <= fault.step < steps:
            raise InputError(f"fault at step {fault.step}: outside 0..{steps - 1}")
        s = fault.step
        if fault.kind == "spike":
            loss[s] += fault.size or 1.0
            grad[s] *= 10
        elif fault.kind == "nan":
            loss[s] = np.nan
            grad[s] = np.nan
        elif fault.kind == "divergence":
            loss[s:] += (fault.size or 1e-3) * (t[s:] - s)
        else:
            tps[s:] *= 1 - (fault.size or 0.3)
    time = 1.7e9 + 0.5 * t  # half a second a step, from a fixed epoch time
    parts = [pd.DataFrame({"step": t, "time": time, "name": name, "value": values})
             for name, values in (("loss", loss), ("grad_norm", grad), ("tokens_per_s", tps))]
    return pd.concat(parts, ignore_index=True)
