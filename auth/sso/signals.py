"""An SSO sign-in: remember the IdP in the session (SLO, access check) and audit it (the
generic ``auth.login`` event is written by aigateway/audit/signals.py for every sign-in).
A renamed organisation keeps its IdP reachable under the new slug."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from aigateway.audit.services import audit_record
from auth.models import Organisation
from auth.sso.provider import REQUEST_ATTR
from auth.sso.session import session_start


@receiver(user_logged_in, dispatch_uid="sso-login")
def sso_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    info = getattr(request, REQUEST_ATTR, None) if request is not None else None
    if not info or "idp" not in info or "name_id" not in info:
        return
    session_start(request, info)
    idp = info["idp"]
    audit_record(
        action="sso.login",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        actor=user,
        organisation_id=idp.organisation_id,
        details={"idp": idp.entity_id, "ip": request.META.get("REMOTE_ADDR", "")},
    )


@receiver(post_save, sender=Organisation, dispatch_uid="sso-org-slug")
def organisation_slug_follows(sender: Any, instance: Organisation, **kwargs: Any) -> None:
    """The SocialApp's client_id is the URL slug: keep it equal to the organisation's slug
    (the SP entity id and ACS change with it, so the IdP must be told; docs/sso.md)."""
    from allauth.socialaccount.models import SocialApp

    SocialApp.objects.filter(gateway_idp__organisation=instance).exclude(
        client_id=instance.slug
    ).update(client_id=instance.slug)
