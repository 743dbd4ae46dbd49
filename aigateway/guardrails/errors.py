"""The error a call gets when a guardrail refuses it: 400, ``invalid_request_error``, code
``guardrail_blocked``, and a message naming the rule and the policy it comes from.

The OpenAI door renders it as ``{"error": {...}}``; the Anthropic door as Anthropic's
``invalid_request_error`` (aigateway/api/anthropic_serializers.py maps by status), with
``guardrail_blocked`` in ``error.details.error_code``. The message never quotes the matched
text: it may be the very secret the rule keeps from leaking.
"""

from __future__ import annotations

from aigateway.gateway.errors import GatewayError


class GuardrailBlocked(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "guardrail_blocked"

    def __init__(self, rule: str, origin: str, reason: str, *, param: str | None = None) -> None:
        super().__init__(f"Blocked by guardrail rule '{rule}' ({origin}): {reason}", param=param)
        self.rule = rule
        self.origin = origin
