"""ASGI entry point: Django plus a lifespan handler that flushes buffered records on shutdown.

Django's ASGIHandler does not speak the lifespan protocol, so this wrapper answers it: on
shutdown (SIGTERM after in-flight requests finish) it writes every buffered usage record
and API-call audit entry; at startup without a broker, it resumes unfinished batches.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aigateway.settings")

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from aigateway.core.asgi_handler import get_gateway_asgi_application

django_application: Any = get_gateway_asgi_application()
if settings.AIGATEWAY_SERVE_STATIC:
    django_application = ASGIStaticFilesHandler(django_application)

from aigateway.audit.writer import audit_writer  # noqa: E402
from aigateway.gateway.limits import settles_flush  # noqa: E402
from aigateway.gateway.resilience import outcomes_flush  # noqa: E402
from aigateway.usage.recorder import usage_recorder  # noqa: E402

logger = logging.getLogger(__name__)


def _observability_shutdown() -> None:
    """Send the spans still queued, and take this worker's live metrics out of the shared
    multiprocess directory (its counters stay: they are totals)."""
    from aigateway.observability import instruments, otel

    try:
        otel.shutdown()
        instruments.process_exit()
    except Exception:
        logger.exception("shutdown of metrics/tracing failed")


def _warm_up() -> None:
    """Pay the one-off costs before the first request instead of during it (measured: ~0.5 s
    loading the URLconf with the management API, ~0.3 s loading the tokenizer, the CA
    bundle for upstream TLS)."""
    from django.urls import get_resolver

    from providers import openai_wire
    from providers.tokens import count_prompt_tokens
    from providers.types import ChatRequest, Message

    try:
        get_resolver().resolve("/v1/models")
        openai_wire.warm_up()  # the upstream TLS context (CA bundle read from disk)
        count_prompt_tokens(ChatRequest(model="", messages=[Message(role="user", content="hi")]))
    except Exception:
        logger.exception("startup: warm-up failed (the first request will pay for it)")


async def _resume_batches() -> None:
    """Without a broker, batches a previous process left unfinished resume in this one
    (aigateway/batches/background.py)."""
    from aigateway.batches.background import resume_on_start
    from aigateway.core.db import run_db

    try:
        await run_db(resume_on_start)
    except Exception:
        logger.exception("startup: could not look for unfinished batches")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        await django_application(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _warm_up()
            await _resume_batches()
            # Everything loaded so far (Django, the SDKs, pydantic models: ~1M objects) lives
            # as long as the process: keep it out of the collector's full passes, each of which
            # stopped the event loop for 150-330 ms under load (the p99 of bench/compare.py).
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await settles_flush()  # limits reconciled before the process goes
                await outcomes_flush()  # breaker successes and latency samples held back
                written = await usage_recorder.aflush()
                logger.info("shutdown: flushed %s usage records", written)
            except Exception:
                logger.exception("shutdown flush failed")
            try:
                audited = await audit_writer.aflush()  # API-call audit entries, chained
                logger.info("shutdown: flushed %s audit entries", audited)
            except Exception:
                logger.exception("shutdown audit flush failed")
            _observability_shutdown()
            # uvicorn re-raises SIGTERM after shutdown (no atexit): write waiting log lines.
            for handler in logging.getLogger().handlers:
                handler.flush()
            await send({"type": "lifespan.shutdown.complete"})
            return
