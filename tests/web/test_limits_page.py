"""The Limits page: who sees and changes which limits, live usage from the limiter, the htmx
usage fragment, alerts, audit entries, the query budget, and no secrets on the page.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import AsyncClient, Client

from aigateway.audit.models import AuditEvent
from aigateway.quotas.limiter import InProcessLimiter
from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.quotas.services import limit_delete, limit_set
from auth.services import IssuedApiKey
from tests.factories import make_key, make_provider, make_route

pytestmark = pytest.mark.django_db

PAGE = "/limits/"
USAGE = "/limits/usage/"
# Queries for the page, whatever the number of limits, teams, keys, users and alerts: session,
# user, org roles, team roles, organisations, teams, keys, users through org roles, users
# through teams, deployments, limits, open alerts. Members (no organisation-wide role) skip the
# organisations, the users and the deployments. The fragment skips the alerts.
PAGE_QUERIES = {"alice": 12, "dave": 12, "carol": 8}


@pytest.fixture(autouse=True)
def fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> InProcessLimiter:
    """A new in-process limiter per test (limit ids repeat across tests)."""
    from aigateway.gateway import limits

    local = InProcessLimiter()
    monkeypatch.setattr(limits, "_local", local)
    return local


@dataclass
class World:
    cast: object
    key: IssuedApiKey  # acme/research/ci
    sales_key: IssuedApiKey  # globex/sales/bot
    limits: dict[str, Limit]  # name → limit


@pytest.fixture
def world(cast) -> World:
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


# -- access ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [PAGE, USAGE, "/limits/1/edit/", "/limits/1/delete/"])
def test_anonymous_users_are_sent_to_log_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_nav_links_to_the_page_and_marks_it_current(client: Client, world: World) -> None:
    html = page(client, world.cast.carol)
    assert re.search(r'<a href="/limits/"\s+aria-current="page">Limits</a>', html)
    overview = client.get("/").content.decode()
    assert re.search(r'<a href="/limits/"\s*>Limits</a>', overview)


# -- who sees what --------------------------------------------------------------------------
ACME_ALL = {
    "Organisation acme",
    "Team acme/research",
    "API key acme/research/ci",
    "User carol",
    "Deployment demo → demo:demo",
}


def _strip_prefix(seen: set[str]) -> set[str]:
    return {re.sub(r" \(agw-[^)]*…\)$", "", s) for s in seen}


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", ACME_ALL),
        ("dave", ACME_ALL),
        ("bob", {"Team acme/research", "API key acme/research/ci"}),
        ("carol", {"Team acme/research", "API key acme/research/ci", "User carol"}),
        ("eve", {"API key globex/sales/bot"}),
    ],
)
def test_each_member_of_the_cast_sees_exactly_their_limits(
    client: Client, world: World, username: str, expected: set[str]
) -> None:
    assert _strip_prefix(targets_seen(client, getattr(world.cast, username))) == expected


def test_a_superuser_sees_every_limit(client: Client, world: World, django_user_model) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-x")
    seen = _strip_prefix(targets_seen(client, root))
    assert seen == ACME_ALL | {"Organisation globex", "API key globex/sales/bot"}


def test_rows_show_labels_values_and_the_key_prefix_only(client: Client, world: World) -> None:
    rows = {(r["target"], r["kind"]): r for r in table(page(client, world.cast.alice))}

    team = rows[("acme/research", "Tokens per minute")]
    assert (team["scope"], team["limit"], team["burst"], team["soft"]) == (
        "Team", "100,000", "150,000", "80%"
    )  # fmt: skip
    key = rows[(f"acme/research/ci ({world.key.api_key.prefix}…)", "Requests per minute")]
    assert (key["scope"], key["limit"], key["burst"]) == ("API key", "10", "—")
    assert rows[("acme", "Spend per month (USD)")]["limit"] == "$500.00"
    assert rows[("demo → demo:demo", "Requests per minute")]["scope"] == "Deployment"
    assert rows[("carol", "Concurrent requests")]["scope"] == "User"


# -- who changes what -----------------------------------------------------------------------
def _manageable(client: Client, user: object) -> set[str]:
    return {
        f"{row['scope']} {row['target']}"
        for row in table(page(client, user))
        if "Change" in row["actions"]
    }


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", ACME_ALL - {"Deployment demo → demo:demo"}),  # deployments: operators only
        ("bob", {"API key acme/research/ci"}),
        ("carol", set()),
        ("dave", set()),
        ("eve", {"API key globex/sales/bot"}),
    ],
)
def test_change_and_delete_links_only_where_the_user_may_manage(
    client: Client, world: World, username: str, expected: set[str]
) -> None:
    assert _strip_prefix(_manageable(client, getattr(world.cast, username))) == expected


def _options(html: str) -> set[str]:
    select = re.search(r'<select name="target".*?</select>', html, re.S)
    return set(re.findall(r'<option value="([a-z]+:\d+)"', select.group(0))) if select else set()


def test_the_target_chooser_offers_only_what_the_user_may_manage(
    client: Client, world: World
) -> None:
    cast, key = world.cast, world.key.api_key
    deployment = world.limits["deployment"].scope_id
    alice = _options(page(client, cast.alice))
    assert {f"org:{cast.org.pk}", f"team:{cast.team.pk}", f"key:{key.pk}",
            f"user:{cast.carol.pk}"} <= alice  # fmt: skip
    assert f"deployment:{deployment}" not in alice  # gateway-wide: superusers only
    assert f"org:{cast.other_org.pk}" not in alice
    assert f"team:{cast.other_team.pk}" not in alice
    assert f"key:{world.sales_key.api_key.pk}" not in alice

    assert _options(page(client, cast.bob)) == {f"key:{key.pk}"}
    for reader in (cast.carol, cast.dave):
        html = page(client, reader)
        assert _options(html) == set()
        assert "Set a limit" not in html
        assert "You can read these limits" in html


def test_alice_sets_org_team_and_key_limits(client: Client, world: World) -> None:
    cast, key = world.cast, world.key.api_key
    client.force_login(cast.alice)

    for target, kind, value in [
        (f"org:{cast.org.pk}", "tokens_day", "5000000"),
        (f"team:{cast.team.pk}", "rpm", "300"),
        (f"key:{key.pk}", "rpm", "20"),
        (f"user:{cast.bob.pk}", "cost_day", "12.50"),
    ]:
        response = form_post(client, target, kind, value)
        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == PAGE

    assert Limit.objects.get(scope="org", scope_id=cast.org.pk, kind="tokens_day").value == 5000000
    assert Limit.objects.get(scope="team", scope_id=cast.team.pk, kind="rpm").value == 300
    assert Limit.objects.get(scope="key", scope_id=key.pk, kind="rpm").value == 20  # updated
    assert Limit.objects.filter(scope="key", scope_id=key.pk, kind="rpm").count() == 1
    assert Limit.objects.get(scope="user", scope_id=cast.bob.pk).value == Decimal("12.5")
    assert "Saved the limit: requests per minute on API key acme/research/ci" in (
        client.get(PAGE).content.decode()
    )


def test_bob_manages_his_team_keys_only(client: Client, world: World) -> None:
    cast, key = world.cast, world.key.api_key
    client.force_login(cast.bob)

    assert form_post(client, f"key:{key.pk}", "tpm", "5000").status_code == 302
    assert Limit.objects.filter(scope="key", scope_id=key.pk, kind="tpm").exists()

    for target in (f"team:{cast.team.pk}", f"org:{cast.org.pk}",
                   f"key:{world.sales_key.api_key.pk}"):  # fmt: skip
        response = form_post(client, target, "rpm", "1")
        assert response.status_code == 403, target
        assert "You may not change limits of" in response.content.decode()
    team_limit = world.limits["research"]
    assert client.get(f"/limits/{team_limit.pk}/edit/").status_code == 403
    assert client.post(f"/limits/{team_limit.pk}/delete/").status_code == 403
    assert Limit.objects.filter(pk=team_limit.pk).exists()
    assert client.get(f"/limits/{world.limits['ci'].pk}/edit/").status_code == 200


@pytest.mark.parametrize("username", ["carol", "dave"])
def test_readers_cannot_change_anything(client: Client, world: World, username: str) -> None:
    cast = world.cast
    client.force_login(getattr(cast, username))
    before = {(lim.pk, lim.value) for lim in Limit.objects.all()}

    assert form_post(client, f"key:{world.key.api_key.pk}", "rpm", "1").status_code == 403
    assert form_post(client, f"team:{cast.team.pk}", "rpm", "1").status_code == 403
    for name in ("research", "ci"):
        limit = world.limits[name]
        assert client.get(f"/limits/{limit.pk}/edit/").status_code == 403
        assert client.post(f"/limits/{limit.pk}/edit/", {"value": "1"}).status_code == 403
        assert client.get(f"/limits/{limit.pk}/delete/").status_code == 403
        assert client.post(f"/limits/{limit.pk}/delete/").status_code == 403
    assert {(lim.pk, lim.value) for lim in Limit.objects.all()} == before


def test_eve_sees_nothing_of_acme_and_cannot_touch_it(client: Client, world: World) -> None:
    cast = world.cast
    html = page(client, cast.eve)
    assert "acme" not in html.lower()

    for name in ("acme", "research", "ci", "deployment"):
        limit = world.limits[name]
        assert client.get(f"/limits/{limit.pk}/edit/").status_code == 404
        assert client.post(f"/limits/{limit.pk}/edit/", {"value": "1"}).status_code == 404
        assert client.get(f"/limits/{limit.pk}/delete/").status_code == 404
        assert client.post(f"/limits/{limit.pk}/delete/").status_code == 404
    response = form_post(client, f"team:{cast.team.pk}", "rpm", "1")
    assert response.status_code == 403
    assert "acme" not in response.content.decode().lower()  # no name of an unseen target
    assert form_post(client, f"org:{cast.org.pk}", "rpm", "1").status_code == 403
    assert Limit.objects.count() == len(world.limits)
    assert client.get("/limits/999999/edit/").status_code == 404


def test_edit_changes_the_numbers_and_delete_asks_first(client: Client, world: World) -> None:
    client.force_login(world.cast.alice)
    limit = world.limits["research"]

    form = client.get(f"/limits/{limit.pk}/edit/").content.decode()
    assert "Tokens per minute on team acme/research" in form
    assert 'value="100000"' in form and 'value="150000"' in form

    response = client.post(
        f"/limits/{limit.pk}/edit/",
        {"value": "200000", "burst": "", "soft_threshold_percent": "90"},
    )
    assert response.status_code == 302
    limit.refresh_from_db()
    # An unticked checkbox disables the limit.
    assert (limit.value, limit.burst, limit.soft_threshold_percent, limit.enabled) == (
        200000, None, 90, False
    )  # fmt: skip

    confirm = client.get(f"/limits/{limit.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete the limit" in confirm.content.decode()
    assert Limit.objects.filter(pk=limit.pk).exists()  # GET deletes nothing
    assert client.post(f"/limits/{limit.pk}/delete/").status_code == 302
    assert not Limit.objects.filter(pk=limit.pk).exists()


@pytest.mark.parametrize(
    ("kind", "value", "extra", "sentence"),
    [
        ("tpm", "1000", {"burst": "500"}, "The burst must be at least the limit (1000)."),
        ("rpm", "0", {}, "The limit must be greater than zero."),
        ("rpm", "2.5", {}, "The limit must be a whole number."),
        ("tokens_day", "10", {"burst": "20"}, "A burst applies only to per-minute limits"),
        ("rpm", "10", {"soft_threshold_percent": "120"}, "from 1 to 100."),
        ("rpm", "lots", {}, "The limit must be a number."),
        ("cost_day", "", {}, "Enter the limit."),
    ],
)
def test_invalid_limits_are_refused_in_plain_sentences(
    client: Client, world: World, kind: str, value: str, extra: dict, sentence: str
) -> None:
    client.force_login(world.cast.alice)
    response = form_post(client, f"team:{world.cast.team.pk}", kind, value, **extra)
    html = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in html
    assert sentence in html
    assert 'aria-invalid="true"' in html
    assert not Limit.objects.filter(scope="team", kind=kind, value=1000).exists()


def test_deployments_take_per_minute_limits_only(
    client: Client, world: World, django_user_model
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(root)
    target = f"deployment:{world.limits['deployment'].scope_id}"
    response = form_post(client, target, "tokens_day", "1000")
    assert response.status_code == 400
    assert "A deployment takes only per-minute limits" in response.content.decode()
    assert form_post(client, target, "tpm", "90000").status_code == 302


# -- live usage -----------------------------------------------------------------------------
def _take(world: World, limit_name: str, times: int, cost: float = 1.0, spend: float = 0) -> None:
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


def test_the_page_shows_live_remaining_after_some_usage(
    client: Client, world: World, backend: str
) -> None:
    _take(world, "ci", 3)  # rpm 10
    _take(world, "ci-day", 1, cost=1234)  # tokens per day
    _take(world, "research", 1, cost=40_000)  # tpm 100k, burst 150k

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
    _take(world, "acme", 1, cost=0, spend=12.345)

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
    _take(world, "ci", 4)
    client.force_login(world.cast.carol)
    html = client.get(USAGE).content.decode()
    cell = re.search(rf'id="usage-{world.limits["ci"].pk}"[^>]*>(.*?)</span>\s*</span>', html, re.S)
    assert cell is not None and "6 of 10 requests available now" in cell.group(1)


# -- alerts ---------------------------------------------------------------------------------
def test_open_alerts_are_listed_and_acknowledged_by_managers_only(
    client: Client, world: World
) -> None:
    alert = QuotaAlert.objects.create(
        limit=world.limits["ci-day"], period="2026-11-25", used=Decimal(850_000)
    )
    QuotaAlert.objects.create(limit=world.limits["globex"], period="2026-11", used=9_000_000)

    carol = page(client, world.cast.carol)
    assert "Open alerts" in carol and "2026-11-25" in carol and "850,000" in carol
    assert f"/limits/alerts/{alert.pk}/acknowledge/" not in carol
    assert "2026-11</" not in carol and "9,000,000" not in carol  # globex's alert
    assert client.post(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 403

    client.force_login(world.cast.eve)
    assert client.post(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 404

    for manager in (world.cast.bob, world.cast.alice):
        assert f"/limits/alerts/{alert.pk}/acknowledge/" in page(client, manager)
    response = client.post(f"/limits/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert "Open alerts" not in page(client, world.cast.alice)
    event = AuditEvent.objects.get(action="quota_alert.acknowledged")
    assert event.actor == world.cast.alice
    assert event.organisation_id == world.cast.org.pk
    assert client.get(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 405


# -- audit ----------------------------------------------------------------------------------
def test_set_change_and_delete_are_audited_with_before_and_after(
    client: Client, world: World
) -> None:
    client.force_login(world.cast.alice)
    AuditEvent.objects.all().delete()

    form_post(client, f"team:{world.cast.team.pk}", "rpm", "300")
    limit = Limit.objects.get(scope="team", kind="rpm")
    client.post(f"/limits/{limit.pk}/edit/", {"value": "400", "soft_threshold_percent": "75",
                                              "enabled": "on"})  # fmt: skip
    client.post(f"/limits/{limit.pk}/edit/", {"value": "400", "soft_threshold_percent": "75",
                                              "enabled": "on"})  # no change: no entry  # fmt: skip
    client.post(f"/limits/{limit.pk}/delete/")

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["limit.set", "limit.set", "limit.deleted"]
    created, changed, deleted = events
    assert created.actor == world.cast.alice
    assert created.target_label == "requests per minute on team acme/research"
    assert created.organisation_id == world.cast.org.pk
    assert created.details["before"] is None
    assert created.details["after"] == {
        "value": "300", "burst": None, "soft_threshold_percent": 80, "enabled": True
    }  # fmt: skip
    assert changed.details["before"]["value"] == "300"
    assert changed.details["after"] == {
        "value": "400", "burst": None, "soft_threshold_percent": 75, "enabled": True
    }  # fmt: skip
    assert deleted.target_id == str(limit.pk)
    assert deleted.details["before"]["value"] == "400"


def test_services_check_permissions_themselves(world: World) -> None:
    cast = world.cast
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.dave, scope="org", scope_id=cast.org.pk, kind="rpm", value=1)
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.bob, scope="team", scope_id=cast.team.pk, kind="rpm", value=1)
    with pytest.raises(PermissionDenied):
        limit_delete(actor=cast.eve, limit=world.limits["acme"])
    with pytest.raises(ValidationError) as error:
        limit_set(actor=cast.alice, scope="team", scope_id=cast.team.pk, kind="tpm", value=10,
                  burst=5)  # fmt: skip
    assert error.value.message_dict == {"burst": ["The burst must be at least the limit (10)."]}
    with pytest.raises(ValidationError):
        limit_set(actor=None, scope="team", scope_id=999_999, kind="rpm", value=1)


# -- query budget and secrets ---------------------------------------------------------------
def _grow(world: World, extra: int) -> None:
    from auth.models import Team, TeamMembership

    cast = world.cast
    for i in range(extra):
        team = Team.objects.create(organisation=cast.org, slug=f"t{i}", name=f"Team {i}")
        key = make_key(team, name=f"k{i}").api_key
        member = type(cast.carol).objects.create_user(f"user{i}", f"u{i}@example.test", "pw-x-1234")
        TeamMembership.objects.create(user=member, team=team)
        for scope, pk in (("team", team.pk), ("key", key.pk), ("user", member.pk)):
            limit_set(actor=None, scope=scope, scope_id=pk, kind="rpm", value=100 + i)
            limit_set(actor=None, scope=scope, scope_id=pk, kind="tokens_day", value=10_000)
        QuotaAlert.objects.create(
            limit=Limit.objects.get(scope="team", scope_id=team.pk, kind="tokens_day"),
            period="1999-12-31",
            used=9000,
        )


@pytest.mark.parametrize("extra", [0, 1, 8])
@pytest.mark.parametrize("username", ["alice", "dave", "carol"])
def test_page_query_count_does_not_grow(
    client: Client, world: World, django_assert_num_queries, extra: int, username: str
) -> None:
    _grow(world, extra)
    client.force_login(getattr(world.cast, username))

    with django_assert_num_queries(PAGE_QUERIES[username]):
        response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    if username != "carol":
        assert len(table(html)) == 6 + 6 * extra
        assert html.count("/acknowledge/") == (extra if username == "alice" else 0)
        assert html.count("in 1999-12-31") == extra
    with django_assert_num_queries(PAGE_QUERIES[username] - 1):
        assert client.get(USAGE).status_code == 200


@pytest.mark.parametrize("username", ["alice", "bob", "carol", "dave", "eve"])
def test_no_key_secret_or_hash_on_the_page(client: Client, world: World, username: str) -> None:
    client.force_login(getattr(world.cast, username))
    for url in (PAGE, USAGE):
        html = client.get(url).content.decode()
        for issued in (world.key, world.sales_key):
            assert issued.raw_key not in html
            assert issued.api_key.key_hash not in html


def test_deployment_limits_belong_to_gateway_operators_only(
    client: Client, world: World, django_user_model
) -> None:
    """Deployments serve every organisation: a platform admin of one organisation must not
    throttle the others' traffic. Only superusers (gateway operators) limit them."""
    from auth.models import OrgMembership, OrgRole

    cast = world.cast
    gina = django_user_model.objects.create_user("gina", "gina@example.test", "pw-gina-1234")
    OrgMembership.objects.create(user=gina, organisation=cast.other_org,
                                 role=OrgRole.PLATFORM_ADMIN)  # fmt: skip
    deployment = world.limits["deployment"]
    client.force_login(gina)

    assert form_post(client, f"deployment:{deployment.scope_id}", "tpm", "9000").status_code == 403
    assert form_post(client, f"team:{cast.team.pk}", "rpm", "1").status_code == 403
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(root)
    assert form_post(client, f"deployment:{deployment.scope_id}", "tpm", "9000").status_code == 302
    client.force_login(gina)
    assert client.get(f"/limits/{world.limits['research'].pk}/edit/").status_code == 404
    with pytest.raises(PermissionDenied):  # a team admin is not enough
        limit_set(actor=cast.eve, scope="deployment", scope_id=deployment.scope_id, kind="rpm",
                  value=1)  # fmt: skip
