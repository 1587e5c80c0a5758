"""Persistence of a rollout: its state (one JSON file) and its audit log (JSON lines).

Kept apart from :func:`decide` so that the controller stays pure. The state file is replaced
atomically (write a temporary file, fsync, rename), so that a crash leaves the old state or the
new one, never half of one; the audit log is append-only and fsynced after every record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from scaleguard.errors import ConfigError
from scaleguard.io import load_json, read_text
from scaleguard.safety._controller import Decision, RolloutState

__all__ = ["RolloutStore", "FileRolloutStore", "audit_record"]


class RolloutStore(Protocol):
    """Where a controller keeps its state and appends its audit log: a folder of files
    (:class:`FileRolloutStore`) or a monitor store's database
    (:class:`~scaleguard.safety.DatabaseRolloutStore`, used by the CLI's ``--store``, the
    service and ``assess``)."""

    def load_state(self) -> RolloutState | None: ...

    def save_state(self, state: RolloutState) -> None: ...

    def append_audit(self, record: dict[str, Any]) -> None: ...

    def audit(self) -> list[dict[str, Any]]: ...


def audit_record(plan_name: str, decision: Decision, source: str | None = None) -> dict[str, Any]:
    """One audit-log line: the decision and all its evidence, with the plan and data source."""
    return {"plan": plan_name, "observations": source, **decision.as_dict()}


class FileRolloutStore:
    """State in ``<folder>/state.json``, audit log in ``<folder>/audit.jsonl``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"
        self.audit_path = self.folder / "audit.jsonl"

    def load_state(self) -> RolloutState | None:
        if not self.state_path.is_file():
            return None
        # io's limits: a state that is not UTF-8, too deep or too large is one line, not a crash.
        data = load_json(read_text(self.state_path, "rollout state"),
                         f"{self.state_path}: unreadable rollout state", error=ConfigError,
                         finite=False)
        if not isinstance(data, dict):
            raise ConfigError(f"{self.state_path}: expected a JSON object")
        return RolloutState.from_dict(data, str(self.state_path))

    def save_state(self, state: RolloutState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".state.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state.as_dict(), handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def append_audit(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.audit_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def audit(self) -> list[dict[str, Any]]:
        if not self.audit_path.is_file():
            return []
        records = []
        for lineno, line in enumerate(self.audit_path.read_text(encoding="utf-8").splitlines(),
                                      start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ConfigError(f"{self.audit_path}: line {lineno}: not valid JSON"
                                      ) from None
        return records

    def __repr__(self) -> str:
        return f"FileRolloutStore({str(self.folder)!r})"
