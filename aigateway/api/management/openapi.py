"""One OpenAPI document for the whole gateway, served at /api/schema: ninja's description of
the management API plus the inference endpoints from their contract models
(aigateway/api/contract), with every error answer documented in the one error shape."""

from __future__ import annotations

import copy
from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from aigateway.api.contract.errors import ErrorResponse
from aigateway.api.contract.openapi import (
    SECURITY_SCHEMES,
    SchemaCollector,
    error_responses,
    inference_document,
)

DESCRIPTION = """\
**Inference** (`/v1/…`): OpenAI- and Anthropic-compatible; authenticate with a team API key
(`Authorization: Bearer agw-…` or `x-api-key`).

**Management** (`/api/v1/…`): teams, members, keys, limits, usage, routes, breakers, audit
log. Authenticate with a browser session (unsafe methods need the `X-CSRFToken` header) or a
personal admin token (`Authorization: Bearer agw-pat-…`, created at `POST /api/v1/tokens`).
Team API keys are refused here. Errors: `{"error": {"message", "type", "param", "code"}}`.
"""
WRITE_METHODS = {"post", "patch", "put", "delete"}


def _document_errors(schema: OpenAPISchema, schemas: SchemaCollector) -> None:
    error_ref = schemas.ref(ErrorResponse)
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            statuses = [400, 401, 403, 404]
            if method in WRITE_METHODS:
                statuses.append(409)
            responses = operation.setdefault("responses", {})
            for status, response in error_responses(statuses, error_ref).items():
                responses.setdefault(status, response)


class GatewayAPI(NinjaAPI):
    """NinjaAPI whose document also describes the hand-written inference views."""

    _documents: dict[str, OpenAPISchema]

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        documents = self.__dict__.setdefault("_documents", {})
        key = repr((path_prefix, sorted((path_params or {}).items())))
        if key not in documents:
            documents[key] = self._build(path_prefix, path_params)
        return copy.deepcopy(documents[key])

    def _build(self, path_prefix: str | None, path_params: dict[str, Any] | None) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemas = SchemaCollector()
        _document_errors(schema, schemas)
        inference = inference_document(schemas)
        schema["paths"] = {**inference, **schema.get("paths", {})}
        components = schema.setdefault("components", {})
        existing = components.setdefault("schemas", {})
        for name, value in schemas.schemas.items():
            if name in existing and existing[name] != value:
                raise ValueError(f"two different schemas named {name} in the OpenAPI document")
            existing[name] = value
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        schema["info"]["description"] = DESCRIPTION
        return schema
