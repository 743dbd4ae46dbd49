"""The local demo provider: deterministic answers, offline, clearly labelled.

It lets a newcomer try the whole pipeline (keys, routing, streaming, usage) without any
upstream account. Answers are a pure function of the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

from providers.base import DeploymentTarget
from providers.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ServedBy,
    Usage,
)

STREAM_DELAY_SECONDS = 0.02  # visible streaming in the playground, fast enough for tests


def _estimate_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def demo_answer(request: ChatRequest) -> str:
    last_user = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
    digest = hashlib.sha256(last_user.encode()).hexdigest()[:8]
    answer = f"[demo] This is the aigateway demo provider (no real model). You said: {last_user}"
    answer += f" (fingerprint {digest})"
    if request.max_tokens is not None:
        answer = " ".join(answer.split()[: request.max_tokens])
    return answer


class DemoAdapter:
    def __init__(self, target: DeploymentTarget) -> None:
        self.provider_name = target.provider_name

    def _usage(self, request: ChatRequest, answer: str) -> Usage:
        prompt = sum(_estimate_tokens(m.text()) for m in request.messages)
        return Usage(input_tokens=prompt, output_tokens=_estimate_tokens(answer))

    def _finish(self, request: ChatRequest, answer: str) -> str:
        truncated = (
            request.max_tokens is not None and _estimate_tokens(answer) >= request.max_tokens
        )
        return "length" if truncated else "stop"

    async def chat(self, request: ChatRequest, target: DeploymentTarget) -> ChatResponse:
        answer = demo_answer(request)
        return ChatResponse(
            id="chatcmpl-demo-" + hashlib.sha256(answer.encode()).hexdigest()[:16],
            model=request.model,
            content=answer,
            finish_reason=self._finish(request, answer),  # type: ignore[arg-type]
            usage=self._usage(request, answer),
            served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
            created=int(time.time()),
        )

    async def chat_stream(
        self, request: ChatRequest, target: DeploymentTarget
    ) -> AsyncIterator[ChatChunk]:
        answer = demo_answer(request)
        yield ChatChunk(role="assistant", content="")
        words = answer.split(" ")
        for index, word in enumerate(words):
            await asyncio.sleep(STREAM_DELAY_SECONDS)
            yield ChatChunk(content=word if index == 0 else " " + word)
        yield ChatChunk(
            finish_reason=self._finish(request, answer),  # type: ignore[arg-type]
            usage=self._usage(request, answer),
        )

    async def embeddings(
        self, request: EmbeddingRequest, target: DeploymentTarget
    ) -> EmbeddingResponse:
        """Deterministic unit vectors from a hash of each input (8 dimensions by default)."""
        size = request.dimensions or 8
        vectors = []
        texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in request.inputs]
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(size)]
            norm = sum(v * v for v in raw) ** 0.5 or 1.0
            vectors.append([v / norm for v in raw])
        return EmbeddingResponse(
            model=request.model,
            vectors=vectors,
            usage=Usage(input_tokens=sum(_estimate_tokens(t) for t in texts)),
            served_by=ServedBy(target.provider_name, target.deployment_id, target.upstream_model),
        )

    async def list_models(self, target: DeploymentTarget) -> list[str]:
        return ["demo"]

    async def health_check(self, target: DeploymentTarget) -> None:
        return None
