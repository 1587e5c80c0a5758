"""An OpenFeature provider on :class:`scaleguard.safety.RolloutClient` (extra ``openfeature``).

Applications that evaluate flags through OpenFeature ask scaleguard for a rollout's arm with
one line::

    api.set_provider(ScaleguardProvider("http://scaleguard:8321", token=TOKEN))
    arm = api.get_client().get_string_value("model-v3", "control", context)

The flag key is the rollout's id; the evaluation context's targeting key is the unit id and its
attributes are the unit's segments (``region="eu"``). The arm is exactly
``RolloutClient.assign``'s: sticky, honouring the stage's traffic and admitted segments, and
``"control"`` whenever the client fails safe (the rollout held or rolled back, the service
unreachable past the client's deadline). A boolean flag is ``arm == "treatment"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

from scaleguard.errors import InputError

__all__ = ["MAX_ROLLOUTS", "ScaleguardProvider"]

CONTROL = "control"
# Rollouts one provider follows (one client, one background refresher each): a process runs a
# handful at a time; a flag key from user input must not start threads without end.
MAX_ROLLOUTS = 64


class ScaleguardProvider(AbstractProvider):
    """OpenFeature flags backed by scaleguard rollouts (flag key = rollout id).

    Parameters
    ----------
    url, token:
        The scaleguard service and a bearer token (as for ``RolloutClient``).
    clients:
        Ready clients by flag key, instead of (or before) the ones made from ``url``.
    client_factory:
        Makes the client of a flag key (default: ``RolloutClient(url, rollout=key, token=...,
        **options)``); called once per key, at most :data:`MAX_ROLLOUTS` keys.
    **options:
        Passed to each ``RolloutClient`` (``ttl``, ``deadline``, ``timeout``...).
    """

    def __init__(self, url: str | None = None, *, token: str | None = None,
                 clients: Mapping[str, Any] | None = None,
                 client_factory: Callable[[str], Any] | None = None, **options: Any) -> None:
        super().__init__()
        if url is None and client_factory is None and not clients:
            raise InputError("url: give the scaleguard service's url (or clients)")
        self._clients: dict[str, Any] = dict(clients or {})
        self._owned: list[Any] = []
        self._lock = threading.Lock()

        def default(key: str) -> Any:
            from scaleguard.safety import RolloutClient

            return RolloutClient(str(url), rollout=key, token=token, **options)

        self._factory = client_factory or (default if url is not None else None)

    def get_metadata(self) -> Metadata:
        return Metadata(name="scaleguard")

    def client(self, flag_key: str) -> Any | None:
        """The rollout client of ``flag_key`` (made on first use); None past the bound."""
        found = self._clients.get(flag_key)
        if found is not None or self._factory is None:
            return found
        with self._lock:
            if flag_key not in self._clients:
                if len(self._clients) >= MAX_ROLLOUTS:
                    return None
                made = self._factory(flag_key)
                self._clients[flag_key] = made
                self._owned.append(made)
            return self._clients[flag_key]

    def shutdown(self) -> None:
        """Close the clients this provider made (their refresh threads and pending windows)."""
        with self._lock:
            owned, self._owned = self._owned, []
            for key in [k for k, c in self._clients.items() if c in owned]:
                del self._clients[key]
        for made in owned:
            made.close()

    def _arm(self, flag_key: str, context: EvaluationContext | None
             ) -> tuple[str, str | Reason, ErrorCode | None, str | None]:
        """(arm, reason, error code, message). When it cannot ask, the arm is control with the
        reason ERROR and no error code: OpenFeature would hand the caller's default instead,
        and a default of "treatment" must never expose a unit nobody assigned."""
        unit = context.targeting_key if context is not None else None
        if not unit:
            return CONTROL, Reason.ERROR, None, \
                "the evaluation context needs a targeting key (the unit id); served control"
        client = self.client(flag_key)
        if client is None:
            return CONTROL, Reason.ERROR, None, \
                f"no scaleguard rollout for flag {flag_key!r} (at most {MAX_ROLLOUTS} followed)"
        segments = {str(k): v for k, v in (context.attributes if context else {}).items()
                    if isinstance(v, str | int | float | bool)}
        return str(client.assign(unit, **segments)), Reason.SPLIT, None, None

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        arm, reason, code, message = self._arm(flag_key, evaluation_context)
        return FlagResolutionDetails(arm, code, message, reason, arm)

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[bool]:
        arm, reason, code, message = self._arm(flag_key, evaluation_context)
        return FlagResolutionDetails(arm == "treatment", code, message, reason, arm)

    def _mismatch(self, default: Any, kind: str) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(default, ErrorCode.TYPE_MISMATCH,
                                     f"a scaleguard rollout is a string (the arm) or a boolean "
                                     f"(treatment), not {kind}", Reason.ERROR)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[int]:
        return self._mismatch(default_value, "an integer")

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None
                              ) -> FlagResolutionDetails[float]:
        return self._mismatch(default_value, "a float")

    def resolve_object_details(self, flag_key: str,
                               default_value: Sequence[Any] | Mapping[str, Any],
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._mismatch(default_value, "an object")
