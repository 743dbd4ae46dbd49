"""Turn SDK exceptions into our ProviderError classes (see providers/errors.py)."""

from __future__ import annotations

import email.utils
import time

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


def map_openai_error(exc: openai.OpenAIError, provider: str) -> errors.ProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return errors.UpstreamTimeout("the upstream did not answer in time", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return errors.ConnectionFailed("could not connect to the upstream", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        request_id = exc.response.headers.get("x-request-id")
        common = {"provider": provider, "upstream_status": status, "provider_request_id": request_id}
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
    return str(message or f"the upstream rejected the request (HTTP {exc.status_code})")[:500]
