"""The Guardrails page (/guardrails/): who sees and changes which policy, the htmx "try it"
fragment checked like the page, and every change audited.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from aigateway.audit.models import AuditEvent
from aigateway.guardrails.models import GuardrailPolicy
from aigateway.guardrails.services import PolicyValues, policy_set
from tests.factories import make_provider, make_route

PAGE = "/guardrails/"
TRY = "/guardrails/try/"
PII = [{"detect": "pii", "action": "redact"}]


@dataclass
class Policies:
    acme: GuardrailPolicy
    research: GuardrailPolicy
    route: GuardrailPolicy
    globex: GuardrailPolicy
    sales: GuardrailPolicy


@pytest.fixture
def policies(cast) -> Policies:
    route = make_route("smart", (make_provider(), "demo"))

    def put(scope: str, org, **target) -> GuardrailPolicy:
        return policy_set(
            actor=None,
            scope=scope,
            organisation=org,
            values=PolicyValues(rules=PII, max_messages=20),
            **target,
        )

    return Policies(
        acme=put("org", cast.org),
        research=put("team", cast.org, team=cast.team),
        route=put("route", cast.org, route=route),
        globex=put("org", cast.other_org),
        sales=put("team", cast.other_org, team=cast.other_team),
    )


def _as(client: Client, user) -> Client:
    client.force_login(user)
    return client


def _edit_links(html: str) -> set[int]:
    import re

    return {int(pk) for pk in re.findall(r'href="/guardrails/(\d+)/edit/"', html)}


# -- who sees what --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("username", "visible", "editable"),
    [
        ("alice", {"acme", "research", "route"}, {"acme", "research", "route"}),
        ("bob", {"acme", "research", "route"}, {"research"}),
        ("dave", {"acme", "research", "route"}, set()),
        ("eve", {"globex", "sales"}, {"sales"}),
    ],
)
def test_each_role_sees_and_may_change_its_share_of_the_policies(
    client, cast, policies, username, visible, editable
):
    response = _as(client, getattr(cast, username)).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    names = {"acme", "research", "route", "globex", "sales"}
    by_pk = {getattr(policies, name).pk: name for name in names}
    shown = {
        name for name in names if f'<option value="{getattr(policies, name).pk}"' in html
    }  # the try-it list
    assert shown == visible
    assert {by_pk[pk] for pk in _edit_links(html)} == editable


def test_a_member_and_a_stranger_are_refused(client, cast, policies):
    assert _as(client, cast.carol).get(PAGE).status_code == 403
    for url in (
        f"/guardrails/{policies.research.pk}/edit/",
        f"/guardrails/{policies.research.pk}/delete/",
    ):
        assert client.get(url).status_code == 403
    assert (
        client.post(
            TRY, {"policy": policies.research.pk, "direction": "input", "text": "x"}
        ).status_code
        == 403
    )
    client.logout()
    assert client.get(PAGE).status_code == 302  # to the login page


def test_a_policy_one_may_not_see_is_not_found_and_one_may_only_read_is_forbidden(
    client, cast, policies
):
    _as(client, cast.bob)
    assert client.get(f"/guardrails/{policies.globex.pk}/edit/").status_code == 404
    assert client.get(f"/guardrails/{policies.acme.pk}/edit/").status_code == 403
    assert client.post(f"/guardrails/{policies.acme.pk}/delete/").status_code == 403
    assert client.get(f"/guardrails/{policies.research.pk}/edit/").status_code == 200
    _as(client, cast.dave)
    assert client.post(f"/guardrails/{policies.acme.pk}/edit/", {"rules": ""}).status_code == 403
    assert GuardrailPolicy.objects.get(pk=policies.acme.pk).rules == [
        {"detect": "pii", "action": "redact", "direction": "both"}
    ]


# -- changes --------------------------------------------------------------------------------------
def test_a_team_admin_edits_the_team_policy_and_the_change_is_audited(client, cast, policies):
    _as(client, cast.bob)
    response = client.post(
        f"/guardrails/{policies.research.pk}/edit/",
        {
            "enabled": "on",
            "max_messages": "10",
            "allowed_params": "temperature, stop",
            "rules": "- {detect: pii.card, action: block}\n- {detect: injection, action: flag}\n",
        },
    )
    assert response.status_code == 302
    policy = GuardrailPolicy.objects.get(pk=policies.research.pk)
    assert (policy.max_messages, policy.allowed_params) == (10, ["temperature", "stop"])
    event = AuditEvent.objects.get(action="guardrail_policy.updated")
    assert event.actor_id == cast.bob.pk
    assert event.details["before"]["max_messages"] == 20
    assert event.details["after"]["rules"] == [
        {"detect": "pii.card", "action": "block", "direction": "both"},
        {"detect": "injection", "action": "flag", "direction": "input"},
    ]
    assert set(event.details["changed"]) == {"rules", "max_messages", "allowed_params"}


def test_an_invalid_policy_is_shown_again_with_the_rule_that_is_wrong(client, cast, policies):
    _as(client, cast.alice)
    url = f"/guardrails/{policies.acme.pk}/edit/"
    bad_rule = client.post(url, {"rules": "- {detect: injection, action: redact}"})
    assert bad_rule.status_code == 400
    assert (
        "rules[0].action: &#x27;redact&#x27; is not one of: flag, block"
        in bad_rule.content.decode()
    )
    bad_yaml = client.post(url, {"rules": "- {detect: pii"})
    assert bad_yaml.status_code == 400 and "not valid YAML" in bad_yaml.content.decode()
    bad_param = client.post(url, {"allowed_params": "temprature"})
    assert "unknown parameter &#x27;temprature&#x27;" in bad_param.content.decode()
    assert not AuditEvent.objects.filter(action="guardrail_policy.updated").exists()


def test_a_platform_admin_creates_and_deletes_a_policy(client, cast, policies):
    policies.research.delete()
    _as(client, cast.alice)
    page = client.get(PAGE).content.decode()
    assert (
        f'value="team:{cast.team.pk}"' in page and f'value="team:{cast.other_team.pk}"' not in page
    )
    created = client.post(
        PAGE,
        {
            "target": f"team:{cast.team.pk}",
            "enabled": "on",
            "rules": "- {detect: secrets, action: block}",
        },
    )
    assert created.status_code == 302
    policy = GuardrailPolicy.objects.get(scope="team", team=cast.team)
    created = AuditEvent.objects.get(action="guardrail_policy.created", actor_id=cast.alice.pk)
    assert created.target_id == str(policy.pk)
    assert client.post(PAGE, {"target": f"team:{cast.other_team.pk}"}).status_code == 403
    assert client.post(f"/guardrails/{policy.pk}/delete/").status_code == 302
    assert not GuardrailPolicy.objects.filter(pk=policy.pk).exists()
    assert AuditEvent.objects.filter(action="guardrail_policy.deleted").count() == 1


# -- try it ---------------------------------------------------------------------------------------
def test_try_it_previews_findings_and_the_redacted_text_as_an_htmx_fragment(client, cast, policies):
    _as(client, cast.dave)  # read-only users may try policies too
    text = "Mail jane.doe@example.com, card 4111 1111 1111 1111."
    response = client.post(
        TRY,
        {"policy": policies.acme.pk, "direction": "input", "text": text},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="try-result"') and "<nav" not in html
    assert "pii.email" in html and "pii.card" in html
    assert "Mail [REDACTED_EMAIL_1], card [REDACTED_CARD_1]." in html
    full = client.post(TRY, {"policy": policies.acme.pk, "direction": "input", "text": text})
    assert full.status_code == 200 and "<nav" in full.content.decode()
    assert not AuditEvent.objects.filter(action="api.call").exists()  # nothing was called


def test_try_it_is_checked_like_the_page(client, cast, policies):
    _as(client, cast.eve)
    hidden = client.post(
        TRY,
        {"policy": policies.acme.pk, "direction": "input", "text": "x"},
        headers={"HX-Request": "true"},
    )
    assert hidden.status_code == 404
    blocked = client.post(
        TRY,
        {"policy": policies.sales.pk, "direction": "output", "text": ""},
        headers={"HX-Request": "true"},
    )
    assert blocked.status_code == 400 and "Enter a text to try." in blocked.content.decode()


# session, user, two for the roles, the policies; for those who may create policies, the
# organisations and teams (and the routes, for platform admins)
PAGE_QUERIES = {"alice": 8, "bob": 6, "dave": 5, "eve": 6}


@pytest.mark.parametrize("username", sorted(PAGE_QUERIES))
def test_the_page_costs_a_fixed_number_of_queries(
    client, cast, policies, username, django_assert_num_queries
):
    _as(client, getattr(cast, username))
    with django_assert_num_queries(PAGE_QUERIES[username]):
        assert client.get(PAGE).status_code == 200
    for i in range(5):  # more policies, more teams: the same queries
        team = cast.team.__class__.objects.create(organisation=cast.org, slug=f"t{i}", name=f"T{i}")
        policy_set(
            actor=None,
            scope="team",
            organisation=cast.org,
            team=team,
            values=PolicyValues(rules=PII),
        )
    with django_assert_num_queries(PAGE_QUERIES[username]):
        assert client.get(PAGE).status_code == 200
