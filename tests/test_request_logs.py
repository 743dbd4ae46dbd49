"""One structured JSON line per gateway call, with the call's facts and no secret."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import AsyncClient

from aigateway.observability.logging import JsonFormatter
from tests.factories import make_key, make_provider, make_route

pytestmark = pytest.mark.django_db(transaction=True)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def raw_key(cast):
    route = make_route("demo", (make_provider(), "demo"))
    return make_key(cast.team, route).raw_key


async def test_each_call_writes_one_json_request_line(raw_key):
    handler = _Lines()
    logger = logging.getLogger("aigateway.requests")
    logger.addHandler(handler)
    try:
        body = {"model": "demo", "messages": [{"role": "user", "content": "secret prompt"}]}
        response = await AsyncClient().post(
            "/v1/chat/completions", data=json.dumps(body), content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )  # fmt: skip
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200
    [line] = handler.lines
    fields = json.loads(line)
    assert fields["request_id"] == response["x-request-id"]
    assert (fields["route"], fields["provider"], fields["status"]) == ("demo", "demo", 200)
    assert fields["key_prefix"] == raw_key[:12] and fields["output_tokens"] > 0
    assert {"latency_ms", "cost_usd", "cache", "retries", "failovers", "team_id"} <= set(fields)
    assert raw_key not in line and "secret prompt" not in line  # no key, no prompt
