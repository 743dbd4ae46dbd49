"""The Usage page: filters (team, user, route, provider, dates), the daily chart with its table,
totals by a dimension, calls paginated by cursor, and the streamed CSV with the same filters and
scoping, guarded against formula injection. Members see only their own calls, team admins
their team's, platform admins and auditors their organisation's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aigateway.usage import calls as calls_module
from tests.web.dashboard_support import ROLES, add_frank, client_for, streamed_csv, usage

PAGE, RESULTS, CALLS, EXPORT = "/usage/", "/usage/results/", "/usage/calls/", "/usage/export.csv"
HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(cast):
    add_frank(cast)
    usage(team=cast.team, user=cast.carol, request_id="req_carol", route="smart")
    usage(team=cast.team, user=cast.bob, request_id="req_bob", route="fast", provider="openai")
    usage(team=cast.other_team, user=cast.eve, request_id="req_eve")
    return cast


def _request_ids(html: str) -> set[str]:
    return set(re.findall(r"req_[a-z0-9_]+", html))


def _csv_ids(response) -> set[str]:
    rows = streamed_csv(response)
    return {row[1] for row in rows[1:]}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [PAGE, RESULTS, CALLS, EXPORT])
def test_every_signed_in_role_may_open_the_page_its_fragments_and_the_export(calls, role, url):
    response = client_for(calls, role).get(url, **HX)
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    else:
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("role", "expected"),
    [("alice", {"req_carol", "req_bob"}), ("dave", {"req_carol", "req_bob"}),
     ("bob", {"req_carol", "req_bob"}), ("carol", {"req_carol"}), ("frank", {"req_eve"}),
     ("eve", {"req_eve"})],
)  # fmt: skip
def test_page_fragments_and_csv_show_only_the_calls_the_role_may_see(calls, role, expected):
    client = client_for(calls, role)
    for url in (PAGE, RESULTS, CALLS):
        assert _request_ids(client.get(url, **HX).content.decode()) == expected, url
    assert _csv_ids(client.get(EXPORT)) == expected
    html = client.get(PAGE).content.decode()
    requests = re.search(r"<dt>Requests</dt><dd>([\d,]+)</dd>", html).group(1)
    assert int(requests) == len(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("route=fast", {"req_bob"}), ("provider=openai", {"req_bob"}), ("user=carol", {"req_carol"}),
     ("team={team}", {"req_carol", "req_bob"}), ("route=nope", set()),
     ("start={yesterday}&end={yesterday}", set()), ("start={today}&end={today}",
                                                    {"req_carol", "req_bob"})],
)  # fmt: skip
def test_filters_narrow_the_page_and_the_csv_alike(calls, query, expected):
    today = timezone.now().date()
    query = query.format(team=calls.team.pk, today=today, yesterday=today - timedelta(days=1))
    client = client_for(calls, "alice")
    assert _csv_ids(client.get(f"{EXPORT}?{query}")) == expected
    html = client.get(f"{PAGE}?{query}").content.decode()
    assert int(re.search(r"<dt>Requests</dt><dd>([\d,]+)</dd>", html).group(1)) == len(expected)
    assert f"/usage/export.csv?{query}".replace("&", "&amp;") in html


@pytest.mark.parametrize(
    ("role", "query", "sentence"),
    [("bob", "team={sales}", "Choose one of the teams you can see."),
     ("bob", "user=eve", "There is no user &#x27;eve&#x27; whose usage you can see."),
     ("carol", "user=bob", "There is no user &#x27;bob&#x27; whose usage you can see."),
     ("alice", "user=nobody", "There is no user &#x27;nobody&#x27;"),
     ("alice", "team=abc", "Choose one of the teams you can see."),
     ("alice", "start=2026-02-30", "Enter a date as YYYY-MM-DD."),
     ("alice", "start=2026-05-02&end=2026-05-01", "&#x27;From&#x27; must not be after"),
     ("alice", "start=2024-01-01&end=2026-01-01", "Choose at most 366 days"),
     ("alice", "end=9999-12-31", "Choose an earlier date."),
     ("alice", "end=0001-01-02", "Choose a later date."),
     ("alice", "start=0001-01-01&end=0001-01-01", None),
     ("alice", "cursor=abc", "This is not a cursor from a previous page."),
     ("alice", "cursor=999999999999999999.1", "This is not a cursor from a previous page."),
     ("alice", "group_by=secret", "Choose team, user, route or provider."),
     ("alice", "route=" + "x" * 201, "at most 200 characters")],
)  # fmt: skip
def test_bad_filters_are_a_400_with_a_sentence_everywhere(calls, role, query, sentence):
    query = query.format(sales=calls.other_team.pk)
    client = client_for(calls, role)
    for url in (PAGE, RESULTS, CALLS, EXPORT):
        if sentence is None:
            assert client.get(f"{url}?{query}", **HX).status_code == 200
            continue
        if "cursor" in query and url == EXPORT:
            continue  # the export ignores the page cursor's value (it is still validated)
        response = client.get(f"{url}?{query}", **HX)
        assert response.status_code == 400, (url, query)
        assert sentence in response.content.decode(), url
        assert response["Content-Type"].startswith("text/html")


def test_calls_are_paginated_by_cursor_without_gaps_or_repeats(cast):
    base = timezone.now() - timedelta(hours=1)
    for i in range(120):  # several calls share a timestamp: the id breaks ties
        usage(team=cast.team, user=cast.carol, request_id=f"req_p{i:03d}",
              created_at=base + timedelta(seconds=i // 3))  # fmt: skip
    client = client_for(cast, "alice")
    pages: list[list[str]] = []
    url = CALLS
    while url:
        html = client.get(url, **HX).content.decode()
        pages.append(re.findall(r"<code>(req_p\d+)</code>", html))
        match = re.search(r'hx-get="(/usage/calls/\?[^"]*cursor=[^"]+)"', html)
        url = match.group(1).replace("&amp;", "&") if match else ""
    assert [len(p) for p in pages] == [50, 50, 20]
    seen = [rid for page in pages for rid in page]
    assert seen == [f"req_p{i:03d}" for i in reversed(range(120))]


def test_the_csv_is_streamed_in_batches_and_cells_cannot_be_formulas(cast, monkeypatch):
    monkeypatch.setattr(calls_module, "EXPORT_BATCH", 2)
    for i, route in enumerate(['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "safe"]):
        usage(team=cast.team, user=cast.carol, request_id=f"req_{i}", route=route,
              created_at=timezone.now() - timedelta(seconds=i))  # fmt: skip
    response = client_for(cast, "alice").get(EXPORT)
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="aigateway-usage-')
    rows = streamed_csv(response)
    assert rows[0][:3] == ["time_utc", "request_id", "source"]
    routes = [row[6] for row in rows[1:]]
    assert routes == ['\'=HYPERLINK("http://x")', "'+1+1", "'-2", "'@SUM(A1)", "safe"]
    assert [row[3] for row in rows[1:]] == ["acme/research"] * 5
    assert [row[4] for row in rows[1:]] == ["carol"] * 5
    assert rows[1][12:15] == ["10", "5", "0.00100000"]  # numbers stay numbers


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_csv_streams_from_an_async_iterator(async_client, cast):
    await sync_to_async(usage)(team=cast.team, user=cast.carol, request_id="req_async")
    await sync_to_async(async_client.force_login)(cast.alice)
    response = await async_client.get(EXPORT)
    assert response.status_code == 200 and response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert "req_async" in body and body.startswith("time_utc,request_id")


def test_the_page_has_a_chart_with_a_table_and_a_fixed_query_count(
    calls, django_assert_max_num_queries
):
    for i in range(30):
        usage(team=calls.team, user=calls.carol, created_at=timezone.now() - timedelta(days=i))
    client = client_for(calls, "alice")
    with django_assert_max_num_queries(17):
        html = client.get(PAGE + "?group_by=user").content.decode()
    assert re.search(r'<canvas data-chart="daily"[^>]*role="img"', html)
    assert 'id="usage-daily"' in html and "Usage per day (UTC)" in html
    assert "Totals by user" in html and "carol" in html


def test_the_results_fragment_pushes_the_page_url(calls):
    response = client_for(calls, "alice").get(RESULTS + "?route=fast", **HX)
    assert response["HX-Push-Url"] == "/usage/?route=fast"
    assert b'<nav aria-label="Main">' not in response.content
