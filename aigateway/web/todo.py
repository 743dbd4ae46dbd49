"""The overview's to-do list: what needs a person now, limited to what the user may see.

- Overdue credential rotations: platform admins (and gateway operators), as before.
- Open circuit breakers: whoever may read the Breakers page (platform admins, auditors,
  gateway operators). A breaker that is open, half-open or forced open is traffic that
  fails over or fails.
- Quota alerts: the open (unacknowledged) alerts of the limits the user may see, and those
  limits that are past their soft threshold right now (one limiter call for all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from aigateway.quotas.selectors import AlertRow, LimitRow, limits_visible_to
from aigateway.web.permissions import can_read_gateway
from aigateway.web.selectors import OverdueCredential, credentials_overdue
from auth.roles import roles_of

HEALTHY_BREAKER_STATES = frozenset({"closed", "forced_closed"})


@dataclass(frozen=True)
class OpenBreaker:
    deployment_id: int
    route: str
    deployment: str
    state: str


@dataclass(frozen=True)
class TodoList:
    overdue_credentials: list[OverdueCredential] = field(default_factory=list)
    open_breakers: list[OpenBreaker] = field(default_factory=list)
    quota_alerts: list[AlertRow] = field(default_factory=list)
    limits_near: list[LimitRow] = field(default_factory=list)
    limits_unavailable: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.overdue_credentials or self.open_breakers or self.quota_alerts or self.limits_near
        )


def open_breakers() -> list[OpenBreaker]:
    from aigateway.routing.services import breakers_list

    return [
        OpenBreaker(
            row.deployment.pk,
            row.deployment.route.name,
            f"{row.deployment.provider.name}:{row.deployment.upstream_model}",
            row.breaker.state,
        )
        for row in breakers_list()
        if row.breaker.state not in HEALTHY_BREAKER_STATES
    ]


def todo_for_user(user: AbstractBaseUser | AnonymousUser) -> TodoList:
    if not user.is_authenticated:
        return TodoList()
    roles = roles_of(user)
    is_admin = roles.superuser or bool(roles.admin_orgs)
    limits = limits_visible_to(user)
    alerted = {alert.limit.id for alert in limits.alerts}
    near = [
        row
        for row in limits.rows
        if row.usage is not None and row.usage.over_soft_threshold and row.id not in alerted
    ]
    return TodoList(
        overdue_credentials=credentials_overdue(now=timezone.now()) if is_admin else [],
        open_breakers=open_breakers() if can_read_gateway(user) else [],
        quota_alerts=limits.alerts,
        limits_near=near,
        limits_unavailable=bool(limits.rows) and not limits.usage_available,
    )
