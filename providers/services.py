"""Writes to providers and credentials. Secrets are encrypted here and nowhere else.

Credential life cycle: pending (added, not yet verified) → active (new traffic uses the
newest active one) → retiring (grace period: in-flight calls finish, nothing new starts on
it) → retired. Every step is audited with the credential's fingerprint, never its value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from aigateway.audit.changes import Snapshot, audit_change, model_snapshot
from aigateway.audit.services import audit_record
from providers.crypto import encrypt_secret, fingerprint, mask, reencrypt_secret
from providers.models import Credential, CredentialStatus, Provider

_NO_CHANGE: Any = object()


def credential_audit(
    credential: Credential,
    action: str,
    actor: AbstractBaseUser | None,
    *,
    before: Snapshot | None = _NO_CHANGE,
    **details: object,
) -> None:
    """Audit a credential event. A change passes ``before`` (the snapshot taken before it,
    None for a creation): the entry then holds before and after, secrets as fingerprints."""
    label = f"{credential.provider.name}/{credential.name}"
    details = {"fingerprint": credential.fingerprint or f"env:{credential.env_var}", **details}
    if before is _NO_CHANGE:
        audit_record(action=action, target_type="credential", target_id=credential.pk,
                     target_label=label, actor=actor, actor_label="cli" if actor is None else "",
                     details=details)  # fmt: skip
        return
    audit_change(actor=actor, action=action, target=credential, before=before,
                 after=model_snapshot(credential), details=details, target_label=label)  # fmt: skip


def _set_secret(credential: Credential, *, secret: str, env_var: str) -> None:
    if bool(secret) == bool(env_var):
        raise ValueError("give exactly one of secret or env_var")
    credential.env_var = env_var
    credential.ciphertext = encrypt_secret(secret) if secret else ""
    credential.fingerprint = fingerprint(secret) if secret else ""
    credential.masked = mask(secret) if secret else ""


@transaction.atomic
def credential_create(
    *,
    provider: Provider,
    name: str,
    secret: str = "",
    env_var: str = "",
    status: str = CredentialStatus.ACTIVE,
    actor: AbstractBaseUser | None = None,
) -> Credential:
    """Store a secret encrypted, or a reference to an environment variable (``env_var``)."""
    now = timezone.now()
    credential = Credential(
        provider=provider,
        name=name,
        status=status,
        rotation_due_at=now + timedelta(days=provider.rotation_days),
        activated_at=now if status == CredentialStatus.ACTIVE else None,
    )
    _set_secret(credential, secret=secret, env_var=env_var)
    credential.save()
    credential_audit(credential, "credential.created", actor, before=None, status=status)
    return credential


@transaction.atomic
def credential_set_secret(
    *,
    credential: Credential,
    secret: str = "",
    env_var: str = "",
    actor: AbstractBaseUser | None = None,
) -> Credential:
    """Replace a credential's value in place (config as code). Restarts its rotation clock."""
    before = model_snapshot(credential)
    _set_secret(credential, secret=secret, env_var=env_var)
    credential.rotation_due_at = timezone.now() + timedelta(days=credential.provider.rotation_days)
    credential.overdue_flagged_at = None
    credential.save()
    credential_audit(credential, "credential.secret_replaced", actor, before=before)
    return credential


@transaction.atomic
def credential_activate(
    *, credential: Credential, grace: timedelta, actor: AbstractBaseUser | None = None
) -> list[Credential]:
    """Make a verified credential the one new traffic uses; the others that were active go
    into their grace period. Returns the credentials now retiring."""
    now = timezone.now()
    before = model_snapshot(credential)
    credential.status = CredentialStatus.ACTIVE
    credential.verified_at = credential.verified_at or now
    credential.activated_at = now
    credential.save(update_fields=["status", "verified_at", "activated_at"])
    credential_audit(credential, "credential.activated", actor, before=before)
    retiring = list(
        Credential.objects.select_for_update()
        .filter(provider=credential.provider, status=CredentialStatus.ACTIVE)
        .exclude(pk=credential.pk)
    )
    for old in retiring:
        was = model_snapshot(old)
        old.status = CredentialStatus.RETIRING
        old.retire_at = now + grace
        old.save(update_fields=["status", "retire_at"])
        credential_audit(old, "credential.retiring", actor, before=was,
                         retire_at=old.retire_at.isoformat())  # fmt: skip
    return retiring


@transaction.atomic
def credential_retire(
    *, credential: Credential, actor: AbstractBaseUser | None = None
) -> Credential:
    if credential.status != CredentialStatus.RETIRED:
        before = model_snapshot(credential)
        credential.status = CredentialStatus.RETIRED
        credential.retired_at = timezone.now()
        credential.save(update_fields=["status", "retired_at"])
        credential_audit(credential, "credential.retired", actor, before=before)
    return credential


def credentials_retire_due() -> int:
    """Retire credentials whose grace period is over (Celery beat)."""
    due = Credential.objects.filter(status=CredentialStatus.RETIRING, retire_at__lte=timezone.now())
    count = 0
    for credential in due.select_related("provider"):
        credential_retire(credential=credential)
        count += 1
    return count


def credentials_flag_overdue() -> list[Credential]:
    """Flag (once) active credentials past their rotation date (Celery beat); audited."""
    now = timezone.now()
    overdue = list(
        Credential.objects.select_related("provider").filter(
            status=CredentialStatus.ACTIVE, rotation_due_at__lt=now, overdue_flagged_at__isnull=True
        )
    )
    for credential in overdue:
        before = model_snapshot(credential)
        credential.overdue_flagged_at = now
        credential.save(update_fields=["overdue_flagged_at"])
        due = credential.rotation_due_at.isoformat() if credential.rotation_due_at else ""
        credential_audit(credential, "credential.rotation_overdue", None, before=before, due=due)
    return overdue


@transaction.atomic
def credentials_reencrypt() -> int:
    """Re-encrypt every stored secret under the first key of AIGATEWAY_ENCRYPTION_KEYS."""
    count = 0
    for credential in Credential.objects.select_for_update().exclude(ciphertext=""):
        credential.ciphertext = reencrypt_secret(credential.ciphertext)
        credential.save(update_fields=["ciphertext"])
        count += 1
    if count:
        audit_record(action="credentials.reencrypted", target_type="credential", actor_label="cli",
                     details={"count": count})  # fmt: skip
    return count
