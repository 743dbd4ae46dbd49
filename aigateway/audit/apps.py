from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "aigateway.audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aigateway.audit import signals  # noqa: F401  (sign-ins are audited)
