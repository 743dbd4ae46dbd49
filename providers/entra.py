"""Microsoft Entra ID (Azure AD) tokens by the OAuth 2.0 client-credentials flow.

One provider object per (tenant, client) per process caches its token and refreshes it
before expiry; concurrent callers share one refresh (no stampede on the token endpoint).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from providers.errors import AuthFailed, ConnectionFailed

logger = logging.getLogger(__name__)
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
REFRESH_MARGIN_SECONDS = 300  # refresh this long before expiry (or at half-life if shorter)


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
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # observable for tests and metrics

    async def __call__(self) -> str:
        if self._token and time.monotonic() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._refresh_at:
                return self._token
            await self._fetch()
        return self._token

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.token_url, data=self._form) as response,
            ):
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ConnectionFailed(
                f"could not get an Entra ID token ({type(exc).__name__})", provider=self.provider_name
            ) from None
        if response.status != 200 or "access_token" not in body:
            error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown_error"
            raise AuthFailed(
                f"Entra ID refused the client credentials ({error})",
                provider=self.provider_name,
                upstream_status=response.status,
            )
        lifetime = float(body.get("expires_in", 3600))
        self._token = body["access_token"]
        self._refresh_at = time.monotonic() + max(lifetime / 2, lifetime - REFRESH_MARGIN_SECONDS)
        self.fetch_count += 1
