"""Request bodies of the API, validated by pydantic so that a bad request gets a 422 naming
the field at fault."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AlertIn", "AlertStateIn", "BatchIn", "EventIn", "RunCreate", "RunFinish",
           "MAX_BATCH_POINTS", "MAX_NAME_CHARS"]

# 50,000 points fill about the default 4 MiB body limit as JSON; a tracking client sends
# batches of a few hundred to a few thousand, so this is a ceiling, not a target.
MAX_BATCH_POINTS = 50_000
MAX_BATCH_RECORDS = 10_000  # events or alerts in one batch
MAX_NAME_CHARS = 200  # run and metric names; longer ones are almost surely a bug in the caller
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # safe in a URL path without escaping

Severity = Literal["info", "warning", "critical"]
# Steps are stored as BIGINT: a JSON integer outside int64 is refused here, not by the database.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Step = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class _Strict(BaseModel):
    # Unknown fields are refused rather than dropped: a typo should not silently lose data.
    model_config = ConfigDict(extra="forbid")


class RunCreate(_Strict):
    """A new run (or a resumed one, when ``run_id`` is an existing id)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    config: dict[str, Any] = Field(default_factory=dict)
    started_at: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    status: str = Field(default="running", min_length=1, max_length=32)


class RunFinish(_Strict):
    """How a run ended."""

    status: str = Field(default="finished", min_length=1, max_length=32)
    finished_at: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class EventIn(_Strict):
    """A generic record (detector finding, note) of the run."""

    kind: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    time: float = Field(ge=0, allow_inf_nan=False)
    payload: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="", max_length=MAX_NAME_CHARS)
    step: Step | None = None
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)


class AlertIn(_Strict):
    """An alert raised by the run (by a detector or by hand)."""

    time: float = Field(ge=0, allow_inf_nan=False)
    severity: Severity
    title: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    message: str = Field(default="", max_length=10_000)
    metric: str = Field(default="", max_length=MAX_NAME_CHARS)
    step: Step | None = None
    value: float | None = None
    detector: str = Field(default="manual", max_length=MAX_NAME_CHARS)
    action: str = Field(default="", max_length=10_000)
    extra: dict[str, Any] = Field(default_factory=dict)
    run: str | None = None  # ignored: the run is the one in the URL


class BatchIn(_Strict):
    """Metric points as parallel arrays (the wire form of ``scaleguard.monitor.Batch``).

    ``values`` may hold NaN and ±inf (as JSON strings ``"nan"``, ``"inf"``, ``"-inf"``): they
    are findings, and are stored as such. ``times`` defaults to the time of receipt.
    """

    steps: list[Step] = Field(max_length=MAX_BATCH_POINTS)
    names: list[str] = Field(max_length=MAX_BATCH_POINTS)
    values: list[float] = Field(max_length=MAX_BATCH_POINTS)
    times: list[float] | None = Field(default=None, max_length=MAX_BATCH_POINTS)
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    alerts: list[AlertIn] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    run_id: str | None = None  # optional echo of the URL's run id; must match it if given

    @model_validator(mode="after")
    def _same_lengths(self) -> BatchIn:
        lengths = {"steps": len(self.steps), "names": len(self.names),
                   "values": len(self.values)}
        if self.times is not None:
            lengths["times"] = len(self.times)
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise ValueError(f"parallel arrays differ in length ({shown})")
        too_long = [n for n in self.names if not 0 < len(n) <= MAX_NAME_CHARS]
        if too_long:
            raise ValueError(f"names: each metric name needs 1 to {MAX_NAME_CHARS} characters")
        return self


class AlertStateIn(_Strict):
    """What people did about an alert: ``acknowledged``, ``resolved``, or ``open`` again."""

    state: Literal["open", "acknowledged", "resolved"]
