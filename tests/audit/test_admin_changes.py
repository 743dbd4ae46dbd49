"""Admin changes are audited with the object before and after, secrets only as fingerprints:
through the services (credentials), a config-as-code apply and the Django admin."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from aigateway.audit.changes import audit_change, model_snapshot
from aigateway.audit.models import AuditEvent
from aigateway.routing.models import Deployment, Route
from auth.models import ApiKey
from providers.models import Credential, Provider, ProviderKind
from providers.services import credential_create, credential_retire, credential_set_secret
from tests.config_as_code.support import apply

pytestmark = pytest.mark.django_db

SECRET_ONE = "sk-first-secret-value-0001"
SECRET_TWO = "sk-second-secret-value-0002"
TEAM_KEY = "agw-imported-team-key-000000000001"


def _stored_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("details", "target_label")), default=str)


def _verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue().strip()


def test_a_credential_change_records_before_and_after_without_the_secret(cast) -> None:
    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    credential = credential_create(provider=provider, name="main", secret=SECRET_ONE)
    old_ciphertext = credential.ciphertext
    credential_set_secret(credential=credential, secret=SECRET_TWO, actor=cast.alice)
    credential_retire(credential=credential, actor=cast.alice)

    created, replaced, retired = AuditEvent.objects.order_by("sequence")
    assert created.details["before"] is None
    assert created.details["after"]["name"] == "main"
    assert replaced.actor == cast.alice and replaced.target_type == "credential"
    before, after = replaced.details["before"], replaced.details["after"]
    assert before["fingerprint"] != after["fingerprint"]  # the secret changed: visible
    assert before["masked"].endswith("0001") and after["masked"].endswith("0002")
    assert before["ciphertext"].startswith("fp:") and before["ciphertext"] != after["ciphertext"]
    assert set(replaced.details["changed"]) >= {"ciphertext", "fingerprint", "masked"}
    assert (retired.details["before"]["status"], retired.details["after"]["status"]) == (
        "active", "retired"
    )  # fmt: skip
    text = _stored_text()
    for secret in (SECRET_ONE, SECRET_TWO, old_ciphertext, credential.ciphertext):
        assert secret not in text
    assert _verify() == "audit chain OK: 3 records"


def test_snapshots_replace_secrets_by_fingerprints(cast) -> None:
    from tests.factories import make_key

    issued = make_key(cast.team)
    snap = model_snapshot(issued.api_key)
    assert snap["key_hash"].startswith("fp:") and issued.api_key.key_hash not in json.dumps(snap)
    assert snap["prefix"] == issued.api_key.prefix and snap["team_id"] == cast.team.pk
    provider = Provider(name="azure", kind=ProviderKind.AZURE_OPENAI,
                        options={"tenant_id": "t-1", "client_secret": "hunter2-value"})  # fmt: skip
    provider.save()
    options = model_snapshot(provider)["options"]
    assert options["tenant_id"] == "t-1" and options["client_secret"].startswith("fp:")
    route = Route.objects.create(name="r")
    deployment = Deployment(route=route, provider=provider, upstream_model="m",
                            max_context_tokens=128000)  # fmt: skip
    assert model_snapshot(deployment)["max_context_tokens"] == 128000  # not a secret
    # A change that changes nothing is not recorded.
    assert audit_change(actor=None, action="x.updated", target=provider, before=snap,
                        after=snap) is None  # fmt: skip


TENANCY = """
version: 1
providers:
  - name: openai
    kind: openai
routes:
  - name: gpt-4o
    deployments:
      - provider: openai
        model: gpt-4o
organisations:
  - slug: initech
    name: Initech
    teams:
      - slug: ops
        name: Operations
        routes: [gpt-4o]
        members:
          - user: milton
            role: member
        api_keys:
          - name: ci
            secret: env:TEAM_KEY_VALUE
"""


def test_a_config_apply_is_audited_object_by_object(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEAM_KEY_VALUE", TEAM_KEY)
    apply(tmp_path, TENANCY)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "provider.created", "route.created", "deployment.created", "organisation.created",
        "team.created", "user.created", "team_membership.created", "api_key.created",
        "config.applied",
    } <= actions  # fmt: skip
    team = AuditEvent.objects.get(action="team.created")
    assert team.details["after"]["allowed_routes"] == ["gpt-4o"]
    assert team.details["via"] == "gateway apply" and team.actor_label == "cli"
    assert team.organisation_id is not None
    key = AuditEvent.objects.get(action="api_key.created")
    assert key.details["after"]["key_hash"].startswith("fp:")
    assert key.organisation_id == team.organisation_id

    # A change: before and after of just that object.
    changed = TENANCY.replace("name: Operations", "name: Operations EU").replace(
        "role: member", "role: team_admin"
    )
    apply(tmp_path, changed)
    renamed = AuditEvent.objects.get(action="team.updated")
    assert (renamed.details["before"]["name"], renamed.details["after"]["name"]) == (
        "Operations", "Operations EU"
    )  # fmt: skip
    assert renamed.details["changed"] == ["name"]
    role = AuditEvent.objects.get(action="team_membership.updated")
    assert (role.details["before"]["role"], role.details["after"]["role"]) == (
        "member", "team_admin"
    )  # fmt: skip
    # Removing the member and the deployment's provider swap are deletions and creations.
    apply(tmp_path, changed.replace("        members:\n          - user: milton\n"
                                    "            role: team_admin\n", ""))  # fmt: skip
    removed = AuditEvent.objects.get(action="team_membership.deleted")
    assert removed.details["after"] is None and removed.details["before"]["role"] == "team_admin"
    assert TEAM_KEY not in _stored_text()
    assert ApiKey.objects.get(name="ci").key_hash not in _stored_text()
    assert _verify() == f"audit chain OK: {AuditEvent.objects.count()} records"


def test_a_change_in_the_django_admin_is_audited(client, django_user_model) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-1")
    client.force_login(root)
    provider = Provider.objects.create(name="vllm", kind=ProviderKind.OPENAI_COMPATIBLE,
                                       base_url="http://127.0.0.1:9/v1")  # fmt: skip
    credential_create(provider=provider, name="main", secret=SECRET_ONE)
    response = client.post(
        f"/admin/providers/provider/{provider.pk}/change/",
        {
            "name": "vllm", "kind": "openai_compatible", "base_url": "http://127.0.0.1:8/v1",
            "enabled": "on", "options": "{}", "rotation_days": "30",
            "credentials-TOTAL_FORMS": "1", "credentials-INITIAL_FORMS": "1",
            "credentials-MIN_NUM_FORMS": "0", "credentials-MAX_NUM_FORMS": "1000",
            "credentials-0-id": str(Credential.objects.get().pk),
            "credentials-0-provider": str(provider.pk),
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="provider.updated")
    assert event.actor == root and event.details["via"] == "django admin"
    assert event.details["before"]["base_url"] == "http://127.0.0.1:9/v1"
    assert event.details["after"]["base_url"] == "http://127.0.0.1:8/v1"
    assert sorted(event.details["changed"]) == ["base_url", "rotation_days"]

    route = Route.objects.create(name="gpt")
    client.post(f"/admin/routing/route/{route.pk}/delete/", {"post": "yes"})
    deleted = AuditEvent.objects.get(action="route.deleted")
    assert deleted.details["before"]["name"] == "gpt" and deleted.target_id == str(route.pk)
    assert SECRET_ONE not in _stored_text()
    assert _verify() == f"audit chain OK: {AuditEvent.objects.count()} records"
