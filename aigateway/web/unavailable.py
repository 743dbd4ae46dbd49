"""Pages while the database is down: a short 503 page, never a server error or a trace.

A dashboard page needs the database from its first step (the session, the signed-in user),
so while PostgreSQL restarts every page fails with whatever exception the driver raised,
wherever it surfaced (a middleware, the view, a template). Django turns each into a 500 before
any outer middleware sees the exception, so this middleware, the outermost one, looks at the
answer instead: a 500 while the database does not answer becomes a 503 "temporarily
unavailable" page (JSON for the management API) with Retry-After. It costs nothing on other
answers, one ``SELECT 1`` on a 500. The API doors (/v1) never come here: they serve from the
in-process config cache and shape their own errors (aigateway/api/door.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.decorators import sync_and_async_middleware

from aigateway.core.db import database_up, run_db

RETRY_AFTER_SECONDS = "10"


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "error": {
                    "message": "The database is unavailable; retry shortly.",
                    "type": "service_unavailable",
                    "code": "database_unavailable",
                }
            },
            status=503,
        )
    else:
        # Rendered without the request: no context processor (user, messages) may touch the
        # database that is down.
        response = HttpResponse(render_to_string("web/unavailable.html"), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    response["Cache-Control"] = "no-store"
    return response


@sync_and_async_middleware
def database_unavailable_middleware(get_response: Any) -> Any:
    if iscoroutinefunction(get_response):
        async_get: Callable[[HttpRequest], Awaitable[HttpResponse]] = get_response

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            response = await async_get(request)
            if response.status_code == 500 and not await run_db(database_up):
                return unavailable_response(request)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = get_response(request)
        if response.status_code == 500 and not database_up():
            return unavailable_response(request)
        return response

    return middleware
