"""The Cache page: who sees which teams, the figures from usage records, entries per team
namespace (in process and Redis), audited purges for platform admins only, query budget."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from aigateway.caching.selectors import (
    EntryCount,
    cache_entries_per_team,
    cache_overview_for_user,
)
from aigateway.caching.services import cache_purge_team
from aigateway.caching.store import PREFIX, answer_store
from aigateway.usage.models import UsageRecord

pytestmark = pytest.mark.django_db
PAGE = "/cache/"


def _record(team, route: str, status: str, *, age: timedelta, tokens: int = 0, cost: str = "0"):
    return UsageRecord.objects.create(
        request_id=uuid.uuid4().hex,
        created_at=timezone.now() - age,
        organisation_id=team.organisation_id,
        team_id=team.pk,
        route=route,
        status_code=200,
        cache_status=status,
        saved_tokens=tokens,
        saved_cost_usd=Decimal(cost),
    )


def _put(*keys: str) -> None:
    async def put() -> None:
        for key in keys:
            await answer_store().set(key, b"{}", 600)

    async_to_sync(put)()


def _exists(key: str) -> bool:
    async def get() -> bytes | None:
        return await answer_store().get(key)

    return async_to_sync(get)() is not None


def _key(scope: str, owner: int, route: str, n: int = 0) -> str:
    return f"{PREFIX}x:{scope}:{owner}:{route}:{n:064x}"


def _sections(html: str) -> set[str]:
    return set(re.findall(r'<section class="cache-team" id="team-(\d+)">', html))


def _superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")


# -- visibility -----------------------------------------------------------------------------
def test_anonymous_users_are_sent_to_log_in(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_each_role_sees_its_teams_and_only_platform_admins_may_purge(
    client: Client, cast, django_user_model
) -> None:
    research, sales = str(cast.team.pk), str(cast.other_team.pk)
    expected = {
        cast.alice: ({research}, True),
        cast.dave: ({research}, False),
        cast.bob: ({research}, False),
        cast.carol: ({research}, False),
        cast.eve: ({sales}, False),
        _superuser(django_user_model): ({research, sales}, True),
    }
    for user, (teams, purge) in expected.items():
        client.force_login(user)
        response = client.get(PAGE)
        assert response.status_code == 200, user
        html = response.content.decode()
        assert _sections(html) == teams, user
        assert ("Purge…" in html) is purge, user
        assert 'aria-current="page">Cache</a>' in html


def test_a_user_without_any_team_gets_403(client: Client, cast, django_user_model) -> None:
    client.force_login(django_user_model.objects.create_user("nobody", "n@example.test", "pw-n-1"))
    assert client.get(PAGE).status_code == 403


# -- figures --------------------------------------------------------------------------------
def test_figures_per_team_and_route_over_24_hours_and_7_days(client: Client, cast) -> None:
    research, hour = cast.team, timedelta(hours=1)
    days3, days10 = timedelta(days=3), timedelta(days=10)
    _record(research, "smart", "HIT", age=hour, tokens=100, cost="0.01")
    _record(research, "smart", "HIT", age=hour, tokens=100, cost="0.01")
    _record(research, "smart", "SEMANTIC-HIT", age=hour, tokens=50, cost="0.005")
    _record(research, "smart", "MISS", age=hour)
    _record(research, "fast", "BYPASS", age=hour)
    _record(research, "smart", "HIT", age=days3, tokens=30, cost="0.003")
    for _ in range(3):
        _record(research, "smart", "MISS", age=days3)
    for _ in range(5):
        _record(research, "smart", "HIT", age=days10, tokens=999, cost="9")  # too old
    _record(cast.other_team, "smart", "HIT", age=hour, tokens=777, cost="7")  # another org

    overview = cache_overview_for_user(user=cast.alice)
    [row] = overview.teams
    assert row.team == research and row.can_purge
    assert (row.day.requests, row.day.exact_hits, row.day.semantic_hits) == (5, 2, 1)
    assert row.day.exact_hit_percent == 40.0 and row.day.semantic_hit_percent == 20.0
    assert row.day.saved_tokens == 250 and row.day.saved_cost_usd == Decimal("0.025")
    assert (row.week.requests, row.week.exact_hits, row.week.saved_tokens) == (9, 3, 280)
    assert row.week.saved_cost_usd == Decimal("0.028")
    fast, smart = row.routes
    assert (fast.route, fast.day.requests, fast.day.exact_hit_percent) == ("fast", 1, 0.0)
    assert (smart.route, smart.day.requests, smart.week.requests) == ("smart", 4, 8)
    assert smart.day.exact_hit_percent == 50.0 and smart.day.semantic_hit_percent == 25.0
    assert smart.week.exact_hit_percent == 37.5 and smart.week.semantic_hit_percent == 12.5

    client.force_login(cast.dave)
    html = client.get(PAGE).content.decode()
    for text in ("40.0 %", "20.0 %", "50.0 %", "37.5 %", "12.5 %", "$0.0250", "$0.0280", "280"):
        assert text in html
    assert "777" not in html and "$7.0000" not in html


# -- entries --------------------------------------------------------------------------------
def test_entries_are_counted_per_team_namespace(backend: str, cast) -> None:
    research, sales = cast.team.pk, cast.other_team.pk
    _put(
        _key("team", research, "smart", 1),
        _key("team", research, "smart", 2),
        _key("team", research, "fast", 3),
        _key("team", sales, "smart", 4),
        _key("org", cast.org.pk, "smart", 5),
        _key("team", int(f"{research}0"), "smart", 6),  # team 10 is not team 1
    )
    counts = cache_entries_per_team([research, sales])
    assert counts == {research: EntryCount(3), sales: EntryCount(1)}
    bounded = cache_entries_per_team([research], limit=2)
    assert bounded == {research: EntryCount(2, truncated=True)}
    assert str(bounded[research]) == "2+" and str(EntryCount(10_000, True)) == "10,000+"


def test_the_page_shows_entries(client: Client, backend: str, cast) -> None:
    _put(*(_key("team", cast.team.pk, "smart", n) for n in range(3)))
    client.force_login(cast.carol)
    assert '<strong class="entries">3</strong>' in client.get(PAGE).content.decode()


# -- purge ----------------------------------------------------------------------------------
def test_a_platform_admin_purges_one_route_then_the_team_audited(
    client: Client, backend: str, cast
) -> None:
    research, sales = cast.team.pk, cast.other_team.pk
    smart = [_key("team", research, "smart", n) for n in range(2)]
    fast, other, org = (
        _key("team", research, "fast"),
        _key("team", sales, "smart"),
        _key("org", cast.org.pk, "smart"),
    )
    _put(*smart, fast, other, org)
    url = f"/cache/teams/{research}/purge/"
    client.force_login(cast.alice)

    client.post(url, {"route": "smart"})  # not confirmed: nothing happens
    assert (
        all(_exists(k) for k in smart)
        and not AuditEvent.objects.exclude(action__startswith="auth.").exists()
    )

    response = client.post(url, {"route": "smart", "confirm": "yes"}, follow=True)
    assert "Purged 2 cached answer(s)" in response.content.decode()
    assert not any(_exists(k) for k in smart) and _exists(fast)
    event = AuditEvent.objects.get(action="cache.purged")
    assert event.actor == cast.alice and event.organisation_id == cast.org.pk
    assert (event.target_type, event.target_id) == ("team", str(research))
    assert event.details == {"scope": "team", "route": "smart", "count": 2}

    client.post(url, {"confirm": "yes"})
    assert not _exists(fast)
    assert _exists(other) and _exists(org)  # another team's, and org-scoped entries stay
    latest = AuditEvent.objects.filter(action="cache.purged").order_by("-pk").first()
    assert latest is not None and latest.details == {"scope": "team", "route": "", "count": 1}


def test_readers_cannot_purge_and_outsiders_get_404(client: Client, cast) -> None:
    key = _key("team", cast.team.pk, "smart")
    _put(key)
    url = f"/cache/teams/{cast.team.pk}/purge/"
    for user in (cast.bob, cast.carol, cast.dave):
        client.force_login(user)
        assert client.post(url, {"confirm": "yes"}).status_code == 403
    client.force_login(cast.eve)
    assert client.post(url, {"confirm": "yes"}).status_code == 404
    client.force_login(cast.alice)  # alice administers acme, not globex
    other = f"/cache/teams/{cast.other_team.pk}/purge/"
    assert client.post(other, {"confirm": "yes"}).status_code == 404
    assert client.get(url).status_code == 405
    assert _exists(key) and not AuditEvent.objects.exclude(action__startswith="auth.").exists()
    with pytest.raises(PermissionDenied):
        cache_purge_team(actor=cast.carol, team=cast.team)


def test_a_route_with_glob_characters_is_refused(client: Client, cast) -> None:
    key = _key("team", cast.team.pk, "smart")
    _put(key)
    client.force_login(cast.alice)
    response = client.post(
        f"/cache/teams/{cast.team.pk}/purge/", {"route": "*", "confirm": "yes"}, follow=True
    )
    assert "not a route name" in response.content.decode()
    assert _exists(key) and not AuditEvent.objects.exclude(action__startswith="auth.").exists()


def test_a_superuser_purges_any_team(client: Client, cast, django_user_model) -> None:
    key = _key("team", cast.other_team.pk, "smart")
    _put(key)
    client.force_login(_superuser(django_user_model))
    client.post(f"/cache/teams/{cast.other_team.pk}/purge/", {"confirm": "yes"})
    assert not _exists(key)
    assert AuditEvent.objects.get(action="cache.purged").organisation_id == cast.other_org.pk


# -- query budget ---------------------------------------------------------------------------
# session, user, org memberships, team memberships, teams, one aggregate per window
PAGE_QUERIES = {"alice": 7, "dave": 7, "carol": 7}


@pytest.mark.parametrize("extra", [0, 6])
@pytest.mark.parametrize("username", sorted(PAGE_QUERIES))
def test_page_query_count_does_not_grow(
    client: Client, cast, django_assert_num_queries, extra: int, username: str
) -> None:
    from auth.models import Team, TeamMembership

    for i in range(extra):
        team = Team.objects.create(organisation=cast.org, slug=f"t{i}", name=f"Team {i}")
        TeamMembership.objects.create(user=cast.carol, team=team)
        for route in ("smart", "fast", f"r{i}"):
            _record(team, route, "HIT", age=timedelta(hours=2), tokens=10)
            _record(team, route, "MISS", age=timedelta(days=2))
    _record(cast.team, "smart", "HIT", age=timedelta(hours=2))
    client.force_login(getattr(cast, username))
    with django_assert_num_queries(PAGE_QUERIES[username]):
        response = client.get(PAGE)
    assert response.status_code == 200
    assert len(_sections(response.content.decode())) == 1 + extra
