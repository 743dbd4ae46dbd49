"""`manage.py gateway`: the top-level ``guardrails:`` list (policies per organisation, team
and route; set exactly, others left alone; a dry run shows the diff; errors name the place in
the file; export and apply round-trip; changes audited through the service)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management.base import CommandError

from aigateway.audit.models import AuditEvent
from aigateway.guardrails.models import GuardrailPolicy
from tests.config_as_code.support import apply, gateway

pytestmark = pytest.mark.django_db

BASE = """
version: 1
providers:
  - {name: demo, kind: demo}
routes:
  - name: demo
    deployments:
      - {provider: demo, model: demo}
  - name: team/llama
    deployments:
      - {provider: demo, model: demo}
organisations:
  - slug: acme
    name: Acme
    teams:
      - {slug: research, name: Research, routes: [demo]}
"""

GUARDRAILS = """
guardrails:
  - scope: org
    target: acme
    limits: {max_prompt_tokens: 8000, max_messages: 50}
    allowed_params: [temperature, stop]
    rules:
      - {detect: secrets, action: block}
      - {detect: pii, action: redact, direction: both}
      - {detect: injection, action: flag}
  - scope: team
    target: acme/research
    reversible: true
    rules:
      - {detect: custom.codename, pattern: "Project (Falcon|Eagle)", ignore_case: true,
         action: block}
      - {detect: custom.rivals, words: [globex, initech], action: flag, direction: output}
  - scope: route
    target: acme/team/llama
    limits: {max_output_tokens: 1000}
    enabled: false
"""


def test_apply_creates_policies_and_a_second_apply_changes_nothing(tmp_path: Path):
    out, _ = apply(tmp_path, BASE + GUARDRAILS)
    assert "+ guardrail policy org acme: 3 rules, max_prompt_tokens 8000, max_messages 50" in out
    assert (
        "+ guardrail policy route acme/team/llama: 0 rules, max_output_tokens 1000, disabled" in out
    )
    org = GuardrailPolicy.objects.get(scope="org")
    assert org.allowed_params == ["temperature", "stop"]
    assert org.rules[1] == {"detect": "pii", "action": "redact", "direction": "both"}
    team = GuardrailPolicy.objects.get(scope="team")
    assert team.reversible and team.rules[1]["words"] == ["globex", "initech"]
    assert GuardrailPolicy.objects.get(scope="route").route.name == "team/llama"
    created = AuditEvent.objects.filter(action="guardrail_policy.created")
    assert created.count() == 3 and {e.actor_label for e in created} == {"cli"}
    assert apply(tmp_path, BASE + GUARDRAILS)[0].strip() == "no changes"


def test_a_dry_run_prints_the_diff_rule_by_rule_and_writes_nothing(tmp_path: Path):
    apply(tmp_path, BASE + GUARDRAILS)
    changed = (
        GUARDRAILS.replace(
            "{detect: pii, action: redact, direction: both}", "{detect: pii, action: block}"
        )
        .replace("      - {detect: injection, action: flag}\n", "")
        .replace("max_messages: 50", "max_messages: 20")
    )
    changed += "    rules: [{detect: pii.card, action: block, direction: output}]\n"
    out, _ = apply(tmp_path, BASE + changed, "--dry-run")
    assert (
        "~ guardrail policy org acme: max_messages 50 → 20; rules -injection; "
        "rules ~pii redact (both) → block (both)"
    ) in out
    assert "~ guardrail policy route acme/team/llama: rules +pii.card block (output)" in out
    assert GuardrailPolicy.objects.get(scope="org").max_messages == 50


def test_export_writes_the_policies_and_applying_it_changes_nothing(tmp_path: Path):
    apply(tmp_path, BASE + GUARDRAILS)
    exported, _ = gateway("export")
    data = yaml.safe_load(exported)
    assert [(g["scope"], g["target"]) for g in data["guardrails"]] == [
        ("org", "acme"),
        ("team", "acme/research"),
        ("route", "acme/team/llama"),
    ]
    assert data["guardrails"][0]["limits"] == {"max_prompt_tokens": 8000, "max_messages": 50}
    path = tmp_path / "exported.yaml"
    path.write_text(exported)
    assert gateway("apply", str(path))[0].strip() == "no changes"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{scope: org, target: acme, rules: [{detect: pii.cardd, action: block}]}",
            "guardrails[0].rules[0].detect: unknown detector 'pii.cardd'",
        ),
        (
            "{scope: org, target: acme, rules: [{detect: injection, action: redact}]}",
            "guardrails[0].rules[0].action: 'redact' is not one of: flag, block",
        ),
        (
            "{scope: team, target: research}",
            "guardrails[0].target: 'research' is not ORG/TEAM (e.g. acme/research)",
        ),
        (
            "{scope: org, target: acme, limits: {max_messages: 0}}",
            "guardrails[0].limits.max_messages: must be a whole number from 1 to 10,000,000",
        ),
        (
            "{scope: org, target: acme, allowed_params: [messages]}",
            "guardrails[0].allowed_params[0]: 'messages' is always allowed",
        ),
        (
            "{scope: org, target: acme, rules: [{detect: custom.x, pattern: '(', action: flag}]}",
            "guardrails[0].rules[0].pattern: not a usable regular expression",
        ),
        ("{scope: team, target: acme/nope}", "guardrails[0].target: unknown team 'acme/nope'"),
        ("{scope: route, target: acme/nope}", "guardrails[0].target: unknown route 'nope'"),
        ("{scope: org, target: acme, colour: red}", "guardrails[0].colour: unknown field"),
    ],
)
def test_invalid_policies_are_refused_with_the_place_in_the_file(tmp_path: Path, entry, message):
    with pytest.raises(CommandError) as refused:
        apply(tmp_path, BASE + f"guardrails:\n  - {entry}\n")
    assert message in str(refused.value)
    assert not GuardrailPolicy.objects.exists()


def test_a_policy_listed_twice_is_an_error(tmp_path: Path):
    twice = "guardrails:\n  - {scope: org, target: acme}\n  - {scope: org, target: acme}\n"
    with pytest.raises(
        CommandError,
        match=r"guardrails\[1\]: duplicate guardrail policy for org "
        r"'acme' \(declared at guardrails\[0\] already\)",
    ):
        apply(tmp_path, BASE + twice)
