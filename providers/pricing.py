"""Every call has a cost: price per million tokens from the admin-editable ModelPrice table.

The table is small and read on every call, so it is cached in process with the rest of the
config (invalidated by the config version when an admin edits a price).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aigateway.core.config_cache import config_cache
from providers.types import Usage

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    input_per_million: Decimal
    output_per_million: Decimal


PriceTable = dict[tuple[str | None, str], Price]


def load_price_table() -> PriceTable:
    from providers.models import ModelPrice

    return {
        (row.provider.name if row.provider else None, row.model): Price(
            row.input_per_million, row.output_per_million
        )
        for row in ModelPrice.objects.select_related("provider")
    }


def price_lookup(table: PriceTable, *, provider: str, model: str) -> Price | None:
    """A provider-specific price wins over the any-provider price for the same model."""
    return table.get((provider, model)) or table.get((None, model))


def cost_of(usage: Usage, price: Price | None) -> Decimal:
    if price is None:
        return Decimal(0)
    return (
        usage.input_tokens * price.input_per_million
        + usage.output_tokens * price.output_per_million
    ) / MILLION


async def call_cost(*, provider: str, model: str, usage: Usage) -> Decimal:
    table = await config_cache.get_or_load(("prices",), load_price_table)
    return cost_of(usage, price_lookup(table, provider=provider, model=model))
