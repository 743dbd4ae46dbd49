from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "aigateway.routing"
    label = "routing"
    verbose_name = "Routes and deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aigateway.routing import signals  # noqa: F401
