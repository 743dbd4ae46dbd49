"""The redaction module: what it masks, what it keeps, and the operator's own patterns."""

from __future__ import annotations

import pytest

from aigateway.env import ImproperlyConfiguredEnv, env_regex_list
from aigateway.observability.redaction import Redactor, default_redactor, luhn_valid, redact
from auth.keys import generate_api_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+news@mail.example.co.uk now", "write to [REDACTED:email] now"),
        ("card 4111111111111111.", "card [REDACTED:card_number]."),
        ("card 4111-1111-1111-1111 ok", "card [REDACTED:card_number] ok"),
        ("amex 3782 822463 10005", "amex [REDACTED:card_number]"),
        ("key sk-proj-abcdefghijklmnop1234", "key [REDACTED:api_key]"),
        ("key sk-ant-api03-abcdefghijklmnopqrst", "key [REDACTED:api_key]"),
        # AWS's documented example key id, split so secret scanners do not flag the file.
        ("aws AKIA" + "IOSFODNN7EXAMPLE", "aws [REDACTED:api_key]"),
        ("gh ghp_" + "a" * 36, "gh [REDACTED:api_key]"),
        ("Authorization: Bearer abc.def-ghi_jkl~mno", "Authorization: [REDACTED:bearer_token]"),
        ("api_key=hunter2hunter2 rest", "api_key=[REDACTED:secret] rest"),
        ('"password": "correct horse"', '"password": "[REDACTED:secret]"'),
        ("secret: 'open sesame'", "secret: '[REDACTED:secret]'"),
        ("jwt eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl", "jwt [REDACTED:jwt]"),
    ],
)
def test_it_masks_sensitive_text(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # 16 digits that fail the Luhn check
        "call +44 20 7946 0958 tomorrow",  # a phone number
        "id 12345678901234567890123",  # longer than any card number
        "the year 2026 and 42 apples",
        "sk-short",  # too short to be a key
        "an @ sign alone, and user@localhost",  # no domain with a dot
    ],
)
def test_it_keeps_ordinary_text(text):
    assert redact(text) == text


def test_a_private_key_block_is_masked_whole():
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----"
    assert redact(f"before\n{pem}\nafter") == "before\n[REDACTED:private_key]\nafter"
    cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg and the rest was cut"
    assert redact("x " + cut) == "x [REDACTED:private_key]"


def test_a_gateway_key_is_masked():
    raw = generate_api_key()
    assert redact(f"my key is {raw}") == "my key is [REDACTED:api_key]"


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_scan_reports_kinds_and_spans_without_overlaps():
    text = "a@b.io paid with 5555555555554444 using sk-abcdefghijklmnopqrstu"
    findings = Redactor().scan(text)
    assert [f.kind for f in findings] == ["email", "card_number", "api_key"]
    assert [text[f.start : f.end] for f in findings] == [
        "a@b.io",
        "5555555555554444",
        "sk-abcdefghijklmnopqrstu",
    ]


def test_admin_patterns_come_from_the_setting(settings):
    settings.AIGATEWAY_REDACT_PATTERNS = [r"EMP-\d{6}", r"project (?:apollo|gemini)"]
    assert default_redactor().redact("EMP-123456 on project apollo") == (
        "[REDACTED:custom] on [REDACTED:custom]"
    )
    settings.AIGATEWAY_REDACT_PATTERNS = []
    assert default_redactor().redact("EMP-123456") == "EMP-123456"


def test_the_setting_must_be_a_json_list_of_valid_patterns(monkeypatch):
    monkeypatch.setenv("AIGATEWAY_REDACT_PATTERNS", r'["EMP-\\d{1,6}", "[a-z]{2,}"]')
    assert env_regex_list("AIGATEWAY_REDACT_PATTERNS") == [r"EMP-\d{1,6}", "[a-z]{2,}"]
    for bad in ("EMP-1", '{"a": 1}', '["(unclosed"]', "[1]"):
        monkeypatch.setenv("AIGATEWAY_REDACT_PATTERNS", bad)
        with pytest.raises(ImproperlyConfiguredEnv):
            env_regex_list("AIGATEWAY_REDACT_PATTERNS")
