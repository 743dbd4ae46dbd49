"""Normalized responses and gateway errors → Anthropic Messages wire format.

Errors follow Anthropic's shape, ``{"type": "error", "error": {"type", "message"},
"request_id"}``, with the statuses the anthropic SDK turns into its typed exceptions (529 for
an overloaded upstream, so ``anthropic.OverloadedError``). The gateway's own error code (e.g.
``model_not_found``) rides in ``error.details.error_code``, where Anthropic puts its codes.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from aigateway.gateway.errors import GatewayError, UpstreamFailed
from providers import fastjson
from providers.anthropic_mapping import tool_input
from providers.types import ChatResponse, FinishReason, Usage

STOP_REASONS: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = 529


def message_id(request_id: str) -> str:
    return "msg_" + request_id.removeprefix("req_")


def stop_reason(finish: FinishReason | None, stop_sequence: str | None) -> str:
    if stop_sequence:
        return "stop_sequence"
    return STOP_REASONS.get(finish, "end_turn") if finish else "end_turn"


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def message_to_anthropic(response: ChatResponse, *, request_id: str) -> dict[str, Any]:
    """A complete answer as an Anthropic Message: text first, then each tool call."""
    content: list[dict[str, Any]] = []
    if response.content:
        content.append({"type": "text", "text": response.content})
    for call in response.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": tool_input(call.arguments),
            }
        )
    return {
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(response.finish_reason, response.stop_sequence),
        "stop_sequence": response.stop_sequence,
        "usage": usage_to_anthropic(response.usage),
    }


def error_status(exc: GatewayError) -> int:
    """Anthropic answers an overloaded service with 529, not 503."""
    if isinstance(exc, UpstreamFailed) and exc.code == "overloaded":
        return OVERLOADED
    return exc.status_code


def error_body(exc: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    status = error_status(exc)
    error: dict[str, Any] = {
        "type": ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error"),
        "message": exc.message,
    }
    details = {"error_code": exc.code, "param": exc.param}
    if any(details.values()):
        error["details"] = {k: v for k, v in details.items() if v}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return body


def error_response(exc: GatewayError, request_id: str) -> JsonResponse:
    response = JsonResponse(error_body(exc, request_id), status=error_status(exc))
    for name, value in exc.headers.items():
        response[name] = value
    return response


def sse_event(payload: dict[str, Any]) -> bytes:
    """One named SSE event, as Anthropic sends them: ``event: <type>`` then its data."""
    return b"event: " + payload["type"].encode() + b"\ndata: " + fastjson.dumps(payload) + b"\n\n"
