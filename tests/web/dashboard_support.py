"""Helpers of the Overview, Teams & keys, Usage and audit-export tests.

The cast (tests/conftest.py): alice platform admin of acme, bob team admin of acme/research,
carol member of acme/research, dave auditor of acme, eve team admin of globex/sales. These
tests add frank, a platform admin of globex (the "other organisation's admin").
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from aigateway.usage.models import UsageRecord
from auth.models import OrgMembership, OrgRole

ROLES = ("anonymous", "alice", "bob", "carol", "dave", "frank")
_ids = count(1)


def add_frank(cast: Any) -> Any:
    """A platform admin of globex, the other organisation."""
    frank = get_user_model().objects.create_user("frank", "frank@example.test", "pw-frank-secret")
    OrgMembership.objects.create(
        user=frank, organisation=cast.other_org, role=OrgRole.PLATFORM_ADMIN
    )
    cast.frank = frank
    return frank


def client_for(cast: Any, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(getattr(cast, role))
    return client


def usage(
    *,
    team: Any = None,
    user: Any = None,
    created_at: datetime | None = None,
    **fields: Any,
) -> UsageRecord:
    """One recorded call (defaults: a successful 10+5 token call, 100 ms, $0.001)."""
    values: dict[str, Any] = {
        "request_id": f"req_test_{next(_ids)}",
        "created_at": created_at or timezone.now(),
        "organisation_id": team.organisation_id if team is not None else None,
        "team_id": team.pk if team is not None else None,
        "user_id": user.pk if user is not None else None,
        "route": "smart",
        "provider": "demo",
        "upstream_model": "demo-1",
        "status_code": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": Decimal("0.001"),
        "latency_ms": 100.0,
    }
    values.update(fields)
    return UsageRecord.objects.create(**values)


def streamed_csv(response: HttpResponse) -> list[list[str]]:
    """The rows of a streamed CSV response (header first)."""
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body)))
