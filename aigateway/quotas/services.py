"""Changes to limits and quota alerts, and who may make them.

Who may do what (checked here whenever an ``actor`` is given, whatever the caller):

- Django superusers: every limit.
- Platform admins of an organisation: limits of the organisation, its teams, their API keys
  and its users (anyone with a role in the organisation or one of its teams; a user limit
  only when the admin administers every organisation the user belongs to). Deployment
  limits are for superusers only: deployments serve every organisation.
- Team admins: limits of their own team's API keys only (not the team's or organisation's).
- Auditors: read every limit of their organisation, and deployment limits; change nothing.
- Members (and team admins): read the limits of their team, of its API keys and their own
  user limits; change nothing.

An ``actor`` of None is the command line (``manage.py gateway apply``): trusted, audited as
``cli``. The predicates work on ``Target`` (what a limit applies to) and ``Roles`` (who is
asking), so the page's bulk selector and these single checks agree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from aigateway.audit.services import audit_record
from aigateway.quotas.models import Limit, LimitKind, QuotaAlert, Scope
from aigateway.quotas.rules import KIND_LABELS, PER_MINUTE, SCOPE_LABELS
from auth.models import (
    ApiKey,
    Organisation,
    OrgMembership,
    OrgRole,
    Team,
    TeamMembership,
    TeamRole,
)

AnyUser = AbstractBaseUser | AnonymousUser
MAX_VALUE = Decimal(10) ** 10  # Limit.value: 16 digits, 6 of them decimals
DECIMAL_PLACES = 6
WHOLE_KINDS = frozenset(LimitKind.values) - {"cost_day", "cost_month"}


# -- who is asking ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Roles:
    user_id: int | None
    superuser: bool = False
    org_roles: Mapping[int, str] = field(default_factory=dict)  # organisation id → OrgRole
    team_roles: Mapping[int, str] = field(default_factory=dict)  # team id → TeamRole
    team_orgs: Mapping[int, int] = field(default_factory=dict)  # own team id → organisation id

    @property
    def admin_orgs(self) -> frozenset[int]:
        return frozenset(o for o, r in self.org_roles.items() if r == OrgRole.PLATFORM_ADMIN)

    @property
    def wide_orgs(self) -> frozenset[int]:
        """Organisations whose every limit this user reads (platform admin or auditor)."""
        wide = (OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR)
        return frozenset(o for o, r in self.org_roles.items() if r in wide)

    @property
    def own_orgs(self) -> frozenset[int]:
        return frozenset(self.org_roles) | frozenset(self.team_orgs.values())


def roles_of(user: AnyUser) -> Roles:
    """The user's roles (two queries; none for anonymous users)."""
    if not user.is_authenticated:
        return Roles(user_id=None)
    teams = TeamMembership.objects.filter(user_id=user.pk).values_list(
        "team_id", "role", "team__organisation_id"
    )
    team_rows = list(teams)
    return Roles(
        user_id=user.pk,
        superuser=bool(getattr(user, "is_superuser", False)),
        org_roles=dict(
            OrgMembership.objects.filter(user_id=user.pk).values_list("organisation_id", "role")
        ),
        team_roles={team: role for team, role, _ in team_rows},
        team_orgs={team: org for team, _, org in team_rows},
    )


# -- what a limit applies to ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    scope: str
    scope_id: int
    label: str  # acme · acme/research · acme/research/ci (agw-3fJk9aQz…) · alice · r → p:m
    organisation_ids: frozenset[int] = frozenset()  # the org of an org/team/key; a user's orgs
    team_id: int | None = None  # team and key scopes
    time_zone: str = "UTC"  # budgets roll over at midnight here
    exists: bool = True

    @property
    def value(self) -> str:
        """The form value naming this target: ``scope:id``."""
        return f"{self.scope}:{self.scope_id}"

    def describe(self) -> str:
        return f"{SCOPE_LABELS.get(self.scope, self.scope)} {self.label}"


def missing_target(scope: str, scope_id: int) -> Target:
    """A limit whose organisation, team, key, user or deployment was deleted."""
    return Target(scope, scope_id, f"#{scope_id} (deleted)", exists=False)


def key_label(org_slug: str, team_slug: str, name: str, prefix: str) -> str:
    return f"{org_slug}/{team_slug}/{name} ({prefix}…)"


def deployment_label(route: str, provider: str, model: str) -> str:
    return f"{route} → {provider}:{model}"


def user_organisations(user_ids: list[int]) -> dict[int, set[int]]:
    """user id → organisations they have a role in, directly or through a team (2 queries)."""
    orgs: dict[int, set[int]] = {pk: set() for pk in user_ids}
    rows = OrgMembership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "organisation_id"
    )
    rows2 = TeamMembership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "team__organisation_id"
    )
    for user_id, org_id in [*rows, *rows2]:
        orgs[user_id].add(org_id)
    return orgs


def target_resolve(scope: str, scope_id: int) -> Target:
    """The target of ``scope``/``scope_id``; ``exists`` is False if there is no such thing."""
    from aigateway.routing.models import Deployment

    if scope == Scope.ORGANISATION:
        org = Organisation.objects.filter(pk=scope_id).first()
        if org is not None:
            return Target(scope, org.pk, org.slug, frozenset({org.pk}), time_zone=org.time_zone)
    elif scope == Scope.TEAM:
        team = Team.objects.select_related("organisation").filter(pk=scope_id).first()
        if team is not None:
            org = team.organisation
            label = f"{org.slug}/{team.slug}"
            return Target(scope, team.pk, label, frozenset({org.pk}), team.pk, org.time_zone)
    elif scope == Scope.KEY:
        key = (
            ApiKey.objects.select_related("team__organisation")
            .only("name", "prefix", "team__slug", "team__organisation__slug")
            .filter(pk=scope_id)
            .first()
        )
        if key is not None:
            team, org = key.team, key.team.organisation
            label = key_label(org.slug, team.slug, key.name, key.prefix)
            return Target(scope, key.pk, label, frozenset({org.pk}), team.pk, org.time_zone)
    elif scope == Scope.USER:
        user = get_user_model().objects.filter(pk=scope_id).first()
        if user is not None:
            orgs = user_organisations([user.pk])[user.pk]
            tz = (
                Organisation.objects.filter(pk__in=orgs)
                .order_by("pk")
                .values_list("time_zone", flat=True)
                .first()
            )
            return Target(scope, user.pk, user.get_username(), frozenset(orgs),
                          time_zone=tz or "UTC")  # fmt: skip
    elif scope == Scope.DEPLOYMENT:
        dep = Deployment.objects.select_related("route", "provider").filter(pk=scope_id).first()
        if dep is not None:
            label = deployment_label(dep.route.name, dep.provider.name, dep.upstream_model)
            return Target(scope, dep.pk, label)
    return missing_target(scope, scope_id)


# -- the rules --------------------------------------------------------------------------------
def can_view(roles: Roles, target: Target) -> bool:
    if roles.superuser:
        return True
    if not target.exists:
        return False
    wide, orgs = roles.wide_orgs, target.organisation_ids
    if target.scope == Scope.ORGANISATION:
        return target.scope_id in wide
    if target.scope in (Scope.TEAM, Scope.KEY):
        return bool(orgs & wide) or target.team_id in roles.team_roles
    if target.scope == Scope.USER:
        return bool(orgs & wide) or target.scope_id == roles.user_id
    if target.scope == Scope.DEPLOYMENT:
        return bool(wide)
    return False


def can_manage(roles: Roles, target: Target) -> bool:
    if roles.superuser:
        return True
    if not target.exists:
        return False
    admin, orgs = roles.admin_orgs, target.organisation_ids
    if target.scope in (Scope.ORGANISATION, Scope.TEAM):
        return bool(orgs & admin)
    if target.scope == Scope.USER:
        # A user limit applies to all the user's calls: only an admin of every organisation
        # the user belongs to may set it (one organisation must not throttle another's use).
        return bool(orgs) and orgs <= admin
    if target.scope == Scope.KEY:
        return bool(orgs & admin) or roles.team_roles.get(target.team_id or 0) == (
            TeamRole.TEAM_ADMIN
        )
    # Deployments serve every organisation: only gateway operators (superusers) limit them.
    return False


def limit_can_view(user: AnyUser, limit: Limit) -> bool:
    return can_view(roles_of(user), target_resolve(limit.scope, limit.scope_id))


def limit_can_manage(user: AnyUser, *, scope: str, scope_id: int) -> bool:
    return can_manage(roles_of(user), target_resolve(scope, scope_id))


def limit_require_view(user: AnyUser, limit: Limit) -> Target:
    """The limit's target if ``user`` may read the limit; else PermissionDenied."""
    target = target_resolve(limit.scope, limit.scope_id)
    if not can_view(roles_of(user), target):
        raise PermissionDenied("You may not see this limit.")
    return target


def limit_require_manage(user: AnyUser, *, scope: str, scope_id: int) -> Target:
    """The target if ``user`` may set or delete limits on it; else PermissionDenied (also
    when there is no such target, so its existence is not revealed)."""
    target = target_resolve(scope, scope_id)
    if not can_manage(roles_of(user), target):
        what = target.describe() if can_view(roles_of(user), target) else "this target"
        raise PermissionDenied(f"You may not change limits of {what}.")
    return target


# -- validation -------------------------------------------------------------------------------
def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _amount_error(number: Decimal, kind: str, what: str) -> str | None:
    if number >= MAX_VALUE:
        return f"The {what} must be less than 10,000,000,000."
    if kind in WHOLE_KINDS and number != number.to_integral_value():
        return f"The {what} must be a whole number."
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        return f"The {what} can have at most {DECIMAL_PLACES} decimal places."
    return None


def limit_validate(
    *, scope: str, kind: str, value: object, burst: object, soft_threshold_percent: object
) -> dict[str, str]:
    """Field → what is wrong, as a plain sentence. Empty when the limit is valid."""
    errors: dict[str, str] = {}
    if scope not in Scope.values:
        errors["scope"] = "Choose what the limit applies to."
    if kind not in LimitKind.values:
        errors["kind"] = "Choose a kind of limit."
        return errors
    if scope == Scope.DEPLOYMENT and kind not in PER_MINUTE:
        errors["kind"] = (
            "A deployment takes only per-minute limits (requests or tokens per minute)."
        )
    number = _decimal(value)
    if number is None:
        errors["value"] = "The limit must be a number."
    elif number <= 0:
        errors["value"] = "The limit must be greater than zero."
    elif (problem := _amount_error(number, kind, "limit")) is not None:
        errors["value"] = problem
    if burst is not None and burst != "":
        capacity = _decimal(burst)
        if kind not in PER_MINUTE:
            errors["burst"] = (
                "A burst applies only to per-minute limits (requests or tokens per minute)."
            )
        elif capacity is None:
            errors["burst"] = "The burst must be a number."
        elif number is not None and number > 0 and capacity < number:
            errors["burst"] = f"The burst must be at least the limit ({number.normalize():f})."
        elif (problem := _amount_error(capacity, kind, "burst")) is not None:
            errors["burst"] = problem
    soft = soft_threshold_percent
    if isinstance(soft, bool) or not isinstance(soft, int) or not 1 <= soft <= 100:
        errors["soft_threshold_percent"] = (
            "The soft threshold must be a whole percentage from 1 to 100."
        )
    return errors


# -- changes ----------------------------------------------------------------------------------
def amount_text(number: Decimal | None) -> str | None:
    """``100000.000000`` → ``"100000"``, ``12.500000`` → ``"12.5"``."""
    return None if number is None else f"{Decimal(number).normalize():f}"


def limit_snapshot(limit: Limit) -> dict[str, Any]:
    """What an audit entry records of a limit (amounts as decimal strings)."""
    return {
        "value": amount_text(limit.value),
        "burst": amount_text(limit.burst),
        "soft_threshold_percent": limit.soft_threshold_percent,
        "enabled": limit.enabled,
    }


def limit_describe(kind: str, target: Target) -> str:
    """e.g. ``tokens per minute on team acme/research``."""
    return f"{KIND_LABELS.get(kind, kind)} on {target.describe()}"


def _audit(action: str, actor: AbstractBaseUser | None, limit: Limit, target: Target,
           details: dict[str, Any]) -> None:  # fmt: skip
    orgs = target.organisation_ids
    audit_record(
        action=action,
        target_type="limit",
        target_id=limit.pk,
        target_label=limit_describe(limit.kind, target),
        actor=actor,
        actor_label="cli",
        details={"scope": limit.scope, "scope_id": limit.scope_id, "kind": limit.kind, **details},
        organisation_id=next(iter(orgs)) if len(orgs) == 1 else None,
    )


@transaction.atomic
def limit_set(
    *,
    actor: AbstractBaseUser | None,
    scope: str,
    scope_id: int,
    kind: str,
    value: Decimal | int | float | str,
    burst: Decimal | int | float | str | None = None,
    soft_threshold_percent: int = 80,
    enabled: bool = True,
) -> Limit:
    """Create the limit of this kind on this target, or change it (one per scope, target and
    kind). Raises ValidationError (field → plain sentence) or PermissionDenied. Audited as
    ``limit.set`` with the values before (None when created) and after; a no-op is not."""
    if actor is not None:
        target = limit_require_manage(actor, scope=scope, scope_id=scope_id)
    errors = limit_validate(
        scope=scope, kind=kind, value=value, burst=burst,
        soft_threshold_percent=soft_threshold_percent,
    )  # fmt: skip
    if errors:
        raise ValidationError(errors)
    if actor is None:
        target = target_resolve(scope, scope_id)
        if not target.exists:
            raise ValidationError({"scope": f"There is no {SCOPE_LABELS[scope]} #{scope_id}."})
    number = _decimal(value)
    assert number is not None  # validated above
    capacity = _decimal(burst) if burst not in (None, "") else None
    limit = Limit.objects.select_for_update().filter(scope=scope, scope_id=scope_id, kind=kind)
    current = limit.first()
    before = limit_snapshot(current) if current is not None else None
    row = current or Limit(scope=scope, scope_id=scope_id, kind=kind)
    row.value, row.burst = number, capacity
    row.soft_threshold_percent, row.enabled = soft_threshold_percent, enabled
    after = limit_snapshot(row)
    if before == after:
        return row
    row.save()
    _audit("limit.set", actor, row, target, {"before": before, "after": after})
    return row


@transaction.atomic
def limit_delete(*, actor: AbstractBaseUser | None, limit: Limit) -> None:
    """Delete a limit (its alerts go with it). Audited as ``limit.deleted``."""
    if actor is not None:
        target = limit_require_manage(actor, scope=limit.scope, scope_id=limit.scope_id)
    else:
        target = target_resolve(limit.scope, limit.scope_id)
    before = limit_snapshot(limit)
    pk = limit.pk
    limit.delete()
    limit.pk = pk  # for the audit entry
    _audit("limit.deleted", actor, limit, target, {"before": before})


@transaction.atomic
def alert_acknowledge(*, actor: AbstractBaseUser | None, alert: QuotaAlert) -> QuotaAlert:
    """Mark an alert as seen (by someone who may manage its limit). Acknowledging twice
    changes nothing. Audited as ``quota_alert.acknowledged``."""
    limit = alert.limit
    if actor is not None:
        target = limit_require_manage(actor, scope=limit.scope, scope_id=limit.scope_id)
    else:
        target = target_resolve(limit.scope, limit.scope_id)
    if alert.acknowledged_at is not None:
        return alert
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["acknowledged_at"])
    orgs = target.organisation_ids
    audit_record(
        action="quota_alert.acknowledged",
        target_type="quota_alert",
        target_id=alert.pk,
        target_label=f"{limit_describe(limit.kind, target)}, {alert.period}",
        actor=actor,
        actor_label="cli",
        details={"limit_id": limit.pk, "period": alert.period, "used": str(alert.used)},
        organisation_id=next(iter(orgs)) if len(orgs) == 1 else None,
    )
    return alert
