from django.contrib import admin

from auth.models import ApiKey, Organisation, OrgMembership, Team, TeamMembership


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "organisation")
    filter_horizontal = ("allowed_routes",)


admin.site.register(OrgMembership)
admin.site.register(TeamMembership)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued through the dashboard/CLI (shown once); here only metadata."""

    list_display = ("name", "team", "prefix", "expires_at", "revoked_at", "last_used_at")
    fields = ("team", "name", "prefix", "allowed_routes", "expires_at", "revoked_at")
    readonly_fields = ("team", "prefix")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
