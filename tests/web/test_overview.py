"""The overview: usage charts per period (requests, tokens, cost, error rate, cache hit rate,
p50/p95 latency) scoped by role, the to-do list (overdue rotations, open breakers, quota
alerts), and the permission matrix of the page and its two htmx fragments."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.routing.models import Deployment
from aigateway.routing.services import breaker_force
from aigateway.usage.models import UsageRecord
from aigateway.usage.sql import UtcBucket, bucket_start
from aigateway.usage.timeseries import BIN_BOUNDS, python_bin, usage_timeseries
from tests.factories import make_provider, make_route
from tests.web.dashboard_support import ROLES, add_frank, client_for, usage

PAGE, METRICS, TODO = "/", "/overview/metrics/", "/overview/todo/"
HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(cast):
    """Calls of carol and bob in research, of eve in sales, and one key-only research call."""
    add_frank(cast)
    usage(team=cast.team, user=cast.carol, latency_ms=80)
    usage(team=cast.team, user=cast.bob, latency_ms=120, status_code=500)
    usage(team=cast.team, user=None, cache_status="HIT", latency_ms=2)
    usage(team=cast.other_team, user=cast.eve, input_tokens=1000)
    return cast


def _requests_tile(html: str) -> int:
    match = re.search(r"<dt>Requests</dt><dd>([\d,]+)</dd>", html)
    assert match, html[:500]
    return int(match.group(1).replace(",", ""))


# -- permissions --------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [PAGE, METRICS, TODO, METRICS + "?period=hour"])
def test_every_signed_in_role_may_open_the_overview_and_its_fragments(calls, role, url):
    for headers in ({}, HX):
        response = client_for(calls, role).get(url, **headers)
        if role == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith("/login/?next=")
        else:
            assert response.status_code == 200, (role, url)


@pytest.mark.parametrize(
    ("role", "expected"),
    [("alice", 3), ("dave", 3), ("bob", 3), ("carol", 1), ("frank", 1), ("eve", 1)],
)
def test_the_numbers_count_only_the_calls_the_role_may_see(calls, role, expected):
    """Org-wide roles: the organisation's calls; team admins: their team's; members: their
    own; the other organisation's admin: globex only."""
    html = client_for(calls, role).get(METRICS, **HX).content.decode()
    assert _requests_tile(html) == expected


def test_the_fragment_is_a_page_of_its_own_without_htmx_and_pushes_the_url_with_it(calls):
    client = client_for(calls, "alice")
    page = client.get(METRICS + "?period=month")
    assert b'<nav aria-label="Main">' in page.content
    fragment = client.get(METRICS + "?period=month", **HX)
    assert b'<nav aria-label="Main">' not in fragment.content
    assert fragment["HX-Push-Url"] == "/?period=month"


@pytest.mark.parametrize("url", [PAGE, METRICS])
def test_an_unknown_period_is_a_400_that_names_the_choices(calls, url):
    response = client_for(calls, "alice").get(url + "?period=year", **HX)
    assert response.status_code == 400
    assert "There is no period &#x27;year&#x27;" in response.content.decode()
    assert "&#x27;hour&#x27;" in response.content.decode()


# -- the series ---------------------------------------------------------------------------
def test_each_period_has_its_buckets_and_counts_only_its_time_range(cast):
    now = timezone.now()
    usage(team=cast.team, user=cast.carol, created_at=now - timedelta(minutes=5))
    usage(team=cast.team, user=cast.carol, created_at=now - timedelta(hours=3))
    usage(team=cast.team, user=cast.carol, created_at=now - timedelta(days=2))
    usage(team=cast.team, user=cast.carol, created_at=now - timedelta(days=40))
    totals = {}
    for period, buckets in (("hour", 60), ("day", 24), ("month", 30)):
        series = usage_timeseries(user=cast.alice, period=period, now=now)
        assert buckets <= len(series.buckets) <= buckets + 1
        assert sum(b.requests for b in series.buckets) == series.total.requests
        totals[period] = series.total.requests
    assert totals == {"hour": 1, "day": 2, "month": 3}


def test_rates_tokens_cost_and_latency_percentiles_are_computed_in_sql(cast):
    for ms in range(1, 101):  # 1..100 ms: p50 = 50, p95 = 95
        usage(team=cast.team, user=cast.carol, latency_ms=float(ms),
              status_code=429 if ms <= 10 else 200, cache_status="HIT" if ms > 75 else "MISS",
              cost_usd=Decimal("0.01"))  # fmt: skip
    total = usage_timeseries(user=cast.alice, period="hour").total
    assert total.requests == 100 and total.errors == 10
    assert total.error_rate == pytest.approx(10.0)
    assert total.cache_hit_rate == pytest.approx(25.0)
    assert total.tokens == 1500 and total.cost_usd == Decimal("1.00")
    assert total.p50_ms == pytest.approx(50, rel=0.12)
    assert total.p95_ms == pytest.approx(95, rel=0.12)


def test_the_sql_latency_bins_agree_with_their_bounds(cast):
    """The bisecting CASE puts every latency in the bin bisect_left names (edges included)."""
    values = [0.0, 0.5, 1.0, 1.0001, 1.25, 7.0, 99.3, 1000.0, BIN_BOUNDS[-1], 10**7]
    for v in values:
        usage(team=cast.team, latency_ms=v)
    series = usage_timeseries(user=cast.alice, period="hour")
    expected = [0] * (len(BIN_BOUNDS) + 1)
    for v in values:
        expected[python_bin(v)] += 1
    assert series.total.latency_bins == expected


def test_time_buckets_are_the_utc_text_prefix_in_plain_sql(cast):
    """No Python function per row on SQLite (Trunc would call one); the same text on
    PostgreSQL (TO_CHAR in UTC)."""
    usage(team=cast.team, created_at=datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC))
    expected = {"minute": "2026-03-04 05:06", "hour": "2026-03-04 05", "day": "2026-03-04"}
    for kind, text in expected.items():
        rows = UsageRecord.objects.annotate(b=UtcBucket("created_at", kind))
        assert list(rows.values_list("b", flat=True)) == [text]
    assert bucket_start("2026-03-04 05") == datetime(2026, 3, 4, 5, tzinfo=UTC)
    assert bucket_start("2026-03-04") == datetime(2026, 3, 4, tzinfo=UTC)
    with pytest.raises(ValueError):
        UtcBucket("created_at", "week")


def test_one_query_aggregates_the_series_however_many_calls(cast, django_assert_num_queries):
    UsageRecord.objects.bulk_create(
        UsageRecord(request_id=f"bulk-{i}", created_at=timezone.now() - timedelta(minutes=i % 50),
                    organisation_id=cast.org.pk, team_id=cast.team.pk, status_code=200,
                    latency_ms=float(i % 700))
        for i in range(500)
    )  # fmt: skip
    with django_assert_num_queries(3):  # roles (2) + the aggregate
        series = usage_timeseries(user=cast.alice, period="hour")
    assert series.total.requests == 500


def test_the_charts_have_their_data_and_a_table_as_text_alternative(calls):
    html = client_for(calls, "alice").get(METRICS, **HX).content.decode()
    data = json.loads(re.search(r'id="overview-series"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert sum(data["requests"]) == 3 and len(data["p95_ms"]) == len(data["labels"])
    for kind in ("requests", "tokens", "cost", "rates", "latency"):
        assert re.search(rf'<canvas data-chart="{kind}"[^>]*role="img"[^>]*aria-labelledby', html)
    assert '<caption id="overview-table-caption">' in html
    assert "The same numbers as a table" in html


def test_the_page_itself_stays_a_fixed_handful_of_queries(calls, django_assert_max_num_queries):
    client = client_for(calls, "alice")
    with django_assert_max_num_queries(7):
        response = client.get(PAGE)
    html = response.content.decode()
    assert 'hx-get="/overview/metrics/?period=day"' in html and 'hx-get="/overview/todo/"' in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html


# -- to-do --------------------------------------------------------------------------------
@pytest.fixture
def troubles(cast):
    add_frank(cast)
    provider = make_provider()
    route = make_route("smart", (provider, "demo-1"))
    deployment = Deployment.objects.get(route=route)
    breaker_force(deployment=deployment, mode="open", reason="maintenance")
    limit = Limit.objects.create(scope="team", scope_id=cast.team.pk, kind="cost_day",
                                 value=Decimal("10"))  # fmt: skip
    QuotaAlert.objects.create(limit=limit, period="2026-11-25", used=Decimal("9"))
    return cast


@pytest.mark.parametrize(
    ("role", "breaker", "alert"),
    [("alice", True, True), ("dave", True, True), ("bob", False, True), ("carol", False, True),
     ("frank", True, False)],
)  # fmt: skip
def test_the_todo_list_shows_what_the_role_may_see(troubles, role, breaker, alert):
    html = client_for(troubles, role).get(TODO, **HX).content.decode()
    assert ("Circuit breaker" in html) is breaker
    assert ("Quota alert" in html) is alert
    assert ("Nothing needs your attention" in html) is not (breaker or alert)


def test_an_empty_todo_list_says_so(cast):
    html = client_for(cast, "carol").get(TODO, **HX).content.decode()
    assert "Nothing needs your attention." in html
