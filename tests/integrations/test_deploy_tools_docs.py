"""The deploy-tool page (docs/how-to/deploy-tools.md): every YAML on it parses, names the
endpoints the service serves, and its conditions read the service's answers as intended.

Argo's semantics (argoproj/argo-rollouts docs/features/analysis.md): a measurement is
Successful when successCondition holds, Failed when failureCondition holds, Inconclusive when
both are given and neither holds; ``failureLimit: -1`` with ``consecutiveSuccessLimit`` waits
through failed measurements for a success; an Inconclusive run pauses the rollout.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from scaleguard.safety import parse_plan
from scaleguard.service._flagger import HOOKS
from scaleguard.service._verdict import VERDICTS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "deploy-tools.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def page_blocks() -> dict[str, str]:
    """The page's fenced blocks by title (untitled ones by language and position)."""
    found = {}
    for n, (lang, info, body) in enumerate(FENCE.findall(PAGE.read_text(encoding="utf-8"))):
        title = re.search(r'title="([^"]+)"', info)
        found[title.group(1) if title else f"{lang}-{n}"] = body
    return found


BLOCKS = page_blocks()
PLAN = parse_plan(yaml.safe_load(BLOCKS["plan.yaml"]), "deploy-tools.md plan.yaml")
WEIGHTS = [round(100 * s.traffic) for s in PLAN.stages]


def documents(title: str) -> dict[str, list[dict]]:
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(BLOCKS[title]):
        by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def argo_phase(metric: dict, result: str) -> str:
    """Argo's measurement phase for ``result`` (the jsonPath's value) under the metric's
    conditions; the expressions are Argo's expr language, here in its Python-compatible part."""
    def holds(condition: str | None) -> bool:
        if condition is None:
            return False
        expression = condition.replace("||", " or ").replace("&&", " and ")
        return bool(eval(expression, {"__builtins__": {}}, {"result": result}))  # noqa: S307

    if holds(metric.get("successCondition")):
        return "Successful"
    if holds(metric.get("failureCondition")):
        return "Failed"
    return "Inconclusive"


def test_every_yaml_block_parses():
    for title, body in BLOCKS.items():
        if title.endswith(".yaml") or title.startswith("yaml-"):
            assert list(yaml.safe_load_all(body)), title
    oversight = next(yaml.safe_load(b)["oversight"] for t, b in BLOCKS.items()
                     if t.startswith("yaml-") and "oversight" in b)
    assert parse_plan({**yaml.safe_load(BLOCKS["plan.yaml"]), "oversight": oversight})
    assert PLAN.oversight is not None and PLAN.oversight.metric == "flagged_for_review"


def test_argo_templates_call_the_web_endpoint_with_the_secret_token():
    docs = documents("argo-rollouts.yaml")
    secret = docs["Secret"][0]
    templates = {t["metadata"]["name"]: t for t in docs["AnalysisTemplate"]}
    assert set(templates) == {"scaleguard-stage", "scaleguard-guard"}
    for template in templates.values():
        token = next(a for a in template["spec"]["args"] if a["name"] == "api-token")
        ref = token["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        assert template["metadata"]["namespace"] == secret["metadata"]["namespace"]
        (metric,) = template["spec"]["metrics"]
        web = metric["provider"]["web"]
        assert urlsplit(web["url"]).path == "/api/v1/argo/rollouts/{{ args.rollout-id }}"
        assert {"key": "Authorization", "value": "Bearer {{ args.api-token }}"} in web["headers"]
        assert web["jsonPath"] == "{$.verdict}"
    stage = templates["scaleguard-stage"]["spec"]["metrics"][0]
    assert stage["failureLimit"] == -1 and stage["consecutiveSuccessLimit"] == 1
    assert "stage={{ args.stage }}" in stage["provider"]["web"]["url"]
    assert [argo_phase(stage, v) for v in VERDICTS] == \
        ["Successful", "Failed", "Inconclusive", "Inconclusive"]  # pass, continue (waits), ...
    guard = templates["scaleguard-guard"]["spec"]["metrics"][0]
    assert guard["failureLimit"] == 0
    assert [argo_phase(guard, v) for v in VERDICTS] == \
        ["Successful", "Successful", "Inconclusive", "Failed"]


def test_argo_steps_follow_the_plan_stage_by_stage():
    rollout = documents("argo-rollouts.yaml")["Rollout"][0]
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["analysis"]["templates"] == [{"templateName": "scaleguard-guard"}]
    steps = canary["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == WEIGHTS
    for i, stage in enumerate(PLAN.stages):
        weight, analysis = steps[2 * i], steps[2 * i + 1]["analysis"]
        args = {a["name"]: a["value"] for a in analysis["args"]}
        assert weight == {"setWeight": WEIGHTS[i]}
        assert analysis["templates"] == [{"templateName": "scaleguard-stage"}]
        assert args == {"rollout-id": PLAN.name, "stage": stage.name}


def test_flagger_canary_hooks_are_the_four_answered_and_steps_follow_the_plan():
    canary = documents("flagger-canary.yaml")["Canary"][0]
    analysis = canary["spec"]["analysis"]
    assert analysis["stepWeights"] == WEIGHTS
    hooks = analysis["webhooks"]
    assert sorted(h["type"] for h in hooks) == sorted(HOOKS)
    for h in hooks:
        assert urlsplit(h["url"]).path == f"/api/v1/flagger/{h['type']}"
        assert h["metadata"]["rollout_id"] == PLAN.name and h["metadata"]["token"]


@pytest.mark.parametrize("tool", ["argo", "flagger"])
def test_the_documented_urls_reach_the_service(tool, client, auth, rollout, observe, rows):
    # The integration fixtures' plan has the page's stages; created under the page's id.
    rid = rollout(PLAN.name)
    if tool == "argo":
        template = next(t for t in documents("argo-rollouts.yaml")["AnalysisTemplate"]
                        if t["metadata"]["name"] == "scaleguard-stage")
        metric = template["spec"]["metrics"][0]
        url = urlsplit(metric["provider"]["web"]["url"].replace("{{ args.rollout-id }}", rid)
                       .replace("{{ args.stage }}", "pilot"))
        answer = client.get(f"{url.path}?{url.query}", headers=auth)
        assert answer.status_code == 200
        assert argo_phase(metric, answer.json()["verdict"]) == "Failed"  # waits: continue
        observe(rid, rows("pilot"))
        answer = client.get(f"{url.path}?{url.query}", headers=auth)
        assert argo_phase(metric, answer.json()["verdict"]) == "Successful"
    else:
        canary = documents("flagger-canary.yaml")["Canary"][0]
        (start,) = [h for h in canary["spec"]["analysis"]["webhooks"]
                    if h["type"] == "confirm-rollout"]
        payload = {"name": canary["metadata"]["name"],
                   "namespace": canary["metadata"]["namespace"], "phase": "Initializing",
                   "checksum": "85d557f47b",
                   "metadata": {**start["metadata"], "token": auth["Authorization"][7:]}}
        assert client.post(urlsplit(start["url"]).path, json=payload).status_code == 200


def test_the_openfeature_example_asks_for_the_rollout_by_its_id():
    source = BLOCKS["app.py"]
    compile(source, "deploy-tools.md app.py", "exec")
    assert f'get_string_value("{PLAN.name}", "control", context)' in source
    assert "targeting_key=user_id" in source
