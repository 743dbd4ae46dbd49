"""Who may see and change SSO settings (one place for every SSO page and fragment; built on
auth/roles.py like the rest of the dashboard):

- platform admins: their organisation's IdP, mapping rules and password-sign-in switch;
- auditors: read them (and use the preview), change nothing;
- team admins, members, outsiders: 403 for the pages; another organisation's IdP is 404;
- Django superusers (gateway operators): everything."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from auth.models import Organisation
from auth.roles import Roles, roles_of
from auth.sso.models import IdentityProvider, MappingRule

AnyUser = AbstractBaseUser | AnonymousUser


def sso_can_read(roles: Roles, organisation_id: int) -> bool:
    return roles.superuser or organisation_id in roles.wide_orgs


def sso_can_change(roles: Roles, organisation_id: int) -> bool:
    return roles.superuser or organisation_id in roles.admin_orgs


def require_sso_reader(user: AnyUser) -> Roles:
    roles = roles_of(user)
    if not (roles.superuser or roles.wide_orgs):
        raise PermissionDenied("Only platform admins and auditors can see single sign-on settings.")
    return roles


def idp_get_for_user(user: AnyUser, pk: int) -> tuple[IdentityProvider, bool]:
    """The IdP and whether the user may change it; ``DoesNotExist`` (404) when they may not
    see it, PermissionDenied (403) when they may see no SSO page at all."""
    roles = require_sso_reader(user)
    idp = IdentityProvider.objects.select_related("organisation", "social_app").get(pk=pk)
    if not sso_can_read(roles, idp.organisation_id):
        raise IdentityProvider.DoesNotExist
    return idp, sso_can_change(roles, idp.organisation_id)


def require_idp_change(user: AnyUser, idp: IdentityProvider) -> None:
    if not sso_can_change(roles_of(user), idp.organisation_id):
        raise PermissionDenied(
            f"You may read the single sign-on settings of {idp.organisation.name}, not change them."
        )


def rule_get_for_user(user: AnyUser, idp: IdentityProvider, pk: int) -> MappingRule:
    return idp.rules.select_related("team", "idp").get(pk=pk)


def organisation_for_sso_change(user: AnyUser, slug: str) -> Organisation:
    """An organisation whose SSO settings the user may change: 404 if they may not read
    them, 403 if they may read but not change."""
    roles = require_sso_reader(user)
    organisation = Organisation.objects.get(slug=slug)
    if not sso_can_read(roles, organisation.pk):
        raise Organisation.DoesNotExist
    if not sso_can_change(roles, organisation.pk):
        raise PermissionDenied(
            f"You may read the single sign-on settings of {organisation.name}, not change them."
        )
    return organisation
