"""Read and validate OpenAI-format request bodies into normalized types.

Every problem becomes an InvalidRequest naming the parameter, so clients get a 400 with a
clear message instead of a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest

from aigateway.api import openai_params
from aigateway.gateway.errors import BodyTooLarge, InvalidRequest
from providers.fastjson import LONG_INTEGER as _LONG_INTEGER
from providers.types import ChatRequest, Message, ToolCall

ROLES = {"system", "developer", "user", "assistant", "tool"}
# OpenAI parameters we do not model, sent verbatim to OpenAI-family upstreams (dropped for
# Anthropic and the demo provider). The full rule: aigateway/api/openai_params.py.
PASS_THROUGH = {
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "n",
    "parallel_tool_calls", "reasoning_effort", "metadata", "store", "service_tier",
    "max_completion_tokens", "modalities", "prediction", "verbosity", "prompt_cache_key",
    "prompt_cache_options", "prompt_cache_retention", "safety_identifier",
}  # fmt: skip
KNOWN = {
    "model", "messages", "temperature", "top_p", "max_tokens", "stop", "tools", "tool_choice",
    "response_format", "seed", "user", "stream", "stream_options",
} | PASS_THROUGH  # fmt: skip
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Deepest nesting of containers a JSON body may have (the body object is level 1). Tool
# schemas are the deepest real bodies (OpenAI's structured outputs allow 10 schema levels).
MAX_JSON_DEPTH = 64
# An unpaired \\uD800-\\uDFFF escape in the raw body (a high one not followed by a low one,
# or a low one not after a high one): only then is the decoded body checked. Paired escapes
# are common (ASCII-escaping clients write every emoji so) and must not cost a re-encode.
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    length = request.headers.get("Content-Length")
    declared = int(length) if length and length.isascii() and length.isdigit() else 0
    if declared > settings.AIGATEWAY_MAX_BODY_BYTES:
        raise BodyTooLarge(
            f"Request body is larger than the {settings.AIGATEWAY_MAX_BODY_BYTES} bytes allowed."
        )
    try:
        raw = request.body
    except Exception as exc:  # RequestDataTooBig and client read errors
        raise BodyTooLarge("Request body is too large.") from exc
    if not raw:
        raise InvalidRequest("Request body is empty; send a JSON object.")
    return parse_json_object(raw, "The JSON body")


def parse_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` as a JSON object, or InvalidRequest saying why (``what`` names it: "The JSON
    body", "This line"). The same rules for request bodies and batch input lines."""
    try:
        # orjson first (~5x faster): strict RFC 8259 UTF-8, no NaN; whatever it refuses or
        # would read differently (a BOM, an integer past 64 bits) takes the path below, which
        # decides and words the error.
        body = _fast_loads(raw)
        if body is None:
            # UTF-8 only (RFC 8259; a leading BOM is skipped): json.loads(bytes) would also
            # guess UTF-16/32 and let encoded surrogates through. NaN and Infinity are not
            # JSON: refused, they would otherwise reach an upstream in a pass-through field.
            body = json.loads(raw.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except RecursionError:  # ~1000 levels: the C parser recurses per level
        raise _too_deep(None) from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, int digits limit, constants
        raise InvalidRequest(
            f"We could not parse {what.lower()}: it must be valid JSON (UTF-8)."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"{what} must be a JSON object.")
    # Fewer openers than the limit cannot nest past it (most bodies): skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        too_deep = _deeper_than(body, MAX_JSON_DEPTH)
        if too_deep is not None:
            raise _too_deep(too_deep)
    if _LONE_SURROGATE_ESCAPE.search(raw) and not _valid_unicode(body):
        raise InvalidRequest(
            f"{what} contains an unpaired surrogate escape (\\ud800-\\udfff); "
            "strings must be valid Unicode."
        )
    return body


def _fast_loads(raw: bytes) -> Any:
    """orjson's reading of ``raw``, or None to let the standard library decide."""
    if _LONG_INTEGER.search(raw):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _valid_unicode(body: dict[str, Any]) -> bool:
    """Paired escapes (an emoji as \\ud83d\\ude00) decode to one character; a lone one
    stays a surrogate that every later encode (hashes, logs, upstream, database) refuses."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(param: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).", param=param
    )


def _deeper_than(body: dict[str, Any], limit: int) -> str | None:
    """The top-level field holding containers nested more than ``limit`` levels, if any.
    Later stages (cache key, guardrails, upstream encoding) walk the body recursively, so
    a body that only just parsed could fail there. Iterative, and a list of scalars (token
    ids, vectors) costs one C-level pass: map(type, ...)."""
    for name, value in body.items():
        stack = [(value, 2)]
        while stack:
            node, depth = stack.pop()
            if not isinstance(node, (dict, list)):
                continue
            if depth > limit:
                return name
            children = node.values() if isinstance(node, dict) else node
            kinds = set(map(type, children))
            if dict in kinds or list in kinds:
                stack.extend((child, depth + 1) for child in children)
    return None


def number_param(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"'{name}' must be a number.", param=name)
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}.", param=name)
    return float(value)


def integer_param(body: dict[str, Any], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"'{name}' must be an integer.", param=name)
    if value < low:
        raise InvalidRequest(f"'{name}' must be at least {low}.", param=name)
    return value


def _message(raw: Any, index: int) -> Message:
    param = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidRequest(
            f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{param}.role"
        )
    content = raw.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise InvalidRequest(f"'{param}.content' must be a string or an array.", param=param)
    if isinstance(content, list):
        for index, part in enumerate(content):
            _content_part(part, f"{param}.content[{index}]")
    if content is None and role != "assistant":
        raise InvalidRequest(f"'{param}.content' is required.", param=f"{param}.content")
    tool_calls = []
    raw_calls = raw.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise InvalidRequest(f"'{param}.tool_calls' must be an array.", param=f"{param}.tool_calls")
    for call in raw_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"'{param}.tool_calls' is malformed.", param=f"{param}.tool_calls")
        tool_calls.append(
            ToolCall(
                id=str(call.get("id", "")),
                name=function["name"],
                arguments=str(function.get("arguments", "")),
            )
        )
    name = raw.get("name")
    tool_call_id = raw.get("tool_call_id")
    return Message(
        role=role,
        content=content,
        name=name if isinstance(name, str) else None,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
    )


def _content_part(part: Any, param: str) -> None:
    """Each content part is an object of a known shape (text needs a string, image_url an
    object with a string url)."""
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    kind = part.get("type")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise InvalidRequest(f"'{param}.text' must be a string.", param=f"{param}.text")
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise InvalidRequest(f"'{param}.image_url.url' must be a string.", param=param)
    if not isinstance(kind, str):
        raise InvalidRequest(f"'{param}.type' must be a string.", param=f"{param}.type")


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    openai_params.check_message_count(messages)
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4
    ):
        raise InvalidRequest("'stop' must be a string or up to 4 strings.", param="stop")
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)
    ):
        raise InvalidRequest("'tools' must be an array of objects.", param="tools")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, (str, dict)):
        raise InvalidRequest("'tool_choice' must be a string or an object.", param="tool_choice")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise InvalidRequest("'response_format' must be an object.", param="response_format")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string.", param="user")
    openai_params.refuse_unsupported(body)
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise InvalidRequest(
            f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0]
        )
    openai_params.check_pass_through_types(body)
    max_tokens = integer_param(body, "max_tokens", 1)
    max_completion_tokens = integer_param(body, "max_completion_tokens", 1)
    openai_params.check_output_tokens("max_tokens", max_tokens)
    openai_params.check_output_tokens("max_completion_tokens", max_completion_tokens)
    if max_completion_tokens is not None:
        # The newer name wins (OpenAI deprecated max_tokens; o-series models refuse it). It
        # stays in ``extra`` so OpenAI-family upstreams get the name the client used.
        max_tokens = max_completion_tokens
    return ChatRequest(
        model=model,
        messages=[_message(m, i) for i, m in enumerate(messages)],
        temperature=number_param(body, "temperature", 0, 2),
        top_p=number_param(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=stop or [],
        tools=tools or [],
        tool_choice=tool_choice,
        response_format=response_format,
        seed=integer_param(body, "seed", -(2**63)),
        user=user,
        stream=stream,
        include_usage=bool(stream_options.get("include_usage", False)),
        extra={k: body[k] for k in PASS_THROUGH if k in body},
    )


def request_id_from(request: HttpRequest, generated: str) -> str:
    supplied = request.headers.get("X-Request-ID", "")
    return supplied if REQUEST_ID_PATTERN.match(supplied) else generated
