from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "aigateway.quotas"
    label = "quotas"
    verbose_name = "Quotas and rate limits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from aigateway.core.config_cache import bump_config_version
        from aigateway.quotas.models import Limit

        post_save.connect(bump_config_version, sender=Limit, dispatch_uid="bump-limit")
        post_delete.connect(bump_config_version, sender=Limit, dispatch_uid="del-limit")
