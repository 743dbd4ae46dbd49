"""The error body every endpoint answers with (OpenAI's shape)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, in a sentence.")
    type: str = Field(
        description="invalid_request_error (4xx), permission_error (403), rate_limit_error "
        "(429), api_error (5xx); the Anthropic-shaped /v1/messages has its own types"
    )
    param: str | None = Field(default=None, description="The parameter at fault, if one is.")
    code: str | None = Field(default=None, description="A machine-readable reason.")
    request_id: str | None = Field(default=None, description="Present on /v1 answers.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
