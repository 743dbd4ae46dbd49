"""Teams & keys: creating teams, members and roles, keys shown once and revoked, per-team
limits with live usage; validation errors as 400s with a sentence; who may do what
(anonymous, platform admin, team admin, member, auditor, other organisation's admin) for every
page, form and fragment; and that guessing another team's ids reveals nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from aigateway.quotas.models import Limit
from aigateway.routing.models import Route
from auth.keys import hash_api_key
from auth.models import ApiKey, Team, TeamMembership
from auth.services import api_key_create
from tests.web.dashboard_support import ROLES, add_frank, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cast):
    add_frank(cast)
    cast.smart, cast.fast = Route.objects.create(name="smart"), Route.objects.create(name="fast")
    cast.team.allowed_routes.set([cast.smart, cast.fast])
    cast.key = api_key_create(team=cast.team, name="ci").api_key
    cast.sales_key = api_key_create(team=cast.other_team, name="sales-ci").api_key
    return cast


def _urls(team: Team, key: ApiKey, user_id: int) -> dict[str, str]:
    t = f"/teams/{team.pk}"
    return {
        "detail": f"{t}/", "limits": f"{t}/limits/", "edit": f"{t}/edit/",
        "delete": f"{t}/delete/", "add": f"{t}/members/",
        "role": f"{t}/members/{user_id}/role/", "remove": f"{t}/members/{user_id}/remove/",
        "issue": f"{t}/keys/", "revoke": f"{t}/keys/{key.pk}/revoke/",
    }  # fmt: skip


POSTS = {
    "edit": {"team-name": "Research 2", "team-slug": "research", "team-allowed_routes": ["smart"]},
    "delete": {},
    "add": {"member-username": "dave", "member-role": "member"},
    "role": {"role": "team_admin"},
    "remove": {},
    "issue": {"key-name": "new-key"},
    "revoke": {},
}
# Expected status per role for the research team (frank: another organisation → 404).
EXPECTED = {
    ("GET", "detail"): {"alice": 200, "bob": 200, "carol": 200, "dave": 200, "frank": 404},
    ("GET", "limits"): {"alice": 200, "bob": 200, "carol": 200, "dave": 200, "frank": 404},
    ("GET", "delete"): {"alice": 200, "bob": 403, "carol": 403, "dave": 403, "frank": 404},
    ("GET", "revoke"): {"alice": 200, "bob": 200, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "edit"): {"alice": 302, "bob": 403, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "delete"): {"alice": 302, "bob": 403, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "add"): {"alice": 302, "bob": 302, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "role"): {"alice": 302, "bob": 302, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "remove"): {"alice": 302, "bob": 302, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "issue"): {"alice": 201, "bob": 201, "carol": 403, "dave": 403, "frank": 404},
    ("POST", "revoke"): {"alice": 302, "bob": 302, "carol": 403, "dave": 403, "frank": 404},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name"), list(EXPECTED))
def test_permission_matrix_of_every_team_view(world, role, method, name):
    url = _urls(world.team, world.key, world.carol.pk)[name]
    client = client_for(world, role)
    response = client.get(url) if method == "GET" else client.post(url, POSTS[name])
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        return
    assert response.status_code == EXPECTED[(method, name)][role], (role, method, name)
    if response.status_code == 403:
        assert "Only" in response.content.decode()  # the page says why
    if response.status_code in (403, 404):
        assert ApiKey.objects.filter(team=world.team).count() == 1
        assert Team.objects.get(pk=world.team.pk).name == "Research"


@pytest.mark.parametrize("role", ROLES)
def test_the_team_list_shows_each_role_its_teams(world, role):
    response = client_for(world, role).get("/teams/")
    if role == "anonymous":
        assert response.status_code == 302
        return
    html = response.content.decode()
    assert response.status_code == 200
    assert ("Research" in html) is (role != "frank")
    assert ("Sales" in html) is (role == "frank")
    assert ("Create a team" in html) is (role in ("alice", "frank"))


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 302), ("bob", 403), ("carol", 403), ("dave", 403)]
)
def test_only_platform_admins_create_teams(world, role, status):
    data = {"team-organisation": "acme", "team-name": "Ops", "team-slug": "ops"}
    assert client_for(world, role).post("/teams/", data).status_code == status
    assert not Team.objects.filter(slug="ops").exists()


def test_another_organisations_admin_cannot_create_a_team_in_acme(world):
    data = {"team-organisation": "acme", "team-name": "Ops", "team-slug": "ops"}
    response = client_for(world, "frank").post("/teams/", data)
    assert response.status_code == 400
    assert "Choose an organisation you administer." in response.content.decode()
    assert not Team.objects.filter(slug="ops").exists()


# -- flows ----------------------------------------------------------------------------------
def test_alice_creates_a_team_adds_carol_and_changes_her_role(world):
    client = client_for(world, "alice")
    data = {"team-organisation": "acme", "team-name": "Operations", "team-slug": "ops",
            "team-allowed_routes": ["fast"]}  # fmt: skip
    response = client.post("/teams/", data)
    ops = Team.objects.get(organisation=world.org, slug="ops")
    assert response.status_code == 302 and response["Location"] == f"/teams/{ops.pk}/"
    assert list(ops.allowed_routes.values_list("name", flat=True)) == ["fast"]
    page = client.get(response["Location"]).content.decode()
    assert "Created the team Operations." in page

    added = client.post(f"/teams/{ops.pk}/members/", {"member-username": "carol",
                                                      "member-role": "member"})  # fmt: skip
    assert added.status_code == 302
    assert "Added carol as Member." in client.get(added["Location"]).content.decode()
    client.post(f"/teams/{ops.pk}/members/{world.carol.pk}/role/", {"role": "team_admin"})
    assert TeamMembership.objects.get(team=ops, user=world.carol).role == "team_admin"
    client.post(f"/teams/{ops.pk}/members/{world.carol.pk}/remove/")
    assert not TeamMembership.objects.filter(team=ops, user=world.carol).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"team.created", "team_member.added", "team_member.role_changed",
            "team_member.removed"} <= actions  # fmt: skip


def test_a_new_key_is_shown_once_and_the_database_keeps_only_its_hash(world):
    client = client_for(world, "bob")
    url = f"/teams/{world.team.pk}/"
    response = client.post(url + "keys/", {"key-name": "notebook", "key-allowed_routes": ["smart"],
                                           "key-expires_on": "2099-12-31"})  # fmt: skip
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    raw = re.search(r'id="new-key-secret"[^>]*value="(agw-[^"]+)"', html).group(1)
    key = ApiKey.objects.get(team=world.team, name="notebook")
    assert key.key_hash == hash_api_key(raw) and raw.startswith(key.prefix)
    assert key.expires_at.isoformat().startswith("2100-01-01T00:00:00")
    assert [r.name for r in key.allowed_routes.all()] == ["smart"]
    stored = [str(v) for v in ApiKey.objects.filter(pk=key.pk).values().first().values()]
    assert raw not in stored
    again = client.get(url).content.decode()
    assert raw not in again and f"{key.prefix}…" in again
    assert raw not in str(AuditEvent.objects.get(action="api_key.created").details)


def test_revoking_asks_first_then_stops_the_key(world):
    client = client_for(world, "bob")
    url = f"/teams/{world.team.pk}/keys/{world.key.pk}/revoke/"
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Revoke the key ci?" in confirm.content.decode()
    assert ApiKey.objects.get(pk=world.key.pk).revoked_at is None
    done = client.post(url)
    assert done.status_code == 302
    world.key.refresh_from_db()
    assert world.key.revoked_at is not None and not world.key.is_active()
    page = client.get(done["Location"]).content.decode()
    assert "Revoked the key ci" in page and "revoked" in page
    assert client.post(url).status_code == 302  # revoking again changes nothing


def test_platform_admin_renames_and_deletes_a_team(world):
    client = client_for(world, "alice")
    url = f"/teams/{world.team.pk}/"
    renamed = client.post(url + "edit/", {"team-name": "Research & Dev", "team-slug": "rnd"})
    assert renamed.status_code == 302
    world.team.refresh_from_db()
    assert (world.team.name, world.team.slug) == ("Research & Dev", "rnd")
    assert client.get(url + "delete/").status_code == 200
    assert client.post(url + "delete/")["Location"] == "/teams/"
    assert not Team.objects.filter(pk=world.team.pk).exists()
    assert not ApiKey.objects.filter(pk=world.key.pk).exists()


def test_members_get_a_read_only_view_of_their_own_team(world):
    html = client_for(world, "carol").get(f"/teams/{world.team.pk}/").content.decode()
    assert "(read-only)" in html and "carol" in html and f"{world.key.prefix}…" in html
    for form in ("Add member", "Issue key", "Save settings", "Revoke", "Remove"):
        assert form not in html


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "data", "sentence"),
    [
        ("/teams/", {"team-organisation": "acme", "team-name": "Dup", "team-slug": "research"},
         "The organisation already has a team &#x27;research&#x27;."),
        ("/teams/", {"team-organisation": "acme", "team-name": "Bad", "team-slug": "no spaces"},
         "The slug must be 1 to 50 letters"),
        ("/teams/", {"team-organisation": "acme", "team-name": "", "team-slug": "x"},
         "Enter the team&#x27;s name."),
        ("/teams/", {"team-organisation": "acme", "team-name": "R", "team-slug": "r",
                     "team-allowed_routes": ["nope"]}, "There is no route &#x27;nope&#x27;."),
        ("{t}members/", {"member-username": "mallory", "member-role": "member"},
         "There is no user &#x27;mallory&#x27; you can add."),
        ("{t}members/", {"member-username": "eve", "member-role": "member"},
         "There is no user &#x27;eve&#x27; you can add."),
        ("{t}members/", {"member-username": "carol", "member-role": "member"},
         "&#x27;carol&#x27; is already a member"),
        ("{t}members/", {"member-username": "dave", "member-role": "owner"},
         "Choose team admin or member."),
        ("{t}keys/", {"key-name": "ci"}, "The team already has a key named &#x27;ci&#x27;."),
        ("{t}keys/", {"key-name": ""}, "Enter a name for the key."),
        ("{t}keys/", {"key-name": "k", "key-expires_on": "2001-01-01"},
         "The expiry must be in the future."),
        ("{t}keys/", {"key-name": "k", "key-expires_on": "9999-12-31"}, "Choose an earlier date."),
        ("{t}keys/", {"key-name": "k", "key-expires_on": "tomorrow"},
         "Enter a date as YYYY-MM-DD."),
        ("{t}keys/", {"key-name": "k", "key-allowed_routes": ["other"]},
         "The team may not use &#x27;other&#x27;."),
        ("{t}keys/", {"key-name": "x" * 201}, "at most 200 characters"),
        ("{t}edit/", {"team-name": "R", "team-slug": "sales"}, None),  # sales is globex's: fine
        ("{t}members/{carol}/role/", {"role": "boss"}, "Choose team admin or member."),
    ],
)  # fmt: skip
def test_invalid_forms_are_a_400_with_a_sentence_never_a_500(world, url, data, sentence):
    url = url.format(t=f"/teams/{world.team.pk}/", carol=world.carol.pk)
    response = client_for(world, "alice").post(url, data)
    if sentence is None:
        assert response.status_code == 302
        return
    assert response.status_code == 400, response.content.decode()[:300]
    html = response.content.decode()
    assert sentence in html
    assert 'role="alert"' in html or 'class="errorlist' in html


def test_a_duplicate_slug_on_rename_is_a_400(world):
    Team.objects.create(organisation=world.org, slug="ops", name="Ops")
    response = client_for(world, "alice").post(
        f"/teams/{world.team.pk}/edit/", {"team-name": "X", "team-slug": "ops"}
    )
    assert response.status_code == 400
    assert "already has a team" in response.content.decode()
    assert Team.objects.get(pk=world.team.pk).slug == "research"


# -- isolation ------------------------------------------------------------------------------
def test_a_team_admin_guessing_another_teams_ids_gets_404_and_changes_nothing(world):
    bob = client_for(world, "bob")
    sales = _urls(world.other_team, world.sales_key, world.eve.pk)
    for (method, name), _ in EXPECTED.items():
        response = bob.get(sales[name]) if method == "GET" else bob.post(sales[name], POSTS[name])
        assert response.status_code == 404, name
        assert b"Sales" not in response.content
    # A sales key id under research's URL is not research's key.
    response = bob.post(f"/teams/{world.team.pk}/keys/{world.sales_key.pk}/revoke/")
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=world.sales_key.pk).revoked_at is None
    assert TeamMembership.objects.filter(team=world.other_team).count() == 1


def test_unknown_ids_are_404(world):
    alice = client_for(world, "alice")
    assert alice.get("/teams/999999/").status_code == 404
    assert alice.post(f"/teams/{world.team.pk}/members/999999/remove/").status_code == 404
    assert alice.get(f"/teams/{world.team.pk}/keys/999999/revoke/").status_code == 404
    huge = 2**64
    assert alice.get(f"/teams/{huge}/").status_code == 404
    assert alice.post(f"/teams/{world.team.pk}/members/{huge}/remove/").status_code == 404
    assert alice.get(f"/teams/{world.team.pk}/keys/{huge}/revoke/").status_code == 404


# -- limits and query budget ----------------------------------------------------------------
def test_the_team_page_shows_its_limits_with_live_usage_and_refreshes_only_them(world):
    mine = Limit.objects.create(scope="team", scope_id=world.team.pk, kind="rpm", value=60)
    on_key = Limit.objects.create(scope="key", scope_id=world.key.pk, kind="cost_day",
                                  value=Decimal("5"))  # fmt: skip
    theirs = Limit.objects.create(scope="team", scope_id=world.other_team.pk, kind="rpm", value=9)
    client = client_for(world, "alice")
    root = Limit.objects.create(scope="org", scope_id=world.org.pk, kind="rpm", value=1000)
    html = client.get(f"/teams/{world.team.pk}/").content.decode()
    for limit in (mine, on_key):
        assert f'id="usage-{limit.pk}"' in html
    for limit in (theirs, root):
        assert f'id="usage-{limit.pk}"' not in html
    fragment = client.get(f"/teams/{world.team.pk}/limits/").content.decode()
    assert set(re.findall(r'id="usage-(\d+)" hx-swap-oob', fragment)) == {
        str(mine.pk),
        str(on_key.pk),
    }


@pytest.mark.parametrize("extra", [0, 6])
def test_the_team_list_costs_the_same_queries_for_more_teams(
    world, extra, django_assert_max_num_queries
):
    for i in range(extra):
        team = Team.objects.create(organisation=world.org, slug=f"t{i}", name=f"T{i}")
        team.allowed_routes.set([world.smart])
        api_key_create(team=team, name="k", expires_at=timezone.now() + timedelta(days=1))
        TeamMembership.objects.create(team=team, user=world.carol)
    client = client_for(world, "alice")
    with django_assert_max_num_queries(9):
        response = client.get("/teams/")
    assert response.content.decode().count('href="/teams/') >= extra + 1


@pytest.mark.parametrize("extra", [1, 8])
def test_a_team_page_costs_the_same_queries_for_more_members_and_keys(
    world, extra, django_assert_max_num_queries, django_user_model
):
    for i in range(extra):
        user = django_user_model.objects.create_user(f"u{i}", f"u{i}@example.test", "pw-u-x")
        TeamMembership.objects.create(team=world.team, user=user)
        key = api_key_create(team=world.team, name=f"k{i}", route_names=["smart"]).api_key
        Limit.objects.create(scope="key", scope_id=key.pk, kind="rpm", value=10)
    client = client_for(world, "bob")
    with django_assert_max_num_queries(18):  # roles are read 3 times: 2 queries each
        response = client.get(f"/teams/{world.team.pk}/")
    assert response.content.decode().count("<code>agw-") == extra + 1
