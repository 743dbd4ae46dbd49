"""Routes, breakers and the audit log through the API: who reads, who forces, who audits."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from aigateway.audit.models import AuditEvent
from aigateway.audit.services import audit_record
from aigateway.routing.models import BreakerEvent
from tests.api.management.conftest import token_client
from tests.factories import make_provider, make_route


@pytest.fixture
def route(cast):
    return make_route("smart", (make_provider(), "demo"))


@pytest.fixture
def operator(cast):
    return get_user_model().objects.create_superuser("op", "op@example.test", "pw-op-secret")


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("dave", 200), ("bob", 403), ("carol", 403)]
)
def test_platform_admins_and_auditors_read_routes_and_breakers(cast, route, who, status) -> None:
    client = token_client(getattr(cast, who))
    for path in ("routes", f"routes/{route.pk}", "deployments", "breakers", "breakers/events"):
        assert client.get(path).status_code == status, path
    if status == 200:
        listed = client.get("routes").json()["data"]
        assert [(r["name"], [d["upstream_model"] for d in r["deployments"]]) for r in listed] == [
            ("smart", ["demo"])
        ]


def test_a_gateway_operator_forces_a_breaker_with_a_reason(cast, route, operator) -> None:
    deployment = route.deployments.get()
    client = token_client(operator)
    blank = client.post(f"deployments/{deployment.pk}/breaker", {"action": "open", "reason": " "})
    assert (blank.status_code, blank.json()["error"]["param"]) == (400, "reason")
    opened = client.post(
        f"deployments/{deployment.pk}/breaker", {"action": "open", "reason": "maintenance"}
    )
    assert opened.status_code == 200
    assert opened.json()["to_state"] == "forced_open"
    states = {b["deployment_id"]: b["state"] for b in client.get("breakers").json()["data"]}
    assert states[deployment.pk] == "forced_open"
    assert BreakerEvent.objects.get().reason.endswith("maintenance")
    event = AuditEvent.objects.get(action="breaker.open")
    assert (event.actor_label, event.details["reason"]) == ("op", "maintenance")


def test_platform_admins_do_not_force_breakers(cast, route) -> None:
    deployment = route.deployments.get()
    response = token_client(cast.alice).post(
        f"deployments/{deployment.pk}/breaker", {"action": "open", "reason": "mine"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="breaker.").exists()


def test_a_platform_admin_of_every_organisation_forces_breakers(cast, route) -> None:
    """As on the dashboard: whoever may edit routes may force their breakers."""
    from tests.web.gateway_config_support import make_admin_of_every_organisation

    deployment = route.deployments.get()
    client = token_client(make_admin_of_every_organisation(cast))
    response = client.post(
        f"deployments/{deployment.pk}/breaker", {"action": "open", "reason": "maintenance"}
    )
    assert (response.status_code, response.json()["to_state"]) == (200, "forced_open")
    assert AuditEvent.objects.get(action="breaker.open").actor == cast.alice


def _events(cast, count: int) -> None:
    for n in range(count):
        audit_record(
            action="team.updated", target_type="team", target_id=n, organisation_id=cast.org.pk
        )
    audit_record(action="team.updated", target_type="team", organisation_id=cast.other_org.pk)
    audit_record(action="limit.set", target_type="limit", organisation_id=cast.org.pk)


@pytest.mark.parametrize("who", ["alice", "dave"])
def test_admins_and_auditors_page_through_their_organisations_audit_log(cast, who) -> None:
    _events(cast, 5)
    client = token_client(getattr(cast, who))
    seen, cursor = [], None
    while True:
        params = {"action": "team.", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("audit-events", **params).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["target_id"] for e in seen] == ["4", "3", "2", "1", "0"]
    assert {e["organisation_id"] for e in seen} == {cast.org.pk}
    exact = client.get("audit-events", action="limit.set").json()["data"]
    assert [e["action"] for e in exact] == ["limit.set"]


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_team_roles_do_not_read_the_audit_log(cast, who) -> None:
    assert token_client(getattr(cast, who)).get("audit-events").status_code == 403


def test_an_auditor_of_another_organisation_sees_only_its_events(cast) -> None:
    from auth.models import OrgMembership, OrgRole

    _events(cast, 2)
    OrgMembership.objects.create(user=cast.eve, organisation=cast.other_org, role=OrgRole.AUDITOR)
    data = token_client(cast.eve).get("audit-events").json()["data"]
    assert [e["organisation_id"] for e in data] == [cast.other_org.pk]
    filtered = token_client(cast.eve).get("audit-events", organisation_id=cast.org.pk)
    assert filtered.json()["data"] == []
    bad_cursor = token_client(cast.alice).get("audit-events", cursor="abc")
    assert (bad_cursor.status_code, bad_cursor.json()["error"]["param"]) == (400, "cursor")
