"""A gateway-like process for the multiprocess metrics test: records calls through the real
``observe_call`` into PROMETHEUS_MULTIPROC_DIR, then exits cleanly (marking itself dead, as
the ASGI lifespan shutdown does) or stays alive until its stdin closes.

    python -m tests.observability.metrics_worker CALLS exit|stay
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")
os.environ.setdefault("AIGATEWAY_ALLOW_INSECURE_DEFAULTS", "true")

import django

django.setup()

from aigateway.gateway.pipeline import CallContext, CallOutcome  # noqa: E402
from aigateway.gateway.principal import Principal  # noqa: E402
from aigateway.observability import instruments  # noqa: E402
from aigateway.observability.calls import observe_call  # noqa: E402
from aigateway.usage.recorder import UsageEntry  # noqa: E402
from providers.types import ChatRequest, Message  # noqa: E402

ROUTE = "mp-route"


def record_call() -> None:
    principal = Principal(organisation_id=1, team_id=1, allowed_routes=frozenset({ROUTE}))
    ctx = CallContext(request_id="req_mp", principal=principal)
    request = ChatRequest(model=ROUTE, messages=[Message(role="user", content="hi")])
    entry = UsageEntry(
        request_id="req_mp", created_at=ctx.created_at, source="api", status_code=200,
        route=ROUTE, input_tokens=3, output_tokens=5, latency_ms=12.0,
    )  # fmt: skip
    observe_call(ctx, request, entry, CallOutcome(), started=ctx.started)


def main() -> None:
    calls, mode = int(sys.argv[1]), sys.argv[2]
    for _ in range(calls):
        record_call()
    if mode == "exit":
        instruments.process_exit()
        return
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin


if __name__ == "__main__":
    main()
