"""Teams, members and keys through the API, for each role of the cast: platform admin
(alice), team admin (bob), member (carol), auditor (dave), outsider (eve, another org)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from aigateway.audit.models import AuditEvent
from auth.keys import hash_api_key
from auth.models import ApiKey, Team, TeamMembership
from tests.api.management.conftest import token_client
from tests.factories import make_provider, make_route


def _team_body(slug: str = "ml") -> dict:
    return {"organisation": "acme", "slug": slug, "name": slug.upper()}


@pytest.mark.parametrize(
    ("who", "slugs"),
    [
        ("alice", ["acme/ml", "acme/research"]),
        ("bob", ["acme/research"]),
        ("carol", ["acme/research"]),
        ("dave", ["acme/ml", "acme/research"]),
        ("eve", ["globex/sales"]),
    ],
)
def test_each_role_lists_exactly_the_teams_it_may_see(cast, who, slugs) -> None:
    Team.objects.create(organisation=cast.org, slug="ml", name="ML")
    data = token_client(getattr(cast, who)).get("teams").json()["data"]
    assert [f"{t['organisation']}/{t['slug']}" for t in data] == slugs


def test_other_organisations_teams_do_not_exist_for_you(cast) -> None:
    for path in ("", "/members", "/keys"):
        response = token_client(cast.alice).get(f"teams/{cast.other_team.pk}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    eve = token_client(cast.eve)
    assert eve.get(f"teams/{cast.team.pk}").status_code == 404
    assert eve.delete(f"teams/{cast.team.pk}").status_code == 404
    assert eve.post("teams", _team_body()).status_code == 404  # acme is invisible to eve
    assert Team.objects.filter(pk=cast.team.pk).exists()


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 201), ("bob", 403), ("carol", 403), ("dave", 403)]
)
def test_only_platform_admins_create_teams(cast, who, status) -> None:
    make_route("smart", (make_provider(), "demo"))
    body = {**_team_body(), "allowed_routes": ["smart"]}
    response = token_client(getattr(cast, who)).post("teams", body)
    assert response.status_code == status
    assert Team.objects.filter(slug="ml").exists() is (status == 201)
    if status == 201:
        assert response.json()["allowed_routes"] == ["smart"]
        event = AuditEvent.objects.get(action="team.created")
        assert event.organisation_id == cast.org.pk
        assert event.details["after"]["allowed_routes"] == ["smart"]


def test_team_input_problems_are_400_or_409_naming_the_field(cast) -> None:
    alice = token_client(cast.alice)
    bad_slug = alice.post("teams", {**_team_body(), "slug": "not a slug"})
    assert (bad_slug.status_code, bad_slug.json()["error"]["param"]) == (400, "slug")
    unknown_route = alice.post("teams", {**_team_body(), "allowed_routes": ["nope"]})
    assert unknown_route.status_code == 400
    assert unknown_route.json()["error"]["param"] == "allowed_routes"
    duplicate = alice.post("teams", {**_team_body(), "slug": "research"})
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 403), ("carol", 403), ("dave", 403)]
)
def test_only_platform_admins_change_a_team(cast, who, status) -> None:
    response = token_client(getattr(cast, who)).patch(f"teams/{cast.team.pk}", {"name": "R&D"})
    assert response.status_code == status
    cast.team.refresh_from_db()
    assert (cast.team.name == "R&D") is (status == 200)
    if status == 200:
        event = AuditEvent.objects.get(action="team.updated")
        assert (event.details["before"]["name"], event.details["after"]["name"]) == (
            "Research",
            "R&D",
        )


@pytest.mark.parametrize(("who", "status"), [("alice", 204), ("bob", 403), ("dave", 403)])
def test_only_platform_admins_delete_a_team(cast, who, status) -> None:
    response = token_client(getattr(cast, who)).delete(f"teams/{cast.team.pk}")
    assert response.status_code == status
    assert Team.objects.filter(pk=cast.team.pk).exists() is (status != 204)
    assert AuditEvent.objects.filter(action="team.deleted").count() == (status == 204)


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 201), ("bob", 201), ("carol", 403), ("dave", 403), ("eve", 404)]
)
def test_team_admins_and_platform_admins_manage_members(cast, who, status) -> None:
    get_user_model().objects.create_user("frank")  # in no organisation yet
    client = token_client(getattr(cast, who))
    added = client.post(f"teams/{cast.team.pk}/members", {"username": "frank"})
    assert added.status_code == status
    if status != 201:
        return
    frank = get_user_model().objects.get(username="frank")
    changed = client.patch(f"teams/{cast.team.pk}/members/{frank.pk}", {"role": "team_admin"})
    assert changed.json()["role"] == "team_admin"
    assert client.delete(f"teams/{cast.team.pk}/members/{frank.pk}").status_code == 204
    assert not TeamMembership.objects.filter(user=frank).exists()
    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions[-3:] == ["team_member.added", "team_member.role_changed", "team_member.removed"]


def test_members_of_other_organisations_look_like_unknown_users(cast) -> None:
    bob = token_client(cast.bob)
    eve = bob.post(f"teams/{cast.team.pk}/members", {"username": "eve"})
    nobody = bob.post(f"teams/{cast.team.pk}/members", {"username": "nobody"})
    assert eve.status_code == nobody.status_code == 400
    assert eve.json()["error"]["message"].replace("eve", "X") == nobody.json()["error"][
        "message"
    ].replace("nobody", "X")
    again = bob.post(f"teams/{cast.team.pk}/members", {"username": "carol"})
    assert again.status_code == 409


def test_everyone_in_the_team_lists_its_members(cast) -> None:
    data = token_client(cast.carol).get(f"teams/{cast.team.pk}/members").json()["data"]
    assert [(m["username"], m["role"]) for m in data] == [
        ("bob", "team_admin"),
        ("carol", "member"),
    ]


def test_a_key_is_shown_once_and_only_its_hash_is_stored(cast) -> None:
    route = make_route("smart", (make_provider(), "demo"))
    cast.team.allowed_routes.add(route)
    bob = token_client(cast.bob)
    created = bob.post(f"teams/{cast.team.pk}/keys", {"name": "ci", "allowed_routes": ["smart"]})
    assert created.status_code == 201
    body = created.json()
    raw = body["key"]
    assert raw.startswith(body["prefix"]) and len(raw) > len(body["prefix"]) + 20
    stored = ApiKey.objects.get(pk=body["id"])
    assert stored.key_hash == hash_api_key(raw)
    assert raw not in {stored.name, stored.prefix}
    for listing in (
        bob.get(f"teams/{cast.team.pk}/keys").json()["data"],
        [bob.get(f"teams/{cast.team.pk}/keys/{body['id']}").json()],
    ):
        assert "key" not in listing[0] and raw not in str(listing)
        assert listing[0]["prefix"] == body["prefix"]
    event = AuditEvent.objects.get(action="api_key.created")
    assert raw not in str(event.details) + event.target_label
    assert event.organisation_id == cast.org.pk and event.actor_label == "bob"


@pytest.mark.parametrize(("who", "status"), [("carol", 403), ("dave", 403), ("eve", 404)])
def test_members_auditors_and_outsiders_issue_no_keys(cast, who, status) -> None:
    response = token_client(getattr(cast, who)).post(f"teams/{cast.team.pk}/keys", {"name": "x"})
    assert response.status_code == status
    assert not ApiKey.objects.exists()


def test_keys_are_narrowed_to_the_teams_own_routes(cast) -> None:
    make_route("other", (make_provider(), "demo"))
    response = token_client(cast.bob).post(
        f"teams/{cast.team.pk}/keys", {"name": "ci", "allowed_routes": ["other"]}
    )
    assert (response.status_code, response.json()["error"]["param"]) == (400, "allowed_routes")


def test_revoking_a_key_is_audited_and_keeps_it_listed(cast) -> None:
    bob = token_client(cast.bob)
    key_id = bob.post(f"teams/{cast.team.pk}/keys", {"name": "ci"}).json()["id"]
    revoked = bob.delete(f"teams/{cast.team.pk}/keys/{key_id}")
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"]
    assert ApiKey.objects.get(pk=key_id).revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoked", target_id=str(key_id)).exists()
    assert token_client(cast.eve).delete(f"teams/{cast.team.pk}/keys/{key_id}").status_code == 404
