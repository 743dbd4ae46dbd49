"""Reading the audit log for the management API: filters and cursor pagination.

Who reads what: superusers every event; platform admins and auditors the events of their
organisations; nobody else any. Events without an organisation (gateway-wide providers,
routes and breakers, sign-ins) are for superusers and for platform admins and auditors of
every organisation: they answer for the whole gateway (the single-company set-up), and
whoever may change providers, routes and breakers reads their history. Newest first; the
cursor is the sequence number of the last event of a page, so pages stay stable while new
events arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from aigateway.audit.models import AuditEvent
from aigateway.core.rows import is_row_id
from auth.roles import covers_every_organisation, roles_of

MAX_PAGE = 200
EXPORT_BATCH = 2000


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "team.")
    actor: str | None = None  # username as recorded
    target_type: str | None = None
    target_id: str | None = None
    organisation_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


def audit_can_read(user: AbstractBaseUser | AnonymousUser) -> bool:
    roles = roles_of(user)
    return roles.superuser or bool(roles.wide_orgs)


def _visible(user: AbstractBaseUser | AnonymousUser) -> Q:
    roles = roles_of(user)
    if roles.superuser:
        return Q()
    if not roles.wide_orgs:
        raise PermissionDenied("Only platform admins and auditors can read the audit log.")
    if covers_every_organisation(roles.wide_orgs):
        return Q()  # every organisation's events and the gateway-wide ones
    return Q(organisation_id__in=roles.wide_orgs)


def _filters(f: AuditFilters) -> Q:
    q = Q()
    if f.action:
        q &= Q(action__startswith=f.action) if f.action.endswith(".") else Q(action=f.action)
    if f.actor:
        q &= Q(actor_label=f.actor)
    if f.target_type:
        q &= Q(target_type=f.target_type)
    if f.target_id:
        q &= Q(target_id=f.target_id)
    if f.organisation_id is not None:
        q &= Q(organisation_id=f.organisation_id)
    if f.since is not None:
        q &= Q(created_at__gte=f.since)
    if f.until is not None:
        q &= Q(created_at__lt=f.until)
    return q


def parse_cursor(cursor: str | None) -> int | None:
    """ValueError for a cursor this module did not hand out."""
    if not cursor:
        return None
    if not is_row_id(cursor):
        raise ValueError("This is not a cursor from a previous page.")
    return int(cursor)


def audit_events_for_user(
    user: AbstractBaseUser | AnonymousUser,
    *,
    filters: AuditFilters,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPage:
    """One page of the events ``user`` may read, newest first. PermissionDenied for users
    who may read none; ValueError for a malformed cursor."""
    before = parse_cursor(cursor)
    limit = max(1, min(limit, MAX_PAGE))
    events = AuditEvent.objects.filter(_visible(user) & _filters(filters))
    if before is not None:
        events = events.filter(sequence__lt=before)
    rows = list(events.order_by("-sequence")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, str(rows[-1].sequence) if more and rows else None)


def audit_events_batches(
    user: AbstractBaseUser | AnonymousUser, *, filters: AuditFilters, batch: int | None = None
) -> Iterator[list[AuditEvent]]:
    """Every event ``user`` may read that matches ``filters``, newest first, ``batch`` (default
    EXPORT_BATCH) at a time (CSV export). Each batch is one keyset query on ``sequence``,
    however deep. PermissionDenied (at the first batch) for users who may read none."""
    batch = batch or EXPORT_BATCH
    events = AuditEvent.objects.filter(_visible(user) & _filters(filters)).order_by("-sequence")
    before: int | None = None
    while True:
        page = events if before is None else events.filter(sequence__lt=before)
        rows = list(page[:batch])
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        before = rows[-1].sequence


def audit_event_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> AuditEvent:
    """One event by id, checked like the list: PermissionDenied for users who may read no
    event; Http404 for an event they may not read (another organisation's looks missing)."""
    event = AuditEvent.objects.filter(_visible(user), pk=pk).first()
    if event is None:
        raise Http404("There is no such audit event.")
    return event
