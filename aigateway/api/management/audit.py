"""The audit log: filtered, newest first, cursor-paginated (platform admins and auditors see
their organisations' events; gateway operators every event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from aigateway.api.management.common import Id, Text20, Text100, Text200, aware_utc
from aigateway.api.management.errors import ApiError
from aigateway.api.management.security import current_user
from aigateway.audit.search import MAX_PAGE, AuditFilters, audit_events_for_user

router = Router(tags=["audit"])


class AuditQuery(Schema):
    action: Text100 | None = Field(
        None, description="Exact action, or a prefix ending in '.' (e.g. 'team.')."
    )
    actor: Text200 | None = Field(None, description="Username.")
    target_type: Text100 | None = None
    target_id: Text100 | None = None
    organisation_id: Id | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: Text20 | None = Field(None, description="next_cursor of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_PAGE)


class AuditEventOut(Schema):
    id: int
    sequence: int
    created_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    target_label: str
    organisation_id: int | None
    details: dict[str, Any]


class AuditPageOut(Schema):
    data: list[AuditEventOut]
    next_cursor: str | None = Field(description="Pass as 'cursor' for older events; null: end.")


@router.get("/audit-events", response=AuditPageOut, summary="Audit log")
def list_audit_events(request: HttpRequest, query: Query[AuditQuery]) -> AuditPageOut:
    filters = AuditFilters(
        action=query.action, actor=query.actor, target_type=query.target_type,
        target_id=query.target_id, organisation_id=query.organisation_id,
        since=aware_utc(query.since, "since"), until=aware_utc(query.until, "until"),
    )  # fmt: skip
    try:
        page = audit_events_for_user(current_user(request), filters=filters, cursor=query.cursor,
                                     limit=query.limit)  # fmt: skip
    except ValueError as exc:
        raise ApiError(400, str(exc), param="cursor") from None
    return AuditPageOut(
        data=[
            AuditEventOut(
                id=e.pk, sequence=e.sequence, created_at=e.created_at, actor=e.actor_label,
                action=e.action, target_type=e.target_type, target_id=e.target_id,
                target_label=e.target_label, organisation_id=e.organisation_id,
                details=e.details if isinstance(e.details, dict) else {"value": e.details},
            )
            for e in page.events
        ],
        next_cursor=page.next_cursor,
    )  # fmt: skip
