"""SSO browser sessions: what we keep in the session at sign-in (for SLO and the per-request
access check) and the check itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.http import HttpRequest

from auth.models import OrgMembership, TeamMembership
from auth.sso.models import IdentityProvider

SESSION_KEY = "aigateway_sso"


def session_start(request: HttpRequest, info: dict[str, Any]) -> None:
    """Remember the IdP and the NameID/SessionIndex (for SLO); end the session by the IdP's
    SessionNotOnOrAfter when that comes before our own SESSION_COOKIE_AGE."""
    idp: IdentityProvider = info["idp"]
    request.session[SESSION_KEY] = {
        "idp": idp.pk,
        "org": idp.organisation_id,
        "name_id": info.get("name_id") or "",
        "name_id_format": info.get("name_id_format") or "",
        "session_index": info.get("session_index") or "",
    }
    expiry = int(settings.SESSION_COOKIE_AGE)
    idp_expiry = info.get("session_expiration")
    if idp_expiry:
        expiry = min(expiry, int(idp_expiry - datetime.now(UTC).timestamp()))
    request.session.set_expiry(max(expiry, 60))


def session_still_allowed(*, user_id: int, info: dict[str, Any]) -> bool:
    """One query: the IdP is still enabled and the user still holds a role in its
    organisation (an admin's removal takes effect at the next request)."""
    org_id = int(info.get("org") or 0)
    idp_id = int(info.get("idp") or 0)
    has_org_role = OrgMembership.objects.filter(
        user_id=user_id, organisation_id=OuterRef("organisation_id")
    )
    has_team_role = TeamMembership.objects.filter(
        user_id=user_id, team__organisation_id=OuterRef("organisation_id")
    )
    return (
        IdentityProvider.objects.filter(pk=idp_id, organisation_id=org_id, enabled=True)
        .filter(Exists(has_org_role) | Exists(has_team_role))
        .exists()
    )
