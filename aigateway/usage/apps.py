from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "aigateway.usage"
    label = "usage"
    verbose_name = "Usage records"
    default_auto_field = "django.db.models.BigAutoField"
