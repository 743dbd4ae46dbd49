"""Assertions shared by the SSO tests: who is signed in, what the SP must leave untouched."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model

from tests.sso.driver import SsoDriver


def sso_user(entity_id: str, uid: str) -> Any:
    """The local user linked to ``uid`` at the IdP ``entity_id`` (allauth's SocialAccount,
    whose provider is the IdP's entity id), or None."""
    from allauth.socialaccount.models import SocialAccount

    account = (
        SocialAccount.objects.filter(provider=entity_id, uid=uid).select_related("user").first()
    )
    return account.user if account else None


def memberships(user: Any) -> dict[str, set[tuple[str, str]]]:
    """{"org": {(org slug, role)}, "team": {(org/team, role)}} for readable comparisons."""
    from auth.models import OrgMembership, TeamMembership

    orgs = {
        (m.organisation.slug, m.role)
        for m in OrgMembership.objects.filter(user=user).select_related("organisation")
    }
    teams = {
        (f"{m.team.organisation.slug}/{m.team.slug}", m.role)
        for m in TeamMembership.objects.filter(user=user).select_related("team__organisation")
    }
    return {"org": orgs, "team": teams}


def audit_actions(*actions: str) -> list[Any]:
    from aigateway.audit.models import AuditEvent

    return list(AuditEvent.objects.filter(action__in=actions).order_by("sequence"))


class Snapshot:
    """Counts that a refused response must not change."""

    def __init__(self) -> None:
        from allauth.socialaccount.models import SocialAccount

        self.users = get_user_model().objects.count()
        self.accounts = SocialAccount.objects.count()

    def unchanged(self) -> bool:
        from allauth.socialaccount.models import SocialAccount

        return (get_user_model().objects.count(), SocialAccount.objects.count()) == (
            self.users,
            self.accounts,
        )


def assert_refused(
    driver: SsoDriver, reply: Any, before: Snapshot, *, status: int | None = None, why: str = ""
) -> None:
    """The SP refused: no 5xx, no session, no account, the dashboard stays closed, and an
    ``sso.rejected`` audit entry says so (matching the regex ``why`` when given)."""
    trail = " -> ".join(f"{r.status_code} {r.url}" for r in [*reply.history, reply])
    assert reply.status_code < 500, f"server error: {trail}\n{reply.text[:800]}"
    if status is not None:
        assert reply.status_code == status, f"expected {status}: {trail}\n{reply.text[:500]}"
    assert reply.url.rstrip("/") != driver.base_url, f"landed on the dashboard: {trail}"
    assert driver.session_user_pk() is None, f"a session was opened: {trail}"
    assert not driver.is_signed_in(), f"the dashboard opened: {trail}"
    assert before.unchanged(), f"an account was created: {trail}"
    rejected = audit_actions("sso.rejected")
    assert rejected, f"no sso.rejected audit entry: {trail}"
    if why:
        said = " ".join(str(rejected[-1].details.get(k, "")) for k in ("code", "reason", "message"))
        assert re.search(why, said, re.IGNORECASE), f"refused, but not for {why!r}: {said}"
