"""Django admin: SSO is configured on the /sso/ pages (validated, audited, kept in step with
allauth's SocialApp rows). Here the IdPs are read-only, and allauth's own SocialApp editor is
removed so nobody edits a row behind the IdP's back (the runtime would still enforce the
strict settings, but entity id and slug could drift)."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialApp
from django.contrib import admin
from django.http import HttpRequest

from auth.sso.models import IdentityProvider, MappingRule

if admin.site.is_registered(SocialApp):
    admin.site.unregister(SocialApp)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IdentityProvider)
class IdentityProviderAdmin(_ReadOnly):
    list_display = ("organisation", "name", "entity_id", "enabled", "allow_idp_initiated")


@admin.register(MappingRule)
class MappingRuleAdmin(_ReadOnly):
    list_display = ("idp", "value", "role", "team")
