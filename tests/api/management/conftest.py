"""Clients for the management API: a browser session (CSRF enforced, as in production) and
personal admin tokens, for the cast (tests/conftest.py)."""

from __future__ import annotations

import secrets
from typing import Any

from django.test import Client

from auth.admin_tokens import admin_token_create

CSRF = "X-CSRFToken"


class ApiClient:
    """Django's test client speaking JSON to /api/v1, as a session or with a token."""

    def __init__(self, client: Client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def request(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        url = path if path.startswith("/") else "/api/v1/" + path
        kwargs: dict[str, Any] = {"headers": {**self.headers, **extra.pop("headers", {})}}
        if body is not None:
            kwargs |= {"data": body, "content_type": "application/json"}
        return getattr(self.client, method.lower())(url, **kwargs, **extra)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, data=params or None)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self.request("POST", path, body if body is not None else {}, **extra)

    def patch(self, path: str, body: Any, **extra: Any) -> Any:
        return self.request("PATCH", path, body, **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        return self.request("DELETE", path, **extra)


def session_client(user: Any, *, csrf: bool = True) -> ApiClient:
    """A signed-in browser: CSRF checks enforced; ``csrf`` sends the token like htmx does."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = secrets.token_hex(16)  # a 32-character secret, as Django's cookie holds
    client.cookies["csrftoken"] = token
    return ApiClient(client, {CSRF: token} if csrf else {})


def token_client(user: Any) -> ApiClient:
    issued = admin_token_create(user=user, name="tests", lifetime_days=7)
    return ApiClient(Client(), {"Authorization": f"Bearer {issued.raw_token}"})
