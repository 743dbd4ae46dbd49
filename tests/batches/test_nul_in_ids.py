"""NUL characters in ids (path, query, JSON) are the caller's mistake: a 400 or 404 in the
OpenAI error shape, never a 500 (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import pytest
import requests

CASES = [
    ("GET", "/v1/files?after=%00", None),
    ("GET", "/v1/files?purpose=%00", None),
    ("GET", "/v1/files/%00", None),
    ("GET", "/v1/files/a%00b/content", None),
    ("GET", "/v1/batches?after=%00", None),
    ("GET", "/v1/batches/%00", None),
    ("POST", "/v1/batches/%00/cancel", None),
    ("POST", "/v1/batches", {"input_file_id": "\u0000", "endpoint": "/v1/chat/completions",
                             "completion_window": "24h"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_nul_in_an_id_is_a_client_error(batch_setup, live_gateway, method, path, body):
    response = requests.request(
        method, live_gateway.base_url + path, json=body, timeout=10,
        headers={"Authorization": f"Bearer {batch_setup.raw_key}"},
    )  # fmt: skip
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
