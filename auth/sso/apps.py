from django.apps import AppConfig


class SSOConfig(AppConfig):
    """Single sign-on: SAML identity providers per organisation, mapping rules, break-glass
    second factors (docs/sso.md). Label ``sso``; tenancy stays in ``identity``."""

    name = "auth.sso"
    label = "sso"
    verbose_name = "Single sign-on"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auth.sso import signals  # noqa: F401  (sign-in audit of SSO logins)
