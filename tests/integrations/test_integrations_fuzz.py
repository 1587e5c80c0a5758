"""Hostile bodies and names at the deploy-tool endpoints: a one-line 4xx, never a 500, and
nothing a refused request sent is stored."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleguard.service._flagger import HOOKS

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries({"name": st.text(max_size=300), "namespace": st.text(max_size=300)},
                          optional={"phase": JSON, "checksum": JSON, "metadata": JSON}),
)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.sampled_from(HOOKS), PAYLOADS)
def test_flagger_hooks_refuse_what_flagger_would_never_send(client, auth, rollout, hook,
                                                           payload):
    if client.get("/api/v1/rollouts/podinfo.test", headers=auth).status_code != 200:
        rollout("podinfo.test")
    answer = client.post(f"/api/v1/flagger/{hook}", content=json.dumps(payload),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code in (200, 401, 404, 409, 422), answer.text
    if answer.status_code == 422:
        assert "\n" not in answer.json()["error"]


@FUZZ
@given(st.text(max_size=60), st.one_of(st.none(), JSON))
def test_argo_measurements_refuse_unknown_stages_and_odd_bodies(client, auth, rollout, stage,
                                                                body):
    if client.get("/api/v1/rollouts/assistant-v3", headers=auth).status_code != 200:
        rollout()
    got = client.get("/api/v1/argo/rollouts/assistant-v3", params={"stage": stage},
                     headers=auth)
    assert got.status_code in (200, 422), got.text
    posted = client.post("/api/v1/argo/rollouts/assistant-v3", content=json.dumps(body),
                         headers={**auth, "Content-Type": "application/json"})
    assert posted.status_code in (200, 422), posted.text
    audit = client.get("/api/v1/rollouts/assistant-v3/audit", headers=auth).json()
    assert audit == []  # a deploy tool's reading never writes
