"""Every failure of the management API is an OpenAI-style error body, never ninja's own
``detail`` shape, an HTML page or a 500."""

from __future__ import annotations

from django.test import Client

from tests.api.management.conftest import token_client


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_validation_errors_are_400_naming_the_parameter(cast) -> None:
    alice = token_client(cast.alice)
    missing = _error(alice.post("teams", {"organisation": "acme", "slug": "ml"}), 400)
    assert (missing["param"], missing["type"]) == ("name", "invalid_request_error")
    query = _error(alice.get("usage", group_by="week"), 400)
    assert query["param"] == "group_by"
    path = _error(alice.get("teams/abc"), 400)
    assert path["param"] == "team_id"


def test_bodies_that_are_not_json_are_400(cast) -> None:
    alice = token_client(cast.alice)
    response = alice.client.post(
        "/api/v1/teams", data=b"{not json", content_type="application/json", headers=alice.headers
    )
    assert _error(response, 400)["code"] == "invalid_request"


def test_extreme_inputs_are_400_not_database_errors(cast) -> None:
    alice = token_client(cast.alice)
    assert _error(alice.get(f"teams/{2**64}"), 400)["param"] == "team_id"
    nul = alice.post("teams", {"organisation": "acme", "slug": "ml", "name": "a\x00b"})
    assert _error(nul, 400)["param"] == "name"
    assert _error(alice.get("audit-events", since="0001-01-01T00:00:00+14:00"), 400)
    assert _error(alice.get("usage", end="9999-12-31"), 400)["param"] == "end"


def test_unknown_paths_and_methods_answer_in_the_same_shape(cast) -> None:
    alice = token_client(cast.alice)
    assert _error(alice.get("nothing/here"), 404)["code"] == "not_found"
    assert _error(Client().get("/api/"), 404)["code"] == "not_found"
    wrong_method = alice.request("PUT", "teams")
    assert _error(wrong_method, 405)["code"] == "method_not_allowed"
    assert "GET" in wrong_method["Allow"] and "POST" in wrong_method["Allow"]


def test_forbidden_and_missing_are_403_and_404(cast) -> None:
    assert _error(token_client(cast.carol).delete(f"teams/{cast.team.pk}"), 403)["type"] == (
        "permission_error"
    )
    assert _error(token_client(cast.carol).get(f"teams/{cast.other_team.pk}"), 404)
