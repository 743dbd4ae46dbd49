"""Turn SDK exceptions into our ProviderError classes (see providers/errors.py)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import aiohttp
import openai

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


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code or "")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _really_timed_out(exc: openai.APITimeoutError) -> bool:
    """The SDK's aiohttp transport reports every aiohttp connection error (refused, reset,
    server disconnected) as an httpx ``ConnectTimeout``; the original cause tells them apart."""
    for cause in _causes(exc):
        if isinstance(cause, TimeoutError):
            return True
        if isinstance(cause, (ConnectionError, aiohttp.ClientConnectionError)):
            return False
    return True


def map_openai_error(exc: Exception, provider: str) -> errors.ProviderError:
    if isinstance(exc, openai.APITimeoutError) and _really_timed_out(exc):
        return errors.UpstreamTimeout("the upstream did not answer in time", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return errors.ConnectionFailed("could not connect to the upstream", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        request_id = exc.response.headers.get("x-request-id")
        common = {
            "provider": provider,
            "upstream_status": status,
            "provider_request_id": request_id,
        }
        code = _error_code(exc)
        if status == 429:
            return errors.RateLimited(
                "the upstream rate limit was hit",
                retry_after=parse_retry_after(exc.response.headers),
                **common,
            )
        if status in (503, 529):
            return errors.Overloaded("the upstream is overloaded", **common)
        if status >= 500:
            return errors.ServerError(f"the upstream failed with HTTP {status}", **common)
        if status in (401, 403):
            return errors.AuthFailed("the upstream refused the gateway's credential", **common)
        if code == "context_length_exceeded":
            return errors.ContextTooLong("the prompt is longer than the model allows", **common)
        if code == "content_filter" or code == "content_policy_violation":
            return errors.ContentFiltered("the upstream's content filter refused it", **common)
        return errors.BadRequest(_safe_message(exc), **common)
    # Malformed bodies and anything else the SDK raises: the upstream misbehaved.
    return errors.ServerError("the upstream sent a response we could not read", provider=provider)


def _safe_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    message = inner.get("message") if isinstance(inner, dict) else None
    text = str(message or f"the upstream rejected the request (HTTP {exc.status_code})")
    return _redact_credential(text, exc)[:500]


def _redact_credential(text: str, exc: openai.APIStatusError) -> str:
    """Upstreams may echo the key they were sent; the gateway's credential must not leak."""
    headers = exc.request.headers
    for secret in (
        headers.get("authorization", "").removeprefix("Bearer "),
        headers.get("api-key", ""),
    ):
        secret = secret.strip()
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return text
