"""/api/…: the management API (ninja), its OpenAPI document and docs page, and an
OpenAI-style 404 for every other path under /api/.

Ninja answers a method an operation lacks with an empty 405 and its root with Django's 404
page; ``_openai_errors`` gives those the API's error shape too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.csrf import csrf_exempt

from aigateway.api.management.api import api
from aigateway.api.management.errors import error_response


def _openai_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return not_found(request)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = response.get("Allow", "")
            answer = error_response(405, f"Use {allowed.replace(',', ' or')} for this endpoint.")
            answer["Allow"] = allowed
            return answer
        return response

    return wrapper


def _wrap(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = _openai_errors(pattern.callback)
    return patterns


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(404, f"Unknown endpoint: {request.method} {request.path}")


# Not module-level ``app_name``/``namespace`` names: include() would read them.
_patterns, _app, _namespace = api.urls
urlpatterns = [
    path("", (_wrap(_patterns), _app, _namespace)),
    re_path(r"^(?P<rest>.*)$", not_found),
]
