"""Writing audit events. Callers pass identifiers and fingerprints, never secrets."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from aigateway.audit.models import AuditEvent


def audit_record(
    *,
    action: str,
    target_type: str,
    target_id: object = "",
    target_label: str = "",
    actor: AbstractBaseUser | None = None,
    actor_label: str = "system",
    details: dict[str, Any] | None = None,
    organisation_id: int | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label,
        actor=actor if actor is not None and actor.pk else None,  # type: ignore[misc]
        actor_label=actor.get_username() if actor is not None and actor.pk else actor_label,
        details=details or {},
        organisation_id=organisation_id,
    )
