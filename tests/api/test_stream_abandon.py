"""A client that leaves before a stream's first byte: the lease is released, the upstream
stream closed and the call recorded (nothing waits for the 15-minute lease expiry)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from aigateway.api.views import StreamBody
from aigateway.gateway.pipeline import CallContext, chat_stream
from aigateway.gateway.principal import authenticate_api_key
from aigateway.quotas.models import Limit
from aigateway.usage.models import UsageRecord
from aigateway.usage.recorder import usage_recorder
from providers.types import ChatRequest, Message
from tests.factories import make_key, make_provider, make_route

pytestmark = pytest.mark.django_db(transaction=True)


async def test_closing_an_unstarted_body_abandons_the_stream():
    abandoned = asyncio.Event()

    async def events():
        yield b"data: x\n\n"

    async def abandon() -> None:
        abandoned.set()

    body = StreamBody(events(), abandon)
    body.close()
    await asyncio.wait_for(abandoned.wait(), 2)


async def test_a_started_body_is_not_abandoned():
    calls = []

    async def events():
        yield b"data: x\n\n"

    async def abandon() -> None:
        calls.append(1)

    body = StreamBody(events(), abandon)
    assert [chunk async for chunk in body] == [b"data: x\n\n"]
    body.close()
    await asyncio.sleep(0.05)
    assert calls == []


async def test_abandoning_releases_the_lease_and_records_the_call(cast):
    def setup() -> str:
        route = make_route("demo", (make_provider(), "demo"))
        issued = make_key(cast.team, route)
        Limit.objects.create(scope="key", scope_id=issued.api_key.pk, kind="concurrent", value=1)
        return issued.raw_key

    principal = await authenticate_api_key(await sync_to_async(setup)())
    request = ChatRequest(model="demo", messages=[Message("user", "hello")], stream=True)
    first = await chat_stream(CallContext(request_id="req_a", principal=principal), request)
    await first.abandon()  # the client left before the first byte
    second = await chat_stream(CallContext(request_id="req_b", principal=principal), request)
    assert [c async for c in second.chunks]  # admitted: the first lease was released
    await sync_to_async(usage_recorder.flush)()
    record = await UsageRecord.objects.aget(request_id="req_a")
    assert (record.status_code, record.error_type) == (499, "client_left_before_stream")
