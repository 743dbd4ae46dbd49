"""The expectations of the permission matrix for the dashboard, its htmx fragments, the SSO
pages and the playground's pages: for every named URL pattern, the slots (objects) it is
tried on and, per signed-in role, the outcome of GET and of the write (vocabulary:
tests/security/matrix_rules.py; the management API: matrix_api_table.py).
"""

from __future__ import annotations

from aigateway.guardrails.models import GuardrailPolicy
from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.routing.models import BreakerEvent, Deployment, Route
from auth.models import ApiKey, Organisation, Team, TeamMembership
from auth.sso.models import IdentityProvider, MappingRule
from providers.models import Credential, ModelPrice, Provider
from tests.security.matrix_rules import (
    CHILD_SLOTS,
    ORG_SLOTS,
    POLICY_FORM,
    ROUTE_FORM,
    TEAM_SLOTS,
    Entry,
    act,
    admins_sso,
    allowed_if,
    anyone,
    child,
    child_of,
    idp_form,
    member_id,
    org_slug,
    page,
    parent,
    root,
    run_author,
    sees_org_sso,
    sees_policy,
    team_create_rule,
    team_id,
    team_query,
    usage_filter_rule,
    uses_guardrails,
    view,
)
from tests.security.matrix_support import (
    TEAMS,
    cache_keys,
    changes_team,
    manages_people,
    reads_gateway,
    reads_org,
    sees_team,
)

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
    ),
    "web:breaker_action": Entry(
        lambda w, s: f"/breakers/{w.deployment.pk}/open/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"reason": "matrix", "confirm": "yes"},
        done=lambda w, s: BreakerEvent.objects.filter(deployment=w.deployment).exists(),
    ),
    "web:audit": Entry(lambda w, s: "/audit/", get=page(reads_gateway)),
    "web:audit_rows": Entry(lambda w, s: "/audit/rows/", get=page(reads_gateway), htmx=True),
    "web:audit_detail": Entry(
        lambda w, s: f"/audit/{w.audit[s].pk}/",
        slots=TEAM_SLOTS,
        get=page(reads_gateway, view(lambda r, s: reads_org(r, s[0]))),
    ),
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
    ),
    "web:team_detail": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/", get=view(sees_team), slots=TEAM_SLOTS
    ),
    "web:team_limits": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/limits/",
        get=view(sees_team),
        slots=TEAM_SLOTS,
        htmx=True,
    ),
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
    ),
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
    ),
    "web:team_member_role": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/members/{member_id(w, s)}/role/",
        write=act(sees_team, manages_people),
        slots=CHILD_SLOTS,
        data=lambda w, s: {"role": "team_admin"},
        done=lambda w, s: (
            TeamMembership.objects.get(team_id=team_id(w, s), user_id=member_id(w, s)).role
            == "team_admin"
        ),
    ),
    "web:team_member_remove": Entry(
        lambda w, s: f"/teams/{team_id(w, s)}/members/{member_id(w, s)}/remove/",
        write=act(sees_team, manages_people),
        slots=CHILD_SLOTS,
        done=lambda w, s: (
            not TeamMembership.objects.filter(
                team_id=team_id(w, s), user_id=member_id(w, s)
            ).exists()
        ),
    ),
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
    ),
    "web:usage_results": Entry(
        lambda w, s: f"/usage/results/{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
        htmx=True,
    ),
    "web:usage_calls": Entry(
        lambda w, s: f"/usage/calls/{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
        htmx=True,
    ),
    "web:usage_export": Entry(
        lambda w, s: f"/usage/export.csv{team_query(w, s)}",
        get=usage_filter_rule,
        slots=("-", *TEAM_SLOTS),
    ),
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
    ),
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
    ),
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
    ),
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
    ),
    "web:provider_test": Entry(
        lambda w, s: f"/providers/{w.provider.pk}/test/",
        write=page(root),
        slots=("gw",),
        changes=None,
    ),
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
        allowed_elsewhere="tests/web/test_providers_page.py (rotation verifies the secret "
        "from a worker thread: a transactional test)",
    ),
    "web:credential_activate": Entry(
        lambda w, s: f"/providers/credentials/{w.credential.pk}/activate/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"grace_minutes": "1"},
        allowed_elsewhere="tests/web/test_providers_page.py (activation calls the provider)",
    ),
    "web:credential_retire": Entry(
        lambda w, s: f"/providers/credentials/{w.credential.pk}/retire/",
        write=page(root),
        slots=("gw",),
        data=lambda w, s: {"confirm": "yes"},
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
    ),
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
    ),
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
    ),
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
    ),
    "sso:local_login": Entry(
        lambda w, s: f"/sso/orgs/{org_slug(s)}/local-login/",
        slots=ORG_SLOTS,
        write=page(reads_gateway, act(sees_org_sso, admins_sso)),
        done=lambda w, s: not Organisation.objects.get(slug=org_slug(s)).local_login_enabled,
    ),
    "sso:idp_detail": Entry(
        lambda w, s: f"/sso/{w.idps[s].pk}/",
        slots=ORG_SLOTS,
        data=idp_form,
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
        mixed=child_of(page(reads_gateway, act(sees_org_sso, admins_sso))),
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
    ),
    "playground:history": Entry(lambda w, s: "/playground/history/", get=anyone),
    "playground:run": Entry(
        lambda w, s: f"/playground/runs/{w.runs[s].pk}/", get=view(run_author), slots=TEAM_SLOTS
    ),
}
