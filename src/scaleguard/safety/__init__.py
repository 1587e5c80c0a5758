"""Safety preservation: staged rollouts with always-valid gates, segment checks, drift tests,
rare-event bounds, a fail-safe controller and a simulator.

A plan (YAML, :func:`load_plan`) lists the stages of a rollout and the metrics that must hold;
:func:`decide` turns the plan, the rollout's state and the observations so far into advance /
continue / hold / roll back with its evidence; :func:`simulate` runs a plan many times against
scenarios to show its false rollback rate and detection power beside today's baselines.
"""

import importlib
import typing
from pathlib import Path
from typing import Any

if typing.TYPE_CHECKING:
    from scaleguard.safety._assignment import Assignment, unit_bucket
    from scaleguard.safety._bounds import (
        RateBound,
        TailForecast,
        bayesian_upper,
        clopper_pearson_upper,
        rate_bound,
        tail_forecast,
        trials_to_certify,
    )
    from scaleguard.safety._client import AsyncRolloutClient, RolloutClient
    from scaleguard.safety._controller import (
        Decision,
        GateResult,
        RolloutState,
        check_state,
        decide,
        initial_state,
    )
    from scaleguard.safety._dbstore import Absorbed, DatabaseRolloutStore, absorb_windows
    from scaleguard.safety._drift import DriftReport, FeatureDrift, drift_report
    from scaleguard.safety._feasibility import Feasibility, feasibility
    from scaleguard.safety._gates import Counts, comparison_gate, guardrail_gate
    from scaleguard.safety._multiplicity import adjust_p_values
    from scaleguard.safety._observations import (
        CLOCK_SKEW,
        Screened,
        check_observations,
        continuous_start,
        read_observations,
        screen_observations,
        window_keys,
    )
    from scaleguard.safety._oversight import OversightWall, ReviewLoad, oversight_wall, review_load
    from scaleguard.safety._plan import RolloutPlan, load_plan, parse_plan, plan_schema
    from scaleguard.safety._prometheus import PrometheusClient, look_queries, window_rows
    from scaleguard.safety._sequential import (
        beta_binomial_interval,
        beta_binomial_p_value,
        normal_mixture_halfwidth,
        normal_mixture_p_value,
    )
    from scaleguard.safety._simulate import PolicyOutcome, Scenario, SimulationResult, simulate
    from scaleguard.safety._spending import alpha_spent, spending_boundaries
    from scaleguard.safety._store import (
        FileRolloutStore,
        RolloutStore,
        audit_record,
    )
    from scaleguard.safety._totals import CellTotals, cell_totals, merge_totals

EXAMPLE_PLAN = Path(__file__).resolve().parent / "examples" / "rollout.yaml"

__all__ = [
    "Absorbed",
    "CLOCK_SKEW",
    "CellTotals",
    "EXAMPLE_PLAN",
    "Assignment",
    "AsyncRolloutClient",
    "Counts",
    "Decision",
    "DriftReport",
    "Feasibility",
    "FeatureDrift",
    "DatabaseRolloutStore",
    "FileRolloutStore",
    "GateResult",
    "OversightWall",
    "PolicyOutcome",
    "PrometheusClient",
    "RateBound",
    "RolloutClient",
    "ReviewLoad",
    "RolloutPlan",
    "RolloutState",
    "RolloutStore",
    "Scenario",
    "Screened",
    "SimulationResult",
    "TailForecast",
    "adjust_p_values",
    "alpha_spent",
    "absorb_windows",
    "audit_record",
    "bayesian_upper",
    "beta_binomial_interval",
    "beta_binomial_p_value",
    "cell_totals",
    "check_observations",
    "check_state",
    "clopper_pearson_upper",
    "comparison_gate",
    "continuous_start",
    "decide",
    "drift_report",
    "feasibility",
    "guardrail_gate",
    "initial_state",
    "load_plan",
    "look_queries",
    "merge_totals",
    "normal_mixture_halfwidth",
    "normal_mixture_p_value",
    "oversight_wall",
    "parse_plan",
    "plan_schema",
    "rate_bound",
    "read_observations",
    "review_load",
    "screen_observations",
    "simulate",
    "spending_boundaries",
    "tail_forecast",
    "trials_to_certify",
    "unit_bucket",
    "window_keys",
    "window_rows",
]

# Exports load on first use (PEP 562): the application SDK comes first, so that
# `from scaleguard.safety import RolloutClient` loads the standard library and httpx only (tens
# of milliseconds), not pandas, scipy and pydantic (seconds) that the statistics need.
_MODULES = (
    "_assignment",
    "_client",
    "_bounds",
    "_controller",
    "_dbstore",
    "_drift",
    "_feasibility",
    "_gates",
    "_multiplicity",
    "_observations",
    "_oversight",
    "_plan",
    "_prometheus",
    "_sequential",
    "_simulate",
    "_spending",
    "_store",
    "_totals",
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in _MODULES:
        found = getattr(importlib.import_module(f"{__name__}.{module}"), name, _MISSING)
        if found is not _MISSING:
            globals()[name] = found  # later uses skip this hook
            return found
    raise AttributeError(f"module {__name__!r}: export {name!r} is in no module")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_MISSING = object()
