"""Azure OpenAI: the OpenAI adapter with Azure's URL scheme and authentication.

Provider options: ``api_version`` (default below) and ``auth``: ``api_key`` (the credential
is the resource key, sent as ``api-key``) or ``entra_id`` (the credential is the app's client
secret; ``tenant_id``, ``client_id`` and optionally ``authority_url`` are options; tokens come
from the client-credentials flow, cached and refreshed before expiry). The deployment's
upstream model is the Azure *deployment name*.
"""

from __future__ import annotations

import httpx2
import openai

from providers.base import DeploymentTarget
from providers.entra import DEFAULT_AUTHORITY, EntraTokenProvider
from providers.openai_adapter import OpenAIAdapter

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIAdapter(OpenAIAdapter):
    # Chat stays on the SDK: Azure's deployment URLs, api-version and Entra ID tokens are its.
    lean_wire = False
    token_provider: EntraTokenProvider | None = None

    def make_client(self, target: DeploymentTarget, timeout: httpx2.Timeout) -> openai.AsyncOpenAI:
        options = dict(target.options)
        api_version = str(options.get("api_version") or DEFAULT_API_VERSION)
        http_client = openai.DefaultAioHttpClient(timeout=timeout)
        api_key: str | None = target.api_key
        if options.get("auth") == "entra_id":
            # The credential is the app's client secret; calls carry Entra ID tokens instead.
            self.token_provider = EntraTokenProvider(
                tenant_id=str(options.get("tenant_id", "")),
                client_id=str(options.get("client_id", "")),
                client_secret=target.api_key,
                authority=str(options.get("authority_url") or DEFAULT_AUTHORITY),
                provider_name=target.provider_name,
            )
            api_key = None
        return openai.AsyncAzureOpenAI(
            azure_endpoint=target.base_url,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token_provider=self.token_provider,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )
