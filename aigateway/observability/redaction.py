"""Find and mask sensitive text: e-mail addresses, payment card numbers (Luhn-checked), API
keys, bearer tokens, JWTs, private keys, and the operator's own patterns.

Used where prompts and completions may be written down (request logs of teams whose policy
allows it); a guardrail can use ``Redactor.scan`` to find the same things without masking.

    redactor = default_redactor()
    redactor.redact("mail bob@example.com")  # 'mail [REDACTED:email]'

The patterns are compiled once per process (and once per change of
AIGATEWAY_REDACT_PATTERNS, which tests override). Redaction is deliberately greedy for
secrets and exact for card numbers: a long number that fails the Luhn check (an order id, a
phone number) is kept, a secret-shaped string is always masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings

from aigateway.guardrails.validators import luhn_valid  # shared with the guardrails


def _card_number(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


@dataclass(frozen=True, slots=True)
class Pattern:
    kind: str  # what the mask says: [REDACTED:<kind>]
    regex: re.Pattern[str]
    # Only a match this accepts is sensitive (card numbers: the Luhn check).
    accept: Callable[[str], bool] | None = None
    group: int | str = 0  # the part of the match that is masked


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    start: int
    end: int


_BUILTIN: tuple[Pattern, ...] = (
    Pattern(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*)",  # unterminated: to the end
            re.DOTALL,
        ),
    ),
    Pattern("bearer_token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")),
    Pattern("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")),
    Pattern(
        "api_key",
        re.compile(
            r"\b(?:sk|agw|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic (sk-ant-…), ours
            r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
            r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
            r"|\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
            r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
            r"|\bAIza[0-9A-Za-z_-]{35}"  # Google
        ),
    ),
    # "api_key=…", "password: …": the value, whatever its shape.
    Pattern(
        "secret",
        re.compile(
            r"(?i)\b(?:api[_-]?key|secret|password|passwd|access[_-]?token|client[_-]?secret)"
            r"[\"']?\s*[:=]\s*[\"']?"
            # a quoted value up to its closing quote (spaces included), else one word
            r"(?P<value>(?<=\")[^\"]{4,}(?=\")|(?<=')[^']{4,}(?=')|[^\s\"',;]{6,})"
        ),
        group="value",
    ),
    Pattern(
        "email",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    # 13-19 digits, optionally grouped by spaces or dashes, not part of a longer number.
    Pattern("card_number", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card_number),
)


class Redactor:
    def __init__(self, extra: Sequence[str] = ()) -> None:
        custom = tuple(Pattern("custom", re.compile(p)) for p in extra)
        self.patterns: tuple[Pattern, ...] = _BUILTIN + custom

    def scan(self, text: str) -> list[Finding]:
        """Sensitive spans, in text order, without overlaps (earlier patterns win)."""
        if not text:
            return []
        found: list[Finding] = []
        for pattern in self.patterns:
            for match in pattern.regex.finditer(text):
                start, end = match.span(pattern.group)
                if start == end or (pattern.accept and not pattern.accept(match.group())):
                    continue
                if any(start < f.end and f.start < end for f in found):
                    continue
                found.append(Finding(pattern.kind, start, end))
        found.sort(key=lambda f: f.start)
        return found

    def redact(self, text: str) -> str:
        findings = self.scan(text)
        if not findings:
            return text
        parts, position = [], 0
        for finding in findings:
            parts.append(text[position : finding.start])
            parts.append(f"[REDACTED:{finding.kind}]")
            position = finding.end
        parts.append(text[position:])
        return "".join(parts)


_cached: tuple[tuple[str, ...], Redactor] | None = None


def default_redactor() -> Redactor:
    """The built-in patterns plus AIGATEWAY_REDACT_PATTERNS (compiled once per value)."""
    global _cached
    extra = tuple(getattr(settings, "AIGATEWAY_REDACT_PATTERNS", ()))
    if _cached is None or _cached[0] != extra:
        _cached = (extra, Redactor(extra))
    return _cached[1]


def redact(text: str) -> str:
    return default_redactor().redact(text)
