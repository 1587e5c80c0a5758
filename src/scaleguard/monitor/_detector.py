"""The shape every detector shares: ``update``, vectorised ``scan``, ``state_dict``.

A detector is a small stateful object (as in river): :meth:`Detector.update` takes one value and
its step and returns an :class:`~scaleguard.monitor.Event` or None; :meth:`Detector.scan` does
the same over an array and leaves the detector in the state the same updates would; and
:meth:`Detector.state_dict` / :meth:`Detector.load_state_dict` carry that state across a
checkpoint or a restart as a JSON-ready dict.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from scaleguard.errors import InputError
from scaleguard.monitor._events import Event

__all__ = ["Detector", "as_steps", "finite_points", "restart_action", "run_starts"]


def restart_action(step: int) -> str:
    """PaLM's remedy for a loss spike (Chowdhery et al. 2022, sec. 5.1): restart about 100
    steps before the spike and skip roughly 200-500 batches."""
    return (f"restart from the checkpoint before step {max(step - 100, 0)} and skip the "
            f"batches in between (about 200-500, as PaLM did)")


def as_steps(values: np.ndarray, steps: Sequence[int] | np.ndarray | None) -> np.ndarray:
    """``steps`` as int64 of the same length as ``values`` (0, 1, 2... when None)."""
    if steps is None:
        return np.arange(len(values), dtype=np.int64)
    out = np.asarray(steps, dtype=np.int64)
    if out.shape != values.shape:
        raise InputError(f"steps: expected {len(values)} steps for {len(values)} values, "
                         f"got {out.size}")
    return out


def finite_points(values: Sequence[float] | np.ndarray,
                  steps: Sequence[int] | np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(values, steps)`` as arrays without the non-finite values (for detectors that leave
    NaN/Inf to :class:`~scaleguard.monitor.NonFiniteDetector`)."""
    array = np.asarray(values, dtype=np.float64)
    steps = as_steps(array, steps)
    keep = np.isfinite(array)
    return array[keep], steps[keep]


def run_starts(flags: np.ndarray, inside: bool) -> tuple[np.ndarray, bool]:
    """Indices where a run of True ``flags`` starts (``inside``: the previous value was True),
    and whether the last value is True: one event per run, not one per flagged value."""
    before = np.concatenate([[inside], flags[:-1]])
    return np.flatnonzero(flags & ~before), bool(flags[-1]) if len(flags) else inside


class Detector:
    """Base class: subclasses set ``name``, ``_params`` and ``_state`` and define ``update``.

    ``_params`` are the constructor's settings (also the ``__repr__``); ``_state`` the attributes
    that change as values arrive. A deque attribute is saved as a list and restored as a deque
    of the same ``maxlen``.
    """

    name: ClassVar[str] = "detector"
    # True for detectors whose "step" is a time in seconds (burn rate over 1h/5m windows):
    # callers pass the points' times, when they have them, instead of their steps.
    uses_time: ClassVar[bool] = False
    _params: ClassVar[tuple[str, ...]] = ()
    _state: ClassVar[tuple[str, ...]] = ()

    def update(self, value: float, step: int) -> Event | None:  # pragma: no cover - abstract
        """Take one value; return an event if this value triggers one."""
        raise NotImplementedError

    def scan(self, values: Sequence[float] | np.ndarray,
             steps: Sequence[int] | np.ndarray | None = None) -> list[Event]:
        """Update on every value in order and return the events; subclasses vectorise this."""
        array = np.asarray(values, dtype=np.float64)
        found = []
        for value, step in zip(array.tolist(), as_steps(array, steps).tolist(), strict=True):
            event = self.update(value, step)
            if event is not None:
                found.append(event)
        return found

    def reset(self) -> None:
        """Forget everything seen (settings stay)."""
        fresh = type(self)(**self.params())
        for attr in self._state:
            setattr(self, attr, getattr(fresh, attr))
        self._after_load()

    def _after_load(self) -> None:
        """Rebuild anything derived from the state (a hook for subclasses)."""

    def params(self) -> dict[str, Any]:
        """The constructor's settings."""
        return {p: getattr(self, p) for p in self._params}

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the detector's name, settings and state."""
        state = {}
        for attr in self._state:
            value = getattr(self, attr)
            state[attr] = list(value) if isinstance(value, deque) else value
        return {"detector": self.name, "params": self.params(), "state": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the detector kind must match)."""
        if state_dict.get("detector") != self.name:
            raise InputError(f"state_dict: detector {state_dict.get('detector')!r} cannot be "
                             f"loaded into {self.name!r}")
        for attr, value in state_dict.get("params", {}).items():
            if attr in self._params:
                setattr(self, attr, value)
        fresh = type(self)(**self.params())
        for attr in self._state:
            if attr not in state_dict.get("state", {}):
                raise InputError(f"state_dict: {self.name} state lacks {attr!r}")
            value = state_dict["state"][attr]
            template = getattr(fresh, attr)
            if isinstance(template, deque):
                value = deque(value, maxlen=template.maxlen)
            setattr(self, attr, value)
        self._after_load()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_positive(option: str, value: float, *, integer: bool = False) -> None:
    """Refuse a non-positive (or non-integer) detector setting by name."""
    if integer and (not isinstance(value, int | np.integer) or isinstance(value, bool)
                    or value < 1):
        raise InputError(f"{option}: expected a positive integer, got {value!r}")
    if not value > 0:
        raise InputError(f"{option}: expected a positive number, got {value!r}")
