"""The management API over real HTTP on the live ASGI gateway: an admin token issues a team
key, the key works on /v1 through the official openai SDK, and stops working once revoked
through the API; a browser session signed in at /login/ needs its CSRF token to write."""

from __future__ import annotations

import re

import openai
import pytest
import requests

from auth.admin_tokens import admin_token_create
from tests.factories import make_provider, make_route


@pytest.fixture
def fast_revocation(settings) -> None:
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0  # check the shared version on every lookup


def test_a_key_issued_through_the_api_works_on_v1_until_revoked(
    live_gateway, cast, fast_revocation
) -> None:
    cast.team.allowed_routes.add(make_route("demo", (make_provider(), "demo")))
    token = admin_token_create(user=cast.bob, name="ci", lifetime_days=1).raw_token
    api = live_gateway.base_url + "/api/v1"
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {token}"
    issued = admin.post(f"{api}/teams/{cast.team.pk}/keys", json={"name": "sdk"}, timeout=10)
    assert issued.status_code == 201
    sdk = openai.OpenAI(
        api_key=issued.json()["key"], base_url=live_gateway.openai_base_url, max_retries=0
    )
    assert [m.id for m in sdk.models.list()] == ["demo"]
    revoked = admin.delete(f"{api}/teams/{cast.team.pk}/keys/{issued.json()['id']}", timeout=10)
    assert revoked.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        sdk.models.list()
    # The team key itself never opens the management API.
    as_key = requests.get(
        f"{api}/teams", timeout=10, headers={"Authorization": f"Bearer {issued.json()['key']}"}
    )
    assert as_key.status_code == 401


def test_a_signed_in_browser_writes_only_with_its_csrf_token(live_gateway, cast) -> None:
    cast.alice.set_password("pw-alice-secret-2")
    cast.alice.save()
    base = live_gateway.base_url
    browser = requests.Session()
    login_page = browser.get(f"{base}/login/", timeout=10).text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    signed_in = browser.post(
        f"{base}/login/",
        timeout=10,
        data={"username": "alice", "password": "pw-alice-secret-2", "csrfmiddlewaretoken": csrf},
    )
    assert signed_in.status_code == 200 and "sessionid" in browser.cookies
    body = {"organisation": "acme", "slug": "web", "name": "Web"}
    refused = browser.post(f"{base}/api/v1/teams", json=body, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    created = browser.post(
        f"{base}/api/v1/teams",
        json=body,
        timeout=10,
        headers={"X-CSRFToken": browser.cookies["csrftoken"]},
    )
    assert created.status_code == 201
    me = browser.get(f"{base}/api/v1/me", timeout=10).json()
    assert me["authenticated_by"] == "session"
