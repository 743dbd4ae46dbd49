"""Who may see and change gateway-wide resources (providers, routes, deployments, breakers).

Deployments serve every organisation, so changing them is for gateway operators (Django
superusers); platform admins and auditors may read them. Per-organisation data has its own
checks.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from auth.roles import roles_of


def can_manage_gateway(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Deployments serve every organisation: only gateway operators (Django superusers)
    change them. An organisation's platform admin must not throttle or break another's."""
    return bool(user.is_authenticated and getattr(user, "is_superuser", False))


def can_read_gateway(user: AbstractBaseUser | AnonymousUser) -> bool:
    if can_manage_gateway(user):
        return True
    return bool(roles_of(user).wide_orgs)


def require_gateway_reader(user: AbstractBaseUser | AnonymousUser) -> None:
    if not can_read_gateway(user):
        raise PermissionDenied("Only platform admins and auditors can see this page.")


def require_gateway_manager(user: AbstractBaseUser | AnonymousUser) -> None:
    if not can_manage_gateway(user):
        raise PermissionDenied("Only platform admins can change this.")
