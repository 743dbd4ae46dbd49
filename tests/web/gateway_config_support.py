"""Shared by the Providers and Routes page tests: who is who, and small helpers.

Providers and routes serve every organisation. Editors: gateway operators (superusers, here
``root``) and platform admins of every organisation. The cast's alice administers acme but
not globex, so she reads only, like dave (auditor); bob, carol and eve get 403.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from aigateway.audit.models import AuditEvent
from auth.models import OrgMembership, OrgRole

READERS = ("alice", "dave")
REFUSED = ("bob", "carol", "eve")


def make_operator() -> Any:
    return get_user_model().objects.create_superuser("root", "root@example.test", "pw-root-secret")


def make_admin_of_every_organisation(cast: Any) -> Any:
    """alice, platform admin of acme, becomes platform admin of globex too."""
    OrgMembership.objects.create(
        user=cast.alice, organisation=cast.other_org, role=OrgRole.PLATFORM_ADMIN
    )
    return cast.alice


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def user_named(cast: Any, name: str) -> Any:
    return getattr(cast, name)


def audit_entries(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def everything_audited_as_text() -> str:
    return json.dumps([e.details for e in AuditEvent.objects.all()], default=str)
