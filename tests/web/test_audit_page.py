"""The audit log page: who reads which events (the rules of aigateway.audit.search, as for the
management API), filters, cursor pagination, the htmx fragment, and one event in full — an
API call's decision trace from a real call through the gateway, an admin change side by side.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import openai
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from aigateway.audit.models import AuditEvent
from aigateway.audit.services import audit_record
from aigateway.audit.writer import audit_writer
from auth.models import OrgMembership, OrgRole
from providers.models import ProviderKind
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

PAGE, ROWS = "/audit/", "/audit/rows/"
HX = {"HTTP_HX_REQUEST": "true"}
UPSTREAM_KEY = "sk-audit-page-upstream-0000"
XSS = '<script>alert("x")</script>'


def _event(org, action: str = "team.updated", **kwargs) -> AuditEvent:
    kwargs.setdefault("target_type", "team")
    kwargs.setdefault("actor_label", "cli")
    return audit_record(action=action, organisation_id=getattr(org, "pk", None), **kwargs)


def _get(client: Client, user, url: str, **extra):
    client.force_login(user)
    return client.get(url, **extra)


def _detail_links(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/audit/(\d+)/"', html)]


@pytest.fixture
def events(cast) -> dict[str, AuditEvent]:
    return {
        "acme": _event(cast.org, target_label="acme-change", target_id="1"),
        "globex": _event(cast.other_org, target_label="globex-change", target_id="2"),
        "gateway": _event(None, action="breaker.open", target_label="gateway-wide"),
    }


# -- access ---------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("url", [PAGE, ROWS, "/audit/1/"])
def test_anonymous_users_are_sent_to_log_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_the_nav_links_to_the_page_and_marks_it_current(client: Client, cast, events) -> None:
    html = _get(client, cast.alice, PAGE).content.decode()
    assert re.search(r'<a href="/audit/"\s+aria-current="page">Audit log</a>', html)


@pytest.mark.parametrize("name", ["alice", "dave"])
def test_platform_admins_and_auditors_see_their_organisations_events_only(
    client: Client, cast, events, name: str
) -> None:
    user = getattr(cast, name)
    for url in (PAGE, ROWS):
        response = _get(client, user, url, **HX)
        assert response.status_code == 200
        html = response.content.decode()
        assert _detail_links(html) == [events["acme"].pk]
        assert "acme-change" in html and "Acme" in html
        assert "globex-change" not in html and "gateway-wide" not in html
    assert _get(client, user, f"/audit/{events['acme'].pk}/").status_code == 200
    for other in ("globex", "gateway"):
        assert _get(client, user, f"/audit/{events[other].pk}/").status_code == 404


@pytest.mark.parametrize("name", ["bob", "carol", "eve"])
def test_team_admins_members_and_outsiders_may_read_no_event(
    client: Client, cast, events, name: str
) -> None:
    user = getattr(cast, name)
    for url in (PAGE, ROWS, f"/audit/{events['acme'].pk}/", f"/audit/{events['globex'].pk}/"):
        response = _get(client, user, url, **HX)
        assert response.status_code == 403, url
        assert b"acme-change" not in response.content


def test_another_organisations_auditor_sees_neither_the_list_nor_the_id(
    client: Client, cast, events
) -> None:
    OrgMembership.objects.create(user=cast.eve, organisation=cast.other_org, role=OrgRole.AUDITOR)
    for url in (PAGE, ROWS):
        html = _get(client, cast.eve, url).content.decode()
        assert _detail_links(html) == [events["globex"].pk]
        assert "acme-change" not in html
    assert _get(client, cast.eve, f"/audit/{events['acme'].pk}/").status_code == 404
    assert _get(client, cast.eve, f"/audit/{events['globex'].pk}/").status_code == 200
    assert _get(client, cast.eve, "/audit/999999/").status_code == 404


def test_gateway_operators_see_every_event(client: Client, cast, events) -> None:
    root = get_user_model().objects.create_superuser("root", "root@example.test", "pw-root-x")
    html = _get(client, root, PAGE).content.decode()
    seen = set(_detail_links(html))  # creating root may be audited too
    assert seen >= {e.pk for e in events.values()}
    assert seen == set(AuditEvent.objects.values_list("pk", flat=True))
    assert _get(client, root, f"/audit/{events['gateway'].pk}/").status_code == 200


@pytest.mark.parametrize("role", [OrgRole.PLATFORM_ADMIN, OrgRole.AUDITOR])
def test_a_reader_of_every_organisation_also_sees_the_gateway_wide_events(
    client: Client, cast, events, role: str
) -> None:
    """alice (platform admin of acme) or dave (auditor of acme) given the same role in globex
    answers for every organisation: providers, routes and breakers are theirs to read too."""
    user = cast.alice if role == OrgRole.PLATFORM_ADMIN else cast.dave
    OrgMembership.objects.create(user=user, organisation=cast.other_org, role=role)
    html = _get(client, user, PAGE).content.decode()
    assert set(_detail_links(html)) >= {e.pk for e in events.values()}
    assert "gateway-wide" in html
    assert _get(client, user, f"/audit/{events['gateway'].pk}/").status_code == 200


# -- filters and pagination -----------------------------------------------------------------
def test_filters_narrow_the_table_on_the_page_and_in_the_fragment(
    client: Client, cast, events
) -> None:
    call = _event(cast.org, action="api.call", target_type="api_call", target_id="req_abc123",
                  actor_label="key agw-xyz", details={"request_id": "req_abc123", "status": 200,
                                                      "team_id": cast.team.pk})  # fmt: skip
    old = _event(cast.org, action="team.created", target_label="old-one")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=datetime(2020, 5, 17, 12, tzinfo=UTC))
    cases = {
        "action=api.call": [call.pk],
        "action=team.": [events["acme"].pk, old.pk],
        "actor=key+agw-xyz": [call.pk],
        "request_id=req_abc123": [call.pk],
        "since=2020-05-17&until=2020-05-17": [old.pk],
        "until=2020-05-16": [],
    }
    for query, expected in cases.items():
        for url in (PAGE, ROWS):
            response = _get(client, cast.dave, f"{url}?{query}", **HX)
            assert response.status_code == 200
            assert sorted(_detail_links(response.content.decode())) == sorted(expected), query
    row = _get(client, cast.dave, f"{ROWS}?request_id=req_abc123").content.decode()
    assert "Acme / Research" in row and "req_abc123" in row and "key agw-xyz" in row


@pytest.mark.parametrize(
    "query", ["since=yesterday", "cursor=abc", "cursor=-1", "cursor=²", "action=" + "x" * 101]
)
def test_bad_filters_are_a_400_with_a_reason_not_a_500(client: Client, cast, query: str) -> None:
    for url in (PAGE, ROWS):
        response = _get(client, cast.alice, f"{url}?{query}")
        assert response.status_code == 400
        assert b"These filters cannot be applied" in response.content


def test_pages_follow_each_other_without_repeats_in_a_fixed_number_of_queries(
    client: Client, cast, django_assert_num_queries
) -> None:
    created = [_event(cast.org, target_label=f"change {i}", details={"team_id": cast.team.pk})
               for i in range(120)]  # fmt: skip
    seen: list[int] = []
    url, pages = PAGE, 0
    while url:
        client.force_login(cast.alice)
        # session, user, roles (2) to check access, roles (2) and "any organisation she does
        # not read?" in the search, the page of events, organisation names, team names: the
        # same for 50 rows as for one.
        with django_assert_num_queries(10):
            html = client.get(url, **HX).content.decode()
        seen += _detail_links(html)
        older = re.search(r'hx-get="(/audit/rows/\?[^"]*cursor=\d+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
        pages += 1
    assert pages == 3
    assert seen == [e.pk for e in reversed(created)]  # newest first, each exactly once


def test_pagination_keeps_the_filters(client: Client, cast) -> None:
    for i in range(120):
        _event(cast.org, action="team.updated" if i % 2 else "key.created")
    html = _get(client, cast.alice, f"{PAGE}?action=team.updated").content.decode()
    older = re.search(r'href="(/audit/\?[^"]*)" hx-get', html)
    assert older and "action=team.updated" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&")).content.decode()
    pks = _detail_links(html) + _detail_links(second)
    assert len(pks) == len(set(pks)) == 60
    assert set(AuditEvent.objects.filter(pk__in=pks).values_list("action", flat=True)) == {
        "team.updated"
    }


# -- one event ------------------------------------------------------------------------------
def test_an_admin_change_shows_before_and_after_side_by_side(client: Client, cast) -> None:
    event = _event(cast.org, details={"before": {"name": "Research", "slug": "research"},
                                      "after": {"name": "R&D", "slug": "research"},
                                      "changed": ["name"]})  # fmt: skip
    html = _get(client, cast.alice, f"/audit/{event.pk}/").content.decode()
    row = re.search(r'<tr class="changed"><th scope="row">name.*?</tr>', html, re.S)
    assert row and "<td>Research</td><td>R&amp;D</td>" in row.group(0)
    assert re.search(r'<tr><th scope="row">slug</th><td>research</td><td>research</td></tr>', html)


def test_an_odd_trace_still_renders(client: Client, cast) -> None:
    trace = {"stages": "nope", "attempts": [1, {"outcome": 5, "duration_ms": "x"}], "cache": 3}
    event = _event(cast.org, action="api.call", target_type="api_call", details={"trace": trace})
    response = _get(client, cast.alice, f"/audit/{event.pk}/")
    assert response.status_code == 200
    assert b"Decision trace" in response.content and b"attempt 1" in response.content


def test_data_in_an_entry_is_escaped_everywhere(client: Client, cast) -> None:
    cast.team.name = XSS
    cast.team.save()
    event = _event(cast.org, action="api.call", target_type="api_call", target_id="req_x",
                   target_label=XSS, details={"route": XSS, "team_id": cast.team.pk,
                   "before": {XSS: XSS}, "trace": {"stages": [{"name": XSS}],
                   "attempts": [{"provider": XSS, "outcome": XSS}]}})  # fmt: skip
    for url in (PAGE, ROWS, f"/audit/{event.pk}/"):
        html = _get(client, cast.alice, url).content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert(" in html, url


@pytest.fixture
def upstream():
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


def test_a_real_api_call_shows_its_decision_trace(client: Client, cast, upstream, live_gateway):
    provider = make_provider("fake", ProviderKind.OPENAI, upstream.openai_base_url, UPSTREAM_KEY)
    route = make_route("gpt-page", (provider, "gpt-4o-mini"))
    issued = make_key(cast.team, route)
    sdk = openai.OpenAI(base_url=live_gateway.openai_base_url, api_key=issued.raw_key,
                        max_retries=0, timeout=10)  # fmt: skip
    with sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-page", messages=[{"role": "user", "content": "hello"}]
        )
    request_id = raw.headers["x-request-id"]
    assert audit_writer.flush() == 1
    event = AuditEvent.objects.get(action="api.call", target_id=request_id)
    served = event.details["trace"]["served_by"]

    listing = _get(client, cast.dave, f"{PAGE}?request_id={request_id}").content.decode()
    assert _detail_links(listing) == [event.pk] and "200" in listing and "Research" in listing
    html = client.get(f"/audit/{event.pk}/").content.decode()
    deployment = route.deployments.get()
    assert f"#{deployment.pk} gpt-page → fake:gpt-4o-mini" in html  # the deployment's name
    assert re.search(r"<td>limits</td><td class=\"num\">-?[\d.]+ ms</td>", html)  # a stage
    assert "attempt 1" in html and "<td>ok</td>" in html
    assert served["credential_fingerprint"] in html
    assert UPSTREAM_KEY not in html and issued.raw_key not in html
    assert event.created_at > datetime.now(UTC) - timedelta(minutes=5)
