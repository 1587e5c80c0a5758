"""Manual approval of a stage: when a stage waits for a person, and what approving it records.

A plan stage with ``manual_approval: true`` is entered only once a person has approved it. The
controller says so in its decision (every gate passed, entering the stage awaits approval) and
holds. An approval adds the stage to the state's ``approved`` stages, which every later
decision honours, and writes an entry to the audit log naming who approved, when, and why.
Pure: the service's approval endpoint and the dashboard's Approve button both ask
:func:`awaiting_approval`, so the button is shown exactly when the endpoint accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from scaleguard.errors import InputError, StateConflict
from scaleguard.safety._controller import RolloutState, awaiting_approval_reason
from scaleguard.safety._plan import RolloutPlan

__all__ = ["APPROVAL_KIND", "MAX_NOTE_CHARS", "Approval", "approve", "awaiting_approval",
           "is_approval"]

APPROVAL_KIND = "approval"  # the ``kind`` of an approval's audit record; decisions have none
MAX_NOTE_CHARS = 1_000  # a sentence or two of why; the audit log is not a document store


def is_approval(record: Mapping[str, Any]) -> bool:
    """Whether an audit record is a person's approval (else it is a controller decision)."""
    return record.get("kind") == APPROVAL_KIND


def awaiting_approval(plan: RolloutPlan, state: RolloutState,
                      last: Mapping[str, Any] | None) -> str | None:
    """The stage waiting for a person's approval now, or None.

    A stage waits when the rollout runs, the stage comes next and needs approval, nobody has
    approved it, and the latest audit record (``last``) is the decision that left ``state`` as
    it is (up to the entry count) and held because every gate passed and only the approval
    was missing.

    Examples
    --------
    >>> from scaleguard.safety import initial_state, parse_plan
    >>> plan = parse_plan({"name": "p", "metrics": [{"name": "harm", "guardrail": 0.1}],
    ...                    "stages": [{"name": "pilot", "traffic": 0.1},
    ...                               {"name": "all", "traffic": 1, "manual_approval": True}]})
    >>> state = initial_state(plan, 0.0)
    >>> awaiting_approval(plan, state, None) is None
    True
    >>> held = {"action": "hold", "state": state.as_dict(),
    ...         "reasons": ["all gates pass; entering stage 'all' awaits manual approval"]}
    >>> awaiting_approval(plan, state, held)
    'all'
    """
    if state.status != "running" or state.stage_index + 1 >= len(plan.stages):
        return None
    nxt = plan.stages[state.stage_index + 1]
    if not nxt.manual_approval or nxt.name in state.approved or last is None or \
            is_approval(last) or last.get("action") != "hold":
        return None
    # The record must be the one that left this state: a decision since that found new data
    # may no longer pass every gate. Entries that do not change the rollout's course (a deploy
    # tool's confirmation) only add to the entry count, so the count is not compared.
    decided = last.get("state")
    if not isinstance(decided, Mapping) or \
            {**decided, "decisions": 0} != {**state.as_dict(), "decisions": 0}:
        return None
    reasons = last.get("reasons")
    if not isinstance(reasons, list) or awaiting_approval_reason(nxt.name) not in reasons:
        return None
    return nxt.name


@dataclass(frozen=True)
class Approval:
    """A person's approval of entering ``stage``; ``state`` is the rollout's state after it."""

    stage: str
    by: str
    time: float
    note: str | None
    state: RolloutState

    def as_dict(self) -> dict[str, Any]:
        """The audit record: decision-shaped (action, stage, traffic, reasons, state), so that
        every reader of the audit log can show it, with ``kind: "approval"`` and who."""
        why = f"{self.by} approved entering stage {self.stage!r}" + \
              (f": {self.note}" if self.note else "")
        return {"kind": APPROVAL_KIND, "action": "approve", "stage": self.stage,
                "approved_by": self.by, "note": self.note, "time": self.time,
                "traffic": self.state.traffic, "reasons": [why], "notes": [], "srm": None,
                "failing": [], "gates": [], "state": self.state.as_dict()}

    def __repr__(self) -> str:
        return f"Approval({self.stage!r} by {self.by!r} at {self.time:.0f})"


def approve(plan: RolloutPlan, state: RolloutState, last: Mapping[str, Any] | None, stage: str,
            by: str, at: float, note: str | None = None) -> Approval:
    """Approve entering ``stage`` (by ``by`` at Unix time ``at``), or refuse saying why.

    ``last`` is the latest audit record. The new state counts the approval as an audit entry
    (``decisions + 1``), so that entries keep one sequence.

    Raises
    ------
    InputError
        ``stage`` is not a stage of the plan, or ``by`` / ``note`` is empty or too long.
    StateConflict
        The stage is not waiting for approval: the rollout is finished, the stage was entered
        or approved already, needs no approval, or its gates have not all passed yet.
    """
    names = [s.name for s in plan.stages]
    if stage not in names:
        raise InputError(f"stage: {stage!r} is not a stage of plan {plan.name!r} "
                         f"(stages: {', '.join(names)})")
    if not by.strip():
        raise InputError("approved_by: expected the approver's name, got an empty string")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InputError(f"note: {len(note)} characters, expected at most {MAX_NOTE_CHARS}")
    index = names.index(stage)
    waiting = awaiting_approval(plan, state, last)
    if waiting == stage:
        return Approval(stage, by, at, note or None,
                        replace(state, approved=(*state.approved, stage),
                                decisions=state.decisions + 1))
    if state.status != "running":
        why = f"the rollout is {state.status.replace('_', ' ')}; nothing waits for approval"
    elif stage in state.approved:
        why = "it is approved already"
    elif index <= state.stage_index:
        why = "the rollout has entered it already"
    elif not plan.stages[index].manual_approval:
        why = "the plan does not ask for its approval (manual_approval is false)"
    elif index > state.stage_index + 1:
        why = f"the rollout is at {plan.stages[state.stage_index].name!r}; only the next " \
              "stage can wait for approval"
    else:
        why = f"the gates at {plan.stages[state.stage_index].name!r} have not all passed at " \
              "the latest decision"
    raise StateConflict(f"stage {stage!r} is not waiting for approval: {why}")
