from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: config cache, Redis clients, management commands."""

    name = "aigateway.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"
