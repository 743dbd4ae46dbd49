"""The Limits page, changes: setting, changing and deleting limits (and who may), refusals in
plain sentences, acknowledging alerts, audit entries, and the services' own checks.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from aigateway.audit.models import AuditEvent
from aigateway.quotas.models import Limit, QuotaAlert
from aigateway.quotas.services import limit_delete, limit_set
from tests.web.limits_support import PAGE, World, form_post, page

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limiter")]


# -- setting, changing and deleting ---------------------------------------------------------
def test_alice_sets_org_team_and_key_limits(client: Client, world: World) -> None:
    cast, key = world.cast, world.key.api_key
    client.force_login(cast.alice)

    for target, kind, value in [
        (f"org:{cast.org.pk}", "tokens_day", "5000000"),
        (f"team:{cast.team.pk}", "rpm", "300"),
        (f"key:{key.pk}", "rpm", "20"),
        (f"user:{cast.bob.pk}", "cost_day", "12.50"),
    ]:
        response = form_post(client, target, kind, value)
        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == PAGE

    assert Limit.objects.get(scope="org", scope_id=cast.org.pk, kind="tokens_day").value == 5000000
    assert Limit.objects.get(scope="team", scope_id=cast.team.pk, kind="rpm").value == 300
    assert Limit.objects.get(scope="key", scope_id=key.pk, kind="rpm").value == 20  # updated
    assert Limit.objects.filter(scope="key", scope_id=key.pk, kind="rpm").count() == 1
    assert Limit.objects.get(scope="user", scope_id=cast.bob.pk).value == Decimal("12.5")
    assert "Saved the limit: requests per minute on API key acme/research/ci" in (
        client.get(PAGE).content.decode()
    )


def test_bob_manages_his_team_keys_only(client: Client, world: World) -> None:
    cast, key = world.cast, world.key.api_key
    client.force_login(cast.bob)

    assert form_post(client, f"key:{key.pk}", "tpm", "5000").status_code == 302
    assert Limit.objects.filter(scope="key", scope_id=key.pk, kind="tpm").exists()

    for target in (f"team:{cast.team.pk}", f"org:{cast.org.pk}",
                   f"key:{world.sales_key.api_key.pk}"):  # fmt: skip
        response = form_post(client, target, "rpm", "1")
        assert response.status_code == 403, target
        assert "You may not change limits of" in response.content.decode()
    team_limit = world.limits["research"]
    assert client.get(f"/limits/{team_limit.pk}/edit/").status_code == 403
    assert client.post(f"/limits/{team_limit.pk}/delete/").status_code == 403
    assert Limit.objects.filter(pk=team_limit.pk).exists()
    assert client.get(f"/limits/{world.limits['ci'].pk}/edit/").status_code == 200


@pytest.mark.parametrize("username", ["carol", "dave"])
def test_readers_cannot_change_anything(client: Client, world: World, username: str) -> None:
    cast = world.cast
    client.force_login(getattr(cast, username))
    before = {(lim.pk, lim.value) for lim in Limit.objects.all()}

    assert form_post(client, f"key:{world.key.api_key.pk}", "rpm", "1").status_code == 403
    assert form_post(client, f"team:{cast.team.pk}", "rpm", "1").status_code == 403
    for name in ("research", "ci"):
        limit = world.limits[name]
        assert client.get(f"/limits/{limit.pk}/edit/").status_code == 403
        assert client.post(f"/limits/{limit.pk}/edit/", {"value": "1"}).status_code == 403
        assert client.get(f"/limits/{limit.pk}/delete/").status_code == 403
        assert client.post(f"/limits/{limit.pk}/delete/").status_code == 403
    assert {(lim.pk, lim.value) for lim in Limit.objects.all()} == before


def test_eve_sees_nothing_of_acme_and_cannot_touch_it(client: Client, world: World) -> None:
    cast = world.cast
    html = page(client, cast.eve)
    assert "acme" not in html.lower()

    for name in ("acme", "research", "ci", "deployment"):
        limit = world.limits[name]
        assert client.get(f"/limits/{limit.pk}/edit/").status_code == 404
        assert client.post(f"/limits/{limit.pk}/edit/", {"value": "1"}).status_code == 404
        assert client.get(f"/limits/{limit.pk}/delete/").status_code == 404
        assert client.post(f"/limits/{limit.pk}/delete/").status_code == 404
    response = form_post(client, f"team:{cast.team.pk}", "rpm", "1")
    assert response.status_code == 403
    assert "acme" not in response.content.decode().lower()  # no name of an unseen target
    assert form_post(client, f"org:{cast.org.pk}", "rpm", "1").status_code == 403
    assert Limit.objects.count() == len(world.limits)
    assert client.get("/limits/999999/edit/").status_code == 404


def test_edit_changes_the_numbers_and_delete_asks_first(client: Client, world: World) -> None:
    client.force_login(world.cast.alice)
    limit = world.limits["research"]

    form = client.get(f"/limits/{limit.pk}/edit/").content.decode()
    assert "Tokens per minute on team acme/research" in form
    assert 'value="100000"' in form and 'value="150000"' in form

    response = client.post(
        f"/limits/{limit.pk}/edit/",
        {"value": "200000", "burst": "", "soft_threshold_percent": "90"},
    )
    assert response.status_code == 302
    limit.refresh_from_db()
    # An unticked checkbox disables the limit.
    assert (limit.value, limit.burst, limit.soft_threshold_percent, limit.enabled) == (
        200000, None, 90, False
    )  # fmt: skip

    confirm = client.get(f"/limits/{limit.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete the limit" in confirm.content.decode()
    assert Limit.objects.filter(pk=limit.pk).exists()  # GET deletes nothing
    assert client.post(f"/limits/{limit.pk}/delete/").status_code == 302
    assert not Limit.objects.filter(pk=limit.pk).exists()


@pytest.mark.parametrize(
    ("kind", "value", "extra", "sentence"),
    [
        ("tpm", "1000", {"burst": "500"}, "The burst must be at least the limit (1000)."),
        ("rpm", "0", {}, "The limit must be greater than zero."),
        ("rpm", "2.5", {}, "The limit must be a whole number."),
        ("tokens_day", "10", {"burst": "20"}, "A burst applies only to per-minute limits"),
        ("rpm", "10", {"soft_threshold_percent": "120"}, "from 1 to 100."),
        ("rpm", "lots", {}, "The limit must be a number."),
        ("cost_day", "", {}, "Enter the limit."),
    ],
)
def test_invalid_limits_are_refused_in_plain_sentences(
    client: Client, world: World, kind: str, value: str, extra: dict, sentence: str
) -> None:
    client.force_login(world.cast.alice)
    response = form_post(client, f"team:{world.cast.team.pk}", kind, value, **extra)
    html = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in html
    assert sentence in html
    assert 'aria-invalid="true"' in html
    assert not Limit.objects.filter(scope="team", kind=kind, value=1000).exists()


def test_deployments_take_per_minute_limits_only(
    client: Client, world: World, django_user_model
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(root)
    target = f"deployment:{world.limits['deployment'].scope_id}"
    response = form_post(client, target, "tokens_day", "1000")
    assert response.status_code == 400
    assert "A deployment takes only per-minute limits" in response.content.decode()
    assert form_post(client, target, "tpm", "90000").status_code == 302


# -- alerts ---------------------------------------------------------------------------------
def test_open_alerts_are_listed_and_acknowledged_by_managers_only(
    client: Client, world: World
) -> None:
    alert = QuotaAlert.objects.create(
        limit=world.limits["ci-day"], period="2026-11-25", used=Decimal(850_000)
    )
    QuotaAlert.objects.create(limit=world.limits["globex"], period="2026-11", used=9_000_000)

    carol = page(client, world.cast.carol)
    assert "Open alerts" in carol and "2026-11-25" in carol and "850,000" in carol
    assert f"/limits/alerts/{alert.pk}/acknowledge/" not in carol
    assert "2026-11</" not in carol and "9,000,000" not in carol  # globex's alert
    assert client.post(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 403

    client.force_login(world.cast.eve)
    assert client.post(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 404

    for manager in (world.cast.bob, world.cast.alice):
        assert f"/limits/alerts/{alert.pk}/acknowledge/" in page(client, manager)
    response = client.post(f"/limits/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert "Open alerts" not in page(client, world.cast.alice)
    event = AuditEvent.objects.get(action="quota_alert.acknowledged")
    assert event.actor == world.cast.alice
    assert event.organisation_id == world.cast.org.pk
    assert client.get(f"/limits/alerts/{alert.pk}/acknowledge/").status_code == 405


# -- audit ----------------------------------------------------------------------------------
def test_set_change_and_delete_are_audited_with_before_and_after(
    client: Client, world: World
) -> None:
    client.force_login(world.cast.alice)
    AuditEvent.objects.all().delete()

    form_post(client, f"team:{world.cast.team.pk}", "rpm", "300")
    limit = Limit.objects.get(scope="team", kind="rpm")
    client.post(f"/limits/{limit.pk}/edit/", {"value": "400", "soft_threshold_percent": "75",
                                              "enabled": "on"})  # fmt: skip
    client.post(f"/limits/{limit.pk}/edit/", {"value": "400", "soft_threshold_percent": "75",
                                              "enabled": "on"})  # no change: no entry  # fmt: skip
    client.post(f"/limits/{limit.pk}/delete/")

    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["limit.set", "limit.set", "limit.deleted"]
    created, changed, deleted = events
    assert created.actor == world.cast.alice
    assert created.target_label == "requests per minute on team acme/research"
    assert created.organisation_id == world.cast.org.pk
    assert created.details["before"] is None
    assert created.details["after"] == {
        "value": "300", "burst": None, "soft_threshold_percent": 80, "enabled": True
    }  # fmt: skip
    assert changed.details["before"]["value"] == "300"
    assert changed.details["after"] == {
        "value": "400", "burst": None, "soft_threshold_percent": 75, "enabled": True
    }  # fmt: skip
    assert deleted.target_id == str(limit.pk)
    assert deleted.details["before"]["value"] == "400"


def test_services_check_permissions_themselves(world: World) -> None:
    cast = world.cast
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.dave, scope="org", scope_id=cast.org.pk, kind="rpm", value=1)
    with pytest.raises(PermissionDenied):
        limit_set(actor=cast.bob, scope="team", scope_id=cast.team.pk, kind="rpm", value=1)
    with pytest.raises(PermissionDenied):
        limit_delete(actor=cast.eve, limit=world.limits["acme"])
    with pytest.raises(ValidationError) as error:
        limit_set(actor=cast.alice, scope="team", scope_id=cast.team.pk, kind="tpm", value=10,
                  burst=5)  # fmt: skip
    assert error.value.message_dict == {"burst": ["The burst must be at least the limit (10)."]}
    with pytest.raises(ValidationError):
        limit_set(actor=None, scope="team", scope_id=999_999, kind="rpm", value=1)


def test_deployment_limits_belong_to_gateway_operators_only(
    client: Client, world: World, django_user_model
) -> None:
    """Deployments serve every organisation: a platform admin of one organisation must not
    throttle the others' traffic. Only superusers (gateway operators) limit them."""
    from auth.models import OrgMembership, OrgRole

    cast = world.cast
    gina = django_user_model.objects.create_user("gina", "gina@example.test", "pw-gina-1234")
    OrgMembership.objects.create(user=gina, organisation=cast.other_org,
                                 role=OrgRole.PLATFORM_ADMIN)  # fmt: skip
    deployment = world.limits["deployment"]
    client.force_login(gina)

    assert form_post(client, f"deployment:{deployment.scope_id}", "tpm", "9000").status_code == 403
    assert form_post(client, f"team:{cast.team.pk}", "rpm", "1").status_code == 403
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123")
    client.force_login(root)
    assert form_post(client, f"deployment:{deployment.scope_id}", "tpm", "9000").status_code == 302
    client.force_login(gina)
    assert client.get(f"/limits/{world.limits['research'].pk}/edit/").status_code == 404
    with pytest.raises(PermissionDenied):  # a team admin is not enough
        limit_set(actor=cast.eve, scope="deployment", scope_id=deployment.scope_id, kind="rpm",
                  value=1)  # fmt: skip
