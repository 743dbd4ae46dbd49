"""Every sign-in, success or failure, is an audit event (local accounts now; SSO later
arrives through the same Django signals). Failed attempts record the username tried, never
the password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from aigateway.audit.services import audit_record


def _client(request: Any) -> dict[str, str]:
    if request is None:
        return {}
    return {"ip": request.META.get("REMOTE_ADDR", ""), "path": request.path}


@receiver(user_logged_in, dispatch_uid="audit-login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        action="auth.login",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        actor=user,
        details=_client(request),
    )


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action="auth.login_failed",
        target_type="user",
        target_label=username,
        actor_label="anonymous",
        details=_client(request),
    )
