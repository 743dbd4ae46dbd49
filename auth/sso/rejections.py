"""A refused SSO sign-in: one audit entry and a page that says why (never a stack trace)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from aigateway.audit.services import audit_record
from auth.sso.models import IdentityProvider

# Codes whose refusal is a policy decision (the person may not come in), not a bad response.
DENIED_CODES = frozenset({"no_mapped_role", "inactive"})


def reject_page(
    request: HttpRequest,
    idp: IdentityProvider | None,
    message: str,
    code: str,
    *,
    status: int = 403,
    details: dict[str, Any] | None = None,
    template: str = "sso/rejected.html",
) -> HttpResponse:
    audit_record(
        action="sso.denied" if code in DENIED_CODES else "sso.rejected",
        target_type="identity_provider",
        target_id=idp.pk if idp else "",
        target_label=idp.entity_id if idp else "",
        actor_label="anonymous",
        organisation_id=idp.organisation_id if idp else None,
        details={
            "code": code,
            "message": message,
            "ip": request.META.get("REMOTE_ADDR", ""),
            "path": request.path,
            **(details or {}),
        },
    )
    context = {"message": message, "code": code, "idp": idp}
    return render(request, template, context, status=status)
