"""Limits (with live usage) and usage totals through the API, for each role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from aigateway.quotas.models import Limit
from aigateway.quotas.services import limit_set
from aigateway.usage.models import UsageRecord
from tests.api.management.conftest import token_client
from tests.factories import make_key

pytestmark = pytest.mark.usefixtures("fresh_limiter")


@pytest.fixture
def fresh_limiter(monkeypatch: pytest.MonkeyPatch):
    from aigateway.gateway import limits
    from aigateway.quotas.limiter import InProcessLimiter

    monkeypatch.setattr(limits, "_local", InProcessLimiter())


def _team_limit(cast, kind: str = "rpm", value: int = 100) -> Limit:
    return limit_set(actor=None, scope="team", scope_id=cast.team.pk, kind=kind, value=value)


def test_a_platform_admin_sets_changes_and_deletes_a_team_budget(cast) -> None:
    alice = token_client(cast.alice)
    body = {"scope": "team", "scope_id": cast.team.pk, "kind": "cost_day", "value": "12.5"}
    created = alice.post("limits", body)
    assert created.status_code == 201, created.content
    limit = created.json()
    assert (limit["value"], limit["target"], limit["can_manage"]) == ("12.5", "acme/research", True)
    assert alice.post("limits", {**body, "value": 20}).status_code == 200  # same target and kind
    changed = alice.patch(f"limits/{limit['id']}", {"soft_threshold_percent": 50})
    assert (changed.json()["value"], changed.json()["soft_threshold_percent"]) == ("20", 50)
    assert alice.delete(f"limits/{limit['id']}").status_code == 204
    assert not Limit.objects.exists()
    events = AuditEvent.objects.filter(action__startswith="limit.").order_by("sequence")
    assert [e.action for e in events] == ["limit.set", "limit.set", "limit.set", "limit.deleted"]
    assert {(e.actor_label, e.organisation_id) for e in events} == {("alice", cast.org.pk)}


def test_live_usage_comes_with_the_limits(cast) -> None:
    limit = _team_limit(cast)
    data = token_client(cast.alice).get("limits").json()
    row = next(r for r in data["data"] if r["id"] == limit.pk)
    assert data["usage_available"] is True
    assert row["usage"]["capacity"] == 100 and row["usage"]["remaining"] == 100
    assert "100 of 100 requests available" in row["usage"]["summary"]
    single = token_client(cast.alice).get(f"limits/{limit.pk}", live="false").json()
    assert single["usage"] is None


@pytest.mark.parametrize(
    ("who", "status"), [("bob", 403), ("carol", 403), ("dave", 403), ("eve", 403)]
)
def test_only_platform_admins_limit_a_team(cast, who, status) -> None:
    body = {"scope": "team", "scope_id": cast.team.pk, "kind": "rpm", "value": 5}
    response = token_client(getattr(cast, who)).post("limits", body)
    assert response.status_code == status
    assert not Limit.objects.exists()


def test_a_team_admin_limits_the_teams_keys(cast) -> None:
    key = make_key(cast.team, name="ci").api_key
    body = {"scope": "key", "scope_id": key.pk, "kind": "tpm", "value": 1000, "burst": 2000}
    response = token_client(cast.bob).post("limits", body)
    assert response.status_code == 201
    assert response.json()["burst"] == "2000"


def test_members_read_their_teams_limits_and_outsiders_see_nothing(cast) -> None:
    limit = _team_limit(cast)
    carol = token_client(cast.carol)
    assert [r["id"] for r in carol.get("limits").json()["data"]] == [limit.pk]
    assert carol.patch(f"limits/{limit.pk}", {"value": 1}).status_code == 403
    assert carol.delete(f"limits/{limit.pk}").status_code == 403
    eve = token_client(cast.eve)
    assert eve.get("limits").json()["data"] == []
    assert eve.get(f"limits/{limit.pk}").status_code == 404
    assert eve.delete(f"limits/{limit.pk}").status_code == 404
    assert Limit.objects.filter(pk=limit.pk).exists()


def test_limit_input_problems_name_the_field(cast) -> None:
    alice = token_client(cast.alice)
    base = {"scope": "team", "scope_id": cast.team.pk, "kind": "rpm"}
    cases = [
        ({"value": "1.5"}, "value"),
        ({"value": 0}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": 10, "burst": 5}, "burst"),
        ({"value": 1, "kind": "nope"}, "kind"),
    ]
    for extra, param in cases:
        response = alice.post("limits", {**base, **extra})
        assert response.status_code == 400, extra
        assert response.json()["error"]["param"] == param, (extra, response.json())


# -- usage ----------------------------------------------------------------------------------------
def _record(
    n: int, *, team, user=None, route="demo", cost="0.5", days_ago=0, status=200, key=None
) -> None:
    UsageRecord.objects.create(
        request_id=f"req-{n}",
        created_at=timezone.now() - timedelta(days=days_ago),
        organisation_id=team.organisation_id,
        team_id=team.pk,
        user_id=user.pk if user else None,
        api_key_id=key.pk if key else None,
        route=route,
        provider="demo",
        status_code=status,
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal(cost),
    )


@pytest.fixture
def usage(cast) -> None:
    bobs_key = make_key(cast.team, name="bobs", created_by=cast.bob).api_key
    _record(1, team=cast.team, user=cast.carol)
    _record(2, team=cast.team, user=cast.carol, status=500, days_ago=2)
    _record(3, team=cast.team, key=bobs_key, route="smart")
    _record(4, team=cast.other_team, user=cast.eve, cost="9")


def _totals(client, **params) -> dict[str, tuple[int, str]]:
    body = client.get("usage", **params).json()
    return {r["label"]: (r["requests"], r["cost_usd"]) for r in body["data"]}


def test_platform_admins_and_auditors_see_their_organisations_usage(cast, usage) -> None:
    for who in (cast.alice, cast.dave):
        assert _totals(token_client(who), group_by="team") == {"acme/research": (3, "1.5")}
    assert _totals(token_client(cast.eve), group_by="team") == {"globex/sales": (1, "9")}


def test_a_member_sees_only_their_own_usage(cast, usage) -> None:
    assert _totals(token_client(cast.carol), group_by="user") == {"carol": (2, "1")}


def test_a_team_admin_sees_their_teams_usage(cast, usage) -> None:
    assert _totals(token_client(cast.bob), group_by="route") == {
        "demo": (2, "1"),
        "smart": (1, "0.5"),
    }


def test_usage_by_day_honours_the_date_range(cast, usage) -> None:
    today = datetime.now(UTC).date()
    alice = token_client(cast.alice)
    days = alice.get("usage", group_by="day", start=str(today - timedelta(days=7))).json()
    assert [(r["key"], r["requests"], r["errors"]) for r in days["data"]] == [
        (str(today - timedelta(days=2)), 1, 1),
        (str(today), 2, 0),
    ]
    only_today = _totals(alice, group_by="provider", start=str(today), end=str(today))
    assert only_today == {"demo": (2, "1")}
    backwards = alice.get("usage", start=str(today), end=str(today - timedelta(days=1)))
    assert (backwards.status_code, backwards.json()["error"]["param"]) == (400, "start")
    too_long = alice.get("usage", start="2000-01-01", end="2026-01-01")
    assert too_long.status_code == 400
