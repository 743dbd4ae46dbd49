"""providers.entra.EntraTokenProvider against the fake upstream's Entra ID token endpoint
(``/<tenant>/oauth2/v2.0/token``, tests/fakes/upstream.py): the client-credentials form,
caching, one fetch for concurrent callers, refresh timing, failures, and no secret leaks."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from providers import entra, errors
from providers.entra import EntraTokenProvider
from tests.fakes.upstream import FakeUpstream
from tests.providers.support import (
    CLIENT_ID,
    TENANT,
    TOKEN_PATH,
    assert_one_request,
    assert_secret_absent,
    closed_port,
)

SCOPE = "https://cognitiveservices.azure.com/.default"
MakeProvider = Callable[..., EntraTokenProvider]


@pytest.fixture
def make_provider(upstream: FakeUpstream) -> MakeProvider:
    def make(**overrides: Any) -> EntraTokenProvider:
        fields: dict[str, Any] = {
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": upstream.entra_client_secret,
            "authority": upstream.base_url,
            "provider_name": "azure-test",
        }
        fields.update(overrides)
        return EntraTokenProvider(**fields)

    return make


class Clock:
    """Stands in for ``time`` inside providers.entra (asyncio keeps the real clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(entra, "time", fake)
    return fake


# -- the client-credentials request ------------------------------------------------------------
async def test_fetches_a_token_with_the_client_credentials_form(make_provider, upstream):
    provider = make_provider()
    assert await provider() == "fake-entra-token-1"
    assert provider.fetch_count == 1

    sent = assert_one_request(upstream)
    assert (sent.method, sent.path) == ("POST", TOKEN_PATH)
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = dict(urllib.parse.parse_qsl(sent.raw.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "client_secret": upstream.entra_client_secret,
    }
    assert upstream.token_requests == [form]


async def test_token_url_is_built_from_authority_and_tenant(make_provider, upstream):
    provider = make_provider(authority=upstream.base_url + "/", tenant_id="fabrikam")
    assert provider.token_url == f"{upstream.base_url}/fabrikam/oauth2/v2.0/token"
    assert await provider() == "fake-entra-token-1"
    assert upstream.requests[0].path == "/fabrikam/oauth2/v2.0/token"
    assert EntraTokenProvider(tenant_id="t", client_id="c", client_secret="s").token_url == (
        "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    )


async def test_token_is_cached(make_provider, upstream):
    provider = make_provider()
    tokens = [await provider() for _ in range(5)]
    assert tokens == ["fake-entra-token-1"] * 5
    assert provider.fetch_count == 1
    assert_one_request(upstream)


async def test_concurrent_callers_share_one_fetch(make_provider, upstream):
    # A slow token endpoint, so all 20 callers really wait on the same fetch.
    upstream.push_fault("slow", delay=0.2, path=TOKEN_PATH)
    provider = make_provider()
    tokens = await asyncio.gather(*(provider() for _ in range(20)))
    assert tokens == ["fake-entra-token-1"] * 20
    assert provider.fetch_count == 1
    assert_one_request(upstream)
    assert upstream.issued_tokens == ["fake-entra-token-1"]


# -- refresh timing ----------------------------------------------------------------------------
async def test_refreshes_at_half_life_for_short_tokens(make_provider, upstream):
    # Real time: a 2 s token is refreshed after max(2 / 2, 2 - 300) = 1 s.
    upstream.entra_token_lifetime = 2
    provider = make_provider()
    assert await provider() == "fake-entra-token-1"
    await asyncio.sleep(0.5)
    assert await provider() == "fake-entra-token-1"
    await asyncio.sleep(0.6)
    assert await provider() == "fake-entra-token-2"
    assert await provider() == "fake-entra-token-2"
    assert provider.fetch_count == 2


@pytest.mark.parametrize(
    ("lifetime", "refresh_after"),
    [
        (3600, 3300),  # five minutes before expiry
        (600, 300),  # both rules agree
        (400, 200),  # half-life: five minutes early would be too soon
        (2, 1),
    ],
)
async def test_refresh_time(make_provider, upstream, clock, lifetime, refresh_after):
    upstream.entra_token_lifetime = lifetime
    provider = make_provider()
    assert await provider() == "fake-entra-token-1"
    clock.now += refresh_after - 0.001
    assert await provider() == "fake-entra-token-1"
    clock.now += 0.001
    assert await provider() == "fake-entra-token-2"
    assert provider.fetch_count == 2


async def test_failed_refresh_keeps_the_still_valid_token(make_provider, upstream, clock, caplog):
    provider = make_provider()
    assert await provider() == "fake-entra-token-1"  # valid until +3600, refresh at +3300

    clock.now += 3300
    upstream.push_fault("500", path=TOKEN_PATH)
    with caplog.at_level(logging.WARNING, logger="providers.entra"):
        assert await provider() == "fake-entra-token-1"
    assert "refresh for azure-test failed (server_error)" in caplog.text
    # Not retried on every call: the next attempt comes a few seconds later.
    assert await provider() == "fake-entra-token-1"
    assert len(upstream.requests) == 2
    clock.now += entra.REFRESH_RETRY_SECONDS
    assert await provider() == "fake-entra-token-2"
    assert len(upstream.requests) == 3


async def test_failed_refresh_raises_once_the_token_is_about_to_expire(
    make_provider, upstream, clock
):
    provider = make_provider()
    assert await provider() == "fake-entra-token-1"
    clock.now += 3600 - entra.EXPIRY_SKEW_SECONDS
    upstream.push_fault("500", path=TOKEN_PATH)
    with pytest.raises(errors.ServerError):
        await provider()


# -- failures ----------------------------------------------------------------------------------
async def test_unreachable_token_endpoint_is_a_connection_failure(make_provider):
    secret = "s3cr3t-client-secret-unreachable"
    provider = make_provider(authority=f"http://127.0.0.1:{closed_port()}", client_secret=secret)
    with pytest.raises(errors.ConnectionFailed) as info:
        await provider()
    exc = info.value
    assert exc.retryable is True
    assert exc.provider == "azure-test"
    assert exc.__cause__ is None
    assert_secret_absent(exc, secret)
    assert provider.fetch_count == 0


async def test_wrong_client_secret_is_auth_failed(make_provider, upstream):
    secret = "s3cr3t-client-secret-wrong"
    provider = make_provider(client_secret=secret)
    with pytest.raises(errors.AuthFailed) as info:
        await provider()
    exc = info.value
    assert exc.retryable is False
    assert exc.upstream_status == 401
    assert exc.provider == "azure-test"
    assert str(exc) == "Entra ID refused the client credentials (invalid_client)"
    assert_secret_absent(exc, secret)
    assert upstream.issued_tokens == []
    # Nothing was cached: the next call asks again.
    with pytest.raises(errors.AuthFailed):
        await provider()
    assert len(upstream.requests) == 2


async def test_throttled_token_endpoint_is_rate_limited(make_provider, upstream):
    upstream.push_fault("429", retry_after=4, path=TOKEN_PATH)
    provider = make_provider()
    with pytest.raises(errors.RateLimited) as info:
        await provider()
    assert info.value.retry_after == 4
    assert info.value.retryable is True
    assert_secret_absent(info.value, upstream.entra_client_secret)
    assert await provider() == "fake-entra-token-1"  # and it recovers


@pytest.mark.parametrize("fault", ["500", "503"])
async def test_failing_token_endpoint_is_a_server_error(make_provider, upstream, fault):
    upstream.push_fault(fault, path=TOKEN_PATH)
    provider = make_provider()
    with pytest.raises(errors.ServerError) as info:
        await provider()
    assert info.value.upstream_status == int(fault)
    assert info.value.retryable is True
    assert_secret_absent(info.value, upstream.entra_client_secret)


async def test_unreadable_token_response_is_a_server_error(make_provider, upstream):
    upstream.push_fault("malformed", path=TOKEN_PATH)  # 200 with a broken JSON body
    provider = make_provider()
    with pytest.raises(errors.ServerError) as info:
        await provider()
    assert_secret_absent(info.value, upstream.entra_client_secret)
    assert provider.fetch_count == 0


async def test_reset_by_the_token_endpoint_is_a_connection_failure(make_provider, upstream):
    upstream.push_fault("reset", path=TOKEN_PATH)
    provider = make_provider()
    with pytest.raises(errors.ConnectionFailed) as info:
        await provider()
    assert_secret_absent(info.value, upstream.entra_client_secret)


async def test_secret_is_not_in_the_provider_repr(make_provider, upstream):
    provider = make_provider()
    await provider()
    assert upstream.entra_client_secret not in repr(provider)
    assert upstream.entra_client_secret not in str(provider)
