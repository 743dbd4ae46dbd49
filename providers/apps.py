from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Upstream providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from providers import registry, signals  # noqa: F401  (adapters, cache invalidation)
