"""Block, redact and flag as the official `openai` and `anthropic` SDKs see them: over real
HTTP to the gateway under uvicorn, served by the wire-level fake upstream."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from aigateway.audit.models import AuditEvent
from aigateway.audit.writer import audit_writer
from tests.guardrails.pipeline_support import (
    CARD,
    CODENAME,
    CODENAME_RULE,
    EMAIL,
    Guarded,
    guarded,
    upstream,
)

__all__ = ["guarded", "upstream"]  # fixtures used by name


@pytest.fixture
def sdk(guarded: Guarded, live_gateway) -> Iterator[tuple[openai.OpenAI, anthropic.Anthropic]]:
    oa = openai.OpenAI(
        base_url=live_gateway.openai_base_url, api_key=guarded.raw_key, max_retries=0, timeout=10
    )
    an = anthropic.Anthropic(
        base_url=live_gateway.base_url, api_key=guarded.raw_key, max_retries=0, timeout=10
    )
    yield oa, an
    oa.close()
    an.close()


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_a_block_is_a_bad_request_naming_the_rule_in_both_sdks(guarded, sdk):
    oa, an = sdk
    guarded.policy(rules=[{"detect": "pii.card", "action": "block"}])
    with pytest.raises(openai.BadRequestError) as refused:
        oa.chat.completions.create(model="guarded", messages=_ask(f"card {CARD}"))
    assert refused.value.code == "guardrail_blocked"
    assert "Blocked by guardrail rule 'pii.card' (organisation policy)" in refused.value.message
    assert CARD not in str(refused.value.body)

    with pytest.raises(anthropic.BadRequestError) as refused_too:
        an.messages.create(model="guarded", max_tokens=50, messages=_ask(f"card {CARD}"))
    error = refused_too.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["details"]["error_code"] == "guardrail_blocked"
    assert "rule 'pii.card'" in error["message"]
    assert guarded.upstream_bodies() == []


def test_redaction_reaches_neither_the_upstream_and_is_reversed_only_when_enabled(guarded, sdk):
    oa, an = sdk
    guarded.policy(rules=[CODENAME_RULE])
    answer = oa.chat.completions.create(model="guarded", messages=_ask(f"news on {CODENAME}?"))
    assert answer.choices[0].message.content == "Echo from up-model: news on [REDACTED_CODENAME_1]?"

    guarded.policy(rules=[CODENAME_RULE], reversible=True)  # applies at once (config version)
    message = an.messages.create(
        model="guarded", max_tokens=50, messages=_ask(f"news on {CODENAME}?")
    )
    assert message.content[0].text == f"Echo from up-model: news on {CODENAME}?"
    assert all(CODENAME not in str(body) for body in guarded.upstream_bodies())


def test_a_flag_lets_the_call_through_and_is_named_in_the_header_and_the_audit_log(
    guarded, sdk, client
):
    oa, _ = sdk
    guarded.policy(rules=[{"detect": "pii.email", "action": "flag"}])
    raw = oa.chat.completions.with_raw_response.create(
        model="guarded", messages=_ask(f"write to {EMAIL}")
    )
    assert raw.parse().choices[0].message.content == f"Echo from up-model: write to {EMAIL}"
    assert raw.headers["x-aigateway-guardrails"] == "flag=pii.email"
    audit_writer.flush()
    entry = AuditEvent.objects.get(action="api.call", target_id=raw.headers["x-request-id"])
    assert entry.details["trace"]["guardrails"] == [  # the answer echoes it: flagged twice
        {"rule": "pii.email", "action": "flag", "direction": "input", "count": 1},
        {"rule": "pii.email", "action": "flag", "direction": "output", "count": 1},
    ]
    assert EMAIL not in str(entry.details)
    client.force_login(guarded.cast.alice)  # the audit page shows the matched rules
    page = client.get(f"/audit/{entry.pk}/").content.decode()
    assert "<h3>Guardrails</h3>" in page and "<td>pii.email</td><td>flag</td>" in page
    assert EMAIL not in page


def test_streams_are_redacted_across_chunks_and_cut_on_a_block_in_both_sdks(guarded, sdk):
    oa, an = sdk
    guarded.policy(
        rules=[
            {"detect": "pii.card", "action": "redact", "direction": "output"},
            {"detect": "pii.email", "action": "block", "direction": "output"},
        ]
    )
    pieces, finish = [], None
    for chunk in oa.chat.completions.create(
        model="guarded", messages=_ask(f"card {CARD} then {EMAIL} then more"), stream=True
    ):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "Echo from up-model: card [REDACTED_CARD] then "
    assert finish == "content_filter"
    assert not any("1111" in piece for piece in pieces)

    with an.messages.stream(
        model="guarded", max_tokens=100, messages=_ask(f"card {CARD} ok")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo from up-model: card [REDACTED_CARD] ok"
    assert final.stop_reason == "end_turn"
    with an.messages.stream(
        model="guarded", max_tokens=100, messages=_ask(f"mail {EMAIL} now")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo from up-model: mail "
    assert final.stop_reason == "refusal"
