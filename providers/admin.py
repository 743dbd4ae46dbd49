"""Django admin for providers. Secrets are never displayed: only masked form and fingerprint.
New credentials and rotations go through `manage.py credentials` (and the dashboard)."""

from django.contrib import admin

from aigateway.audit.admin_changes import AuditedAdmin
from providers.models import Credential, ModelPrice, Provider


class CredentialInline(admin.TabularInline):
    model = Credential
    fields = ("name", "masked", "env_var", "fingerprint", "status", "rotation_due_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Provider)
class ProviderAdmin(AuditedAdmin):
    list_display = ("name", "kind", "base_url", "enabled", "rotation_days")
    inlines = [CredentialInline]


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedAdmin):
    list_display = ("model", "provider", "input_per_million", "output_per_million", "updated_at")
    list_filter = ("provider",)
    search_fields = ("model",)
