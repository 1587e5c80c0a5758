"""The OpenFeature provider: through OpenFeature's own client, the same arm as
``RolloutClient.assign`` for every unit, and "control" when the service is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("openfeature", reason="the provider needs the 'openfeature' extra")

from openfeature import api  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.flag_evaluation import Reason  # noqa: E402

from scaleguard.integrations.openfeature import ScaleguardProvider  # noqa: E402
from scaleguard.safety import RolloutClient  # noqa: E402

PLAN = {
    "name": "model-v3",
    "metrics": [{"name": "harmful_output", "guardrail": 0.05}],
    "segments": {"region": ["us", "eu"]},
    "stages": [{"name": "pilot", "traffic": 0.3, "segments": {"region": ["us"]}},
               {"name": "everyone", "traffic": 1.0}],
}
UNITS = 10_000


@pytest.fixture
def flags() -> Iterator[None]:
    yield
    api.shutdown()  # closes the provider's clients
    api.clear_providers()


def test_the_provider_returns_the_arm_assign_gives_for_10000_units(live, auth, flags):
    import httpx

    created = httpx.post(f"{live}/api/v1/rollouts", headers=auth,
                         json={"plan": PLAN, "rollout_id": "model-v3"})
    assert created.status_code == 201, created.text
    token = auth["Authorization"].removeprefix("Bearer ")
    direct = RolloutClient(live, rollout="model-v3", token=token)
    try:
        api.set_provider(ScaleguardProvider(live, token=token))
        flags_client = api.get_client()
        arms = []
        for i in range(UNITS):
            region = ("us", "eu")[i % 2]
            context = EvaluationContext(targeting_key=f"user-{i}",
                                        attributes={"region": region})
            arm = flags_client.get_string_value("model-v3", "control", context)
            assert arm == direct.assign(f"user-{i}", region=region)
            arms.append((region, arm))
        details = flags_client.get_string_details("model-v3", "control", context)
        assert details.reason == Reason.SPLIT and details.variant == arm
        assert flags_client.get_boolean_value("model-v3", False, EvaluationContext(
            targeting_key="user-0", attributes={"region": "us"})) == \
            (direct.assign("user-0", region="us") == "treatment")
    finally:
        direct.close()
    treated_us = sum(arm == "treatment" for region, arm in arms if region == "us")
    assert 0.25 * UNITS / 2 < treated_us < 0.35 * UNITS / 2  # the stage's 30% of the us units
    assert all(arm == "control" for region, arm in arms if region == "eu")  # not admitted


def test_control_when_the_service_is_down(flags):
    # Nothing listens on port 9: past the client's deadline every unit is control.
    provider = ScaleguardProvider("http://127.0.0.1:9", deadline=0.1, timeout=0.1)
    api.set_provider(provider)
    flags_client = api.get_client()
    context = EvaluationContext(targeting_key="user-1", attributes={"region": "us"})
    assert flags_client.get_string_value("model-v3", "treatment", context) == "control"
    assert flags_client.get_boolean_value("model-v3", True, context) is False


def test_a_context_without_a_unit_is_control_with_an_error(flags):
    api.set_provider(ScaleguardProvider("http://127.0.0.1:9", deadline=0.1, timeout=0.1))
    details = api.get_client().get_string_details("model-v3", "treatment", EvaluationContext())
    # Never the caller's default: a default of "treatment" would expose an unassigned unit.
    assert details.value == "control" and details.reason == Reason.ERROR
    assert "targeting key" in details.error_message
    number = api.get_client().get_integer_details("model-v3", 3, EvaluationContext("u"))
    assert number.value == 3 and number.error_code == "TYPE_MISMATCH"
