"""Credentials: encryption at rest, masking, key rotation of the encryption key, the
rotation life cycle (verified, audited) and its housekeeping task."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from aigateway.audit.models import AuditEvent
from providers.crypto import SecretDecryptionError, decrypt_secret, encrypt_secret, mask
from providers.models import Credential, CredentialStatus, Provider, ProviderKind
from providers.rotation import CredentialVerificationFailed, credential_rotate
from providers.services import credential_create, credentials_reencrypt
from providers.tasks import credentials_housekeeping
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.django_db
SECRET = "sk-test-plaintext-NEVER-SHOWN-123456"


def test_encryption_round_trips():
    assert decrypt_secret(encrypt_secret(SECRET)) == SECRET
    assert SECRET not in encrypt_secret(SECRET)


def test_a_wrong_key_is_rejected(settings):
    ciphertext = encrypt_secret(SECRET)
    settings.AIGATEWAY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SecretDecryptionError):
        decrypt_secret(ciphertext)


def test_masking_shows_only_the_ends():
    assert mask("sk-proj-abcdefghijklmnop1234") == "sk-…1234"
    assert mask("sk-ant-api03-abcdefghijkl9876") == "sk-ant-…9876"
    assert "abcdefgh" not in mask("sk-proj-abcdefghijklmnop1234")


def test_the_database_holds_no_plaintext_secret():
    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    credential = credential_create(provider=provider, name="primary", secret=SECRET)
    assert credential.reveal() == SECRET
    dump = ""
    with connection.cursor() as cursor:  # every table of the database, not just the obvious
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            dump += repr(cursor.fetchall())
    assert SECRET not in dump
    assert SECRET[-4:] in credential.masked and credential.fingerprint in dump


def test_rotating_the_encryption_key_reencrypts_every_row(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.AIGATEWAY_ENCRYPTION_KEYS = [old_key]
    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    secrets = [f"sk-test-{i}-{'x' * 20}" for i in range(3)]
    for i, secret in enumerate(secrets):
        credential_create(provider=provider, name=f"c{i}", secret=secret)
    settings.AIGATEWAY_ENCRYPTION_KEYS = [new_key, old_key]
    assert credentials_reencrypt() == 3
    settings.AIGATEWAY_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert sorted(c.reveal() for c in Credential.objects.all()) == sorted(secrets)


def test_an_env_reference_is_read_at_call_time(monkeypatch):
    provider = Provider.objects.create(name="openai", kind=ProviderKind.OPENAI)
    credential = credential_create(provider=provider, name="env", env_var="AIGW_TEST_KEY")
    monkeypatch.setenv("AIGW_TEST_KEY", "sk-from-env")
    assert credential.reveal() == "sk-from-env"
    assert credential.ciphertext == ""


@pytest.fixture
def upstream():
    with FakeUpstream(api_key="sk-new-key-0000000000") as fake:
        yield fake


@pytest.fixture
def provider(upstream, transactional_db):
    # Rotation runs its database work in worker threads (as in the server): committed data.
    provider = Provider.objects.create(
        name="openai", kind=ProviderKind.OPENAI, base_url=upstream.openai_base_url
    )
    credential_create(provider=provider, name="old", secret="sk-old-key-0000000000")
    return provider


def test_rotation_verifies_then_moves_traffic_and_audits(provider):
    result = async_to_sync(credential_rotate)(
        provider=provider, name="new", secret="sk-new-key-0000000000", grace=timedelta(minutes=5)
    )
    assert result.credential.status == CredentialStatus.ACTIVE
    assert provider.active_credential().name == "new"
    old = Credential.objects.get(name="old")
    assert old.status == CredentialStatus.RETIRING
    assert old.retire_at > timezone.now()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["credential.created", "credential.activated", "credential.retiring"]
    fingerprints = [e.details["fingerprint"] for e in AuditEvent.objects.all()]
    assert all(len(f) == 12 for f in fingerprints)


def test_a_credential_that_fails_verification_changes_nothing(provider):
    with pytest.raises(CredentialVerificationFailed) as caught:
        async_to_sync(credential_rotate)(provider=provider, name="bad", secret="sk-wrong-000000000")
    assert caught.value.kind == "upstream_auth_failed"
    assert provider.active_credential().name == "old"
    assert Credential.objects.get(name="bad").status == CredentialStatus.RETIRED
    assert AuditEvent.objects.filter(action="credential.verification_failed").exists()


def test_housekeeping_retires_after_grace_and_flags_overdue_once(provider):
    async_to_sync(credential_rotate)(
        provider=provider, name="new", secret="sk-new-key-0000000000", grace=timedelta(0)
    )
    Credential.objects.filter(name="new").update(rotation_due_at=timezone.now() - timedelta(days=1))
    assert credentials_housekeeping.delay().get() == {"retired": 1, "overdue": 1}
    assert Credential.objects.get(name="old").status == CredentialStatus.RETIRED
    assert credentials_housekeeping() == {"retired": 0, "overdue": 0}  # flagged only once
    assert AuditEvent.objects.filter(action="credential.rotation_overdue").count() == 1


def test_the_command_rotates_and_lists_without_printing_secrets(provider, monkeypatch):
    monkeypatch.setenv("NEW_OPENAI_KEY", "sk-new-key-0000000000")
    out = StringIO()
    call_command(
        "credentials", "rotate", "openai", "new", "--secret-env", "NEW_OPENAI_KEY", stdout=out
    )
    call_command("credentials", "list", stdout=out)
    text = out.getvalue()
    assert "active: openai/new (sk-…0000)" in text and "retiring: openai/old" in text
    assert "sk-new-key-0000000000" not in text and "sk-old-key-0000000000" not in text
