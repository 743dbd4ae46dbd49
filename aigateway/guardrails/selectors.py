"""Reading guardrail policies for the Guardrails page: what a user may see and change.

``guardrails_visible_to`` costs a fixed number of queries, whatever the number of policies
(two for the user's roles, one for the policies with their targets, and, for users who may
create policies, one each for organisations, teams and routes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from aigateway.guardrails import detectors
from aigateway.guardrails.models import GuardrailPolicy, Scope
from aigateway.guardrails.permissions import can_manage, can_view, may_use_page, team_admin_of
from aigateway.routing.models import Route
from auth.models import Organisation, Team
from auth.roles import AnyUser, Roles, roles_of

SCOPE_ORDER: dict[str, int] = {"org": 0, "team": 1, "route": 2}


@dataclass(frozen=True)
class PolicyRow:
    policy: GuardrailPolicy
    can_manage: bool

    @property
    def scope_label(self) -> str:
        return Scope(self.policy.scope).label

    @property
    def target(self) -> str:
        return self.policy.target_label.split(" ", 1)[1]

    @property
    def rule_lines(self) -> list[str]:
        """``pii → redact (both)``, one per rule."""
        return [f"{r['detect']} → {r['action']} ({r['direction']})" for r in self.policy.rules]

    @property
    def limit_lines(self) -> list[str]:
        p = self.policy
        lines = [
            f"{label}: {value:,}"
            for label, value in (
                ("max prompt tokens", p.max_prompt_tokens),
                ("max messages", p.max_messages),
                ("max output tokens", p.max_output_tokens),
            )
            if value is not None
        ]
        if p.allowed_params is not None:
            lines.append("parameters: " + (", ".join(p.allowed_params) or "none"))
        return lines


@dataclass(frozen=True)
class TargetOption:
    value: str  # org:ID · team:ID · route:ORG_ID:ROUTE_ID
    label: str


@dataclass(frozen=True)
class GuardrailsOverview:
    rows: list[PolicyRow]
    targets: list[TargetOption] = field(default_factory=list)  # where a policy may be created
    detectors: list[tuple[str, str]] = field(default_factory=list)  # (name, category)

    @property
    def can_manage_any(self) -> bool:
        return bool(self.targets) or any(row.can_manage for row in self.rows)


def _visible_filter(roles: Roles) -> Q:
    admin_teams = team_admin_of(roles)
    team_orgs = {roles.team_orgs[t] for t in admin_teams if t in roles.team_orgs}
    return (
        Q(organisation_id__in=roles.wide_orgs)
        | Q(scope=Scope.TEAM, team_id__in=admin_teams)
        | (~Q(scope=Scope.TEAM) & Q(organisation_id__in=team_orgs))
    )


def _targets(roles: Roles, taken: set[str]) -> list[TargetOption]:
    """Targets the user may give a new policy (not those that have one)."""
    admin_teams = team_admin_of(roles)
    orgs = Organisation.objects.order_by("slug")
    teams = Team.objects.select_related("organisation").order_by("organisation__slug", "slug")
    if not roles.superuser:
        orgs = orgs.filter(pk__in=roles.admin_orgs)
        teams = teams.filter(Q(organisation_id__in=roles.admin_orgs) | Q(pk__in=admin_teams))
    org_list = list(orgs)
    options = [TargetOption(f"org:{o.pk}", f"Organisation {o.slug}") for o in org_list]
    options += [TargetOption(f"team:{t.pk}", f"Team {t}") for t in teams]
    if org_list:
        routes = list(Route.objects.order_by("name").values_list("pk", "name"))
        options += [
            TargetOption(f"route:{o.pk}:{pk}", f"Route {name} in {o.slug}")
            for o in org_list
            for pk, name in routes
        ]
    return [option for option in options if option.value not in taken]


def _key(policy: GuardrailPolicy) -> str:
    if policy.scope == Scope.TEAM:
        return f"team:{policy.team_id}"
    if policy.scope == Scope.ROUTE:
        return f"route:{policy.organisation_id}:{policy.route_id}"
    return f"org:{policy.organisation_id}"


def guardrails_visible_to(user: AnyUser) -> GuardrailsOverview:
    """The policies ``user`` may read, with what they may change; PermissionDenied for users
    who may not use the page (members, outsiders)."""
    roles = roles_of(user)
    if not may_use_page(roles):
        raise PermissionDenied("Only platform admins, auditors and team admins see guardrails.")
    policies = GuardrailPolicy.objects.select_related("organisation", "team__organisation", "route")
    if not roles.superuser:
        policies = policies.filter(_visible_filter(roles))
    rows = [
        PolicyRow(
            p,
            can_manage(roles, scope=p.scope, organisation_id=p.organisation_id, team_id=p.team_id),
        )
        for p in policies
    ]
    rows.sort(key=lambda r: (SCOPE_ORDER.get(r.policy.scope, 9), r.policy.target_label))
    taken = {_key(row.policy) for row in rows}
    creatable = roles.superuser or bool(roles.admin_orgs) or bool(team_admin_of(roles))
    return GuardrailsOverview(
        rows=rows,
        targets=_targets(roles, taken) if creatable else [],
        detectors=sorted((name, d.category) for name, d in detectors.BUILTIN_DETECTORS.items()),
    )


def policy_get_for_user(user: AnyUser, pk: int) -> tuple[GuardrailPolicy, bool]:
    """The policy and whether ``user`` may change it; 404 if they may not see it (403 for
    users who may not use the page at all)."""
    roles = roles_of(user)
    if not may_use_page(roles):
        raise PermissionDenied("Only platform admins, auditors and team admins see guardrails.")
    policy = (
        GuardrailPolicy.objects.select_related("organisation", "team__organisation", "route")
        .filter(pk=pk)
        .first()
    )
    if policy is None:
        raise Http404("There is no such guardrail policy.")
    scope, org_id, team_id = policy.scope, policy.organisation_id, policy.team_id
    if not can_view(roles, scope=scope, organisation_id=org_id, team_id=team_id):
        raise Http404("There is no such guardrail policy.")
    return policy, can_manage(roles, scope=scope, organisation_id=org_id, team_id=team_id)


def target_resolve(
    user: AnyUser, value: str
) -> tuple[str, Organisation, Team | None, Route | None]:
    """A new policy's target from the form (``org:ID``, ``team:ID``, ``route:ORG:ROUTE``);
    PermissionDenied when it is not one the user may create."""
    if value not in {t.value for t in _targets(roles_of(user), set())}:
        raise PermissionDenied("You may not create a guardrail policy there.")
    scope, _, rest = value.partition(":")
    if scope == Scope.TEAM:
        team = Team.objects.select_related("organisation").get(pk=int(rest))
        return scope, team.organisation, team, None
    if scope == Scope.ROUTE:
        org_id, route_id = rest.split(":")
        return (
            scope,
            Organisation.objects.get(pk=int(org_id)),
            None,
            Route.objects.get(pk=int(route_id)),
        )
    return scope, Organisation.objects.get(pk=int(rest)), None, None
