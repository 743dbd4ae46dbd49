"""Microsoft Entra ID (Azure AD) tokens by the OAuth 2.0 client-credentials flow.

One provider object per (tenant, client) per process caches its token and refreshes it
before expiry; concurrent callers share one refresh (no stampede on the token endpoint). When
a refresh fails while the current token is still valid, that token keeps being used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from providers.errors import (
    AuthFailed,
    ConnectionFailed,
    ProviderError,
    RateLimited,
    ServerError,
)
from providers.errors_map import parse_retry_after

logger = logging.getLogger(__name__)
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
REFRESH_MARGIN_SECONDS = 300  # refresh this long before expiry (or at half-life if shorter)
REFRESH_RETRY_SECONDS = 10  # after a failed refresh, while the current token is still valid
EXPIRY_SKEW_SECONDS = 30  # stop using a token this long before it expires


class EntraTokenProvider:
    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        authority: str = DEFAULT_AUTHORITY,
        scope: str = COGNITIVE_SERVICES_SCOPE,
        provider_name: str = "azure",
    ) -> None:
        self.token_url = f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        self.provider_name = provider_name
        self._token = ""
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # observable for tests and metrics

    async def __call__(self) -> str:
        if self._token and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._refresh_at:
                return self._token
            try:
                await self._fetch()
            except ProviderError as exc:
                # Refreshing early is what lets a token endpoint hiccup go unnoticed: keep
                # serving the token while it is still valid, and try again a little later.
                usable_until = self._expires_at - EXPIRY_SKEW_SECONDS
                now = time.monotonic()
                if not self._token or now >= usable_until:
                    raise
                self._refresh_at = min(now + REFRESH_RETRY_SECONDS, usable_until)
                logger.warning(
                    "Entra ID token refresh for %s failed (%s); the current token is valid "
                    "for %.0f s more",
                    self.provider_name,
                    exc.kind,
                    usable_until - now,
                )
        return self._token

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.token_url, data=self._form) as response,
            ):
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionFailed(
                f"could not get an Entra ID token ({type(exc).__name__})",
                provider=self.provider_name,
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:  # e.g. an HTML error page from a proxy in front of Entra ID
            body = None
        if not isinstance(body, dict):
            body = {}
        # Throttled or failing: transient, not a credential problem (retry, fail over).
        if response.status == 429:
            raise RateLimited(
                "the Entra ID token endpoint is rate limiting",
                retry_after=parse_retry_after(response.headers),
                provider=self.provider_name,
                upstream_status=response.status,
            )
        if response.status >= 500:
            raise ServerError(
                f"the Entra ID token endpoint failed with HTTP {response.status}",
                provider=self.provider_name,
                upstream_status=response.status,
            )
        if response.status != 200:
            error = body.get("error")
            error = error if isinstance(error, str) and error else "unknown_error"
            raise AuthFailed(
                f"Entra ID refused the client credentials ({error[:100]})",
                provider=self.provider_name,
                upstream_status=response.status,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ServerError(
                "the Entra ID token endpoint sent a response we could not read",
                provider=self.provider_name,
                upstream_status=response.status,
            )
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        now = time.monotonic()
        self._token = token
        self._expires_at = now + lifetime
        self._refresh_at = now + max(lifetime / 2, lifetime - REFRESH_MARGIN_SECONDS)
        self.fetch_count += 1
