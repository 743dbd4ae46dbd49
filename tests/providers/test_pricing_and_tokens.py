"""Every call has a cost (price table) and a pre-call token count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.models import ModelPrice, Provider, ProviderKind
from providers.pricing import Price, cost_of, load_price_table, price_lookup
from providers.tokens import count_prompt_tokens, count_text_tokens
from providers.types import ChatRequest, Message, Usage


def test_cost_is_tokens_times_price_per_million():
    price = Price(Decimal("2.50"), Decimal("10.00"))
    assert cost_of(Usage(1_000_000, 0), price) == Decimal("2.50")
    assert cost_of(Usage(1000, 500), price) == Decimal("0.0075")
    assert cost_of(Usage(1000, 500), None) == 0


@pytest.mark.django_db
def test_a_provider_specific_price_wins_over_the_default():
    azure = Provider.objects.create(name="azure", kind=ProviderKind.AZURE_OPENAI)
    ModelPrice.objects.create(model="gpt-4o", input_per_million=1, output_per_million=2)
    ModelPrice.objects.create(
        provider=azure, model="gpt-4o", input_per_million=3, output_per_million=4
    )
    table = load_price_table()
    assert price_lookup(table, provider="azure", model="gpt-4o").input_per_million == 3
    assert price_lookup(table, provider="openai", model="gpt-4o").input_per_million == 1
    assert price_lookup(table, provider="openai", model="unknown") is None


def test_openai_models_are_counted_with_tiktoken():
    # cl100k_base: "Hello world, how are you today?" is 8 tokens; the estimate would say 8
    # as well, so use text where they differ.
    text = "tokenization antidisestablishmentarianism 12345678"
    counted = count_text_tokens(text, provider_kind="openai")
    estimated = count_text_tokens(text, provider_kind="anthropic")
    assert estimated == (len(text) + 3) // 4
    assert counted != estimated and counted > 0


def test_a_prompt_counts_messages_overhead_and_tools():
    request = ChatRequest(
        model="m", messages=[Message("system", "Be brief."), Message("user", "Hi")]
    )
    base = count_prompt_tokens(request)
    assert base == 3 + (3 + 3) + (3 + 1)  # reply priming + per-message overhead + text
    request.tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert count_prompt_tokens(request) > base
