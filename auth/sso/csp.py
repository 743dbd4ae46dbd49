"""The one place the Content-Security-Policy lets a form leave the site: towards an IdP.

``form-action 'self'`` (settings.SECURE_CSP) also governs where a form submission is
*redirected*: Chromium refuses a POST to our own URL that answers 302 to another origin. Two
SSO forms do exactly that:

- allauth's confirm page (``/accounts/saml/<org>/login/``) posts to itself and is redirected
  to the IdP's sign-in URL with the AuthnRequest (HTTP-Redirect binding);
- the sign-out form on every dashboard page posts to ``/logout/``, which for an SSO session
  whose IdP has single logout is redirected to the IdP's SLO URL.

So those pages, and only those, get the IdP's origin (scheme, host, port) added to
``form-action``; every other response keeps the strict policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.csp import CSP
from django.utils.decorators import sync_and_async_middleware

from auth.sso.models import IdentityProvider
from auth.sso.session import SESSION_KEY


def origin_of(url: str) -> str | None:
    """``https://idp.example:8443`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def allow_form_action(response: HttpResponse, urls: Iterable[str]) -> HttpResponse:
    """Let this response's forms be redirected to the origins of ``urls`` as well."""
    origins = sorted({o for url in urls if (o := origin_of(url))})
    if origins:
        config = dict(getattr(response, "_csp_config", None) or settings.SECURE_CSP)
        config["form-action"] = [CSP.SELF, *origins]
        response._csp_config = config  # type: ignore[attr-defined]  # read by the CSP middleware
    return response


def _slo_url(request: HttpRequest) -> str:
    session = getattr(request, "session", None)
    if session is None or settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return ""  # no session cookie (API, anonymous): no lookup at all
    info = session.get(SESSION_KEY)
    if not info or not info.get("idp"):
        return ""
    url = (
        IdentityProvider.objects.filter(pk=info["idp"], enabled=True)
        .values_list("slo_url", flat=True)
        .first()
    )
    return url or ""


def _with_slo_origin(response: HttpResponse, slo_url: str) -> HttpResponse:
    if slo_url:
        allow_form_action(response, [slo_url])
    return response


def _is_html(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("text/html")


@sync_and_async_middleware
def sso_form_action_middleware(get_response: Any) -> Any:
    """HTML pages of an SSO session with single logout: the sign-out form may reach the IdP.
    One small query, for SSO sessions' HTML pages only."""
    if iscoroutinefunction(get_response):
        async_get: Callable[[HttpRequest], Awaitable[HttpResponse]] = get_response

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            response = await async_get(request)
            if _is_html(response) and settings.SESSION_COOKIE_NAME in request.COOKIES:
                slo_url = await sync_to_async(_slo_url)(request)
                return _with_slo_origin(response, slo_url)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if _is_html(response):
            return _with_slo_origin(response, _slo_url(request))
        return response

    return middleware
