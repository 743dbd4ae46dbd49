"""Every inference operation the gateway can serve, with its request and answer models.

aigateway/api/contract/openapi.py puts an operation into the OpenAPI document only when its
path is routed in the URLconf, so an endpoint still being built is left out rather than
described falsely; tests/api/test_openapi_drift.py fails when a routed /v1 path has no entry
here, or a documented method answers 405.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from aigateway.api.contract import (
    anthropic_messages as am,
)
from aigateway.api.contract import (
    openai_batches as ob,
)
from aigateway.api.contract import (
    openai_chat as oc,
)
from aigateway.api.contract import (
    openai_embeddings as oe,
)
from aigateway.api.contract import (
    openai_models as om,
)

JSON = "application/json"
SSE = "text/event-stream"


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: dict[str, object]
    description: str = ""


@dataclass(frozen=True)
class ContractOperation:
    path: str  # OpenAPI template, e.g. /v1/models/{model}
    method: str  # lower case
    operation_id: str
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    request_content_type: str = JSON
    response: type[BaseModel] | None = None
    response_content_type: str = JSON
    stream_event: type[BaseModel] | None = None  # also answers text/event-stream
    query: tuple[QueryParam, ...] = ()
    anthropic_errors: bool = False
    description: str = ""
    extra_statuses: tuple[int, ...] = field(default=())


# Page sizes as aigateway/batches/views.py enforces them (400 outside): files 1..10,000
# (OpenAI's bounds and default), batches 1..100, default 20 (OpenAI's).
FILES_LIMIT = QueryParam(
    "limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10000}
)
BATCHES_LIMIT = QueryParam(
    "limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
)
AFTER = QueryParam("after", {"type": "string"}, "Cursor: the last id of the previous page.")

OPERATIONS: tuple[ContractOperation, ...] = (
    ContractOperation(
        "/v1/chat/completions",
        "post",
        "createChatCompletion",
        "Create a chat completion",
        "chat",
        oc.ChatCompletionRequest,
        response=oc.ChatCompletion,
        stream_event=oc.ChatCompletionChunk,
        description="OpenAI-compatible. With `stream: true` the answer is text/event-stream: "
        "`data: <ChatCompletionChunk>` events, then `data: [DONE]`.",
    ),
    ContractOperation(
        "/v1/models",
        "get",
        "listModels",
        "Routes this key may use",
        "models",
        response=om.ModelList,
    ),
    ContractOperation(
        "/v1/models/{model}",
        "get",
        "retrieveModel",
        "One route this key may use",
        "models",
        response=om.Model,
    ),
    ContractOperation(
        "/v1/embeddings",
        "post",
        "createEmbedding",
        "Create embeddings",
        "embeddings",
        oe.EmbeddingRequest,
        response=oe.EmbeddingList,
    ),
    ContractOperation(
        "/v1/messages",
        "post",
        "createMessage",
        "Create a message (Anthropic Messages API)",
        "messages",
        am.MessageCreateRequest,
        response=am.Message,
        anthropic_errors=True,
        description="Anthropic-compatible (`x-api-key` or a bearer key). With `stream: true` "
        "the answer is Anthropic's event stream.",
        extra_statuses=(529,),
    ),
    ContractOperation(
        "/v1/messages/count_tokens",
        "post",
        "countMessageTokens",
        "Count a message's tokens",
        "messages",
        am.CountTokensRequest,
        response=am.TokenCount,
        anthropic_errors=True,
    ),
    ContractOperation(
        "/v1/files",
        "post",
        "createFile",
        "Upload a batch input file (JSONL)",
        "files",
        ob.FileUpload,
        request_content_type="multipart/form-data",
        response=ob.FileObject,
    ),
    ContractOperation(
        "/v1/files",
        "get",
        "listFiles",
        "The team's files",
        "files",
        response=ob.FileList,
        query=(
            QueryParam("purpose", {"type": "string"}),
            FILES_LIMIT,
            AFTER,
            QueryParam("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
        ),
    ),
    ContractOperation(
        "/v1/files/{file_id}",
        "get",
        "retrieveFile",
        "One file",
        "files",
        response=ob.FileObject,
    ),
    ContractOperation(
        "/v1/files/{file_id}",
        "delete",
        "deleteFile",
        "Delete a file",
        "files",
        response=ob.FileDeleted,
    ),
    ContractOperation(
        "/v1/files/{file_id}/content",
        "get",
        "retrieveFileContent",
        "A file's content",
        "files",
        response_content_type="application/octet-stream",
    ),
    ContractOperation(
        "/v1/batches",
        "post",
        "createBatch",
        "Create a batch",
        "batches",
        ob.BatchCreateRequest,
        response=ob.Batch,
    ),
    ContractOperation(
        "/v1/batches",
        "get",
        "listBatches",
        "The team's batches",
        "batches",
        response=ob.BatchList,
        query=(BATCHES_LIMIT, AFTER),
    ),
    ContractOperation(
        "/v1/batches/{batch_id}",
        "get",
        "retrieveBatch",
        "One batch",
        "batches",
        response=ob.Batch,
    ),
    ContractOperation(
        "/v1/batches/{batch_id}/cancel",
        "post",
        "cancelBatch",
        "Cancel a batch",
        "batches",
        response=ob.Batch,
        description="409 `batch_not_cancellable` once the batch has ended.",
        extra_statuses=(409,),
    ),
)
