"""The fake upstream's deterministic "model": what it answers and how many tokens it counts.

Both wire protocols (OpenAI chat completions, Anthropic messages) share these rules, so a test
can predict an answer exactly:

* the answer is ``f"Echo from {model}: {last user text}"`` (Anthropic prefixes
  ``"[system: <system text>] "`` when a top-level system prompt is given), with whitespace
  normalised to single spaces;
* a "token" is a whitespace-separated word: prompt tokens are the words of every message's
  text, completion tokens the words of the answer;
* ``max_tokens`` smaller than the answer's word count truncates it (finish "length");
* when the request offers tools and the conversation ends with a user turn containing the word
  "weather", the model calls the first tool with ``{"city": "Paris"}`` instead of answering.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

TOOL_CALL_ARGUMENTS = '{"city": "Paris"}'
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)


def content_text(content: Any, *, tool_results: bool = True) -> str:
    """Text of a message's content: a string, or a list of OpenAI/Anthropic content parts.

    Anthropic ``tool_result`` blocks count (for token usage) unless ``tool_results`` is false.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "tool_result" and tool_results:
                texts.append(content_text(part.get("content", "")))
        return " ".join(texts)
    return ""


def word_count(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model produces for one request."""

    words: list[str]  # the answer, one word per streamed chunk (empty for a tool call)
    finish: str  # "stop", "length" or "tool_calls" (each protocol renames as it needs)
    prompt_tokens: int
    tool_name: str | None = None
    tool_arguments: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def completion_tokens(self) -> int:
        return word_count(self.tool_arguments) if self.tool_name else len(self.words)

    def text_pieces(self) -> list[str]:
        """The answer split the way it is streamed: words, a leading space after the first."""
        return [word if i == 0 else " " + word for i, word in enumerate(self.words)]

    def argument_pieces(self, size: int = 4) -> list[str]:
        args = self.tool_arguments
        return [args[i : i + size] for i in range(0, len(args), size)]


def plan_reply(
    *,
    model: str,
    last_user_text: str,
    prompt_tokens: int,
    max_tokens: int | None,
    tool_name: str | None,
    ends_with_user_turn: bool,
    prefix: str = "",
) -> Reply:
    if tool_name and ends_with_user_turn and _WEATHER.search(last_user_text):
        return Reply(
            words=[],
            finish="tool_calls",
            prompt_tokens=prompt_tokens,
            tool_name=tool_name,
            tool_arguments=TOOL_CALL_ARGUMENTS,
        )
    words = f"{prefix}Echo from {model}: {last_user_text}".split()
    finish = "stop"
    if max_tokens is not None and 0 <= max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    return Reply(words=words, finish=finish, prompt_tokens=prompt_tokens)


def embedding_vector(text: str, dims: int = 8) -> list[float]:
    """A deterministic unit-ish vector in [-1, 1] derived from the text's SHA-256."""
    digest = hashlib.sha256(text.encode()).digest()
    values = struct.unpack(f">{dims}H", digest[: 2 * dims])
    return [round(v / 65535 * 2 - 1, 6) for v in values]


def embedding_base64(vector: list[float]) -> str:
    """The ``encoding_format: base64`` form: little-endian float32s, as OpenAI sends them."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
