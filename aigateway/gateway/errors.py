"""Errors the gateway answers with, in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

from typing import Any

from providers.errors import ProviderError


class GatewayError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        if request_id:
            error["request_id"] = request_id
        return {"error": error}


class InvalidRequest(GatewayError):
    code = "invalid_request"


class BodyTooLarge(GatewayError):
    status_code = 413
    code = "request_too_large"


class AuthenticationFailed(GatewayError):
    status_code = 401
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(GatewayError):
    status_code = 404
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    status_code = 405
    code = "method_not_allowed"


class ServiceUnavailable(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "service_unavailable"


class UpstreamFailed(GatewayError):
    """The final error after resilience gave up. Status and code follow the cause."""

    error_type = "api_error"

    def __init__(
        self, cause: ProviderError, *, attempts: int, trail: list[str] | None = None
    ) -> None:
        message = cause.message
        if trail and len(trail) > 1:
            # Every attempt, so an operator sees the whole story: "deployment: error".
            message = "All attempts failed: " + "; ".join(trail)
        elif attempts > 1:
            message += f" (after {attempts} attempts)"
        if cause.provider_request_id:
            message += f"; last upstream request id {cause.provider_request_id}"
        headers = {}
        retry_after = getattr(cause, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        super().__init__(message, code=cause.kind, headers=headers)
        self.status_code = cause.status_code
        if cause.status_code == 400:
            self.error_type = "invalid_request_error"
        elif cause.status_code == 429:
            self.error_type = "rate_limit_error"
        self.cause = cause
