"""The inference endpoints' part of the OpenAPI document, from the contract models.

``inference_document`` returns the ``paths`` and ``components`` for every operation of
registry.OPERATIONS whose path the URLconf routes. JSON schemas come from the pydantic models
themselves, so the document changes when a model does.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from aigateway.api.contract.anthropic_messages import AnthropicError
from aigateway.api.contract.errors import ErrorResponse
from aigateway.api.contract.registry import JSON, OPERATIONS, SSE, ContractOperation
from aigateway.api.contract.urlconf import is_routed

REF = "#/components/schemas/{model}"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "TeamApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A team API key (agw-…), issued at POST /api/v1/teams/{team_id}/keys.",
    },
    "TeamApiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}
STATUS_TEXT = {400: "Bad request", 401: "Missing, unknown or expired key", 403: "Forbidden",
               404: "Not found", 405: "Method not allowed", 409: "Conflict",
               413: "Body too large", 429: "Limit reached", 529: "Upstream overloaded"}  # fmt: skip


class SchemaCollector:
    """JSON schemas of models, with their nested definitions, as ``components.schemas``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"two different schemas named {name} in the OpenAPI document")
        self.schemas[name] = schema

    def ref(self, model: type[BaseModel], mode: str = "serialization") -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, nested in schema.pop("$defs", {}).items():
            self.add(name, nested)
        self.add(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error_responses(statuses: list[int], error_ref: dict[str, str]) -> dict[str, Any]:
    return {str(s): _json(error_ref, STATUS_TEXT.get(s, "Error")) for s in statuses}


def _operation(op: ContractOperation, schemas: SchemaCollector) -> dict[str, Any]:
    error_ref = schemas.ref(AnthropicError if op.anthropic_errors else ErrorResponse)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", op.path)
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema,
         **({"description": q.description} if q.description else {})}
        for q in op.query
    ]  # fmt: skip
    content: dict[str, Any] = {}
    if op.response is not None:
        content[op.response_content_type] = {"schema": schemas.ref(op.response)}
    else:
        content[op.response_content_type] = {"schema": {"type": "string", "format": "binary"}}
    if op.stream_event is not None:
        event = schemas.ref(op.stream_event)
        content[SSE] = {"schema": {"type": "string", "description": f"data: {event['$ref']}"}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    statuses = [400, 401, 403, 404, 405, 413, 429, *op.extra_statuses]
    responses |= error_responses(statuses, error_ref)
    responses["5XX"] = {"description": "Upstream or gateway failure",
                        "content": {JSON: {"schema": error_ref}}}  # fmt: skip
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [f"inference: {op.tag}"],
        "security": [{"TeamApiKey": []}, {"TeamApiKeyHeader": []}],
        "responses": responses,
    }
    if op.description:
        operation["description"] = op.description
    if parameters:
        operation["parameters"] = parameters
    if op.request is not None:
        body = schemas.ref(op.request, mode="validation")
        operation["requestBody"] = {
            "required": True,
            "content": {op.request_content_type: {"schema": body}},
        }
    return operation


def inference_document(schemas: SchemaCollector) -> dict[str, dict[str, Any]]:
    """``paths`` of the routed inference operations; their models go into ``schemas``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        if is_routed(op.path):
            paths.setdefault(op.path, {})[op.method] = _operation(op, schemas)
    return paths
