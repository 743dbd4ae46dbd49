"""Admin changes in the audit log, with the object before and after.

Every service that creates, changes or deletes an admin-managed object (teams, memberships,
API keys, providers, credentials, prices, routes and deployments, limits, breakers, a
config-as-code apply) calls ``audit_change`` with two ``model_snapshot``s:

    before = model_snapshot(team)
    ...change and save...
    audit_change(actor=actor, action="team.updated", target=team, before=before,
                 after=model_snapshot(team))

A snapshot never holds a secret: fields that hold one (ciphertexts, key hashes, passwords,
tokens; any field or JSON key whose name looks like a secret) are replaced by a fingerprint
of the stored value, enough to see that it changed and nothing more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from aigateway.audit.models import AuditEvent
from aigateway.audit.services import audit_record

# Names of fields and JSON keys whose values are secrets (or derived from one, like a key's
# hash). ``fingerprint`` and ``masked`` are designed to be shown and are kept.
SECRET_NAME = re.compile(
    r"secret|password|passwd|ciphertext|api_?key|(^|_)(token|hash|key)($|_)", re.IGNORECASE
)
Snapshot = dict[str, Any]


def secret_fingerprint(value: object) -> str:
    """``fp:`` and 12 hex digits of a SHA-256 of the stored value ("" stays "")."""
    if value in ("", None):
        return ""
    return "fp:" + hashlib.sha256(str(value).encode()).hexdigest()[:12]


def _plain(value: Any) -> Any:
    """A JSON value as the database returns it (the snapshot is hashed into the chain)."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {
            str(k): secret_fingerprint(v) if SECRET_NAME.search(str(k)) else _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def model_snapshot(obj: models.Model, *, exclude: tuple[str, ...] = ()) -> Snapshot:
    """The object's fields (foreign keys as ids, many-to-many as sorted names) with secrets
    replaced by fingerprints."""
    data: Snapshot = {}
    for field in obj._meta.concrete_fields:
        if field.name in exclude:
            continue
        name = field.attname if field.is_relation else field.name
        value = getattr(obj, field.attname)
        data[name] = secret_fingerprint(value) if SECRET_NAME.search(name) else _plain(value)
    if obj.pk is not None:
        for m2m in obj._meta.many_to_many:
            if m2m.name not in exclude:
                data[m2m.name] = sorted(str(o) for o in getattr(obj, m2m.name).all())
    return data


def target_type_of(obj: models.Model) -> str:
    """``ApiKey`` → ``api_key``, ``OrgMembership`` → ``org_membership``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(obj).__name__).lower()


def organisation_of(obj: models.Model) -> int | None:
    """The organisation an object belongs to (None for global objects: providers, routes,
    prices)."""
    if type(obj).__name__ == "Organisation":
        return obj.pk
    org_id = getattr(obj, "organisation_id", None)
    if org_id is not None:
        return int(org_id)
    team = getattr(obj, "team", None) if hasattr(obj, "team_id") else None
    return organisation_of(team) if team is not None else None


def audit_change(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: models.Model,
    before: Snapshot | None,
    after: Snapshot | None,
    details: dict[str, Any] | None = None,
    target_label: str | None = None,
    actor_label: str = "cli",
    organisation_id: int | None = None,
) -> AuditEvent | None:
    """Record one change: ``before`` is None for a creation, ``after`` None for a deletion.
    A change that changed nothing is not recorded (returns None). ``actor`` None is the
    command line or the system (``actor_label``)."""
    if before is not None and after is not None and before == after:
        return None
    changed = sorted(
        k for k in set(before or {}) | set(after or {})
        if (before or {}).get(k) != (after or {}).get(k)
    )  # fmt: skip
    return audit_record(
        action=action,
        target_type=target_type_of(target),
        target_id=target.pk if target.pk is not None else (before or {}).get("id", ""),
        target_label=str(target)[:300] if target_label is None else target_label,
        actor=actor,
        actor_label=actor_label,
        details={**(details or {}), "before": before, "after": after, "changed": changed},
        organisation_id=organisation_id if organisation_id is not None else organisation_of(target),
    )
