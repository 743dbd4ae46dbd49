from django.contrib import admin

from aigateway.audit.admin_changes import AuditedAdmin
from aigateway.routing.models import Deployment, Route


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 0


@admin.register(Route)
class RouteAdmin(AuditedAdmin):
    list_display = ("name", "strategy", "description")
    inlines = [DeploymentInline]
