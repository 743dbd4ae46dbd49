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


# -- providers, credentials, routes and deployments (gateway-wide configuration) ------------
def can_edit_gateway_config(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Providers, credentials, prices, routes and deployments serve every organisation, so
    whoever changes them must answer for every organisation: a gateway operator (superuser)
    or a platform admin of *every* organisation (the usual single-company set-up). A platform
    admin of one tenant among several reads them only: changing a shared credential or route
    would change another tenant's traffic."""
    if can_manage_gateway(user):
        return True
    admin_orgs = roles_of(user).admin_orgs
    if not admin_orgs:
        return False
    from auth.models import Organisation

    return not Organisation.objects.exclude(pk__in=admin_orgs).exists()


def require_gateway_config_editor(user: AbstractBaseUser | AnonymousUser) -> None:
    if not can_edit_gateway_config(user):
        raise PermissionDenied(
            "Providers and routes serve every organisation: only gateway operators and "
            "platform admins of every organisation can change them."
        )
