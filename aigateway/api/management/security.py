"""Who is calling the management API: a personal admin token or a browser session.

- ``Authorization: Bearer agw-pat-…``: the token's user (auth/admin_tokens.py). No CSRF
  check: a header is not sent by a browser on its own.
- Otherwise the Django session, with Django's CSRF check on POST, PATCH and DELETE.

Any other bearer credential is refused outright (401) rather than falling back to the
session: a team inference key (``agw-…``) never opens the management API, and a script that
sent the wrong key is told so instead of getting a confusing CSRF error.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from aigateway.api.management.errors import ApiError
from auth.admin_tokens import TokenRejected, admin_token_authenticate, is_admin_token
from auth.models import AdminToken


class AdminTokenAuth(HttpBearer):
    openapi_description = "A personal admin token (agw-pat-…), created at POST /api/v1/tokens."

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.authenticate(request, credential.strip())

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser:
        if not is_admin_token(token):
            raise ApiError(
                401,
                "This credential does not open the management API. Team API keys work on /v1 "
                "only; send a personal admin token (agw-pat-…) or use a browser session.",
                code="wrong_credential",
            )
        try:
            user, admin_token = admin_token_authenticate(token)
        except TokenRejected as exc:
            raise ApiError(401, exc.message, code=exc.code) from None
        request.admin_token = admin_token  # type: ignore[attr-defined]
        return user


def current_user(request: HttpRequest) -> AbstractBaseUser:
    """The authenticated user of a management call (ninja put it in ``request.auth``)."""
    user = request.auth  # type: ignore[attr-defined]
    assert isinstance(user, AbstractBaseUser)
    return user


def current_token(request: HttpRequest) -> AdminToken | None:
    """The admin token the call came with; None for a browser session."""
    return getattr(request, "admin_token", None)


AUTH = [AdminTokenAuth(), SessionAuth(csrf=True)]
