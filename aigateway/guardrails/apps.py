from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    """Guardrail policies per organisation, team and route (docs/guardrails.md)."""

    name = "aigateway.guardrails"
    label = "guardrails"
    verbose_name = "Guardrails"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from aigateway.core.config_cache import bump_config_version
        from aigateway.guardrails.models import GuardrailPolicy

        # Policies are cached in process (aigateway/guardrails/policy.py): every write bumps
        # the shared config version, so every process drops its copy within a second.
        post_save.connect(bump_config_version, sender=GuardrailPolicy, dispatch_uid="bump-gr")
        post_delete.connect(bump_config_version, sender=GuardrailPolicy, dispatch_uid="del-gr")
