"""The dashboard shell: sign in and out, the overview page scoped to the user, health check.

Uses the cast from tests/conftest.py: alice (platform admin of acme), bob (team admin of
acme/research), carol (member of acme/research), dave (auditor of acme), eve (team admin of
globex/sales, an outsider to acme).
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from auth.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

LOGIN_URL = "/login/"
DASHBOARD_URL = "/"
LOGOUT_URL = "/logout/"
# Queries for one dashboard page, whatever the number of teams: session, user, org roles,
# team roles, teams (with organisation and active-key count), routes of those teams,
# overdue credential rotations.
DASHBOARD_QUERIES = 7  # + overdue credential rotations (platform admins only)


def password_of(username: str) -> str:
    return f"pw-{username}-secret"  # how the cast fixture creates users


class _TableRows(HTMLParser):
    """Collects the text of each <td> cell, row by row, inside <tbody>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_tbody = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows.append([])
        elif tag == "td" and self._in_tbody:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def team_rows(html: str) -> list[dict[str, str]]:
    parser = _TableRows()
    parser.feed(html)
    columns = ("organisation", "team", "role", "routes", "active_keys")
    return [dict(zip(columns, row, strict=True)) for row in parser.rows]


def dashboard_html(client: Client, user: object) -> str:
    client.force_login(user)
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 200
    return response.content.decode()


# -- login page -----------------------------------------------------------------------------
def test_login_page_renders_labelled_fields_and_htmx(client: Client) -> None:
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    html = response.content.decode()
    for field, input_type in (("username", None), ("password", "password")):
        assert f'<label for="id_{field}">' in html
        tag = re.search(rf"<input[^>]*\bid=\"id_{field}\"[^>]*>", html)
        assert tag is not None, f"no input for {field}"
        assert f'name="{field}"' in tag.group(0)
        if input_type:
            assert f'type="{input_type}"' in tag.group(0)
    assert 'name="csrfmiddlewaretoken"' in html
    assert re.search(r'<script[^>]+src="/static/vendor/htmx/htmx\.min\.js"', html)


def test_wrong_password_shows_an_error_and_does_not_log_in(client: Client, cast) -> None:
    response = client.post(LOGIN_URL, {"username": "carol", "password": "not-her-password"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "didn't match" in html
    assert "_auth_user_id" not in client.session
    assert client.get(DASHBOARD_URL).status_code == 302


def test_unknown_user_gets_the_same_error(client: Client, cast) -> None:
    response = client.post(LOGIN_URL, {"username": "mallory", "password": "whatever-secret"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_correct_login_redirects_to_the_dashboard(client: Client, cast) -> None:
    response = client.post(LOGIN_URL, {"username": "carol", "password": password_of("carol")})

    assert response.status_code == 302
    assert response["Location"] == DASHBOARD_URL
    assert client.session["_auth_user_id"] == str(cast.carol.pk)
    assert client.get(DASHBOARD_URL).status_code == 200


def test_login_honours_a_local_next_and_refuses_an_external_one(client: Client, cast) -> None:
    credentials = {"username": "carol", "password": password_of("carol")}

    local = client.post(LOGIN_URL, {**credentials, "next": "/admin/"})
    assert local["Location"] == "/admin/"

    client.logout()
    external = client.post(LOGIN_URL, {**credentials, "next": "https://evil.example/"})
    assert external["Location"] == DASHBOARD_URL


def test_signed_in_user_visiting_login_goes_to_the_dashboard(client: Client, cast) -> None:
    client.force_login(cast.carol)

    response = client.get(LOGIN_URL)

    assert response.status_code == 302
    assert response["Location"] == DASHBOARD_URL


def test_anonymous_dashboard_redirects_to_login(client: Client) -> None:
    response = client.get(DASHBOARD_URL)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


# -- logout ---------------------------------------------------------------------------------
def test_logout_refuses_get(client: Client, cast) -> None:
    client.force_login(cast.carol)

    response = client.get(LOGOUT_URL)

    assert response.status_code == 405
    assert client.get(DASHBOARD_URL).status_code == 200  # still signed in


def test_logout_post_signs_out(client: Client, cast) -> None:
    client.force_login(cast.carol)

    response = client.post(LOGOUT_URL)

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert "_auth_user_id" not in client.session
    assert client.get(DASHBOARD_URL)["Location"] == "/login/?next=/"


def test_logout_needs_the_csrf_token(cast) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.carol)

    assert client.post(LOGOUT_URL).status_code == 403
    assert client.get(DASHBOARD_URL).status_code == 200  # still signed in


def test_dashboard_has_a_logout_form_not_a_link(client: Client, cast) -> None:
    html = dashboard_html(client, cast.carol)

    assert re.search(r'<form method="post" action="/logout/"', html)
    assert 'href="/logout/"' not in html


# -- dashboard scoping ----------------------------------------------------------------------
def test_member_sees_her_team_only(client: Client, cast) -> None:
    html = dashboard_html(client, cast.carol)

    assert team_rows(html) == [
        {"organisation": "Acme", "team": "Research", "role": "Member", "routes": "—",
         "active_keys": "0"},
    ]  # fmt: skip
    assert "Sales" not in html
    assert "Globex" not in html


def test_team_admin_sees_his_role(client: Client, cast) -> None:
    rows = team_rows(dashboard_html(client, cast.bob))

    assert [(r["team"], r["role"]) for r in rows] == [("Research", "Team admin")]


def test_outsider_sees_her_organisation_only(client: Client, cast) -> None:
    html = dashboard_html(client, cast.eve)

    assert [(r["organisation"], r["team"], r["role"]) for r in team_rows(html)] == [
        ("Globex", "Sales", "Team admin")
    ]
    assert "Research" not in html
    assert "Acme" not in html


def test_platform_admin_sees_every_team_of_her_organisation(client: Client, cast) -> None:
    from auth.models import Team

    Team.objects.create(organisation=cast.org, slug="ops", name="Operations")

    html = dashboard_html(client, cast.alice)

    assert [(r["organisation"], r["team"], r["role"]) for r in team_rows(html)] == [
        ("Acme", "Operations", "Platform admin"),
        ("Acme", "Research", "Platform admin"),
    ]
    assert "Sales" not in html


def test_auditor_sees_every_team_of_his_organisation(client: Client, cast) -> None:
    html = dashboard_html(client, cast.dave)

    assert [(r["team"], r["role"]) for r in team_rows(html)] == [("Research", "Auditor")]
    assert "Sales" not in html


def test_organisation_role_wins_over_team_role(client: Client, cast) -> None:
    from auth.models import TeamMembership, TeamRole

    TeamMembership.objects.create(user=cast.alice, team=cast.team, role=TeamRole.MEMBER)

    rows = team_rows(dashboard_html(client, cast.alice))

    assert [(r["team"], r["role"]) for r in rows] == [("Research", "Platform admin")]


def test_user_without_teams_gets_a_hint(client: Client, django_user_model) -> None:
    loner = django_user_model.objects.create_user("loner", "loner@example.test", "pw-loner-x")

    html = dashboard_html(client, loner)

    assert team_rows(html) == []
    assert "not a member of any team" in html


def test_dashboard_lists_routes_and_counts_only_active_keys(client: Client, cast) -> None:
    from aigateway.routing.models import Route

    cast.team.allowed_routes.set(
        [Route.objects.create(name="smart"), Route.objects.create(name="fast")]
    )
    api_key_create(team=cast.team, name="live")
    api_key_revoke(api_key=api_key_create(team=cast.team, name="revoked").api_key)
    api_key_create(team=cast.team, name="expired", expires_at=timezone.now() - timedelta(days=1))
    api_key_create(team=cast.team, name="later", expires_at=timezone.now() + timedelta(days=1))
    api_key_create(team=cast.other_team, name="not-ours")

    [row] = team_rows(dashboard_html(client, cast.carol))

    assert row["routes"] == "fast, smart"
    assert row["active_keys"] == "2"


@pytest.mark.parametrize("username", ["alice", "bob", "carol", "dave"])
def test_dashboard_never_shows_a_key_secret_or_hash(client: Client, cast, username) -> None:
    issued = api_key_create(team=cast.team, name="ci")

    html = dashboard_html(client, getattr(cast, username))

    assert issued.raw_key not in html
    assert issued.api_key.key_hash not in html
    assert team_rows(html)[0]["active_keys"] == "1"


# -- query budget ---------------------------------------------------------------------------
def _populate(cast, extra_teams: int) -> None:
    """Give acme more teams, each with routes, keys and a member, to expose any N+1."""
    from aigateway.routing.models import Route
    from auth.models import Team, TeamMembership

    routes = [Route.objects.create(name=f"route-{i}") for i in range(3)]
    cast.team.allowed_routes.set(routes)
    api_key_create(team=cast.team, name="k0")
    for i in range(extra_teams):
        team = Team.objects.create(organisation=cast.org, slug=f"t{i}", name=f"Team {i}")
        team.allowed_routes.set(routes[: i % 3 + 1])
        api_key_create(team=team, name=f"k{i}")
        api_key_create(team=team, name=f"k{i}-b")
        TeamMembership.objects.create(user=cast.alice, team=team)


@pytest.mark.parametrize("extra_teams", [0, 1, 8])
def test_dashboard_query_count_does_not_grow_with_teams(
    client: Client, cast, django_assert_max_num_queries, extra_teams: int
) -> None:
    _populate(cast, extra_teams)
    client.force_login(cast.alice)

    with django_assert_max_num_queries(DASHBOARD_QUERIES):
        response = client.get(DASHBOARD_URL)

    assert response.status_code == 200
    assert len(team_rows(response.content.decode())) == 1 + extra_teams


# -- health ---------------------------------------------------------------------------------
def test_healthz_needs_no_login_and_reveals_nothing(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_does_not_touch_the_database(client: Client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200


# -- the selector behind the page -----------------------------------------------------------
def test_summary_flags_platform_admins_only(cast, django_user_model) -> None:
    from django.contrib.auth.models import AnonymousUser

    from aigateway.web.selectors import dashboard_summary_for_user

    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-x")
    flags = {
        name: dashboard_summary_for_user(user=user).is_platform_admin
        for name, user in [("alice", cast.alice), ("bob", cast.bob), ("dave", cast.dave),
                           ("eve", cast.eve), ("root", root)]
    }  # fmt: skip
    assert flags == {"alice": True, "bob": False, "dave": False, "eve": False, "root": True}

    anonymous = dashboard_summary_for_user(user=AnonymousUser())
    assert anonymous.teams == []
    assert anonymous.is_platform_admin is False


def test_platform_admins_see_overdue_credential_rotations_and_members_do_not(client, cast):
    from datetime import timedelta

    from django.utils import timezone

    from providers.models import Credential, Provider, ProviderKind
    from providers.services import credential_create

    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    credential = credential_create(provider=provider, name="old", secret="sk-overdue-0000000000")
    Credential.objects.filter(pk=credential.pk).update(
        rotation_due_at=timezone.now() - timedelta(days=3)
    )
    client.force_login(cast.alice)
    page = client.get("/").content.decode()
    assert "Rotate credential" in page and "openai/old" in page and "sk-…0000" in page
    assert "sk-overdue-0000000000" not in page
    client.force_login(cast.carol)
    assert "Rotate credential" not in client.get("/").content.decode()


def test_sign_ins_and_failed_attempts_are_audited(client, cast):
    from aigateway.audit.models import AuditEvent

    client.post("/login/", {"username": "carol", "password": "wrong-password"})
    client.post("/login/", {"username": "carol", "password": "pw-carol-secret"})
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.target_label == "carol" and failed.actor is None
    assert "wrong-password" not in str(failed.details)
    ok = AuditEvent.objects.get(action="auth.login")
    assert ok.actor == cast.carol
