"""The Limits page, live usage: what the limiter holds shown on the page (taken directly or
through the gateway, per-minute buckets, token and cost budgets), disabled limits, an
unreachable limiter, and the htmx usage fragment.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from aigateway.quotas.services import limit_set
from tests.web.limits_support import USAGE, World, page, table, take

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limiter")]


# -- live usage -----------------------------------------------------------------------------
def test_the_page_shows_live_remaining_after_some_usage(
    client: Client, world: World, backend: str
) -> None:
    take(world, "ci", 3)  # rpm 10
    take(world, "ci-day", 1, cost=1234)  # tokens per day
    take(world, "research", 1, cost=40_000)  # tpm 100k, burst 150k

    rows = {(r["target"].split(" (")[0], r["kind"]): r for r in table(page(client, world.cast.bob))}

    assert rows[("acme/research/ci", "Requests per minute")]["usage"].startswith(
        "7 of 10 requests available now; full again in"
    )
    assert rows[("acme/research/ci", "Tokens per day")]["usage"].startswith(
        "1,234 of 1,000,000 tokens used today; resets in"
    )
    assert (
        "of 150,000 tokens available now" in rows[("acme/research", "Tokens per minute")]["usage"]
    )
    assert rows[("acme/research", "Tokens per minute")]["usage"].startswith("110,")


def test_usage_through_the_gateway_shows_on_the_page(
    client: Client, world: World, backend: str, transactional_db: None
) -> None:
    raw = world.key.raw_key

    async def call() -> list[int]:
        api = AsyncClient()
        body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "Hi"}]})
        codes = []
        for _ in range(2):
            response = await api.post("/v1/chat/completions", data=body,
                                      content_type="application/json",
                                      headers={"Authorization": f"Bearer {raw}"})  # fmt: skip
            codes.append(response.status_code)
        return codes

    assert async_to_sync(call)() == [200, 200]

    rows = {(r["target"].split(" (")[0], r["kind"]): r for r in table(page(client, world.cast.bob))}
    assert rows[("acme/research/ci", "Requests per minute")]["usage"].startswith("8 of 10 ")
    day = rows[("acme/research/ci", "Tokens per day")]["usage"]
    used = int(re.match(r"([\d,]+) of", day).group(1).replace(",", ""))
    assert used > 0


def test_cost_budgets_show_dollars_spent(client: Client, world: World, backend: str) -> None:
    take(world, "acme", 1, cost=0, spend=12.345)

    row = next(r for r in table(page(client, world.cast.alice)) if r["target"] == "acme")
    assert row["usage"].startswith("$12.35 of $500.00 spent this month; resets in")


def test_disabled_limits_show_no_usage(client: Client, world: World) -> None:
    limit_set(actor=None, scope="team", scope_id=world.cast.team.pk, kind="rpm", value=5,
              enabled=False)  # fmt: skip
    rows = table(page(client, world.cast.carol))
    row = next(r for r in rows if r["kind"].startswith("Requests per minute disabled"))
    assert row["usage"] == "Not applied (disabled)"


def test_the_page_says_when_the_limiter_is_unreachable(
    client: Client, world: World, settings
) -> None:
    from aigateway.core.redis import reset_clients

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    reset_clients()
    html = page(client, world.cast.alice)
    assert "Live usage is unavailable" in html
    assert {r["usage"] for r in table(html) if "disabled" not in r["kind"]} == {"Unavailable"}


# -- the htmx fragment ----------------------------------------------------------------------
def test_the_page_polls_the_usage_fragment_every_10_seconds(client: Client, world) -> None:
    html = page(client, world.cast.carol)
    poller = re.search(r"<div[^>]*hx-get=\"/limits/usage/\"[^>]*>", html)
    assert poller is not None
    assert 'hx-trigger="every 10s"' in poller.group(0)
    assert 'hx-swap="none"' in poller.group(0)
    for name in ("research", "ci"):
        assert f'id="usage-{world.limits[name].pk}"' in html


def _fragment_ids(client: Client, user: object) -> set[int]:
    client.force_login(user)
    response = client.get(USAGE, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment, not a page
    assert html.count('hx-swap-oob="true"') == len(re.findall(r'id="usage-\d+"', html)) + 1
    return {int(i) for i in re.findall(r'id="usage-(\d+)"', html)}


def test_the_fragment_shows_only_what_the_user_may_see(client: Client, world: World) -> None:
    ids = {name: limit.pk for name, limit in world.limits.items()}
    assert _fragment_ids(client, world.cast.carol) == {
        ids["research"],
        ids["ci"],
        ids["ci-day"],
        ids["carol"],
    }
    assert _fragment_ids(client, world.cast.eve) == {ids["sales-bot"]}
    assert _fragment_ids(client, world.cast.dave) == {
        ids[n] for n in ("acme", "research", "ci", "ci-day", "carol", "deployment")
    }


def test_the_fragment_carries_live_numbers(client: Client, world: World) -> None:
    take(world, "ci", 4)
    client.force_login(world.cast.carol)
    html = client.get(USAGE).content.decode()
    cell = re.search(rf'id="usage-{world.limits["ci"].pk}"[^>]*>(.*?)</span>\s*</span>', html, re.S)
    assert cell is not None and "6 of 10 requests available now" in cell.group(1)
