"""Read and validate Anthropic Messages request bodies into the normalized ChatRequest.

The opposite direction of providers/anthropic_mapping.py: Anthropic content blocks become
OpenAI-style messages (tool_use → assistant tool_calls, tool_result → tool messages, images →
image_url parts), so the one pipeline and every adapter serve Anthropic-format clients too.
Every problem is an InvalidRequest naming the parameter, so clients get a 400, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from aigateway.api import openai_params
from aigateway.api.parsing import integer_param, number_param
from aigateway.gateway.errors import InvalidRequest
from providers.types import ChatRequest, Message, ToolCall

KNOWN = {
    "model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "tools", "tool_choice", "metadata", "output_config",
}  # fmt: skip
# Accepted and ignored (see docs/api.md): hints that change neither who may call nor the shape
# of the answer. ``thinking`` is among them: the answer then simply has no thinking blocks.
IGNORED = {"thinking", "service_tier", "inference_geo", "speed", "cache_control"}
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _string(value: Any, param: str, *, required: bool = True) -> str:
    if isinstance(value, str) and (value or not required):
        return value
    raise _invalid(f"'{param}' is required and must be a string.", param)


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"'{param}' must be an object.", param)
    return value


def _block_type(block: Any, param: str) -> str:
    kind = _object(block, param).get("type")
    if not isinstance(kind, str):
        raise _invalid(f"'{param}.type' must be a string.", f"{param}.type")
    return kind


def _unsupported(kind: str, param: str) -> InvalidRequest:
    return _invalid(f"'{param}': content blocks of type '{kind}' are not supported here.", param)


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    """An Anthropic image block → an OpenAI ``image_url`` part (a data: URL for base64)."""
    source = _object(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source.get("media_type"), f"{param}.source.media_type")
        data = _string(source.get("data"), f"{param}.source.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = _string(source.get("url"), f"{param}.source.url")
    else:
        raise _invalid(f"'{param}.source.type' must be 'base64' or 'url'.", f"{param}.source.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _part(block: dict[str, Any], kind: str, param: str) -> dict[str, Any]:
    if kind == "text":
        return {"type": "text", "text": _string(block.get("text"), f"{param}.text", required=False)}
    if kind == "image":
        return _image_part(block, param)
    raise _unsupported(kind, param)


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part is sent as plain text (what most upstreams expect); others as parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _tool_result(block: dict[str, Any], param: str) -> Message:
    """A tool_result block → an OpenAI tool message. OpenAI has no error flag, so an error
    result says so in its text."""
    tool_use_id = _string(block.get("tool_use_id"), f"{param}.tool_use_id")
    raw = block.get("content", "")
    if isinstance(raw, str):
        parts = [{"type": "text", "text": raw}]
    elif isinstance(raw, list):
        parts = [
            _part(item, _block_type(item, f"{param}.content[{i}]"), f"{param}.content[{i}]")
            for i, item in enumerate(raw)
        ]
    elif raw is None:
        parts = []
    else:
        raise _invalid(f"'{param}.content' must be a string or an array.", f"{param}.content")
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise _invalid(f"'{param}.is_error' must be a boolean.", f"{param}.is_error")
    if is_error:
        parts.insert(0, {"type": "text", "text": "Error: "})
    texts_only = all(p["type"] == "text" for p in parts)
    content = "".join(p["text"] for p in parts) if texts_only else parts
    return Message(role="tool", content=content, tool_call_id=tool_use_id)


def _user_turn(blocks: list[Any], param: str) -> list[Message]:
    """Tool results become tool messages (they answer the previous assistant turn's calls and
    must come first); the other blocks one user message after them."""
    results: list[Message] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        where = f"{param}.content[{index}]"
        kind = _block_type(block, where)
        if kind == "tool_result":
            results.append(_tool_result(block, where))
        else:
            parts.append(_part(block, kind, where))
    if parts:
        results.append(Message(role="user", content=_content(parts)))
    return results


def _assistant_turn(blocks: list[Any], param: str) -> list[Message]:
    parts: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(blocks):
        where = f"{param}.content[{index}]"
        kind = _block_type(block, where)
        if kind == "text":
            parts.append(_part(block, kind, where))
        elif kind == "tool_use":
            tool_input = block.get("input", {})
            if not isinstance(tool_input, dict):
                raise _invalid(f"'{where}.input' must be an object.", f"{where}.input")
            call_id = _string(block.get("id"), f"{where}.id")
            name = _string(block.get("name"), f"{where}.name")
            calls.append(ToolCall(id=call_id, name=name, arguments=json.dumps(tool_input)))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # an earlier answer's reasoning, echoed back: no upstream needs it
        else:
            raise _unsupported(kind, where)
    if not parts and not calls:
        return []
    return [Message(role="assistant", content=_content(parts) if parts else None, tool_calls=calls)]


def _turn(raw: Any, param: str) -> list[Message]:
    role = _object(raw, param).get("role")
    if role not in ("user", "assistant"):
        raise _invalid(
            f"'{param}.role' must be 'user' or 'assistant' (the system prompt goes in the "
            "top-level 'system').",
            f"{param}.role",
        )
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role=role, content=content)]
    if not isinstance(content, list) or not content:
        raise _invalid(
            f"'{param}.content' must be a string or a non-empty array of content blocks.",
            f"{param}.content",
        )
    return _user_turn(content, param) if role == "user" else _assistant_turn(content, param)


def _system(raw: Any) -> list[Message]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [Message(role="system", content=raw)]
    if not isinstance(raw, list):
        raise _invalid("'system' must be a string or an array of text blocks.", "system")
    texts = []
    for index, block in enumerate(raw):
        where = f"system[{index}]"
        if _block_type(block, where) != "text":
            raise _invalid(f"'{where}.type' must be 'text'.", f"{where}.type")
        texts.append(_string(block.get("text"), f"{where}.text", required=False))
    return [Message(role="system", content="\n\n".join(texts))] if texts else []


def _tools(raw: Any) -> list[dict[str, Any]]:
    """Anthropic custom tools → OpenAI function tools. Anthropic's server tools (web search,
    code execution, ...) run at Anthropic and have no equivalent elsewhere: refused."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("'tools' must be an array of tools.", "tools")
    tools = []
    for index, tool in enumerate(raw):
        where = f"tools[{index}]"
        kind = _object(tool, where).get("type")
        if kind not in (None, "custom"):
            raise _invalid(
                f"'{where}.type' {kind!r} is a server tool, which this gateway does not "
                "support; define a custom tool with 'name' and 'input_schema'.",
                f"{where}.type",
            )
        function: dict[str, Any] = {
            "name": _string(tool.get("name"), f"{where}.name"),
            "parameters": _object(tool.get("input_schema"), f"{where}.input_schema"),
        }
        description = tool.get("description")
        if description is not None:
            function["description"] = _string(description, f"{where}.description", required=False)
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(
    raw: Any, tools: list[dict[str, Any]]
) -> tuple[str | dict[str, Any] | None, dict[str, Any]]:
    """(OpenAI tool_choice, extra parameters). OpenAI refuses a tool_choice (and
    parallel_tool_calls) without tools, so a harmless auto/none without tools is dropped."""
    if raw is None:
        return None, {}
    choice = _object(raw, "tool_choice")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _invalid(
            "'tool_choice.type' must be one of auto, any, tool, none.", "tool_choice.type"
        )
    disable_parallel = choice.get("disable_parallel_tool_use", False)
    if not isinstance(disable_parallel, bool):
        raise _invalid(
            "'tool_choice.disable_parallel_tool_use' must be a boolean.",
            "tool_choice.disable_parallel_tool_use",
        )
    if not tools:
        if kind in ("any", "tool"):
            raise _invalid(f"'tool_choice' of type '{kind}' needs 'tools'.", "tool_choice")
        return None, {}
    extra = {"parallel_tool_calls": False} if disable_parallel else {}
    if kind != "tool":
        return TOOL_CHOICES[kind], extra
    name = _string(choice.get("name"), "tool_choice.name")
    if name not in {t["function"]["name"] for t in tools}:
        raise _invalid(f"'tool_choice.name' {name!r} is not one of 'tools'.", "tool_choice.name")
    return {"type": "function", "function": {"name": name}}, extra


def _response_format(raw: Any) -> dict[str, Any] | None:
    """``output_config.format`` (structured outputs) → OpenAI ``response_format``;
    ``output_config.effort`` is a hint with no portable equivalent and is ignored."""
    if raw is None:
        return None
    output_format = _object(raw, "output_config").get("format")
    if output_format is None:
        return None
    where = "output_config.format"
    if _object(output_format, where).get("type") != "json_schema":
        raise _invalid(f"'{where}.type' must be 'json_schema'.", f"{where}.type")
    schema = _object(output_format.get("schema"), f"{where}.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _user(raw: Any) -> str | None:
    if raw is None:
        return None
    user_id = _object(raw, "metadata").get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise _invalid("'metadata.user_id' must be a string.", "metadata.user_id")
    return user_id or None


def _stop_sequences(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _invalid("'stop_sequences' must be an array of strings.", "stop_sequences")
    return raw


def parse_messages_request(body: dict[str, Any], *, count_only: bool = False) -> ChatRequest:
    """A Messages API body → ChatRequest. ``count_only`` (count_tokens) needs no max_tokens."""
    unknown = sorted(set(body) - KNOWN - IGNORED)
    if unknown:
        raise _invalid(f"'{unknown[0]}': unrecognized request argument.", unknown[0])
    model = _string(body.get("model"), "model")
    max_tokens = integer_param(body, "max_tokens", 1)
    if max_tokens is None and not count_only:
        raise _invalid("'max_tokens' is required and must be an integer.", "max_tokens")
    # The same ceilings as the OpenAI door (AIGATEWAY_MAX_OUTPUT_TOKENS, _MAX_MESSAGES).
    openai_params.check_output_tokens("max_tokens", max_tokens)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _invalid("'messages' must be a non-empty array.", "messages")
    openai_params.check_message_count(raw_messages)
    messages = _system(body.get("system"))
    for index, raw in enumerate(raw_messages):
        messages += _turn(raw, f"messages[{index}]")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("'stream' must be a boolean.", "stream")
    integer_param(body, "top_k", 0)  # validated, then dropped: no OpenAI equivalent
    if body.get("thinking") is not None:
        _object(body["thinking"], "thinking")
    tools = _tools(body.get("tools"))
    tool_choice, extra = _tool_choice(body.get("tool_choice"), tools)
    return ChatRequest(
        model=model,
        messages=messages,
        temperature=number_param(body, "temperature", 0, 1),
        top_p=number_param(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        response_format=_response_format(body.get("output_config")),
        user=_user(body.get("metadata")),
        stream=stream,
        extra=extra,
    )
