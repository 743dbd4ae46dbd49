"""Numbers as the dashboard prints them: 12,345 · $1.23 · 4.5% · 830 ms / 2.4 s · —."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()
DASH = "—"


@register.filter
def count(value: int | None) -> str:
    return DASH if value is None else f"{int(value):,}"


@register.filter
def usd(value: Decimal | float | None) -> str:
    """Dollars with cents; sub-cent amounts keep four significant decimals (token prices)."""
    if value is None:
        return DASH
    amount = float(value)
    if 0 < abs(amount) < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


@register.filter
def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}%"


@register.filter
def ms(value: float | None) -> str:
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    return f"{value:,.0f} ms"
