"""Turn upstream failures into our ProviderError classes (see providers/errors.py).

Two entry points: the SDKs' exceptions (``map_openai_error``, ``map_anthropic_error``) and a
non-2xx answer's raw parts (``map_status``, for the lean OpenAI wire client in
providers/openai_wire.py). Both end in one status mapping, so an upstream's error means the
same whichever client received it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
from openai import APIStatusError

from providers import errors


def parse_retry_after(headers: object) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` (seconds or HTTP date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


# The message of every answer we could not parse (bad JSON, wrong shape, an error event in a
# stream that had already answered 200).
UNREADABLE = "the upstream sent a response we could not read"


def unreadable(provider: str) -> errors.ServerError:
    return errors.ServerError(UNREADABLE, provider=provider)


def _error_fields(body: object) -> tuple[str, str]:
    """(code, message) from an OpenAI body {"error": {code, message}} or an Anthropic body
    {"type": "error", "error": {"type", "message"}}."""
    inner = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(inner, dict):
        return "", ""
    code = inner.get("code") or inner.get("type") or ""
    return str(code), str(inner.get("message") or "")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _really_timed_out(exc: BaseException) -> bool:
    """The SDK's aiohttp transport reports every aiohttp connection error (refused, reset,
    server disconnected) as an httpx ``ConnectTimeout``; the original cause tells them apart."""
    for cause in _causes(exc):
        if isinstance(cause, TimeoutError):
            return True
        if isinstance(cause, (ConnectionError, aiohttp.ClientConnectionError)):
            return False
    return True


# Anthropic's error types and the HTTP status each stands for. An error that arrives as an SSE
# ``event: error`` inside a stream that already answered 200 has only its type to go by.
ANTHROPIC_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def map_status(
    status: int,
    headers: Mapping[str, str],
    body: object,
    provider: str,
    *,
    credentials: Iterable[str] = (),
) -> errors.ProviderError:
    """A non-2xx answer from its raw parts: ``headers`` (case-insensitive), ``body`` the parsed
    JSON body as received (None when it was not JSON), ``credentials`` the secrets that were
    sent with the request (redacted from any upstream message we keep)."""
    # Unwrap {"error": {...}} as the openai SDK does before it fills APIStatusError.body, so a
    # body maps exactly as it did through the SDK.
    data = body.get("error", body) if isinstance(body, dict) else body
    return _map_status(status, headers, data, provider, credentials)


def _map_status_error(exc: APIStatusError, provider: str) -> errors.ProviderError:
    return _map_status(
        exc.status_code,
        exc.response.headers,
        exc.body,
        provider,
        _sent_credentials(exc.request.headers),
    )


def _map_status(
    status_code: int,
    headers: Mapping[str, str],
    body: object,
    provider: str,
    credentials: Iterable[str],
) -> errors.ProviderError:
    common: dict[str, Any] = {
        "provider": provider,
        "upstream_status": status_code,
        "provider_request_id": headers.get("x-request-id") or headers.get("request-id"),
    }
    code, message = _error_fields(body)
    status = status_code
    if status < 400:  # an error event mid-stream: classify it by its type, not by the 200
        status = ANTHROPIC_ERROR_STATUS.get(code, 500)
    if status == 429:
        return errors.RateLimited(
            "the upstream rate limit was hit",
            retry_after=parse_retry_after(headers),
            **common,
        )
    if status in (503, 529) or code == "overloaded_error":
        return errors.Overloaded("the upstream is overloaded", **common)
    if status >= 500:
        how = f"HTTP {status}" if status == status_code else f"{code or 'an error'} mid-stream"
        return errors.ServerError(f"the upstream failed with {how}", **common)
    if status in (401, 403):
        return errors.AuthFailed("the upstream refused the gateway's credential", **common)
    if code == "context_length_exceeded" or "prompt is too long" in message or status == 413:
        return errors.ContextTooLong("the prompt is longer than the model allows", **common)
    if code in ("content_filter", "content_policy_violation") or (
        "content filtering policy" in message  # Anthropic: 400 invalid_request_error
    ):
        return errors.ContentFiltered("the upstream's content filter refused it", **common)
    text = message or f"the upstream rejected the request (HTTP {status})"
    return errors.BadRequest(_redact(text, credentials)[:500], **common)


def _map_sdk_error(
    exc: Exception,
    provider: str,
    *,
    timeout_error: type[Exception] | tuple[type[Exception], ...],
    connection_error: type[Exception] | tuple[type[Exception], ...],
    status_error: type[Exception],
) -> errors.ProviderError:
    if isinstance(exc, timeout_error) and _really_timed_out(exc):
        return errors.UpstreamTimeout("the upstream did not answer in time", provider=provider)
    if isinstance(exc, connection_error):
        return errors.ConnectionFailed("could not connect to the upstream", provider=provider)
    if isinstance(exc, status_error):
        return _map_status_error(exc, provider)  # type: ignore[arg-type]
    # Malformed bodies and anything else the SDK raises: the upstream misbehaved.
    return unreadable(provider)


def map_openai_error(exc: Exception, provider: str) -> errors.ProviderError:
    return _map_sdk_error(
        exc,
        provider,
        timeout_error=openai.APITimeoutError,
        connection_error=openai.APIConnectionError,
        status_error=openai.APIStatusError,
    )


def map_anthropic_error(exc: Exception, provider: str) -> errors.ProviderError:
    # Unlike openai's, the anthropic SDK's stream iterator does not wrap transport errors: a
    # reset or a read timeout while iterating surfaces as a bare httpx2 exception.
    return _map_sdk_error(
        exc,
        provider,
        timeout_error=(anthropic.APITimeoutError, httpx2.TimeoutException),
        connection_error=(anthropic.APIConnectionError, httpx2.TransportError),
        status_error=anthropic.APIStatusError,
    )


def _sent_credentials(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets an SDK request carried (OpenAI/Anthropic Bearer, Azure, Anthropic keys)."""
    return (
        headers.get("authorization", "").removeprefix("Bearer "),
        headers.get("api-key", ""),
        headers.get("x-api-key", ""),
    )


def _redact(text: str, credentials: Iterable[str]) -> str:
    """Upstreams may echo the key they were sent; the gateway's credential must not leak."""
    for secret in credentials:
        secret = secret.strip()
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return text
