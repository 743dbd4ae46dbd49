"""Who may see and change gateway-wide resources (providers, routes, deployments, breakers).

They serve every organisation, so changing them is for whoever answers for every organisation:
gateway operators (Django superusers) and platform admins of every organisation (the usual
single-company set-up). Platform admins of some organisations and auditors read them.
Per-organisation data has its own checks.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from auth.roles import covers_every_organisation, roles_of


def can_manage_gateway(user: AbstractBaseUser | AnonymousUser) -> bool:
    """A gateway operator (Django superuser): may do anything, whatever the tenancy."""
    return bool(user.is_authenticated and getattr(user, "is_superuser", False))


def can_read_gateway(user: AbstractBaseUser | AnonymousUser) -> bool:
    if can_manage_gateway(user):
        return True
    return bool(roles_of(user).wide_orgs)


def require_gateway_reader(user: AbstractBaseUser | AnonymousUser) -> None:
    if not can_read_gateway(user):
        raise PermissionDenied("Only platform admins and auditors can see this page.")


# -- providers, credentials, routes and deployments (gateway-wide configuration) ------------
def can_edit_gateway_config(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Providers, credentials, prices, routes and deployments serve every organisation, so
    whoever changes them must answer for every organisation: a gateway operator (superuser)
    or a platform admin of *every* organisation (the usual single-company set-up). A platform
    admin of one tenant among several reads them only: changing a shared credential or route
    would change another tenant's traffic."""
    if can_manage_gateway(user):
        return True
    return covers_every_organisation(roles_of(user).admin_orgs)


def require_gateway_config_editor(user: AbstractBaseUser | AnonymousUser) -> None:
    if not can_edit_gateway_config(user):
        raise PermissionDenied(
            "Providers and routes serve every organisation: only gateway operators and "
            "platform admins of every organisation can change them."
        )


def require_breaker_controller(user: AbstractBaseUser | AnonymousUser) -> None:
    """Forcing or resetting a circuit breaker changes every organisation's traffic on that
    deployment, as editing the deployment would: the same people may do it."""
    if not can_edit_gateway_config(user):
        raise PermissionDenied(
            "Circuit breakers serve every organisation: only gateway operators and platform "
            "admins of every organisation can force or reset them."
        )
