"""How the management API authenticates: browser sessions (CSRF enforced on writes) and
personal admin tokens (hashed, shown once, expiring, revocable); team keys never get in."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from auth.admin_tokens import admin_token_create, hash_token
from auth.models import AdminToken
from tests.api.management.conftest import ApiClient, session_client, token_client
from tests.factories import make_key


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_it_answers_401_in_openai_shape_without_credentials(cast) -> None:
    response = Client().get("/api/v1/teams")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


def test_a_session_reads_without_csrf_but_writes_only_with_it(cast) -> None:
    without = session_client(cast.alice, csrf=False)
    assert without.get("teams").status_code == 200
    refused = without.post("teams", {"organisation": "acme", "slug": "ml", "name": "ML"})
    assert refused.status_code == 403
    assert _error(refused)["code"] == "csrf_failed"
    assert without.delete(f"teams/{cast.team.pk}").status_code == 403
    with_csrf = session_client(cast.alice)
    created = with_csrf.post("teams", {"organisation": "acme", "slug": "ml", "name": "ML"})
    assert created.status_code == 201, created.content


def test_a_token_is_shown_once_and_only_its_hash_is_stored(cast) -> None:
    created = session_client(cast.bob).post("tokens", {"name": "ci", "expires_in_days": 10})
    assert created.status_code == 201
    body = created.json()
    raw = body["token"]
    assert raw.startswith("agw-pat-") and raw.startswith(body["prefix"])
    stored = AdminToken.objects.get(pk=body["id"])
    assert stored.token_hash == hash_token(raw)
    assert raw not in {stored.name, stored.prefix, stored.token_hash}
    assert timedelta(days=9) < stored.expires_at - timezone.now() <= timedelta(days=10)
    listed = session_client(cast.bob).get("tokens").json()["data"]
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0]
    event = AuditEvent.objects.get(action="admin_token.created")
    assert raw not in str(event.details) + event.target_label
    me = ApiClient(Client(), {"Authorization": f"Bearer {raw}"}).get("me").json()
    assert (me["username"], me["authenticated_by"]) == ("bob", "admin_token")


def test_a_token_writes_without_csrf_as_its_user(cast) -> None:
    client = token_client(cast.alice)
    created = client.post("teams", {"organisation": "acme", "slug": "ml", "name": "ML"})
    assert created.status_code == 201
    event = AuditEvent.objects.get(action="team.created")
    assert event.actor_label == "alice"


def test_a_token_cannot_mint_tokens(cast) -> None:
    response = token_client(cast.alice).post("tokens", {"name": "child"})
    assert response.status_code == 403
    assert _error(response)["code"] == "session_required"


def test_expired_revoked_and_unknown_tokens_are_refused(cast) -> None:
    issued = admin_token_create(user=cast.alice, name="old", lifetime_days=1)
    client = ApiClient(Client(), {"Authorization": f"Bearer {issued.raw_token}"})
    assert client.get("me").status_code == 200
    AdminToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    expired = client.get("me")
    assert (expired.status_code, _error(expired)["code"]) == (401, "expired_token")

    live = admin_token_create(user=cast.alice, name="live", lifetime_days=1)
    live_client = ApiClient(Client(), {"Authorization": f"Bearer {live.raw_token}"})
    revoked = session_client(cast.alice).delete(f"tokens/{live.token.pk}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    refused = live_client.get("me")
    assert (refused.status_code, _error(refused)["code"]) == (401, "revoked_token")
    assert AuditEvent.objects.filter(action="admin_token.revoked").count() == 1

    unknown = ApiClient(Client(), {"Authorization": "Bearer agw-pat-" + "x" * 43}).get("me")
    assert (unknown.status_code, _error(unknown)["code"]) == (401, "invalid_token")


def test_a_deactivated_users_token_stops_working(cast) -> None:
    client = token_client(cast.alice)
    cast.alice.is_active = False
    cast.alice.save()
    assert client.get("me").status_code == 401


def test_nobody_revokes_someone_elses_token(cast) -> None:
    issued = admin_token_create(user=cast.alice, name="mine", lifetime_days=1)
    assert token_client(cast.eve).delete(f"tokens/{issued.token.pk}").status_code == 404
    assert AdminToken.objects.get(pk=issued.token.pk).revoked_at is None


def test_team_inference_keys_never_open_the_management_api(cast) -> None:
    raw = make_key(cast.team, name="inference").raw_key
    as_bearer = ApiClient(Client(), {"Authorization": f"Bearer {raw}"}).get("teams")
    assert (as_bearer.status_code, _error(as_bearer)["code"]) == (401, "wrong_credential")
    as_header = ApiClient(Client(), {"x-api-key": raw}).get("teams")
    assert as_header.status_code == 401
    # Not even next to a session: the bearer credential decides.
    session = session_client(cast.alice)
    mixed = session.request("GET", "teams", headers={"Authorization": f"Bearer {raw}"})
    assert mixed.status_code == 401
