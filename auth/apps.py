from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Identity: organisations, teams, memberships, API keys (and later SSO).

    The label is ``identity`` because ``auth`` belongs to django.contrib.auth.
    """

    name = "auth"
    label = "identity"
    verbose_name = "Identity and tenancy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auth import login_throttle, signals  # noqa: F401  (config-cache invalidation; sign-in failure counting)
