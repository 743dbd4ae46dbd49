"""The OpenAPI contract (/api/schema, aigateway/api/contract/openai_batches.py) describes the
Files and Batch answers exactly: real answers of real batches (completed, failed validation,
a 409) validate against the documented schemas, which allow no field the serializers do not
send and list every field they do; the documented page-size bounds are the ones enforced."""

from __future__ import annotations

import io
from typing import Any

import jsonschema
import pytest
import requests

from aigateway.batches import services
from tests.batches.conftest import chat_line, jsonl


@pytest.fixture
def document(live_gateway) -> dict[str, Any]:
    response = requests.get(live_gateway.base_url + "/api/schema", timeout=10)
    assert response.status_code == 200
    return response.json()


class Api:
    def __init__(self, base_url: str, raw_key: str, document: dict[str, Any]) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {raw_key}"}
        self.document = document

    def call(self, method: str, template: str, status: int = 200, **kwargs: Any) -> Any:
        """Call ``template`` (ids filled in from kwargs["ids"]) and check the answer against
        the documented schema of that status."""
        path = template.format(**kwargs.pop("ids", {}))
        response = requests.request(
            method, self.base_url + path, headers=self.headers, timeout=30, **kwargs
        )
        assert response.status_code == status, response.text
        answer = response.json()
        documented = self.document["paths"][template][method.lower()]["responses"][str(status)]
        schema = documented["content"]["application/json"]["schema"]
        jsonschema.validate(
            answer, {**schema, "components": self.document["components"]},
            cls=jsonschema.Draft202012Validator,
        )  # fmt: skip
        return answer

    def component(self, name: str) -> dict[str, Any]:
        return self.document["components"]["schemas"][name]


@pytest.fixture
def api(batch_setup, live_gateway, document) -> Api:
    return Api(live_gateway.base_url, batch_setup.raw_key, document)


def _upload(api: Api, lines: list[Any]) -> dict[str, Any]:
    files = {"file": ("in.jsonl", io.BytesIO(jsonl(lines)), "application/jsonl")}
    return api.call("POST", "/v1/files", files=files, data={"purpose": "batch"})


def test_real_batch_answers_match_the_documented_shapes_exactly(api):
    uploaded = _upload(api, [chat_line(f"c{i}", f"p {i}") for i in range(3)])
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions",
            "completion_window": "24h", "metadata": {"job": "nightly"}}  # fmt: skip
    created = api.call("POST", "/v1/batches", json=body)  # eager in these tests: it has run
    done = api.call("GET", "/v1/batches/{batch_id}", ids={"batch_id": created["id"]})
    assert api.call("GET", "/v1/batches")["data"] == [done]
    assert done["status"] == "completed" and done["model"] and done["usage"]["total_tokens"] > 0
    # Every documented field is sent, and (additionalProperties: false) nothing else is.
    assert set(done) == set(api.component("Batch")["properties"])
    assert api.component("Batch")["additionalProperties"] is False
    assert set(done["usage"]) == set(api.component("BatchUsage")["properties"])

    bad = _upload(api, [chat_line("x", "p"), "{not json"])
    failed = api.call("POST", "/v1/batches", json={**body, "input_file_id": bad["id"]})
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["line"] == 2
    assert set(failed["errors"]["data"][0]) == set(api.component("BatchLineError")["properties"])

    error = api.call(
        "POST", "/v1/batches/{batch_id}/cancel", status=409, ids={"batch_id": done["id"]}
    )
    assert error["error"]["code"] == "batch_not_cancellable"

    files = api.call("GET", "/v1/files")
    assert {f["purpose"] for f in files["data"]} == {"batch", "batch_output"}
    assert set(files["data"][0]) == set(api.component("FileObject")["properties"])
    one = api.call("GET", "/v1/files/{file_id}", ids={"file_id": done["output_file_id"]})
    assert one["purpose"] == "batch_output"
    api.call("DELETE", "/v1/files/{file_id}", ids={"file_id": uploaded["id"]})


@pytest.mark.parametrize("template", ["/v1/files", "/v1/batches"])
def test_the_documented_page_sizes_are_the_enforced_ones(api, template):
    limit = next(
        p["schema"] for p in api.document["paths"][template]["get"]["parameters"]
        if p["name"] == "limit"
    )  # fmt: skip
    for inside in (limit["minimum"], limit["maximum"], limit["default"]):
        api.call("GET", template, params={"limit": inside})
    for outside in (limit["minimum"] - 1, limit["maximum"] + 1):
        error = api.call("GET", template, status=400, params={"limit": outside})
        assert error["error"]["param"] == "limit"
    assert (template, limit["maximum"], limit["default"]) in {
        ("/v1/files", 10_000, 10_000),  # OpenAI's bounds
        ("/v1/batches", 100, 20),
    }


def test_the_documented_metadata_bounds_are_the_enforced_ones(api):
    schema = api.component("BatchCreateRequest")["properties"]["metadata"]["anyOf"][0]
    assert schema["maxProperties"] == services.METADATA_MAX_KEYS
    assert schema["propertyNames"]["maxLength"] == services.METADATA_MAX_KEY
    assert schema["additionalProperties"]["maxLength"] == services.METADATA_MAX_VALUE
