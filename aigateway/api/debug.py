"""The decision trace on request: ``X-AIGateway-Debug: trace`` from a key allowed to see it.

Who may: API keys with ``debug_trace`` set, which only platform admins can set (Django admin).
The trace names deployments, credential fingerprints and the remaining budgets of the
organisation's limits, so it is operator information, not something every key holder gets.
Anyone else asking is ignored: the answer is the same as without the header.

Where it goes: a complete answer (or an error) carries it in the ``x-aigateway-trace``
header as compact JSON; a stream sends it as a final SSE comment line
(``: x-aigateway-trace {...}``), which SSE clients and the SDKs skip, once the stream ended
and the call was recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from aigateway.gateway.principal import Principal
from aigateway.observability.trace import DecisionTrace

DEBUG_HEADER = "X-AIGateway-Debug"
TRACE_HEADER = "x-aigateway-trace"


def trace_allowed(request: HttpRequest, principal: Principal) -> bool:
    """Did the caller ask for the trace, and may it see it?"""
    asked = request.headers.get(DEBUG_HEADER, "")
    if not asked:
        return False
    return principal.debug_trace and "trace" in {v.strip().lower() for v in asked.split(",")}


def add_trace_header(response: HttpResponseBase, trace: DecisionTrace | None) -> None:
    if trace is not None and trace.reveal and not response.streaming:
        response[TRACE_HEADER] = trace.compact_json()


def trace_comment(trace: DecisionTrace) -> bytes:
    return f": {TRACE_HEADER} {trace.compact_json()}\n\n".encode()


async def with_trace_comment(
    events: AsyncIterator[bytes], trace: DecisionTrace
) -> AsyncIterator[bytes]:
    """The stream's events, then the trace (complete by then: the call was recorded when the
    last chunk passed)."""
    try:
        async for event in events:
            yield event
    finally:  # closed early (client gone): close the inner stream now, not at collection
        await events.aclose()  # type: ignore[attr-defined]
    yield trace_comment(trace)
