"""Guardrail policies: the rules' validation (one set of sentences for the dashboard and the
config file), how organisation, team and route policies merge, and how the merged policy is
cached (no database query per call, dropped when a policy changes)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied, ValidationError

from aigateway.audit.models import AuditEvent
from aigateway.core.config_cache import config_cache
from aigateway.guardrails import detectors
from aigateway.guardrails.models import GuardrailPolicy
from aigateway.guardrails.policy import merge, policy_for_call, stored_policy
from aigateway.guardrails.rules import RuleError, params_parse, rules_parse
from aigateway.guardrails.services import PolicyValues, policy_delete, policy_set
from tests.factories import make_provider, make_route


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"detect": "pii.cardd", "action": "block"}],
            "rules[0].detect: unknown detector 'pii.cardd'",
        ),
        (
            [{"detect": "pii", "action": "drop"}],
            "rules[0].action: 'drop' is not one of: block, redact, flag",
        ),
        (
            [{"detect": "pii", "action": "block", "direction": "sideways"}],
            "rules[0].direction: 'sideways' is not one of",
        ),
        (
            [{"detect": "injection", "action": "redact"}],
            "rules[0].action: 'redact' is not one of: flag, block",
        ),
        (
            [{"detect": "injection", "action": "flag", "direction": "output"}],
            "rules[0].direction: injection heuristics check input only",
        ),
        (
            [{"detect": "custom.x", "action": "flag"}],
            "rules[0]: a custom rule needs either 'pattern' or 'words'",
        ),
        (
            [{"detect": "custom.x", "pattern": "(", "action": "flag"}],
            "rules[0].pattern: not a usable regular expression",
        ),
        (
            [{"detect": "custom.Bad Name", "words": ["a"], "action": "flag"}],
            "rules[0].detect: 'custom.Bad Name' is not a valid custom name",
        ),
        (
            [{"detect": "pii", "action": "flag", "pattern": "x"}],
            "rules[0].pattern: only custom rules",
        ),
        ([{"detect": "pii", "action": "flag", "colour": "red"}], "rules[0].colour: unknown field"),
        (
            [{"detect": "pii", "action": "flag"}, {"detect": "pii", "action": "block"}],
            "rules[1].detect: 'pii' already has a rule (rules[0])",
        ),
        ({"detect": "pii"}, "rules: must be a list of rules"),
    ],
)
def test_invalid_rules_are_refused_with_the_path_and_a_sentence(rules, message):
    with pytest.raises(RuleError) as refused:
        rules_parse(rules)
    assert str(refused.value).startswith(message)


def test_rules_are_normalized_with_default_directions():
    rules = rules_parse(
        [
            {"detect": "pii", "action": "redact"},
            {"detect": "injection", "action": "flag"},
            {
                "detect": "custom.codename",
                "words": ["falcon"],
                "action": "block",
                "direction": "output",
            },
        ]
    )
    assert [r.as_dict() for r in rules] == [
        {"detect": "pii", "action": "redact", "direction": "both"},
        {"detect": "injection", "action": "flag", "direction": "input"},
        {
            "detect": "custom.codename",
            "words": ["falcon"],
            "ignore_case": True,
            "action": "block",
            "direction": "output",
        },
    ]


def test_allowed_params_must_be_known_chat_parameters():
    assert params_parse(None) is None
    assert params_parse(["temperature", "stop"]) == ("temperature", "stop")
    with pytest.raises(RuleError, match=r"allowed_params\[0\]: unknown parameter 'temprature'"):
        params_parse(["temprature"])
    with pytest.raises(RuleError, match="'messages' is always allowed"):
        params_parse(["messages"])


# -- merging ----------------------------------------------------------------------------------
def test_the_strictest_action_wins_and_names_the_policy_it_comes_from():
    org = stored_policy(scope="org", rules=[{"detect": "pii", "action": "redact"}])
    team = stored_policy(
        scope="team",
        rules=[
            {"detect": "pii.card", "action": "block"},
            {"detect": "pii.email", "action": "flag"},
        ],
    )
    policy = merge([org, team])
    assert policy is not None
    assert policy.input_actions["pii.card"].action == "block"
    assert policy.input_actions["pii.card"].origin == "team policy"
    # A team cannot loosen its organisation's redaction to a flag.
    assert policy.input_actions["pii.email"].action == "redact"
    assert policy.input_actions["pii.email"].origin == "organisation policy"
    assert set(detectors.CATEGORIES["pii"]) <= set(policy.output_actions)


def test_limits_take_the_lowest_value_and_parameters_must_pass_every_list():
    org = stored_policy(
        scope="org",
        rules=[],
        max_messages=50,
        max_output_tokens=1000,
        allowed_params=["temperature", "stop"],
    )
    route = stored_policy(
        scope="route",
        rules=[],
        max_messages=10,
        max_output_tokens=4000,
        allowed_params=["temperature"],
        reversible=True,
    )
    policy = merge([org, route])
    assert policy is not None
    assert (policy.max_messages.value, policy.max_messages.origin) == (10, "route policy")
    assert (policy.max_output_tokens.value, policy.max_output_tokens.origin) == (
        1000,
        "organisation policy",
    )
    assert [origin for _, origin in policy.allowed_params] == [
        "organisation policy",
        "route policy",
    ]
    assert policy.reversible


def test_injection_heuristics_only_look_at_what_users_supply():
    policy = merge(
        [
            stored_policy(
                scope="org",
                rules=[
                    {"detect": "injection", "action": "block"},
                    {"detect": "secrets", "action": "block"},
                ],
            )
        ]
    )
    assert policy is not None
    injection = set(detectors.CATEGORIES["injection"])
    assert injection <= {d.name for d in policy.user_detectors}
    assert not injection & {d.name for d in policy.context_detectors}
    assert set(detectors.CATEGORIES["secrets"]) <= {d.name for d in policy.context_detectors}


def test_a_policy_without_rules_or_limits_is_no_policy():
    assert merge([stored_policy(scope="org", rules=[])]) is None


# -- resolution and caching -------------------------------------------------------------------
@pytest.fixture
def policies(cast):
    route = make_route("smart", (make_provider(), "demo"))
    other = make_route("other", (make_provider(), "demo"))
    org = policy_set(
        actor=None,
        scope="org",
        organisation=cast.org,
        values=PolicyValues(rules=[{"detect": "pii", "action": "redact"}]),
    )
    team = policy_set(
        actor=None,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(max_messages=5),
    )
    on_route = policy_set(
        actor=None,
        scope="route",
        organisation=cast.org,
        route=route,
        values=PolicyValues(rules=[{"detect": "secrets", "action": "block"}]),
    )
    return {"org": org, "team": team, "route": on_route, "smart": route, "other": other}


def _policy(org_id, team_id, route):
    return async_to_sync(policy_for_call)(org_id, team_id, route)


@pytest.mark.django_db(transaction=True)
def test_a_call_is_held_to_its_organisation_team_and_route_policies(cast, policies):
    on_smart = _policy(cast.org.pk, cast.team.pk, "smart")
    assert on_smart.max_messages.value == 5
    assert on_smart.input_actions[detectors.CATEGORIES["pii"][0]].action == "redact"
    assert on_smart.input_actions[detectors.CATEGORIES["secrets"][0]].action == "block"
    on_other = _policy(cast.org.pk, cast.team.pk, "other")
    assert detectors.CATEGORIES["secrets"][0] not in on_other.input_actions
    # Another organisation's team on the same route: none of acme's policies.
    assert _policy(cast.other_org.pk, cast.other_team.pk, "smart") is None


@pytest.mark.django_db(transaction=True)
def test_the_policy_is_served_from_memory_and_reloaded_after_a_change(
    cast, policies, settings, monkeypatch
):
    from django.db.backends import utils

    queries: list[str] = []
    original = utils.CursorWrapper.execute

    def counting(self, sql, params=None):  # every thread's queries (the loader runs in one)
        queries.append(sql)
        return original(self, sql, params)

    _policy(cast.org.pk, cast.team.pk, "smart")  # warm
    monkeypatch.setattr(utils.CursorWrapper, "execute", counting)
    for _ in range(5):
        assert _policy(cast.org.pk, cast.team.pk, "smart").max_messages.value == 5
    assert queries == []

    policy_set(
        actor=None,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(max_messages=3),
    )
    config_cache._checked_at = 0.0  # as if a second had passed
    assert _policy(cast.org.pk, cast.team.pk, "smart").max_messages.value == 3


@pytest.mark.django_db(transaction=True)
def test_a_disabled_policy_does_not_count(cast, policies):
    policy_set(
        actor=None,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(max_messages=5, enabled=False),
    )
    assert _policy(cast.org.pk, cast.team.pk, "other").max_messages is None


# -- services ---------------------------------------------------------------------------------
def test_changes_are_validated_permission_checked_and_audited(cast):
    with pytest.raises(ValidationError) as invalid:
        policy_set(
            actor=cast.alice,
            scope="org",
            organisation=cast.org,
            values=PolicyValues(max_messages=0, rules=[{"detect": "nope", "action": "flag"}]),
        )
    assert set(invalid.value.message_dict) == {"max_messages", "rules"}
    with pytest.raises(PermissionDenied):
        policy_set(actor=cast.bob, scope="org", organisation=cast.org, values=PolicyValues())
    with pytest.raises(PermissionDenied):  # a team admin of acme, not of globex
        policy_set(
            actor=cast.bob,
            scope="team",
            organisation=cast.other_org,
            team=cast.other_team,
            values=PolicyValues(),
        )

    policy = policy_set(
        actor=cast.bob,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(rules=[{"detect": "pii", "action": "flag"}]),
    )
    created = AuditEvent.objects.get(action="guardrail_policy.created")
    assert created.actor_id == cast.bob.pk and created.organisation_id == cast.org.pk
    assert created.details["after"]["rules"] == [
        {"detect": "pii", "action": "flag", "direction": "both"}
    ]
    # The same values again: nothing changed, nothing recorded.
    policy_set(
        actor=cast.bob,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(rules=[{"detect": "pii", "action": "flag"}]),
    )
    assert not AuditEvent.objects.filter(action="guardrail_policy.updated").exists()
    policy_set(
        actor=cast.alice,
        scope="team",
        organisation=cast.org,
        team=cast.team,
        values=PolicyValues(rules=[{"detect": "pii", "action": "block"}]),
    )
    updated = AuditEvent.objects.get(action="guardrail_policy.updated")
    assert updated.details["changed"] == ["rules"]
    policy_delete(actor=cast.alice, policy=policy)
    assert AuditEvent.objects.filter(action="guardrail_policy.deleted").count() == 1
    assert not GuardrailPolicy.objects.exists()
