"""Batch input lines follow the API's own JSON rules (aigateway/api/parsing.py
``parse_json_object``): what a request body may not carry, a line may not either."""

from __future__ import annotations

import json

import pytest

from aigateway.batches.validation import parse_input

CHAT = "/v1/chat/completions"


def _line(body_text: str, custom_id: str = "a") -> bytes:
    return (
        f'{{"custom_id": "{custom_id}", "method": "POST", "url": "{CHAT}", "body": {body_text}}}'
    ).encode()


GOOD = _line(json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}), "ok")


@pytest.mark.parametrize(
    "line",
    [
        _line('{"model": "demo", "temperature": NaN, "messages": []}'),
        _line('{"model": "demo", "messages": [{"role": "user", "content": "\\ud800"}]}'),
        _line(
            '{"model": "demo", "messages": [{"role": "user", "content": "x"}], "x": '
            + "[" * 70
            + "]" * 70
            + "}"
        ),
        b"[1, 2]",
    ],
    ids=["nan", "lone-surrogate", "too-deep", "not-an-object"],
)
def test_a_line_the_api_would_refuse_fails_alone(line: bytes) -> None:
    parsed = parse_input(
        GOOD + b"\n" + line + b"\n", endpoint=CHAT, allowed_models=frozenset({"demo"}),
        max_requests=10,
    )  # fmt: skip
    assert [(e.code, e.line) for e in parsed.errors] == [("invalid_json_line", 2)]
    assert [line.custom_id for line in parsed.lines] == ["ok"]


def test_a_paired_emoji_escape_is_fine() -> None:
    emoji = _line('{"model": "demo", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}')
    parsed = parse_input(emoji, endpoint=CHAT, allowed_models=frozenset({"demo"}),
                         max_requests=10)  # fmt: skip
    assert not parsed.errors and parsed.lines[0].body["messages"][0]["content"] == "😀"
