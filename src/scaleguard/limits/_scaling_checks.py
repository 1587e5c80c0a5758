"""Limit checks on what the scaling law says: diminishing returns, extrapolation, the data wall.

Each check is a pure function of numbers the assessment has already computed (from the fitted
law, its bootstrap and the resource estimates) and returns one :class:`Finding`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from scaleguard.errors import InputError
from scaleguard.limits._findings import Change, Finding, Severity
from scaleguard.units import format_quantity

__all__ = [
    "IRREDUCIBLE_FRACTION",
    "EXTRAPOLATION_WARN_DECADES",
    "EXTRAPOLATION_BLOCK_DECADES",
    "EPOCHS_NEGLIGIBLE",
    "diminishing_returns",
    "extrapolation_risk",
    "data_wall",
]

# Default fraction of the irreducible loss below which the reducible part counts as exhausted:
# at 5% of E, a further doubling of compute buys under ~1% of the loss (Hoffmann et al. 2022
# fit, E = 1.69, reducible part ~0.3 at 1e24 FLOP). Users set their own in the study.
IRREDUCIBLE_FRACTION: Final = 0.05
# The Chinchilla paper's own extrapolation: fitted on runs up to ~1e22 FLOP, used at 5.76e23
# (about 2 decades; Hoffmann et al. 2022, Table 3). Beyond that a prediction is a condition.
EXTRAPOLATION_WARN_DECADES: Final = 2.0
# The furthest published extrapolation that held: GPT-4's final loss predicted from runs using
# up to 10,000× less compute (OpenAI 2023, GPT-4 Technical Report, section 3.1).
EXTRAPOLATION_BLOCK_DECADES: Final = 4.0
# Up to about 4 epochs, repeated data is almost as good as unique data; beyond, returns fade
# (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", section 5).
EPOCHS_NEGLIGIBLE: Final = 4.0

_MUENNIGHOFF = "Muennighoff et al. 2023, Scaling Data-Constrained Language Models"


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name}: expected a positive finite number, got {value!r}")
    return value


def diminishing_returns(*, target_compute: float, loss_at_target: float, irreducible: float,
                        gain_per_doubling: float, ladder_gain_per_doubling: float,
                        cost_per_doubling: float = math.nan,
                        energy_per_doubling: float = math.nan,
                        compute_at_fraction: float = math.nan,
                        fraction: float = IRREDUCIBLE_FRACTION) -> Finding:
    """Is the target past the point where more compute stops paying?

    Parameters
    ----------
    target_compute:
        Training compute at the target (FLOP).
    loss_at_target, irreducible:
        Predicted loss at the target and the law's irreducible loss ``E``.
    gain_per_doubling, ladder_gain_per_doubling:
        Loss reduction from doubling compute, at the target and at the ladder's largest budget.
    cost_per_doubling, energy_per_doubling:
        Money (USD) and energy (J) that the doubling at the target costs; ``nan`` if unknown.
    compute_at_fraction:
        Compute (FLOP) at which the reducible part ``L - E`` falls to ``fraction · E``.
    fraction:
        The user's threshold on ``(L - E) / E``.

    Examples
    --------
    >>> f = diminishing_returns(target_compute=1e24, loss_at_target=1.9, irreducible=1.82,
    ...                         gain_per_doubling=0.01, ladder_gain_per_doubling=0.05,
    ...                         compute_at_fraction=2e23)
    >>> f.severity.value, round(f.pressure, 2), f.cheapest_change.describe()[:30]
    ('warn', 1.14, '80% less training compute (sca')
    """
    _positive("target_compute", target_compute)
    if not 0 < fraction < 1:
        raise InputError("returns.irreducible_fraction: expected a number in (0, 1), "
                         f"got {fraction}")
    reducible = max(float(loss_at_target) - float(irreducible), 0.0)
    floor = fraction * float(irreducible)
    pressure = math.inf if reducible == 0 else floor / reducible
    relative = gain_per_doubling / ladder_gain_per_doubling if ladder_gain_per_doubling > 0 \
        else math.nan
    numbers = {
        "target_compute_flop": target_compute,
        "loss_at_target": loss_at_target,
        "irreducible_loss": irreducible,
        "reducible_loss": reducible,
        "reducible_over_irreducible": reducible / irreducible if irreducible > 0 else math.nan,
        "fraction_threshold": fraction,
        "gain_per_doubling": gain_per_doubling,
        "ladder_gain_per_doubling": ladder_gain_per_doubling,
        "gain_relative_to_ladder": relative,
        "gain_per_usd": (gain_per_doubling / cost_per_doubling if cost_per_doubling > 0
                         else math.nan),
        "gain_per_mwh": (gain_per_doubling / (energy_per_doubling / 3.6e9)
                         if energy_per_doubling > 0 else math.nan),
        "compute_at_fraction_flop": compute_at_fraction,
    }
    per_doubling = f"a doubling of compute buys {gain_per_doubling:.3g} of loss"
    if math.isfinite(relative):
        per_doubling += f" ({relative:.0%} of what it buys at the top of the ladder)"
    costs = [f"${cost_per_doubling:,.0f}" if cost_per_doubling > 0 else "",
             format_quantity(energy_per_doubling, "energy", digits=3)
             if energy_per_doubling > 0 else ""]
    if any(costs):
        per_doubling += " for " + " and ".join(c for c in costs if c)
    where = ""
    if math.isfinite(compute_at_fraction) and compute_at_fraction > target_compute:
        where = (f"; it falls to {fraction:.0%} of E at "
                 f"{format_quantity(compute_at_fraction, 'flop', digits=2)}")
    changes: list[Change] = []
    if pressure > 1:
        severity = Severity.WARN
        message = (f"the reducible loss at the target is {reducible:.3g}, under {fraction:.0%} of "
                   f"the irreducible {irreducible:.3g}; {per_doubling}")
        if math.isfinite(compute_at_fraction) and compute_at_fraction > 0:
            changes.append(Change("training compute", compute_at_fraction / target_compute,
                                  f"scale to the point where the reducible loss is "
                                  f"{fraction:.0%} of E"))
    else:
        severity = Severity.OK
        message = (f"the reducible loss at the target is {reducible:.3g} "
                   f"({reducible / irreducible:.0%} of the irreducible {irreducible:.3g}); "
                   f"{per_doubling}{where}")
    return Finding("diminishing_returns", "diminishing returns", severity, message, pressure,
                   numbers, "reducible part of the fitted law against a set fraction "
                   f"({fraction:g}) of its irreducible loss", tuple(changes))


def extrapolation_risk(*, target_compute: float, ladder_max_compute: float,
                       interval: tuple[float, float], tolerance: float | None = None,
                       warn_decades: float = EXTRAPOLATION_WARN_DECADES,
                       block_decades: float = EXTRAPOLATION_BLOCK_DECADES) -> Finding:
    """How far beyond the ladder the target lies, and how wide the prediction is there.

    ``interval`` is the prediction interval of the loss at the target; ``tolerance`` is the
    widest interval (max minus min, loss units) that the decision can act on.

    Examples
    --------
    >>> f = extrapolation_risk(target_compute=1e23, ladder_max_compute=1e20,
    ...                        interval=(2.10, 2.16), tolerance=0.1)
    >>> f.severity.value, f.numbers["decades_beyond_ladder"]
    ('warn', 3.0)
    """
    _positive("target_compute", target_compute)
    _positive("ladder_max_compute", ladder_max_compute)
    lo, hi = (float(v) for v in interval)
    decades = math.log10(target_compute / ladder_max_compute)
    width = hi - lo
    # Pressure against the blocking distance; the interval's against the decision's tolerance.
    pressure = decades / block_decades if decades > 0 else 0.0
    too_wide = tolerance is not None and width > tolerance
    if tolerance is not None and tolerance > 0:
        pressure = max(pressure, width / tolerance)
    if decades > block_decades:
        severity = Severity.BLOCK
    elif decades > warn_decades or too_wide:
        severity = Severity.WARN
    else:
        severity = Severity.OK
    where = (f"the target is {decades:.1f} decades of compute beyond the largest ladder run"
             if decades > 0 else "the target lies inside the ladder")
    band = f"the loss there is predicted within [{lo:.4g}, {hi:.4g}] (width {width:.3g}"
    band += f", the decision needs {tolerance:.3g})" if tolerance is not None else ")"
    changes = []
    if decades > warn_decades:
        rung = target_compute / 10**warn_decades
        changes.append(Change("ladder compute", rung / ladder_max_compute,
                              f"add ladder runs up to {format_quantity(rung, 'flop', digits=2)}"))
        changes.append(Change("training compute", 10 ** (warn_decades - decades),
                              "aim the step within two decades of the ladder"))
    elif too_wide:
        changes.append(Change("ladder compute", 10.0, "add a ladder budget one decade up, or "
                              "more runs per budget, to narrow the interval"))
    numbers = {"target_compute_flop": target_compute, "ladder_max_compute_flop": ladder_max_compute,
               "decades_beyond_ladder": round(decades, 6), "interval_low": lo, "interval_high": hi,
               "interval_width": width,
               "tolerance": math.nan if tolerance is None else float(tolerance)}
    return Finding("extrapolation", "extrapolation risk", severity, f"{where}; {band}", pressure,
                   numbers, f"warn beyond {warn_decades:g} decades (Hoffmann et al. 2022 "
                   f"extrapolated about 2); block beyond {block_decades:g} (the furthest published "
                   "loss prediction, GPT-4 Technical Report 2023)", tuple(changes))


def data_wall(*, tokens_needed: float, unique_tokens: float, loss_penalty: float = math.nan,
              max_epochs: float = EPOCHS_NEGLIGIBLE,
              alternatives: Sequence[Change] = ()) -> Finding:
    """Tokens the step trains on against the unique tokens there are.

    ``loss_penalty`` is the loss lost to repetition (the data-constrained law's prediction at the
    effective data minus the law at the same number of unique tokens), ``nan`` if not computed.
    ``alternatives`` are further changes the caller computed (e.g. the compute at which the
    optimal tokens fit in ``max_epochs`` epochs).

    Examples
    --------
    >>> f = data_wall(tokens_needed=8e12, unique_tokens=1e12)
    >>> f.severity.value, f.numbers["epochs"], f.cheapest_change.describe()
    ('block', 8.0, '2× more unique tokens')
    """
    _positive("tokens_needed", tokens_needed)
    _positive("data.unique_tokens", unique_tokens)
    epochs = tokens_needed / unique_tokens
    pressure = epochs / max_epochs
    if epochs <= 1:
        severity = Severity.OK
        message = (f"the step needs {format_quantity(tokens_needed, digits=3)} tokens, "
                   f"{epochs:.0%} of the {format_quantity(unique_tokens, digits=3)} unique tokens")
    else:
        severity = Severity.WARN if epochs <= max_epochs else Severity.BLOCK
        message = (f"the step needs {format_quantity(tokens_needed, digits=3)} tokens: "
                   f"{epochs:.2g} epochs of the {format_quantity(unique_tokens, digits=3)} "
                   "unique tokens")
        if math.isfinite(loss_penalty):
            message += f", costing {loss_penalty:.3g} of loss against unique data"
    changes: list[Change] = []
    if severity is Severity.BLOCK:
        changes.append(Change("unique tokens", epochs / max_epochs))
        changes.extend(alternatives)
    elif severity is Severity.WARN:
        changes.append(Change("unique tokens", epochs, "train a single epoch"))
    numbers = {"tokens_needed": tokens_needed, "unique_tokens": unique_tokens, "epochs": epochs,
               "max_epochs": max_epochs, "loss_penalty": loss_penalty}
    return Finding("data_wall", "data wall", severity, message, pressure, numbers,
                   f"{_MUENNIGHOFF}: repetition up to about {max_epochs:g} epochs costs little, "
                   "beyond it returns fade (R*_D ≈ 15)", tuple(changes))
