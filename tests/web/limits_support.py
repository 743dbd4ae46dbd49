"""Shared by the Limits page tests (tests/web/test_limits_*.py): the world they run in, the
limits table of the page as data, and helpers to post the form and to take from a limit.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from asgiref.sync import async_to_sync
from django.test import Client

from aigateway.quotas.models import Limit
from aigateway.quotas.services import limit_set
from auth.services import IssuedApiKey
from tests.factories import make_key, make_provider, make_route

PAGE = "/limits/"
USAGE = "/limits/usage/"


@dataclass
class World:
    cast: object
    key: IssuedApiKey  # acme/research/ci
    sales_key: IssuedApiKey  # globex/sales/bot
    limits: dict[str, Limit]  # name → limit


def build_world(cast: Any) -> World:
    """Limits on every kind of target, of both organisations (set as the command line would)."""
    route = make_route("demo", (make_provider(), "demo"))
    key = make_key(cast.team, route, name="ci")
    sales_key = make_key(cast.other_team, route, name="bot")
    deployment = route.deployments.get()

    def put(scope: str, scope_id: int, kind: str, value: int, **extra: object) -> Limit:
        return limit_set(actor=None, scope=scope, scope_id=scope_id, kind=kind, value=value,
                         **extra)  # type: ignore[arg-type]  # fmt: skip

    limits = {
        "acme": put("org", cast.org.pk, "cost_month", 500),
        "research": put("team", cast.team.pk, "tpm", 100_000, burst=150_000),
        "ci": put("key", key.api_key.pk, "rpm", 10),
        "ci-day": put("key", key.api_key.pk, "tokens_day", 1_000_000),
        "carol": put("user", cast.carol.pk, "concurrent", 2),
        "deployment": put("deployment", deployment.pk, "rpm", 600),
        "globex": put("org", cast.other_org.pk, "tokens_month", 9_999_999),
        "sales-bot": put("key", sales_key.api_key.pk, "rpm", 77),
    }
    return World(cast, key, sales_key, limits)


class _Rows(HTMLParser):
    """The text of each <td> of the limits table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = False
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "limits") in attrs:
            self._in_table = True
        elif tag == "tbody" and self._in_table:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


COLUMNS = ("scope", "target", "kind", "limit", "burst", "soft", "usage", "actions")


def table(html: str) -> list[dict[str, str]]:
    parser = _Rows()
    parser.feed(html)
    return [dict(zip(COLUMNS, row, strict=True)) for row in parser.rows]


def page(client: Client, user: object) -> str:
    client.force_login(user)
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.content.decode()


def targets_seen(client: Client, user: object) -> set[str]:
    return {f"{row['scope']} {row['target']}" for row in table(page(client, user))}


def form_post(client: Client, target: str, kind: str, value: str, **extra: str):
    data = {"target": target, "kind": kind, "value": value, "soft_threshold_percent": "80",
            "enabled": "on", **extra}  # fmt: skip
    return client.post(PAGE, data)


def take(world: World, limit_name: str, times: int, cost: float = 1.0, spend: float = 0) -> None:
    """Take from a limit's bucket or counter directly, as the gateway would (and charge
    ``spend`` afterwards, as it does for cost budgets)."""
    import time
    from datetime import UTC, datetime

    from aigateway.gateway.limits import _limiter
    from aigateway.quotas.limiter import Adjustment
    from aigateway.quotas.rules import Demand, Rule, check_for

    limit = world.limits[limit_name]
    burst = float(limit.burst) if limit.burst else None
    rule = Rule(limit.pk, limit.scope, limit.scope_id, limit.kind, float(limit.value), burst,
                limit.soft_threshold_percent)  # fmt: skip
    demand = Demand(int(cost), int(cost), f"lease-{limit_name}")
    check = check_for(rule, demand, tz_name="UTC", now=datetime.now(UTC))

    async def take() -> None:
        for _ in range(times):
            verdict = await _limiter().take([check], time.time())
            assert verdict.allowed
        if spend:
            await _limiter().settle([Adjustment(check, spend)], time.time())

    async_to_sync(take)()
