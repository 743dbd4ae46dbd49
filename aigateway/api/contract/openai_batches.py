"""/v1/files and /v1/batches (OpenAI's Files and Batch shapes; aigateway/batches).

Answers are closed (``extra="forbid"``: no additional properties), so a field the serializers
(aigateway/batches/serializers.py) add without adding it here fails the schemathesis
conformance check and tests/batches/test_batches_contract.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

BATCH_STATUS = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
    "cancelled",
]  # fmt: skip
BATCH_ENDPOINT = Literal["/v1/chat/completions", "/v1/embeddings"]
# aigateway/batches/services.py: at most 16 pairs, keys up to 64, values up to 512 characters.
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileUpload(BaseModel):
    """multipart/form-data."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    purpose: Literal["batch"]


class FileObject(Answer):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    expires_at: int | None = None
    status_details: str | None = None


class FileList(Answer):
    object: Literal["list"]
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class FileDeleted(Answer):
    id: str
    object: Literal["file"]
    deleted: bool


class BatchCreateRequest(BaseModel):
    """Unknown parameters are refused (400), as OpenAI does."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str
    endpoint: BATCH_ENDPOINT
    completion_window: Literal["24h"]
    metadata: dict[MetadataKey, MetadataValue] | None = Field(None, max_length=16)
    output_expires_after: dict[str, Any] | None = Field(
        None, description="Accepted for compatibility and ignored: output files do not expire."
    )


class RequestCounts(Answer):
    total: int
    completed: int
    failed: int


class BatchLineError(Answer):
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(Answer):
    """Why validation failed the batch: one entry per problem found in the input file."""

    object: Literal["list"]
    data: list[BatchLineError]


class BatchInputTokensDetails(Answer):
    cached_tokens: int


class BatchOutputTokensDetails(Answer):
    reasoning_tokens: int


class BatchUsage(Answer):
    """Tokens of every request of the batch; set when the batch ends."""

    input_tokens: int
    input_tokens_details: BatchInputTokensDetails
    output_tokens: int
    output_tokens_details: BatchOutputTokensDetails
    total_tokens: int


class Batch(Answer):
    id: str
    object: Literal["batch"]
    endpoint: BATCH_ENDPOINT
    model: str | None = Field(None, description="The model (route) of the input file's "
                              "requests, once the batch was validated.")  # fmt: skip
    input_file_id: str
    completion_window: Literal["24h"]
    status: BATCH_STATUS
    errors: BatchErrors | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    usage: BatchUsage | None = None
    metadata: dict[str, str] | None = None


class BatchList(Answer):
    object: Literal["list"]
    data: list[Batch]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool
