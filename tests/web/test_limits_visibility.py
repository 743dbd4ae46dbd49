"""The Limits page, what each user sees: access, the limits each member of the cast sees and
may change, the target chooser, the query budget of the page, and no secrets on it.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.quotas.services import limit_set
from tests.factories import make_key
from tests.web.limits_support import PAGE, USAGE, World, page, table, targets_seen

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limiter")]

# Queries for the page, whatever the number of limits, teams, keys, users and alerts: session,
# user, org roles, team roles, organisations, teams, keys, users through org roles, users
# through teams, deployments, limits, open alerts. Members (no organisation-wide role) skip the
# organisations, the users and the deployments. The fragment skips the alerts.
PAGE_QUERIES = {"alice": 12, "dave": 12, "carol": 8}


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
