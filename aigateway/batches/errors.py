"""Errors of the Files and Batch API, in the gateway's OpenAI-shaped error family."""

from __future__ import annotations

from aigateway.gateway.errors import GatewayError


class NotFound(GatewayError):
    """Missing, or owned by another team: both answer 404 so ids reveal nothing."""

    status_code = 404
    code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    code = "conflict"
