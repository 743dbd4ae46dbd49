"""POST /v1/embeddings in OpenAI's wire format: validate the body, render the answer.

``input`` is a string, an array of strings, an array of token ids, or an array of such
arrays (never a mix), like OpenAI's. The gateway always asks upstreams for floats and encodes
the answer as the client asked: the openai SDK sends ``encoding_format: "base64"`` unless
told otherwise, and decodes little-endian float32s itself.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Literal

from django.conf import settings

from aigateway.api.parsing import integer_param
from aigateway.gateway.errors import InvalidRequest
from providers.types import EmbeddingRequest, EmbeddingResponse

KNOWN = {"model", "input", "encoding_format", "dimensions", "user"}
EncodingFormat = Literal["float", "base64"]
_INPUT_SHAPES = (
    "'input' must be a non-empty string, an array of strings, an array of token ids, or an "
    "array of token-id arrays."
)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _inputs(raw: Any) -> list[str] | list[list[int]]:
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(_is_token(v) for v in raw):
        items = [raw]  # one pre-tokenised input
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise InvalidRequest(_INPUT_SHAPES, param="input")
    ceiling = settings.AIGATEWAY_MAX_EMBEDDING_INPUTS
    if len(items) > ceiling:
        raise InvalidRequest(
            f"Invalid 'input': array too long. Expected an array with maximum length {ceiling}, "
            f"but got an array with length {len(items)} instead.",
            param="input",
            code="array_above_max_length",
        )
    texts = isinstance(items[0], str)
    for index, item in enumerate(items):
        valid = (
            isinstance(item, str) and item != ""
            if texts
            else isinstance(item, list) and bool(item) and all(_is_token(v) for v in item)
        )
        if not valid:
            param = f"input[{index}]" if len(items) > 1 else "input"
            raise InvalidRequest(
                f"'{param}' is invalid. " + _INPUT_SHAPES + " Inputs may not be empty.",
                param=param,
            )
    return items


def parse_embedding_request(body: dict[str, Any]) -> tuple[EmbeddingRequest, EncodingFormat]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise InvalidRequest(
            f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0]
        )
    if "input" not in body:
        raise InvalidRequest("'input' is required.", param="input")
    raw_encoding = body.get("encoding_format")
    if raw_encoding not in (None, "float", "base64"):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
        )
    encoding: EncodingFormat = "base64" if raw_encoding == "base64" else "float"
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string.", param="user")
    request = EmbeddingRequest(
        model=model,
        inputs=_inputs(body["input"]),
        dimensions=integer_param(body, "dimensions", 1),
        user=user,
    )
    return request, encoding


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 form: the vector as little-endian float32s."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def embedding_response_to_openai(
    response: EmbeddingResponse, encoding: EncodingFormat
) -> dict[str, Any]:
    as_base64 = encoding == "base64"
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": _base64(vector) if as_base64 else vector,
            }
            for index, vector in enumerate(response.vectors)
        ],
        "model": response.model,
        "usage": {
            "prompt_tokens": response.usage.input_tokens,
            "total_tokens": response.usage.total_tokens,
        },
    }
