"""The expectations of the permission matrix: for every named URL pattern, which slots
(objects) it is tried on, and for each signed-in role the outcome of GET and of the write.

Slots: A1, A2, B1 are objects of those teams (A1 the own team of bob and carol, A2 a sibling
team of organisation A, B1 a team of organisation B); A and B are the organisations; "gw" a
gateway-wide object (provider, route, deployment); "A1+B1" is team A1's URL carrying a child
object of B1 (a key, a member, a rule): always 404, whoever asks. "-" is no object.

Rules take (role, slot) of a signed-in role; anonymous users are expected at the login page
(dashboard) or 401 (management API), whatever the rule. Decided from the issues' text:
#8 "platform admin sees everything; team admin manages only their team; auditor reads only;
a member sees their own usage" and #13 "no cross-team reads or writes". Where the code's own
documented convention applies (a page a role may not use is 403, an object of a team the
role may not see is 404, a form refusing a choice it does not offer is 400), it is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aigateway.guardrails.models import GuardrailPolicy
from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.routing.models import BreakerEvent, Deployment, Route
from auth.models import ApiKey, Organisation, Team, TeamMembership
from auth.sso.models import IdentityProvider, MappingRule
from providers.models import Credential, ModelPrice, Provider
from tests.security.matrix_support import (
    MEMBER_OF,
    ORGS,
    TEAMS,
    Outcome,
    World,
    admins_org,
    cache_keys,
    changes_team,
    has_role_in_org,
    manages_people,
    reads_gateway,
    reads_org,
    sees_team,
    team_admin,
)
from tests.sso_unit.saml_support import keypair

O = Outcome
Rule = Callable[[str, str], Outcome]
TEAM_SLOTS = ("A1", "A2", "B1")
CHILD_SLOTS = (*TEAM_SLOTS, "A1+B1")
ORG_SLOTS = ("A", "B")


@dataclass(frozen=True)
class Entry:
    url: Callable[[World, str], str]
    get: Rule | None = None
    write: Rule | None = None
    slots: tuple[str, ...] = ("-",)
    data: Callable[[World, str], dict[str, Any]] = lambda w, s: {}
    done: Callable[[World, str], bool] | None = None  # an allowed write made its change
    changes: bool | None = True  # False: read-only POST; None: effect not in the database
    method: str = "POST"
    htmx: bool = False
    api: bool = False  # management API: admin token, JSON body, 401 for anonymous
    get_slots: tuple[str, ...] | None = None
    # A parent the role may use with another team's child in the URL: 404, as if missing.
    mixed: Rule = lambda r, s: O.NOT_FOUND


# -- rule builders ---------------------------------------------------------------------------
def anyone(role: str, slot: str) -> Outcome:
    return O.OK


def page(may: Callable[[str], bool], then: Rule = anyone) -> Rule:
    """A page or action some roles may not use at all: 403 for them."""
    return lambda role, slot: then(role, slot) if may(role) else O.FORBIDDEN


def act(view: Callable[[str, str], bool], may: Callable[[str, str], bool]) -> Rule:
    """An object: 404 if the role may not see it, 403 if it may see but not change it."""
    return lambda r, s: O.NOT_FOUND if not view(r, s) else (O.OK if may(r, s) else O.FORBIDDEN)


def view(see: Callable[[str, str], bool]) -> Rule:
    return lambda r, s: O.OK if see(r, s) else O.NOT_FOUND


def allowed_if(may: Callable[[str, str], bool], otherwise: Outcome = O.FORBIDDEN) -> Rule:
    return lambda r, s: O.OK if may(r, s) else otherwise


def root(role: str) -> bool:
    return role == "root"


def uses_guardrails(role: str) -> bool:
    return reads_gateway(role) or any(team_admin(role, s) for s in TEAMS)


def sees_policy(role: str, slot: str) -> bool:
    """A team policy: platform admins and auditors of its organisation, its team admins."""
    return role == "root" or reads_org(role, slot[0]) or team_admin(role, slot)


def sees_org_sso(role: str, slot: str) -> bool:
    return reads_org(role, slot)


def admins_sso(role: str, slot: str) -> bool:
    return admins_org(role, slot)


def team_create_rule(role: str, slot: str) -> Outcome:
    """Dashboard: roles who administer no organisation get 403; a platform admin naming
    another organisation gets the form back (its choices are their own organisations)."""
    if admins_org(role, slot):
        return O.OK
    return O.REFUSED if any(admins_org(role, o) for o in ORGS) else O.FORBIDDEN


def api_team_create_rule(role: str, slot: str) -> Outcome:
    if not (role == "root" or has_role_in_org(role, slot)):
        return O.NOT_FOUND
    return O.OK if admins_org(role, slot) else O.FORBIDDEN


def usage_filter_rule(role: str, slot: str) -> Outcome:
    """Usage filtered by a team: the form offers only teams the role sees (400 otherwise)."""
    return O.OK if slot == "-" or sees_team(role, slot) else O.REFUSED


def run_author(role: str, slot: str) -> bool:
    """A playground run is its author's alone (docs/playground.md), whoever else asks."""
    return slot == "-" or MEMBER_OF.get(slot) == role


# -- URL pieces ------------------------------------------------------------------------------
def parent(slot: str) -> str:
    return slot.split("+")[0]


def child(slot: str) -> str:
    return slot.split("+")[-1]


def team_id(w: World, s: str) -> int:
    return w.teams[parent(s)].pk


def team_query(w: World, s: str) -> str:
    return "" if s == "-" else f"?team={w.teams[s].pk}"


def org_slug(s: str) -> str:
    return ORGS[parent(s)][0]


def member_id(w: World, s: str) -> int:
    return w.member(child(s)).pk


ROUTE_FORM = {
    "description": "", "strategy": "ordered", "max_retries": "3", "backoff_base_seconds": "0.5",
    "backoff_cap_seconds": "10", "timeout_seconds": "60", "fallback_on_errors": "on",
    "cache_mode": "off", "cache_scope": "team", "cache_ttl_seconds": "600",
    "semantic_threshold": "0.97",
}  # fmt: skip
POLICY_FORM = {"enabled": "on", "rules": "", "allowed_params": ""}


def _idp_form(w: World, s: str) -> dict[str, Any]:
    return {"entity_id": f"https://idp.{org_slug(s)}.test/", "x509cert": keypair().cert_pem.decode(),
            "sso_url": "https://idp.example.test/moved", "enabled": "on",
            "email_attribute": "email", "groups_attribute": "groups"}  # fmt: skip


# -- the dashboard ---------------------------------------------------------------------------
WEB: dict[str, Entry] = {
    "web:dashboard": Entry(lambda w, s: "/", get=anyone),
    "web:overview_metrics": Entry(lambda w, s: "/overview/metrics/", get=anyone, htmx=True),
    "web:overview_todo": Entry(lambda w, s: "/overview/todo/", get=anyone, htmx=True),
    # Breakers serve every organisation: platform admins and auditors read; forcing one is for
    # whoever answers for every organisation (here: the gateway operator only).
    "web:breakers": Entry(lambda w, s: "/breakers/", get=page(reads_gateway)),
    "web:breakers_fragment": Entry(
        lambda w, s: f"/breakers/fragment/?ids={w.deployment.pk}",
        get=page(reads_gateway),
        htmx=True,
    ),  # fmt: skip
    "web:breaker_action": Entry(
        lambda w, s: f"/breakers/{w.deployment.pk}/open/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"reason": "matrix", "confirm": "yes"},
        done=lambda w, s: BreakerEvent.objects.filter(deployment=w.deployment).exists(),
    ),  # fmt: skip
    "web:audit": Entry(lambda w, s: "/audit/", get=page(reads_gateway)),
    "web:audit_rows": Entry(lambda w, s: "/audit/rows/", get=page(reads_gateway), htmx=True),
    "web:audit_detail": Entry(
        lambda w, s: f"/audit/{w.audit[s].pk}/",
        slots=TEAM_SLOTS,
        get=page(reads_gateway, view(lambda r, s: reads_org(r, s[0]))),
    ),  # fmt: skip
    "web:audit_export": Entry(lambda w, s: "/audit/export.csv", get=page(reads_gateway)),
    "web:teams": Entry(
        lambda w, s: "/teams/",
        get=anyone,
        write=team_create_rule,
        slots=ORG_SLOTS,
        get_slots=("-",),
        data=lambda w, s: {
            "team-organisation": org_slug(s),
            "team-name": "Newteam",
            "team-slug": "newteam",
        },
        done=lambda w, s: Team.objects.filter(
            slug="newteam", organisation__slug=org_slug(s)
        ).exists(),
    ),  # fmt: skip
    "web:team_detail": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/", get=view(sees_team), slots=TEAM_SLOTS
    ),  # fmt: skip
    "web:team_limits": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/limits/",
        get=view(sees_team),
        slots=TEAM_SLOTS,
        htmx=True,
    ),  # fmt: skip
    "web:team_edit": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/edit/",
        write=act(sees_team, changes_team),
        slots=TEAM_SLOTS,
        data=lambda w, s: {
            "team-name": "Renamed",
            "team-slug": TEAMS[s][1],
            "team-allowed_routes": ["smart"],
        },
        done=lambda w, s: Team.objects.get(pk=team_id(w, s)).name == "Renamed",
    ),  # fmt: skip
    "web:team_delete": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/delete/",
        get=act(sees_team, changes_team),
        write=act(sees_team, changes_team),
        slots=TEAM_SLOTS,
        done=lambda w, s: not Team.objects.filter(pk=team_id(w, s)).exists(),
    ),
    "web:team_member_add": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/members/",
        write=act(sees_team, manages_people),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"member-username": "ivan", "member-role": "member"},
        done=lambda w, s: TeamMembership.objects.filter(
            team_id=team_id(w, s), user__username="ivan"
        ).exists(),
    ),  # fmt: skip
    "web:team_member_role": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/members/{member_id(w, s)}/role/",
        write=act(sees_team, manages_people),
        slots=CHILD_SLOTS,
        data=lambda w, s: {"role": "team_admin"},
        done=lambda w, s: (
            TeamMembership.objects.get(team_id=team_id(w, s), user_id=member_id(w, s)).role
            == "team_admin"
        ),
    ),  # fmt: skip
    "web:team_member_remove": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/members/{member_id(w, s)}/remove/",
        write=act(sees_team, manages_people),
        slots=CHILD_SLOTS,
        done=lambda w, s: (
            not TeamMembership.objects.filter(
                team_id=team_id(w, s), user_id=member_id(w, s)
            ).exists()
        ),
    ),  # fmt: skip
    "web:team_key_issue": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/keys/",
        get=view(sees_team),
        write=act(sees_team, manages_people),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"key-name": "new-key"},
        done=lambda w, s: ApiKey.objects.filter(team_id=team_id(w, s), name="new-key").exists(),
    ),
    "web:team_key_revoke": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/keys/{w.keys[child(s)].pk}/revoke/",
        get=act(sees_team, manages_people),
        write=act(sees_team, manages_people),
        slots=CHILD_SLOTS,
        done=lambda w, s: ApiKey.objects.get(pk=w.keys[s].pk).revoked_at is not None,
    ),
    # Usage: everyone signed in; what it counts is scoped (content checks in
    # test_tenancy_doors.py); a team filter offers only the teams the role sees.
    "web:usage": Entry(
        lambda w, s: f"/usage/{team_query(w, s)}", get=usage_filter_rule, slots=("-", *TEAM_SLOTS)
    ),  # fmt: skip
    "web:usage_results": Entry(
        lambda w, s: f"/usage/results/{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
        htmx=True,
    ),  # fmt: skip
    "web:usage_calls": Entry(
        lambda w, s: f"/usage/calls/{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
        htmx=True,
    ),  # fmt: skip
    "web:usage_export": Entry(
        lambda w, s: f"/usage/export.csv{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
    ),  # fmt: skip
    "web:cache": Entry(lambda w, s: "/cache/", get=anyone),
    "web:cache_purge": Entry(
        lambda w, s: f"/cache/teams/{team_id(w, s)}/purge/",
        write=act(sees_team, changes_team),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"confirm": "yes"},
        done=lambda w, s: cache_keys(w.teams[s]) == [],
    ),
    "web:guardrails": Entry(
        lambda w, s: "/guardrails/",
        get=page(uses_guardrails),
        get_slots=("-",),
        write=page(uses_guardrails, allowed_if(manages_people)),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"target": f"team:{team_id(w, s)}", "max_messages": "7", **POLICY_FORM},
        done=lambda w, s: GuardrailPolicy.objects.get(team_id=team_id(w, s)).max_messages == 7,
    ),  # fmt: skip
    "web:guardrail_try": Entry(
        lambda w, s: "/guardrails/try/",
        write=page(uses_guardrails, view(sees_policy)),
        slots=TEAM_SLOTS,
        changes=False,
        htmx=True,
        data=lambda w, s: {"policy": w.policies[s].pk, "direction": "input", "text": "hello"},
    ),
    "web:guardrail_edit": Entry(
        lambda w, s: f"/guardrails/{w.policies[s].pk}/edit/",
        get=page(uses_guardrails, act(sees_policy, manages_people)),
        write=page(uses_guardrails, act(sees_policy, manages_people)),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"max_messages": "9", **POLICY_FORM},
        done=lambda w, s: GuardrailPolicy.objects.get(pk=w.policies[s].pk).max_messages == 9,
    ),
    "web:guardrail_delete": Entry(
        lambda w, s: f"/guardrails/{w.policies[s].pk}/delete/",
        get=page(uses_guardrails, act(sees_policy, manages_people)),
        write=page(uses_guardrails, act(sees_policy, manages_people)),
        slots=TEAM_SLOTS,
        done=lambda w, s: not GuardrailPolicy.objects.filter(pk=w.policies[s].pk).exists(),
    ),
    # Limits: a key limit (team admins manage their team's keys' limits); a target the role
    # may not manage is 403 whether or not it exists (aigateway/quotas/permissions.py).
    "web:limits": Entry(
        lambda w, s: "/limits/",
        get=anyone,
        get_slots=("-",),
        write=allowed_if(manages_people),
        slots=TEAM_SLOTS,
        data=lambda w, s: {
            "target": f"key:{w.keys[s].pk}",
            "kind": "rpm",
            "value": "77",
            "soft_threshold_percent": "80",
            "enabled": "on",
        },
        done=lambda w, s: Limit.objects.filter(
            scope="key", scope_id=w.keys[s].pk, kind="rpm", value=77
        ).exists(),
    ),  # fmt: skip
    "web:limits_usage": Entry(lambda w, s: "/limits/usage/", get=anyone, htmx=True),
    "web:limit_edit": Entry(
        lambda w, s: f"/limits/{w.key_limits[s].pk}/edit/",
        get=act(sees_team, manages_people),
        write=act(sees_team, manages_people),
        slots=TEAM_SLOTS,
        data=lambda w, s: {"value": "55", "soft_threshold_percent": "80", "enabled": "on"},
        done=lambda w, s: Limit.objects.get(pk=w.key_limits[s].pk).value == 55,
    ),
    "web:limit_delete": Entry(
        lambda w, s: f"/limits/{w.team_limits[s].pk}/delete/",
        get=act(sees_team, changes_team),
        write=act(sees_team, changes_team),
        slots=TEAM_SLOTS,
        done=lambda w, s: not Limit.objects.filter(pk=w.team_limits[s].pk).exists(),
    ),
    "web:alert_acknowledge": Entry(
        lambda w, s: f"/limits/alerts/{w.alerts[s].pk}/acknowledge/",
        write=act(sees_team, changes_team),
        slots=TEAM_SLOTS,
        done=lambda w, s: QuotaAlert.objects.get(pk=w.alerts[s].pk).acknowledged_at is not None,
    ),
    # Providers and routes serve every organisation: platform admins and auditors read; only
    # whoever answers for every organisation changes them (here: the gateway operator).
    "web:providers": Entry(
        lambda w, s: "/providers/",
        get=page(reads_gateway),
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {
            "name": "newprov",
            "kind": "demo",
            "base_url": "",
            "enabled": "on",
            "rotation_days": "90",
            "options": "",
        },
        done=lambda w, s: Provider.objects.filter(name="newprov").exists(),
    ),  # fmt: skip
    "web:provider": Entry(
        lambda w, s: f"/providers/{w.provider.pk}/",
        get=page(reads_gateway),
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {
            "kind": "demo",
            "base_url": "",
            "enabled": "on",
            "rotation_days": "45",
            "options": "",
        },
        done=lambda w, s: Provider.objects.get(pk=w.provider.pk).rotation_days == 45,
    ),  # fmt: skip
    "web:provider_test": Entry(
        lambda w, s: f"/providers/{w.provider.pk}/test/",
        write=page(root),
        slots=("gw",),
        changes=None,
    ),  # fmt: skip
    "web:credential_add": Entry(
        lambda w, s: f"/providers/{w.credential.provider_id}/credentials/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"name": "second", "secret": "sk-matrix-second-0123456789"},
        done=lambda w, s: Credential.objects.filter(name="second").exists(),
    ),
    "web:credential_rotate": Entry(
        lambda w, s: f"/providers/{w.credential.provider_id}/rotate/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {
            "name": "rotated",
            "secret": "sk-matrix-rotated-0123456789",
            "grace_minutes": "10",
        },
        done=lambda w, s: Credential.objects.filter(name="rotated").exists(),
    ),  # fmt: skip
    "web:credential_activate": Entry(
        lambda w, s: f"/providers/credentials/{w.credential.pk}/activate/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"grace_minutes": "1"},
        changes=None,
    ),
    "web:credential_retire": Entry(
        lambda w, s: f"/providers/credentials/{w.credential.pk}/retire/",
        write=page(root),
        slots=("gw",),
        done=lambda w, s: Credential.objects.get(pk=w.credential.pk).status != "active",
    ),
    "web:price_set": Entry(
        lambda w, s: f"/providers/{w.provider.pk}/prices/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"model": "demo-2", "input_per_million": "1", "output_per_million": "2"},
        done=lambda w, s: ModelPrice.objects.filter(model="demo-2").exists(),
    ),
    "web:price_delete": Entry(
        lambda w, s: f"/providers/prices/{w.price.pk}/delete/",
        write=page(root),
        slots=("gw",),
        done=lambda w, s: not ModelPrice.objects.filter(pk=w.price.pk).exists(),
    ),
    "web:routes": Entry(
        lambda w, s: "/routes/",
        get=page(reads_gateway),
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"name": "newroute", **ROUTE_FORM},
        done=lambda w, s: Route.objects.filter(name="newroute").exists(),
    ),
    "web:routes_health": Entry(
        lambda w, s: f"/routes/health/?ids={w.deployment.pk}", get=page(reads_gateway), htmx=True
    ),  # fmt: skip
    "web:route": Entry(
        lambda w, s: f"/routes/{w.route.pk}/",
        get=page(reads_gateway),
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"name": "smart", **ROUTE_FORM},
        done=lambda w, s: Route.objects.get(pk=w.route.pk).max_retries == 3,
    ),
    "web:route_delete": Entry(
        lambda w, s: f"/routes/{w.route.pk}/delete/",
        get=page(root),
        write=page(root),
        slots=("gw",),
        changes=None,  # refused (400) while teams' keys would be widened
    ),
    "web:deployment_add": Entry(
        lambda w, s: f"/routes/{w.route.pk}/deployments/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {
            "provider": w.provider.pk,
            "upstream_model": "demo-2",
            "weight": "1",
            "enabled": "on",
        },
        done=lambda w, s: Deployment.objects.filter(upstream_model="demo-2").exists(),
    ),  # fmt: skip
    "web:deployment_edit": Entry(
        lambda w, s: f"/routes/deployments/{w.deployment.pk}/edit/",
        get=page(root),
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {
            "provider": w.provider.pk,
            "upstream_model": "demo-1",
            "weight": "5",
            "enabled": "on",
        },
        done=lambda w, s: Deployment.objects.get(pk=w.deployment.pk).weight == 5,
    ),  # fmt: skip
    "web:deployment_remove": Entry(
        lambda w, s: f"/routes/deployments/{w.deployment.pk}/remove/",
        get=page(root),
        write=page(root),
        slots=("gw",),
        done=lambda w, s: not Deployment.objects.filter(pk=w.deployment.pk).exists(),
    ),
}

# -- SSO pages (platform admins change their organisation's; auditors read) -----------------
SSO: dict[str, Entry] = {
    "sso:list": Entry(lambda w, s: "/sso/", get=page(reads_gateway)),
    # Each organisation has its IdP already: the "new" page sends whoever may change it there.
    "sso:idp_new": Entry(
        lambda w, s: f"/sso/new/{org_slug(s)}/",
        slots=ORG_SLOTS,
        changes=False,
        get=page(reads_gateway, act(sees_org_sso, admins_sso)),
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
    ),  # fmt: skip
    "sso:local_login": Entry(
        lambda w, s: f"/sso/orgs/{org_slug(s)}/local-login/",
        slots=ORG_SLOTS,
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        done=lambda w, s: not Organisation.objects.get(slug=org_slug(s)).local_login_enabled,
    ),
    "sso:idp_detail": Entry(
        lambda w, s: f"/sso/{w.idps[s].pk}/",
        slots=ORG_SLOTS,
        data=_idp_form,
        get=page(reads_gateway, view(sees_org_sso)),
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        done=lambda w, s: IdentityProvider.objects.get(pk=w.idps[s].pk).sso_url.endswith("moved"),
    ),
    "sso:idp_delete": Entry(
        lambda w, s: f"/sso/{w.idps[s].pk}/delete/",
        slots=ORG_SLOTS,
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        done=lambda w, s: not IdentityProvider.objects.filter(pk=w.idps[s].pk).exists(),
    ),
    "sso:rule_add": Entry(
        lambda w, s: f"/sso/{w.idps[s].pk}/rules/",
        slots=ORG_SLOTS,
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        data=lambda w, s: {"value": "new-group", "role": "auditor"},
        done=lambda w, s: MappingRule.objects.filter(value="new-group").exists(),
    ),
    "sso:rule_delete": Entry(
        lambda w, s: f"/sso/{w.idps[parent(s)].pk}/rules/{w.rules[child(s)].pk}/delete/",
        slots=(*ORG_SLOTS, "A+B"),
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        mixed=page(reads_gateway, lambda r, s: O.NOT_FOUND),
        done=lambda w, s: not MappingRule.objects.filter(pk=w.rules[s].pk).exists(),
    ),
    "sso:rule_preview": Entry(
        lambda w, s: f"/sso/{w.idps[s].pk}/preview/",
        slots=ORG_SLOTS,
        changes=False,
        htmx=True,
        write=page(reads_gateway, view(sees_org_sso)),
        data=lambda w, s: {"groups": "acme-admins"},
    ),
}

# -- the playground's pages (its stream endpoint: test_tenancy_doors.py) --------------------
PLAYGROUND: dict[str, Entry] = {
    "playground:page": Entry(
        lambda w, s: "/playground/" + ("" if s == "-" else f"?run={w.runs[s].pk}"),
        get=view(run_author),
        slots=("-", *TEAM_SLOTS),
    ),  # fmt: skip
    "playground:history": Entry(lambda w, s: "/playground/history/", get=anyone),
    "playground:run": Entry(
        lambda w, s: f"/playground/runs/{w.runs[s].pk}/", get=view(run_author), slots=TEAM_SLOTS
    ),  # fmt: skip
}

# -- the management API (personal admin tokens; the same rules as the dashboard) ------------
M = "/api/v1"


def _api(url: Callable[[World, str], str], **kwargs: Any) -> Entry:
    return Entry(url, api=True, **kwargs)


def token_owner(role: str, slot: str) -> bool:
    return slot == f"token:{role}"


MANAGEMENT: dict[str, Entry] = {
    "management:me": _api(lambda w, s: f"{M}/me", get=anyone),
    "management:list_teams": _api(lambda w, s: f"{M}/teams", get=anyone),
    "management:create_team": _api(
        lambda w, s: f"{M}/teams",
        write=api_team_create_rule,
        slots=ORG_SLOTS,
        data=lambda w, s: {"organisation": org_slug(s), "slug": "newteam", "name": "Newteam"},
        done=lambda w, s: Team.objects.filter(
            slug="newteam", organisation__slug=org_slug(s)
        ).exists(),
    ),  # fmt: skip
    "management:get_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}", get=view(sees_team), slots=TEAM_SLOTS
    ),  # fmt: skip
    "management:update_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}",
        method="PATCH",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        data=lambda w, s: {"name": "Renamed"},
        done=lambda w, s: Team.objects.get(pk=team_id(w, s)).name == "Renamed",
    ),
    "management:delete_team": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}",
        method="DELETE",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        done=lambda w, s: not Team.objects.filter(pk=team_id(w, s)).exists(),
    ),
    "management:list_members": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members", get=view(sees_team), slots=TEAM_SLOTS
    ),  # fmt: skip
    "management:add_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"username": "ivan"},
        done=lambda w, s: TeamMembership.objects.filter(
            team_id=team_id(w, s), user__username="ivan"
        ).exists(),
    ),  # fmt: skip
    "management:change_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members/{member_id(w, s)}",
        method="PATCH",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"role": "team_admin"},
        done=lambda w, s: (
            TeamMembership.objects.get(team_id=team_id(w, s), user_id=member_id(w, s)).role
            == "team_admin"
        ),
    ),  # fmt: skip
    "management:remove_member": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/members/{member_id(w, s)}",
        method="DELETE",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        done=lambda w, s: (
            not TeamMembership.objects.filter(
                team_id=team_id(w, s), user_id=member_id(w, s)
            ).exists()
        ),
    ),  # fmt: skip
    "management:list_keys": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys", get=view(sees_team), slots=TEAM_SLOTS
    ),  # fmt: skip
    "management:create_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"name": "api-key"},
        done=lambda w, s: ApiKey.objects.filter(team_id=team_id(w, s), name="api-key").exists(),
    ),
    "management:get_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys/{w.keys[child(s)].pk}",
        get=view(sees_team),
        slots=CHILD_SLOTS,
    ),
    "management:revoke_key": _api(
        lambda w, s: f"{M}/teams/{team_id(w, s)}/keys/{w.keys[child(s)].pk}",
        method="DELETE",
        slots=CHILD_SLOTS,
        write=act(sees_team, manages_people),
        done=lambda w, s: ApiKey.objects.get(pk=w.keys[s].pk).revoked_at is not None,
    ),
    "management:list_limits": _api(lambda w, s: f"{M}/limits", get=anyone),
    "management:set_limit": _api(
        lambda w, s: f"{M}/limits",
        slots=TEAM_SLOTS,
        write=allowed_if(manages_people),
        data=lambda w, s: {"scope": "key", "scope_id": w.keys[s].pk, "kind": "rpm", "value": 77},
        done=lambda w, s: Limit.objects.filter(
            scope="key", scope_id=w.keys[s].pk, kind="rpm", value=77
        ).exists(),
    ),  # fmt: skip
    "management:get_limit": _api(
        lambda w, s: f"{M}/limits/{w.key_limits[s].pk}", get=view(sees_team), slots=TEAM_SLOTS
    ),  # fmt: skip
    "management:change_limit": _api(
        lambda w, s: f"{M}/limits/{w.key_limits[s].pk}",
        method="PATCH",
        slots=TEAM_SLOTS,
        write=act(sees_team, manages_people),
        data=lambda w, s: {"value": 55},
        done=lambda w, s: Limit.objects.get(pk=w.key_limits[s].pk).value == 55,
    ),
    "management:delete_limit": _api(
        lambda w, s: f"{M}/limits/{w.team_limits[s].pk}",
        method="DELETE",
        slots=TEAM_SLOTS,
        write=act(sees_team, changes_team),
        done=lambda w, s: not Limit.objects.filter(pk=w.team_limits[s].pk).exists(),
    ),
    "management:usage": _api(lambda w, s: f"{M}/usage?group_by=team", get=anyone),
    "management:list_routes": _api(lambda w, s: f"{M}/routes", get=page(reads_gateway)),
    "management:get_route": _api(lambda w, s: f"{M}/routes/{w.route.pk}", get=page(reads_gateway)),
    "management:list_deployments": _api(
        lambda w, s: f"{M}/deployments", get=page(reads_gateway)
    ),  # fmt: skip
    "management:get_deployment": _api(
        lambda w, s: f"{M}/deployments/{w.deployment.pk}", get=page(reads_gateway)
    ),  # fmt: skip
    "management:list_breakers": _api(lambda w, s: f"{M}/breakers", get=page(reads_gateway)),
    "management:list_breaker_events": _api(
        lambda w, s: f"{M}/breakers/events", get=page(reads_gateway)
    ),  # fmt: skip
    "management:force_breaker": _api(
        lambda w, s: f"{M}/deployments/{w.deployment.pk}/breaker",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"action": "open", "reason": "matrix"},
        done=lambda w, s: BreakerEvent.objects.filter(deployment=w.deployment).exists(),
    ),
    "management:list_audit_events": _api(
        lambda w, s: f"{M}/audit-events", get=page(reads_gateway)
    ),  # fmt: skip
    "management:list_tokens": _api(lambda w, s: f"{M}/tokens", get=anyone),
    # A token never mints tokens (a leaked one must not outlive its revocation): 403 for all.
    "management:create_token": _api(
        lambda w, s: f"{M}/tokens",
        write=lambda r, s: O.FORBIDDEN,
        data=lambda w, s: {"name": "minted"},
    ),  # fmt: skip
    "management:revoke_token": _api(
        lambda w, s: f"{M}/tokens/{w.token_rows[s.removeprefix('token:')].pk}",
        method="DELETE",
        slots=("token:alice", "token:frank"),
        write=view(token_owner),
        done=lambda w, s: (
            w.token_rows[s.removeprefix("token:")]
            .__class__.objects.get(pk=w.token_rows[s.removeprefix("token:")].pk)
            .revoked_at
            is not None
        ),
    ),  # fmt: skip
}

ENTRIES: dict[str, Entry] = {**WEB, **SSO, **PLAYGROUND, **MANAGEMENT}
