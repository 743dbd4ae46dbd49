"""Ends an SSO session at the next request once the user has lost every role in the IdP's
organisation or the IdP was switched off (not at the next sign-in). Cheap: requests without a
session cookie (the API) skip it; SSO sessions cost one query; others none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

from aigateway.audit.services import audit_record
from auth.sso.session import SESSION_KEY, session_still_allowed


def _check(request: HttpRequest) -> None:
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return
    info = request.session.get(SESSION_KEY)
    if not info:
        return
    user = request.user
    if not user.is_authenticated:
        return
    if session_still_allowed(user_id=user.pk, info=info):
        return
    audit_record(
        action="sso.session_ended",
        target_type="user",
        target_id=user.pk,
        target_label=user.get_username(),
        actor_label="system",
        organisation_id=info.get("org"),
        details={"reason": "no role left in the organisation, or its IdP is off"},
    )
    logout(request)  # request.user becomes anonymous: pages redirect to sign-in


@sync_and_async_middleware
def sso_session_middleware(get_response: Any) -> Any:
    if iscoroutinefunction(get_response):
        async_get: Callable[[HttpRequest], Awaitable[HttpResponse]] = get_response

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            if settings.SESSION_COOKIE_NAME in request.COOKIES:
                await sync_to_async(_check)(request)
            return await async_get(request)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        _check(request)
        return get_response(request)

    return middleware
