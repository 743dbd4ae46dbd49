"""The SP's URLs of an organisation, from AIGATEWAY_SAML_SP_BASE_URL (never from the request's
Host header: a forged Host must not change what we tell the IdP or check in a response)."""

from __future__ import annotations

from django.conf import settings

from auth.models import Organisation


def _base() -> str:
    return str(settings.AIGATEWAY_SAML_SP_BASE_URL).rstrip("/")


def _slug(organisation: Organisation | str) -> str:
    return organisation if isinstance(organisation, str) else organisation.slug


def sp_entity_id(organisation: Organisation | str) -> str:
    return f"{_base()}/accounts/saml/{_slug(organisation)}/metadata/"


def sp_metadata_url(organisation: Organisation | str) -> str:
    return sp_entity_id(organisation)


def sp_acs_url(organisation: Organisation | str) -> str:
    return f"{_base()}/accounts/saml/{_slug(organisation)}/acs/"


def sp_sls_url(organisation: Organisation | str) -> str:
    return f"{_base()}/accounts/saml/{_slug(organisation)}/sls/"


def sp_login_url(organisation: Organisation | str) -> str:
    """Relative: the sign-in link on our own login page."""
    return f"/accounts/saml/{_slug(organisation)}/login/"
