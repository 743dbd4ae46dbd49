"""The OpenAPI document at /api/schema describes exactly what the URLconf routes (the
"cannot drift" guarantee), and /api/docs shows it with the Swagger UI served from our own
static files."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from aigateway.api.contract.urlconf import normalised, routed_paths
from tests.factories import make_key

DOC_VIEWS = {"openapi-json", "openapi-view", "api-root"}  # the document itself, its page, /api/
METHODS = ("get", "post", "patch", "put", "delete")


@pytest.fixture
def document(db) -> dict:
    response = Client().get("/api/schema")
    assert response.status_code == 200
    return response.json()


def test_every_routed_path_is_documented_and_nothing_else(document) -> None:
    routed = {
        normalised(r.template)
        for r in routed_paths("/v1/") + routed_paths("/api/")
        if r.name not in DOC_VIEWS
    }
    documented = {normalised(p) for p in document["paths"]}
    assert routed - documented == set(), "routed but not in /api/schema"
    assert documented - routed == set(), "in /api/schema but not routed"
    assert any(p.startswith("/v1/") for p in documented)
    assert any(p.startswith("/api/v1/") for p in documented)


def test_documented_inference_methods_are_the_ones_served(document, cast) -> None:
    """A method the document lists must not answer 405, and one it omits must. Unauthenticated
    calls: the method check comes before the key check, so 401 means "served"."""
    key = make_key(cast.team, name="probe").raw_key
    client = Client()
    for template, item in document["paths"].items():
        if not template.startswith("/v1/"):
            continue
        path = re.sub(r"\{\w+\}", "probe", template)
        for method in METHODS:
            response = getattr(client, method)(path, headers={"Authorization": f"Bearer {key}"})
            served = response.status_code != 405
            assert served is (method in item), (method, template, response.status_code)


def test_every_operation_documents_its_errors_in_one_shape(document) -> None:
    for template, item in document["paths"].items():
        for method, operation in item.items():
            for status in ("400", "401", "404"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                expected = (
                    "AnthropicError" if template.startswith("/v1/messages") else ("ErrorResponse")
                )
                assert ref["$ref"].endswith("/" + expected), (method, template, status)
    schemes = document["components"]["securitySchemes"]
    assert {"AdminTokenAuth", "SessionAuth", "TeamApiKey", "TeamApiKeyHeader"} <= set(schemes)


def test_the_document_is_valid_openapi(document) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document["paths"].values())


def test_the_docs_page_loads_swagger_ui_from_our_static_files(db) -> None:
    page = Client().get("/api/docs").content.decode()
    assert "/api/schema" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/static/ninja/") for s in sources), sources
    assert "cdn" not in page.lower() and "https://" not in page
    for source in sources:
        assert finders.find(source.removeprefix("/static/")), source
