"""Applying a compiled policy to one call: limits, then detection with block, redact or flag
on the way in; the same detectors on the answer on the way out; and, where the policy says
so, the redacted values put back into what the requester receives.

Redaction replaces each finding with a numbered placeholder, ``[REDACTED_EMAIL_1]``: the same
value gets the same placeholder within a call, so the model can still tell two addresses
apart. The mapping lives in this call's ``Redactions`` only (memory, never stored or
logged). Output redaction writes ``[REDACTED_EMAIL]`` (no number): a value the model made up
is never put back. An output block cuts the answer where the match starts and ends it with
finish reason ``content_filter`` (Azure OpenAI's convention); tool calls whose arguments hit
a block are dropped.

Which detectors see what (docs/guardrails.md, "Policies"): user and tool messages (what
users and tools supply) are checked by every input rule, injection heuristics included; the
system prompt, developer and assistant messages (the caller's own instructions and earlier
answers) by every input rule except the injection heuristics.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from aigateway.guardrails import detectors
from aigateway.guardrails.errors import GuardrailBlocked
from aigateway.guardrails.policy import CompiledPolicy
from providers.tokens import count_prompt_tokens
from providers.types import ChatRequest, ChatResponse, EmbeddingRequest, Message, ToolCall

PLACEHOLDER = re.compile(r"\[REDACTED_[A-Z0-9_]+_\d+\]")
_NOT_LABEL = re.compile(r"[^A-Z0-9]+")
USER_ROLES = frozenset({"user", "tool"})
CATEGORY_TEXT = {
    "secrets": "a secret or credential",
    "pii": "personal data",
    "injection": "a prompt-injection pattern",
    "custom": "text matching a custom rule",
}
DETECTOR_TEXT = {
    "pii.email": "an email address",
    "pii.phone": "a phone number",
    "pii.card": "a payment card number",
    "pii.iban": "an IBAN",
    "pii.us_ssn": "a US social security number",
    "secrets.private_key": "a private key",
    "secrets.password_assignment": "a password or secret assignment",
}


class Notes(Protocol):
    """Where matched rules are noted: the call's DecisionTrace (names and counts only)."""

    def guardrail(self, rule: str, action: str, direction: str) -> None: ...


def label_of(detector: str) -> str:
    """``pii.email`` → ``EMAIL``, ``secrets.aws_access_key`` → ``AWS_ACCESS_KEY``."""
    tail = detector.rsplit(".", 1)[-1].upper()
    return _NOT_LABEL.sub("_", tail).strip("_") or "VALUE"


def describe(detector: str) -> str:
    """What a finding is, for an error message: ``a payment card number``."""
    if detector in DETECTOR_TEXT:
        return DETECTOR_TEXT[detector]
    if detector.startswith("custom."):
        return f"text matching the custom rule '{detector}'"
    found = detectors.BUILTIN_DETECTORS.get(detector)
    category = getattr(found, "category", "") or detector.split(".", 1)[0]
    return CATEGORY_TEXT.get(category, "text a guardrail rule matches")


class Redactions:
    """value ↔ placeholder for one call. Memory only: it dies with the call."""

    __slots__ = ("counts", "originals", "values")

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # original → placeholder
        self.originals: dict[str, str] = {}  # placeholder → original
        self.counts: dict[str, int] = {}

    def placeholder(self, detector: str, value: str) -> str:
        found = self.values.get(value)
        if found is not None:
            return found
        label = label_of(detector)
        number = self.counts.get(label, 0) + 1
        self.counts[label] = number
        placeholder = f"[REDACTED_{label}_{number}]"
        self.values[value], self.originals[placeholder] = placeholder, value
        return placeholder

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """Placeholders of this call back to their values (inside a JSON string: escaped)."""
        if "[REDACTED_" not in text:
            return text

        def original(match: re.Match[str]) -> str:
            value = self.originals.get(match.group(0))
            if value is None:  # not ours (the model wrote it): left as it is
                return match.group(0)
            return json.dumps(value)[1:-1] if json_string else value

        return PLACEHOLDER.sub(original, text)


@dataclass(slots=True)
class CallGuard:
    """One call's guardrail state: the policy, the redaction mapping, what matched."""

    policy: CompiledPolicy
    notes: Notes
    redactions: Redactions = field(default_factory=Redactions)
    output_blocked: bool = False

    @property
    def reveals(self) -> bool:
        """Placeholders in the answer go back to their values for the requester."""
        return self.policy.reversible and bool(self.redactions.originals)

    # -- input ---------------------------------------------------------------------------
    def redact_input(
        self, text: str, found_by: tuple[detectors.Detector, ...], param: str, what: str
    ) -> str:
        """``text`` with redactions applied; GuardrailBlocked at the first blocked finding."""
        findings = detectors.scan(text, found_by)
        if not findings:
            return text
        actions = self.policy.input_actions
        pieces: list[str] = []
        position = 0
        for finding in findings:
            verdict = actions[finding.detector]
            self.notes.guardrail(finding.detector, verdict.action, "input")
            if verdict.action == "block":
                reason = f"the {what} contains {describe(finding.detector)}."
                raise GuardrailBlocked(finding.detector, verdict.origin, reason, param=param)
            if verdict.action == "redact":
                value = text[finding.start : finding.end]
                pieces += (
                    text[position : finding.start],
                    self.redactions.placeholder(finding.detector, value),
                )
                position = finding.end
        if position == 0:
            return text
        pieces.append(text[position:])
        return "".join(pieces)

    # -- output --------------------------------------------------------------------------
    def output_replacement(self, detector: str) -> str | None:
        """What an output finding becomes: None keeps it (flag); "" marks a block."""
        verdict = self.policy.output_actions[detector]
        self.notes.guardrail(detector, verdict.action, "output")
        if verdict.action == "redact":
            return f"[REDACTED_{label_of(detector)}]"
        if verdict.action == "block":
            self.output_blocked = True
            return ""
        return None

    def filter_output(self, text: str) -> tuple[str, bool]:
        """(``text`` redacted, blocked?): a block cuts it where the blocked match starts."""
        findings = detectors.scan(text, self.policy.output_detectors)
        pieces: list[str] = []
        position = 0
        for finding in findings:
            replacement = self.output_replacement(finding.detector)
            if replacement is None:
                continue
            pieces.append(text[position : finding.start])
            position = finding.end
            if replacement == "":
                return "".join(pieces), True
            pieces.append(replacement)
        if position == 0:
            return text, False
        pieces.append(text[position:])
        return "".join(pieces), False


def _param_names(request: ChatRequest) -> list[str]:
    """The chat parameters (OpenAI names) a request uses, beyond the always-allowed ones."""
    names = list(request.extra)
    for name, used in (
        ("temperature", request.temperature is not None),
        ("top_p", request.top_p is not None),
        ("stop", bool(request.stop)),
        ("tools", bool(request.tools)),
        ("tool_choice", request.tool_choice is not None),
        ("response_format", request.response_format is not None),
        ("seed", request.seed is not None),
        ("user", request.user is not None),
    ):
        if used:
            names.append(name)
    return names


def _block(guard: CallGuard, rule: str, origin: str, reason: str, param: str) -> GuardrailBlocked:
    guard.notes.guardrail(rule, "block", "input")
    return GuardrailBlocked(rule, origin, reason, param=param)


def _check_limits(guard: CallGuard, request: ChatRequest) -> None:
    policy = guard.policy
    for allowed, origin in policy.allowed_params:
        for name in _param_names(request):
            if name not in allowed and name != "max_completion_tokens":
                listed = ", ".join(sorted(allowed)) or "none"
                reason = f"the parameter '{name}' is not allowed (allowed: {listed})."
                raise _block(guard, "allowed_params", origin, reason, name)
    bound = policy.max_messages
    if bound is not None and len(request.messages) > bound.value:
        reason = (
            f"the request has {len(request.messages)} messages; at most {bound.value} are allowed."
        )
        raise _block(guard, "max_messages", bound.origin, reason, "messages")
    bound = policy.max_output_tokens
    if bound is not None:
        if request.max_tokens is None:
            request.max_tokens = bound.value  # the most allowed, passed upstream
        elif request.max_tokens > bound.value:
            name = (
                "max_completion_tokens"
                if "max_completion_tokens" in request.extra
                else ("max_tokens")
            )
            reason = (
                f"'{name}' asks for up to {request.max_tokens} output tokens; at most "
                f"{bound.value} are allowed."
            )
            raise _block(guard, "max_output_tokens", bound.origin, reason, name)


def _redact_message(guard: CallGuard, message: Message, param: str) -> None:
    policy = guard.policy
    found_by = policy.user_detectors if message.role in USER_ROLES else policy.context_detectors
    if not found_by:
        return
    content = message.content
    if isinstance(content, str):
        message.content = guard.redact_input(content, found_by, f"{param}.content", "prompt")
    elif isinstance(content, list):
        parts: list[dict[str, object]] | None = None
        for index, part in enumerate(content):
            text = part.get("text") if part.get("type") == "text" else None
            if not isinstance(text, str):
                continue
            where = f"{param}.content[{index}]"
            redacted = guard.redact_input(text, found_by, where, "prompt")
            if redacted is not text:
                parts = parts if parts is not None else list(content)
                parts[index] = {**part, "text": redacted}  # the caller's dict stays as sent
        if parts is not None:
            message.content = parts  # type: ignore[assignment]
    for call in message.tool_calls:
        where = f"{param}.tool_calls"
        call.arguments = guard.redact_input(call.arguments, found_by, where, "prompt")


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _bytes_at_most(request: ChatRequest) -> int:
    """An upper bound of the prompt's tokens for any tokenizer (a token covers at least one
    byte), shaped like providers.tokens.count_prompt_tokens: when it is within the limit, the
    exact count (tiktoken, ~20 µs per message) is not needed."""
    total = 3 + sum(3 + _size(m.text()) for m in request.messages)
    total += sum(_size(c.name + c.arguments) for m in request.messages for c in m.tool_calls)
    if request.tools:
        total += _size(json.dumps(request.tools))
    return total


def check_request(guard: CallGuard, request: ChatRequest, *, provider_kind: str) -> None:
    """Limits, then detection on every message (redacting in place, so everything after this
    — token counts, cache keys, the upstream, logs — sees placeholders only). Raises
    GuardrailBlocked."""
    policy = guard.policy
    _check_limits(guard, request)
    if policy.user_detectors:
        for index, message in enumerate(request.messages):
            _redact_message(guard, message, f"messages[{index}]")
    bound = policy.max_prompt_tokens
    if bound is not None and _bytes_at_most(request) > bound.value:
        tokens = count_prompt_tokens(request, provider_kind=provider_kind)
        if tokens > bound.value:
            reason = f"the prompt is about {tokens} tokens long; at most {bound.value} are allowed."
            raise _block(guard, "max_prompt_tokens", bound.origin, reason, "messages")


def check_embedding_request(guard: CallGuard, request: EmbeddingRequest) -> None:
    """Embeddings inputs: the detectors that are not injection heuristics (an embedding runs
    no instructions). Token-id inputs carry no readable text and are not checked."""
    found_by = guard.policy.context_detectors
    if not found_by or not request.inputs or not isinstance(request.inputs[0], str):
        return
    texts: list[str] = request.inputs  # type: ignore[assignment]
    param = "input" if len(texts) == 1 else "input[{}]"
    request.inputs = [
        guard.redact_input(text, found_by, param.format(i), "input") for i, text in enumerate(texts)
    ]


def check_answer(guard: CallGuard, response: ChatResponse) -> None:
    """Output rules on a complete answer (upstream or cached), in place."""
    if not guard.policy.output_detectors:
        return
    blocked = False
    if response.content:
        response.content, blocked = guard.filter_output(response.content)
    for call in response.tool_calls:
        call.arguments, cut = guard.filter_output(call.arguments)
        blocked = blocked or cut
    if blocked:
        response.tool_calls = []  # cut JSON arguments would be worse than none
        response.finish_reason = "content_filter"


def reveal_response(guard: CallGuard | None, response: ChatResponse) -> ChatResponse:
    """A copy of ``response`` with this call's placeholders restored (the requester's view);
    ``response`` itself (cached, logged) keeps the placeholders."""
    if guard is None or not guard.reveals:
        return response
    restore = guard.redactions.restore
    return dataclasses.replace(
        response,
        content=restore(response.content) if response.content else response.content,
        tool_calls=[
            ToolCall(c.id, c.name, restore(c.arguments, json_string=True))
            for c in response.tool_calls
        ],
    )


# -- preview (the dashboard's "try it") -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class PreviewFinding:
    rule: str
    category: str
    action: str
    origin: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Preview:
    findings: tuple[PreviewFinding, ...]
    text: str  # what would go upstream (input) or reach the requester (output)
    blocked: PreviewFinding | None = None
    message: str = ""  # the error the caller would get, or how the answer would end


def preview(policy: CompiledPolicy | None, text: str, *, direction: str) -> Preview:
    """What ``text`` would yield as a user message (input) or an answer (output): every
    finding with its action, and the text after redaction. Calls nothing."""
    if policy is None:
        return Preview((), text)
    output = direction == "output"
    found_by = policy.output_detectors if output else policy.user_detectors
    actions = policy.output_actions if output else policy.input_actions
    redactions = Redactions()
    findings: list[PreviewFinding] = []
    pieces: list[str] = []
    position, blocked = 0, None
    for found in detectors.scan(text, found_by):
        verdict = actions[found.detector]
        item = PreviewFinding(found.detector, found.category, verdict.action, verdict.origin,
                              found.start, found.end)  # fmt: skip
        findings.append(item)
        if verdict.action == "block" and blocked is None:
            blocked = item
            pieces.append(text[position : found.start])
            position = found.start
        elif verdict.action == "redact" and blocked is None:
            value = text[found.start : found.end]
            replacement = (f"[REDACTED_{label_of(found.detector)}]" if output
                           else redactions.placeholder(found.detector, value))  # fmt: skip
            pieces += (text[position : found.start], replacement)
            position = found.end
    if blocked is None:
        pieces.append(text[position:])
        return Preview(tuple(findings), "".join(pieces))
    if output:
        message = "The answer would end here, with finish reason content_filter."
        return Preview(tuple(findings), "".join(pieces), blocked, message)
    reason = f"the prompt contains {describe(blocked.rule)}."
    error = GuardrailBlocked(blocked.rule, blocked.origin, reason)
    return Preview(tuple(findings), "", blocked, error.message)
