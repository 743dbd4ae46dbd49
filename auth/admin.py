from django.contrib import admin

from aigateway.audit.admin_changes import AuditedAdmin
from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership


@admin.register(Organisation)
class OrganisationAdmin(AuditedAdmin):
    list_display = ("slug", "name")


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ("slug", "name", "organisation", "log_prompts")
    filter_horizontal = ("allowed_routes",)


admin.site.register(OrgMembership, AuditedAdmin)
admin.site.register(TeamMembership, AuditedAdmin)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    """Keys are issued through the dashboard/CLI (shown once); here only metadata."""

    list_display = ("name", "team", "prefix", "expires_at", "revoked_at", "last_used_at")
    fields = ("team", "name", "prefix", "allowed_routes", "expires_at", "revoked_at", "debug_trace")
    readonly_fields = ("team", "prefix")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
