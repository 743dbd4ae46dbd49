"""Every failure the playground can meet, as one plain sentence for the page.

The API answers machine-readable bodies; a person in the browser gets a sentence that says
what happened and what to do, never a code or a stack trace. The request id goes alongside
(the page shows it), so an operator can find the call in the audit log and the logs.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from aigateway.gateway.errors import GatewayError, UpstreamFailed
from aigateway.gateway.limits import RateLimitExceeded
from aigateway.guardrails.errors import GuardrailBlocked
from providers import errors as provider_errors


def _in_words(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} hours"


def _quota_sentence(exc: RateLimitExceeded) -> str:
    if exc.retry_after is None:  # the call alone is larger than the limit: waiting won't help
        return f"This request is larger than a limit allows. {exc.message}"
    what = exc.message.split(" Retry after", 1)[0].rstrip(".")
    resets = timezone.now() + timedelta(seconds=exc.retry_after)
    return (
        f"Quota exceeded: {what}. It resets in {_in_words(exc.retry_after)}, "
        f"at {resets:%H:%M:%S} UTC on {resets:%Y-%m-%d}."
    )


def _upstream_sentence(exc: UpstreamFailed, route: str) -> str:
    cause = exc.cause
    if isinstance(cause, provider_errors.ContextTooLong):
        return (
            f"The prompt is too long for the model behind '{route}': shorten the conversation "
            "or the system prompt, or lower max tokens."
        )
    if isinstance(cause, provider_errors.ContentFiltered):
        return "The provider's content filter refused this prompt."
    if isinstance(cause, provider_errors.AuthFailed):
        return (
            f"The provider behind '{route}' refused the gateway's credential; "
            "a gateway operator has to fix it."
        )
    if isinstance(cause, provider_errors.BadRequest):
        return f"The provider refused the request: {cause.message}"
    return (
        f"All providers behind '{route}' are down or overloaded right now, so no answer "
        "could be had. Try again in a moment."
    )


def error_sentence(exc: GatewayError, *, route: str) -> str:
    """The sentence the page shows for a call that failed in the pipeline."""
    if isinstance(exc, RateLimitExceeded):
        return _quota_sentence(exc)
    if isinstance(exc, GuardrailBlocked):
        return f"A guardrail blocked this request: {exc.message.removeprefix('Blocked by ')}."
    if isinstance(exc, UpstreamFailed):
        return _upstream_sentence(exc, route)
    if exc.status_code == 404:
        return f"Your team may not use the route '{route}', or it does not exist."
    message = exc.message.strip()
    return message if message.endswith(".") else message + "."


INTERNAL_ERROR = (
    "Something went wrong in the gateway; nothing was sent. Try again, or give an operator "
    "the request id."
)
STREAM_BROKE = "The answer broke off: the provider's stream failed part-way."
