"""Request bodies of the API, validated by pydantic so that a bad request gets a 422 naming
the field at fault."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from scaleguard.io._boundary import INT64_MAX, INT64_MIN, document_problem, text_problem

__all__ = ["AlertIn", "AlertStateIn", "BatchIn", "EventIn", "RunCreate", "RunFinish",
           "INT64_MAX", "INT64_MIN", "JsonObject", "MAX_BATCH_POINTS", "MAX_NAME_CHARS",
           "StoredText"]

# 50,000 points fill about the default 4 MiB body limit as JSON; a tracking client sends
# batches of a few hundred to a few thousand, so this is a ceiling, not a target.
MAX_BATCH_POINTS = 50_000
MAX_BATCH_RECORDS = 10_000  # events or alerts in one batch
MAX_NAME_CHARS = 200  # run and metric names; longer ones are almost surely a bug in the caller
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # safe in a URL path without escaping

Severity = Literal["info", "warning", "critical"]
# Steps are stored as BIGINT: a JSON integer outside int64 is refused here, not by the database.
Step = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    # Stored as JSON text and read back by every listing: NaN, infinity, lone surrogates and
    # 300 levels of nesting would be stored fine and then break each read (a 500 for everyone).
    problem = document_problem(value, finite=True)
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    return value


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Text the store is asked to look up or keep as it is (a rollout id in a path, a Flagger
# canary's name): a NUL or a lone surrogate in it is the client's mistake, answered with a 422
# naming the parameter, never a database error (PostgreSQL refuses NUL in text).
StoredText = Annotated[str, AfterValidator(_storable)]

# A JSON object kept as given (run config, event payload, alert extra), within the limits.
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
# Times are epoch seconds: NaN or infinity would sort and plot as nonsense.
Time = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    # Unknown fields are refused rather than dropped: a typo should not silently lose data.
    model_config = ConfigDict(extra="forbid")
    # Fields that pydantic itself checks item by item (long arrays of numbers), which the
    # walk below skips so that a 50,000-point batch does not pay for it twice.
    _bulk: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _within_limits(cls, data: Any) -> Any:
        # Before any field is validated: depth, value count and valid Unicode everywhere
        # (a lone surrogate in a name is a 500 at the database, and every later read fails).
        if isinstance(data, dict):
            rest = {k: v for k, v in data.items() if k not in cls._bulk}
            problem = document_problem(rest, finite=False, int64=False)  # fields check numbers
            if problem is not None:
                raise ValueError(f"{problem[0]}: {problem[1]}")
        return data


class RunCreate(_Strict):
    """A new run (or a resumed one, when ``run_id`` is an existing id)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    config: JsonObject = Field(default_factory=dict)
    started_at: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    status: str = Field(default="running", min_length=1, max_length=32)


class RunFinish(_Strict):
    """How a run ended."""

    status: str = Field(default="finished", min_length=1, max_length=32)
    finished_at: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class EventIn(_Strict):
    """A generic record (detector finding, note) of the run."""

    kind: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    time: Time
    payload: JsonObject = Field(default_factory=dict)
    source: str = Field(default="", max_length=MAX_NAME_CHARS)
    step: Step | None = None
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)


class AlertIn(_Strict):
    """An alert raised by the run (by a detector or by hand)."""

    time: Time
    severity: Severity
    title: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    message: str = Field(default="", max_length=10_000)
    metric: str = Field(default="", max_length=MAX_NAME_CHARS)
    step: Step | None = None
    value: float | None = None
    detector: str = Field(default="manual", max_length=MAX_NAME_CHARS)
    action: str = Field(default="", max_length=10_000)
    extra: JsonObject = Field(default_factory=dict)
    run: str | None = None  # ignored: the run is the one in the URL


class BatchIn(_Strict):
    """Metric points as parallel arrays (the wire form of ``scaleguard.monitor.Batch``).

    ``values`` may hold NaN and ±inf (as JSON strings ``"nan"``, ``"inf"``, ``"-inf"``): they
    are findings, and are stored as such. ``times`` defaults to the time of receipt.
    """

    _bulk: ClassVar[frozenset[str]] = frozenset({"steps", "names", "values", "times"})

    steps: list[Step] = Field(max_length=MAX_BATCH_POINTS)
    names: list[str] = Field(max_length=MAX_BATCH_POINTS)
    values: list[float] = Field(max_length=MAX_BATCH_POINTS)
    times: list[Time] | None = Field(default=None, max_length=MAX_BATCH_POINTS)
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
        if text_problem("".join(self.names)) is not None:  # one C-speed pass over all names
            index = next(i for i, n in enumerate(self.names) if text_problem(n) is not None)
            raise ValueError(f"names[{index}]: {text_problem(self.names[index])}")
        return self


class AlertStateIn(_Strict):
    """What people did about an alert: ``acknowledged``, ``resolved``, or ``open`` again."""

    state: Literal["open", "acknowledged", "resolved"]
