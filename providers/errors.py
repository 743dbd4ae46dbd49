"""Our own upstream error classes. Each says whether a retry or failover may help and why.

One place (the resilience layer) turns them into retry/breaker/failover decisions; the API
turns them into OpenAI-shaped client errors. They carry the provider's request id for
support tickets, and never the credential.
"""

from __future__ import annotations


class ProviderError(Exception):
    retryable = False
    kind = "provider_error"
    status_code = 502  # what the gateway answers when this is the final error

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = None,
        provider_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.upstream_status = upstream_status
        self.provider_request_id = provider_request_id


class RateLimited(ProviderError):
    retryable = True
    kind = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class Overloaded(ProviderError):
    retryable = True
    kind = "overloaded"
    status_code = 503


class ServerError(ProviderError):
    retryable = True
    kind = "server_error"
    status_code = 502


class UpstreamTimeout(ProviderError):
    retryable = True
    kind = "timeout"
    status_code = 504


class ConnectionFailed(ProviderError):
    retryable = True
    kind = "connection_error"
    status_code = 502


class ContextTooLong(ProviderError):
    kind = "context_length_exceeded"
    status_code = 400


class ContentFiltered(ProviderError):
    kind = "content_filter"
    status_code = 400


class AuthFailed(ProviderError):
    """The gateway's own credential was refused: an operator problem, not the caller's."""

    kind = "upstream_auth_failed"
    status_code = 502


class BadRequest(ProviderError):
    kind = "invalid_request"
    status_code = 400
