from django.contrib import admin

from aigateway.routing.models import Deployment, Route


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 0


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ("name", "strategy", "description")
    inlines = [DeploymentInline]
