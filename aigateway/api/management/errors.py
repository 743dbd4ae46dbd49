"""Every failure of the management API as an OpenAI-style body,
``{"error": {"message", "type", "param", "code"}}``, never a 500 page or ninja's own shape.

``install_error_handlers`` replaces ninja's handlers (its 422 ``detail`` lists included):
input problems are 400 naming the parameter, duplicates 409, invisible objects 404.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
    ValidationError,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

logger = logging.getLogger(__name__)

# The types the /v1 door uses (OpenAI's): 401 and 404 are invalid requests too.
TYPES = {403: "permission_error", 429: "rate_limit_error"}
CODES = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
}
SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


class ApiError(Exception):
    """Raise from an endpoint or auth class to answer with this error."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 param: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status)
        self.param = param


def error_body(status: int, message: str, *, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:  # fmt: skip
    kind = "api_error" if status >= 500 else TYPES.get(status, "invalid_request_error")
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code or CODES.get(status),
        }
    }


def error_response(status: int, message: str, *, code: str | None = None,
                   param: str | None = None) -> JsonResponse:  # fmt: skip
    return JsonResponse(error_body(status, message, code=code, param=param), status=status)


def _param(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """``("body", "body", "name")`` → ``name``; ``("query", "limit")`` → ``limit``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in SOURCES:
        parts = parts[1:]
    if parts and parts[0] == "body":  # the body parameter's own name
        parts = parts[1:]
    return ".".join(parts) or None


def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    param = _param(first.get("loc", ()))
    message = str(first.get("msg", "Invalid request."))
    if param:
        message = f"'{param}': {message}"
    extra = len(exc.errors) - 1
    if extra > 0:
        message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return error_response(400, message, param=param)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        return error_response(
            401,
            "Authentication required: sign in (browser session) or send "
            "'Authorization: Bearer agw-pat-…' (a personal admin token).",
        )
    if exc.status_code == 403 and "CSRF" in exc.message:
        return error_response(
            403,
            "CSRF check failed: a browser session must send the csrftoken cookie's value in "
            "the X-CSRFToken header on POST, PATCH and DELETE.",
            code="csrf_failed",
        )
    return error_response(exc.status_code, exc.message)


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        conflict = any(e.code == "conflict" for e in errors)
        return error_response(409 if conflict else 400, errors[0].messages[0], param=field,
                              code="conflict" if conflict else None)  # fmt: skip
    return error_response(400, exc.messages[0] if exc.messages else "Invalid request.")


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    what = "object"
    if isinstance(exc, ObjectDoesNotExist):
        what = exc.__class__.__qualname__.split(".")[0].lower()
        what = {"teammembership": "member", "apikey": "API key", "admintoken": "token"}.get(
            what, what
        )
    return error_response(404, f"No such {what}.")


def _internal(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("management API error on %s %s", request.method, request.path)
    return error_response(500, "The gateway had an internal error.", code="internal_error")


def install_error_handlers(api: NinjaAPI) -> None:
    handlers: list[tuple[type[Exception], Any]] = [
        (Exception, _internal),
        (ApiError, lambda r, e: error_response(e.status, e.message, code=e.code, param=e.param)),
        (NinjaValidationError, _validation),
        (HttpError, _http_error),
        (ValidationError, _validation_error),
        (PermissionDenied, lambda r, e: error_response(403, str(e) or "Permission denied.")),
        (Http404, _not_found),
        (ObjectDoesNotExist, _not_found),
        (RequestDataTooBig, lambda r, e: error_response(413, "The request body is too large.")),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)
