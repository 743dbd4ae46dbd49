"""The one provider interface, the deployment target it is called with, and the registry.

Adapters are cached per (event loop, provider, credential) so each process keeps one pooled
HTTP client per provider; adapters are never closed per request (closing an SDK client
closes the pool it shares).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)

# The gateway's request id of the call in progress, sent upstream as X-Request-ID so one call
# can be followed through the gateway's logs and the provider's. A context variable because
# adapters (and their SDK clients) are shared by every call of a process; the pipeline sets
# it for the duration of a call.
upstream_request_id: ContextVar[str] = ContextVar("upstream_request_id", default="")


def upstream_headers() -> dict[str, str] | None:
    """Extra headers for an upstream call (the SDKs' ``extra_headers``)."""
    request_id = upstream_request_id.get()
    return {"X-Request-ID": request_id} if request_id else None


@dataclass(frozen=True, slots=True)
class DeploymentTarget:
    """Everything an adapter needs to make one call. Built from config, cached in process."""

    deployment_id: int | None
    provider_name: str
    provider_kind: str
    upstream_model: str
    base_url: str = ""
    api_key: str = field(default="", repr=False)  # plaintext: never log or render
    credential_fingerprint: str = ""
    # Provider.options as sorted (key, value) pairs: hashable, so targets stay frozen.
    options: tuple[tuple[str, object], ...] = ()

    @property
    def pool_key(self) -> tuple[str, str, str, str]:
        return (self.provider_kind, self.provider_name, self.base_url, self.credential_fingerprint)


class ProviderAdapter(Protocol):
    async def chat(self, request: ChatRequest, target: DeploymentTarget) -> ChatResponse: ...

    def chat_stream(
        self, request: ChatRequest, target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]: ...

    async def embeddings(
        self, request: EmbeddingRequest, target: DeploymentTarget
    ) -> EmbeddingResponse:
        """Raise BadRequest where the provider has no embeddings API."""

    async def list_models(self, target: DeploymentTarget) -> list[str]: ...

    async def health_check(self, target: DeploymentTarget) -> None:
        """Raise a ProviderError when the upstream cannot serve."""


class AdapterFactory(Protocol):
    def __call__(self, target: DeploymentTarget) -> ProviderAdapter: ...


_factories: dict[str, AdapterFactory] = {}
_adapters: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, str, str], ProviderAdapter]
] = weakref.WeakKeyDictionary()


def register_adapter(kind: str, factory: AdapterFactory) -> None:
    _factories[kind] = factory


def get_adapter(target: DeploymentTarget) -> ProviderAdapter:
    loop = asyncio.get_running_loop()
    per_loop = _adapters.setdefault(loop, {})
    adapter = per_loop.get(target.pool_key)
    if adapter is None:
        adapter = per_loop[target.pool_key] = adapter_new(target)
    return adapter


def adapter_new(target: DeploymentTarget) -> ProviderAdapter:
    """A fresh adapter outside the per-process cache, for one-off calls (a dashboard's
    connection test with a secret no deployment uses yet); the caller closes it."""
    try:
        factory = _factories[target.provider_kind]
    except KeyError:
        raise LookupError(f"no adapter for provider kind {target.provider_kind!r}") from None
    return factory(target)
