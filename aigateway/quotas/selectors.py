"""Reading limits for the Limits page: what the user may see, with live usage.

``limits_visible_to`` costs a fixed number of queries whatever the number of limits, teams,
keys or users (two for the user's roles, one per kind of target, one for the limits, one for
the alerts) and ONE limiter call: every visible, enabled limit is peeked in a single
``peek`` (aigateway.quotas.live_usage), which takes nothing.

Visibility and management rights come from aigateway.quotas.permissions (``can_view``,
``can_manage``), applied to targets loaded in bulk here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from aigateway.quotas.live_usage import LimitUsage, count_text, dollars_text, with_usage
from aigateway.quotas.models import Limit, LimitKind, QuotaAlert, Scope
from aigateway.quotas.permissions import (
    AnyUser,
    Roles,
    Target,
    can_manage,
    can_view,
    deployment_label,
    key_label,
    missing_target,
    roles_of,
)
from aigateway.quotas.rules import KIND_LABELS
from aigateway.routing.models import Deployment
from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership

SCOPE_ORDER: list[str] = [Scope.ORGANISATION, Scope.TEAM, Scope.KEY, Scope.USER, Scope.DEPLOYMENT]
SCOPE_NAMES: dict[str, str] = {
    Scope.ORGANISATION: "Organisation",
    Scope.TEAM: "Team",
    Scope.KEY: "API key",
    Scope.USER: "User",
    Scope.DEPLOYMENT: "Deployment",
}
KIND_ORDER = list(LimitKind.values)


@dataclass(frozen=True)
class LimitRow:
    id: int
    target: Target
    kind: str
    value: Decimal
    burst: Decimal | None
    soft_threshold_percent: int
    enabled: bool
    can_manage: bool
    usage: LimitUsage | None = None

    @property
    def scope(self) -> str:
        return self.target.scope

    @property
    def scope_label(self) -> str:
        return SCOPE_NAMES.get(self.target.scope, self.target.scope)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def value_text(self) -> str:
        if self.kind.startswith("cost_"):
            return dollars_text(float(self.value))
        return f"{self.value.normalize():,f}"

    @property
    def burst_text(self) -> str:
        return f"{self.burst.normalize():,f}" if self.burst is not None else ""

    @property
    def description(self) -> str:
        return f"{self.kind_label} on {self.target.describe()}"


@dataclass(frozen=True)
class AlertRow:
    id: int
    limit: LimitRow
    period: str
    used: Decimal
    created_at: datetime

    @property
    def used_text(self) -> str:
        if self.limit.kind.startswith("cost_"):
            return dollars_text(float(self.used))
        return count_text(float(self.used))

    @property
    def can_acknowledge(self) -> bool:
        return self.limit.can_manage


@dataclass(frozen=True)
class TargetGroup:
    scope: str
    label: str
    targets: list[Target]


@dataclass(frozen=True)
class LimitsOverview:
    rows: list[LimitRow]
    alerts: list[AlertRow] = field(default_factory=list)
    targets: list[TargetGroup] = field(default_factory=list)  # what the user may manage
    usage_available: bool = True
    checked_at: datetime | None = None

    @property
    def can_manage_any(self) -> bool:
        return any(group.targets for group in self.targets)


# -- targets the user may see, in bulk ----------------------------------------------------------
@dataclass
class _Universe:
    """Every target the user may see, by scope and id, loaded with one query per scope."""

    by_scope: dict[str, dict[int, Target]]
    filters: Q  # the visible limits, as subqueries (no long IN lists)
    active_keys: set[int]


def _users(roles: Roles, user: AnyUser, wide: frozenset[int], all_: bool) -> dict[int, Target]:
    orgs: dict[int, set[int]] = {}
    names: dict[int, str] = {}
    org_rows = OrgMembership.objects.values_list("user_id", "user__username", "organisation_id")
    team_rows = TeamMembership.objects.values_list(
        "user_id", "user__username", "team__organisation_id"
    )
    if all_:
        names.update(get_user_model().objects.values_list("pk", "username"))
    else:
        org_rows = org_rows.filter(organisation_id__in=wide)
        team_rows = team_rows.filter(team__organisation_id__in=wide)
    rows = [*org_rows, *team_rows] if (all_ or wide) else []
    for user_id, username, org_id in rows:
        names[user_id] = username
        orgs.setdefault(user_id, set()).add(org_id)
    if roles.user_id is not None:
        names[roles.user_id] = user.get_username()
        orgs.setdefault(roles.user_id, set()).update(roles.own_orgs)
    return {
        pk: Target(Scope.USER, pk, name, frozenset(orgs.get(pk, ())))
        for pk, name in sorted(names.items(), key=lambda item: item[1])
    }


def _universe(roles: Roles, user: AnyUser) -> _Universe:
    su, wide = roles.superuser, roles.wide_orgs
    own_teams = list(roles.team_roles)
    orgs_qs: QuerySet[Organisation] = Organisation.objects.all()
    teams_qs: QuerySet[Team] = Team.objects.all()
    if not su:
        orgs_qs = orgs_qs.filter(pk__in=wide)
        teams_qs = teams_qs.filter(Q(organisation_id__in=wide) | Q(pk__in=own_teams))
    keys_qs = ApiKey.objects.filter(team_id__in=teams_qs.values("pk"))
    see_deployments = su or bool(wide)

    orgs = {
        o.pk: Target(Scope.ORGANISATION, o.pk, o.slug, frozenset({o.pk}), time_zone=o.time_zone)
        for o in orgs_qs.only("slug", "time_zone").order_by("slug")
    }
    team_rows = teams_qs.select_related("organisation").only(
        "slug", "organisation__slug", "organisation__time_zone"
    )
    teams = {
        t.pk: Target(Scope.TEAM, t.pk, f"{t.organisation.slug}/{t.slug}",
                     frozenset({t.organisation_id}), t.pk, t.organisation.time_zone)
        for t in team_rows.order_by("organisation__slug", "slug")
    }  # fmt: skip
    keys: dict[int, Target] = {}
    active: set[int] = set()
    key_rows = keys_qs.values_list("pk", "name", "prefix", "team_id", "revoked_at").order_by(
        "team__organisation__slug", "team__slug", "name"
    )
    for pk, name, prefix, team_id, revoked_at in key_rows:
        team = teams[team_id]
        org_slug, team_slug = team.label.split("/", 1)
        label = key_label(org_slug, team_slug, name, prefix)
        keys[pk] = Target(Scope.KEY, pk, label, team.organisation_ids, team_id, team.time_zone)
        if revoked_at is None:
            active.add(pk)
    users = _users(roles, user, wide, su)
    time_zones = {pk: t.time_zone for pk, t in orgs.items()}
    users = {
        pk: Target(t.scope, pk, t.label, t.organisation_ids,
                   time_zone=time_zones.get(min(t.organisation_ids, default=0), "UTC"))
        for pk, t in users.items()
    }  # fmt: skip
    deployments: dict[int, Target] = {}
    if see_deployments:
        rows = Deployment.objects.values_list(
            "pk", "route__name", "provider__name", "upstream_model"
        ).order_by("route__name", "priority", "pk")
        for pk, route, provider, model in rows:
            deployments[pk] = Target(Scope.DEPLOYMENT, pk, deployment_label(route, provider, model))

    if su:
        filters = Q()
    else:
        user_ids = Q(scope_id__in=OrgMembership.objects.filter(organisation_id__in=wide)
                     .values("user_id")) | Q(
            scope_id__in=TeamMembership.objects.filter(team__organisation_id__in=wide)
            .values("user_id"))  # fmt: skip
        if roles.user_id is not None:
            user_ids |= Q(scope_id=roles.user_id)
        filters = (
            Q(scope=Scope.ORGANISATION, scope_id__in=orgs_qs.values("pk"))
            | Q(scope=Scope.TEAM, scope_id__in=teams_qs.values("pk"))
            | Q(scope=Scope.KEY, scope_id__in=keys_qs.values("pk"))
            | (Q(scope=Scope.USER) & user_ids)
        )
        if see_deployments:
            filters |= Q(scope=Scope.DEPLOYMENT)
    return _Universe(
        by_scope={
            Scope.ORGANISATION: orgs,
            Scope.TEAM: teams,
            Scope.KEY: keys,
            Scope.USER: users,
            Scope.DEPLOYMENT: deployments,
        },
        filters=filters,
        active_keys=active,
    )


# -- the page -----------------------------------------------------------------------------------
def _sort_key(row: LimitRow) -> tuple[int, str, int]:
    scope = SCOPE_ORDER.index(row.scope) if row.scope in SCOPE_ORDER else len(SCOPE_ORDER)
    kind = KIND_ORDER.index(row.kind) if row.kind in KIND_ORDER else len(KIND_ORDER)
    return scope, row.target.label, kind


def limits_visible_to(
    user: AnyUser, *, live: bool = True, with_alerts: bool = True
) -> LimitsOverview:
    """The limits ``user`` may see (with live usage unless ``live`` is False), the open alerts
    of those limits, and the targets the user may manage (for the form)."""
    roles = roles_of(user)
    if roles.user_id is None:
        return LimitsOverview(rows=[])
    universe = _universe(roles, user)
    rows: list[LimitRow] = []
    for limit in Limit.objects.filter(universe.filters):
        target = universe.by_scope.get(limit.scope, {}).get(limit.scope_id)
        if target is None:
            if not roles.superuser:
                continue
            target = missing_target(limit.scope, limit.scope_id)
        if not can_view(roles, target):
            continue
        rows.append(
            LimitRow(
                id=limit.pk,
                target=target,
                kind=limit.kind,
                value=limit.value,
                burst=limit.burst,
                soft_threshold_percent=limit.soft_threshold_percent,
                enabled=limit.enabled,
                can_manage=can_manage(roles, target),
            )
        )
    rows.sort(key=_sort_key)
    now = datetime.now(UTC)
    available = True
    if live:
        rows, available = with_usage(rows, now)
    alerts: list[AlertRow] = []
    if with_alerts and rows:
        by_id = {row.id: row for row in rows}
        open_alerts = QuotaAlert.objects.filter(
            limit_id__in=list(by_id), acknowledged_at__isnull=True
        ).order_by("-created_at", "-pk")
        alerts = [
            AlertRow(a.pk, by_id[a.limit_id], a.period, a.used, a.created_at) for a in open_alerts
        ]
    groups = []
    for scope in SCOPE_ORDER:
        targets = [
            t
            for pk, t in universe.by_scope[scope].items()
            if can_manage(roles, t) and (scope != Scope.KEY or pk in universe.active_keys)
        ]
        if targets:
            groups.append(TargetGroup(scope, SCOPE_NAMES[scope], targets))
    return LimitsOverview(rows, alerts, groups, available, now)
